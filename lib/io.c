/*
 * I/O operations. Each call prepares one SQE whose user_data is an operation record on the
 * calling task's stack, and suspends until that SQE's CQE. The record is safe because the
 * task resumes only from that CQE: a deadline (a user-space timer) and cancelling the task
 * both submit an ASYNC_CANCEL and keep waiting for the operation's own CQE. The cancel's
 * CQE carries no pointer (TAG_IGNORE).
 */
#include "runtime.h"
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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
	struct io_wait *iw = t->wait_obj;
	iw->cancelled = true;
	io_cancel_op(rotor__worker_self(), iw);
}

static void io_deadline(struct rotor__timer *tm)
{
	struct rotor_task *t = rotor__container_of(tm, struct rotor_task, tmr);
	struct io_wait *iw = t->wait_obj;
	/* Completed in this same turn, not resumed yet: the result stands. */
	if (t->state == ROTOR__T_READY)
		return;
	iw->timed_out = true;
	io_cancel_op(rotor__worker_self(), iw);
}

/* Valgrind: the kernel filled the first n bytes of the vector (internal.h). */
static void wrote_iov(const struct iovec *iov, size_t cnt, int n)
{
	for (size_t i = 0; i < cnt && n > 0; i++) {
		size_t k = iov[i].iov_len < (size_t)n ? iov[i].iov_len : (size_t)n;
		ROTOR__KERNEL_WROTE(iov[i].iov_base, k);
		n -= (int)k;
	}
}

/* Begin an operation: the calling task's worker, or NULL with *err set. */
static struct rotor__worker *io_begin(int *err)
{
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *t = w ? w->current : NULL;
	if (!t) {
		*err = -EPERM;
		return NULL;
	}
	if (t->flags & ROTOR__TF_CANCELLED) {
		*err = -ECANCELED;
		return NULL;
	}
	return w;
}

/*
 * Submit sqe (prepared) with a deadline and wait for its CQE. The deadline is a user-space
 * timer, not a linked timeout: a linked timeout arms and disarms a kernel hrtimer on every
 * operation (12% of the HTTP example's CPU in perf), while deadlines that almost never fire
 * cost a list append and unlink here. When one fires, the operation is cancelled like a
 * cancelled task's, and its own CQE (-ECANCELED) still resumes us.
 */
static int io_run(struct rotor__worker *w, struct io_uring_sqe *sqe, int64_t deadline)
{
	struct rotor_task *t = w->current;
	struct io_wait iw = {.op = {.task = t}};
	io_uring_sqe_set_data64(sqe, rotor__tag(&iw.op, ROTOR__TAG_OP));
	rotor__task_wait(w, &iw, io_cancel, io_deadline, deadline);
	int r = iw.op.res;
	if (r == -ECANCELED && iw.timed_out && !iw.cancelled)
		r = -ETIMEDOUT;
	/* A task cancelled while the operation completed anyway keeps the result. */
	return r;
}

#define IO_PREP(w, err, sqe)                                                                       \
	struct rotor__worker *w = io_begin(&err);                                                  \
	if (!w)                                                                                    \
		return err;                                                                        \
	struct io_uring_sqe *sqe = rotor__sqe(w)

/* ---- registered descriptors ----
 * ROTOR_FIXED_FD | worker << FIXED_WORKER_SHIFT | slot: a slot of one worker's table, which
 * the kernel allocates (IORING_FILE_INDEX_ALLOC). The worker is in the value so that another
 * worker's task gets -EBADF instead of whatever that worker keeps in the same slot. */
#define FIXED_WORKER_SHIFT 20
#define FIXED_SLOT_MASK    ((1u << FIXED_WORKER_SHIFT) - 1)
#define FIXED_TABLE_MAX    65536u

int rotor__fd_kernel(struct rotor__worker *w, int fd, int *kfd, bool *fixed)
{
	*kfd = fd;
	*fixed = false;
	if (fd < 0 || !(fd & ROTOR_FIXED_FD))
		return 0;
	if (((unsigned)fd & ~(unsigned)ROTOR_FIXED_FD) >> FIXED_WORKER_SHIFT != (unsigned)w->id ||
	    !w->files_table)
		return -EBADF;
	*kfd = (int)((unsigned)fd & FIXED_SLOT_MASK);
	*fixed = true;
	return 0;
}

/* IO_PREP for a call on descriptor fd: kfd is what goes in the SQE; IO_FIXED after the prep
 * (which clears sqe->flags) marks a registered one. */
