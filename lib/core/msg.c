/*
 * Cross-thread messages. A worker gathers, per target worker, the items it produced during
 * one loop turn and posts them as one MSG_RING whose CQE user_data is the batch head:
 * ownership of the items passes through the kernel, which orders the memory; no shared
 * queue, no lock.
 *
 * A thread that is not a worker cannot batch (it has no loop turn), and one MSG_RING per
 * item costs it a system call. It pushes the item on the target's inbox, a lock-free stack,
 * and rings a doorbell (one MSG_RING, ringless IORING_REGISTER_SEND_MSG_RING on 6.13+, else
 * a small ring of its own) only when the target has announced it is about to sleep. The
 * target drains the inbox every loop turn. Measured (bench_submit, 100k submissions from
 * one thread): one MSG_RING per item ~1.25 us per submit; the inbox, see the commit.
 *
 * Flow control: a worker keeps at most inflight_max unread batches per target (the target
 * counts what it has read in consumed[sender]); beyond that the items wait in the outbox
 * and join a later, bigger batch. Non-workers take a credit from the target's
 * foreign_inflight, waiting on it as a futex (or failing with -EAGAIN) when none is left.
 * A failed post (an error CQE on the sender's ring) is requeued: nothing is ever dropped.
 */
#include "msg.h"
#include "compat.h"
#include "futex.h"
#include "probes.h"
#include "ring.h"
#include "runtime.h"
#include "sanitize.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FOREIGN_SENDER 0xffffu

void rotor__deliver(struct rotor__worker *w, struct rotor__item *it)
{
	switch (it->kind) {
	case ROTOR__ITEM_TASK: {
		struct rotor_task *t = rotor__container_of(it, struct rotor_task, item);
		if (t->state == ROTOR__T_NEW) {
			rotor__task_arrive(w, t);
		} else {
			t->state = ROTOR__T_READY;
			rotor__runq_push(w, it);
		}
		break;
	}
	case ROTOR__ITEM_CALLBACK:
		rotor__runq_push(w, it);
		break;
	case ROTOR__ITEM_START:
		rotor__task_start_req(w, rotor__container_of(it, struct rotor__start_req, item));
		break;
	case ROTOR__ITEM_SPAWNS:
		/* Its tasks are made as it runs (spawnreq.c). */
		w->spawns.queued += rotor__container_of(it, struct rotor__spawn_block, item)->n;
		rotor__runq_push(w, it);
		break;
	case ROTOR__ITEM_CANCEL: {
		struct rotor_task *t = rotor__container_of(it, struct rotor_task, cancel_item);
		rotor__task_cancel_local(w, t);
		rotor__task_release(t);
		break;
	}
	case ROTOR__ITEM_STOP:
		if (!w->stopping) {
			w->stopping = true;
			if (!(w->rt->cfg.flags & ROTOR_NO_STALL_CHECK))
				w->stop_report_at =
				    rotor_now() + (int64_t)w->rt->cfg.stop_report_ms * 1000000;
			rotor__tasks_cancel_all(w);
		}
		break;
	default:
		ROTOR__PANIC("w%d: bad item kind %u", w->id, it->kind);
	}
}

/* ---- non-worker senders ---- */

/* One MSG_RING from a thread that owns no worker ring: ringless where the kernel has it,
 * else through the runtime's small shared doorbell ring. Doorbells are rare (only for a
 * sleeping target), so that ring's mutex is not on any hot path, and it lives and dies
 * with the runtime: no per-thread ring to leak. Returns 0 or -errno. */
