/**
 * Symbol tables in the text formats the kernel and binutils produce, one symbol a line:
 *   System.map, nm:     ffffffff81000000 T _stext
 *   nm -S (with size):  ffffffff8304ce41 0000000000000a3c T start_kernel
 *   /proc/kallsyms:     ffffffffc0a01000 t ext4_fill_super\t[ext4]
 * Absolute symbols (A/a) and undefined ones (U/w/v with no address) say nothing about code, so they
 * are skipped. Section markers (_stext/_etext, __bss_start/__bss_stop, ...) become section ranges that
 * name and bound the symbols inside them.
 */
import { UserError } from '../errors.js';
import { SymbolTable, type SectionRange, type SymbolEntry } from './symbol-table.js';

/** Marker pairs that delimit a section in the kernel's linker script (arch/x86/kernel/vmlinux.lds.S). */
const SECTION_MARKERS: readonly [string, string, string][] = [
  ['.text', '_stext', '_etext'],
  ['.rodata', '__start_rodata', '__end_rodata'],
  ['.data', '_sdata', '_edata'],
  ['.init.text', '_sinittext', '_einittext'],
  ['.bss', '__bss_start', '__bss_stop'],
  ['.data..percpu', '__per_cpu_start', '__per_cpu_end'],
];

/**
 * Linker-script symbols that mark where a region ends (see SymbolEntry.endMarker): `_end`, `_etext`,
 * `__bss_stop`, `__brk_limit`, `__end_*` (`__end_rodata`, `__end_pci_fixups_early`), `__*_text_end`
 * (`__irqentry_text_end`) and a few named ones. Not every `*_end`: `__delayacct_blkio_end` and
 * `__tracepoint_ext4_write_end` are real functions and objects.
 */
const END_MARKER =
  /^(?:_end|_etext|_edata|_einittext|__bss_stop|__brk_limit|__init_end|__per_cpu_end|__smp_locks_end|__nosave_end|__init_scratch_end|__indirect_thunk_end|__end_.+|__.+_text_end)$/;

const HEX = /^[0-9a-fA-F]{1,16}$/;

export function parseSystemMap(text: string, file: string): SymbolTable {
  const entries: SymbolEntry[] = [];
  let lineNo = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.slice(start, end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end);
    start = end + 1;
    const e = parseLine(line, file, lineNo);
    if (e) entries.push(e);
  }
  if (!entries.some((e) => e.type !== 'A' && e.type !== 'a')) throw new UserError(`${file}: no symbols (expected lines like "ffffffff81000000 T _stext")`);
  // Absolute symbols are dropped only now: some kernels mark the per-cpu section's markers absolute.
  const sections = markerSections(entries);
  return new SymbolTable(
    entries.filter((e) => e.type !== 'A' && e.type !== 'a'),
    sections,
  );
}

/** A well-formed line in one match: address, optional size, type, name, optional [module]. */
const LINE = /^([0-9a-fA-F]{1,16})(?: ([0-9a-fA-F]{1,16}))? ([A-TV-Za-z?-]) (\S+)(?:\t\[([^\]\s]+)\])?$/;

function parseLine(line: string, file: string, lineNo: number): SymbolEntry | null {
  const m = LINE.exec(line);
  if (m) {
    const e: SymbolEntry = { addr: BigInt('0x' + m[1]!), name: m[4]!, type: m[3]! };
    if (m[2] !== undefined) e.size = parseInt(m[2], 16);
    if (m[5] !== undefined) e.module = m[5];
    else if (END_MARKER.test(e.name)) e.endMarker = true;
    return e;
  }
  return parseUnusualLine(line, file, lineNo);
}

/** Lines the fast pattern does not take: blank, undefined symbols, extra spaces, or malformed (with a reason). */
function parseUnusualLine(line: string, file: string, lineNo: number): SymbolEntry | null {
  if (line.trim() === '') return null;
  // The module tag of kallsyms is separated by a tab: "addr t name\t[module]".
  let module: string | undefined;
  let body = line;
  const tab = line.indexOf('\t');
  if (tab >= 0) {
    const tag = line.slice(tab + 1).trim();
    const m = /^\[([^\]]+)\]$/.exec(tag);
    if (!m) bad(file, lineNo, line, 'text after the tab is not a [module] tag');
    module = m![1];
    body = line.slice(0, tab);
  }
  const f = body.trim().split(/ +/);
  // Undefined symbols have no address: "                 U puts", "                 w __gmon_start__".
  if (f.length === 2 && /^[Uwv]$/.test(f[0]!)) return null;
  let addrText: string;
  let sizeText: string | undefined;
  let type: string;
  let name: string;
  if (f.length === 3) [addrText, type, name] = f as [string, string, string];
  else if (f.length === 4) [addrText, sizeText, type, name] = f as [string, string, string, string];
  else return bad(file, lineNo, line, `expected "address type name", got ${f.length} fields`);
  if (!HEX.test(addrText)) bad(file, lineNo, line, `"${addrText}" is not a hex address`);
  if (sizeText !== undefined && !HEX.test(sizeText)) bad(file, lineNo, line, `"${sizeText}" is not a hex size`);
  if (!/^[A-Za-z?-]$/.test(type)) bad(file, lineNo, line, `"${type}" is not a symbol type letter`);
  if (type === 'U') return null;
  const e: SymbolEntry = { addr: BigInt('0x' + addrText), name, type };
  if (sizeText !== undefined) e.size = parseInt(sizeText, 16);
  if (module !== undefined) e.module = module;
  else if (END_MARKER.test(name)) e.endMarker = true;
  return e;
}

function bad(file: string, lineNo: number, line: string, why: string): never {
  const shown = line.length > 80 ? line.slice(0, 77) + '...' : line;
  throw new UserError(`${file}:${lineNo}: malformed symbol line "${shown}" (${why})`);
}

/** Section ranges from the kernel's start/end markers, where both are present and ordered. */
function markerSections(entries: readonly SymbolEntry[]): SectionRange[] {
  const want = new Set(SECTION_MARKERS.flatMap(([, s, e]) => [s, e]));
  const at = new Map<string, bigint>();
  for (const e of entries) if (want.has(e.name) && !e.module && !at.has(e.name)) at.set(e.name, e.addr);
  const out: SectionRange[] = [];
  for (const [name, s, e] of SECTION_MARKERS) {
    const start = at.get(s);
    const end = at.get(e);
    if (start !== undefined && end !== undefined && end > start) out.push({ name, start, end });
  }
  return out;
}
