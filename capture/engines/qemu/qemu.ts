/**
 * The QEMU engine, run mode: boots a kernel under qemu-system-x86_64 and records what the KVM engine
 * records, in the same files: console.log (`<t_us> <text>`, host microseconds since QEMU was started,
 * stamped when each line's newline reached us through the serial port's FIFO) and profile.json.
 *
 *   const r = await captureWithQemu({ kernel, initrd, cmdline: 'console=ttyS0 ...', memoryMiB: 256,
 *                                     outDir, timeoutS: 60, accel: 'auto' });
 *   r.profile.exit.reason   // 'shutdown' after the guest powers off
 *
 * As an engine (capture/engines/engine.ts) it is qemuRunEngine(); captureWithQemu runs it through
 * recordCapture, which writes profile.json.
 *
 * A capture always ends: QEMU runs with -no-reboot, so a guest power-off or reset ends the process; a
 * guest that does neither is killed (its whole process group) at the timeout.
 * Like libguestfs boot-analysis, a partial line with no new byte for a while (PARTIAL_LINE_MS) is closed
 * and stamped with the time its last byte came (the kernel's real-mode "Probing EDD ... o" otherwise waits for the
 * decompressor and start_kernel, and would carry their time).
 */
import { resolve } from 'node:path';
import { UserError } from '../../../src/errors.js';
import type { QemuPart } from '../../output/profile.js';
import { markersToUs, type CaptureEngine, type EngineOutcome, type EngineRequest } from '../engine.js';
import { recordCapture, type CaptureRun } from '../record.js';
import { qemuArgs, QEMU_BINARY, type Accel } from './qemu-args.js';
import { PARTIAL_LINE_MS, QEMU_DEFAULT_CMDLINE, qemuInputs, qemuVersion, type QemuBaseOptions, type QemuInputs } from './qemu-common.js';
import { runQemu, type QemuRunResult } from './qemu-process.js';

// Imported from here by the CLI, tests and benchmarks.
export { findExecutable, PARTIAL_LINE_MS, QEMU_DEFAULT_CMDLINE, QEMU_MISSING } from './qemu-common.js';

/** What the QEMU run engine takes besides the common request. */
export interface QemuRunSettings {
  /** Default 'auto': KVM only where it can run a guest (see chooseAccel), else TCG. */
  accel?: Accel;
  /** Close a partial line after this many ms without a byte (default 250). */
  partialLineMs?: number;
  /** More QEMU arguments, appended as given. */
  extraArgs?: readonly string[];
  /** The QEMU binary (a name looked up on PATH, or a path). */
  qemu?: string;
  /** Console lines to a function instead of stderr (with the request's echo). */
  echo?: (text: string) => void;
}

/** The QEMU engine in run mode. */
export function qemuRunEngine(s: QemuRunSettings = {}): CaptureEngine {
  return {
    name: 'qemu',
    modes: ['run'],
    defaultCmdline: QEMU_DEFAULT_CMDLINE,
    check(r) {
      if (r.blockIrq) throw new UserError('--block-irq applies to step mode');
      inputsOf(r, s); // QEMU, the files and the accelerator: refused before the output folder is touched
    },
    run: (r) => runQemuEngine(r, s),
  };
}

export interface QemuCaptureOptions extends QemuBaseOptions, Omit<QemuRunSettings, 'echo'> {
  /** Empty a non-empty output folder first. */
  force?: boolean;
}

