/**
 * Collapsed stacks, the input of flamegraph.pl, inferno and speedscope: one line per distinct stack,
 * outermost frame first, with its self time in integer microseconds:
 *   start_kernel;setup_arch;memblock_add 3
 * Lines come sorted frame by frame (a stack's own line before its callees', sibling frames by name), which
 * is a depth-first walk of the stack trie: no line is held, only the path being walked.
 * Rounding is cumulative (each line gets round(running total) - round(previous running total)), so the
 * lines add up to the trace's span to within half a microsecond; stacks that round to 0 are left out.
 */
import { ROOT, type StackTrie } from '../../analyzers/stack-trie.js';
import type { TextSink } from './sink.js';

/**
 * Children of every node in name order, as CSR arrays (first[n]..first[n+1] index into order): two
 * counting sorts (by name rank, then stably by parent), linear in the number of stacks.
 */
export function sortedChildren(trie: StackTrie, names: string[]): { first: Int32Array; order: Int32Array } {
  const size = trie.size;
  const ids = names.map((_, id) => id).sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : 0));
  const rank = new Int32Array(names.length);
  ids.forEach((id, r) => (rank[id] = r));
  const byRank = countingSort(size, names.length, (n) => rank[trie.fn[n]!]!, null);
  const first = new Int32Array(size + 1);
  const order = countingSort(size, size, (n) => trie.parent[n]!, byRank, first);
  return { first, order };
}

/** Nodes 1..size-1 (or those of `input`, keeping its order among equal keys) ordered by key. */
function countingSort(size: number, keys: number, key: (n: number) => number, input: Int32Array | null, starts?: Int32Array): Int32Array {
  const count = new Int32Array(keys + 1);
  for (let n = 1; n < size; n++) count[key(n) + 1]!++;
  for (let k = 0; k < keys; k++) count[k + 1]! += count[k]!;
  if (starts) starts.set(count.subarray(0, Math.min(count.length, starts.length)));
  const out = new Int32Array(size - 1);
  for (let i = 0; i < size - 1; i++) {
    const n = input ? input[i]! : i + 1;
    out[count[key(n)]!++] = n;
  }
  return out;
}

/**
 * Writes the lines as bytes: the path of the node being visited is kept in one buffer (each frame appends
 * ";name" to its caller's path), so a line costs a copy, not a string. A trace whose calls never repeat
 * has millions of distinct stacks and gigabytes of collapsed text; this keeps that at disk speed.
 */
export function writeCollapsed(trie: StackTrie, names: string[], out: TextSink): void {
  if (trie.size <= 1) return;
  const { first, order } = sortedChildren(trie, names);
  const encoded = names.map((n) => Buffer.from(n, 'latin1'));
  let path = Buffer.allocUnsafe(4096);
  const pathLen: number[] = [];
  const block = Buffer.allocUnsafe(1 << 20);
  let used = 0;
  let total = 0, written = 0;
  const todo: number[] = [];
  const depthOf: number[] = [];
  for (let i = first[ROOT + 1]! - 1; i >= first[ROOT]!; i--) { todo.push(order[i]!); depthOf.push(0); }
  while (todo.length > 0) {
    const n = todo.pop()!;
    const d = depthOf.pop()!;
    const name = encoded[trie.fn[n]!]!;
    let at = d === 0 ? 0 : pathLen[d - 1]!;
    if (at + name.length + 1 > path.length) {
      const bigger = Buffer.allocUnsafe(Math.max(path.length * 2, at + name.length + 1));
      path.copy(bigger, 0, 0, at);
      path = bigger;
    }
    if (d > 0) path[at++] = 0x3b; // ';'
    name.copy(path, at);
    pathLen[d] = at + name.length;
    const self = trie.self[n]!;
    if (self > 0) {
      // Cumulative rounding (see the top of this file).
      total += self;
      const value = Math.round(total) - written;
      if (value > 0) {
        written += value;
        const digits = String(value);
        if (used + pathLen[d]! + digits.length + 2 > block.length) {
          out.writeBytes(block.subarray(0, used));
          used = 0;
        }
        if (pathLen[d]! + digits.length + 2 > block.length) {
          out.writeBytes(Buffer.concat([path.subarray(0, pathLen[d]!), Buffer.from(` ${digits}\n`, 'latin1')]));
        } else {
          used += path.copy(block, used, 0, pathLen[d]!);
          block[used++] = 0x20;
          used += block.write(digits, used, 'latin1');
          block[used++] = 0x0a;
        }
      }
    }
    for (let i = first[n + 1]! - 1; i >= first[n]!; i--) { todo.push(order[i]!); depthOf.push(d + 1); }
  }
  if (used > 0) out.writeBytes(block.subarray(0, used));
}
