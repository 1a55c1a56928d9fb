/**
 * trace.log across threads: the vCPU worker records step events (trace-writer.ts) straight into a ring of
 * batches in shared memory, and the capture's main thread formats and writes them (trace-formatter.ts).
 * Formatting 2,048 lines took ~110 us and a 64 KiB write more; in the vCPU thread that was a stall every
 * 2,048 steps, counted in the time of whatever instruction was being stepped. Posting each batch as a
 * message instead cost the vCPU thread 110-320 us per batch for the first dozen (docs/performance.md,
 * "Capture (KVM)"); the ring costs it a few atomic loads and stores per batch.
 *
 * Shared state (TraceChannel): the ring (RING_BATCHES slots of BATCH events, two doubles each) with each
 * slot's count; the encoded address tails, appended to a growable byte arena with each tail's end offset in
 * a growable table; and the counters in `state`: batches published (HEAD), batches written (TAIL), tails
 * published (TAILS). The worker writes a slot, its count and any new tails, then publishes HEAD; the main
 * thread formats slots up to HEAD and publishes TAIL. A slot whose count is negative, -(n + 1), holds n bytes
 * of text (comment lines) instead of events, so text keeps its place among the batches. A worker that finds the ring
 * full waits for TAIL to move, so a main thread that gets no CPU bounds memory instead of queueing a boot's
 * worth (and what a killed process loses: the batch being recorded, up to 2,048 steps, and the batches not yet
 * drained, ~10 ms of stepping unless the main thread was held up, at most the ring).
 */
import { UserError, messageOf } from '../../../src/errors.js';
import { TraceFormatter } from '../../trace-formatter.js';
import { BATCH, type TraceSink } from '../../trace-writer.js';

const ENCODER = new TextEncoder();

/** Slots in the ring: 64 batches of 2,048 events, 2 MiB, ~1 s of stepping here. */
export const RING_BATCHES = 64;
/** Bytes in one slot of the ring: BATCH events of two doubles. */
const SLOT_BYTES = BATCH * 2 * 8;
/** Most bytes of encoded tails, and most tails (virtual reservations: only what is used is allocated). */
const MAX_TAIL_BYTES = 1 << 30;
const MAX_TAILS = 1 << 24;
/** How long one wait for a free slot lasts before it is tried again. */
const WAIT_MS = 50;

/** Slots of TraceChannel.state. */
const HEAD = 0;
const TAIL = 1;
const TAILS = 2;
const STATE_SLOTS = 3;

/** The shared memory of one capture's trace channel (passed to the worker in its request). */
export interface TraceChannel {
  state: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  counts: SharedArrayBuffer;
  tailBytes: SharedArrayBuffer;
  tailEnds: SharedArrayBuffer;
}

interface GrowableSharedArrayBuffer extends SharedArrayBuffer {
  grow(newLength: number): void;
}
/** A SharedArrayBuffer that can grow to `max` bytes (ES2024; Node 20 has it, this project's lib is ES2022). */
const growable = (max: number): GrowableSharedArrayBuffer =>
  new (SharedArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => GrowableSharedArrayBuffer)(0, { maxByteLength: max });

/** A new channel's shared memory. */
export function createTraceChannel(): TraceChannel {
  return {
    state: new SharedArrayBuffer(4 * STATE_SLOTS),
    ring: new SharedArrayBuffer(RING_BATCHES * SLOT_BYTES),
    counts: new SharedArrayBuffer(4 * RING_BATCHES),
    tailBytes: growable(MAX_TAIL_BYTES),
    tailEnds: growable(4 * MAX_TAILS),
  };
}

/** Batches the worker has published and the main thread has written so far (test/trace-channel.test.ts). */
export function channelCounts(ch: TraceChannel): { published: number; written: number } {
  const state = new Int32Array(ch.state);
  return { published: Atomics.load(state, HEAD), written: Atomics.load(state, TAIL) };
}

/** Slot `i` of the ring, as the Float64Array a batch is recorded in. */
function slot(ring: SharedArrayBuffer, i: number): Float64Array {
  return new Float64Array(ring, i * SLOT_BYTES, BATCH * 2);
}

/**
 * The worker's sink. A full ring is waited on even after a stop request: the main thread empties it after a
 * stop or a write error too, and gives up on a worker that does not finish (capture.ts). Throws UserError
 * past MAX_TAILS or MAX_TAIL_BYTES.
 */
