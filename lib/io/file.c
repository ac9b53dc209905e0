/*
 * Calls on files and descriptors: each prepares one SQE and waits for its CQE through the
 * operation wait (op.c), with an absolute deadline.
 */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

int rotor_open(const char *path, int flags, unsigned mode, int64_t deadline)
{
	int err;
	if (!path)
		return -EINVAL;
	ROTOR__IO_PREP(w, err, sqe);
	io_uring_prep_openat(sqe, AT_FDCWD, path, flags | O_CLOEXEC, mode);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_close(int fd, int64_t deadline)
{
	/* Clean-up must work in a cancelled task: close at once rather than refuse. */
	struct rotor_task *t = rotor__task_self();
	if (t && rotor__task_cancelled(t)) {
		struct rotor__worker *w = rotor__worker_self();
		int kfd;
		bool fixed;
		int r = rotor__fd_kernel(w, fd, &kfd, &fixed);
		if (r < 0 || !fixed)
			return r < 0 ? r : close(fd) < 0 ? -errno : 0;
		int none = -1;
		r = io_uring_register_files_update(rotor__worker_ring(w), (unsigned)kfd, &none, 1);
		return r < 0 ? r : 0;
	}
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	if (kfd_fixed)
		io_uring_prep_close_direct(sqe, (unsigned)kfd); /* drops the table's reference */
	else
		io_uring_prep_close(sqe, fd);
	return rotor__io_run(w, sqe, deadline);
}

ssize_t rotor_read(int fd, void *buf, size_t len, int64_t offset, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_read(sqe, kfd, buf, rotor__io_len(len), (uint64_t)offset);
	ROTOR__IO_FIXED(sqe, kfd);
	int r = rotor__io_run(w, sqe, deadline);
	if (r > 0)
		ROTOR__KERNEL_WROTE(buf, (size_t)r);
	return r;
}

ssize_t rotor_write(int fd, const void *buf, size_t len, int64_t offset, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_write(sqe, kfd, buf, rotor__io_len(len), (uint64_t)offset);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

ssize_t rotor_readv(int fd, const struct iovec *iov, int iovcnt, int64_t offset, int64_t deadline)
{
	int err;
	if (iovcnt < 0)
		return -EINVAL;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_readv(sqe, kfd, iov, (unsigned)iovcnt, (uint64_t)offset);
	ROTOR__IO_FIXED(sqe, kfd);
	int r = rotor__io_run(w, sqe, deadline);
	rotor__io_wrote_iov(iov, (size_t)iovcnt, r);
	return r;
}

ssize_t rotor_writev(int fd, const struct iovec *iov, int iovcnt, int64_t offset, int64_t deadline)
{
	int err;
	if (iovcnt < 0)
		return -EINVAL;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_writev(sqe, kfd, iov, (unsigned)iovcnt, (uint64_t)offset);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_fsync(int fd, int datasync, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_fsync(sqe, kfd, datasync ? IORING_FSYNC_DATASYNC : 0);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_fallocate(int fd, int mode, int64_t offset, int64_t len, int64_t deadline)
{
	int err;
	if (offset < 0 || len <= 0)
		return -EINVAL;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_fallocate(sqe, kfd, mode, (uint64_t)offset, (uint64_t)len);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_statx(const char *path, int flags, unsigned mask, struct statx *out, int64_t deadline)
{
	int err;
	if (!path || !out)
		return -EINVAL;
	ROTOR__IO_PREP(w, err, sqe);
	io_uring_prep_statx(sqe, AT_FDCWD, path, flags, mask, out);
	int r = rotor__io_run(w, sqe, deadline);
	if (r == 0)
		ROTOR__KERNEL_WROTE(out, sizeof(*out));
	return r;
}

int rotor_unlink(const char *path, int flags, int64_t deadline)
{
	int err;
	if (!path)
		return -EINVAL;
	ROTOR__IO_PREP(w, err, sqe);
	io_uring_prep_unlinkat(sqe, AT_FDCWD, path, flags);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_rename(const char *oldpath, const char *newpath, unsigned flags, int64_t deadline)
{
	int err;
	if (!oldpath || !newpath)
		return -EINVAL;
	ROTOR__IO_PREP(w, err, sqe);
	io_uring_prep_renameat(sqe, AT_FDCWD, oldpath, AT_FDCWD, newpath, flags);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_mkdir(const char *path, unsigned mode, int64_t deadline)
{
	int err;
	if (!path)
		return -EINVAL;
	ROTOR__IO_PREP(w, err, sqe);
	io_uring_prep_mkdirat(sqe, AT_FDCWD, path, mode);
	return rotor__io_run(w, sqe, deadline);
}

int rotor_poll(int fd, unsigned events, int64_t deadline)
{
	int err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd);
	io_uring_prep_poll_add(sqe, kfd, events);
	ROTOR__IO_FIXED(sqe, kfd);
	return rotor__io_run(w, sqe, deadline);
}

ssize_t rotor_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                     unsigned flags, int64_t deadline)
{
	int err, in;
	bool in_fixed;
	struct rotor__worker *w0 = rotor__io_begin(&err);
	if (!w0)
		return err;
	if ((err = rotor__fd_kernel(w0, fd_in, &in, &in_fixed)) < 0)
		return err;
	ROTOR__IO_PREP_FD(w, err, sqe, fd_out, out);
	io_uring_prep_splice(sqe, in, off_in, out, off_out, rotor__io_len(len),
	                     flags | (in_fixed ? SPLICE_F_FD_IN_FIXED : 0));
	ROTOR__IO_FIXED(sqe, out);
	return rotor__io_run(w, sqe, deadline);
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
	if (!rotor__io_begin(&err))
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
