/**
 * Fetching files out of Debian packages with the system's own tools: `apt-get download PKG` (no root
 * needed, nothing installed) then `dpkg -x` into a private folder. Used for the default kernel
 * (linux-image-*-cloud-amd64-unsigned) and the appliance's static busybox (busybox-static).
 *
 * Safety: everything happens in a temporary folder next to the cache entry; the caller renames the
 * finished entry into place, so a failed or interrupted download never leaves a bad cache entry.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { messageOf, UserError } from '../../src/errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a program (looked up on PATH at call time) and collect its output; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], cwd?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, maxBuffer: 64 << 20, env: process.env }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new UserError(`${cmd} not found on PATH`));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** The last non-empty line of a tool's stderr, for a one-line error message. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('W: '));
  return lines[lines.length - 1] ?? 'no message';
}

/**
 * The name of the current Debian cloud kernel package that carries an unsigned vmlinuz:
 * the version the `linux-image-cloud-amd64` meta-package depends on (what this Debian release calls
 * current), else the highest-versioned `linux-image-*-cloud-amd64-unsigned` that apt can download.
 */
export async function currentCloudKernelPackage(): Promise<string> {
  const dep = await run('apt-cache', ['depends', 'linux-image-cloud-amd64']).catch(() => null);
  if (dep === null) throw new UserError('apt-cache not found: cannot look up Debian\'s cloud kernel; pass --kernel FILE');
  const m = /Depends:\s*(linux-image-[0-9][^\s]*-cloud-amd64)\s*$/m.exec(dep.stdout);
  if (dep.code === 0 && m) return `${m[1]}-unsigned`;

  const search = await run('apt-cache', ['search', '--names-only', '^linux-image-[0-9].*-cloud-amd64-unsigned$']);
  const names = search.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => /^linux-image-[0-9].*-cloud-amd64-unsigned$/.test(n));
  if (names.length === 0) {
    throw new UserError('apt-cache knows no linux-image-*-cloud-amd64-unsigned package; run `apt-get update` (as root) or pass --kernel FILE');
  }
  names.sort(compareVersionsInNames);
  return names[names.length - 1]!;
}

/** Order package names by the numbers in them (6.1.0-9 < 6.1.0-56 < 6.12.117). */
export function compareVersionsInNames(a: string, b: string): number {
  const na = a.match(/\d+/g)?.map(Number) ?? [];
  const nb = b.match(/\d+/g)?.map(Number) ?? [];
  for (let i = 0; i < Math.max(na.length, nb.length); i++) {
    const d = (na[i] ?? -1) - (nb[i] ?? -1);
    if (d !== 0) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Download `pkg` with apt-get into a new temporary folder under `parentDir` and unpack it there with
 * dpkg -x. Returns the temporary folder (the caller moves what it needs out and removes it with
 * removeTemp) and the unpacked root inside it. Throws a one-line UserError naming the failed step.
 */
export async function downloadAndUnpack(pkg: string, parentDir: string): Promise<{ tmp: string; root: string }> {
  const tmp = mkdtempSync(join(parentDir, '.tmp-'));
  try {
    let dl: RunResult;
    try {
      dl = await run('apt-get', ['download', pkg], tmp);
    } catch {
      throw new UserError(`apt-get not found: cannot download ${pkg}; pass the file yourself (--kernel / --initrd)`);
    }
    if (dl.code !== 0) {
      throw new UserError(`apt-get download ${pkg} failed (${lastLine(dl.stderr)}); check the network and run \`apt-get update\` (as root)`);
    }
    const debs = readdirSync(tmp).filter((f) => f.endsWith('.deb'));
    if (debs.length !== 1) throw new UserError(`apt-get download ${pkg} left ${debs.length} .deb files in ${tmp}, expected 1`);
    const root = join(tmp, 'root');
    let x: RunResult;
    try {
      x = await run('dpkg', ['-x', debs[0]!, root], tmp);
    } catch {
      throw new UserError(`dpkg not found: cannot unpack ${debs[0]}`);
    }
    if (x.code !== 0) throw new UserError(`dpkg -x ${debs[0]} failed (${lastLine(x.stderr)}); the download is corrupt, try again`);
    return { tmp, root };
  } catch (err) {
    removeTemp(tmp);
    if (err instanceof UserError) throw err;
    throw new UserError(`fetching ${pkg}: ${messageOf(err)}`);
  }
}

export function removeTemp(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
