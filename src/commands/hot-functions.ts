import type { CommandModule } from 'yargs';
import { HotFunctions, type HotFunctionRow } from '../../analyzers/hot-functions.js';
import { CallStacks } from '../../analyzers/call-stacks.js';
import { tee, withInclusive } from '../../analyzers/inclusive.js';
import { readTrace } from '../trace/reader.js';
import { writeRows, type Column } from '../output/write.js';
import { recordingPath } from '../trace/recording/read.js';
import { announceClock, readOptions, topOption, traceOptions, type TraceArgs } from './options.js';
import { hotFunctionColumns, showTime, unitHeading } from '../output/columns.js';

interface Args extends TraceArgs {
  top: number;
  inclusive: boolean;
}

export const hotFunctionsCommand: CommandModule<object, Args> = {
  command: 'hot-functions <trace>',
  describe: 'self time per function (time until the next line), sorted',
  builder: (y) =>
    topOption(traceOptions(y), 30, 'show the N hottest')
      .option('inclusive', { type: 'boolean', default: false, describe: 'add inclusive time (from rebuilt call stacks; docs/call-stacks.md)' }) as never,
  handler: async (args) => {
    const clock = announceClock(args.trace, undefined, args.clock);
    const analyzer = new HotFunctions();
    let stacks: CallStacks | undefined;
    const result = await readTrace(args.trace, (functions) => (args.inclusive ? tee(analyzer, (stacks = new CallStacks(functions))) : analyzer), readOptions(args));
    stacks?.finish();
    const rows: Array<HotFunctionRow & { inclusive_us?: number }> = analyzer.rows(result.functions, args.top);
    await writeRows(stacks ? withInclusive(rows, stacks) : rows, [
      ...(hotFunctionColumns(clock.unit, recordingPath(args.trace) !== null ? 'records' : 'lines') as Column<HotFunctionRow & { inclusive_us?: number }>[]),
      ...(stacks ? [{ key: 'inclusive_us' as const, header: `inclusive (${unitHeading(clock.unit)})`, show: showTime(clock.unit) }] : []),
    ], args.format);
  },
};
