/**
 * Each KVM capture frees its VM when it ends, even in a process that goes on (benchmark runs captures one
 * after another in one process). KVM keeps a VM while any mapping of a vCPU's kvm_run exists; each live VM
 * has a `kvm-pit/<pid>` kernel thread (its in-kernel PIT), which is what this counts. Before the fix, a
 * benchmark of N boots held N VMs at its end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { kvmMissing } from './capture-helpers.js';
import { CLI, testOutput } from './helpers.js';
import { commandMissing, describeNeeds, firstMissing } from './preconditions.js';

const RUNS = 6;

function pitThreads(pid: number): number {
  const ps = spawnSync('ps', ['-eLo', 'comm'], { encoding: 'utf8' });
  return ps.stdout.split('\n').filter((l) => l.trim() === `kvm-pit/${pid}`).length;
}

describeNeeds(firstMissing(kvmMissing(), commandMissing('ps', 'procps'), commandMissing('cc', 'build-essential')), 'KVM engine: VMs are freed after each capture', () => {
  it(`benchmark --guest demo --runs ${RUNS} never holds more than 2 VMs at a time`, async () => {
    const out = testOutput('kvm-vm-release');
    const child = spawn(process.execPath, [CLI, 'benchmark', '--guest', 'demo', '--engine', 'kvm', '--runs', String(RUNS), '--warmup', '0', '--format', 'csv', '--out', out, '--force'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let most = 0;
    const poll = setInterval(() => (most = Math.max(most, pitThreads(child.pid!))), 50);
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(poll);
    expect(status, stderr).toBe(0);
    // One VM per capture while it runs; the previous one may still be on its way out when the next starts.
    expect(most).toBeGreaterThanOrEqual(1);
    expect(most).toBeLessThanOrEqual(2);
  }, 120_000);
});
