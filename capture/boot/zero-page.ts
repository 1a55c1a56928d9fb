/**
 * The zero page (struct boot_params, 4096 bytes) the kernel finds through RSI at its 64-bit entry, the
 * e820 memory map in it, and where the initrd goes. Field offsets: Documentation/arch/x86/zero-page.rst
 * and boot.rst.
 */
import { UserError } from '../../src/errors.js';
import {
  BIOS_END,
  BIOS_START,
  EBDA_START,
  HIMEM_START,
  KERNEL_LOAD_ADDR,
  LOW_RAM_END,
  MAX_LOW_RAM_BYTES,
  MIB,
  PAGE_SIZE,
} from '../layout.js';
import { BOOT_FLAG, HDR, HDRS_MAGIC } from './bzimage.js';

export const ZERO_PAGE_SIZE = 4096;
export const E820_RAM = 1;
export const E820_RESERVED = 2;

/** One e820 entry: [addr, addr + size) of the given type (1 RAM, 2 reserved). */
export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/** Zero-page offsets outside the setup header. */
const ZP = {
  extRamdiskImage: 0xc0,
  extRamdiskSize: 0xc4,
  extCmdLinePtr: 0xc8,
  e820Entries: 0x1e8,
  e820Table: 0x2d0,
} as const;
/** Room for the e820 table in boot_params (E820_MAX_ENTRIES_ZEROPAGE). */
const E820_MAX = 128;
const E820_ENTRY_SIZE = 20;

/** loadflags bit 0: the protected-mode code is loaded at 0x100000. */
export const LOADED_HIGH = 0x01;
/** type_of_loader 0xFF: "undefined" boot loader (no registered ID). */
export const LOADER_UNDEFINED = 0xff;
/** Protocol version written into a synthesized header: 2.15, what current kernels carry. */
export const SYNTH_PROTOCOL = 0x20f;
/** Default initrd_addr_max for kernels without a header to say otherwise (boot.rst: 0x37FFFFFF before 2.03). */
export const DEFAULT_INITRD_ADDR_MAX = 0x37ffffff;

/**
 * The e820 map for `memBytes` of RAM: low memory below the EBDA, the EBDA and BIOS area reserved, and
 * RAM from 1 MiB to the end. (The VGA hole 0xA0000..0xF0000 is simply absent, as on real firmware.)
 */
export function e820Map(memBytes: number): E820Entry[] {
  if (memBytes <= HIMEM_START) {
    throw new UserError(`guest memory of ${memBytes} bytes is too small: at least ${(HIMEM_START + MIB) / MIB} MiB is needed`);
  }
  if (memBytes > MAX_LOW_RAM_BYTES) {
    throw new UserError(`guest memory above ${MAX_LOW_RAM_BYTES / MIB} MiB is not supported (it would overlap the 32-bit PCI/APIC hole)`);
  }
  return [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: LOW_RAM_END - EBDA_START, type: E820_RESERVED },
    { addr: BIOS_START, size: BIOS_END - BIOS_START, type: E820_RESERVED },
    { addr: HIMEM_START, size: memBytes - HIMEM_START, type: E820_RAM },
  ];
}

export interface ZeroPageOptions {
  /** The bzImage's setup header (file bytes 0x1F1..); omitted for a vmlinux, which gets a minimal one. */
  setupHeader?: Buffer;
  /** Guest-physical address of the NUL-terminated command line. */
  cmdlineAddr: number;
  /** Length of the command line including its NUL (written to cmdline_size, as Firecracker does). */
  cmdlineSize: number;
  initrd?: { addr: number; size: number };
  e820: E820Entry[];
}

export function buildZeroPage(o: ZeroPageOptions): Buffer {
  const zp = Buffer.alloc(ZERO_PAGE_SIZE);
  if (o.setupHeader) {
    if (HDR.setupSects + o.setupHeader.length > ZP.e820Table) {
      throw new RangeError(`setup header of ${o.setupHeader.length} bytes does not fit in the zero page`);
    }
    o.setupHeader.copy(zp, HDR.setupSects);
  } else {
    // A vmlinux entered directly has no header of its own; the kernel checks these few fields
    // (docs/kvm-facts.md, boot protocol: boot_flag, "HdrS", version, kernel_alignment were enough for a 6.1 kernel).
    zp.writeUInt16LE(BOOT_FLAG, HDR.bootFlag);
    zp.writeUInt32LE(HDRS_MAGIC, HDR.header);
    zp.writeUInt16LE(SYNTH_PROTOCOL, HDR.version);
    zp.writeUInt32LE(KERNEL_LOAD_ADDR, HDR.kernelAlignment);
  }
  zp[HDR.typeOfLoader] = LOADER_UNDEFINED;
  // LOADED_HIGH only. CAN_USE_HEAP/heap_end_ptr describe the real-mode setup code's heap, and KEEP_SEGMENTS
  // the 32-bit entry; neither code path runs when the kernel is entered in 64-bit mode.
  zp[HDR.loadflags] = zp[HDR.loadflags]! | LOADED_HIGH;

  writeSplit(zp, HDR.cmdLinePtr, ZP.extCmdLinePtr, o.cmdlineAddr);
  zp.writeUInt32LE(o.cmdlineSize, HDR.cmdlineSize);
  writeSplit(zp, HDR.ramdiskImage, ZP.extRamdiskImage, o.initrd?.addr ?? 0);
  writeSplit(zp, HDR.ramdiskSize, ZP.extRamdiskSize, o.initrd?.size ?? 0);

  if (o.e820.length > E820_MAX) throw new RangeError(`${o.e820.length} e820 entries; the zero page holds ${E820_MAX}`);
  zp[ZP.e820Entries] = o.e820.length;
  o.e820.forEach((e, i) => {
    const off = ZP.e820Table + i * E820_ENTRY_SIZE;
    zp.writeBigUInt64LE(BigInt(e.addr), off);
    zp.writeBigUInt64LE(BigInt(e.size), off + 8);
    zp.writeUInt32LE(e.type, off + 16);
  });
  return zp;
}

/**
 * Where to put an initrd of `size` bytes: as high as possible, page aligned, ending at or below
 * min(initrdAddrMax + 1, memBytes), and starting at or above `kernelEnd` (everything the kernel uses).
 */
export function placeInitrd(size: number, memBytes: number, initrdAddrMax: number, kernelEnd: number): number {
  const top = Math.min(initrdAddrMax + 1, memBytes);
  const addr = Math.floor((top - size) / PAGE_SIZE) * PAGE_SIZE;
  const floor = Math.ceil(kernelEnd / PAGE_SIZE) * PAGE_SIZE;
  if (size > top || addr < floor) {
    const needMiB = Math.ceil((floor + size) / MIB);
    throw new UserError(
      `initramfs of ${(size / MIB).toFixed(1)} MiB does not fit between the kernel's end 0x${floor.toString(16)} and ` +
        `0x${top.toString(16)}` +
        (top === memBytes ? ` (the end of RAM): give --memory ${needMiB} or more` : ' (the kernel\'s initrd_addr_max)'),
    );
  }
  return addr;
}

/** Write a value split into a low u32 at `lowOff` and the high u32 at `highOff` (the ext_* fields). */
function writeSplit(zp: Buffer, lowOff: number, highOff: number, value: number): void {
  zp.writeUInt32LE(value >>> 0, lowOff);
  zp.writeUInt32LE(Math.floor(value / 0x100000000) >>> 0, highOff);
}
