/*
 * Events: a one-shot completion. One coroutine may wait on it (it parks its task pointer in
 * `waiter`), any number of threads may wait on its futex word. Whoever sets it swaps
 * `waiter` to DONE, so exactly one of {setter, timeout, cancel} claims a waiting task and
 * makes it runnable, however the three race. A task's end is an event, and so is a
 * future's resolution (coord/future.c); rotor_wait_any parks one token on several.
 */
#include "futex.h"
#include "runtime.h"
#include "task.h"
#include "worker.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>

void rotor__event_init(struct rotor__event *ev)
{
	atomic_init(&ev->waiter, 0);
	atomic_init(&ev->fstate, 0);
}

/* A wait-any token parked in `waiter` (tag bit 1): several events point at one token; the
 * first event set claims it and wakes its task. Heap-allocated and reference counted, as
 * setters may still touch it after the task has resumed and left. */
struct rotor__anywait {
	_Atomic uint32_t claimed;
	_Atomic uint32_t refs;
	struct rotor_task *task;
};
#define ANYWAIT_TAG ((uintptr_t)2)

static void anywait_release(struct rotor__anywait *a)
{
	if (atomic_fetch_sub(&a->refs, 1) == 1)
		rotor__free(ROTOR__FAULT_WAIT_ANY, a);
}

/* What an event's setter took out of `waiter`: wake a task, or claim a wait-any. */
static void wake_waiter(uintptr_t w)
{
	if (w <= ROTOR__EVENT_DONE)
		return;
	if (w & ANYWAIT_TAG) {
		struct rotor__anywait *a = (struct rotor__anywait *)(w & ~ANYWAIT_TAG);
		if (!atomic_exchange(&a->claimed, 1))
			rotor__task_wake(a->task, 0);
		anywait_release(a);
		return;
	}
	rotor__task_wake((struct rotor_task *)w, 0);
}

int rotor__event_set(struct rotor__event *ev)
{
	uint32_t old = atomic_exchange(&ev->fstate, 1);
	if (old == 1)
		return -EALREADY;
	if (old == 2)
		rotor__futex_wake(&ev->fstate, INT_MAX);
	wake_waiter(atomic_exchange(&ev->waiter, ROTOR__EVENT_DONE));
	return 0;
}

void rotor__event_set_owner(struct rotor__event *ev)
{
	struct rotor__worker *w = rotor__worker_self();
	uintptr_t cur = atomic_load_explicit(&ev->waiter, memory_order_relaxed);
	if (cur > ROTOR__EVENT_DONE && !(cur & ANYWAIT_TAG)) {
		struct rotor_task *t = (struct rotor_task *)cur;
		if (t->rt == w->rt && t->item.worker == (uint32_t)w->id) {
			/* Registered by a task of this very thread: nobody else can change
			 * `waiter` now (only its waiter, on this thread, unregisters). */
			atomic_store_explicit(&ev->fstate, 1, memory_order_relaxed);
			atomic_store_explicit(&ev->waiter, ROTOR__EVENT_DONE, memory_order_relaxed);
			t->wait_res = 0;
			t->state = ROTOR__T_READY;
			rotor__runq_push(w, &t->item);
			return;
		}
	}
	atomic_store_explicit(&ev->fstate, 1, memory_order_release);
	wake_waiter(atomic_exchange(&ev->waiter, ROTOR__EVENT_DONE));
}

static void anywait_abort(struct rotor_task *t, int res)
{
	struct rotor__anywait *a = t->wait_obj;
	if (atomic_exchange(&a->claimed, 1))
		return; /* an event claimed it: its wake-up is on the way */
	rotor__task_end_wait(rotor__worker_self(), t, res);
}

static void anywait_timeout(struct rotor_task *t)
{
	anywait_abort(t, -ETIMEDOUT);
}

static void anywait_cancel(struct rotor_task *t)
{
	anywait_abort(t, -ECANCELED);
}

/* A handle already checked held: its task (the handle's reference keeps the struct). */
static struct rotor_task *task_of(struct rotor_task *handle)
{
	uint32_t gen;
	return rotor__task_from_handle(handle, &gen);
}

