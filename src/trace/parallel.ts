/**
 * Parallel parsing of a plain trace file: worker threads parse byte ranges (parse-worker.ts), the main
 * thread replays their event batches, in file order, into the analyzer. Parsing is the cost (every
 * byte is looked at); replaying a batch is a tight loop over typed arrays. On the 2-core machines we
 * measure on this roughly halves the time of a big file (docs/performance.md).
 *
 * Memory stays bounded: at most IN_FLIGHT ranges per worker are requested at once, whatever the file size.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.js';
import type { FunctionTable } from './functions.js';
import type { ParseRequest, ParseResponse } from './parse-worker.js';
import type { MalformedCode } from './malformed.js';
import { emptyCounts, type ParseCounts, type TraceVisitor } from './parser.js';
import type { EventBatch } from './events.js';

const IN_FLIGHT = 2;

export interface ParallelOptions {
  name: string;
  size: number;
  rangeBytes: number;
  workers: number;
  strict: boolean;
  reportLimit: number;
  /** Reports a malformed line (absolute line number); may throw to stop (strict). */
  onMalformed: (line: number, text: string, code: MalformedCode, counts: ParseCounts) => void;
  onProgress: (bytes: number, lines: number) => void;
}

/** How many parse workers to use: one per core, but never more than there are ranges. */
export function workerCount(size: number, rangeBytes: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.ceil(size / rangeBytes), 8));
}

export async function readParallel(path: string, functions: FunctionTable, visitor: TraceVisitor, o: ParallelOptions): Promise<ParseCounts> {
  const counts = emptyCounts();
  const ranges = Math.ceil(o.size / o.rangeBytes);
  const workerUrl = new URL('./parse-worker.js', import.meta.url);
  const workers = Array.from({ length: o.workers }, () => new Worker(workerUrl, { workerData: { path, reportLimit: o.reportLimit + 1 } }));
  // Per worker: its local function id -> our id.
  const maps = workers.map(() => Int32Array.from([0, 1]));
  const pending = new Map<number, ParseResponse>();
  let nextToRequest = 0;
  let nextToReplay = 0;
  let lastT = -Infinity;
  let failure: unknown = null;
  let wake: (() => void) | null = null;

  // Range i always goes to worker i % workers: replayed in order, the ranges keep every worker busy.
  const owner = (index: number): number => index % o.workers;
  const request = (recycle?: EventBatch): void => {
    if (nextToRequest >= ranges) return;
    const index = nextToRequest++;
    const req: ParseRequest = { index, start: index * o.rangeBytes, end: Math.min(o.size, (index + 1) * o.rangeBytes), recycle };
    workers[owner(index)]!.postMessage(req, recycle ? [recycle.t.buffer, recycle.fn.buffer, recycle.offset.buffer, recycle.addr.buffer] as ArrayBuffer[] : []);
  };

  workers.forEach((worker) => {
    worker.on('message', (res: ParseResponse) => {
      pending.set(res.index, res);
      wake?.();
    });
    worker.on('error', (err) => {
      failure ??= err;
      wake?.();
    });
  });
  for (let k = 0; k < IN_FLIGHT * o.workers; k++) request();

  try {
    while (nextToReplay < ranges) {
      const res = pending.get(nextToReplay);
      if (!res) {
        if (failure) throw failure;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        continue;
      }
      pending.delete(nextToReplay);
      const w = owner(res.index);
      nextToReplay++;

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
      for (let i = 0; i < count; i++) {
        const ti = t[i]!;
        if (ti < lastT && counts.backwards++ === 0) {
          counts.firstBackwardsLine = counts.lines + (i === 0 ? res.firstEventLine : res.firstBackwardsLine);
        }
        lastT = ti;
        visitor.event(ti, map[fn[i]!]!, offset[i]!, addr[i]!);
      }
      // The next range goes to the same worker (IN_FLIGHT * workers is a multiple of workers): hand it
      // back these arrays to fill, so memory stays what the first ranges allocated.
      request(res.batch);
      counts.lines += res.lines;
      counts.events += count;
      counts.comments += res.comments;
      counts.blank += res.blank;
      counts.malformed += res.malformed;
      res.malformedByCode.forEach((n, code) => (counts.malformedByCode[code]! += n));
      o.onProgress(Math.min(o.size, nextToReplay * o.rangeBytes), counts.lines);
    }
  } finally {
    for (const worker of workers) void worker.terminate();
  }
  if (failure) throw new UserError(`${o.name}: parse worker failed: ${String(failure)}`);
  return counts;
}
