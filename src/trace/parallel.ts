/**
 * Parallel parsing of a plain trace file over byte ranges (range.ts). The main thread goes through the
 * ranges in file order: a range no worker has claimed it parses itself, straight into the analyzer; a range a
 * worker thread (parse-worker.ts, one per other core) claimed it waits for and replays, a tight loop over the
 * worker's typed arrays. Workers claim the highest free range in a window ahead of the main thread, so when
 * both run they alternate, and when a worker gets little CPU (other processes on the machine) the main thread
 * simply parses the ranges it reaches: nothing waits for more than the one range a worker is parsing.
 * Function names are mapped to the main table's ids as the replay first meets them, so ids come in order of
 * first appearance in the file, as with one thread (docs/performance.md).
 *
 * Memory stays bounded: a worker claims at most WINDOW ranges ahead of the main thread.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { UserError } from '../errors.js';
import type { FunctionTable } from './functions.js';
import type { ParseResponse } from './parse-worker.js';
import type { MalformedCode } from './malformed.js';
import { emptyCounts, TraceParser, type ParseCounts, type TraceVisitor } from './parser.js';
import { CTL_CURSOR, CTL_STATES, RANGE_FREE, RANGE_MAIN, RangeReader, READ_CHUNK } from './range.js';
import { startWorkerGroup, stopWorkerGroup, type GroupSpec } from './worker-group.js';
import { takeEarlyParse } from './early-start.js';
import { isMerging } from './range-part.js';

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

/** The parallel reader's thresholds: files from this size (bytes) are read in ranges of this size. */
export function parallelMinBytes(): number {
  return Number(process.env.BOOT_TRACE_PARALLEL_MIN) || 32 << 20;
}
export function parallelRangeBytes(): number {
  return Number(process.env.BOOT_TRACE_PARALLEL_RANGE) || 8 << 20;
}

/**
 * How many threads parse, the main thread included: one per core, never more than there are ranges (nor 8).
 * 1 means the parallel reader would gain nothing.
 *
 * Unless `forced`, cores that other processes keep busy do not count. Linux shares CPU time between
 * sessions (autogroup), not between threads, so on a machine whose cores are taken a second thread gets no
 * more CPU, and the parallel reader only adds its own cost (worker start, parts or event batches to pass:
 * docs/performance.md). Busy means runnable now: /proc/loadavg's fourth field counts the scheduling
 * entities runnable at the moment it is read (this thread among them); the least of a few reads, so that a
 * thread that is runnable for an instant does not count, while a CPU-bound process always does. (The load
 * averages lag by a minute: a command run just after another one would find the machine "busy" with it.)
 * Where there is no /proc/loadavg, the 1-minute load average.
 */
export function workerCount(size: number, rangeBytes: number, forced = false): number {
  const cores = availableParallelism();
  const idle = forced ? cores : cores - othersRunning();
  return Math.max(1, Math.min(cores, idle, Math.ceil(size / rangeBytes), 8));
}

