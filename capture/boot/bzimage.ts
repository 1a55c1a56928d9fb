/**
 * The Linux x86 boot protocol's setup header of a bzImage (Documentation/arch/x86/boot.rst).
 * Only what a 64-bit-entry loader needs: where the protected-mode part starts, the header bytes to
 * copy into the zero page, and the sizes that decide how much guest memory the kernel needs.
 *
 * Example (Debian 6.1 cloud kernel): setup_sects 27, "HdrS" version 0x020f, xloadflags 0x7f,
 * init_size 0x2fd5000, pref_address 0x1000000, LZ4 payload.
 */
import { UserError } from '../../src/errors.js';

/** Offsets in the file (= offsets in the zero page) of the setup-header fields this loader reads. */
export const HDR = {
  setupSects: 0x1f1,
  bootFlag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  code32Start: 0x214,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  payloadOffset: 0x248,
  payloadLength: 0x24c,
  prefAddress: 0x258,
  initSize: 0x260,
} as const;

/** boot_flag value at 0x1FE. */
export const BOOT_FLAG = 0xaa55;
/** "HdrS" at 0x202, little-endian. */
export const HDRS_MAGIC = 0x53726448;
/** xloadflags bit 0: the kernel has a 64-bit entry point at protected-mode start + 0x200. */
export const XLF_KERNEL_64 = 0x1;
/** Oldest protocol with cmdline_size (2.06). */
export const MIN_PROTOCOL = 0x206;
/** Protocol that introduced xloadflags, without which there is no declared 64-bit entry (2.12). */
export const XLOADFLAGS_PROTOCOL = 0x20c;
/** Header bytes that must be present to read every field above (init_size ends at 0x264). */
const HEADER_END = HDR.initSize + 4;

export interface BzImage {
  /** Number of 512-byte setup sectors after the boot sector (0 in the file means 4). */
  setupSects: number;
  /** Boot protocol version, e.g. 0x20f for 2.15. */
  protocolVersion: number;
  /** File bytes 0x1F1 .. 0x202 + byte[0x201]: the setup header to copy into the zero page at 0x1F1. */
  setupHeader: Buffer;
  /** The protected-mode kernel (from file offset (setup_sects + 1) * 512), to load at HIMEM_START. */
  protectedMode: Buffer;
  /** Bytes the kernel needs from its run address before it sets up its own memory (decompressor + image). */
  initSize: number;
  /** Preferred physical run address (LOAD_PHYSICAL_ADDR), 0x1000000 for distro kernels. */
  prefAddress: bigint;
  /** Physical alignment the kernel needs if relocated. */
  kernelAlignment: number;
  relocatable: boolean;
  xloadflags: number;
  /** Longest command line the kernel accepts, excluding the terminating NUL. */
  cmdlineSize: number;
  /** Highest address (inclusive) where the initrd may end. */
  initrdAddrMax: number;
  /** Offset of the compressed payload from the start of the protected-mode part. */
  payloadOffset: number;
  payloadLength: number;
}

/** True when `buf` starts like a bzImage (boot flag and "HdrS"); for format detection. */
export function looksLikeBzImage(buf: Uint8Array): boolean {
  if (buf.length < HDR.header + 4) return false;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return b.readUInt32LE(HDR.header) === HDRS_MAGIC;
}

export function parseBzImage(buf: Buffer, file: string): BzImage {
  const fail = (why: string): never => {
    throw new UserError(`${file}: not a usable bzImage (${why})`);
  };
  if (buf.length < HEADER_END) fail(`file is ${buf.length} bytes, shorter than the 0x${HEADER_END.toString(16)}-byte setup header`);
  if (buf.readUInt16LE(HDR.bootFlag) !== BOOT_FLAG) fail(`boot_flag at 0x1fe is 0x${hex(buf.readUInt16LE(HDR.bootFlag))}, not 0xaa55`);
  if (buf.readUInt32LE(HDR.header) !== HDRS_MAGIC) fail('no "HdrS" at 0x202');
  const protocolVersion = buf.readUInt16LE(HDR.version);
  if (protocolVersion < MIN_PROTOCOL) {
    fail(`boot protocol ${protoText(protocolVersion)} is older than 2.06, which added cmdline_size`);
  }
  if (protocolVersion < XLOADFLAGS_PROTOCOL) {
    fail(`boot protocol ${protoText(protocolVersion)} is older than 2.12, which added xloadflags and the 64-bit entry`);
  }
  const xloadflags = buf.readUInt16LE(HDR.xloadflags);
  if (!(xloadflags & XLF_KERNEL_64)) fail(`xloadflags 0x${hex(xloadflags)} has no 64-bit entry point (bit 0)`);

  const setupSects = buf[HDR.setupSects] || 4;
  const setupBytes = (setupSects + 1) * 512;
  if (buf.length <= setupBytes) {
    fail(`file is ${buf.length} bytes, but the ${setupSects} setup sectors alone take ${setupBytes}; truncated?`);
  }
  const headerEnd = HDR.header + buf[HDR.jump + 1]!;
  if (headerEnd < HEADER_END || headerEnd > setupBytes) fail(`setup header end 0x${hex(headerEnd)} (from the jump at 0x200) is implausible`);
  const protectedMode = buf.subarray(setupBytes);

  const payloadOffset = buf.readUInt32LE(HDR.payloadOffset);
  const payloadLength = buf.readUInt32LE(HDR.payloadLength);
  if (payloadOffset + payloadLength > protectedMode.length) {
    fail(`payload 0x${hex(payloadOffset)}+0x${hex(payloadLength)} runs past the ${protectedMode.length}-byte protected-mode part; truncated?`);
  }
  const initSize = buf.readUInt32LE(HDR.initSize);
  if (initSize === 0) fail('init_size at 0x260 is 0');

  return {
    setupSects,
    protocolVersion,
    setupHeader: Buffer.from(buf.subarray(HDR.setupSects, headerEnd)),
    protectedMode,
    initSize,
    prefAddress: buf.readBigUInt64LE(HDR.prefAddress),
    kernelAlignment: buf.readUInt32LE(HDR.kernelAlignment),
    relocatable: buf[HDR.relocatableKernel] !== 0,
    xloadflags,
    cmdlineSize: buf.readUInt32LE(HDR.cmdlineSize),
    initrdAddrMax: buf.readUInt32LE(HDR.initrdAddrMax),
    payloadOffset,
    payloadLength,
  };
}

function hex(n: number): string {
  return n.toString(16);
}

function protoText(v: number): string {
  return `${v >> 8}.${(v & 0xff).toString().padStart(2, '0')}`;
}
