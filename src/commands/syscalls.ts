import type { CommandModule } from 'yargs';
import { Syscalls, type SyscallRow } from '../../analyzers/syscalls.js';
import { recordingPath } from '../trace/recording/read.js';
import { readTrace } from '../trace/reader.js';
import { rowWriter, writeRows, type Column } from '../output/write.js';
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
    const clock = announceClock(args.trace, undefined, args.clock);
    // A whole-boot recording names each call's process (from QEMU 10's registers; '' under QEMU 7.2):
    // docs/whole-boot.md. A text trace has no such column.
    const processes = recordingPath(args.trace) ? new Map<number, string>() : null;
    const columns: Column<SyscallRow & { process?: string }>[] = [...syscallColumns(clock.unit)];
    if (processes) columns.push({ key: 'process', header: 'process' });
    // Calls stream straight to the output unless only the summary is wanted.
    const writer = args.summary ? null : rowWriter(columns, args.format);
    let written = 0;
    let analyzer: Syscalls | undefined;
    await readTrace(args.trace, (functions) => (analyzer = new Syscalls(functions, (call) => {
      if (writer && (args.top === 0 || written < args.top)) {
        writer.row(processes ? { ...call, process: processes.get(call.time_us) ?? '' } : call);
        written++;
      }
    })), { ...readOptions(args), ...(processes ? { processes } : {}) });
    analyzer!.finish();
    if (writer) return writer.end();
    await writeRows(firstRows(analyzer!.summary(), args.top), syscallSummaryColumns(clock.unit), args.format);
  },
};
