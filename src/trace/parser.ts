/**
 * The streaming core of the trace reader: bytes in, events out, one line at a time, carrying the
 * unfinished tail of a chunk to the next one. No strings are built per line (see functions.ts).
 *
 * A line, as docs/trace-format.md defines it:
 *   11409434.8589973 prepare_exit_to_usermode in section .text
 *   11409435.5189973 retint_user + 8 in section .text
 *   11409436.4899973 7fb95ab3cd20
 */
import { FunctionTable, UNRESOLVED, USER } from './functions.js';

/** Receives one call per event line, in file order. */
export interface TraceVisitor {
  /**
   * @param t       timestamp in microseconds, as written (may go backwards; analyzers clamp deltas)
   * @param fn      function id in the reader's FunctionTable (USER / UNRESOLVED for bare addresses)
   * @param offset  byte offset into the function (0 at its entry), or -1 for a bare address
   * @param addr    the bare address (as a double: exact below 2^53, so for every user address), else 0
   */
  event(t: number, fn: number, offset: number, addr: number): void;
}

export interface ParseCounts {
  lines: number;
  events: number;
  comments: number;
  blank: number;
  malformed: number;
  backwards: number;
  firstBackwardsLine: number;
  firstEventLine: number;
}

/** Called for each malformed line with its 1-based number and its text. */
export type MalformedHandler = (line: number, text: string) => void;

const SPACE = 32, TAB = 9, CR = 13, LF = 10, HASH = 35, DOT = 46, PLUS = 43;
/** Bare addresses at or above this are kernel-half (x86-64 canonical split). */
const USER_LIMIT = 0x800000000000;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

const hexValue = (c: number): number => (c <= 57 ? c - 48 : (c | 32) - 87);
const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
/** "in section " after the blank(s) that follow a name or offset. */
const IN_SECTION = [105, 110, 32, 115, 101, 99, 116, 105, 111, 110, 32];
const NEWLINE = Buffer.from([LF]);

export class TraceParser {
  readonly counts: ParseCounts = {
    lines: 0, events: 0, comments: 0, blank: 0, malformed: 0, backwards: 0, firstBackwardsLine: 0, firstEventLine: 0,
  };
  private carry: Buffer | null = null;
  private lastT = -Infinity;

  constructor(
    readonly functions: FunctionTable,
    private readonly visitor: TraceVisitor,
    private readonly onMalformed: MalformedHandler,
  ) {}

