/**
 * Host-side kernel decompression: turn a bzImage into the ELF vmlinux its payload holds, so the VMM can
 * enter it directly in 64-bit mode and skip the in-guest decompressor (1-2 minutes of guest time for the
 * Debian cloud kernel on the software-backed /dev/kvm here; see docs/kernels.md).
 *
 * Formats: gzip (node:zlib), LZ4 legacy (./lz4.ts), zstd (fzstd, pure JS), xz and lzma (liblzma through
 * lzma-native: the kernel's xz_wrap.sh adds the x86 BCJ filter, which the WebAssembly xz-embedded builds
 * on npm reject). bzip2 and lzo are refused with a clear message: no current distro kernel uses them.
 *
 * Entry point for the capture command:
 *   const { vmlinux, format, ms } = await decompressKernel('/boot/vmlinuz-6.1.0-56-cloud-amd64');
 *   // vmlinux: Buffer holding an ELF (cached in cacheDir('vmlinux') by the bzImage's sha256)
 */
import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { writeFileAtomic } from '../../src/atomic-write.js';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { looksLikeElf } from '../boot/elf.js';
import { cacheDir } from '../../src/cache.js';
import { messageOf, UserError } from '../../src/errors.js';
import { lz4LegacyDecompress } from './lz4.js';
import { readPayload, SUPPORTED_FORMATS, type PayloadFormat } from './payload.js';

export interface DecompressedKernel {
  /** The ELF vmlinux. */
  vmlinux: Buffer;
  /** The payload's compression, or 'none' when the input already was an ELF vmlinux. */
  format: PayloadFormat | 'none';
  /** Wall time of the decompression itself (0 when served from the cache or not compressed). */
  ms: number;
  /** True when the result came from cacheDir('vmlinux'). */
  cached: boolean;
  /** sha256 (hex) of the input file: the cache key, also used by the symbol cache. */
  sha256: string;
}

/**
 * Decompress one stream. `expectedSize` (the kernel's size trailer) is checked when given.
 * `what` names the input in errors.
 */
export async function decompressStream(data: Uint8Array, format: PayloadFormat, what: string, expectedSize?: number): Promise<Buffer> {
  if (!SUPPORTED_FORMATS.includes(format)) {
    throw new UserError(`${what}: ${format}-compressed kernels are not supported (only ${SUPPORTED_FORMATS.join(', ')}); boot it with --decompress guest`);
  }
  let out: Buffer;
  try {
    switch (format) {
      case 'gzip':
        out = zlib.gunzipSync(data);
        break;
      case 'lz4':
        out = lz4LegacyDecompress(data, what, expectedSize);
        break;
      case 'zstd': {
        // Node >= 22.15 has zstd in zlib (native, ~10x faster); fzstd (pure JS) everywhere else.
        const native = (zlib as unknown as { zstdDecompressSync?: (b: Uint8Array) => Buffer }).zstdDecompressSync;
        if (native) {
          out = native(data);
        } else {
          const u8 = zstdDecompress(data, expectedSize !== undefined ? new Uint8Array(expectedSize) : undefined);
          out = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
        }
        break;
      }
      case 'xz':
      case 'lzma': {
        // liblzma (native, through lzma-native): the kernel's xz streams use the x86 BCJ filter, which the
        // WebAssembly xz-embedded builds on npm lack. Loaded on first use so the CLI starts without it.
        let lzma: typeof import('lzma-native').default;
        try {
          lzma = (await import('lzma-native')).default;
        } catch (err) {
          throw new UserError(`${what}: ${format} support needs the lzma-native module, which did not load here (${messageOf(err)})`);
        }
        out = await lzma.decompress(data);
        break;
      }
      default:
        throw new Error(`unreachable format ${format}`);
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${what}: ${format} decompression failed (${messageOf(err)}); corrupt or truncated`);
  }
  if (expectedSize !== undefined && out.length !== expectedSize) {
    throw new UserError(`${what}: ${format} payload decompressed to ${out.length} bytes, but its size trailer says ${expectedSize}; corrupt`);
  }
  return out;
}

/**
 * The ELF vmlinux inside a bzImage already read into `buf` (or `buf` itself when it is an ELF).
 * No caching; see decompressKernel for the cached file-based entry point.
 */
export async function decompressBzImage(buf: Buffer, file: string): Promise<{ vmlinux: Buffer; format: PayloadFormat | 'none'; ms: number }> {
  if (looksLikeElf(buf)) return { vmlinux: buf, format: 'none', ms: 0 };
  const payload = readPayload(buf, file);
  const t0 = performance.now();
  const vmlinux = await decompressStream(payload.data, payload.format, `${file}: payload at 0x${payload.fileOffset.toString(16)}`, payload.size);
  const ms = performance.now() - t0;
  if (!looksLikeElf(vmlinux)) {
    throw new UserError(`${file}: the ${payload.format} payload decompressed to ${vmlinux.length} bytes that are not an ELF vmlinux (no \\x7fELF magic)`);
  }
  return { vmlinux, format: payload.format, ms };
}

/** Read a kernel file, naming it in the error when it cannot be read. */
export function readKernelFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UserError(`${path}: cannot read kernel (${messageOf(err)})`);
  }
}

export function sha256Hex(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * The ELF vmlinux of a kernel file (bzImage or vmlinux), decompressed on the host and cached in
 * cacheDir('vmlinux')/<sha256 of the file>.elf (written to a temporary name, then renamed).
 */
export async function decompressKernel(bzImagePath: string): Promise<DecompressedKernel> {
  const buf = readKernelFile(bzImagePath);
  const sha256 = sha256Hex(buf);
  if (looksLikeElf(buf)) return { vmlinux: buf, format: 'none', ms: 0, cached: false, sha256 };
  const cached = join(cacheDir('vmlinux'), `${sha256}.elf`);
  if (existsSync(cached)) {
    const vmlinux = readFileSync(cached);
    // A cache entry is only ever renamed into place whole, but check the magic anyway: it is free.
    if (looksLikeElf(vmlinux)) {
      const format = readPayload(buf, bzImagePath).format;
      return { vmlinux, format, ms: 0, cached: true, sha256 };
    }
  }
  const { vmlinux, format, ms } = await decompressBzImage(buf, bzImagePath);
  writeFileAtomic(cached, vmlinux, 'the decompressed kernel to the cache');
  return { vmlinux, format, ms, cached: false, sha256 };
}
