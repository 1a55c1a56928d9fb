/**
 * The vCPU loop: KVM_RUN until the guest ends or a stop is requested. Synchronous and tight on purpose:
 * in step mode it runs ~140 k times a second, so the DEBUG exit of a single step is handled inline (read
 * pc from kvm_run, append a trace line) and everything else goes through exits.ts.
 *
 * Stop requests come from the main thread through `control` (a SharedArrayBuffer): it stores a code, sets
 * kvm_run.immediate_exit and signals this thread, so KVM_RUN returns EINTR even when the guest spins
 * without exits (docs/kvm-facts.md, "Interrupting KVM_RUN").
 *
 * The main thread also kicks the vCPU every 250 ms with CTRL_PROBE set: with the in-kernel irqchip a
 * guest HLT never exits, so the loop then asks KVM_GET_MP_STATE whether the vCPU sits halted with
 * interrupts off and stops with 'halt' (debug/halt.ts; e.g. `poweroff -f` without ACPI).
 *
 * Step mode: the watchdog (debug/step-watchdog.ts) sets single-step again after instructions that lose TF
 * and counts every lost or late DEBUG exit; --trace-from is caught by a DR0 breakpoint, by a trap written
 * into guest code (debug/sw-trap.ts), or both (docs/nested-kvm.md).
 *
 * Quirks of the software-backed KVM here (docs/kvm-facts.md): a HLT is stepped over like any instruction
 * (a DEBUG exit at the next pc), so the loop recognises HLT itself: the trace writer asks once per new
 * address whether it holds a HLT, and when the guest reaches one with interrupts off (it would never wake)
 * the capture stops with 'halt'. rep string instructions give several DEBUG exits at the same pc; an OUT
 * exit comes with RIP already past the OUT and the next DEBUG exit after the following instruction (that
 * one gets no line: the watchdog counts it as lost).
 */
import { decodeExit, handleExit, type ExitContext, type StopReason } from './exits.js';
import { HaltDetector } from './debug/halt.js';
import { classifyInsn, INSN_CLASSES, isPortIo, MAX_INSN_BYTES } from './debug/insn-class.js';
import { translate64 } from './debug/page-walk.js';
import { StepWatchdog, type RearmMode, type StepWatchdogCounts } from './debug/step-watchdog.js';
import { SoftwareTrap } from './debug/sw-trap.js';
import { UserError } from '../../../src/errors.js';
import * as K from '../../kvm/ioctls.js';
import { KvmError, type GuestMemory, type KvmVcpu } from '../../kvm/kvm.js';
import * as libc from '../../kvm/libc.js';
import { REG_NAMES, REGS_SIZE, RUN, SREGS } from '../../kvm/structs.js';
import type { TraceWriter } from '../../trace-writer.js';

/** Slots of the control Int32Array shared with the main thread. */
export const CTRL_STOP = 0;
export const CTRL_STEPS = 1;
/** Set to 1 by the main thread (with a kick) to have the loop look whether the vCPU is halted for good. */
export const CTRL_PROBE = 2;
/** Int32 slots in the control array. */
export const CTRL_SLOTS = 3;
/** Stop codes in control[CTRL_STOP]. */
export const STOP_NONE = 0;
export const STOP_TIMEOUT = 1;
export const STOP_INTERRUPT = 2;
/** The main thread could not write trace.log (a full disk): the capture fails with that error. */
export const STOP_OUTPUT = 3;

/**
 * Steps between progress updates in control[CTRL_STEPS]. Few enough that the first update runs before V8
 * optimizes the step loop (at 4096 the first one threw the optimized loop away: a store it had never seen).
 */
const PROGRESS_EVERY = 256;
const HLT_OPCODE = 0xf4;
/** RFLAGS.IF: interrupts enabled. */
const RFLAGS_IF = 0x200n;

export type Mode = 'run' | 'step';
export type Clock = 'host' | 'steps';