#define IO_PREP_FD(w, err, sqe, fd, kfd)                                                           \
	struct rotor__worker *w = io_begin(&err);                                                  \
	if (!w)                                                                                    \
		return err;                                                                        \
	int kfd;                                                                                   \
	bool kfd##_fixed;                                                                          \
	if ((err = rotor__fd_kernel(w, fd, &kfd, &kfd##_fixed)) < 0)                               \
		return err;                                                                        \
	struct io_uring_sqe *sqe = rotor__sqe(w)
#define IO_FIXED(sqe, kfd)                                                                         \
	do {                                                                                       \
		if (kfd##_fixed)                                                                   \
			(sqe)->flags |= IOSQE_FIXED_FILE;                                          \
	} while (0)

static unsigned files_table_size(void)
{
	struct rlimit rl;
	unsigned n = FIXED_TABLE_MAX;
	/* The kernel refuses a table larger than RLIMIT_NOFILE. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
		n = (unsigned)rl.rlim_cur;
	return n;
}

int rotor_fd_register(int fd)
{
	int err;
	struct rotor__worker *w = io_begin(&err);
	if (!w)
		return err;
	if (fd < 0 || (fd & ROTOR_FIXED_FD))
		return -EBADF;
	if (!w->files_table) {
		/* Made on first use: most programs never register a descriptor. */
		int r = ROTOR__FAULT_ERR(
		    FILES_TABLE, io_uring_register_files_sparse(&w->ring, files_table_size()));
		if (r < 0)
			return r;
		w->files_table = true;
	}
	int fds[1] = {fd}; /* the kernel writes the slot it picked here */
	struct io_uring_sqe *sqe = rotor__sqe(w);
	io_uring_prep_files_update(sqe, fds, 1, (int)IORING_FILE_INDEX_ALLOC);
	int r = io_run(w, sqe, ROTOR_FOREVER);
	if (r < 0)
		return r;
	ROTOR__KERNEL_WROTE(fds, sizeof(fds));
	if (r != 1 || (unsigned)fds[0] > FIXED_SLOT_MASK)
		return -ENFILE;
	return (int)(ROTOR_FIXED_FD | (unsigned)w->id << FIXED_WORKER_SHIFT | (unsigned)fds[0]);
}

int rotor_open(const char *path, int flags, unsigned mode, int64_t deadline)
{
	int err;
	if (!path)
		return -EINVAL;
	IO_PREP(w, err, sqe);
	io_uring_prep_openat(sqe, AT_FDCWD, path, flags | O_CLOEXEC, mode);
	return io_run(w, sqe, deadline);
}

int rotor_close(int fd, int64_t deadline)
{
	/* Clean-up must work in a cancelled task: close at once rather than refuse. */
	struct rotor_task *t = rotor_current();
	if (t && (t->flags & ROTOR__TF_CANCELLED)) {
		struct rotor__worker *w = rotor__worker_self();
		int kfd;
		bool fixed;
		int r = rotor__fd_kernel(w, fd, &kfd, &fixed);
		if (r < 0 || !fixed)
			return r < 0 ? r : close(fd) < 0 ? -errno : 0;
		int none = -1;
		r = io_uring_register_files_update(&w->ring, (unsigned)kfd, &none, 1);
		return r < 0 ? r : 0;
	}
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	if (kfd_fixed)
		io_uring_prep_close_direct(sqe, (unsigned)kfd); /* drops the table's reference */
	else
		io_uring_prep_close(sqe, fd);
	return io_run(w, sqe, deadline);
}

ssize_t rotor_read(int fd, void *buf, size_t len, int64_t offset, int64_t deadline)
{
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_read(sqe, kfd, buf, rotor__io_len(len), (uint64_t)offset);
	IO_FIXED(sqe, kfd);
	int r = io_run(w, sqe, deadline);
	if (r > 0)
		ROTOR__KERNEL_WROTE(buf, (size_t)r);
	return r;
}

ssize_t rotor_write(int fd, const void *buf, size_t len, int64_t offset, int64_t deadline)
{
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_write(sqe, kfd, buf, rotor__io_len(len), (uint64_t)offset);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

ssize_t rotor_readv(int fd, const struct iovec *iov, int iovcnt, int64_t offset, int64_t deadline)
{
	int err;
	if (iovcnt < 0)
		return -EINVAL;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_readv(sqe, kfd, iov, (unsigned)iovcnt, (uint64_t)offset);
	IO_FIXED(sqe, kfd);
	int r = io_run(w, sqe, deadline);
	wrote_iov(iov, (size_t)iovcnt, r);
	return r;
}

ssize_t rotor_writev(int fd, const struct iovec *iov, int iovcnt, int64_t offset, int64_t deadline)
{
	int err;
	if (iovcnt < 0)
		return -EINVAL;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_writev(sqe, kfd, iov, (unsigned)iovcnt, (uint64_t)offset);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

int rotor_fsync(int fd, int datasync, int64_t deadline)
{
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_fsync(sqe, kfd, datasync ? IORING_FSYNC_DATASYNC : 0);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

int rotor_fallocate(int fd, int mode, int64_t offset, int64_t len, int64_t deadline)
{
	int err;
	if (offset < 0 || len <= 0)
		return -EINVAL;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_fallocate(sqe, kfd, mode, (uint64_t)offset, (uint64_t)len);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

int rotor_statx(const char *path, int flags, unsigned mask, struct statx *out, int64_t deadline)
{
	int err;
	if (!path || !out)
		return -EINVAL;
	IO_PREP(w, err, sqe);
	io_uring_prep_statx(sqe, AT_FDCWD, path, flags, mask, out);
	int r = io_run(w, sqe, deadline);
	if (r == 0)
		ROTOR__KERNEL_WROTE(out, sizeof(*out));
	return r;
}

int rotor_unlink(const char *path, int flags, int64_t deadline)
{
	int err;
	if (!path)
		return -EINVAL;
	IO_PREP(w, err, sqe);
	io_uring_prep_unlinkat(sqe, AT_FDCWD, path, flags);
	return io_run(w, sqe, deadline);
}

int rotor_rename(const char *oldpath, const char *newpath, unsigned flags, int64_t deadline)
{
	int err;
	if (!oldpath || !newpath)
		return -EINVAL;
	IO_PREP(w, err, sqe);
	io_uring_prep_renameat(sqe, AT_FDCWD, oldpath, AT_FDCWD, newpath, flags);
	return io_run(w, sqe, deadline);
}

int rotor_mkdir(const char *path, unsigned mode, int64_t deadline)
{
	int err;
	if (!path)
		return -EINVAL;
	IO_PREP(w, err, sqe);
	io_uring_prep_mkdirat(sqe, AT_FDCWD, path, mode);
	return io_run(w, sqe, deadline);
}

int rotor_socket(int domain, int type, int protocol, int64_t deadline)
{
	int err;
	IO_PREP(w, err, sqe);
	io_uring_prep_socket(sqe, domain, type | SOCK_CLOEXEC, protocol, 0);
	return io_run(w, sqe, deadline);
}

int rotor_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
	int err;
	if (!addr)
		return -EINVAL;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_connect(sqe, kfd, addr, len);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

int rotor_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, int64_t deadline)
{
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_accept(sqe, kfd, addr, len, flags | SOCK_CLOEXEC);
	IO_FIXED(sqe, kfd);
	int r = io_run(w, sqe, deadline);
	if (r >= 0 && addr && len) {
		ROTOR__KERNEL_WROTE(len, sizeof(*len));
		ROTOR__KERNEL_WROTE(addr, *len);
	}
	return r;
}

ssize_t rotor_recv(int fd, void *buf, size_t len, int flags, int64_t deadline)
{
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_recv(sqe, kfd, buf, rotor__io_len(len), flags);
	IO_FIXED(sqe, kfd);
	int r = io_run(w, sqe, deadline);
	if (r > 0)
		ROTOR__KERNEL_WROTE(buf, (size_t)r);
	return r;
}

ssize_t rotor_send(int fd, const void *buf, size_t len, int flags, int64_t deadline)
{
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_send(sqe, kfd, buf, rotor__io_len(len), flags | MSG_NOSIGNAL);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

ssize_t rotor_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline)
{
	int err;
	if (!msg)
		return -EINVAL;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_recvmsg(sqe, kfd, msg, (unsigned)flags);
	IO_FIXED(sqe, kfd);
	int r = io_run(w, sqe, deadline);
	if (r >= 0) {
		wrote_iov(msg->msg_iov, msg->msg_iovlen, r);
		ROTOR__KERNEL_WROTE(msg, sizeof(*msg)); /* name and control lengths, flags */
		if (msg->msg_name)
			ROTOR__KERNEL_WROTE(msg->msg_name, msg->msg_namelen);
		if (msg->msg_control)
			ROTOR__KERNEL_WROTE(msg->msg_control, msg->msg_controllen);
	}
	return r;
}

ssize_t rotor_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline)
{
	int err;
	if (!msg)
		return -EINVAL;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_sendmsg(sqe, kfd, msg, (unsigned)flags | MSG_NOSIGNAL);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

int rotor_shutdown(int fd, int how, int64_t deadline)
{
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_shutdown(sqe, kfd, how);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

int rotor_poll(int fd, unsigned events, int64_t deadline)
{
	int err;
	IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_poll_add(sqe, kfd, events);
	IO_FIXED(sqe, kfd);
	return io_run(w, sqe, deadline);
}

ssize_t rotor_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                     unsigned flags, int64_t deadline)
{
	int err, in;
	bool in_fixed;
	struct rotor__worker *w0 = io_begin(&err);
	if (!w0)
		return err;
	if ((err = rotor__fd_kernel(w0, fd_in, &in, &in_fixed)) < 0)
		return err;
	IO_PREP_FD(w, err, sqe, fd_out, out);
	io_uring_prep_splice(sqe, in, off_in, out, off_out, rotor__io_len(len),
	                     flags | (in_fixed ? SPLICE_F_FD_IN_FIXED : 0));
	IO_FIXED(sqe, out);
	return io_run(w, sqe, deadline);
}

int rotor_signal_wait(const int *signals, size_t n, int64_t deadline)
{
	int err;
	if (!signals || n == 0)
		return -EINVAL;
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < n; i++)
		if (sigaddset(&set, signals[i]) < 0)
			return -EINVAL;
	if (!io_begin(&err))
		return err;
	int fd = ROTOR__FAULT_SYS(SIGNALFD, signalfd(-1, &set, SFD_CLOEXEC));
	if (fd < 0)
		return -errno;
	struct signalfd_siginfo si;
	ssize_t got = rotor_read(fd, &si, sizeof(si), -1, deadline);
	close(fd);
	if (got < 0)
		return (int)got;
	return got == (ssize_t)sizeof(si) ? (int)si.ssi_signo : -EIO;
}

/* ---- TCP helpers ---- */

static int resolve(const char *host, int port, int passive, struct addrinfo **out)
{
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (port < 0 || port > 65535)
		return -EINVAL;
	int r = getaddrinfo(host && *host ? host : NULL, portstr, &hints, out);
	if (r == EAI_SYSTEM)
		return -errno;
	return r ? -EINVAL : 0;
}

int rotor_tcp_listen(const char *host, int port, int backlog, unsigned flags)
{
	struct addrinfo *ai;
	int r = resolve(host, port, 1, &ai);
	if (r < 0)
		return r;
	r = -EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if ((flags & ROTOR_TCP_REUSEPORT) &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
			r = -errno;
			close(fd);
			continue;
		}
		if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 ||
		    listen(fd, backlog > 0 ? backlog : 511) < 0) {
			r = -errno;
			close(fd);
			continue;
		}
		freeaddrinfo(ai);
		return fd;
	}
	freeaddrinfo(ai);
	return r;
}

int rotor_tcp_dial(const char *host, int port, int64_t deadline)
{
	int err;
	if (!io_begin(&err))
		return err;
	struct addrinfo *ai;
	int r = resolve(host, port, 0, &ai);
	if (r < 0)
		return r;
	r = -EHOSTUNREACH;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = rotor_socket(a->ai_family, SOCK_STREAM, 0, deadline);
		if (fd < 0) {
			r = fd;
			break;
		}
		r = rotor_connect(fd, a->ai_addr, a->ai_addrlen, deadline);
		if (r == 0) {
			freeaddrinfo(ai);
			return fd;
		}
		close(fd);
		if (r == -ETIMEDOUT || r == -ECANCELED)
			break;
	}
	freeaddrinfo(ai);
	return r;
}

int rotor_sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

int rotor_sock_steer(int fd)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w)
		return -EPERM;
	if (w->cpu < 0)
		return -EINVAL;
	if (setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &w->cpu, sizeof(w->cpu)) < 0)
		return -errno;
	return w->cpu;
}

