/**
 * /dev/kvm through koffi: the system fd, a VM, a vCPU. Every ioctl is checked and a failure names it
 * (`KVM_SET_SREGS failed: EINVAL`). Guest memory is one anonymous mapping, seen from JavaScript as a
 * zero-copy Uint8Array (koffi.view); the vCPU's kvm_run page is mapped once and read through a DataView.
 *
 * The device path is /dev/kvm unless BOOT_TRACE_KVM_DEVICE names another (tests use it to simulate a
 * machine without KVM).
 */
import koffi from 'koffi';
import { UserError } from '../../src/errors.js';
import * as K from './ioctls.js';
import * as S from './structs.js';
import * as libc from './libc.js';
import type { CpuidEntry } from '../boot/cpuid.js';
import type { MsrEntry } from '../boot/msrs.js';

export const KVM_DEVICE = '/dev/kvm';

/** The device node to open: BOOT_TRACE_KVM_DEVICE, else /dev/kvm. */
export function kvmDevicePath(): string {
  return process.env.BOOT_TRACE_KVM_DEVICE || KVM_DEVICE;
}

/** A failed ioctl or libc call, named. Not a UserError: at this point it is the VMM's or KVM's fault. */
export class KvmError extends Error {
  override name = 'KvmError';
  constructor(readonly call: string, readonly errno: number) {
    super(`${call} failed: ${libc.errnoName(errno)}`);
  }
}

function check(ret: number, call: string): number {
  if (ret < 0) throw new KvmError(call, libc.errno());
  return ret;
}

function mapFailed(p: number | bigint): boolean {
  return typeof p === 'bigint' || p === 0 || p >= 2 ** 63;
}

/** Capabilities the VMM cannot work without, checked once when the device is opened. */
export const REQUIRED_CAPS: [number, string][] = [
  [K.KVM_CAP_USER_MEMORY, 'KVM_CAP_USER_MEMORY'],
  [K.KVM_CAP_SET_TSS_ADDR, 'KVM_CAP_SET_TSS_ADDR'],
  [K.KVM_CAP_SET_IDENTITY_MAP_ADDR, 'KVM_CAP_SET_IDENTITY_MAP_ADDR'],
  [K.KVM_CAP_IRQCHIP, 'KVM_CAP_IRQCHIP'],
  [K.KVM_CAP_PIT2, 'KVM_CAP_PIT2'],
  [K.KVM_CAP_EXT_CPUID, 'KVM_CAP_EXT_CPUID'],
  [K.KVM_CAP_SET_GUEST_DEBUG, 'KVM_CAP_SET_GUEST_DEBUG'],
  [K.KVM_CAP_IMMEDIATE_EXIT, 'KVM_CAP_IMMEDIATE_EXIT'],
];

export class KvmSystem {
  private constructor(readonly fd: number, readonly path: string) {}

  /** Open the device; a missing device or missing permission is a one-line UserError. */
  static open(path = kvmDevicePath()): KvmSystem {
    const fd = libc.open(path, libc.O_RDWR | libc.O_CLOEXEC);
    if (fd < 0) {
      const e = libc.errno();
      if (e === libc.ENOENT || e === libc.ENXIO || e === libc.ENODEV) {
        throw new UserError(`${path}: no such device (is the kvm module loaded?)`);
      }
      if (e === libc.EACCES || e === libc.EPERM) {
        throw new UserError(`${path}: permission denied (add yourself to the kvm group or run as root)`);
      }
      throw new UserError(`${path}: cannot open (${libc.errnoName(e)})`);
    }
    const sys = new KvmSystem(fd, path);
    const version = libc.ioctlInt(fd, K.KVM_GET_API_VERSION, 0);
    if (version !== K.KVM_API_VERSION) {
      sys.close();
      throw new UserError(`${path}: not a KVM device, or KVM API version ${version} (expected ${K.KVM_API_VERSION})`);
    }
    return sys;
  }

  /** KVM_CHECK_EXTENSION: 0 when absent, else a capability-specific positive value. */
  checkExtension(cap: number): number {
    return Math.max(0, libc.ioctlInt(this.fd, K.KVM_CHECK_EXTENSION, cap));
  }

  /** UserError naming the first capability in `caps` that this KVM lacks. */
  requireCapabilities(caps: [number, string][] = REQUIRED_CAPS): void {
    for (const [cap, name] of caps) {
      if (this.checkExtension(cap) <= 0) throw new UserError(`${this.path}: KVM lacks ${name}, which boot-trace needs`);
    }
  }

