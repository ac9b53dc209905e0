/*
 * rotor: a C11 runtime for Linux services. One worker thread per core, each owning one
 * io_uring ring; coroutines on their own stacks; tasks and wake-ups posted between cores
 * with IORING_OP_MSG_RING.
 *
 * Every call returns 0 (or a count) on success and a negative errno on failure; errno is
 * neither read nor set. Times are int64_t nanoseconds on CLOCK_MONOTONIC; deadlines are
 * absolute (ROTOR_FOREVER for none). Each call says which threads may make it ("Thread:")
 * and whether it may suspend the calling coroutine ("Suspends:").
 */
#ifndef ROTOR_H
#define ROTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ROTOR_BUILDING)
#define ROTOR_API __attribute__((visibility("default")))
#else
#define ROTOR_API
#endif

#define ROTOR_VERSION_MAJOR 0
#define ROTOR_VERSION_MINOR 1
#define ROTOR_VERSION_PATCH 0

struct rotor_runtime;
struct rotor_task;
struct rotor_future;
struct rotor_timer;

/* A task's body: returns its result, which rotor_join() or a future hands back. */
typedef void *(*rotor_fn)(void *arg);
/* A callback (call_soon, call_later): runs on a worker's own stack and must not suspend. */
typedef void (*rotor_callback_fn)(void *arg);

#define ROTOR_FOREVER INT64_MAX

/* Worker selectors for spawn and submit. */
#define ROTOR_WORKER_SELF (-1) /* the calling worker (spawn only) */
#define ROTOR_WORKER_ANY  (-2) /* the least-loaded worker */

/* ---- Configuration ------------------------------------------------------------------- */

/* Flags for rotor_config.flags: each turns off one optional kernel feature or behaviour,
 * so the fallbacks used on older kernels stay tested. */
#define ROTOR_NO_PIN           (1u << 0) /* do not pin workers to CPUs */
#define ROTOR_NO_DEFER_TASKRUN (1u << 1) /* ring without IORING_SETUP_DEFER_TASKRUN */
#define ROTOR_NO_SINGLE_ISSUER (1u << 2) /* ring without IORING_SETUP_SINGLE_ISSUER */
#define ROTOR_NO_RINGLESS_MSG  (1u << 3) /* foreign threads post through a small ring */
#define ROTOR_NO_GUARD_MADVISE (1u << 4) /* stack guards by mprotect, not MADV_GUARD_INSTALL */
#define ROTOR_NO_COOP_TASKRUN  (1u << 5) /* ring without IORING_SETUP_COOP_TASKRUN */
#define ROTOR_NO_SPIN          (1u << 6) /* never spin before sleeping */
#define ROTOR_NO_STALL_CHECK   (1u << 7) /* no stall detector */
#define ROTOR_NO_BUFRING       (1u << 8) /* receive streams without provided buffer rings */
#define ROTOR_NO_RING_FD_REG   (1u << 9) /* do not register the ring's fd (enters use the fd) */

/* All zero means defaults. The environment variable ROTOR_DISABLE (a comma-separated list
 * of pin, defer_taskrun, single_issuer, ringless_msg, guard_madvise, coop_taskrun, spin) adds
 * flags to every runtime the process creates. */
struct rotor_config {
	unsigned workers;         /* 0: one per CPU this process may run on (affinity mask) */
	size_t stack_size;        /* bytes per coroutine stack; 0: 64 KiB; min ROTOR_STACK_MIN */
	unsigned sq_entries;      /* submission queue size per worker; 0: 256 */
	unsigned cq_entries;      /* completion queue size; 0: 4 x sq_entries */
	unsigned msg_inflight;    /* MSG_RING messages in flight per (sender, target); 0: 64 */
	unsigned flags;           /* ROTOR_NO_* */
	unsigned spin_us;         /* poll this long before sleeping (idle worker, thread waiting
	                             on a future); 0: 20 us; ROTOR_NO_SPIN: never */
	unsigned offload_threads; /* threads of the rotor_offload pool; 0: 2 */
	unsigned stall_ms;        /* report a task holding its worker this long; 0: 100 ms;
	                             ROTOR_NO_STALL_CHECK: never */
};

#define ROTOR_STACK_MIN (16 * 1024)

