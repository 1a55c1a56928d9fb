/**
 * Engine selection and option checks of `boot-trace capture`, without booting anything: the probe's
 * verdict from its child's report, the fallback message, the choice for each --engine value and
 * machine, trace-window specs, and option combinations the command refuses. The probe itself runs
 * once on the real /dev/kvm at the end (skipped without it).
 */
import { describe, expect, it } from 'vitest';
import { chooseEngine, type EngineFacts } from '../capture/engine-choice.js';
import { parseProbeOutput, probeKvm, probeVerdict, type ProbeVerdict } from '../capture/probe/kvm-probe.js';
import { needsSymbols, parseTraceSpec } from '../capture/trace-window.js';
import { SymbolTable } from '../src/symbols/symbol-table.js';
import { checkCaptureArgs } from '../src/commands/capture.js';
import { kvmMissing } from './capture-helpers.js';
import { describeNeeds } from './preconditions.js';

const failing: ProbeVerdict = { ok: false, failedAt: 'cmpxchg16b', reason: 'emulation failure at cmpxchg16b', ms: 3, cached: false };
const passing: ProbeVerdict = { ok: true, reason: 'all probe instructions ran', ms: 3, cached: false };

function facts(o: Partial<EngineFacts> & { verdict?: ProbeVerdict } = {}): EngineFacts & { probed: () => number } {
  let n = 0;
  return {
    kvmOpenError: o.kvmOpenError ?? null,
    probe: () => {
      n++;
      return o.verdict ?? passing;
    },
    qemuInstalled: o.qemuInstalled ?? true,
    qemuAccel: o.qemuAccel ?? 'tcg',
    probed: () => n,
  };
}

describe('probe verdict', () => {
  it('passes only when the guest wrote the final stage', () => {
    expect(probeVerdict({ stages: [1, 2, 3, 4, 0xaa], end: 'done', detail: '' }).ok).toBe(true);
    expect(probeVerdict({ stages: [1, 2, 3, 0x14, 0xaa], end: 'done', detail: '' }).ok).toBe(true);
    expect(probeVerdict({ stages: [1, 2, 3], end: 'done', detail: '' }).ok).toBe(false);
  });

  it('names the instruction after the last stage reached', () => {
    const emu = 'KVM internal error: emulation failure [0x1, 0x2]';
    expect(probeVerdict({ stages: [1], end: 'internal-error', detail: emu })).toEqual({ ok: false, failedAt: 'cmpxchg16b', reason: 'emulation failure at cmpxchg16b' });
    expect(probeVerdict({ stages: [1, 2], end: 'internal-error', detail: emu }).reason).toBe('emulation failure at int3');
    expect(probeVerdict({ stages: [1, 2, 3], end: 'shutdown', detail: 'triple fault (KVM_EXIT_SHUTDOWN)' }).reason).toBe('triple fault at xsave');
    expect(probeVerdict({ stages: [], end: 'fail-entry', detail: 'VM entry failed' }).reason).toBe('fail-entry at entry');
  });

  it('reports a VM that could not be built, and a crashed or silent child', () => {
    expect(probeVerdict({ stages: [], end: 'setup', detail: 'x', error: 'cannot open /dev/kvm: EACCES' })).toEqual({ ok: false, failedAt: 'setup', reason: 'cannot open /dev/kvm: EACCES' });
    const crashed = parseProbeOutput('', 'Segmentation fault\n', null, 'SIGSEGV');
    expect(crashed.error).toBe('the KVM probe failed (killed by SIGSEGV: Segmentation fault)');
    expect(parseProbeOutput('noise\n{"stages":[1,2],"end":"internal-error","detail":"emulation failure"}\n', '', 0, null).stages).toEqual([1, 2]);
    expect(parseProbeOutput('{"broken', '', 1, null).error).toBe('the KVM probe failed (exit status 1)');
  });
});

describe('engine choice', () => {
  it('auto falls back to QEMU when the probe fails, saying why in one line', () => {
    const f = facts({ verdict: failing });
    const c = chooseEngine('auto', 'bzimage', f);
    expect(c.engine).toBe('qemu');
    expect(c.message).toBe('boot-trace: /dev/kvm cannot run this kernel here (emulation failure at cmpxchg16b); using QEMU (TCG)');
    expect(f.probed()).toBe(1);
  });

  it('auto takes KVM silently when the probe passes', () => {
    const c = chooseEngine('auto', 'bzimage', facts());
    expect(c).toMatchObject({ engine: 'kvm' });
    expect(c.message).toBeUndefined();
  });

  it('auto without /dev/kvm uses QEMU without probing; without QEMU either it is an error', () => {
    const f = facts({ kvmOpenError: 'ENOENT', qemuAccel: 'tcg' });
    expect(chooseEngine('auto', 'bzimage', f).message).toBe('boot-trace: /dev/kvm cannot be opened (ENOENT); using QEMU (TCG)');
    expect(f.probed()).toBe(0);
    expect(() => chooseEngine('auto', 'bzimage', facts({ kvmOpenError: 'ENOENT', qemuInstalled: false }))).toThrow(/qemu-system-x86/);
  });

  it('auto keeps KVM, with a warning, when the probe fails and QEMU is missing', () => {
    const c = chooseEngine('auto', 'bzimage', facts({ verdict: failing, qemuInstalled: false }));
    expect(c.engine).toBe('kvm');
    expect(c.message).toMatch(/not installed; trying KVM anyway/);
  });

  it('explicit engines are taken as asked, without probing', () => {
    const f = facts({ verdict: failing });
    expect(chooseEngine('kvm', 'bzimage', f).engine).toBe('kvm');
    expect(chooseEngine('qemu', 'bzimage', f).engine).toBe('qemu');
    expect(f.probed()).toBe(0);
    expect(() => chooseEngine('qemu', 'bzimage', facts({ qemuInstalled: false }))).toThrow('--engine qemu: qemu-system-x86_64 not found');
  });

  it('the demo guest runs on KVM whenever /dev/kvm opens, and on QEMU when asked (its PVH note)', () => {
    const f = facts({ verdict: failing });
    expect(chooseEngine('auto', 'demo', f).engine).toBe('kvm');
    expect(f.probed()).toBe(0);
    // Changed on purpose: the refusal was stale, QEMU boots the demo guest (test/demo-qemu.test.ts).
    expect(chooseEngine('qemu', 'demo', f).engine).toBe('qemu');
    expect(() => chooseEngine('qemu', 'demo', facts({ qemuInstalled: false }))).toThrow('--engine qemu: qemu-system-x86_64 not found');
  });

  it('an ELF kernel runs on KVM (QEMU cannot boot it), without probing', () => {
    const f = facts({ verdict: failing, kvmOpenError: 'ENOENT' });
    expect(chooseEngine('auto', 'elf', f)).toMatchObject({ engine: 'kvm', reason: 'an ELF kernel: only the KVM engine boots it' });
    expect(f.probed()).toBe(0);
    expect(() => chooseEngine('qemu', 'elf', f)).toThrow(/cannot boot a 64-bit ELF vmlinux/);
  });
});

