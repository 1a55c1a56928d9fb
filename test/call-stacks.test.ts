/**
 * Call-stack reconstruction on hand-written traces, one per heuristic and failure case
 * (samples/stacks/*.log; docs/call-stacks.md explains each). The expected stacks were worked out by hand
 * from the comments in the samples.
 */
import { describe, expect, it } from 'vitest';
import { CallStacks, type CallStackOptions } from '../analyzers/call-stacks.js';
import { callerTree, calleeTree, inclusiveByName } from '../analyzers/inclusive.js';
import { HotFunctions } from '../analyzers/hot-functions.js';
import { FunctionTable } from '../src/trace/functions.js';
import { TraceParser } from '../src/trace/parser.js';
import { readTrace } from '../src/trace/reader.js';
import { cliJson, runCli, sample } from './helpers.js';

/** The stack after each event line, as "a;b;c", and the finished reconstruction. */
async function stacksOf(file: string, options: CallStackOptions = {}): Promise<{ after: string[]; stacks: CallStacks }> {
  let stacks: CallStacks | undefined;
  const after: string[] = [];
  await readTrace(file, (functions) => {
    const s = (stacks = new CallStacks(functions, options));
    return {
      event(t, fn, offset) {
        s.event(t, fn, offset);
        after.push(s.stack().map((id) => functions.names[id]).join(';'));
      },
    };
  }, { warn: () => {} });
  stacks!.finish();
  return { after, stacks: stacks! };
}

/** Self time per stack ("a;b;c" -> us), from the trie. */
function selfTimes(stacks: CallStacks): Record<string, number> {
  const out: Record<string, number> = {};
  for (let n = 1; n < stacks.trie.size; n++) {
    const t = stacks.trie.self[n]!;
    if (t > 0) out[stacks.trie.path(n).map((id) => stacks.names[id]).join(';')] = Math.round(t * 1000) / 1000;
  }
  return out;
}