/* ---- Runtime ------------------------------------------------------------------------- */

/*
 * rotor_run - the asyncio.run() shape: the calling thread becomes worker 0, the other
 * workers start in the background, fn(arg) runs as the main task on worker 0, and when it
 * returns the runtime stops (tasks still alive are cancelled), every thread is joined and
 * everything is freed. *result (may be NULL) receives fn's result.
 * Returns 0, or -EINVAL (bad config), -ENOMEM, -EPERM/-ENOSYS (io_uring unavailable: a
 * message on stderr names kernel.io_uring_disabled), -EBUSY (the caller is already a worker).
 * Thread: any thread that is not a worker. Suspends: no (blocks until fn returns).
 */
ROTOR_API int rotor_run(const struct rotor_config *cfg, rotor_fn fn, void *arg, void **result);

/*
 * rotor_runtime_create - the seed-003 shape: start cfg->workers workers in the background
 * and return; the calling thread keeps going and submits work with rotor_submit().
 * Returns 0 and sets *out, or the errors of rotor_run(). *out is untouched on failure.
 * Thread: any. Suspends: no.
 */
ROTOR_API int rotor_runtime_create(const struct rotor_config *cfg, struct rotor_runtime **out);

/*
 * rotor_runtime_stop - ask the runtime to stop (asyncio's loop.stop()): every live task is
 * cancelled (its pending and future waits return -ECANCELED), workers exit once all tasks
 * have ended and all messages have been delivered. Does not wait. Idempotent.
 * Returns 0. Thread: any (a task may stop its own runtime). Suspends: no.
 */
ROTOR_API int rotor_runtime_stop(struct rotor_runtime *rt);

/*
 * rotor_runtime_destroy - stop (if not yet), wait for every worker thread to exit, free
 * every ring, stack and task. Handles into this runtime are invalid afterwards.
 * Returns 0, or -EDEADLK when called from one of the runtime's own workers.
 * Thread: any thread that is not one of rt's workers (from another runtime's worker it blocks
 * that worker). Suspends: no (blocks).
 */
ROTOR_API int rotor_runtime_destroy(struct rotor_runtime *rt);

enum rotor_runtime_state {
	ROTOR_RUNNING = 1,  /* loop.is_running() */
	ROTOR_STOPPING = 2, /* stop requested, tasks winding down */
	ROTOR_STOPPED = 3,  /* every worker has exited: loop.is_closed() */
};

/* rotor_runtime_state - one of enum rotor_runtime_state. Thread: any. Suspends: no. */
ROTOR_API int rotor_runtime_state(const struct rotor_runtime *rt);

/* rotor_runtime_workers - the number of workers. Thread: any. Suspends: no. */
ROTOR_API int rotor_runtime_workers(const struct rotor_runtime *rt);

/* rotor_runtime_current - the runtime of the calling worker (get_running_loop), or NULL on a
 * thread that is no worker. Thread: any. Suspends: no. */
ROTOR_API struct rotor_runtime *rotor_runtime_current(void);

/* rotor_worker_id - index of the calling worker (0..workers-1), or -EPERM on a thread that
 * is no worker. Thread: any. Suspends: no. */
ROTOR_API int rotor_worker_id(void);

/* rotor_now - CLOCK_MONOTONIC in nanoseconds. Thread: any. Suspends: no. */
ROTOR_API int64_t rotor_now(void);

/* ---- Tasks --------------------------------------------------------------------------- */

