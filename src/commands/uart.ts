import type { CommandModule } from 'yargs';
import { DEFAULT_GAP_US, UartCost, fitMeaningful, fitNote } from '../../analyzers/uart.js';
import { describeClocks } from '../../analyzers/console-lines.js';
import { UserError } from '../errors.js';
import { writeRows } from '../output/write.js';
import { consoleOptions, readConsole, requireTimedLines, type ConsoleArgs } from './console-input.js';
import { numberOption } from './options.js';

interface Args extends ConsoleArgs {
  'gap-us': number;
}

const num = (digits: number) => (v: unknown): string =>
  typeof v === 'number' ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '';

export const uartCommand: CommandModule<object, Args> = {
  command: 'uart <console>',
  describe: 'per-character cost of the serial console, fitted from host line stamps within bursts',
  builder: (y) =>
    numberOption(consoleOptions(y), 'gap-us', { integer: false, min: 0, aboveMin: true, default: DEFAULT_GAP_US, unit: 'of microseconds', describe: 'lines further apart than this (us) start a new burst' }) as never,
  handler: async (args) => {
    const analyzer = new UartCost({ gapUs: args['gap-us'] });
    const read = await readConsole(args.console, analyzer);
    requireTimedLines(args.console, read);
    const result = analyzer.result();
    // Say what the file does have, so "no host timestamps" on a pasted dmesg is plainly the file's shape.
    if ('error' in result) throw new UserError(`${args.console === '-' ? '<stdin>' : args.console}: ${result.error} (this file: ${describeClocks(read.counts)})`);
    await writeRows([result.row], [
      { key: 'us_per_char', header: 'us/char', show: num(4) },
      { key: 'ci95_low', header: 'ci95 low', show: num(4) },
      { key: 'ci95_high', header: 'ci95 high', show: num(4) },
      { key: 'lines_per_ms', header: 'lines/ms', show: num(3) },
      { key: 'chars', header: 'chars', show: num(0) },
      { key: 'added_us', header: 'added (us)', show: num(3) },
      { key: 'lines', header: 'lines', show: num(0) },
    ], args.format);
    // On stderr, so CSV/JSON stay one shape; the figures are still printed (clamped at 0) for whoever wants them.
    if (!fitMeaningful(result.row)) process.stderr.write(`boot-trace: ${args.console === '-' ? '<stdin>' : args.console}: ${fitNote(result.row)}\n`);
  },
};
