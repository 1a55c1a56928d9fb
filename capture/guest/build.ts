/**
 * Builds the demo guest (samples/guest/: C, assembly, linker script) with the machine's `cc` at first use,
 * into cacheDir('guest')/<hash of the sources and flags>/demo.elf. Written to a temporary name and
 * renamed, so an interrupted build never leaves a bad entry; a changed source gives a new hash.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../src/cache.js';
import { UserError } from '../../src/errors.js';

/** Sources in the order cc gets them; work.h and link.ld are inputs too (hashed). */
const SOURCES = ['head.S', 'user.S', 'main.c'];
const LINKER_SCRIPT = 'link.ld';
/** A build takes well under a second; a compiler that hangs must not hang the capture. */
const BUILD_TIMEOUT_MS = 120_000;

/**
 * Freestanding, non-PIC, kernel code model (linked at 0xffffffff81000000), no red zone (no interrupts
 * could clobber it, but Linux's rule is kept), general registers only (CR4.OSFXSR is off at entry, so SSE
 * would fault), no CET endbr64 padding, no builtins (no memset calls or rep stos from the compiler).
 */
export const GUEST_CFLAGS = [
  '-ffreestanding', '-nostdlib', '-static', '-fno-pie', '-no-pie', '-mno-red-zone', '-mcmodel=kernel',
  '-mgeneral-regs-only', '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-fcf-protection=none',
  '-fno-builtin', '-O1', '-Wall',
];
const LDFLAGS = ['-Wl,--build-id=none', '-Wl,-z,max-page-size=0x1000', '-Wl,-z,noexecstack', '-Wl,--no-warn-rwx-segments'];

/** The repository root: the nearest folder above this file with samples/guest (works from dist/ too). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'samples', 'guest', 'main.c'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find samples/guest above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export function guestSourceDir(): string {
  return join(repoRoot(), 'samples', 'guest');
}

/** Hash of every file in samples/guest and of the flags: the cache key. */
export function guestSourceHash(dir = guestSourceDir()): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) {
    h.update(f + '\0');
    h.update(readFileSync(join(dir, f)));
  }
  h.update([...GUEST_CFLAGS, ...LDFLAGS].join(' '));
  return h.digest('hex').slice(0, 16);
}

/** Path of the built demo guest ELF, building it first if the cache has no entry for these sources. */
export function demoGuestPath(): string {
  const src = guestSourceDir();
  const dir = cacheDir('guest', guestSourceHash(src));
  const out = join(dir, 'demo.elf');
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `demo.elf.tmp-${process.pid}`);
  const cc = process.env.CC || 'cc';
  const args = [...GUEST_CFLAGS, ...LDFLAGS, `-Wl,-T,${join(src, LINKER_SCRIPT)}`, '-o', tmp, ...SOURCES.map((s) => join(src, s))];
  const r = spawnSync(cc, args, { cwd: src, encoding: 'utf8', timeout: BUILD_TIMEOUT_MS });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') throw new UserError(`cannot build the demo guest: ${cc} did not finish within ${BUILD_TIMEOUT_MS / 1000} s`);
    throw new UserError(`cannot build the demo guest: ${cc} not found (${code}); install gcc`);
  }
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const first = (r.stderr || r.stdout).trim().split('\n').find((l) => /error/i.test(l)) ?? r.stderr.trim().split('\n')[0];
    throw new UserError(`cannot build the demo guest with ${cc}: ${first.replaceAll(tmp, out)}`);
  }
  renameSync(tmp, out);
  return out;
}
