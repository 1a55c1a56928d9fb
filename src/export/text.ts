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

export interface TextExportOptions {
  output: string | null;
  clock?: RecordingClock;
  warn?: (line: string) => void;
  progress?: boolean;
}

export function exportText(input: string, o: TextExportOptions): { lines: number; events: number; stacks: number; bytes: number; tracks: string[] } {
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
    out.write(`# granularity: ${h.granularity}, clock: ${clock === 'host' ? 'host (us since QEMU started)' : 'instructions (since the recording started)'}, cmdline: ${h.kernel_cmdline}\n`);
    const records = decodeRecords(rec, (tNs, ic, address) => {
      const i = names.slot(address);
      if (names.folded[i]) return;
      let t: string;
      if (clock === 'host') {
        const whole = Math.floor(tNs / 1000);
        t = `${whole}.${String(tNs - whole * 1000).padStart(3, '0')}`;
      } else t = String(ic);
      out.write(`${t} ${names.describe(i, address)}\n`);
      lines++;
    }, (done, total, n) => progress.update(done, total, n));
    progress.done();
    warnIfCut(rec, o.warn ?? ((l) => process.stderr.write(l + '\n')), records);
    out.close();
  } catch (err) {
    progress.done();
    out.abort();
    throw err;
  }
  return { lines, events: lines, stacks: 0, bytes: out.bytes, tracks: [] };
}