/* ---- multishot accept ---- */

struct rotor_acceptor {
	struct rotor__multi multi; /* first: the completion's user_data points here */
	struct rotor__worker *w;
	int fd;
	bool armed;   /* a multishot accept is in the kernel */
	bool closing; /* destroy: cancel sent, waiting for the last completion */
	int error;    /* an error the accept ended with, for the next caller */
	int *ready;   /* fds accepted and not yet taken: a ring of cap entries */
	unsigned head, count, cap;
	struct rotor_task *waiter; /* next() or destroy() suspended on it */
	int64_t deadline;
};

static void acceptor_arm(struct rotor_acceptor *a)
{
	struct io_uring_sqe *sqe = rotor__sqe(a->w);
	io_uring_prep_multishot_accept(sqe, a->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, rotor__tag(&a->multi, ROTOR__TAG_MULTI));
	a->armed = true;
}

static void acceptor_wake(struct rotor__worker *w, struct rotor_acceptor *a, int res)
{
	struct rotor_task *t = a->waiter;
	if (!t)
		return;
	a->waiter = NULL;
	rotor__task_end_wait(w, t, res);
}

static void acceptor_complete(struct rotor__worker *w, struct rotor__multi *m,
                              struct io_uring_cqe *cqe)
{
	struct rotor_acceptor *a = rotor__container_of(m, struct rotor_acceptor, multi);
	if (!(cqe->flags & IORING_CQE_F_MORE))
		a->armed = false;
	if (cqe->res >= 0) {
		if (a->closing || a->count == a->cap) {
			/* Destroying, or a backlog nobody takes: do not hoard descriptors. */
			close(cqe->res);
		} else {
			a->ready[(a->head + a->count++) % a->cap] = cqe->res;
		}
	} else if (cqe->res != -ECANCELED || !a->closing) {
		a->error = cqe->res;
	}
	if (a->closing) {
		if (!a->armed)
			acceptor_wake(w, a, 0);
		return;
	}
	acceptor_wake(w, a, 0);
}

