/*
 * A worker: one thread, one ring, one run queue. Everything in struct rotor__worker is
 * touched only by its own thread, except the fields marked "shared", which other threads
 * read (published counters) or update atomically (consumption counters, foreign credit).
 */
#ifndef ROTOR_WORKER_H
#define ROTOR_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"
#include "context.h"
#include "stack.h"
#include "timer.h"

#define ROTOR__STALL_FRAMES 32

struct rotor__counter {
	_Atomic uint64_t v;
	char pad[56];
} __attribute__((aligned(64)));

/* Items this worker has gathered for one other worker during the current loop turn. */
struct rotor__outbox {
	struct rotor__queue q;
	uint64_t posted; /* batches posted to that worker, ever */
};

/* Type-stable task memory: each worker recycles task structs FIFO; other threads give
 * them back through an atomic stack. */
struct rotor__task_cache {
	struct rotor__queue free;
	_Atomic(struct rotor__item *) remote;
	/* Structs of other workers freed here, given back in one CAS per loop turn. */
	struct rotor__queue *give_back; /* [nworkers] */
	unsigned give_back_pending;
};

struct rotor__worker {
	struct rotor_runtime *rt;
	int id;
	int cpu; /* the one CPU this worker is pinned to, or -1 (runtime.c: pin) */
	pthread_t thread;
	struct io_uring ring;
	int ring_fd;
	bool ring_ready;
	bool files_table;     /* a sparse table of registered files exists (rotor_fd_register) */
	int64_t spin_typical; /* ns: running mean of how long a successful poll took (ring.c) */
	unsigned setup_flags;
	unsigned features;

	struct rotor__queue runq;
	struct rotor_task *current;
	struct rotor__ctx sched;
	void *tsan_sched_fiber;
	struct rotor__slot *done_slot; /* slot of the task that just ended */
	struct rotor__stack_pool stacks;
	struct rotor__timers timers;
	struct rotor__task_cache tcache;

	struct rotor__outbox *out;       /* [nworkers] */
	struct rotor__counter *consumed; /* shared: [s] = batches from worker s consumed */
	unsigned out_pending;            /* outboxes holding items */
	bool credit_blocked;             /* an outbox waits for the target to read */
	unsigned inflight_max;

	/* Items from threads that are no worker: pushed on a lock-free stack, with a MSG_RING
	 * doorbell only when this worker sleeps (see msg.c). All shared. */
	_Atomic(struct rotor__item *) inbox;
	_Atomic uint32_t sleeping;         /* 1 from just before a blocking wait until after */
	_Atomic uint32_t doorbell;         /* 1 while a doorbell message is on its way */
	_Atomic uint32_t foreign_inflight; /* items from non-workers not yet delivered */
	_Atomic uint32_t foreign_waiters;  /* non-workers waiting for credit */

	struct rotor_task *live; /* doubly linked list of tasks owned here */
	uint64_t nlive;
	uint64_t task_seq;

	bool stopping;
	bool exit;
	unsigned exit_acks; /* worker 0: exit messages not yet completed */
	bool exit_posted;
	struct rotor__item stop_item;

	/* Published for the stop coordinator (worker 0): all shared. */
	_Atomic uint64_t pub_sent;
	_Atomic uint64_t pub_recv;
	_Atomic int pub_quiet;
	_Atomic uint64_t pub_load;
	uint64_t sent;
	uint64_t recv;

	void **locals; /* worker-local values (local.c) */

	/* Stall detector (stall.c): run_seq is shared (odd while a task or callback runs);
	 * the stall_seen and stall_reported fields belong to the monitor thread. */
	_Atomic uint64_t run_seq;
	uint64_t run_seq_local;
	struct rotor_task *_Atomic stall_task; /* shared: NULL for a callback */
	uintptr_t stall_stack_lo;
	uintptr_t stall_stack_hi;
	uint64_t stall_seen_seq;
	int64_t stall_seen_at;
	uint64_t stall_reported_seq;
	_Atomic int stall_captured;
	int stall_nframes;
	void *stall_frames[ROTOR__STALL_FRAMES];
	uintptr_t sched_stack_lo; /* the worker thread's own stack, for callbacks */
	uintptr_t sched_stack_hi;
	struct rotor_worker_stats stats; /* shared: written relaxed, read by anyone */
	void *altstack;
};

/* The calling thread's worker, or NULL. initial-exec: a plain %fs-relative load instead
 * of a __tls_get_addr call on every access from the shared library. */
extern __thread struct rotor__worker *rotor__self __attribute__((tls_model("initial-exec")));
static inline struct rotor__worker *rotor__worker_self(void)
{
	return rotor__self;
}

/* Thread body of a worker; returns when the runtime has terminated. */
void rotor__worker_loop(struct rotor__worker *w);
int rotor__worker_init(struct rotor__worker *w);
void rotor__worker_fini(struct rotor__worker *w);