export interface LoopOptions {
  vcpu: KvmVcpu;
  mem: GuestMemory;
  exits: ExitContext;
  mode: Mode;
  blockIrq: boolean;
  clock: Clock;
  /** Stop after this many steps (step mode); Infinity for no limit. */
  maxSteps: number;
  /** performance.now() at VM creation. */
  t0Ms: number;
  /** The entry RIP: the first trace line, for the instruction executed before the first DEBUG exit. */
  entryRip: bigint;
  trace?: TraceWriter;
  control: Int32Array;
  /**
   * Step mode with a trace window: run freely to a hardware breakpoint at this linear address, then
   * single-step from there (its first trace line is this address). Undefined: step from the entry.
   */
  traceFrom?: bigint;
  /** Step mode: stop (reason 'trace-until') once the instruction at this linear address is reached (its line is written). */
  traceUntil?: bigint;
  /** Asked after every port-I/O exit: true stops the capture (reason 'trace-until'), e.g. a BOOT_TIME marker seen. */
  untilMarker?: () => string | null;
  /**
   * How --trace-from is caught: 'hw' a DR0 execute breakpoint; 'sw' a trap written into guest code
   * (debug/sw-trap.ts); 'auto' (default) both, the breakpoint winning where it fires.
   */
  traceFromTrap?: TraceFromTrap;
  /** True when the kernel's code is in place before the guest runs (an ELF), so a software trap can be written. */
  codeInPlace?: boolean;
  /** Step mode: when to set KVM_SET_GUEST_DEBUG again (debug/step-watchdog.ts); default 'auto'. */
  rearm?: RearmMode;
}

export type TraceFromTrap = 'auto' | 'hw' | 'sw';

/** DR7 for one execute breakpoint in DR0: L0 (bit 0) enabled, R/W0 = 00 (execute) and LEN0 = 00 (bits 16-19). */
export const DR7_EXEC_BP0 = 0x1n;

/** kvm_guest_debug_arch.debugreg[0..7] for an execute breakpoint at `linear` (DR0) and nothing else. */
export function hwBreakpointRegs(linear: bigint): bigint[] {
  return [linear, 0n, 0n, 0n, 0n, 0n, 0n, DR7_EXEC_BP0];
}

export interface LoopResult {
  reason: StopReason;
  detail: string;
  /** RIP where the guest stopped. */
  rip: bigint;
  steps: number;
  exits: number;
  /** With traceFrom: host microseconds since VM creation when the breakpoint was hit (undefined: never). */
  windowStartUs?: number;
  /** With traceFrom: what caught it ('hw' breakpoint, 'sw' trap), null when never reached. */
  traceFromBy?: 'hw' | 'sw' | null;
  /** Why no software trap was armed for --trace-from in 'auto' (e.g. a bzImage decompressing itself). */
  traceFromNote?: string;
  /** Step mode: the watchdog's counts (every fallback taken). */
  watchdog?: StepWatchdogCounts;
}

