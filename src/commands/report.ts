import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { TextSink } from '../export/sink.js';
import { DEFAULT_MILESTONES, gatherReport } from '../report/data.js';
import { renderReport } from '../report/html.js';
import { readOptions, topOption } from './options.js';

interface Args {
  input: string;
  output: string;
  milestone?: string[];
  top: number;
  strict: boolean;
}

export const reportCommand: CommandModule<object, Args> = {
  command: 'report <input>',
  describe: 'one self-contained HTML boot report (timeline, flame graph, tables) of a capture folder or a trace',
  builder: (y) =>
    topOption(y
      .positional('input', { type: 'string', demandOption: true, describe: 'capture folder (trace.log, console.log, profile.json) or a trace file' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'HTML file to write' })
      .option('milestone', {
        type: 'string', array: true,
        describe: `first calls to mark on the timeline, as regular expressions (repeatable; default: ${DEFAULT_MILESTONES.join(' ')})`,
      })
      .option('strict', { type: 'boolean', default: false, describe: 'stop at the first malformed trace line' }), 25, 'rows of the hot-functions table') as never,
  handler: async (args) => {
    const milestones = args.milestone?.map((m) => {
      try {
        return new RegExp(m);
      } catch (err) {
        throw new UserError(`--milestone ${JSON.stringify(m)}: not a regular expression (${(err as Error).message})`);
      }
    });
    const data = await gatherReport(args.input, { ...readOptions(args), milestones, top: args.top });
    const out = new TextSink(args.output);
    try {
      out.write(renderReport(data));
      out.close();
    } catch (err) {
      out.abort();
      throw err;
    }
  },
};
