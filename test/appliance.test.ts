/**
 * The appliance initramfs: what it contains, that it is cached by content, and that a real kernel boots
 * it under QEMU TCG to the end: every BOOT_TIME marker in order with increasing guest times, `free -m`,
 * the workload's output, and a clean power-off.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildAppliance } from '../capture/appliance/appliance.js';
import { isStaticElf } from '../capture/appliance/busybox.js';
import { readCpio, S_IFCHR, S_IFLNK, S_IFREG } from '../capture/appliance/cpio.js';
import { DEFAULT_WORKLOAD, MARKER_STAGES } from '../capture/appliance/init-script.js';
import { bootQemuTcg } from '../capture/appliance/qemu-tcg.js';
import { findKernel } from '../capture/kernel/discover.js';
import { busyboxMissing, defaultKernelMissing, describeNeeds, firstMissing, qemuMissing } from './preconditions.js';

const noBusybox = busyboxMissing();
// The kernel comes from the real cache (or /boot); the appliances are built into a fresh cache. Once a
// kernel can be had, failing to get it fails this file.
const noKernel = defaultKernelMissing();
const kernel = noKernel ? undefined : (await findKernel({ log: () => {} })).path;
const savedCache = process.env.BOOT_TRACE_CACHE;
beforeAll(() => {
  process.env.BOOT_TRACE_CACHE = mkdtempSync(join(tmpdir(), 'boot-trace-appliance-'));
});
afterAll(() => {
  if (savedCache === undefined) delete process.env.BOOT_TRACE_CACHE;
  else process.env.BOOT_TRACE_CACHE = savedCache;
});

describeNeeds(noBusybox, 'the appliance initramfs', () => {
  it('holds a static busybox, its applets, device nodes, /init and /workload', async () => {
    const file = await buildAppliance({ log: () => {} });
    expect(file).toMatch(/appliance\/[0-9a-f]{32}\.cpio\.gz$/);
    const members = readCpio(gunzipSync(readFileSync(file)), file);
    const by = new Map(members.map((m) => [m.name, m]));
    const busybox = by.get('bin/busybox')!;
    expect(busybox.mode).toBe(S_IFREG | 0o755);
    expect(isStaticElf(busybox.data)).toBe(true);
    for (const applet of ['bin/sh', 'bin/mount', 'bin/cat', 'sbin/poweroff', 'usr/bin/free']) {
      expect(by.get(applet), applet).toMatchObject({ mode: S_IFLNK | 0o777 });
      expect(by.get(applet)!.data.toString()).toBe('/bin/busybox');
    }
    expect(by.get('dev/console')).toMatchObject({ mode: S_IFCHR | 0o600, rdevmajor: 5, rdevminor: 1 });
    const init = by.get('init')!;
    expect(init.mode).toBe(S_IFREG | 0o755);
    const script = init.data.toString();
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    for (const stage of MARKER_STAGES) expect(script).toContain(`mark ${stage}`);
    expect(script).toContain('mount -t devtmpfs devtmpfs /dev');
    expect(script).toContain('poweroff -f');
    expect(by.get('workload')!.data.toString()).toBe(`#!/bin/sh\n${DEFAULT_WORKLOAD}\n`);
    // Directories come before what they contain, as the kernel's unpacker needs.
    expect(members.findIndex((m) => m.name === 'bin')).toBeLessThan(members.findIndex((m) => m.name === 'bin/busybox'));
  });

  it('is cached by content: the same inputs reuse the file, another workload makes another', async () => {
    const a = await buildAppliance({ log: () => {} });
    const mtime = statSync(a).mtimeMs;
    expect(await buildAppliance({ log: () => {} })).toBe(a);
    expect(statSync(a).mtimeMs).toBe(mtime);
    const b = await buildAppliance({ workload: 'echo other', log: () => {} });
    expect(b).not.toBe(a);
  });

  it('tells static from dynamic ELF executables', () => {
    expect(isStaticElf(readFileSync(process.execPath))).toBe(false); // node links libc dynamically
    expect(isStaticElf(Buffer.from('#!/bin/sh\n'))).toBe(false);
  });
});

describeNeeds(firstMissing(noBusybox, qemuMissing(), noKernel), 'booting the appliance under QEMU TCG', () => {
  const append = 'console=ttyS0 nokaslr panic=-1 quiet';

  it('prints every marker in order with increasing guest times, free -m, the workload, and powers off', async () => {
    const initrd = await buildAppliance({ log: () => {} });
    const r = await bootQemuTcg({ kernel: kernel!, initrd, append, timeoutMs: 180_000 });
    const out = r.console.replace(/\r\n/g, '\n');
    expect(r.timedOut, out.slice(-2000)).toBe(false);
    expect(r.code, r.stderr).toBe(0);
    const markers = [...out.matchAll(/^BOOT_TIME:(\w+):(\d+)$/gm)].map((m) => ({ stage: m[1]!, ns: Number(m[2]) }));
    expect(markers.map((m) => m.stage)).toEqual([...MARKER_STAGES]);
    for (let i = 1; i < markers.length; i++) expect(markers[i]!.ns).toBeGreaterThanOrEqual(markers[i - 1]!.ns);
    // Guest time since boot: more than the kernel's own start-up, far less than a minute.
    expect(markers[0]!.ns).toBeGreaterThan(100_000_000);
    expect(markers[0]!.ns).toBeLessThan(60_000_000_000);
    expect(out).toMatch(/^Mem:\s+\d+\s+\d+/m);
    expect(out).toMatch(/^Linux version \d+\.\d+/m); // the default workload's cat /proc/version
    expect(out).toContain('workload exit status: 0');
    console.info(`appliance boot: ${(r.ms / 1000).toFixed(1)} s wall; markers ${markers.map((m) => `${m.stage}=${(m.ns / 1e6).toFixed(1)}ms`).join(' ')}`);
  }, 200_000);

  it('runs a --workload instead of the default one', async () => {
    const initrd = await buildAppliance({ workload: 'echo "answer=$((6 * 7))"; ls /nonexistent; exit 3', log: () => {} });
    const r = await bootQemuTcg({ kernel: kernel!, initrd, append, timeoutMs: 180_000 });
    const out = r.console.replace(/\r\n/g, '\n');
    expect(r.code).toBe(0);
    expect(out).toContain('answer=42');
    expect(out).toContain('workload exit status: 3');
    expect(out).not.toMatch(/^Linux version/m);
    expect(out).toContain('BOOT_TIME:workload_done:');
  }, 200_000);
});
