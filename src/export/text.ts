/**
 * `boot-trace export RECORDING --to text`: a whole-boot recording as the 2016 text trace format
 * (docs/trace-format.md), streamed: one line per record (function granularity: per change of function;
 * block: per executed block, at its first instruction; instruction: per instruction), folded thunks
 * left out as the analyzers leave them out, so every analyzer gives the same rows on the text as on
 * the recording. Timestamps: host microseconds with three decimals (exactly the recording's ns), or
 * with --clock instructions the guest instruction count.
 */
import { UserError } from '../errors.js';
import { Progress } from '../progress.js';
import { FunctionTable } from '../trace/functions.js';
import { decodeRecords, openRecording } from '../trace/recording/decode.js';
import type { RecordingClock } from '../trace/recording/format.js';
import { AddressNames, recordingPath, warnIfCut } from '../trace/recording/read.js';
import { TextSink } from './sink.js';
import { clockByKind, clockOf, type Clock } from '../output/clock.js';
import { writeUint } from '../output/digits.js';

const BLOCK = 1 << 20;

export interface TextExportOptions {
  output: string | null;
  clock?: RecordingClock;
  warn?: (line: string) => void;
  progress?: boolean;
}

export function exportText(input: string, o: TextExportOptions): { lines: number; events: number; stacks: number; bytes: number; tracks: string[]; clock: Clock } {
  const path = recordingPath(input);
  if (!path) throw new UserError(`${input}: --to text writes a whole-boot recording (capture --mode trace) as text; this is not one`);
  const rec = openRecording(path);
  const names = new AddressNames(rec, new FunctionTable());
  const clock = o.clock ?? 'host';
  const out = new TextSink(o.output);
  const progress = new Progress(path, o.progress, 'records');
  let lines = 0;
  try {
    const h = rec.header;
    out.write(`# boot-trace recording ${path}: kernel ${h.kernel.release ?? h.kernel.path} (sha256 ${h.kernel.sha256}), ${h.qemu.version}\n`);
    // One fact a line, as src/output/clock.ts reads a trace's header ("clock: host", "clock: instructions").
    out.write(`# mode: trace, granularity: ${h.granularity}\n`);
    out.write(`# clock: ${clock === 'host' ? 'host (us since QEMU started)' : 'instructions (guest instructions since the recording started)'}\n`);
    out.write(`# cmdline: ${h.kernel_cmdline}\n`);
    // Lines are assembled as bytes in a block (a whole boot is ~1 GB of text): each address's tail is
    // encoded once, timestamps digit by digit.
    const block = Buffer.allocUnsafe(BLOCK);
    let n = 0;
    const tails: (Buffer | undefined)[] = [];
    const records = decodeRecords(rec, (tNs, ic, address) => {
      const i = names.slot(address);
      if (names.folded[i]) return;
      let tail = tails[i];
      if (tail === undefined) tails[i] = tail = Buffer.from(` ${names.describe(i, address)}\n`, 'latin1');
      if (n + 40 + tail.length > BLOCK) {
        out.writeBytes(block.subarray(0, n));
        n = 0;
      }
      if (clock === 'host') {
        const whole = Math.floor(tNs / 1000);
        const frac = tNs - whole * 1000;
        n = writeUint(block, n, whole);
        block[n++] = 46; // '.'
        block[n++] = 48 + Math.floor(frac / 100);
        block[n++] = 48 + (Math.floor(frac / 10) % 10);
        block[n++] = 48 + (frac % 10);
      } else n = writeUint(block, n, ic);
      n += tail.copy(block, n);
      lines++;
    }, (done, total, count) => progress.update(done, total, count));
    out.writeBytes(block.subarray(0, n));
    progress.done();
    if (records === 0 && rec.cut) throw new UserError(`${path}: recording cut short before its first record (${rec.cut}): no record could be read`);
    warnIfCut(rec, o.warn ?? ((l) => process.stderr.write(l + '\n')), records);
    out.close();
  } catch (err) {
    progress.done();
    out.abort();
    throw err;
  }
  return { lines, events: lines, stacks: 0, bytes: out.bytes, tracks: [], clock: clock === 'host' ? clockOf({ profile: { mode: 'trace', clock: 'host' }, granularity: rec.header.granularity }) : clockByKind('instructions') };
}
