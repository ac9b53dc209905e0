/*
 * A worker's io_uring: set-up with the best flags this kernel takes, SQE allocation that
 * never fails (a full SQ is submitted and retried), the one place the worker enters the
 * kernel, and reaping. Submitting, reaping and sleeping happen in rotor__ring_enter only.
 */
#include "ring.h"
#include "log.h"
#include "runtime.h"
#include "sanitize.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

_Atomic int rotor__fault_ring_setup;
_Atomic int rotor__fault_no_msg_ring;

static void explain_setup_error(const struct rotor_runtime *rt, int err)
{
	if (err == -ENOSYS) {
		rotor__log(rt, ROTOR_LOG_ERROR,
		           "rotor: io_uring_setup: function not implemented "
		           "(kernel built without CONFIG_IO_URING)");
	} else if (err == -EPERM) {
		int v = -1;
		FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
		if (f) {
			if (fscanf(f, "%d", &v) != 1)
				v = -1;
			fclose(f);
		}
		rotor__log(rt, ROTOR_LOG_ERROR,
		           "rotor: io_uring_setup: operation not permitted: io_uring is disabled "
		           "by sysctl kernel.io_uring_disabled=%d (0 allows it for everyone, 1 for "
		           "members of kernel.io_uring_group and root)",
		           v);
	} else if (err == -ENOMEM) {
		rotor__log(rt, ROTOR_LOG_ERROR,
		           "rotor: io_uring_setup: cannot allocate memory for the ring "
		           "(memory cgroup or RLIMIT_MEMLOCK on kernels before 5.12)");
	} else {
		rotor__log(rt, ROTOR_LOG_ERROR, "rotor: io_uring_setup: %s", strerror(-err));
	}
}

/* 1 if the ring takes IORING_OP_MSG_RING, 0 if not, or -errno when the probe itself failed
 * (liburing's io_uring_get_probe_ring says NULL for both, and no memory is no old kernel). */
static int have_msg_ring(struct rotor__worker *w)
{
	size_t len = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
	struct io_uring_probe *probe = rotor__calloc(ROTOR__FAULT_RING_PROBE, 1, len);
	if (!probe)
		return -ENOMEM;
	int r = io_uring_register_probe(&w->ring, probe, 256);
	if (r == 0)
		r = io_uring_opcode_supported(probe, IORING_OP_MSG_RING) &&
		    !atomic_load(&rotor__fault_no_msg_ring);
	else if (r == -EINVAL)
		r = 0; /* no probe before Linux 5.6, and no MSG_RING either */
	rotor__free(ROTOR__FAULT_RING_PROBE, probe);
	return r;
}

