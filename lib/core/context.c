/*
 * Fresh-context layout for the hand-written switches, and the ucontext fallback. A slot's
 * context is laid out once, when its stack is first carved; its entry then loops over
 * tasks forever, so reusing a pooled stack costs no set-up at all.
 */
#include "context.h"

#include <string.h>

void rotor__ctx_init(struct rotor__ctx *c, void *lo, void *top, void (*entry)(void))
{
	uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
#if ROTOR_ASM_SWITCH && defined(__x86_64__)
	/* r15 r14 r13 r12 rbx rbp, entry, then a null return address: entry starts with
	 * rsp = top - 8, as if called, and rbp = 0 ends frame-pointer unwinding. */
	void **sp = (void **)(t - 64);
	memset(sp, 0, 64);
	sp[6] = (void *)entry;
	c->sp = sp;
	(void)lo;
#elif ROTOR_ASM_SWITCH && defined(__aarch64__)
	/* x19..x28, x29 = 0, x30 = entry, d8..d15: 160 bytes, sp stays 16-aligned. */
	void **sp = (void **)(t - 160);
	memset(sp, 0, 160);
	sp[11] = (void *)entry;
	c->sp = sp;
	(void)lo;
#elif ROTOR_ASM_SWITCH
#error "no context switch for this architecture: build with -DROTOR_UCONTEXT=ON"
#else
	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = lo;
	c->uc.uc_stack.ss_size = t - (uintptr_t)lo;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, entry, 0);
#endif
}