export function runLoop(o: LoopOptions): LoopResult {
  const { vcpu, control } = o;
  const run = vcpu.run;
  // Run mode: KVM copies the GPRs into kvm_run at every exit (KVM_CAP_SYNC_REGS), so the RIP and RFLAGS
  // of a stop need no ioctl. Step mode does not: the DEBUG exit carries pc already, and the copy on each
  // of ~10^5 exits a second measured ~10% slower here (GET_REGS per step would halve the rate); a stop
  // there asks KVM_GET_REGS once.
  const regs = new RegsReader(vcpu, o.mode === 'run');
  const stepFlags = K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_SINGLESTEP | (o.blockIrq ? K.KVM_GUESTDBG_BLOCKIRQ : 0);
  // With a trace window the vCPU first runs at full speed to a hardware breakpoint (DR0/DR7 through
  // KVM_SET_GUEST_DEBUG), and only then starts stepping.
  // Where the breakpoint never fires (nested under TCG), a software trap in the guest's code catches it.
  const windowed = o.mode === 'step' && o.traceFrom !== undefined;
  const trapMode = o.traceFromTrap ?? 'auto';
  let trap: SoftwareTrap | null = null;
  let traceFromNote: string | undefined;
  if (windowed && trapMode !== 'hw') {
    const pa = o.codeInPlace ? physicalAddress(vcpu, o.mem, o.traceFrom!) : undefined;
    if (pa !== undefined) {
      trap = new SoftwareTrap(o.traceFrom!, pa);
      trap.arm(o.mem);
    } else {
      traceFromNote = o.codeInPlace
        ? `no software trap: 0x${o.traceFrom!.toString(16)} is not mapped by the boot page tables`
        : 'no software trap: the kernel decompresses itself in the guest, over any trap written now';
      if (trapMode === 'sw') throw new UserError(`--trace-from-trap sw: ${traceFromNote} (boot the ELF: --decompress host)`);
    }
  }
  if (windowed && trapMode !== 'sw') vcpu.setGuestDebug(K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_HW_BP, hwBreakpointRegs(o.traceFrom!));
  else if (o.mode === 'step' && !windowed) vcpu.setGuestDebug(stepFlags);
  let traceFromBy: 'hw' | 'sw' | null = null;
  const watchdog = o.mode === 'step' ? new StepWatchdog(o.rearm ?? 'auto', (va) => readGuestBytes(vcpu, o.mem, va, 15)) : null;
  const rearm = (): void => vcpu.setGuestDebug(stepFlags);
  const fromHi = windowed ? Number(o.traceFrom! >> 32n) : 0;
  const fromLo = windowed ? Number(o.traceFrom! & 0xffffffffn) : 0;
  const untilHi = o.traceUntil !== undefined ? Number(o.traceUntil >> 32n) : -1;
  const untilLo = o.traceUntil !== undefined ? Number(o.traceUntil & 0xffffffffn) : -1;
  const untilMarker = o.untilMarker;
  let windowStartUs: number | undefined;
  const trace = o.trace;
  const hostClock = o.clock === 'host';
  const decimals = hostClock ? 1 : 0;
  const t0 = o.t0Ms;
  // Node's global `performance` is a lazy getter: read once here, not on every step (it showed in the
  // step loop's profile, docs/performance.md).
  const clock = performance;
  const maxSteps = o.maxSteps;
  let steps = 0;
  let exits = 0;

  const stop = (reason: StopReason, detail: string, rip?: bigint): LoopResult => {
    Atomics.store(control, CTRL_STEPS, steps);
    const r: LoopResult = { reason, detail, rip: rip ?? regs.rip(), steps, exits };
    if (windowStartUs !== undefined) r.windowStartUs = windowStartUs;
    if (windowed) r.traceFromBy = traceFromBy;
    if (traceFromNote !== undefined) r.traceFromNote = traceFromNote;
    if (watchdog) r.watchdog = watchdog.counts;
    trap?.restore(o.mem); // never reached: leave the guest's code as it was
    return r;
  };

  if (o.mode === 'step' && !windowed && trace) {
    const e = o.entryRip;
    trace.event(hostClock ? (clock.now() - t0) * 1000 : 0, decimals, Number(e >> 32n), Number(e & 0xffffffffn));
    steps = 1;
  }
  if (o.mode === 'step' && !windowed) watchdog!.start(Number(o.entryRip >> 32n), Number(o.entryRip & 0xffffffffn));
  const haltedWithIrqsOff = (): boolean => (regs.rflags() & RFLAGS_IF) === 0n;

  // The stop flag is read before the first KVM_RUN and after every interrupted one: a stop request always
  // comes with immediate_exit and a signal, so KVM_RUN returns EINTR and the loop looks (no read per step).
  let requested = Atomics.load(control, CTRL_STOP);
  const halts = new HaltDetector();
  let stepping = o.mode === 'step' && !windowed;
  /** The first step of the --trace-from window, at hi:lo; a stop when that is the --trace-until address too. */
  const startWindow = (by: 'hw' | 'sw', hi: number, lo: number): LoopResult | null => {
    stepping = true;
    traceFromBy = by;
    vcpu.setGuestDebug(stepFlags);
    watchdog!.start(hi, lo);
    windowStartUs = (clock.now() - t0) * 1000;
    cr3CacheOf(vcpu).invalidate(); // the vCPU ran free until now
    trace?.event(hostClock ? windowStartUs : 0, decimals, hi, lo);
    steps = 1;
    return hi === untilHi && lo === untilLo ? stop('trace-until', '--trace-until reached at the first step') : null;
  };
  const stepper = o.mode === 'step' ? new Stepper(vcpu, control, trace, watchdog!, stepFlags, { hostClock, t0, maxSteps, untilHi, untilLo }) : null;
  for (;;) {
    if (requested !== STOP_NONE) return requestedStop(requested, stop, o, halts);
    if (stepping && steps >= maxSteps) return stop('max-steps', `--max-steps ${maxSteps} reached`);

    let err: number;
    if (stepping) {
      // The steps themselves, until an exit that is not a step's DEBUG exit or a stop condition (Stepper).
      stepper!.steps = steps;
      stepper!.exits = exits;
      const end = stepper!.run();
      steps = stepper!.steps;
      exits = stepper!.exits;
      if (end === STEP_MAX) return stop('max-steps', `--max-steps ${maxSteps} reached`);
      if (end === STEP_UNTIL || end === STEP_HLT) {
        const pc = (BigInt(stepper!.hi >>> 0) << 32n) | BigInt(stepper!.lo >>> 0);
        if (end === STEP_UNTIL) return stop('trace-until', `--trace-until address 0x${pc.toString(16)} reached`, pc);
        if (haltedWithIrqsOff()) return stop('halt', 'HLT with interrupts off', pc);
        if (watchdog!.onDebug(stepper!.hi, stepper!.lo, steps, (stepper!.flags >> FLAG_CLASS_SHIFT) - 1) === 'rearm') rearm();
        continue;
      }
      err = stepper!.err < 0 ? vcpu.runFailed() : 0; // STEP_EXIT: this KVM_RUN's outcome is handled below
    } else {
      err = vcpu.runOnce();
      exits++;
    }
    if (err !== 0) {
      // EINTR/EAGAIN: a kick from the main thread (or a stray signal, then the flags are still clear).
      requested = Atomics.load(control, CTRL_STOP);
      if (requested === STOP_NONE && Atomics.exchange(control, CTRL_PROBE, 0) !== 0) {
        // A halt probe, not a stop: let the next KVM_RUN enter the guest again.
        run.setUint8(RUN.immediateExit, 0);
        const v = probeHalt(o, halts);
        if (v.halted) return stop('halt', v.detail, v.rip);
        // Stepping: nothing ran since the last DEBUG exit, unless TF was lost and the guest ran on.
        if (stepping && watchdog!.onOtherExit('other', v.rip, steps) === 'rearm') rearm();
      }
      continue;
    }
    const reason = run.getUint32(RUN.exitReason, true);

    if (reason === K.KVM_EXIT_DEBUG) {
      // Stepping, the Stepper takes every DEBUG exit: here the vCPU runs free to --trace-from, and a DEBUG exit
      // is the breakpoint (anything else: go on). Its instruction has not executed yet (an execute
      // breakpoint is a fault), so it is the first line.
      const lo = run.getUint32(RUN.debugPc, true);
      const hi = run.getUint32(RUN.debugPc + 4, true);
      if (stepping || !windowed || hi !== fromHi || lo !== fromLo) continue;
      trap?.restore(o.mem); // the breakpoint fired before the trap's OUT ran: the original code goes back
      const end = startWindow('hw', hi, lo); // (its KVM_SET_GUEST_DEBUG disarms the breakpoint too)
      if (end) return end;
      continue;
    }
    if (reason === K.KVM_EXIT_INTR) continue;

    const exit = decodeExit(run, vcpu.runBytes);
    if (trap && !stepping && exit.io && trap.fired(exit.io, () => vcpu.getRegs().rip)) {
      // The software trap for --trace-from (debug/sw-trap.ts): complete the OUT without running the
      // guest, put the code back, return RIP to the target, and step from there.
      run.setUint8(RUN.immediateExit, 1);
      vcpu.runOnce();
      run.setUint8(RUN.immediateExit, 0);
      trap.restore(o.mem);
      const r = vcpu.getRegs();
      r.rip = trap.linear;
      vcpu.setRegs(r);
      const end = startWindow('sw', fromHi, fromLo);
      if (end) return end;
      continue;
    }
    if (stepping && (exit.io || exit.mmio)) {
      // RIP must be the instruction the last DEBUG exit announced; else steps were lost.
      if (watchdog!.onOtherExit(exit.io ? 'io' : 'mmio', regs.rip(), steps) === 'rearm') rearm();
    }
    const action = handleExit(exit, o.exits);
    if (action.kind === 'stop') return stop(action.reason, action.detail);
    if (untilMarker && reason === K.KVM_EXIT_IO) {
      const seen = untilMarker();
      if (seen !== null) return stop('trace-until', `--trace-until ${seen} seen on the console`);
    }
  }
}

