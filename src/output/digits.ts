/**
 * Decimal digits of integers written straight into byte buffers: the step loop's trace.log lines
 * (capture/trace-formatter.ts), the recording's text export (src/export/text.ts) and the CSV encoder
 * (src/output/csv.ts) all write millions of them, and a string per number was what cost there.
 */

/**
 * Writes the decimal digits of a non-negative integer below 2^53 at buf[p] (room already made) and returns
 * the position after them; the same digits as String(v).
 */
export function writeUint(buf: Uint8Array, p: number, v: number): number {
  if (v < 10) {
    buf[p] = 0x30 + v;
    return p + 1;
  }
  if (v <= 0x7fffffff) {
    // In int32: division by a constant is a multiply there, where a double's % 10 is a call (fmod) per digit.
    let x = v | 0;
    let end = p + 1;
    for (let y = (x / 10) | 0; y > 0; y = (y / 10) | 0) end++;
    for (let i = end - 1; i >= p; i--) {
      const q = (x / 10) | 0;
      buf[i] = 0x30 + (x - q * 10);
      x = q;
    }
    return end;
  }
  let digits = 0;
  for (let x = v; x >= 1; x = Math.floor(x / 10)) digits++;
  for (let i = p + digits - 1; i >= p; i--) {
    buf[i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  return p + digits;
}
