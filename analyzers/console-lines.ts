/**
 * Console text, in chunks, into timed messages: what people paste from serial consoles, dmesg, journals,
 * CI logs, mail threads and bug trackers, and our own console.log. docs/console-analyzers.md lists the forms.
 *
 * Two clocks, decided per file, not per line:
 *   host stamps   `12634512.3 <text>`: our console.log (microseconds since the VM was created, stamped when
 *                 the line's newline reached the host). A line that merely starts with digits is NOT a host
 *                 stamp unless the whole file is in this form: decided from the first DECIDE_LINES non-blank
 *                 lines (every one must start with `<number> `), or said by the caller (`hostStamps: true`
 *                 for a file it wrote itself).
 *   kernel stamps `[    0.512345]`: printk's time, wherever it is on the line (after a syslog or journal
 *                 prefix, a wall clock, a host counter, an indent, a raw-dmesg level `<7>`), with an optional
 *                 caller id `[    T1]` after it. A line with no stamp (printk time off, userspace) is a
 *                 message with an unknown kernel time, not an error.
 *
 * Lines put back together:
 *   - split by another CPU's output: `[ 0.61] initcall foo returned 0 af[ 0.62] calling bar @ 1` then
 *     `ter 20 usecs`: a stamp in the middle of a line starts a new message, the text before it is kept as an
 *     interrupted fragment, and the next line, if it has no stamp at all, is its rest;
 *   - wrapped by a terminal or mail client: an unstamped line right after an initcall_debug line cut before
 *     its figures (`initcall foo returned 0` / `after 0 usecs`) is its tail. Only known-incomplete kernel
 *     lines are completed this way: an unstamped line after any other message is a message of its own
 *     (userspace output is unstamped too).
 *
 * Pure: the caller reads the file and pushes Buffers; nothing here holds more than the first DECIDE_LINES
 * lines (while deciding the file's form) and one line.
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

/** How many non-blank lines decide whether the file is in the `<t_us> <text>` form. */
export const DECIDE_LINES = 64;

export interface ConsoleParserOptions {
  /**
   * true: every line starts with a host stamp `<t_us> ` (our console.log; a line without one has none);
   * false: no host stamps at all; 'auto' (default): decided from the first DECIDE_LINES non-blank lines.
   */
  hostStamps?: boolean | 'auto';
}

/** What the reader found in a file, for a one-line report per file. */
export interface ConsoleCounts {
  lines: number;
  /** Lines with a host stamp (0 unless the file is in the `<t_us> <text>` form). */
  hostStamped: number;
  /** Lines with a kernel `[seconds]` stamp (anywhere on the line). */
  kernelStamped: number;
  messages: number;
  /** Rests of messages cut by another CPU's output, joined back. */
  joined: number;
  /** Wrapped tails of initcall_debug lines, joined back; `firstWrappedLine` is the first such line. */
  wrapped: number;
  firstWrappedLine: number;
  /** Lines with text before their kernel stamp (syslog, journal, CI, wall clock, indent), taken off. */
  prefixed: number;
  /** Lines with a syslog/journal `host kernel:` prefix and no kernel stamp: the kernel's, time unknown. */
  syslogKernel: number;
  /** Stamps that are not finite numbers or past 2^53 us (hostile or corrupt input), ignored; first line. */
  badStamps: number;
  firstBadStampLine: number;
  /** Host stamps earlier than the host stamp before them; first line where it happened. */
  hostBackwards: number;
  firstHostBackwardsLine: number;
}

/** The file's clocks, once decided. */
export type ConsoleForm = 'host-stamped' | 'plain';

const HOST_STAMP = /^(\d+(?:\.\d+)?)(?: |$)/;
// `[    0.512345]`, optionally `[    T1]`/`[    C0]` (CONFIG_PRINTK_CALLER) after it, then one space.
const DMESG_STAMP_SRC = String.raw`\[ *(\d+)\.(\d{1,9})\](?:\[ *[TC]\d+\])? ?`;
const ANY_DMESG = new RegExp(DMESG_STAMP_SRC, 'g');
/** Before a leading stamp: blanks and a raw-dmesg level (`<7>`); anything else before it is a prefix. */
const LEVEL_OR_BLANK = /^\s*(?:<\d+>)?\s*$/;
/**
 * syslog / `journalctl` short formats: `Feb 22 19:49:06 host ident[pid]: ` (also with fractional seconds,
 * short-iso `2024-02-22T19:49:06+0100 host ident: `). Group 1 is the ident.
 */
