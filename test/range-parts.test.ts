/**
 * The analyzers whose range halves run in parse workers (src/trace/range-part.ts) must give exactly what
 * they give over the events in order. Here the split is deterministic, not left to worker timing: the events
 * of a trace are cut into ranges of every small size, and the ranges alternate (or not) between the main
 * analyzer's own event() and a range half with a function table of its own, whose part is merged through a
 * name mapping as the parallel reader does. test/parallel-reader.test.ts checks the real reader end to end.
 */
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FirstCalls, FirstCallsRange } from '../analyzers/first-calls.js';
import { HotFunctions, HotFunctionsRange } from '../analyzers/hot-functions.js';
import { Syscalls, SyscallsRange, type SyscallRow } from '../analyzers/syscalls.js';
import { generateTrace } from '../bench/generate.js';
import { FunctionTable } from '../src/trace/functions.js';
import type { MergingVisitor, RangeVisitor } from '../src/trace/range-part.js';
import { readTrace } from '../src/trace/reader.js';
import { sample } from './helpers.js';

type Event = [t: number, name: string, offset: number, addr: number];

async function eventsOf(file: string): Promise<Event[]> {
  const events: Event[] = [];
  await readTrace(file, (functions) => ({ event: (t, fn, off, addr) => events.push([t, functions.names[fn]!, off, addr]) }), { warn: () => {}, parallelMinBytes: Infinity });
  return events;
}

/** Ids as a table sees them: the two bare-address buckets are fixed, names are interned on first sight. */
const idIn = (table: FunctionTable, name: string): number => (name === '[user]' ? 0 : name === '[unresolved]' ? 1 : table.idOf(name));

/**
 * Feeds `events` in ranges of `size` events (or at the cut points `size` lists); `byWorker(k)` says whether
 * range k goes through a range half (a fresh worker table per run, kept across that worker's ranges, as in a
 * real worker) or straight to `main`.
 */
function split<M extends MergingVisitor>(events: Event[], size: number | number[], byWorker: (k: number) => boolean, main: M, mainTable: FunctionTable, half: (t: FunctionTable) => RangeVisitor): M {
  const workerTable = new FunctionTable();
  const worker = half(workerTable);
  const names = (): string[] => workerTable.names;
  const cuts = typeof size === 'number' ? Array.from({ length: Math.ceil(events.length / size) }, (_, k) => k * size) : [0, ...size];
  for (let k = 0; k < cuts.length; k++) {
    const range = events.slice(cuts[k], cuts[k + 1] ?? events.length);
    if (!byWorker(k)) {
      for (const [t, name, off, addr] of range) main.event(t, idIn(mainTable, name), off, addr);
      continue;
    }
    for (const [t, name, off, addr] of range) worker.event(t, idIn(workerTable, name), off, addr);
    // Through postMessage's own copy, as a part really travels.
    const { part } = worker.takePart();
    main.mergePart(structuredClone(part), (local) => idIn(mainTable, names()[local]!));
  }
  return main;
}

const PATTERNS: [string, (k: number) => boolean][] = [
  ['every range in a worker', () => true],
  ['alternating', (k) => k % 2 === 1],
  ['two of three in a worker', (k) => k % 3 !== 0],
];

function hot(events: Event[], size?: number | number[], byWorker?: (k: number) => boolean) {
  const table = new FunctionTable();
  const a = size ? split(events, size, byWorker!, new HotFunctions(), table, () => new HotFunctionsRange()) : feed(events, new HotFunctions(), table);
  return a.rows(table);
}

function first(events: Event[], size?: number, byWorker?: (k: number) => boolean) {
  const table = new FunctionTable();
  const a = size ? split(events, size, byWorker!, new FirstCalls(), table, () => new FirstCallsRange()) : feed(events, new FirstCalls(), table);
  return a.rows(table);
}

function syscalls(events: Event[], size?: number, byWorker?: (k: number) => boolean) {
  const table = new FunctionTable();
  const calls: SyscallRow[] = [];
  const main = new Syscalls(table, (c) => calls.push({ ...c }));
  const a = size ? split(events, size, byWorker!, main, table, (t) => new SyscallsRange(t)) : feed(events, main, table);
  a.finish();
  return { calls, summary: a.summary() };
}

function feed<M extends MergingVisitor>(events: Event[], main: M, table: FunctionTable): M {
  for (const [t, name, off, addr] of events) main.event(t, idIn(table, name), off, addr);
  return main;
}

describe('analyzers merged from range parts', () => {
  const files = [...readdirSync(sample()).filter((f) => f.endsWith('.log')).map((f) => sample(f)), sample('stacks', 'task-switch.log'), sample('stacks', 'user-syscall.log')];

  it('give the one-pass result on every sample, in ranges of 1 to 7 events', async () => {
    let compared = 0;
    for (const file of files) {
      const events = await eventsOf(file);
      const want = { hot: hot(events), first: first(events), sys: syscalls(events) };
      for (const size of [1, 2, 3, 5, 7]) {
        for (const [how, byWorker] of PATTERNS) {
          const at = `${file} in ${size}-event ranges, ${how}`;
          expect(hot(events, size, byWorker), at).toEqual(want.hot);
          expect(first(events, size, byWorker), at).toEqual(want.first);
          expect(syscalls(events, size, byWorker), at).toEqual(want.sys);
          compared++;
        }
      }
    }
    expect(compared).toBe(files.length * 5 * PATTERNS.length);
  });

  it('sum self times exactly, so that subtotals give the figures of one pass to the last decimal', () => {
    // Deltas taken near 0 us and near 10^6 us in one function, its total next to a rounding boundary: added
    // delta by delta, or as two ranges' subtotals, plain floating-point sums differ in the third decimal.
    const times = [0.1, 1.3892, 2.5441, 5.5102, 7.1792, 1000007.4012, 1000009.9675, 1000011.9745, 1000012.7707];
    const events: Event[] = [...times.map((t): Event => [t, 'f', 0, 0]), [1000013.9585, 'g', 0, 0]];
    const want = hot(events);
    expect(want[0]).toMatchObject({ function: 'f', time_us: 1000013.859 });
    // Every way to cut it into two or three ranges.
    const cutSets: number[][] = [];
    for (let i = 1; i < events.length; i++) {
      cutSets.push([i]);
      for (let j = i + 1; j < events.length; j++) cutSets.push([i, j]);
    }
    for (const cuts of cutSets) {
      for (const [how, byWorker] of PATTERNS) expect(hot(events, cuts, byWorker), `cut at ${cuts.join(', ')}, ${how}`).toEqual(want);
    }
  });

  it('give the one-pass result on a generated trace with a system call every 50 events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boot-trace-parts-'));
    try {
      const file = join(dir, 'trace.log');
      const fd = openSync(file, 'w');
      generateTrace(20_000, fd);
      closeSync(fd);
      const events = await eventsOf(file);
      const want = { hot: hot(events), first: first(events), sys: syscalls(events) };
      expect(want.sys.calls.length).toBeGreaterThan(100);
      for (const size of [97, 1000, 4096]) {
        for (const [how, byWorker] of PATTERNS) {
          const at = `${size}-event ranges, ${how}`;
          expect(hot(events, size, byWorker), at).toEqual(want.hot);
          expect(first(events, size, byWorker), at).toEqual(want.first);
          expect(syscalls(events, size, byWorker), at).toEqual(want.sys);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
