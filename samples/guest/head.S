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

	.text
/*
 * The work functions. No port I/O and no rep prefixes, so single-stepping counts every instruction
 * exactly once (see this-machine.md on OUT and rep). Counts are in work.h.
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
	.balign 16
boot_stack:
	.skip 16384
	.globl boot_stack_top
boot_stack_top:
