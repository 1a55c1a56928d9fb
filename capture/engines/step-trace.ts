/**
 * What the step engines (KVM step mode, capture/engines/kvm/vcpu-worker.ts; QEMU step mode,
 * capture/engines/qemu/qemu-step.ts) share about trace.log: which symbol table names its lines, and the
 * `#` header at its top (docs/trace-format.md).
 */
import { loadSymbolFile } from '../../src/symbols/load.js';
import { physicalAliasesFromElf, symbolsFromElf } from '../../src/symbols/elf-symbols.js';
import type { SymbolTable } from '../../src/symbols/symbol-table.js';
import type { Elf64 } from '../boot/elf.js';

export interface SymbolChoice {
  table: SymbolTable | null;
  /** For the trace header: where the names come from. */
  note: string;
}

/**
 * The table trace lines are named from, in this order: one given by the caller (null: none, bare
 * addresses), a symbol file (--system-map: System.map, nm output, kallsyms dump or ELF), the kernel ELF's
 * own .symtab (the demo guest, an unstripped vmlinux). `table` null with neither: the caller may still try
 * the kernel's kallsyms (QEMU step mode does, asynchronously). An ELF kernel is entered at its physical
 * address and runs there until it jumps to its link address, so its table also names those addresses
 * (withPhysicalAliases). Throws UserError for an unreadable symbol file.
 */
export function selectSymbols(o: { given?: SymbolTable | null; systemMap?: string; elf: Elf64 | null }): SymbolChoice {
  let choice: SymbolChoice;
  if (o.given === null) return { table: null, note: 'none (bare addresses)' };
  if (o.given !== undefined) choice = { table: o.given, note: 'given' };
  else if (o.systemMap !== undefined) choice = { table: loadSymbolFile(o.systemMap), note: `symbol file ${o.systemMap}` };
  else {
    const t = o.elf ? symbolsFromElf(o.elf) : null;
    choice = t ? { table: t, note: 'ELF .symtab of the kernel' } : { table: null, note: 'none' };
  }
  withPhysicalAliases(choice.table, o.elf);
  return choice;
}

/** Name an ELF kernel's physical entry addresses through its program headers (vmlinux's startup_64 at 0x1000000). */
export function withPhysicalAliases(table: SymbolTable | null, elf: Elf64 | null): void {
  if (table && elf) table.setPhysicalAliases(physicalAliasesFromElf(elf));
}

export interface TraceHeader {
  /** `kvm` or `qemu, gdbstub`. */
  engine: string;
  kernel: string;
  cmdline: string;
  /** After `mode: step`, e.g. `block-irq` or `Qqemu.sstep=7, interrupts masked while stepping`. */
  modeDetail?: string;
  symbols: string;
  /** `0x1000000 (startup_64 in section .text)`, or the engine's own wording when stepping starts at the first instruction. */
  traceFrom: string;
  /** Each --trace-until, described. */
  traceUntil?: string[];
  clock: 'host' | 'steps';
  /** What host time 0 is: `the VM was created`, `QEMU was started`. */
  clockZero: string;
}

/** The `#` comment lines at the top of trace.log (without the `# `), one per fact. */
export function traceHeaderLines(h: TraceHeader): string[] {
  return [
    `boot-trace capture (engine ${h.engine})`,
    `kernel: ${h.kernel}`,
    `cmdline: ${h.cmdline}`,
    `mode: step${h.modeDetail ? ` (${h.modeDetail})` : ''}`,
    `symbols: ${h.symbols}`,
    `trace-from: ${h.traceFrom}`,
    ...(h.traceUntil ?? []).map((u) => `trace-until: ${u}`),
    h.clock === 'host' ? `clock: host (microseconds since ${h.clockZero})` : 'clock: steps (the timestamp is the instruction index)',
  ];
}
