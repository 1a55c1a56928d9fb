/**
 * The QEMU engine's step mode on a real kernel: the Debian cloud kernel (findKernel) with the appliance,
 * stepped through QEMU's gdbstub under TCG from a breakpoint at start_kernel. Needs qemu-system-x86_64
 * (apt-get install qemu-system-x86); the kernel and busybox come from the cache or are fetched.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAppliance } from '../capture/appliance/appliance.js';
import { summaryLines } from '../capture/output/profile.js';
import { parseTraceFrom, stepWithQemu, withNokaslr, type QemuStepResult } from '../capture/engines/qemu/qemu-step.js';
import { canRepeatInPlace } from '../capture/engines/qemu/repeat-in-place.js';
import { SymbolTable as Table } from '../src/symbols/symbol-table.js';
import { findKernel } from '../capture/kernel/discover.js';
import { kernelSymbolTable } from '../capture/kernel/symbols.js';
import { UserError } from '../src/errors.js';
import type { SymbolTable } from '../src/symbols/symbol-table.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

const missing = firstMissing(qemuMissing(), defaultKernelMissing(), busyboxMissing());

const CMDLINE = 'console=ttyS0 panic=-1 reboot=t';
const STEPS = 20_000;
/** What start_kernel calls first (init/main.c, 6.1), in this order: each must first appear after the one before. */
const EARLY_CALLS = ['set_task_stack_end_magic', 'smp_setup_processor_id', 'cgroup_init_early', 'boot_cpu_init', 'early_security_init', 'setup_arch'];

const made: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'bt-qemu-step-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const body = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

describe('step-mode options', () => {
  const table = new Table([{ addr: 0xffffffff8304ee41n, name: 'start_kernel', type: 'T' }, { addr: 0xffffffff81000000n, name: 'cafebabe', type: 'T' }]);

  it('--trace-from takes a symbol, 0x-hex, or 8+ bare hex digits', () => {
    expect(parseTraceFrom('start_kernel', table)).toBe(0xffffffff8304ee41n);
    expect(parseTraceFrom('0x1000000', null)).toBe(0x1000000n);
    expect(parseTraceFrom('ffffffff81000000', null)).toBe(0xffffffff81000000n);
    expect(() => parseTraceFrom('no_such', table)).toThrow(/--trace-from no_such: no such symbol/);
    expect(() => parseTraceFrom('start_kernel', null)).toThrow(UserError);
  });

  it('adds nokaslr once', () => {
    expect(withNokaslr('console=ttyS0')).toBe('console=ttyS0 nokaslr');
    expect(withNokaslr('nokaslr console=ttyS0')).toBe('nokaslr console=ttyS0');
    expect(withNokaslr('console=ttyS0 nokaslrx')).toBe('console=ttyS0 nokaslrx nokaslr');
  });

  it('a repeated rip is a real step only at a rep string instruction or a jump to itself', () => {
    const can = (hex: string): boolean => canRepeatInPlace(Buffer.from(hex.replace(/ /g, ''), 'hex'));
    // rep stos/movs/cmps/scas/ins/outs/lods, with REX, operand-size and segment prefixes around the rep
    for (const hex of ['f3 ab', 'f3 48 ab', 'f3 a4', 'f3 48 a5', 'f2 ae', 'f3 a6', '66 f3 ab', 'f3 6c', 'f3 6f', 'f3 ac', 'f3 64 48 a5']) {
      expect(can(hex), hex).toBe(true);
    }
    // the same string instructions without rep: one iteration, rip moves on
    for (const hex of ['ab', '48 ab', 'a4', '66 a5', 'ae']) expect(can(hex), hex).toBe(false);
    // jumps and calls to themselves: jmp rel8/rel32, jcc rel8/rel32, loop, jrcxz, call rel32
    for (const hex of ['eb fe', 'e9 fb ff ff ff', '75 fe', '0f 85 fa ff ff ff', 'e2 fe', 'e3 fe', 'e8 fb ff ff ff', '3e eb fd']) {
      expect(can(hex), hex).toBe(true);
    }
    // jumps elsewhere, ordinary instructions, a rep in front of something that is not a string op, nothing
    for (const hex of ['eb fc', 'eb 00', 'e9 00 00 00 00', '75 f0', '0f 85 00 00 00 00', 'f3 c3', 'f3 90', '48 89 c7', 'e6 80', 'f4', '', 'f3', 'eb', 'e9 fb ff']) {
      expect(can(hex), hex).toBe(false);
    }
  });

  it('a QEMU binary that is not there, or a bad --max-steps, is a one-line error', async () => {
    const base = { kernel: '/dev/null', cmdline: '', memoryMiB: 64, outDir: tmp(), timeoutS: 1, maxSteps: 10, symbols: null, clock: 'steps' as const };
    await expect(stepWithQemu({ ...base, qemu: '/nonexistent/qemu-system-x86_64' })).rejects.toThrow(/not found or not executable/);
  });

  it('a bad --max-steps is a one-line error before QEMU starts', async (ctx) => {
    if (qemuMissing()) ctx.skip(qemuMissing()!);
    const base = { kernel: '/dev/null', cmdline: '', memoryMiB: 64, outDir: tmp(), timeoutS: 1, maxSteps: 0, symbols: null, clock: 'steps' as const };
    await expect(stepWithQemu(base)).rejects.toThrow(/--max-steps 0/);
  });
});