function requestedStop(code: number, stop: (r: StopReason, d: string, rip?: bigint) => LoopResult, o: LoopOptions, halts: HaltDetector): LoopResult {
  if (code === STOP_INTERRUPT) return stop('interrupted', 'interrupted (SIGINT)');
  if (code === STOP_OUTPUT) return stop('interrupted', 'stopped: trace.log could not be written');
  // A guest halted with interrupts off that the probes missed (a timeout shorter than a probe period):
  // name it, as it would never have woken.
  const v = probeHalt(o, halts);
  if (v.halted) return stop('halt', `${v.detail}, found when --timeout stopped the vCPU`, v.rip);
  if (v.waiting) return stop('timeout', 'timeout reached (the vCPU waits in HLT for an interrupt)', v.rip);
  return stop('timeout', 'timeout reached', v.rip);
}

/** One halt probe between KVM_RUNs (debug/halt.ts): MP state, RIP, RFLAGS, and the byte before RIP if needed. */
function probeHalt(o: LoopOptions, halts: HaltDetector): ReturnType<HaltDetector['probe']> & { rip: bigint } {
  const r = o.vcpu.getRegs();
  const v = halts.probe({
    mpState: o.vcpu.getMpState(),
    rip: r.rip,
    rflags: r.rflags,
    byteBeforeRip: () => (r.rip > 0n ? byteAt(o.vcpu, o.mem, r.rip - 1n) : -1),
  });
  return { ...v, rip: r.rip };
}