int rotor__ring_init(struct rotor__worker *w)
{
	const struct rotor_config *cfg = &w->rt->cfg;
	unsigned sq = cfg->sq_entries ? cfg->sq_entries : 256;
	unsigned cq = cfg->cq_entries ? cfg->cq_entries : 4 * sq;
	if (cq < sq)
		cq = sq;
	unsigned want = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
	                IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SINGLE_ISSUER |
	                IORING_SETUP_DEFER_TASKRUN;
	if (cfg->flags & ROTOR_NO_DEFER_TASKRUN)
		want &= ~IORING_SETUP_DEFER_TASKRUN;
	if (cfg->flags & ROTOR_NO_SINGLE_ISSUER)
		want &= ~(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (cfg->flags & ROTOR_NO_COOP_TASKRUN)
		want &= ~(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
	/* Flags to give up, in this order, while the kernel says -EINVAL. */
	static const unsigned drop[] = {IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_SINGLE_ISSUER,
	                                IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	                                IORING_SETUP_SUBMIT_ALL, 0};
	int fault = atomic_load(&rotor__fault_ring_setup);
	int r = -EINVAL;
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = want | IORING_SETUP_CQSIZE;
		p.cq_entries = cq;
		r = fault;
		if (!r)
			r = ROTOR__FAULT_ERR(RING_SETUP,
			                     io_uring_queue_init_params(sq, &w->ring, &p));
		if (r == 0) {
			w->setup_flags = p.flags;
			w->features = p.features;
			break;
		}
		if (r != -EINVAL)
			break;
		want &= ~drop[i];
	}
	if (r < 0) {
		explain_setup_error(w->rt, r);
		return r;
	}
	w->ring_fd = w->ring.ring_fd;
	w->ring_ready = true;
	w->spin_typical = (int64_t)cfg->spin_us * 1000 / 4; /* a first poll of the full length */
	/* Enter through a registered ring fd (5.18): the kernel skips a file lookup and its
	 * reference count on every io_uring_enter. Optional: the plain fd works everywhere. */
	if (!(cfg->flags & ROTOR_NO_RING_FD_REG) && !ROTOR__FAULT(RING_FD_REG))
		(void)io_uring_register_ring_fd(&w->ring);
	/* The one operation rotor cannot do without: tasks cross between workers as
	 * MSG_RINGs (Linux 5.18). Say so plainly rather than fail later. */
	r = have_msg_ring(w);
	if (r == 0) {
		rotor__log(w->rt, ROTOR_LOG_ERROR,
		           "rotor: io_uring on this kernel lacks IORING_OP_MSG_RING: rotor needs "
		           "Linux 5.18 or later (6.1 or later is supported)");
		r = -ENOSYS;
	}
	if (r < 0) {
		rotor__ring_fini(w);
		return r;
	}
	return 0;
}

void rotor__ring_fini(struct rotor__worker *w)
{
	if (w->ring_ready) {
		io_uring_queue_exit(&w->ring);
		w->ring_ready = false;
	}
}

/*
 * What an io_uring_enter returned. The transient errors (a signal, no memory for a request,
 * a CQ backlog) leave whatever was not submitted in the SQ, to go with the next enter (every
 * loop turn has one), and completions where they are: nothing is lost, so the caller just
 * goes on. -ETIME is a wait that timed out. Anything else means completions were dropped
 * (-EBADR) or the ring is unusable: corrupted state.
 */
static void enter_checked(struct rotor__worker *w, int r, const char *call)
{
	if (r >= 0 || r == -ETIME || rotor__enter_transient(r))
		return;
	ROTOR__PANIC("w%d: %s: %s", w->id, call, strerror(-r));
}

/* Submit the SQ without waiting, at fault site `site`; returns what io_uring_submit did. A
 * transient refusal leaves the SQEs for the next enter. */
static int ring_submit(struct rotor__worker *w, enum rotor__fault_site site)
{
	int r = ROTOR__FAULT_AT(site);
	if (!r)
		r = io_uring_submit(&w->ring);
	enter_checked(w, r, "io_uring_submit");
	return r;
}

struct io_uring_sqe *rotor__sqe(struct rotor__worker *w)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&w->ring))) {
		/* Full SQ is not an error: hand what we have to the kernel and retry (after a
		 * transient refusal, once another thread has had the CPU). */
		if (ring_submit(w, ROTOR__FAULT_ENTER_SQ_FULL) < 0)
			sched_yield();
		ROTOR__STAT_INC(w->stats.enters);
	}
	ROTOR__STAT_INC(w->stats.sqes);
	return sqe;
}

void rotor__cancel_op(struct rotor__worker *w, uint64_t ud)
{
	struct io_uring_sqe *sqe = rotor__sqe(w);
	io_uring_prep_cancel64(sqe, ud, 0);
	io_uring_sqe_set_data64(sqe, ROTOR__TAG_IGNORE);
}

/* Something for us: a CQE, or (TASKRUN_FLAG) task work such as a MSG_RING queued to a
 * DEFER_TASKRUN ring, which becomes a CQE when we enter. */
