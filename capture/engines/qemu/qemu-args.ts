/**
 * The qemu-system-x86_64 command line for a run-mode capture, and the choice of accelerator.
 * Pure (apart from probing /dev/kvm and /proc/cpuinfo in chooseAccel), so tests can check it without QEMU.
 *
 *   qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -monitor none
 *     -chardev file,id=serial0,path=/tmp/.../serial.fifo -serial chardev:serial0 -no-reboot
 *     -kernel vmlinuz -initrd appliance.cpio.gz -append 'console=ttyS0 ...'
 */
import { closeSync, openSync, readFileSync } from 'node:fs';

export type Accel = 'kvm' | 'tcg' | 'auto';

export const QEMU_BINARY = 'qemu-system-x86_64';

export interface QemuArgsOptions {
  kernel: string;
  initrd?: string;
  cmdline: string;
  memoryMiB: number;
  accel: 'kvm' | 'tcg';
  /**
   * Where the serial port goes: a FIFO path (what the engine uses), or 'stdio'. Not QEMU's stdout by
   * default: Node gives a child a socketpair, QEMU writes one byte per write() and each takes a whole
   * socket buffer slot, so a few hundred bytes fill it when Node is slow to read; QEMU's UART then holds
   * THRE low, the kernel's console write times out and overwrites it, and characters are lost ("usable"
   * came out as "uble" on a loaded machine). A FIFO holds 64 KiB of bytes however they are written.
   */
  serial: string;
  /**
   * Whether SeaBIOS prints on the serial port too (default true: its lines get stamps). SeaBIOS's serial
   * console also sends terminal resets (`ESC c ESC [?7l ESC [2J`) before the kernel's first byte, glued
   * to the guest's first line; a caller that wants only the guest's own text says false.
   */
  firmwareOnSerial?: boolean;
  extraArgs?: readonly string[];
}

export function qemuArgs(o: QemuArgsOptions): string[] {
  const args = [
    '-accel', o.accel,
    '-m', String(o.memoryMiB),
    '-smp', '1',
    // No monitor and no display. -nographic (rather than -display none) also tells SeaBIOS to print on
    // the serial port (fw_cfg etc/sercon-port), so the firmware's lines get stamps too.
    ...(o.firmwareOnSerial === false ? ['-display', 'none'] : ['-nographic']),
    '-monitor', 'none',
    // Every byte the guest sends reaches us through one FIFO as it is written (output only).
    ...(o.serial === 'stdio'
      ? ['-serial', 'stdio']
      : ['-chardev', `file,id=serial0,path=${o.serial.replaceAll(',', ',,')}`, '-serial', 'chardev:serial0']),
    // A guest reset (reboot, panic=-1) ends QEMU like a power-off does, so a capture always ends.
    '-no-reboot',
    '-kernel', o.kernel,
  ];
  if (o.initrd) args.push('-initrd', o.initrd);
  args.push('-append', o.cmdline);
  if (o.accel === 'kvm') args.push('-cpu', 'host');
  return [...args, ...(o.extraArgs ?? [])];
}

/** Whether /dev/kvm opens read-write for us. */
export function kvmOpens(path = '/dev/kvm'): boolean {
  try {
    closeSync(openSync(path, 'r+'));
    return true;
  } catch {
    return false;
  }
}

/** Whether the CPU advertises hardware virtualisation (vmx or svm). */
export function hardwareVirtualisation(cpuinfo?: string): boolean {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'latin1');
    } catch {
      return false;
    }
  }
  return /^flags\s*:.*\b(?:vmx|svm)\b/m.test(text);
}

/**
 * 'auto' takes KVM only where it can run a whole guest: /dev/kvm opens and the CPU has vmx/svm.
 * (Where /dev/kvm is a software-backed module without them, as on the project's machines, QEMU's KVM
 * stops at emulation failures a stock kernel cannot get past, while TCG boots it in seconds.)
 * 'kvm' asked explicitly must at least open; otherwise the caller gets a reason.
 */
export function chooseAccel(asked: Accel, probe = { kvmOpens: () => kvmOpens(), hardware: () => hardwareVirtualisation() }):
  { accel: 'kvm' | 'tcg' } | { error: string } {
  if (asked === 'tcg') return { accel: 'tcg' };
  if (asked === 'kvm') return probe.kvmOpens() ? { accel: 'kvm' } : { error: '--accel kvm: /dev/kvm cannot be opened read-write (use --accel tcg)' };
  return probe.kvmOpens() && probe.hardware() ? { accel: 'kvm' } : { accel: 'tcg' };
}
