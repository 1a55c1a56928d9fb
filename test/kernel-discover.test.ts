/**
 * Kernel discovery: --kernel, the host's /boot, the cache, and the Debian download with fake apt-cache /
 * apt-get / dpkg scripts on PATH for every failure (no apt-get, download failure, corrupt .deb, package
 * without a kernel) and for the atomic cache; then one real `apt-get download` of the cloud kernel.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findStaticBusybox } from '../capture/appliance/busybox.js';
import { compareVersionsInNames } from '../capture/kernel/debian.js';
import { cachedKernels, describeKernelFile, findKernel, listKernels } from '../capture/kernel/discover.js';
import { UserError } from '../src/errors.js';
import { makeBzImage } from './bzimage-fixture.js';
import { CLI } from './helpers.js';
import { onPath } from './preconditions.js';

const root = mkdtempSync(join(tmpdir(), 'boot-trace-discover-'));
const quiet = (): void => {};
let saved: { path?: string; cache?: string };
let n = 0;

/** A fresh cache folder and a bin folder of fake tools that are the only things on PATH. */
function sandbox(tools: Record<string, string>): { cache: string; bin: string; log: string } {
  const dir = join(root, `case-${++n}`);
  const bin = join(dir, 'bin');
  const cache = join(dir, 'cache');
  mkdirSync(bin, { recursive: true });
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  for (const [name, body] of Object.entries(tools)) {
    const file = join(bin, name);
    writeFileSync(file, `#!/bin/sh\necho "${name} $*" >> ${log}\n${body}\n`);
    chmodSync(file, 0o755);
  }
  // The fakes are plain sh scripts: keep /bin for sh, cat, mkdir, but nothing that holds apt or dpkg.
  process.env.PATH = `${bin}:/nonexistent`;
  process.env.BOOT_TRACE_CACHE = cache;
  return { cache, bin, log };
}

const APT_CACHE = `case "$1" in depends) echo "linux-image-cloud-amd64"; echo "  Depends: linux-image-9.9.9-1-cloud-amd64";; *) exit 1;; esac`;
const APT_GET_OK = `[ "$1" = download ] || exit 1; /bin/echo fake-deb > "$2_9.9.9-1_amd64.deb"`;
/** dpkg -x DEB DIR: unpack a kernel package with a small bzImage-looking vmlinuz. */
const dpkgOk = (bz: string): string =>
  `[ "$1" = -x ] || exit 1; /bin/mkdir -p "$3/boot" && /bin/cp ${bz} "$3/boot/vmlinuz-9.9.9-1-cloud-amd64" && /bin/echo CONFIG_X=y > "$3/boot/config-9.9.9-1-cloud-amd64"`;

beforeEach(() => {
  saved = { path: process.env.PATH, cache: process.env.BOOT_TRACE_CACHE };
});
afterEach(() => {
  process.env.PATH = saved.path;
  if (saved.cache === undefined) delete process.env.BOOT_TRACE_CACHE;
  else process.env.BOOT_TRACE_CACHE = saved.cache;
});

const bzFile = join(root, 'fake-bzImage');
writeFileSync(bzFile, makeBzImage());
const noBoot = join(root, 'no-boot');

/** Entries of the kernels cache folder (temporary folders start with a dot). */
const cacheEntries = (cache: string): string[] => (existsSync(join(cache, 'kernels')) ? readdirSync(join(cache, 'kernels')) : []);

describe('findKernel without downloads', () => {
  it('uses --kernel when given, and names it when unreadable', async () => {
    sandbox({});
    await expect(findKernel({ kernel: bzFile })).resolves.toEqual({ path: bzFile, source: 'argument' });
    await expect(findKernel({ kernel: join(root, 'missing') })).rejects.toThrow(/--kernel .*missing: cannot read/);
  });

  it("prefers the host's /boot/vmlinuz-$(uname -r)", async () => {
    sandbox({});
    const boot = join(root, 'boot');
    mkdirSync(boot, { recursive: true });
    writeFileSync(join(boot, 'vmlinuz-1.2.3-test'), makeBzImage());
    await expect(findKernel({ bootDir: boot, hostRelease: '1.2.3-test' })).resolves.toEqual({ path: join(boot, 'vmlinuz-1.2.3-test'), source: 'host' });
    const listed = listKernels({ bootDir: boot });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ source: 'host', release: '1.2.3-test', format: 'bzImage lz4', protocol: '2.15' });
  });
});

