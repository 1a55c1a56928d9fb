/**
 * Builds boot-trace's QEMU TCG plugin (plugin/boot-trace-plugin.c) with the machine's `cc` at first use,
 * into cacheDir('qemu-plugin')/<hash of the source and flags>/boot-trace-plugin.so: written to a temporary
 * name and renamed, so an interrupted build never leaves a bad entry, and a changed source gets a new
 * hash. (Like the demo guest, capture/guest/build.ts.)
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../../src/cache.js';
import { UserError } from '../../../src/errors.js';

export const PLUGIN_CFLAGS = ['-O2', '-shared', '-fPIC', '-fvisibility=hidden', '-Wall', '-Wextra'];
const LIBS = ['-lpthread', '-ldl'];
const BUILD_TIMEOUT_MS = 120_000;

/** The plugin's C source: next to this file in the source tree (dist/ has no .c files, so look up from there). */
export function pluginSource(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const f = join(dir, 'capture', 'engines', 'qemu-trace', 'plugin', 'boot-trace-plugin.c');
    if (existsSync(f)) return f;
    const local = join(dir, 'plugin', 'boot-trace-plugin.c');
    if (existsSync(local)) return local;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find plugin/boot-trace-plugin.c above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/**
 * The plugin API a QEMU takes, from its `--version` line: 4 from QEMU 10 on (registers and guest memory
 * at system call entries), else 1 (QEMU 7.2, Debian 12). QEMU 8 and 9 are not supported by either build.
 */
export function pluginApiFor(qemuVersion: string): 1 | 4 {
  const m = /version (\d+)\./.exec(qemuVersion);
  return m && Number(m[1]) >= 10 ? 4 : 1;
}

/**
 * The path of the plugin built for plugin API `api` (1: QEMU 7.2, 4: QEMU 10), building it first if the
 * cache has none for this source. Throws UserError when there is no `cc` (install gcc) or the build
 * fails (its first error line).
 */
export function pluginPath(api: 1 | 4 = 1): string {
  const src = pluginSource();
  const flags = [...PLUGIN_CFLAGS, `-DBT_API=${api}`];
  const hash = createHash('sha256').update(readFileSync(src)).update(flags.join(' ')).digest('hex').slice(0, 16);
  const dir = cacheDir('qemu-plugin', hash);
  const out = join(dir, 'boot-trace-plugin.so');
  if (existsSync(out)) return out;
  const tmp = join(dir, `boot-trace-plugin.so.tmp-${process.pid}`);
  const cc = process.env.CC || 'cc';
  const r = spawnSync(cc, [...flags, '-o', tmp, src, ...LIBS], { encoding: 'utf8', timeout: BUILD_TIMEOUT_MS });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') throw new UserError(`cannot build the QEMU tracing plugin: ${cc} did not finish within ${BUILD_TIMEOUT_MS / 1000} s`);
    throw new UserError(`cannot build the QEMU tracing plugin: ${cc} not found (${code}); apt-get install gcc`);
  }
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const lines = (r.stderr || r.stdout).trim().split('\n');
    throw new UserError(`cannot build the QEMU tracing plugin with ${cc}: ${lines.find((l) => /error/i.test(l)) ?? lines[0]}`);
  }
  renameSync(tmp, out);
  return out;
}
