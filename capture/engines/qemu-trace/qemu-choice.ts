/**
 * Which QEMU a trace-mode capture runs. QEMU 10 (plugin API 4) reads the registers at each system call, so
 * the syscalls analyzer can name each call's process; Debian 12's QEMU 7.2 cannot (docs/whole-boot.md,
 * "QEMU 10"). scripts/setup.sh unpacks QEMU 10 into the cache (scripts/qemu10.sh), never installs it, so a
 * bare `capture` (`npm start`) would not find it on PATH. Order, first that applies:
 *   1. the engine's setting (tests, callers);
 *   2. $BOOT_TRACE_QEMU (a name on PATH or a path; `BOOT_TRACE_QEMU=qemu-system-x86_64` asks for PATH's);
 *   3. the cached QEMU 10 wrapper `<cacheDir>/qemu10/qemu-system-x86_64`, when it runs and says version >= 10;
 *   4. qemu-system-x86_64 on PATH.
 * Only trace mode uses 3: boot and step modes keep the system's QEMU (KVM acceleration, gdbstub behaviour
 * measured on 7.2, docs/qemu-engine.md).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../../src/cache.js';
import { pluginApiFor } from './plugin-build.js';

export type QemuChosenBy = 'setting' | 'BOOT_TRACE_QEMU' | 'qemu10-cache' | 'PATH';

export interface QemuChoice {
  /** The binary to run (undefined: qemu-system-x86_64 on PATH, as qemuInputs looks it up). */
  qemu?: string;
  chosenBy: QemuChosenBy;
}

/** Where scripts/qemu10.sh writes its wrapper (the folder is not created here). */
export function cachedQemu10Path(): string {
  return join(cacheDir(), 'qemu10', 'qemu-system-x86_64');
}

const works = new Map<string, boolean>();

/** The cached QEMU 10 wrapper when it exists, runs, and reports version 10 or later; else null. */
export function cachedQemu10(): string | null {
  const path = cachedQemu10Path();
  if (!existsSync(path)) return null;
  let ok = works.get(path);
  if (ok === undefined) {
    const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    ok = r.status === 0 && pluginApiFor(r.stdout.split('\n')[0] ?? '') >= 4;
    works.set(path, ok);
  }
  return ok ? path : null;
}

/** The QEMU a trace-mode capture runs, and what chose it (order above). */
export function chooseTraceQemu(setting: string | undefined): QemuChoice {
  if (setting !== undefined) return { qemu: setting, chosenBy: 'setting' };
  const env = process.env.BOOT_TRACE_QEMU;
  if (env) return { qemu: env, chosenBy: 'BOOT_TRACE_QEMU' };
  const q10 = cachedQemu10();
  return q10 !== null ? { qemu: q10, chosenBy: 'qemu10-cache' } : { chosenBy: 'PATH' };
}
