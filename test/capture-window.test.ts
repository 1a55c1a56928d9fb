/**
 * Trace windows under /dev/kvm on the demo guest (exact and fast, unlike a real kernel): --trace-from runs
 * to a hardware breakpoint and steps from there, --trace-until stops at an address or a BOOT_TIME marker.
 * Expected counts come from samples/guest/work.h.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { demoConstants, kvmMissing } from './capture-helpers.js';
import { runCli, testOutput } from './helpers.js';
import { describeNeeds } from './preconditions.js';

const missing = kvmMissing();

function windowCapture(name: string, args: string[]): { lines: string[]; profile: any; stderr: string; status: number | null } {
  const dir = testOutput('capture-window', name);
  const r = runCli(['capture', '--guest', 'demo', '--clock', 'steps', '--timeout', '60', '--no-summary', '--out', dir, ...args], { timeoutMs: 90_000 });
  const profile = JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8'));
  const lines = readFileSync(join(dir, 'trace.log'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  return { lines, profile, stderr: r.stderr, status: r.status };
}

describeNeeds(missing, 'trace windows on the demo guest', () => {
  const c = demoConstants();

  it('--trace-from work_medium --trace-until work_nested: exactly work_medium and the way back', () => {
    const r = windowCapture('medium', ['--trace-from', 'work_medium', '--trace-until', 'work_nested']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.profile.mode).toBe('step');
    expect(r.profile.exit.reason).toBe('trace-until');
    expect(r.profile.step.trace_from).toMatchObject({ spec: 'work_medium' }); // profile v2: step.trace_from / step.trace_until (was trace_window)
    expect(r.profile.step.trace_until).toBe('work_nested');
    expect(r.lines[0]).toBe('0 work_medium in section .text');
    expect(r.lines[r.lines.length - 1]).toMatch(/^\d+ work_nested in section \.text$/);
    // mov + (dec, jnz) x iterations + ret, each one line.
    const inMedium = r.lines.filter((l) => / work_medium( \+ \d+)? in section/.test(l)).length;
    expect(inMedium).toBe(2 + 2 * c.WORK_MEDIUM_ITERS!);
    expect(r.lines.some((l) => / work_small/.test(l))).toBe(false);
    expect(r.profile.step.steps).toBe(r.lines.length);
  });

  it('--trace-until marker:mounts_done stops once the guest prints that marker', () => {
    const r = windowCapture('marker', ['--trace-from', 'work_small', '--trace-until', 'marker:mounts_done']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.profile.exit.reason).toBe('trace-until');
    expect(r.profile.exit.detail).toBe('--trace-until marker:mounts_done seen on the console');
    expect(r.lines[0]).toBe('0 work_small in section .text');
    expect(r.lines.some((l) => / work_medium/.test(l))).toBe(false);
    expect(r.profile.guest_markers_us.mounts_done).toBeGreaterThan(0);
    expect(r.profile.guest_markers_us.init_ok).toBeUndefined();
  });

  it('an address works like its symbol, and a window implies step mode', () => {
    const sym = windowCapture('by-name', ['--trace-from', 'work_nested', '--max-steps', '100']);
    const addr = /trace-from: (0x[0-9a-f]+)/.exec(readFileSync(join(testOutput('capture-window', 'by-name'), 'trace.log'), 'utf8'))![1]!;
    const byAddr = windowCapture('by-address', ['--trace-from', addr, '--max-steps', '100']);
    expect(byAddr.lines).toEqual(sym.lines);
    expect(sym.lines).toHaveLength(100);
  });

  it('names an unknown symbol in one line', () => {
    const r = runCli(['capture', '--guest', 'demo', '--trace-from', 'no_such_fn', '--out', testOutput('capture-window', 'bad')]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe("boot-trace: --trace-from no_such_fn: no such symbol in the kernel's symbol table");
  });
});
