/** Options shared by the trace analyzers, so every subcommand spells and documents them the same way. */
import type { Argv } from 'yargs';
import { OUTPUT_FORMATS, defaultFormat, type OutputFormat } from '../output/write.js';
import type { ReadOptions } from '../trace/reader.js';

export interface TraceArgs {
  trace: string;
  format: OutputFormat;
  strict: boolean;
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
    .option('system-map', { type: 'string', describe: 'symbols for the addresses of an imported trace (QEMU -d exec, perf -F ip): System.map, nm, kallsyms or vmlinux' });
}

export function readOptions(args: { strict: boolean; 'system-map'?: string }): ReadOptions {
  return { strict: args.strict, ...(args['system-map'] !== undefined ? { systemMap: args['system-map'] } : {}) };
}
