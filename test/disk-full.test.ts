/**
 * A full disk during a capture (issue 15): one line naming the file that could not be written, a non-zero
 * exit, and no file that looks complete but is not: trace.log and console.log end at their last whole line
 * (readable to there), and no profile.json claims a capture that ended normally. The disk is a small tmpfs
 * mounted for the test, so ENOSPC is real.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { kvmMissing } from './capture-helpers.js';
import { runCli } from './helpers.js';
import { describeNeeds, firstMissing, qemuMissing, defaultKernelMissing, busyboxMissing } from './preconditions.js';

const mounts: string[] = [];
/** A tmpfs of `size` mounted on a new folder, or null when this machine does not let us mount one. */
function smallDisk(size: string): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'bt-full-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  if (r.status !== 0) return null;
  mounts.push(dir);
  return dir;
}
afterAll(() => {
  for (const m of mounts) spawnSync('umount', [m], { stdio: 'ignore' });
});

const probe = smallDisk('64k');
const noMount = probe ? null : 'cannot mount a tmpfs here (needs root and mount permission) to fill a disk';

/** The checks every full-disk capture must pass. */
function expectCleanFailure(r: ReturnType<typeof runCli>, out: string, file: string): void {
  expect(r.status, r.stderr).toBe(1);
  const what = file === 'trace.log' ? 'the trace' : 'the console';
  expect(r.stderr.trim().split('\n').at(-1)!.startsWith(`boot-trace: ${join(out, file)}: cannot write ${what} (ENOSPC)`), r.stderr).toBe(true);
  expect(r.stderr).not.toMatch(/\n\s+at |Node\.js v/);
  const names = readdirSync(out);
  expect(names.filter((n) => n.includes('.tmp'))).toEqual([]);
  expect(names).not.toContain('profile.json');
  for (const name of names.filter((n) => n.endsWith('.log'))) {
    const text = readFileSync(join(out, name), 'latin1');
    if (text.length > 0) expect(text.endsWith('\n'), `${name} ends at a whole line`).toBe(true);
  }
}

describeNeeds(firstMissing(noMount, kvmMissing()), 'a full disk under the KVM engine', () => {
  it('step mode: one line naming trace.log, the trace cut at its last whole line and readable', () => {
    const disk = smallDisk('300k')!;
    const out = join(disk, 'cap');
    const r = runCli(['capture', '--guest', 'demo', '--mode', 'step', '--out', out, '--timeout', '60'], { timeoutMs: 90_000 });
    expectCleanFailure(r, out, 'trace.log');
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/it keeps \d+ bytes of whole lines$/);
    // Every line that was kept parses: the analyzers read it without a single malformed line.
    const hot = runCli(['hot-functions', join(out, 'trace.log'), '--strict', '--format', 'json']);
    expect(hot.status, hot.stderr).toBe(0);
    expect((JSON.parse(hot.stdout) as unknown[]).length).toBeGreaterThan(0);
  }, 120_000);
});

describeNeeds(firstMissing(noMount, qemuMissing(), defaultKernelMissing(), busyboxMissing()), 'a full disk under the QEMU engine', () => {
  it('run mode: one line naming console.log, QEMU stopped, the console cut at its last whole line', () => {
    const disk = smallDisk('12k')!;
    const out = join(disk, 'cap');
    mkdirSync(out);
    const r = runCli(['capture', '--engine', 'qemu', '--mode', 'run', '--out', out, '--timeout', '120'], { timeoutMs: 180_000 });
    expectCleanFailure(r, out, 'console.log');
    expect(existsSync(join(out, 'console.log'))).toBe(true);
  }, 200_000);
});
