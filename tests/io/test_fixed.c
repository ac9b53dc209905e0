/*
 * Registered descriptors (rotor_fd_register): every fd-taking I/O call works with one, a
 * receive stream too; rotor_close drops it (also from a cancelled task); another worker's
 * tasks and system calls cannot use it by accident; misuse gets -EBADF.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rotor.h>

#include "check.h"

#define F ROTOR_FOREVER

static int pair_fixed[2];

static void *use_elsewhere(void *arg)
{
	char c;
	CHECK(rotor_recv(pair_fixed[0], &c, 1, 0, F) == -EBADF);
	CHECK(rotor_send(pair_fixed[0], "x", 1, 0, F) == -EBADF);
	CHECK(rotor_close(pair_fixed[0], F) == -EBADF);
	return arg;
}

static void *sockets_main(void *arg)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	for (int i = 0; i < 2; i++) {
		pair_fixed[i] = rotor_fd_register(sv[i]);
		CHECK(pair_fixed[i] >= 0 && (pair_fixed[i] & ROTOR_FIXED_FD));
		close(sv[i]); /* the table keeps the socket open */
	}
	CHECK(pair_fixed[0] != pair_fixed[1]);
	CHECK(rotor_send(pair_fixed[0], "ping", 4, 0, F) == 4);
	char buf[8] = {0};
	CHECK(rotor_recv(pair_fixed[1], buf, sizeof(buf), 0, F) == 4 && !memcmp(buf, "ping", 4));
	struct iovec iov = {"msg!", 4};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	CHECK(rotor_sendmsg(pair_fixed[1], &mh, 0, F) == 4);
	CHECK(rotor_poll(pair_fixed[0], POLLIN, rotor_now() + SEC) > 0);
	/* A receive stream on a registered descriptor. */
	struct rotor_bufring *br;
	CHECK(rotor_bufring_create(4, 64, &br) == 0);
	struct rotor_recv_stream *rs;
	CHECK(rotor_recv_stream_create(pair_fixed[0], br, &rs) == 0);
	const void *data;
	CHECK(rotor_recv_stream_next(rs, &data, rotor_now() + SEC) == 4 &&
	      !memcmp(data, "msg!", 4));
	CHECK(rotor_recv_stream_next(rs, &data, rotor_now() + 10 * MS) == -ETIMEDOUT);
	/* Another worker's task: -EBADF, not that worker's slot of the same number. */
	struct rotor_task *t = spawn_on(1, use_elsewhere, NULL);
	CHECK(rotor_join(t, NULL) == 0);
	CHECK(rotor_shutdown(pair_fixed[1], SHUT_WR, F) == 0);
	CHECK(rotor_recv_stream_next(rs, &data, rotor_now() + SEC) == 0);
	CHECK(rotor_recv_stream_destroy(rs) == 0);
	CHECK(rotor_bufring_destroy(br) == 0);
	CHECK(rotor_close(pair_fixed[0], F) == 0);
	CHECK(rotor_close(pair_fixed[1], F) == 0);
	CHECK(rotor_send(pair_fixed[0], "x", 1, 0, F) == -EBADF); /* the slot is empty now */
	/* Misuse. */
	CHECK(rotor_fd_register(-1) == -EBADF);
	CHECK(rotor_fd_register(pair_fixed[0]) == -EBADF);
	return arg;
}

Test(fixed, socket_calls_and_streams_on_registered_descriptors)
{
	cr_assert_eq(rotor_fd_register(0), -EPERM); /* not on a task */
	run_checked(2, sockets_main, NULL);
}

static char path[64];

static void *files_main(void *arg)
{
	int fd = rotor_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600, F);
	CHECK(fd >= 0);
	int ffd = rotor_fd_register(fd);
	CHECK(ffd >= 0);
	CHECK(rotor_close(fd, F) == 0);
	CHECK(rotor_write(ffd, "hello world", 11, 0, F) == 11);
	CHECK(rotor_fsync(ffd, 1, F) == 0);
	CHECK(rotor_fallocate(ffd, 0, 0, 4096, F) == 0);
	char buf[16] = {0};
	CHECK(rotor_read(ffd, buf, 5, 6, F) == 5 && !memcmp(buf, "world", 5));
	char a[5], b[6];
	struct iovec rv[2] = {{a, 5}, {b, 6}};
	CHECK(rotor_readv(ffd, rv, 2, 0, F) == 11 && !memcmp(a, "hello", 5));
	/* splice from a registered file into a registered pipe end, and out of it. */
	int p[2];
	CHECK(pipe(p) == 0);
	int fp1 = rotor_fd_register(p[1]);
	CHECK(fp1 >= 0);
	CHECK(rotor_splice(ffd, 0, fp1, -1, 11, 0, F) == 11);
	CHECK(read(p[0], buf, sizeof(buf)) == 11 && !memcmp(buf, "hello world", 11));
	CHECK(rotor_close(fp1, F) == 0);
	close(p[0]);
	close(p[1]);
	CHECK(rotor_close(ffd, F) == 0);
	CHECK(rotor_read(ffd, buf, 1, 0, F) == -EBADF);
	return arg;
}

Test(fixed, file_calls_and_splice_on_registered_descriptors)
{
	snprintf(path, sizeof(path), "/tmp/rotor-fixed-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	run_checked(1, files_main, NULL);
	unlink(path);
}

static atomic_int closed_rc = 1;

static void *close_when_cancelled(void *arg)
{
	int ffd = (int)(intptr_t)arg;
	task_begins();
	char c;
	CHECK(rotor_recv(ffd, &c, 1, 0, F) == -ECANCELED);
	/* Clean-up in a cancelled task still drops the registration. */
	atomic_store(&closed_rc, rotor_close(ffd, F));
	return NULL;
}

static void *cancelled_main(void *arg)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	int ffd = rotor_fd_register(sv[0]);
	CHECK(ffd >= 0);
	struct rotor_task *t;
	CHECK(rotor_spawn(close_when_cancelled, (void *)(intptr_t)ffd, &t) == 0);
	settle(1);
	CHECK(rotor_cancel(t) == 0);
	CHECK(rotor_join(t, NULL) == -ECANCELED);
	CHECK(atomic_load(&closed_rc) == 0);
	CHECK(rotor_send(ffd, "x", 1, 0, F) == -EBADF);
	close(sv[0]);
	close(sv[1]);
	return arg;
}

Test(fixed, a_cancelled_task_closes_a_registered_descriptor)
{
	run_checked(1, cancelled_main, NULL);
}