describe('call-stack reconstruction', () => {
  it('pushes entries at offset 0 and pops to a function already on the stack', async () => {
    const { after, stacks } = await stacksOf(sample('stacks', 'calls-and-returns.log'));
    expect(after).toEqual([
      'start_kernel', 'start_kernel',
      'start_kernel;setup_arch', 'start_kernel;setup_arch',
      'start_kernel;setup_arch;memblock_add', 'start_kernel;setup_arch;memblock_add',
      'start_kernel;setup_arch',
      'start_kernel',
      'start_kernel;mm_init', 'start_kernel;mm_init',
      'start_kernel', 'start_kernel',
    ]);
    expect(selfTimes(stacks)).toEqual({
      start_kernel: 2 + 1 + 4, 'start_kernel;setup_arch': 2 + 3, 'start_kernel;setup_arch;memblock_add': 3, 'start_kernel;mm_init': 5,
    });
    const incl = inclusiveByName(stacks);
    expect(incl.get('start_kernel')).toEqual({ function: 'start_kernel', inclusive_us: 20, calls: 1 });
    expect(incl.get('setup_arch')).toEqual({ function: 'setup_arch', inclusive_us: 8, calls: 1 });
    expect(incl.get('memblock_add')!.inclusive_us).toBe(3);
    expect(incl.get('mm_init')!.inclusive_us).toBe(5);
    expect(stacks.counts).toMatchObject({ calls: 3, returns: 3, replaced: 0 });
  });

  it('nests recursion and counts a recursive function\'s inclusive time once', async () => {
    const { after, stacks } = await stacksOf(sample('stacks', 'recursion.log'));
    const two = 'kernel_init;walk_tree;visit_node;walk_tree';
    expect(after).toEqual([
      'kernel_init', 'kernel_init;walk_tree', 'kernel_init;walk_tree',
      'kernel_init;walk_tree;visit_node', 'kernel_init;walk_tree;visit_node',
      two, two, `${two};visit_node`, `${two};visit_node`,
      two, 'kernel_init;walk_tree;visit_node', 'kernel_init;walk_tree', // each return pops to the innermost frame
      'kernel_init', 'kernel_init',
    ]);
    // 101 -> 113 and 103 -> 112: not the sums over their two frames each.
    const incl = inclusiveByName(stacks);
    expect(incl.get('walk_tree')).toEqual({ function: 'walk_tree', inclusive_us: 12, calls: 2 });
    expect(incl.get('visit_node')).toEqual({ function: 'visit_node', inclusive_us: 9, calls: 2 });
    expect(incl.get('kernel_init')!.inclusive_us).toBe(15);
  });

  it('cannot see the return of direct recursion: the inner frame lasts until another function (failure case)', async () => {
    const { after, stacks } = await stacksOf(sample('stacks', 'direct-recursion.log'));
    expect(after).toEqual([
      'kernel_init', 'kernel_init;walk_tree', 'kernel_init;walk_tree',
      'kernel_init;walk_tree;walk_tree', 'kernel_init;walk_tree;walk_tree', 'kernel_init;walk_tree;walk_tree',
      'kernel_init;walk_tree;walk_tree', 'kernel_init', 'kernel_init',
    ]);
    expect(inclusiveByName(stacks).get('walk_tree')).toEqual({ function: 'walk_tree', inclusive_us: 6, calls: 2 });
  });

  it('nests an interrupt that arrives mid-function, even when its first line is past the entry', async () => {
    const { after, stacks } = await stacksOf(sample('stacks', 'interrupt-mid-function.log'));
    const irq = 'do_work;memcpy;asm_sysvec_apic_timer_interrupt';
    expect(after).toEqual([
      'do_work', 'do_work', 'do_work;memcpy', 'do_work;memcpy',
      irq, `${irq};sysvec_apic_timer_interrupt`, `${irq};sysvec_apic_timer_interrupt;tick_handle_periodic`,
      `${irq};sysvec_apic_timer_interrupt;tick_handle_periodic`, `${irq};sysvec_apic_timer_interrupt`, irq,
      'do_work;memcpy', 'do_work',
    ]);
    expect(stacks.counts.interruptsMidEntry).toBe(1);
    expect(inclusiveByName(stacks).get('asm_sysvec_apic_timer_interrupt')!.inclusive_us).toBe(7);
  });

  it('gives user space one frame and nests system calls and faults under it', async () => {
    const { after, stacks } = await stacksOf(sample('stacks', 'user-syscall.log'));
    expect(after).toEqual([
      '[user]', '[user]',
      '[user];entry_SYSCALL_64', '[user];entry_SYSCALL_64;do_syscall_64', '[user];entry_SYSCALL_64;do_syscall_64;__x64_sys_write',
      '[user];entry_SYSCALL_64;do_syscall_64;__x64_sys_write', '[user];entry_SYSCALL_64;do_syscall_64', '[user];entry_SYSCALL_64',
      '[user]', '[user]',
      '[user];asm_exc_page_fault', '[user];asm_exc_page_fault;exc_page_fault', '[user];asm_exc_page_fault;exc_page_fault',
      '[user];asm_exc_page_fault', '[user]', '[user]',
    ]);
    expect(inclusiveByName(stacks).get('entry_SYSCALL_64')!.inclusive_us).toBe(7);
    expect(inclusiveByName(stacks).get('[user]')!.inclusive_us).toBe(18);
  });

  it('pushes [user] on the kernel stack that returned to user space when no [user] frame is below', async () => {
    const { after, stacks } = await stacksOf(sample('2016-enter-userspace.log'));
    // retint_user + 8 is a jump into a function not on the stack: it replaces prepare_exit_to_usermode.
    expect(after).toEqual(['prepare_exit_to_usermode', 'retint_user', 'retint_user;[user]', 'retint_user;[user]', 'retint_user;[user]']);
    expect(stacks.counts.userEntries).toBe(1);
  });

  it('pops [user] when user code called by the kernel returns into its caller', async () => {
    const { after } = await stacksOf(sample('stacks', 'kernel-calls-user.log'));
    expect(after).toEqual([
      'start_kernel', 'start_kernel;run_user', 'start_kernel;run_user', 'start_kernel;run_user;[user]', 'start_kernel;run_user;[user]',
      'start_kernel;run_user;[user];entry_SYSCALL_64', 'start_kernel;run_user;[user];entry_SYSCALL_64;do_syscall_64',
      'start_kernel;run_user;[user];entry_SYSCALL_64', 'start_kernel;run_user;[user]', 'start_kernel;run_user', 'start_kernel',
    ]);
  });

  it('lets a jump into the middle of a function not on the stack replace the top frame (tail call)', async () => {
    const { after, stacks } = await stacksOf(sample('stacks', 'tail-call.log'));
    expect(after).toEqual([
      'release_pages', 'release_pages;kfree', 'release_pages;kfree',
      'release_pages;__slab_free', 'release_pages;__slab_free', 'release_pages',
    ]);
    expect(stacks.counts.replaced).toBe(1);
  });

  it('puts a caller whose entry was never traced where its callee was (failure case, documented)', async () => {
    const { after } = await stacksOf(sample('stacks', 'unseen-caller.log'));
    expect(after).toEqual([
      'sys_init_module', 'sys_init_module', 'sys_init_module;capable', 'sys_init_module;capable;security_capable',
      'sys_init_module;capable;security_capable;cap_capable', 'sys_init_module;capable;security_capable',
      'sys_init_module;capable;ns_capable', 'sys_init_module;capable', 'sys_init_module',
    ]);
  });

  it('still gives sensible stacks for a trace without any offsets', async () => {
    const { after, stacks } = await stacksOf(sample('stacks', 'no-offsets.log'));
    expect(after).toEqual([
      'start_kernel', 'start_kernel', 'start_kernel;setup_arch', 'start_kernel;setup_arch;memblock_add',
      'start_kernel;setup_arch', 'start_kernel', 'start_kernel;mm_init', 'start_kernel', 'start_kernel',
    ]);
    expect(inclusiveByName(stacks).get('start_kernel')!.inclusive_us).toBe(20);
  });

  it('forced offset modes: "yes" makes the same no-offset trace a chain of calls, bounded by maxDepth', async () => {
    const { after, stacks } = await stacksOf(sample('stacks', 'no-offsets.log'), { offsets: 'yes', maxDepth: 4 });
    // Every change of function is an entry at offset 0, so a call; the 5th frame is refused.
    expect(after[4]).toBe('start_kernel;setup_arch;memblock_add;setup_arch');
    expect(after[5]).toBe('start_kernel;setup_arch;memblock_add;start_kernel');
    expect(stacks.counts.depthLimited).toBeGreaterThan(0);
    expect(stacks.counts.maxDepthSeen).toBe(4);
  });

  it('bounds runaway recursion by maxDepth, replacing the top frame', () => {
    const functions = new FunctionTable();
    const stacks = new CallStacks(functions, { maxDepth: 8 });
    const parser = new TraceParser(functions, stacks, () => { throw new Error('malformed'); });
    let text = '';
    for (let i = 0; i < 100; i++) text += `${2 * i}.0 f in section .text\n${2 * i + 1}.0 f + 4 in section .text\n`;
    parser.push(Buffer.from(text));
    parser.end();
    expect(stacks.stack().length).toBe(8);
    expect(stacks.counts.depthLimited).toBe(100 - 8);
    stacks.finish();
    expect(stacks.inclusive[functions.idOf('f')]).toBe(199);
  });

  it('gives each stack\'s top exactly the self time hot-functions gives its function', async () => {
    for (const file of [sample('2016-trace-excerpts.log'), sample('2016-init-module.log'), sample('syscalls.log'), sample('time-backwards.log')]) {
      const { stacks } = await stacksOf(file);
      const hot = new HotFunctions();
      const r = await readTrace(file, () => hot, { warn: () => {} });
      const byLeaf: Record<string, number> = {};
      for (const [stack, t] of Object.entries(selfTimes(stacks))) {
        const leaf = stack.split(';').pop()!;
        byLeaf[leaf] = Math.round(((byLeaf[leaf] ?? 0) + t) * 1000) / 1000;
      }
      const expected = Object.fromEntries(hot.rows(r.functions).filter((row) => row.time_us > 0).map((row) => [row.function, row.time_us]));
      expect(byLeaf, file).toEqual(expected);
    }
  });

  it('callers and callees merge the tree around one function', async () => {
    const { stacks } = await stacksOf(sample('stacks', 'calls-and-returns.log'));
    const names = stacks.names;
    const id = (n: string): number => names.indexOf(n);
    expect(calleeTree(stacks, id('start_kernel'), 5)).toEqual([
      { depth: 0, function: 'start_kernel', calls: 1, time_us: 20, percent: 100 },
      { depth: 1, function: 'setup_arch', calls: 1, time_us: 8, percent: 40 },
      { depth: 2, function: 'memblock_add', calls: 1, time_us: 3, percent: 15 },
      { depth: 1, function: 'mm_init', calls: 1, time_us: 5, percent: 25 },
    ]);
    expect(callerTree(stacks, id('memblock_add'), 5)).toEqual([
      { depth: 0, function: 'memblock_add', calls: 1, time_us: 3, percent: 100 },
      { depth: 1, function: 'setup_arch', calls: 1, time_us: 3, percent: 100 },
      { depth: 2, function: 'start_kernel', calls: 1, time_us: 3, percent: 100 },
    ]);
  });
});

