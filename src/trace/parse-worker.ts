/**
 * A worker thread that parses byte ranges of a trace file for src/trace/parallel.ts.
 * Each request names a range [start, end); the worker parses the lines that START in it (range.ts), so
 * ranges split anywhere and every line is parsed exactly once.
 * Function names are interned per worker; new names travel with the batch that first used them.
 */
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { EventRecorder } from './events.js';
import { FunctionTable } from './functions.js';
import { TraceParser } from './parser.js';
import { RangeReader } from './range.js';

export interface ParseRequest {
  index: number;
  start: number;
  end: number;
  /** The arrays of an earlier batch, handed back for reuse. */
  recycle?: import('./events.js').EventBatch;
}
export interface ParseResponse {
  index: number;
  batch: import('./events.js').EventBatch;
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
  bytes: number;
}

const { path, reportLimit } = workerData as { path: string; reportLimit: number };
const fd = openSync(path, 'r');
const ranges = new RangeReader(fd);
const functions = new FunctionTable();
const recorder = new EventRecorder(0);
let namesSent = 2; // ids 0 and 1 are the same fixed buckets everywhere

function parseRange({ index, start, end, recycle }: ParseRequest): ParseResponse {
  recorder.adopt(recycle ?? new EventRecorder(1 << 16).take());
  const data = ranges.read(start, end);
  const malformedLines: [number, string, number][] = [];
  const parser = new TraceParser(functions, recorder, (line, text, code) => {
    if (malformedLines.length < reportLimit) malformedLines.push([line, text, code]);
  });
  if (data.length > 0) {
    parser.push(data);
    parser.end();
  }
  const names: [number, string][] = [];
  for (; namesSent < functions.size; namesSent++) names.push([namesSent, functions.names[namesSent]!]);
  const c = parser.counts;
  return {
    index, batch: recorder.take(), names, lines: c.lines, comments: c.comments, blank: c.blank,
    malformed: c.malformed, malformedByCode: c.malformedByCode, malformedLines, bytes: end - start, firstEventLine: c.firstEventLine,
    firstBackwardsLine: c.firstBackwardsLine,
  };
}

parentPort!.on('message', (msg: ParseRequest | 'close') => {
  if (msg === 'close') {
    closeSync(fd);
    parentPort!.close();
    return;
  }
  const res = parseRange(msg);
  parentPort!.postMessage(res, [res.batch.t.buffer, res.batch.fn.buffer, res.batch.offset.buffer, res.batch.addr.buffer] as ArrayBuffer[]);
});