/**
 * RIP and RFLAGS after an exit: from the synced registers in kvm_run when they were asked for that exit
 * (kvm_run.kvm_valid_regs, which callers change only right before a KVM_RUN), else KVM_GET_REGS into one
 * buffer kept for the purpose. Step mode asks for RIP at every port-I/O exit (the watchdog): the Stepper asks
 * KVM for the copy only on a KVM_RUN whose next instruction is an IN/OUT, which saves a KVM_GET_REGS (~7 us
 * here) per port-I/O exit without paying the copy on every step.
 */
class RegsReader {
  private readonly buf = Buffer.alloc(REGS_SIZE);

  constructor(private readonly vcpu: KvmVcpu, private readonly sync: boolean) {
    vcpu.run.setBigUint64(RUN.validRegs, sync ? BigInt(K.KVM_SYNC_X86_REGS) : 0n, true);
  }

  rip(): bigint {
    return this.synced() ? this.vcpu.run.getBigUint64(RUN.syncRip, true) : this.read(RIP_OFFSET);
  }

  rflags(): bigint {
    return this.synced() ? this.vcpu.run.getBigUint64(RUN.syncRflags, true) : this.read(RFLAGS_OFFSET);
  }

  /** Whether KVM copied the GPRs at the last exit: run mode always; step mode around port I/O (Stepper). */
  private synced(): boolean {
    return this.sync || (this.vcpu.run.getUint32(RUN.validRegs, true) & K.KVM_SYNC_X86_REGS) !== 0;
  }

  private read(offset: number): bigint {
    if (libc.ioctlPtr(this.vcpu.fd, K.KVM_GET_REGS, this.buf) < 0) throw new KvmError('KVM_GET_REGS', libc.errno());
    return this.buf.readBigUInt64LE(offset);
  }
}

/** Stepper.run() outcomes. */
const STEP_EXIT = 0, STEP_MAX = 1, STEP_UNTIL = 2, STEP_HLT = 3;

