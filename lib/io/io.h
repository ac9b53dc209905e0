/*
 * The I/O layer's own internals: the one-shot operation wait (op.c) that every file and
 * socket call ends in, and how a descriptor reaches the SQE (fixed.c: a plain fd, or a slot
 * of the calling worker's registered-file table).
 */
#ifndef ROTOR__IO_H
#define ROTOR__IO_H

#include "core.h"

/* Begin an operation: the calling task's worker, or NULL with *err = -EPERM (not on a task)
 * or -ECANCELED (the task is cancelled). */
struct rotor__worker *rotor__io_begin(int *err);
/* Submit sqe (prepared) with an absolute deadline and wait for its CQE: its result, or
 * -ETIMEDOUT when the deadline cancelled it, -ECANCELED when the task was. */
int rotor__io_run(struct rotor__worker *w, struct io_uring_sqe *sqe, int64_t deadline);
/* Valgrind: the kernel filled the first n bytes of the vector (internal.h). */
void rotor__io_wrote_iov(const struct iovec *iov, size_t cnt, int n);

#define ROTOR__IO_PREP(w, err, sqe)                                                                \
	struct rotor__worker *w = rotor__io_begin(&err);                                           \
	if (!w)                                                                                    \
		return err;                                                                        \
	struct io_uring_sqe *sqe = rotor__sqe(w)

/* fd as the kernel takes it from this worker's ring: *kfd the fd itself, or the slot of a
 * registered descriptor (ROTOR_FIXED_FD; *fixed set). 0, or -EBADF for another worker's. */
int rotor__fd_kernel(struct rotor__worker *w, int fd, int *kfd, bool *fixed);

/* IO_PREP for a call on descriptor fd: kfd is what goes in the SQE; IO_FIXED after the prep
 * (which clears sqe->flags) marks a registered one. */
#define ROTOR__IO_PREP_FD(w, err, sqe, fd, kfd)                                                    \
	struct rotor__worker *w = rotor__io_begin(&err);                                           \
	if (!w)                                                                                    \
		return err;                                                                        \
	int kfd;                                                                                   \
	bool kfd##_fixed;                                                                          \
	if ((err = rotor__fd_kernel(w, fd, &kfd, &kfd##_fixed)) < 0)                               \
		return err;                                                                        \
	struct io_uring_sqe *sqe = rotor__sqe(w)
#define ROTOR__IO_FIXED(sqe, kfd)                                                                  \
	do {                                                                                       \
		if (kfd##_fixed)                                                                   \
			(sqe)->flags |= IOSQE_FIXED_FILE;                                          \
	} while (0)

#endif
