/**
 * The first time each function appears in a trace (at any offset): a timeline of boot milestones.
 * E.g. the first ext4_* function is when userspace mounts the root filesystem.
 * Bare addresses name no function and are left out.
 */
import { UNRESOLVED, USER, type FunctionTable } from '../src/trace/functions.js';
import type { TraceVisitor } from '../src/trace/parser.js';
import { roundUs } from '../src/output/write.js';

export interface FirstCallRow {
  function: string;
  first_us: number;
}

export class FirstCalls implements TraceVisitor {
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

  /** Rows by ascending first time (file order among equal times), filtered by `match` on the name. */
  rows(functions: FunctionTable, match?: RegExp): FirstCallRow[] {
    const rows = this.order.map((fn, i) => ({ function: functions.names[fn]!, first_us: roundUs(this.firstT[i]!) }));
    const kept = match ? rows.filter((r) => match.test(r.function)) : rows;
    // Stable sort: a trace whose time went backwards still lists ties in the order they appeared.
    return kept.sort((a, b) => a.first_us - b.first_us);
  }
}
