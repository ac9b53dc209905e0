/*
 * The core as the layers above it see it (coordination, I/O, services): the calling worker
 * and task, the one way a task waits and is woken, posting to a worker, the ring's SQEs and
 * completion records, and places where a layer hangs its own state on a worker, a task or a
 * runtime, and the type-stable pools that keep a stale handle from reaching a reused object
 * (../handle.h). Nothing here exposes a struct's fields; the core's own headers (one folder
 * up) are not on the upper layers' include path, so this file is all they can use.
 */
#ifndef ROTOR__CORE_H
#define ROTOR__CORE_H

#include <liburing.h>
#include <sched.h>

#include "../event.h"
#include "../handle.h"
#include "../internal.h"
#include "../item.h"
#include "../sanitize.h"

struct rotor__worker;

/* ---- state a layer hangs on a core object ---------------------------------------------
 * The core knows only that it must finalise it: fini runs when the owner goes (a task's end,
 * a worker's exit, a runtime's destroy), on the owner's thread (for a runtime: the thread
 * that destroys it). fini may be NULL (a marker that needs no cleaning up).
 */
struct rotor__ext {
	void (*fini)(struct rotor__ext *e);
};

/* The core, when a slot's owner goes: finalise what the slot holds, then empty it. The slot
 * still points at it during fini, so a fini that sets a value (a task-local destructor
 * setting another) sets it there. */
static inline void rotor__ext_fini(struct rotor__ext **slot)
{
	if (*slot && (*slot)->fini)
		(*slot)->fini(*slot);
	*slot = NULL;
}

enum rotor__ext_id {
	ROTOR__EXT_LOCALS,  /* worker: worker-local values (coord/local.c) */
	ROTOR__EXT_FILES,   /* worker: the registered-file table exists (io/fixed.c) */
	ROTOR__EXT_OFFLOAD, /* runtime: the offload pool (coord/offload.c) */
	ROTOR__EXT_COUNT,
};

/* ---- the calling worker ---------------------------------------------------------------- */

/* The first member of every worker (core/worker.h): the fields the inline calls below read,
 * a load each on every I/O call's path rather than a call into the core. Nothing above the
 * core reads them but through these calls. */
#define ROTOR__WORKER_HEAD                                                                         \
	struct rotor_task *current; /* the running task; NULL in the scheduler and callbacks */    \
	int id;                     /* the worker's index in its runtime */                        \
	struct rotor__ext *ext[ROTOR__EXT_COUNT]; /* the layers' state */
struct rotor__worker_head {
	ROTOR__WORKER_HEAD
};

/* The calling thread's worker, or NULL. initial-exec: a plain %fs-relative load instead
 * of a __tls_get_addr call on every access from the shared library. */
extern __thread struct rotor__worker *rotor__self __attribute__((tls_model("initial-exec")));
static inline struct rotor__worker *rotor__worker_self(void)
{
	return rotor__self;
}

/* The worker's index in its runtime, 0..n-1. */
static inline int rotor__worker_id(const struct rotor__worker *w)
{
	return ((const struct rotor__worker_head *)(const void *)w)->id;
}

/* The worker's slot for id (owner only). */
static inline struct rotor__ext **rotor__worker_ext(struct rotor__worker *w, enum rotor__ext_id id)
{
	return &((struct rotor__worker_head *)(void *)w)->ext[id];
}
/* The runtime the worker belongs to. */
struct rotor_runtime *rotor__worker_runtime(const struct rotor__worker *w);
/* The one CPU the worker is pinned to, or -1 when it is not pinned. */
int rotor__worker_cpu(const struct rotor__worker *w);
/* The worker's ring, for registrations (buffer rings, the file table). Owner only. */
struct io_uring *rotor__worker_ring(struct rotor__worker *w);

/* ---- runtimes, and the other ext slots ---------------------------------------------------- */

