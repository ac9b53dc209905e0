/*
 * rotor/future.h: futures, the bridge between tasks and other threads: rotor_submit starts
 * a task from any thread and hands back a future for its result; rotor_future_create makes
 * one that any thread resolves with rotor_future_set. A future handle is good from its
 * create (or submit) until its rotor_future_destroy; after that it is a stale handle, which
 * every call refuses with -EINVAL (rotor_future_destroy: does nothing), also once another
 * future has its memory (up to 65535 reuses of that memory in between; docs/architecture.md,
 * section 5).
 */
#ifndef ROTOR_PUBLIC_FUTURE_H
#define ROTOR_PUBLIC_FUTURE_H

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rotor_future;

/* ---- Futures ------------------------------------------------------------------------- */

/*
 * rotor_submit - run_coroutine_threadsafe: start fn(arg) as a task on worker `worker` (or
 * ROTOR_WORKER_ANY) of rt and return a future for its result. From a thread that is no
 * worker the request goes on the target's inbox (the target makes the task), and a
 * MSG_RING doorbell (ringless IORING_REGISTER_SEND_MSG_RING where the kernel has it) wakes
 * the target if it sleeps; a sender whose target has 64 x msg_inflight items unread waits
 * for room. A future resolved (rotor_future_set) or cancelled before its task has started
 * never starts it; a target with no memory for the task resolves it with -ENOMEM.
 * Returns 0, -EINVAL, -ENOMEM, -ESHUTDOWN (runtime stopping or stopped).
 * Thread: any. Suspends: no.
 */
ROTOR_API int rotor_submit(struct rotor_runtime *rt, int worker, rotor_fn fn, void *arg,
                           struct rotor_future **out);

/* rotor_try_submit - rotor_submit() that returns -EAGAIN instead of waiting for room. */
ROTOR_API int rotor_try_submit(struct rotor_runtime *rt, int worker, rotor_fn fn, void *arg,
                               struct rotor_future **out);

/*
 * rotor_call - submit and wait for the result: run_coroutine_threadsafe(...).result().
 * Returns 0, the errors of rotor_submit(), or -ECANCELED if the task was cancelled.
 * Thread: any non-worker thread (-EDEADLK on a worker). Suspends: no (blocks).
 */
ROTOR_API int rotor_call(struct rotor_runtime *rt, int worker, rotor_fn fn, void *arg,
                         void **result);

/* rotor_future_create - a future that rotor_future_set() resolves. Returns 0, -EINVAL (out
 * NULL) or -ENOMEM. Thread: any. Suspends: no. */
ROTOR_API int rotor_future_create(struct rotor_future **out);

/*
 * rotor_future_set - resolve the future with a result and wake its waiters (a coroutine
 * waiting on another worker is woken through that worker's ring).
 * Returns 0, -EALREADY if it was already resolved or cancelled, -EINVAL (NULL or a stale
 * handle). Thread: any. Suspends: no.
 */
ROTOR_API int rotor_future_set(struct rotor_future *f, void *result);

/*
 * rotor_future_wait - wait until the future is resolved or the deadline passes. On a task it
 * suspends the task (one task at a time may wait; another gets -EBUSY); on any other thread
 * it blocks the thread (any number may wait). Returns 0 and stores the result (result may
 * be NULL); -ETIMEDOUT; -ECANCELED if the future was cancelled, or the waiting task was;
 * -EINVAL (NULL or a stale handle); -EPERM on a worker's callback. Thread: any. Suspends:
 * yes on a task.
 */
ROTOR_API int rotor_future_wait(struct rotor_future *f, int64_t deadline, void **result);

/* rotor_future_cancel - cancel a future: a submitted task is cancelled; waiters get
 * -ECANCELED. Returns 0, -EALREADY if already resolved, -EINVAL (NULL or a stale handle).
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_future_cancel(struct rotor_future *f);

/* rotor_future_done - 1 if resolved or cancelled, else 0; -EINVAL for NULL or a stale
 * handle (so test it with == 1, not as a truth value). Thread: any. Suspends: no. */
ROTOR_API int rotor_future_done(const struct rotor_future *f);

/* rotor_future_destroy - release the caller's reference, ending the handle at once; the
 * memory is reused when the task behind it has ended too. NULL, a stale handle, or a second
 * destroy of one handle (even racing the first): nothing happens. Thread: any.
 * Suspends: no. */
ROTOR_API void rotor_future_destroy(struct rotor_future *f);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_FUTURE_H */
