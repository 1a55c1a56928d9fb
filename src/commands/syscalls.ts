import type { CommandModule } from 'yargs';
import { Syscalls } from '../../analyzers/syscalls.js';
import { readTrace } from '../trace/reader.js';
import { rowWriter, writeRows } from '../output/write.js';
import { onClock } from '../trace/recording/clock-columns.js';

import { readOptions, traceOptions, type TraceArgs } from './options.js';
import { SYSCALL_COLUMNS, SYSCALL_SUMMARY_COLUMNS } from '../output/columns.js';

interface Args extends TraceArgs {
  summary: boolean;
}

export const syscallsCommand: CommandModule<object, Args> = {
  command: 'syscalls <trace>',
  describe: 'system calls: when, which, how long, from which user address',
  builder: (y) =>
    traceOptions(y).option('summary', { type: 'boolean', default: false, describe: 'per system call: count, total, mean, max' }) as never,
  handler: async (args) => {
    // Calls stream straight to the output unless only the summary is wanted.
    const writer = args.summary ? null : rowWriter(onClock(SYSCALL_COLUMNS, args.clock), args.format);
    let analyzer: Syscalls | undefined;
    await readTrace(args.trace, (functions) => (analyzer = new Syscalls(functions, (call) => writer?.row(call))), readOptions(args));
    analyzer!.finish();
    if (writer) return writer.end();
    await writeRows(analyzer!.summary(), onClock(SYSCALL_SUMMARY_COLUMNS, args.clock), args.format);
  },
};
