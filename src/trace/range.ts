/**
 * Byte ranges of a trace file, as the parallel reader splits it (src/trace/parallel.ts): a range
 * [start, end) holds the lines that START in it, so ranges may split a file anywhere and every line
 * belongs to exactly one range. Used by the parse workers and by the main thread, which parses a share of
 * the ranges itself.
 */
import { readSync } from 'node:fs';
import { MAX_LINE_BYTES } from './malformed.js';
import type { RangeKind } from './range-part.js';

const LF = 10;

/**
 * How the main thread and the parse workers share out the ranges (parallel.ts, parse-worker.ts): an Int32Array
 * over a SharedArrayBuffer holding the main thread's cursor (the range it is at) and a state per range.
 */
export const CTL_CURSOR = 0;
/** The first range's state; range i's is at CTL_STATES + i. */
export const CTL_STATES = 1;
export const RANGE_FREE = 0, RANGE_WORKER = 1, RANGE_MAIN = 2;

/** What a parse worker is started with (workerData). */
export interface WorkerSetup {
  path: string;
  reportLimit: number;
  control: SharedArrayBuffer;
  ranges: number;
  rangeBytes: number;
  size: number;
  /** A worker claims ranges from `lead` past the main thread's cursor, `window` of them. */
  lead: number;
  window: number;
  /** The analyzer's range half to run (range-part.ts); without it the worker sends every event. */
  kind?: RangeKind;
}

/** Reads ranges of one open file into one growing buffer (the caller parses each before the next read). */
export class RangeReader {
  private buf = Buffer.allocUnsafe(1 << 20);

  constructor(private readonly fd: number) {}

  /**
   * The bytes of the lines that start in [start, end), the last one with its LF when the file has one;
   * empty when no line starts in the range (a line that began before it runs past its end).
   * Reads on at most the line limit (and a CRLF) past `end`: enough to finish the last line, or to know it is
   * too long, which the parser then reports from the bytes it has.
   */
  read(start: number, end: number): Buffer {
    // From one byte before the range, to know whether a line starts exactly at `start`.
    const from = Math.max(0, start - 1);
    let data = this.fill(from, end - from + MAX_LINE_BYTES + 2);
    let first = 0;
    if (start > 0) {
      const nl = data.indexOf(LF);
      if (nl < 0 || from + nl + 1 >= end) return data.subarray(0, 0);
      first = nl + 1;
    }
    // The last line starting before `end` ends at the first newline at or after end - 1.
    const nl = data.indexOf(LF, end - from - 1);
    if (nl >= 0) data = data.subarray(0, nl + 1);
    return data.subarray(first);
  }

  private fill(position: number, length: number): Buffer {
    if (this.buf.length < length) this.buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, this.buf, got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return this.buf.subarray(0, got);
  }
}
