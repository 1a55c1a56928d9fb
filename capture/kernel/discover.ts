/**
 * Which kernel a default `boot-trace capture` boots, and where it comes from:
 *   1. `--kernel FILE` when given (must be readable);
 *   2. the host's /boot/vmlinuz-$(uname -r) when readable;
 *   3. a Debian cloud kernel already in cacheDir('kernels') (the newest one), so runs after the first
 *      work offline and keep booting the same kernel;
 *   4. else the current Debian cloud kernel, fetched with `apt-get download` + `dpkg -x` into
 *      cacheDir('kernels')/<release>/ {vmlinuz-<release>, config-<release>}.
 *
 * Entry points: findKernel(opts) for capture, listKernels() for `boot-trace kernels`.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { cacheDir } from '../../src/cache.js';
import { messageOf, UserError } from '../../src/errors.js';
import { compareVersionsInNames, currentCloudKernelPackage, downloadAndUnpack, removeTemp } from './debian.js';
import { detectFormat } from './payload.js';

export type KernelSource = 'argument' | 'host' | 'cache' | 'downloaded';

export interface FoundKernel {
  path: string;
  source: KernelSource;
}

export interface FindKernelOptions {
  /** --kernel FILE. */
  kernel?: string;
  /** Where the host's kernels are (default /boot); tests point it elsewhere. */
  bootDir?: string;
  /** The running kernel's release (default os.release()). */
  hostRelease?: string;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The kernel a capture should boot; downloads Debian's cloud kernel as a last resort. */
export async function findKernel(opts: FindKernelOptions = {}): Promise<FoundKernel> {
  if (opts.kernel !== undefined) {
    try {
      accessSync(opts.kernel, constants.R_OK);
    } catch (err) {
      throw new UserError(`--kernel ${opts.kernel}: cannot read (${messageOf(err)})`);
    }
    return { path: opts.kernel, source: 'argument' };
  }
  const host = join(opts.bootDir ?? '/boot', `vmlinuz-${opts.hostRelease ?? release()}`);
  if (readable(host)) return { path: host, source: 'host' };
  const cached = cachedKernels();
  if (cached.length > 0) return { path: cached[cached.length - 1]!.path, source: 'cache' };
  const path = await downloadCloudKernel(opts.log ?? ((l) => process.stderr.write(`${l}\n`)));
  return { path, source: 'downloaded' };
}

/** vmlinuz files in cacheDir('kernels'), oldest release first. */
export function cachedKernels(): { release: string; path: string; config?: string }[] {
  const base = cacheDir('kernels');
  const out: { release: string; path: string; config?: string }[] = [];
  for (const rel of readdirSync(base)) {
    if (rel.startsWith('.')) continue; // temporary folders of downloads in progress
    const path = join(base, rel, `vmlinuz-${rel}`);
    if (!readable(path)) continue;
    const config = join(base, rel, `config-${rel}`);
    out.push({ release: rel, path, config: existsSync(config) ? config : undefined });
  }
  return out.sort((a, b) => compareVersionsInNames(a.release, b.release));
}

/**
 * Download the current Debian cloud kernel into cacheDir('kernels')/<release>/ and return its vmlinuz.
 * Everything is assembled in a temporary folder and renamed into place as a whole.
 */
export async function downloadCloudKernel(log: (line: string) => void): Promise<string> {
  const pkg = await currentCloudKernelPackage();
  const base = cacheDir('kernels');
  log(`boot-trace: no kernel given and none in /boot; downloading ${pkg} (about 26 MB) with apt-get into ${base}`);
  const { tmp, root } = await downloadAndUnpack(pkg, base);
  try {
    const bootDir = join(root, 'boot');
    const vmlinuz = existsSync(bootDir) ? readdirSync(bootDir).find((f) => f.startsWith('vmlinuz-')) : undefined;
    if (!vmlinuz) throw new UserError(`${pkg}: the package has no boot/vmlinuz-*; not a kernel image package?`);
    const rel = vmlinuz.slice('vmlinuz-'.length);
    const entry = join(tmp, rel);
    mkdirSync(entry);
    renameSync(join(bootDir, vmlinuz), join(entry, vmlinuz));
    if (existsSync(join(bootDir, `config-${rel}`))) renameSync(join(bootDir, `config-${rel}`), join(entry, `config-${rel}`));
    const final = join(base, rel);
    if (!existsSync(final)) {
      try {
        renameSync(entry, final);
      } catch (err) {
        // Another process may have finished the same download first; its entry is as good as ours.
        if (!existsSync(join(final, vmlinuz))) throw err;
      }
    }
    log(`boot-trace: cached ${join(final, vmlinuz)}`);
    return join(final, vmlinuz);
  } finally {
    removeTemp(tmp);
  }
}

export interface KernelInfo {
  path: string;
  source: 'host' | 'cache';
  /** Kernel release from the file name (vmlinuz-<release>). */
  release: string;
  bytes: number;
  /** 'bzImage <compression>' , 'ELF vmlinux', or 'unknown'. */
  format: string;
  /** Boot protocol version for a bzImage, e.g. '2.15'. */
  protocol?: string;
}

/** What `boot-trace kernels` shows: the host's /boot kernels and the cached ones. */
export function listKernels(opts: { bootDir?: string } = {}): KernelInfo[] {
  const out: KernelInfo[] = [];
  const bootDir = opts.bootDir ?? '/boot';
  let hostFiles: string[] = [];
  try {
    hostFiles = readdirSync(bootDir).filter((f) => f.startsWith('vmlinuz-')).sort(compareVersionsInNames);
  } catch {
    /* no /boot: containers and CI */
  }
  for (const f of hostFiles) {
    const path = join(bootDir, f);
    out.push({ path, source: 'host', release: f.slice('vmlinuz-'.length), ...describeKernelFile(path) });
  }
  for (const k of cachedKernels()) out.push({ path: k.path, source: 'cache', release: k.release, ...describeKernelFile(k.path) });
  return out;
}

/** Size and format of a kernel file, from its first 64 KiB. */
export function describeKernelFile(path: string): { bytes: number; format: string; protocol?: string } {
  let bytes = 0;
  let head: Buffer;
  try {
    bytes = statSync(path).size;
    head = Buffer.alloc(Math.min(bytes, 65536));
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return { bytes, format: `unreadable (${messageOf(err)})` };
  }
  if (head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46) return { bytes, format: 'ELF vmlinux' };
  if (head.length >= 0x264 && head.readUInt32LE(0x202) === 0x53726448) {
    const v = head.readUInt16LE(0x206);
    const protocol = `${v >> 8}.${(v & 0xff).toString().padStart(2, '0')}`;
    const start = ((head[0x1f1] || 4) + 1) * 512 + head.readUInt32LE(0x248);
    const fmt = start + 8 <= head.length ? detectFormat(head.subarray(start)) : null;
    return { bytes, format: `bzImage ${fmt ?? 'unknown compression'}`, protocol };
  }
  return { bytes, format: 'unknown' };
}

/** The kernel config next to a cached or host kernel (config-<release>), if present. */
export function kernelConfig(vmlinuzPath: string): string | undefined {
  const m = /^(.*)\/vmlinuz-([^/]+)$/.exec(vmlinuzPath);
  if (!m) return undefined;
  const path = `${m[1]}/config-${m[2]}`;
  return readable(path) ? readFileSync(path, 'latin1') : undefined;
}
