/*
 * Coroutine sync primitives: the wait-queue machinery (waitq.h), mutex, condition
 * variable, semaphore, event and wait group. The public structs are opaque storage; each
 * primitive's real layout is below, checked to fit. Fast paths are one atomic operation;
 * a short spinlock guards the wait queue on the slow paths only.
 */
#include "waitq.h"

#include <errno.h>
#include <string.h>

/* ---- wait queues ---- */

static void enqueue(struct rotor__waitq *q, struct rotor__waiter *wt)
{
	wt->next = NULL;
	wt->prev = q->tail;
	if (q->tail)
		q->tail->next = wt;
	else
		q->head = wt;
	q->tail = wt;
	wt->queued = true;
}

static void unlink_waiter(struct rotor__waitq *q, struct rotor__waiter *wt)
{
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		q->head = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	else
		q->tail = wt->prev;
	wt->queued = false;
}

struct rotor__waiter *rotor__waitq_pop(struct rotor__waitq *q)
{
	struct rotor__waiter *wt = q->head;
	if (wt)
		unlink_waiter(q, wt);
	return wt;
}

void rotor__waiter_wake(struct rotor__waiter *wt, int res)
{
	rotor__task_wake(wt->task, res);
}

/* Deadline or cancellation: resume the task only if no waker has dequeued it (if one has,
 * its wake-up is on the way). Owner worker only. */
static void waiter_abort(struct rotor_task *t, int res)
{
	struct rotor__waiter *wt = rotor__task_wait_obj(t);
	rotor__spin_lock(wt->lock);
	bool mine = wt->queued;
	if (mine)
		unlink_waiter(wt->q, wt);
	rotor__spin_unlock(wt->lock);
	if (!mine)
		return;
	rotor__task_end_wait(rotor__worker_self(), t, res);
}

static void waiter_timeout(struct rotor_task *t)
{
	waiter_abort(t, -ETIMEDOUT);
}

static void waiter_cancel(struct rotor_task *t)
{
	waiter_abort(t, -ECANCELED);
}

static int waitq_block(struct rotor__waitq *q, struct rotor__spin *lock, struct rotor__waiter *wt,
                       int64_t deadline, bool cancellable)
{
	struct rotor__worker *w = rotor__worker_self();
	if (deadline != ROTOR_FOREVER && deadline <= rotor_now()) {
		rotor__spin_unlock(lock);
		return -ETIMEDOUT;
	}
	wt->task = rotor__task_self();
	wt->q = q;
	wt->lock = lock;
	wt->sel = NULL;
	enqueue(q, wt);
	/* Unlocked before the task is suspended: a waker on another worker that dequeues wt
	 * now only posts the wake-up, which this worker delivers after we have suspended. */
	rotor__spin_unlock(lock);
	return rotor__task_wait(w, wt, cancellable ? waiter_cancel : NULL, waiter_timeout,
	                        deadline);
}

int rotor__waitq_block(struct rotor__waitq *q, struct rotor__spin *lock, struct rotor__waiter *wt,
                       int64_t deadline)
{
	return waitq_block(q, lock, wt, deadline, true);
}

/* ---- mutex ---- */

struct mutex {
	_Atomic uint32_t state; /* 0 free, 1 held, 2 held and maybe waited for */
	struct rotor__spin lock;
	struct rotor__waitq q;
	struct rotor_task *_Atomic owner;
};
_Static_assert(sizeof(struct mutex) <= sizeof(struct rotor_mutex), "rotor_mutex too small");

#define M(p) ((struct mutex *)(void *)(p))

/* A worker-local mutex (rotor_mutex_init_local): state carries this flag, the owning
 * worker's id + 1 in bits 8..23 (0 until first locked) and the held bit. Only tasks of that
 * worker touch it, so the uncontended path is plain loads and stores; the queue keeps its
 * spinlock, uncontended, on the slow path only. */
#define MUTEX_LOCAL     (1u << 31)
#define MUTEX_WORKER(s) (((s) >> 8) & 0xffffu)
#define MUTEX_HELD      1u

