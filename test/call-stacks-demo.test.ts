/**
 * Call stacks of a real single-step trace: the demo guest (samples/guest) captured under KVM. Its main
 * function (start_kernel in the guest; guest_main in older builds) calls each work function, work_nested
 * calls work_small WORK_NESTED_SMALL_CALLS times (samples/guest/work.h), and inclusive times add up.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { CallStacks } from '../analyzers/call-stacks.js';
import { calleeTree, inclusiveByName } from '../analyzers/inclusive.js';
import { readTrace } from '../src/trace/reader.js';
import { demoConstants, kvmMissing } from './capture-helpers.js';
import { runCli, testOutput } from './helpers.js';
import { describeNeeds } from './preconditions.js';

const why = kvmMissing();

describeNeeds(why, 'call stacks of the demo guest (KVM single-step)', () => {
  let stacks: CallStacks;
  const dir = join(testOutput('call-stacks-demo'), 'capture');
  const id = (name: string): number => stacks.names.indexOf(name);

  beforeAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    const r = runCli(['capture', '--guest', 'demo', '--mode', 'step', '--out', dir, '--timeout', '120'], { timeoutMs: 200_000 });
    if (r.status !== 0) throw new Error(`capture failed (${r.status}): ${r.stderr}`);
    await readTrace(join(dir, 'trace.log'), (functions) => (stacks = new CallStacks(functions)), { warn: () => {} });
    stacks.finish();
  });

  it('shows the main function calling each work function, and work_nested calling work_small', () => {
    const k = demoConstants();
    const main = ['guest_main', 'start_kernel'].find((n) => id(n) >= 0)!;
    expect(main).toBeDefined();
    const tree = calleeTree(stacks, id(main), 2);
    const direct = tree.filter((r) => r.depth === 1).map((r) => r.function);
    expect(direct).toEqual(expect.arrayContaining(['work_small', 'work_medium', 'work_nested']));
    const nested = tree.findIndex((r) => r.depth === 1 && r.function === 'work_nested');
    expect(tree[nested + 1]).toMatchObject({ depth: 2, function: 'work_small', calls: k.WORK_NESTED_SMALL_CALLS });
    expect(tree.find((r) => r.depth === 1 && r.function === 'work_small')!.calls).toBe(1);
    expect(stacks.callCount[id('work_small')]).toBe(1 + k.WORK_NESTED_SMALL_CALLS!);
    expect(stacks.callCount[id('work_medium')]).toBe(1);
  });

  it('gives the main function an inclusive time covering its callees', () => {
    const incl = inclusiveByName(stacks);
    const main = ['guest_main', 'start_kernel'].find((n) => incl.has(n))!;
    const of = (n: string): number => incl.get(n)!.inclusive_us;
    expect(of(main)).toBeGreaterThanOrEqual(of('work_medium') + of('work_nested') + of('work_small'));
    // work_small's inclusive time includes its two calls under work_nested.
    expect(of('work_nested')).toBeGreaterThan(0);
    const underNested = calleeTree(stacks, id('work_nested'), 1).find((r) => r.function === 'work_small')!.time_us;
    expect(of('work_nested')).toBeGreaterThanOrEqual(underNested);
    expect(of('work_small')).toBeGreaterThanOrEqual(underNested);
    // A trie node's inclusive time is its self time plus its children's, everywhere.
    const trie = stacks.trie;
    const inclusive = trie.inclusive();
    const sumKids = new Float64Array(trie.size);
    for (let n = 1; n < trie.size; n++) sumKids[trie.parent[n]!]! += inclusive[n]!;
    for (let n = 1; n < trie.size; n++) expect(inclusive[n]!).toBeCloseTo(trie.self[n]! + sumKids[n]!, 6);
  });
});
