/**
 * Whole-boot tracing (issue 10): `capture --mode trace` boots the default kernel and the appliance under
 * QEMU's TCG with boot-trace's plugin, and every analyzer reads the recording. Checks, on real boots:
 * milestones in boot order on both clocks; the syscall summary (execve, mount, exactly one reboot); no
 * folded thunk among the hottest functions; a deterministic function's instruction count equal in two
 * boots (one at function, one at block granularity); recording -> text -> analyzers equal to analyzers on the recording; a recording cut short
 * (Ctrl-C, or QEMU killed mid-write) reads up to the cut and says so. Bad input: one line, exit 1.
 * Needs qemu-system-x86_64 with plugin support (Debian's qemu-system-x86), cc, a default kernel, busybox.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HDR } from '../capture/boot/bzimage.js';
import { demoGuestPath } from '../capture/guest/build.js';
import { findExecutable } from '../capture/engines/qemu/qemu-common.js';
import { FOLDED_SYMBOLS } from '../src/trace/recording/format.js';
import { openRecording } from '../src/trace/recording/decode.js';
import { makeBzImage } from './bzimage-fixture.js';
import { CLI, cliJson, runCli } from './helpers.js';
import { busyboxMissing, commandMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

const missing = firstMissing(qemuMissing(), commandMissing('cc', 'gcc'), defaultKernelMissing(), busyboxMissing());
const BOOT_MS = 400_000;

interface Hot { function: string; time_us: number; lines: number }
interface First { function: string; first_us: number }
interface SyscallSum { syscall: string; count: number }

/** `capture --mode trace` into a fresh folder; fails the test with stderr unless it exits 0. */
function traceBoot(tmp: string, name: string, extra: string[] = []): string {
  const out = join(tmp, name);
  const r = runCli(['capture', '--mode', 'trace', '--out', out, '--no-summary', ...extra], { timeoutMs: BOOT_MS });
  if (r.status !== 0) throw new Error(`capture --mode trace exited ${r.status}: ${r.stderr}`);
  return out;
}

const MILESTONES = ['start_kernel', 'rest_init', 'kernel_init', 'free_initmem', '__x64_sys_execve', '__x64_sys_reboot'];

