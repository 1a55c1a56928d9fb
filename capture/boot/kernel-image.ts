/**
 * A kernel file, whatever its format, as the loader needs it: segments to copy into guest RAM at
 * guest-physical addresses, the 64-bit entry RIP, and how far up the kernel will use memory.
 *
 * - bzImage: the protected-mode part goes to HIMEM_START and is entered at +0x200 (64-bit entry,
 *   xloadflags bit 0). Its decompressor moves to max(pref_address, HIMEM_START aligned to
 *   kernel_alignment) — 0x1000000 with nokaslr — and needs init_size bytes there.
 * - ELF vmlinux (or a freestanding test guest): PT_LOAD segments at p_paddr, entered at e_entry.
 */
import { UserError } from '../../src/errors.js';
import { BZIMAGE_ENTRY64_OFFSET, HIMEM_START, MIB } from '../layout.js';
import { looksLikeBzImage, parseBzImage, type BzImage } from './bzimage.js';
import { loadSegments, looksLikeElf, parseElf64, PT_LOAD, type Elf64, type LoadSegment } from './elf.js';

export interface KernelImage {
  kind: 'bzimage' | 'elf';
  segments: LoadSegment[];
  /** Guest-physical 64-bit entry RIP. */
  entry: number;
  /** Setup header to copy into the zero page (bzImage only; a vmlinux gets a synthesized one). */
  setupHeader?: Buffer;
  /** Bytes the kernel needs from its run address (bzImage init_size; for ELF the span of its segments). */
  initSize: number;
  /** End (exclusive, guest-physical) of everything the kernel must find in RAM, init_size included. */
  highestAddress: number;
  elf?: Elf64;
  bzImage?: BzImage;
}

export function loadKernelImage(buf: Buffer, file: string): KernelImage {
  if (looksLikeElf(buf)) return fromElf(parseElf64(buf, file));
  if (looksLikeBzImage(buf)) return fromBzImage(parseBzImage(buf, file));
  const why =
    buf.length < 0x206
      ? `file is only ${buf.length} bytes: no "HdrS" at 0x202, no ELF magic`
      : 'no "HdrS" at 0x202, no ELF magic';
  throw new UserError(`${file}: not a bzImage or ELF vmlinux (${why})`);
}

function fromBzImage(bz: BzImage): KernelImage {
  const pm = bz.protectedMode;
  const align = bz.kernelAlignment > 0 ? bz.kernelAlignment : 1;
  const alignedLoad = Math.ceil(HIMEM_START / align) * align;
  const pref = Number(bz.prefAddress);
  // Where the decompressor relocates itself and the kernel (arch/x86/boot/compressed/head_64.S: the load
  // address rounded up to kernel_alignment, but never below LOAD_PHYSICAL_ADDR = pref_address).
  const runAddr = bz.relocatable ? Math.max(alignedLoad, pref) : pref;
  return {
    kind: 'bzimage',
    segments: [{ gpa: HIMEM_START, data: pm, memsz: pm.length }],
    entry: HIMEM_START + BZIMAGE_ENTRY64_OFFSET,
    setupHeader: bz.setupHeader,
    initSize: bz.initSize,
    highestAddress: Math.max(HIMEM_START + pm.length, runAddr + bz.initSize),
    bzImage: bz,
  };
}

function fromElf(elf: Elf64): KernelImage {
  const segments = loadSegments(elf);
  if (segments.length === 0) throw new UserError(`${elf.file}: ELF has no PT_LOAD segments to load`);
  const lowest = Math.min(...segments.map((s) => s.gpa));
  const highest = Math.max(...segments.map((s) => s.gpa + s.memsz));
  return {
    kind: 'elf',
    segments,
    entry: physicalEntry(elf),
    initSize: highest - lowest,
    highestAddress: highest,
    elf,
  };
}

/**
 * e_entry as a guest-physical address. vmlinux's e_entry is already physical (phys_startup_64); a file
 * linked high gives a virtual entry, which is translated through the PT_LOAD that contains it.
 */
export function physicalEntry(elf: Elf64): number {
  const e = elf.entry;
  const loads = elf.programHeaders.filter((p) => p.type === PT_LOAD);
  for (const p of loads) if (e >= p.paddr && e < p.paddr + BigInt(p.memsz)) return Number(e);
  for (const p of loads) {
    if (e >= p.vaddr && e < p.vaddr + BigInt(p.memsz)) return Number(p.paddr + (e - p.vaddr));
  }
  throw new UserError(`${elf.file}: entry point 0x${e.toString(16)} is in no PT_LOAD segment`);
}

/** UserError unless the kernel fits in `memBytes` of guest RAM and stays clear of the boot structures below 1 MiB. */
export function checkFits(image: KernelImage, memBytes: number, file: string): void {
  for (const s of image.segments) {
    if (s.gpa < HIMEM_START) {
      throw new UserError(
        `${file}: segment at physical 0x${s.gpa.toString(16)} overlaps the boot structures below 0x${HIMEM_START.toString(16)}`,
      );
    }
  }
  if (image.highestAddress > memBytes) {
    const needMiB = Math.ceil(image.highestAddress / MIB);
    const haveMiB = Math.floor(memBytes / MIB);
    throw new UserError(
      `${file}: kernel needs ${needMiB} MiB of guest memory up to 0x${image.highestAddress.toString(16)}, ` +
        `--memory ${haveMiB} gives ${haveMiB} MiB`,
    );
  }
}