const SYSLOG_PREFIX = /^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) \S+ ([^\s:[]+)(?:\[\d+\])?: /;
/** A prefix ends in a blank or a separator before the stamp; text glued to it is a cut message instead. */
const PREFIX_END = /[\s|:"'>]$/;
/** journalctl -o short-monotonic puts `host kernel: ` after the stamp. */
const KERNEL_IDENT_AFTER_STAMP = /^\S+ kernel: /;
/**
 * initcall_debug lines cut before their figures (init/main.c, drivers/base/dd.c): a terminal or mail client
 * wrapped them, and the next unstamped line is their tail.
 */
const INCOMPLETE = /^(?:initcall \S+(?: \[\S+\])? returned(?: -?\d+)?|calling {1,2}\S+(?: \[\S+\])?(?: @)?|probe of \S+ returned(?: -?\d+)?(?: after)?|initcall \S+(?: \[\S+\])? returned -?\d+ after(?: \d+)?)\s*$/;
/** Largest microsecond count taken as a time: beyond it a double no longer counts single microseconds. */
const MAX_US = Number.MAX_SAFE_INTEGER;

/** `[sec.frac]` to microseconds, from the digits (no float rounding of the seconds); NaN when absurd. */
function kernelMicros(sec: string, frac: string): number {
  const us = Number((frac + '000000').slice(0, 6));
  const sub = frac.length > 6 ? Number('0.' + frac.slice(6)) : 0;
  const v = Number(sec) * 1_000_000 + us + sub;
  return v <= MAX_US ? v : NaN;
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
  /** The last message, held back one line while it is a known-incomplete initcall_debug line. */
  private open: Piece | null = null;
  /** Lines waiting for the decision on the file's form. */
  private pending: { text: string; lineNo: number }[] | null = [];
  private pendingNonBlank = 0;
  private hostForm: boolean | null;
  private lastHostUs = -Infinity;
  /** Counters for the caller's summary (ConsoleCounts). */
  readonly counts: ConsoleCounts = {
    lines: 0, hostStamped: 0, kernelStamped: 0, messages: 0, joined: 0, wrapped: 0, firstWrappedLine: 0,
    prefixed: 0, syslogKernel: 0, badStamps: 0, firstBadStampLine: 0, hostBackwards: 0, firstHostBackwardsLine: 0,
  };

  constructor(private readonly visitor: ConsoleVisitor, options: ConsoleParserOptions = {}) {
    this.splitter = new LineSplitter((text, lineNo) => this.onRawLine(text, lineNo));
    const h = options.hostStamps ?? 'auto';
    this.hostForm = h === 'auto' ? null : h;
    if (this.hostForm !== null) this.pending = null;
  }

  /** 'host-stamped' when lines carry `<t_us> ` host stamps; null while still undecided (before end()). */
  get form(): ConsoleForm | null {
    return this.hostForm === null ? null : this.hostForm ? 'host-stamped' : 'plain';
  }

  push(chunk: Buffer): void {
    this.splitter.push(chunk);
  }

  end(): void {
    this.splitter.end();
    if (this.pending) this.decide();
    this.release();
    this.flushOpen();
  }

  private onRawLine(raw: string, lineNo: number): void {
    const pending = this.pending;
    if (!pending) {
      this.onLine(raw, lineNo);
      return;
    }
    pending.push({ text: raw, lineNo });
    if (raw.trim() !== '' && ++this.pendingNonBlank >= DECIDE_LINES) this.decide();
  }

  /** Every non-blank line of the window in `<t_us> <text>` form: host stamps; anything else: none. */
  private decide(): void {
    const pending = this.pending!;
    this.pending = null;
    this.hostForm = isHostStampedForm(pending.map((p) => p.text));
    for (const p of pending) this.onLine(p.text, p.lineNo);
  }

  private onLine(raw: string, lineNo: number): void {
    const counts = this.counts;
    counts.lines++;
    let hostUs: number | null = null;
    let text = raw;
    if (this.hostForm) {
      const host = HOST_STAMP.exec(raw);
      if (host) {
        text = raw.slice(host[0].length);
        const v = Number(host[1]);
        if (v <= MAX_US) {
          hostUs = v;
          counts.hostStamped++;
          if (v < this.lastHostUs && counts.hostBackwards++ === 0) counts.firstHostBackwardsLine = lineNo;
          this.lastHostUs = v;
        } else this.badStamp(lineNo);
      }
    }
    this.visitor.line?.({ lineNo, hostUs, text, bytes: Buffer.byteLength(text) + 1 });
    if (!this.visitor.message) {
      ANY_DMESG.lastIndex = 0;
      if (ANY_DMESG.test(text)) counts.kernelStamped++;
      return;
    }

    if (text.includes('\x1b')) text = text.replace(ESCAPES, '');
    ANY_DMESG.lastIndex = 0;
    const first = ANY_DMESG.exec(text);
    if (!first && this.held.length > 1) {
      // The rest of the last message that another CPU's output cut short.
      const cut = this.held[this.held.length - 2]!;
      cut.text += text;
      cut.hostUs = hostUs;
      counts.joined++;
      this.release();
      return;
    }
    this.release();
    if (!first && this.open && hostUs === null && /^[a-z0-9@-]/.test(text)) {
      // The wrapped tail of an initcall_debug line cut before its figures.
      this.open.text += ' ' + text.trim();
      if (counts.wrapped++ === 0) counts.firstWrappedLine = lineNo;
      if (!INCOMPLETE.test(this.open.text)) this.flushOpen();
      return;
    }
    this.flushOpen();

    let kernelUs: number | null = null;
    let from = 0;
    const pieces: Piece[] = [];
    if (first) {
      counts.kernelStamped++;
      const before = text.slice(0, first.index);
      if (LEVEL_OR_BLANK.test(before) || PREFIX_END.test(before)) {
        // A leading stamp, or one after a prefix (syslog, wall clock, CI, host counter, indent): dropped.
        if (!LEVEL_OR_BLANK.test(before)) counts.prefixed++;
        kernelUs = this.stampOf(first, lineNo);
        from = first.index + first[0].length;
        // journalctl -o short-monotonic: `[  623.410732] host kernel: msg`.
        const ident = KERNEL_IDENT_AFTER_STAMP.exec(text.slice(from));
        if (ident) from += ident[0].length;
      }
      // Otherwise text glued to the stamp (`BOOT_TIME:mou[ 3.24] ...`): an unstamped message that kernel
      // output cut short; it stays a piece of its own, waiting for its rest.
    } else {
      const sys = SYSLOG_PREFIX.exec(text);
      if (sys) {
        counts.prefixed++;
        if (sys[1] === 'kernel') counts.syslogKernel++;
        from = sys[0].length;
      }
    }

    // Split at dmesg stamps further on in the line.
    ANY_DMESG.lastIndex = from;
    for (let m = ANY_DMESG.exec(text); m; m = ANY_DMESG.exec(text)) {
      if (m.index > from || kernelUs !== null) pieces.push({ lineNo, hostUs, kernelUs, text: text.slice(from, m.index) });
      kernelUs = this.stampOf(m, lineNo);
      from = m.index + m[0].length;
    }
    pieces.push({ lineNo, hostUs, kernelUs, text: text.slice(from) });
    if (pieces.length > 1) this.held = pieces;
    else if (first && INCOMPLETE.test(pieces[0]!.text)) this.open = pieces[0]!;
    else this.emit(pieces[0]!);
  }

  private stampOf(m: RegExpExecArray, lineNo: number): number | null {
    const v = kernelMicros(m[1]!, m[2]!);
    if (Number.isNaN(v)) {
      this.badStamp(lineNo);
      return null;
    }
    return v;
  }

  private badStamp(lineNo: number): void {
    if (this.counts.badStamps++ === 0) this.counts.firstBadStampLine = lineNo;
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    for (const p of held) this.emit(p);
  }

  private flushOpen(): void {
    const open = this.open;
    this.open = null;
    if (open) this.emit(open);
  }

  private emit(m: ConsoleMessage): void {
    this.counts.messages++;
    this.visitor.message!(m);
  }
}

/**
 * Whether lines (without newlines) are in the `<t_us> <text>` form of our console.log: every non-blank one starts
 * with a host stamp, and there is at least one. The parser decides a file from its first DECIDE_LINES non-blank lines.
 */
export function isHostStampedForm(lines: readonly string[]): boolean {
  let stamped = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    if (!HOST_STAMP.test(line)) return false;
    stamped++;
  }
  return stamped > 0;
}

/**
 * One line describing a file's clocks, for messages: "host timestamps on 120 of 130 lines, kernel [seconds]
 * stamps on 118", "no host timestamps; kernel [seconds] stamps on 2 of 3 lines", "no timestamps at all".
 */
export function describeClocks(c: ConsoleCounts): string {
  const parts: string[] = [];
  parts.push(c.hostStamped > 0 ? `host timestamps on ${c.hostStamped} of ${c.lines} lines` : 'no host timestamps');
  parts.push(c.kernelStamped > 0 ? `kernel [seconds] stamps on ${c.kernelStamped} of ${c.lines} lines` : 'no kernel [seconds] stamps');
  if (c.prefixed > 0) parts.push(`text before the stamp (syslog, journal, CI prefix) on ${c.prefixed}`);
  return parts.join('; ');
}