/** Threads of other processes (or other threads of this one) runnable now; see workerCount(). */
function othersRunning(): number {
  let least = Infinity;
  try {
    for (let k = 0; k < 5; k++) {
      const running = Number(/ (\d+)\//.exec(readFileSync('/proc/loadavg', 'latin1'))?.[1]);
      if (Number.isInteger(running)) least = Math.min(least, running - 1);
    }
  } catch {
    // not Linux
  }
  return Number.isFinite(least) ? Math.max(0, least) : Math.max(0, Math.round(loadavg()[0]!) - 1);
}

export async function readParallel(path: string, functions: FunctionTable, visitor: TraceVisitor, o: ParallelOptions): Promise<ParseCounts> {
  const counts = emptyCounts();
  const ranges = Math.ceil(o.size / o.rangeBytes);
  const threads = Math.max(2, o.workers);
  // An analyzer that merges parts has its range half run in the workers (range-part.ts); any other gets every event.
  const merging = isMerging(visitor) ? visitor : null;
  // Workers started before the command line was parsed (early-start.ts) if they are parsing this very read.
  const spec: GroupSpec = { path, size: o.size, rangeBytes: o.rangeBytes, threads, reportLimit: o.reportLimit + 1, ...(merging ? { kind: merging.rangeKind } : {}) };
  const group = takeEarlyParse(spec) ?? startWorkerGroup(spec);
  const { control, workers, names, pending } = group;
  // Per worker: its local id -> our id (-1: not met yet in the replay).
  const maps = workers.map(() => Int32Array.from([0, 1]));
  let lastT = -Infinity;

  const fd = openSync(path, 'r');
  const own = new RangeReader(fd, TraceParser.readBuffer(functions, READ_CHUNK));
  try {
    for (let index = 0; index < ranges; index++) {
      Atomics.store(control, CTL_CURSOR, index);
      Atomics.notify(control, CTL_CURSOR);
      if (Atomics.compareExchange(control, CTL_STATES + index, RANGE_FREE, RANGE_MAIN) === RANGE_FREE) {
        lastT = parseOwn(index);
      } else {
        let got: [ParseResponse, number] | undefined;
        while (!(got = pending.get(index))) {
          if (group.failure) throw group.failure;
          await new Promise<void>((resolve) => (group.wake = resolve));
          group.wake = null;
        }
        pending.delete(index);
        lastT = replay(got[0], got[1]);
      }
      o.onProgress(Math.min(o.size, (index + 1) * o.rangeBytes), counts.lines);
    }
  } finally {
    closeSync(fd);
    stopWorkerGroup(group);
  }
  if (group.failure) throw new UserError(`${o.name}: parse worker failed: ${String(group.failure)}`);
  return counts;

  /** Parses range `index` on this thread, straight into the visitor; returns the last timestamp. */
  function parseOwn(index: number): number {
    const before = counts.lines;
    const parser = new TraceParser(functions, visitor, (line, text, code) => o.onMalformed(before + line, text, code, counts));
    parser.resumeAfter(lastT);
    own.readLines(index * o.rangeBytes, Math.min(o.size, (index + 1) * o.rangeBytes), (chunk) => parser.push(chunk));
    parser.end();
    const c = parser.counts;
    if (counts.events === 0 && c.events > 0) counts.firstEventLine = before + c.firstEventLine;
    if (counts.backwards === 0 && c.backwards > 0) counts.firstBackwardsLine = before + c.firstBackwardsLine;
    add(c, c.events, c.backwards);
    return c.events > 0 ? parser.lastTime : lastT;
  }

  /** Replays a worker's batch into the visitor, or merges its part; returns the last timestamp. */
  function replay(res: ParseResponse, w: number): number {
    let map = maps[w]!;
    const known = names[w]!;
    if (map.length < known.length) {
      const bigger = new Int32Array(known.length).fill(-1);
      bigger.set(map);
      maps[w] = map = bigger;
    }
    for (const [line, text, code] of res.malformedLines) o.onMalformed(counts.lines + line, text, code, counts);
    if (res.batch === null) return merge(res, w);
    const { t, fn, offset, addr, count } = res.batch;
    if (counts.events === 0 && count > 0) counts.firstEventLine = counts.lines + res.firstEventLine;
    let last = lastT, backwards = 0;
    for (let i = 0; i < count; i++) {
      const ti = t[i]!;
      if (ti < last && backwards++ === 0 && counts.backwards === 0) {
        counts.firstBackwardsLine = counts.lines + (i === 0 ? res.firstEventLine : res.firstBackwardsLine);
      }
      last = ti;
      const local = fn[i]!;
      let id = map[local]!;
      if (id < 0) id = map[local] = functions.idOf(known[local]!);
      visitor.event(ti, id, offset[i]!, addr[i]!);
    }
    // Hand the arrays back for the worker's next batch (it picks them up between ranges).
    workers[w]!.postMessage(res.batch, [res.batch.t.buffer, res.batch.fn.buffer, res.batch.offset.buffer, res.batch.addr.buffer] as ArrayBuffer[]);
    add(res, count, backwards);
    return last;
  }

  /** Merges a worker's part into the analyzer (range-part.ts); returns the last timestamp. */
  function merge(res: ParseResponse, w: number): number {
    const map = maps[w]!;
    const known = names[w]!;
    if (counts.events === 0 && res.events > 0) counts.firstEventLine = counts.lines + res.firstEventLine;
    // Time going backwards: at the seam with the range before (the worker cannot see it), then within the range.
    let backwards = res.backwards;
    if (res.events > 0 && res.firstT < lastT) {
      backwards++;
      if (counts.backwards === 0) counts.firstBackwardsLine = counts.lines + res.firstEventLine;
    }
    if (res.backwards > 0 && counts.backwards === 0 && !(res.firstT < lastT)) counts.firstBackwardsLine = counts.lines + res.firstBackwardsLine;
    merging!.mergePart(res.part, (local) => {
      let id = map[local]!;
      if (id < 0) id = map[local] = functions.idOf(known[local]!);
      return id;
    });
    add(res, res.events, backwards);
    return res.events > 0 ? res.lastT : lastT;
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