/**
 * Step mode's hot path: KVM_RUN, and for each step's DEBUG exit its trace line, progress and watchdog
 * check, until any other outcome, which runLoop handles: a KVM_RUN error or another exit (STEP_EXIT),
 * --max-steps (STEP_MAX), the --trace-until address (STEP_UNTIL) or a HLT (STEP_HLT: runLoop looks at
 * RFLAGS.IF, then does this step's watchdog check). A function of its own, small and running every one of
 * its paths each step, so V8 optimizes it within the first steps and never drops that code for a rare path
 * of runLoop (the first halt probe, a stop): in one function, runLoop's optimized code was thrown away twice
 * per demo boot and the first 10,000 steps ran at half speed (docs/performance.md, "Capture (KVM)").
 */
class Stepper {
  steps = 0;
  exits = 0;
  /** KVM_RUN's own result at STEP_EXIT (KvmVcpu.runRaw: 0, or -1 with errno set). */
  err = 0;
  /** The last step's address halves and addressFlags() (STEP_UNTIL, STEP_HLT). */
  hi = 0;
  lo = 0;
  flags = 0;
  private readonly kvmRun: DataView;
  private readonly clock = performance;

  constructor(
    private readonly vcpu: KvmVcpu,
    private readonly control: Int32Array,
    private readonly trace: TraceWriter | undefined,
    private readonly watchdog: StepWatchdog,
    private readonly stepFlags: number,
    private readonly o: { hostClock: boolean; t0: number; maxSteps: number; untilHi: number; untilLo: number },
  ) {
    this.kvmRun = vcpu.run;
  }

  run(): number {
    const { vcpu, kvmRun: run, trace, watchdog, control, clock } = this;
    const { hostClock, t0, maxSteps, untilHi, untilLo } = this.o;
    const decimals = hostClock ? 1 : 0;
    const cr3 = cr3CacheOf(vcpu);
    let steps = this.steps;
    let exits = this.exits;
    // Whatever ran before this call (another exit's handling, lost steps) may have switched page tables.
    cr3.invalidate();
    let prevFlags = 0;
    // Whether kvm_run asks KVM to copy the GPRs at the exit (RegsReader): for a KVM_RUN whose next
    // instruction, as the last DEBUG exit announced it, is an IN/OUT, whose KVM_EXIT_IO the watchdog checks
    // against RIP. The field changes only right before a KVM_RUN, so it always says whether the last exit's
    // registers are in kvm_run (a stop before the next KVM_RUN, --max-steps, must not read a stale copy).
    let syncing = run.getUint32(RUN_VALID_REGS, true) !== 0;
    let wantSync = false;
    for (;;) {
      if (steps >= maxSteps) return this.end(STEP_MAX, steps, exits);
      if (wantSync !== syncing) {
        syncing = wantSync;
        run.setUint32(RUN_VALID_REGS, syncing ? K.KVM_SYNC_X86_REGS : 0, true);
      }
      // KVM_RUN's -1 (a signal: the halt probe's kick) leaves by the path every other exit takes; runLoop
      // reads errno (KvmVcpu.runFailed), with no libc call in between.
      const err = vcpu.runRaw();
      exits++;
      if (err !== 0 || run.getUint32(RUN_EXIT_REASON, true) !== K.KVM_EXIT_DEBUG) {
        this.err = err;
        return this.end(STEP_EXIT, steps, exits);
      }
      const lo = run.getUint32(RUN_DEBUG_PC, true);
      const hi = run.getUint32(RUN_DEBUG_PC + 4, true);
      // Only an instruction KVM emulates (a MOV to CR3 among them) or one that leaves stepping can have
      // switched page tables since CR3 was read (Cr3Cache).
      if ((prevFlags >> FLAG_CLASS_SHIFT) - 1 <= CLS_TF_CLEAR) cr3.invalidate();
      // One cache lookup gives the line's symbol, whether it is a HLT and its class (addressFlags).
      const flags = trace ? trace.event(hostClock ? (clock.now() - t0) * 1000 : steps, decimals, hi, lo) : 0;
      steps++;
      if ((steps & (PROGRESS_EVERY - 1)) === 0) Atomics.store(control, CTRL_STEPS, steps);
      if ((lo === untilLo && hi === untilHi) || (flags & FLAG_HLT) !== 0) {
        this.hi = hi;
        this.lo = lo;
        this.flags = flags;
        return this.end(lo === untilLo && hi === untilHi ? STEP_UNTIL : STEP_HLT, steps, exits);
      }
      if (watchdog.onDebug(hi, lo, steps, (flags >> FLAG_CLASS_SHIFT) - 1) === 'rearm') {
        vcpu.setGuestDebug(this.stepFlags);
        cr3.invalidate(); // steps may have been lost
      }
      wantSync = (flags & FLAG_PORT_IO) !== 0;
      prevFlags = flags;
    }
  }

