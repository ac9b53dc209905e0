/*
 * rotor/sync.h: coroutine mutex, condition variable, semaphore, event and wait group, in
 * the caller's memory; a wait suspends only the calling task, never a worker thread.
 */
#ifndef ROTOR_PUBLIC_SYNC_H
#define ROTOR_PUBLIC_SYNC_H

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Sync primitives ----------------------------------------------------------------- */

/*
 * Coroutine mutex, condition variable, semaphore, event and wait group. They work between
 * tasks on the same worker and across workers (a waiter on another worker is woken through
 * that worker's ring), suspend only the calling task, and never block a worker thread. Each
 * is caller's memory, set up by its _init (no _fini needed: they own no resources); it must
 * not be moved or re-initialised while a task waits on it. Waits return -ECANCELED when the
 * waiting task is cancelled, -ETIMEDOUT when an _until deadline passes, -EPERM off a task.
 */
struct rotor_mutex {
	uint64_t opaque[4];
};
struct rotor_cond {
	uint64_t opaque[4];
};
struct rotor_sem {
	uint64_t opaque[4];
};
struct rotor_event {
	uint64_t opaque[4];
};
struct rotor_waitgroup {
	uint64_t opaque[4];
};

/* rotor_mutex_init - an unlocked mutex. Returns 0. Thread: any. Suspends: no. */
ROTOR_API int rotor_mutex_init(struct rotor_mutex *m);
/* rotor_mutex_init_local - an unlocked worker-local mutex: usable only by the tasks of the
 * worker that first locks it (others get -EPERM from lock, trylock and unlock), and in
 * exchange its uncontended lock and unlock are plain loads and stores, no atomic
 * read-modify-write. Same calls and errors otherwise. Returns 0. Thread: any. Suspends: no. */
ROTOR_API int rotor_mutex_init_local(struct rotor_mutex *m);
/* rotor_mutex_lock - lock, waiting (FIFO, with direct hand-off) while another task holds it.
 * Returns 0, -ECANCELED, -EPERM off a task, -EDEADLK if the caller holds it already.
 * rotor_mutex_lock_until: also -ETIMEDOUT. Thread: task. Suspends: yes. */
ROTOR_API int rotor_mutex_lock(struct rotor_mutex *m);
ROTOR_API int rotor_mutex_lock_until(struct rotor_mutex *m, int64_t deadline);
/* rotor_mutex_trylock - 0, or -EBUSY when held; -EPERM off a task. Suspends: no. */
ROTOR_API int rotor_mutex_trylock(struct rotor_mutex *m);
/* rotor_mutex_unlock - 0, or -EPERM if the calling task does not hold it.
 * Thread: task. Suspends: no. */
ROTOR_API int rotor_mutex_unlock(struct rotor_mutex *m);

/* rotor_cond_init - Returns 0. Thread: any. Suspends: no. */
ROTOR_API int rotor_cond_init(struct rotor_cond *c);
/* rotor_cond_wait - atomically unlock m and wait for a signal; m is locked again before it
 * returns, whatever the result. Returns 0, -ECANCELED, -ETIMEDOUT (_until), -EPERM (off a
 * task, or m not held by the caller). Thread: task. Suspends: yes. */
ROTOR_API int rotor_cond_wait(struct rotor_cond *c, struct rotor_mutex *m);
ROTOR_API int rotor_cond_wait_until(struct rotor_cond *c, struct rotor_mutex *m, int64_t deadline);
/* rotor_cond_signal / _broadcast - wake one / every waiter. Returns 0.
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_cond_signal(struct rotor_cond *c);
ROTOR_API int rotor_cond_broadcast(struct rotor_cond *c);

/* rotor_sem_init - a counting semaphore with `value` units. Returns 0. Thread: any. */
ROTOR_API int rotor_sem_init(struct rotor_sem *s, unsigned value);
/* rotor_sem_acquire - take a unit, waiting (FIFO) while there is none. Returns 0,
 * -ECANCELED, -ETIMEDOUT (_until), -EPERM off a task. Thread: task. Suspends: yes. */
ROTOR_API int rotor_sem_acquire(struct rotor_sem *s);
ROTOR_API int rotor_sem_acquire_until(struct rotor_sem *s, int64_t deadline);
/* rotor_sem_try_acquire - 0, or -EAGAIN when no unit is left. Thread: any. Suspends: no. */
ROTOR_API int rotor_sem_try_acquire(struct rotor_sem *s);
/* rotor_sem_release - give a unit back (to the first waiter if any). Returns 0.
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_sem_release(struct rotor_sem *s);

/* rotor_event_init - an event, clear. Returns 0. Thread: any. */
ROTOR_API int rotor_event_init(struct rotor_event *e);
/* rotor_event_set - set it and wake every waiter; rotor_event_clear - clear it. Return 0.
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_event_set(struct rotor_event *e);
ROTOR_API int rotor_event_clear(struct rotor_event *e);
/* rotor_event_is_set - 1 or 0. Thread: any. */
ROTOR_API int rotor_event_is_set(struct rotor_event *e);
/* rotor_event_wait - wait until set. Returns 0, -ECANCELED, -ETIMEDOUT (_until), -EPERM.
 * Thread: task. Suspends: yes (not if already set). */
ROTOR_API int rotor_event_wait(struct rotor_event *e);
ROTOR_API int rotor_event_wait_until(struct rotor_event *e, int64_t deadline);

/* rotor_waitgroup_init - a wait group at zero. Returns 0. Thread: any. */
ROTOR_API int rotor_waitgroup_init(struct rotor_waitgroup *g);
/* rotor_waitgroup_add - add delta (may be negative); at zero every waiter wakes. Returns 0,
 * or -EINVAL if the count would go below zero (unchanged). rotor_waitgroup_done: add -1.
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_waitgroup_add(struct rotor_waitgroup *g, int64_t delta);
ROTOR_API int rotor_waitgroup_done(struct rotor_waitgroup *g);
/* rotor_waitgroup_wait - wait until the count is zero. Returns 0, -ECANCELED, -ETIMEDOUT
 * (_until), -EPERM. Thread: task. Suspends: yes (not at zero). */
ROTOR_API int rotor_waitgroup_wait(struct rotor_waitgroup *g);
ROTOR_API int rotor_waitgroup_wait_until(struct rotor_waitgroup *g, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_SYNC_H */
