/*
 * Channels: a ring buffer and two wait queues (senders, receivers) under one spinlock.
 * Receivers wait only when the buffer is empty and senders only when it is full, so a
 * sender that finds a waiting receiver hands its value straight over (no buffering), and a
 * receiver that takes from a full buffer refills it from the first waiting sender.
 */
#include "waitq.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

struct rotor_chan {
	struct rotor__spin lock;
	bool closed;
	size_t cap;
	size_t head;
	size_t count;
	struct rotor__waitq senders;
	struct rotor__waitq receivers;
	void *buf[];
};

int rotor_chan_create(size_t capacity, struct rotor_chan **out)
{
	if (!out || capacity > ((size_t)1 << 31))
		return -EINVAL;
	struct rotor_chan *ch =
	    rotor__calloc(ROTOR__FAULT_CHAN, 1, sizeof(*ch) + capacity * sizeof(void *));
	if (!ch)
		return -ENOMEM;
	ch->cap = capacity;
	*out = ch;
	return 0;
}

int rotor_chan_destroy(struct rotor_chan *ch)
{
	if (!ch)
		return -EINVAL;
	rotor__spin_lock(&ch->lock);
	bool busy = !rotor__waitq_empty(&ch->senders) || !rotor__waitq_empty(&ch->receivers);
	rotor__spin_unlock(&ch->lock);
	if (busy)
		return -EBUSY;
	rotor__free(ROTOR__FAULT_CHAN, ch);
	return 0;
}

/* Lock held: the first waiter that is ours to complete. A select's waiter is claimed for
 * its case (and skipped if another case of that select won already). */
static struct rotor__waiter *pop_claim(struct rotor__waitq *q)
{
	struct rotor__waiter *wt;
	while ((wt = rotor__waitq_pop(q))) {
		if (!wt->sel)
			return wt;
		int open = -1;
		if (atomic_compare_exchange_strong(&wt->sel->winner, &open, wt->index))
			return wt;
	}
	return NULL;
}

/* Lock held. 0 sent (*wake: a receiver to resume), -EAGAIN full, -EPIPE closed. */
static int send_locked(struct rotor_chan *ch, void *v, struct rotor__waiter **wake)
{
	if (ch->closed)
		return -EPIPE;
	struct rotor__waiter *rw = pop_claim(&ch->receivers);
	if (rw) {
		rw->data = v;
		rw->res = 0;
		*wake = rw;
		return 0;
	}
	if (ch->count < ch->cap) {
		ch->buf[(ch->head + ch->count++) % ch->cap] = v;
		return 0;
	}
	return -EAGAIN;
}

/* Lock held. 0 received (*wake: a sender to resume), -EAGAIN empty, -EPIPE closed+drained. */
static int recv_locked(struct rotor_chan *ch, void **v, struct rotor__waiter **wake)
{
	if (ch->count) {
		*v = ch->buf[ch->head];
		ch->head = (ch->head + 1) % ch->cap;
		ch->count--;
		struct rotor__waiter *sw = pop_claim(&ch->senders);
		if (sw) {
			ch->buf[(ch->head + ch->count++) % ch->cap] = sw->data;
			sw->res = 0;
			*wake = sw;
		}
		return 0;
	}
	struct rotor__waiter *sw = pop_claim(&ch->senders);
	if (sw) {
		*v = sw->data;
		sw->res = 0;
		*wake = sw;
		return 0;
	}
	return ch->closed ? -EPIPE : -EAGAIN;
}

int rotor_chan_try_send(struct rotor_chan *ch, void *v)
{
	if (!ch)
		return -EINVAL;
	struct rotor__waiter *wake = NULL;
	rotor__spin_lock(&ch->lock);
	int r = send_locked(ch, v, &wake);
	rotor__spin_unlock(&ch->lock);
	if (wake)
		rotor__waiter_wake(wake, 0);
	return r;
}

int rotor_chan_send_until(struct rotor_chan *ch, void *v, int64_t deadline)
{
	if (!ch)
		return -EINVAL;
	int err;
	if (!rotor__wait_begin(&err))
		return err;
	struct rotor__waiter *wake = NULL;
	rotor__spin_lock(&ch->lock);
	int r = send_locked(ch, v, &wake);
	if (r != -EAGAIN) {
		rotor__spin_unlock(&ch->lock);
		if (wake)
			rotor__waiter_wake(wake, 0);
		return r;
	}
	struct rotor__waiter wt = {.data = v};
	/* 0: a receiver took v; -EPIPE: closed while we waited, v not delivered. */
	return rotor__waitq_block(&ch->senders, &ch->lock, &wt, deadline);
}

