/**
 * Self time per function ("hot functions"): line i's function gets t(i+1) - t(i); the last line gets 0.
 * Offsets fold into their function; bare addresses fold into [user] / [unresolved] (see functions.ts).
 * This is the 2016 traces' per-function accounting, done in one pass with arrays indexed by function id.
 * Percent is of the summed self time: last - first when time only goes forward, and never above 100 when it
 * does not (a delta lost to time going backwards would otherwise leave the span smaller than the sum).
 * Sums are kept exact (addExact), so they do not depend on the order of the additions: the parallel reader
 * adds a range's subtotals where one thread adds each delta, and both must give the same figures.
 */
import type { FunctionTable } from '../src/trace/functions.js';
import type { MergingVisitor, RangeVisitor } from '../src/trace/range-part.js';
import { roundUs } from '../src/output/write.js';

export interface HotFunctionRow {
  function: string;
  time_us: number;
  percent: number;
  lines: number;
}

/**
 * What a parse worker sends for one range (HotFunctionsRange): the self time and line count of each
 * function the range names, by the worker's function ids in the order the range first met them; and the
 * range's first and last events, for the time between it and its neighbours.
 */
export interface HotFunctionsPart {
  ids: Int32Array<ArrayBuffer>;
  /** Self time as an exact sum time + timeLo (addExact). */
  time: Float64Array<ArrayBuffer>;
  timeLo: Float64Array<ArrayBuffer>;
  lines: Float64Array<ArrayBuffer>;
  /** The range's first timestamp: the previous range's last line runs until then. */
  firstT: number;
  /** The range's last line (worker id; -1: the range had no event) and its timestamp. */
  lastFn: number;
  lastT: number;
}

/**
 * Self time and lines per function id, line by line: what HotFunctions and its range half (HotFunctionsRange)
 * both count.
 */
abstract class SelfTimes {
  /** Self time per function id, as the exact sum time[id] + timeLo[id] (addExact). */
  protected time = new Float64Array(1024);
  protected timeLo = new Float64Array(1024);
  protected lines = new Float64Array(1024);
  protected prevFn = -1;
  protected prevT = 0;

  /** A line of function `fn` at `t`: the line before it gets the time until `t`. */
  protected count(t: number, fn: number): void {
    if (fn >= this.time.length) this.grow(fn);
    const prev = this.prevFn;
    if (prev >= 0) {
      const dt = t - this.prevT;
      // Time going backwards (reported by the reader) counts as no time at all.
      if (dt > 0) addExact(this.time, this.timeLo, prev, dt);
    }
    this.lines[fn]!++;
    this.prevFn = fn;
    this.prevT = t;
  }

  /** Makes room for function id `fn` (and at least twice the ids there were). */
  protected grow(fn: number): void {
    const size = Math.max(fn + 1, this.time.length * 2);
    const time = new Float64Array(size);
    const timeLo = new Float64Array(size);
    const lines = new Float64Array(size);
    time.set(this.time);
    timeLo.set(this.timeLo);
    lines.set(this.lines);
    this.time = time;
    this.timeLo = timeLo;
    this.lines = lines;
  }
}

export class HotFunctions extends SelfTimes implements MergingVisitor {
  readonly rangeKind = 'hot-functions';

  event(t: number, fn: number): void {
    this.count(t, fn);
  }

  /** A worker's range (HotFunctionsRange), next in file order. */
  mergePart(part: unknown, ids: (local: number) => number): void {
    const p = part as HotFunctionsPart;
    if (p.lastFn < 0) return;
    if (this.prevFn >= 0) {
      const dt = p.firstT - this.prevT;
      if (dt > 0) addExact(this.time, this.timeLo, this.prevFn, dt);
    }
    for (let k = 0; k < p.ids.length; k++) {
      const fn = ids(p.ids[k]!);
      if (fn >= this.time.length) this.grow(fn);
      addExact(this.time, this.timeLo, fn, p.time[k]!);
      addExact(this.time, this.timeLo, fn, p.timeLo[k]!);
      this.lines[fn]! += p.lines[k]!;
    }
    this.prevFn = ids(p.lastFn);
    this.prevT = p.lastT;
  }

  /** Rows sorted by self time, then by name; `top` 0 keeps all. */
  rows(functions: FunctionTable, top = 0): HotFunctionRow[] {
    let total = 0;
    for (let id = 0; id < this.time.length; id++) total += this.time[id]! + this.timeLo[id]!;
    const rows: HotFunctionRow[] = [];
    for (let id = 0; id < functions.size; id++) {
      const lines = id < this.lines.length ? this.lines[id]! : 0;
      if (lines === 0) continue;
      const time = this.time[id]! + this.timeLo[id]!;
      rows.push({
        function: functions.names[id]!,
        time_us: roundUs(time),
        percent: total > 0 ? Math.round((10000 * time) / total) / 100 : 0,
        lines,
      });
    }
    rows.sort((a, b) => b.time_us - a.time_us || b.lines - a.lines || (a.function < b.function ? -1 : 1));
    return top > 0 ? rows.slice(0, top) : rows;
  }
}

/**
 * HotFunctions' half in a parse worker (src/trace/range-part.ts): the same accounting over one range at a
 * time, keeping which functions the range touched so that its part carries only those.
 */
export class HotFunctionsRange extends SelfTimes implements RangeVisitor {
  /** Per function id: the number of the range that last touched it (ranges count from 1). */
  private stamp = new Int32Array(1024);
  private range = 1;
  private touched: number[] = [];
  private firstT = 0;

  event(t: number, fn: number): void {
    if (fn >= this.stamp.length) this.grow(fn);
    if (this.stamp[fn] !== this.range) {
      this.stamp[fn] = this.range;
      this.touched.push(fn);
      this.time[fn] = 0;
      this.timeLo[fn] = 0;
      this.lines[fn] = 0;
    }
    if (this.prevFn < 0) this.firstT = t;
    this.count(t, fn);
  }

  takePart(): { part: HotFunctionsPart; transfer: ArrayBuffer[] } {
    const n = this.touched.length;
    const ids = Int32Array.from(this.touched);
    const time = new Float64Array(n);
    const timeLo = new Float64Array(n);
    const lines = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      time[k] = this.time[ids[k]!]!;
      timeLo[k] = this.timeLo[ids[k]!]!;
      lines[k] = this.lines[ids[k]!]!;
    }
    const part: HotFunctionsPart = { ids, time, timeLo, lines, firstT: this.firstT, lastFn: this.prevFn, lastT: this.prevT };
    this.range++;
    this.touched = [];
    this.prevFn = -1;
    return { part, transfer: [ids.buffer, time.buffer, timeLo.buffer, lines.buffer] };
  }

  protected override grow(fn: number): void {
    super.grow(fn);
    const stamp = new Int32Array(this.time.length);
    stamp.set(this.stamp);
    this.stamp = stamp;
  }
}

/**
 * hi[id] + lo[id] += x, exactly: Knuth's TwoSum gives each addition's rounding error, which lo collects.
 * Deltas of the timestamps of one trace are multiples of a common quantum (the ulp of the smallest
 * timestamps), so lo's own additions are exact too for any trace whose times span fewer than 2^53 quanta
 * below the largest total: then hi + lo is the exact sum, whatever the order of the additions, and rounds to
 * the same double (D. Knuth, TAOCP vol. 2, 4.2.2; the same error-free transformation as Shewchuk's).
 */
function addExact(hi: Float64Array, lo: Float64Array, id: number, x: number): void {
  const a = hi[id]!;
  const s = a + x;
  const b = s - a;
  lo[id]! += a - (s - b) + (x - b);
  hi[id] = s;
}
