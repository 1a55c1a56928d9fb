/**
 * CSV rows encoded straight to bytes, in fast-csv's format (headers given, defaults otherwise): a cell is
 * quoted when it holds a quote (doubled), a comma, CR, LF or '|' (fast-csv's escape pattern has a literal
 * '|'); NUL bytes are dropped; null and undefined are empty; numbers and booleans as JavaScript writes them.
 * test/csv-output.test.ts holds it byte for byte to fast-csv's own formatter.
 *
 * Why bytes and not strings: a 200 k-row listing (syscalls) spent more time building and joining row strings
 * than parsing its trace; written as bytes into a block, a row costs a fraction of that and makes no garbage
 * (docs/performance.md).
 */
import { writeUint } from './digits.js';

/** Bytes collected before a block is handed on. */
const BLOCK = 1 << 16;
const QUOTE = 34;

export class CsvEncoder {
  private buf = Buffer.allocUnsafe(BLOCK);
  private pos = 0;
  private readonly blocks: Buffer[] = [];

  /** `keys`: the row fields written, in order. */
  constructor(private readonly keys: readonly string[]) {}

  /** The header line (the keys), without a line end: rows start with theirs. */
  header(): void {
    this.keys.forEach((k, i) => {
      if (i) this.byte(44);
      this.cell(k);
    });
  }

  /** One row, starting with its line end ('\n' then the cells). */
  row(r: object): void {
    this.byte(10);
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (i) this.byte(44);
      this.cell((r as Record<string, unknown>)[keys[i]!]);
    }
  }

  /** A line end of its own (the last line's). */
  newline(): void {
    this.byte(10);
  }

  /** Bytes encoded so far, as few buffers of about BLOCK bytes each; the encoder starts afresh. */
  take(): Buffer[] {
    this.seal();
    return this.blocks.splice(0);
  }

  /** Bytes encoded since the last take() (or seal), when a whole block has collected; else []. */
  full(): Buffer[] {
    return this.pos >= BLOCK - 64 || this.blocks.length > 0 ? this.take() : [];
  }

  private seal(): void {
    if (this.pos === 0) return;
    this.blocks.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(BLOCK);
    this.pos = 0;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.seal();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }

  private byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  private cell(v: unknown): void {
    if (typeof v === 'number') this.number(v);
    else if (typeof v === 'boolean') this.ascii(v ? 'true' : 'false');
    else if (v !== null && v !== undefined) this.text(`${v as string}`);
  }

  /**
   * A number as `${v}` writes it. Most figures here are microseconds rounded to 3 decimals (roundUs): for
   * 0 <= v < 4e12 with v === round(v * 1000) / 1000, the shortest decimal that reads back as v (ECMAScript
   * Number::toString) is its integer part and up to 3 decimals without trailing zeros (the doubles there are
   * less than 0.0005 apart, so no other decimal of 3 or fewer decimals reads back as v); digits are written
   * directly. Anything else goes through `${v}`.
   */
  private number(v: number): void {
    if (v >= 0 && v < 4e12) {
      const n = Math.round(v * 1000);
      if (n / 1000 === v) {
        const whole = Math.floor(n / 1000);
        let frac = n - whole * 1000;
        this.room(24);
        this.pos = writeUint(this.buf, this.pos, whole);
        if (frac > 0) {
          const buf = this.buf;
          buf[this.pos++] = 46; // '.'
          let width = 3;
          while (frac % 10 === 0) {
            frac /= 10;
            width--;
          }
          for (let k = width - 1; k >= 0; k--) {
            buf[this.pos + k] = 48 + (frac % 10);
            frac = Math.floor(frac / 10);
          }
          this.pos += width;
        }
        return;
      }
    }
    this.ascii(`${v}`);
  }

  /** A string known to be ASCII and to need no quoting (numbers, booleans). */
  private ascii(s: string): void {
    this.room(s.length);
    const buf = this.buf;
    for (let i = 0; i < s.length; i++) buf[this.pos++] = s.charCodeAt(i);
  }

  private text(s: string): void {
    let plain = true, ascii = true;
    // One pass over the characters: most cells (names, hex addresses) need nothing done.
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0 || c === QUOTE || c === 44 || c === 13 || c === 10 || c === 124) plain = false;
      else if (c > 127) ascii = false;
    }
    if (!plain) s = quoted(s);
    if (ascii) return this.ascii(s);
    const n = Buffer.byteLength(s, 'utf8');
    this.room(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

/** A cell that needs quoting, as fast-csv writes it (NUL bytes dropped first). */
function quoted(value: string): string {
  const s = value.replace(/\0/g, '');
  if (s.includes('"')) return `"${s.replace(/"/g, '""')}"`;
  return /[,\r\n|]/.test(s) ? `"${s}"` : s;
}