int rotor_wait_any(struct rotor_task **tasks, size_t n, int64_t deadline)
{
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *self = w ? w->current : NULL;
	if (!self)
		return -EPERM;
	if (!tasks || n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint32_t gen;
		struct rotor_task *t = rotor__task_from_handle(tasks[i], &gen);
		if (!t || t == self || t->rt != w->rt ||
		    atomic_load(&t->handle) != ROTOR__H(gen, ROTOR__H_HELD))
			return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (rotor__event_is_set(&task_of(tasks[i])->done))
			return (int)i;
	if (self->flags & ROTOR__TF_CANCELLED)
		return -ECANCELED;
	if (deadline != ROTOR_FOREVER && deadline <= rotor_now())
		return -ETIMEDOUT;
	struct rotor__anywait *a = rotor__malloc(ROTOR__FAULT_WAIT_ANY, sizeof(*a));
	if (!a)
		return -ENOMEM;
	atomic_init(&a->claimed, 0);
	atomic_init(&a->refs, 1);
	a->task = self;
	uintptr_t token = (uintptr_t)a | ANYWAIT_TAG;
	size_t parked = 0;
	int r = 0;
	for (; parked < n; parked++) {
		uintptr_t exp = 0;
		atomic_fetch_add(&a->refs, 1);
		if (!atomic_compare_exchange_strong(&task_of(tasks[parked])->done.waiter, &exp,
		                                    token)) {
			atomic_fetch_sub(&a->refs, 1);
			if (exp != ROTOR__EVENT_DONE)
				r = -EBUSY; /* someone joins it */
			break;              /* ended meanwhile (or busy): no need to sleep */
		}
	}
	bool wake_pending = false;
	if (parked < n) {
		/* Claim it ourselves, unless an event already did (then its wake comes). */
		wake_pending = atomic_exchange(&a->claimed, 1);
	} else {
		r = rotor__task_wait(w, a, anywait_cancel, anywait_timeout, deadline);
	}
	if (wake_pending)
		rotor__task_wait(w, NULL, NULL, NULL, ROTOR_FOREVER);
	/* Take the token back from every event still holding it (each such event's reference
	 * is ours to drop); an event that took it drops its own. */
	for (size_t i = 0; i < parked; i++) {
		uintptr_t exp = token;
		if (atomic_compare_exchange_strong(&task_of(tasks[i])->done.waiter, &exp, 0))
			atomic_fetch_sub(&a->refs, 1);
	}
	anywait_release(a);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (rotor__event_is_set(&task_of(tasks[i])->done))
			return (int)i;
	return -EAGAIN; /* not reached: a claim means an event was set */
}

/* Timeout or cancellation of a waiting task: take it back from the event if the setter
 * has not claimed it already (if it has, its wake-up is on the way). Owner only. */
static void event_abort(struct rotor_task *t, int res)
{
	struct rotor__event *ev = t->wait_obj;
	uintptr_t exp = (uintptr_t)t;
	if (!atomic_compare_exchange_strong(&ev->waiter, &exp, 0))
		return;
	rotor__task_end_wait(rotor__worker_self(), t, res);
}

static void event_timeout(struct rotor_task *t)
{
	event_abort(t, -ETIMEDOUT);
}

static void event_cancel(struct rotor_task *t)
{
	event_abort(t, -ECANCELED);
}

int rotor__event_wait_task(struct rotor__event *ev, int64_t deadline, bool setter_here)
{
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *t = w->current;
	uintptr_t exp = atomic_load(&ev->waiter);
	if (exp == ROTOR__EVENT_DONE)
		return 0;
	if (t->flags & ROTOR__TF_CANCELLED)
		return -ECANCELED;
	if (deadline != ROTOR_FOREVER && deadline <= rotor_now())
		return -ETIMEDOUT;
	if (setter_here) {
		if (exp)
			return -EBUSY;
		atomic_store_explicit(&ev->waiter, (uintptr_t)t, memory_order_relaxed);
	} else {
		exp = 0;
		if (!atomic_compare_exchange_strong(&ev->waiter, &exp, (uintptr_t)t))
			return exp == ROTOR__EVENT_DONE ? 0 : -EBUSY;
	}
	return rotor__task_wait(w, ev, event_cancel, event_timeout, deadline);
}

int rotor__event_wait_thread(struct rotor__event *ev, int64_t deadline, unsigned spin_us)
{
	/* Poll briefly first: a result that arrives within microseconds then costs no
	 * futex sleep and wake-up (several microseconds each way on a VM). */
	if (spin_us && atomic_load_explicit(&ev->fstate, memory_order_acquire) != 1) {
		int64_t until = rotor_now() + (int64_t)spin_us * 1000;
		if (until > deadline)
			until = deadline;
		while (atomic_load_explicit(&ev->fstate, memory_order_acquire) != 1 &&
		       rotor_now() < until) {
			for (int i = 0; i < 32; i++)
				rotor__cpu_relax();
			sched_yield();
		}
	}
	for (;;) {
		uint32_t s = atomic_load(&ev->fstate);
		if (s == 1)
			return 0;
		if (s == 0 && !atomic_compare_exchange_weak(&ev->fstate, &s, 2))
			continue;
		int r = rotor__futex_wait(&ev->fstate, 2, deadline);
		if (r == -ETIMEDOUT)
			return atomic_load(&ev->fstate) == 1 ? 0 : -ETIMEDOUT;
	}
}
