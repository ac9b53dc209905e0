/*
 * Channels: a ring buffer and two wait queues (senders, receivers) under one spinlock.
 * Receivers wait only when the buffer is empty and senders only when it is full, so a
 * sender that finds a waiting receiver hands its value straight over (no buffering), and a
 * receiver that takes from a full buffer refills it from the first waiting sender.
 */
#include "waitq.h"
#include "runtime.h"
#include "task.h"

#include <errno.h>
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
	struct rotor_chan *ch = calloc(1, sizeof(*ch) + capacity * sizeof(void *));
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
	free(ch);
	return 0;
}

/* Lock held. 0 sent (*wake: a receiver to resume), -EAGAIN full, -EPIPE closed. */
static int send_locked(struct rotor_chan *ch, void *v, struct rotor__waiter **wake)
{
	if (ch->closed)
		return -EPIPE;
	struct rotor__waiter *rw = rotor__waitq_pop(&ch->receivers);
	if (rw) {
		rw->data = v;
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
		struct rotor__waiter *sw = rotor__waitq_pop(&ch->senders);
		if (sw) {
			ch->buf[(ch->head + ch->count++) % ch->cap] = sw->data;
			*wake = sw;
		}
		return 0;
	}
	struct rotor__waiter *sw = rotor__waitq_pop(&ch->senders);
	if (sw) {
		*v = sw->data;
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
	while ((wt = rotor__waitq_pop(&ch->receivers)) || (wt = rotor__waitq_pop(&ch->senders))) {
		*tail = wt;
		tail = &wt->next;
		*tail = NULL;
	}
	rotor__spin_unlock(&ch->lock);
	while (list) {
		wt = list;
		list = wt->next;
		rotor__waiter_wake(wt, -EPIPE);
	}
	return 0;
}
