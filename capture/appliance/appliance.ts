/**
 * The appliance: a tiny initramfs the tool builds itself (as supermin does for libguestfs) so that a
 * capture boots a real kernel to userspace with no distro image: a static busybox, symlinks for its
 * applets, /dev/console and friends, the /init of ./init-script.ts and a /workload. Written with the
 * TypeScript cpio writer (./cpio.ts), gzipped (the one initrd compression every distro kernel has:
 * CONFIG_RD_GZIP), cached in cacheDir('appliance')/<sha256 of busybox + init + workload>.cpio.gz.
 *
 * Entry point for capture:
 *   const initrd = await buildAppliance({ workload: args.workload });   // path of the .cpio.gz
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../src/atomic-write.js';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cacheDir } from '../../src/cache.js';
import { messageOf, UserError } from '../../src/errors.js';
import { findStaticBusybox } from './busybox.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { DEFAULT_WORKLOAD, initScript, workloadScript } from './init-script.js';

export interface ApplianceOptions {
  /** Shell commands run after the `ready` marker; default DEFAULT_WORKLOAD. */
  workload?: string;
  /** A static busybox to use instead of looking for one. */
  busybox?: string;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
}

/** Applets linked when the busybox cannot list its own (`busybox --list-full` failed). */
const FALLBACK_APPLETS = [
  'bin/sh', 'bin/cat', 'bin/ls', 'bin/mount', 'bin/umount', 'bin/echo', 'bin/mkdir', 'bin/sleep', 'bin/dmesg',
  'bin/hostname', 'bin/uname', 'bin/sync', 'bin/ps', 'bin/grep', 'bin/sed', 'usr/bin/free', 'usr/bin/head',
  'usr/bin/tail', 'usr/bin/wc', 'usr/bin/env', 'sbin/poweroff', 'sbin/reboot', 'sbin/halt',
];

/** The applet paths (e.g. "usr/bin/awk") this busybox provides, from running it on the host. */
function appletPaths(busybox: string): string[] {
  try {
    const out = execFileSync(busybox, ['--list-full'], { encoding: 'latin1', timeout: 10_000 });
    const paths = out.split('\n').map((l) => l.trim()).filter((l) => /^[a-z/]+\/[^/\s]+$/.test(l));
    if (paths.length > 10) return paths;
  } catch {
    /* not runnable here: use the fixed list */
  }
  return FALLBACK_APPLETS;
}

/** The entries of the appliance's cpio archive (exported for tests and for `--initrd-dir`-style reuse). */
export function applianceEntries(busyboxBytes: Buffer, applets: readonly string[], workload: string): CpioEntry[] {
  const dirs = ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'tmp', 'run', 'etc', 'root', 'var'];
  const entries: CpioEntry[] = dirs.map((path) => ({ type: 'dir', path, mode: path === 'tmp' ? 0o1777 : 0o755 }));
  // The kernel opens /dev/console for init's stdin/stdout before anything can mount devtmpfs.
  entries.push(
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'chardev', path: 'dev/ttyS0', major: 4, minor: 64, mode: 0o660 },
  );
  entries.push({ type: 'file', path: 'bin/busybox', data: busyboxBytes, mode: 0o755 });
  const seen = new Set(['bin/busybox']);
  for (const p of applets) {
    if (seen.has(p)) continue;
    seen.add(p);
    entries.push({ type: 'symlink', path: p, target: '/bin/busybox' });
  }
  entries.push(
    { type: 'file', path: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n' },
    { type: 'file', path: 'etc/group', data: 'root:x:0:\n' },
    { type: 'file', path: 'init', data: initScript(), mode: 0o755 },
    { type: 'file', path: 'workload', data: workloadScript(workload), mode: 0o755 },
  );
  return entries;
}

/**
 * Build (or reuse) the appliance initramfs and return the path of its .cpio.gz.
 * The cache key covers everything in the archive: busybox bytes, /init, /workload and the applet list.
 */
export async function buildAppliance(opts: ApplianceOptions = {}): Promise<string> {
  const workload = opts.workload ?? DEFAULT_WORKLOAD;
  const bb = await findStaticBusybox({ busybox: opts.busybox, log: opts.log });
  let busyboxBytes: Buffer;
  try {
    busyboxBytes = readFileSync(bb.path);
  } catch (err) {
    throw new UserError(`${bb.path}: cannot read busybox (${messageOf(err)})`);
  }
  const applets = appletPaths(bb.path);
  const hash = createHash('sha256')
    .update(busyboxBytes)
    .update('\0init\0')
    .update(initScript())
    .update('\0workload\0')
    .update(workloadScript(workload))
    .update('\0applets\0')
    .update(applets.join('\n'))
    .digest('hex');
  const file = join(cacheDir('appliance'), `${hash.slice(0, 32)}.cpio.gz`);
  if (existsSync(file)) return file;
  const cpio = writeCpio(applianceEntries(busyboxBytes, applets, workload));
  writeFileAtomic(file, gzipSync(cpio, { level: 6 }), 'the appliance');
  return file;
}
