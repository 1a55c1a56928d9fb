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

/**
 * Bytes read at a time: small enough that what read(2) has just written is still in the core's L2 cache when
 * the parser reads it (8 MiB ranges read whole parsed ~7% slower: docs/performance.md).
 */
export const READ_CHUNK = 256 << 10;

/** Reads the lines of byte ranges of one open file, a chunk at a time, into one reused buffer. */
export class RangeReader {
  private readonly buf: Buffer;

  /** `buffer`: where to read (READ_CHUNK bytes at least; TraceParser.readBuffer gives one the parser scans without a copy). */
  constructor(private readonly fd: number, buffer?: Buffer) {
    this.buf = buffer ?? Buffer.allocUnsafe(READ_CHUNK);
    if (this.buf.length < READ_CHUNK) throw new Error(`RangeReader: a buffer of ${this.buf.length} bytes, not ${READ_CHUNK}`);
  }

  /**
   * Feeds `onChunk` the bytes of the lines that start in [start, end), in order, the last one with its LF
   * when the file has one; nothing when no line starts in the range (a line that began before it runs past
   * its end). Reads on at most the line limit (and a CRLF) past `end`: enough to finish the last line, or to
   * know it is too long, which the parser then reports from the bytes it has. Each chunk is only valid
   * during its call (the buffer is reused).
   */
  readLines(start: number, end: number, onChunk: (chunk: Buffer) => void): void {
    let pos = start;
    if (start > 0) {
      // A line starts at `start` only if the byte before it is a LF: the first line is after the first LF
      // at or after start - 1.
      const nl = this.findLf(start - 1, end);
      if (nl < 0 || nl + 1 >= end) return;
      pos = nl + 1;
    }
    const limit = end + MAX_LINE_BYTES + 2;
    while (pos < limit) {
      const n = this.fill(pos, Math.min(READ_CHUNK, limit - pos));
      if (n === 0) return;
      const chunk = this.buf.subarray(0, n);
      if (pos + n > end - 1) {
        // The last line starting before `end` ends at the first LF at or after end - 1.
        const nl = chunk.indexOf(LF, Math.max(0, end - 1 - pos));
        if (nl >= 0) return onChunk(chunk.subarray(0, nl + 1));
      }
      onChunk(chunk);
      pos += n;
    }
  }

  /** The position of the first LF in [from, end), or -1. */
  private findLf(from: number, end: number): number {
    for (let pos = from; pos < end; ) {
      const n = this.fill(pos, Math.min(READ_CHUNK, end - pos));
      if (n === 0) return -1;
      const nl = this.buf.subarray(0, n).indexOf(LF);
      if (nl >= 0) return pos + nl;
      pos += n;
    }
    return -1;
  }

  /** Reads up to `length` bytes at `position` into the buffer; returns how many (0 at the end of the file). */
  private fill(position: number, length: number): number {
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, this.buf, got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  }
}
