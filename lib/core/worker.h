/*
 * A worker: one thread, one ring, one run queue. Everything in struct rotor__worker is
 * touched only by its own thread, except the fields marked "shared", which other threads
 * read (published counters) or update atomically (consumption counters, foreign credit).
 */
#ifndef ROTOR__WORKER_H
#define ROTOR__WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>

#include "api/core.h"
#include "context.h"
#include "spawnreq.h"
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
	uint64_t posted;                 /* batches posted to that worker, ever */
	size_t items;                    /* items and spawn requests in q, for the counters */
	struct rotor__spawn_block *open; /* the block of q taking spawn requests, or NULL */
};

/* Type-stable task memory: each worker recycles task structs FIFO; other threads give
 * them back through an atomic stack. */
struct rotor__task_cache {
	struct rotor__queue free;
	struct rotor__item *spare; /* taken from remote, moved into free a few at a time */
	_Atomic(struct rotor__item *) remote;
	/* Structs of other workers freed here, given back in one CAS per loop turn. */
	struct rotor__queue *give_back;        /* [nworkers] */
	struct rotor__queue give_back_foreign; /* structs of non-workers, the same way */
	unsigned give_back_pending;
};

struct rotor__worker {
	/* First: what api/core.h's inline calls read (a pointer to the worker is one to it). */
	union {
		struct rotor__worker_head head;
		struct {
			ROTOR__WORKER_HEAD
		};
	};
	struct rotor__queue runq; /* beside current: both are touched on every switch */
	struct rotor_runtime *rt;
	int cpu; /* the one CPU this worker is pinned to, or -1 (runtime.c: pin) */
	pthread_t thread;
	struct io_uring ring;
	int ring_fd;
	bool ring_ready;
	int64_t spin_typical; /* ns: running mean of how long a successful poll took (ring.c) */
	unsigned setup_flags;
	unsigned features;

	struct rotor__ctx sched;
	void *tsan_sched_fiber;
	struct rotor__slot *done_slot; /* slot of the task that just ended */
	struct rotor__stack_pool stacks;
	struct rotor__timers timers;
	struct rotor__task_cache tcache;
	struct rotor__spawn_pool spawns;

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
	int64_t stop_report_at; /* while stopping: when to report the tasks still alive (stall.c) */
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
	uintptr_t stall_entry_ret; /* the return address if stall_frames[0] is a function entry */
	uintptr_t sched_stack_lo;  /* the worker thread's own stack, for callbacks */
	uintptr_t sched_stack_hi;
	struct rotor_worker_stats stats; /* shared: written relaxed, read by anyone */
	void *altstack;
};

/* Thread body of a worker; returns when the runtime has terminated. */
void rotor__worker_loop(struct rotor__worker *w);
int rotor__worker_init(struct rotor__worker *w);
void rotor__worker_fini(struct rotor__worker *w);

/* Worker w, in its own loop: add a spawn request (spawnreq.h) to the outbox for worker
 * `target`. Returns 0, or -ENOMEM (no block: the caller posts the usual way). Inline, for
 * the record to go straight into the open block. */
static inline int rotor__spawn_post(struct rotor__worker *w, int target, union rotor__req_fn fn,
                                    void *arg, void (*discard)(void *))
{
	struct rotor__outbox *ob = &w->out[target];
	struct rotor__spawn_block *b = ob->open;
	/* Append only to a block that is still the outbox's last item: order with the other
	 * items posted to that worker is kept. */
	if (ROTOR__UNLIKELY(!b || ob->q.tail != &b->item.next || b->n == ROTOR__SPAWN_BLOCK))
		return rotor__spawn_post_new_block(w, target, fn, arg, discard);
	struct rotor__spawn_req *r = &b->req[b->n++];
	r->fn = fn;
	r->arg = arg;
	r->discard = discard;
	ob->items++;
	return 0;
}

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

#endif
