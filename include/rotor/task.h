/*
 * rotor/task.h: tasks (coroutines on their own stacks): spawning, joining, waiting on
 * several, cancelling, yielding and sleeping; and callbacks, which run on a worker's own
 * stack without suspending, soon, later (timers) or posted from another thread.
 */
#ifndef ROTOR_PUBLIC_TASK_H
#define ROTOR_PUBLIC_TASK_H

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rotor_task;
struct rotor_timer;

/* ---- Tasks --------------------------------------------------------------------------- */

/* Where a task runs (rotor_task_attr.on). The zero value is the calling worker, so that an
 * attr set only for its name or discard does not move the task. */
#define ROTOR_ON_SELF      0         /* the calling worker (the zero value) */
#define ROTOR_ON_WORKER(i) ((i) + 1) /* worker i, 0 <= i < rotor_runtime_workers() */
#define ROTOR_ON_ANY       (-1)      /* the least-loaded worker */

struct rotor_task_attr {
	int on;           /* ROTOR_ON_SELF (0), ROTOR_ON_WORKER(i) or ROTOR_ON_ANY */
	const char *name; /* copied (up to 31 bytes); NULL: "task-<id>" */
	size_t reserved;  /* must be 0 */
	/* Called with arg, on the task's worker, instead of fn if the task is cancelled before
	 * it ever runs (a stop, or rotor_cancel right after spawn) or gets no stack (or, spawned
	 * detached onto another worker, no memory there for its task): what arg owns (a socket,
	 * a buffer) is released even then. NULL: nothing. */
	void (*discard)(void *arg);
};

/*
 * rotor_spawn - start fn(arg) as a new task on the calling worker. If out is NULL the task
 * is detached; otherwise *out is a handle that must be given to rotor_join() or
 * rotor_detach() exactly once.
 * Returns 0, -ENOMEM, -EPERM (not called on a worker), -ESHUTDOWN (runtime stopping).
 * Thread: worker. Suspends: no (the new task runs once the caller suspends or yields;
 * tasks made ready during a loop turn run in that turn, up to a budget of 128 items).
 */
ROTOR_API int rotor_spawn(rotor_fn fn, void *arg, struct rotor_task **out);

/*
 * rotor_spawn_attr - rotor_spawn() with a worker choice and a name. A task spawned on
 * another worker travels there in that worker's ring (MSG_RING), batched with the other
 * posts of this loop turn. Extra errors: -EINVAL (worker out of range, reserved != 0).
 * Thread: worker. Suspends: no.
 */
ROTOR_API int rotor_spawn_attr(const struct rotor_task_attr *attr, rotor_fn fn, void *arg,
                               struct rotor_task **out);

/*
 * rotor_join - wait for a task to end; *result (may be NULL) receives its result. Releases
 * the handle. Returns 0; -ECANCELED if the task was cancelled (the result is still stored if
 * the task ran); -EINVAL if the handle was already joined or detached, or another task is
 * joining it; -EBUSY while a rotor_wait_any waits on it; -ENOMEM if the task could not get a
 * stack (it never ran); the error the task declared with rotor_task_fail(); -EDEADLK for a
 * task joining itself; -EPERM off a task. If the joining
 * task is itself cancelled while waiting it gets -ECANCELED and the handle stays valid
 * (rotor_task_cancelled() tells the two -ECANCELED cases apart).
 * Thread: worker (any worker of the task's runtime). Suspends: yes.
 */
ROTOR_API int rotor_join(struct rotor_task *t, void **result);

/*
 * rotor_join_until - rotor_join() with a deadline: -ETIMEDOUT leaves the handle valid (join
 * or detach it later). Thread: worker task. Suspends: yes.
 */
ROTOR_API int rotor_join_until(struct rotor_task *t, int64_t deadline, void **result);

/*
 * rotor_wait_any - asyncio.wait(FIRST_COMPLETED): wait until one of n tasks has ended and
 * return the lowest index of an ended one (not joined: join or detach it as usual). Every
 * handle must be held (not detached, joined, or being joined). Returns the index,
 * -ETIMEDOUT, -ECANCELED, -EINVAL (n == 0, a released handle, the caller itself), -EBUSY
 * (another task joins one of them), -ENOMEM, -EPERM off a task. Thread: worker task.
 * Suspends: yes.
 */
ROTOR_API int rotor_wait_any(struct rotor_task **tasks, size_t n, int64_t deadline);

/*
 * rotor_gather - asyncio.gather: join n tasks in order, storing each result in results[i]
 * (results may be NULL) and each join's return in errs[i] (errs may be NULL). Returns 0 when
 * every task ended uncancelled, else the first non-zero join result; -ETIMEDOUT if the
 * deadline passed (the tasks not yet joined keep valid handles, marked in errs with
 * -ETIMEDOUT). Thread: worker task. Suspends: yes.
 */
ROTOR_API int rotor_gather(struct rotor_task **tasks, size_t n, int64_t deadline, void **results,
                           int *errs);

/* rotor_detach - give up the handle: the task's memory is freed when it ends.
 * Returns 0 or -EINVAL (already joined or detached). Thread: any. Suspends: no. */
ROTOR_API int rotor_detach(struct rotor_task *t);

/*
 * rotor_cancel - cancel a task: its current wait (and every later one) returns -ECANCELED;
 * a task cancelled before it first ran never runs. The task decides how to end.
 * Returns 0, or -EINVAL (handle already released). Thread: any. Suspends: no.
 */
