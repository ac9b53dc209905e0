/*
 * Futures. A future is an event (core/event.c) plus a result. A submitted task and its
 * future hold a reference on each other until the future is resolved; whoever claims the
 * future first (the task's end, or a cancel) drops the future's hold on the task, so a
 * resolved future never touches its task again and may outlive the runtime. Futures live in
 * one process-wide type-stable pool (core/handle.h): the user's handle carries the slot's
 * generation, ends at rotor_future_destroy, and is refused (-EINVAL) from then on, even once
 * the slot holds another future.
 *
 * From a thread that is no worker, rotor_submit sends no task: the future carries a start
 * request (core.h) and the target worker makes the task in its own cache and adopts it
 * here. Measured: the sender's writes to a task struct last touched by a worker (seven
 * cache lines) and the struct's trip back were the larger part of a submit's cost. The task
 * is then bound after the handle is out, so f->task is atomic and taken by exchange: the
 * adoption and a claim (set, cancel) each store then check the other's word, and exactly one
 * of them drops the hold.
 */
#include "core.h"

#include <errno.h>
#include <stdlib.h>

struct rotor_future {
	struct rotor__task_end end;  /* a submitted task's end resolves it */
	struct rotor__start_req req; /* a submit from a non-worker: what the target makes */
	struct rotor__event ev;
	_Atomic uint32_t refs;
	_Atomic uint32_t claimed;
	int err;
	unsigned spin_us; /* a waiting thread polls this long before it sleeps */
	void *result;
	struct rotor_task *_Atomic task; /* submitted task, held until the future is claimed */
};

static struct rotor__pool futures = ROTOR__POOL_INIT(struct rotor_future, FUTURE);

static void future_release(struct rotor_future *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1)
		rotor__pool_free(f);
}

/* The future a user's handle names, or NULL: NULL, destroyed, or not a future's handle. */
static struct rotor_future *future_get(const struct rotor_future *h)
{
	return rotor__handle_get(&futures, h);
}

/* The task a future was submitted with is bound before it can run, and holds the future
 * (as the future holds it) until one of them claims the future. */
static void future_bind(struct rotor__task_end *e, struct rotor_task *t)
{
	struct rotor_future *f = rotor__container_of(e, struct rotor_future, end);
	atomic_store_explicit(&f->task, t, memory_order_relaxed); /* before the handle is out */
	f->spin_us = rotor__runtime_config(rotor__task_runtime(t))->spin_us;
	atomic_fetch_add(&f->refs, 1);
}

/* On the target worker: the task a start request asked for. Resolved or cancelled before it
 * was made, it never runs, and whoever of us and the claimer takes f->task drops the hold. */
static bool future_adopt(struct rotor__task_end *e, struct rotor_task *t)
{
	struct rotor_future *f = rotor__container_of(e, struct rotor_future, end);
	atomic_store(&f->task, t);
	if (!atomic_load(&f->claimed))
		return true;
	if (atomic_exchange(&f->task, NULL))
		rotor__task_release(t);
	return false;
}

static void future_unbind(struct rotor__task_end *e)
{
	struct rotor_future *f = rotor__container_of(e, struct rotor_future, end);
	atomic_store_explicit(&f->task, NULL, memory_order_relaxed);
	atomic_fetch_sub(&f->refs, 1);
}

static void future_task_ended(struct rotor__task_end *e, struct rotor_task *t, void *result,
                              int err)
{
	struct rotor_future *f = rotor__container_of(e, struct rotor_future, end);
	if (!atomic_exchange(&f->claimed, 1)) {
		f->result = result;
		f->err = err;
		/* The future's hold on t (none if the target could not make it: t NULL); t
		 * itself still holds its own reference. Nobody else takes it after our claim. */
		if (atomic_exchange(&f->task, NULL))
			rotor__task_release(t);
		rotor__event_set(&f->ev);
	}
	future_release(f);
}

/* A new future holding the user's reference. */
static struct rotor_future *future_new(void)
{
	struct rotor_future *f = rotor__pool_alloc(&futures);
	if (!f)
		return NULL;
	f->end =
	    (struct rotor__task_end){future_bind, future_unbind, future_task_ended, future_adopt};
	rotor__event_init(&f->ev);
	atomic_init(&f->refs, 1);
	f->spin_us = 20;
	return f;
}

int rotor_future_create(struct rotor_future **out)
{
	if (!out)
		return -EINVAL;
	struct rotor_future *f = future_new();
	if (!f)
		return -ENOMEM;
	*out = rotor__handle_of(f);
	return 0;
}

