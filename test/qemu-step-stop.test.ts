/**
 * The QEMU step engine's stop decision (capture/engines/qemu/stop-decision.ts), as a table: each row is
 * what the parts saw, and the reason and detail the profile gets.
 */
import { describe, expect, it } from 'vitest';
import { decideStepStop, type StepStopFacts } from '../capture/engines/qemu/stop-decision.js';

const base: StepStopFacts = {
  aborted: false,
  after: 'kill',
  loop: null,
  steps: 120,
  run: { reason: 'shutdown', status: 0, signal: null, consoleLines: 40 },
  timeoutS: 60,
  traceFrom: undefined,
  traceFromReached: false,
  session: { kind: 'ok' },
};

const rows: Array<[string, Partial<StepStopFacts>, { reason: string; detail: RegExp }]> = [
  ['an abort wins over everything', { aborted: true, loop: { reason: 'max-steps', detail: '--max-steps 5 reached' }, run: { ...base.run, reason: 'timeout' } },
    { reason: 'interrupted', detail: /^interrupted after 120 steps$/ }],
  ["after 'run' past --max-steps: how the guest then ended", { after: 'run', loop: { reason: 'max-steps', detail: '--max-steps 300 reached' } },
    { reason: 'shutdown', detail: /^--max-steps 300 reached; then the guest ran on: shutdown$/ }],
  ["after 'run' but a halt: the halt", { after: 'run', loop: { reason: 'halt', detail: 'HLT at step 7' } }, { reason: 'halt', detail: /^HLT at step 7$/ }],
  ['the loop stopped by itself: its reason', { loop: { reason: 'max-steps', detail: '--max-steps 20000 reached' } }, { reason: 'max-steps', detail: /^--max-steps 20000 reached$/ }],
  ['a stuck step', { loop: { reason: 'timeout', detail: 'step 9 did not complete within 10000 ms' } }, { reason: 'timeout', detail: /^step 9 did not complete/ }],
  ["QEMU's timeout before --trace-from", { run: { ...base.run, reason: 'timeout' }, steps: 0, traceFrom: 'start_kernel' },
    { reason: 'timeout', detail: /^timeout \(60 s\) after 0 steps, before start_kernel was reached$/ }],
  ["QEMU's timeout after --trace-from was reached", { run: { ...base.run, reason: 'timeout' }, traceFrom: 'start_kernel', traceFromReached: true },
    { reason: 'timeout', detail: /^timeout \(60 s\) after 120 steps$/ }],
  ['the guest reset during stepping', { run: { ...base.run, reason: 'reset' } }, { reason: 'reset', detail: /^QEMU ended after 120 steps \(status 0\)$/ }],
  ['the session closed under us: how QEMU ended', { session: { kind: 'closed' }, run: { ...base.run, reason: 'internal-error', status: 1 } },
    { reason: 'internal-error', detail: /^QEMU ended after 120 steps \(status 1\)$/ }],
  ['QEMU killed by a signal', { run: { ...base.run, reason: 'internal-error', status: null, signal: 'SIGKILL' } }, { reason: 'internal-error', detail: /\(killed by SIGKILL\)$/ }],
  ['a gdb protocol failure', { session: { kind: 'failed', message: 'no rip register' } }, { reason: 'internal-error', detail: /^gdbstub: no rip register$/ }],
];

describe('QEMU step stop decision', () => {
  for (const [name, facts, want] of rows) {
    it(name, () => {
      const got = decideStepStop({ ...base, ...facts });
      expect(got.reason).toBe(want.reason);
      expect(got.detail).toMatch(want.detail);
    });
  }
});