int rotor_mutex_init_local(struct rotor_mutex *m)
{
	if (!m)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	atomic_init(&M(m)->state, MUTEX_LOCAL);
	return 0;
}

static int local_lock(struct mutex *m, struct rotor__worker *w, struct rotor_task *t, uint32_t s,
                      int64_t deadline, bool cancellable)
{
	uint32_t me = (uint32_t)rotor__worker_id(w) + 1;
	if (MUTEX_WORKER(s) == 0)
		s |= me << 8;
	else if (MUTEX_WORKER(s) != me)
		return -EPERM;
	if (!(s & MUTEX_HELD)) {
		atomic_store_explicit(&m->state, s | MUTEX_HELD, memory_order_relaxed);
		atomic_store_explicit(&m->owner, t, memory_order_relaxed);
		return 0;
	}
	if (atomic_load_explicit(&m->owner, memory_order_relaxed) == t)
		return -EDEADLK;
	if (cancellable && rotor__task_cancelled(t))
		return -ECANCELED;
	struct rotor__waiter wt;
	rotor__spin_lock(&m->lock);
	return waitq_block(&m->q, &m->lock, &wt, cancellable ? deadline : ROTOR_FOREVER,
	                   cancellable);
}

int rotor_mutex_init(struct rotor_mutex *m)
{
	if (!m)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	return 0;
}

static int mutex_lock(struct mutex *m, int64_t deadline, bool cancellable)
{
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *t = w ? rotor__task_self() : NULL;
	if (!t)
		return -EPERM;
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	if (s & MUTEX_LOCAL)
		return local_lock(m, w, t, s, deadline, cancellable);
	uint32_t exp = 0;
	if (ROTOR__LIKELY(atomic_compare_exchange_strong_explicit(
	        &m->state, &exp, 1, memory_order_acquire, memory_order_relaxed))) {
		atomic_store_explicit(&m->owner, t, memory_order_relaxed);
		return 0;
	}
	if (atomic_load_explicit(&m->owner, memory_order_relaxed) == t)
		return -EDEADLK;
	if (cancellable && rotor__task_cancelled(t))
		return -ECANCELED;
	rotor__spin_lock(&m->lock);
	/* Announce a waiter; if it was free meanwhile, it is ours (state 2 is harmless: the
	 * unlock slow path finds no waiter and frees it). */
	if (atomic_exchange_explicit(&m->state, 2, memory_order_acquire) == 0) {
		rotor__spin_unlock(&m->lock);
		atomic_store_explicit(&m->owner, t, memory_order_relaxed);
		return 0;
	}
	struct rotor__waiter wt;
	int r;
	/* Re-locking after a condition wait is neither timed nor cancellable. */
	r = waitq_block(&m->q, &m->lock, &wt, cancellable ? deadline : ROTOR_FOREVER, cancellable);
	/* r == 0: the unlocker handed the mutex over and made us owner. */
	return r;
}

int rotor_mutex_lock(struct rotor_mutex *m)
{
	return m ? mutex_lock(M(m), ROTOR_FOREVER, true) : -EINVAL;
}

int rotor_mutex_lock_until(struct rotor_mutex *m, int64_t deadline)
{
	return m ? mutex_lock(M(m), deadline, true) : -EINVAL;
}

int rotor_mutex_trylock(struct rotor_mutex *mm)
{
	struct mutex *m = M(mm);
	struct rotor_task *t = rotor__task_self();
	if (!m)
		return -EINVAL;
	if (!t)
		return -EPERM;
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	if (s & MUTEX_LOCAL) {
		struct rotor__worker *w = rotor__worker_self();
		if (MUTEX_WORKER(s) && MUTEX_WORKER(s) != (uint32_t)rotor__worker_id(w) + 1)
			return -EPERM;
		if (s & MUTEX_HELD)
			return -EBUSY;
		atomic_store_explicit(&m->state,
		                      s | MUTEX_HELD | (((uint32_t)rotor__worker_id(w) + 1) << 8),
		                      memory_order_relaxed);
		atomic_store_explicit(&m->owner, t, memory_order_relaxed);
		return 0;
	}
	uint32_t exp = 0;
	if (!atomic_compare_exchange_strong_explicit(&m->state, &exp, 1, memory_order_acquire,
	                                             memory_order_relaxed))
		return -EBUSY;
	atomic_store_explicit(&m->owner, t, memory_order_relaxed);
	return 0;
}

