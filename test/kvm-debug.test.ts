/**
 * The KVM engine's stop and step logic without /dev/kvm (capture/engines/kvm/debug/): halt probes, the
 * single-step watchdog and the --trace-from software trap are fed exit sequences as data, the way
 * test/exits.test.ts feeds handleExit; the page walk runs over the VMM's own boot tables and hand-built ones.
 */
import { describe, expect, it } from 'vitest';
import { writeIdentityPageTables } from '../capture/boot/page-tables.js';
import { translate } from '../capture/boot/page-tables.js';
import { HaltDetector, type HaltProbe } from '../capture/engines/kvm/debug/halt.js';
import { classifyInsn, INSN_CLASSES, isPortIo } from '../capture/engines/kvm/debug/insn-class.js';
import { translate64 } from '../capture/engines/kvm/debug/page-walk.js';
import { mulberry32 } from '../src/random.js';
import { StepWatchdog, toProfilePart, type RearmMode } from '../capture/engines/kvm/debug/step-watchdog.js';
import { stepFallbackSummary } from '../capture/output/profile.js';
import { SoftwareTrap, TRAP_BYTES } from '../capture/engines/kvm/debug/sw-trap.js';
import { KVM_MP_STATE_HALTED, KVM_MP_STATE_RUNNABLE } from '../capture/kvm/ioctls.js';

const IF = 0x200n;

describe('HaltDetector (probes between KVM_RUNs)', () => {
  const probe = (mpState: number | null, rflags: bigint, rip = 0xffffffff8103d023n, before = 0xf4): HaltProbe => ({
    mpState,
    rip,
    rflags,
    byteBeforeRip: () => before,
  });

  it('halted with interrupts off is a halt at the first probe (KVM_GET_MP_STATE)', () => {
    const d = new HaltDetector();
    expect(d.probe(probe(KVM_MP_STATE_RUNNABLE, 0x2n))).toEqual({ halted: false, waiting: false });
    const v = d.probe(probe(KVM_MP_STATE_HALTED, 0x2n));
    expect(v.halted).toBe(true);
    expect(v.halted && v.detail).toMatch(/KVM_GET_MP_STATE: halted, RFLAGS.IF = 0/);
  });

  it('halted with interrupts on is an idle vCPU waiting for a tick, not a stop', () => {
    const d = new HaltDetector();
    for (let i = 0; i < 5; i++) expect(d.probe(probe(KVM_MP_STATE_HALTED, 0x2n | IF))).toEqual({ halted: false, waiting: true });
  });

  it('runnable with interrupts off right after an 0xF4 byte is no halt when MP state is known', () => {
    const d = new HaltDetector();
    expect(d.probe(probe(KVM_MP_STATE_RUNNABLE, 0x2n, 0x1000n, 0xf4)).halted).toBe(false);
    expect(d.probe(probe(KVM_MP_STATE_RUNNABLE, 0x2n, 0x1000n, 0xf4)).halted).toBe(false);
  });

  it('without KVM_GET_MP_STATE: HLT before RIP with IF = 0 in two probes at the same RIP', () => {
    const d = new HaltDetector();
    expect(d.probe(probe(null, 0x2n, 0x1001n)).halted).toBe(false);
    const v = d.probe(probe(null, 0x2n, 0x1001n));
    expect(v.halted && v.detail).toMatch(/two probes/);
    // A different RIP in between starts over; IF = 1 or another byte never counts.
    const e = new HaltDetector();
    expect(e.probe(probe(null, 0x2n, 0x1001n)).halted).toBe(false);
    expect(e.probe(probe(null, 0x2n, 0x2001n)).halted).toBe(false);
    expect(e.probe(probe(null, 0x2n | IF, 0x2001n)).halted).toBe(false);
    expect(e.probe(probe(null, 0x2n, 0x2001n, 0x90)).halted).toBe(false);
    expect(e.probe(probe(null, 0x2n, 0x2001n, 0x90)).halted).toBe(false);
  });
});

