/**
 * What the nested harness's outer guest needs to run boot-trace: the host's node binary and the shared
 * libraries the dynamic loader maps for it and for the native addons (from `ldd`), and the project
 * itself (package.json, dist/, and node_modules without the dev-only packages). The Debian cloud kernel
 * has no 9p or virtiofs built in, so all of it travels in the initramfs, at the same absolute paths.
 *
 *   ldd /usr/bin/node:
 *     libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f...)
 *     /lib64/ld-linux-x86-64.so.2 (0x00007f...)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { messageOf, UserError } from '../../src/errors.js';

/** One host file placed into the initramfs at `guestPath`. */
export interface HostFile {
  guestPath: string;
  hostPath: string;
}

/** The library paths in `ldd` output (`name => /path (addr)` and bare `/path (addr)` lines). */
export function parseLdd(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /=>\s*(\/\S+)\s*\(0x/.exec(line) ?? /^\s*(\/\S+)\s*\(0x/.exec(line);
    if (m && !out.includes(m[1]!)) out.push(m[1]!);
  }
  return out;
}

/** The libraries `file` needs, by `ldd` (throws a UserError naming a library ldd cannot find). */
export function sharedLibraries(file: string): string[] {
  let text: string;
  try {
    text = execFileSync('ldd', [file], { encoding: 'utf8' });
  } catch (err) {
    throw new UserError(`ldd ${file}: ${messageOf(err)}`);
  }
  const missing = /^\s*(\S+) => not found/m.exec(text);
  if (missing) throw new UserError(`ldd ${file}: ${missing[1]} not found`);
  return parseLdd(text);
}

/** Every regular file under `dir` (following no symlinks), as paths relative to `dir`, sorted. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, f.name);
      if (f.isDirectory()) walk(p);
      else if (f.isFile()) out.push(relative(dir, p));
      else if (f.isSymbolicLink() && statSync(p).isFile()) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * The node_modules folders of the production dependencies, from package-lock.json (lockfileVersion 2/3:
 * `packages["node_modules/x"]` with `dev: true` for dev-only packages). Only those installed on disk
 * (optional packages for other platforms are listed but absent).
 */
export function productionPackages(projectDir: string): string[] {
  const lockFile = join(projectDir, 'package-lock.json');
  let lock: { packages?: Record<string, { dev?: boolean; devOptional?: boolean }> };
  try {
    lock = JSON.parse(readFileSync(lockFile, 'utf8')) as typeof lock;
  } catch (err) {
    throw new UserError(`${lockFile}: cannot read the lock file (${messageOf(err)})`);
  }
  if (!lock.packages) throw new UserError(`${lockFile}: no "packages" map (lockfileVersion 2 or 3 needed; run npm install with npm 7+)`);
  return Object.entries(lock.packages)
    .filter(([k, v]) => k.startsWith('node_modules/') && !v.dev && !v.devOptional)
    .map(([k]) => k)
    .filter((k) => existsSync(join(projectDir, k)))
    .sort();
}

/** node_modules files that are for other platforms (prebuilt addons, musl builds): left out of the initramfs. */
export function foreignPlatformFile(rel: string): boolean {
  return /\/prebuilds\/(?!linux-x64\/)[^/]+\//.test(rel) || /\/musl_x64\//.test(rel);
}

/**
 * The files of the node runtime and the project: node, its libraries and those of every native addon
 * (*.node) among the production packages, package.json, dist/**, and the production node_modules.
 * Throws a UserError when dist/ is missing (run `npm run build`).
 */
export function runtimeFiles(projectDir: string, nodeBinary = process.execPath): HostFile[] {
  const dist = join(projectDir, 'dist');
  if (!existsSync(join(dist, 'src', 'cli.js'))) throw new UserError(`${dist}/src/cli.js is missing: run \`npm run build\` first`);
  const files: HostFile[] = [];
  const seen = new Set<string>();
  const add = (guestPath: string, hostPath: string): void => {
    if (seen.has(guestPath)) return;
    seen.add(guestPath);
    files.push({ guestPath, hostPath });
  };
  add(nodeBinary, realpathSync(nodeBinary));
  const native: string[] = [];
  add(join(projectDir, 'package.json'), join(projectDir, 'package.json'));
  for (const rel of filesUnder(dist)) add(join(dist, rel), join(dist, rel));
  for (const pkg of productionPackages(projectDir)) {
    const dir = join(projectDir, pkg);
    for (const rel of filesUnder(dir)) {
      const p = join(dir, rel);
      if (rel.startsWith('node_modules/') || foreignPlatformFile(`/${pkg}/${rel}`)) continue; // nested packages have their own entry
      add(p, p);
      if (rel.endsWith('.node')) native.push(p);
    }
  }
  // Libraries: node's, the addons', and librt (dlopen'ed by name at run time, so ldd of node misses it).
  const libs = new Set<string>();
  for (const f of [nodeBinary, ...native]) for (const l of sharedLibraries(f)) libs.add(l);
  for (const l of [...libs]) {
    const dir = l.slice(0, l.lastIndexOf('/'));
    if (l.endsWith('/libc.so.6') && existsSync(join(dir, 'librt.so.1'))) libs.add(join(dir, 'librt.so.1'));
  }
  for (const l of [...libs].sort()) add(l, realpathSync(l));
  return files;
}