int rotor_chan_send(struct rotor_chan *ch, void *v)
{
	return rotor_chan_send_until(ch, v, ROTOR_FOREVER);
}

int rotor_chan_try_recv(struct rotor_chan *ch, void **v)
{
	if (!ch || !v)
		return -EINVAL;
	struct rotor__waiter *wake = NULL;
	rotor__spin_lock(&ch->lock);
	int r = recv_locked(ch, v, &wake);
	rotor__spin_unlock(&ch->lock);
	if (wake)
		rotor__waiter_wake(wake, 0);
	return r;
}

int rotor_chan_recv_until(struct rotor_chan *ch, void **v, int64_t deadline)
{
	if (!ch || !v)
		return -EINVAL;
	int err;
	if (!rotor__wait_begin(&err))
		return err;
	struct rotor__waiter *wake = NULL;
	rotor__spin_lock(&ch->lock);
	int r = recv_locked(ch, v, &wake);
	if (r != -EAGAIN) {
		rotor__spin_unlock(&ch->lock);
		if (wake)
			rotor__waiter_wake(wake, 0);
		return r;
	}
	struct rotor__waiter wt = {.data = NULL};
	r = rotor__waitq_block(&ch->receivers, &ch->lock, &wt, deadline);
	if (r == 0)
		*v = wt.data;
	return r;
}

int rotor_chan_recv(struct rotor_chan *ch, void **v)
{
	return rotor_chan_recv_until(ch, v, ROTOR_FOREVER);
}

int rotor_chan_close(struct rotor_chan *ch)
{
	if (!ch)
		return -EINVAL;
	rotor__spin_lock(&ch->lock);
	if (ch->closed) {
		rotor__spin_unlock(&ch->lock);
		return -EALREADY;
	}
	ch->closed = true;
	struct rotor__waiter *list = NULL, **tail = &list, *wt;
	while ((wt = pop_claim(&ch->receivers)) || (wt = pop_claim(&ch->senders))) {
		wt->res = -EPIPE;
		*tail = wt;
		tail = &wt->next;
		*tail = NULL;
	}
	rotor__spin_unlock(&ch->lock);
	while (list) {
		wt = list;
		list = wt->next;
		/* A select reads the result from its waiter; a plain waiter from the wake. */
		rotor__waiter_wake(wt, wt->sel ? 0 : -EPIPE);
	}
	return 0;
}

/* ---- select ---- */

#define SELECT_MAX     64
#define SELECT_ABORTED INT_MAX

/* Lock of c->ch held: try c's operation now. 1 done (result set, *wake maybe), 0 not ready. */
static int try_case_locked(struct rotor_select_case *c, struct rotor__waiter **wake)
{
	int r = c->op == ROTOR_SELECT_SEND ? send_locked(c->ch, c->value, wake)
	                                   : recv_locked(c->ch, &c->value, wake);
	if (r == -EAGAIN)
		return 0;
	c->result = r;
	return 1;
}

/* Deadline or cancellation of a selecting task: it wins the select only if no case has. */
static void select_abort(struct rotor_task *t, int res)
{
	struct rotor__select *sel = rotor__task_wait_obj(t);
	int open = -1;
	if (!atomic_compare_exchange_strong(&sel->winner, &open, SELECT_ABORTED))
		return; /* a case won: its wake-up is on the way */
	rotor__task_end_wait(rotor__worker_self(), t, res);
}

static void select_timeout(struct rotor_task *t)
{
	select_abort(t, -ETIMEDOUT);
}

static void select_cancel(struct rotor_task *t)
{
	select_abort(t, -ECANCELED);
}

/* Lock of c->ch held: would c's operation complete now (possibly against a waiter that
 * turns out to be a select already won elsewhere: then the retry below finds it gone)? */
