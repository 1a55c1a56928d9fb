/**
 * The QEMU engine, run mode: boots a kernel under qemu-system-x86_64 and records what the KVM engine
 * records, in the same files: console.log (`<t_us> <text>`, host microseconds since QEMU was started,
 * stamped when each line's newline reached us through the serial port's FIFO) and profile.json.
 *
 *   const r = await captureWithQemu({ kernel, initrd, cmdline: 'console=ttyS0 ...', memoryMiB: 512,
 *                                     outDir, timeoutS: 60, accel: 'auto' });
 *   r.profile.exit.reason   // 'shutdown' after the guest powers off
 *
 * A capture always ends: QEMU runs with -no-reboot, so a guest power-off or reset ends the process; a
 * guest that does neither is killed (its whole process group) at the timeout.
 * Like libguestfs boot-analysis, a partial line with no new byte for a while (PARTIAL_LINE_MS) is closed
 * and stamped with the time its last byte came (the kernel's real-mode "Probing EDD ... o" otherwise waits for the
 * decompressor and start_kernel, and would carry their time).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseFreeM, type GuestMemory } from '../../../analyzers/guest-memory.js';
import { UserError } from '../../../src/errors.js';
import type { StopReason } from '../kvm/exits.js';
import { qemuArgs, QEMU_BINARY, type Accel } from './qemu-args.js';
import { PARTIAL_LINE_MS, qemuInputs, qemuVersion, writeProfile, type QemuBaseOptions, type QemuProfileBase } from './qemu-common.js';
import { runQemu, type QemuRunResult } from './qemu-process.js';

// Imported from here by the CLI, tests and benchmarks.
export { findExecutable, PARTIAL_LINE_MS, QEMU_MISSING } from './qemu-common.js';

export interface QemuCaptureOptions extends QemuBaseOptions {
  /** Default 'auto': KVM only where it can run a guest (see chooseAccel), else TCG. */
  accel?: Accel;
  /** Close a partial line after this many ms without a byte (default 250). */
  partialLineMs?: number;
}

export interface QemuProfile extends QemuProfileBase {
  mode: 'run';
  clock: 'host';
  /** Host microseconds: qemu_start (spawn to running), first_output (to the first serial byte), boot_wait, total. */
  phases: Record<string, number>;
  /** rip and symbol are null: run mode under QEMU does not see the vCPU's registers. */
  exit: { reason: StopReason; rip: null; symbol: null; detail: string; qemu_status: number | null; qemu_signal: string | null };
  steps: 0;
  steps_per_second: 0;
  exits: 0;
  trace_lines: 0;
  /** The guest's own `free -m` (the appliance's /init prints it), or null when the console has none. */
  guest_memory: GuestMemory | null;
  symbols_us: 0;
}

export interface QemuCaptureResult {
  outDir: string;
  profile: QemuProfile;
  profileFile: string;
  consoleFile: string;
  /** True when the run should fail the command: QEMU failed after the guest started. */
  failed: boolean;
}

export async function captureWithQemu(o: QemuCaptureOptions): Promise<QemuCaptureResult> {
  const { qemu, kernel, initrd, accel } = qemuInputs(o, 'auto');

  const outDir = resolve(o.outDir);
  mkdirSync(outDir, { recursive: true });
  const consoleFile = join(outDir, 'console.log');
  const profileFile = join(outDir, 'profile.json');
  const version = qemuVersion(qemu);

  const run = await runQemu({
    qemu,
    args: (serial) => qemuArgs({ kernel, initrd, cmdline: o.cmdline, memoryMiB: o.memoryMiB, accel, serial, extraArgs: o.extraArgs }),
    consoleFile,
    timeoutS: o.timeoutS,
    echo: o.echo,
    partialLineMs: o.partialLineMs ?? PARTIAL_LINE_MS,
    signal: o.signal,
  });
  const detail = describeEnd(run);
  if (run.reason === 'internal-error' && run.consoleLines === 0) {
    // QEMU refused to start (bad kernel file, bad option): nothing was captured, say why in one line.
    const first = run.messages.split('\n').find((l) => l.trim()) ?? `exit status ${run.status}`;
    throw new UserError(`${QEMU_BINARY} failed before the guest ran: ${first.trim()}`);
  }
  const profile: QemuProfile = {
    engine: 'qemu',
    accel,
    qemu_version: version,
    qemu_args: run.args,
    kernel,
    initrd: initrd ?? null,
    cmdline: o.cmdline,
    mode: 'run',
    clock: 'host',
    memory_mib: o.memoryMiB,
    phases: run.phases,
    guest: run.markers,
    exit: { reason: run.reason, rip: null, symbol: null, detail, qemu_status: run.status, qemu_signal: run.signal },
    steps: 0,
    steps_per_second: 0,
    exits: 0,
    console_lines: run.consoleLines,
    trace_lines: 0,
    peak_rss_bytes: run.peakRss,
    peak_rss_source: run.peakRssSource,
    guest_memory: parseFreeM(readFileSync(consoleFile, 'utf8')),
    symbols_us: 0,
  };
  writeProfile(profileFile, profile);
  return { outDir, profile, profileFile, consoleFile, failed: run.reason === 'internal-error' };
}

function describeEnd(r: QemuRunResult): string {
  const qemuEnd = r.signal ? `QEMU killed by ${r.signal}` : `QEMU exited with status ${r.status}`;
  switch (r.reason) {
    case 'shutdown':
      return `guest powered off${r.lastKernelEnd ? ` ("${r.lastKernelEnd}")` : ''}; ${qemuEnd}`;
    case 'reset':
      return `guest reset${r.lastKernelEnd ? ` ("${r.lastKernelEnd}")` : ''}, ended by -no-reboot; ${qemuEnd}`;
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
