/**
 * Acceptance of `boot-trace capture` on a real Linux kernel (issue 4), through the built CLI:
 *   a. the KVM engine with host-side decompression, run mode: banner and e820 map on the console, and the
 *      stop this machine's /dev/kvm really gives (see docs/capture.md) named with RIP and kallsyms symbol;
 *   b. a trace window: --trace-from start_kernel --max-steps 50000, named from the extracted kallsyms;
 *   c. a bare `capture` (engine auto): the appliance boots to BOOT_TIME:ready and a clean stop.
 * The kernel is the default one (host's, cached, or Debian's cloud kernel downloaded once). Each part
 * skips, naming what is missing, when /dev/kvm, QEMU or a way to get the kernel is not there.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { validateProfile, type CaptureSetup, type Profile as ProfileV2 } from '../capture/output/profile.js';
import { findKernel } from '../capture/kernel/discover.js';
import { probeKvm } from '../capture/probe/kvm-probe.js';
import { kvmMissing } from './capture-helpers.js';
import { runCli, testOutput } from './helpers.js';
import { defaultKernelMissing, describeNeeds, qemuMissing } from './preconditions.js';

const noKvm = kvmMissing();
const noQemu = qemuMissing();
const noKernel = defaultKernelMissing();
// Once a kernel can be had, failing to get it fails this file.
const kernel = noKernel ? null : (await findKernel({ log: () => {} })).path;
const kvmSkip = noKvm ?? noKernel;
// Whether this machine's /dev/kvm can run a stock kernel decides what part a must see at the end.
const kvmRunsLinux = kvmSkip ? false : probeKvm().ok;

type Profile = Omit<ProfileV2, 'setup'> & { setup: CaptureSetup };

function capture(name: string, args: string[], timeoutMs: number): { dir: string; profile: Profile; stderr: string; status: number | null; console: string } {
  const dir = testOutput('capture-linux', name);
  const r = runCli(['capture', '--out', dir, ...args], { timeoutMs });
  let profile: Profile;
  try {
    profile = JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8')) as Profile;
    expect(validateProfile(profile)).toEqual([]);
  } catch {
    throw new Error(`capture ${args.join(' ')} wrote no profile.json (status ${r.status}): ${r.stderr}`);
  }
  return { dir, profile, stderr: r.stderr, status: r.status, console: readFileSync(join(dir, 'console.log'), 'utf8') };
}

describeNeeds(kvmSkip, 'a real kernel under the KVM engine', () => {
  it('run mode, host decompression: banner, e820 map, and a named stop within 3 minutes', () => {
    const r = capture('kvm-run', ['--engine', 'kvm', '--kernel', kernel!, '--mode', 'run', '--timeout', '170', '--no-summary'], 200_000);
    expect(r.profile.engine).toBe('kvm');
    expect(r.profile.setup.decompress.mode).toBe('host');
    expect(r.profile.setup.decompress.booted).toMatch(/\/vmlinux\/[0-9a-f]{64}\.elf$/);
    expect(r.profile.setup.symbols.source).toBe('kallsyms');
    expect(r.profile.setup.initrd.source).toBe('appliance');
    expect(r.console).toMatch(/^\d+\.\d (\[\s*\d+\.\d+\] )?Linux version \d+\.\d+/m);
    expect(r.console).toMatch(/BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable/);
    expect(r.profile.phases_us.total).toBeLessThan(180e6);
    if (kvmRunsLinux) {
      // Hardware KVM: the appliance boots, powers off, and the kernel resets by triple fault.
      expect(r.profile.guest_markers_us.ready).toBeGreaterThan(0);
      expect(r.profile.exit.reason).toBe('shutdown');
    } else {
      // This machine's software-backed KVM: an emulation failure (at the int3 self-test, ~65-160 s in,
      // depending on the load), reported with RIP and a kallsyms name. On a loaded machine the guest may
      // not get there within the 170 s: then the timeout stop names where the vCPU was, the same way.
      expect(['internal-error', 'timeout']).toContain(r.profile.exit.reason);
      if (r.profile.exit.reason === 'internal-error') {
        expect(r.status).toBe(2);
        expect(r.profile.exit.detail).toMatch(/emulation failure/);
      } else {
        console.warn(`the kernel had not reached its emulation failure after 170 s (machine loaded?); it stopped by timeout in ${r.profile.exit.symbol}`);
        expect(r.status).toBe(0);
      }
      expect(r.profile.exit.rip).toMatch(/^0xffffffff8[0-9a-f]{7}$/);
      expect(r.profile.exit.symbol).toMatch(/^[a-z_][\w.]* (\+ \d+ )?in section \.[\w.]+$/);
      expect(r.stderr).toContain(`[boot-profile] exit: ${r.profile.exit.reason} at ${r.profile.exit.rip} (${r.profile.exit.symbol})`);
    }
  }, 210_000);

  it('--trace-from start_kernel --max-steps 50000: the window starts at start_kernel, named from kallsyms', () => {
    const r = capture('kvm-window', ['--engine', 'kvm', '--kernel', kernel!, '--trace-from', 'start_kernel', '--max-steps', '50000', '--mode', 'step', '--timeout', '120', '--no-summary'], 150_000);
    expect(r.status).toBe(0);
    expect(r.profile.exit.reason).toBe('max-steps');
    expect(r.profile.step!.steps).toBe(50000);
    expect(r.profile.step!.trace_from!.reached_us).toBeGreaterThan(0);
    const lines = readFileSync(join(r.dir, 'trace.log'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines.length).toBe(50000);
    expect(lines[0]).toMatch(/^\d+\.\d start_kernel in section \.init\.text$/);
    // Named lines: "<t> <symbol> [+ <off>] in section <s>"; bare ones: "<t> <hex>".
    const bare = lines.filter((l) => /^\S+ [0-9a-f]+$/.test(l)).length;
    expect(bare / lines.length).toBeLessThan(0.001);
    // Everything start_kernel calls first is kernel code: more than a few distinct functions.
    const fns = new Set(lines.map((l) => l.split(' ')[1]));
    expect(fns.size).toBeGreaterThan(20);
    expect(fns).toContain('__fentry__');
  }, 160_000);

  it('--trace-from an unknown symbol is a one-line error naming it', () => {
    const r = runCli(['capture', '--engine', 'kvm', '--kernel', kernel!, '--trace-from', 'start_kernle', '--max-steps', '10', '--out', testOutput('capture-linux', 'bad-symbol')], { timeoutMs: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/--trace-from start_kernle: no such symbol/);
  }, 70_000);
});

const autoSkip = noKernel ?? (noQemu && (noKvm || !kvmRunsLinux) ? noQemu : null);

describeNeeds(autoSkip, 'boot-trace capture with no arguments', () => {
  it('boots the default kernel and the appliance to BOOT_TIME:ready and a clean stop', () => {
    const r = capture('default', [], 190_000);
    expect(r.status).toBe(0);
    expect(r.profile.setup.engine.asked).toBe('auto');
    expect(r.profile.setup.engine.chosen).toBe(kvmRunsLinux ? 'kvm' : 'qemu');
    if (!kvmRunsLinux && !noKvm) expect(r.stderr).toMatch(/^boot-trace: \/dev\/kvm cannot run this kernel here \(.+\); using QEMU \((TCG|KVM)\)$/m);
    expect(r.profile.setup.initrd.source).toBe('appliance');
    for (const stage of ['init_entry', 'mounts_done', 'init_ok', 'ready', 'workload_done']) expect(r.profile.guest_markers_us[stage]).toBeGreaterThan(0);
    expect(r.profile.guest_markers_us.ready).toBeGreaterThan(r.profile.guest_markers_us.init_entry!);
    expect(r.profile.exit.reason).toBe('shutdown');
    // The summary at the end: markers, stages from the console, where the files are.
    expect(r.stderr).toMatch(/Guest markers \(BOOT_TIME, guest clock\)\n {2}init_entry/);
    expect(r.stderr).toMatch(/^ {2}userspace +at /m);
    expect(r.stderr).toContain(`Files in ${r.dir}:`);
    // The same report from the summary command on the folder.
    const again = runCli(['summary', r.dir]);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/^Capture: (QEMU|KVM)/);
    expect(again.stdout).toContain('Guest markers (BOOT_TIME, guest clock)');
    if (r.profile.setup.engine.chosen === 'qemu') {
      // Where KVM cannot run the kernel, the default job records the whole boot (docs/whole-boot.md) and
      // answers the three questions: hottest functions, milestones, system calls.
      expect(r.profile.mode).toBe('trace');
      expect(r.stderr).toMatch(/^Hottest functions \(self time, host clock; [\d,]+ records, function granularity\)$/m);
      expect(r.stderr).toMatch(/^ +[\d.]+ ms {2}start_kernel$/m);
      expect(r.stderr).toMatch(/^ +(1 {2}reboot +total| .*\b1 reboot\b)/m);
      expect(r.stderr).toContain('  recording.bin');
    }
  }, 200_000);

  it('--workload replaces what the appliance runs', () => {
    const r = capture('workload', ['--workload', 'echo workload-$((6 * 7))', '--no-summary'], 120_000);
    expect(r.status).toBe(0);
    expect(r.profile.setup.initrd).toMatchObject({ source: 'appliance', workload: 'echo workload-$((6 * 7))' });
    expect(r.console).toMatch(/^\d+\.\d workload-42$/m);
    expect(r.profile.guest_markers_us.workload_done).toBeGreaterThan(r.profile.guest_markers_us.ready!);
  }, 130_000);
});
