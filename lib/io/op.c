/*
 * Operations. Each call prepares one SQE whose user_data is an operation record on the
 * calling task's stack, and suspends until that SQE's CQE. The record is safe because the
 * task resumes only from that CQE: a deadline (a user-space timer) and cancelling the task
 * both submit an ASYNC_CANCEL and keep waiting for the operation's own CQE. The cancel's
 * CQE carries no pointer (TAG_IGNORE).
 *
 * Started operations: a send whose SQE goes in now and whose result the task collects later,
 * going on meanwhile. The record is on the heap (the task's stack moves on), owned by one
 * worker; its CQE only records the result, and wakes the task if it waits by then. Like
 * every wait here, one that times out or is cancelled cancels the operation in the kernel
 * and ends only with the operation's own CQE: the kernel has let go of the buffer by then.
 * Records live in a type-stable pool (core/handle.h): a handle used after rotor_op_destroy
 * gets -EINVAL, even once its slot holds another operation.
 */
#include "io.h"

#include <errno.h>
#include <sys/socket.h>

/* ---- one operation, waited for now ---- */

struct io_wait {
	struct rotor__op op;
	bool cancelled; /* the task was cancelled: an ASYNC_CANCEL went in */
	bool timed_out; /* the deadline passed: an ASYNC_CANCEL went in */
};

static void io_cancel_op(struct rotor__worker *w, struct io_wait *iw)
{
	rotor__cancel_op(w, rotor__tag(&iw->op, ROTOR__TAG_OP));
	/* The task stays suspended: the operation's own CQE resumes it. */
}

static void io_cancel(struct rotor_task *t)
{
	struct io_wait *iw = rotor__task_wait_obj(t);
	iw->cancelled = true;
	io_cancel_op(rotor__worker_self(), iw);
}

static void io_deadline(struct rotor_task *t)
{
	struct io_wait *iw = rotor__task_wait_obj(t);
	iw->timed_out = true;
	io_cancel_op(rotor__worker_self(), iw);
}

/* Valgrind: the kernel filled the first n bytes of the vector (internal.h). */
void rotor__io_wrote_iov(const struct iovec *iov, size_t cnt, int n)
{
	for (size_t i = 0; i < cnt && n > 0; i++) {
		size_t k = iov[i].iov_len < (size_t)n ? iov[i].iov_len : (size_t)n;
		ROTOR__KERNEL_WROTE(iov[i].iov_base, k);
		n -= (int)k;
	}
}

/* Begin an operation: the calling task's worker, or NULL with *err set. */
struct rotor__worker *rotor__io_begin(int *err)
{
	return rotor__wait_begin(err) ? rotor__worker_self() : NULL;
}

/*
 * Submit sqe (prepared) with a deadline and wait for its CQE. The deadline is a user-space
 * timer, not a linked timeout: a linked timeout arms and disarms a kernel hrtimer on every
 * operation (12% of the HTTP example's CPU in perf), while deadlines that almost never fire
 * cost a list append and unlink here. When one fires, the operation is cancelled like a
 * cancelled task's, and its own CQE (-ECANCELED) still resumes us.
 */
int rotor__io_run(struct rotor__worker *w, struct io_uring_sqe *sqe, int64_t deadline)
{
	struct io_wait iw = {.op = {.task = rotor__task_self()}};
	io_uring_sqe_set_data64(sqe, rotor__tag(&iw.op, ROTOR__TAG_OP));
	rotor__task_wait(w, &iw, io_cancel, io_deadline, deadline);
	int r = iw.op.res;
	if (r == -ECANCELED && iw.timed_out && !iw.cancelled)
		r = -ETIMEDOUT;
	/* A task cancelled while the operation completed anyway keeps the result. */
	return r;
}

/* ---- started operations ---- */

struct rotor_op {
	struct rotor__multi multi; /* first: the completion (TAG_MULTI) */
	struct rotor__worker *w;
	struct rotor_task *waiter; /* a task in rotor_op_wait or rotor_op_destroy */
	int res;
	bool started;   /* started and its result not yet collected */
	bool inflight;  /* its CQE has not arrived */
	bool cancelled; /* the waiting task was cancelled: an ASYNC_CANCEL went in */
	bool timed_out; /* the wait's deadline passed: an ASYNC_CANCEL went in */
};

