/*
 * The worker loop. Each turn has seven phases, in this order (numbered alike in
 * rotor__worker_loop):
 *
 *   1. run ready tasks and callbacks, FIFO, up to a budget of items (so a busy worker
 *      still reaps completions and messages at least every ROTOR__TURN_BUDGET items);
 *   2. fire due timers;
 *   3. post each batch gathered for another worker as one MSG_RING, and give task structs
 *      freed here back to their home workers;
 *   4. while stopping: publish quiescence (worker 0 also decides when the whole runtime is
 *      done);
 *   5. enter the kernel once: submit everything, and wait for a completion only if nothing
 *      is runnable (after a short poll; the next timer bounds the wait);
 *   6. reap every CQE and dispatch it by the tag in its user_data;
 *   7. deliver what threads that are no worker pushed on the inbox.
 *
 * Why this order: timers fire after the tasks ran so that a deadline set in this turn is
 * seen at once; batches are posted after both, so that everything this turn produced for
 * another worker travels in one message; quiescence is published after the posting, since
 * what a worker publishes must still hold while it sleeps; the inbox is drained after the
 * reap so that a doorbell's items and the CQEs that arrived with it run in the same turn.
 *
 * Rejected: entering the kernel only when idle. A DEFER_TASKRUN ring turns messages
 * posted to it into CQEs only when its owner enters with GETEVENTS, so a busy worker that
 * skipped the kernel would never see tasks posted to it.
 */
#include "worker.h"
#include "callback.h"
#include "msg.h"
#include "probes.h"
#include "ring.h"
#include "runtime.h"
#include "sanitize.h"
#include "stall.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ROTOR__ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#endif
#ifdef ROTOR__TSAN
void *__tsan_get_current_fiber(void);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

#define ROTOR__TIMER_SLACK_NS 50000
#define ROTOR__TURN_BUDGET    128

__thread struct rotor__worker *rotor__self __attribute__((tls_model("initial-exec")));
#ifdef ROTOR__ASAN
static __thread const void *sched_bottom;
static __thread size_t sched_size;
static __thread void *sched_fake;
#endif

void rotor__queue_prepend(struct rotor__queue *q, struct rotor__item *list)
{
	if (!list)
		return;
	struct rotor__item *last = list;
	size_t n = 1;
	while (last->next) {
		last = last->next;
		n++;
	}
	last->next = q->head;
	if (!q->head)
		q->tail = &last->next;
	q->head = list;
	q->len += n;
}

int rotor__worker_init(struct rotor__worker *w)
{
	rotor__self = w;
	rotor__queue_init(&w->runq);
	rotor__queue_init(&w->tcache.free);
	rotor__queue_init(&w->tcache.give_back_foreign);
	rotor__timers_init(&w->timers);
	int r = rotor__stack_pool_init(&w->stacks, w->rt->cfg.stack_size, w->rt->cfg.flags,
	                               rotor__task_slot_entry);
	if (r < 0)
		goto fail;
	r = rotor__ring_init(w);
	if (r < 0)
		goto fail;
	if (!(w->rt->cfg.flags & ROTOR_NO_SEGV_HANDLER)) {
		r = rotor__overflow_thread_init(&w->altstack);
		if (r < 0)
			goto fail;
	}
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *lo;
		size_t size;
		if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
			w->sched_stack_lo = (uintptr_t)lo;
			w->sched_stack_hi = (uintptr_t)lo + size;
		}
		pthread_attr_destroy(&attr);
	}
	w->thread = pthread_self();
#ifdef ROTOR__TSAN
	w->tsan_sched_fiber = __tsan_get_current_fiber();
#endif
	return 0;
fail:
	rotor__worker_fini(w);
	return r;
}

void rotor__worker_fini(struct rotor__worker *w)
{
	for (int i = 0; i < ROTOR__EXT_COUNT; i++)
		rotor__ext_fini(&w->ext[i]);
	rotor__callbacks_drop(w);
	rotor__ring_fini(w);
	rotor__stack_pool_fini(&w->stacks);
	rotor__timers_fini(&w->timers);
	rotor__overflow_thread_fini(w->altstack);
	w->altstack = NULL;
	if (rotor__self == w)
		rotor__self = NULL;
}

/* ---- switching ---- */

