/**
 * `boot-trace benchmark`: --until and --vary parsing, one run's figures read from a real QEMU appliance
 * console, and real benchmarks: the demo guest under KVM with --vary, and the acceptance run
 * `benchmark --engine qemu --runs 3 --warmup 1` (default kernel and appliance under TCG).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { describeSample, welchTest } from '../analyzers/benchmark.js';
import { parseProfile } from '../capture/output/profile.js';
import { parseUntil, parseVary, readRun, type ConfigurationResult } from '../src/commands/benchmark.js';
import { kvmMissing } from './capture-helpers.js';
import { runCli, sample, testOutput } from './helpers.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

describe('--until', () => {
  it('takes marker:STAGE, exit and regex:RE', () => {
    expect(parseUntil('marker:ready')).toEqual({ kind: 'marker', stage: 'ready' });
    expect(parseUntil('exit')).toEqual({ kind: 'exit' });
    const r = parseUntil('regex:Run /init|Freeing unused');
    expect(r.kind === 'regex' && r.re.test('Run /init as init process')).toBe(true);
  });

  it('refuses anything else in one line', () => {
    expect(() => parseUntil('ready')).toThrow(/--until "ready": expected marker:STAGE/);
    expect(() => parseUntil('regex:(')).toThrow(/bad regex/);
  });
});

describe('--vary', () => {
  it("cmdline+=quiet| appends to the base command line, then keeps it as it is", () => {
    expect(parseVary(['cmdline+=quiet|'], 'console=ttyS0')).toEqual([
      { label: 'cmdline+=quiet', set: { cmdline: 'console=ttyS0 quiet' } },
      { label: "cmdline+=''", set: { cmdline: 'console=ttyS0' } },
    ]);
  });

  it('cmdline=A|B and kernel=A|B replace; several --vary give the cross product', () => {
    const c = parseVary(['kernel=k1|k2', 'cmdline=a|b'], undefined);
    expect(c.map((x) => x.label)).toEqual(['kernel=k1 cmdline=a', 'kernel=k1 cmdline=b', 'kernel=k2 cmdline=a', 'kernel=k2 cmdline=b']);
    expect(c[3]!.set).toEqual({ kernel: 'k2', cmdline: 'b' });
  });

  it('no --vary: one default configuration', () => {
    expect(parseVary([], 'x')).toEqual([{ label: 'default', set: {} }]);
  });

  it('refuses bad specs', () => {
    expect(() => parseVary(['memory=1|2'], 'x')).toThrow(/expected cmdline\+=A\|B/);
    expect(() => parseVary(['kernel+=x|'], 'x')).toThrow(/\+= applies to cmdline only/);
    expect(() => parseVary(['cmdline=a'], 'x')).toThrow(/at least two values/);
  });
});

describe('one run read back from a real QEMU appliance console', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bt-bench-run-'));
  const text = gunzipSync(readFileSync(sample('console', 'qemu-tcg-6.1-appliance-initcall-debug.log.gz'))).toString('utf8');
  writeFileSync(join(dir, 'console.log'), text);
  // A version-1 profile (no guest_memory in it) read through the tolerant reader: memory comes from free -m.
  const profile = parseProfile(JSON.stringify({ phases: { total: 9_100_000 }, exit: { reason: 'shutdown' }, peak_rss_bytes: 200 * 1024 * 1024 }), 'profile.json');
  // The expected stamps, found with plain regexes on the same text.
  const stampOf = (re: RegExp): number => Number(re.exec(text)![1]);

  it('marker:ready is the host stamp of the BOOT_TIME:ready line; memory from free -m and the profile', async () => {
    const f = await readRun(1, { outDir: dir, profile }, parseUntil('marker:ready'));
    expect(f.ms).toBeCloseTo(stampOf(/^(\d+\.\d) BOOT_TIME:ready:/m) / 1000, 6);
    expect(f.guest_memory).toMatchObject({ total_mib: 218, used_mib: 16, free_mib: 192 });
    expect(f.peak_rss_mib).toBe(200); // profile v2 gives MiB (was peak_rss_bytes)
    expect(f.exit).toBe('shutdown');
    const names = f.stages.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['firmware', 'kernel', 'BOOT_TIME:init_entry', 'BOOT_TIME:ready']));
  });

  it('regex: the first matching line; exit: the profile total', async () => {
    const re = await readRun(1, { outDir: dir, profile }, parseUntil('regex:Run /init as init process'));
    expect(re.ms).toBeCloseTo(stampOf(/^(\d+\.\d) \[[\s\d.]+\] Run \/init as init process/m) / 1000, 6);
    const ex = await readRun(1, { outDir: dir, profile }, parseUntil('exit'));
    expect(ex.ms).toBe(9100);
  });

  it('a point the run never reached is a one-line error naming the console', async () => {
    await expect(readRun(2, { outDir: dir, profile }, parseUntil('marker:nowhere'))).rejects.toThrow(/console\.log: run 2 never reached a BOOT_TIME:nowhere: line \(the boot ended with "shutdown"\)/);
  });
});

/** Checks a configuration's figures against its own runs. */
function checkFigures(c: ConfigurationResult, runs: number): void {
  expect(c.runs).toHaveLength(runs);
  const s = describeSample(c.runs.map((r) => r.ms));
  expect(c.mean_ms).toBeCloseTo(s.mean, 2);
  expect(c.sd_ms!).toBeCloseTo(s.sd!, 2);
  expect(c.min_ms).toBe(Math.min(...c.runs.map((r) => r.ms)));
  expect(c.max_ms).toBe(Math.max(...c.runs.map((r) => r.ms)));
  expect(c.min_ms).toBeLessThanOrEqual(c.median_ms);
  expect(c.median_ms).toBeLessThanOrEqual(c.max_ms);
  for (const r of c.runs) expect(existsSync(join(r.out, 'console.log')), r.out).toBe(true);
}