export function ringSink(ch: TraceChannel): TraceSink {
  const state = new Int32Array(ch.state);
  const counts = new Int32Array(ch.counts);
  const tailBytes = ch.tailBytes as GrowableSharedArrayBuffer;
  const tailEnds = ch.tailEnds as GrowableSharedArrayBuffer;
  // Every slot's view made now: a view made at the first batch cost the vCPU thread ~0.3 ms there.
  const slots = Array.from({ length: RING_BATCHES }, (_, i) => slot(ch.ring, i));
  let head = 0;
  let tails = 0;
  let tailPos = 0;
  const appendTails = (list: Uint8Array[]): void => {
    let need = tailPos;
    for (const t of list) need += t.length;
    if (need > MAX_TAIL_BYTES || tails + list.length > MAX_TAILS) throw new UserError(`trace.log: more than ${MAX_TAILS} addresses or ${MAX_TAIL_BYTES} bytes of symbol names`);
    if (need > tailBytes.byteLength) tailBytes.grow(Math.min(MAX_TAIL_BYTES, Math.max(need, 2 * tailBytes.byteLength, 1 << 16)));
    if (4 * (tails + list.length) > tailEnds.byteLength) tailEnds.grow(Math.min(4 * MAX_TAILS, Math.max(4 * (tails + list.length), 2 * tailEnds.byteLength, 1 << 12)));
    const bytes = new Uint8Array(tailBytes);
    const ends = new Int32Array(tailEnds);
    for (const t of list) {
      bytes.set(t, tailPos);
      tailPos += t.length;
      ends[tails++] = tailPos;
    }
  };
  /** Publishes slot head's count (and every tail appended) and waits until the next slot is free. */
  const publish = (count: number): Float64Array => {
    counts[head % RING_BATCHES] = count;
    Atomics.store(state, TAILS, tails);
    Atomics.store(state, HEAD, ++head);
    // The next slot is free once the main thread has written the batch RING_BATCHES back.
    for (let written = Atomics.load(state, TAIL); head - written >= RING_BATCHES; written = Atomics.load(state, TAIL)) {
      Atomics.wait(state, TAIL, written, WAIT_MS);
    }
    return slots[head % RING_BATCHES]!;
  };
  return {
    first: () => slots[0]!,
    batch(newTails, _events, count) {
      if (newTails.length > 0) appendTails(newTails);
      return publish(count);
    },
    text(text) {
      // In slots of their own, after the batches before it: the caller has handed over its events, so the
      // current slot holds none.
      const bytes = ENCODER.encode(text);
      let next = slots[head % RING_BATCHES]!;
      for (let off = 0; off < bytes.length; off += SLOT_BYTES) {
        const part = bytes.subarray(off, off + SLOT_BYTES);
        new Uint8Array(next.buffer, next.byteOffset, SLOT_BYTES).set(part);
        next = publish(-part.length - 1);
      }
      return next;
    },
    flush() {
      // The main thread writes every batch published (TraceReceiver.drain).
    },
    close() {
      // The main thread writes the rest and closes the file once the worker has finished (TraceReceiver).
    },
  };
}

/**
 * The main thread's end: formats and writes the batches the worker publishes to `file`. Call drain() now and
 * then (capture.ts: every few ms) and at the end; each drain that wrote lines hands them to the file, so a
 * killed process keeps what was drained. The file is created at the first batch (a capture that fails before
 * recording anything leaves none). An error is kept, not thrown: `onError` is called once (the capture stops
 * the vCPU), `error` is what the capture then fails with, and the ring goes on being emptied so the worker
 * never waits for ever. A write error (a full disk) is a UserError naming the file; anything else is kept as
 * it was thrown (an internal error, not a disk's).
 */
export class TraceReceiver {
  private formatter: TraceFormatter | undefined;
  private readonly state: Int32Array;
  private readonly counts: Int32Array;
  private written = 0;
  private tails = 0;
  /** The first error, once there was one. */
  error: Error | undefined;

  constructor(private readonly file: string, private readonly ch: TraceChannel, private readonly onError: () => void) {
    this.state = new Int32Array(ch.state);
    this.counts = new Int32Array(ch.counts);
  }

  /** Writes the batches published so far. */
  drain(): void {
    const upTo = Atomics.load(this.state, HEAD);
    if (this.written === upTo) return;
    while (this.written < upTo) {
      const i = this.written % RING_BATCHES;
      try {
        if (!this.error) this.take(i);
      } catch (err) {
        this.fail(err);
      }
      Atomics.store(this.state, TAIL, ++this.written);
      Atomics.notify(this.state, TAIL);
    }
    try {
      if (!this.error) this.formatter?.flushBuffer();
    } catch (err) {
      this.fail(err);
    }
  }

  /** Writes every batch published and closes the file; an error is kept in `error`. */
  close(): void {
    this.drain();
    try {
      this.formatter?.close();
    } catch (err) {
      this.fail(err);
    }
  }

  /** Slot i: its events, or its text (a negative count). */
  private take(i: number): void {
    const f = (this.formatter ??= this.open());
    const count = this.counts[i]!;
    if (count < 0) {
      f.bytes(new Uint8Array(this.ch.ring, i * SLOT_BYTES, -count - 1).slice());
      return;
    }
    this.takeTails(Atomics.load(this.state, TAILS));
    f.events(slot(this.ch.ring, i), count);
  }

  private open(): TraceFormatter {
    try {
      return new TraceFormatter(this.file);
    } catch (err) {
      throw new UserError(`${this.file}: cannot write the trace (${messageOf(err)})`);
    }
  }

  /** The tails published up to `n` (copied out of shared memory once, for the formatter). */
  private takeTails(n: number): void {
    if (n === this.tails) return;
    const ends = new Int32Array(this.ch.tailEnds);
    const bytes = new Uint8Array(this.ch.tailBytes);
    const list: Uint8Array[] = [];
    for (let k = this.tails; k < n; k++) list.push(bytes.slice(k === 0 ? 0 : ends[k - 1]!, ends[k]!));
    this.tails = n;
    this.formatter!.addTails(list);
  }

  private fail(err: unknown): void {
    if (this.error) return;
    this.error = err instanceof Error ? err : new Error(String(err));
    this.onError();
  }
}
