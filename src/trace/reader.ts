/**
 * Reads a trace from a path, `-` (stdin) or a `.gz` file, in chunks, into a TraceVisitor.
 * Never holds the file or a whole-file string: memory is the chunk plus the analyzers' tables.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkNotBinary, inputName, inputSize, looksBinary, openChunks } from '../input.js';
import { UserError, messageOf } from '../errors.js';
import { Progress } from '../progress.js';
import { FunctionTable } from './functions.js';
import { DEFAULT_REPORT_LIMIT, describeMalformed, MALFORMED_CODES, type MalformedCode } from './malformed.js';
import { TraceParser, type ParseCounts, type TraceVisitor } from './parser.js';
import { parallelMinBytes, parallelRangeBytes, readParallel, workerCount } from './parallel.js';
import { READ_CHUNK } from './range.js';
import { discardEarlyParse, earlyParseThreads } from './early-start.js';
import type { RecordingClock } from './recording/format.js';
import { readRecordingTrace, recordingPath } from './recording/read.js';
import { detectFile, routeTraceInput } from '../import/index.js';
import { loadSymbolFile } from '../symbols/load.js';

export interface ReadOptions {
  /** The first malformed line is fatal. */
  strict?: boolean;
  /** How many malformed lines to report on stderr before only counting them. */
  reportLimit?: number;
  /** Read size; tests use 1 to hit every chunk boundary. */
  chunkSize?: number;
  /** Where warnings go (stderr by default). */
  warn?: (line: string) => void;
  /** Show progress on a TTY (default: when stderr is a TTY). */
  progress?: boolean;
  /**
   * Parse a plain file in worker threads when it is at least this big (bytes). Default 32 MiB, or
   * BOOT_TRACE_PARALLEL_MIN; Infinity turns it off. Ranges are BOOT_TRACE_PARALLEL_RANGE bytes (8 MiB).
   * Without either, the reader also stays on one thread when other processes keep every core busy
   * (parallel.ts workerCount()).
   */
  parallelMinBytes?: number;
  /** Which clock a whole-boot recording's events carry (default host); a text trace has one clock. */
  clock?: RecordingClock;
  /** A whole-boot recording from QEMU 10: filled with each system call's process (recording/read.ts). */
  processes?: Map<number, string>;
  /** Symbols for the bare addresses of imported traces (QEMU -d exec, perf without symbols): --system-map. */
  systemMap?: string;
}

export interface ReadResult extends ParseCounts {
  functions: FunctionTable;
  bytes: number;
  /** Set when the input was a whole-boot recording: the clock its timestamps are on. */
  clock?: RecordingClock;
}

/** Read size of the sequential reader: read(2)'s copy stays in L2 for the parse (range.ts READ_CHUNK). */
const DEFAULT_CHUNK = READ_CHUNK;
/** A file whose first this-many content lines are all malformed is not a trace at all. */
const GIVE_UP_AFTER = 1000;

