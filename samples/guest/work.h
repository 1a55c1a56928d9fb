/*
 * Constants shared by the demo guest's C and assembly and read by the tests (test/capture-*.test.ts
 * parse the `#define NAME value` lines), so expected step counts are computed, not copied.
 *
 * Instruction counts of the work functions (head.S), one trace line per executed instruction:
 *   work_small:  mov; ITERS x (dec; jnz); ret              = 2 * WORK_SMALL_ITERS + 2
 *   work_medium: same loop                                 = 2 * WORK_MEDIUM_ITERS + 2
 *   work_nested: mov; ITERS x (dec; jnz); call; call; ret  = 2 * WORK_NESTED_ITERS + 4
 *                (its two calls go to work_small, whose lines count for work_small)
 * start_kernel calls work_small once, then work_medium, then work_nested: work_small runs
 * 1 + WORK_NESTED_SMALL_CALLS times in all.
 */
#ifndef DEMO_WORK_H
#define DEMO_WORK_H

#define WORK_SMALL_ITERS 1000
#define WORK_MEDIUM_ITERS 20000
#define WORK_NESTED_ITERS 500
#define WORK_NESTED_SMALL_CALLS 2

/* Guest-physical (= virtual, identity-mapped) base of the symbol-less "user" code (user.S, link.ld). */
#define USER_BASE 0x400000

/* Linux x86-64 syscall numbers the user code makes. */
#define NR_WRITE 1
#define NR_GETPID 39

/* COM1 and the i8042 command port (capture/layout.ts has the VMM's side). */
#define COM1 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_THRE 0x20
#define I8042_COMMAND 0x64
#define I8042_RESET 0xfe

/* The link and load addresses of link.ld, for the PVH entry's physical addresses (head.S). */
#define KERNEL_VIRT 0xffffffff81000000
#define KERNEL_PHYS 0x1000000

/* PVH boot (head.S): the ELF note type QEMU's -kernel looks for, and the entry's GDT selectors. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PVH_CS 0x08
#define PVH_DS 0x10

/* boot_params offsets (Documentation/arch/x86/zero-page.rst). */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_CMD_LINE_PTR 0x228

#endif
