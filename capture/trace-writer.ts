/**
 * The step loop's side of trace.log: one event per step, recorded in a few bytes. The symbolised tail of
 * each address (" <symbol>\n") is encoded once and cached: a boot executes few distinct addresses many
 * times. A step only records its timestamp and its address's tail index, found through a small
 * direct-mapped table; every BATCH events, and before any comment, the events and the tails new since the
 * last batch go to a TraceSink, which formats and writes them (trace-formatter.ts, the format's owner).
 * So the step loop, whose caches KVM_RUN has just evicted, touches a few bytes per step
 * (docs/performance.md, "Capture (KVM)").
 *
 * The sink is a TraceFormatter in the same thread (new TraceWriter(file, ...): the QEMU engine), or one in
 * another thread (the KVM engine's vCPU worker shares a ring of batches with the capture's main thread:
 * engines/kvm/trace-channel.ts). A crash loses the batch being recorded and what the sink has not written yet
 * (trace-formatter.ts: its buffer; trace-channel.ts: the batches not yet drained); close() hands over everything.
 */
import { MAX_LINE, TraceFormatter } from './trace-formatter.js';

/** Events recorded before they go to the sink (the most in one batch). */
export const BATCH = 2048;
/** Events in the first batch (TraceWriter.limit). */
const FIRST_BATCH = 64;
/** Slots of the direct-mapped address cache (a power of two). */
const SLOTS = 4096;
/** Digits after the decimal point of a host-clock timestamp (0.1 us; one step costs ~7 us here). */
export const HOST_CLOCK_DECIMALS = 1;

/** Where recorded events go (trace-formatter.ts formats them). Calls come in the order of the file's lines. */
export interface TraceSink {
  /** The array the first batch's events are recorded in (BATCH pairs of doubles). */
  first(): Float64Array;
  /**
   * `count` events in `events` (pairs of doubles: time, tail index or ~index for a host-clock time), after
   * `tails`, the encoded tails of the addresses met since the last call, in index order. Returns the array
   * the next batch is recorded in (it may be `events` again once the sink is done with it).
   */
  batch(tails: Uint8Array[], events: Float64Array, count: number): Float64Array;
  /** Text to write as it is (comment lines), after every batch handed over so far. Returns the array the next batch is recorded in. */
  text(text: string): Float64Array;
  /** Writes what it holds to the file, where it writes in this thread (a no-op for one in another thread). */
  flush(): void;
  /** Everything has been handed over. */
  close(): void;
}

/** A TraceFormatter in this thread, as a sink: each batch is formatted at once, and its array used again. */
export function formatterSink(f: TraceFormatter): TraceSink {
  const events = new Float64Array(BATCH * 2);
  return {
    first: () => events,
    batch: (tails, batch, count) => {
      f.addTails(tails);
      f.events(batch, count);
      return batch;
    },
    text: (text) => {
      f.text(text);
      return events;
    },
    flush: () => f.flushBuffer(),
    close: () => f.close(),
  };
}

/** The symbolised name of an address, as trace.log shows it after the timestamp. */
export type Describe = (addr: bigint) => string;

/**
 * Asked once per distinct address: flags (a small non-negative int) that event() returns every time the
 * address is reached, so that a caller's per-address facts cost no lookup of their own (the KVM run loop
 * keeps whether it is a HLT, and its instruction class for the step watchdog: run-loop.ts addressFlags).
 */
export type Classify = (addr: bigint) => number;

interface Tail {
  /** High half of the address this entry is for (the map is keyed by the low half). */
  hi: number;
  bytes: Uint8Array;
  flags: number;
  /** Its place in tailList. */
  index: number;
}

export class TraceWriter {
  private readonly sink: TraceSink;
  /**
   * Encoded " <describe(addr)>\n" and the classify() answer per address. Keyed by the low 32 bits as an
   * int32 (a small integer to V8, so the lookup hashes no heap number); addresses that share a low half
   * but not the high one (rare: user and kernel code at the same offset) go to `others`.
   */
  private readonly tails = new Map<number, Tail>();
  private readonly others = new Map<string, Tail>();
  /** Every tail, by index. */
  private readonly tailList: Tail[] = [];
  /**
   * The direct-mapped cache in front of `tails`, 4 int32 per slot: low half, high half, tail index (-1: empty),
   * classify() flags. One cache line per step instead of a Map lookup and two objects: right after KVM_RUN
   * the caches are cold, and each line a step touches costs more than the work on it (docs/performance.md).
   */
  private readonly cache = new Int32Array(SLOTS * 4).fill(-1);
  /**
   * Events recorded and not yet handed to the sink, two doubles each: the timestamp, and the tail index
   * (~index: host clock, one decimal). One array, written in order, so a step touches one more cache line
   * every 4 steps. The sink gives the array of each batch (in the KVM engine, a slot of a ring shared with
   * the thread that formats them).
   */
  private pendingEvents: Float64Array;
  private pending = 0;
  /**
   * Events in the batch being recorded: FIRST_BATCH for the first, BATCH after. A first batch handed over
   * within the first steps gives V8 type feedback for that path before it optimizes the step loop; at
   * step 2,048 it threw the optimized loop away (node --trace-deopt, "Insufficient type feedback").
   */
  private limit = FIRST_BATCH;
  /** tailList's length at the last batch: the tails after it go with the next one. */
  private sentTails = 0;
  /** Events recorded (close() hands every one to the sink). */
  lines = 0;

