import type { CommandModule } from 'yargs';
import { EXPORT_FORMATS, exportTrace, type ExportFormat } from '../export/run.js';
import { readOptions, inputPositional, recordingClockOption } from './options.js';
import type { RecordingClock } from '../trace/recording/format.js';

interface Args {
  trace: string;
  to: ExportFormat;
  output?: string;
  strict: boolean;
  tracks: boolean;
  clock?: RecordingClock;
  'min-dur-us'?: number;
  'speedscope-profile'?: 'evented' | 'sampled';
}

export const exportCommand: CommandModule<object, Args> = {
  command: 'export <trace>',
  describe: 'rebuild call stacks and write them for a viewer: Chrome/Perfetto JSON, collapsed stacks, speedscope',
  builder: (y) =>
    inputPositional(y, 'trace', 'trace file, .gz, - for stdin, or a capture folder')
      .option('to', { choices: EXPORT_FORMATS, demandOption: true, describe: 'chrome (Perfetto, chrome://tracing), collapsed (flamegraph.pl, inferno), speedscope, text (a whole-boot recording as a 2016 text trace)' })
      .option('clock', recordingClockOption('a whole-boot recording\'s clock: host (default) or instructions ("steps" is the same count)'))
      .option('output', { alias: 'o', type: 'string', describe: 'output file (default: stdout)' })
      .option('tracks', { type: 'boolean', default: true, describe: 'chrome: add stages, markers, initcalls and host phases from console.log/profile.json beside the trace' })
      .option('min-dur-us', { type: 'number', describe: 'chrome: leave out calls shorter than this many us (default: 0 for a text trace; for a whole-boot recording the smallest floor that keeps 300,000 calls)' })
      .option('speedscope-profile', { choices: ['evented', 'sampled'] as const, describe: 'speedscope: evented (every call in time order) or sampled (identical stacks merged; the default for a whole-boot recording, whose evented file is too large for a browser)' })
      .option('strict', { type: 'boolean', default: false, describe: 'stop at the first malformed line' }) as never,
  handler: async (args) => {
    await exportTrace(args.trace, args.to, {
      ...readOptions(args),
      output: args.output ?? null,
      sideTracks: args.tracks,
      minDurUs: args['min-dur-us'],
      speedscope: args['speedscope-profile'],
      warn: (line) => process.stderr.write(line + '\n'),
    });
  },
};
