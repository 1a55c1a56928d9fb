import { describe, expect, it } from 'vitest';
import { filterCpuid, type CpuidEntry } from '../capture/boot/cpuid.js';
import {
  CR0_ENTRY,
  CR4_ENTRY,
  EFER_ENTRY,
  entrySegments,
  gdtBytes,
  gdtEntries,
  GDT_TABLE,
  kvmSegment,
  writeDescriptorTables,
} from '../capture/boot/gdt.js';
import { bootMsrs } from '../capture/boot/msrs.js';
import { translate, writeIdentityPageTables } from '../capture/boot/page-tables.js';
import {
  BOOT_STACK_ADDR,
  CMDLINE_ADDR,
  GDT_ADDR,
  IDT_ADDR,
  PAGE_TABLES_END,
  PD_ADDR,
  PML4_ADDR,
  ZERO_PAGE_ADDR,
} from '../capture/layout.js';

describe('page tables', () => {
  const mem = new Uint8Array(16 * 1024 * 1024);
  mem.fill(0xee, PML4_ADDR, PAGE_TABLES_END); // must be cleared by the writer
  const cr3 = writeIdentityPageTables(mem);

  it('CR3 is the PML4 and the first 4 GiB are identity-mapped with 2 MiB pages', () => {
    expect(cr3).toBe(PML4_ADDR);
    for (const a of [0n, 0x7000n, 0x100200n, 0x1000000n, 0x3fffffffn, 0x40000000n, 0xfec00000n, 0xffffffffn]) {
      expect(translate(mem, cr3, a)).toBe(Number(a));
    }
    expect(translate(mem, cr3, 0x100000000n)).toBeUndefined();
  });

  it('the kernel high range maps to physical 0 for 2 GiB', () => {
    expect(translate(mem, cr3, 0xffffffff80000000n)).toBe(0);
    expect(translate(mem, cr3, 0xffffffff81000000n)).toBe(0x1000000);
    expect(translate(mem, cr3, 0xffffffff8304ce41n)).toBe(0x304ce41);
    expect(translate(mem, cr3, 0xffffffffc0001234n)).toBe(0x40001234);
    expect(translate(mem, cr3, 0xffff888000000000n)).toBeUndefined();
  });

  it('PDEs are large, present and writable; the tables stay clear of other boot structures', () => {
    const dv = new DataView(mem.buffer);
    expect(dv.getUint32(PD_ADDR + 8, true)).toBe(0x200000 | 0x83);
    expect(dv.getUint32(PD_ADDR + 4, true)).toBe(0);
    for (const a of [GDT_ADDR, IDT_ADDR, ZERO_PAGE_ADDR, BOOT_STACK_ADDR, CMDLINE_ADDR]) {
      expect(a < PML4_ADDR || a >= PAGE_TABLES_END).toBe(true);
    }
    expect(BOOT_STACK_ADDR).toBeLessThan(PML4_ADDR);
  });
});

describe('GDT and entry state', () => {
  it('encodes the well-known flat 64-bit code and data descriptors', () => {
    expect(gdtEntries()).toEqual([0n, 0n, 0x00af9b000000ffffn, 0x00cf93000000ffffn]);
    const b = gdtBytes();
    expect(b.length).toBe(GDT_TABLE.limit + 1);
    expect(b.readBigUInt64LE(0x10)).toBe(0x00af9b000000ffffn);
  });

  it('segments match the 64-bit boot protocol state', () => {
    const s = entrySegments();
    expect(s.cs).toEqual({ base: 0n, limit: 0xffffffff, selector: 0x10, type: 0xb, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0 });
    for (const d of [s.ds, s.es, s.fs, s.gs, s.ss]) {
      expect(d).toEqual({ base: 0n, limit: 0xffffffff, selector: 0x18, type: 3, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 });
    }
    expect(s.tr).toBeUndefined();
  });

  it('decodes base and byte-granular limits', () => {
    // base 0x12345678, limit 0xabcde, flags: P, DPL 3, S, type 2, byte granularity.
    const e = (0x12n << 56n) | (0x0an << 48n) | (0xf2n << 40n) | (0x345678n << 16n) | 0xbcden;
    expect(kvmSegment(0x2b, e)).toMatchObject({ base: 0x12345678n, limit: 0xabcde, dpl: 3, type: 2, g: 0, present: 1 });
    expect(kvmSegment(0, 0n).unusable).toBe(1);
  });

  it('writeDescriptorTables puts the GDT at GDT_ADDR and a zero IDT right after it', () => {
    const mem = new Uint8Array(0x10000).fill(0xcc);
    const { gdt, idt } = writeDescriptorTables(mem);
    const dv = new DataView(mem.buffer);
    expect(dv.getBigUint64(GDT_ADDR + 0x10, true)).toBe(0x00af9b000000ffffn);
    expect(dv.getBigUint64(GDT_ADDR + 0x18, true)).toBe(0x00cf93000000ffffn);
    expect(dv.getBigUint64(IDT_ADDR, true)).toBe(0n);
    expect(gdt).toEqual({ base: BigInt(GDT_ADDR), limit: 31 });
    expect(idt.base).toBe(BigInt(IDT_ADDR));
    expect(mem[IDT_ADDR + 8]).toBe(0xcc); // nothing written past the IDT slot
  });

  it('control registers: paging + protection, PAE, long mode', () => {
    expect(CR0_ENTRY).toBe(0x80000011);
    expect(CR4_ENTRY).toBe(0x20);
    expect(EFER_ENTRY).toBe(0x500);
  });
});

