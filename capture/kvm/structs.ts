/**
 * Byte layouts of the KVM structures this VMM touches (x86-64, <linux/kvm.h> / <asm/kvm.h>), and
 * encoders/decoders for the ones set once at boot. The hot path (kvm_run after each exit) reads the
 * offsets directly through a DataView.
 */
import type { KvmSegment, DescriptorTable } from '../boot/gdt.js';

/** struct kvm_run, the shared page mmapped from the vCPU fd. */
export const RUN = {
  requestInterruptWindow: 0,
  immediateExit: 1,
  exitReason: 8,
  readyForInterruptInjection: 12,
  ifFlag: 13,
  // The exit union at 32.
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  mmioPhysAddr: 32,
  mmioData: 40,
  mmioLen: 48,
  mmioIsWrite: 52,
  debugException: 32,
  debugPc: 40,
  debugDr6: 48,
  debugDr7: 56,
  failEntryReason: 32,
  failEntryCpu: 40,
  internalSuberror: 32,
  internalNdata: 36,
  internalData: 40,
  systemEventType: 32,
  // Sync regs (KVM_CAP_SYNC_REGS).
  validRegs: 288,
  dirtyRegs: 296,
  syncRegs: 304,
  /** RIP inside the synced struct kvm_regs: 304 + 128. */
  syncRip: 304 + 128,
  /** RFLAGS inside the synced struct kvm_regs: 304 + 136. */
  syncRflags: 304 + 136,
} as const;

/** struct kvm_regs: 18 u64s. */
export const REGS_SIZE = 144;
export const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
export type KvmRegs = Record<(typeof REG_NAMES)[number], bigint>;

export function decodeRegs(b: Buffer): KvmRegs {
  const r = {} as KvmRegs;
  REG_NAMES.forEach((n, i) => (r[n] = b.readBigUInt64LE(i * 8)));
  return r;
}

export function encodeRegs(r: KvmRegs, b: Buffer = Buffer.alloc(REGS_SIZE)): Buffer {
  REG_NAMES.forEach((n, i) => b.writeBigUInt64LE(r[n], i * 8));
  return b;
}

/** struct kvm_sregs. */
export const SREGS_SIZE = 312;
export const SEGMENT_SIZE = 24;
export const SREG_SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export const SREGS = { gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apicBase: 272 } as const;

export function writeSegment(b: Buffer, off: number, s: KvmSegment): void {
  b.writeBigUInt64LE(s.base, off);
  b.writeUInt32LE(s.limit >>> 0, off + 8);
  b.writeUInt16LE(s.selector, off + 12);
  b[off + 14] = s.type;
  b[off + 15] = s.present;
  b[off + 16] = s.dpl;
  b[off + 17] = s.db;
  b[off + 18] = s.s;
  b[off + 19] = s.l;
  b[off + 20] = s.g;
  b[off + 21] = s.avl;
  b[off + 22] = s.unusable;
}

export function readSegment(b: Buffer, off: number): KvmSegment {
  return {
    base: b.readBigUInt64LE(off),
    limit: b.readUInt32LE(off + 8),
    selector: b.readUInt16LE(off + 12),
    type: b[off + 14]!,
    present: b[off + 15]!,
    dpl: b[off + 16]!,
    db: b[off + 17]!,
    s: b[off + 18]!,
    l: b[off + 19]!,
    g: b[off + 20]!,
    avl: b[off + 21]!,
    unusable: b[off + 22]!,
  };
}

/** Offset of segment register `name` in kvm_sregs. */
export function segmentOffset(name: (typeof SREG_SEGMENTS)[number]): number {
  return SREG_SEGMENTS.indexOf(name) * SEGMENT_SIZE;
}

export function writeDtable(b: Buffer, off: number, t: DescriptorTable): void {
  b.writeBigUInt64LE(t.base, off);
  b.writeUInt16LE(t.limit, off + 8);
}

/** struct kvm_userspace_memory_region. */
export function encodeMemoryRegion(slot: number, flags: number, gpa: number, size: number, hostAddr: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(slot, 0);
  b.writeUInt32LE(flags, 4);
  b.writeBigUInt64LE(BigInt(gpa), 8);
  b.writeBigUInt64LE(BigInt(size), 16);
  b.writeBigUInt64LE(BigInt(hostAddr), 24);
  return b;
}

/** struct kvm_cpuid2 header and struct kvm_cpuid_entry2. */
export const CPUID2_HEADER = 8;
export const CPUID_ENTRY_SIZE = 40;

/** struct kvm_msrs header and struct kvm_msr_entry. */
export const MSRS_HEADER = 8;
export const MSR_ENTRY_SIZE = 16;

/** struct kvm_fpu: 416 bytes; fcw at 128, mxcsr at 408. */
export const FPU_SIZE = 416;
export const FPU_FCW = 128;
export const FPU_MXCSR = 408;

/** struct kvm_guest_debug: control u32, pad u32, debugreg[8] u64. */
export const GUEST_DEBUG_SIZE = 72;

/** struct kvm_pit_config: flags u32 + 15 u32 pad. */
export const PIT_CONFIG_SIZE = 64;
