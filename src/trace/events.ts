/**
 * A batch of parsed events in typed arrays: what a parse worker hands to the main thread.
 * Transferred, not copied, between threads.
 */
import type { TraceVisitor } from './parser.js';

export interface EventBatch {
  count: number;
  t: Float64Array;
  fn: Int32Array;
  offset: Int32Array;
  addr: Float64Array;
}

/** A TraceVisitor that records events into growing typed arrays. */
export class EventRecorder implements TraceVisitor {
  count = 0;
  private t = new Float64Array(1 << 16);
  private fn = new Int32Array(1 << 16);
  private offset = new Int32Array(1 << 16);
  private addr = new Float64Array(1 << 16);

  event(t: number, fn: number, offset: number, addr: number): void {
    const n = this.count;
    if (n === this.t.length) this.grow();
    this.t[n] = t;
    this.fn[n] = fn;
    this.offset[n] = offset;
    this.addr[n] = addr;
    this.count = n + 1;
  }

  /** The recorded events, trimmed to their count (a copy: the recorder's arrays are reused). */
  take(): EventBatch {
    const n = this.count;
    this.count = 0;
    return { count: n, t: this.t.slice(0, n), fn: this.fn.slice(0, n), offset: this.offset.slice(0, n), addr: this.addr.slice(0, n) };
  }

  private grow(): void {
    const size = this.t.length * 2;
    const t = new Float64Array(size); t.set(this.t); this.t = t;
    const fn = new Int32Array(size); fn.set(this.fn); this.fn = fn;
    const offset = new Int32Array(size); offset.set(this.offset); this.offset = offset;
    const addr = new Float64Array(size); addr.set(this.addr); this.addr = addr;
  }
}