struct rotor_task_attr {
	int worker;       /* index, ROTOR_WORKER_SELF (the default when attr is NULL) or _ANY */
	const char *name; /* copied (up to 31 bytes); NULL: "task-<id>" */
	size_t reserved;  /* must be 0 */
	/* Called with arg, on the task's worker, instead of fn if the task is cancelled before
	 * it ever runs (a stop, or rotor_cancel right after spawn) or gets no stack: what arg
	 * owns (a socket, a buffer) is released even then. NULL: nothing. */
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
 * stack (it never ran); -EDEADLK for a task joining itself; -EPERM off a task. If the joining
 * task is itself cancelled while waiting it gets -ECANCELED and the handle stays valid
 * (rotor_task_cancelled() tells the two -ECANCELED cases apart).
 * Thread: worker (any worker of the task's runtime). Suspends: yes.
 */
ROTOR_API int rotor_join(struct rotor_task *t, void **result);

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

/* rotor_task_cancelled - 1 if the calling task has been cancelled, 0 if not, -EPERM off a
 * task. Thread: task. Suspends: no. */
ROTOR_API int rotor_task_cancelled(void);

/* ---- Callbacks and timers ------------------------------------------------------------ */

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
 * frees it (whether or not the callback has run).
 * Returns 0, -ENOMEM, -EPERM off a worker. Thread: worker. Suspends: no.
 */
ROTOR_API int rotor_call_later(int64_t delay_ns, rotor_callback_fn fn, void *arg,
                               struct rotor_timer **out);

/* rotor_timer_cancel - cancel (if still pending) and free a call_later handle. Returns 0 if
 * the callback was cancelled, -EALREADY if it had already run. Thread: the worker that made
 * the timer (-EPERM elsewhere). Suspends: no. */
ROTOR_API int rotor_timer_cancel(struct rotor_timer *t);

/*
 * rotor_call_soon_threadsafe - run fn(arg) as a callback on worker `worker` (or _ANY) of rt,
 * posted through that worker's ring. Returns 0, -EINVAL (worker out of range), -ESHUTDOWN
 * (runtime stopping or stopped), -ENOMEM. Thread: any. Suspends: no (a foreign thread may
 * block briefly while the target's in-flight message budget is used up).
 */
ROTOR_API int rotor_call_soon_threadsafe(struct rotor_runtime *rt, int worker, rotor_callback_fn fn,
                                         void *arg);

/* ---- Futures ------------------------------------------------------------------------- */

/*
 * rotor_submit - run_coroutine_threadsafe: start fn(arg) as a task on worker `worker` (or
 * ROTOR_WORKER_ANY) of rt and return a future for its result. From a thread that is no
 * worker the task goes on the target's inbox, and a MSG_RING doorbell (ringless
 * IORING_REGISTER_SEND_MSG_RING where the kernel has it) wakes the target if it sleeps; a
 * sender whose target has 64 x msg_inflight items unread waits for room.
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

/* rotor_future_create - a future that rotor_future_set() resolves. Returns 0 or -ENOMEM.
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_future_create(struct rotor_future **out);

/*
 * rotor_future_set - resolve the future with a result and wake its waiters (a coroutine
 * waiting on another worker is woken through that worker's ring).
 * Returns 0, or -EALREADY if it was already resolved or cancelled. Thread: any. Suspends: no.
 */
ROTOR_API int rotor_future_set(struct rotor_future *f, void *result);

/*
 * rotor_future_wait - wait until the future is resolved or the deadline passes. On a task it
 * suspends the task (one task at a time may wait; another gets -EBUSY); on any other thread
 * it blocks the thread (any number may wait). Returns 0 and stores the result (result may
 * be NULL); -ETIMEDOUT; -ECANCELED if the future was cancelled, or the waiting task was;
 * -EPERM on a worker's callback. Thread: any. Suspends: yes on a task.
 */
ROTOR_API int rotor_future_wait(struct rotor_future *f, int64_t deadline, void **result);

/* rotor_future_cancel - cancel a future: a submitted task is cancelled; waiters get
 * -ECANCELED. Returns 0, or -EALREADY if already resolved. Thread: any. Suspends: no. */
ROTOR_API int rotor_future_cancel(struct rotor_future *f);

/* rotor_future_done - 1 if resolved or cancelled, else 0. Thread: any. Suspends: no. */
ROTOR_API int rotor_future_done(const struct rotor_future *f);

/* rotor_future_destroy - release the caller's reference; the memory goes when the task
 * behind it has ended too. Thread: any. Suspends: no. */
ROTOR_API void rotor_future_destroy(struct rotor_future *f);

/* ---- Sync primitives --------------------------------------------------------------------- */

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

/* ---- Channels ---------------------------------------------------------------------------- */

/*
 * A bounded multi-producer multi-consumer channel of pointers, usable from tasks on any
 * worker (and, with the try-forms, from any thread). capacity 0 makes a rendezvous channel
 * (a send completes when a receiver takes the value). FIFO for values and for waiters.
 * After rotor_chan_close, senders get -EPIPE; receivers drain what is buffered, then get
 * -EPIPE (end of channel).
 */
struct rotor_chan;

/* rotor_chan_create - Returns 0 or -ENOMEM, -EINVAL (capacity > 2^31). Thread: any. */
ROTOR_API int rotor_chan_create(size_t capacity, struct rotor_chan **out);
/* rotor_chan_destroy - free it. Returns 0, or -EBUSY while a task waits on it.
 * Thread: any. */
ROTOR_API int rotor_chan_destroy(struct rotor_chan *ch);
/* rotor_chan_send - send v, waiting while the channel is full. Returns 0, -EPIPE (closed,
 * v not delivered), -ECANCELED, -ETIMEDOUT (_until), -EPERM off a task.
 * Thread: task. Suspends: yes. */
ROTOR_API int rotor_chan_send(struct rotor_chan *ch, void *v);
ROTOR_API int rotor_chan_send_until(struct rotor_chan *ch, void *v, int64_t deadline);
/* rotor_chan_try_send - 0, -EAGAIN (full), -EPIPE. Thread: any. Suspends: no. */
ROTOR_API int rotor_chan_try_send(struct rotor_chan *ch, void *v);
/* rotor_chan_recv - receive into *v, waiting while empty. Returns 0, -EPIPE (closed and
 * drained), -ECANCELED, -ETIMEDOUT (_until), -EPERM off a task. Thread: task. Suspends: yes. */
ROTOR_API int rotor_chan_recv(struct rotor_chan *ch, void **v);
ROTOR_API int rotor_chan_recv_until(struct rotor_chan *ch, void **v, int64_t deadline);
/* rotor_chan_try_recv - 0, -EAGAIN (empty), -EPIPE (closed and drained).
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_chan_try_recv(struct rotor_chan *ch, void **v);
/* rotor_chan_close - close: waiting senders and receivers get -EPIPE. Returns 0, or
 * -EALREADY if it was closed. Thread: any. Suspends: no. */
ROTOR_API int rotor_chan_close(struct rotor_chan *ch);

enum rotor_select_op {
	ROTOR_SELECT_RECV = 1,
	ROTOR_SELECT_SEND = 2,
};

struct rotor_select_case {
	struct rotor_chan *ch;
	int op;      /* ROTOR_SELECT_RECV or ROTOR_SELECT_SEND */
	void *value; /* SEND: the value; RECV: receives it */
	int result;  /* out, for the case that completed: 0, or -EPIPE (closed) */
};

/*
 * rotor_chan_select - wait until one of n channel operations can complete, complete exactly
 * that one, and return its index; cases[i].result says 0 or -EPIPE (a receive from a
 * closed, drained channel, or a send to a closed one, completes with -EPIPE). When several
 * are ready the lowest index wins. Returns the index, -ETIMEDOUT (deadline; ROTOR_FOREVER
 * for none, a past deadline polls), -ECANCELED, -EINVAL (n == 0, bad case), -EPERM off a
 * task. Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_chan_select(struct rotor_select_case *cases, size_t n, int64_t deadline);

/* ---- Offload pool ------------------------------------------------------------------------ */

/*
 * rotor_offload - asyncio's run_in_executor: run fn(arg), which may block, on the runtime's
 * pool of plain threads; the calling task suspends (its worker keeps running other tasks)
 * and resumes, through its worker's ring, with *result (may be NULL) = fn's return. The
 * pool starts on first use with cfg.offload_threads threads (0: 2) and a queue of
 * 64 x threads jobs; a task that finds it full waits for room. A blocking call cannot be
 * interrupted: a task cancelled meanwhile still waits for fn to return, then gets
 * -ECANCELED (with *result set). Returns 0, -ECANCELED, -ENOMEM, -EAGAIN (threads could not
 * start), -EPERM off a task, -ESHUTDOWN (runtime stopping). Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_offload(rotor_fn fn, void *arg, void **result);

/* ---- Task-local and worker-local storage ------------------------------------------------ */

/*
 * Keys name a slot in every task (the seeds' contextvars) and in every worker (the seed-003
 * per-loop shared object). At most ROTOR_KEYS_MAX keys per process; keys are never freed.
 */
#define ROTOR_KEYS_MAX 64

/* rotor_key_create - a new key; destructor (may be NULL) runs on each non-NULL value when
 * its task ends or its worker exits. Returns the key (>= 0) or -EAGAIN (all keys used).
 * Thread: any. */
ROTOR_API int rotor_key_create(void (*destructor)(void *value));
/* rotor_task_set - set the calling task's value for key (the old value is not destroyed).
 * Returns 0, -EINVAL (bad key), -ENOMEM, -EPERM off a task. Thread: task. Suspends: no. */
ROTOR_API int rotor_task_set(int key, void *value);
/* rotor_task_get - the calling task's value for key, NULL if unset, off a task, or a bad
 * key. A new task starts with every value unset. Thread: task. Suspends: no. */
ROTOR_API void *rotor_task_get(int key);
/*
 * rotor_worker_local - the calling worker's object for key, created on first use by
 * create(arg) on that worker (the same object for every task there). *out receives it.
 * Returns 0, -EINVAL (bad key, create NULL), -ENOMEM (create returned NULL), -EPERM off a
 * worker. The key's destructor runs on it when the worker exits. Thread: worker.
 * Suspends: no (create must not suspend).
 */
ROTOR_API int rotor_worker_local(int key, void *(*create)(void *arg), void *arg, void **out);

/* ---- I/O ----------------------------------------------------------------------------------- */

/*
 * File and socket operations. Each is one SQE on the calling worker's ring (a deadline is a
 * timer of the worker's that cancels the operation); only the calling task suspends. Every call
 * takes an absolute deadline (ROTOR_FOREVER for none) and returns what the system call
 * would (a count or 0) or a negative errno: the operation's own errors, plus -ETIMEDOUT when
 * the deadline passed first, -ECANCELED when the task was cancelled (the operation is
 * cancelled in the kernel and the call returns only after the kernel has let go of its
 * buffers), -EPERM off a task. Thread: task. Suspends: yes.
 */
struct iovec;
struct msghdr;
struct statx;

/* openat(AT_FDCWD, path, flags, mode): the new fd. */
ROTOR_API int rotor_open(const char *path, int flags, unsigned mode, int64_t deadline);
/* close(fd). */
ROTOR_API int rotor_close(int fd, int64_t deadline);
/* pread/pwrite at offset; offset -1 uses and advances the file position. Byte counts. */
ROTOR_API ssize_t rotor_read(int fd, void *buf, size_t len, int64_t offset, int64_t deadline);
ROTOR_API ssize_t rotor_write(int fd, const void *buf, size_t len, int64_t offset,
                              int64_t deadline);
ROTOR_API ssize_t rotor_readv(int fd, const struct iovec *iov, int iovcnt, int64_t offset,
                              int64_t deadline);
ROTOR_API ssize_t rotor_writev(int fd, const struct iovec *iov, int iovcnt, int64_t offset,
                               int64_t deadline);
/* fsync(fd), or fdatasync(fd) when datasync != 0. */
ROTOR_API int rotor_fsync(int fd, int datasync, int64_t deadline);
/* fallocate(fd, mode, offset, len). */
ROTOR_API int rotor_fallocate(int fd, int mode, int64_t offset, int64_t len, int64_t deadline);
/* statx(AT_FDCWD, path, flags, mask, out). */
ROTOR_API int rotor_statx(const char *path, int flags, unsigned mask, struct statx *out,
                          int64_t deadline);
/* unlinkat(AT_FDCWD, path, flags) (AT_REMOVEDIR removes a directory), renameat2(old, new,
 * flags), mkdirat(AT_FDCWD, path, mode). */
ROTOR_API int rotor_unlink(const char *path, int flags, int64_t deadline);
ROTOR_API int rotor_rename(const char *oldpath, const char *newpath, unsigned flags,
                           int64_t deadline);
ROTOR_API int rotor_mkdir(const char *path, unsigned mode, int64_t deadline);

/* socket(domain, type, protocol): the new fd. */
ROTOR_API int rotor_socket(int domain, int type, int protocol, int64_t deadline);
/* connect(fd, addr, len). */
ROTOR_API int rotor_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline);
/* accept4(fd, addr, len, flags): the new fd (addr and len may be NULL). */
ROTOR_API int rotor_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags,
                           int64_t deadline);
