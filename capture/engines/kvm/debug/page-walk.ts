/**
 * A guest page-table walk as the MMU does it in 64-bit mode with 4-level paging (Intel SDM vol. 3A,
 * 4.5; AMD APM vol. 2, 5.3): PML4 -> PDPT (1 GiB page if PS) -> PD (2 MiB page if PS) -> PT (4 KiB page).
 * Entries are 64-bit; the physical address is bits 12..51 (the NX bit 63 and the high ignored bits are
 * dropped). The kernel's own tables live anywhere in RAM (not only where the VMM built its boot tables),
 * so the walk reads through a callback over all of guest memory.
 *
 *   translate64(read, cr3, 0xffffffff81000000n)  -> 0x1000000 under the kernel's mapping (nokaslr)
 */

/** Reads the 64-bit little-endian entry at guest-physical `pa`; undefined outside guest memory. */
export type ReadPhys64 = (pa: number) => bigint | undefined;

const PRESENT = 1n;
const PAGE_SIZE_BIT = 0x80n;
/** Physical address bits of an entry: 12..51. */
const ADDR_MASK = 0x000ffffffffff000n;

/**
 * The guest-physical address for virtual `va` under the 4-level tables at `cr3`, or undefined when a
 * level is not present or a table lies outside guest memory. 5-level paging (LA57) is not handled.
 */
export function translate64(read: ReadPhys64, cr3: bigint, va: bigint): number | undefined {
  let table = cr3 & ADDR_MASK;
  // Index bits and the page size a PS bit means at each level: PML4 (39), PDPT (30: 1 GiB), PD (21: 2 MiB), PT (12).
  for (const shift of [39n, 30n, 21n, 12n]) {
    const e = read(Number(table + ((va >> shift) & 0x1ffn) * 8n));
    if (e === undefined || (e & PRESENT) === 0n) return undefined;
    const base = e & ADDR_MASK;
    if (shift === 12n || ((shift === 30n || shift === 21n) && (e & PAGE_SIZE_BIT) !== 0n)) {
      const size = 1n << shift;
      return Number((base & ~(size - 1n)) + (va & (size - 1n)));
    }
    table = base;
  }
  return undefined;
}
