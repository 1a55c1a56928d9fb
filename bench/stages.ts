/**
 * Where an analyzer's time goes, stage by stage, in one thread: each stage adds one piece of work to the
 * one before it, over the same file, so the differences are the stages' costs. The machine's per-byte limit
 * is the first two rows (a plain read, and a JS loop that looks at every byte once).
 *
 *   node dist/bench/stages.js FILE [RUNS]   prints per stage the median CPU seconds (user + system) of this thread
 *
 * Used by bench/analyzers.ts (docs/performance.md, "where the time goes").
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { FunctionTable } from '../src/trace/functions.js';
import { TraceParser, type TraceVisitor } from '../src/trace/parser.js';
import { HotFunctions } from '../analyzers/hot-functions.js';
import { FirstCalls } from '../analyzers/first-calls.js';
import { Syscalls } from '../analyzers/syscalls.js';
import { median } from './measure.js';

const CHUNK = 1 << 22;

function readAll(path: string, onChunk: (buf: Buffer) => void): void {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      onChunk(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

/** A FunctionTable that skips the table lookup (every name is id 2): the parse without interning. */
class NoLookup extends FunctionTable {
  constructor() {
    super();
    this.idOf('x');
  }
  override internHashed(): number {
    return 2;
  }
}

const none: TraceVisitor = { event() {} };

function parse(path: string, functions: FunctionTable, visitor: (f: FunctionTable) => TraceVisitor): number {
  const parser = new TraceParser(functions, visitor(functions), () => {});
  readAll(path, (b) => parser.push(b));
  parser.end();
  return parser.counts.events;
}

export const STAGES: Record<string, (path: string) => number> = {
  'read (readSync, 4 MiB blocks)': (path) => {
    let n = 0;
    readAll(path, (b) => (n += b.length));
    return n;
  },
  'read + JS loop over every byte (count LF)': (path) => {
    let n = 0;
    readAll(path, (b) => {
      for (let i = 0; i < b.length; i++) if (b[i] === 10) n++;
    });
    return n;
  },
  'read + parse (scan, timestamp, name hash), no table lookup, no visitor': (path) => parse(path, new NoLookup(), () => none),
  '+ intern (table lookup)': (path) => parse(path, new FunctionTable(), () => none),
  '+ hot-functions visitor': (path) => parse(path, new FunctionTable(), () => new HotFunctions()),
  '+ first-calls visitor': (path) => parse(path, new FunctionTable(), () => new FirstCalls()),
  '+ syscalls visitor (calls dropped)': (path) => parse(path, new FunctionTable(), (f) => new Syscalls(f, () => {})),
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
