/*
 * Socket calls, the TCP helpers that need no name (port, steering) and the multishot acceptor.
 * Each call prepares one SQE and waits for its CQE through the operation wait (op.c).
 */
#include "io.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int rotor_socket(int domain, int type, int protocol, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP(w, err, sqe);
	io_uring_prep_socket(sqe, domain, type | SOCK_CLOEXEC, protocol, 0);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
	int err;
	if (!addr)
		return -EINVAL;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_connect(sqe, kfd, addr, len);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_accept(sqe, kfd, addr, len, flags | SOCK_CLOEXEC);
	ROTOR__IO_FIXED(sqe, kfd);
	int r = rotor__io_run(w, sqe, deadline);
	if (r >= 0 && addr && len) {
		ROTOR__KERNEL_WROTE(len, sizeof(*len));
		ROTOR__KERNEL_WROTE(addr, *len);
	}
	return r;
}

ssize_t rotor_recv(int fd, void *buf, size_t len, int flags, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_recv(sqe, kfd, buf, rotor__io_len(len), flags);
	ROTOR__IO_FIXED(sqe, kfd);
	int r = rotor__io_run(w, sqe, deadline);
	if (r > 0)
		ROTOR__KERNEL_WROTE(buf, (size_t)r);
	return r;
}

ssize_t rotor_send(int fd, const void *buf, size_t len, int flags, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_send(sqe, kfd, buf, rotor__io_len(len), flags | MSG_NOSIGNAL);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

ssize_t rotor_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline)
{
	int err;
	if (!msg)
		return -EINVAL;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_recvmsg(sqe, kfd, msg, (unsigned)flags);
	ROTOR__IO_FIXED(sqe, kfd);
	int r = rotor__io_run(w, sqe, deadline);
	if (r >= 0) {
		rotor__io_wrote_iov(msg->msg_iov, msg->msg_iovlen, r);
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
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_sendmsg(sqe, kfd, msg, (unsigned)flags | MSG_NOSIGNAL);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_shutdown(int fd, int how, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_shutdown(sqe, kfd, how);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

/* ---- TCP helpers (rotor_tcp_listen and rotor_tcp_dial: service/tcp.c) ---- */

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
	int cpu = rotor__worker_cpu(w);
	if (cpu < 0)
		return -EINVAL;
	if (setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof(cpu)) < 0)
		return -errno;
	return cpu;
}

/* ---- multishot accept ----
 * Acceptors live in a type-stable pool (core/handle.h): a handle used after
 * rotor_acceptor_destroy gets -EINVAL, even once its slot holds another acceptor. */

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

static struct rotor__pool acceptors = ROTOR__POOL_INIT(struct rotor_acceptor, ACCEPTOR);

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

static void acceptor_timeout(struct rotor_task *t)
{
	struct rotor_acceptor *a = rotor__task_wait_obj(t);
	acceptor_wake(a->w, a, -ETIMEDOUT);
}

static void acceptor_cancel(struct rotor_task *t)
{
	struct rotor_acceptor *a = rotor__task_wait_obj(t);
	acceptor_wake(a->w, a, -ECANCELED);
}

int rotor_acceptor_create(int listen_fd, struct rotor_acceptor **out)
{
	int err;
	struct rotor__worker *w = rotor__io_begin(&err);
	if (!w)
		return err;
	if (!out || listen_fd < 0)
		return -EINVAL;
	struct rotor_acceptor *a = rotor__pool_alloc(&acceptors);
	if (!a)
		return -ENOMEM;
	a->cap = 256;
	a->ready = rotor__malloc(ROTOR__FAULT_ACCEPTOR_READY, sizeof(int) * a->cap);
	if (!a->ready) {
		rotor__pool_free(a);
		return -ENOMEM;
	}
	a->multi.complete = acceptor_complete;
	a->w = w;
	a->fd = listen_fd;
	acceptor_arm(a);
	*out = rotor__handle_of(a);
	return 0;
}

int rotor_acceptor_next(struct rotor_acceptor *h, int64_t deadline)
{
	int err;
	struct rotor__worker *w = rotor__io_begin(&err);
	if (!w)
		return err;
	struct rotor_acceptor *a = rotor__handle_get(&acceptors, h);
	if (!a)
		return -EINVAL;
	if (a->w != w)
		return -EPERM;
	if (a->waiter)
		return -EBUSY;
	struct rotor_task *t = rotor__task_self();
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

int rotor_acceptor_destroy(struct rotor_acceptor *h)
{
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *t = w ? rotor__task_self() : NULL;
	if (!t)
		return -EPERM;
	struct rotor_acceptor *a = rotor__handle_get(&acceptors, h);
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
			rotor__task_wait(w, NULL, NULL, NULL, ROTOR_FOREVER);
		}
	}
	for (unsigned i = 0; i < a->count; i++)
		close(a->ready[(a->head + i) % a->cap]);
	rotor__free(ROTOR__FAULT_ACCEPTOR_READY, a->ready);
	rotor__pool_free(a);
	return 0;
}