  vcpuMmapSize(): number {
    return check(libc.ioctlInt(this.fd, K.KVM_GET_VCPU_MMAP_SIZE, 0), 'KVM_GET_VCPU_MMAP_SIZE');
  }

  /** KVM_GET_SUPPORTED_CPUID, growing the table while KVM answers E2BIG. */
  supportedCpuid(): CpuidEntry[] {
    for (let nent = 64; nent <= 4096; nent *= 2) {
      const b = Buffer.alloc(S.CPUID2_HEADER + nent * S.CPUID_ENTRY_SIZE);
      b.writeUInt32LE(nent, 0);
      if (libc.ioctlPtr(this.fd, K.KVM_GET_SUPPORTED_CPUID, b) < 0) {
        const e = libc.errno();
        if (e === libc.E2BIG) continue;
        throw new KvmError('KVM_GET_SUPPORTED_CPUID', e);
      }
      const n = b.readUInt32LE(0);
      const out: CpuidEntry[] = [];
      for (let i = 0; i < n; i++) {
        const o = S.CPUID2_HEADER + i * S.CPUID_ENTRY_SIZE;
        out.push({
          function: b.readUInt32LE(o),
          index: b.readUInt32LE(o + 4),
          flags: b.readUInt32LE(o + 8),
          eax: b.readUInt32LE(o + 12),
          ebx: b.readUInt32LE(o + 16),
          ecx: b.readUInt32LE(o + 20),
          edx: b.readUInt32LE(o + 24),
        });
      }
      return out;
    }
    throw new KvmError('KVM_GET_SUPPORTED_CPUID', libc.E2BIG);
  }

  createVm(): KvmVm {
    return new KvmVm(this, check(libc.ioctlInt(this.fd, K.KVM_CREATE_VM, 0), 'KVM_CREATE_VM'));
  }

  close(): void {
    libc.close(this.fd);
  }
}

/**
 * Guest RAM: one anonymous host mapping, registered at guest-physical `gpa`. JavaScript sees it through
 * small zero-copy windows (koffi.view) made on demand, never one view of the whole: V8 counts a view as
 * external memory, and a 256 MiB one costs ~3 ms to make plus a forced garbage collection (~5 ms here),
 * a third of the setup budget. Bulk copies (kernel, initrd) go straight through memcpy.
 */
export class GuestMemory {
  constructor(readonly hostAddr: number, readonly size: number, readonly gpa = 0) {}

  /** A zero-copy window on guest-physical [gpa, gpa + len): writes reach the guest. */
  view(gpa: number, len: number): Uint8Array {
    this.check(gpa, len);
    return new Uint8Array(koffi.view(this.hostAddr + (gpa - this.gpa), len) as ArrayBuffer);
  }

  /** Copy `data` to guest-physical `gpa`. */
  write(gpa: number, data: Uint8Array): void {
    this.check(gpa, data.length);
    if (data.length > 0) libc.memcpyTo(this.hostAddr + (gpa - this.gpa), data, data.length);
  }

  /** The byte at guest-physical `gpa`, or -1 outside this memory. */
  byteAt(gpa: number): number {
    if (gpa < this.gpa || gpa >= this.gpa + this.size) return -1;
    return this.view(gpa, 1)[0]!;
  }

  private check(gpa: number, len: number): void {
    if (gpa < this.gpa || len < 0 || gpa + len > this.gpa + this.size) {
      throw new RangeError(`guest-physical range 0x${gpa.toString(16)}+0x${len.toString(16)} is outside guest memory`);
    }
  }
}

export class KvmVm {
  private memories: GuestMemory[] = [];
  constructor(readonly system: KvmSystem, readonly fd: number) {}

  /** mmap `size` bytes of anonymous memory and register them at guest-physical `gpa`. */
  addMemory(slot: number, gpa: number, size: number): GuestMemory {
    const p = libc.mmap(0, size, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_NORESERVE, -1, 0);
    if (mapFailed(p)) throw new KvmError(`mmap of ${size} bytes of guest memory`, libc.errno());
    const region = S.encodeMemoryRegion(slot, 0, gpa, size, p);
    check(libc.ioctlPtr(this.fd, K.KVM_SET_USER_MEMORY_REGION, region), 'KVM_SET_USER_MEMORY_REGION');
    const mem = new GuestMemory(p, size, gpa);
    this.memories.push(mem);
    return mem;
  }

  setTssAddr(addr: number): void {
    check(libc.ioctlInt(this.fd, K.KVM_SET_TSS_ADDR, addr), 'KVM_SET_TSS_ADDR');
  }

