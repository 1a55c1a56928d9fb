/**
 * Trace windows: where single-stepping starts (--trace-from) and stops (--trace-until).
 *
 *   --trace-from start_kernel            a symbol of the capture's symbol table
 *   --trace-from 0xffffffff8304ce41      an address (0x..., or bare hex of 8+ digits, as the QEMU engine takes)
 *   --trace-until marker:ready           the console line BOOT_TIME:ready (until only)
 *
 * Addresses are linear (virtual) addresses: with `nokaslr` the kallsyms addresses are the ones the kernel
 * runs at, and both its own page tables and the VMM's boot high mapping map them, so a hardware
 * breakpoint on one fires whichever tables are live.
 */
import { UserError } from '../src/errors.js';
import type { SymbolTable } from '../src/symbols/symbol-table.js';

export type TraceSpec = { kind: 'address'; address: bigint } | { kind: 'marker'; stage: string };

const HEX = /^(?:0x([0-9a-fA-F]{1,16})|([0-9a-fA-F]{8,16}))$/;

/** True when `spec` needs a symbol table to resolve (it is neither an address nor a marker). */
export function needsSymbols(spec: string | undefined): boolean {
  return spec !== undefined && !HEX.test(spec) && !spec.startsWith('marker:');
}

/**
 * Resolve one --trace-from/--trace-until value. `option` names the flag in errors; markers are accepted
 * only for --trace-until. `symbols` null: only addresses (and markers) work.
 */
export function parseTraceSpec(option: '--trace-from' | '--trace-until', spec: string, symbols: SymbolTable | null): TraceSpec {
  if (spec.startsWith('marker:')) {
    if (option !== '--trace-until') throw new UserError(`${option} ${spec}: a marker can only end a trace window (--trace-until marker:STAGE)`);
    const stage = spec.slice('marker:'.length);
    if (!/^[^:\s]+$/.test(stage)) throw new UserError(`${option} ${spec}: give a stage name, as in BOOT_TIME:<stage>:<ns> (e.g. marker:ready)`);
    return { kind: 'marker', stage };
  }
  const hex = HEX.exec(spec);
  if (hex) return { kind: 'address', address: BigInt(`0x${hex[1] ?? hex[2]}`) };
  if (!/^[A-Za-z_.$][\w.$]*$/.test(spec)) throw new UserError(`${option} ${spec}: not a symbol name, an address (0x...) or marker:STAGE`);
  if (!symbols) throw new UserError(`${option} ${spec}: no symbol table to look it up in; give an address (0xffffffff81000000) or --system-map`);
  const a = symbols.resolve(spec);
  if (a === undefined) throw new UserError(`${option} ${spec}: no such symbol in the kernel's symbol table`);
  return { kind: 'address', address: a };
}
