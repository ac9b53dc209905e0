/*
 * Items: what a worker's run queue and a cross-worker batch carry (a task to start or
 * resume, a callback, a cancel request, a stop), and their intrusive FIFO.
 */
#ifndef ROTOR__ITEM_H
#define ROTOR__ITEM_H

#include "internal.h"

#include <stdatomic.h>

/*
 * An item is anything a worker's run queue or a cross-worker batch carries. `worker` is
 * the index of the worker that must process it.
 */
enum rotor__item_kind {
	ROTOR__ITEM_TASK = 1,     /* start or resume a task */
	ROTOR__ITEM_CALLBACK = 2, /* run a callback */
	ROTOR__ITEM_CANCEL = 3,   /* cancel a task owned by this worker */
	ROTOR__ITEM_STOP = 4,     /* begin stopping */
	ROTOR__ITEM_SPAWNS = 5,   /* a block of spawn requests (spawnreq.h) */
	ROTOR__ITEM_START = 6,    /* a task to make, from a non-worker (rotor__start_req) */
};

struct rotor__item {
	struct rotor__item *next;
	uint32_t kind;
	uint32_t worker;
};

/* FIFO of items, singly linked. */
struct rotor__queue {
	struct rotor__item *head;
	struct rotor__item **tail;
	size_t len;
};

static inline void rotor__queue_init(struct rotor__queue *q)
{
	q->head = NULL;
	q->tail = &q->head;
	q->len = 0;
}

static inline bool rotor__queue_empty(const struct rotor__queue *q)
{
	return q->head == NULL;
}

static inline void rotor__queue_push(struct rotor__queue *q, struct rotor__item *it)
{
	it->next = NULL;
	*q->tail = it;
	q->tail = &it->next;
	q->len++;
}

static inline struct rotor__item *rotor__queue_pop(struct rotor__queue *q)
{
	struct rotor__item *it = q->head;
	if (it) {
		q->head = it->next;
		if (!q->head)
			q->tail = &q->head;
		q->len--;
	}
	return it;
}

/* Take the whole queue as a NULL-terminated list and leave it empty. */
static inline struct rotor__item *rotor__queue_take(struct rotor__queue *q)
{
	struct rotor__item *head = q->head;
	rotor__queue_init(q);
	return head;
}

/* Push the chain first..(the item whose next is *last_next) on an atomic stack of items that
 * another thread takes whole with an exchange (acquire): release, so the taker sees the
 * items as they were written. */
static inline void rotor__item_stack_push(_Atomic(struct rotor__item *) *stack,
                                          struct rotor__item *first, struct rotor__item **last_next)
{
	struct rotor__item *head = atomic_load_explicit(stack, memory_order_relaxed);
	do
		*last_next = head;
	while (!atomic_compare_exchange_weak_explicit(stack, &head, first, memory_order_release,
	                                              memory_order_relaxed));
}

/* Put a NULL-terminated list back in front of the queue (a failed post being retried). */
void rotor__queue_prepend(struct rotor__queue *q, struct rotor__item *list);

#endif
