/**
 * The capture folder contract (capture/output/): every engine's folder read back through the one reader
 * (readProfile, readCaptureConsole, findCaptureFiles), profile.json of each checked against the documented
 * schema (validateProfile, capture/output/profile-schema.ts), the tolerant reader's answers to older,
 * newer, broken and extended profiles, and `--out` refusing a non-empty folder unless --force.
 * Real engines: the demo guest under KVM (run and step), the default kernel + appliance under QEMU TCG
 * (run) and the demo guest stepped under QEMU's gdbstub.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConsoleLine } from '../analyzers/console-lines.js';
import { findCaptureFiles, prepareOutDir, readCaptureConsole } from '../capture/output/folder.js';
import { parseProfile, readProfile, validateProfile, writeProfile, type Profile } from '../capture/output/profile.js';
import { schemaPaths } from '../capture/output/profile-schema.js';
import { kvmMissing } from './capture-helpers.js';
import { runCli, sample, testOutput } from './helpers.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

/** Reads a folder through the module the way every command does, and checks the parts against each other. */
async function readBack(dir: string): Promise<{ profile: Profile; lines: number }> {
  const files = findCaptureFiles(dir);
  expect(files.profile).toBe(join(dir, 'profile.json'));
  expect(files.console).toBe(join(dir, 'console.log'));
  const profile = readProfile(files.profile!);
  expect(validateProfile(JSON.parse(readFileSync(files.profile!, 'utf8')))).toEqual([]);
  let lines = 0;
  await readCaptureConsole(dir, { line: (l: ConsoleLine) => void (l.hostUs !== null && lines++) });
  expect(lines).toBe(profile.console_lines);
  if (profile.step) {
    expect(files.trace).toBe(join(dir, 'trace.log'));
    const body = readFileSync(files.trace!, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(body.length).toBe(profile.step.trace_lines);
  } else expect(files.trace).toBeUndefined();
  return { profile, lines };
}

function capture(name: string, args: string[], timeoutMs = 120_000): string {
  const dir = testOutput('capture-folder', name);
  const r = runCli(['capture', '--out', dir, '--no-summary', ...args], { timeoutMs });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout.trim()).toBe(dir);
  return dir;
}

describeNeeds(kvmMissing(), 'capture folders of the KVM engine (demo guest)', () => {
  it('run mode: kvm part, no step part, validates', async () => {
    const { profile } = await readBack(capture('kvm-run', ['--guest', 'demo', '--engine', 'kvm']));
    expect(profile).toMatchObject({ format: 'boot-trace-profile', version: 2, engine: 'kvm', mode: 'run', clock: 'host', step: null, memory_mib: 256, timeout_us: 60_000_000 });
    expect(profile.kvm!.exits).toBeGreaterThan(0);
    expect(profile.qemu).toBeUndefined();
    expect(profile.exit).toMatchObject({ reason: 'reset', signal: null });
    expect(profile.setup!.engine).toMatchObject({ asked: 'kvm', chosen: 'kvm' });
  });

  it('step mode: the step part counts the trace lines, validates', async () => {
    const { profile } = await readBack(capture('kvm-step', ['--guest', 'demo', '--engine', 'kvm', '--mode', 'step', '--clock', 'steps']));
    expect(profile).toMatchObject({ engine: 'kvm', mode: 'step', clock: 'steps' });
    expect(profile.step!.steps).toBe(profile.step!.trace_lines);
    expect(profile.kvm!.exits).toBeGreaterThanOrEqual(profile.step!.steps);
  });
});

