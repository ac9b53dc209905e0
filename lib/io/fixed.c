/*
 * Registered descriptors.
 * ROTOR_FIXED_FD | worker << FIXED_WORKER_SHIFT | slot: a slot of one worker's table, which
 * the kernel allocates (IORING_FILE_INDEX_ALLOC). The worker is in the value so that another
 * worker's task gets -EBADF instead of whatever that worker keeps in the same slot.
 */
#include "io.h"

#include <errno.h>
#include <sys/resource.h>

#define FIXED_WORKER_SHIFT 20
#define FIXED_SLOT_MASK    ((1u << FIXED_WORKER_SHIFT) - 1)
#define FIXED_TABLE_MAX    65536u

int rotor__fd_kernel(struct rotor__worker *w, int fd, int *kfd, bool *fixed)
{
	*kfd = fd;
	*fixed = false;
	if (fd < 0 || !(fd & ROTOR_FIXED_FD))
		return 0;
	if (((unsigned)fd & ~(unsigned)ROTOR_FIXED_FD) >> FIXED_WORKER_SHIFT !=
	        (unsigned)rotor__worker_id(w) ||
	    !*rotor__worker_ext(w, ROTOR__EXT_FILES))
		return -EBADF;
	*kfd = (int)((unsigned)fd & FIXED_SLOT_MASK);
	*fixed = true;
	return 0;
}
/* In the worker's ROTOR__EXT_FILES slot once its table of registered files exists. */
static struct rotor__ext files_table;

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
	struct rotor__worker *w = rotor__io_begin(&err);
	if (!w)
		return err;
	if (fd < 0 || (fd & ROTOR_FIXED_FD))
		return -EBADF;
	struct rotor__ext **table = rotor__worker_ext(w, ROTOR__EXT_FILES);
	if (!*table) {
		/* Made on first use: most programs never register a descriptor. */
		int r = ROTOR__FAULT_ERR(
		    FILES_TABLE,
		    io_uring_register_files_sparse(rotor__worker_ring(w), files_table_size()));
		if (r < 0)
			return r;
		*table = &files_table; /* the ring frees the table itself */
	}
	int fds[1] = {fd}; /* the kernel writes the slot it picked here */
	struct io_uring_sqe *sqe = rotor__sqe(w);
	io_uring_prep_files_update(sqe, fds, 1, (int)IORING_FILE_INDEX_ALLOC);
	int r = rotor__io_run(w, sqe, ROTOR_FOREVER);
	if (r < 0)
		return r;
	ROTOR__KERNEL_WROTE(fds, sizeof(fds));
	if (r != 1 || (unsigned)fds[0] > FIXED_SLOT_MASK)
		return -ENFILE;
	return (int)(ROTOR_FIXED_FD | (unsigned)rotor__worker_id(w) << FIXED_WORKER_SHIFT |
	             (unsigned)fds[0]);
}