static bool ring_has_work(struct rotor__worker *w)
{
	return io_uring_cq_ready(&w->ring) ||
	       (IO_URING_READ_ONCE(*w->ring.sq.kflags) &
	        (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) ||
	       atomic_load_explicit(&w->inbox, memory_order_relaxed);
}

/*
 * Poll before sleeping. On a VM a sleeping thread's wake-up costs several microseconds of
 * CPU on both sides (an IPI through the hypervisor); a worker that polls a few microseconds
 * catches the next message or completion without it. Reads shared ring memory only: no
 * system call while spinning. Returns true when there is work.
 *
 * How long: the work that ends an idle spell tends to come after the same delay each time
 * (a peer's reply, a client's next request), so the poll lasts four times the running mean
 * of the polls that succeeded, at least 2 us and at most cfg.spin_us. Measured on the HTTP
 * example under wrk: 94% of polls succeed within 1 us, and the 4% that ran the full 20 us
 * and then slept anyway cost more CPU than every wake-up they saved (server CPU per request
 * 6.75 us polling 20 us, 6.15 without polling); a cross-worker ping-pong's replies come after
 * 2-4 us, so its polls keep their length (4.4 us round trips; 16.5 without polling).
 */
#define SPIN_MIN_NS 2000

static bool spin_for_work(struct rotor__worker *w, int64_t deadline)
{
	/* A first look before reading the clock: most spells end within it. */
	for (int i = 0; i < 32; i++) {
		if (ring_has_work(w)) {
			w->spin_typical -= w->spin_typical / 8;
			return true;
		}
		rotor__cpu_relax();
	}
	int64_t max = (int64_t)w->rt->cfg.spin_us * 1000;
	int64_t budget = 4 * w->spin_typical;
	if (budget < SPIN_MIN_NS)
		budget = SPIN_MIN_NS;
	if (budget > max)
		budget = max;
	int64_t start = rotor_now(), now = start;
	int64_t until = start + budget;
	if (until > deadline)
		until = deadline;
	while (now < until) {
		/* Let a thread that shares this CPU run (it may be the one about to post
		 * to us); with nobody else runnable this returns at once. */
		sched_yield();
		for (int i = 0; i < 32; i++) {
			if (ring_has_work(w)) {
				w->spin_typical += (rotor_now() - start - w->spin_typical) / 8;
				return true;
			}
			rotor__cpu_relax();
		}
		now = rotor_now();
	}
	/* A poll that ran out says nothing about the typical delay: the mean stays. */
	return false;
}

/*
 * Valgrind before 3.23 holds its big lock across io_uring_enter (it does not know the call
 * may block: valgrind bug 428364), so a worker sleeping in the ring stops every other
 * thread, including the one that would wake it. Under valgrind a worker waits in poll(2),
 * which valgrind does release, at most 1 ms at a time: a MSG_RING queued to a
 * DEFER_TASKRUN ring does not wake a poller.
 */
static void valgrind_wait(struct rotor__worker *w, int64_t deadline)
{
	int r = io_uring_submit_and_get_events(&w->ring);
	enter_checked(w, r, "io_uring_submit_and_get_events");
	if (io_uring_cq_ready(&w->ring))
		return;
	if (deadline == ROTOR_FOREVER || deadline > rotor_now()) {
		struct pollfd p = {.fd = w->ring_fd, .events = POLLIN};
		(void)poll(&p, 1, 1);
	}
	r = io_uring_submit_and_get_events(&w->ring);
	enter_checked(w, r, "io_uring_submit_and_get_events");
}

bool rotor__ring_poll(struct rotor__worker *w, int64_t deadline)
{
	/* What we have gathered must reach the kernel before we poll for answers. */
	if (io_uring_sq_ready(&w->ring))
		ring_submit(w, ROTOR__FAULT_ENTER_PRESPIN);
	ROTOR__STAT_INC(w->stats.polls);
	if (!spin_for_work(w, deadline))
		return false;
	ROTOR__STAT_INC(w->stats.polls_won);
	return true;
}

void rotor__ring_enter(struct rotor__worker *w, bool block, int64_t deadline)
{
	int64_t now = block && deadline != ROTOR_FOREVER ? rotor_now() : 0;
	/* A transient failure of the enter is as if it had returned at once: what it did not
	 * submit goes with the next turn's enter (enter_checked). */
	int r;
	if (!block && !io_uring_sq_ready(&w->ring) &&
	    (w->setup_flags & IORING_SETUP_TASKRUN_FLAG) &&
	    !(IO_URING_READ_ONCE(*w->ring.sq.kflags) &
	      (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) {
		/* Busy, nothing to submit, and the kernel says it holds no work for us (it sets
		 * SQ_TASKRUN when it queues a completion or message as task work): the CQEs
		 * already posted are all there is, and an enter would only cost a system call
		 * (half the enters of a depth-1 file read loop). */
	} else if (!block || (deadline != ROTOR_FOREVER && deadline <= now)) {
		/* Busy: no wait, but always GETEVENTS, or a DEFER_TASKRUN ring never turns the
		 * messages queued to it into completions. */
		ROTOR__STAT_INC(w->stats.enters);
		r = ROTOR__FAULT_ERR(ENTER_PEEK, io_uring_submit_and_get_events(&w->ring));
		enter_checked(w, r, "io_uring_submit_and_get_events");
	} else if (ROTOR__UNLIKELY(ROTOR__ON_VALGRIND())) {
		ROTOR__STAT_INC(w->stats.enters);
		ROTOR__STAT_INC(w->stats.sleeps);
		valgrind_wait(w, deadline);
	} else if (deadline == ROTOR_FOREVER) {
		ROTOR__STAT_INC(w->stats.enters);
		ROTOR__STAT_INC(w->stats.sleeps);
		r = ROTOR__FAULT_ERR(ENTER_WAIT, io_uring_submit_and_wait(&w->ring, 1));
		enter_checked(w, r, "io_uring_submit_and_wait");
	} else {
		struct __kernel_timespec ts;
		int64_t d = deadline - now;
		ts.tv_sec = d / 1000000000;
		ts.tv_nsec = d % 1000000000;
		struct io_uring_cqe *cqe;
		ROTOR__STAT_INC(w->stats.enters);
		ROTOR__STAT_INC(w->stats.sleeps);
		r = ROTOR__FAULT_ERR(
		    ENTER_TIMEOUT, io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL));
		enter_checked(w, r, "io_uring_submit_and_wait_timeout");
	}
}
