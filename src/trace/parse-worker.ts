/**
 * A worker thread that parses byte ranges of a trace file for src/trace/parallel.ts.
 * Ranges are claimed, not assigned: the worker takes the highest free range within the window ahead of the
 * main thread (a compare-and-swap on its state in shared memory), parses the lines that START in it
 * (range.ts) into an event batch, and posts it. The main thread parses the free ranges it reaches itself,
 * so a worker that gets little CPU (a loaded machine) holds nothing up but the one range it is parsing.
 * Function names are interned per worker; each name travels, once, with the first batch that used it.
 */
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { EventRecorder, type EventBatch } from './events.js';
import { FunctionTable } from './functions.js';
import { TraceParser, type TraceVisitor } from './parser.js';
import { CTL_CURSOR, CTL_STATES, RANGE_FREE, RANGE_WORKER, RangeReader, READ_CHUNK, type WorkerSetup } from './range.js';
import { rangeVisitorFactory } from './range-kinds.js';
import type { RangeVisitor } from './range-part.js';

export interface ParseResponse {
  index: number;
  /** The range's events (no setup.kind), or null. */
  batch: EventBatch | null;
  /** The analyzer's part for the range (setup.kind: range-part.ts), or null. */
  part: unknown;
  events: number;
  /** The range's first and last timestamps (when events > 0). */
  firstT: number;
  lastT: number;
  /** Times going backwards within the range (its first event is never counted: the main thread checks the seam). */
  backwards: number;
  /** [local id, name] for names this worker had not sent before. */
  names: [number, string][];
  lines: number;
  comments: number;
  blank: number;
  malformed: number;
  malformedByCode: number[];
  /** Line numbers within the range of the first event and of the first time going backwards (0: none). */
  firstEventLine: number;
  firstBackwardsLine: number;
  /** The first few malformed lines: [line number within the range, 1-based; text; code (malformed.ts)]. */
  malformedLines: [number, string, number][];
}

const setup = workerData as WorkerSetup;
lowerOwnPriority();
const control = new Int32Array(setup.control);
const fd = openSync(setup.path, 'r');
const functions = new FunctionTable();
const reader = new RangeReader(fd, TraceParser.readBuffer(functions, READ_CHUNK));
const recorder = new EventRecorder(0);
/** The analyzer's range half when the main thread's analyzer merges parts (range-part.ts). */
const rangeVisitor: RangeVisitor | null = setup.kind ? (await rangeVisitorFactory(setup.kind))(functions) : null;
let namesSent = 2; // ids 0 and 1 are the same fixed buckets everywhere
/** Batches the main thread has replayed and handed back, for reuse. */
const spare: EventBatch[] = [];

function parseRange(index: number): { res: ParseResponse; transfer: ArrayBuffer[] } {
  const visitor: TraceVisitor = rangeVisitor ?? recorder;
  if (!rangeVisitor) {
    for (let m; (m = receiveMessageOnPort(parentPort as MessagePort)); ) spare.push(m.message as EventBatch);
    recorder.adopt(spare.pop() ?? new EventRecorder(1 << 16).take());
  }
  const start = index * setup.rangeBytes;
  const malformedLines: [number, string, number][] = [];
  const parser = new TraceParser(functions, visitor, (line, text, code) => {
    if (malformedLines.length < setup.reportLimit) malformedLines.push([line, text, code]);
  });
  reader.readLines(start, Math.min(setup.size, start + setup.rangeBytes), (chunk) => parser.push(chunk));
  parser.end();
  const names: [number, string][] = [];
  for (; namesSent < functions.size; namesSent++) names.push([namesSent, functions.names[namesSent]!]);
  const c = parser.counts;
  let batch: EventBatch | null = null, part: unknown = null, transfer: ArrayBuffer[];
  if (rangeVisitor) ({ part, transfer } = rangeVisitor.takePart());
  else {
    batch = recorder.take();
    transfer = [batch.t.buffer, batch.fn.buffer, batch.offset.buffer, batch.addr.buffer] as ArrayBuffer[];
  }
  const res: ParseResponse = {
    index, batch, part, events: c.events, firstT: parser.firstTime, lastT: parser.lastTime, backwards: c.backwards, names, lines: c.lines, comments: c.comments, blank: c.blank,
    malformed: c.malformed, malformedByCode: c.malformedByCode, malformedLines, firstEventLine: c.firstEventLine,
    firstBackwardsLine: c.firstBackwardsLine,
  };
  return { res, transfer };
}

/**
 * The highest free range in the window ahead of the main thread, claimed; -1 when there is none. The window
 * starts `lead` ranges past the main thread's, so a claimed range has that many ranges' time to be parsed
 * before the main thread needs it.
 */
function claim(cursor: number): number {
  const end = Math.min(setup.ranges, cursor + setup.lead + setup.window);
  for (let i = end - 1; i >= cursor + setup.lead; i--) {
    if (Atomics.compareExchange(control, CTL_STATES + i, RANGE_FREE, RANGE_WORKER) === RANGE_FREE) return i;
  }
  return -1;
}

for (;;) {
  const cursor = Atomics.load(control, CTL_CURSOR);
  if (cursor >= setup.ranges) break;
  const index = claim(cursor);
  if (index < 0) {
    // Nothing free ahead: sleep until the main thread moves on (or ends).
    Atomics.wait(control, CTL_CURSOR, cursor, 100);
    continue;
  }
  const { res, transfer } = parseRange(index);
  parentPort!.postMessage(res, transfer);
}
closeSync(fd);

/**
 * The worker is a helper: the main thread, and V8's compiler threads that optimize both threads' parsers,
 * come first. With two cores and two threads parsing, the compiler threads otherwise wait for a core while
 * both parsers run unoptimized (~100 ms per thread at the start, docs/performance.md); at nice 19 the main
 * thread's start costs about half of that. Linux sets a nice value per thread, by its id (/proc/thread-self
 * names it). Best effort: where there is no such file or call, the worker runs at the process's priority.
 */
function lowerOwnPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 19);
  } catch {
    // not Linux, or /proc not mounted: nothing to lower
  }
}
