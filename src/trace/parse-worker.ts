/**
 * A worker thread that parses byte ranges of a trace file for src/trace/parallel.ts.
 * Each request names a range [start, end); the worker parses the lines that START in it (reading past
 * `end` to finish the last one), so ranges split anywhere and every line is parsed exactly once.
 * Function names are interned per worker; new names travel with the batch that first used them.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { EventRecorder } from './events.js';
import { FunctionTable } from './functions.js';
import { MAX_LINE_BYTES } from './malformed.js';
import { TraceParser } from './parser.js';

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

const LF = 10;
const { path, reportLimit } = workerData as { path: string; reportLimit: number };
const fd = openSync(path, 'r');
const functions = new FunctionTable();
const recorder = new EventRecorder(0);
let namesSent = 2; // ids 0 and 1 are the same fixed buckets everywhere
let buf = Buffer.allocUnsafe(1 << 20); // grows to the range size on first use

function read(position: number, length: number): Buffer {
  if (buf.length < length) buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

function parseRange({ index, start, end, recycle }: ParseRequest): ParseResponse {
  recorder.adopt(recycle ?? new EventRecorder(1 << 16).take());
  // Read from one byte before the range, to know whether a line starts exactly at `start`.
  const from = Math.max(0, start - 1);
  // Reading on at most the line limit (and a CRLF) past `end` is enough to finish the last line that starts
  // in the range, or to know it is too long: the parser then reports it from the bytes it has.
  let data = read(from, end - from + MAX_LINE_BYTES + 2);
  let first = 0;
  if (start > 0) {
    const nl = data.indexOf(LF);
    // No line starts inside the range: the line that began before it runs past its end.
    first = nl < 0 || from + nl + 1 >= end ? -1 : nl + 1;
  }
  // The last line starting before `end` ends at the first newline at or after end - 1.
  const nl = data.indexOf(LF, end - from - 1);
  if (nl >= 0) data = data.subarray(0, nl + 1);
  const malformedLines: [number, string, number][] = [];
  const parser = new TraceParser(functions, recorder, (line, text, code) => {
    if (malformedLines.length < reportLimit) malformedLines.push([line, text, code]);
  });
  if (first >= 0 && first < data.length) {
    parser.push(data.subarray(first));
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
