import type { CommandModule } from 'yargs';
import { Initcalls, type InitcallResult, type InitcallRow, type InitcallSummary } from '../../analyzers/initcalls.js';
import { UserError } from '../errors.js';
import { showUs, writeRows, type Column } from '../output/write.js';
import { consoleOptions, readConsole, type ConsoleArgs } from './console-input.js';
import { topOption } from './options.js';

interface Args extends ConsoleArgs {
  top: number;
}

const int = (v: unknown): string => (typeof v === 'number' ? v.toLocaleString('en-US') : '');

export const initcallsCommand: CommandModule<object, Args> = {
  command: 'initcalls <console>',
  describe: 'initcall_debug: each initcall and probe with the kernel\'s own duration, longest first',
  builder: (y) =>
    topOption(consoleOptions(y), 30, 'show the N longest') as never,
  handler: async (args) => {
    const analyzer = new Initcalls();
    const read = await readConsole(args.console, analyzer);
    const result = analyzer.result();
    if (result.rows.length === 0) throw new UserError(emptyReason(args.console, result, read.foreign));
    const { rows, summary, notes } = result;
    const shown = args.top > 0 ? rows.slice(0, args.top) : rows;
    const columns: Column<InitcallRow>[] = [
      { key: 'initcall', header: 'initcall' },
      { key: 'module', header: 'module' },
      { key: 'start_us', header: 'start (us)', show: showUs },
      { key: 'duration_us', header: 'duration (us)', show: (v, row) => (v === null ? (row.ret === null ? 'unfinished' : 'unusable') : int(v)) },
      { key: 'ret', header: 'ret', show: int },
      { key: 'depth', header: 'depth', show: int },
      { key: 'pid', header: 'pid', show: (v) => (typeof v === 'number' ? String(v) : '') }, // an id: no thousands separators
    ];
    // Uncertain figures carry both figures and a note; the columns appear only when some row has them.
    if (shown.some((r) => r.stamps_us !== undefined)) columns.push({ key: 'stamps_us', header: 'stamps (us)', show: int });
    if (shown.some((r) => r.note !== undefined)) columns.push({ key: 'note', header: 'note', show: (v) => (typeof v === 'string' ? v : '') });
    await writeRows(shown, columns, args.format);
    // The total is a last line for a person, and on stderr for CSV/JSON so the data stays one shape.
    const lines = [summaryLine(summary), ...notes];
    if (args.format === 'table') process.stdout.write(lines.map((l) => l + '\n').join(''));
    else process.stderr.write(lines.map((l) => `boot-trace: ${l}\n`).join(''));
  },
};

export function summaryLine(s: InitcallSummary): string {
  const span = s.span_us === null ? 'n/a (no calling or no "Freeing unused kernel memory")' : `${int(s.span_us)} us`;
  return (
    `total: ${int(s.initcalls)} initcalls, ${int(s.probes)} probes, ${int(s.unfinished)} unfinished; ` +
    `top-level initcalls before userspace ${int(s.top_level_sum_us)} us; first calling -> "Freeing unused kernel memory" ${span}`
  );
}

/**
 * Why a console gave no initcall rows, in one line: another tool's file, no initcall_debug on the command
 * line, or initcall_debug without a console log level that shows KERN_DEBUG (init/main.c prints them at
 * KERN_DEBUG, level 7: `ignore_loglevel`, `loglevel=8` or `debug` shows them).
 */
export function emptyReason(input: string, result: InitcallResult, foreign: string | null): string {
  const name = input === '-' ? '<stdin>' : input;
  if (foreign) return `${name}: not a console log: it looks like ${foreign} (the trace commands read it: hot-functions, first-calls, syscalls)`;
  const cl = result.commandLine;
  if (cl === null) {
    return `${name}: no initcall_debug lines (no "calling"/"initcall ... returned" line; the console shows no kernel command line to say why: boot with initcall_debug ignore_loglevel)`;
  }
  const words = cl.split(/\s+/);
  if (!words.includes('initcall_debug')) return `${name}: no initcall_debug lines: the kernel command line lacks initcall_debug (${JSON.stringify(cl)})`;
  const level = words.map((w) => /^loglevel=(\d+)$/.exec(w)).find(Boolean);
  const shows = words.includes('ignore_loglevel') || words.includes('debug') || (level && Number(level[1]) >= 8);
  if (!shows) {
    return `${name}: no initcall_debug lines: the command line has initcall_debug but neither ignore_loglevel nor a loglevel that shows KERN_DEBUG (loglevel=8 or debug)${words.includes('quiet') ? '; quiet hides them too' : ''}`;
  }
  return `${name}: no initcall_debug lines, although the command line asks for them (${JSON.stringify(cl)}): the console may be cut before the initcalls`;
}
