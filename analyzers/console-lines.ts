/**
 * Console text, in chunks, into timed messages. Three line shapes are recognised per line:
 *   our console.log / QEMU host stamps   `12634512.3 [    0.512345] calling  pci_init+0x0/0x40 @ 1`
 *   plain dmesg                          `[    0.512345] calling  pci_init+0x0/0x40 @ 1`
 *   host stamp only (firmware, /init)    `12634800.0 BOOT_TIME:ready:1834000000`
 * A line may carry both clocks: `hostUs` is when its newline reached the host, `kernelUs` is printk's own time.
 * Also accepted: a raw-dmesg level prefix (`<7>[ 0.5] ...`) and a printk caller id (`[ 0.5][    T1] ...`).
 *
 * Lines split by another CPU's output, e.g.
 *   [    0.61] initcall foo+0x0/0x20 returned 0 af[    0.62] calling  bar+0x0/0x10 @ 1
 *   ter 20 usecs
 * are put back together: a dmesg stamp in the middle of a line starts a new message, the text before it
 * is kept as an interrupted fragment, and the next line, if it has no dmesg stamp of its own, is taken
 * as that fragment's rest. Anything else is left as it came.
 *
 * Pure: the caller reads the file and pushes Buffers; nothing here holds more than one line.
 */

/** One physical line of the console. */
export interface ConsoleLine {
  /** 1-based line number in the input. */
  lineNo: number;
  /** Host microseconds at the line's newline, or null when the line has no host stamp. */
  hostUs: number | null;
  /** The line as the guest sent it (host stamp removed, CR removed). */
  text: string;
  /** Bytes the guest sent for it: UTF-8 length of `text` plus the newline. */
  bytes: number;
}

/** One kernel or userspace message, after stamps are taken off and split lines are joined. */
export interface ConsoleMessage {
  /** Line number where the message started. */
  lineNo: number;
  hostUs: number | null;
  /** printk's time in microseconds (from `[ sec.usec]`), or null. */
  kernelUs: number | null;
  /** The message without stamps. */
  text: string;
}

export interface ConsoleVisitor {
  line?(line: ConsoleLine): void;
  message?(message: ConsoleMessage): void;
}

const NL = 0x0a;
/** A line longer than this is cut, so a file without newlines cannot grow memory without bound. */
export const MAX_LINE_BYTES = 1 << 20;

/** Splits Buffers into lines (without '\n' or a trailing '\r'), carrying the unfinished tail between chunks. */
export class LineSplitter {
  private tail: Buffer[] = [];
  private tailLen = 0;
  lines = 0;

  constructor(private readonly onLine: (text: string, lineNo: number) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) break;
      let piece = chunk.subarray(start, nl);
      if (this.tailLen > 0) {
        this.tail.push(piece);
        piece = Buffer.concat(this.tail, this.tailLen + piece.length);
        this.tail = [];
        this.tailLen = 0;
      }
      this.emit(piece);
      start = nl + 1;
    }
    if (start < chunk.length) {
      // Copy: the caller may reuse its read buffer.
      const rest = Buffer.from(chunk.subarray(start));
      this.tail.push(rest);
      this.tailLen += rest.length;
      if (this.tailLen >= MAX_LINE_BYTES) this.end();
    }
  }

  /** The last line of a truncated file has no newline: it still counts. */
  end(): void {
    if (this.tailLen === 0) return;
    const piece = Buffer.concat(this.tail, this.tailLen);
    this.tail = [];
    this.tailLen = 0;
    this.emit(piece);
  }

  private emit(piece: Buffer): void {
    const len = piece.length > 0 && piece[piece.length - 1] === 0x0d ? piece.length - 1 : piece.length;
    this.onLine(piece.toString('utf8', 0, len), ++this.lines);
  }
}