ROTOR_API int rotor_cancel(struct rotor_task *t);

/* rotor_yield - let the other ready tasks of this worker run. Returns 0, -ECANCELED if the
 * task was cancelled, -EPERM off a task. Thread: task. Suspends: yes. */
ROTOR_API int rotor_yield(void);

/* rotor_sleep - suspend the calling task for ns nanoseconds (rotor_sleep_until: until an
 * absolute deadline). Returns 0, -ECANCELED, -EPERM off a task. Thread: task. Suspends: yes. */
ROTOR_API int rotor_sleep(int64_t ns);
ROTOR_API int rotor_sleep_until(int64_t deadline);

/* rotor_current - the calling task, or NULL off a task (on a callback or a foreign thread).
 * Thread: any. Suspends: no. */
ROTOR_API struct rotor_task *rotor_current(void);

/* rotor_task_name - the task's name. Valid while the handle is. Thread: any. Suspends: no. */
ROTOR_API const char *rotor_task_name(const struct rotor_task *t);

/* rotor_task_worker - the index of the worker that owns the task. Thread: any. */
ROTOR_API int rotor_task_worker(const struct rotor_task *t);

/*
 * rotor_task_fail - declare that the calling task fails with err (a negative errno): when its
 * body returns, rotor_join, rotor_gather, a task group and a submitted task's future report
 * err instead of 0 (or of -ECANCELED, if it was also cancelled). The body returns as usual;
 * a later call replaces err. Returns 0, -EINVAL (err not a negative errno), -EPERM off a task.
 * Thread: task. Suspends: no.
 */
ROTOR_API int rotor_task_fail(int err);

/*
 * rotor_shield_begin - defer the calling task's cancellation until rotor_shield_end() or the
 * absolute deadline, whichever comes first (asyncio's shield, Trio's shielded scope): room
 * to clean up (send "Connection: close", a QUIT, a TLS close_notify) after a cancel or during
 * a stop. A cancel that arrives meanwhile is kept and takes effect then; a task already
 * cancelled gets its calls back for the while. Shields nest; the earliest deadline holds.
 * The deadline is required, so that a shield can never hold a stop forever: when it passes,
 * a kept cancel takes effect at once, ending the wait the task is in.
 * Returns 0, -EINVAL (deadline ROTOR_FOREVER), -EPERM off a task. Thread: task.
 * Suspends: no.
 */
ROTOR_API int rotor_shield_begin(int64_t deadline);

/*
 * rotor_shield_end - end the innermost shield. When the outermost ends, a cancel kept
 * during it takes effect (rotor_task_cancelled() then returns 1).
 * Returns 0, -EINVAL (no shield is open), -EPERM off a task. Thread: task. Suspends: no.
 */
ROTOR_API int rotor_shield_end(void);

/* rotor_task_cancelled - 1 if the calling task has been cancelled, 0 if not, -EPERM off a
 * task. Test it with == 1 (or > 0), not as a boolean: the -EPERM of a call from a callback
 * or another thread is non-zero too. Thread: task. Suspends: no. */
ROTOR_API int rotor_task_cancelled(void);

/* ---- Callbacks and timers ------------------------------------------------------------ */

/* A callback (call_soon, call_later): runs on a worker's own stack and must not suspend. */
typedef void (*rotor_callback_fn)(void *arg);

/*
 * rotor_call_soon - run fn(arg) on the calling worker after what is ready now (call_soon).
 * Callbacks run on the worker's own stack: they must not suspend (suspending calls return
 * -EPERM there), and a slow one stalls every task of that worker.
 * Returns 0, -ENOMEM, -EPERM off a worker. Thread: worker. Suspends: no.
 */
ROTOR_API int rotor_call_soon(rotor_callback_fn fn, void *arg);

/*
 * rotor_call_later - run fn(arg) on the calling worker after delay_ns (call_later). If out
 * is not NULL it receives a handle that must be given to rotor_timer_cancel() once, which
 * frees it (whether or not the callback has run); from then on the handle is stale.
 * Returns 0, -EINVAL (fn NULL), -ENOMEM, -EPERM off a worker. Thread: worker. Suspends: no.
 */
ROTOR_API int rotor_call_later(int64_t delay_ns, rotor_callback_fn fn, void *arg,
                               struct rotor_timer **out);

/* rotor_timer_cancel - cancel (if still pending) and free a call_later handle. Returns 0 if
 * the callback was cancelled, -EALREADY if it had already run, -EINVAL for NULL or a stale
 * handle (one already cancelled, or whose worker has exited: refused also once another
 * callback has its memory, up to 65535 reuses of it in between). Thread: the worker that
 * made the timer (-EPERM elsewhere). Suspends: no. */
ROTOR_API int rotor_timer_cancel(struct rotor_timer *t);

/*
 * rotor_call_soon_threadsafe - run fn(arg) as a callback on worker `worker` (or _ANY) of rt,
 * posted through that worker's ring. Returns 0, -EINVAL (worker out of range), -ESHUTDOWN
 * (runtime stopping or stopped), -ENOMEM. Thread: any. Suspends: no (a foreign thread may
 * block briefly while the target's in-flight message budget is used up).
 */
ROTOR_API int rotor_call_soon_threadsafe(struct rotor_runtime *rt, int worker, rotor_callback_fn fn,
                                         void *arg);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_TASK_H */
