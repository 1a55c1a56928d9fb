/**
 * Where an analyzer's time goes, stage by stage, in one thread: each stage adds one piece of work to the
 * one before it, over the same file, so the differences are the stages' costs. The machine's per-byte limit
 * is the first two rows (a plain read, and a JS loop that looks at every byte once); then the parse by the
 * TypeScript parser alone and by the reader's WebAssembly fast path (src/trace/wasm/line-scanner.ts).
 *
 *   node dist/bench/stages.js FILE [RUNS]   prints per stage the median CPU seconds (user + system) of this thread
 *
 * Used by bench/analyzers.ts (docs/performance.md, "where the time goes").
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { FunctionTable } from '../src/trace/functions.js';
import { TraceParser, type TraceVisitor } from '../src/trace/parser.js';
import { READ_CHUNK } from '../src/trace/range.js';
import { HotFunctions } from '../analyzers/hot-functions.js';
import { FirstCalls } from '../analyzers/first-calls.js';
import { Syscalls } from '../analyzers/syscalls.js';
import { median } from './measure.js';

function readAll(path: string, buf: Buffer, onChunk: (buf: Buffer) => void): void {
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      onChunk(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

const none: TraceVisitor = { event() {} };

/**
 * Parses the file as the reader does: `fastPath` true, read straight into the fast path's memory
 * (TraceParser.readBuffer); false, every line by the TypeScript parser.
 */
function parse(path: string, visitor: (f: FunctionTable) => TraceVisitor, fastPath = true): number {
  const functions = new FunctionTable();
  const parser = new TraceParser(functions, visitor(functions), () => {}, undefined, fastPath);
  const buf = fastPath ? TraceParser.readBuffer(functions, READ_CHUNK) : Buffer.allocUnsafe(READ_CHUNK);
  readAll(path, buf, (b) => parser.push(b));
  parser.end();
  return parser.counts.events;
}

export const STAGES: Record<string, (path: string) => number> = {
  'read (readSync, 256 KiB chunks)': (path) => {
    let n = 0;
    readAll(path, Buffer.allocUnsafe(READ_CHUNK), (b) => (n += b.length));
    return n;
  },
  'read + JS loop over every byte (count LF)': (path) => {
    let n = 0;
    readAll(path, Buffer.allocUnsafe(READ_CHUNK), (b) => {
      for (let i = 0; i < b.length; i++) if (b[i] === 10) n++;
    });
    return n;
  },
  'read + the TypeScript parser alone (scan, timestamp, name lookup), no visitor': (path) => parse(path, () => none, false),
  'read + the WebAssembly fast path (scan, timestamp, name lookup), no visitor': (path) => parse(path, () => none),
  '+ hot-functions visitor': (path) => parse(path, () => new HotFunctions()),
  '+ first-calls visitor': (path) => parse(path, () => new FirstCalls()),
  '+ syscalls visitor (calls dropped)': (path) => parse(path, (f) => new Syscalls(f, () => {})),
};

export function measureStages(path: string, runs: number): Record<string, number> {
  const times: Record<string, number[]> = {};
  for (let r = 0; r < runs; r++) {
    for (const [name, stage] of Object.entries(STAGES)) {
      // CPU time of this thread, not wall time: on a loaded machine it is what the stage itself costs.
      const c0 = process.cpuUsage();
      stage(path);
      const c = process.cpuUsage(c0);
      (times[name] ??= []).push((c.user + c.system) / 1e6);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/dist\//, '/dist/'))) {
  for (const [stage, s] of Object.entries(measureStages(process.argv[2]!, Number(process.argv[3] ?? 3)))) process.stdout.write(`${s.toFixed(3)}\t${stage}\n`);
}
