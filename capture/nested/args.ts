/**
 * The nested harness's command line: `nested-kvm [--wall S] [--outer-memory MIB] OUT COMMAND ARGS...`.
 * COMMAND (capture or benchmark) and ARGS go to boot-trace inside the outer guest, with `--engine kvm`
 * and `--out` added; the harness reads the options that decide which files the inner run needs.
 * Pure, so tests check it without QEMU.
 */
import { UserError } from '../../src/errors.js';

export const NESTED_COMMANDS = ['capture', 'benchmark'] as const;
export type NestedCommand = (typeof NESTED_COMMANDS)[number];

/** Default wall-clock cap on the whole outer QEMU run, seconds. */
export const DEFAULT_WALL_S = 600;
/** Default outer guest RAM (MiB): the initramfs (~200 MB, held twice while unpacked) plus the inner VM. */
export const DEFAULT_OUTER_MEMORY_MIB = 3072;

export interface NestedArgs {
  wallS: number;
  outerMemoryMiB: number;
  out: string;
  command: NestedCommand;
  /** ARGS as given. */
  args: string[];
  /** The options among ARGS that choose the inner run's files (last occurrence wins, as in yargs). */
  kernel?: string;
  guest?: string;
  initrd?: string;
  workload?: string;
  systemMap?: string;
  decompress?: 'host' | 'guest';
}

/** The value of `--name V` or `--name=V` in `args` (the last one), or undefined. */
export function optionValue(args: readonly string[], name: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}`) {
      if (i + 1 >= args.length) throw new UserError(`--${name} needs a value`);
      v = args[++i]!;
    } else if (a.startsWith(`--${name}=`)) v = a.slice(name.length + 3);
  }
  return v;
}

function positiveNumber(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !(n > 0)) throw new UserError(`${flag} ${v ?? ''}: give a positive number`.trim());
  return n;
}

export function parseNestedArgs(argv: readonly string[]): NestedArgs {
  let wallS = DEFAULT_WALL_S;
  let outerMemoryMiB = DEFAULT_OUTER_MEMORY_MIB;
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('--'); i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = inline ?? argv[++i];
    if (flag === '--wall') wallS = positiveNumber('--wall', value);
    else if (flag === '--outer-memory') outerMemoryMiB = positiveNumber('--outer-memory', value);
    else throw new UserError(`${flag}: unknown harness option (known: --wall SECONDS, --outer-memory MIB)`);
  }
  const out = argv[i];
  const command = argv[i + 1];
  if (out === undefined || command === undefined) throw new UserError('usage: nested-kvm.sh [--wall S] [--outer-memory MIB] OUT capture|benchmark ARGS...');
  if (!(NESTED_COMMANDS as readonly string[]).includes(command)) throw new UserError(`${command}: the harness runs ${NESTED_COMMANDS.join(' or ')}`);
  const args = argv.slice(i + 2);
  if (optionValue(args, 'out') !== undefined) throw new UserError(`--out: the harness sets the inner output folder itself; the result goes to ${out}`);
  const engine = optionValue(args, 'engine');
  if (engine !== undefined && engine !== 'kvm') throw new UserError(`--engine ${engine}: the harness exists to run the KVM engine (the outer guest has no QEMU)`);
  const decompress = optionValue(args, 'decompress');
  if (decompress !== undefined && decompress !== 'host' && decompress !== 'guest') throw new UserError(`--decompress ${decompress}: host or guest`);
  const r: NestedArgs = { wallS, outerMemoryMiB, out, command: command as NestedCommand, args };
  const set = <K extends 'kernel' | 'guest' | 'initrd' | 'workload' | 'systemMap'>(k: K, name: string): void => {
    const v = optionValue(args, name);
    if (v !== undefined) r[k] = v;
  };
  set('kernel', 'kernel');
  set('guest', 'guest');
  set('initrd', 'initrd');
  set('workload', 'workload');
  set('systemMap', 'system-map');
  if (decompress !== undefined) r.decompress = decompress;
  return r;
}

/** `'it''s'`-style single quoting for busybox sh. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}
