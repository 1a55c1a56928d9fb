/**
 * What the QEMU engine's run mode (qemu.ts) and step mode (qemu-step.ts) share before and after QEMU
 * runs: finding the binary, checking the inputs a user gave, QEMU's version line.
 *
 *   const q = qemuInputs(options, 'auto');   // { qemu: '/usr/bin/qemu-system-x86_64', kernel, initrd, accel: 'tcg' }
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { messageOf, UserError } from '../../../src/errors.js';
import { chooseAccel, QEMU_BINARY, type Accel } from './qemu-args.js';

/**
 * The QEMU engine's default command line: console on COM1, reset by triple fault and at once on panic
 * (with -no-reboot either ends QEMU), fixed addresses so kallsyms names what a step trace sees. QEMU has
 * ACPI, PCI and a keyboard controller, so none of the KVM default's acpi=off/pci=off are needed, and the
 * appliance's `poweroff -f` powers off through ACPI.
 */
export const QEMU_DEFAULT_CMDLINE = 'console=ttyS0 reboot=t panic=-1 nokaslr';

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

/** The options run mode (QemuCaptureOptions) and step mode (QemuStepOptions) both take. */
export interface QemuBaseOptions {
  kernel: string;
  initrd?: string;
  cmdline: string;
  memoryMiB: number;
  outDir: string;
  /** Seconds until QEMU is killed, counted from its start. */
  timeoutS: number;
  /** The accelerator; each mode has its default. */
  accel?: Accel;
  /** More QEMU arguments, appended as given. */
  extraArgs?: readonly string[];
  /** Copy the guest's console to stderr (true) or to a function, line by line. */
  echo?: boolean | ((text: string) => void);
  /** The QEMU binary (a name looked up on PATH, or a path); default qemu-system-x86_64. */
  qemu?: string;
  /** Abort the capture (e.g. on Ctrl-C): QEMU is killed, exit reason 'interrupted'. */
  signal?: AbortSignal;
}

export type QemuInputOptions = Pick<QemuBaseOptions, 'qemu' | 'timeoutS' | 'kernel' | 'initrd' | 'accel'>;

export interface QemuInputs {
  /** The QEMU binary's path. */
  qemu: string;
  /** Absolute paths, checked readable. */
  kernel: string;
  initrd: string | undefined;
  accel: 'kvm' | 'tcg';
}

/** The binary, the files and the accelerator of a QEMU capture, or a one-line UserError saying what is wrong. */
export function qemuInputs(o: QemuInputOptions, defaultAccel: Accel): QemuInputs {
  const qemu = findExecutable(o.qemu ?? QEMU_BINARY);
  if (!qemu) throw new UserError(o.qemu && o.qemu !== QEMU_BINARY ? `${o.qemu} not found or not executable` : QEMU_MISSING);
  if (!(o.timeoutS > 0)) throw new UserError(`--timeout ${o.timeoutS}: give a positive number of seconds`);
  const kernel = resolve(o.kernel);
  readable(kernel, '--kernel');
  const initrd = o.initrd ? resolve(o.initrd) : undefined;
  if (initrd) readable(initrd, '--initrd');
  const chosen = chooseAccel(o.accel ?? defaultAccel);
  if ('error' in chosen) throw new UserError(chosen.error);
  return { qemu, kernel, initrd, accel: chosen.accel };
}

function readable(path: string, what: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw new UserError(`${what} ${path}: cannot read (${messageOf(err)})`);
  }
}

/** The first line of `qemu --version`, or 'unknown'. */
export function qemuVersion(qemu: string): string {
  try {
    return execFileSync(qemu, ['--version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}
