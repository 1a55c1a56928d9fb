/**
 * A reader for 64-bit little-endian x86-64 ELF files: an uncompressed vmlinux, the payload of a
 * bzImage (itself a stripped vmlinux), or a freestanding test guest. Reads the header, program headers,
 * section headers and section names; never copies file data (segments are subarrays).
 *
 * Example: Debian's 6.1 cloud vmlinux has 5 PT_LOAD segments at p_paddr 0x1000000.., vaddr
 * 0xffffffff81000000.., and e_entry 0x1000000 (phys_startup_64).
 */
import { UserError } from '../../src/errors.js';

export const PT_LOAD = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOBITS = 8;
export const EM_X86_64 = 62;

export interface ElfProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: number;
  align: bigint;
}

export interface ElfSectionHeader {
  /** Name from .shstrtab ('' when there is none). */
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: bigint;
  entsize: number;
}

export interface Elf64 {
  /** The whole file; section and segment data are read from it. */
  buf: Buffer;
  file: string;
  /** e_type: 2 = EXEC, 3 = DYN. */
  type: number;
  machine: number;
  /** e_entry as written in the file (virtual or physical, see kernel-image.ts). */
  entry: bigint;
  programHeaders: ElfProgramHeader[];
  sectionHeaders: ElfSectionHeader[];
}

/** A PT_LOAD segment placed at its physical address. */
export interface LoadSegment {
  gpa: number;
  data: Buffer;
  memsz: number;
}

const ELF_MAGIC = 0x464c457f; // "\x7fELF" little-endian
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;

/** True when `buf` starts with the ELF magic; for format detection. */
export function looksLikeElf(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

export function parseElf64(buf: Buffer, file: string): Elf64 {
  const fail = (why: string): never => {
    throw new UserError(`${file}: not a usable x86-64 ELF (${why})`);
  };
  if (buf.length < 16 || buf.readUInt32LE(0) !== ELF_MAGIC) fail('no ELF magic');
  if (buf[4] !== 2) fail(buf[4] === 1 ? '32-bit ELF (ELFCLASS32); a 64-bit vmlinux is needed' : `ELF class ${buf[4]}`);
  if (buf[5] !== 1) fail('big-endian ELF');
  if (buf.length < EHDR_SIZE) fail(`file is ${buf.length} bytes, shorter than the 64-byte ELF header`);
  const machine = buf.readUInt16LE(18);
  if (machine !== EM_X86_64) fail(`e_machine ${machine} is not x86-64 (62)`);

  const type = buf.readUInt16LE(16);
  const entry = buf.readBigUInt64LE(24);
  const phoff = num(buf.readBigUInt64LE(32), 'e_phoff', fail);
  const shoff = num(buf.readBigUInt64LE(40), 'e_shoff', fail);
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  const shentsize = buf.readUInt16LE(58);
  const shnum = buf.readUInt16LE(60);
  const shstrndx = buf.readUInt16LE(62);

  const programHeaders: ElfProgramHeader[] = [];
  if (phnum > 0) {
    if (phentsize < PHDR_SIZE) fail(`e_phentsize ${phentsize} < 56`);
    if (phoff + phnum * phentsize > buf.length) fail(`program headers at 0x${phoff.toString(16)} run past the end of the ${buf.length}-byte file; truncated?`);
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * phentsize;
      const ph: ElfProgramHeader = {
        type: buf.readUInt32LE(o),
        flags: buf.readUInt32LE(o + 4),
        offset: num(buf.readBigUInt64LE(o + 8), 'p_offset', fail),
        vaddr: buf.readBigUInt64LE(o + 16),
        paddr: buf.readBigUInt64LE(o + 24),
        filesz: num(buf.readBigUInt64LE(o + 32), 'p_filesz', fail),
        memsz: num(buf.readBigUInt64LE(o + 40), 'p_memsz', fail),
        align: buf.readBigUInt64LE(o + 48),
      };
      if (ph.type === PT_LOAD && ph.offset + ph.filesz > buf.length) {
        fail(`segment ${i} (offset 0x${ph.offset.toString(16)}, 0x${ph.filesz.toString(16)} bytes) runs past the end of the ${buf.length}-byte file; truncated?`);
      }
      if (ph.filesz > ph.memsz) fail(`segment ${i} has p_filesz > p_memsz`);
      programHeaders.push(ph);
    }
  }

  const sectionHeaders: ElfSectionHeader[] = [];
  // Section headers are optional for loading; a file cut before them still loads if its segments are whole,
  // but a header table that claims to be there must be complete.
  if (shnum > 0 && shoff !== 0) {
    if (shentsize < SHDR_SIZE) fail(`e_shentsize ${shentsize} < 64`);
    if (shoff + shnum * shentsize > buf.length) fail(`section headers at 0x${shoff.toString(16)} run past the end of the ${buf.length}-byte file; truncated?`);
    const nameOffsets: number[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      nameOffsets.push(buf.readUInt32LE(o));
      sectionHeaders.push({
        name: '',
        type: buf.readUInt32LE(o + 4),
        flags: buf.readBigUInt64LE(o + 8),
        addr: buf.readBigUInt64LE(o + 16),
        offset: num(buf.readBigUInt64LE(o + 24), 'sh_offset', fail),
        size: num(buf.readBigUInt64LE(o + 32), 'sh_size', fail),
        link: buf.readUInt32LE(o + 40),
        info: buf.readUInt32LE(o + 44),
        addralign: buf.readBigUInt64LE(o + 48),
        entsize: num(buf.readBigUInt64LE(o + 56), 'sh_entsize', fail),
      });
    }
    const strtab = sectionHeaders[shstrndx];
    if (shstrndx !== 0 && strtab && strtab.type !== SHT_NOBITS && strtab.offset + strtab.size <= buf.length) {
      const names = buf.subarray(strtab.offset, strtab.offset + strtab.size);
      sectionHeaders.forEach((sh, i) => (sh.name = cString(names, nameOffsets[i]!)));
    }
  }

  return { buf, file, type, machine, entry, programHeaders, sectionHeaders };
}

/** The PT_LOAD segments at their physical addresses (p_paddr), with the file bytes to copy. */
export function loadSegments(elf: Elf64): LoadSegment[] {
  const out: LoadSegment[] = [];
  for (const ph of elf.programHeaders) {
    if (ph.type !== PT_LOAD || ph.memsz === 0) continue;
    if (ph.paddr + BigInt(ph.memsz) > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new UserError(`${elf.file}: PT_LOAD segment at physical 0x${ph.paddr.toString(16)} is beyond any guest memory`);
    }
    out.push({ gpa: Number(ph.paddr), data: elf.buf.subarray(ph.offset, ph.offset + ph.filesz), memsz: ph.memsz });
  }
  return out;
}

/** The section data, or an empty buffer for SHT_NOBITS / out-of-file sections. */
export function sectionData(elf: Elf64, sh: ElfSectionHeader): Buffer {
  if (sh.type === SHT_NOBITS || sh.offset + sh.size > elf.buf.length) return elf.buf.subarray(0, 0);
  return elf.buf.subarray(sh.offset, sh.offset + sh.size);
}

/** NUL-terminated string at `off` in `b` (latin1: symbol and section names are ASCII). */
export function cString(b: Buffer, off: number): string {
  if (off >= b.length) return '';
  let end = b.indexOf(0, off);
  if (end < 0) end = b.length;
  return b.toString('latin1', off, end);
}

function num(v: bigint, what: string, fail: (why: string) => never): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} 0x${v.toString(16)} is out of range`);
  return Number(v);
}
