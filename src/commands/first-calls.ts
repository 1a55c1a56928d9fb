import type { CommandModule } from 'yargs';
import { FirstCalls } from '../../analyzers/first-calls.js';
import { UserError } from '../errors.js';
import { readTrace } from '../trace/reader.js';
import { writeRows } from '../output/write.js';
import { announceClock, firstRows, readOptions, topOption, traceOptions, type TraceArgs } from './options.js';
import { firstCallColumns } from '../output/columns.js';

interface Args extends TraceArgs {
  match?: string;
  top: number;
}

export const firstCallsCommand: CommandModule<object, Args> = {
  command: 'first-calls <trace>',
  describe: 'when each function is first seen: a timeline of boot milestones',
  builder: (y) =>
    topOption(traceOptions(y), 0, 'show the first N functions')
      .option('match', { type: 'string', describe: 'only functions matching this regular expression (e.g. ext4_)' }) as never,
  handler: async (args) => {
    let match: RegExp | undefined;
    if (args.match !== undefined) {
      try {
        match = new RegExp(args.match);
      } catch (err) {
        throw new UserError(`--match ${JSON.stringify(args.match)}: not a regular expression (${(err as Error).message})`);
      }
    }
    const clock = announceClock(args.trace, undefined, args.clock);
    const analyzer = new FirstCalls();
    const result = await readTrace(args.trace, () => analyzer, readOptions(args));
    await writeRows(firstRows(analyzer.rows(result.functions, match), args.top), firstCallColumns(clock.unit), args.format);
  },
};