int rotor_mutex_unlock(struct rotor_mutex *mm)
{
	struct mutex *m = M(mm);
	struct rotor_task *t = rotor__task_self();
	if (!m)
		return -EINVAL;
	if (!t || atomic_load_explicit(&m->owner, memory_order_relaxed) != t)
		return -EPERM;
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	if (s & MUTEX_LOCAL) {
		/* Only the owner's worker gets here (the owner is one of its tasks). */
		if (ROTOR__LIKELY(rotor__waitq_empty(&m->q))) {
			atomic_store_explicit(&m->owner, NULL, memory_order_relaxed);
			atomic_store_explicit(&m->state, s & ~MUTEX_HELD, memory_order_relaxed);
			return 0;
		}
		rotor__spin_lock(&m->lock);
		struct rotor__waiter *wt = rotor__waitq_pop(&m->q);
		struct rotor_task *next = wt->task;
		atomic_store_explicit(&m->owner, next, memory_order_relaxed);
		rotor__spin_unlock(&m->lock);
		rotor__task_wake(next, 0); /* hand-off: stays held */
		return 0;
	}
	atomic_store_explicit(&m->owner, NULL, memory_order_relaxed);
	uint32_t exp = 1;
	if (ROTOR__LIKELY(atomic_compare_exchange_strong_explicit(
	        &m->state, &exp, 0, memory_order_release, memory_order_relaxed)))
		return 0;
	rotor__spin_lock(&m->lock);
	struct rotor__waiter *wt = rotor__waitq_pop(&m->q);
	if (wt) {
		/* Hand over: the state stays "held"; the waiter becomes the owner. */
		struct rotor_task *next = wt->task;
		atomic_store_explicit(&m->owner, next, memory_order_relaxed);
		if (rotor__waitq_empty(&m->q))
			atomic_store_explicit(&m->state, 1, memory_order_relaxed);
		rotor__spin_unlock(&m->lock);
		rotor__task_wake(next, 0);
		return 0;
	}
	atomic_store_explicit(&m->state, 0, memory_order_release);
	rotor__spin_unlock(&m->lock);
	return 0;
}

/* ---- condition variable ---- */

struct cond {
	struct rotor__spin lock;
	struct rotor__waitq q;
};
_Static_assert(sizeof(struct cond) <= sizeof(struct rotor_cond), "rotor_cond too small");

int rotor_cond_init(struct rotor_cond *c)
{
	if (!c)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	return 0;
}

int rotor_cond_wait_until(struct rotor_cond *cc, struct rotor_mutex *mm, int64_t deadline)
{
	struct cond *c = (struct cond *)(void *)cc;
	if (!c || !mm)
		return -EINVAL;
	struct rotor_task *t = rotor__task_self();
	if (!t || atomic_load_explicit(&M(mm)->owner, memory_order_relaxed) != t)
		return -EPERM;
	if (rotor__task_cancelled(t))
		return -ECANCELED;
	struct rotor__waiter wt;
	rotor__spin_lock(&c->lock);
	/* Queued before the mutex is released: a signal after our unlock finds us. */
	rotor_mutex_unlock(mm);
	int r = rotor__waitq_block(&c->q, &c->lock, &wt, deadline);
	mutex_lock(M(mm), ROTOR_FOREVER, false);
	return r;
}

int rotor_cond_wait(struct rotor_cond *c, struct rotor_mutex *m)
{
	return rotor_cond_wait_until(c, m, ROTOR_FOREVER);
}

static int cond_wake(struct rotor_cond *cc, bool all)
{
	struct cond *c = (struct cond *)(void *)cc;
	if (!c)
		return -EINVAL;
	rotor__spin_lock(&c->lock);
	struct rotor__waiter *list = NULL, **tail = &list, *wt;
	while ((wt = rotor__waitq_pop(&c->q))) {
		*tail = wt;
		tail = &wt->next;
		*tail = NULL;
		if (!all)
			break;
	}
	rotor__spin_unlock(&c->lock);
	while (list) {
		wt = list;
		list = wt->next; /* read before the wake: wt lives on the woken stack */
		rotor__waiter_wake(wt, 0);
	}
	return 0;
}

