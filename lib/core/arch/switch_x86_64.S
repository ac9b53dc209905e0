/*
 * rotor__ctx_swap(void **save_sp, void *to_sp): save the callee-saved registers on the
 * current stack, store its stack pointer in *save_sp, load to_sp, restore and jump.
 * The resume address is popped and reached with an indirect jmp rather than ret: a ret
 * here would return to a different call site every time and be mispredicted.
 * A fresh stack is laid out by rotor__ctx_init as six zero registers and the entry address.
 */
	.text
	.globl rotor__ctx_swap
	.hidden rotor__ctx_swap
	.type rotor__ctx_swap, @function
	.p2align 4
rotor__ctx_swap:
	.cfi_startproc
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	popq %rcx
	jmpq *%rcx
	.cfi_endproc
	.size rotor__ctx_swap, .-rotor__ctx_swap
	.section .note.GNU-stack,"",@progbits
