/**
 * Why a QEMU step capture ended, from what each part saw: a pure function (its table test is in
 * test/qemu-step-stop.test.ts), so the order of precedence is written down once:
 *   1. the user's abort                                  -> interrupted
 *   2. `after: 'run'` past --max-steps                   -> how the guest then ended (QEMU's run)
 *   3. the step loop's own stop (max-steps, halt, stuck) -> that
 *   4. QEMU's timeout                                    -> timeout (saying whether --trace-from was reached)
 *   5. the guest ended, or the session closed            -> how QEMU ended (reset, shutdown, internal-error)
 *   6. anything else went wrong in the gdb session        -> internal-error with the message
 */
import type { StopReason } from '../../output/profile.js';

export interface StepStopFacts {
  /** The user's (or caller's) abort signal fired. */
  aborted: boolean;
  after: 'kill' | 'run';
  /** The step loop's own stop, if it stopped by itself. */
  loop: { reason: StopReason; detail: string } | null;
  steps: number;
  /** How the QEMU process ended (qemu-process.ts). */
  run: { reason: StopReason; status: number | null; signal: string | null; consoleLines: number };
  timeoutS: number;
  /** --trace-from as given, and whether its breakpoint was reached. */
  traceFrom: string | undefined;
  traceFromReached: boolean;
  /** The gdb session: no error, closed (the guest or QEMU went away), or failed with a message. */
  session: { kind: 'ok' } | { kind: 'closed' } | { kind: 'failed'; message: string };
}

export function decideStepStop(f: StepStopFacts): { reason: StopReason; detail: string } {
  const notReached = f.traceFrom !== undefined && !f.traceFromReached ? `, before ${f.traceFrom} was reached` : '';
  if (f.aborted) return { reason: 'interrupted', detail: `interrupted after ${f.steps} steps` };
  if (f.after === 'run' && f.loop?.reason === 'max-steps') return { reason: f.run.reason, detail: `${f.loop.detail}; then the guest ran on: ${f.run.reason}` };
  if (f.loop !== null) return { reason: f.loop.reason, detail: f.loop.detail };
  if (f.run.reason === 'timeout') return { reason: 'timeout', detail: `timeout (${f.timeoutS} s) after ${f.steps} steps${notReached}` };
  if (f.session.kind !== 'failed') {
    return {
      reason: f.run.reason === 'internal-error' && f.steps === 0 && f.run.consoleLines === 0 ? 'internal-error' : f.run.reason,
      detail: `QEMU ended after ${f.steps} steps${notReached} (${f.run.signal ? `killed by ${f.run.signal}` : `status ${f.run.status}`})`,
    };
  }
  return { reason: 'internal-error', detail: `gdbstub: ${f.session.message}` };
}