  setIdentityMapAddr(addr: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(addr));
    check(libc.ioctlPtr(this.fd, K.KVM_SET_IDENTITY_MAP_ADDR, b), 'KVM_SET_IDENTITY_MAP_ADDR');
  }

  createIrqchip(): void {
    check(libc.ioctlInt(this.fd, K.KVM_CREATE_IRQCHIP, 0), 'KVM_CREATE_IRQCHIP');
  }

  /** The in-kernel i8254 PIT; flags 0 (no speaker port emulation). */
  createPit2(): void {
    check(libc.ioctlPtr(this.fd, K.KVM_CREATE_PIT2, Buffer.alloc(S.PIT_CONFIG_SIZE)), 'KVM_CREATE_PIT2');
  }

  private readonly irqBuf = Buffer.alloc(8);
  /** Drive interrupt line `irq` of the in-kernel PIC/IOAPIC. */
  irqLine(irq: number, level: boolean): void {
    this.irqBuf.writeUInt32LE(irq, 0);
    this.irqBuf.writeUInt32LE(level ? 1 : 0, 4);
    check(libc.ioctlPtr(this.fd, K.KVM_IRQ_LINE, this.irqBuf), 'KVM_IRQ_LINE');
  }

  createVcpu(id: number): KvmVcpu {
    const fd = check(libc.ioctlInt(this.fd, K.KVM_CREATE_VCPU, id), 'KVM_CREATE_VCPU');
    const size = this.system.vcpuMmapSize();
    const p = libc.mmap(0, size, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED, fd, 0);
    if (mapFailed(p)) throw new KvmError('mmap of kvm_run', libc.errno());
    return new KvmVcpu(fd, p, size);
  }

  close(): void {
    for (const m of this.memories) libc.munmap(m.hostAddr, m.size);
    this.memories = [];
    libc.close(this.fd);
  }
}

export class KvmVcpu {
  /** The kvm_run page as bytes and as a DataView (little-endian reads at structs.RUN offsets). */
  readonly runBytes: Uint8Array;
  readonly run: DataView;

  constructor(readonly fd: number, readonly runAddr: number, readonly runSize: number) {
    const ab = koffi.view(runAddr, runSize) as ArrayBuffer;
    this.runBytes = new Uint8Array(ab);
    this.run = new DataView(ab);
  }

  /**
   * One KVM_RUN. Returns 0, or the errno when KVM_RUN returned -1 with EINTR/EAGAIN (a signal or
   * immediate_exit); any other failure throws.
   */
  runOnce(): number {
    return this.runRaw() < 0 ? this.runFailed() : 0;
  }

  /** KVM_RUN's own result: 0, or -1 with errno set (runFailed() reads it; call it before any other libc call). */
  runRaw(): number {
    return libc.ioctlInt(this.fd, K.KVM_RUN, 0);
  }

  /**
   * After runRaw() returned -1: the errno when it is EINTR/EAGAIN (a signal or immediate_exit); any other
   * failure throws. Apart from runRaw() so that the step loop has no path it takes only on a signal (V8
   * threw the optimized loop away at the first halt probe's EINTR: docs/performance.md).
   */
  runFailed(): number {
    const e = libc.errno();
    if (e === libc.EINTR || e === libc.EAGAIN) return e;
    throw new KvmError('KVM_RUN', e);
  }

  getRegs(): S.KvmRegs {
    const b = Buffer.alloc(S.REGS_SIZE);
    check(libc.ioctlPtr(this.fd, K.KVM_GET_REGS, b), 'KVM_GET_REGS');
    return S.decodeRegs(b);
  }

  setRegs(r: S.KvmRegs): void {
    check(libc.ioctlPtr(this.fd, K.KVM_SET_REGS, S.encodeRegs(r)), 'KVM_SET_REGS');
  }

  /**
   * The vCPU's TSC frequency in kHz (KVM_GET_TSC_KHZ), or null where KVM cannot say (the ioctl fails, e.g. a
   * kernel without KVM_CAP_GET_TSC_KHZ, or returns 0).
   */
  getTscKhz(): number | null {
    const khz = libc.ioctlInt(this.fd, K.KVM_GET_TSC_KHZ, 0);
    return khz > 0 ? khz : null;
  }