int rotor_future_set(struct rotor_future *h, void *result)
{
	struct rotor_future *f = future_get(h);
	if (!f)
		return -EINVAL;
	if (atomic_exchange(&f->claimed, 1))
		return -EALREADY;
	/* Claimed: a submitted task no longer resolves it; drop the future's hold on it
	 * (the task runs on to its end, its result unused). */
	struct rotor_task *t = atomic_exchange(&f->task, NULL);
	f->result = result;
	/* A waiter may destroy the future the moment it sees it set, while we are still
	 * inside event_set: hold a reference across it. */
	atomic_fetch_add(&f->refs, 1);
	rotor__event_set(&f->ev);
	future_release(f);
	if (t)
		rotor__task_release(t);
	return 0;
}

int rotor_future_cancel(struct rotor_future *h)
{
	struct rotor_future *f = future_get(h);
	if (!f)
		return -EINVAL;
	if (atomic_exchange(&f->claimed, 1))
		return -EALREADY;
	f->err = -ECANCELED;
	struct rotor_task *t = atomic_exchange(&f->task, NULL);
	rotor__event_set(&f->ev);
	if (t) {
		rotor__task_cancel_any(t);
		rotor__task_release(t);
	}
	return 0;
}

int rotor_future_wait(struct rotor_future *h, int64_t deadline, void **result)
{
	struct rotor_future *f = future_get(h);
	if (!f)
		return -EINVAL;
	struct rotor__worker *w = rotor__worker_self();
	int r;
	if (w && rotor__task_self())
		r = rotor__event_wait_task(&f->ev, deadline, false);
	else if (w)
		return -EPERM;
	else
		r = rotor__event_wait_thread(&f->ev, deadline, f->spin_us);
	if (r < 0)
		return r;
	if (f->err)
		return f->err;
	if (result)
		*result = f->result;
	return 0;
}

int rotor_future_done(const struct rotor_future *h)
{
	const struct rotor_future *f = future_get(h);
	if (!f)
		return -EINVAL;
	return rotor__event_is_set(&f->ev);
}

void rotor_future_destroy(struct rotor_future *h)
{
	struct rotor_future *f = future_get(h);
	/* Of two destroys of one handle (or a stale one), only the first drops the reference. */
	if (f && rotor__pool_retire(f))
		future_release(f);
}

/* ---- submission from any thread ---- */

static int submit(struct rotor_runtime *rt, int worker, rotor_fn fn, void *arg,
                  struct rotor_future **out, unsigned flags)
{
	if (!rt || !fn || !out || worker == ROTOR_WORKER_SELF)
		return -EINVAL;
	struct rotor_future *f = future_new();
	if (!f)
		return -ENOMEM;
	struct rotor_future *h = rotor__handle_of(f);
	struct rotor__worker *w = rotor__worker_self();
	if (!w || rotor__worker_runtime(w) != rt) {
		/* The target makes the task; the request holds the reference the task will. */
		f->req = (struct rotor__start_req){.fn = fn, .arg = arg, .end = &f->end};
		f->spin_us = rotor__runtime_config(rt)->spin_us;
		atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
		int r = rotor__task_request(rt, worker, &f->req, flags);
		if (r < 0) {
			atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
			future_release(f);
			return r;
		}
		*out = h;
		return 0;
	}
	int r = rotor__task_start(rt, worker, NULL, fn, arg, NULL, &f->end, flags, NULL);
	if (r < 0) {
		future_release(f);
		return r;
	}
	*out = h;
	return 0;
}

int rotor_submit(struct rotor_runtime *rt, int worker, rotor_fn fn, void *arg,
                 struct rotor_future **out)
{
	return submit(rt, worker, fn, arg, out, ROTOR__POST_WAIT);
}

int rotor_try_submit(struct rotor_runtime *rt, int worker, rotor_fn fn, void *arg,
                     struct rotor_future **out)
{
	return submit(rt, worker, fn, arg, out, 0);
}

int rotor_call(struct rotor_runtime *rt, int worker, rotor_fn fn, void *arg, void **result)
{
	if (rotor__worker_self())
		return -EDEADLK;
	struct rotor_future *f;
	int r = rotor_submit(rt, worker, fn, arg, &f);
	if (r < 0)
		return r;
	r = rotor_future_wait(f, ROTOR_FOREVER, result);
	rotor_future_destroy(f);
	return r;
}
