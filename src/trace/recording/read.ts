/**
 * A recording as the trace analyzers see it: the same events the text reader gives them
 * (TraceVisitor.event(t, fn, offset, addr)), symbolised from the kernel's and the modules' symbols
 * stored in the recording, with folded thunks (format.ts FOLDED_SYMBOLS) dropped so their time stays
 * with the function before them.
 *
 *   t = host clock: microseconds since QEMU started (ns / 1000, computed as the text reader computes
 *       "123.456"), or the instructions clock: guest instructions since the recording started.
 *
 * Names are looked up once per distinct address (a boot has ~100 k of them at function granularity),
 * not once per record.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { Progress } from '../../progress.js';
import { parseSystemMap } from '../../symbols/system-map.js';
import type { SymbolTable } from '../../symbols/symbol-table.js';
import { FunctionTable, UNRESOLVED, USER } from '../functions.js';
import type { TraceVisitor } from '../parser.js';
import type { ParseCounts } from '../parser.js';
import { MALFORMED_CODES } from '../malformed.js';
import { FOLDED_SYMBOLS, type RecordingClock } from './format.js';
import { processNames } from './processes.js';
import { roundUs } from '../../output/write.js';
import { decodeRecords, fileIsRecording, openRecording, type Recording } from './decode.js';

/** The file name of a recording inside a capture folder (capture/output/folder.ts names the folder's files). */
export { RECORDING_FILE } from '../../../capture/output/folder.js';
import { RECORDING_FILE } from '../../../capture/output/folder.js';
const TWO_64 = 2n ** 64n;

/** The recording a path names: the file itself, or a capture folder's recording.bin; else null. */
export function recordingPath(input: string): string | null {
  if (input === '-' || input.endsWith('.gz')) return null;
  try {
    if (statSync(input).isDirectory()) {
      const f = join(input, RECORDING_FILE);
      return fileIsRecording(f) ? f : null;
    }
  } catch {
    return null;
  }
  return fileIsRecording(input) ? input : null;
}

/** Address -> (function id, offset, bare address, folded, text tail), cached per distinct address. */
export class AddressNames {
  readonly table: SymbolTable;
  private readonly index = new Map<number, number>();
  readonly fn: number[] = [];
  readonly offset: number[] = [];
  readonly bare: number[] = [];
  readonly folded: boolean[] = [];
  private readonly text: (string | undefined)[] = [];

  constructor(rec: Recording, readonly functions: FunctionTable) {
    this.table = parseSystemMap(rec.symbols, `${rec.path} (symbols)`);
  }

  /** The cache slot of a signed address. */
  slot(address: number): number {
    let i = this.index.get(address);
    if (i !== undefined) return i;
    i = this.fn.length;
    this.index.set(address, i);
    if (address >= 0) {
      // Below the user/kernel split: user space (or, with --from firmware, firmware and setup code).
      this.fn.push(USER); this.offset.push(-1); this.bare.push(address); this.folded.push(false);
      return i;
    }
    const u = BigInt(address) + TWO_64;
    const hit = this.table.lookup(u);
    if (hit) {
      this.fn.push(this.functions.idOf(hit.name)); this.offset.push(hit.offset); this.bare.push(0);
      this.folded.push(FOLDED_SYMBOLS.test(hit.name));
    } else {
      this.fn.push(UNRESOLVED); this.offset.push(-1); this.bare.push(Number(u)); this.folded.push(false);
    }
    return i;
  }

  /** The 2016 trace line's tail for a slot: "name + off in section .text", or bare hex. */
  describe(slot: number, address: number): string {
    let s = this.text[slot];
    if (s === undefined) {
      s = address >= 0 ? address.toString(16) : this.table.describe(BigInt(address) + TWO_64);
      this.text[slot] = s;
    }
    return s;
  }
}

export interface RecordingReadOptions {
  clock?: RecordingClock;
  /**
   * Filled while reading, for a recording with system call entries (QEMU 10): the event time (as the
   * analyzers round it, roundUs) of each entry_SYSCALL_64 record -> the calling process's name
   * (processes.ts). Stays empty for a QEMU 7.2 recording.
   */
  processes?: Map<number, string>;
  warn?: (line: string) => void;
  progress?: boolean;
}

export interface RecordingReadResult extends ParseCounts {
  functions: FunctionTable;
  bytes: number;
  recording: Recording;
  clock: RecordingClock;
}

/** A kernel address as the recording's signed number (format.ts), or null. */
function signedAddress(a: bigint | undefined): number | null {
  return a === undefined ? null : Number(BigInt.asIntN(64, a));
}

/** Host ns as the text reader would parse "<us>.<3 digits>", so text exports read back identically. */
export function hostMicros(tNs: number): number {
  const whole = Math.floor(tNs / 1000);
  return whole + (tNs - whole * 1000) / 1000;
}

/** Says on stderr (or `warn`) why a recording is not whole; the caller goes on with what it has. */
export function warnIfCut(rec: Recording, warn: (line: string) => void, records: number): void {
  if (rec.cut) warn(`boot-trace: ${rec.path}: recording cut short (${rec.cut}); read ${records.toLocaleString('en-US')} records up to the cut`);
  if (rec.pluginEnd && !rec.pluginEnd.started) warn(`boot-trace: ${rec.path}: the recording never started (its start address ${typeof rec.header.start === 'string' ? rec.header.start : rec.header.start.symbol} never ran)`);
}

/** Reads a recording into a TraceVisitor, like readTrace does a text trace. Throws UserError. */
export function readRecordingTrace(
  path: string,
  makeVisitor: (functions: FunctionTable) => TraceVisitor,
  options: RecordingReadOptions = {},
): RecordingReadResult {
  const warn = options.warn ?? ((line: string) => process.stderr.write(line + '\n'));
  const rec = openRecording(path);
  const clock = options.clock ?? 'host';
  const functions = new FunctionTable();
  const visitor = makeVisitor(functions);
  const names = new AddressNames(rec, functions);
  const { fn, offset, bare, folded } = names;
  let events = 0;
  const progress = new Progress(path, options.progress, 'records');
  const instructions = clock === 'instructions';
  const byInstructions = options.processes && rec.syscalls ? processNames(rec.syscalls) : null;
  const entry = byInstructions ? signedAddress(names.table.resolve('entry_SYSCALL_64')) : null;
  const records = decodeRecords(rec, (tNs, ic, address) => {
    const i = names.slot(address);
    if (folded[i]) return;
    events++;
    const t = instructions ? ic : hostMicros(tNs);
    if (address === entry) {
      const p = byInstructions!.get(ic);
      if (p !== undefined) options.processes!.set(roundUs(t), p);
    }
    visitor.event(t, fn[i]!, offset[i]!, bare[i]!);
  }, (done, total, n) => progress.update(done, total, n));
  progress.done();
  // Cut before its first whole record frame: there is nothing to analyse, which is an error, not an empty table.
  if (records === 0 && rec.cut) throw new UserError(`${path}: recording cut short before its first record (${rec.cut}): no record could be read`);
  warnIfCut(rec, warn, records);
  if (records === 0 && !rec.cut) {
    if (!rec.pluginEnd?.started) throw new UserError(`${path}: the recording has no records: its start (${JSON.stringify(rec.header.start)}) never ran`);
  }
  return {
    lines: records, events, comments: 0, blank: 0, malformed: 0, malformedByCode: MALFORMED_CODES.map(() => 0), backwards: 0, firstBackwardsLine: 0, firstEventLine: events > 0 ? 1 : 0,
    functions, bytes: rec.size, recording: rec, clock,
  };
}
