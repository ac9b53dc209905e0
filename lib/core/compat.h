/*
 * Kernel constants newer than the headers Debian ships (liburing 2.3, linux-libc-dev 6.1).
 * Each is probed at run time before use, with a fallback on kernels that lack it.
 */
#ifndef ROTOR__COMPAT_H
#define ROTOR__COMPAT_H

#include <sys/mman.h>

/* Linux 6.13: io_uring_register(-1, ..., sqe, 1) sends a MSG_RING without a source ring. */
#ifndef IORING_REGISTER_SEND_MSG_RING
#define IORING_REGISTER_SEND_MSG_RING 31
#endif

/* Linux 6.13: lightweight guard regions that do not split the VMA. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* Linux 5.14: fault pages in without touching them. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Linux 5.10: process_madvise(2). */
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#endif
