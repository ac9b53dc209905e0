/*
 * Per-worker timers: a binary min-heap of absolute deadlines in user space. The kernel only
 * ever holds the earliest one, as the timeout of the worker's wait. Equal deadlines fire in
 * the order they were armed.
 */
#ifndef ROTOR_TIMER_H
#define ROTOR_TIMER_H

#include "internal.h"

struct rotor__timer {
	int64_t deadline;
	uint64_t seq;
	uint32_t idx; /* position in the heap + 1; 0 when not armed */
	void (*fire)(struct rotor__timer *t);
};

/* The deadline is copied into the heap entry so that sifting compares without chasing the
 * timer pointer (one cache miss per level saved); seq breaks ties. */
struct rotor__heap_entry {
	int64_t deadline;
	struct rotor__timer *t;
};

struct rotor__timers {
	struct rotor__heap_entry *heap;
	size_t len;
	size_t cap;
	uint64_t seq;
};

void rotor__timers_init(struct rotor__timers *ts);
void rotor__timers_fini(struct rotor__timers *ts);
/* Arm t at deadline. Returns 0 or -ENOMEM. */
int rotor__timer_arm(struct rotor__timers *ts, struct rotor__timer *t, int64_t deadline);
void rotor__timer_disarm(struct rotor__timers *ts, struct rotor__timer *t);
static inline bool rotor__timer_armed(const struct rotor__timer *t)
{
	return t->idx != 0;
}
/* Earliest deadline, or ROTOR_FOREVER. */
static inline int64_t rotor__timers_next(const struct rotor__timers *ts)
{
	return ts->len ? ts->heap[0].deadline : ROTOR_FOREVER;
}
/* Fire (disarm, then call) every timer due at now. Returns how many fired. */
size_t rotor__timers_run(struct rotor__timers *ts, int64_t now);
/* Disarm everything, handing each timer to fn. */
void rotor__timers_drain(struct rotor__timers *ts, void (*fn)(struct rotor__timer *t));

#endif
