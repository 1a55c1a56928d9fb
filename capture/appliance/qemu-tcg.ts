/**
 * Boot a kernel + initrd under QEMU with TCG (software emulation, works without usable KVM) and collect
 * its serial console. A cross-check tool for the appliance and for kallsyms decoding (the tests take a
 * /proc/kallsyms dump with it), not the QEMU capture engine; it runs QEMU the engine's way (runQemu), so
 * the serial port comes through a FIFO and no byte is lost when Node is slow to read (QEMU's stdout
 * lost some: see qemu-args.ts).
 *
 *   const r = await bootQemuTcg({ kernel, initrd, append: 'console=ttyS0 nokaslr panic=-1' });
 *   r.console  // everything the kernel and its userland wrote to ttyS0, one '\n' per line
 */
import { spawnSync } from 'node:child_process';
import { findExecutable, QEMU_MISSING } from '../engines/qemu/qemu-common.js';
import { qemuArgs, QEMU_BINARY } from '../engines/qemu/qemu-args.js';
import { runQemu } from '../engines/qemu/qemu-process.js';
import { UserError } from '../../src/errors.js';

export const QEMU = QEMU_BINARY;

export interface QemuBootOptions {
  kernel: string;
  initrd: string;
  append: string;
  /** Guest RAM in MiB (default 512). */
  memMiB?: number;
  /** Kill QEMU after this long (default 120 s). */
  timeoutMs?: number;
}

export interface QemuBootResult {
  /** The console's lines, carriage returns dropped, each ending in '\n'. */
  console: string;
  /** QEMU's exit code (0 after a guest power-off or reset with -no-reboot), null if killed. */
  code: number | null;
  timedOut: boolean;
  ms: number;
  /** QEMU's own messages (its stdout and stderr). */
  stderr: string;
}

/** True when qemu-system-x86_64 runs here. */
export function haveQemu(): boolean {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

export async function bootQemuTcg(opts: QemuBootOptions): Promise<QemuBootResult> {
  if (!findExecutable(QEMU)) throw new UserError(QEMU_MISSING);
  const lines: string[] = [];
  const t0 = performance.now();
  const r = await runQemu({
    qemu: QEMU,
    args: (serial) => qemuArgs({ kernel: opts.kernel, initrd: opts.initrd, cmdline: opts.append, memoryMiB: opts.memMiB ?? 512, accel: 'tcg', serial, firmwareOnSerial: false }),
    // The stamped console.log is not wanted here: the text comes through echo.
    consoleFile: '/dev/null',
    timeoutS: (opts.timeoutMs ?? 120_000) / 1000,
    echo: (text) => void lines.push(text),
    // Lines are only joined here, never stamped: close a partial line only at the end.
    partialLineMs: 3_600_000,
  });
  return {
    console: lines.join(''),
    code: r.status,
    timedOut: r.reason === 'timeout',
    ms: performance.now() - t0,
    stderr: r.messages,
  };
}
