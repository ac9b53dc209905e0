/*
 * Tasks. A task is owned by one worker for life: only that worker changes its scheduling
 * state. Other threads touch a task only through atomics (refs, handle, cancel_req, the
 * done event) and by posting items to its owner (cancel_item, by whoever set cancel_req).
 *
 * Lifetime: refs counts the running task itself plus the user's handle (and a submitted
 * task's future). The struct is recycled, FIFO, into a type-stable cache when refs drops
 * to zero, so a stale handle still points at a task struct and misuse is reported, not UB.
 */
#ifndef ROTOR_TASK_H
#define ROTOR_TASK_H

#include <stdatomic.h>

#include "internal.h"
#include "timer.h"

struct rotor__worker;
struct rotor__slot;

/*
 * A one-shot completion that one coroutine and any number of threads can wait for.
 * waiter: 0 (nobody), EVENT_DONE, or the waiting task. fstate is the futex word for
 * threads: 0 pending, 1 done, 2 pending with sleepers.
 */
struct rotor__event {
	_Atomic uintptr_t waiter;
	_Atomic uint32_t fstate;
};
#define ROTOR__EVENT_DONE ((uintptr_t)1)

void rotor__event_init(struct rotor__event *ev);
/* Resolve and wake. Thread: any. Returns -EALREADY if already set. */
int rotor__event_set(struct rotor__event *ev);
/* The same for an event that only tasks wait on (a task's end): owner worker only; no
 * atomic read-modify-write when the waiter is a task of the same worker. */
void rotor__event_set_owner(struct rotor__event *ev);
static inline bool rotor__event_is_set(const struct rotor__event *ev)
{
	return atomic_load_explicit(&((struct rotor__event *)ev)->fstate, memory_order_acquire) ==
	       1;
}
/* On a task: 0, -ETIMEDOUT, -ECANCELED, -EBUSY (another task waits). setter_here: only
 * this worker can set ev (a task's end, joined on its own worker): no locked ops. */
int rotor__event_wait_task(struct rotor__event *ev, int64_t deadline, bool setter_here);
/* On a thread that is no worker: 0 or -ETIMEDOUT. */
int rotor__event_wait_thread(struct rotor__event *ev, int64_t deadline, unsigned spin_us);

enum rotor__task_state {
	ROTOR__T_NEW = 1,
	ROTOR__T_READY,
	ROTOR__T_RUNNING,
	ROTOR__T_WAITING,
	ROTOR__T_DONE,
	ROTOR__T_FREE,
};

enum rotor__handle_state {
	ROTOR__H_NONE = 0, /* detached at spawn, or no user handle */
	ROTOR__H_HELD,
	ROTOR__H_JOINING,
	ROTOR__H_RELEASED,
};

/* Task flags (owner only). */
#define ROTOR__TF_CANCELLED (1u << 0)
#define ROTOR__TF_RAN       (1u << 1)
#define ROTOR__TF_MAIN      (1u << 2)

struct rotor_task {
	struct rotor__item item; /* item.worker = owner */
	struct rotor_runtime *rt;
	struct rotor__slot *slot;
	rotor_fn fn;
	void (*discard)(void *arg); /* instead of fn when cancelled before running */
	void *arg;
	void *result;
	uint32_t state;
	uint32_t flags;
	int wait_res;
	int err; /* what rotor_join returns: 0, -ECANCELED, -ENOMEM */
	/* While waiting: how to abort the wait on cancellation (owner only). */
	void (*cancel_hook)(struct rotor_task *t);
	void *wait_obj;
	struct rotor__timer tmr; /* may stay armed after a wait: see rotor__task_wait */
	int64_t wait_deadline;   /* of the current wait; FOREVER: none (owner only) */
	void (*wait_timeout)(struct rotor__timer *tm);
	struct rotor__event done;
	_Atomic uint32_t refs;
	_Atomic uint32_t handle;
	_Atomic uint32_t cancel_req;    /* 1 once a cancel was requested */
	struct rotor__item cancel_item; /* the request to the owner, from another thread */
	struct rotor_future *future;
	struct rotor_task *live_prev;
	struct rotor_task *live_next;
	uint32_t home; /* worker whose cache this struct returns to; UINT32_MAX: non-worker */
	void **locals; /* task-local values, allocated on first set */
	uint64_t id;
	_Atomic uint32_t name_state; /* 0: default not formatted, 1: being formatted, 2: set */
	char name[32];
};

