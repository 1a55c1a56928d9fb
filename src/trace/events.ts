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

/** A TraceVisitor that records events into typed arrays, growing them as needed. */
export class EventRecorder implements TraceVisitor {
  count = 0;
  private t: Float64Array;
  private fn: Int32Array;
  private offset: Int32Array;
  private addr: Float64Array;

  constructor(capacity = 1 << 16) {
    this.t = new Float64Array(capacity);
    this.fn = new Int32Array(capacity);
    this.offset = new Int32Array(capacity);
    this.addr = new Float64Array(capacity);
  }

  /** Records into the arrays of a batch handed back after use, so steady-state parsing allocates nothing. */
  adopt(batch: EventBatch): void {
    this.t = batch.t;
    this.fn = batch.fn;
    this.offset = batch.offset;
    this.addr = batch.addr;
    this.count = 0;
  }

  event(t: number, fn: number, offset: number, addr: number): void {
    const n = this.count;
    if (n === this.t.length) this.grow();
    this.t[n] = t;
    this.fn[n] = fn;
    this.offset[n] = offset;
    this.addr[n] = addr;
    this.count = n + 1;
  }

  /** The recorded events; the arrays are the recorder's own (their length is the capacity, not the count). */
  take(): EventBatch {
    const batch = { count: this.count, t: this.t, fn: this.fn, offset: this.offset, addr: this.addr };
    this.count = 0;
    return batch;
  }

  private grow(): void {
    const size = this.t.length * 2;
    const t = new Float64Array(size); t.set(this.t); this.t = t;
    const fn = new Int32Array(size); fn.set(this.fn); this.fn = fn;
    const offset = new Int32Array(size); offset.set(this.offset); this.offset = offset;
    const addr = new Float64Array(size); addr.set(this.addr); this.addr = addr;
  }
}