void rotor__switch_to_task(struct rotor__worker *w, struct rotor__slot *s)
{
	ROTOR__PROBE(switch_in, w->id, w->current, w->current->id);
#ifdef ROTOR__ASAN
	__sanitizer_start_switch_fiber(&sched_fake, s->lo, w->stacks.stack_size);
#endif
#ifdef ROTOR__TSAN
	__tsan_switch_to_fiber(s->tsan_fiber, 0);
#endif
	rotor__ctx_switch(&w->sched, &s->ctx);
#ifdef ROTOR__ASAN
	__sanitizer_finish_switch_fiber(sched_fake, NULL, NULL);
#endif
}

/* From a task's stack back to the scheduler; returns when the slot is resumed. */
void rotor__switch_to_sched(struct rotor__worker *w, struct rotor__slot *s)
{
	ROTOR__PROBE(switch_out, w->id, w->current, w->current->id);
#ifdef ROTOR__ASAN
	__sanitizer_start_switch_fiber(&s->asan_fake, sched_bottom, sched_size);
#endif
#ifdef ROTOR__TSAN
	__tsan_switch_to_fiber(w->tsan_sched_fiber, 0);
#endif
	rotor__ctx_switch(&s->ctx, &w->sched);
#ifdef ROTOR__ASAN
	__sanitizer_finish_switch_fiber(s->asan_fake, NULL, NULL);
#endif
}

/* First instruction of a fresh slot: finish the switch that brought us here. */
void rotor__switch_first_entry(void)
{
#ifdef ROTOR__ASAN
	__sanitizer_finish_switch_fiber(NULL, &sched_bottom, &sched_size);
#endif
}

int rotor__suspend(struct rotor__worker *w)
{
	struct rotor_task *t = w->current;
	t->state = ROTOR__T_WAITING;
	rotor__switch_to_sched(w, t->slot);
	return t->wait_res;
}

/* ---- the loop ---- */

/*
 * With hundreds of tasks taking turns (a server's connections), each resumes with its stack
 * cold: the frames it returns through and the registers the switch pops. Start fetching the
 * next task's stack top while this one runs. Only a hint: a prefetch never faults.
 */
#ifndef ROTOR__PREFETCH_LINES
#define ROTOR__PREFETCH_LINES 8
#endif
static inline void prefetch_next(struct rotor__worker *w)
{
#if ROTOR_ASM_SWITCH
	struct rotor__item *n = w->runq.head;
	if (!n || n->kind != ROTOR__ITEM_TASK)
		return;
	struct rotor__slot *slot = rotor__container_of(n, struct rotor_task, item)->slot;
	if (!slot)
		return; /* not started: no frames yet */
	const char *sp = slot->ctx.sp;
	for (int i = 0; i < ROTOR__PREFETCH_LINES; i++)
		__builtin_prefetch(sp + 64 * i);
#else
	(void)w;
#endif
}

static void run_ready(struct rotor__worker *w)
{
	/* What becomes ready while we run (a joiner, a woken task) runs in the same turn,
	 * up to a budget: the kernel is entered at least once per ROTOR__TURN_BUDGET items,
	 * which bounds how long completions and messages wait, while a spawn+join does not
	 * pay a system call. */
	size_t budget = ROTOR__TURN_BUDGET;
	while (budget--) {
		struct rotor__item *it = rotor__queue_pop(&w->runq);
		if (!it)
			break;
		prefetch_next(w);
		switch (it->kind) {
		case ROTOR__ITEM_TASK:
			rotor__task_run(w, rotor__container_of(it, struct rotor_task, item));
			break;
		case ROTOR__ITEM_SPAWNS: {
			/* One item, up to ROTOR__SPAWN_BLOCK tasks: charged to the budget as such.
			 */
			uint32_t n = rotor__spawn_run(
			    w, rotor__container_of(it, struct rotor__spawn_block, item));
			budget = n > budget ? 0 : budget - (n - 1);
			break;
		}
		case ROTOR__ITEM_CALLBACK:
			rotor__stall_run_begin(w, NULL, (void *)w->sched_stack_lo,
			                       (void *)w->sched_stack_hi);
			rotor__callback_run(w, it);
			rotor__stall_run_end(w);
			break;
		default:
			ROTOR__PANIC("w%d: bad item kind %u", w->id, it->kind);
		}
	}
}

/* While stopping: publish whether this worker is quiet; worker 0 also watches for the
 * whole runtime being quiet and then sends everyone home. */
static void stop_step(struct rotor__worker *w)
{
	if (w->nlive && w->stop_report_at && rotor_now() >= w->stop_report_at) {
		rotor__stall_report_stop(w);
		w->stop_report_at = rotor_now() + (int64_t)w->rt->cfg.stop_report_ms * 1000000;
	}
	bool quiet = w->nlive == 0 && rotor__queue_empty(&w->runq) && w->out_pending == 0;
	atomic_store(&w->pub_sent, w->sent);
	atomic_store(&w->pub_recv, w->recv);
	atomic_store(&w->pub_quiet, quiet);
	if (w->id != 0 || !quiet || w->exit_posted || w->exit)
		return;
	if (rotor__runtime_terminated(w->rt)) {
		if (w->rt->n == 1)
			w->exit = true;
		else
			rotor__post_exit(w);
	}
}