export async function readTrace(
  input: string,
  makeVisitor: (functions: FunctionTable) => TraceVisitor,
  options: ReadOptions = {},
): Promise<ReadResult> {
  // A whole-boot recording (or a capture folder with one) has its own reader: src/trace/recording/.
  const recording = recordingPath(input);
  if (recording) return readRecordingTrace(recording, makeVisitor, options);
  if (options.clock === 'instructions') throw new UserError(`${inputName(input)}: --clock instructions needs a whole-boot recording; a text trace has one clock`);
  const name = inputName(input);
  const warn = options.warn ?? ((line: string) => process.stderr.write(line + '\n'));
  const reportLimit = options.reportLimit ?? DEFAULT_REPORT_LIMIT;
  const functions = new FunctionTable();
  const visitor = makeVisitor(functions);
  let reported = 0;
  // The line's text first (what a reader greps for), then its code and what the code means.
  const onMalformed = (line: number, text: string, code: MalformedCode | undefined, counts: ParseCounts): void => {
    const why = code === undefined ? '' : ` [${describeMalformed(code)}]`;
    if (options.strict) throw new UserError(`${name}:${line}: malformed line: ${JSON.stringify(text)}${why}`);
    if (++reported <= reportLimit) warn(`boot-trace: ${name}:${line}: malformed line skipped: ${JSON.stringify(text)}${why}`);
    if (counts.events === 0 && counts.malformed >= GIVE_UP_AFTER) {
      throw new UserError(`${name}: not a boot trace (the first ${GIVE_UP_AFTER} lines are not in the trace format; see docs/trace-format.md)`);
    }
  };
  const parser = new TraceParser(functions, visitor, (line, text, code) => onMalformed(line, text, code, source.counts));
  // Other tools' formats (src/import/): decided from the first bytes; the 2016 format goes straight to `parser`.
  // Their malformed lines carry no code: the codes are the native grammar's (docs/trace-format.md).
  const source = routeTraceInput(parser, {
    name, functions, visitor, warn, onMalformed: (line, text) => onMalformed(line, text, undefined, source.counts),
    symbols: options.systemMap !== undefined ? loadSymbolFile(options.systemMap) : null,
  });
  let counts: ParseCounts = parser.counts;

  const progress = new Progress(name, options.progress);
  let bytes = 0;
  let parallel = false;
  const feed = (chunk: Buffer, consumed: number, total: number): void => {
    if (bytes === 0 && looksBinary(chunk)) throw new UserError(`${name}: binary data, not a boot trace (a NUL byte in the first block)`);
    bytes += chunk.length;
    source.push(chunk);
    progress.update(consumed, total, source.counts.lines);
  };

  try {
    const size = input !== '-' && !input.endsWith('.gz') ? inputSize(input, 'trace file') : -1;
    const rangeBytes = parallelRangeBytes();
    const minBytes = options.parallelMinBytes ?? parallelMinBytes();
    // A threshold given (tests, BOOT_TRACE_PARALLEL_MIN) means parallel whatever the machine's load.
    const forced = options.parallelMinBytes !== undefined || Boolean(process.env.BOOT_TRACE_PARALLEL_MIN);
    // Workers started early for this file (early-start.ts) are this read's own: counted as busy cores they
    // would keep it on one thread.
    const threads = (size >= 0 ? earlyParseThreads(input) : null) ?? workerCount(size, rangeBytes, forced);
    parallel = size >= minBytes && size > 0 && threads > 1 && parallelWorkerBuilt() && detectFile(input) === 'boot-trace';
    if (!parallel) discardEarlyParse();
    if (parallel) {
      checkNotBinary(input, 'boot trace');
      counts = await readParallel(input, functions, visitor, {
        name, size, rangeBytes, workers: threads, strict: Boolean(options.strict), reportLimit,
        onMalformed, onProgress: (done, lines) => progress.update(done, size, lines),
      });
      bytes = size;
    } else if (size >= 0) {
      readFileSync(input, size, TraceParser.readBuffer(functions, options.chunkSize ?? DEFAULT_CHUNK), feed);
    } else {
      // stdin has no size; a .gz file's is its compressed size, which is what the stream reports consumed.
      const total = input === '-' ? 0 : inputSize(input, 'trace file');
      const { chunks, consumed } = openChunks(input);
      for await (const chunk of chunks) {
        const step = options.chunkSize && options.chunkSize < chunk.length ? options.chunkSize : chunk.length;
        for (let i = 0; i < chunk.length; i += step) feed(chunk.subarray(i, i + step), consumed(), total);
      }
    }
    if (!parallel) {
      source.end();
      counts = source.counts;
    }
  } catch (err) {
    progress.done();
    if (err instanceof UserError) throw err;
    throw new UserError(`${name}: cannot read: ${messageOf(err)}`);
  }
  progress.done();

  const c = counts;
  if (c.events === 0 && c.malformed > 0) {
    throw new UserError(`${name}: not a boot trace (no line in the trace format; see docs/trace-format.md)`);
  }
  if (c.malformed > reportLimit) {
    const byCode = c.malformedByCode.flatMap((n, code) => (n ? [`${MALFORMED_CODES[code]} ${n}`] : [])).join(', ');
    warn(`boot-trace: ${name}: ${c.malformed} malformed lines skipped in all (${byCode})`);
  }
  if (c.backwards > 0) {
    warn(`boot-trace: ${name}: time went backwards at ${c.backwards} line${c.backwards === 1 ? '' : 's'} (first at line ${c.firstBackwardsLine}); counted as zero time`);
  }
  return { ...c, functions, bytes };
}

/**
 * Synchronous chunked reads: the fastest path for a plain file, and it needs no event loop turn per chunk.
 * The caller has already opened and sized it through inputSize(), which names a missing or unreadable file.
 * Every chunk is read into `buf` (reused: each is fed before the next read).
 */
function readFileSync(path: string, size: number, buf: Buffer, feed: (c: Buffer, consumed: number, total: number) => void): void {
  const fd = openSync(path, 'r');
  try {
    let consumed = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      consumed += n;
      feed(buf.subarray(0, n), consumed, size);
    }
  } finally {
    closeSync(fd);
  }
}

/** The worker exists only in the compiled tree (dist/); tests running TypeScript sources read sequentially. */
function parallelWorkerBuilt(): boolean {
  return existsSync(fileURLToPath(new URL('./parse-worker.js', import.meta.url)));
}