  /**
   * `to`: the file to write (a TraceFormatter in this thread), or a sink. `describe` names an address;
   * `classify` gives its flags (Classify).
   */
  constructor(to: string | TraceSink, private readonly describe: Describe, private readonly classify?: Classify) {
    this.sink = typeof to === 'string' ? formatterSink(new TraceFormatter(to)) : to;
    this.pendingEvents = this.sink.first();
  }

  /** `# text` comment lines (metadata at the top of the file). */
  comment(text: string): void {
    this.handOver(); // the lines recorded before this text come first
    this.pendingEvents = this.sink.text(text.split('\n').map((line) => `# ${line}\n`).join(''));
  }

  /**
   * One event at address hi:lo (the two 32-bit halves of the 64-bit address, as read from kvm_run without
   * making a BigInt). `t` is either an integer (steps clock) or microseconds (host clock, `decimals` 1).
   * Returns the classify() flags of the address (0 without a classifier).
   */
  event(t: number, decimals: number, hi: number, lo: number): number {
    // As int32 (the cache's element type): callers pass the halves as read, unsigned.
    const lo32 = lo | 0, hi32 = hi | 0;
    const slot = (lo32 ^ (lo32 >>> 12)) & (SLOTS - 1);
    const cache = this.cache;
    let index: number;
    if (cache[slot * 4] === lo32 && cache[slot * 4 + 1] === hi32 && cache[slot * 4 + 2]! >= 0) index = cache[slot * 4 + 2]!;
    else {
      let tail = this.tails.get(lo | 0);
      if (tail === undefined || tail.hi !== hi) tail = this.miss(hi, lo);
      index = tail.index;
      cache[slot * 4] = lo32;
      cache[slot * 4 + 1] = hi32;
      cache[slot * 4 + 2] = index;
      cache[slot * 4 + 3] = tail.flags;
    }
    const n = this.pending;
    this.pendingEvents[2 * n] = t;
    this.pendingEvents[2 * n + 1] = decimals === 0 ? index : ~index;
    this.pending = n + 1;
    if (n + 1 === this.limit) this.handOver();
    return cache[slot * 4 + 3]!;
  }

  /** Hands the recorded events, and the tails new since the last batch, to the sink. */
  private handOver(): void {
    const count = this.pending;
    const list = this.tailList;
    if (count === 0 && this.sentTails === list.length) return;
    const tails: Uint8Array[] = [];
    for (let i = this.sentTails; i < list.length; i++) tails.push(list[i]!.bytes);
    this.sentTails = list.length;
    this.pending = 0;
    this.limit = BATCH;
    this.lines += count;
    this.pendingEvents = this.sink.batch(tails, this.pendingEvents, count);
  }

  /** Hands everything over and has the sink write what it holds (in this thread: to the file now). */
  flush(): void {
    this.handOver();
    this.sink.flush();
  }

  /** Hands everything over and closes the sink. */
  close(): void {
    try {
      this.handOver();
    } finally {
      this.sink.close();
    }
  }

  private miss(hi: number, lo: number): Tail {
    const first = this.tails.get(lo | 0);
    const otherKey = `${hi}:${lo}`;
    if (first !== undefined) {
      const t = this.others.get(otherKey);
      if (t !== undefined) return t;
    }
    const addr = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    let text = ' ' + this.describe(addr) + '\n';
    if (text.length > MAX_LINE - 32) text = text.slice(0, MAX_LINE - 33) + '\n';
    const t: Tail = { hi, bytes: Buffer.from(text, 'utf8'), flags: this.classify ? this.classify(addr) : 0, index: this.tailList.length };
    this.tailList.push(t);
    if (first === undefined) this.tails.set(lo | 0, t);
    else this.others.set(otherKey, t);
    return t;
  }
}
