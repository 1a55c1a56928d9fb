/**
 * The step loop: one trace line per executed instruction, over any Stepper (stepper.ts), until the step
 * limit, a stuck step, the guest's end or an abort. Line i is the instruction at rip before step i
 * executes it, as in the KVM engine: N lines = N instructions, the first being where stepping began.
 * A step the stepper says executed nothing (Stepper.keep false) gets no line.
 *
 *   const r = await stepLoop(stepper, { maxSteps: 20000, clock: 'steps', trace, ... });
 *   r.stop   // { reason: 'max-steps', detail: '--max-steps 20000 reached' }
 */
import { HOST_CLOCK_DECIMALS } from '../../trace-writer.js';
import type { Stepper } from './stepper.js';

/** What the loop writes to: TraceWriter.event's shape (`t`, decimals, the address's two 32-bit halves). */
export interface StepSink {
  event(t: number, decimals: number, hi: number, lo: number): unknown;
}

export interface StepLoopOptions {
  /** Lines to record; Infinity: no limit. */
  maxSteps: number;
  /** 'host': t is now() (microseconds); 'steps': the instruction index. */
  clock: 'host' | 'steps';
  now: () => number;
  trace: StepSink;
  /** Milliseconds one step may take before the guest counts as stuck. */
  stepTimeoutMs: number;
  /** Checked before each step: true ends the loop (stop null). */
  aborted: () => boolean;
  onProgress?: (steps: number) => void;
  /** A power of two; default 4096. */
  progressEvery?: number;
  /** For the stuck detail: the Qqemu.sstep flags in force. */
  sstepFlags: number;
}

export interface StepLoopResult {
  steps: number;
  /** The last rip recorded or reached (null if no step). */
  lastRip: bigint | null;
  /** Why the loop stopped by itself; null when it was aborted or the guest ended. */
  stop: { reason: 'max-steps' | 'halt' | 'timeout'; detail: string } | null;
  /** The guest ended during stepping (the stepper's raw answer). */
  ended: string | null;
  /** Steps the stepper said executed nothing (no line). */
  noProgress: number;
}

export async function stepLoop(s: Stepper, o: StepLoopOptions): Promise<StepLoopResult> {
  const hostClock = o.clock === 'host';
  const decimals = hostClock ? HOST_CLOCK_DECIMALS : 0;
  const progressMask = (o.progressEvery ?? 4096) - 1;
  let steps = 0;
  let noProgress = 0;
  let lastRip: bigint | null = null;
  let pc = await s.pc();
  let record = true;
  for (;;) {
    if (record) {
      lastRip = pc;
      o.trace.event(hostClock ? o.now() : steps, decimals, Number(pc >> 32n), Number(pc & 0xffffffffn));
      steps++;
      if (steps >= o.maxSteps) return { steps, lastRip, stop: { reason: 'max-steps', detail: `--max-steps ${o.maxSteps} reached` }, ended: null, noProgress };
      if ((steps & progressMask) === 0) o.onProgress?.(steps);
    }
    if (o.aborted()) return { steps, lastRip, stop: null, ended: null, noProgress };
    const a = await s.step(o.stepTimeoutMs);
    if (a.kind === 'ended') return { steps, lastRip, stop: null, ended: a.raw, noProgress };
    if (a.kind === 'stuck') {
      const stop = a.atHlt
        ? { reason: 'halt' as const, detail: `HLT at step ${steps} did not complete within ${o.stepTimeoutMs} ms (interrupts masked while stepping: Qqemu.sstep=${o.sstepFlags})` }
        : { reason: 'timeout' as const, detail: `step ${steps} did not complete within ${o.stepTimeoutMs} ms` };
      return { steps, lastRip: a.pc ?? lastRip, stop, ended: null, noProgress };
    }
    pc = a.pc;
    record = await s.keep(pc, lastRip!);
    if (!record) noProgress++;
  }
}