static int send_foreign(struct rotor_runtime *rt, int fd, uint64_t data)
{
	if (rt->ringless) {
		struct io_uring_sqe sqe;
		memset(&sqe, 0, sizeof(sqe));
		sqe.opcode = IORING_OP_MSG_RING;
		sqe.fd = fd;
		sqe.addr = IORING_MSG_DATA;
		sqe.len = FOREIGN_SENDER;
		sqe.off = data;
		long r =
		    ROTOR__FAULT_SYS(MSG_RINGLESS, syscall(__NR_io_uring_register, -1,
		                                           IORING_REGISTER_SEND_MSG_RING, &sqe, 1));
		return r < 0 ? -errno : 0;
	}
	pthread_mutex_lock(&rt->doorbell_lock);
	int r = 0;
	if (!rt->doorbell_ring_ready) {
		r = ROTOR__FAULT_ERR(DOORBELL_RING, io_uring_queue_init(4, &rt->doorbell_ring, 0));
		rt->doorbell_ring_ready = r == 0;
	}
	if (r == 0) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&rt->doorbell_ring);
		io_uring_prep_msg_ring(sqe, fd, FOREIGN_SENDER, data, 0);
		io_uring_sqe_set_data64(sqe, 0);
		/* A transient refusal leaves the SQE in the ring: enter again, never prepare a
		 * second one (two messages, and a stale CQE for the next caller). */
		do {
			r = ROTOR__FAULT_ERR(DOORBELL_ENTER,
			                     io_uring_submit_and_wait(&rt->doorbell_ring, 1));
			if (r == -EAGAIN || r == -EBUSY)
				sched_yield();
		} while (rotor__enter_transient(r));
		struct io_uring_cqe *cqe;
		if (r >= 0) {
			/* Submitted; the wait for its CQE may have been cut short. */
			do
				r = io_uring_wait_cqe(&rt->doorbell_ring, &cqe);
			while (r == -EINTR);
		}
		if (r == 0) {
			r = cqe->res < 0 ? cqe->res : 0;
			io_uring_cqe_seen(&rt->doorbell_ring, cqe);
		} else {
			/* The ring is in an unknown state: the next doorbell starts afresh. */
			io_uring_queue_exit(&rt->doorbell_ring);
			rt->doorbell_ring_ready = false;
		}
	}
	pthread_mutex_unlock(&rt->doorbell_lock);
	return r;
}

void rotor__msg_fini(struct rotor_runtime *rt)
{
	if (rt->doorbell_ring_ready)
		io_uring_queue_exit(&rt->doorbell_ring);
	rt->doorbell_ring_ready = false;
}

/* Probe the ringless post once per runtime (a no-op message to worker 0). */
void rotor__msg_probe(struct rotor_runtime *rt)
{
	rt->ringless = !(rt->cfg.flags & ROTOR_NO_RINGLESS_MSG);
	if (rt->ringless && send_foreign(rt, rt->w[0]->ring_fd, ROTOR__TAG_IGNORE) < 0)
		rt->ringless = false;
}

static int take_credit(struct rotor_runtime *rt, struct rotor__worker *tw, bool may_wait)
{
	/* Items wait in user memory, not the kernel's: a generous bound, for backpressure. */
	uint32_t max = tw->inflight_max * 64;
	for (;;) {
		uint32_t cur = atomic_load(&tw->foreign_inflight);
		if (cur < max) {
			if (atomic_compare_exchange_weak(&tw->foreign_inflight, &cur, cur + 1))
				return 0;
			continue;
		}
		if (!may_wait)
			return -EAGAIN;
		atomic_fetch_add(&tw->foreign_waiters, 1);
		/* Recheck after announcing ourselves: the target wakes only announced
		 * waiters (pairs with the load of foreign_waiters in msg_received). */
		if (atomic_load(&tw->foreign_inflight) >= max)
			rotor__futex_wait(&tw->foreign_inflight, max, rotor_now() + 10000000);
		atomic_fetch_sub(&tw->foreign_waiters, 1);
		(void)rt;
	}
}

