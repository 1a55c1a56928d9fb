/**
 * Self time per function ("hot functions"): line i's function gets t(i+1) - t(i); the last line gets 0.
 * Offsets fold into their function; bare addresses fold into [user] / [unresolved] (see functions.ts).
 * This is the 2016 traces' per-function accounting, done in one pass with arrays indexed by function id.
 * Percent is of the summed self time: last - first when time only goes forward, and never above 100 when it
 * does not (a delta lost to time going backwards would otherwise leave the span smaller than the sum).
 */
import type { FunctionTable } from '../src/trace/functions.js';
import type { TraceVisitor } from '../src/trace/parser.js';
import { roundUs } from '../src/output/write.js';

export interface HotFunctionRow {
  function: string;
  time_us: number;
  percent: number;
  lines: number;
}

export class HotFunctions implements TraceVisitor {
  private time = new Float64Array(1024);
  private lines = new Float64Array(1024);
  private prevFn = -1;
  private prevT = 0;

  event(t: number, fn: number): void {
    if (fn >= this.time.length) this.grow(fn);
    const prev = this.prevFn;
    if (prev >= 0) {
      const dt = t - this.prevT;
      // Time going backwards (reported by the reader) counts as no time at all.
      if (dt > 0) this.time[prev]! += dt;
    }
    this.lines[fn]!++;
    this.prevFn = fn;
    this.prevT = t;
  }

  /** Rows sorted by self time, then by name; `top` 0 keeps all. */
  rows(functions: FunctionTable, top = 0): HotFunctionRow[] {
    let total = 0;
    for (let id = 0; id < this.time.length; id++) total += this.time[id]!;
    const rows: HotFunctionRow[] = [];
    for (let id = 0; id < functions.size; id++) {
      const lines = id < this.lines.length ? this.lines[id]! : 0;
      if (lines === 0) continue;
      const time = this.time[id]!;
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

  private grow(fn: number): void {
    const size = Math.max(fn + 1, this.time.length * 2);
    const time = new Float64Array(size);
    const lines = new Float64Array(size);
    time.set(this.time);
    lines.set(this.lines);
    this.time = time;
    this.lines = lines;
  }
}
