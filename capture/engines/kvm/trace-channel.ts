/**
 * trace.log across threads: the vCPU worker records step events (trace-writer.ts) straight into a ring of
 * batches in shared memory, and the capture's main thread formats and writes them (trace-formatter.ts).
 * Formatting 2,048 lines took ~110 us and a 64 KiB write more; in the vCPU thread that was a stall every
 * 2,048 steps, counted in the time of whatever instruction was being stepped. Posting each batch as a
 * message instead cost the vCPU thread 100-300 us per batch for the first dozen (docs/performance.md,
 * "Capture (KVM)"); the ring costs it two atomic stores per batch.
 *
 * Shared state (TraceChannel): the ring (RING_BATCHES slots of BATCH events, two doubles each) with each
 * slot's event count; the encoded address tails, appended to a growable byte arena with each tail's end
 * offset in a growable table; and the counters in `state`: batches published (HEAD), batches written
 * (TAIL), tails published (TAILS). The worker writes a slot, its count and any new tails, then publishes
 * HEAD; the main thread formats slots up to HEAD and publishes TAIL. A worker that finds the ring full
 * waits for TAIL to move, so a main thread that gets no CPU bounds memory instead of queueing a boot's worth.
 * Comment lines go as messages carrying the HEAD they follow (TraceTextMessage).
 */
import { UserError, messageOf } from '../../../src/errors.js';
import { TraceFormatter } from '../../trace-formatter.js';
import { BATCH, type TraceSink } from '../../trace-writer.js';

/** Slots in the ring: 64 batches of 2,048 events, 2 MiB, ~1 s of stepping here. */
export const RING_BATCHES = 64;
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

/** Text for trace.log (its comment lines), to be written after the first `after` batches. */
export interface TraceTextMessage {
  type: 'trace-text';
  text: string;
  after: number;
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
    ring: new SharedArrayBuffer(RING_BATCHES * BATCH * 2 * 8),
    counts: new SharedArrayBuffer(4 * RING_BATCHES),
    tailBytes: growable(MAX_TAIL_BYTES),
    tailEnds: growable(4 * MAX_TAILS),
  };
}

/** Batches the worker has published and the main thread has written so far (for progress and tests). */
export function channelCounts(ch: TraceChannel): { published: number; written: number } {
  const state = new Int32Array(ch.state);
  return { published: Atomics.load(state, HEAD), written: Atomics.load(state, TAIL) };
}

/** Slot `i` of the ring, as the Float64Array a batch is recorded in. */
function slot(ring: SharedArrayBuffer, i: number): Float64Array {
  return new Float64Array(ring, i * BATCH * 2 * 8, BATCH * 2);
}

/**
 * The worker's sink. `postText` sends a TraceTextMessage to the main thread. A full ring is waited on even
 * after a stop request: the main thread empties it after a stop or a write error too, and gives up on a
 * worker that does not finish (capture.ts). Throws UserError past MAX_TAILS or MAX_TAIL_BYTES.
 */
export function ringSink(ch: TraceChannel, postText: (m: TraceTextMessage) => void): TraceSink {
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
  return {
    first: () => slots[0]!,
    batch(newTails, _events, count) {
      if (newTails.length > 0) appendTails(newTails);
      counts[head % RING_BATCHES] = count;
      Atomics.store(state, TAILS, tails);
      Atomics.store(state, HEAD, ++head);
      // The next slot is free once the main thread has written the batch RING_BATCHES back.
      for (let written = Atomics.load(state, TAIL); head - written >= RING_BATCHES; written = Atomics.load(state, TAIL)) {
        Atomics.wait(state, TAIL, written, WAIT_MS);
      }
      return slots[head % RING_BATCHES]!;
    },
    text(text) {
      postText({ type: 'trace-text', text, after: head });
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
 * then (capture.ts: every few ms) and at the end. A write error (a full disk) is kept, not thrown: `onError`
 * is called once (the capture stops the vCPU), `error` is what the capture then fails with, and the ring
 * goes on being emptied so the worker never waits for ever.
 */
export class TraceReceiver {
  private readonly formatter: TraceFormatter;
  private readonly state: Int32Array;
  private readonly counts: Int32Array;
  private written = 0;
  private tails = 0;
  /** The first write error (UserError naming the file), once there was one. */
  error: UserError | undefined;

  /** Creates `file`; throws UserError when it cannot. */
  constructor(file: string, private readonly ch: TraceChannel, private readonly onError: () => void) {
    try {
      this.formatter = new TraceFormatter(file);
    } catch (err) {
      throw new UserError(`${file}: cannot write the trace (${messageOf(err)})`);
    }
    this.state = new Int32Array(ch.state);
    this.counts = new Int32Array(ch.counts);
  }

  /** Writes the batches published so far (or up to `upTo`). */
  drain(upTo = Atomics.load(this.state, HEAD)): void {
    while (this.written < upTo) {
      const i = this.written % RING_BATCHES;
      try {
        if (!this.error) {
          this.takeTails(Atomics.load(this.state, TAILS));
          this.formatter.events(slot(this.ch.ring, i), this.counts[i]!);
        }
      } catch (err) {
        this.fail(err);
      }
      Atomics.store(this.state, TAIL, ++this.written);
      Atomics.notify(this.state, TAIL);
    }
  }

  /** A comment from the worker, after the batches it follows. */
  text(m: TraceTextMessage): void {
    this.drain(m.after);
    try {
      if (!this.error) this.formatter.text(m.text);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Writes every batch published, then what is buffered, and closes the file; a write error is kept in `error`. */
  close(): void {
    this.drain();
    try {
      this.formatter.close();
    } catch (err) {
      this.fail(err);
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
    this.formatter.addTails(list);
  }

  private fail(err: unknown): void {
    if (this.error) return;
    this.error = err instanceof UserError ? err : new UserError(`${this.formatter.file}: cannot write the trace (${messageOf(err)})`);
    this.onError();
  }
}