static bool case_ready_locked(const struct rotor_select_case *c)
{
	const struct rotor_chan *ch = c->ch;
	if (ch->closed)
		return true;
	if (c->op == ROTOR_SELECT_SEND)
		return ch->count < ch->cap || !rotor__waitq_empty(&ch->receivers);
	return ch->count > 0 || !rotor__waitq_empty(&ch->senders);
}

static void unqueue(struct rotor__waiter *wt)
{
	rotor__spin_lock(wt->lock);
	if (wt->queued) {
		if (wt->prev)
			wt->prev->next = wt->next;
		else
			wt->q->head = wt->next;
		if (wt->next)
			wt->next->prev = wt->prev;
		else
			wt->q->tail = wt->prev;
		wt->queued = false;
	}
	rotor__spin_unlock(wt->lock);
}

int rotor_chan_select(struct rotor_select_case *cases, size_t n, int64_t deadline)
{
	if (!cases || n == 0 || n > SELECT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!cases[i].ch ||
		    (cases[i].op != ROTOR_SELECT_SEND && cases[i].op != ROTOR_SELECT_RECV))
			return -EINVAL;
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *t = w ? rotor__task_self() : NULL;
	if (!t)
		return -EPERM;
	struct rotor__waiter wts[SELECT_MAX];
	for (;;) {
		/* Pass 1: the first case ready now completes. */
		for (size_t i = 0; i < n; i++) {
			struct rotor__waiter *wake = NULL;
			rotor__spin_lock(&cases[i].ch->lock);
			int done = try_case_locked(&cases[i], &wake);
			rotor__spin_unlock(&cases[i].ch->lock);
			if (wake)
				rotor__waiter_wake(wake, 0);
			if (done)
				return (int)i;
		}
		if (deadline != ROTOR_FOREVER && deadline <= rotor_now())
			return -ETIMEDOUT;
		if (rotor__task_cancelled(t))
			return -ECANCELED;

		/* Pass 2: a waiter on every case, each queued under its channel's lock after a
		 * last look. A waker completes a case only after claiming the select. */
		struct rotor__select sel;
		atomic_init(&sel.winner, -1);
		size_t queued = 0;
		bool became_ready = false;
		for (size_t i = 0; i < n; i++) {
			struct rotor_chan *ch = cases[i].ch;
			rotor__spin_lock(&ch->lock);
			if (atomic_load(&sel.winner) != -1) {
				rotor__spin_unlock(&ch->lock);
				break;
			}
			if (case_ready_locked(&cases[i])) {
				rotor__spin_unlock(&ch->lock);
				became_ready = true;
				break;
			}
			struct rotor__waiter *wt = &wts[i];
			wt->task = t;
			wt->q = cases[i].op == ROTOR_SELECT_SEND ? &ch->senders : &ch->receivers;
			wt->lock = &ch->lock;
			wt->data = cases[i].value;
			wt->sel = &sel;
			wt->index = (int)i;
			wt->res = 0;
			wt->next = NULL;
			wt->prev = wt->q->tail;
			if (wt->q->tail)
				wt->q->tail->next = wt;
			else
				wt->q->head = wt;
			wt->q->tail = wt;
			wt->queued = true;
			queued = i + 1;
			rotor__spin_unlock(&ch->lock);
		}
		int r = 0;
		int open = -1;
		if (became_ready &&
		    atomic_compare_exchange_strong(&sel.winner, &open, SELECT_ABORTED)) {
			/* Nobody has claimed us: withdraw and let pass 1 take the ready case. */
			for (size_t i = 0; i < queued; i++)
				unqueue(&wts[i]);
			continue;
		}
		if (atomic_load(&sel.winner) != -1) {
			/* Claimed by a waker already: its wake-up is on the way; take it. */
			rotor__task_wait(w, NULL, NULL, NULL, ROTOR_FOREVER);
		} else {
			/* A waker, the deadline or a cancellation resumes us, exactly once. */
			r = rotor__task_wait(w, &sel, select_cancel, select_timeout, deadline);
		}
		/* Take back every waiter still queued (wakers skip those of a won select). */
		for (size_t i = 0; i < queued; i++)
			unqueue(&wts[i]);
		int win = atomic_load(&sel.winner);
		if (win == SELECT_ABORTED)
			return r;
		cases[win].result = wts[win].res;
		if (cases[win].op == ROTOR_SELECT_RECV && wts[win].res == 0)
			cases[win].value = wts[win].data;
		return win;
	}
}