describe('trace windows', () => {
  const table = new SymbolTable([
    { addr: 0xffffffff81000000n, name: 'startup_64', type: 'T' },
    { addr: 0xffffffff8304ee41n, name: 'start_kernel', type: 'T' },
  ]);

  it('resolves symbols, addresses and markers', () => {
    expect(parseTraceSpec('--trace-from', 'start_kernel', table)).toEqual({ kind: 'address', address: 0xffffffff8304ee41n });
    expect(parseTraceSpec('--trace-from', '0x1000000', null)).toEqual({ kind: 'address', address: 0x1000000n });
    expect(parseTraceSpec('--trace-until', 'ffffffff81000000', null)).toEqual({ kind: 'address', address: 0xffffffff81000000n });
    expect(parseTraceSpec('--trace-until', 'marker:ready', null)).toEqual({ kind: 'marker', stage: 'ready' });
    expect(needsSymbols('start_kernel')).toBe(true);
    expect(needsSymbols('0xffffffff81000000')).toBe(false);
    expect(needsSymbols('marker:ready')).toBe(false);
  });

  it('names what it cannot resolve in one line', () => {
    expect(() => parseTraceSpec('--trace-from', 'start_kernle', table)).toThrow("--trace-from start_kernle: no such symbol in the kernel's symbol table");
    expect(() => parseTraceSpec('--trace-from', 'start_kernel', null)).toThrow(/no symbol table/);
    expect(() => parseTraceSpec('--trace-from', 'marker:ready', table)).toThrow(/only end a trace window/);
    expect(() => parseTraceSpec('--trace-until', 'marker:', table)).toThrow(/give a stage name/);
    expect(() => parseTraceSpec('--trace-until', 'a b', table)).toThrow(/not a symbol name/);
  });
});

describe('capture option checks', () => {
  const base = { engine: 'auto' as const, clock: 'host' as const, 'block-irq': false };
  it('a trace window implies step mode, unless run mode was asked for', () => {
    expect(checkCaptureArgs({ ...base, 'trace-from': 'start_kernel' })).toBe('step');
    expect(checkCaptureArgs({ ...base })).toBe('run');
    expect(() => checkCaptureArgs({ ...base, mode: 'run', 'trace-from': 'start_kernel' })).toThrow('--trace-from/--trace-until need --mode step');
  });

  it('refuses step-only options in run mode and bad step counts', () => {
    expect(() => checkCaptureArgs({ ...base, 'max-steps': 10 })).toThrow('--max-steps needs --mode step');
    expect(() => checkCaptureArgs({ ...base, 'block-irq': true })).toThrow('--block-irq needs --mode step');
    expect(() => checkCaptureArgs({ ...base, clock: 'steps' })).toThrow('--clock steps needs --mode step');
    expect(() => checkCaptureArgs({ ...base, mode: 'step', 'max-steps': 0 })).toThrow('--max-steps 0: give a positive whole number');
    expect(() => checkCaptureArgs({ ...base, mode: 'step', 'max-steps': 1.5 })).toThrow(/positive whole number/);
  });

  it('--trace-until is a KVM-engine option', () => {
    expect(() => checkCaptureArgs({ ...base, engine: 'qemu', 'trace-until': 'marker:ready' })).toThrow(/only with the KVM engine/);
  });
});

const missing = kvmMissing();

describeNeeds(missing, 'the probe on this machine', () => {
  it('gives a verdict, and the cached one agrees', () => {
    const fresh = probeKvm({ noCache: true });
    expect(typeof fresh.ok).toBe('boolean');
    if (!fresh.ok) expect(fresh.reason).toMatch(/ at (cmpxchg16b|int3|xsave|entry|the end of the probe)$|^cannot|probe/);
    const again = probeKvm();
    expect(again.ok).toBe(fresh.ok);
    expect(again.reason).toBe(fresh.reason);
  }, 30_000);
});
