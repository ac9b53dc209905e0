/*
 * Per-worker timers in user space; the kernel only ever holds the earliest deadline, as the
 * timeout of the worker's wait. Equal deadlines fire in the order they were armed.
 *
 * Two structures: a FIFO list for deadlines that arrive in non-decreasing order (the usual
 * case: many tasks sleeping the same duration), O(1) to arm, fire and cancel; and a binary
 * min-heap for the rest. The earliest timer is the earlier of the two heads.
 */
#ifndef ROTOR__TIMER_H
#define ROTOR__TIMER_H

#include "internal.h"

#define ROTOR__TIMER_IN_LIST UINT32_MAX

struct rotor__timer {
	int64_t deadline;
	uint64_t seq;
	uint32_t idx; /* 0: not armed; ROTOR__TIMER_IN_LIST; else heap position + 1 */
	void (*fire)(struct rotor__timer *t);
	struct rotor__timer *prev; /* in the FIFO list */
	struct rotor__timer *next;
};

/* The deadline is copied into the heap entry so that sifting compares without chasing the
 * timer pointer (one cache miss per level saved); seq breaks ties. */
struct rotor__heap_entry {
	int64_t deadline;
	struct rotor__timer *t;
};

struct rotor__timers {
	struct rotor__heap_entry *heap;
	size_t len; /* in the heap */
	size_t cap;
	uint64_t seq;
	struct rotor__timer *head; /* FIFO list, deadlines non-decreasing */
	struct rotor__timer *tail;
	size_t count; /* armed, both structures */
};

void rotor__timers_init(struct rotor__timers *ts);
void rotor__timers_fini(struct rotor__timers *ts);
/* Arm t at deadline. Never fails: without memory to grow the heap, the timer goes into the
 * sorted list the slow way. */
void rotor__timer_arm(struct rotor__timers *ts, struct rotor__timer *t, int64_t deadline);
void rotor__timer_disarm(struct rotor__timers *ts, struct rotor__timer *t);
static inline bool rotor__timer_armed(const struct rotor__timer *t)
{
	return t->idx != 0;
}
/* Earliest deadline, or ROTOR_FOREVER. */
static inline int64_t rotor__timers_next(const struct rotor__timers *ts)
{
	int64_t h = ts->len ? ts->heap[0].deadline : ROTOR_FOREVER;
	int64_t l = ts->head ? ts->head->deadline : ROTOR_FOREVER;
	return h < l ? h : l;
}
/* Fire (disarm, then call) every timer due at now. Returns how many fired. */
size_t rotor__timers_run(struct rotor__timers *ts, int64_t now);
/* Disarm and return any armed timer, or NULL (teardown). */
struct rotor__timer *rotor__timers_pop_any(struct rotor__timers *ts);

#endif