describeNeeds(kvmMissing(), 'a capture refused before the guest ran', () => {
  it('leaves no empty output folder behind', () => {
    const out = join(testOutput('capture-folder', 'refused'), 'new');
    const r = runCli(['capture', '--guest', 'demo', '--engine', 'kvm', '--trace-from', 'no_such_symbol', '--out', out]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('boot-trace: --trace-from no_such_symbol: no such symbol in the kernel\'s symbol table');
    expect(existsSync(out)).toBe(false);
  });
});

describeNeeds(qemuMissing(), 'capture folder of the QEMU engine, step mode (demo guest through the gdbstub)', () => {
  it('step mode from the physical entry: qemu part with the gdbstub figures, validates', async () => {
    const { profile } = await readBack(capture('qemu-step', ['--guest', 'demo', '--engine', 'qemu', '--trace-from', '0x1000000', '--max-steps', '3000', '--clock', 'steps']));
    expect(profile).toMatchObject({ engine: 'qemu', mode: 'step', clock: 'steps' });
    expect(profile.step).toMatchObject({ steps: 3000, trace_lines: 3000, trace_from: { spec: '0x1000000', address: '0x1000000' } });
    expect(profile.step!.trace_from!.reached_us).toBeGreaterThan(0);
    expect(profile.qemu!.gdbstub!.sstep_flags).toBe(7);
    expect(profile.kvm).toBeUndefined();
    expect(profile.exit).toMatchObject({ reason: 'max-steps' });
  }, 180_000);
});

describeNeeds(firstMissing(qemuMissing(), defaultKernelMissing(), busyboxMissing()), 'capture folder of the QEMU engine, run mode (default kernel + appliance, TCG)', () => {
  it('run mode: no rip, guest memory from the appliance, validates', async () => {
    const { profile } = await readBack(capture('qemu-run', ['--engine', 'qemu'], 300_000));
    expect(profile).toMatchObject({ engine: 'qemu', mode: 'run', step: null, exit: { reason: 'shutdown', rip: null, symbol: null } });
    expect(profile.qemu!.gdbstub).toBeNull();
    expect(profile.guest_memory!.total_mib).toBeGreaterThan(100);
    expect(profile.guest_markers_us.ready).toBeGreaterThan(0);
    expect(profile.setup!.initrd.source).toBe('appliance');
  }, 320_000);
});

describe('the tolerant reader', () => {
  const dir = testOutput('capture-folder', 'reader');
  const write = (name: string, body: unknown): string => {
    const f = join(dir, name);
    writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
    return f;
  };

  it('upgrades a version-1 profile (the sample capture) field by field', () => {
    const p = readProfile(sample('stacks', 'capture', 'profile.json'));
    expect(p).toMatchObject({ version: 1, engine: 'kvm', mode: 'step', peak_rss_mib: 80, guest_memory: null, setup: null });
    expect(p.phases_us.boot_wait).toBe(2000);
    expect(p.guest_markers_us.ready).toBe(2150); // 2150000 ns
    expect(p.step).toMatchObject({ steps: 29, trace_lines: 29, symbols_us: 5000 });
  });

  it('keeps fields it does not know, and refuses what it cannot use in one line naming file and field', () => {
    // A version-2 profile: the sample's, upgraded and labelled as the current version.
    const good = { ...readProfile(sample('stacks', 'capture', 'profile.json')), version: 2 };
    const extended = readProfile(write('extended.json', { ...good, added_by_a_newer_minor: { x: 1 } }));
    expect((extended as unknown as Record<string, unknown>).added_by_a_newer_minor).toEqual({ x: 1 });
    const { exit: _e, ...noExit } = good;
    expect(() => readProfile(write('no-exit.json', noExit))).toThrow(/no-exit\.json: exit: missing$/);
    expect(() => readProfile(write('bad-type.json', { ...good, phases_us: { total: 'soon' } }))).toThrow(/bad-type\.json: phases_us\.total: expected a finite number, found "soon"$/);
    expect(() => readProfile(write('newer.json', { ...good, version: 3 }))).toThrow(/newer\.json: version 3 was written by a newer boot-trace; this one reads versions 1 to 2$/);
    expect(() => readProfile(write('not-json.json', '{"format": '))).toThrow(/not-json\.json: not valid JSON/);
    expect(() => readProfile(join(dir, 'absent.json'))).toThrow(/absent\.json: cannot read the capture profile \(ENOENT\)$/);
    expect(() => parseProfile('[1]', 'x.json')).toThrow(/^x\.json: not a capture profile \(not a JSON object\)$/);
  });

  it('the strict check flags values outside the documented sets', () => {
    const good = JSON.parse(readFileSync(sample('stacks', 'capture', 'profile.json'), 'utf8'));
    expect(validateProfile(good)).toEqual(expect.arrayContaining(['format: missing']));
  });
});

describe('docs/capture-format.md', () => {
  it('lists every field of the schema', () => {
    const doc = readFileSync(new URL('../docs/capture-format.md', import.meta.url), 'utf8');
    const missing = schemaPaths().filter((p) => !doc.includes(`\`${p}\``));
    expect(missing).toEqual([]);
  });
});

describe('--out', () => {
  it('refuses a non-empty folder, and --force empties only a capture folder', () => {
    const dir = testOutput('capture-folder', 'out');
    writeFileSync(join(dir, 'trace.log'), 'old\n');
    expect(() => prepareOutDir(dir)).toThrow(/the output folder is not empty \(trace\.log\); give a new folder, or --force to empty it first$/);
    expect(prepareOutDir(dir, true)).toBe(dir);
    expect(existsSync(join(dir, 'trace.log'))).toBe(false);
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    expect(() => prepareOutDir(dir, true)).toThrow(/--force empties only capture folders, and this one holds notes\.txt/);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine\n');
    const fresh = join(dir, 'a', 'b');
    expect(prepareOutDir(fresh)).toBe(fresh);
    mkdirSync(join(fresh, 'sub'));
    expect(() => prepareOutDir(fresh, true)).toThrow(/holds sub/);
    // benchmark's folder of captures: --force empties it when every folder in it holds only capture files
    writeFileSync(join(fresh, 'sub', 'console.log'), '1.0 x\n');
    expect(prepareOutDir(fresh, true, true)).toBe(fresh);
    expect(existsSync(join(fresh, 'sub'))).toBe(false);
    mkdirSync(join(fresh, 'run-1'));
    writeFileSync(join(fresh, 'run-1', 'keep.txt'), 'mine\n');
    expect(() => prepareOutDir(fresh, true, true)).toThrow(/holds run-1\/keep\.txt, which no capture writes/);
  });
});

describe('writing profile.json', () => {
  it('names the file asked for, never its temporary name, when the write fails', () => {
    const p = { ...readProfile(sample('stacks', 'capture', 'profile.json')), version: 2 };
    const file = join(testOutput('capture-folder', 'write'), 'gone', 'profile.json');
    const exact = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot write the capture profile \\(ENOENT\\)$`);
    expect(() => writeProfile(file, p)).toThrow(exact); // the whole message: no temporary name in it
  });
});
