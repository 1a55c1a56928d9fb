/*
 * Entry and the hand-counted parts of the demo guest. Linked at 0xffffffff81000000 and loaded at physical
 * 0x1000000 like a vmlinux (link.ld); entered in 64-bit mode at the physical address of _start with
 * RSI = the zero page, the identity map and the kernel high mapping set up by the VMM.
 */
#include "work.h"

	.section .head.text, "ax"
	.globl _start
_start:
	/* Running at the physical (identity-mapped) address: jump to the link address first. */
	movabs	$.Lhigh, %rax
	jmp	*%rax
.Lhigh:
	movabs	$boot_stack_top, %rsp
	xor	%ebp, %ebp
	mov	%rsi, %rdi		/* start_kernel(zero page) */
	movabs	$start_kernel, %rax
	call	*%rax
.Lhang:
	hlt
	jmp	.Lhang

/*
 * PVH entry (XEN_ELFNOTE_PHYS32_ENTRY below), for `qemu-system-x86_64 -kernel demo.elf`: QEMU's pvh.bin
 * option ROM jumps here at the physical address, in 32-bit protected mode with flat segments, paging off
 * and EBX = hvm_start_info. It copies the command line's address from hvm_start_info into a zero page of
 * its own (the only boot_params fields the demo reads), switches to long mode with page tables of its own
 * (identity + the high kernel mapping, as the boot-trace VMM sets up) and enters _start as the VMM does,
 * with RSI = that zero page, or 0 ("no zero page") when EBX holds no hvm_start_info. So under QEMU the
 * demo prints the same command line, and runs the same instructions, as under the KVM engine.
 * The KVM engine never runs this code: it enters _start (e_entry) in 64-bit mode directly.
 */
#define PA(x) ((x) - KERNEL_VIRT + KERNEL_PHYS)
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR4_PAE 0x20
#define CR0_PE_PG 0x80000001
/* struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h) */
#define HVM_START_MAGIC 0x336ec578
#define HVM_CMDLINE_PADDR 24
	.code32
	.globl pvh_start
	.type pvh_start, @function
pvh_start:
	cli
	cld
	xor	%edi, %edi		/* EDI: the zero page for RSI, 0 if none */
	test	%ebx, %ebx
	jz	1f
	cmpl	$HVM_START_MAGIC, (%ebx)
	jne	1f
	mov	HVM_CMDLINE_PADDR(%ebx), %eax
	mov	%eax, PA(pvh_zero_page) + BP_CMD_LINE_PTR
	mov	HVM_CMDLINE_PADDR + 4(%ebx), %eax
	mov	%eax, PA(pvh_zero_page) + BP_EXT_CMD_LINE_PTR
	mov	$PA(pvh_zero_page), %edi
1:
	mov	$PA(pvh_pml4), %eax
	mov	%eax, %cr3
	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	lgdt	PA(pvh_gdt_desc)
	mov	%cr0, %eax
	or	$CR0_PE_PG, %eax
	mov	%eax, %cr0
	ljmp	$PVH_CS, $PA(.Lpvh64)
	.code64
.Lpvh64:
	mov	$PVH_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%edi, %esi		/* the zero page or 0; zero-extended */
	mov	$PA(_start), %eax	/* identity-mapped, like the VMM's entry */
	jmp	*%rax
	.size pvh_start, . - pvh_start

	.pushsection .note.Xen, "a", @note
	.balign 4
	.long	4			/* namesz: "Xen\0" */
	.long	4			/* descsz: a 32-bit physical address */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.balign 4
	.long	PA(pvh_start)
	.popsection

	.section .rodata
	.balign 8
pvh_gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* PVH_CS: 64-bit code, ring 0 */
	.quad	0x00cf92000000ffff	/* PVH_DS: data */
pvh_gdt_end:
pvh_gdt_desc:
	.word	pvh_gdt_end - pvh_gdt - 1
	.long	PA(pvh_gdt)

	/* The PVH path's page tables: PML4[0] and PML4[511]/PDPT[510] both reach one PD of 2 MiB pages,
	 * mapping the first GiB at 0 and at 0xffffffff80000000 (the kernel's link base minus 16 MiB). */
	.section .data
	.balign 4096
pvh_pml4:
	.quad	PA(pvh_pdpt_low) + 3
	.fill	510, 8, 0
	.quad	PA(pvh_pdpt_high) + 3
pvh_pdpt_low:
	.quad	PA(pvh_pd) + 3
	.fill	511, 8, 0
pvh_pdpt_high:
	.fill	510, 8, 0
	.quad	PA(pvh_pd) + 3
	.quad	0
pvh_pd:
	.set	pvh_i, 0
	.rept	512
	.quad	(pvh_i << 21) + 0x83	/* present, writable, 2 MiB */
	.set	pvh_i, pvh_i + 1
	.endr

	.text
/*
 * The work functions. No port I/O and no rep prefixes, so single-stepping counts every instruction
 * exactly once (see docs/kvm-facts.md on OUT and rep). Counts are in work.h.
 */
	.globl work_small
	.type work_small, @function
work_small:
	mov	$WORK_SMALL_ITERS, %ecx
1:	dec	%ecx
	jnz	1b
	ret
	.size work_small, . - work_small

	.globl work_medium
	.type work_medium, @function
work_medium:
	mov	$WORK_MEDIUM_ITERS, %ecx
1:	dec	%ecx
	jnz	1b
	ret
	.size work_medium, . - work_medium

	.globl work_nested
	.type work_nested, @function
work_nested:
	mov	$WORK_NESTED_ITERS, %ecx
1:	dec	%ecx
	jnz	1b
	call	work_small
	call	work_small
	ret
	.size work_nested, . - work_nested

/*
 * The system-call entry, named like Linux's. The "user" code reaches it with a plain call (rax = number,
 * rdi/rsi/rdx = arguments) rather than the syscall instruction: everything runs in ring 0 here, and a
 * call keeps the guest independent of the LSTAR/EFER.SCE set-up. It builds a small pt_regs on the stack
 * and hands it to do_syscall_64, like the real one.
 */
	.globl entry_SYSCALL_64
	.type entry_SYSCALL_64, @function
entry_SYSCALL_64:
	push	%rdx		/* regs->dx */
	push	%rsi		/* regs->si */
	push	%rdi		/* regs->di */
	push	%rax		/* regs->orig_ax */
	mov	%rsp, %rdi
	call	do_syscall_64
	add	$32, %rsp
	ret
	.size entry_SYSCALL_64, . - entry_SYSCALL_64

	.section .bss
	.balign 4096
pvh_zero_page:
	.skip 4096
	.balign 16
boot_stack:
	.skip 16384
	.globl boot_stack_top
boot_stack_top:
