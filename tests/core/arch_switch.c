/*
 * The hand-written context switch, alone: a million round trips between two contexts,
 * checking that integer and floating-point values live across every switch on both sides.
 * Built for the host and, by cross_aarch64.sh, for aarch64 under qemu-user.
 */
#include "context.h"

#include <stdio.h>
#include <stdlib.h>

static struct rotor__ctx main_ctx, co_ctx;
static volatile long counter;
static volatile double co_value;

static void entry(void)
{
	double d = 1.5;
	for (long i = 0;; i++) {
		counter += i;
		d = d * 1.0000001 + 0.5;
		co_value = d;
		rotor__ctx_switch(&co_ctx, &main_ctx);
	}
}

int main(void)
{
	size_t size = 64 * 1024;
	char *stack = aligned_alloc(16, size);
	if (!stack)
		return 2;
	rotor__ctx_init(&co_ctx, stack, stack + size, entry);
	long keep1 = 12345, keep2 = 67890, expect = 0;
	double fkeep = 3.25, d = 1.5;
	for (long i = 0; i < 1000000; i++) {
		rotor__ctx_switch(&main_ctx, &co_ctx);
		expect += i;
		keep1 += 1;
		keep2 += 2;
		fkeep += 0.5;
		d = d * 1.0000001 + 0.5;
	}
	int ok = counter == expect && keep1 == 12345 + 1000000 && keep2 == 67890 + 2000000 &&
	         fkeep == 3.25 + 500000 && co_value == d;
	printf("arch_switch: %s (counter %ld, expected %ld)\n", ok ? "ok" : "FAILED", counter,
	       expect);
	free(stack);
	return ok ? 0 : 1;
}