describeNeeds(missing, 'QEMU engine, step mode through the gdbstub, real kernel under TCG', () => {
  let kernel = '';
  let initrd = '';
  let symbols: SymbolTable;
  let run: QemuStepResult;
  let lines: string[] = [];

  beforeAll(async () => {
    kernel = (await findKernel({ log: () => {} })).path;
    initrd = await buildAppliance({ log: () => {} });
    symbols = await kernelSymbolTable(kernel);
    run = await stepWithQemu({
      kernel, initrd, cmdline: CMDLINE, memoryMiB: 512, outDir: tmp(), timeoutS: 240,
      traceFrom: 'start_kernel', maxSteps: STEPS, symbols, clock: 'steps',
    });
    lines = body(readFileSync(run.traceFile!, 'utf8'));
  }, 400_000);

  it(`--trace-from start_kernel --max-steps ${STEPS}: exactly ${STEPS} lines, the first at start_kernel`, () => {
    const p = run.profile;
    expect(p.exit.reason).toBe('max-steps');
    expect(p.step!.steps).toBe(STEPS);
    expect(p.step!.trace_lines).toBe(STEPS);
    expect(lines.length).toBe(STEPS);
    expect(lines[0]).toMatch(/^0 start_kernel in section \S+$/);
    expect(lines[0]).toBe(`0 ${symbols.describe(symbols.resolve('start_kernel')!)}`);
    // profile v2: addresses are 0x-prefixed like exit.rip, and the breakpoint kind moved to qemu.gdbstub
    expect(p.step!.trace_from).toMatchObject({ spec: 'start_kernel', address: '0x' + symbols.resolve('start_kernel')!.toString(16) });
    expect(p.cmdline).toMatch(/(^|\s)nokaslr(\s|$)/);
    lines.forEach((l, i) => expect(l.startsWith(`${i} `), l).toBe(true));
    expect(p.step!.steps_per_second).toBeGreaterThan(0);
    // one step packet per line after the first, and a `p` for each stop reply without rip in it
    expect(p.qemu!.gdbstub!.packets_sent).toBeGreaterThanOrEqual(2 * (STEPS - 1) - p.qemu!.gdbstub!.stop_replies_with_rip);
    expect(JSON.parse(readFileSync(run.profileFile, 'utf8'))).toEqual(p);
    expect(summaryLines(p).at(-1)).toBe(`[boot-profile] exit: max-steps at ${p.exit.rip} (${p.exit.symbol}): --max-steps ${STEPS} reached`);
    // The console was recorded up to the breakpoint: SeaBIOS and the kernel's real-mode setup.
    expect(p.console_lines).toBeGreaterThan(0);
  });

  it('names every line from the kallsyms table; bare addresses only where no symbol covers them', () => {
    let bare = 0;
    for (const l of lines) {
      const m = /^\d+ (\S+)(?: \+ (\d+))? in section (\S+)$/.exec(l);
      if (m) {
        const addr = symbols.resolve(m[1]!);
        expect(addr, l).toBeDefined();
        continue;
      }
      const hex = /^\d+ ([0-9a-f]{1,16})$/.exec(l);
      expect(hex, l).not.toBeNull();
      expect(symbols.lookup(BigInt(`0x${hex![1]}`)), l).toBeNull();
      bare++;
    }
    // start_kernel's code is nearly all named: the unnamed bits are static_cpu_has() slow paths in .altinstr_aux
    expect(bare).toBeLessThan(STEPS / 100);
  });

  it('reaches the functions start_kernel calls first, in source order', () => {
    const first = new Map<string, number>();
    lines.forEach((l, i) => {
      const name = l.split(' ')[1]!;
      if (!first.has(name)) first.set(name, i);
    });
    const at = EARLY_CALLS.map((f) => first.get(f) ?? -1);
    for (const [i, f] of EARLY_CALLS.entries()) expect(at[i], `${f} not reached`).toBeGreaterThan(0);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('--clock host with the guest left to run on: increasing microsecond stamps, then the boot ends by itself', async () => {
    const r = await stepWithQemu({
      kernel, initrd, cmdline: CMDLINE, memoryMiB: 512, outDir: tmp(), timeoutS: 240,
      traceFrom: 'start_kernel', maxSteps: 300, symbols, clock: 'host', after: 'run',
    });
    const host = body(readFileSync(r.traceFile!, 'utf8'));
    expect(host.length).toBe(300);
    let prev = 0;
    for (const l of host) {
      const m = /^(\d+\.\d) \S/.exec(l);
      expect(m, l).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(prev);
      prev = Number(m![1]);
    }
    expect(Number(host[0]!.split(' ')[0])).toBeGreaterThanOrEqual(r.profile.step!.trace_from!.reached_us! - 1);
    expect(r.profile.exit.reason).toBe('shutdown');
    expect(r.profile.exit.detail).toMatch(/--max-steps 300 reached; then the guest ran on/);
    expect(Object.keys(r.profile.guest_markers_us)).toContain('ready');
  }, 300_000);

  it('a timeout before --trace-from is reached ends the capture with reason timeout and no steps', async () => {
    const t = performance.now();
    const r = await stepWithQemu({
      kernel, initrd, cmdline: CMDLINE, memoryMiB: 512, outDir: tmp(), timeoutS: 0.3,
      traceFrom: 'start_kernel', maxSteps: 10, symbols, clock: 'steps',
    });
    expect(r.profile.exit.reason).toBe('timeout');
    expect(r.profile.exit.detail).toMatch(/before start_kernel was reached/);
    expect(r.profile.step!.steps).toBe(0);
    expect(r.profile.step!.trace_from!.reached_us).toBeNull(); // renamed field: trace_from now names the spec even when never reached
    expect(body(readFileSync(r.traceFile!, 'utf8'))).toEqual([]);
    expect(performance.now() - t).toBeLessThan(20_000);
  }, 60_000);

  it('Qqemu.sstep: interrupt handlers appear in the trace with flags 1, never with the default 7', async () => {
    const handlers = async (sstepFlags: number): Promise<number> => {
      const r = await stepWithQemu({
        kernel, initrd, cmdline: CMDLINE, memoryMiB: 512, outDir: tmp(), timeoutS: 240,
        traceFrom: 'kernel_init', maxSteps: 2000, symbols, clock: 'steps', sstepFlags,
      });
      expect(r.profile.step!.steps).toBe(2000);
      expect(r.profile.qemu!.gdbstub!.sstep_flags).toBe(sstepFlags);
      return body(readFileSync(r.traceFile!, 'utf8')).filter((l) => / (asm_common_interrupt|asm_sysvec_\w+)( |$)/.test(l)).length;
    };
    // kernel_init runs with interrupts enabled, and ~1 s of stepping lets hundreds of timer ticks fall due
    expect(await handlers(1)).toBeGreaterThan(0);
    expect(await handlers(7)).toBe(0);
  }, 300_000);

  it('an unknown --trace-from symbol is a one-line error before QEMU starts', async () => {
    await expect(stepWithQemu({
      kernel, cmdline: CMDLINE, memoryMiB: 512, outDir: tmp(), timeoutS: 10, traceFrom: 'no_such_function_here', maxSteps: 10, symbols, clock: 'steps',
    })).rejects.toThrow(UserError);
  });

  it('an abort signal mid-stepping ends the capture cleanly with what was traced so far', async () => {
    const ac = new AbortController();
    const r = await stepWithQemu({
      kernel, initrd, cmdline: CMDLINE, memoryMiB: 512, outDir: tmp(), timeoutS: 240,
      traceFrom: 'start_kernel', maxSteps: 1_000_000, symbols, clock: 'steps', signal: ac.signal,
      onProgress: (n) => n >= 4096 && ac.abort(),
    });
    expect(r.profile.exit.reason).toBe('interrupted');
    expect(r.profile.step!.steps).toBeGreaterThanOrEqual(4096);
    expect(r.profile.step!.steps).toBeLessThan(1_000_000);
    expect(body(readFileSync(r.traceFile!, 'utf8')).length).toBe(r.profile.step!.steps);
  }, 300_000);
});
