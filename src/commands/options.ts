/** Options shared by the trace analyzers, so every subcommand spells and documents them the same way. */
import type { Argv } from 'yargs';
import { UserError } from '../errors.js';
import { OUTPUT_FORMATS, defaultFormat, type OutputFormat } from '../output/write.js';
import type { ReadOptions } from '../trace/reader.js';
import { clockByKind, traceClock, type Clock } from '../output/clock.js';
import { CLOCKS as RECORDING_CLOCKS, type RecordingClock } from '../trace/recording/format.js';

export interface TraceArgs {
  trace: string;
  format: OutputFormat;
  strict: boolean;
  /** A whole-boot recording's clock (docs/whole-boot.md). */
  clock?: RecordingClock;
  'system-map'?: string;
}

/** An input positional: a path, .gz, or - for stdin. */
export function inputPositional<T>(y: Argv<T>, name: string, describe: string) {
  return y.positional(name, {
    type: 'string',
    demandOption: true,
    describe,
    // yargs reads a lone "-" as a flag with no name (true or ''); it means stdin here.
    coerce: (v: unknown) => (typeof v === 'string' && v !== '' ? v : '-'),
  });
}

/** An input positional and `--format`: what every analyzer takes. */
export function inputOptions<T>(y: Argv<T>, name: string, describe: string) {
  return inputPositional(y, name, describe)
    .option('format', {
      choices: OUTPUT_FORMATS,
      default: defaultFormat(),
      defaultDescription: 'table on a terminal, else csv',
      describe: 'output format',
    });
}

export function traceOptions<T>(y: Argv<T>) {
  return inputOptions(y, 'trace', 'trace file (the 2016 format, or perf script, ftrace, QEMU -d exec: docs/trace-format.md), .gz, or - for stdin')
    .option('strict', { type: 'boolean', default: false, describe: 'stop at the first malformed line' })
    .option('system-map', { type: 'string', describe: 'symbols for the addresses of an imported trace (QEMU -d exec, perf -F ip): System.map, nm, kallsyms or vmlinux' })
    .option('clock', recordingClockOption('a whole-boot recording\'s clock (capture --mode trace): host (microseconds, default) or instructions (guest instructions; "steps" is the same count)'));
}

/**
 * `--clock host|instructions` for a recording; "steps" (capture's name for the instruction count in step mode) is
 * accepted as the same clock, so one vocabulary works everywhere (docs/clocks.md).
 */
export function recordingClockOption(describe: string) {
  return {
    choices: [...RECORDING_CLOCKS, 'steps'] as const,
    describe,
    coerce: (v: unknown) => (v === 'steps' ? 'instructions' : v) as RecordingClock,
  };
}

export function readOptions(args: { strict: boolean; 'system-map'?: string; clock?: RecordingClock }): ReadOptions {
  return {
    strict: args.strict,
    ...(args['system-map'] !== undefined ? { systemMap: args['system-map'] } : {}),
    ...(args.clock !== undefined ? { clock: args.clock } : {}),
  };
}

/** What a numeric option takes: a whole number or any number, with a lower bound. */
export interface NumberSpec {
  /** Whole numbers only ("2.5" refused). */
  integer: boolean;
  /** The smallest value taken. */
  min: number;
  /** true: the value must be above `min` (0 refused for "a positive number"). */
  aboveMin?: boolean;
}

/** "a whole number >= 0", "a number > 0": what the option takes, for its error. */
export function describeNumber(spec: NumberSpec): string {
  if (spec.aboveMin && spec.min === 0) return spec.integer ? 'a positive whole number' : 'a positive number';
  return `${spec.integer ? 'a whole number' : 'a number'} ${spec.aboveMin ? '>' : '>='} ${spec.min}`;
}

/** The number a user's text gives under `spec`, or null (the text is then quoted in the error). */
export function parseNumber(text: string, spec: NumberSpec): number | null {
  const t = text.trim();
  if (!(spec.integer ? /^[+-]?\d+$/ : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i).test(t)) return null;
  const v = Number(t);
  if (!Number.isFinite(v) || (spec.aboveMin ? v <= spec.min : v < spec.min)) return null;
  return v;
}

/**
 * A numeric option checked by one rule for every command: the option is read as the text the user typed
 * (yargs' own `type: 'number'` would turn "abc" into NaN and the error would quote NaN), turned into a number
 * when `spec` takes it, else refused in one line quoting that text: `--depth "abc": give a whole number >= 0`
 * (UserError, exit 1). `unit` follows the value in the error ("of seconds", "of MiB").
 */
export function numberOption<T, K extends string>(y: Argv<T>, name: K, spec: NumberSpec & { default?: number; describe: string; unit?: string; need?: string; hidden?: boolean }) {
  return y
    .option(name, {
      type: 'string',
      ...(spec.default !== undefined ? { default: String(spec.default), defaultDescription: String(spec.default) } : {}),
      describe: spec.describe,
      ...(spec.hidden ? { hidden: true } : {}),
      // The raw text, so "-3" and "abc" reach the check as typed; a good one becomes a number.
      coerce: (v: unknown) => {
        if (v === undefined) return undefined;
        const text = String(Array.isArray(v) ? v.at(-1) : v);
        return parseNumber(text, spec) ?? text;
      },
    })
    // A UserError thrown here reaches the CLI as it is: one line, exit 1 (yargs wraps errors thrown by coerce).
    .check((argv) => {
      const v = (argv as Record<string, unknown>)[name];
      if (v !== undefined && typeof v !== 'number') {
        throw new UserError(`--${name} ${JSON.stringify(v)}: ${spec.need ?? `give ${describeNumber(spec)}${spec.unit ? ` ${spec.unit}` : ''}`}`);
      }
      return true;
    }) as unknown as Argv<T & { [k in K]: number }>;
}

/**
 * `--top N`: how many rows a command prints, 0 for all. Anything but a whole number >= 0 ("abc", "-3",
 * "2.5") is a one-line error: yargs alone would turn "abc" into NaN and print every row.
 */
export function topOption<T>(y: Argv<T>, fallback: number, describe: string) {
  return numberOption(y, 'top', { integer: true, min: 0, default: fallback, describe: `${describe} (0 = all)`, need: 'not a row count (a whole number, 0 for all)' });
}

/** The first `top` rows (all when top is 0). */
export const firstRows = <R>(rows: readonly R[], top: number): R[] => (top > 0 ? rows.slice(0, top) : [...rows]);

/**
 * The clock of the trace a command reads (src/output/clock.ts), with its warning on stderr when the
 * times are not boot time (stepping time, instruction counts): stderr, so piped CSV/JSON stay clean.
 */
export function announceClock(trace: string, warn: (line: string) => void = (l) => process.stderr.write(l + '\n'), recording?: RecordingClock): Clock {
  // A whole-boot recording read on its instructions clock (--clock instructions): counts, on purpose.
  if (recording === 'instructions') return clockByKind('instructions');
  const clock = traceClock(trace);
  if (clock.warning) warn(`boot-trace: ${trace}: ${clock.warning}`);
  return clock;
}
