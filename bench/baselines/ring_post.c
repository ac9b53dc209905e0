/*
 * Raw MSG_RING posting of closure chains between two pinned threads (ring_post.h).
 * Flow control as rotor's: at most 64 unread messages in flight; over that the producer
 * waits for the consumer's count (spinning: there is nothing else for it to do).
 */
#include "ring_post.h"
#include "bench.h"
#include "mq.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif

#define INFLIGHT 64

struct rp_node {
	struct rp_node *next;
	void (*fn)(void *arg);
	void *arg;
};

struct rp_run {
	long total, warm;
	int k;
	struct rp_node *nodes;
	struct io_uring rx;
	_Atomic int rx_ready; /* 1: ring made; -errno: failed */
	_Atomic long msgs_read;
	_Atomic int warm_done;
	_Atomic int abort; /* one side failed: the other leaves */
	long count;        /* consumer's */
	int64_t t0, c0, t_end;
	_Atomic int err; /* the consumer's */
};

static void bump(void *arg)
{
	((struct rp_run *)arg)->count++;
}

static int ring_init(struct io_uring *r)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = 1024;
	int rc = io_uring_queue_init_params(256, r, &p);
	if (rc < 0) {
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(256, r, &p);
	}
	return rc;
}

static void *consume(void *arg)
{
	struct rp_run *r = arg;
	mq_pin_self(1);
	int rc = ring_init(&r->rx);
	atomic_store(&r->rx_ready, rc < 0 ? rc : 1);
	if (rc < 0)
		return NULL;
	long total = r->warm + r->total;
	while (r->count < total && !atomic_load_explicit(&r->abort, memory_order_relaxed)) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {.tv_nsec = 100000000};
		rc = io_uring_submit_and_wait_timeout(&r->rx, &cqe, 1, &ts, NULL);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME) {
			atomic_store(&r->err, rc);
			atomic_store(&r->abort, 1);
			break;
		}
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&r->rx, head, cqe)
		{
			seen++;
			for (struct rp_node *nd = (struct rp_node *)(uintptr_t)cqe->user_data;
			     nd;) {
				struct rp_node *next = nd->next;
				nd->fn(nd->arg);
				nd = next;
			}
		}
		io_uring_cq_advance(&r->rx, seen);
		atomic_fetch_add_explicit(&r->msgs_read, seen, memory_order_release);
		if (r->count >= r->warm &&
		    !atomic_load_explicit(&r->warm_done, memory_order_relaxed))
			atomic_store(&r->warm_done, 1);
	}
	r->t_end = bench_now();
	io_uring_queue_exit(&r->rx);
	return NULL;
}

static int produce(struct rp_run *r, struct io_uring *tx, long from, long to, long *sent)
{
	for (long i = from; i < to;) {
		struct rp_node *first = &r->nodes[i], *last = first;
		for (int j = 0; j < r->k && i < to; j++, i++) {
			struct rp_node *nd = &r->nodes[i];
			nd->next = NULL;
			nd->fn = bump;
			nd->arg = r;
			if (nd != first)
				last->next = nd;
			last = nd;
		}
		while (*sent - atomic_load_explicit(&r->msgs_read, memory_order_acquire) >=
		       INFLIGHT)
			if (atomic_load_explicit(&r->abort, memory_order_relaxed))
				return -EIO;
			else
				sched_yield();
		struct io_uring_sqe *sqe = io_uring_get_sqe(tx);
		io_uring_prep_msg_ring(sqe, r->rx.ring_fd, 0, (uint64_t)(uintptr_t)first, 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		int rc = io_uring_submit(tx);
		if (rc < 0)
			return rc;
		/* A refused post would come back as a CQE: none is expected. */
		struct io_uring_cqe *cqe;
		if (io_uring_peek_cqe(tx, &cqe) == 0)
			return cqe->res < 0 ? cqe->res : -EPROTO;
		(*sent)++;
	}
	return 0;
}

int ring_post_run(long n, long warm, int k, double *per_s, double *cpu_ns)
{
	struct rp_run r = {.total = n, .warm = warm, .k = k};
	struct io_uring tx;
	pthread_t cons;
	long sent = 0;
	int rc;

	r.nodes = calloc((size_t)(n + warm), sizeof(*r.nodes));
	if (!r.nodes)
		return -ENOMEM;
	if (pthread_create(&cons, NULL, consume, &r) != 0) {
		free(r.nodes);
		return -EAGAIN;
	}
	while (!atomic_load(&r.rx_ready))
		sched_yield();
	rc = atomic_load(&r.rx_ready) < 0 ? atomic_load(&r.rx_ready) : 0;
	if (rc == 0) {
		/* The producer runs on this thread, pinned to CPU 0 for the run. */
		cpu_set_t old;
		pthread_getaffinity_np(pthread_self(), sizeof(old), &old);
		mq_pin_self(0);
		rc = ring_init(&tx);
		if (rc == 0) {
			rc = produce(&r, &tx, 0, warm, &sent);
			while (rc == 0 && !atomic_load(&r.warm_done))
				if (atomic_load(&r.abort))
					rc = -EIO;
				else
					sched_yield();
			r.t0 = bench_now();
			r.c0 = bench_cpu();
			if (rc == 0)
				rc = produce(&r, &tx, warm, warm + n, &sent);
			io_uring_queue_exit(&tx);
		}
		pthread_setaffinity_np(pthread_self(), sizeof(old), &old);
		if (rc < 0)
			atomic_store(&r.abort, 1);
	}
	pthread_join(cons, NULL);
	int64_t c1 = bench_cpu();
	free(r.nodes);
	if (atomic_load(&r.err))
		rc = atomic_load(&r.err);
	if (rc == 0) {
		*per_s = (double)n * 1e9 / (double)(r.t_end - r.t0);
		*cpu_ns = (double)(c1 - r.c0) / (double)n;
	}
	return rc;
}