describe('filterCpuid', () => {
  const host: CpuidEntry[] = [
    { function: 0, index: 0, flags: 0, eax: 0x1f, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 },
    // A Skylake-ish leaf 1: APIC id 7, 16 logical CPUs, SSE3..AVX, CX16, XSAVE, OSXSAVE, HTT.
    { function: 1, index: 0, flags: 0, eax: 0x50654, ebx: 0x07100800, ecx: 0x7ffefbff, edx: 0xbfebfbff },
    { function: 4, index: 0, flags: 1, eax: 0x1c004121, ebx: 0x1c0003f, ecx: 0x3f, edx: 0 },
    { function: 7, index: 0, flags: 1, eax: 0, ebx: 0xd19f4fbb, ecx: 0x8, edx: 0x84000000 },
    { function: 0xb, index: 0, flags: 1, eax: 1, ebx: 2, ecx: 0x100, edx: 7 },
    { function: 0xd, index: 0, flags: 1, eax: 0x2e7, ebx: 0x340, ecx: 0xa80, edx: 0 },
    { function: 0x40000000, index: 0, flags: 0, eax: 0x40000001, ebx: 0x4b4d564b, ecx: 0x564b4d56, edx: 0x4d },
  ];
  const out = filterCpuid(host);
  const leaf = (f: number) => out.find((e) => e.function === f)!;

  it('leaves the input alone and keeps the entry list', () => {
    expect(host[1]!.ecx).toBe(0x7ffefbff);
    expect(out.map((e) => [e.function, e.index])).toEqual(host.map((e) => [e.function, e.index]));
    expect(out[0]).toEqual(host[0]);
    expect(out[6]).toEqual(host[6]);
  });

  it('leaf 1: hypervisor on; CMPXCHG16B, XSAVE, OSXSAVE, AVX off; APIC id 0, one CPU', () => {
    const l1 = leaf(1);
    expect(l1.ecx >>> 31).toBe(1);
    for (const bit of [13, 26, 27, 28]) expect((l1.ecx >>> bit) & 1).toBe(0);
    expect((l1.ecx >>> 0) & 1).toBe(1); // SSE3 untouched
    expect(l1.ebx >>> 24).toBe(0);
    expect((l1.ebx >>> 16) & 0xff).toBe(1);
    expect(l1.ebx & 0xffff).toBe(0x0800); // CLFLUSH line size kept
    expect((l1.edx >>> 28) & 1).toBe(0);
    for (const e of out) for (const r of [e.eax, e.ebx, e.ecx, e.edx]) expect(r).toBeGreaterThanOrEqual(0);
  });

  it('leaf 0x16: a zero base frequency becomes the TSC frequency KVM gives (MHz); a host figure stays', () => {
    const zero: CpuidEntry = { function: 0x16, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0 };
    expect(filterCpuid([zero], { tscKhz: 2596100 })[0]).toEqual({ ...zero, eax: 2596 });
    expect(filterCpuid([zero], { tscKhz: null })[0]).toEqual(zero);
    expect(filterCpuid([zero])[0]).toEqual(zero);
    const intel: CpuidEntry = { ...zero, eax: 2100, ebx: 3700, ecx: 100 };
    expect(filterCpuid([intel], { tscKhz: 2096000 })[0]).toEqual(intel);
  });

  it('XSAVE-dependent features and the XSAVE leaf are gone; topology says one CPU', () => {
    expect((leaf(7).ebx >>> 5) & 1).toBe(0); // AVX2
    expect((leaf(7).ebx >>> 16) & 1).toBe(0); // AVX512F
    expect(leaf(7).ebx & 1).toBe(1); // FSGSBASE kept
    expect(leaf(0xd)).toMatchObject({ eax: 0, ebx: 0, ecx: 0, edx: 0 });
    expect(leaf(0xb).edx).toBe(0);
    expect(leaf(4).eax >>> 14).toBe(0);
    expect(leaf(4).eax & 0x3fff).toBe(0x0121);
  });
});

describe('bootMsrs', () => {
  it('sets fast strings and zeroes the syscall/sysenter MSRs and the TSC', () => {
    const m = new Map(bootMsrs().map((e) => [e.index, e.data]));
    expect(m.get(0x1a0)).toBe(1n);
    for (const i of [0x10, 0x174, 0x175, 0x176, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102]) {
      expect(m.get(i)).toBe(0n);
    }
    expect(m.size).toBe(10);
  });
});