/** Boot under QEMU in run mode and write the capture folder (recordCapture: the same profile as `capture`). */
export function captureWithQemu(o: QemuCaptureOptions): Promise<CaptureRun> {
  return recordCapture(
    qemuRunEngine({
      ...(o.accel !== undefined ? { accel: o.accel } : {}),
      ...(o.partialLineMs !== undefined ? { partialLineMs: o.partialLineMs } : {}),
      ...(o.extraArgs !== undefined ? { extraArgs: o.extraArgs } : {}),
      ...(o.qemu !== undefined ? { qemu: o.qemu } : {}),
      ...(typeof o.echo === 'function' ? { echo: o.echo } : {}),
    }),
    {
      kernel: resolve(o.kernel),
      ...(o.initrd !== undefined ? { initrd: resolve(o.initrd) } : {}),
      cmdline: o.cmdline,
      memoryMiB: o.memoryMiB,
      mode: 'run',
      clock: 'host',
      timeoutS: o.timeoutS,
      outDir: o.outDir,
      blockIrq: false,
      echo: o.echo !== undefined && o.echo !== false,
      progress: false,
      signal: o.signal ?? new AbortController().signal,
    },
    { force: o.force ?? false },
  );
}

async function runQemuEngine(r: EngineRequest, s: QemuRunSettings): Promise<EngineOutcome> {
  const { qemu, kernel, initrd, accel } = inputsOf(r, s);
  const version = qemuVersion(qemu);
  const run = await runQemu({
    qemu,
    args: (serial) => qemuArgs({ kernel, initrd, cmdline: r.cmdline, memoryMiB: r.memoryMiB, accel, serial, extraArgs: s.extraArgs }),
    consoleFile: resolve(r.outDir, 'console.log'),
    timeoutS: r.timeoutS,
    echo: r.echo ? (s.echo ?? true) : false,
    partialLineMs: s.partialLineMs ?? PARTIAL_LINE_MS,
    signal: r.signal,
  });
  if (run.reason === 'internal-error' && run.consoleLines === 0) {
    // QEMU refused to start (bad kernel file, bad option): nothing was captured, say why in one line.
    const first = run.messages.split('\n').find((l) => l.trim()) ?? `exit status ${run.status}`;
    throw new UserError(`${QEMU_BINARY} failed before the guest ran: ${first.trim()}`);
  }
  const part: QemuPart = { accel, version, args: run.args, status: run.status, signal: run.signal, gdbstub: null };
  return {
    cmdline: r.cmdline,
    phases_us: run.phases,
    guest_markers_us: markersToUs(run.markers),
    // rip and symbol are null: run mode under QEMU does not see the vCPU's registers.
    exit: { reason: run.reason, rip: null, symbol: null, detail: describeEnd(run) },
    console_lines: run.consoleLines,
    peak_rss_mib: run.peakRss === null ? null : run.peakRss / (1024 * 1024),
    peak_rss_source: run.peakRssSource,
    step: null,
    part: { qemu: part },
  };
}

function inputsOf(r: Pick<EngineRequest, 'kernel' | 'initrd' | 'timeoutS'>, s: QemuRunSettings): QemuInputs {
  return qemuInputs({ kernel: r.kernel, ...(r.initrd !== undefined ? { initrd: r.initrd } : {}), timeoutS: r.timeoutS, accel: s.accel ?? 'auto', ...(s.qemu !== undefined ? { qemu: s.qemu } : {}) }, 'auto');
}

function describeEnd(r: QemuRunResult): string {
  const qemuEnd = r.signal ? `QEMU killed by ${r.signal}` : `QEMU exited with status ${r.status}`;
  switch (r.reason) {
    case 'shutdown':
      return `guest powered off${r.lastKernelEnd ? ` ("${r.lastKernelEnd}")` : ''}; ${qemuEnd}`;
    case 'reset':
      return r.lastKernelEnd
        ? `guest reset ("${r.lastKernelEnd}"), ended by -no-reboot; ${qemuEnd}`
        : `guest reset without a kernel restart or power-off line (a triple fault: a crash before the console was up?), ended by -no-reboot; ${qemuEnd}`;
    case 'timeout':
      return `timeout: the guest neither powered off nor reset; ${qemuEnd}`;
    case 'interrupted':
      return `interrupted; ${qemuEnd}`;
    default: {
      const first = r.messages.split('\n').find((l) => l.trim());
      return `${qemuEnd}${first ? `: ${first.trim()}` : ''}`;
    }
  }
}

/** What captureWithQemu returns: the capture folder and its profile, as every capture path. */
export type QemuCaptureResult = CaptureRun;