/* recv/send(fd, buf, len, flags): byte counts; recv returns 0 at end of stream. */
ROTOR_API ssize_t rotor_recv(int fd, void *buf, size_t len, int flags, int64_t deadline);
ROTOR_API ssize_t rotor_send(int fd, const void *buf, size_t len, int flags, int64_t deadline);
ROTOR_API ssize_t rotor_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline);
ROTOR_API ssize_t rotor_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline);
/* shutdown(fd, how). */
ROTOR_API int rotor_shutdown(int fd, int how, int64_t deadline);

/*
 * Started operations: a send that the task starts now and waits for later, going on
 * meanwhile (reading the next request while a response goes out, say); it suspends only if
 * it waits before the kernel is done, and a server that waits at its next flush usually
 * finds the send complete. An operation belongs to the worker that created it; buf belongs
 * to the kernel from rotor_send_start until rotor_op_wait (or rotor_op_destroy) returns.
 * rotor_op_create - a new idle operation. Returns 0, -EINVAL (out NULL), -ENOMEM, -EPERM
 *   off a worker. Thread: worker. Suspends: no.
 * rotor_send_start - start send(fd, buf, len, flags | MSG_NOSIGNAL) on op; flags as send(2)
 *   (with MSG_WAITALL the kernel sends all of buf, or fails). The SQE reaches the kernel with
 *   the worker's next submission, batched with others. Returns 0, -EBUSY (op started and not
 *   waited for, or a task waits on it), -EINVAL, -EPERM (off a task on op's worker),
 *   -ECANCELED (the task is cancelled), -EBADF (another worker's registered descriptor).
 *   Thread: task on op's worker. Suspends: no.
 * rotor_op_wait - the result of what op started: what rotor_send returns (the count, or the
 *   error), with -ETIMEDOUT when deadline passes first and -ECANCELED when the task is
 *   cancelled (both cancel the send in the kernel, and return once it has let go of buf).
 *   Also -EINVAL (nothing started), -EBUSY (another task waits on op), -EPERM.
 *   Thread: task on op's worker. Suspends: yes, unless the operation is done.
 * rotor_op_destroy - free op; an operation still in flight is cancelled and waited for
 *   first. Returns 0, -EINVAL, -EBUSY (a task waits on it), -EPERM (off a task on op's
 *   worker). Thread: task on its worker. Suspends: yes (briefly, not cancellable) while
 *   an operation is in flight.
 */