/* Allocate a task struct for runtime rt, owned by worker `owner`. NULL on ENOMEM. */
struct rotor_task *rotor__task_alloc(struct rotor_runtime *rt, int owner);
void rotor__task_release(struct rotor_task *t);
/* Free every cached task struct of the runtime (at destroy). */
void rotor__task_pool_fini(struct rotor_runtime *rt);

/* Make task t runnable with wait result res, from any thread (routes through its owner's
 * ring when that is another thread). */
void rotor__task_wake(struct rotor_task *t, int res);
/* Owner only: end t's wait with res (the claim on the wait is the caller's): no more cancel
 * hook, no deadline, runnable. */
void rotor__task_end_wait(struct rotor__worker *w, struct rotor_task *t, int res);
/* Owner, the running task: suspend it on obj until a waker ends the wait (with
 * rotor__task_end_wait), deadline passes (timeout runs: it must end the wait) or it is
 * cancelled (cancel runs). Returns the wait's result. The hooks find obj in t->wait_obj. */
int rotor__task_wait(struct rotor__worker *w, void *obj, void (*cancel)(struct rotor_task *),
                     void (*timeout)(struct rotor__timer *), int64_t deadline);
/* Owner, the running task: arm t->tmr to call fire at deadline, after disarming whatever
 * deadline a past wait left parked there. */
void rotor__task_timer_take(struct rotor__worker *w, struct rotor_task *t,
                            void (*fire)(struct rotor__timer *), int64_t deadline);
/* Owner only: t is about to be queued to run. Its slot header (the saved stack pointer) is
 * fetched now, so that the run loop can prefetch the stack below it (worker.c) without
 * waiting on it. */
void rotor__task_ready(struct rotor__worker *w, struct rotor_task *t, int res);
/* Owner only: cancel t now (runs its cancel hook if it waits). */
void rotor__task_cancel_local(struct rotor__worker *w, struct rotor_task *t);
/* Owner only: a task item taken from the run queue. */
void rotor__task_run(struct rotor__worker *w, struct rotor_task *t);
/* Slot entry loop (never returns). */
void rotor__task_slot_entry(void);
/* Initialise and enqueue a new task from any thread. */
int rotor__task_start(struct rotor_runtime *rt, int worker, const char *name, rotor_fn fn,
                      void *arg, struct rotor_task **out, struct rotor_future *fut, unsigned flags,
                      void (*discard)(void *));
/* Owner: a new task reached its worker. */
void rotor__task_arrive(struct rotor__worker *w, struct rotor_task *t);
/* Owner: cancel every live task (stop). */
void rotor__tasks_cancel_all(struct rotor__worker *w);

/* Cancel t from any thread; the caller holds a reference. */
int rotor__task_cancel_any(struct rotor_task *t);

/* ---- local.c ---- */
void rotor__task_locals_destroy(struct rotor_task *t);

/* ---- future.c ---- */
void rotor__future_resolve_task(struct rotor_future *f, struct rotor_task *t, int err);
void rotor__future_bind(struct rotor_future *f, struct rotor_task *t);
void rotor__future_unbind(struct rotor_future *f);

/* ---- callback.c ---- */
void rotor__callback_run(struct rotor__worker *w, struct rotor__item *it);
void rotor__callbacks_drop(struct rotor__worker *w);

#endif
