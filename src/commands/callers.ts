import type { CommandModule } from 'yargs';
import { CallStacks } from '../../analyzers/call-stacks.js';
import { callerTree, calleeTree, type TreeRow } from '../../analyzers/inclusive.js';
import { UserError } from '../errors.js';
import { readTrace } from '../trace/reader.js';
import { traceOf } from '../export/run.js';
import { writeRows } from '../output/write.js';
import { showTime, unitHeading } from '../output/columns.js';
import { announceClock, firstRows, numberOption, readOptions, topOption, traceOptions, type TraceArgs } from './options.js';

interface Args extends TraceArgs {
  function: string;
  depth: number;
  top: number;
}

/** The body of `callers` and `callees`: rebuild the stacks, then print the merged tree around one function. */
export function treeCommand(kind: 'callers' | 'callees'): CommandModule<object, Args> {
  return {
    command: `${kind} <trace> <function>`,
    describe: kind === 'callers'
      ? 'who calls FUNCTION (from rebuilt call stacks), merged into a tree, with calls and time'
      : 'what FUNCTION calls (from rebuilt call stacks), merged into a tree, with calls and inclusive time',
    builder: (y) =>
      numberOption(topOption(traceOptions(y), 0, 'show the first N rows of the tree')
        .positional('function', { type: 'string', demandOption: true, describe: 'function name, as in the trace' }),
      'depth', { integer: true, min: 0, default: 4, describe: 'levels of the tree to show (0: the function alone)' }) as never,
    handler: async (args) => {
      let stacks: CallStacks | undefined;
      const trace = traceOf(args.trace);
      const clock = announceClock(trace, undefined, args.clock);
      const result = await readTrace(trace, (functions) => (stacks = new CallStacks(functions)), readOptions(args));
      stacks!.finish();
      const fn = result.functions.names.indexOf(args.function);
      if (fn < 0) throw new UserError(`${args.function}: not in ${trace === '-' ? '<stdin>' : trace} (function names are exact, e.g. start_kernel)`);
      const depth = args.depth;
      const rows = kind === 'callers' ? callerTree(stacks!, fn, depth) : calleeTree(stacks!, fn, depth);
      await writeRows<TreeRow>(firstRows(rows, args.top), [
        { key: 'function', header: kind === 'callers' ? 'function <- caller' : 'function -> callee', show: (v, r) => '  '.repeat(r.depth) + String(v) },
        { key: 'depth', header: 'depth' },
        { key: 'calls', header: 'calls', show: (v) => (v as number).toLocaleString('en-US') },
        { key: 'time_us', header: `time (${unitHeading(clock.unit)})`, show: showTime(clock.unit) },
        { key: 'percent', header: '%', show: (v) => (v as number).toFixed(2) },
      ], args.format);
    },
  };
}

export const callersCommand = treeCommand('callers');
