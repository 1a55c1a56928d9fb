/**
 * A bare trace-mode capture (what `npm start` runs here) uses the QEMU 10 that scripts/setup.sh unpacked into
 * the cache, so its syscall rows name processes (issue 10 item 3); $BOOT_TRACE_QEMU still overrides it; the
 * profile and the summary say which QEMU ran and what chose it (capture/engines/qemu-trace/qemu-choice.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliJson, runCli } from './helpers.js';
import { busyboxMissing, commandMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

const QEMU10 = join(process.env.BOOT_TRACE_CACHE ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boot-trace'), 'qemu10', 'qemu-system-x86_64');
const qemu10Missing = !existsSync(QEMU10)
  ? `QEMU 10 not unpacked at ${QEMU10} (bash scripts/qemu10.sh; needs bookworm-backports)`
  : /version 10\./.test(spawnSync(QEMU10, ['--version'], { encoding: 'utf8' }).stdout ?? '') ? null : `${QEMU10} does not run as QEMU 10`;
const BOOT_MS = 300_000;

interface Row { syscall: string; process: string; duration_us: number | null }

describeNeeds(firstMissing(qemu10Missing, qemuMissing(), commandMissing('cc', 'gcc'), defaultKernelMissing(), busyboxMissing()), 'trace mode picks the cached QEMU 10 by default', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bt-qemu-choice-'));
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a bare capture runs QEMU 10 from the cache, says so, and its syscall rows name their processes', () => {
    const out = join(tmp, 'bare');
    // No --mode, no --engine: the default capture here is a whole-boot trace under QEMU.
    const r = runCli(['capture', '--out', out], { env: { BOOT_TRACE_QEMU: '' }, timeoutMs: BOOT_MS });
    expect(r.status, r.stderr).toBe(0);
    const p = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
    expect(p.trace.qemu).toMatchObject({ binary: QEMU10, chosen_by: 'qemu10-cache' });
    expect(p.trace.qemu.version).toMatch(/version 10\./);
    expect(p.trace.plugin_api).toBe(4);
    expect(r.stderr).toContain(`(${QEMU10}, chosen by qemu10-cache)`);
    // The default job's summary answers "which process made the system calls" (issue 10 item 3).
    expect(r.stderr).toMatch(/^System calls by process \(registers read at each entry: QEMU 10\)\n +\d+ {2}\/init$/m);
    const rows = cliJson<Row[]>(['syscalls', out]);
    expect(rows.length).toBeGreaterThan(100);
    const named = rows.filter((x) => x.process !== '' && x.process !== '[unknown]').length;
    expect(named / rows.length).toBeGreaterThan(0.95);
    expect(new Set(rows.map((x) => x.process))).toContain('/init');
  }, BOOT_MS);

  it('BOOT_TRACE_QEMU still overrides it: the system QEMU, no process names', () => {
    const out = join(tmp, 'system');
    const r = runCli(['capture', '--mode', 'trace', '--out', out, '--no-summary'], { env: { BOOT_TRACE_QEMU: 'qemu-system-x86_64' }, timeoutMs: BOOT_MS });
    expect(r.status, r.stderr).toBe(0);
    const p = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
    expect(p.trace.qemu.chosen_by).toBe('BOOT_TRACE_QEMU');
    expect(p.trace.qemu.binary).not.toBe(QEMU10);
    expect(p.trace.qemu.version).not.toMatch(/version 10\./);
    const rows = cliJson<Row[]>(['syscalls', out]);
    expect(rows.length).toBeGreaterThan(100);
    expect(rows.every((x) => x.process === '')).toBe(true);
  }, BOOT_MS);
});