  private end(outcome: number, steps: number, exits: number): number {
    this.steps = steps;
    this.exits = exits;
    return outcome;
  }
}

const RUN_EXIT_REASON = RUN.exitReason;
const RUN_VALID_REGS = RUN.validRegs;
const RUN_DEBUG_PC = RUN.debugPc;

/** Byte offsets of rip and rflags in struct kvm_regs. */
const RIP_OFFSET = REG_NAMES.indexOf('rip') * 8;
const RFLAGS_OFFSET = REG_NAMES.indexOf('rflags') * 8;

/** addressFlags(): the instruction is a HLT (its opcode byte: HLT takes no prefixes). */
export const FLAG_HLT = 1;
/** addressFlags(): the instruction accesses an I/O port (debug/insn-class.ts isPortIo). */
export const FLAG_PORT_IO = 2;
/** addressFlags() >> FLAG_CLASS_SHIFT: 1 + the instruction's index in INSN_CLASSES (debug/insn-class.ts). */
export const FLAG_CLASS_SHIFT = 2;

/** INSN_CLASSES index of 'tf-clear': classes up to it (and 'emulated') make the Stepper read CR3 again. */
const CLS_TF_CLEAR = INSN_CLASSES.indexOf('tf-clear');

/**
 * The guest's CR3, read with KVM_GET_SREGS once and kept while the Stepper sees only instructions that
 * cannot change it: KVM_GET_SREGS costs ~40 us on the software-backed KVM here (docs/kvm-facts.md), and step
 * mode reads guest code at every address it meets for the first time (addressFlags). CR3 changes only
 * through a MOV to CR3, which KVM emulates ('emulated' in debug/insn-class.ts), or where steps were lost;
 * the Stepper forgets the value after either, and whenever it hands an exit to runLoop.
 */
class Cr3Cache {
  private value = -1n;

  constructor(private readonly vcpu: KvmVcpu) {}

  get(): bigint {
    if (this.value < 0n) this.value = this.vcpu.getSregs().readBigUInt64LE(SREGS.cr3);
    return this.value;
  }

  invalidate(): void {
    this.value = -1n;
  }
}

const cr3Caches = new WeakMap<KvmVcpu, Cr3Cache>();

function cr3CacheOf(vcpu: KvmVcpu): Cr3Cache {
  let c = cr3Caches.get(vcpu);
  if (!c) cr3Caches.set(vcpu, (c = new Cr3Cache(vcpu)));
  return c;
}

/**
 * What the step loop needs to know about the instruction at virtual `va`, read once per distinct address
 * (the trace writer keeps it in its address cache): FLAG_HLT, FLAG_PORT_IO, and its class for the step watchdog. Reads
 * through the CR3 the Stepper keeps (Cr3Cache).
 */
export function addressFlags(vcpu: KvmVcpu, mem: GuestMemory, va: bigint): number {
  const bytes = readGuestBytes(vcpu, mem, va, MAX_INSN_BYTES, cr3CacheOf(vcpu).get());
  return (bytes[0] === HLT_OPCODE ? FLAG_HLT : 0) | (isPortIo(bytes) ? FLAG_PORT_IO : 0) |
    ((INSN_CLASSES.indexOf(classifyInsn(bytes)) + 1) << FLAG_CLASS_SHIFT);
}