const HOST_STAMP = /^(\d+(?:\.\d+)?) /;
// `[    0.512345]`, optionally `[    T1]`/`[    C0]` (CONFIG_PRINTK_CALLER) after it, then one space.
const DMESG_STAMP_SRC = String.raw`\[ *(\d+)\.(\d{1,9})\](?:\[ *[TC]\d+\])? ?`;
const LEADING_DMESG = new RegExp(`^(?:<\\d+>)?${DMESG_STAMP_SRC}`);
const ANY_DMESG = new RegExp(DMESG_STAMP_SRC, 'g');

/** `[sec.frac]` to microseconds, from the digits (no float rounding of the seconds). */
function kernelMicros(sec: string, frac: string): number {
  const us = Number((frac + '000000').slice(0, 6));
  const sub = frac.length > 6 ? Number('0.' + frac.slice(6)) : 0;
  return Number(sec) * 1_000_000 + us + sub;
}

interface Piece {
  lineNo: number;
  hostUs: number | null;
  kernelUs: number | null;
  text: string;
}

// ESC c (reset), CSI sequences like ESC [ ? 7 l and ESC [ 2 J: SeaBIOS and the kernel clear the terminal.
const ESCAPES = /\x1b(?:\[[0-9;?]*[ -\/]*[@-~]|[@-Z\\-_c])/g;

/** Turns lines into ConsoleLine and ConsoleMessage events for a visitor. */
export class ConsoleParser {
  private readonly splitter: LineSplitter;
  /**
   * The pieces of the last line that had a dmesg stamp inside it, in order; all but the last were cut short
   * by another CPU's output. Held back one line, so the rest of a cut message can still be joined to it and
   * every message still comes out in the order it started.
   */
  private held: Piece[] = [];
  /** Counters for the caller's summary. */
  readonly counts = { lines: 0, hostStamped: 0, kernelStamped: 0, messages: 0, joined: 0 };

  constructor(private readonly visitor: ConsoleVisitor) {
    this.splitter = new LineSplitter((text, lineNo) => this.onLine(text, lineNo));
  }

  push(chunk: Buffer): void {
    this.splitter.push(chunk);
  }

  end(): void {
    this.splitter.end();
    this.release();
  }

  private onLine(raw: string, lineNo: number): void {
    this.counts.lines++;
    let hostUs: number | null = null;
    let text = raw;
    const host = HOST_STAMP.exec(raw);
    if (host) {
      hostUs = Number(host[1]);
      text = raw.slice(host[0].length);
      this.counts.hostStamped++;
    }
    this.visitor.line?.({ lineNo, hostUs, text, bytes: Buffer.byteLength(text) + 1 });
    if (!this.visitor.message) {
      if (LEADING_DMESG.test(text)) this.counts.kernelStamped++;
      return;
    }

    if (text.includes('\x1b')) text = text.replace(ESCAPES, '');
    const lead = LEADING_DMESG.exec(text);
    if (!lead && this.held.length > 1) {
      // The rest of the last message that another CPU's output cut short.
      const cut = this.held[this.held.length - 2]!;
      cut.text += text;
      cut.hostUs = hostUs;
      this.counts.joined++;
      this.release();
      return;
    }
    this.release();
    if (lead) this.counts.kernelStamped++;

    // Split at dmesg stamps inside the line.
    const pieces: Piece[] = [];
    let kernelUs = lead ? kernelMicros(lead[1]!, lead[2]!) : null;
    let from = lead ? lead[0].length : 0;
    ANY_DMESG.lastIndex = from;
    for (let m = ANY_DMESG.exec(text); m; m = ANY_DMESG.exec(text)) {
      if (m.index > from || kernelUs !== null) pieces.push({ lineNo, hostUs, kernelUs, text: text.slice(from, m.index) });
      kernelUs = kernelMicros(m[1]!, m[2]!);
      from = m.index + m[0].length;
    }
    pieces.push({ lineNo, hostUs, kernelUs, text: text.slice(from) });
    if (pieces.length > 1) this.held = pieces;
    else this.emit(pieces[0]!);
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    for (const p of held) this.emit(p);
  }

  private emit(m: ConsoleMessage): void {
    this.counts.messages++;
    this.visitor.message!(m);
  }
}
