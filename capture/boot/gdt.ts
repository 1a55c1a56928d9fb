/**
 * The GDT and segment/control-register state for entering Linux in 64-bit mode (boot.rst, "64-bit
 * boot protocol"): flat 4 GiB segments, __BOOT_CS = 0x10 (64-bit code), __BOOT_DS = 0x18 (data), paging
 * and long mode on. The selectors match the kernel's own boot GDT, so reloading them later is harmless.
 */
import { GDT_ADDR, GDT_ENTRY_COUNT, IDT_ADDR } from '../layout.js';

/** Segment descriptor fields as struct kvm_segment has them (type is the 4-bit descriptor type). */
export interface KvmSegment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** Descriptor-table register values (kvm_dtable: base, limit). */
export interface DescriptorTable {
  base: bigint;
  limit: number;
}

/** Selector of the 64-bit code segment (GDT entry 2), the kernel's __BOOT_CS. */
export const BOOT_CS = 0x10;
/** Selector of the data segment (GDT entry 3), the kernel's __BOOT_DS. */
export const BOOT_DS = 0x18;

/** CR0: PE (protected mode, bit 0) | ET (bit 4, always 1 on x87-capable CPUs) | PG (paging, bit 31). */
export const CR0_ENTRY = 0x80000011;
/** CR4: PAE (bit 5), required for long mode. */
export const CR4_ENTRY = 0x20;
/** EFER: LME (long mode enable, bit 8) | LMA (long mode active, bit 10). */
export const EFER_ENTRY = 0x500;
/** RFLAGS at entry: only the always-one bit 1 (interrupts off). */
export const RFLAGS_ENTRY = 0x2;

/**
 * Encode a descriptor from `flags` in the kernel's GDT_ENTRY() layout (0xGxAP: bits 15..12 G/DB/L/AVL,
 * bits 7..0 P/DPL/S/type), a 32-bit base and a 20-bit limit.
 */
export function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base >>> 0);
  const l = BigInt(limit & 0xfffff);
  const f = BigInt(flags & 0xf0ff);
  return ((b & 0xff000000n) << 32n) | (f << 40n) | ((l & 0xf0000n) << 32n) | ((b & 0x00ffffffn) << 16n) | (l & 0xffffn);
}

/**
 * The four GDT entries written at GDT_ADDR: null, null (unused, keeps Linux's selector numbering),
 * code64 at 0x10 (G=1, L=1, P=1, S=1, type 0xB execute/read accessed), data at 0x18 (G=1, DB=1, P=1,
 * S=1, type 3 read/write accessed).
 */
export function gdtEntries(): bigint[] {
  return [0n, 0n, gdtEntry(0xa09b, 0, 0xfffff), gdtEntry(0xc093, 0, 0xfffff)];
}

/** The GDT as bytes, to copy to GDT_ADDR. */
export function gdtBytes(): Buffer {
  const entries = gdtEntries();
  const b = Buffer.alloc(entries.length * 8);
  entries.forEach((e, i) => b.writeBigUInt64LE(e, i * 8));
  return b;
}

/** GDTR: the table at GDT_ADDR. */
export const GDT_TABLE: DescriptorTable = { base: BigInt(GDT_ADDR), limit: GDT_ENTRY_COUNT * 8 - 1 };
/**
 * IDTR: an empty table (one zeroed 8-byte slot at IDT_ADDR). Interrupts are off at entry and Linux loads
 * its own IDT before enabling them; any early exception becomes a triple fault, which the VMM reports.
 */
export const IDT_TABLE: DescriptorTable = { base: BigInt(IDT_ADDR), limit: 7 };

/**
 * Write the GDT at GDT_ADDR and an empty IDT slot at IDT_ADDR into guest memory `mem` (guest-physical 0
 * at index 0); returns the GDTR and IDTR values for KVM_SET_SREGS.
 */
export function writeDescriptorTables(mem: Uint8Array): { gdt: DescriptorTable; idt: DescriptorTable } {
  mem.set(gdtBytes(), GDT_ADDR);
  mem.fill(0, IDT_ADDR, IDT_ADDR + IDT_TABLE.limit + 1);
  return { gdt: GDT_TABLE, idt: IDT_TABLE };
}

/** struct kvm_segment for a descriptor `entry` loaded with `selector` (what the CPU caches on a load). */
export function kvmSegment(selector: number, entry: bigint): KvmSegment {
  const bit = (n: bigint): number => Number((entry >> n) & 1n);
  const base = ((entry >> 16n) & 0xffffffn) | (((entry >> 56n) & 0xffn) << 24n);
  const rawLimit = Number((entry & 0xffffn) | ((entry >> 32n) & 0xf0000n));
  const g = bit(55n);
  const present = bit(47n);
  return {
    base,
    // With G=1 the limit counts 4 KiB pages: the byte limit is (limit << 12) | 0xfff.
    limit: g ? ((rawLimit << 12) | 0xfff) >>> 0 : rawLimit,
    selector,
    type: Number((entry >> 40n) & 0xfn),
    present,
    dpl: Number((entry >> 45n) & 3n),
    db: bit(54n),
    s: bit(44n),
    l: bit(53n),
    g,
    avl: bit(52n),
    unusable: present ? 0 : 1,
  };
}

export interface EntrySegments {
  cs: KvmSegment;
  ds: KvmSegment;
  es: KvmSegment;
  fs: KvmSegment;
  gs: KvmSegment;
  ss: KvmSegment;
  /**
   * Not set: KVM_GET_SREGS already gives a usable TR (and LDT), which VM entry checks, so the VMM keeps
   * those (docs/kvm-facts.md, ioctls: "start from GET and edit").
   */
  tr?: KvmSegment;
}

/** The segment registers at the 64-bit entry: CS = code64, all data segments = the data descriptor. */
export function entrySegments(): EntrySegments {
  const gdt = gdtEntries();
  const code = kvmSegment(BOOT_CS, gdt[BOOT_CS >> 3]!);
  const data = (): KvmSegment => kvmSegment(BOOT_DS, gdt[BOOT_DS >> 3]!);
  return { cs: code, ds: data(), es: data(), fs: data(), gs: data(), ss: data() };
}
