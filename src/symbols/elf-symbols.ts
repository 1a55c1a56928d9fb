/**
 * Symbols from an ELF file's .symtab (an unstripped vmlinux, or a test guest built with cc): functions,
 * objects and untyped labels that have a name and live in a section. Each keeps its st_size and the
 * name of its section, and the allocated sections bound the symbols without a size.
 *
 * Example (vmlinux): start_kernel FUNC GLOBAL size 2620 in .init.text at 0xffffffff8304ce41.
 */
import { cString, PT_LOAD, sectionData, SHT_NOBITS, SHT_SYMTAB, type Elf64 } from '../../capture/boot/elf.js';
import { UserError } from '../errors.js';
import { SymbolTable, type PhysicalAlias, type SectionRange, type SymbolEntry } from './symbol-table.js';

const SYM_SIZE = 24;
const STT_NOTYPE = 0;
const STT_OBJECT = 1;
const STT_FUNC = 2;
const STB_LOCAL = 0;
const SHN_UNDEF = 0;
const SHN_LORESERVE = 0xff00; // ABS, COMMON and friends: no section to name
const SHF_WRITE = 0x1n;
const SHF_ALLOC = 0x2n;
const SHF_EXECINSTR = 0x4n;

/** The .symtab symbols of `elf`, or null when it has no symbol table (a stripped file). */
export function symbolsFromElf(elf: Elf64): SymbolTable | null {
  const symtab = elf.sectionHeaders.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) return null;
  const strtabHdr = elf.sectionHeaders[symtab.link];
  if (!strtabHdr) throw new UserError(`${elf.file}: .symtab links to missing string table section ${symtab.link}`);
  const syms = sectionData(elf, symtab);
  const strtab = sectionData(elf, strtabHdr);
  if (syms.length < symtab.size) throw new UserError(`${elf.file}: .symtab runs past the end of the file; truncated?`);

  const entries: SymbolEntry[] = [];
  for (let off = SYM_SIZE; off + SYM_SIZE <= syms.length; off += SYM_SIZE) {
    const info = syms[off + 4]!;
    const type = info & 0xf;
    if (type !== STT_FUNC && type !== STT_OBJECT && type !== STT_NOTYPE) continue;
    const shndx = syms.readUInt16LE(off + 6);
    if (shndx === SHN_UNDEF || shndx >= SHN_LORESERVE) continue;
    const name = cString(strtab, syms.readUInt32LE(off));
    if (name === '') continue;
    const sh = elf.sectionHeaders[shndx];
    if (!sh || !(sh.flags & SHF_ALLOC)) continue; // symbols in non-loaded sections never match a RIP
    const size = Number(syms.readBigUInt64LE(off + 16));
    const letter = typeLetter(sh.flags, sh.type);
    entries.push({
      addr: syms.readBigUInt64LE(off + 8),
      name,
      type: info >> 4 === STB_LOCAL ? letter : letter.toUpperCase(),
      size,
      section: sh.name || letter,
    });
  }
  if (entries.length === 0) return null;

  const ranges: SectionRange[] = elf.sectionHeaders
    .filter((s) => s.flags & SHF_ALLOC && s.size > 0 && s.name !== '')
    .map((s) => ({ name: s.name, start: s.addr, end: s.addr + BigInt(s.size) }));
  return new SymbolTable(entries, ranges);
}

const PF_X = 0x1;

/**
 * The executable PT_LOAD segments whose physical and virtual addresses differ, as aliases for
 * SymbolTable.setPhysicalAliases(): with them, vmlinux's startup_64 running at physical 0x1000000
 * is described as `startup_64` (a stripped vmlinux still has its program headers).
 */
export function physicalAliasesFromElf(elf: Elf64): PhysicalAlias[] {
  return elf.programHeaders
    .filter((p) => p.type === PT_LOAD && p.flags & PF_X && p.vaddr !== p.paddr && p.memsz > 0)
    .map((p) => ({ physStart: p.paddr, physEnd: p.paddr + BigInt(p.memsz), virtStart: p.vaddr }));
}

/** The nm letter for a symbol in a section with these flags (lowercase; uppercase marks globals). */
function typeLetter(flags: bigint, type: number): string {
  if (flags & SHF_EXECINSTR) return 't';
  if (type === SHT_NOBITS) return 'b';
  if (flags & SHF_WRITE) return 'd';
  return 'r';
}
