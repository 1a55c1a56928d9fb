/**
 * Views of reconstructed call stacks (call-stacks.ts): inclusive time per function, and the merged tree
 * of callers or callees around one function. A function that recurses is counted once, at its outermost
 * frame, so no time is counted twice.
 */
import type { CallStacks } from './call-stacks.js';
import { ROOT, type StackTrie } from './stack-trie.js';
import { roundUs } from '../src/output/write.js';
import type { TraceVisitor } from '../src/trace/parser.js';

export interface InclusiveRow {
  function: string;
  inclusive_us: number;
  calls: number;
}

/** Inclusive time and calls per function id, after `stacks.finish()`. */
export function inclusiveByName(stacks: CallStacks): Map<string, InclusiveRow> {
  const out = new Map<string, InclusiveRow>();
  const names = stacks.names;
  for (let id = 0; id < names.length && id < stacks.inclusive.length; id++) {
    if (stacks.callCount[id] === 0) continue;
    out.set(names[id]!, { function: names[id]!, inclusive_us: roundUs(stacks.inclusive[id]!), calls: stacks.callCount[id]! });
  }
  return out;
}

export interface TreeRow {
  /** 0 for the function asked about, 1 for its direct callers/callees, ... */
  depth: number;
  function: string;
  /** Frames entered along this path. */
  calls: number;
  /** Time with this path on the stack. */
  time_us: number;
  /** Share of the function's own inclusive time. */
  percent: number;
}

interface Merged { name: string; calls: number; time: number; kids: Map<string, Merged> }

const merged = (name: string): Merged => ({ name, calls: 0, time: 0, kids: new Map() });

/** The outermost frames of fn: nodes of fn with no fn frame above them. */
function outermost(trie: StackTrie, fn: number): number[] {
  const out: number[] = [];
  for (let n = 1; n < trie.size; n++) {
    if (trie.fn[n] !== fn) continue;
    let p = trie.parent[n]!;
    while (p > ROOT && trie.fn[p] !== fn) p = trie.parent[p]!;
    if (p === ROOT) out.push(n);
  }
  return out;
}

/** What fn calls, merged over every place it runs, `maxDepth` levels down. */
export function calleeTree(stacks: CallStacks, fn: number, maxDepth: number): TreeRow[] {
  const trie = stacks.trie;
  const incl = trie.inclusive();
  const kids = trie.children();
  const rootRow = merged(stacks.names[fn]!);
  const walk = (node: number, into: Merged, depth: number): void => {
    into.calls += trie.calls[node]!;
    into.time += incl[node]!;
    if (depth >= maxDepth) return;
    for (const k of kids[node]!) {
      const name = stacks.names[trie.fn[k]!]!;
      let m = into.kids.get(name);
      if (!m) into.kids.set(name, (m = merged(name)));
      walk(k, m, depth + 1);
    }
  };
  for (const n of outermost(trie, fn)) walk(n, rootRow, 0);
  return flatten(rootRow);
}

/** Who calls fn, merged over every place it runs, `maxDepth` levels up. */
export function callerTree(stacks: CallStacks, fn: number, maxDepth: number): TreeRow[] {
  const trie = stacks.trie;
  const incl = trie.inclusive();
  const rootRow = merged(stacks.names[fn]!);
  for (const n of outermost(trie, fn)) {
    // Calls of fn (not of each caller) and fn's time are what every level of this path shows.
    const calls = trie.calls[n]!, time = incl[n]!;
    rootRow.calls += calls;
    rootRow.time += time;
    let into = rootRow;
    for (let p = trie.parent[n]!, depth = 1; p > ROOT && depth <= maxDepth; p = trie.parent[p]!, depth++) {
      const name = stacks.names[trie.fn[p]!]!;
      let m = into.kids.get(name);
      if (!m) into.kids.set(name, (m = merged(name)));
      m.calls += calls;
      m.time += time;
      into = m;
    }
  }
  return flatten(rootRow);
}

function flatten(rootRow: Merged): TreeRow[] {
  const total = rootRow.time;
  const rows: TreeRow[] = [];
  const visit = (m: Merged, depth: number): void => {
    rows.push({ depth, function: m.name, calls: m.calls, time_us: roundUs(m.time), percent: total > 0 ? Math.round((10000 * m.time) / total) / 100 : 0 });
    const kids = [...m.kids.values()].sort((a, b) => b.time - a.time || (a.name < b.name ? -1 : 1));
    for (const k of kids) visit(k, depth + 1);
  };
  if (rootRow.calls > 0) visit(rootRow, 0);
  return rows;
}

/** One visitor feeding two: how an analyzer runs beside the stack reconstruction in one pass. */
export function tee(a: TraceVisitor, b: TraceVisitor): TraceVisitor {
  return {
    event(t, fn, offset, addr) {
      a.event(t, fn, offset, addr);
      b.event(t, fn, offset, addr);
    },
  };
}

/** hot-functions rows with an inclusive_us column from the rebuilt stacks (0 for a function never entered). */
export function withInclusive<R extends { function: string }>(rows: R[], stacks: CallStacks): Array<R & { inclusive_us: number }> {
  const incl = inclusiveByName(stacks);
  return rows.map((r) => ({ ...r, inclusive_us: incl.get(r.function)?.inclusive_us ?? 0 }));
}
