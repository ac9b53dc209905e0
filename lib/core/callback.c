/*
 * Callbacks: call_soon, call_later and call_soon_threadsafe. A callback runs on its
 * worker's own stack between tasks, never suspends, and is freed after it ran unless the
 * caller kept a handle (then rotor_timer_cancel frees it). Callbacks live in a type-stable
 * pool (handle.h): a call_later handle carries its slot's generation, so a handle used after
 * rotor_timer_cancel is refused even once the slot holds another callback.
 */
#include "callback.h"
#include "runtime.h"
#include "task.h"

#include <errno.h>
#include <stdlib.h>

enum { CB_PENDING = 1, CB_QUEUED, CB_FIRED, CB_CANCELLED };

struct rotor_timer {
	struct rotor__item item;
	rotor_callback_fn fn;
	void *arg;
	struct rotor__timer tmr;
	int state;
	bool handle;             /* call_later gave out a handle: rotor_timer_cancel frees it */
	struct rotor__worker *w; /* call_later's worker, the one that may cancel */
};

static struct rotor__pool callbacks = ROTOR__POOL_INIT(struct rotor_timer, CALLBACK);

static struct rotor_timer *cb_new(rotor_callback_fn fn, void *arg, int worker)
{
	struct rotor_timer *cb = rotor__pool_alloc(&callbacks);
	if (!cb)
		return NULL;
	cb->item.kind = ROTOR__ITEM_CALLBACK;
	cb->item.worker = (uint32_t)worker;
	cb->fn = fn;
	cb->arg = arg;
	cb->state = CB_QUEUED;
	return cb;
}

void rotor__callback_run(struct rotor__worker *w, struct rotor__item *it)
{
	struct rotor_timer *cb = rotor__container_of(it, struct rotor_timer, item);
	(void)w;
	if (cb->state == CB_QUEUED) {
		cb->state = CB_FIRED;
		cb->fn(cb->arg);
	}
	if (!cb->handle)
		rotor__pool_free(cb);
}

static void cb_fire(struct rotor__timer *tm)
{
	struct rotor_timer *cb = rotor__container_of(tm, struct rotor_timer, tmr);
	cb->state = CB_QUEUED;
	rotor__runq_push(rotor__worker_self(), &cb->item);
}

void rotor__callbacks_drop(struct rotor__worker *w)
{
	/* At worker exit only timers of call_later callbacks can be left. */
	struct rotor__timer *tm;
	while ((tm = rotor__timers_pop_any(&w->timers))) {
		if (tm->fire == cb_fire)
			rotor__pool_free(rotor__container_of(tm, struct rotor_timer, tmr));
	}
}

int rotor_call_soon(rotor_callback_fn fn, void *arg)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	struct rotor_timer *cb = cb_new(fn, arg, w->id);
	if (!cb)
		return -ENOMEM;
	rotor__runq_push(w, &cb->item);
	return 0;
}

int rotor_call_later(int64_t delay_ns, rotor_callback_fn fn, void *arg, struct rotor_timer **out)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	struct rotor_timer *cb = cb_new(fn, arg, w->id);
	if (!cb)
		return -ENOMEM;
	cb->state = CB_PENDING;
	cb->handle = out != NULL;
	cb->w = w;
	cb->tmr.fire = cb_fire;
	rotor__timer_arm(&w->timers, &cb->tmr, rotor__deadline_in(rotor_now(), delay_ns));
	if (out)
		*out = rotor__handle_of(cb);
	return 0;
}

int rotor_timer_cancel(struct rotor_timer *h)
{
	struct rotor_timer *cb = rotor__handle_get(&callbacks, h);
	/* Only call_later's handles are handles: a callback that has none frees itself. */
	if (!cb || !cb->handle)
		return -EINVAL;
	struct rotor__worker *w = rotor__worker_self();
	if (!w || w != cb->w)
		return -EPERM;
	switch (cb->state) {
	case CB_PENDING:
		rotor__timer_disarm(&w->timers, &cb->tmr);
		rotor__pool_free(cb);
		return 0;
	case CB_QUEUED:
		/* Due and queued: the run queue frees it without calling it. */
		cb->state = CB_CANCELLED;
		cb->handle = false;
		rotor__pool_retire(cb);
		return 0;
	default:
		rotor__pool_free(cb);
		return -EALREADY;
	}
}

/* A callback struct posted as an item: from a thread that is no worker of rt, or when no
 * spawn-request block could be had. Out of line, to keep rotor_call_soon_threadsafe's usual
 * path short. */
static __attribute__((noinline)) int post_callback(struct rotor_runtime *rt, int worker,
                                                   rotor_callback_fn fn, void *arg)
{
	struct rotor_timer *cb = cb_new(fn, arg, worker);
	if (!cb)
		return -ENOMEM;
	int r = rotor__post(rt, &cb->item, ROTOR__POST_WAIT | ROTOR__POST_NEW);
	if (r < 0)
		rotor__pool_free(cb);
	return r;
}

int rotor_call_soon_threadsafe(struct rotor_runtime *rt, int worker, rotor_callback_fn fn,
                               void *arg)
{
	if (!rt || !fn)
		return -EINVAL;
	if (worker == ROTOR_WORKER_ANY)
		worker = rotor__pick_worker(rt);
	if (worker < 0 || worker >= rt->n)
		return -EINVAL;
	/* From another worker of rt: a record in that worker's next batch (spawnreq.c). */
	struct rotor__worker *w = rotor__worker_self();
	if (w && w->rt == rt && worker != w->id) {
		if (atomic_load_explicit(&rt->state, memory_order_relaxed) != ROTOR_RUNNING)
			return -ESHUTDOWN;
		if (rotor__spawn_post(w, worker, (union rotor__req_fn){.callback = fn}, arg,
		                      ROTOR__REQ_CALLBACK) == 0)
			return 0;
	}
	return post_callback(rt, worker, fn, arg);
}
