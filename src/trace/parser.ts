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
import { LineScanner, scannerFor, STOP_END, STOP_FULL, STOP_NEW_NAME } from './line-scanner.js';
import {
  BAD_OFFSET, BAD_SYMBOL, BAD_TIMESTAMP, LINE_TOO_LONG, MALFORMED_CODES, MAX_LINE_BYTES, MAX_OFFSET, MAX_TIMESTAMP,
  MISSING_SECTION, MISSING_SYMBOL, OFFSET_RANGE, TIMESTAMP_RANGE, UNEXPECTED_TEXT, type MalformedCode,
} from './malformed.js';

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
  /** Malformed lines by code (index: a code of malformed.ts). */
  malformedByCode: number[];
  backwards: number;
  firstBackwardsLine: number;
  firstEventLine: number;
}

/** Fresh counts, all zero. */
export function emptyCounts(): ParseCounts {
  return {
    lines: 0, events: 0, comments: 0, blank: 0, malformed: 0, malformedByCode: MALFORMED_CODES.map(() => 0),
    backwards: 0, firstBackwardsLine: 0, firstEventLine: 0,
  };
}

/**
 * Called for each malformed line with its 1-based number, its first 120 bytes (without CR/LF) and why it
 * is malformed (a code of malformed.ts). May throw to stop the parse (--strict).
 */
export type MalformedHandler = (line: number, text: string, code: MalformedCode) => void;

const SPACE = 32, TAB = 9, CR = 13, LF = 10, HASH = 35, DOT = 46, PLUS = 43, LOWER_I = 105, LOWER_N = 110, LOWER_O = 111, LOWER_F = 102;
/** Bare addresses at or above this are kernel-half (x86-64 canonical split). */
const USER_LIMIT = 0x800000000000;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
/** How much of a malformed line a warning shows. */
const SHOWN_BYTES = 120;

const hexValue = (c: number): number => (c <= 57 ? c - 48 : (c | 32) - 87);
const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
/** " in section .text" and its LF as four little-endian int32 words and a uint16; TEXT_TAIL_BYTES: up to the LF. */
const TEXT_TAIL_TEXT = Buffer.from(' in section .text\n', 'latin1');
const TEXT_TAIL = [0, 4, 8, 12].map((k) => TEXT_TAIL_TEXT.readInt32LE(k)).concat(TEXT_TAIL_TEXT.readUInt16LE(16));
const TEXT_TAIL_BYTES = 17;
/** "section", which must follow "in" and blanks. */
const SECTION = [115, 101, 99, 116, 105, 111, 110];

export class TraceParser {
  readonly counts: ParseCounts = emptyCounts();
  /** The unfinished last line of the previous chunk: capacity maxLineBytes + 1 (room for its LF). */
  private carry: Buffer | null = null;
  private carryLen = 0;
  /** While a line longer than maxLineBytes is being skipped: its first bytes, for the warning. */
  private longHead: Buffer | null = null;
  private lastT = -Infinity;
  private firstT = NaN;
  /** A DataView over the chunk being parsed. */
  private view: DataView = new DataView(new ArrayBuffer(0));
  /** Lines the fast path parsed (the rest went through parseLine). */
  fastLines = 0;
  /**
   * The WebAssembly fast path (shared by the parsers of one FunctionTable), or null to parse every line
   * here: asked not to, or where the module cannot run (a CPU without SSE4.1: line-scanner.ts).
   */
  private readonly scanner: LineScanner | null;

  /**
   * @param maxLineBytes longest line read, in bytes before its LF (docs/trace-format.md); a longer line is
   *   reported once as LINE_TOO_LONG and its bytes past the limit are only scanned for the next LF.
   */
  constructor(
    readonly functions: FunctionTable,
    private readonly visitor: TraceVisitor,
    private readonly onMalformed: MalformedHandler,
    readonly maxLineBytes: number = MAX_LINE_BYTES,
    /** false: parse every line in TypeScript (the reference the fast path is tested against). */
    fastPath = true,
  ) {
    this.scanner = fastPath ? scannerFor(functions) : null;
  }