  /** Feeds the next chunk of the input. */
  push(chunk: Buffer): void {
    let start = 0;
    if (this.carry) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) {
        this.carry = Buffer.concat([this.carry, chunk]);
        return;
      }
      const joined = Buffer.concat([this.carry, chunk.subarray(0, nl + 1)]);
      this.carry = null;
      this.parseLines(joined, 0, joined.length);
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(LF);
    if (last >= start) this.parseLines(chunk, start, last + 1);
    const tailStart = Math.max(start, last + 1);
    // Copy the tail: the caller may reuse the chunk's memory for its next read.
    if (tailStart < chunk.length) this.carry = Buffer.from(chunk.subarray(tailStart));
  }

  /** Ends the input: a last line without a newline is still a line. */
  end(): void {
    if (this.carry) {
      // Give the last line its newline: every line the parser sees then ends in LF, which is what
      // lets its scans run without bounds checks (LF stops each of them).
      const tail = Buffer.concat([this.carry, NEWLINE]);
      this.carry = null;
      this.parseLines(tail, 0, tail.length);
    }
  }

  /** Parses the complete lines in buf[start, end), which ends with a newline. */
  private parseLines(buf: Buffer, start: number, end: number): void {
    let s = start;
    while (s < end) s = this.parseLine(buf, s);
  }

  /**
   * Parses the line that starts at buf[s] and returns where the next one starts. The line ends in LF
   * (push and end see to that), so every scan below stops at the LF at the latest, and no scan needs a
   * bounds check. This is the hot loop of every analyzer: one pass over the bytes, the name hashed while
   * it is scanned, no allocation, no per-line native call.
   */
  private parseLine(buf: Buffer, s: number): number {
    const counts = this.counts;
    counts.lines++;
    let i = s;
    let c = buf[i]!;
    while (c === SPACE || c === TAB) c = buf[++i]!;
    if (c === LF) {
      counts.blank++;
      return i + 1;
    }
    if (c === CR && buf[i + 1] === LF) {
      counts.blank++;
      return i + 2;
    }
    if (c === HASH) {
      counts.comments++;
      return buf.indexOf(LF, i) + 1;
    }

    // Timestamp: digits [. digits], parsed without building a string.
    let whole = 0, frac = 0, fracDigits = 0;
    const tStart = i;
    while (c >= 48 && c <= 57) {
      whole = whole * 10 + (c - 48);
      c = buf[++i]!;
    }
    if (c === DOT) {
      c = buf[++i]!;
      while (c >= 48 && c <= 57) {
        // Digits past 22 add nothing a double can hold.
        if (fracDigits < 22) { frac = frac * 10 + (c - 48); fracDigits++; }
        c = buf[++i]!;
      }
    }
    if (i === tStart || (c !== SPACE && c !== TAB)) return this.malformed(buf, s, i);
    const t = fracDigits ? whole + frac / POW10[fracDigits]! : whole;
    while (c === SPACE || c === TAB) c = buf[++i]!;

    // The symbol or address token, FNV-1a hashed as it is scanned.
    const nameStart = i;
    let h = 0x811c9dc5;
    while (c > SPACE && c < 127) {
      h = Math.imul(h ^ c, 0x01000193);
      c = buf[++i]!;
    }
    const nameEnd = i;
    if (nameEnd === nameStart) return this.malformed(buf, s, i);
    while (c === SPACE || c === TAB) c = buf[++i]!;
    if (c === CR && buf[i + 1] === LF) c = buf[++i]!;

    let fn: number, offset = 0, addr = 0;
    if (c === LF) {
      if (nameEnd - nameStart <= 16 && this.allHex(buf, nameStart, nameEnd)) {
        // A bare address. Parsed as a double: exact for user addresses, close enough to classify kernel ones.
        for (let k = nameStart; k < nameEnd; k++) addr = addr * 16 + hexValue(buf[k]!);
        fn = addr < USER_LIMIT ? USER : UNRESOLVED;
        offset = -1;
      } else {
        // A name alone, without " in section": accepted, as tools other than gdb write it.
        fn = this.functions.internHashed(buf, nameStart, nameEnd, h);
      }
    } else {
      // After the name: blanks, then "+ <decimal offset>" (gdb's `info symbol` form) and/or "in section <name>".
      if (i === nameEnd) return this.malformed(buf, s, i);
      if (c === PLUS) {
        c = buf[++i]!;
        while (c === SPACE) c = buf[++i]!;
        const offStart = i;
        while (c >= 48 && c <= 57) {
          offset = offset * 10 + (c - 48);
          c = buf[++i]!;
        }
        if (i === offStart) return this.malformed(buf, s, i);
        const afterOffset = i;
        while (c === SPACE || c === TAB) c = buf[++i]!;
        if (c === CR && buf[i + 1] === LF) c = buf[++i]!;
        if (c !== LF && i === afterOffset) return this.malformed(buf, s, i);
      }
      if (c !== LF) {
        for (let k = 0; k < 11; k++) if (buf[i + k] !== IN_SECTION[k]) return this.malformed(buf, s, i);
        i += 11;
        c = buf[i]!;
        const sectionStart = i;
        while (c > SPACE && c < 127) c = buf[++i]!;
        if (i === sectionStart) return this.malformed(buf, s, i);
        while (c === SPACE || c === TAB) c = buf[++i]!;
        if (c === CR && buf[i + 1] === LF) c = buf[++i]!;
        if (c !== LF) return this.malformed(buf, s, i);
      }
      fn = this.functions.internHashed(buf, nameStart, nameEnd, h);
    }

    if (t < this.lastT && counts.backwards++ === 0) counts.firstBackwardsLine = counts.lines;
    this.lastT = t;
    if (counts.events++ === 0) counts.firstEventLine = counts.lines;
    this.visitor.event(t, fn, offset, addr);
    return i + 1;
  }

  private allHex(buf: Buffer, start: number, end: number): boolean {
    for (let k = start; k < end; k++) if (!isHex(buf[k]!)) return false;
    return true;
  }

  /** Counts and reports the malformed line that starts at s; returns where the next line starts. */
  private malformed(buf: Buffer, s: number, i: number): number {
    const nl = buf.indexOf(LF, i);
    let e = nl;
    if (e > s && buf[e - 1] === CR) e--;
    this.counts.malformed++;
    this.onMalformed(this.counts.lines, buf.toString('latin1', s, Math.min(e, s + 120)));
    return nl + 1;
  }
}