struct rotor_op;
ROTOR_API int rotor_op_create(struct rotor_op **out);
ROTOR_API int rotor_send_start(struct rotor_op *op, int fd, const void *buf, size_t len, int flags);
ROTOR_API ssize_t rotor_op_wait(struct rotor_op *op, int64_t deadline);
ROTOR_API int rotor_op_destroy(struct rotor_op *op);

/* rotor_poll - wait until fd is ready for some of events (POLLIN, POLLOUT, ...; any fd,
 * e.g. one another library owns). Returns the ready mask (revents, > 0). */
ROTOR_API int rotor_poll(int fd, unsigned events, int64_t deadline);
/* rotor_splice - splice(fd_in, off_in, fd_out, off_out, len, flags) (one side a pipe; an
 * offset of -1 for a pipe or the file position): bytes moved. */
ROTOR_API ssize_t rotor_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                               unsigned flags, int64_t deadline);
/*
 * rotor_signal_wait - wait for one of the n signals listed (asyncio's add_signal_handler, as
 * a coroutine) and return its number. The signals must be blocked in every thread, or the
 * kernel delivers them the usual way: block them with pthread_sigmask before creating the
 * runtime (workers inherit the mask). Also -EINVAL (signals NULL, n == 0, a signal number
 * out of range), -EMFILE. Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_signal_wait(const int *signals, size_t n, int64_t deadline);

/*
 * Multishot accept: one IORING_OP_ACCEPT that keeps producing connections (Linux 5.19+)
 * instead of one operation per connection. An acceptor belongs to the worker that created
 * it; connections that arrive while nobody asks wait in it (their fds owned by it).
 * rotor_acceptor_create - arm it on listen_fd. Returns 0, -ENOMEM, -EPERM off a task.
 *   Thread: task. Suspends: no.
 * rotor_acceptor_next - the next connection's fd (SOCK_CLOEXEC), waiting for one; the
 *   accept's errors (-EMFILE, ...), -ETIMEDOUT, -ECANCELED, -EBUSY (another task waits on
 *   it), -EPERM (not on its worker). Thread: task on its worker. Suspends: yes.
 * rotor_acceptor_destroy - cancel the accept in the kernel, wait for its last completion,
 *   close the fds nobody took, free it. Returns 0, -EBUSY (a task waits on it), -EPERM.
 *   Thread: task on its worker. Suspends: yes (briefly, not cancellable).
 */
