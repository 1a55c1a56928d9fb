/**
 * LZ4 decompression of the "legacy" frame format, the one the kernel's build uses for bzImage payloads
 * (`lz4 -l`; lib/decompress_unlz4.c is the reader in the kernel's own decompressor):
 *
 *   u32 LE 0x184C2102 (magic), then blocks of { u32 LE compressed size, LZ4 block }.
 *   Each block decompresses to at most 8 MiB. A "size" equal to the magic starts a new concatenated frame.
 *   The kernel's build appends the u32 LE decompressed size after the last block (size_append in
 *   scripts/Makefile.lib); `expectedSize` lets the caller size the output once and check the result.
 *
 * The block decoder works on typed arrays with index arithmetic and no per-sequence allocation: it
 * turns the Debian cloud kernel's 14 MB payload into 53 MB in well under a second.
 */
import { UserError } from '../../src/errors.js';

export const LZ4_LEGACY_MAGIC = 0x184c2102;
/** Largest block of the legacy format (LZ4_DEFAULT_UNCOMPRESSED_CHUNK_SIZE in the kernel). */
const LEGACY_BLOCK_MAX = 8 << 20;

/**
 * Decompress a legacy-format LZ4 stream. `input` may end with the kernel's 4-byte size trailer
 * (recognised when exactly 4 bytes remain after a block). `expectedSize`, when known, is checked.
 * Errors name `what` (e.g. the kernel file) and the byte offset where decoding failed.
 */
export function lz4LegacyDecompress(input: Uint8Array, what: string, expectedSize?: number): Buffer {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  if (input.length < 4 || view.getUint32(0, true) !== LZ4_LEGACY_MAGIC) {
    throw new UserError(`${what}: not an LZ4 legacy stream (no magic 02 21 4c 18 at the start)`);
  }
  // Size the output from the trailer when the caller knows it, else grow as blocks arrive.
  let out = new Uint8Array(expectedSize ?? Math.max(LEGACY_BLOCK_MAX, input.length * 4));
  let outPos = 0;
  let pos = 4;
  while (pos < input.length) {
    if (input.length - pos === 4 && expectedSize !== undefined) break; // the size trailer
    if (input.length - pos < 4) throw new UserError(`${what}: LZ4 stream truncated at byte ${pos} (a block header needs 4 bytes)`);
    const size = view.getUint32(pos, true);
    pos += 4;
    if (size === LZ4_LEGACY_MAGIC) continue; // a concatenated frame
    if (pos === input.length) break; // the 4 bytes just read were the size trailer
    if (size > input.length - pos) {
      throw new UserError(`${what}: LZ4 block at byte ${pos - 4} claims ${size} bytes but only ${input.length - pos} remain; truncated or corrupt`);
    }
    // With a known size the output is exact and lz4Block checks every write against its end.
    if (expectedSize === undefined && out.length - outPos < LEGACY_BLOCK_MAX) {
      const bigger = new Uint8Array(Math.max(out.length * 2, outPos + LEGACY_BLOCK_MAX));
      bigger.set(out.subarray(0, outPos));
      out = bigger;
    }
    outPos = lz4Block(input, pos, pos + size, out, outPos, what);
    pos += size;
  }
  if (expectedSize !== undefined && outPos !== expectedSize) {
    throw new UserError(`${what}: LZ4 stream decompressed to ${outPos} bytes, but its size trailer says ${expectedSize}; corrupt`);
  }
  return Buffer.from(out.buffer, out.byteOffset, outPos);
}

/**
 * Decode one LZ4 block, src[start, end), into dst at dstPos. Returns the new output position.
 * Sequence: token (literal length << 4 | match length - 4), extra length bytes while 255, literals,
 * u16 LE offset, extra match length bytes. The last sequence has literals only.
 */
export function lz4Block(src: Uint8Array, start: number, end: number, dst: Uint8Array, dstPos: number, what: string): number {
  let s = start;
  let d = dstPos;
  const dstEnd = dst.length;
  const corrupt = (why: string): never => {
    throw new UserError(`${what}: corrupt LZ4 block at input byte ${s} (${why})`);
  };
  while (s < end) {
    const token = src[s++]!;
    let litLen = token >>> 4;
    if (litLen === 15) {
      let b: number;
      do {
        if (s >= end) corrupt('literal length runs past the block');
        b = src[s++]!;
        litLen += b;
      } while (b === 255);
    }
    if (litLen > 0) {
      if (s + litLen > end) corrupt(`${litLen} literals run past the block`);
      if (d + litLen > dstEnd) corrupt('output larger than expected');
      if (litLen > 32) {
        dst.set(src.subarray(s, s + litLen), d);
        d += litLen;
        s += litLen;
      } else {
        for (let i = 0; i < litLen; i++) dst[d++] = src[s++]!;
      }
    }
    if (s >= end) break; // the last sequence ends after its literals
    if (s + 2 > end) corrupt('match offset runs past the block');
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > d) corrupt(`match offset ${offset} points before the output start`);
    let matchLen = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (s >= end) corrupt('match length runs past the block');
        b = src[s++]!;
        matchLen += b;
      } while (b === 255);
    }
    if (d + matchLen > dstEnd) corrupt('output larger than expected');
    let m = d - offset;
    if (matchLen > 32 && offset >= matchLen) {
      dst.copyWithin(d, m, m + matchLen);
      d += matchLen;
    } else {
      // Overlapping matches repeat the last `offset` bytes: a forward byte copy does exactly that.
      const stop = d + matchLen;
      while (d < stop) dst[d++] = dst[m++]!;
    }
  }
  return d;
}