  /**
   * KVM_GET_MP_STATE: KVM_MP_STATE_HALTED while the vCPU sits in HLT (in-kernel irqchip: HLT never exits
   * to user space), else RUNNABLE. null when this KVM refuses the ioctl (then callers fall back to
   * looking for the HLT instruction). Only valid between KVM_RUNs on the vCPU thread.
   */
  getMpState(): number | null {
    const b = Buffer.alloc(4);
    if (libc.ioctlPtr(this.fd, K.KVM_GET_MP_STATE, b) < 0) return null;
    return b.readUInt32LE(0);
  }

  setMpState(state: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(state, 0);
    check(libc.ioctlPtr(this.fd, K.KVM_SET_MP_STATE, b), 'KVM_SET_MP_STATE');
  }

  /** The raw struct kvm_sregs, to edit with the structs.ts helpers and give back to setSregs. */
  getSregs(): Buffer {
    const b = Buffer.alloc(S.SREGS_SIZE);
    check(libc.ioctlPtr(this.fd, K.KVM_GET_SREGS, b), 'KVM_GET_SREGS');
    return b;
  }

  setSregs(b: Buffer): void {
    check(libc.ioctlPtr(this.fd, K.KVM_SET_SREGS, b), 'KVM_SET_SREGS');
  }

  setCpuid2(entries: readonly CpuidEntry[]): void {
    const b = Buffer.alloc(S.CPUID2_HEADER + entries.length * S.CPUID_ENTRY_SIZE);
    b.writeUInt32LE(entries.length, 0);
    entries.forEach((e, i) => {
      const o = S.CPUID2_HEADER + i * S.CPUID_ENTRY_SIZE;
      b.writeUInt32LE(e.function >>> 0, o);
      b.writeUInt32LE(e.index >>> 0, o + 4);
      b.writeUInt32LE(e.flags >>> 0, o + 8);
      b.writeUInt32LE(e.eax >>> 0, o + 12);
      b.writeUInt32LE(e.ebx >>> 0, o + 16);
      b.writeUInt32LE(e.ecx >>> 0, o + 20);
      b.writeUInt32LE(e.edx >>> 0, o + 24);
    });
    check(libc.ioctlPtr(this.fd, K.KVM_SET_CPUID2, b), 'KVM_SET_CPUID2');
  }

  /** KVM_SET_MSRS; KVM returns how many it set, and stops at the first it rejects. */
  setMsrs(msrs: readonly MsrEntry[]): void {
    const b = Buffer.alloc(S.MSRS_HEADER + msrs.length * S.MSR_ENTRY_SIZE);
    b.writeUInt32LE(msrs.length, 0);
    msrs.forEach((m, i) => {
      const o = S.MSRS_HEADER + i * S.MSR_ENTRY_SIZE;
      b.writeUInt32LE(m.index >>> 0, o);
      b.writeBigUInt64LE(m.data, o + 8);
    });
    const n = check(libc.ioctlPtr(this.fd, K.KVM_SET_MSRS, b), 'KVM_SET_MSRS');
    if (n !== msrs.length) {
      const bad = msrs[n]!;
      throw new Error(`KVM_SET_MSRS failed: set ${n} of ${msrs.length}; MSR 0x${bad.index.toString(16)} rejected`);
    }
  }

  /** x87 control word and MXCSR at their reset values, everything else zero. */
  setFpu(fcw: number, mxcsr: number): void {
    const b = Buffer.alloc(S.FPU_SIZE);
    b.writeUInt16LE(fcw, S.FPU_FCW);
    b.writeUInt32LE(mxcsr, S.FPU_MXCSR);
    check(libc.ioctlPtr(this.fd, K.KVM_SET_FPU, b), 'KVM_SET_FPU');
  }

  /** `debugregs`: kvm_guest_debug_arch.debugreg[0..7] (DR0-3 = breakpoint addresses, [7] = DR7), for USE_HW_BP. */
  setGuestDebug(control: number, debugregs?: readonly bigint[]): void {
    const b = Buffer.alloc(S.GUEST_DEBUG_SIZE);
    b.writeUInt32LE(control >>> 0, 0);
    debugregs?.slice(0, 8).forEach((v, i) => b.writeBigUInt64LE(v, 8 + 8 * i));
    check(libc.ioctlPtr(this.fd, K.KVM_SET_GUEST_DEBUG, b), 'KVM_SET_GUEST_DEBUG');
  }

  /**
   * Close the vCPU fd. The kvm_run mapping stays (it holds the vCPU until the process exits): another
   * thread may still hold a view of it to set immediate_exit, and writing to an unmapped page would crash
   * the process. Call unmapRun() only when no such view can exist.
   */
  close(): void {
    libc.close(this.fd);
  }

  unmapRun(): void {
    libc.munmap(this.runAddr, this.runSize);
  }
}
