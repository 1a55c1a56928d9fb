/**
 * trace.log output for the single-step loop: one line per step in the trace format
 * (docs/trace-format.md):
 *   `12.5 start_kernel + 4 in section .text`     (--clock host: microseconds since VM creation, 1 decimal)
 *   `1234 work_small in section .text`             (--clock steps: the instruction index)
 *   `400012 400012`-style bare hex for addresses no symbol covers.
 * Lines are built in one Buffer and written with fs.writeSync whenever FLUSH_BYTES have collected, so a
 * crash loses at most that much, and close() writes the rest. The symbolised tail of each address is
 * encoded once and cached: a boot executes few distinct addresses many times.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { UserError } from '../src/errors.js';

/** Bytes collected before a write(2). */
export const FLUSH_BYTES = 64 * 1024;
/** Longest line accepted (a timestamp plus a symbol name with its section and module). */
const MAX_LINE = 4096;
/** Digits after the decimal point of a host-clock timestamp (0.1 us; one step costs ~7 us here). */
export const HOST_CLOCK_DECIMALS = 1;

export type Describe = (addr: bigint) => string;
/** Asked once per distinct address: should event() report it (true) every time it is reached? */
export type Classify = (addr: bigint) => boolean;

interface Tail {
  /** High half of the address this entry is for (the map is keyed by the low half). */
  hi: number;
  bytes: Buffer;
  flagged: boolean;
}

export class TraceWriter {
  private readonly buf = Buffer.allocUnsafe(FLUSH_BYTES + MAX_LINE);
  private pos = 0;
  private readonly fd: number;
  /**
   * Encoded " <describe(addr)>\n" and the classify() answer per address. Keyed by the low 32 bits as an
   * int32 (a small integer to V8, so the lookup hashes no heap number); addresses that share a low half
   * but not the high one (rare: user and kernel code at the same offset) go to `others`.
   */
  private readonly tails = new Map<number, Tail>();
  private readonly others = new Map<string, Tail>();
  /** Lines written. */
  lines = 0;
  /** Bytes written to the file so far (flushed). */
  bytes = 0;

  /** Set once a write failed (disk full, I/O error): nothing more is written, close() only closes. */
  private failed = false;

  constructor(private readonly file: string, private readonly describe: Describe, private readonly classify?: Classify) {
    this.fd = openSync(file, 'w');
  }

  /** `# text` comment lines (metadata at the top of the file). */
  comment(text: string): void {
    for (const line of text.split('\n')) this.raw(`# ${line}\n`);
  }

  /**
   * One event at address hi:lo (the two 32-bit halves of the 64-bit address, as read from kvm_run without
   * making a BigInt). `t` is either an integer (steps clock) or microseconds (host clock, `decimals` 1).
   * Returns the classify() answer for the address (false without a classifier).
   */
  event(t: number, decimals: number, hi: number, lo: number): boolean {
    if (this.pos >= FLUSH_BYTES) this.flush();
    const buf = this.buf;
    let p = this.pos;
    if (decimals === 0) p = writeUint(buf, p, t);
    else {
      const tenths = Math.round(t * 10);
      p = writeUint(buf, p, Math.floor(tenths / 10));
      buf[p++] = 0x2e; // '.'
      buf[p++] = 0x30 + (tenths % 10);
    }
    let tail = this.tails.get(lo | 0);
    if (tail === undefined || tail.hi !== hi) tail = this.miss(hi, lo);
    // TypedArray.set stays in V8; Buffer.copy would cross into C++ for every line.
    buf.set(tail.bytes, p);
    this.pos = p + tail.bytes.length;
    this.lines++;
    return tail.flagged;
  }

  /**
   * Writes the buffered lines. On a write error (ENOSPC on a full disk, EIO, EFBIG) the file is cut back to
   * its last complete line, so it stays readable to there and never ends in half a line, and a UserError
   * names the file, the error and how many lines it keeps.
   */
  flush(): void {
    if (this.failed) return;
    let off = 0;
    try {
      while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    } catch (err) {
      this.failed = true;
      const lastNl = this.buf.lastIndexOf(0x0a, off - 1);
      const keep = this.bytes + (lastNl >= 0 && off > 0 ? lastNl + 1 : 0);
      let kept = 'all lines before this block';
      try {
        ftruncateSync(this.fd, keep);
        kept = `${keep} bytes of whole lines`;
      } catch {
        /* the cut is best effort; the file then ends in the partial line */
      }
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new UserError(`${this.file}: cannot write the trace (${code}); it keeps ${kept}`);
    }
    this.bytes += this.pos;
    this.pos = 0;
  }

  close(): void {
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
    }
  }

  private raw(text: string): void {
    if (this.pos + Buffer.byteLength(text) > FLUSH_BYTES) this.flush();
    if (Buffer.byteLength(text) > this.buf.length) {
      this.flush();
      if (this.failed) return;
      writeSync(this.fd, text);
      this.bytes += Buffer.byteLength(text);
      return;
    }
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  private miss(hi: number, lo: number): Tail {
    const first = this.tails.get(lo | 0);
    const otherKey = `${hi}:${lo}`;
    if (first !== undefined) {
      const t = this.others.get(otherKey);
      if (t !== undefined) return t;
    }
    const addr = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    let text = ' ' + this.describe(addr) + '\n';
    if (text.length > MAX_LINE - 32) text = text.slice(0, MAX_LINE - 33) + '\n';
    const t: Tail = { hi, bytes: Buffer.from(text, 'utf8'), flagged: this.classify ? this.classify(addr) : false };
    if (first === undefined) this.tails.set(lo | 0, t);
    else this.others.set(otherKey, t);
    return t;
  }
}

/** Write the decimal digits of a non-negative integer at `p`; returns the position after them. */
function writeUint(buf: Buffer, p: number, v: number): number {
  if (v < 10) {
    buf[p] = 0x30 + v;
    return p + 1;
  }
  let digits = 0;
  for (let x = v; x >= 1; x = Math.floor(x / 10)) digits++;
  for (let i = p + digits - 1; i >= p; i--) {
    buf[i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  return p + digits;
}