  /**
   * Continues a trace whose earlier lines another parser read (the parallel reader's ranges): `t` is the
   * last timestamp before this parser's first line, so time going backwards across the seam is counted.
   */
  resumeAfter(t: number): void {
    this.lastT = t;
  }

  /** The timestamp of the last event parsed (-Infinity before the first). */
  get lastTime(): number {
    return this.lastT;
  }

  /** The timestamp of the first event parsed (NaN before it). */
  get firstTime(): number {
    return this.firstT;
  }

  /**
   * Feeds the next chunk of the input. Work is linear in the chunk's bytes whatever the line lengths: an
   * unfinished line is copied into a buffer of fixed capacity, and one that outgrows it is skipped.
   */
  push(chunk: Buffer): void {
    let start = 0;
    if (this.longHead) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) return;
      this.endLongLine();
      start = nl + 1;
    } else if (this.carryLen > 0) {
      const nl = chunk.indexOf(LF);
      const rest = nl < 0 ? chunk.length : nl;
      if (this.carryLen + rest > this.maxLineBytes) {
        this.longHead = Buffer.concat([this.carry!.subarray(0, Math.min(this.carryLen, SHOWN_BYTES)), chunk.subarray(0, SHOWN_BYTES)]);
        this.carryLen = 0;
        if (nl < 0) return;
        this.endLongLine();
      } else {
        chunk.copy(this.carry!, this.carryLen, 0, rest + (nl < 0 ? 0 : 1));
        this.carryLen += rest;
        if (nl < 0) return;
        const len = this.carryLen + 1;
        this.carryLen = 0;
        this.parseLines(this.carry!, 0, len);
      }
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(LF);
    if (last >= start) this.parseLines(chunk, start, last + 1);
    const tailStart = Math.max(start, last + 1);
    const tail = chunk.length - tailStart;
    if (tail > this.maxLineBytes) {
      this.longHead = Buffer.from(chunk.subarray(tailStart, tailStart + SHOWN_BYTES));
    } else if (tail > 0) {
      // Copy the tail: the caller may reuse the chunk's memory for its next read.
      this.carry ??= Buffer.allocUnsafe(this.maxLineBytes + 1);
      chunk.copy(this.carry, 0, tailStart);
      this.carryLen = tail;
    }
  }

  /**
   * A buffer of `size` bytes for reading the next chunk of a trace that parsers over `functions` will
   * parse: inside their fast path's memory when it fits, so that the chunk is scanned without a copy; it is
   * reused by the next call, so a chunk must be pushed before the next read.
   */
  static readBuffer(functions: FunctionTable, size: number): Buffer {
    const region = scannerFor(functions)?.readRegion;
    return region && size <= region.length ? region.subarray(0, size) : Buffer.allocUnsafe(size);
  }

  /** Ends the input: a last line without a newline is still a line. */
  end(): void {
    if (this.longHead) this.endLongLine();
    if (this.carryLen > 0) {
      // Give the last line its newline: every line the parser sees then ends in LF, which is what
      // lets its scans run without bounds checks (LF stops each of them).
      const len = this.carryLen + 1;
      this.carry![len - 1] = LF;
      this.carryLen = 0;
      this.parseLines(this.carry!, 0, len);
    }
  }

  /**
   * Parses the complete lines in buf[start, end), which ends with a newline: through the fast path when
   * there is one, which stops at each line it does not parse itself; parseLine parses that one.
   */
  private parseLines(buf: Buffer, start: number, end: number): void {
    // One DataView per chunk: the name lookup compares four bytes at a time through it (functions.ts).
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const sc = this.scanner;
    let s = start;
    if (sc === null) {
      while (s < end) s = this.parseLine(buf, s);
      return;
    }
    if (buf.buffer === sc.bytes.buffer) {
      // Read straight into the fast path's memory (readBuffer): scanned where it lies.
      this.scanPiece(sc, buf, s, end, buf.byteOffset);
      return;
    }
    while (s < end) {
      // A piece that fits the fast path's copy region and ends with an LF.
      let pieceEnd = end;
      if (end - s > sc.copyBytes) {
        pieceEnd = buf.lastIndexOf(LF, s + sc.copyBytes - 1) + 1;
        if (pieceEnd <= s) {
          s = this.parseLine(buf, s);
          continue;
        }
      }
      sc.copyRegion.set(buf.subarray(s, pieceEnd));
      this.scanPiece(sc, buf, s, pieceEnd, sc.inputBase - s);
      s = pieceEnd;
    }
  }

  /**
   * Parses the lines of buf[start, end) (ending with an LF), which are also in the fast path's memory at
   * offsets `base` higher: the fast path scans them and stops at each line parseLine must parse.
   */
  private scanPiece(sc: LineScanner, buf: Buffer, start: number, end: number, base: number): void {
    let m = start + base;
    const memEnd = end + base;
    while (m < memEnd) {
      const n = sc.scan(m, memEnd, this.maxLineBytes);
      if (n > 0) this.deliver(sc, n);
      const status = sc.status;
      m = status[0]!;
      const why = status[1]!;
      if (why === STOP_END || why === STOP_FULL) continue;
      if (why === STOP_NEW_NAME) {
        const hash = status[2]!, nameStart = status[3]!, nameEnd = status[4]!;
        const id = this.functions.intern(sc.bytes, nameStart, nameEnd);
        if (sc.learn(nameStart, nameEnd, hash, id)) continue;
      }
      // A line the fast path does not parse (or a name its cache has no room for): parsed here.
      m = this.parseLine(buf, m - base) + base;
    }
  }

  /** Counts the fast path's n events as parseLine counts its own, and hands them to the visitor. */
  private deliver(sc: LineScanner, n: number): void {
    const counts = this.counts;
    const visitor = this.visitor;
    this.fastLines += n;
    const time = sc.time, fn = sc.fn, offset = sc.offset, addr = sc.addr;
    let lastT = this.lastT;
    for (let k = 0; k < n; k++) {
      const t = time[k]!;
      const line = ++counts.lines;
      if (t < lastT && counts.backwards++ === 0) counts.firstBackwardsLine = line;
      lastT = t;
      if (counts.events++ === 0) {
        counts.firstEventLine = line;
        this.firstT = t;
      }
      visitor.event(t, fn[k]!, offset[k]!, addr[k]!);
    }
    this.lastT = lastT;
  }

  /**
   * Parses the line that starts at buf[s] and returns where the next one starts. The line ends in LF
   * (push and end see to that), so every scan below stops at the LF at the latest, and no scan needs a
   * bounds check. This is the hot loop of every analyzer: one pass over the bytes, the name hashed while
   * it is scanned, no allocation, no per-line native call. The grammar it follows, and the code of each
   * way a line can fail it, are in docs/trace-format.md.
   */
  private parseLine(buf: Buffer, s: number): number {
    const counts = this.counts;
    counts.lines++;
    let i = s;
    let c = buf[i]!;
    while (c === SPACE || c === TAB) c = buf[++i]!;
    if (c === CR && buf[i + 1] === LF) c = buf[++i]!;
    if (c === LF) {
      if (i - s > this.maxLineBytes) return this.malformed(buf, s, i, LINE_TOO_LONG);
      counts.blank++;
      return i + 1;
    }
    if (c === HASH) {
      const nl = buf.indexOf(LF, i);
      if (nl - s > this.maxLineBytes) return this.malformed(buf, s, nl, LINE_TOO_LONG);
      counts.comments++;
      return nl + 1;
    }

    // Timestamp: digits [. digits], parsed without building a string, then a blank.
    let whole = 0, frac = 0, fracDigits = 0;
    const tStart = i;
    while (c >= 48 && c <= 57) {
      whole = whole * 10 + (c - 48);
      c = buf[++i]!;
    }
    if (i === tStart) return this.malformed(buf, s, i, BAD_TIMESTAMP);
    if (c === DOT) {
      c = buf[++i]!;
      const fracStart = i;
      while (c >= 48 && c <= 57) {
        // Digits past 22 add nothing a double can hold.
        if (fracDigits < 22) { frac = frac * 10 + (c - 48); fracDigits++; }
        c = buf[++i]!;
      }
      if (i === fracStart) return this.malformed(buf, s, i, BAD_TIMESTAMP);
    }
    if (c !== SPACE && c !== TAB && c !== LF && !(c === CR && buf[i + 1] === LF)) return this.malformed(buf, s, i, BAD_TIMESTAMP);
    const t = fracDigits ? whole + frac / POW10[fracDigits]! : whole;
    // 400 digits make Infinity; past 2^53 whole microseconds are no longer exact.
    if (!(t <= MAX_TIMESTAMP)) return this.malformed(buf, s, i, TIMESTAMP_RANGE);
    while (c === SPACE || c === TAB) c = buf[++i]!;

    // The symbol or address token, FNV-1a hashed as it is scanned.
    const nameStart = i;
    let h = 0x811c9dc5;
    while (c > SPACE && c < 127) {
      h = Math.imul(h ^ c, 0x01000193);
      c = buf[++i]!;
    }
    const nameEnd = i;
    if (c !== SPACE && c !== TAB && c !== LF && !(c === CR && buf[i + 1] === LF)) return this.malformed(buf, s, i, BAD_SYMBOL);
    if (nameEnd === nameStart) return this.malformed(buf, s, i, MISSING_SYMBOL);
    // Most lines end in " in section .text": compared four bytes at a time, it takes the place of the scan
    // below (which accepts exactly such lines too) without a branch per byte.
    let tailed = false;
    if (c === SPACE && this.textTailAt(buf, i)) {
      i += TEXT_TAIL_BYTES;
      c = LF;
      tailed = true;
    }
    while (c === SPACE || c === TAB) c = buf[++i]!;
    if (c === CR && buf[i + 1] === LF) c = buf[++i]!;

    let offset = 0;
    const alone = c === LF && !tailed;
    if (!alone) {
      // After the name and its blanks: "+ <decimal offset>" (gdb's `info symbol` form) and/or "in section <name>".
      if (c === PLUS) {
        c = buf[++i]!;
        while (c === SPACE || c === TAB) c = buf[++i]!;
        const offStart = i;
        while (c >= 48 && c <= 57) {
          offset = offset * 10 + (c - 48);
          c = buf[++i]!;
        }
        if (i === offStart || (c !== SPACE && c !== TAB && c !== LF && !(c === CR && buf[i + 1] === LF))) {
          return this.malformed(buf, s, i, BAD_OFFSET);
        }
        if (offset > MAX_OFFSET) return this.malformed(buf, s, i, OFFSET_RANGE);
        if (c === SPACE && this.textTailAt(buf, i)) {
          i += TEXT_TAIL_BYTES;
          c = LF;
        }
        while (c === SPACE || c === TAB) c = buf[++i]!;
        if (c === CR && buf[i + 1] === LF) c = buf[++i]!;
      }
      if (c !== LF) {
        // "in", a blank (or the end), blanks, "section", blanks, the section name, blanks, the end.
        if (c !== LOWER_I || buf[i + 1] !== LOWER_N) return this.malformed(buf, s, i, UNEXPECTED_TEXT);
        c = buf[(i += 2)]!;
        if (c !== SPACE && c !== TAB && c !== LF && !(c === CR && buf[i + 1] === LF)) return this.malformed(buf, s, i, UNEXPECTED_TEXT);
        while (c === SPACE || c === TAB) c = buf[++i]!;
        // A mismatch stops the comparison at the LF at the latest.
        for (let k = 0; k < 7; k++) if (buf[i + k] !== SECTION[k]) return this.malformed(buf, s, i, MISSING_SECTION);
        i += 7;
        c = buf[i]!;
        if (c !== SPACE && c !== TAB) return this.malformed(buf, s, i, MISSING_SECTION);
        while (c === SPACE || c === TAB) c = buf[++i]!;
        const sectionStart = i;
        while (c > SPACE && c < 127) c = buf[++i]!;
        if (i === sectionStart) return this.malformed(buf, s, i, MISSING_SECTION);
        const sectionEnd = i;
        while (c === SPACE || c === TAB) c = buf[++i]!;
        if (c === LOWER_O && i > sectionEnd && buf[i + 1] === LOWER_F && (buf[i + 2] === SPACE || buf[i + 2] === TAB)) {
          // gdb names the object file when it has several: "in section .text of /build/vmlinux" (and
          // src/symbols/symbol-table.ts a module: "of ext4"). The symbol is what counts; the file is skipped.
          c = buf[(i += 2)]!;
          while (c === SPACE || c === TAB) c = buf[++i]!;
          const objStart = i;
          while (c > SPACE && c < 127) c = buf[++i]!;
          if (i === objStart) return this.malformed(buf, s, i, UNEXPECTED_TEXT);
          while (c === SPACE || c === TAB) c = buf[++i]!;
        }
        if (c === CR && buf[i + 1] === LF) c = buf[++i]!;
        if (c !== LF) return this.malformed(buf, s, i, UNEXPECTED_TEXT);
      }
    }
    // i is at the LF: the whole line has been scanned, so its length is known before anything is kept.
    if (i - s > this.maxLineBytes) return this.malformed(buf, s, i, LINE_TOO_LONG);

    let fn: number, addr = 0;
    if (alone && nameEnd - nameStart <= 16 && this.allHex(buf, nameStart, nameEnd)) {
      // A bare address. Parsed as a double: exact for user addresses, close enough to classify kernel ones.
      for (let k = nameStart; k < nameEnd; k++) addr = addr * 16 + hexValue(buf[k]!);
      fn = addr < USER_LIMIT ? USER : UNRESOLVED;
      offset = -1;
    } else {
      // A name, with or without offset and section (tools other than gdb leave the section out).
      fn = this.functions.internHashed(buf, nameStart, nameEnd, h, this.view);
    }

    if (t < this.lastT && counts.backwards++ === 0) counts.firstBackwardsLine = counts.lines;
    this.lastT = t;
    if (counts.events++ === 0) {
      counts.firstEventLine = counts.lines;
      this.firstT = t;
    }
    this.visitor.event(t, fn, offset, addr);
    return i + 1;
  }

  /** Whether buf[i..] is " in section .text" and an LF (a CRLF line takes the byte-by-byte path). */
  private textTailAt(buf: Buffer, i: number): boolean {
    const v = this.view;
    return i + TEXT_TAIL_BYTES < buf.length && v.getInt32(i, true) === TEXT_TAIL[0] && v.getInt32(i + 4, true) === TEXT_TAIL[1] &&
      v.getInt32(i + 8, true) === TEXT_TAIL[2] && v.getInt32(i + 12, true) === TEXT_TAIL[3] && v.getUint16(i + 16, true) === TEXT_TAIL[4];
  }

  private allHex(buf: Buffer, start: number, end: number): boolean {
    for (let k = start; k < end; k++) if (!isHex(buf[k]!)) return false;
    return true;
  }

  /**
   * Counts and reports the malformed line that starts at s (the parse stopped at i); returns where the
   * next line starts. A line over the length limit is LINE_TOO_LONG whatever else is wrong with it, as it
   * is when it arrives across chunks and is never parsed.
   */
  private malformed(buf: Buffer, s: number, i: number, code: MalformedCode): number {
    const nl = buf.indexOf(LF, i);
    if (nl - s > this.maxLineBytes) code = LINE_TOO_LONG;
    let e = nl;
    if (e > s && buf[e - 1] === CR) e--;
    return this.report(buf.toString('latin1', s, Math.min(e, s + SHOWN_BYTES)), code, nl + 1);
  }

  /** The end of a line that outgrew maxLineBytes across chunks: one report, from the bytes kept. */
  private endLongLine(): void {
    const head = this.longHead!;
    this.longHead = null;
    this.counts.lines++;
    this.report(head.toString('latin1', 0, Math.min(head.length, SHOWN_BYTES)), LINE_TOO_LONG, 0);
  }

  private report(text: string, code: MalformedCode, next: number): number {
    this.counts.malformed++;
    this.counts.malformedByCode[code]!++;
    this.onMalformed(this.counts.lines, text, code);
    return next;
  }
}