/* Make sure a sleeping target wakes for its inbox: at most one doorbell in flight. */
static int ring_doorbell(struct rotor_runtime *rt, struct rotor__worker *tw, bool may_wait)
{
	/* Pairs with the seq_cst store of `sleeping` and re-check of the inbox in
	 * rotor__inbox_may_sleep: either we see it asleep, or it sees our item. */
	if (!atomic_load(&tw->sleeping) || atomic_exchange(&tw->doorbell, 1))
		return 0;
	for (;;) {
		int r = send_foreign(rt, tw->ring_fd, ROTOR__TAG_DOORBELL);
		if (r == 0)
			return 0;
		/* Not delivered (e.g. -EOVERFLOW). The item is in the inbox already; the target
		 * must still be woken, so keep trying (a try-post too: the item is committed). */
		(void)may_wait;
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
}

static int post_foreign(struct rotor_runtime *rt, struct rotor__item *it, unsigned flags)
{
	/* Announce ourselves before reading the state: a stopping runtime waits for
	 * foreign_active to drain before its workers exit (runtime.c). */
	atomic_fetch_add(&rt->foreign_active, 1);
	int r = 0;
	int st = atomic_load(&rt->state);
	if (st == ROTOR_STOPPED || ((flags & ROTOR__POST_NEW) && st != ROTOR_RUNNING)) {
		r = -ESHUTDOWN;
		goto out;
	}
	struct rotor__worker *tw = rt->w[it->worker];
	r = take_credit(rt, tw, flags & ROTOR__POST_WAIT);
	if (r < 0)
		goto out;
	struct rotor__item *head = atomic_load_explicit(&tw->inbox, memory_order_relaxed);
	do
		it->next = head;
	while (!atomic_compare_exchange_weak(&tw->inbox, &head, it));
	r = ring_doorbell(rt, tw, flags & ROTOR__POST_WAIT);
out:
	atomic_fetch_sub(&rt->foreign_active, 1);
	return r;
}

size_t rotor__inbox_drain(struct rotor__worker *w)
{
	if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
		return 0;
	struct rotor__item *it = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
	/* The stack holds newest first: reverse, so items from one thread keep their order. */
	struct rotor__item *fifo = NULL;
	size_t n = 0;
	while (it) {
		struct rotor__item *next = it->next;
		it->next = fifo;
		fifo = it;
		it = next;
		n++;
	}
	while (fifo) {
		struct rotor__item *next = fifo->next;
		rotor__deliver(w, fifo);
		fifo = next;
	}
	ROTOR__PROBE(inbox_recv, w->id, n);
	atomic_fetch_sub(&w->foreign_inflight, (uint32_t)n);
	if (atomic_load(&w->foreign_waiters))
		rotor__futex_wake(&w->foreign_inflight, INT_MAX);
	ROTOR__STAT_ADD(w->stats.items_in, n);
	return n;
}

bool rotor__inbox_may_sleep(struct rotor__worker *w)
{
	atomic_store(&w->sleeping, 1);
	if (atomic_load(&w->inbox)) {
		atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
		return false;
	}
	return true;
}

int rotor__post(struct rotor_runtime *rt, struct rotor__item *it, unsigned flags)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w || w->rt != rt)
		return post_foreign(rt, it, flags);
	if ((flags & ROTOR__POST_NEW) && atomic_load(&rt->state) != ROTOR_RUNNING)
		return -ESHUTDOWN;
	if (it->worker == (uint32_t)w->id) {
		rotor__deliver(w, it);
		return 0;
	}
	struct rotor__outbox *ob = &w->out[it->worker];
	if (rotor__queue_empty(&ob->q))
		w->out_pending++;
	rotor__queue_push(&ob->q, it);
	ob->items++;
	return 0;
}

void rotor__flush_outboxes(struct rotor__worker *w)
{
	w->credit_blocked = false;
	if (!w->out_pending)
		return;
	struct rotor_runtime *rt = w->rt;
	for (int i = 0; i < rt->n; i++) {
		struct rotor__outbox *ob = &w->out[i];
		if (rotor__queue_empty(&ob->q))
			continue;
		struct rotor__worker *tw = rt->w[i];
		uint64_t read = atomic_load_explicit(&tw->consumed[w->id].v, memory_order_acquire);
		if (ob->posted - read >= w->inflight_max) {
			w->credit_blocked = true;
			continue;
		}
		size_t n = ob->items;
		ob->items = 0;
		ob->open = NULL;
		struct rotor__item *head = rotor__queue_take(&ob->q);
		ROTOR__TSAN_RELEASE(head);
		struct io_uring_sqe *sqe = rotor__sqe(w);
		/* An injected failure aims the post at no ring: the kernel refuses it (-EBADF) and
		 * the batch comes back as from any refused post. */
		int fd = ROTOR__FAULT(MSG_POST) ? -1 : tw->ring_fd;
		io_uring_prep_msg_ring(sqe, fd, (unsigned)w->id, rotor__tag(head, ROTOR__TAG_ITEMS),
		                       0);
		/* Success needs no CQE here; an error CQE hands the batch back to us. */
		io_uring_sqe_set_data64(sqe, rotor__tag(head, ROTOR__TAG_POSTED));
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		ROTOR__PROBE(msg_post, w->id, i, n);
		ob->posted++;
		w->sent++;
		w->out_pending--;
		ROTOR__STAT_INC(w->stats.msgs_out);
		ROTOR__STAT_ADD(w->stats.items_out, n);
	}
}

