/*
 * The timer heap. Index i's children are 2i+1 and 2i+2; each timer remembers its position
 * so that disarming (a cancelled sleep, a future resolved before its deadline) is O(log n).
 */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>

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
}

void rotor__timers_fini(struct rotor__timers *ts)
{
	free(ts->heap);
	rotor__timers_init(ts);
}

int rotor__timer_arm(struct rotor__timers *ts, struct rotor__timer *t, int64_t deadline)
{
	ROTOR_ASSERT(!t->idx);
	if (ts->len == ts->cap) {
		size_t cap = ts->cap ? ts->cap * 2 : 64;
		struct rotor__heap_entry *h = realloc(ts->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		ts->heap = h;
		ts->cap = cap;
	}
	t->deadline = deadline;
	t->seq = ts->seq++;
	ts->heap[ts->len++] = (struct rotor__heap_entry){deadline, t};
	sift_up(ts, ts->len - 1);
	return 0;
}

void rotor__timer_disarm(struct rotor__timers *ts, struct rotor__timer *t)
{
	if (!t->idx)
		return;
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

size_t rotor__timers_run(struct rotor__timers *ts, int64_t now)
{
	size_t n = 0;
	while (ts->len && ts->heap[0].deadline <= now) {
		struct rotor__timer *t = ts->heap[0].t;
		rotor__timer_disarm(ts, t);
		t->fire(t);
		n++;
	}
	return n;
}

void rotor__timers_drain(struct rotor__timers *ts, void (*fn)(struct rotor__timer *t))
{
	while (ts->len) {
		struct rotor__timer *t = ts->heap[ts->len - 1].t;
		ts->len--;
		t->idx = 0;
		fn(t);
	}
}
