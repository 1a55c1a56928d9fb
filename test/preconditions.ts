/**
 * Honest skips. A test whose precondition is missing (no /dev/kvm, no QEMU, no cached kernel) is skipped with
 * a note naming what is missing, and never passes by returning early. Preconditions are checked here without
 * calling the code under test; `npm test` lists every skip with its reason (scripts/test-summary.mjs).
 *
 *   describeNeeds(kvmMissing(), 'capture --guest demo (KVM)', () => { ... });   // whole block, hooks included
 *   it('...', (ctx) => { if (!qemu) ctx.skip('qemu-system-x86_64 not installed'); ... });
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { homedir, release } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe } from 'vitest';

/**
 * describe() that runs when `missing` is null; otherwise its tests and hooks are skipped and the reason is
 * part of every skipped test's name (`name [needs: missing]`), which the run's summary prints.
 */
export function describeNeeds(missing: string | null, name: string, fn: () => void): void {
  if (missing === null) describe(name, fn);
  else describe.skip(`${name} [needs: ${missing}]`, fn);
}

/** Why a command cannot be used here (with the Debian package that provides it), or null. */
export function commandMissing(cmd: string, debianPackage: string): string | null {
  return onPath(cmd) ? null : `\`${cmd}\` not found (apt-get install ${debianPackage})`;
}

/** True when an executable `cmd` is on PATH. */
export function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The first of several reasons that is not null. */
export function firstMissing(...reasons: (string | null)[]): string | null {
  return reasons.find((r) => r !== null) ?? null;
}

/** True when `cmd args` runs and exits 0 (e.g. a tool's --version). */
export function runs(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/**
 * Why no default kernel can be had here, or null. Checked as findKernel (capture/kernel/discover.ts) looks
 * (/boot/vmlinuz-$(uname -r), the cache, else `apt-get download`) without calling it: once this says a kernel
 * can be had, a failing findKernel fails the test.
 */
export function defaultKernelMissing(): string | null {
  if (existsSync(join('/boot', `vmlinuz-${release()}`))) return null;
  const cache = join(process.env.BOOT_TRACE_CACHE ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boot-trace'), 'kernels');
  if (existsSync(cache) && readdirSync(cache).length > 0) return null;
  return onPath('apt-get') ? null : 'no kernel in /boot or the cache, and no apt-get to download Debian\'s cloud kernel';
}

/** Why no static busybox can be had for the appliance (capture/appliance/busybox.ts), or null. */
export function busyboxMissing(): string | null {
  return onPath('busybox') || onPath('apt-get') ? null : 'no busybox and no apt-get to fetch busybox-static';
}

/** Why QEMU cannot run here, or null. */
export function qemuMissing(): string | null {
  return commandMissing('qemu-system-x86_64', 'qemu-system-x86');
}