static void msg_received(struct rotor__worker *w, struct io_uring_cqe *cqe)
{
	struct rotor__item *it = rotor__untag(cqe->user_data);
	ROTOR__TSAN_ACQUIRE(it);
	/* Only workers post item batches (non-workers use the inbox): res is the sender. */
	int sender = cqe->res;
	if (ROTOR__UNLIKELY(sender < 0 || sender >= w->rt->n))
		ROTOR__PANIC("w%d: item batch from unknown sender %d", w->id, sender);
	struct rotor__counter *c = &w->consumed[sender];
	atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + 1,
	                      memory_order_release);
	w->recv++;
	ROTOR__STAT_INC(w->stats.msgs_in);
	uint64_t n = 0;
	while (it) {
		struct rotor__item *next = it->next;
		n += it->kind == ROTOR__ITEM_SPAWNS
		         ? rotor__container_of(it, struct rotor__spawn_block, item)->n
		         : 1;
		rotor__deliver(w, it);
		it = next;
	}
	ROTOR__PROBE(msg_recv, w->id, sender, n);
	ROTOR__STAT_ADD(w->stats.items_in, n);
}

static void post_exit_to(struct rotor__worker *w, int target)
{
	struct io_uring_sqe *sqe = rotor__sqe(w);
	/* An injected failure: no ring, refused by the kernel, resent (rotor__msg_complete). */
	int fd = ROTOR__FAULT(MSG_EXIT) ? -1 : w->rt->w[target]->ring_fd;
	io_uring_prep_msg_ring(sqe, fd, 0, ROTOR__TAG_EXIT, 0);
	io_uring_sqe_set_data64(sqe, ((uint64_t)target << 3) | ROTOR__TAG_EXITSENT);
}

void rotor__post_exit(struct rotor__worker *w)
{
	w->exit_posted = true;
	for (int i = 1; i < w->rt->n; i++) {
		post_exit_to(w, i);
		w->exit_acks++;
	}
}

void rotor__msg_complete(struct rotor__worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	switch (ud & ROTOR__TAG_MASK) {
	case ROTOR__TAG_ITEMS:
		msg_received(w, cqe);
		break;
	case ROTOR__TAG_POSTED: {
		/* Not delivered: put the batch back in front of its outbox. */
		struct rotor__item *head = rotor__untag(ud);
		struct rotor__outbox *ob = &w->out[head->worker];
		if (rotor__queue_empty(&ob->q))
			w->out_pending++;
		/* Counted in items_out when first flushed: ob->items is not raised again. */
		rotor__queue_prepend(&ob->q, head);
		ob->posted--;
		w->sent--;
		ROTOR__STAT_INC(w->stats.post_retries);
		break;
	}
	case ROTOR__TAG_EXIT:
		w->exit = true;
		break;
	case ROTOR__TAG_DOORBELL:
		/* Clear before draining: a push after the drain rings again if we sleep. */
		atomic_store(&w->doorbell, 0);
		ROTOR__STAT_INC(w->stats.msgs_in);
		rotor__inbox_drain(w);
		break;
	case ROTOR__TAG_EXITSENT:
		if (cqe->res < 0) {
			post_exit_to(w, (int)(ud >> 3));
			ROTOR__STAT_INC(w->stats.post_retries);
		} else if (--w->exit_acks == 0) {
			w->exit = true;
		}
		break;
	default:
		ROTOR__PANIC("w%d: bad completion tag %llu", w->id,
		             (unsigned long long)(ud & ROTOR__TAG_MASK));
	}
}