/* Make an item runnable on its worker, which must be the calling one. */
static inline void rotor__runq_push(struct rotor__worker *w, struct rotor__item *it)
{
	rotor__queue_push(&w->runq, it);
}

/*
 * Suspend the running task until something makes it runnable again; returns the value the
 * waker left in task->wait_res. Precondition: the caller has arranged for exactly one
 * wake-up (a timer, a registered waiter, an operation's CQE).
 */
int rotor__suspend(struct rotor__worker *w);
/* Scheduler -> task slot, and back (sanitizer-annotated). */
void rotor__switch_to_task(struct rotor__worker *w, struct rotor__slot *s);
void rotor__switch_to_sched(struct rotor__worker *w, struct rotor__slot *s);
void rotor__switch_first_entry(void);
/* Hand an item that reached its owner (locally or by message) to the right place. */
void rotor__deliver(struct rotor__worker *w, struct rotor__item *it);

/* Give task structs freed here back to their home workers (one CAS per home). */
void rotor__task_give_back(struct rotor__worker *w);

void rotor__worker_locals_destroy(struct rotor__worker *w);

/* ---- stall.c ---- */
void rotor__stall_run_begin(struct rotor__worker *w, struct rotor_task *t, void *lo, void *hi);
void rotor__stall_run_end(struct rotor__worker *w);
int rotor__stall_start(struct rotor_runtime *rt);
void rotor__stall_stop(struct rotor_runtime *rt);

/* ---- ring.c ---- */
int rotor__ring_init(struct rotor__worker *w);
void rotor__ring_fini(struct rotor__worker *w);
/* Submit the SQ without waiting, at fault site `site`; returns what io_uring_submit did. A
 * transient refusal leaves the SQEs for the next enter. */
int rotor__ring_submit(struct rotor__worker *w, enum rotor__fault_site site);
/* The errors after which an io_uring_enter is simply made again: nothing was lost. */
static inline bool rotor__enter_transient(int r)
{
	return r == -EINTR || r == -EAGAIN || r == -EBUSY || r == -ENOMEM;
}
/* An SQE; submits to make room when the SQ is full. Never NULL. */
struct io_uring_sqe *rotor__sqe(struct rotor__worker *w);
/* Queue an ASYNC_CANCEL of the operation whose user_data is ud; the cancel's own CQE is
 * ignored, and the operation still ends with its own CQE. */
void rotor__cancel_op(struct rotor__worker *w, uint64_t ud);
/* Submit pending SQEs and reap: waits for one completion (bounded by deadline) if block. */
void rotor__ring_enter(struct rotor__worker *w, bool block, int64_t deadline);

/* An operation record on a waiting coroutine's stack (tag 0 in user_data). */
struct rotor__op {
	struct rotor_task *task;
	int res;
	uint32_t cflags;
};
/* A transfer's length as one SQE carries it: at most what read(2) moves at once. */
static inline unsigned rotor__io_len(size_t len)
{
	return (unsigned)(len > 0x7ffff000 ? 0x7ffff000 : len);
}
/* Issue sqe (already prepared) with op as its user_data, suspend until its CQE, return res. */
int rotor__op_wait(struct rotor__worker *w, struct io_uring_sqe *sqe, struct rotor__op *op);

/* fd as the kernel takes it from this worker's ring: *kfd the fd itself, or the slot of a
 * registered descriptor (ROTOR_FIXED_FD; *fixed set). 0, or -EBADF for another worker's. */
int rotor__fd_kernel(struct rotor__worker *w, int fd, int *kfd, bool *fixed);

/* A multishot operation (tag 7 in user_data): an object that outlives each completion, first
 * member of its owner (the acceptor, a receive stream), told of every CQE in order. */
struct rotor__multi {
	void (*complete)(struct rotor__worker *w, struct rotor__multi *m, struct io_uring_cqe *cqe);
};

/* ---- msg.c ---- */
/* Route an item to it->worker of rt from whatever thread this is. Returns 0 or -errno. */
#define ROTOR__POST_WAIT 1u /* a non-worker sender waits for credit (else -EAGAIN) */
#define ROTOR__POST_NEW  2u /* new work: refused with -ESHUTDOWN once stopping */
int rotor__post(struct rotor_runtime *rt, struct rotor__item *it, unsigned flags);
/* Post every gathered batch (one MSG_RING SQE per target worker). */
void rotor__flush_outboxes(struct rotor__worker *w);
/* A completion of this ring that is a message or a failed post. */
void rotor__msg_complete(struct rotor__worker *w, struct io_uring_cqe *cqe);
/* Worker 0: tell every other worker to leave its loop. */
void rotor__post_exit(struct rotor__worker *w);
/* Deliver what non-workers pushed on the inbox. Returns how many items. */
size_t rotor__inbox_drain(struct rotor__worker *w);
/* Before a blocking wait: announce it; false if the inbox filled meanwhile (don't sleep). */
bool rotor__inbox_may_sleep(struct rotor__worker *w);

#endif