/* The runtime's configuration as rotor_runtime_create settled it. */
const struct rotor_config *rotor__runtime_config(const struct rotor_runtime *rt);
/* The CPUs the runtime may use (its creator's affinity when it was created): what threads
 * it starts besides its workers (the offload pool) run on, rather than one worker's CPU. */
void rotor__runtime_cpuset(const struct rotor_runtime *rt, cpu_set_t *set);

/* The task's one slot: its task-local values (owner only). */
struct rotor__ext **rotor__task_ext(struct rotor_task *t);
/* The runtime's slot for id, made by make(rt, &e) on first use, once, under the runtime's
 * lock. Returns 0 with *out set, or make's negative errno. Thread: any. */
int rotor__runtime_ext(struct rotor_runtime *rt, enum rotor__ext_id id,
                       int (*make)(struct rotor_runtime *rt, struct rotor__ext **e),
                       struct rotor__ext **out);

/* ---- the calling task and its waits ------------------------------------------------------
 * A task waits in exactly one way: rotor__task_wait. Exactly one of {a waker, the deadline,
 * a cancellation} ends each wait; the hooks below decide which under whatever lock the
 * waited-on object keeps, and the winner calls rotor__task_end_wait (owner) or
 * rotor__task_wake (any thread).
 */

/* The running task, or NULL (not on a worker, or in the scheduler or a callback); what the
 * public rotor_current returns. */
static inline struct rotor_task *rotor__task_self(void)
{
	struct rotor__worker *w = rotor__worker_self();
	return w ? ((const struct rotor__worker_head *)(const void *)w)->current : NULL;
}
/* The calling task when it may begin a wait now, else NULL with *err = -EPERM (no task)
 * or -ECANCELED (it was cancelled). */
struct rotor_task *rotor__wait_begin(int *err);
/* The first member of every task (core/task.h), read by the inline calls below. */
#define ROTOR__TF_CANCELLED (1u << 0)       /* a cancel was delivered (the other flags: task.h) */
#define ROTOR__TASK_HEAD    uint32_t flags; /* ROTOR__TF_*, owner only */
struct rotor__task_head {
	ROTOR__TASK_HEAD
};

/* A cancel was delivered to t (owner only). */
static inline bool rotor__task_cancelled(const struct rotor_task *t)
{
	return ((const struct rotor__task_head *)(const void *)t)->flags & ROTOR__TF_CANCELLED;
}
struct rotor_runtime *rotor__task_runtime(const struct rotor_task *t);
/* What the waiting task passed as obj to rotor__task_wait, for its hooks. */
void *rotor__task_wait_obj(const struct rotor_task *t);

/*
 * Owner, the running task: suspend it on obj until a waker ends the wait (with
 * rotor__task_end_wait or rotor__task_wake), the absolute deadline passes (timeout(t) runs:
 * it must end the wait, or see that a waker already has) or it is cancelled (cancel(t)
 * runs, the same). NULL hooks: that cannot end this wait (a wait for a wake-up already on
 * its way passes NULL, NULL, ROTOR_FOREVER). Returns the result the wait was ended with.
 * The deadline is lazy: a wait that ends early leaves its timer parked for the next one.
 */
int rotor__task_wait(struct rotor__worker *w, void *obj, void (*cancel)(struct rotor_task *t),
                     void (*timeout)(struct rotor_task *t), int64_t deadline);
/* Owner only: end t's wait with res (the claim on the wait is the caller's). */
void rotor__task_end_wait(struct rotor__worker *w, struct rotor_task *t, int res);
/* End t's wait with res from any thread (through its owner's ring when that is another
 * thread). The claim on the wait is the caller's. */
void rotor__task_wake(struct rotor_task *t, int res);

/* Reference counting of a task struct (a future's hold on its task). */
void rotor__task_release(struct rotor_task *t);
/* Cancel t from any thread; the caller holds a reference. 0 or -EALREADY (it ended). */
int rotor__task_cancel_any(struct rotor_task *t);