/** Guest-physical address of virtual `va` through the vCPU's current page tables, or undefined. */
export function physicalAddress(vcpu: KvmVcpu, mem: GuestMemory, va: bigint): number | undefined {
  const pa = translate64(regionViews(mem).reader, vcpu.getSregs().readBigUInt64LE(SREGS.cr3), va);
  return pa !== undefined && pa >= mem.gpa && pa < mem.gpa + mem.size ? pa : undefined;
}

/**
 * Up to `n` guest bytes at virtual `va` (stops at the first unmapped byte; one walk per page), through the
 * page tables at `knownCr3` when the caller has it, else the vCPU's CR3 now (KVM_GET_SREGS).
 */
export function readGuestBytes(vcpu: KvmVcpu, mem: GuestMemory, va: bigint, n: number, knownCr3?: bigint): number[] {
  const out: number[] = [];
  const views = regionViews(mem);
  const cr3 = knownCr3 ?? vcpu.getSregs().readBigUInt64LE(SREGS.cr3);
  // One walk per page the bytes touch (two at most for an instruction), the rest in plain numbers: this
  // runs once per distinct address in step mode, early, before V8 has optimized it.
  let i = 0;
  while (i < n) {
    const pa = translate64(views.reader, cr3, va + BigInt(i));
    if (pa === undefined) break;
    const inPage = Math.min(n - i, 4096 - (pa & 0xfff));
    for (let k = 0; k < inPage; k++) {
      const b = views.u8(pa + k);
      if (b < 0) return out;
      out.push(b);
    }
    i += inPage;
  }
  return out;
}

/** Region views of each guest memory, for page walks and code reads. */
const memViews = new WeakMap<GuestMemory, RegionViews>();

function regionViews(mem: GuestMemory): RegionViews {
  let v = memViews.get(mem);
  if (!v) memViews.set(mem, (v = new RegionViews(mem)));
  return v;
}

/** Bytes of guest RAM per view. */
const REGION_BYTES = 1 << 20;

/**
 * Guest RAM through views of 1 MiB regions, each made when first read: a view of all of it cost 0.3-3 ms
 * and a forced garbage collection (kvm.ts GuestMemory), and the first page walk of a step-mode capture
 * made one, between its first two steps (docs/performance.md, "Capture (KVM)").
 */
class RegionViews {
  private readonly views: (DataView | undefined)[] = [];
  /** A 64-bit little-endian reader (undefined outside RAM), for translate64. */
  readonly reader = (pa: number): bigint | undefined => {
    const mem = this.mem;
    if (pa < mem.gpa || pa + 8 > mem.gpa + mem.size) return undefined;
    const off = pa - mem.gpa;
    if (off % REGION_BYTES > REGION_BYTES - 8) {
      // Across two regions (page-table entries are 8-byte aligned and never are): byte by byte.
      let v = 0n;
      for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(this.u8(pa + k));
      return v;
    }
    return this.region(off).getBigUint64(off % REGION_BYTES, true);
  };

  constructor(private readonly mem: GuestMemory) {}

  /** The byte at guest-physical `pa`, or -1 outside RAM. */
  u8(pa: number): number {
    const mem = this.mem;
    if (pa < mem.gpa || pa >= mem.gpa + mem.size) return -1;
    const off = pa - mem.gpa;
    return this.region(off).getUint8(off % REGION_BYTES);
  }

  private region(off: number): DataView {
    const r = Math.floor(off / REGION_BYTES);
    let v = this.views[r];
    if (!v) {
      const start = r * REGION_BYTES;
      const u = this.mem.view(this.mem.gpa + start, Math.min(REGION_BYTES, this.mem.size - start));
      v = this.views[r] = new DataView(u.buffer, u.byteOffset, u.byteLength);
    }
    return v;
  }
}

/**
 * The guest byte at virtual address `va` through the vCPU's current page tables (a full 4-level walk
 * over all guest RAM: debug/page-walk.ts), or -1 when unmapped.
 */
export function byteAt(vcpu: KvmVcpu, mem: GuestMemory, va: bigint): number {
  const pa = translate64(regionViews(mem).reader, vcpu.getSregs().readBigUInt64LE(SREGS.cr3), va);
  return pa === undefined ? -1 : mem.byteAt(pa);
}