int rotor_cond_signal(struct rotor_cond *c)
{
	return cond_wake(c, false);
}

int rotor_cond_broadcast(struct rotor_cond *c)
{
	return cond_wake(c, true);
}

/* ---- semaphore ---- */

struct sem {
	_Atomic int64_t count;
	struct rotor__spin lock;
	struct rotor__waitq q;
};
_Static_assert(sizeof(struct sem) <= sizeof(struct rotor_sem), "rotor_sem too small");

int rotor_sem_init(struct rotor_sem *ss, unsigned value)
{
	if (!ss)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	atomic_init(&((struct sem *)(void *)ss)->count, value);
	return 0;
}

static bool sem_take(struct sem *s)
{
	int64_t c = atomic_load_explicit(&s->count, memory_order_relaxed);
	while (c > 0)
		if (atomic_compare_exchange_weak_explicit(
		        &s->count, &c, c - 1, memory_order_acquire, memory_order_relaxed))
			return true;
	return false;
}

int rotor_sem_try_acquire(struct rotor_sem *ss)
{
	if (!ss)
		return -EINVAL;
	return sem_take((struct sem *)(void *)ss) ? 0 : -EAGAIN;
}

int rotor_sem_acquire_until(struct rotor_sem *ss, int64_t deadline)
{
	struct sem *s = (struct sem *)(void *)ss;
	if (!s)
		return -EINVAL;
	int err;
	if (!rotor__wait_begin(&err))
		return err;
	if (sem_take(s))
		return 0;
	rotor__spin_lock(&s->lock);
	if (sem_take(s)) {
		rotor__spin_unlock(&s->lock);
		return 0;
	}
	struct rotor__waiter wt;
	/* 0: release handed us its unit directly. */
	return rotor__waitq_block(&s->q, &s->lock, &wt, deadline);
}

int rotor_sem_acquire(struct rotor_sem *s)
{
	return rotor_sem_acquire_until(s, ROTOR_FOREVER);
}

int rotor_sem_release(struct rotor_sem *ss)
{
	struct sem *s = (struct sem *)(void *)ss;
	if (!s)
		return -EINVAL;
	rotor__spin_lock(&s->lock);
	struct rotor__waiter *wt = rotor__waitq_pop(&s->q);
	if (!wt)
		atomic_fetch_add_explicit(&s->count, 1, memory_order_release);
	rotor__spin_unlock(&s->lock);
	if (wt)
		rotor__waiter_wake(wt, 0);
	return 0;
}

/* ---- event ---- */

struct event {
	_Atomic uint32_t set;
	struct rotor__spin lock;
	struct rotor__waitq q;
};
_Static_assert(sizeof(struct event) <= sizeof(struct rotor_event), "rotor_event too small");

#define E(p) ((struct event *)(void *)(p))

int rotor_event_init(struct rotor_event *e)
{
	if (!e)
		return -EINVAL;
	memset(e, 0, sizeof(*e));
	return 0;
}

/* Lock released: wake every waiter of a list taken from a queue. */
static void wake_all(struct rotor__waiter *list, int res)
{
	while (list) {
		struct rotor__waiter *wt = list;
		list = wt->next;
		rotor__waiter_wake(wt, res);
	}
}

/* Lock held: the whole queue as a NULL-terminated list, every waiter dequeued. */
static struct rotor__waiter *take_all(struct rotor__waitq *q)
{
	struct rotor__waiter *list = q->head;
	for (struct rotor__waiter *wt = list; wt; wt = wt->next)
		wt->queued = false;
	q->head = q->tail = NULL;
	return list;
}

int rotor_event_set(struct rotor_event *ee)
{
	struct event *e = E(ee);
	if (!e)
		return -EINVAL;
	rotor__spin_lock(&e->lock);
	atomic_store_explicit(&e->set, 1, memory_order_release);
	struct rotor__waiter *list = take_all(&e->q);
	rotor__spin_unlock(&e->lock);
	wake_all(list, 0);
	return 0;
}

