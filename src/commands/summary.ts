import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { FirstCalls } from '../../analyzers/first-calls.js';
import { HotFunctions } from '../../analyzers/hot-functions.js';
import { Syscalls } from '../../analyzers/syscalls.js';
import { UserError } from '../errors.js';
import { OUTPUT_FORMATS, renderTable, writeRows, type Column, type OutputFormat } from '../output/write.js';
import { allOf } from '../trace/multi-visitor.js';
import { readTrace } from '../trace/reader.js';
import { sample } from '../samples.js';
import { recordingPath } from '../trace/recording/read.js';
import { CONSOLE_FILE, isCaptureDir, PROFILE_FILE, RECORDING_FILE, TRACE_FILE } from '../../capture/output/folder.js';

const isDirectory = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};
import { peekProfile } from '../../capture/output/profile.js';
import { captureSummaryLines } from './capture-summary.js';
import { firstCallColumns, hotFunctionColumns, syscallSummaryColumns } from '../output/columns.js';
import { firstRows, topOption } from './options.js';
import { clockOf, readTraceHeader, traceClock, type Clock } from '../output/clock.js';

/** What the capture's times mean (src/output/clock.ts), and the warning when they are not boot time. */
function captureClockLines(dir: string): string[] {
  // No profile (or captureSummaryLines already reported a bad one): the trace header decides.
  const profile = peekProfile(dir);
  const trace = join(dir, 'trace.log');
  const clocks: Array<[string, Clock]> = [['console', clockOf({ profile, of: 'console' })]];
  if (existsSync(trace)) clocks.push(['trace', clockOf({ header: readTraceHeader(trace), profile })]);
  else if (existsSync(join(dir, RECORDING_FILE))) clocks.push(['trace', traceClock(join(dir, RECORDING_FILE))]);
  const out = ['Times'];
  for (const [what, c] of clocks) out.push(`  ${what}: ${c.description}`);
  for (const w of new Set(clocks.map(([, c]) => c.warning).filter((w): w is string => w !== null))) out.push(`  note: ${w}`);
  return out;
}

interface Args {
  trace: string;
  top: number;
  format: OutputFormat;
}

/**
 * The three trace analyzers in one pass, as short tables: what a person looks at first. Every table is
 * bounded by --top (system calls summed per call, the most total time first: a trace can have 10^5 calls).
 * --format json writes one object with the three row lists; csv writes the three tables one after another,
 * each after a `# <name>` line and separated by a blank line.
 */
export const summaryCommand: CommandModule<object, Args> = {
  command: 'summary [trace]',
  describe: 'hot functions, first calls and system calls of a trace in one pass; or the report of a capture folder',
  builder: (y) =>
    topOption(
      y.positional('trace', { type: 'string', default: sample('2016-init-module.log'), defaultDescription: 'a bundled 2016 boot trace excerpt', describe: 'a trace file, or a capture folder (profile, markers, stages, initcalls, hot functions)' })
        .option('format', { choices: OUTPUT_FORMATS, default: 'table' as OutputFormat, describe: 'output format (json: one object with the three tables; csv: the tables one after another)' }),
      10, 'rows per table') as never,
  handler: async (args) => {
    let input = args.trace;
    if (isCaptureDir(input)) {
      if (args.format === 'table') {
        const lines = await captureSummaryLines(input, args.top || Number.MAX_SAFE_INTEGER);
        process.stdout.write([...lines, '', ...captureClockLines(input)].join('\n') + '\n');
        return;
      }
      // Rows (json, csv): the three tables of the capture's trace, the text trace or the whole-boot recording.
      const trace = [TRACE_FILE, `${TRACE_FILE}.gz`, RECORDING_FILE].map((f) => join(input, f)).find((f) => existsSync(f));
      if (trace === undefined) throw new UserError(`${input}: this capture has no trace (no ${TRACE_FILE} or ${RECORDING_FILE}), so --format ${args.format} has no rows; the text summary is --format table, and console rows come from stages, initcalls or uart on its ${CONSOLE_FILE}`);
      input = trace;
    } else if (input !== '-' && isDirectory(input)) {
      throw new UserError(`${input}: not a capture folder (no ${PROFILE_FILE} or ${CONSOLE_FILE}) and not a trace file`);
    }
    const clock = traceClock(input);
    const hot = new HotFunctions();
    const first = new FirstCalls();
    let calls: Syscalls | undefined;
    // Only the per-call totals are kept: the calls themselves are counted as they end.
    let callCount = 0;
    const r = await readTrace(input, (functions) => allOf(hot, first, (calls = new Syscalls(functions, () => void callCount++))));
    calls!.finish();
    const tables = [
      { key: 'hot_functions', title: 'Hottest functions (self time)', rows: hot.rows(r.functions, args.top), columns: hotFunctionColumns(clock.unit, recordingPath(input) !== null ? 'records' : 'lines') },
      { key: 'first_calls', title: 'First calls', rows: firstRows(first.rows(r.functions), args.top), columns: firstCallColumns(clock.unit) },
      { key: 'syscalls', title: `System calls (${callCount.toLocaleString('en-US')} in all, per call, most total time first)`, rows: firstRows(calls!.summary(), args.top), columns: syscallSummaryColumns(clock.unit) },
    ] as Array<{ key: string; title: string; rows: object[]; columns: Column<object>[] }>;
    const out = process.stdout;
    if (args.format === 'json') {
      const doc = { trace: input, events: r.events, functions: r.functions.size - 2, syscalls_total: callCount, clock: { kind: clock.kind, unit: clock.unit, meaning: clock.description, warning: clock.warning }, ...Object.fromEntries(tables.map((t) => [t.key, t.rows])) };
      out.write(JSON.stringify(doc, null, 1) + '\n');
      return;
    }
    if (args.format === 'csv') {
      for (const [i, t] of tables.entries()) {
        out.write(`${i ? '\n' : ''}# ${t.key}\n`);
        await writeRows(t.rows, t.columns, 'csv');
      }
      return;
    }
    out.write(`${input}: ${r.events.toLocaleString('en-US')} events, ${r.functions.size - 2} functions\n`);
    out.write(`Times: ${clock.description}.${clock.warning ? `\nNote: ${clock.warning}.` : ''}\n\n`);
    for (const [i, t] of tables.entries()) out.write(`${i ? '\n' : ''}${t.title}\n${renderTable(t.rows, t.columns)}`);
  },
};