static void op_complete(struct rotor__worker *w, struct rotor__multi *m, struct io_uring_cqe *cqe)
{
	struct rotor_op *op = rotor__container_of(m, struct rotor_op, multi);
	op->res = cqe->res;
	op->inflight = false;
	struct rotor_task *t = op->waiter;
	if (t) {
		op->waiter = NULL;
		rotor__task_end_wait(w, t, 0);
	}
}

static void op_cancel_in_kernel(struct rotor_op *op)
{
	rotor__cancel_op(op->w, rotor__tag(&op->multi, ROTOR__TAG_MULTI));
}

static void op_cancel(struct rotor_task *t)
{
	struct rotor_op *op = rotor__task_wait_obj(t);
	op->cancelled = true;
	op_cancel_in_kernel(op); /* the task stays suspended: the operation's CQE resumes it */
}

static void op_deadline(struct rotor_task *t)
{
	struct rotor_op *op = rotor__task_wait_obj(t);
	if (!op->inflight)
		return; /* completed in this same turn: the result stands */
	op->timed_out = true;
	op_cancel_in_kernel(op);
}

static struct rotor__pool ops = ROTOR__POOL_INIT(struct rotor_op, OP);

/* The operation handle h names when the calling task may use it now (*w its worker), else
 * NULL with *err set. Inlined: it is on every send's path. */
static inline __attribute__((always_inline)) struct rotor_op *
op_owned(struct rotor_op *h, struct rotor__worker **w, int *err)
{
	*w = rotor__worker_self();
	struct rotor_op *op = rotor__handle_get(&ops, h);
	*err = !*w || !rotor__task_self() ? -EPERM
	       : !op                      ? -EINVAL
	       : op->w != *w              ? -EPERM
	       : op->waiter               ? -EBUSY
	                                  : 0;
	return *err ? NULL : op;
}

int rotor_op_create(struct rotor_op **out)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w)
		return -EPERM;
	if (!out)
		return -EINVAL;
	struct rotor_op *op = rotor__pool_alloc(&ops);
	if (!op)
		return -ENOMEM;
	op->multi.complete = op_complete;
	op->w = w;
	*out = rotor__handle_of(op);
	return 0;
}

int rotor_send_start(struct rotor_op *h, int fd, const void *buf, size_t len, int flags)
{
	int err;
	struct rotor__worker *w;
	struct rotor_op *op = op_owned(h, &w, &err);
	if (!op)
		return err;
	if (op->started)
		return -EBUSY;
	if (rotor__task_cancelled(rotor__task_self()))
		return -ECANCELED;
	int kfd;
	bool fixed;
	if ((err = rotor__fd_kernel(w, fd, &kfd, &fixed)) < 0)
		return err;
	/* Not submitted here: it goes with the worker's next enter, batched with the rest. */
	struct io_uring_sqe *sqe = rotor__sqe(w);
	io_uring_prep_send(sqe, kfd, buf, rotor__io_len(len), flags | MSG_NOSIGNAL);
	if (fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, rotor__tag(&op->multi, ROTOR__TAG_MULTI));
	op->started = op->inflight = true;
	op->cancelled = op->timed_out = false;
	return 0;
}

ssize_t rotor_op_wait(struct rotor_op *h, int64_t deadline)
{
	int err;
	struct rotor__worker *w;
	struct rotor_op *op = op_owned(h, &w, &err);
	if (!op)
		return err;
	if (!op->started)
		return -EINVAL;
	struct rotor_task *t = rotor__task_self();
	if (op->inflight && rotor__task_cancelled(t)) {
		/* Cancelled before it waits: no new wait, but the buffer must come back first. */
		op->cancelled = true;
		op_cancel_in_kernel(op);
		deadline = ROTOR_FOREVER;
	}
	while (op->inflight) {
		op->waiter = t;
		rotor__task_wait(w, op, op->cancelled ? NULL : op_cancel,
		                 op->cancelled ? NULL : op_deadline, deadline);
	}
	op->started = false;
	int r = op->res;
	if (r == -ECANCELED && op->timed_out && !op->cancelled)
		r = -ETIMEDOUT;
	return r;
}

int rotor_op_destroy(struct rotor_op *h)
{
	int err;
	struct rotor__worker *w;
	struct rotor_op *op = op_owned(h, &w, &err);
	if (!op)
		return err;
	if (op->inflight) {
		op_cancel_in_kernel(op);
		while (op->inflight) {
			op->waiter = rotor__task_self();
			rotor__task_wait(w, NULL, NULL, NULL, ROTOR_FOREVER);
		}
	}
	rotor__pool_free(op);
	return 0;
}