struct rotor_acceptor;
ROTOR_API int rotor_acceptor_create(int listen_fd, struct rotor_acceptor **out);
ROTOR_API int rotor_acceptor_next(struct rotor_acceptor *a, int64_t deadline);
ROTOR_API int rotor_acceptor_destroy(struct rotor_acceptor *a);

/*
 * Multishot receive with provided buffers: a buffer ring is a pool of equal buffers
 * registered with the calling worker's ring (Linux 5.19), shared by many receive streams;
 * a receive stream keeps one multishot recv armed on a socket (Linux 6.0), so a connection
 * costs no SQE per read and holds no buffer while idle. Both belong to the worker that
 * created them. Where the kernel has no buffer rings, or with ROTOR_NO_BUFRING, each stream
 * owns one buffer and reads with plain recvs: same calls, same results.
 * rotor_bufring_create - count buffers (a power of two, 1..32768) of size bytes (1..16 MiB).
 *   Returns 0, -EINVAL, -ENOMEM, -EPERM off a task, or the kernel's registration error.
 *   Thread: task. Suspends: no.
 * rotor_bufring_destroy - unregister and free it. Returns 0, -EBUSY (a stream still uses
 *   it), -EINVAL, -EPERM (not on its worker). Thread: its worker (a task, or a worker-local
 *   destructor). Suspends: no.
 * rotor_recv_stream_create - start receiving from socket fd into br's buffers. The stream
 *   does not own fd: destroy it before closing fd. Returns 0, -EINVAL, -ENOMEM, -EPERM,
 *   -EBADF (another worker's registered descriptor).
 *   Thread: task on br's worker. Suspends: no.
 * rotor_recv_stream_next - the next bytes received, in order: *data points at them and stays
 *   valid until the next call on this stream (which gives the buffer back). Returns the
 *   count (at most the buffer size), 0 at end of stream (and on every later call), the
 *   recv's error (sticky), -ETIMEDOUT, -ECANCELED, -EBUSY (another task waits on it),
 *   -EINVAL, -EPERM (not on its worker). A deadline or a cancellation loses no data: bytes
 *   that arrive meanwhile wait for the next call. Thread: task on its worker. Suspends: yes.
 * rotor_recv_stream_destroy - give every buffer back, cancel the recv in the kernel and wait
 *   for its last completion, free the stream. Returns 0, -EBUSY (a task waits on it),
 *   -EINVAL, -EPERM. Thread: task on its worker. Suspends: yes (briefly, not cancellable).
 * rotor_recv_stream_detach - end the stream without losing a byte, so that fd can be read
 *   elsewhere (another worker's stream): cancel the recv, wait for its last completion,
 *   copy every byte received and not yet returned by next into buf, free the stream.
 *   Returns the bytes copied; -EMSGSIZE if they exceed cap, or -ESHUTDOWN if the stream has
 *   reached its end or an error (both leave the stream usable, the recv re-armed by the
 *   next call, nothing lost); -EBUSY, -EINVAL, -EPERM. Thread: task on its worker.
 *   Suspends: yes (briefly, not cancellable).
 */
