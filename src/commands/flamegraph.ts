import { basename } from 'node:path';
import type { CommandModule } from 'yargs';
import { CallStacks } from '../../analyzers/call-stacks.js';
import { traceOf } from '../export/run.js';
import { TextSink } from '../export/sink.js';
import { flameSvg } from '../report/flame-svg.js';
import { readTrace } from '../trace/reader.js';
import { readOptions, inputPositional, numberOption } from './options.js';

interface Args {
  trace: string;
  output?: string;
  width: number;
  icicle: boolean;
  title?: string;
  strict: boolean;
}

export const flamegraphCommand: CommandModule<object, Args> = {
  command: 'flamegraph <trace>',
  describe: 'a standalone SVG flame graph of the rebuilt call stacks (width = inclusive time)',
  builder: (y) =>
    numberOption(inputPositional(y, 'trace', 'trace file, .gz, - for stdin, or a capture folder'), 'width', { integer: true, min: 0, aboveMin: true, default: 1200, unit: 'of pixels', describe: 'image width in pixels' })
      .option('output', { alias: 'o', type: 'string', describe: 'SVG file to write (default: stdout)' })
      
      .option('icicle', { type: 'boolean', default: false, describe: 'outermost frame at the top' })
      .option('title', { type: 'string', describe: 'title (default: the trace file name)' })
      .option('strict', { type: 'boolean', default: false, describe: 'stop at the first malformed line' }) as never,
  handler: async (args) => {
    const trace = traceOf(args.trace);
    let stacks: CallStacks | undefined;
    const result = await readTrace(trace, (functions) => (stacks = new CallStacks(functions)), readOptions(args));
    stacks!.finish();
    const out = new TextSink(args.output ?? null);
    try {
      out.write(flameSvg(stacks!.trie, result.functions.names, {
        width: Math.max(200, args.width), icicle: args.icicle, standalone: true,
        title: args.title ?? `Flame graph: ${trace === '-' ? '<stdin>' : basename(trace)}`,
      }));
      out.close();
    } catch (err) {
      out.abort();
      throw err;
    }
  },
};
