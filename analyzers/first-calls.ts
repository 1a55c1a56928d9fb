/**
 * The first time each function appears in a trace (at any offset): a timeline of boot milestones.
 * E.g. the first ext4_* function is when userspace mounts the root filesystem.
 * Bare addresses name no function and are left out.
 */
import { UNRESOLVED, USER, type FunctionTable } from '../src/trace/functions.js';
import type { MergingVisitor, RangeVisitor } from '../src/trace/range-part.js';
import { roundUs } from '../src/output/write.js';

export interface FirstCallRow {
  function: string;
  first_us: number;
}

/** What a parse worker sends for one range: the functions the range met first, in order, with their times. */
export interface FirstCallsPart {
  /** Worker function ids, in order of first appearance in the range. */
  ids: Int32Array<ArrayBuffer>;
  t: Float64Array<ArrayBuffer>;
}

export class FirstCalls implements MergingVisitor {
  readonly rangeKind = 'first-calls';
  /** Function ids in order of first appearance, with their first timestamps. */
  private order: number[] = [];
  private firstT: number[] = [];
  private seen = new Uint8Array(1024);

  event(t: number, fn: number): void {
    if (fn >= this.seen.length) {
      const seen = new Uint8Array(Math.max(fn + 1, this.seen.length * 2));
      seen.set(this.seen);
      this.seen = seen;
    }
    if (this.seen[fn]) return;
    this.seen[fn] = 1;
    if (fn === USER || fn === UNRESOLVED) return;
    this.order.push(fn);
    this.firstT.push(t);
  }

  /** A worker's range (FirstCallsRange), next in file order: its first appearances, as event() would see them. */
  mergePart(part: unknown, ids: (local: number) => number): void {
    const p = part as FirstCallsPart;
    for (let k = 0; k < p.ids.length; k++) this.event(p.t[k]!, ids(p.ids[k]!));
  }

  /** Rows by ascending first time (file order among equal times), filtered by `match` on the name. */
  rows(functions: FunctionTable, match?: RegExp): FirstCallRow[] {
    const rows = this.order.map((fn, i) => ({ function: functions.names[fn]!, first_us: roundUs(this.firstT[i]!) }));
    const kept = match ? rows.filter((r) => match.test(r.function)) : rows;
    // Stable sort: a trace whose time went backwards still lists ties in the order they appeared.
    return kept.sort((a, b) => a.first_us - b.first_us);
  }
}

/** FirstCalls' half in a parse worker (src/trace/range-part.ts): each range's own first appearances. */
export class FirstCallsRange implements RangeVisitor {
  /** Per function id: the number of the range that last met it (ranges count from 1). */
  private stamp = new Int32Array(1024);
  private range = 1;
  private ids: number[] = [];
  private t: number[] = [];

  event(t: number, fn: number): void {
    if (fn >= this.stamp.length) {
      const stamp = new Int32Array(Math.max(fn + 1, this.stamp.length * 2));
      stamp.set(this.stamp);
      this.stamp = stamp;
    }
    if (this.stamp[fn] === this.range) return;
    this.stamp[fn] = this.range;
    this.ids.push(fn);
    this.t.push(t);
  }

  takePart(): { part: FirstCallsPart; transfer: ArrayBuffer[] } {
    const part: FirstCallsPart = { ids: Int32Array.from(this.ids), t: Float64Array.from(this.t) };
    this.range++;
    this.ids = [];
    this.t = [];
    return { part, transfer: [part.ids.buffer, part.t.buffer] };
  }
}
