/*
 * Wait queues for coroutine sync primitives that work across workers. A primitive guards
 * its state and its queues with one short spinlock (never held across a suspension); a
 * waiting task parks a struct rotor__waiter on its own stack. Exactly one of {a waker that
 * dequeues it, its deadline, its cancellation} resumes it: all three decide under the
 * spinlock by looking at `queued`.
 *
 * Lifetime: the waiter record lives on the waiting coroutine's stack, so a waker must read
 * everything it needs (task, data) before calling rotor__waiter_wake(), and touch nothing
 * of it afterwards.
 */
#ifndef ROTOR__WAITQ_H
#define ROTOR__WAITQ_H

#include <stdatomic.h>

#include "core.h"

struct rotor_task;

struct rotor__spin {
	_Atomic uint32_t v;
};

static inline void rotor__spin_lock(struct rotor__spin *s)
{
	while (atomic_exchange_explicit(&s->v, 1, memory_order_acquire))
		while (atomic_load_explicit(&s->v, memory_order_relaxed))
			rotor__cpu_relax();
}

static inline void rotor__spin_unlock(struct rotor__spin *s)
{
	atomic_store_explicit(&s->v, 0, memory_order_release);
}

struct rotor__waiter {
	struct rotor__waiter *next;
	struct rotor__waiter *prev;
	struct rotor_task *task;
	struct rotor__waitq *q;
	struct rotor__spin *lock;
	void *data; /* a value handed over by the waker (channels) or by the waiter */
	bool queued;
	/* A select's waiter (one per case, all on the selecting task's stack): a waker must
	 * claim the select (CAS winner from -1 to index) before using it, and skips it if
	 * another case won. NULL for a plain waiter. */
	struct rotor__select *sel;
	int index;
	int res; /* the result for the selecting task (0, -EPIPE) */
};

struct rotor__select {
	_Atomic int winner; /* -1: open; >= 0: the case that completed; INT_MAX: aborted */
};

struct rotor__waitq {
	struct rotor__waiter *head;
	struct rotor__waiter *tail;
};

static inline bool rotor__waitq_empty(const struct rotor__waitq *q)
{
	return q->head == NULL;
}

/*
 * Enqueue wt for the calling task on q, release `lock` (held by the caller), and suspend
 * until woken, the deadline passes (-ETIMEDOUT) or the task is cancelled (-ECANCELED).
 * Returns the waker's result. Precondition: the caller is a task and checked cancellation.
 */
int rotor__waitq_block(struct rotor__waitq *q, struct rotor__spin *lock, struct rotor__waiter *wt,
                       int64_t deadline);

/* Lock held: take the first waiter off q (NULL if none). */
struct rotor__waiter *rotor__waitq_pop(struct rotor__waitq *q);

/* Lock released: resume a popped waiter's task with res. wt must not be touched after. */
void rotor__waiter_wake(struct rotor__waiter *wt, int res);

#endif
