/**
 * Parallel parsing of a plain trace file over byte ranges (range.ts). Of every P consecutive ranges
 * (P: the threads used, one per core), the main thread parses the first itself, straight into the
 * analyzer, and worker threads (parse-worker.ts) parse the others into event batches that the main
 * thread replays, in file order, into the same analyzer. Parsing is the cost (every byte is looked at);
 * replaying a batch is a tight loop over typed arrays. So on 2 cores one worker and the main thread each
 * parse half the file, the main thread starts at once (while the worker boots), and half the events never
 * cross threads (docs/performance.md).
 *
 * Memory stays bounded: at most IN_FLIGHT ranges per worker are requested at once, whatever the file size.
 */
import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.js';
import type { FunctionTable } from './functions.js';
import type { ParseRequest, ParseResponse } from './parse-worker.js';
import type { MalformedCode } from './malformed.js';
import { emptyCounts, TraceParser, type ParseCounts, type TraceVisitor } from './parser.js';
import { RangeReader } from './range.js';
import type { EventBatch } from './events.js';

const IN_FLIGHT = 2;

export interface ParallelOptions {
  name: string;
  size: number;
  rangeBytes: number;
  /** Parsing threads, the main thread included (workerCount()). */
  workers: number;
  strict: boolean;
  reportLimit: number;
  /** Reports a malformed line (absolute line number); may throw to stop (strict). */
  onMalformed: (line: number, text: string, code: MalformedCode, counts: ParseCounts) => void;
  onProgress: (bytes: number, lines: number) => void;
}

/**
 * How many threads parse, the main thread included: one per core, never more than there are ranges
 * (nor 8). 1 means the parallel reader would gain nothing.
 */
export function workerCount(size: number, rangeBytes: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.ceil(size / rangeBytes), 8));
}

export async function readParallel(path: string, functions: FunctionTable, visitor: TraceVisitor, o: ParallelOptions): Promise<ParseCounts> {
  const counts = emptyCounts();
  const ranges = Math.ceil(o.size / o.rangeBytes);
  const threads = Math.max(2, o.workers);
  const workerUrl = new URL('./parse-worker.js', import.meta.url);
  const workers = Array.from({ length: threads - 1 }, () => new Worker(workerUrl, { workerData: { path, reportLimit: o.reportLimit + 1 } }));
  // Per worker: its local function id -> our id.
  const maps = workers.map(() => Int32Array.from([0, 1]));
  const pending = new Map<number, ParseResponse>();
  // Range i: the main thread's when i % threads is 0, else worker i % threads - 1's.
  const owner = (index: number): number => (index % threads) - 1;
  /** Per worker: the next of its ranges to request. */
  const nextFor = workers.map((_, w) => w + 1);
  let lastT = -Infinity;
  let failure: unknown = null;
  let wake: (() => void) | null = null;

  const request = (w: number, recycle?: EventBatch): void => {
    const index = nextFor[w]!;
    if (index >= ranges) return;
    nextFor[w] = index + threads;
    const req: ParseRequest = { index, start: index * o.rangeBytes, end: Math.min(o.size, (index + 1) * o.rangeBytes), recycle };
    workers[w]!.postMessage(req, recycle ? [recycle.t.buffer, recycle.fn.buffer, recycle.offset.buffer, recycle.addr.buffer] as ArrayBuffer[] : []);
  };

  workers.forEach((worker, w) => {
    worker.on('message', (res: ParseResponse) => {
      pending.set(res.index, res);
      wake?.();
    });
    worker.on('error', (err) => {
      failure ??= err;
      wake?.();
    });
    for (let k = 0; k < IN_FLIGHT; k++) request(w);
  });

  const fd = openSync(path, 'r');
  const own = new RangeReader(fd);
  try {
    for (let index = 0; index < ranges; index++) {
      const w = owner(index);
      if (w < 0) {
        lastT = parseOwn(index);
      } else {
        let res: ParseResponse | undefined;
        while (!(res = pending.get(index))) {
          if (failure) throw failure;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
        pending.delete(index);
        lastT = replay(res, w);
      }
      o.onProgress(Math.min(o.size, (index + 1) * o.rangeBytes), counts.lines);
    }
  } finally {
    closeSync(fd);
    for (const worker of workers) void worker.terminate();
  }
  if (failure) throw new UserError(`${o.name}: parse worker failed: ${String(failure)}`);
  return counts;

  /** Parses range `index` on this thread, straight into the visitor; returns the last timestamp. */
  function parseOwn(index: number): number {
    const data = own.read(index * o.rangeBytes, Math.min(o.size, (index + 1) * o.rangeBytes));
    const before = counts.lines;
    const parser = new TraceParser(functions, visitor, (line, text, code) => o.onMalformed(before + line, text, code, counts));
    parser.resumeAfter(lastT);
    if (data.length > 0) {
      parser.push(data);
      parser.end();
    }
    const c = parser.counts;
    if (counts.events === 0 && c.events > 0) counts.firstEventLine = before + c.firstEventLine;
    if (counts.backwards === 0 && c.backwards > 0) counts.firstBackwardsLine = before + c.firstBackwardsLine;
    add(c, c.events, c.backwards);
    return c.events > 0 ? parser.lastTime : lastT;
  }

  /** Replays a worker's batch into the visitor; returns the last timestamp. */
  function replay(res: ParseResponse, w: number): number {
    let map = maps[w]!;
    if (res.names.length) {
      const bigger = new Int32Array(res.names[res.names.length - 1]![0] + 1);
      bigger.set(map);
      for (const [local, name] of res.names) bigger[local] = functions.idOf(name);
      maps[w] = map = bigger;
    }
    for (const [line, text, code] of res.malformedLines) o.onMalformed(counts.lines + line, text, code, counts);
    const { t, fn, offset, addr, count } = res.batch;
    if (counts.events === 0 && count > 0) counts.firstEventLine = counts.lines + res.firstEventLine;
    let last = lastT, backwards = 0;
    for (let i = 0; i < count; i++) {
      const ti = t[i]!;
      if (ti < last && backwards++ === 0 && counts.backwards === 0) {
        counts.firstBackwardsLine = counts.lines + (i === 0 ? res.firstEventLine : res.firstBackwardsLine);
      }
      last = ti;
      visitor.event(ti, map[fn[i]!]!, offset[i]!, addr[i]!);
    }
    // The worker's next range: hand it back these arrays to fill, so memory stays what the first ranges allocated.
    request(w, res.batch);
    add(res, count, backwards);
    return last;
  }

  function add(c: Omit<ParseCounts, 'events' | 'backwards' | 'firstBackwardsLine' | 'firstEventLine'>, events: number, backwards: number): void {
    counts.lines += c.lines;
    counts.events += events;
    counts.backwards += backwards;
    counts.comments += c.comments;
    counts.blank += c.blank;
    counts.malformed += c.malformed;
    c.malformedByCode.forEach((n, code) => (counts.malformedByCode[code]! += n));
  }
}
