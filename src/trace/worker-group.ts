/**
 * The parse workers of one parallel read (parallel.ts) and what they have sent: started either by the reader
 * itself, or before the command line was parsed (early-start.ts), in which case the reader adopts the group
 * when it reads the same file for the same analyzer.
 */
import { Worker } from 'node:worker_threads';
import type { ParseResponse } from './parse-worker.js';
import { CTL_CURSOR, CTL_STATES, type WorkerSetup } from './range.js';
import type { RangeKind } from './range-part.js';

/**
 * A worker claims ranges from LEAD past the main thread's, in a window of WINDOW_PER_WORKER per worker: an
 * event batch is ~3.6 MB per 8 MiB range, so few are kept. An analyzer's part (range-part.ts) is small, so a
 * worker may run further ahead and claim closer to the main thread (PART_LEAD): it never idles while the main
 * thread catches up, and the main thread parses fewer ranges itself (measured in docs/performance.md:
 * ~7% less time for syscalls and hot-functions than a lead of 3 and a window of 8).
 */
const LEAD = 3;
const WINDOW_PER_WORKER = 2;
const PART_LEAD = 1;
const PART_WINDOW_PER_WORKER = 16;

export interface WorkerGroup {
  setup: WorkerSetup;
  control: Int32Array;
  workers: Worker[];
  /** Per worker: its function names by local id (names travel once, with the first response that uses them). */
  names: string[][];
  /** Responses not yet taken, by range index, with the number of the worker that sent them. */
  pending: Map<number, [ParseResponse, number]>;
  failure: unknown;
  /** Called whenever a response or an error arrives (the reader waiting for one sets it). */
  wake: (() => void) | null;
}

export interface GroupSpec {
  path: string;
  size: number;
  rangeBytes: number;
  /** Parsing threads, the main thread included. */
  threads: number;
  reportLimit: number;
  kind?: RangeKind;
}

/** Starts `spec.threads - 1` parse workers over `spec.path`, collecting what they send. */
export function startWorkerGroup(spec: GroupSpec): WorkerGroup {
  const ranges = Math.ceil(spec.size / spec.rangeBytes);
  const control = new Int32Array(new SharedArrayBuffer(4 * (CTL_STATES + ranges)));
  const setup: WorkerSetup = {
    path: spec.path, reportLimit: spec.reportLimit, control: control.buffer as SharedArrayBuffer, ranges, rangeBytes: spec.rangeBytes, size: spec.size,
    lead: spec.kind ? PART_LEAD : LEAD, window: (spec.kind ? PART_WINDOW_PER_WORKER : WINDOW_PER_WORKER) * (spec.threads - 1),
    ...(spec.kind ? { kind: spec.kind } : {}),
  };
  const workerUrl = new URL('./parse-worker.js', import.meta.url);
  const workers = Array.from({ length: spec.threads - 1 }, () => new Worker(workerUrl, { workerData: setup }));
  const group: WorkerGroup = { setup, control, workers, names: workers.map(() => ['[user]', '[unresolved]']), pending: new Map(), failure: null, wake: null };
  workers.forEach((worker, w) => {
    worker.on('message', (res: ParseResponse) => {
      // Names arrive in the order the worker met them, which is not the replay's order: keep them by local id.
      for (const [local, name] of res.names) group.names[w]![local] = name;
      group.pending.set(res.index, [res, w]);
      group.wake?.();
    });
    worker.on('error', (err) => {
      group.failure ??= err;
      group.wake?.();
    });
  });
  return group;
}

/** Whether `group` was started for exactly this read. */
export function groupMatches(group: WorkerGroup, spec: GroupSpec): boolean {
  const s = group.setup;
  return s.path === spec.path && s.size === spec.size && s.rangeBytes === spec.rangeBytes && s.reportLimit === spec.reportLimit &&
    s.kind === spec.kind && group.workers.length === spec.threads - 1 && !group.failure;
}

/** Ends the group's workers (they may be mid-range: their work is thrown away). */
export function stopWorkerGroup(group: WorkerGroup): void {
  // The cursor past the last range: a worker waiting for it to move wakes and ends.
  Atomics.store(group.control, CTL_CURSOR, group.setup.ranges);
  Atomics.notify(group.control, CTL_CURSOR);
  for (const worker of group.workers) void worker.terminate();
}