describe('classifyInsn (x86-64 opcode map, first bytes only)', () => {
  it.each([
    ['mov %rax,%cr3', [0x0f, 0x22, 0xd8], 'emulated'],
    ['mov %cr4,%rax', [0x0f, 0x20, 0xe0], 'emulated'],
    ['wrmsr', [0x0f, 0x30], 'emulated'],
    ['cpuid', [0x0f, 0xa2], 'emulated'],
    ['invlpg (%rax)', [0x0f, 0x01, 0x38], 'emulated'],
    ['rep outsb', [0xf3, 0x6e], 'emulated'],
    ['popf', [0x9d], 'tf-clear'],
    ['iretq', [0x48, 0xcf], 'tf-clear'],
    ['int3', [0xcc], 'tf-clear'],
    ['syscall', [0x0f, 0x05], 'tf-clear'],
    ['sti', [0xfb], 'shadow'],
    ['mov %eax,%ss', [0x8e, 0xd0], 'shadow'],
    ['mov %eax,%ds', [0x8e, 0xd8], 'plain'],
    ['call rel32', [0xe8, 0, 0, 0, 0], 'branch'],
    ['jne rel8', [0x75, 0x10], 'branch'],
    ['jmp *%rax', [0xff, 0xe0], 'branch'],
    ['ret', [0xc3], 'branch'],
    ['hlt', [0xf4], 'branch'],
    ['inc (%rax) (ff /0)', [0xff, 0x00], 'plain'],
    ['mov %rsp,%rbp', [0x48, 0x89, 0xe5], 'plain'],
    ['endbr64', [0xf3, 0x0f, 0x1e, 0xfa], 'plain'],
    ['out %al,$0xe9', [0xe6, 0xe9], 'plain'],
    ['unreadable', [], 'branch'],
  ] as const)('%s is %s', (_name, bytes, cls) => {
    expect(classifyInsn(bytes)).toBe(cls);
  });
});

describe('isPortIo (the Stepper asks KVM for the registers only on the KVM_RUN that runs one)', () => {
  it.each([
    ['out %al,$0xe9', [0xe6, 0xe9], true],
    ['out %al,(%dx)', [0xee], true],
    ['out %ax,(%dx) (operand-size prefix)', [0x66, 0xef], true],
    ['in (%dx),%al', [0xec], true],
    ['in $0x64,%al', [0xe4, 0x64], true],
    ['rep outsb', [0xf3, 0x6e], true],
    ['insl (REX)', [0x40, 0x6d], true],
    ['loop rel8 (E2, next to the I/O opcodes)', [0xe2, 0xfe], false],
    ['call rel32 (E8)', [0xe8, 0, 0, 0, 0], false],
    ['mov %rsp,%rbp', [0x48, 0x89, 0xe5], false],
    ['unreadable', [], false],
  ] as const)('%s: %s', (_name, bytes, io) => {
    expect(isPortIo(bytes)).toBe(io);
  });
});

/** A guest's code as data: address -> instruction bytes. */
function code(map: Record<string, number[]>): (va: bigint) => number[] {
  return (va) => map['0x' + va.toString(16)] ?? [0x90];
}

type Event = { debug: bigint } | { io: bigint } | { mmio: bigint } | { probe: bigint };

/**
 * Feed `events` to a watchdog that started at `start`; the actions, in order. `given`: each DEBUG exit
 * comes with its instruction's class, as the KVM run loop passes it from the trace writer's address cache
 * (run-loop.ts addressFlags), instead of the watchdog looking it up.
 */