struct rotor_bufring;
struct rotor_recv_stream;
ROTOR_API int rotor_bufring_create(unsigned count, size_t size, struct rotor_bufring **out);
ROTOR_API int rotor_bufring_destroy(struct rotor_bufring *br);
ROTOR_API int rotor_recv_stream_create(int fd, struct rotor_bufring *br,
                                       struct rotor_recv_stream **out);
ROTOR_API ssize_t rotor_recv_stream_next(struct rotor_recv_stream *s, const void **data,
                                         int64_t deadline);
ROTOR_API int rotor_recv_stream_destroy(struct rotor_recv_stream *s);
ROTOR_API ssize_t rotor_recv_stream_detach(struct rotor_recv_stream *s, void *buf, size_t cap);

/*
 * Registered descriptors: rotor_fd_register enters fd in the calling worker's table of
 * registered files and returns a descriptor (ROTOR_FIXED_FD set) that the I/O calls of tasks
 * on that worker take like any other, without the kernel's file lookup and reference count
 * on every operation. fd stays the caller's: the table holds a reference of its own, which
 * rotor_close on the registered descriptor drops. Such a descriptor means nothing to system
 * calls, and another worker's tasks get -EBADF with it. Returns the descriptor, -EBADF (fd
 * negative or already registered), -ENFILE (the table is full), -ECANCELED, -EPERM off a
 * task, or the kernel's error creating the table (-EMFILE: RLIMIT_NOFILE). Thread: task.
 * Suspends: yes (one SQE).
 */
