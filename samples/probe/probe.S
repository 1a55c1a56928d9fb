/*
 * The engine probe (capture/probe/kvm-probe.ts): a few hundred bytes of 64-bit code that execute, in
 * order, the instructions a stock Linux kernel needs and a software-backed /dev/kvm may fail to emulate
 * (docs/kvm-facts.md): lock cmpxchg16b, an int3 delivered through an IDT, and xsave/xrstor
 * with CR4.OSXSAVE. After each one it writes its stage number to port 0xe9, so the VMM knows how far it
 * got when KVM stops with an internal error. Linked at physical = virtual 0x1000000 (identity-mapped by
 * the VMM's boot page tables), entered in 64-bit mode like a vmlinux.
 */
#define PORT 0xe9

	.text
	.globl _start
_start:
	mov	$PORT, %dx
	mov	$1, %al			/* 1: the guest runs */
	out	%al, %dx

	.globl probe_cmpxchg16b
probe_cmpxchg16b:
	lea	cx16_buf(%rip), %rdi
	xor	%eax, %eax
	xor	%edx, %edx
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	lock cmpxchg16b (%rdi)
	mov	$PORT, %dx
	mov	$2, %al			/* 2: cmpxchg16b done */
	out	%al, %dx

	.globl probe_int3
probe_int3:
	/* IDT entry 3 (#BP): a 64-bit interrupt gate to bp_handler through the boot code segment 0x10. */
	lea	idt(%rip), %rdi
	lea	bp_handler(%rip), %rax
	mov	%ax, 48(%rdi)
	movw	$0x10, 50(%rdi)
	movw	$0x8e00, 52(%rdi)
	shr	$16, %rax
	mov	%ax, 54(%rdi)
	shr	$16, %rax
	mov	%eax, 56(%rdi)
	lidt	idtr(%rip)
	int3
	mov	$PORT, %dx
	mov	$3, %al			/* 3: int3 handled and returned */
	out	%al, %dx

	.globl probe_xsave
probe_xsave:
	mov	$1, %eax
	cpuid
	bt	$26, %ecx		/* CPUID.1:ECX.XSAVE */
	jnc	1f
	mov	%cr4, %rax
	or	$(1 << 18), %rax	/* CR4.OSXSAVE */
	mov	%rax, %cr4
	xor	%ecx, %ecx
	mov	$1, %eax		/* XCR0 = x87 */
	xor	%edx, %edx
	xsetbv
	lea	xsave_area(%rip), %rdi
	mov	$1, %eax
	xor	%edx, %edx
	xsave	(%rdi)
	xrstor	(%rdi)
	mov	$PORT, %dx
	mov	$4, %al			/* 4: xsave and xrstor done */
	out	%al, %dx
	jmp	2f
1:	mov	$PORT, %dx
	mov	$0x14, %al		/* 0x14: no XSAVE in CPUID, skipped */
	out	%al, %dx
2:	mov	$0xaa, %al		/* 0xaa: all done */
	out	%al, %dx
3:	hlt
	jmp	3b

bp_handler:
	iretq

	.data
	.balign 16
cx16_buf:
	.quad	0, 0
	.balign 16
idt:
	.fill	64, 1, 0
idtr:
	.word	63
	.quad	idt
	.balign 64
xsave_area:
	.fill	4096, 1, 0