function feedWith(given: boolean, mode: RearmMode, insns: Record<string, number[]>, start: bigint, events: Event[]): { actions: string[]; w: StepWatchdog } {
  const read = code(insns);
  const w = new StepWatchdog(mode, read);
  w.start(Number(start >> 32n), Number(start & 0xffffffffn));
  let steps = 1;
  const actions = events.map((e) => {
    if ('debug' in e) {
      const cls = given ? INSN_CLASSES.indexOf(classifyInsn(read(e.debug))) : -1;
      return w.onDebug(Number(e.debug >> 32n), Number(e.debug & 0xffffffffn), ++steps, cls);
    }
    if ('io' in e) return w.onOtherExit('io', e.io, steps);
    if ('mmio' in e) return w.onOtherExit('mmio', e.mmio, steps);
    return w.onOtherExit('other', e.probe, steps);
  });
  return { actions, w };
}

const K = 0xffffffff81000000n;

describe.each([['the watchdog looks classes up', false], ['the run loop gives classes', true]] as const)('StepWatchdog (exit sequences while single-stepping; %s)', (_how, given) => {
  const feed = (...a: [RearmMode, Record<string, number[]>, bigint, Event[]]) => feedWith(given, ...a);

  it('plain instructions, a rep string instruction and a probe at the announced RIP need nothing', () => {
    const { actions, w } = feed('auto', { [`0x${(K + 4n).toString(16)}`]: [0xf3, 0xa4] }, K, [
      { debug: K + 1n }, // nop
      { debug: K + 4n },
      { debug: K + 4n }, // rep movsb: one DEBUG exit per iteration at the same pc
      { debug: K + 4n },
      { debug: K + 6n },
      { probe: K + 6n },
      { debug: K + 7n },
    ]);
    expect(actions.every((a) => a === 'ok')).toBe(true);
    expect(w.counts).toMatchObject({ rearm_emulated: 0, rearm_tf_clear: 0, lost: 0, late: 0 });
    expect(stepFallbackSummary(toProfilePart(w.counts))).toBeNull();
  });

  it('re-arms at the DEBUG exit after an instruction KVM emulates (mov to cr4) and after popf', () => {
    const cr4 = K + 0x10n;
    const popf = K + 0x13n;
    const { actions, w } = feed('auto', { [`0x${cr4.toString(16)}`]: [0x0f, 0x22, 0xe0], [`0x${popf.toString(16)}`]: [0x9d] }, cr4, [
      { debug: popf }, // mov %rax,%cr4 ran (popf follows it): re-arm
      { debug: popf + 1n }, // popf ran: re-arm
      { debug: popf + 2n },
    ]);
    expect(actions).toEqual(['rearm', 'rearm', 'ok']);
    expect(w.counts).toMatchObject({ rearm_emulated: 1, rearm_tf_clear: 1, lost: 0 });
    expect(stepFallbackSummary(toProfilePart(w.counts))).toBe('re-armed after 1 instructions KVM may emulate; re-armed after 1 instructions that load RFLAGS');
  });

  it('an I/O exit away from the announced instruction means steps were lost: counted with the gap, re-armed', () => {
    // The emulator dropped TF after the CR write and the guest ran on to an OUT 300 bytes later.
    const { actions, w } = feed('auto', {}, K, [
      { debug: K + 1n },
      { io: K + 301n },
      { debug: K + 303n },
    ]);
    expect(actions).toEqual(['ok', 'rearm', 'ok']);
    expect(w.counts.lost).toBe(1);
    expect(w.counts.gaps).toEqual([{ kind: 'lost', expected: '0xffffffff81000001', found: '0xffffffff8100012d', at_step: 2 }]);
    expect(stepFallbackSummary(toProfilePart(w.counts))).toBe('1 DEBUG exits missing: steps LOST (no trace line) from 0xffffffff81000001 (single-step set again where it may have stopped; gaps in profile.json kvm.step_watchdog)');
  });

  it('an I/O exit with RIP already past the OUT (the software-backed KVM here): the step after it must come at that RIP, else it is counted lost', () => {
    // The demo guest's serial_putc: out %al,(%dx) at +0xe9 (1 byte), ret at +0xea; this KVM reports the OUT's
    // exit with RIP = +0xea and its next DEBUG exit after the ret: the ret got no trace line.
    const out = K + 0xe9n;
    const lost = feed('auto', {}, out, [{ io: out + 1n }, { debug: K + 0x127n }]);
    // Counted, not re-armed: that DEBUG exit came, so single-step is on.
    expect(lost.actions).toEqual(['ok', 'ok']);
    expect(lost.w.counts).toMatchObject({ lost: 1, late: 0 });
    expect(lost.w.counts.gaps).toEqual([{ kind: 'lost', expected: '0xffffffff810000ea', found: '0xffffffff81000127', at_step: 2 }]);
    // Where the instruction that ran without its line may clear TF (a popf, or one KVM emulates), it is
    // counted and single-step is set again, as after any step of it.
    const popf = feed('auto', { [`0x${(out + 1n).toString(16)}`]: [0x9d] }, out, [{ io: out + 1n }, { debug: out + 2n }]);
    expect(popf.actions).toEqual(['ok', 'rearm']);
    expect(popf.w.counts).toMatchObject({ lost: 1, rearm_tf_clear: 1 });
    const cpuid = feed('auto', { [`0x${(out + 1n).toString(16)}`]: [0x0f, 0xa2] }, out, [{ io: out + 1n }, { debug: out + 3n }]);
    expect(cpuid.actions).toEqual(['ok', 'rearm']);
    expect(cpuid.w.counts).toMatchObject({ lost: 1, rearm_emulated: 1 });
    // Where the DEBUG exit does come at that RIP, nothing was lost.
    const fine = feed('auto', { [`0x${(out + 1n).toString(16)}`]: [0xc3] }, out, [{ io: out + 1n }, { debug: out + 1n }, { debug: K + 0x127n }]);
    expect(fine.actions).toEqual(['ok', 'ok', 'ok']);
    expect(fine.w.counts.lost).toBe(0);
  });

  it('a probe that finds RIP moved although no DEBUG exit came is a loss too', () => {
    const { actions, w } = feed('auto', {}, K, [{ debug: K + 1n }, { probe: K + 0x5000n }]);
    expect(actions).toEqual(['ok', 'rearm']);
    expect(w.counts.lost).toBe(1);
  });

  it('after an I/O exit the next DEBUG exit must be one instruction on; far away it is late', () => {
    const good = feed('auto', {}, K, [{ io: K }, { debug: K + 2n }]);
    expect(good.actions).toEqual(['ok', 'ok']);
    const late = feed('auto', {}, K, [{ io: K }, { debug: K + 40n }]);
    expect(late.actions).toEqual(['ok', 'rearm']);
    expect(late.w.counts).toMatchObject({ late: 1, lost: 0 });
    // A probe right after the OUT completed (RIP one instruction on) lost nothing.
    const probe = feed('auto', {}, K, [{ io: K }, { probe: K + 2n }, { debug: K + 3n }]);
    expect(probe.actions).toEqual(['ok', 'ok', 'ok']);
    expect(probe.w.counts.lost).toBe(0);
  });

  it('an MMIO access was emulated: the DEBUG exit after it re-arms', () => {
    const { actions, w } = feed('auto', {}, K, [{ mmio: K }, { debug: K + 6n }]);
    expect(actions).toEqual(['ok', 'rearm']);
    expect(w.counts.rearm_emulated).toBe(1);
  });

  it("a DEBUG exit far from a plain instruction is late; after a branch it is not", () => {
    const jmp = K + 0x20n;
    const r = feed('auto', { [`0x${jmp.toString(16)}`]: [0xe9, 0, 1, 0, 0] }, K, [{ debug: jmp }, { debug: K + 0x40000n }, { debug: K + 0x1000n }]);
    // nop at K -> jmp: 0x20 bytes on after a plain nop: late; the jmp's far target: fine; then a nop -> far: late.
    expect(r.actions).toEqual(['rearm', 'ok', 'rearm']);
    expect(r.w.counts.late).toBe(2);
  });

  it("mode 'always' re-arms after every step", () => {
    const { actions, w } = feed('always', {}, K, [{ debug: K + 1n }, { debug: K + 2n }]);
    expect(actions).toEqual(['rearm', 'rearm']);
    expect(w.counts.rearm_always).toBe(2);
  });
});

describe('SoftwareTrap (--trace-from where the DR0 breakpoint never fires)', () => {
  const mem = (bytes: number[]): { buf: Uint8Array; view: (gpa: number, len: number) => Uint8Array } => {
    const buf = Uint8Array.from(bytes);
    return { buf, view: (gpa, len) => buf.subarray(gpa, gpa + len) };
  };

  it('writes out 0xe9,al over the target and puts the original bytes back exactly', () => {
    // A traced function's first bytes: call __fentry__ (e8 rel32), then push %rbp.
    const m = mem([0xcc, 0xe8, 0x3a, 0x1b, 0x00, 0x00, 0x55]);
    const t = new SoftwareTrap(0xffffffff8304ee41n, 1);
    t.arm(m);
    expect(t.armed).toBe(true);
    expect([...m.buf]).toEqual([0xcc, ...TRAP_BYTES, 0x1b, 0x00, 0x00, 0x55]);
    expect(t.restore(m)).toBe(true);
    expect([...m.buf]).toEqual([0xcc, 0xe8, 0x3a, 0x1b, 0x00, 0x00, 0x55]);
    expect(t.armed).toBe(false);
    expect(t.restore(m)).toBe(true); // a second restore changes nothing
    expect([...m.buf]).toEqual([0xcc, 0xe8, 0x3a, 0x1b, 0x00, 0x00, 0x55]);
  });

  it('fires only for a one-byte OUT to port 0xE9 with RIP at the target (or just past the trap)', () => {
    const m = mem([0x90, 0x90, 0x90]);
    const t = new SoftwareTrap(0x1000n, 0);
    t.arm(m);
    const out = { direction: 1, size: 1, port: 0xe9 };
    expect(t.fired(out, () => 0x1000n)).toBe(true);
    expect(t.fired(out, () => 0x1002n)).toBe(true);
    expect(t.fired(out, () => 0x2000n)).toBe(false); // other code writing to port 0xE9
    expect(t.fired({ ...out, port: 0x80 }, () => 0x1000n)).toBe(false);
    expect(t.fired({ ...out, direction: 0 }, () => 0x1000n)).toBe(false);
    t.restore(m);
    expect(t.fired(out, () => 0x1000n)).toBe(false);
  });

  it('restore reports whether the guest had overwritten the trap (e.g. a bzImage decompressing itself)', () => {
    const m = mem([0x48, 0x89, 0xe5]);
    const t = new SoftwareTrap(0n, 0);
    t.arm(m);
    m.buf[0] = 0x55;
    expect(t.restore(m)).toBe(false);
    expect([...m.buf]).toEqual([0x48, 0x89, 0xe5]);
  });
});

describe('translate64 (4-level page walk over all guest memory)', () => {
  it('agrees with a plain BigInt walk over random tables (NX, PAT and ignored bits set, 4 KiB, 2 MiB and 1 GiB pages, canonical addresses)', () => {
    const size = 8 << 20;
    const mem = new Uint8Array(size);
    const dv = new DataView(mem.buffer);
    const random = mulberry32(77);
    const r32 = (): number => Math.floor(random() * 2 ** 32);
    // Every entry random in all 64 bits, its address bits pointing into memory 9 times in 10.
    for (let pa = 0; pa < size; pa += 8) {
      let v = (BigInt(r32()) << 32n) | BigInt(r32());
      if (random() < 0.9) v = (v & ~0x000ffffffffff000n) | (BigInt(Math.floor(random() * (size >> 12))) << 12n);
      dv.setBigUint64(pa, v, true);
    }
    const read = (pa: number): bigint | undefined => (pa + 8 <= size ? dv.getBigUint64(pa, true) : undefined);
    const reference = (cr3: bigint, va: bigint): number | undefined => {
      let table = cr3 & 0x000ffffffffff000n;
      for (const shift of [39n, 30n, 21n, 12n]) {
        const pa = table + ((va >> shift) & 0x1ffn) * 8n;
        if (pa + 8n > BigInt(size)) return undefined;
        const e = dv.getBigUint64(Number(pa), true);
        if ((e & 1n) === 0n) return undefined;
        const base = e & 0x000ffffffffff000n;
        if (shift === 12n || (shift !== 39n && (e & 0x80n) !== 0n)) return Number((base & ~((1n << shift) - 1n)) + (va & ((1n << shift) - 1n)));
        table = base;
      }
      return undefined;
    };
    let found = 0;
    for (let k = 0; k < 20000; k++) {
      const cr3 = BigInt(Math.floor(random() * (size >> 12))) << 12n | BigInt(r32() & 0xfff);
      // Canonical: bits 48..63 copy bit 47, as every address a vCPU runs at.
      const low48 = ((BigInt(r32()) << 32n) | BigInt(r32())) & 0xffffffffffffn;
      const va = (low48 & 0x800000000000n) !== 0n ? low48 | 0xffff000000000000n : low48;
      const want = reference(cr3, va);
      expect(translate64(read, cr3, va)).toBe(want);
      if (want !== undefined) found++;
    }
    expect(found).toBeGreaterThan(1000);
  });

  it('agrees with the boot tables the VMM writes (2 MiB pages, identity and high kernel mapping)', () => {
    const mem = new Uint8Array(0x200000);
    const cr3 = writeIdentityPageTables(mem);
    const dv = new DataView(mem.buffer);
    const read = (pa: number): bigint | undefined => (pa + 8 <= mem.length ? dv.getBigUint64(pa, true) : undefined);
    for (const va of [0x1000n, 0x1234567n, 0xffffffff81000000n, 0xffffffff8304ee41n]) {
      expect(translate64(read, BigInt(cr3), va)).toBe(translate(mem, cr3, va));
    }
    expect(translate64(read, BigInt(cr3), 0xffffffff8304ee41n)).toBe(0x304ee41);
  });

  it('walks 4 KiB and 1 GiB pages, tables above 1 MiB, and stops at a missing entry', () => {
    const mem = new Uint8Array(0x800000);
    const dv = new DataView(mem.buffer);
    const set = (table: number, index: number, v: bigint): void => dv.setBigUint64(table + index * 8, v, true);
    const read = (pa: number): bigint | undefined => (pa + 8 <= mem.length ? dv.getBigUint64(pa, true) : undefined);
    const pml4 = 0x600000;
    const pdpt = 0x601000;
    const pd = 0x602000;
    const pt = 0x603000;
    const va = 0xffff888000403123n; // direct map: PML4 273, PDPT 0, PD 2, PT 3
    set(pml4, 273, BigInt(pdpt) | 0x63n);
    set(pdpt, 0, BigInt(pd) | 0x63n);
    set(pd, 2, BigInt(pt) | 0x63n);
    set(pt, 3, 0x8000000000005063n); // NX set, page 0x5000
    expect(translate64(read, BigInt(pml4), va)).toBe(0x5123);
    set(pdpt, 1, 0x40000000n | 0xe3n); // a 1 GiB page at 1 GiB
    expect(translate64(read, BigInt(pml4), 0xffff888040000000n + 0x12345678n)).toBe(0x40000000 + 0x12345678);
    expect(translate64(read, BigInt(pml4), 0xffff888000404000n)).toBeUndefined(); // PT entry 4 not present
    expect(translate64(read, BigInt(pml4), 0xffffc90000000000n)).toBeUndefined(); // PML4 entry not present
    set(pd, 5, 0x40000000000n | 0x63n); // a table beyond guest memory
    expect(translate64(read, BigInt(pml4), 0xffff888000a00000n)).toBeUndefined();
  });
});
