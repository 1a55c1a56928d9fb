/**
 * Progress of a QEMU step capture (issue 13 item 7): steps/s, percent of --max-steps and ETA on a terminal
 * (the CLI under `script`, a pseudo-terminal), nothing when stderr is a pipe; and the progress line's
 * arithmetic on fixed numbers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Progress, eta } from '../src/progress.js';
import { CLI, runCli } from './helpers.js';
import { defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

describe('the progress line', () => {
  it('gives rate, percent of the count to reach and ETA when stepping', () => {
    const p = new Progress('capture (QEMU step)', false, 'steps', 20_000);
    // 12,288 steps in 10.874 s: 1,130 steps/s; 7,712 left take 6.8 s.
    expect(p.line(0, 0, 12_288, 10.874)).toBe('capture (QEMU step): 12,288 steps, 1,130 steps/s, 61.4% of 20,000, ETA 7 s');
    expect(new Progress('capture', false, 'steps').line(0, 0, 500, 2)).toBe('capture: 500 steps, 250 steps/s');
  });

  it('keeps the reading line (percent of bytes, MB/s) and adds its ETA', () => {
    expect(new Progress('trace.log', false).line(50e6, 200e6, 1_000_000, 2)).toBe('trace.log: 25.0% 1,000,000 lines, 500,000 lines/s, 25 MB/s, ETA 6 s');
  });

  it('writes ETAs a person reads', () => {
    expect([eta(6.6), eta(185), eta(3720), eta(Infinity), eta(-1)]).toEqual(['7 s', '3 min 05 s', '1 h 02 min', '?', '?']);
  });
});

const hasScript = spawnSync('script', ['--version']).status === 0;
const work = mkdtempSync(join(tmpdir(), 'boot-trace-progress-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describeNeeds(firstMissing(hasScript ? null : '`script` not found (apt-get install bsdutils)', qemuMissing(), defaultKernelMissing()), 'QEMU step capture progress', () => {
  const args = ['capture', '--engine', 'qemu', '--mode', 'step', '--max-steps', '10000', '--no-summary', '--timeout', '120'];

  it('shows steps/s, percent of --max-steps and ETA on a terminal', () => {
    const out = join(work, 'tty');
    const r = spawnSync('script', ['-qec', `${process.execPath} ${CLI} ${args.join(' ')} --out ${out}`, '/dev/null'], { encoding: 'utf8', timeout: 150_000 });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\r\x1b\[Kcapture \(QEMU step\): 4,096 steps, [\d,]+ steps\/s, 41\.0% of 10,000, ETA \d+ s/);
    expect(r.stdout).toMatch(/\r\x1b\[Kcapture \(QEMU step\): 8,192 steps, [\d,]+ steps\/s, 81\.9% of 10,000, ETA \d+ s/);
  }, 160_000);

  it('stays quiet when stderr is not a terminal', () => {
    const r = runCli([...args, '--out', join(work, 'pipe')], { timeoutMs: 150_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('capture (QEMU step):');
    expect(r.stderr).not.toContain('\r');
  }, 160_000);
});
