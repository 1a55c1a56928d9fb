/**
 * The boot page tables: long mode needs paging, so the VMM enters the kernel with tables that
 * identity-map the first 4 GiB with 2 MiB pages (virtual == physical, where the kernel, zero page and
 * command line live), like Firecracker and the kernel's own decompressor.
 *
 * They also map the kernel's high range: PML4[511] -> PDPT_HIGH, whose entries 510 and 511 point at the
 * first two identity page directories, so 0xffffffff80000000 + x reads physical x (x < 2 GiB). A vmlinux
 * or test guest linked at __START_KERNEL_map can thus run at its link address before it builds its own
 * tables; Linux's startup_64 ignores these tables once it loads its own CR3.
 *
 *   PML4_ADDR       [0] -> PDPT_ADDR            [511] -> PDPT_HIGH_ADDR
 *   PDPT_ADDR       [0..3] -> PD_ADDR + i * 4 KiB
 *   PD_ADDR..       2048 entries: (i * 2 MiB) | PS | RW | P
 *   PDPT_HIGH_ADDR  [510] -> PD_ADDR, [511] -> PD_ADDR + 4 KiB
 */
import {
  KERNEL_HIGH_MAP_VIRT,
  LARGE_PAGE_SIZE,
  PAGE_SIZE,
  PAGE_TABLES_END,
  PD_ADDR,
  PD_COUNT,
  PDPT_ADDR,
  PDPT_HIGH_ADDR,
  PML4_ADDR,
} from '../layout.js';

const PRESENT = 0x1;
const WRITABLE = 0x2;
const PAGE_SIZE_2M = 0x80; // PS bit in a PDE: the entry maps a 2 MiB page
const ENTRIES = 512;

/** Index of the PML4 entry for KERNEL_HIGH_MAP_VIRT (bits 47..39): 511. */
export const HIGH_PML4_INDEX = Number((KERNEL_HIGH_MAP_VIRT >> 39n) & 0x1ffn);
/** Index of the PDPT entry for KERNEL_HIGH_MAP_VIRT (bits 38..30): 510. */
export const HIGH_PDPT_INDEX = Number((KERNEL_HIGH_MAP_VIRT >> 30n) & 0x1ffn);

/** Write the tables into guest memory `mem` (guest-physical 0 at index 0); returns the CR3 value. */
export function writeIdentityPageTables(mem: Uint8Array): number {
  if (mem.length < PAGE_TABLES_END) throw new RangeError(`guest memory of ${mem.length} bytes cannot hold the page tables`);
  mem.fill(0, PML4_ADDR, PAGE_TABLES_END);
  const dv = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
  // Every entry's address fits in 32 bits (all tables and mapped pages are below 4 GiB), so the high
  // half of each 64-bit entry stays 0.
  const set = (table: number, index: number, value: number): void => dv.setUint32(table + index * 8, value >>> 0, true);

  set(PML4_ADDR, 0, PDPT_ADDR | PRESENT | WRITABLE);
  set(PML4_ADDR, HIGH_PML4_INDEX, PDPT_HIGH_ADDR | PRESENT | WRITABLE);
  for (let d = 0; d < PD_COUNT; d++) {
    const pd = PD_ADDR + d * PAGE_SIZE;
    set(PDPT_ADDR, d, pd | PRESENT | WRITABLE);
    for (let i = 0; i < ENTRIES; i++) {
      set(pd, i, (d * ENTRIES + i) * LARGE_PAGE_SIZE + (PAGE_SIZE_2M | PRESENT | WRITABLE));
    }
  }
  set(PDPT_HIGH_ADDR, HIGH_PDPT_INDEX, PD_ADDR | PRESENT | WRITABLE);
  set(PDPT_HIGH_ADDR, HIGH_PDPT_INDEX + 1, (PD_ADDR + PAGE_SIZE) | PRESENT | WRITABLE);
  return PML4_ADDR;
}

/**
 * Walk the tables in `mem` like the MMU would for a 2 MiB mapping: the physical address for `virt`,
 * or undefined when unmapped. For tests and for reporting where a virtual RIP lives.
 */
export function translate(mem: Uint8Array, cr3: number, virt: bigint): number | undefined {
  const dv = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
  const entry = (table: number, index: bigint): number | undefined => {
    const off = table + Number(index & 0x1ffn) * 8;
    const lo = dv.getUint32(off, true);
    return lo & PRESENT ? lo : undefined;
  };
  const pml4e = entry(cr3, virt >> 39n);
  if (pml4e === undefined) return undefined;
  const pdpte = entry((pml4e & ~0xfff) >>> 0, virt >> 30n);
  if (pdpte === undefined) return undefined;
  const pde = entry((pdpte & ~0xfff) >>> 0, virt >> 21n);
  if (pde === undefined || !(pde & PAGE_SIZE_2M)) return undefined;
  return ((pde & ~(LARGE_PAGE_SIZE - 1)) >>> 0) + Number(virt & BigInt(LARGE_PAGE_SIZE - 1));
}