/* Phase 6: every CQE, dispatched by the tag in its user_data (internal.h). */
static void complete_op(struct rotor__worker *w, struct rotor__op *op, struct io_uring_cqe *cqe)
{
	op->res = cqe->res;
	op->cflags = cqe->flags;
	rotor__task_ready(w, op->task, cqe->res);
}

static void reap(struct rotor__worker *w)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&w->ring, head, cqe)
	{
		n++;
		uint64_t ud = cqe->user_data;
		switch (ud & ROTOR__TAG_MASK) {
		case ROTOR__TAG_OP:
			complete_op(w, rotor__untag(ud), cqe);
			break;
		case ROTOR__TAG_IGNORE:
			break;
		case ROTOR__TAG_MULTI: {
			struct rotor__multi *m = rotor__untag(ud);
			m->complete(w, m, cqe);
			break;
		}
		default:
			rotor__msg_complete(w, cqe);
			break;
		}
	}
	io_uring_cq_advance(&w->ring, n);
	ROTOR__STAT_ADD(w->stats.cqes, n);
	/* FEAT_NODROP kept the completions that did not fit; the next GETEVENTS enter
	 * flushes them, and we always enter at least once per loop turn. */
	if (IO_URING_READ_ONCE(*w->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
		ROTOR__STAT_INC(w->stats.cq_overflows);
}

/* Phase 5: the longest the kernel may keep us. Timers bound it; the stop coordinator, which
 * watches the others wind down, and a sender out of credit, which waits for its target to
 * read, poll instead (both are rare). */
#define ROTOR__COORD_POLL_NS 100000

static int64_t wait_deadline(struct rotor__worker *w, int64_t now)
{
	/* Sleep a little past the earliest deadline (timer slack, as the kernel's default
	 * 50 us for user threads): timers due close together then fire in one wake-up
	 * instead of one kernel entry each. */
	int64_t deadline =
	    rotor__deadline_in(rotor__timers_next(&w->timers), ROTOR__TIMER_SLACK_NS);
	/* A stop outlived by tasks is reported even while this worker would sleep. */
	if (w->stopping && w->nlive && w->stop_report_at && deadline > w->stop_report_at)
		deadline = w->stop_report_at;
	if ((w->stopping && w->id == 0 && !w->exit_posted) || w->credit_blocked) {
		if (!now)
			now = rotor_now();
		if (deadline > now + ROTOR__COORD_POLL_NS)
			deadline = now + ROTOR__COORD_POLL_NS;
	}
	return deadline;
}

void rotor__worker_loop(struct rotor__worker *w)
{
	while (!w->exit) {
		/* 1. */
		run_ready(w);
		/* 2. */
		int64_t now = 0;
		if (w->timers.count) {
			now = rotor_now();
			rotor__timers_run(&w->timers, now);
		}
		/* 3. */
		rotor__flush_outboxes(w);
		if (w->tcache.give_back_pending)
			rotor__task_give_back(w);
		/* 4. */
		if (w->stopping)
			stop_step(w);
		if (w->exit)
			break;
		/* A block of spawn requests is one item of the run queue: count its tasks. */
		atomic_store_explicit(&w->pub_load, w->nlive + w->runq.len + w->spawns.queued,
		                      memory_order_relaxed);
		/* 5. */
		int64_t deadline = wait_deadline(w, now);
		bool block = rotor__queue_empty(&w->runq);
		if (block && w->rt->cfg.spin_us && rotor__ring_poll(w, deadline))
			block = false;
		if (block && !rotor__inbox_may_sleep(w))
			block = false;
		rotor__ring_enter(w, block, deadline);
		if (block)
			rotor__inbox_awake(w);
		/* 6. */
		reap(w);
		/* 7. */
		rotor__inbox_drain(w);
	}
}

/* ---- the core as the layers above see it (api/core.h) ---- */

struct rotor_runtime *rotor__worker_runtime(const struct rotor__worker *w)
{
	return w->rt;
}

int rotor__worker_cpu(const struct rotor__worker *w)
{
	return w->cpu;
}

struct io_uring *rotor__worker_ring(struct rotor__worker *w)
{
	return &w->ring;
}
