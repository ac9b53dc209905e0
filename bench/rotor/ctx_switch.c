/*
 * bench_ctx_switch: one coroutine switch (half a round trip) on rotor's hand-written
 * switch, against swapcontext on the same kind of stack, and against Boost.Context's
 * jump_fcontext (a C-ABI symbol of libboost_context) where it is installed.
 */
#include "bench.h"
#include "context.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#define STACK (64 * 1024)

static long rounds;

/* Instructions per switch of the last run, -1: not counted. */
static double instr;

/* ---- rotor's switch ---- */
static struct rotor__ctx main_ctx, co_ctx;

static void co_entry(void)
{
	for (;;)
		rotor__ctx_switch(&co_ctx, &main_ctx);
}

static double run_rotor(char *stack)
{
	rotor__ctx_init(&co_ctx, stack, stack + STACK, co_entry);
	rotor__ctx_switch(&main_ctx, &co_ctx);
	int64_t t0 = bench_now(), i0 = bench_instructions();
	for (long i = 0; i < rounds; i++)
		rotor__ctx_switch(&main_ctx, &co_ctx);
	int64_t i1 = bench_instructions(), t1 = bench_now();
	instr = bench_instr_per_op(i0, i1, (double)(2 * rounds));
	return (double)(t1 - t0) / (double)(2 * rounds);
}

/* ---- swapcontext ---- */
static ucontext_t uc_main, uc_co;

static void uc_entry(void)
{
	for (;;)
		swapcontext(&uc_co, &uc_main);
}

static double run_ucontext(char *stack)
{
	getcontext(&uc_co);
	uc_co.uc_stack.ss_sp = stack;
	uc_co.uc_stack.ss_size = STACK;
	uc_co.uc_link = NULL;
	makecontext(&uc_co, uc_entry, 0);
	swapcontext(&uc_main, &uc_co);
	long n = rounds / 20 + 1;
	int64_t t0 = bench_now(), i0 = bench_instructions();
	for (long i = 0; i < n; i++)
		swapcontext(&uc_main, &uc_co);
	int64_t i1 = bench_instructions(), t1 = bench_now();
	instr = bench_instr_per_op(i0, i1, (double)(2 * n));
	return (double)(t1 - t0) / (double)(2 * n);
}

#ifdef ROTOR_HAVE_BOOST_CONTEXT
/* Boost.Context's C-ABI entry points (boost/context/detail/fcontext.hpp). */
typedef void *fcontext_t;
typedef struct {
	fcontext_t fctx;
	void *data;
} transfer_t;
extern transfer_t jump_fcontext(fcontext_t const to, void *vp);
extern fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

static void fc_entry(transfer_t t)
{
	for (;;)
		t = jump_fcontext(t.fctx, NULL);
}

static double run_boost(char *stack)
{
	fcontext_t co = make_fcontext(stack + STACK, STACK, fc_entry);
	transfer_t t = jump_fcontext(co, NULL);
	int64_t t0 = bench_now(), i0 = bench_instructions();
	for (long i = 0; i < rounds; i++)
		t = jump_fcontext(t.fctx, NULL);
	int64_t i1 = bench_instructions(), t1 = bench_now();
	instr = bench_instr_per_op(i0, i1, (double)(2 * rounds));
	return (double)(t1 - t0) / (double)(2 * rounds);
}
#endif

int main(int argc, char **argv)
{
	struct bench_ctx b;
	bench_init(&b, "ctx_switch",
	           "one coroutine switch: rotor's asm switch vs swapcontext and Boost.Context", 9,
	           5, argc, argv);
	rounds = b.quick ? 2000000 : 20000000;
	char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return 1;
	struct bench_series r = {.impl = "rotor"}, u = {.impl = "swapcontext"};
	struct bench_series bo = {.impl = "boost-jump_fcontext"};
	for (int i = 0; i < b.reps; i++) {
		bench_add(&r, run_rotor(stack));
		bench_add_instr(&r, instr);
		bench_add(&u, run_ucontext(stack));
		bench_add_instr(&u, instr);
#ifdef ROTOR_HAVE_BOOST_CONTEXT
		bench_add(&bo, run_boost(stack));
		bench_add_instr(&bo, instr);
#endif
	}
#ifndef ROTOR_HAVE_BOOST_CONTEXT
	bench_note(&b, "skipped boost-jump_fcontext: libboost-context-dev not installed");
#endif
	bench_report(&b, "switch", "ns", &r, &bo);
	bench_report(&b, "switch", "ns", &r, &u);
	munmap(stack, STACK);
	return 0;
}
