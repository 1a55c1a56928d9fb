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
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { parseFreeM, type GuestMemory } from '../../analyzers/guest-memory.js';
import { messageOf, UserError } from '../../src/errors.js';
import type { StopReason } from '../exits.js';
import { chooseAccel, qemuArgs, QEMU_BINARY, type Accel } from './qemu-args.js';
import { runQemu, type QemuRunResult } from './qemu-process.js';

export interface QemuCaptureOptions {
  kernel: string;
  initrd?: string;
  cmdline: string;
  memoryMiB: number;
  outDir: string;
  /** Seconds until QEMU is killed. */
  timeoutS: number;
  /** Default 'auto': KVM only where it can run a guest (see chooseAccel), else TCG. */
  accel?: Accel;
  /** More QEMU arguments, appended as given. */
  extraArgs?: readonly string[];
  /** Copy the guest's console to stderr (true) or to a function, line by line. */
  echo?: boolean | ((text: string) => void);
  /** The QEMU binary (a name looked up on PATH, or a path); default qemu-system-x86_64. */
  qemu?: string;
  /** Close a partial line after this many ms without a byte (default 250). */
  partialLineMs?: number;
  /** Abort the capture (e.g. on Ctrl-C): QEMU is killed, exit reason 'interrupted'. */
  signal?: AbortSignal;
}

export interface QemuProfile {
  engine: 'qemu';
  accel: 'kvm' | 'tcg';
  qemu_version: string;
  qemu_args: string[];
  kernel: string;
  initrd: string | null;
  cmdline: string;
  mode: 'run';
  clock: 'host';
  memory_mib: number;
  /** Host microseconds: qemu_start (spawn to running), first_output (to the first serial byte), boot_wait, total. */
  phases: Record<string, number>;
  /** Guest-reported stage times in nanoseconds (BOOT_TIME:<stage>:<ns> console lines). */
  guest: Record<string, number>;
  /** rip and symbol are null: run mode under QEMU does not see the vCPU's registers. */
  exit: { reason: StopReason; rip: null; symbol: null; detail: string; qemu_status: number | null; qemu_signal: string | null };
  steps: 0;
  steps_per_second: 0;
  exits: 0;
  console_lines: number;
  trace_lines: 0;
  /** QEMU's peak RSS; null if it could not be measured. */
  peak_rss_bytes: number | null;
  peak_rss_source: 'rusage' | 'vmhwm' | null;
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

export const QEMU_MISSING = `${QEMU_BINARY} not found: apt-get install qemu-system-x86`;
/**
 * libguestfs closes a partial line after 10 ms under KVM; under TCG SeaBIOS itself pauses longer than
 * that in the middle of its lines, so the wait here is longer. The stamp is the last byte's time either way.
 */
export const PARTIAL_LINE_MS = 250;

/** The path of an executable: `name` itself if it has a slash, else the first match on PATH. */
export function findExecutable(name: string, path = process.env.PATH ?? ''): string | null {
  const candidates = name.includes('/') ? [name] : path.split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return null;
}

export async function captureWithQemu(o: QemuCaptureOptions): Promise<QemuCaptureResult> {
  const qemu = findExecutable(o.qemu ?? QEMU_BINARY);
  if (!qemu) throw new UserError(o.qemu && o.qemu !== QEMU_BINARY ? `${o.qemu} not found or not executable` : QEMU_MISSING);
  if (!(o.timeoutS > 0)) throw new UserError(`--timeout ${o.timeoutS}: give a positive number of seconds`);
  const kernel = resolve(o.kernel);
  readable(kernel, '--kernel');
  const initrd = o.initrd ? resolve(o.initrd) : undefined;
  if (initrd) readable(initrd, '--initrd');
  const chosen = chooseAccel(o.accel ?? 'auto');
  if ('error' in chosen) throw new UserError(chosen.error);

  const outDir = resolve(o.outDir);
  mkdirSync(outDir, { recursive: true });
  const consoleFile = join(outDir, 'console.log');
  const profileFile = join(outDir, 'profile.json');
  const version = qemuVersion(qemu);

  const run = await runQemu({
    qemu,
    args: (serial) => qemuArgs({ kernel, initrd, cmdline: o.cmdline, memoryMiB: o.memoryMiB, accel: chosen.accel, serial, extraArgs: o.extraArgs }),
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
    accel: chosen.accel,
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
  const tmp = `${profileFile}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(profile, null, 2) + '\n');
  renameSync(tmp, profileFile);
  return { outDir, profile, profileFile, consoleFile, failed: run.reason === 'internal-error' };
}

function readable(path: string, what: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw new UserError(`${what} ${path}: cannot read (${messageOf(err)})`);
  }
}

function qemuVersion(qemu: string): string {
  try {
    const out = execFileSync(qemu, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    return out.split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
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
