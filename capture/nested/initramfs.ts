/**
 * The nested harness's outer initramfs: static busybox, the node runtime and the project
 * (./runtime.ts), the kernel modules (./modules.ts) and the /init of ./init-script.ts, as an
 * uncompressed cpio newc archive (~200 MB: TCG would take longer to gunzip it than QEMU takes to load it).
 *
 * Cached in cacheDir('nested', 'initramfs')/<key>.cpio. The key hashes the contents of dist/ and
 * package.json (a rebuilt dist/ gives a new archive), the path, size and mtime of every other file
 * (node, libraries, node_modules: they change only by reinstalling), the busybox and module bytes and
 * the /init text. Older archives are removed, keeping the newest few (each is ~200 MB).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../src/cache.js';
import { messageOf, UserError } from '../../src/errors.js';
import { writeCpio, type CpioEntry } from '../appliance/cpio.js';
import { GUEST_MODULES_DIR, nestedInitScript } from './init-script.js';
import type { ModuleSet } from './modules.js';
import type { HostFile } from './runtime.js';

/** Archives kept in the cache (the newest by use). */
const KEEP = 3;

/** Every folder above the given guest paths, parents first (the kernel's unpacker creates no parents). */
export function parentDirs(paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort();
}

/** The archive's entries: folders, then files read from the host (`read` is injectable for tests). */
export function initramfsEntries(
  files: readonly HostFile[],
  extra: readonly { guestPath: string; data: Uint8Array | string; mode?: number }[],
  read: (hostPath: string) => Buffer = (p) => readFileSync(p),
): CpioEntry[] {
  const all = [...files.map((f) => f.guestPath), ...extra.map((e) => e.guestPath)];
  const standard = ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'tmp', 'root', 'etc'];
  const dirs = new Set([...parentDirs(all), ...parentDirs(standard.map((d) => `${d}/x`)), ...standard]);
  const entries: CpioEntry[] = [...dirs].sort().map((path) => ({ type: 'dir', path, mode: path === 'tmp' ? 0o1777 : 0o755 }));
  entries.push({ type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 });
  for (const f of files) {
    const mode = statSync(f.hostPath).mode & 0o777;
    entries.push({ type: 'file', path: f.guestPath, data: read(f.hostPath), mode });
  }
  for (const e of extra) entries.push({ type: 'file', path: e.guestPath, data: e.data, mode: e.mode ?? 0o644 });
  return entries;
}

export interface InitramfsInputs {
  projectDir: string;
  runtime: HostFile[];
  busybox: string;
  modules: ModuleSet;
}

/** The cache key (hex) of an initramfs built from `i` (see the file comment for what it covers). */
export function initramfsKey(i: InitramfsInputs): string {
  const h = createHash('sha256');
  h.update('boot-trace nested initramfs v1\0');
  h.update(nestedInitScript());
  const distPrefix = join(i.projectDir, 'dist') + '/';
  for (const f of i.runtime) {
    h.update(`\0${f.guestPath}\0`);
    if (f.guestPath.startsWith(distPrefix) || f.guestPath === join(i.projectDir, 'package.json')) h.update(readFileSync(f.hostPath));
    else {
      const s = statSync(f.hostPath);
      h.update(`${f.hostPath} ${s.size} ${s.mtimeMs}`);
    }
  }
  h.update('\0busybox\0').update(readFileSync(i.busybox));
  for (const m of i.modules.order) h.update(`\0${m}\0`).update(readFileSync(join(i.modules.dir, `${m}.ko`)));
  return h.digest('hex').slice(0, 32);
}

/** Build (or reuse) the outer initramfs; returns its path and whether it came from the cache. */
export function buildNestedInitramfs(i: InitramfsInputs, log: (line: string) => void): { path: string; cached: boolean; ms: number } {
  const t = performance.now();
  const dir = cacheDir('nested', 'initramfs');
  const file = join(dir, `${initramfsKey(i)}.cpio`);
  if (existsSync(file)) {
    const now = new Date();
    utimesSync(file, now, now); // newest by use, for the pruning below
    return { path: file, cached: true, ms: performance.now() - t };
  }
  log(`nested-kvm: building the outer initramfs (node, dist/, node_modules, modules) in ${dir}`);
  const extra = [
    { guestPath: '/init', data: nestedInitScript(), mode: 0o755 },
    { guestPath: '/bin/busybox', data: readFileSync(i.busybox), mode: 0o755 },
    { guestPath: `${GUEST_MODULES_DIR}/order.txt`, data: i.modules.order.join('\n') + '\n' },
    ...i.modules.order.map((m) => ({ guestPath: `${GUEST_MODULES_DIR}/${m}.ko`, data: readFileSync(join(i.modules.dir, `${m}.ko`)) })),
    { guestPath: '/etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n' },
  ];
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, writeCpio(initramfsEntries(i.runtime, extra)));
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new UserError(`${file}: cannot write the outer initramfs (${messageOf(err)})`);
  }
  prune(dir, file);
  return { path: file, cached: false, ms: performance.now() - t };
}

function prune(dir: string, keep: string): void {
  const old = readdirSync(dir)
    .filter((f) => f.endsWith('.cpio'))
    .map((f) => join(dir, f))
    .filter((f) => f !== keep)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const f of old.slice(KEEP - 1)) rmSync(f, { force: true });
}
