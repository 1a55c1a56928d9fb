/**
 * Single-stepping that cannot silently lose steps. KVM_GUESTDBG_SINGLESTEP sets RFLAGS.TF and expects a
 * DEBUG exit after every instruction, but TF can vanish:
 *   - KVM emulates an instruction (a CR access on SVM without NRIPS or decode assists, MMIO) and writes
 *     RFLAGS back without TF (KVM adds TF back only while RIP equals the RIP at the last
 *     KVM_SET_GUEST_DEBUG: arch/x86/kvm/x86.c __kvm_set_rflags);
 *   - the guest loads RFLAGS itself (POPF, IRET: verify_cpu's `push $0; popf`).
 * The guest then runs on unstepped until some other exit. The watchdog decides, exit by exit:
 *   - after a DEBUG exit that follows an 'emulated' or 'tf-clear' instruction (insn-class.ts), or after an
 *     MMIO exit: set KVM_SET_GUEST_DEBUG again (re-arm) before the next KVM_RUN, so TF is back;
 *   - any other exit while stepping (port I/O, a probe's EINTR): RIP must still be the instruction the
 *     last DEBUG exit announced; if not, steps were lost (counted, with the gap) and it re-arms;
 *   - a DEBUG exit farther than one instruction (15 bytes) after a 'plain' instruction or an I/O exit: a
 *     late DEBUG exit (or an interrupt/exception delivered there), counted and re-armed.
 *   - mode 'always': re-arm after every DEBUG exit (exact on any KVM, about 2.5x slower here).
 * Pure over the exit sequence it is fed (test/step-watchdog.test.ts); the run loop does the ioctls.
 */
import type { KvmStepWatchdog } from '../../../output/profile.js';
import { classifyInsn, INSN_CLASSES, MAX_INSN_BYTES, type InsnClass } from './insn-class.js';

export type RearmMode = 'auto' | 'always';

/** Gaps kept in full for profile.json (the count covers all). */
export const MAX_GAPS = 20;

export interface StepGap {
  kind: 'lost' | 'late';
  /** The instruction the last DEBUG exit announced (hex): for 'lost', the first one with no trace line. */
  expected: string;
  /** Where the guest was found instead (hex): the next trace line's address, or RIP at the exit that showed it. */
  found: string;
  /** Steps recorded before the gap. */
  at_step: number;
}

/** Counters for profile.json and the summary. */
export interface StepWatchdogCounts {
  mode: RearmMode;
  /** Re-arms after an instruction KVM may emulate, or after an MMIO exit. */
  rearm_emulated: number;
  /** Re-arms after an instruction that loads RFLAGS (POPF, IRET, INT n, SYSCALL...). */
  rearm_tf_clear: number;
  /** Non-DEBUG exits (or probes) that found RIP away from the announced instruction: steps lost. */
  lost: number;
  /** DEBUG exits more than one instruction on: a late DEBUG exit, or an interrupt/exception delivered. */
  late: number;
  /** Re-arms in 'always' mode. */
  rearm_always: number;
  gaps: StepGap[];
}

export type StepAction = 'ok' | 'rearm';

/** INSN_CLASSES indexes the fast path of onDebug() compares against. */
const CLS_TF_CLEAR = INSN_CLASSES.indexOf('tf-clear');
const CLS_PLAIN = INSN_CLASSES.indexOf('plain');

const hex = (a: bigint): string => '0x' + a.toString(16);

/**
 * Whether hi:lo is at most one instruction after prevHi:prevLo: same high half, 0..15 bytes further (a carry
 * into the high half is not worth a case; 0 is the same instruction again: each iteration of a rep-prefixed
 * string instruction traps).
 */
const oneInsnOn = (prevHi: number, prevLo: number, hi: number, lo: number): boolean => {
  const d = lo - prevLo;
  return hi === prevHi && d >= 0 && d <= MAX_INSN_BYTES;
};