describe('findKernel downloading with fake apt tools', () => {
  it('says apt-cache is missing when there are no apt tools', async () => {
    sandbox({});
    await expect(findKernel({ bootDir: noBoot, log: quiet })).rejects.toThrow(/^apt-cache not found.*--kernel FILE/);
  });

  it('reports a failed apt-get download in one line, suggests apt-get update, leaves no cache entry', async () => {
    const s = sandbox({ 'apt-cache': APT_CACHE, 'apt-get': 'echo "E: Unable to locate package $2" >&2; exit 100', dpkg: 'exit 0' });
    const err = await findKernel({ bootDir: noBoot, log: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(
      'apt-get download linux-image-9.9.9-1-cloud-amd64-unsigned failed (E: Unable to locate package linux-image-9.9.9-1-cloud-amd64-unsigned); check the network and run `apt-get update` (as root)',
    );
    expect(cacheEntries(s.cache)).toEqual([]);
  });

  it('reports apt-get missing when only apt-cache exists', async () => {
    const s = sandbox({ 'apt-cache': APT_CACHE });
    await expect(findKernel({ bootDir: noBoot, log: quiet })).rejects.toThrow(/^apt-get not found/);
    expect(cacheEntries(s.cache)).toEqual([]);
  });

  it('calls a .deb that dpkg cannot unpack corrupt, even after a partial unpack, and caches nothing', async () => {
    const s = sandbox({
      'apt-cache': APT_CACHE,
      'apt-get': APT_GET_OK,
      // Unpack half of it, then fail as dpkg-deb does on a truncated archive.
      dpkg: `/bin/mkdir -p "$3/boot"; /bin/echo partial > "$3/boot/vmlinuz-9.9.9-1-cloud-amd64"; echo "dpkg-deb: error: unexpected end of file in archive member header" >&2; exit 2`,
    });
    await expect(findKernel({ bootDir: noBoot, log: quiet })).rejects.toThrow(/^dpkg -x linux-image-9\.9\.9-1-cloud-amd64-unsigned_9\.9\.9-1_amd64\.deb failed \(dpkg-deb: error: unexpected end of file.*corrupt/);
    expect(cacheEntries(s.cache)).toEqual([]);
    expect(cachedKernels()).toEqual([]);
  });

  it('rejects a package without boot/vmlinuz-*', async () => {
    const s = sandbox({ 'apt-cache': APT_CACHE, 'apt-get': APT_GET_OK, dpkg: '/bin/mkdir -p "$3/usr/share/doc"' });
    await expect(findKernel({ bootDir: noBoot, log: quiet })).rejects.toThrow(/has no boot\/vmlinuz-\*/);
    expect(cacheEntries(s.cache)).toEqual([]);
  });

  it('downloads once into kernels/<release>/, then serves the cache without calling apt-get', async () => {
    const s = sandbox({ 'apt-cache': APT_CACHE, 'apt-get': APT_GET_OK, dpkg: dpkgOk(bzFile) });
    const lines: string[] = [];
    const first = await findKernel({ bootDir: noBoot, log: (l) => lines.push(l) });
    const expected = join(s.cache, 'kernels', '9.9.9-1-cloud-amd64', 'vmlinuz-9.9.9-1-cloud-amd64');
    expect(first).toEqual({ path: expected, source: 'downloaded' });
    expect(lines[0]).toMatch(/downloading linux-image-9\.9\.9-1-cloud-amd64-unsigned/);
    expect(readFileSync(expected).equals(readFileSync(bzFile))).toBe(true);
    expect(readdirSync(join(s.cache, 'kernels', '9.9.9-1-cloud-amd64')).sort()).toEqual(['config-9.9.9-1-cloud-amd64', 'vmlinuz-9.9.9-1-cloud-amd64']);
    expect(cacheEntries(s.cache)).toEqual(['9.9.9-1-cloud-amd64']); // no temporary folder left
    const calls = readFileSync(s.log, 'utf8');
    expect(calls).toMatch(/^apt-get download linux-image-9\.9\.9-1-cloud-amd64-unsigned$/m);

    writeFileSync(s.log, '');
    await expect(findKernel({ bootDir: noBoot, log: quiet })).resolves.toEqual({ path: expected, source: 'cache' });
    expect(readFileSync(s.log, 'utf8')).toBe('');
    expect(listKernels({ bootDir: noBoot })).toEqual([
      { path: expected, source: 'cache', release: '9.9.9-1-cloud-amd64', bytes: readFileSync(bzFile).length, format: 'bzImage lz4', protocol: '2.15' },
    ]);
  });

  it('falls back to the newest -unsigned package from apt-cache search when the meta-package is unknown', async () => {
    sandbox({
      'apt-cache': `case "$1" in depends) exit 100;; search) printf '%s\\n' 'linux-image-6.1.0-9-cloud-amd64-unsigned - x' 'linux-image-6.1.0-56-cloud-amd64-unsigned - x' 'linux-image-6.1.0-47-cloud-amd64-unsigned - x';; esac`,
      'apt-get': 'echo "E: fake $2" >&2; exit 100',
    });
    await expect(findKernel({ bootDir: noBoot, log: quiet })).rejects.toThrow(/apt-get download linux-image-6\.1\.0-56-cloud-amd64-unsigned failed/);
  });

  it('fetches busybox-static the same way when the host has no static busybox', async () => {
    const s = sandbox({
      'apt-get': `[ "$1" = download ] || exit 1; /bin/echo fake > "$2_1:1.35.0-4+b3_amd64.deb"`,
      dpkg: `/bin/mkdir -p "$3/bin" && /bin/cp ${process.execPath} "$3/bin/busybox"`,
    });
    // node itself stands in for busybox: the test only needs a static-or-not ELF; node is dynamic, so refused.
    await expect(findStaticBusybox({ hostPaths: [], log: quiet })).rejects.toThrow(/no static bin\/busybox/);
    expect(readdirSync(join(s.cache, 'busybox'))).toEqual([]);
  });
});

describe('helpers', () => {
  it('orders package names by their numbers', () => {
    const names = ['linux-image-6.12.117+deb12-cloud-amd64-unsigned', 'linux-image-6.1.0-56-cloud-amd64-unsigned', 'linux-image-6.1.0-9-cloud-amd64-unsigned'];
    expect([...names].sort(compareVersionsInNames)).toEqual([names[2], names[1], names[0]]);
  });

  it('describes ELF, bzImage and other files', () => {
    const elf = join(root, 'vmlinux');
    writeFileSync(elf, Buffer.from('\x7fELF\x02\x01\x01', 'latin1'));
    expect(describeKernelFile(elf).format).toBe('ELF vmlinux');
    expect(describeKernelFile(bzFile)).toMatchObject({ format: 'bzImage lz4', protocol: '2.15' });
    expect(describeKernelFile(join(root, 'calls-none')).format).toMatch(/^unreadable/);
  });
});

describe('boot-trace kernels', () => {
  it('lists the cached kernels as CSV', () => {
    const cache = join(root, 'cli-cache');
    mkdirSync(join(cache, 'kernels', '7.0.0-test'), { recursive: true });
    writeFileSync(join(cache, 'kernels', '7.0.0-test', 'vmlinuz-7.0.0-test'), makeBzImage());
    const r = spawnSync(process.execPath, [CLI, 'kernels', '--format', 'csv'], { encoding: 'utf8', env: { ...process.env, BOOT_TRACE_CACHE: cache } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`cache,7.0.0-test,bzImage lz4,2.15,${makeBzImage().length},${join(cache, 'kernels', '7.0.0-test', 'vmlinuz-7.0.0-test')}`);
  });
});

describe('the real download', () => {
  it("downloads Debian's current cloud kernel into an empty cache", async (ctx) => {
    if (!onPath('apt-get')) ctx.skip('no apt-get on this machine to download the kernel with');
    process.env.BOOT_TRACE_CACHE = join(root, 'real-cache');
    const found = await findKernel({ bootDir: noBoot, log: quiet });
    expect(found.source).toBe('downloaded');
    expect(found.path).toMatch(/kernels\/[^/]+-cloud-amd64\/vmlinuz-[^/]+-cloud-amd64$/);
    const info = describeKernelFile(found.path);
    expect(info.format).toMatch(/^bzImage (lz4|gzip|xz|zstd)$/);
    expect(info.bytes).toBeGreaterThan(5_000_000);
    expect(cacheEntries(process.env.BOOT_TRACE_CACHE).filter((e) => e.startsWith('.'))).toEqual([]);
  }, 300_000);
});
