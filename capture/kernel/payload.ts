/**
 * The compressed payload inside a bzImage: the stripped ELF vmlinux that the kernel's own decompressor
 * (arch/x86/boot/compressed) would unpack in the guest. Where it is comes from the setup header:
 * payload_offset/payload_length (protocol >= 2.08), relative to the protected-mode part that starts at
 * file offset (setup_sects + 1) * 512. The build appends the decompressed size as a u32 LE after the
 * compressed stream (size_append in scripts/Makefile.lib), and payload_length includes those 4 bytes.
 *
 * Example (Debian 6.1.0-56 cloud kernel): setup_sects 39, payload_offset 0x2cc, so the payload starts at
 * file offset 0x52cc: 14 MB of LZ4 (02 21 4c 18 ...) that decompress to a 53 MB ELF.
 */
import { parseBzImage } from '../boot/bzimage.js';
import { UserError } from '../../src/errors.js';

/** Compression formats the kernel's build can use (CONFIG_KERNEL_*). */
export type PayloadFormat = 'gzip' | 'xz' | 'lz4' | 'zstd' | 'bzip2' | 'lzma' | 'lzo';
/** The ones this tool decompresses; the rest are rare in distro kernels. */
export const SUPPORTED_FORMATS: readonly PayloadFormat[] = ['gzip', 'xz', 'lz4', 'zstd', 'lzma'];

export interface Payload {
  format: PayloadFormat;
  /** The compressed stream, without the 4-byte size trailer. */
  data: Buffer;
  /** Decompressed size from the trailer (the size of the ELF vmlinux). */
  size: number;
  /** File offset of the payload, for messages. */
  fileOffset: number;
}

/** The format of a compressed stream by its magic bytes, or null when none matches. */
export function detectFormat(b: Uint8Array): PayloadFormat | null {
  const at = (...bytes: number[]) => bytes.every((v, i) => b[i] === v);
  if (at(0x1f, 0x8b)) return 'gzip';
  if (at(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (at(0x02, 0x21, 0x4c, 0x18)) return 'lz4';
  if (at(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (at(0x42, 0x5a, 0x68)) return 'bzip2'; // "BZh"
  if (at(0x89, 0x4c, 0x5a, 0x4f)) return 'lzo'; // "\x89LZO"
  if (at(0x5d, 0x00, 0x00)) return 'lzma'; // .lzma "alone" header: properties 0x5d, dictionary size
  return null;
}

/** Find, classify and split the compressed payload of a bzImage held in `buf`. */
export function readPayload(buf: Buffer, file: string): Payload {
  const bz = parseBzImage(buf, file);
  const setupBytes = (bz.setupSects + 1) * 512;
  const { payloadOffset, payloadLength } = bz;
  if (payloadLength < 8) throw new UserError(`${file}: payload_length at 0x24c is ${payloadLength}; boot protocol ${bz.protocolVersion.toString(16)} kernels before 2.08 have no payload fields`);
  const whole = bz.protectedMode.subarray(payloadOffset, payloadOffset + payloadLength);
  const fileOffset = setupBytes + payloadOffset;
  const format = detectFormat(whole);
  if (!format) {
    const head = [...whole.subarray(0, 6)].map((v) => v.toString(16).padStart(2, '0')).join(' ');
    throw new UserError(`${file}: payload at file offset 0x${fileOffset.toString(16)} starts with ${head}, which is no known kernel compression (gzip, xz, lz4, zstd, bzip2, lzma, lzo)`);
  }
  const size = whole.readUInt32LE(whole.length - 4);
  return { format, data: whole.subarray(0, whole.length - 4), size, fileOffset };
}
