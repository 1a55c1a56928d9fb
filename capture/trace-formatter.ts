/**
 * trace.log's owner: turns recorded step events into lines of the trace format (docs/trace-format.md) and
 * writes them to the file.
 *   `12.5 start_kernel + 4 in section .text`     (host clock: microseconds since VM creation, 1 decimal)
 *   `1234 work_small in section .text`             (steps clock: the instruction index)
 * An event is two doubles, as the recorder (trace-writer.ts) stores them: the timestamp, and the index of
 * the address's encoded tail (" <symbol>\n"), bit-inverted (~index) for a host-clock time. Lines collect in
 * one Buffer written with fs.writeSync whenever FLUSH_BYTES have collected.
 *
 * It runs where the recorder runs (the QEMU engine's step loop) or in another thread: the KVM engine's
 * vCPU thread only records, and the capture's main thread formats and writes (engines/kvm/trace-channel.ts),
 * so formatting and disk writes never stall a step (docs/performance.md, "Capture (KVM)").
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { UserError } from '../src/errors.js';
import { writeUint } from '../src/output/digits.js';

/** Bytes collected before a write(2). */
export const FLUSH_BYTES = 64 * 1024;
/** Longest line accepted (a timestamp plus a symbol name with its section and module). */
export const MAX_LINE = 4096;

export class TraceFormatter {
  private readonly buf = Buffer.allocUnsafe(FLUSH_BYTES + MAX_LINE);
  private pos = 0;
  private readonly fd: number;
  /** Encoded tails by index, as the recorder numbered them. */
  private readonly tails: Uint8Array[] = [];
  /** Bytes written to the file so far. */
  private written = 0;
  /** Set once a write failed (disk full, I/O error): nothing more is written, close() only closes. */
  private failed = false;
  private closed = false;

  /** Creates (truncates) `file`. Throws the fs error when it cannot be opened. */
  constructor(readonly file: string) {
    this.fd = openSync(file, 'w');
  }

  /** The tails of the next addresses, in index order (the recorder sends each once, before its first event). */
  addTails(tails: readonly Uint8Array[]): void {
    for (const t of tails) this.tails.push(t);
  }

  /**
   * Formats `count` events (pairs of doubles: time, tail index or ~index for host clock) into the buffer,
   * writing it out whenever FLUSH_BYTES have collected. Throws UserError on a write error (flushBuffer).
   */
  events(events: Float64Array, count: number): void {
    const buf = this.buf;
    const list = this.tails;
    for (let k = 0; k < count; k++) {
      if (this.pos >= FLUSH_BYTES) this.flushBuffer();
      const t = events[2 * k]!;
      let index = events[2 * k + 1]! | 0;
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
      const bytes = list[index]!;
      // TypedArray.set stays in V8; Buffer.copy would cross into C++ for every line.
      buf.set(bytes, p);
      this.pos = p + bytes.length;
    }
  }

  /** Text as it is (comment lines), after the lines before it. Throws UserError on a write error. */
  text(text: string): void {
    this.bytes(Buffer.from(text, 'utf8'));
  }

  /** Bytes as they are (encoded comment lines), after the lines before them. Throws UserError on a write error. */
  bytes(bytes: Uint8Array): void {
    if (this.pos + bytes.length > FLUSH_BYTES) this.flushBuffer();
    if (bytes.length > FLUSH_BYTES) {
      // Longer than the buffer holds beside a pending line: in pieces through it.
      for (let off = 0; off < bytes.length; off += FLUSH_BYTES) this.bytes(bytes.subarray(off, off + FLUSH_BYTES));
      return;
    }
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /**
   * Writes the buffered lines. On a write error (ENOSPC on a full disk, EIO, EFBIG) the file is cut back to
   * its last complete line, so it stays readable to there and never ends in half a line, and a UserError
   * names the file, the error and how many lines it keeps.
   */
  flushBuffer(): void {
    if (this.failed) {
      this.pos = 0; // nothing more reaches the file
      return;
    }
    let off = 0;
    try {
      while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    } catch (err) {
      this.failed = true;
      const lastNl = this.buf.lastIndexOf(0x0a, off - 1);
      const keep = this.written + (lastNl >= 0 && off > 0 ? lastNl + 1 : 0);
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
    this.written += this.pos;
    this.pos = 0;
  }

  /** Writes what is buffered and closes the file (once; later calls do nothing). Throws as flushBuffer(). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.flushBuffer();
    } finally {
      closeSync(this.fd);
    }
  }
}
