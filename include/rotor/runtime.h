/*
 * rotor/runtime.h: starting and stopping a runtime (rotor_run, or rotor_runtime_create and
 * rotor_runtime_destroy), its configuration, what a thread can ask about the runtime it is
 * on, and each worker's counters.
 */
#ifndef ROTOR_PUBLIC_RUNTIME_H
#define ROTOR_PUBLIC_RUNTIME_H

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Configuration ------------------------------------------------------------------- */

/* Flags for rotor_config.flags: each turns off one optional kernel feature or behaviour,
 * so the fallbacks used on older kernels stay tested. */
#define ROTOR_NO_PIN           (1u << 0)  /* do not pin workers to CPUs */
#define ROTOR_NO_DEFER_TASKRUN (1u << 1)  /* ring without IORING_SETUP_DEFER_TASKRUN */
#define ROTOR_NO_SINGLE_ISSUER (1u << 2)  /* ring without IORING_SETUP_SINGLE_ISSUER */
#define ROTOR_NO_RINGLESS_MSG  (1u << 3)  /* foreign threads post through a small ring */
#define ROTOR_NO_GUARD_MADVISE (1u << 4)  /* stack guards by mprotect, not MADV_GUARD_INSTALL */
#define ROTOR_NO_COOP_TASKRUN  (1u << 5)  /* ring without IORING_SETUP_COOP_TASKRUN */
#define ROTOR_NO_SPIN          (1u << 6)  /* never spin before sleeping */
#define ROTOR_NO_STALL_CHECK   (1u << 7)  /* no stall detector */
#define ROTOR_NO_BUFRING       (1u << 8)  /* receive streams without provided buffer rings */
#define ROTOR_NO_RING_FD_REG   (1u << 9)  /* do not register the ring's fd (enters use the fd) */
#define ROTOR_NO_SEGV_HANDLER  (1u << 10) /* no stack-overflow report (SIGSEGV handler) */

/*
 * All zero means defaults. The environment variable ROTOR_DISABLE, a comma-separated list of
 * pin, defer_taskrun, single_issuer, ringless_msg, guard_madvise, coop_taskrun, spin,
 * stall_check, bufring, ring_fd_reg and segv_handler (the ROTOR_NO_* flag of each name), adds
 * flags to every runtime the process creates.
 *
 * Process-wide resources a runtime takes, and how to leave them alone:
 * - the stall detector's signal, SIGRTMIN + 7, handled from the first runtime that checks
 *   for stalls on (ROTOR_NO_STALL_CHECK: not installed);
 * - a SIGSEGV handler, installed when the first worker starts, run on an alternate signal
 *   stack per worker, that reports a coroutine's stack overflow by task name and hands any
 *   other fault to the handler installed before it, or to the default action
 *   (ROTOR_NO_SEGV_HANDLER: neither the handler nor the alternate stacks, for a program
 *   that owns SIGSEGV itself; overflows then die as a plain SIGSEGV);
 * - one pinned thread per worker, the offload pool's threads (rotor/offN) and the stall
 *   monitor thread, all named, all joined by rotor_runtime_destroy.
 */
/* Levels of rotor's own messages (rotor_config.log_level). */
#define ROTOR_LOG_ERROR   1 /* the runtime cannot do what was asked (no io_uring, a panic) */
#define ROTOR_LOG_WARNING 2 /* it goes on, but something is wrong (a stall, no guard pages) */
#define ROTOR_LOG_INFO    3
#define ROTOR_LOG_DEBUG   4

/* Where rotor's messages go: one call per message, without a trailing newline (a stall
 * report spans several lines). Called from any of the runtime's threads, possibly at once
 * from several: it must be thread-safe, and must not call rotor. */
typedef void (*rotor_log_fn)(void *arg, int level, const char *msg);

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
	unsigned stop_report_ms;  /* tasks still alive this long into a stop are reported, by
	                             name, state and backtrace, and again as often; 0: 5000 ms;
	                             ROTOR_NO_STALL_CHECK: never */
	rotor_log_fn log;         /* rotor's messages; NULL: a line each on stderr */
	void *log_arg;            /* log's first argument */
	int log_level;            /* messages up to this ROTOR_LOG_* level; 0: ROTOR_LOG_WARNING */
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
 * rotor_runtime_drain - a graceful stop: rotor_runtime_stop(), except that work in flight gets
 * until the absolute deadline to finish. A task inside a shield (rotor_shield_begin: a
 * request being answered, a goodbye being sent) keeps working until its shield ends or
 * deadline passes, whichever is first; every other task is cancelled at once, as by a stop
 * (an accept loop, an idle connection). A second drain only brings the deadline forward.
 * Returns 0, -EINVAL (rt NULL). Thread: any. Suspends: no.
 */
ROTOR_API int rotor_runtime_drain(struct rotor_runtime *rt, int64_t deadline);

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
 * is no worker: check for < 0 before using it as an index. Thread: any. Suspends: no. */
ROTOR_API int rotor_worker_id(void);

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

#endif /* ROTOR_PUBLIC_RUNTIME_H */
