import type { CommandModule } from 'yargs';
import { Syscalls } from '../../analyzers/syscalls.js';
import { readTrace } from '../trace/reader.js';
import { rowWriter, writeRows } from '../output/write.js';
import { announceClock, firstRows, readOptions, topOption, traceOptions, type TraceArgs } from './options.js';
import { syscallColumns, syscallSummaryColumns } from '../output/columns.js';

interface Args extends TraceArgs {
  summary: boolean;
  top: number;
}

export const syscallsCommand: CommandModule<object, Args> = {
  command: 'syscalls <trace>',
  describe: 'system calls: when, which, how long, from which user address',
  builder: (y) =>
    topOption(traceOptions(y), 0, 'show the first N calls (with --summary: the N with the most total time)')
      .option('summary', { type: 'boolean', default: false, describe: 'per system call: count, total, mean, max' }) as never,
  handler: async (args) => {
    const clock = announceClock(args.trace);
    // Calls stream straight to the output unless only the summary is wanted.
    const writer = args.summary ? null : rowWriter(syscallColumns(clock.unit), args.format);
    let written = 0;
    let analyzer: Syscalls | undefined;
    await readTrace(args.trace, (functions) => (analyzer = new Syscalls(functions, (call) => {
      if (writer && (args.top === 0 || written < args.top)) {
        writer.row(call);
        written++;
      }
    })), readOptions(args));
    analyzer!.finish();
    if (writer) return writer.end();
    await writeRows(firstRows(analyzer!.summary(), args.top), syscallSummaryColumns(clock.unit), args.format);
  },
};
