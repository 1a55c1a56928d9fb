/**
 * A kernel's symbols without a debug package: decompress the bzImage (if it is one, through the
 * vmlinux cache of decompress.ts), decode its kallsyms tables, and cache the resulting System.map text
 * in cacheDir('symbols')/<sha256 of the kernel file>.map.
 *
 * Entry points:
 *   kernelSystemMap(path)   -> { text, count, cached }     (what `boot-trace symbols` prints)
 *   kernelSymbolTable(path) -> SymbolTable                  (what capture uses to name addresses)
 * A vmlinux that still has .symtab could use src/symbols/elf-symbols.ts instead; kallsyms works for both.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../src/atomic-write.js';
import { join } from 'node:path';
import { cacheDir } from '../../src/cache.js';
import { parseSystemMap } from '../../src/symbols/system-map.js';
import type { SymbolTable } from '../../src/symbols/symbol-table.js';
import { decompressKernel, readKernelFile, sha256Hex } from './decompress.js';
import { decodeKallsyms, toSystemMap } from './kallsyms.js';

export interface KernelSystemMap {
  /** System.map text, one `ffffffff81000000 T _stext` line per kallsyms entry, in address order. */
  text: string;
  /** Number of lines. */
  count: number;
  /** True when read from cacheDir('symbols'). */
  cached: boolean;
  /** Path of the cache entry. */
  cacheFile: string;
}

export async function kernelSystemMap(path: string): Promise<KernelSystemMap> {
  const buf = readKernelFile(path);
  const cacheFile = join(cacheDir('symbols'), `${sha256Hex(buf)}.map`);
  if (existsSync(cacheFile)) {
    const text = readFileSync(cacheFile, 'latin1');
    return { text, count: countLines(text), cached: true, cacheFile };
  }
  // Through decompressKernel's cache: a capture needs the same vmlinux to boot it.
  const { vmlinux } = await decompressKernel(path);
  const entries = decodeKallsyms(vmlinux, path);
  const text = toSystemMap(entries);
  writeFileAtomic(cacheFile, text, 'the symbol cache', 'latin1');
  return { text, count: entries.length, cached: false, cacheFile };
}

/** The kernel's symbols as the lookup table the trace writer uses. */
export async function kernelSymbolTable(path: string): Promise<SymbolTable> {
  const map = await kernelSystemMap(path);
  return parseSystemMap(map.text, map.cacheFile);
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
