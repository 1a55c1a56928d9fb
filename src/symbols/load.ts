/**
 * Load a symbol file the user names with --symbols: an ELF with .symtab (vmlinux) or a text table
 * (System.map, nm output, /proc/kallsyms). The format is told by the ELF magic, not the file name.
 */
import { readFileSync } from 'node:fs';
import { looksLikeElf, parseElf64 } from '../../capture/boot/elf.js';
import { messageOf, UserError } from '../errors.js';
import { symbolsFromElf } from './elf-symbols.js';
import { parseSystemMap } from './system-map.js';
import type { SymbolTable } from './symbol-table.js';

export function loadSymbolFile(file: string): SymbolTable {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new UserError(`${file}: cannot read symbol file (${messageOf(err)})`);
  }
  if (looksLikeElf(buf)) {
    const table = symbolsFromElf(parseElf64(buf, file));
    if (!table) throw new UserError(`${file}: ELF has no .symtab (stripped); give a System.map or kallsyms dump instead`);
    return table;
  }
  return parseSystemMap(buf.toString('latin1'), file);
}
