import type { CommandModule } from 'yargs';
import { Syscalls, type SyscallRow } from '../../analyzers/syscalls.js';
import { readTrace } from '../trace/reader.js';
import { rowWriter, showUs, writeRows, type Column } from '../output/write.js';
import { readOptions, traceOptions, type TraceArgs } from './options.js';

interface Args extends TraceArgs {
  summary: boolean;
}

export const syscallsCommand: CommandModule<object, Args> = {
  command: 'syscalls <trace>',
  describe: 'system calls: when, which, how long, from which user address',
  builder: (y) =>
    traceOptions(y).option('summary', { type: 'boolean', default: false, describe: 'per system call: count, total, mean, max' }) as never,
  handler: async (args) => {
    const callColumns: Column<SyscallRow>[] = [
      { key: 'time_us', header: 'time (us)', show: showUs },
      { key: 'syscall', header: 'syscall' },
      { key: 'duration_us', header: 'duration (us)', show: showUs },
      { key: 'user_address', header: 'from' },
    ];
    // Calls stream straight to the output unless only the summary is wanted.
    const writer = args.summary ? null : rowWriter(callColumns, args.format);
    let analyzer: Syscalls | undefined;
    await readTrace(args.trace, (functions) => (analyzer = new Syscalls(functions, (call) => writer?.row(call))), readOptions(args));
    analyzer!.finish();
    if (writer) return writer.end();
    await writeRows(analyzer!.summary(), [
      { key: 'syscall', header: 'syscall' },
      { key: 'count', header: 'count' },
      { key: 'total_us', header: 'total (us)', show: showUs },
      { key: 'mean_us', header: 'mean (us)', show: showUs },
      { key: 'max_us', header: 'max (us)', show: showUs },
    ], args.format);
  },
};