const toBig = (hi: number, lo: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

/**
 * Addresses travel as two 32-bit halves (hi, lo), as the run loop reads them from kvm_run, so a step
 * costs no BigInt; classes are cached by the low half (with the high half checked), like trace-writer.ts.
 */
export class StepWatchdog {
  /** The instruction the last DEBUG exit announced (about to run); expHi < 0: none yet. */
  private expHi = -1;
  private expLo = 0;
  /** The announced instruction's class (an index into INSN_CLASSES) when the caller gave it; -1: look it up. */
  private expCls = -1;
  private readonly always: boolean;
  readonly counts: StepWatchdogCounts;
  /**
   * Set by an exit between two DEBUG exits: what ran is known without looking at the instruction.
   * 'io': an IN/OUT exit with RIP at the instruction (KVM completes it on the next KVM_RUN);
   * 'io-done': an IN/OUT exit with RIP already past it (the software-backed KVM of docs/kvm-facts.md),
   * after which the next DEBUG exit must announce exactly that RIP.
   */
  private last: 'emulated' | 'io' | 'io-done' | null = null;
  private readonly cache = new Map<number, { hi: number; cls: InsnClass }>();

  /**
   * `readInsn(va)`: up to 15 bytes of guest code at virtual `va` (fewer or none when unmapped); asked once
   * per distinct address.
   */
  constructor(mode: RearmMode, private readonly readInsn: (va: bigint) => ArrayLike<number>) {
    this.counts = { mode, rearm_emulated: 0, rearm_tf_clear: 0, lost: 0, late: 0, rearm_always: 0, gaps: [] };
    this.always = mode === 'always';
  }

  /** Stepping starts with hi:lo as the next instruction to run. */
  start(hi: number, lo: number): void {
    this.expHi = hi >>> 0;
    this.expLo = lo >>> 0;
    this.expCls = -1;
    this.last = null;
  }

  classOf(hi: number, lo: number): InsnClass {
    const e = this.cache.get(lo | 0);
    if (e !== undefined && e.hi === hi >>> 0) return e.cls;
    const cls = classifyInsn(this.readInsn(toBig(hi, lo)));
    if (e === undefined) this.cache.set(lo | 0, { hi: hi >>> 0, cls });
    return cls;
  }

  /**
   * A DEBUG exit announced hi:lo as the next instruction; `steps` recorded so far. `cls`: that instruction's
   * class as an index into INSN_CLASSES when the caller already has it (the run loop reads it from the trace
   * writer's address cache, the one lookup a step makes), else -1 and the watchdog looks it up when needed.
   */
  onDebug(hi: number, lo: number, steps: number, cls = -1): StepAction {
    hi >>>= 0;
    lo >>>= 0;
    const prevHi = this.expHi;
    const prevLo = this.expLo;
    const prevCls = this.expCls;
    this.expHi = hi;
    this.expLo = lo;
    this.expCls = cls;
    const last = this.last;
    this.last = null;
    // The common step, decided on ints alone: no other exit since the last DEBUG exit, the caller gave the
    // class, and it is one that keeps TF. (Right after KVM_RUN every memory line a step touches is a cache
    // miss: no string compares or array reads here; docs/performance.md, "Capture (KVM)".)
    if (last === null && prevCls > CLS_TF_CLEAR && prevHi >= 0 && !this.always) {
      if (prevCls !== CLS_PLAIN || oneInsnOn(prevHi, prevLo, hi, lo)) return 'ok';
    }
    if (this.always) {
      this.counts.rearm_always++;
      return 'rearm';
    }
    if (prevHi < 0) return 'ok';
    let ran: InsnClass | 'io' | 'io-done' | null = last;
    if (last === 'io-done') {
      if (hi === prevHi && lo === prevLo) return 'ok';
      // The instruction after the IN/OUT ran without a DEBUG exit: one step with no trace line, counted.
      // That instruction itself ran stepped (this DEBUG exit is its trap), so single-step is set again only
      // if it is one that may clear TF, as after any step (the software-backed KVM here loses the step after
      // every OUT it completes, 369 times per demo boot; a KVM_SET_GUEST_DEBUG each cost ~1% of the boot).
      this.gap('lost', toBig(prevHi, prevLo), toBig(hi, lo), steps);
      ran = this.classOf(prevHi, prevLo);
      if (ran !== 'emulated' && ran !== 'tf-clear') return 'ok';
    }
    ran ??= prevCls >= 0 ? INSN_CLASSES[prevCls]! : this.classOf(prevHi, prevLo);
    if (ran === 'emulated') {
      this.counts.rearm_emulated++;
      return 'rearm';
    }
    if (ran === 'tf-clear') {
      this.counts.rearm_tf_clear++;
      return 'rearm';
    }
    if ((ran === 'plain' || ran === 'io') && !oneInsnOn(prevHi, prevLo, hi, lo)) {
      this.gap('late', toBig(prevHi, prevLo), toBig(hi, lo), steps);
      return 'rearm';
    }
    return 'ok';
  }

  /**
   * Any exit but a step's DEBUG exit while stepping. `rip`: RIP now. `kind`: 'io' (port I/O: RIP is the
   * IN/OUT, completed on the next KVM_RUN), 'mmio' (RIP is the access, emulated by KVM: TF is lost
   * afterwards), 'other' (a probe's EINTR and the like: nothing ran since the last DEBUG exit).
   */
  onOtherExit(kind: 'io' | 'mmio' | 'other', rip: bigint, steps: number): StepAction {
    let action: StepAction = 'ok';
    if (this.expHi >= 0) {
      const expected = toBig(this.expHi, this.expLo);
      const oneOn = rip > expected && rip <= expected + BigInt(MAX_INSN_BYTES);
      if (oneOn && ((kind === 'other' && this.last === 'io') || kind === 'io')) {
        // The IN/OUT has completed (a probe's KVM_RUN completed the pending one; or this KVM reports an
        // I/O exit with RIP already past it): one instruction on, none lost so far.
        this.expHi = Number(rip >> 32n);
        this.expLo = Number(rip & 0xffffffffn);
        this.expCls = -1;
        this.last = kind === 'io' ? 'io-done' : null;
        return 'ok';
      }
      if (rip !== expected) {
        this.gap('lost', expected, rip, steps);
        this.expHi = Number(rip >> 32n);
        this.expLo = Number(rip & 0xffffffffn);
        this.expCls = -1;
        action = 'rearm';
      }
    }
    if (kind === 'mmio') this.last = 'emulated';
    else if (kind === 'io') this.last = 'io';
    return action;
  }

  private gap(kind: 'lost' | 'late', expected: bigint, found: bigint, steps: number): void {
    this.counts[kind]++;
    if (this.counts.gaps.length < MAX_GAPS) this.counts.gaps.push({ kind, expected: hex(expected), found: hex(found), at_step: steps });
  }
}

/** The counts as profile.json's `kvm.step_watchdog` (gaps as one-line strings: `lost 0x... -> 0x... at step N`). */
export function toProfilePart(w: StepWatchdogCounts): KvmStepWatchdog {
  const { gaps, ...counts } = w;
  return { ...counts, gaps: gaps.map((g) => `${g.kind} ${g.expected} -> ${g.found} at step ${g.at_step}`) };
}
