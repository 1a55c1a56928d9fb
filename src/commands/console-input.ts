/**
 * Reading a console (console.log, dmesg, QEMU output) for the console analyzers: a path, `-` for stdin
 * or a `.gz`, streamed in chunks into a ConsoleParser; never the whole file as one string.
 */
import type { Argv } from 'yargs';
import { ConsoleParser, type ConsoleVisitor } from '../../analyzers/console-lines.js';
import { UserError, messageOf } from '../errors.js';
import type { OutputFormat } from '../output/write.js';
import { inputName, inputSize, looksBinary, openChunks } from '../input.js';
import { inputOptions } from './options.js';
import { Progress } from '../progress.js';

export interface ConsoleArgs {
  console: string;
  format: OutputFormat;
}

export function consoleOptions<T>(y: Argv<T>) {
  return inputOptions(y, 'console', 'console.log (`<t_us> <text>` lines), plain dmesg, or QEMU output; .gz, or - for stdin');
}

export interface ConsoleReadResult {
  counts: ConsoleParser['counts'];
  bytes: number;
}

/** Feeds every line of `input` to `visitor`. `chunkSize` is for tests that want to hit every chunk boundary. */
export async function readConsole(input: string, visitor: ConsoleVisitor, chunkSize?: number): Promise<ConsoleReadResult> {
  const name = inputName(input);
  const total = input === '-' ? 0 : inputSize(input, 'console log');
  const parser = new ConsoleParser(visitor);
  const progress = new Progress(name);
  let bytes = 0;
  try {
    const { chunks, consumed } = openChunks(input, chunkSize);
    for await (const chunk of chunks) {
      if (bytes === 0 && looksBinary(chunk)) throw new UserError(`${name}: binary data, not a console log (a NUL byte in the first block)`);
      bytes += chunk.length;
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
  return { counts: parser.counts, bytes };
}

/** Every console analyzer needs some timed line; an empty or foreign file gets one clear message. */
export function requireTimedLines(name: string, result: ConsoleReadResult): void {
  const c = result.counts;
  if (c.lines === 0) throw new UserError(`${name === '-' ? '<stdin>' : name}: empty console log`);
  if (c.hostStamped === 0 && c.kernelStamped === 0) {
    throw new UserError(`${name === '-' ? '<stdin>' : name}: no timestamped line (expected \`<t_us> <text>\` or \`[ seconds] text\`)`);
  }
}
