/**
 * A statically linked busybox for the appliance: the host's (/bin/busybox, /usr/bin/busybox) when it is
 * static, else one already in cacheDir('busybox'), else Debian's busybox-static fetched with
 * `apt-get download` + `dpkg -x` (same safety as the kernel: temp folder, then rename).
 * A dynamically linked busybox would need the host's libc inside the initramfs, so it is never used.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../src/cache.js';
import { UserError } from '../../src/errors.js';
import { compareVersionsInNames, downloadAndUnpack, removeTemp } from '../kernel/debian.js';

const PT_INTERP = 3;

/** True for a 64-bit x86-64 ELF executable without PT_INTERP (statically linked). */
export function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return false;
  if (buf.readUInt16LE(18) !== 62) return false;
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  if (phnum === 0 || phoff + phnum * phentsize > buf.length) return false;
  for (let i = 0; i < phnum; i++) if (buf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return false;
  return true;
}

export interface FoundBusybox {
  path: string;
  source: 'argument' | 'host' | 'cache' | 'downloaded';
}

function staticBusyboxAt(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return isStaticElf(readFileSync(path));
  } catch {
    return false;
  }
}

/** Host candidates first (no download), then the cache, then Debian's busybox-static. */
export async function findStaticBusybox(opts: { busybox?: string; hostPaths?: string[]; log?: (line: string) => void } = {}): Promise<FoundBusybox> {
  if (opts.busybox !== undefined) return { path: opts.busybox, source: 'argument' };
  for (const p of opts.hostPaths ?? ['/bin/busybox', '/usr/bin/busybox', '/sbin/busybox']) {
    if (staticBusyboxAt(p)) return { path: p, source: 'host' };
  }
  const base = cacheDir('busybox');
  const cached = readdirSync(base)
    .filter((d) => !d.startsWith('.') && staticBusyboxAt(join(base, d, 'busybox')))
    .sort(compareVersionsInNames);
  if (cached.length > 0) return { path: join(base, cached[cached.length - 1]!, 'busybox'), source: 'cache' };

  const log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
  log(`boot-trace: no static busybox on this host; downloading busybox-static with apt-get into ${base}`);
  const { tmp, root } = await downloadAndUnpack('busybox-static', base);
  try {
    const found = ['bin/busybox', 'usr/bin/busybox'].map((p) => join(root, p)).find((p) => existsSync(p));
    if (!found || !isStaticElf(readFileSync(found))) throw new UserError('busybox-static: the package has no static bin/busybox');
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb')) ?? 'busybox-static_unknown';
    const version = deb.replace(/\.deb$/, '').split('_')[1] ?? 'unknown';
    const entry = join(tmp, 'entry');
    mkdirSync(entry);
    renameSync(found, join(entry, 'busybox'));
    const final = join(base, version.replace(/[^A-Za-z0-9.+~-]/g, '_'));
    if (!existsSync(final)) renameSync(entry, final);
    return { path: join(final, 'busybox'), source: 'downloaded' };
  } finally {
    removeTemp(tmp);
  }
}
