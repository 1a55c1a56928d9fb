/**
 * `--engine kvm|qemu|auto`: which engine a capture uses. 'auto' takes this VMM on /dev/kvm when the
 * engine probe (probe/kvm-probe.ts) says KVM can run what a stock kernel executes, else the QEMU engine,
 * and says why in one stderr line:
 *   boot-trace: /dev/kvm cannot run this kernel here (emulation failure at cmpxchg16b); using QEMU (TCG)
 * The demo guest needs only a working /dev/kvm (it avoids those instructions), so 'auto' with --guest demo
 * means KVM; --engine qemu boots it too, through its PVH note (samples/guest/head.S).
 *
 * chooseEngine is pure over the facts it is given (tests pass them in); gatherFacts() asks the machine.
 */
import { closeSync, openSync } from 'node:fs';
import { messageOf, UserError } from '../src/errors.js';
import { findExecutable } from './engines/qemu/qemu-common.js';
import { chooseAccel, QEMU_BINARY } from './engines/qemu/qemu-args.js';
import { probeKvm, type ProbeVerdict } from './probe/kvm-probe.js';
import type { CaptureMode } from './output/profile.js';

/** The modes the KVM engine does (capture/engines/kvm/capture.ts kvmEngine; not imported, to keep this pure and light). */
const KVM_MODES: readonly CaptureMode[] = ['run', 'step'];

export type EngineAsked = 'kvm' | 'qemu' | 'auto';
export type Engine = 'kvm' | 'qemu';

export interface EngineFacts {
  /** null when /dev/kvm opens read-write, else why not ('ENOENT', 'EACCES', ...). */
  kvmOpenError: string | null;
  /** The probe's verdict (asked only when needed). */
  probe: () => ProbeVerdict;
  qemuInstalled: boolean;
  /** QEMU's accelerator under 'auto' (TCG where the CPU has no vmx/svm). */
  qemuAccel: 'kvm' | 'tcg';
}

export interface EngineChoice {
  engine: Engine;
  /** Why, for profile.json. */
  reason: string;
  /** A line for stderr when 'auto' fell back or had to guess (none when it simply took KVM). */
  message?: string;
  probe?: ProbeVerdict;
}

/**
 * `kernel`: what is booted: the demo guest, an ELF (vmlinux or a test guest), or a bzImage. QEMU's -kernel
 * boots only the bzImage (a 64-bit ELF without a PVH note is refused), so the first two always mean KVM.
 */
export function chooseEngine(asked: EngineAsked, kernel: 'demo' | 'elf' | 'bzimage', f: EngineFacts, mode: CaptureMode = 'run'): EngineChoice {
  const kvmDevice = process.env.BOOT_TRACE_KVM_DEVICE ?? '/dev/kvm';
  // A mode only QEMU does (trace): auto means QEMU, whatever KVM could do.
  if (asked === 'auto' && kernel === 'bzimage' && !KVM_MODES.includes(mode)) {
    if (!f.qemuInstalled) throw new UserError(`--mode ${mode} needs QEMU: ${QEMU_BINARY} not found: apt-get install qemu-system-x86`);
    return { engine: 'qemu', reason: `--mode ${mode}: only the QEMU engine does it` };
  }
  if (kernel === 'demo') {
    if (asked === 'qemu') {
      if (!f.qemuInstalled) throw new UserError(`--engine qemu: ${QEMU_BINARY} not found: apt-get install qemu-system-x86`);
      return { engine: 'qemu', reason: '--engine qemu (the demo guest boots through its PVH note)' };
    }
    return { engine: 'kvm', reason: asked === 'kvm' ? '--engine kvm' : 'the demo guest needs only a working /dev/kvm' };
  }
  if (kernel === 'elf') {
    if (asked === 'qemu') throw new UserError("--engine qemu boots a bzImage; QEMU's -kernel cannot boot a 64-bit ELF vmlinux (give the bzImage, or --engine kvm)");
    return { engine: 'kvm', reason: asked === 'kvm' ? '--engine kvm' : 'an ELF kernel: only the KVM engine boots it' };
  }
  if (asked === 'kvm') return { engine: 'kvm', reason: '--engine kvm' };
  if (asked === 'qemu') {
    if (!f.qemuInstalled) throw new UserError(`--engine qemu: ${QEMU_BINARY} not found: apt-get install qemu-system-x86`);
    return { engine: 'qemu', reason: '--engine qemu' };
  }
  const accel = f.qemuAccel === 'kvm' ? 'KVM' : 'TCG';
  if (f.kvmOpenError !== null) {
    const why = `${kvmDevice} cannot be opened (${f.kvmOpenError})`;
    if (!f.qemuInstalled) throw new UserError(`${why} and ${QEMU_BINARY} is not installed: apt-get install qemu-system-x86, or fix access to ${kvmDevice}`);
    return { engine: 'qemu', reason: why, message: `boot-trace: ${why}; using QEMU (${accel})` };
  }
  const probe = f.probe();
  if (probe.ok) return { engine: 'kvm', reason: `the KVM probe passed (${probe.reason})`, probe };
  const why = `${kvmDevice} cannot run this kernel here (${probe.reason})`;
  if (!f.qemuInstalled) {
    return { engine: 'kvm', reason: why, probe, message: `boot-trace: ${why}, and ${QEMU_BINARY} is not installed; trying KVM anyway (apt-get install qemu-system-x86 for the fallback)` };
  }
  return { engine: 'qemu', reason: why, probe, message: `boot-trace: ${why}; using QEMU (${accel})` };
}

/** The facts chooseEngine needs, from this machine. The probe runs only if asked for. */
export function gatherFacts(): EngineFacts {
  const device = process.env.BOOT_TRACE_KVM_DEVICE ?? '/dev/kvm';
  let kvmOpenError: string | null = null;
  try {
    closeSync(openSync(device, 'r+'));
  } catch (err) {
    kvmOpenError = (err as NodeJS.ErrnoException).code ?? messageOf(err);
  }
  const accel = chooseAccel('auto');
  return {
    kvmOpenError,
    probe: () => probeKvm(),
    qemuInstalled: findExecutable(QEMU_BINARY) !== null,
    qemuAccel: 'accel' in accel ? accel.accel : 'tcg',
  };
}
