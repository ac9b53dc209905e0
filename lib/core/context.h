/*
 * Execution contexts: a saved stack pointer switched by a few lines of assembly on x86-64
 * and aarch64 (lib/core/arch/), ucontext elsewhere or when ROTOR_UCONTEXT forces it.
 */
#ifndef ROTOR__CONTEXT_H
#define ROTOR__CONTEXT_H

#include "internal.h"

#ifndef ROTOR_ASM_SWITCH
#error "ROTOR_ASM_SWITCH must be defined by the build"
#endif

#if !ROTOR_ASM_SWITCH
#include <ucontext.h>
#endif

struct rotor__ctx {
#if ROTOR_ASM_SWITCH
	void *sp;
#else
	ucontext_t uc;
#endif
};

#if ROTOR_ASM_SWITCH
void rotor__ctx_swap(void **save_sp, void *to_sp);
#endif

/* Lay out a fresh context that starts entry() on [lo, top). entry must never return. */
void rotor__ctx_init(struct rotor__ctx *c, void *lo, void *top, void (*entry)(void));

/* Save the running context in from and resume to. Returns when something switches back. */
static inline void rotor__ctx_switch(struct rotor__ctx *from, struct rotor__ctx *to)
{
#if ROTOR_ASM_SWITCH
	rotor__ctx_swap(&from->sp, to->sp);
#else
	swapcontext(&from->uc, &to->uc);
#endif
}

#endif
