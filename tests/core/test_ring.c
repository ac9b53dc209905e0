/*
 * Ring set-up: when the kernel refuses io_uring (disabled by sysctl, not built in, out of
 * memory for the ring) or lacks IORING_OP_MSG_RING, rotor_runtime_create returns the errno,
 * leaves *out untouched and says on stderr what to fix.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rotor.h>

#include "internal.h"

/* Ring set-up failures, injected (the sysctl itself is machine-wide, so the tests do not
 * flip it): the error comes back as the errno and stderr names the cause. */
static int create_with_fault(int fault, char *err, size_t len)
{
	fflush(stderr);
	int saved = dup(2);
	char path[] = "/tmp/rotor-test-XXXXXX";
	int fd = mkstemp(path);
	dup2(fd, 2);
	atomic_store(&rotor__fault_ring_setup, fault);
	struct rotor_runtime *rt = NULL;
	struct rotor_config cfg = {.workers = 2};
	int r = rotor_runtime_create(&cfg, &rt);
	atomic_store(&rotor__fault_ring_setup, 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, err, len - 1, 0);
	err[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	cr_assert_null(rt, "*out set on failure");
	return r;
}

Test(ring, io_uring_disabled_names_the_sysctl, .timeout = 10)
{
	char err[2048];
	cr_assert_eq(create_with_fault(-EPERM, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "kernel.io_uring_disabled"), "stderr: %s", err);
}

Test(ring, kernel_without_io_uring_is_enosys, .timeout = 10)
{
	char err[2048];
	cr_assert_eq(create_with_fault(-ENOSYS, err, sizeof(err)), -ENOSYS);
	cr_assert(strstr(err, "CONFIG_IO_URING"), "stderr: %s", err);
}

Test(ring, ring_memory_refused_is_enomem, .timeout = 10)
{
	char err[2048];
	cr_assert_eq(create_with_fault(-ENOMEM, err, sizeof(err)), -ENOMEM);
	cr_assert(strstr(err, "cannot allocate memory for the ring"), "stderr: %s", err);
	/* And the runtime works again once memory is there. */
	struct rotor_runtime *rt;
	cr_assert_eq(rotor_runtime_create(NULL, &rt), 0);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

Test(ring, a_kernel_without_msg_ring_gets_a_clear_error, .timeout = 10)
{
	char err[2048];
	fflush(stderr);
	int saved = dup(2);
	char path[] = "/tmp/rotor-test-XXXXXX";
	int fd = mkstemp(path);
	dup2(fd, 2);
	atomic_store(&rotor__fault_no_msg_ring, 1);
	struct rotor_runtime *rt = NULL;
	int r = rotor_runtime_create(NULL, &rt);
	atomic_store(&rotor__fault_no_msg_ring, 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, err, sizeof(err) - 1, 0);
	err[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	cr_assert_eq(r, -ENOSYS);
	cr_assert_null(rt);
	cr_assert(strstr(err, "Linux 5.18 or later"), "stderr: %s", err);
}
