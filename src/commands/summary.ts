import type { CommandModule } from 'yargs';
import { FirstCalls } from '../../analyzers/first-calls.js';
import { HotFunctions } from '../../analyzers/hot-functions.js';
import { Syscalls } from '../../analyzers/syscalls.js';
import { renderTable } from '../output/write.js';
import { allOf } from '../trace/multi-visitor.js';
import { readTrace } from '../trace/reader.js';
import { sample } from '../samples.js';
import { isCaptureDir } from '../../capture/output/folder.js';
import { captureSummaryLines } from './capture-summary.js';
import { FIRST_CALL_COLUMNS, HOT_FUNCTION_COLUMNS, SYSCALL_COLUMNS } from '../output/columns.js';

interface Args {
  trace: string;
  top: number;
}

/** The three trace analyzers in one pass, as short tables: what a person looks at first. */
export const summaryCommand: CommandModule<object, Args> = {
  command: 'summary [trace]',
  describe: 'hot functions, first calls and system calls of a trace in one pass; or the report of a capture folder',
  builder: (y) =>
    y
      .positional('trace', { type: 'string', default: sample('2016-init-module.log'), defaultDescription: 'a bundled 2016 boot trace excerpt', describe: 'a trace file, or a capture folder (profile, markers, stages, initcalls, hot functions)' })
      .option('top', { type: 'number', default: 10, describe: 'rows per table' }) as never,
  handler: async (args) => {
    if (isCaptureDir(args.trace)) {
      process.stdout.write((await captureSummaryLines(args.trace, args.top)).join('\n') + '\n');
      return;
    }
    const hot = new HotFunctions();
    const first = new FirstCalls();
    let calls: Syscalls | undefined;
    const r = await readTrace(args.trace, (functions) => allOf(hot, first, (calls = new Syscalls(functions))));
    const out = process.stdout;
    out.write(`${args.trace}: ${r.events.toLocaleString('en-US')} events, ${r.functions.size - 2} functions\n\n`);
    out.write(`Hottest functions (self time)\n`);
    out.write(renderTable(hot.rows(r.functions, args.top), HOT_FUNCTION_COLUMNS));
    out.write(`\nFirst calls\n`);
    out.write(renderTable(first.rows(r.functions).slice(0, args.top), FIRST_CALL_COLUMNS));
    out.write(`\nSystem calls\n`);
    out.write(renderTable(calls!.finish(), SYSCALL_COLUMNS));
  },
};
