import type { CommandModule } from 'yargs';
import { HotFunctions } from '../../analyzers/hot-functions.js';
import { readTrace } from '../trace/reader.js';
import { showUs, writeRows } from '../output/write.js';
import { readOptions, traceOptions, type TraceArgs } from './options.js';

interface Args extends TraceArgs {
  top: number;
}

export const hotFunctionsCommand: CommandModule<object, Args> = {
  command: 'hot-functions <trace>',
  describe: 'self time per function (time until the next line), sorted',
  builder: (y) =>
    traceOptions(y).option('top', { type: 'number', default: 30, describe: 'show the N hottest (0 = all)' }) as never,
  handler: async (args) => {
    const analyzer = new HotFunctions();
    const result = await readTrace(args.trace, () => analyzer, readOptions(args));
    await writeRows(analyzer.rows(result.functions, args.top), [
      { key: 'function', header: 'function' },
      { key: 'time_us', header: 'time (us)', show: showUs },
      { key: 'percent', header: '%', show: (v) => (v as number).toFixed(2) },
      { key: 'lines', header: 'lines', show: (v) => (v as number).toLocaleString('en-US') },
    ], args.format);
  },
};
