/**
 * Reading a console (console.log, dmesg, QEMU output, a journal, a pasted log) for the console analyzers: a
 * path, `-` for stdin or a `.gz`, streamed in chunks into a ConsoleParser; never the whole file as one string.
 */
import type { Argv } from 'yargs';
import { ConsoleParser, describeClocks, type ConsoleCounts, type ConsoleParserOptions, type ConsoleVisitor } from '../../analyzers/console-lines.js';
import { UserError, messageOf } from '../errors.js';
import type { OutputFormat } from '../output/write.js';
import { inputName, inputSize, looksBinary, openChunks } from '../input.js';
import { detectFormat, DETECT_BYTES } from '../import/detect.js';
import { inputOptions } from './options.js';
import { Progress } from '../progress.js';

export interface ConsoleArgs {
  console: string;
  format: OutputFormat;
}

export function consoleOptions<T>(y: Argv<T>) {
  return inputOptions(y, 'console', 'console.log (`<t_us> <text>` lines), dmesg, a journal or pasted console (any prefix before `[ seconds]`), QEMU output; .gz, or - for stdin');
}

export interface ConsoleReadResult {
  counts: ConsoleCounts;
  bytes: number;
  /** When the file's first KiB is another tool's trace (not a console): what it looks like; else null. */
  foreign: string | null;
}

/**
 * Feeds every line of `input` to `visitor`, and reports once on stderr (through `warn`) what was repaired:
 * wrapped lines rejoined, unusable stamps, host stamps going backwards. `chunkSize` is for tests that want
 * to hit every chunk boundary.
 */
export async function readConsole(
  input: string,
  visitor: ConsoleVisitor,
  chunkSize?: number,
  options: ConsoleParserOptions & {
    warn?: (line: string) => void;
    /**
     * Read NUL bytes as text instead of refusing the file as binary: for a capture's own console.log,
     * where they are bytes the guest wrote to its serial port (a hostile or broken guest may write any).
     */
    allowBinary?: boolean;
  } = {},
): Promise<ConsoleReadResult> {
  const name = inputName(input);
  const total = input === '-' ? 0 : inputSize(input, 'console log');
  const parser = new ConsoleParser(visitor, options);
  const progress = new Progress(name);
  let bytes = 0;
  let head: Buffer[] = [];
  let headBytes = 0;
  try {
    const { chunks, consumed } = openChunks(input, chunkSize);
    for await (const chunk of chunks) {
      if (bytes === 0 && !options.allowBinary && looksBinary(chunk)) throw new UserError(`${name}: binary data, not a console log (a NUL byte in the first block)`);
      bytes += chunk.length;
      if (headBytes < DETECT_BYTES) {
        head.push(Buffer.from(chunk.subarray(0, DETECT_BYTES - headBytes)));
        headBytes += Math.min(chunk.length, DETECT_BYTES - headBytes);
      }
      if (chunkSize && chunk.length > chunkSize) {
        for (let i = 0; i < chunk.length; i += chunkSize) parser.push(chunk.subarray(i, i + chunkSize));
      } else parser.push(chunk);
      progress.update(consumed(), total, parser.counts.lines);
    }
    parser.end();
  } catch (err) {
    progress.done();
    if (err instanceof UserError) throw err;
    throw new UserError(`${name}: cannot read: ${messageOf(err)}`);
  }
  progress.done();
  const detected = detectFormat(Buffer.concat(head).toString('latin1'));
  head = [];
  const warn = options.warn ?? ((line: string) => process.stderr.write(line + '\n'));
  const c = parser.counts;
  if (c.wrapped > 0) warn(`boot-trace: ${name}: ${c.wrapped} wrapped line${c.wrapped === 1 ? '' : 's'} joined to the initcall_debug line before (first at line ${c.firstWrappedLine})`);
  if (c.badStamps > 0) warn(`boot-trace: ${name}: ${c.badStamps} stamp${c.badStamps === 1 ? ' is' : 's are'} not a usable number (first at line ${c.firstBadStampLine}): those lines have no time`);
  if (c.hostBackwards > 0) warn(`boot-trace: ${name}: host stamps go backwards at ${c.hostBackwards} line${c.hostBackwards === 1 ? '' : 's'} (first at line ${c.firstHostBackwardsLine})`);
  // A console.log has kernel stamps; a trace never does. Without any, the first KiB's shape says what it is.
  const foreign = c.kernelStamped === 0 && detected.format !== 'console' && detected.format !== 'unknown' ? detected.looksLike : null;
  return { counts: c, bytes, foreign };
}

/** Every console analyzer that places spans needs some timed line; an empty or foreign file gets one clear message. */
export function requireTimedLines(name: string, result: ConsoleReadResult): void {
  const c = result.counts;
  const shown = name === '-' ? '<stdin>' : name;
  if (c.lines === 0) throw new UserError(`${shown}: empty console log`);
  if (result.foreign) throw new UserError(`${shown}: not a console log: it looks like ${result.foreign} (the trace commands read it: hot-functions, first-calls, syscalls)`);
  if (c.hostStamped === 0 && c.kernelStamped === 0) {
    throw new UserError(`${shown}: no timestamped line (expected \`<t_us> <text>\` or \`[ seconds] text\`; ${describeClocks(c)})`);
  }
}