#define ROTOR_FIXED_FD (1 << 30)
ROTOR_API int rotor_fd_register(int fd);

#define ROTOR_TCP_REUSEPORT (1u << 0) /* SO_REUSEPORT: a listener per worker on one port */

/*
 * rotor_tcp_listen - a listening TCP socket on host:port (IPv4 or IPv6 literal, or a name
 * getaddrinfo resolves; NULL or "" for every address; port 0 picks a free one, see
 * rotor_sock_port). SO_REUSEADDR always, SO_REUSEPORT with ROTOR_TCP_REUSEPORT. Returns the
 * fd, -EINVAL (bad host), or the errno of socket/bind/listen. Thread: any. Suspends: no
 * (name resolution may block: use literals on a worker).
 */
ROTOR_API int rotor_tcp_listen(const char *host, int port, int backlog, unsigned flags);
/* rotor_tcp_dial - a TCP connection to host:port (each address getaddrinfo gives, in order,
 * until one connects before the deadline). Returns the fd or a negative errno.
 * Thread: task. Suspends: yes. */
ROTOR_API int rotor_tcp_dial(const char *host, int port, int64_t deadline);
/* rotor_sock_port - the local port a socket is bound to, or a negative errno.
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_sock_port(int fd);
/* rotor_sock_steer - give listener fd the connections whose packets the calling worker's CPU
 * handles (SO_INCOMING_CPU; honoured in a SO_REUSEPORT group since Linux 6.2). Returns that
 * CPU, -EPERM off a worker, -EINVAL if the worker is not pinned (a runtime of one worker,
 * ROTOR_NO_PIN), or setsockopt's errno. Thread: worker. Suspends: no. */
ROTOR_API int rotor_sock_steer(int fd);

/* ---- Stats --------------------------------------------------------------------------- */

struct rotor_worker_stats {
	uint64_t tasks_spawned;
	uint64_t tasks_finished;
	uint64_t switches;
	uint64_t sqes;
	uint64_t cqes;
	uint64_t enters;
	uint64_t msgs_out;
	uint64_t msgs_in;
	uint64_t items_out;
	uint64_t items_in;
	uint64_t post_retries;
	uint64_t cq_overflows;
	uint64_t stacks_in_use;
	uint64_t stacks_total;
	uint64_t stalls;      /* runs reported by the stall detector */
	uint64_t sleeps;      /* enters that waited for a completion (the worker idled) */
	uint64_t polls;       /* idle spells that polled the ring before sleeping */
	uint64_t polls_won;   /* of those, the ones that found work and skipped the sleep */
	uint64_t tasks_alive; /* tasks_spawned - tasks_finished at the snapshot */
};

/* rotor_worker_stats - a snapshot of worker w's counters (read without locks; each field is
 * current to within one loop turn). Returns 0 or -EINVAL. Thread: any. Suspends: no. */
ROTOR_API int rotor_worker_stats(const struct rotor_runtime *rt, int w,
                                 struct rotor_worker_stats *out);

/*
 * rotor_stats_format - every worker's counters as text (one line per worker) or, with
 * json != 0, one JSON object {"workers":[{...},...]}, written into buf (always
 * NUL-terminated when len > 0). Returns the length the whole text needs (excluding the
 * NUL; compare with len, as snprintf), or -EINVAL. Thread: any. Suspends: no.
 */
ROTOR_API int rotor_stats_format(const struct rotor_runtime *rt, char *buf, size_t len, int json);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_H */
