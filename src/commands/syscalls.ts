import type { CommandModule } from 'yargs';
import { Syscalls, type SyscallRow } from '../../analyzers/syscalls.js';
import { recordingPath } from '../trace/recording/read.js';
import { readTrace } from '../trace/reader.js';
import { rowWriter, writeRows, type Column } from '../output/write.js';
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
    // A whole-boot recording names each call's process (from QEMU 10's registers; '' under QEMU 7.2):
    // docs/whole-boot.md. A text trace has no such column.
    const processes = recordingPath(args.trace) ? new Map<number, string>() : null;
    const columns: Column<SyscallRow & { process?: string }>[] = onClock(SYSCALL_COLUMNS, args.clock);
    if (processes) columns.push({ key: 'process', header: 'process' });
    // Calls stream straight to the output unless only the summary is wanted.
    const writer = args.summary ? null : rowWriter(columns, args.format);
    const row = (call: SyscallRow): SyscallRow & { process?: string } => (processes ? { ...call, process: processes.get(call.time_us) ?? '' } : call);
    let analyzer: Syscalls | undefined;
    await readTrace(args.trace, (functions) => (analyzer = new Syscalls(functions, (call) => writer?.row(row(call)))), { ...readOptions(args), ...(processes ? { processes } : {}) });
    analyzer!.finish();
    if (writer) return writer.end();
    await writeRows(analyzer!.summary(), onClock(SYSCALL_SUMMARY_COLUMNS, args.clock), args.format);
  },
};
