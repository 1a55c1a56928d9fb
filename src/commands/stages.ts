import type { CommandModule } from 'yargs';
import { BUILTIN_STAGES, Stages, describePattern, parseStageSpec, renderTimeline, type StageDef } from '../../analyzers/stages.js';
import { UserError } from '../errors.js';
import { showUs, writeRows } from '../output/write.js';
import { consoleOptions, readConsole, requireTimedLines, type ConsoleArgs } from './console-input.js';

interface Args extends ConsoleArgs {
  stage: string[];
  timeline: boolean;
}

const table = BUILTIN_STAGES.map((d) => `  ${d.name}: ${describePattern(d.begin)} -> ${describePattern(d.end)}`).join('\n');

export const stagesCommand: CommandModule<object, Args> = {
  command: 'stages <console>',
  describe: 'boot stages as spans between console messages (firmware, kernel, initcalls, userspace, BOOT_TIME markers)',
  builder: (y) =>
    consoleOptions(y)
      .option('stage', {
        type: 'string',
        array: true,
        // One value per --stage, so `--stage X CONSOLE` leaves CONSOLE as the positional.
        nargs: 1,
        default: [] as string[],
        describe: 'add a span NAME:BEGIN_REGEX:END_REGEX (repeatable; \\: for a colon; a built-in name replaces it)',
      })
      .option('timeline', { type: 'boolean', default: false, describe: 'print a text timeline, one column per open span' })
      .epilog(
        `Built-in spans (first line matching begin -> next line matching end):\n${table}\n` +
          '  BOOT_TIME:<stage>: its marker line -> the next BOOT_TIME marker or power-off line\n' +
          '  boot: 0 -> the last timed line (percentages are of this)\n' +
          'Times are host stamps when the file is in the `<t_us> <text>` form, else the dmesg [seconds] stamps.',
      ) as never,
  handler: async (args) => {
    let extra: StageDef[];
    try {
      extra = args.stage.map(parseStageSpec);
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    const analyzer = new Stages(extra);
    requireTimedLines(args.console, await readConsole(args.console, analyzer));
    const { rows, missing, notes } = analyzer.result();
    if (args.timeline) {
      process.stdout.write(renderTimeline(rows));
      return;
    }
    await writeRows(rows, [
      { key: 'name', header: 'stage' },
      { key: 'start_us', header: 'start (us)', show: showUs },
      { key: 'duration_us', header: 'duration (us)', show: showUs },
      { key: 'percent', header: '%', show: (v) => (typeof v === 'number' ? v.toFixed(2) : '') },
    ], args.format);
    // Only a person reading a table wants to know what was not found; CSV/JSON stay pure data.
    if (args.format === 'table' && missing.length > 0) {
      process.stdout.write(`left out (begin or end not in this log):\n${missing.map((m) => `  ${m.name}: ${m.reason}\n`).join('')}`);
    }
    if (args.format === 'table' && notes.length > 0) process.stdout.write(notes.map((n) => `${n}\n`).join(''));
  },
};
