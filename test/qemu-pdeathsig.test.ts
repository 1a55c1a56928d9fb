/**
 * `kill -9` of boot-trace during a QEMU capture takes QEMU (and GNU time around it) with it: each level runs
 * under `setpriv --pdeathsig KILL` (capture/engines/qemu/pdeathsig.ts). A guest that sleeps would otherwise
 * keep QEMU running for 10 minutes. The work folder a killed run leaves is removed by the next run.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { CLI, runCli, testOutput } from './helpers.js';
import { busyboxMissing, commandMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing, runs } from './preconditions.js';

/** Processes whose command line contains `needle` (pids). */
function processesWith(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(needle)) pids.push(Number(name));
    } catch {
      /* ended meanwhile */
    }
  }
  return pids;
}

const isQemu = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0]!.endsWith('qemu-system-x86_64');
  } catch {
    return false;
  }
};

const setprivMissing = commandMissing('setpriv', 'util-linux') ?? (runs('setpriv', ['--pdeathsig', 'KILL', 'true']) ? null : 'setpriv without --pdeathsig (util-linux >= 2.33)');

describeNeeds(firstMissing(setprivMissing, qemuMissing(), defaultKernelMissing(), busyboxMissing()), 'kill -9 of boot-trace during a QEMU capture', () => {
  it('leaves no QEMU running (within 2 s), and the next run removes the killed run\'s work folder', async () => {
    const out = join(testOutput('qemu-pdeathsig'), 'cap');
    const child = spawn(process.execPath, [CLI, 'capture', '--engine', 'qemu', '--workload', 'sleep 600', '--out', out, '--timeout', '300', '--no-summary'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    // QEMU's serial FIFO lives in /tmp/boot-trace-qemu-<boot-trace's pid>-XXXXXX: unique to this run.
    const needle = `boot-trace-qemu-${child.pid}-`;
    let qemu: number[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      qemu = processesWith(needle).filter(isQemu);
      // Killed once the guest has printed something: QEMU is up and running the guest.
      if (qemu.length > 0 && existsSync(join(out, 'console.log')) && readFileSync(join(out, 'console.log'), 'latin1').length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(qemu.length, 'QEMU started under this capture').toBe(1);
    const workDirs = readdirSync(tmpdir()).filter((n) => n.startsWith(needle));
    expect(workDirs.length).toBe(1);
    child.kill('SIGKILL');
    await exited;
    let left = processesWith(needle);
    const until = Date.now() + 2000;
    while (left.length > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      left = processesWith(needle);
    }
    expect(left, 'QEMU and GNU time gone within 2 s of the kill').toEqual([]);
    // The next QEMU capture sweeps the dead run's folder.
    expect(existsSync(join(tmpdir(), workDirs[0]!))).toBe(true);
    const r = runCli(['capture', '--engine', 'qemu', '--out', join(out, '..', 'next'), '--no-summary', '--timeout', '60'], { env: { BOOT_TRACE_QEMU: '' }, timeoutMs: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(tmpdir(), workDirs[0]!))).toBe(false);
  }, 150_000);
});
