import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The folder where downloaded or built third-party binaries live (kernels, busybox, the demo guest):
 * `$XDG_CACHE_HOME/boot-trace`, else `~/.cache/boot-trace`. Never inside the repository.
 * `BOOT_TRACE_CACHE` overrides it (tests point it at a temporary folder).
 */
export function cacheDir(...sub: string[]): string {
  const base =
    process.env.BOOT_TRACE_CACHE ??
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boot-trace');
  const dir = join(base, ...sub);
  mkdirSync(dir, { recursive: true });
  return dir;
}