/*
 * Somebody told of a task's end, bound when the task is started (rotor__task_start): bind
 * runs before the task can run anywhere and holds a reference on it; unbind runs instead of
 * everything else if the start fails; ended runs once on the owner when the task's body has
 * returned (or never will: err -ECANCELED, -ENOMEM), with its result. A future is one.
 * A task started by request (rotor__task_request) is adopted instead of bound: adopt runs on
 * the target worker once the task is made, the task already holding the reference the
 * request held, and returns false if the task must not run (it then ends -ECANCELED);
 * ended runs with t NULL if the target could not make it (-ENOMEM).
 */
struct rotor__task_end {
	void (*bind)(struct rotor__task_end *e, struct rotor_task *t);
	void (*unbind)(struct rotor__task_end *e);
	void (*ended)(struct rotor__task_end *e, struct rotor_task *t, void *result, int err);
	bool (*adopt)(struct rotor__task_end *e, struct rotor_task *t);
};

/*
 * A task for its target worker to make, from a thread that is no worker of the runtime: the
 * caller embeds the request in what is told of the task's end (a future), so that neither
 * a task struct nor a lock is touched on the sending thread; the target makes the struct in
 * its own cache. The request belongs to the runtime from a successful post until `end` is
 * adopted or ended.
 */
struct rotor__start_req {
	struct rotor__item item;
	rotor_fn fn;
	void *arg;
	struct rotor__task_end *end;
};
/* Post r to worker `worker` (an index or ROTOR_WORKER_ANY). flags: ROTOR__POST_*. Returns 0,
 * -EINVAL (worker out of range), -ESHUTDOWN, -EAGAIN (no credit, without ROTOR__POST_WAIT). */
int rotor__task_request(struct rotor_runtime *rt, int worker, struct rotor__start_req *r,
                        unsigned flags);

/* Start a task on worker `worker` of rt (an index, ROTOR_WORKER_ANY or ROTOR_WORKER_SELF)
 * from any thread; *out is the user's handle when out is not NULL. flags: ROTOR__POST_*.
 * discard(arg) runs instead of fn when the task is cancelled before it runs. */
int rotor__task_start(struct rotor_runtime *rt, int worker, const char *name, rotor_fn fn,
                      void *arg, struct rotor_task **out, struct rotor__task_end *end,
                      unsigned flags, void (*discard)(void *));

/* ---- posting to a worker ---------------------------------------------------------------- */

/* Route an item to it->worker of rt from whatever thread this is. Returns 0 or -errno. */
#define ROTOR__POST_WAIT 1u /* a non-worker sender waits for credit (else -EAGAIN) */
#define ROTOR__POST_NEW  2u /* new work: refused with -ESHUTDOWN once stopping */
int rotor__post(struct rotor_runtime *rt, struct rotor__item *it, unsigned flags);

/* ---- the ring ---------------------------------------------------------------------------- */

/* An SQE of the calling worker's ring; submits to make room when the SQ is full. Never
 * NULL. Owner only. */
struct io_uring_sqe *rotor__sqe(struct rotor__worker *w);
/* Queue an ASYNC_CANCEL of the operation whose user_data is ud; the cancel's own CQE is
 * ignored, and the operation still ends with its own CQE. */
void rotor__cancel_op(struct rotor__worker *w, uint64_t ud);

/* An operation record on a waiting coroutine's stack (tag 0 in user_data): the ring stores
 * the CQE's res and flags in it and wakes task. */
struct rotor__op {
	struct rotor_task *task;
	int res;
	uint32_t cflags;
};

/* A multishot operation (tag 7 in user_data): an object that outlives each completion, first
 * member of its owner (the acceptor, a receive stream), told of every CQE in order. */
struct rotor__multi {
	void (*complete)(struct rotor__worker *w, struct rotor__multi *m, struct io_uring_cqe *cqe);
};

/* A transfer's length as one SQE carries it: at most what read(2) moves at once. */
static inline unsigned rotor__io_len(size_t len)
{
	return (unsigned)(len > 0x7ffff000 ? 0x7ffff000 : len);
}

#endif