int rotor_event_clear(struct rotor_event *e)
{
	if (!e)
		return -EINVAL;
	atomic_store_explicit(&E(e)->set, 0, memory_order_relaxed);
	return 0;
}

int rotor_event_is_set(struct rotor_event *e)
{
	return e && atomic_load_explicit(&E(e)->set, memory_order_acquire);
}

int rotor_event_wait_until(struct rotor_event *ee, int64_t deadline)
{
	struct event *e = E(ee);
	if (!e)
		return -EINVAL;
	if (!rotor__task_self())
		return -EPERM;
	if (atomic_load_explicit(&e->set, memory_order_acquire))
		return 0;
	int err;
	if (!rotor__wait_begin(&err))
		return err;
	rotor__spin_lock(&e->lock);
	if (atomic_load_explicit(&e->set, memory_order_acquire)) {
		rotor__spin_unlock(&e->lock);
		return 0;
	}
	struct rotor__waiter wt;
	return rotor__waitq_block(&e->q, &e->lock, &wt, deadline);
}

int rotor_event_wait(struct rotor_event *e)
{
	return rotor_event_wait_until(e, ROTOR_FOREVER);
}

/* ---- wait group ---- */

struct waitgroup {
	_Atomic int64_t n;
	struct rotor__spin lock;
	struct rotor__waitq q;
};
_Static_assert(sizeof(struct waitgroup) <= sizeof(struct rotor_waitgroup),
               "rotor_waitgroup too small");

#define G(p) ((struct waitgroup *)(void *)(p))

int rotor_waitgroup_init(struct rotor_waitgroup *g)
{
	if (!g)
		return -EINVAL;
	memset(g, 0, sizeof(*g));
	return 0;
}

int rotor_waitgroup_add(struct rotor_waitgroup *gg, int64_t delta)
{
	struct waitgroup *g = G(gg);
	if (!g)
		return -EINVAL;
	rotor__spin_lock(&g->lock);
	int64_t n = atomic_load_explicit(&g->n, memory_order_relaxed) + delta;
	if (n < 0) {
		rotor__spin_unlock(&g->lock);
		return -EINVAL;
	}
	atomic_store_explicit(&g->n, n, memory_order_release);
	struct rotor__waiter *list = n == 0 ? take_all(&g->q) : NULL;
	rotor__spin_unlock(&g->lock);
	wake_all(list, 0);
	return 0;
}

int rotor_waitgroup_done(struct rotor_waitgroup *g)
{
	return rotor_waitgroup_add(g, -1);
}

int rotor_waitgroup_wait_until(struct rotor_waitgroup *gg, int64_t deadline)
{
	struct waitgroup *g = G(gg);
	if (!g)
		return -EINVAL;
	if (!rotor__task_self())
		return -EPERM;
	if (atomic_load_explicit(&g->n, memory_order_acquire) == 0)
		return 0;
	int err;
	if (!rotor__wait_begin(&err))
		return err;
	rotor__spin_lock(&g->lock);
	if (atomic_load_explicit(&g->n, memory_order_acquire) == 0) {
		rotor__spin_unlock(&g->lock);
		return 0;
	}
	struct rotor__waiter wt;
	return rotor__waitq_block(&g->q, &g->lock, &wt, deadline);
}

int rotor_waitgroup_wait(struct rotor_waitgroup *g)
{
	return rotor_waitgroup_wait_until(g, ROTOR_FOREVER);
}

/* ---- gather ---- */

int rotor_gather(struct rotor_task **tasks, size_t n, int64_t deadline, void **results, int *errs)
{
	if (!tasks && n)
		return -EINVAL;
	int first = 0;
	for (size_t i = 0; i < n; i++) {
		void *res = NULL;
		int r =
		    first == -ETIMEDOUT ? -ETIMEDOUT : rotor_join_until(tasks[i], deadline, &res);
		if (results)
			results[i] = r == 0 || r == -ECANCELED ? res : NULL;
		if (errs)
			errs[i] = r;
		if (r && !first)
			first = r;
	}
	return first;
}