describeNeeds(kvmMissing(), 'benchmark --guest demo --engine kvm --vary (real boots)', () => {
  it("compares 'cmdline+=quiet|' side by side, with the change against the first configuration", () => {
    const out = testOutput('benchmark', 'demo-kvm');
    const r = runCli(['benchmark', '--guest', 'demo', '--engine', 'kvm', '--cmdline', 'console=ttyS0', '--runs', '3', '--warmup', '1',
      '--vary', 'cmdline+=quiet|', '--out', out, '--format', 'json'], { timeoutMs: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    const configs = JSON.parse(r.stdout) as ConfigurationResult[];
    expect(configs.map((c) => c.config)).toEqual(['cmdline+=quiet', "cmdline+=''"]);
    expect(configs.map((c) => c.cmdline)).toEqual(['console=ttyS0 quiet', 'console=ttyS0']);
    for (const c of configs) checkFigures(c, 3);
    expect(configs[0]!.change_pct).toBeNull();
    expect(configs[1]!.change_pct!).toBeCloseTo(((configs[1]!.mean_ms - configs[0]!.mean_ms) / configs[0]!.mean_ms) * 100, 1);
    // Welch's t-test of the two configurations' runs decides the *, not the size of the change.
    expect(configs[0]!.p_value).toBeNull();
    expect(configs[1]!.p_value!).toBeCloseTo(welchTest(configs[0]!.runs.map((x) => x.ms), configs[1]!.runs.map((x) => x.ms))!.p, 2);
    expect(configs[1]!.significant).toBe(configs[1]!.p_value! < 0.05);
    // Every stage has its SD over the runs.
    for (const s of configs[0]!.stages) expect(s.sd_ms, s.name).toEqual(expect.any(Number));
    const table = runCli(['benchmark', '--guest', 'demo', '--engine', 'kvm', '--cmdline', 'console=ttyS0', '--runs', '2', '--warmup', '0',
      '--vary', 'cmdline+=quiet|', '--out', testOutput('benchmark', 'demo-kvm-table'), '--format', 'table'], { timeoutMs: 180_000 });
    expect(table.status, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/ change +p +guest used/);
    expect(table.stdout).toContain("p: Welch's t-test of the runs, two-sided; * = p < 0.05");
    expect(table.stdout).toMatch(/per-stage duration \(ms\): mean ± sample SD/);
    expect(table.stdout).toMatch(/BOOT_TIME:init_ok +\d+\.\d{3} ± \d+\.\d{3}/);
    // The demo's markers are stages; the VMM's peak RSS is a mean over runs; no free -m in the demo.
    expect(configs[0]!.stages.map((s) => s.name)).toEqual(expect.arrayContaining(['BOOT_TIME:init_entry', 'BOOT_TIME:init_ok']));
    expect(configs[0]!.peak_rss_mib!).toBeGreaterThan(10);
    expect(configs[0]!.guest_used_mib).toBeNull();
    // One folder per configuration, a capture per boot (warm-ups included).
    const folders = readdirSync(out).sort();
    expect(folders).toEqual(["1-cmdline+=quiet", "2-cmdline+=_"]);
    expect(readdirSync(join(out, folders[0]!)).sort()).toEqual(['run-1', 'run-2', 'run-3', 'warmup-1']);
  }, 400_000);
});

describeNeeds(firstMissing(qemuMissing(), defaultKernelMissing(), busyboxMissing()), 'benchmark --engine qemu --runs 3 --warmup 1 (default kernel and appliance, TCG)', () => {
  it('reports time to BOOT_TIME:ready, per-stage means, guest memory and QEMU peak RSS', () => {
    const out = testOutput('benchmark', 'qemu');
    const r = runCli(['benchmark', '--engine', 'qemu', '--runs', '3', '--warmup', '1', '--out', out, '--format', 'json'], { timeoutMs: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout) as ConfigurationResult;
    checkFigures(c, 3);
    expect(c.until).toBe('marker:ready');
    for (const run of c.runs) {
      expect(run.exit).toBe('shutdown');
      const ready = /^(\d+\.\d) BOOT_TIME:ready:/m.exec(readFileSync(join(run.out, 'console.log'), 'utf8'));
      expect(run.ms).toBeCloseTo(Number(ready![1]) / 1000, 2);
      expect(run.guest_memory!.total_mib).toBeGreaterThan(100);
      // The QEMU engine writes the same figures into profile.json.
      expect(JSON.parse(readFileSync(join(run.out, 'profile.json'), 'utf8')).guest_memory).toEqual(run.guest_memory);
    }
    expect(c.guest_used_mib!).toBeGreaterThan(0);
    expect(c.guest_total_mib!).toBeGreaterThan(c.guest_used_mib!);
    expect(c.peak_rss_mib!).toBeGreaterThan(32);
    expect(c.stages.map((s) => s.name)).toEqual(expect.arrayContaining(['kernel', 'userspace', 'BOOT_TIME:init_entry', 'BOOT_TIME:ready']));
    expect(readdirSync(out).sort()).toEqual(['run-1', 'run-2', 'run-3', 'warmup-1']);
  }, 620_000);
});
