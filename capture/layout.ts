/**
 * Guest-physical memory layout of the boot-trace VMM: the ONLY place these addresses are defined.
 *
 * The low-memory layout follows Firecracker's x86-64 layout (arch/x86_64/layout.rs): boot structures
 * in the first 64 KiB below the conventional-memory hole, the command line at 128 KiB, the kernel
 * above 1 MiB. Where a value follows from another it is written that way, so changing one moves
 * the others.
 *
 *   0x00000500  GDT (4 entries)            0x00009000  PML4
 *   0x00000520  IDT (empty, limit 0)       0x0000A000  PDPT (low, identity)
 *   0x00007000  zero page (boot_params)    0x0000B000  4 x PD (identity, 2 MiB pages) .. 0xEFFF
 *   0x00008FF0  initial stack top          0x0000F000  PDPT for the high kernel mapping
 *   0x00020000  kernel command line        0x0009FC00  EBDA (reserved) .. 0xA0000
 *   0x000F0000  BIOS area (reserved)       0x00100000  bzImage protected-mode code
 *   0x01000000  vmlinux startup_64         0xFFFBC000  KVM identity-map page, 0xFFFBD000 TSS (3 pages)
 */

/** Size of a 4 KiB page; every boot structure below is page-sized or smaller. */
export const PAGE_SIZE = 0x1000;

/** Size of a large page used by the boot page tables (PDE with PS=1). */
export const LARGE_PAGE_SIZE = 0x200000;

/** One mebibyte, for converting `--memory` (MiB) to bytes and for messages. */
export const MIB = 0x100000;

// ---------------------------------------------------------------------------------------------
// Boot structures in low memory
// ---------------------------------------------------------------------------------------------

/** Global descriptor table: null, null, 64-bit code (0x10), data (0x18) — see capture/boot/gdt.ts. */
export const GDT_ADDR = 0x500;

/** Number of 8-byte GDT entries written at GDT_ADDR. */
export const GDT_ENTRY_COUNT = 4;

/** Interrupt descriptor table: an empty one (limit 0) right after the GDT; Linux installs its own early. */
export const IDT_ADDR = GDT_ADDR + GDT_ENTRY_COUNT * 8; // 0x520

/** The zero page (struct boot_params) whose address the kernel gets in RSI at the 64-bit entry. */
export const ZERO_PAGE_ADDR = 0x7000;

/** Initial RSP/RBP: the top of the page after the zero page, 16-byte aligned below 0x9000. */
export const BOOT_STACK_ADDR = 0x8ff0;

/** Top-level page table (PML4); its address is the CR3 value at entry. */
export const PML4_ADDR = 0x9000;

/** Page-directory-pointer table of the low identity map (PML4[0]); entries 0..3 cover 4 GiB. */
export const PDPT_ADDR = PML4_ADDR + PAGE_SIZE; // 0xA000

/** First page directory; PD_COUNT consecutive pages follow, each mapping 1 GiB with 2 MiB pages. */
export const PD_ADDR = PDPT_ADDR + PAGE_SIZE; // 0xB000

/** Number of page directories in the identity map: 4 x 1 GiB = the first 4 GiB. */
export const PD_COUNT = 4;

/** Bytes identity-mapped by the boot page tables (virtual == physical below this). */
export const IDENTITY_MAPPED_BYTES = PD_COUNT * 512 * LARGE_PAGE_SIZE; // 4 GiB

/**
 * PDPT for the kernel's high mapping: PML4[511] points here, and its entries 510 and 511 point at the
 * first two identity page directories, so virtual 0xffffffff80000000 + x == physical x for x < 1 GiB
 * (the range of the kernel image, __START_KERNEL_map). A vmlinux linked high whose code runs before it
 * builds its own tables, or a symbol-linked test guest, can then run at its link address.
 */
export const PDPT_HIGH_ADDR = PD_ADDR + PD_COUNT * PAGE_SIZE; // 0xF000

/** Virtual base of the kernel's high mapping (Linux __START_KERNEL_map), mapped to physical 0. */
export const KERNEL_HIGH_MAP_VIRT = 0xffffffff80000000n;

/** Bytes of the high mapping: two page directories (PDPT_HIGH entries 510 and 511) = 2 GiB to the top. */
export const KERNEL_HIGH_MAP_BYTES = 2 * 512 * LARGE_PAGE_SIZE;

/** End (exclusive) of the page-table area; nothing else may sit in [PML4_ADDR, PAGE_TABLES_END). */
export const PAGE_TABLES_END = PDPT_HIGH_ADDR + PAGE_SIZE; // 0x10000

/** The kernel command line (NUL-terminated), at 128 KiB like Firecracker. */
export const CMDLINE_ADDR = 0x20000;

/** Room reserved for the command line including its NUL; the kernel also caps it at its own cmdline_size. */
export const CMDLINE_MAX_SIZE = 2048;

// ---------------------------------------------------------------------------------------------
// Reserved legacy areas (reported in the e820 map)
// ---------------------------------------------------------------------------------------------

