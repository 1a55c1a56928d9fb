/**
 * How a capture ends, whatever the engine: SIGTERM and SIGHUP end it like Ctrl-C (files flushed,
 * profile.json says 'interrupted' and which signal, status 128 + the signal's number); a kernel panic is
 * its own exit reason with the panic line and status 2; --append adds to the engine's default command
 * line; a reset the kernel did not announce is not reported as a power-off.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readProfile, type Profile } from '../capture/output/profile.js';
import { kvmMissing, tinyElf } from './capture-helpers.js';
import { CLI, runCli, testOutput } from './helpers.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

const dir = testOutput('capture-ends');

/** Starts `capture`, sends `signal` after `afterMs`, and gives the exit status, stderr and profile. */
async function signalled(args: string[], out: string, signal: NodeJS.Signals, afterMs: number): Promise<{ code: number | null; stderr: string; profile: Profile }> {
  const child = spawn(process.execPath, [CLI, 'capture', '--out', out, ...args]);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // Listen before the signal: a capture that ended by itself first must fail the test, not hang it.
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  await new Promise((r) => setTimeout(r, afterMs));
  child.kill(signal);
  const code = await exited;
  return { code, stderr, profile: readProfile(join(out, 'profile.json')) };
}

describeNeeds(kvmMissing(), 'signals end a KVM capture like Ctrl-C', () => {
  const spin = join(dir, 'spin.elf');
  writeFileSync(spin, tinyElf(Buffer.from([0xeb, 0xfe]), 0x200000));

  for (const [signal, status] of [['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    it(`${signal}: status ${status}, reason interrupted naming the signal, the trace flushed, the summary printed`, async () => {
      const out = join(dir, `kvm-${signal}`);
      const r = await signalled(['--kernel', spin, '--mode', 'step', '--timeout', '60'], out, signal, 2000);
      expect(r.code, r.stderr).toBe(status);
      expect(r.profile.exit).toMatchObject({ reason: 'interrupted', signal });
      expect(r.profile.exit.detail).toContain(`(${signal})`);
      const lines = readFileSync(join(out, 'trace.log'), 'utf8').trimEnd().split('\n').filter((l) => !l.startsWith('#'));
      expect(lines.length).toBe(r.profile.step!.steps);
      expect(r.profile.step!.steps).toBeGreaterThan(100);
      expect(r.stderr).toMatch(/^\[boot-profile\] exit: interrupted /m);
      expect(r.stderr).toContain(`Files in ${out}:`);
    }, 30_000);
  }
});

describeNeeds(firstMissing(qemuMissing(), defaultKernelMissing(), busyboxMissing()), 'QEMU captures of the default kernel: signals, panic, --append, an unannounced reset', () => {
  it('SIGTERM stops QEMU and records why', async () => {
    const out = join(dir, 'qemu-SIGTERM');
    // The appliance's workload sleeps, so the guest is still running when the signal comes, however fast the machine.
    const r = await signalled(['--engine', 'qemu', '--workload', 'sleep 600', '--timeout', '120', '--no-summary'], out, 'SIGTERM', 3000);
    expect(r.code, r.stderr).toBe(143);
    expect(r.profile).toMatchObject({ engine: 'qemu', exit: { reason: 'interrupted', signal: 'SIGTERM' } });
    expect(r.profile.console_lines).toBeGreaterThan(0);
  }, 60_000);

  it('a kernel panic is exit reason panic with the panic line, status 2; --append adds to the default command line', () => {
    const out = join(dir, 'qemu-panic');
    // The appliance has no /nope: the kernel falls back to mounting a root it does not have, and panics.
    const r = runCli(['capture', '--engine', 'qemu', '--append', 'rdinit=/nope', '--out', out, '--timeout', '120'], { timeoutMs: 150_000 });
    expect(r.status, r.stderr).toBe(2);
    const p = readProfile(join(out, 'profile.json'));
    expect(p.exit.reason).toBe('panic');
    expect(p.exit.detail).toMatch(/^Kernel panic - not syncing: VFS: Unable to mount root fs/);
    expect(p.cmdline).toBe('console=ttyS0 reboot=t panic=-1 nokaslr rdinit=/nope');
    expect(p.setup!.cmdline_source).toBe('default+append');
    expect(r.stderr).toMatch(/^\[boot-profile\] exit: panic: Kernel panic - not syncing/m);
  }, 160_000);

  it('a guest that dies before its console (8 MiB) is a reset, not "guest powered off"', () => {
    const out = join(dir, 'qemu-8mib');
    const r = runCli(['capture', '--engine', 'qemu', '--memory', '8', '--out', out, '--timeout', '60', '--no-summary'], { timeoutMs: 90_000 });
    expect(r.status, r.stderr).toBe(0);
    const p = readProfile(join(out, 'profile.json'));
    expect(p.exit.reason).toBe('reset');
    expect(p.exit.detail).toMatch(/^guest reset without a kernel restart or power-off line/);
  }, 100_000);
});
