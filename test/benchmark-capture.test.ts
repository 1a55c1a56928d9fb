/**
 * `benchmark` boots through the same path as `capture` (prepareCapture + runCapture): for the same options,
 * each benchmark run's profile.json has the same fields as `capture`'s, the same configuration (engine,
 * kernel, initrd, command line, memory, timeout, setup record) and passes the same schema check. The
 * adapter benchmark used to have wrote no `setup` record and booted QEMU with 512 MiB and another command
 * line: any of that coming back fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { validateProfile } from '../capture/output/profile.js';
import { kvmMissing } from './capture-helpers.js';
import { runCli, testOutput } from './helpers.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

type Json = Record<string, unknown>;

/** Every key path of a JSON value (`exit.reason`, `setup.steps_us.find_kernel`...), sorted. */
function paths(v: unknown, prefix = ''): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [];
  return Object.entries(v as Json).flatMap(([k, x]) => [prefix + k, ...paths(x, `${prefix}${k}.`)]).sort();
}

const read = (dir: string): Json => JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8')) as Json;

/** The configuration part of a profile: what the same options must reproduce (timings and outcomes left out). */
function configuration(p: Json): Json {
  const s = p.setup as Json;
  const pick = (o: Json, keys: string[]): Json => Object.fromEntries(keys.map((k) => [k, o[k]]));
  return {
    ...pick(p, ['format', 'version', 'engine', 'mode', 'clock', 'kernel', 'initrd', 'cmdline', 'memory_mib', 'timeout_us']),
    engine_choice: pick(s.engine as Json, ['asked', 'chosen', 'reason']),
    kernel_source: s.kernel,
    decompress: pick(s.decompress as Json, ['mode', 'booted']),
    initrd: s.initrd,
    symbols: pick(s.symbols as Json, ['source', 'file']),
    cmdline_source: s.cmdline_source,
  };
}

function compare(name: string, options: string[], timeoutMs: number): void {
  const bench = testOutput('benchmark-capture', `${name}-benchmark`);
  const b = runCli(['benchmark', ...options, '--runs', '2', '--warmup', '0', '--out', bench, '--format', 'json'], { timeoutMs });
  expect(b.status, b.stderr).toBe(0);
  const cap = testOutput('benchmark-capture', `${name}-capture`);
  const c = runCli(['capture', ...options, '--out', cap, '--no-summary'], { timeoutMs });
  expect(c.status, c.stderr).toBe(0);
  const captured = read(cap);
  expect(validateProfile(captured)).toEqual([]);
  for (const run of ['run-1', 'run-2']) {
    const p = read(join(bench, run));
    expect(validateProfile(p), run).toEqual([]);
    // Same fields; setup.steps_us may differ only by steps that were cached on one side (a first download).
    const strip = (xs: string[]): string[] => xs.filter((x) => !x.startsWith('setup.steps_us.'));
    expect(strip(paths(p)), run).toEqual(strip(paths(captured)));
    expect(configuration(p), run).toEqual(configuration(captured));
  }
}

describeNeeds(kvmMissing(), 'benchmark --engine kvm on the demo guest goes through runCapture', () => {
  it('each run has the profile fields and configuration of `capture --guest demo --engine kvm`', () => {
    compare('kvm-demo', ['--guest', 'demo', '--engine', 'kvm'], 120_000);
  }, 200_000);
});

describeNeeds(firstMissing(qemuMissing(), defaultKernelMissing(), busyboxMissing()), 'benchmark --engine qemu on the default kernel goes through runCapture', () => {
  it('each run has the profile fields and configuration of `capture --engine qemu`', () => {
    compare('qemu-default', ['--engine', 'qemu'], 300_000);
  }, 700_000);
});
