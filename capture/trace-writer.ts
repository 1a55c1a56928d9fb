/**
 * trace.log output for the single-step loop: one line per step in the trace format
 * (docs/trace-format.md):
 *   `12.5 start_kernel + 4 in section .text`     (--clock host: microseconds since VM creation, 1 decimal)
 *   `1234 work_small in section .text`             (--clock steps: the instruction index)
 *   `400012 400012`-style bare hex for addresses no symbol covers.
 * The symbolised tail of each address is encoded once and cached: a boot executes few distinct addresses
 * many times. A step only records its timestamp and its address's tail (an index found through a small
 * direct-mapped table); the lines are formatted BATCH events at a time, into one Buffer written with
 * fs.writeSync whenever FLUSH_BYTES have collected. So the step loop, whose caches KVM_RUN has just
 * evicted, touches a few bytes per step, and the formatting runs with its tables warm
 * (docs/performance.md, "Capture"). A crash loses at most the batch and the buffer; flush() and close()
 * write everything.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { UserError } from '../src/errors.js';
import { writeUint } from '../src/output/digits.js';

/** Bytes collected before a write(2). */
export const FLUSH_BYTES = 64 * 1024;
/** Events recorded before they are formatted. */
const BATCH = 2048;
/** Slots of the direct-mapped address cache (a power of two). */
const SLOTS = 4096;
/** Longest line accepted (a timestamp plus a symbol name with its section and module). */
const MAX_LINE = 4096;
/** Digits after the decimal point of a host-clock timestamp (0.1 us; one step costs ~7 us here). */
export const HOST_CLOCK_DECIMALS = 1;

export type Describe = (addr: bigint) => string;
/**
 * Asked once per distinct address: flags (a small non-negative int) that event() returns every time the
 * address is reached, so that a caller's per-address facts cost no lookup of their own (the KVM run loop
 * keeps whether it is a HLT, and its instruction class for the step watchdog: run-loop.ts addressFlags).
 */
export type Classify = (addr: bigint) => number;

interface Tail {
  /** High half of the address this entry is for (the map is keyed by the low half). */
  hi: number;
  bytes: Buffer;
  flags: number;
  /** Its place in tailList. */
  index: number;
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
  /** Every tail, by index. */
  private readonly tailList: Tail[] = [];
  /**
   * The direct-mapped cache in front of `tails`, 4 int32 per slot: low half, high half, tail index (-1: empty),
   * classify() flags. One cache line per step instead of a Map lookup and two objects: right after KVM_RUN
   * the caches are cold, and each line a step touches costs more than the work on it (docs/performance.md).
   */
  private readonly cache = new Int32Array(SLOTS * 4).fill(-1);
  /**
   * Events recorded and not yet formatted, two doubles each: the timestamp, and the tail index (~index: host
   * clock, one decimal). One array, written in order, so a step touches one more cache line every 4 steps.
   */
  private readonly pendingEvents = new Float64Array(BATCH * 2);
  private pending = 0;
  /** Lines formatted (flush() formats every line recorded). */
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
   * Returns the classify() flags of the address (0 without a classifier).
   */
  event(t: number, decimals: number, hi: number, lo: number): number {
    // As int32 (the cache's element type): callers pass the halves as read, unsigned.
    const lo32 = lo | 0, hi32 = hi | 0;
    const slot = (lo32 ^ (lo32 >>> 12)) & (SLOTS - 1);
    const cache = this.cache;
    let index: number;
    if (cache[slot * 4] === lo32 && cache[slot * 4 + 1] === hi32 && cache[slot * 4 + 2]! >= 0) index = cache[slot * 4 + 2]!;
    else {
      let tail = this.tails.get(lo | 0);
      if (tail === undefined || tail.hi !== hi) tail = this.miss(hi, lo);
      index = tail.index;
      cache[slot * 4] = lo32;
      cache[slot * 4 + 1] = hi32;
      cache[slot * 4 + 2] = index;
      cache[slot * 4 + 3] = tail.flags;
    }
    const n = this.pending;
    this.pendingEvents[2 * n] = t;
    this.pendingEvents[2 * n + 1] = decimals === 0 ? index : ~index;
    this.pending = n + 1;
    if (n + 1 === BATCH) this.format();
    return cache[slot * 4 + 3]!;
  }

  /** Formats the recorded events into the output buffer (writing it out whenever FLUSH_BYTES have collected). */
  private format(): void {
    const count = this.pending;
    this.pending = 0;
    this.lines += count;
    const buf = this.buf;
    const list = this.tailList;
    for (let k = 0; k < count; k++) {
      if (this.pos >= FLUSH_BYTES) this.flushBuffer();
      const t = this.pendingEvents[2 * k]!;
      let index = this.pendingEvents[2 * k + 1]! | 0;
      let p = this.pos;
      if (index >= 0) p = writeUint(buf, p, t);
      else {
        index = ~index;
        const tenths = Math.round(t * 10);
        // In int32 while it fits (a boot of 214 s), as writeUint does (src/output/digits.ts).
        const whole = tenths <= 0x7fffffff ? ((tenths | 0) / 10) | 0 : Math.floor(tenths / 10);
        p = writeUint(buf, p, whole);
        buf[p++] = 0x2e; // '.'
        buf[p++] = 0x30 + (tenths - whole * 10);
      }
      const bytes = list[index]!.bytes;
      // TypedArray.set stays in V8; Buffer.copy would cross into C++ for every line.
      buf.set(bytes, p);
      this.pos = p + bytes.length;
    }
  }

  /** Formats the recorded events and writes all buffered lines (see flushBuffer() for write errors). */
  flush(): void {
    this.format();
    this.flushBuffer();
  }

  /**
   * Writes the buffered lines. On a write error (ENOSPC on a full disk, EIO, EFBIG) the file is cut back to
   * its last complete line, so it stays readable to there and never ends in half a line, and a UserError
   * names the file, the error and how many lines it keeps.
   */
  private flushBuffer(): void {
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
    this.format(); // the lines recorded before this text come first
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
    const t: Tail = { hi, bytes: Buffer.from(text, 'utf8'), flags: this.classify ? this.classify(addr) : 0, index: this.tailList.length };
    this.tailList.push(t);
    if (first === undefined) this.tails.set(lo | 0, t);
    else this.others.set(otherKey, t);
    return t;
  }
}
