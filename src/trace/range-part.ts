/**
 * Analyzers that run inside the parallel reader's parse workers (src/trace/parallel.ts).
 *
 * Without this, a worker sends every event it parsed to the main thread, which replays them into the
 * analyzer: ~2.5 ms per 8 MiB range, plus 20 bytes per event to move. An analyzer that implements
 * MergingVisitor instead has a range half (RangeVisitor) that a worker runs over each range it parses;
 * the worker sends only a summary of the range (a "part": a few typed arrays), and the main thread's
 * analyzer merges the parts in file order. Its result must be exactly what it computes from the events
 * in order: test/parallel-reader.test.ts compares every merging analyzer's output with one thread's, on
 * ranges small enough to cut every line.
 *
 * Parts travel by postMessage (structured clone, typed arrays transferred). Function ids inside a part
 * are the worker's own; `ids` maps them to the main table's (interning names in the order they are asked
 * for, so a part should ask in the order the range first met them).
 */
import type { FunctionTable } from './functions.js';
import type { TraceVisitor } from './parser.js';

/** Which range half a worker runs: the registry in range-kinds.ts. */
export type RangeKind = 'hot-functions' | 'first-calls' | 'syscalls';

/** A worker's side: sees the events of one range, then hands over its part and starts afresh. */
export interface RangeVisitor extends TraceVisitor {
  /**
   * The part for the events since the last call, and the ArrayBuffers in it to transfer (not copy). The
   * visitor is then ready for another range: its state never carries from one range to the next, since the
   * ranges a worker gets are not consecutive.
   */
  takePart(): { part: unknown; transfer: ArrayBuffer[] };
}

/** The main thread's side: the analyzer itself, which also takes the parts of the ranges workers parsed. */
export interface MergingVisitor extends TraceVisitor {
  readonly rangeKind: RangeKind;
  /**
   * Adds the part of the next range in file order, as if its events had been passed to event() here.
   * `ids(local)`: the main table's id of a function id of the worker that made the part.
   */
  mergePart(part: unknown, ids: (local: number) => number): void;
}

export function isMerging(v: TraceVisitor): v is MergingVisitor {
  return typeof (v as Partial<MergingVisitor>).mergePart === 'function' && typeof (v as Partial<MergingVisitor>).rangeKind === 'string';
}

/** Makes a worker's range half for `kind`, over the worker's own function table. */
export type RangeVisitorFactory = (functions: FunctionTable) => RangeVisitor;