static void acceptor_timeout(struct rotor__timer *tm)
{
	struct rotor_task *t = rotor__container_of(tm, struct rotor_task, tmr);
	struct rotor_acceptor *a = t->wait_obj;
	acceptor_wake(a->w, a, -ETIMEDOUT);
}

static void acceptor_cancel(struct rotor_task *t)
{
	struct rotor_acceptor *a = t->wait_obj;
	acceptor_wake(a->w, a, -ECANCELED);
}

int rotor_acceptor_create(int listen_fd, struct rotor_acceptor **out)
{
	int err;
	struct rotor__worker *w = io_begin(&err);
	if (!w)
		return err;
	if (!out || listen_fd < 0)
		return -EINVAL;
	struct rotor_acceptor *a = rotor__calloc(ROTOR__FAULT_ACCEPTOR, 1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->cap = 256;
	a->ready = rotor__malloc(ROTOR__FAULT_ACCEPTOR_READY, sizeof(int) * a->cap);
	if (!a->ready) {
		rotor__free(ROTOR__FAULT_ACCEPTOR, a);
		return -ENOMEM;
	}
	a->multi.complete = acceptor_complete;
	a->w = w;
	a->fd = listen_fd;
	acceptor_arm(a);
	*out = a;
	return 0;
}

int rotor_acceptor_next(struct rotor_acceptor *a, int64_t deadline)
{
	int err;
	struct rotor__worker *w = io_begin(&err);
	if (!w)
		return err;
	if (!a)
		return -EINVAL;
	if (a->w != w)
		return -EPERM;
	if (a->waiter)
		return -EBUSY;
	struct rotor_task *t = w->current;
	for (;;) {
		if (a->count) {
			int fd = a->ready[a->head];
			a->head = (a->head + 1) % a->cap;
			a->count--;
			return fd;
		}
		if (a->error) {
			int e = a->error;
			a->error = 0;
			return e;
		}
		if (!a->armed)
			acceptor_arm(a);
		if (deadline != ROTOR_FOREVER && deadline <= rotor_now())
			return -ETIMEDOUT;
		a->waiter = t;
		int r = rotor__task_wait(w, a, acceptor_cancel, acceptor_timeout, deadline);
		if (r < 0)
			return r;
	}
}

int rotor_acceptor_destroy(struct rotor_acceptor *a)
{
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *t = w ? w->current : NULL;
	if (!t)
		return -EPERM;
	if (!a)
		return -EINVAL;
	if (a->w != w)
		return -EPERM;
	if (a->waiter)
		return -EBUSY;
	a->closing = true;
	if (a->armed) {
		/* The kernel may still post into it: cancel, then wait for its last CQE. */
		rotor__cancel_op(w, rotor__tag(&a->multi, ROTOR__TAG_MULTI));
		a->waiter = t;
		while (a->armed) {
			a->waiter = t;
			rotor__suspend(w);
		}
	}
	for (unsigned i = 0; i < a->count; i++)
		close(a->ready[(a->head + i) % a->cap]);
	rotor__free(ROTOR__FAULT_ACCEPTOR_READY, a->ready);
	rotor__free(ROTOR__FAULT_ACCEPTOR, a);
	return 0;
}