describeNeeds(missing, 'whole-boot tracing: capture --mode trace on the default kernel + appliance', () => {
  let tmp: string;
  let a: string;
  let b: string;
  let hotA: Hot[];

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bt-wholeboot-'));
    a = traceBoot(tmp, 'a');
    b = traceBoot(tmp, 'b', ['--granularity', 'block']);
    hotA = cliJson<Hot[]>(['hot-functions', a, '--top', '0', '--clock', 'instructions']);
  }, 2 * BOOT_MS);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('records from kernel entry (startup_64 at its physical alias) to the guest power-off, whole', () => {
    const profile = JSON.parse(readFileSync(join(a, 'profile.json'), 'utf8'));
    expect(profile).toMatchObject({ engine: 'qemu', mode: 'trace', qemu: { accel: 'tcg' }, trace: { granularity: 'function', plugin_end: 'exit', cut: null } });
    expect(profile.exit.reason).toBe('shutdown');
    const rec = openRecording(join(a, 'recording.bin'));
    expect(rec.pluginEnd).toMatchObject({ reason: 'exit', started: true, write_errors: 0 });
    expect(profile.trace.records).toBe(rec.pluginEnd!.records);
    expect(rec.header.kernel.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(rec.header.qemu.version).toMatch(/QEMU emulator version/);
    expect(rec.captureEnd).toMatchObject({ reason: 'shutdown' });
    // The first record is the kernel's first instruction, named by its link-address symbol.
    const first = cliJson<First[]>(['first-calls', a, '--clock', 'instructions']);
    expect(first[0]).toEqual({ function: 'startup_64', first_us: 0 });
  });

  it('puts the boot milestones in order on both clocks', () => {
    for (const clock of ['host', 'instructions']) {
      const first = new Map(cliJson<First[]>(['first-calls', a, '--clock', clock]).map((r) => [r.function, r.first_us]));
      const times = MILESTONES.map((m) => first.get(m));
      expect(times.every((t) => t !== undefined), `${clock}: ${JSON.stringify(Object.fromEntries(MILESTONES.map((m, i) => [m, times[i]])))}`).toBe(true);
      for (let i = 1; i < times.length; i++) expect(times[i]!, `${clock}: ${MILESTONES[i - 1]} < ${MILESTONES[i]}`).toBeGreaterThan(times[i - 1]!);
    }
  });

  it('counts the appliance\'s system calls: execve and mount, and exactly one reboot', () => {
    const sum = new Map(cliJson<SyscallSum[]>(['syscalls', a, '--summary']).map((r) => [r.syscall, r.count]));
    expect(sum.get('execve')).toBeGreaterThanOrEqual(1);
    expect(sum.get('mount')).toBeGreaterThanOrEqual(3); // /init mounts proc, sysfs and devtmpfs
    expect(sum.get('reboot')).toBe(1);
  });

  it('folds the return and retpoline thunks into their callers: none among the 20 hottest on either clock', () => {
    const hostTop = cliJson<Hot[]>(['hot-functions', a, '--top', '20']);
    expect(hostTop).toHaveLength(20);
    for (const row of [...hostTop, ...hotA.slice(0, 20)]) expect(row.function).not.toMatch(FOLDED_SYMBOLS);
    expect(hotA.some((r) => FOLDED_SYMBOLS.test(r.function))).toBe(false);
  });

  it('counts the same instructions in mpihelp_submul_1 in two boots, one at function and one at block granularity', () => {
    // mpihelp_submul_1 is the inner loop of the multi-precision arithmetic of the crypto manager's RSA
    // self-test: fixed test vectors, no I/O, no page faults, and TCG delivers interrupts only between
    // blocks, so the instructions it runs depend on nothing the host's timing changes.
    const hotB = cliJson<Hot[]>(['hot-functions', b, '--top', '0', '--clock', 'instructions']);
    const inA = hotA.find((r) => r.function === 'mpihelp_submul_1');
    const inB = hotB.find((r) => r.function === 'mpihelp_submul_1');
    expect(inA?.time_us).toBeGreaterThan(1_000_000);
    expect(inB?.time_us).toBe(inA!.time_us);
    // The second boot records every block and counts instructions from its translation map (the block's
    // size), the first counts them at each change of function: the same number proves both.
    const profileB = JSON.parse(readFileSync(join(b, 'profile.json'), 'utf8'));
    expect(profileB).toMatchObject({ trace: { granularity: 'block' }, exit: { reason: 'shutdown' } });
    expect(inB!.lines).toBeGreaterThan(inA!.lines);
  });

  it('reads a recording cut short mid-frame (QEMU killed while writing) up to the cut, and says so', () => {
    const full = join(a, 'recording.bin');
    const cut = join(tmp, 'cut.btr');
    copyFileSync(full, cut);
    truncateSync(cut, Math.floor(statSync(full).size * 0.4));
    const r = runCli(['hot-functions', cut, '--top', '5', '--format', 'json', '--clock', 'instructions']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/recording cut short \(a partial frame at byte \d+/);
    const read = Number(/read ([\d,]+) records up to the cut/.exec(r.stderr)![1]!.replaceAll(',', ''));
    const whole = JSON.parse(readFileSync(join(a, 'profile.json'), 'utf8')).trace.records as number;
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(whole);
    expect((JSON.parse(r.stdout) as Hot[]).length).toBe(5);
  });

  it('calls a corrupt or truncated-header recording what it is: one line, exit 1', () => {
    const full = readFileSync(join(a, 'recording.bin'));
    const bad = join(tmp, 'corrupt.btr');
    const flipped = Buffer.from(full);
    flipped[Math.floor(full.length / 2)]! ^= 0x40;
    writeFileSync(bad, flipped);
    let r = runCli(['first-calls', bad]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/corrupt recording: .*byte \d+/);
    writeFileSync(bad, full.subarray(0, 40)); // the file header and part of the header frame
    r = runCli(['syscalls', bad]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // Cut inside its header frame: truncated, not corrupt (the file ends where a whole frame should be).
    expect(r.stderr).toMatch(/recording cut short before its header frame \(a partial frame at byte \d+/);
  });

  it('Ctrl-C ends the capture with a readable recording that says it was cut; its text export gives the analyzers the same rows', async () => {
    const out = join(tmp, 'interrupted');
    const child = spawn(process.execPath, [CLI, 'capture', '--mode', 'trace', '--out', out, '--no-summary'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const rec = join(out, 'recording.bin');
    // Interrupt once the kernel has recorded a few MB (a few million records): mid-boot.
    const status = await new Promise<number | null>((resolve) => {
      const poll = setInterval(() => {
        if (existsSync(rec) && statSync(rec).size > 3e6) {
          clearInterval(poll);
          child.kill('SIGINT');
        }
      }, 50);
      child.on('exit', (code) => {
        clearInterval(poll);
        resolve(code);
      });
    });
    expect(status, stderr).toBe(130);
    const profile = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
    expect(profile.exit.reason).toBe('interrupted');
    expect(profile.trace.cut).toMatch(/interrupted/);

    const text = join(tmp, 'interrupted.txt');
    const e = runCli(['export', out, '--to', 'text', '-o', text], { timeoutMs: 300_000 });
    expect(e.status, e.stderr).toBe(0);
    expect(e.stderr).toMatch(/recording cut short \(the capture ended \(interrupted/);
    for (const args of [['hot-functions', '--top', '0'], ['first-calls'], ['syscalls'], ['syscalls', '--summary']]) {
      const [cmd, ...rest] = args;
      const fromRecording = runCli([cmd!, out, ...rest, '--format', 'json']);
      const fromText = runCli([cmd!, text, ...rest, '--format', 'json']);
      expect(fromRecording.status).toBe(0);
      expect(fromText.status).toBe(0);
      // A recording's syscall rows also name the process: '' under QEMU 7.2, and text has no such column.
      const recRows = (JSON.parse(fromRecording.stdout) as Record<string, unknown>[]).map(({ process: proc, ...rest }) => {
        if (cmd === 'syscalls' && !rest.count) expect(proc).toBe(profile.trace.plugin_api === 4 ? proc : '');
        return rest;
      });
      expect(JSON.parse(fromText.stdout), args.join(' ')).toEqual(recRows);
    }
    // Not a vacuous equality: the cut boot already ran hundreds of functions.
    expect((JSON.parse(runCli(['first-calls', text, '--format', 'json']).stdout) as First[]).length).toBeGreaterThan(100);
    rmSync(text, { force: true });
  }, BOOT_MS);
});

describeNeeds(firstMissing(qemuMissing(), commandMissing('cc', 'gcc'), busyboxMissing()), 'whole-boot tracing: bad input', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bt-wholeboot-bad-'));
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a kernel without kallsyms: one line naming the missing symbols, exit 1', () => {
    // A real bzImage layout whose gzip payload is the demo guest's ELF: it has no kallsyms tables.
    const gz = gzipSync(readFileSync(demoGuestPath()));
    const image = makeBzImage({ pmBytes: gz.length });
    image.writeUInt32LE(0, HDR.payloadOffset);
    image.writeUInt32LE(gz.length, HDR.payloadLength);
    gz.copy(image, (27 + 1) * 512);
    const kernel = join(tmp, 'no-kallsyms.bzImage');
    writeFileSync(kernel, image);
    const r = runCli(['capture', '--mode', 'trace', '--kernel', kernel, '--out', join(tmp, 'nk'), '--no-summary'], { env: { BOOT_TRACE_CACHE: join(tmp, 'cache') }, timeoutMs: 120_000 });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => !/^boot-trace: (kernel|building|busybox|using)/i.test(l));
    expect(lines.at(-1)).toMatch(/^boot-trace: --mode trace needs the kernel's symbols: .*kallsyms/);
  });

  it('a QEMU without plugin support: one line saying what is needed, exit 1', () => {
    // A qemu-system-x86_64 first on PATH that refuses -plugin as a QEMU built without plugins does.
    const bin = join(tmp, 'bin');
    const real = findExecutable('qemu-system-x86_64')!;
    rmSync(bin, { recursive: true, force: true });
    mkdirSync(bin, { recursive: true });
    const wrapper = join(bin, 'qemu-system-x86_64');
    writeFileSync(wrapper, `#!/bin/sh\nfor a in "$@"; do [ "$a" = -plugin ] && { echo "qemu-system-x86_64: -plugin: invalid option" >&2; exit 1; }; done\nexec ${real} "$@"\n`);
    chmodSync(wrapper, 0o755);
    // BOOT_TRACE_QEMU names PATH's QEMU (this wrapper), not the cached QEMU 10 trace mode prefers.
    const r = runCli(['capture', '--mode', 'trace', '--out', join(tmp, 'np'), '--no-summary'], { env: { PATH: `${bin}:${process.env.PATH}`, BOOT_TRACE_QEMU: 'qemu-system-x86_64' }, timeoutMs: 120_000 });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^boot-trace: .*qemu-system-x86_64 cannot load the tracing plugin \(qemu-system-x86_64: -plugin: invalid option\): --mode trace needs a QEMU built with TCG plugin support/);
  });

  it('an unknown granularity: one line, exit 1, before anything boots', () => {
    const r = runCli(['capture', '--mode', 'trace', '--granularity', 'loop']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('boot-trace: --granularity loop: unknown; give function, block, instruction\n');
  });
});

/** QEMU 10 as scripts/qemu10.sh unpacks it (bookworm-backports), or why it is missing. */
const QEMU10 = join(process.env.BOOT_TRACE_CACHE ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boot-trace'), 'qemu10', 'qemu-system-x86_64');
const qemu10Missing = existsSync(QEMU10) ? null : `QEMU 10 not unpacked at ${QEMU10} (bash scripts/qemu10.sh; needs bookworm-backports)`;

interface SyscallRowJson { time_us: number; syscall: string; process: string }

describeNeeds(firstMissing(qemu10Missing, commandMissing('cc', 'gcc'), defaultKernelMissing(), busyboxMissing()), 'whole-boot tracing under QEMU 10: system calls read from the registers', () => {
  let tmp: string;
  let dir: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bt-wholeboot-q10-'));
    dir = join(tmp, 'q10');
    const r = runCli(['capture', '--mode', 'trace', '--out', dir, '--no-summary'], { env: { BOOT_TRACE_QEMU: QEMU10 }, timeoutMs: BOOT_MS });
    if (r.status !== 0) throw new Error(`capture --mode trace under QEMU 10 exited ${r.status}: ${r.stderr}`);
  }, BOOT_MS);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('counts each system call by name exactly as the registers count it', () => {
    const profile = JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8'));
    expect(profile.qemu.version).toMatch(/version 10\./);
    expect(profile.trace).toMatchObject({ plugin_api: 4, cut: null });
    const entries = openRecording(join(dir, 'recording.bin')).syscalls!.filter((e) => e.kind === 0);
    expect(entries.length).toBe(profile.trace.syscall_entries);
    // The analyzer's calls on the instructions clock start at the entry block's instruction count,
    // which is where the plugin read the registers: one call per register-read entry, and back.
    const rows = cliJson<SyscallRowJson[]>(['syscalls', dir, '--clock', 'instructions']);
    expect(rows.length).toBe(entries.length);
    const byIc = new Map(entries.map((e) => [e.instructions, e.nr]));
    const nameOf = new Map<number, string>();
    for (const row of rows) {
      const nr = byIc.get(row.time_us);
      expect(nr, `no register-read entry at ${row.time_us} (${row.syscall})`).toBeDefined();
      // One name per number (arch/x86/entry/syscalls/syscall_64.tbl: execve 59, mount 165, reboot 169).
      if (!nameOf.has(nr!)) nameOf.set(nr!, row.syscall);
      expect(row.syscall).toBe(nameOf.get(nr!));
    }
    expect(nameOf.get(59)).toBe('execve');
    expect(nameOf.get(165)).toBe('mount');
    expect(nameOf.get(169)).toBe('reboot');
  });

  it('names the process of each system call: the kernel\'s modprobe helper first, then /init and what it runs', () => {
    const rows = cliJson<SyscallRowJson[]>(['syscalls', dir]);
    expect(rows[0]!.process).toBe('/sbin/modprobe');
    const processes = new Set(rows.map((r) => r.process));
    expect(processes).toContain('/init');
    const named = rows.filter((r) => r.process !== '' && r.process !== '[unknown]').length;
    expect(named / rows.length).toBeGreaterThan(0.95);
    // The 7.2 recording of the same boot has the column, empty (docs/whole-boot.md).
  });
});
