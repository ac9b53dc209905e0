/*
 * rotor__ctx_swap(void **save_sp, void *to_sp): save x19-x30 and d8-d15 (the AAPCS64
 * callee-saved set) on the current stack, store sp in *save_sp, load to_sp, restore and
 * branch with br (not ret, whose return-stack prediction would miss on every switch).
 * A fresh stack is laid out by rotor__ctx_init with the entry address in the x30 slot.
 */
	.text
	.globl rotor__ctx_swap
	.hidden rotor__ctx_swap
	.type rotor__ctx_swap, %function
	.p2align 4
rotor__ctx_swap:
	sub sp, sp, #160
	stp x19, x20, [sp, #0]
	stp x21, x22, [sp, #16]
	stp x23, x24, [sp, #32]
	stp x25, x26, [sp, #48]
	stp x27, x28, [sp, #64]
	stp x29, x30, [sp, #80]
	stp d8, d9, [sp, #96]
	stp d10, d11, [sp, #112]
	stp d12, d13, [sp, #128]
	stp d14, d15, [sp, #144]
	mov x9, sp
	str x9, [x0]
	mov sp, x1
	ldp x19, x20, [sp, #0]
	ldp x21, x22, [sp, #16]
	ldp x23, x24, [sp, #32]
	ldp x25, x26, [sp, #48]
	ldp x27, x28, [sp, #64]
	ldp x29, x30, [sp, #80]
	ldp d8, d9, [sp, #96]
	ldp d10, d11, [sp, #112]
	ldp d12, d13, [sp, #128]
	ldp d14, d15, [sp, #144]
	add sp, sp, #160
	br x30
	.size rotor__ctx_swap, .-rotor__ctx_swap
	.section .note.GNU-stack,"",@progbits
