import type { CommandModule } from 'yargs';
import { Initcalls, type InitcallSummary } from '../../analyzers/initcalls.js';
import { showUs, writeRows } from '../output/write.js';
import { consoleOptions, readConsole, requireTimedLines, type ConsoleArgs } from './console-input.js';

interface Args extends ConsoleArgs {
  top: number;
}

const int = (v: unknown): string => (typeof v === 'number' ? v.toLocaleString('en-US') : '');

export const initcallsCommand: CommandModule<object, Args> = {
  command: 'initcalls <console>',
  describe: 'initcall_debug: each initcall and probe with the kernel\'s own duration, longest first',
  builder: (y) =>
    consoleOptions(y).option('top', { type: 'number', default: 30, describe: 'show the N longest (0 = all)' }) as never,
  handler: async (args) => {
    const analyzer = new Initcalls();
    requireTimedLines(args.console, await readConsole(args.console, analyzer));
    const { rows, summary } = analyzer.result();
    const shown = args.top > 0 ? rows.slice(0, args.top) : rows;
    await writeRows(shown, [
      { key: 'initcall', header: 'initcall' },
      { key: 'module', header: 'module' },
      { key: 'start_us', header: 'start (us)', show: showUs },
      { key: 'duration_us', header: 'duration (us)', show: (v) => (v === null ? 'unfinished' : int(v)) },
      { key: 'ret', header: 'ret', show: int },
      { key: 'depth', header: 'depth', show: int },
      { key: 'pid', header: 'pid', show: int },
    ], args.format);
    // The total is a last line for a person, and on stderr for CSV/JSON so the data stays one shape.
    const line = summaryLine(summary);
    if (args.format === 'table') process.stdout.write(line + '\n');
    else process.stderr.write(`boot-trace: ${line}\n`);
  },
};

export function summaryLine(s: InitcallSummary): string {
  const span = s.span_us === null ? 'n/a (no calling or no "Freeing unused kernel memory")' : `${int(s.span_us)} us`;
  return (
    `total: ${int(s.initcalls)} initcalls, ${int(s.probes)} probes, ${int(s.unfinished)} unfinished; ` +
    `top-level initcalls before userspace ${int(s.top_level_sum_us)} us; first calling -> "Freeing unused kernel memory" ${span}`
  );
}