describe('callers / callees / hot-functions --inclusive (CLI)', () => {
  it('hot-functions --inclusive adds inclusive time and keeps the self-time columns', () => {
    const plain = cliJson<Array<Record<string, unknown>>>(['hot-functions', sample('stacks', 'calls-and-returns.log'), '--top', '0']);
    const rows = cliJson<Array<Record<string, unknown>>>(['hot-functions', sample('stacks', 'calls-and-returns.log'), '--top', '0', '--inclusive']);
    expect(rows.map(({ inclusive_us: _, ...rest }) => rest)).toEqual(plain);
    expect(Object.fromEntries(rows.map((r) => [r.function, r.inclusive_us]))).toEqual({ start_kernel: 20, setup_arch: 8, mm_init: 5, memblock_add: 3 });
  });

  it('callees prints the merged tree; an unknown function is a one-line error', () => {
    const rows = cliJson<Array<{ depth: number; function: string }>>(['callees', sample('stacks', 'calls-and-returns.log'), 'start_kernel']);
    expect(rows.map((r) => `${r.depth}:${r.function}`)).toEqual(['0:start_kernel', '1:setup_arch', '2:memblock_add', '1:mm_init']);
    const callers = cliJson<Array<{ depth: number; function: string }>>(['callers', sample('stacks', 'user-syscall.log'), '__x64_sys_write']);
    expect(callers.map((r) => r.function)).toEqual(['__x64_sys_write', 'do_syscall_64', 'entry_SYSCALL_64', '[user]']);
    const r = runCli(['callers', sample('stacks', 'calls-and-returns.log'), 'no_such_function']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no_such_function.*not in/);
  });
});
