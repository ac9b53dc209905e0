/*
 * The timer list and heap. Heap index i's children are 2i+1 and 2i+2; each timer remembers
 * its position so that disarming (a cancelled sleep, a future resolved before its
 * deadline) is O(log n); in the list it is O(1).
 */
#include "timer.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

_Atomic int rotor__fault_timer_grow;

static bool before(const struct rotor__heap_entry *a, const struct rotor__heap_entry *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->t->seq < b->t->seq);
}

static void place(struct rotor__timers *ts, size_t i, struct rotor__heap_entry e)
{
	ts->heap[i] = e;
	e.t->idx = (uint32_t)i + 1;
}

static void sift_up(struct rotor__timers *ts, size_t i)
{
	struct rotor__heap_entry e = ts->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(&e, &ts->heap[parent]))
			break;
		place(ts, i, ts->heap[parent]);
		i = parent;
	}
	place(ts, i, e);
}

static void sift_down(struct rotor__timers *ts, size_t i)
{
	struct rotor__heap_entry e = ts->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= ts->len)
			break;
		if (c + 1 < ts->len && before(&ts->heap[c + 1], &ts->heap[c]))
			c++;
		if (!before(&ts->heap[c], &e))
			break;
		place(ts, i, ts->heap[c]);
		i = c;
	}
	place(ts, i, e);
}

void rotor__timers_init(struct rotor__timers *ts)
{
	ts->heap = NULL;
	ts->len = ts->cap = 0;
	ts->seq = 0;
	ts->head = ts->tail = NULL;
	ts->count = 0;
}

void rotor__timers_fini(struct rotor__timers *ts)
{
	rotor__free(ROTOR__FAULT_TIMER_GROW, ts->heap);
	rotor__timers_init(ts);
}

/* Put t in the sorted list after every timer due no later (equal deadlines keep their
 * order). From the tail: O(1) for in-order deadlines, the usual case. */
static void list_insert(struct rotor__timers *ts, struct rotor__timer *t)
{
	struct rotor__timer *after = ts->tail;
	while (after && after->deadline > t->deadline)
		after = after->prev;
	t->idx = ROTOR__TIMER_IN_LIST;
	t->prev = after;
	t->next = after ? after->next : ts->head;
	if (t->next)
		t->next->prev = t;
	else
		ts->tail = t;
	if (after)
		after->next = t;
	else
		ts->head = t;
}

void rotor__timer_arm(struct rotor__timers *ts, struct rotor__timer *t, int64_t deadline)
{
	ROTOR__ASSERT(!t->idx);
	t->deadline = deadline;
	t->seq = ts->seq++;
	ts->count++;
	if (!ts->tail || deadline >= ts->tail->deadline) {
		list_insert(ts, t); /* in order: appended */
		return;
	}
	if (ts->len == ts->cap) {
		size_t cap = ts->cap ? ts->cap * 2 : 64;
		struct rotor__heap_entry *h =
		    atomic_load_explicit(&rotor__fault_timer_grow, memory_order_relaxed)
		        ? NULL
		        : rotor__realloc(ROTOR__FAULT_TIMER_GROW, ts->heap, cap * sizeof(*h));
		if (!h) {
			/* No memory for the heap: a slower sorted insert, never a lost deadline. */
			list_insert(ts, t);
			return;
		}
		ts->heap = h;
		ts->cap = cap;
	}
	ts->heap[ts->len++] = (struct rotor__heap_entry){deadline, t};
	sift_up(ts, ts->len - 1);
}

void rotor__timer_disarm(struct rotor__timers *ts, struct rotor__timer *t)
{
	if (!t->idx)
		return;
	ts->count--;
	if (t->idx == ROTOR__TIMER_IN_LIST) {
		if (t->prev)
			t->prev->next = t->next;
		else
			ts->head = t->next;
		if (t->next)
			t->next->prev = t->prev;
		else
			ts->tail = t->prev;
		t->idx = 0;
		return;
	}
	size_t i = t->idx - 1;
	t->idx = 0;
	struct rotor__heap_entry last = ts->heap[--ts->len];
	if (i == ts->len)
		return;
	ts->heap[i] = last;
	if (i > 0 && before(&last, &ts->heap[(i - 1) / 2]))
		sift_up(ts, i);
	else
		sift_down(ts, i);
}

/* The earlier of the two heads (ties: the one armed first). */
static struct rotor__timer *earliest(const struct rotor__timers *ts)
{
	struct rotor__timer *h = ts->len ? ts->heap[0].t : NULL;
	struct rotor__timer *l = ts->head;
	if (!h)
		return l;
	if (!l)
		return h;
	if (h->deadline != l->deadline)
		return h->deadline < l->deadline ? h : l;
	return h->seq < l->seq ? h : l;
}

size_t rotor__timers_run(struct rotor__timers *ts, int64_t now)
{
	size_t n = 0;
	struct rotor__timer *t;
	while ((t = earliest(ts)) && t->deadline <= now) {
		rotor__timer_disarm(ts, t);
		t->fire(t);
		n++;
	}
	return n;
}

struct rotor__timer *rotor__timers_pop_any(struct rotor__timers *ts)
{
	struct rotor__timer *t = ts->tail ? ts->tail : ts->len ? ts->heap[ts->len - 1].t : NULL;
	if (t)
		rotor__timer_disarm(ts, t);
	return t;
}
