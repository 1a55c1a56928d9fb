/**
 * Reading a console (console.log, dmesg, QEMU output) for the console analyzers: a path, `-` for stdin
 * or a `.gz`, streamed in chunks into a ConsoleParser; never the whole file as one string.
 */
import { createReadStream, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Argv } from 'yargs';
import { ConsoleParser, type ConsoleVisitor } from '../../analyzers/console-lines.js';
import { UserError, messageOf } from '../errors.js';
import { OUTPUT_FORMATS, defaultFormat, type OutputFormat } from '../output/write.js';
import { Progress } from '../progress.js';

export interface ConsoleArgs {
  console: string;
  format: OutputFormat;
}

export function consoleOptions<T>(y: Argv<T>) {
  return y
    .positional('console', {
      type: 'string',
      demandOption: true,
      describe: 'console.log (`<t_us> <text>` lines), plain dmesg, or QEMU output; .gz, or - for stdin',
      coerce: (v: unknown) => (typeof v === 'string' && v !== '' ? v : '-'),
    })
    .option('format', {
      choices: OUTPUT_FORMATS,
      default: defaultFormat(),
      defaultDescription: 'table on a terminal, else csv',
      describe: 'output format',
    });
}

export interface ConsoleReadResult {
  counts: ConsoleParser['counts'];
  bytes: number;
}

/** Feeds every line of `input` to `visitor`. `chunkSize` is for tests that want to hit every chunk boundary. */
export async function readConsole(input: string, visitor: ConsoleVisitor, chunkSize?: number): Promise<ConsoleReadResult> {
  const name = input === '-' ? '<stdin>' : input;
  let total = 0;
  if (input !== '-') {
    try {
      const st = statSync(input);
      if (st.isDirectory()) throw new UserError(`${name}: is a directory, not a console log`);
      total = st.size;
    } catch (err) {
      if (err instanceof UserError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new UserError(`${name}: cannot open: ${code === 'ENOENT' ? 'no such file' : messageOf(err)}`);
    }
  }
  const parser = new ConsoleParser(visitor);
  const progress = new Progress(name);
  let bytes = 0;
  try {
    const raw = input === '-' ? process.stdin : createReadStream(input, chunkSize ? { highWaterMark: chunkSize } : {});
    const stream = input.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (bytes === 0 && chunk.subarray(0, 4096).includes(0)) throw new UserError(`${name}: binary data, not a console log (a NUL byte in the first block)`);
      bytes += chunk.length;
      if (chunkSize && chunk.length > chunkSize) {
        for (let i = 0; i < chunk.length; i += chunkSize) parser.push(chunk.subarray(i, i + chunkSize));
      } else parser.push(chunk);
      progress.update((raw as { bytesRead?: number }).bytesRead ?? bytes, total, parser.counts.lines);
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