/** Start of the extended BIOS data area: the last 1 KiB below 640 KiB is reserved. */
export const EBDA_START = 0x9fc00;

/** End of conventional memory (640 KiB); [EBDA_START, LOW_RAM_END) is the EBDA. */
export const LOW_RAM_END = 0xa0000;

/** Start of the system BIOS area, reserved in the e820 map (Linux scans it for MP tables). */
export const BIOS_START = 0xf0000;

/** End (exclusive) of the BIOS area; equal to HIMEM_START. */
export const BIOS_END = 0x100000;

// ---------------------------------------------------------------------------------------------
// Kernel placement
// ---------------------------------------------------------------------------------------------

/** Start of high memory: where a bzImage's protected-mode part is loaded (its 64-bit entry is at +0x200). */
export const HIMEM_START = 0x100000;

/** Offset of the 64-bit entry point inside a bzImage's protected-mode part (boot protocol >= 2.11 / xloadflags bit 0). */
export const BZIMAGE_ENTRY64_OFFSET = 0x200;

/**
 * Physical address of startup_64 in an ELF vmlinux with CONFIG_PHYSICAL_START=0x1000000 and `nokaslr`;
 * also the kernel_alignment written into a synthesized setup header (16 MiB).
 */
export const KERNEL_LOAD_ADDR = 0x1000000;

// ---------------------------------------------------------------------------------------------
// KVM-private pages (VMX needs them; they must lie outside guest RAM, just below 4 GiB)
// ---------------------------------------------------------------------------------------------

/** KVM_SET_IDENTITY_MAP_ADDR: one page KVM uses for real-mode emulation on VMX; below the TSS. */
export const IDENTITY_MAP_ADDR = 0xfffbc000;

/** KVM_SET_TSS_ADDR: three pages for KVM's real-mode TSS, right after the identity-map page. */
export const TSS_ADDR = IDENTITY_MAP_ADDR + PAGE_SIZE; // 0xFFFBD000

/** Highest guest RAM size that stays below the KVM-private pages (and the IOAPIC at 0xFEC00000). */
export const MAX_LOW_RAM_BYTES = 0xc0000000;

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/** Guest RAM when `--memory` is not given, in MiB: enough for a distro kernel's init_size plus an initramfs. */
export const DEFAULT_MEMORY_MIB = 256;

/**
 * Kernel command line when none is given. Each option, and why:
 * - console=ttyS0          kernel messages go to COM1, which the VMM timestamps per line.
 * - earlyprintk=serial     print from setup_arch on, before the real console driver registers.
 * - nokaslr                fixed load and link addresses, so symbols (System.map) apply unchanged.
 * - noxsave                the software-backed KVM here cannot emulate xrstor/xsave (docs/kvm-facts.md).
 * - reboot=t               reboot by triple fault: a KVM_EXIT_SHUTDOWN the VMM sees as "guest ended".
 * - panic=-1               reboot immediately on panic instead of hanging, so a panic ends the capture.
 * - acpi=off               there are no ACPI tables; skip looking for them.
 * - pci=off                there is no PCI host bridge; skip probing 0xCF8/0xCFC.
 * - 8250.nr_uarts=1        only COM1 exists; do not probe COM2..4.
 * - i8042.noaux i8042.nokbd  there is no keyboard or mouse; the i8042 exists only as a reset line.
 */
export const DEFAULT_CMDLINE =
  'console=ttyS0 earlyprintk=serial nokaslr noxsave reboot=t panic=-1 acpi=off pci=off 8250.nr_uarts=1 i8042.noaux i8042.nokbd';

// ---------------------------------------------------------------------------------------------
// Legacy I/O ports and IRQs
// ---------------------------------------------------------------------------------------------

/** COM1 base port; the 8250 UART occupies 8 ports. */
export const SERIAL_COM1_PORT = 0x3f8;

/** Number of ports of an 8250 UART. */
export const SERIAL_PORT_COUNT = 8;

/** COM1 interrupt line on the PIC/IOAPIC. */
export const SERIAL_COM1_IRQ = 4;

/** i8042 keyboard controller data port. */
export const I8042_DATA_PORT = 0x60;

/** i8042 status (read) / command (write) port; writing 0xFE here pulses the CPU reset line. */
export const I8042_COMMAND_PORT = 0x64;

/** Ports the I8042 device claims: 0x60..0x64 (0x61..0x63 belong to no device here; KVM's PIT handles 0x61). */
export const I8042_PORT_COUNT = I8042_COMMAND_PORT - I8042_DATA_PORT + 1;

/** CMOS/RTC index port (bit 7 is the NMI mask). */
export const CMOS_INDEX_PORT = 0x70;

/** CMOS/RTC data port for the register selected through CMOS_INDEX_PORT. */
export const CMOS_DATA_PORT = 0x71;

/** Ports the CMOS device claims: index and data. */
export const CMOS_PORT_COUNT = CMOS_DATA_PORT - CMOS_INDEX_PORT + 1;
