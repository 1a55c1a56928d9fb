/**
 * The QEMU engine on a real kernel (TCG): boots the default kernel and the appliance with initcall_debug
 * to BOOT_TIME:ready and power-off, then checks that `initcalls` and `stages` give the kernel's own
 * figures on that console. Needs qemu-system-x86_64 (apt-get install qemu-system-x86); the kernel and
 * busybox come from the cache or are fetched by capture/kernel/discover.ts and capture/appliance/busybox.ts.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { Initcalls } from '../analyzers/initcalls.js';
import { Stages } from '../analyzers/stages.js';
import { buildAppliance } from '../capture/appliance/appliance.js';
import { captureWithQemu, type QemuCaptureResult } from '../capture/engines/qemu/qemu.js';
import { findKernel } from '../capture/kernel/discover.js';
import { feedConsole } from './console-lines-fixture.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

const missing = firstMissing(qemuMissing(), defaultKernelMissing(), busyboxMissing());

const CMDLINE = 'console=ttyS0 initcall_debug ignore_loglevel panic=-1 reboot=t';

describeNeeds(missing, 'QEMU engine, run mode, real kernel under TCG', () => {
  let kernel: string | undefined;
  let initrd: string | undefined;
  let run: QemuCaptureResult;
  let text = '';

  beforeAll(async () => {
    kernel = (await findKernel({ log: () => {} })).path;
    initrd = await buildAppliance({ log: () => {} });
    run = await captureWithQemu({ kernel, initrd, cmdline: CMDLINE, memoryMiB: 512, outDir: mkdtempSync(join(tmpdir(), 'bt-qemu-')), timeoutS: 180 });
    text = readFileSync(run.consoleFile, 'utf8');
  }, 400_000);

  it('boots to BOOT_TIME:ready and powers off, writing console.log and profile.json', () => {
    const p = run.profile;
    expect(p.exit).toMatchObject({ reason: 'shutdown', rip: null, symbol: null });
    expect(p.exit.detail).toMatch(/reboot: Power down/);
    expect(p.engine).toBe('qemu');
    expect(Object.keys(p.guest_markers_us)).toEqual(expect.arrayContaining(['init_entry', 'mounts_done', 'ready', 'workload_done']));
    expect(p.guest_markers_us.ready!).toBeGreaterThan(p.guest_markers_us.init_entry!);
    expect(p.peak_rss_mib!).toBeGreaterThan(32);
    expect(p.phases_us.total!).toBeGreaterThanOrEqual(p.phases_us.boot_wait!);
    expect(JSON.parse(readFileSync(run.profileFile, 'utf8'))).toEqual(p);
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBe(p.console_lines);
    let prev = -1;
    for (const line of lines) {
      const m = /^(\d+\.\d) /.exec(line);
      expect(m, line).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(prev);
      prev = Number(m![1]);
    }
  });

  it('initcalls: one row per "initcall ... returned" line, with the kernel\'s own "after T usecs"', () => {
    const expected = [...text.matchAll(/\] initcall (\S+?)\+0x[0-9a-f]+\/0x[0-9a-f]+(?: \[\S+\])? returned (-?\d+) after (\d+) usecs/g)]
      .map((m) => `${m[1]} ${m[2]} ${m[3]}`).sort();
    const probes = [...text.matchAll(/\] probe of (\S+) returned (-?\d+) after (\d+) usecs/g)].map((m) => `probe of ${m[1]} ${m[2]} ${m[3]}`).sort();
    expect(expected.length).toBeGreaterThan(300);
    const a = new Initcalls();
    feedConsole(run.consoleFile, a);
    const { rows, summary } = a.result();
    const got = rows.filter((r) => !r.initcall.startsWith('probe of ')).map((r) => `${r.initcall} ${r.ret} ${r.duration_us}`).sort();
    expect(got).toEqual(expected);
    expect(rows.filter((r) => r.initcall.startsWith('probe of ')).map((r) => `${r.initcall} ${r.ret} ${r.duration_us}`).sort()).toEqual(probes);
    expect(summary.initcalls).toBe(expected.length);
    expect(summary.unfinished).toBe(0);
    expect(summary.span_us).not.toBeNull();
  });

  it('stages: spans start and end at the host stamps of their lines', () => {
    const stampOf = (re: RegExp): number => {
      const line = text.split('\n').find((l) => re.test(l));
      expect(line, String(re)).toBeDefined();
      return Number(line!.slice(0, line!.indexOf(' ')));
    };
    const s = new Stages();
    feedConsole(run.consoleFile, s);
    const rows = Object.fromEntries(s.result().rows.map((r) => [r.name, r]));
    const firstCalling = stampOf(/\] calling {2}\S/);
    const freeing = stampOf(/Freeing unused kernel image \(initmem\) memory/);
    // The first `calling` (con_init, before the console registered) was flushed late: a kernel stage's start
    // is placed at kernel time 0's host time (min of host - kernel stamp over the kernel's lines) + its stamp
    // when that is earlier (docs/console-analyzers.md "Kernel lines written late").
    let zero = Infinity;
    for (const l of text.split('\n')) {
      if (/Run \/init as init process/.test(l)) break;
      const m = /^(\d+(?:\.\d+)?) \[ *(\d+)\.(\d{6})\]/.exec(l);
      if (m) zero = Math.min(zero, Number(m[1]) - (Number(m[2]) * 1e6 + Number(m[3])));
    }
    const callingK = /\[ *(\d+)\.(\d{6})\] calling {2}\S/.exec(text)!;
    const callingStart = Math.min(firstCalling, Math.round((zero + Number(callingK[1]) * 1e6 + Number(callingK[2])) * 1000) / 1000);
    expect(rows['kernel:initcalls-before-userspace']).toMatchObject({ start_us: callingStart, end_us: freeing });
    expect(rows['userspace']).toMatchObject({ start_us: stampOf(/Run \/init as init process/), end_us: stampOf(/reboot: Power down/) });
    expect(rows['BOOT_TIME:ready']).toMatchObject({ start_us: stampOf(/BOOT_TIME:ready:/), end_us: stampOf(/BOOT_TIME:workload_done:/) });
    expect(rows['firmware']?.start_us).toBe(stampOf(/SeaBIOS \(version/));
    expect(existsSync(run.consoleFile)).toBe(true);
  });

  it('stops a guest that does not end at the timeout, without hanging', async () => {
    const t0 = performance.now();
    // No initrd, and `rootwait` for a root device that never comes: the kernel waits forever (without it, a
    // fast machine reaches the "VFS: Unable to mount root fs" panic within the timeout).
    const r = await captureWithQemu({ kernel: kernel!, cmdline: 'console=ttyS0 root=/dev/vdz rootwait', memoryMiB: 256, outDir: mkdtempSync(join(tmpdir(), 'bt-qemu-')), timeoutS: 2 });
    const wall = (performance.now() - t0) / 1000;
    expect(r.profile.exit.reason).toBe('timeout');
    expect(r.profile.exit.detail).toMatch(/^timeout/);
    expect(wall).toBeLessThan(2 + 2 + 5);
    expect(existsSync(r.consoleFile)).toBe(true);
  }, 30_000);
});
