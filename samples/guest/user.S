/*
 * The demo guest's "user space": code at USER_BASE (below 0x800000000000) with no symbols, so a trace
 * shows it as bare hex addresses, as it shows a real process. Only .L labels, which never reach .symtab.
 * Called from the kernel (run_user) and returns to it; makes a getpid and a write "system call".
 */
#include "work.h"

	.section .user, "ax"
	push	%rbx
	movabs	$entry_SYSCALL_64, %rbx
	mov	$NR_GETPID, %eax
	call	*%rbx
	mov	$NR_WRITE, %eax
	mov	$1, %edi
	lea	.Lmsg(%rip), %rsi
	mov	$.Lmsg_end - .Lmsg, %edx
	call	*%rbx
	pop	%rbx
	ret
.Lmsg:
	.ascii	"hello from user space\n"
.Lmsg_end:
