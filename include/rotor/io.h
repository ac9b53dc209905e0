/*
 * rotor/io.h: file and socket operations as coroutine calls, one SQE each on the calling
 * worker's ring; TCP helpers; and the io_uring-specific forms: registered descriptors,
 * multishot accept, receive streams over buffer rings, and sends started now and waited
 * for later.
 */
#ifndef ROTOR_PUBLIC_IO_H
#define ROTOR_PUBLIC_IO_H

#include <sys/socket.h>
#include <sys/types.h>

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * File and socket operations. Each is one SQE on the calling worker's ring (a deadline is a
 * timer of the worker's that cancels the operation); only the calling task suspends. Every call
 * takes an absolute deadline (ROTOR_FOREVER for none) and returns what the system call
 * would (a count or 0) or a negative errno: the operation's own errors, plus -ETIMEDOUT when
 * the deadline passed first, -ECANCELED when the task was cancelled (the operation is
 * cancelled in the kernel and the call returns only after the kernel has let go of its
 * buffers), -EPERM off a task. Thread: task. Suspends: yes.
 */
struct iovec;
struct msghdr;
struct statx;

/* ---- Files --------------------------------------------------------------------------- */

/* openat(AT_FDCWD, path, flags, mode): the new fd. */
ROTOR_API int rotor_open(const char *path, int flags, unsigned mode, int64_t deadline);
/* close(fd). */
ROTOR_API int rotor_close(int fd, int64_t deadline);
/* pread/pwrite at offset; offset -1 uses and advances the file position. Byte counts. */
ROTOR_API ssize_t rotor_read(int fd, void *buf, size_t len, int64_t offset, int64_t deadline);
ROTOR_API ssize_t rotor_write(int fd, const void *buf, size_t len, int64_t offset,
                              int64_t deadline);
ROTOR_API ssize_t rotor_readv(int fd, const struct iovec *iov, int iovcnt, int64_t offset,
                              int64_t deadline);
ROTOR_API ssize_t rotor_writev(int fd, const struct iovec *iov, int iovcnt, int64_t offset,
                               int64_t deadline);
/* fsync(fd), or fdatasync(fd) when datasync != 0. */
ROTOR_API int rotor_fsync(int fd, int datasync, int64_t deadline);
/* fallocate(fd, mode, offset, len). */
ROTOR_API int rotor_fallocate(int fd, int mode, int64_t offset, int64_t len, int64_t deadline);
/* statx(AT_FDCWD, path, flags, mask, out). */
ROTOR_API int rotor_statx(const char *path, int flags, unsigned mask, struct statx *out,
                          int64_t deadline);
/* unlinkat(AT_FDCWD, path, flags) (AT_REMOVEDIR removes a directory), renameat2(old, new,
 * flags), mkdirat(AT_FDCWD, path, mode). */
ROTOR_API int rotor_unlink(const char *path, int flags, int64_t deadline);
ROTOR_API int rotor_rename(const char *oldpath, const char *newpath, unsigned flags,
                           int64_t deadline);
ROTOR_API int rotor_mkdir(const char *path, unsigned mode, int64_t deadline);

/* ---- Sockets ------------------------------------------------------------------------- */

/* socket(domain, type, protocol): the new fd. */
ROTOR_API int rotor_socket(int domain, int type, int protocol, int64_t deadline);
/* connect(fd, addr, len). */
ROTOR_API int rotor_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline);
/* accept4(fd, addr, len, flags): the new fd (addr and len may be NULL). */
ROTOR_API int rotor_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags,
                           int64_t deadline);
/* recv/send(fd, buf, len, flags): byte counts; recv returns 0 at end of stream. */
ROTOR_API ssize_t rotor_recv(int fd, void *buf, size_t len, int flags, int64_t deadline);
ROTOR_API ssize_t rotor_send(int fd, const void *buf, size_t len, int flags, int64_t deadline);
ROTOR_API ssize_t rotor_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline);
ROTOR_API ssize_t rotor_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline);
/* shutdown(fd, how). */
ROTOR_API int rotor_shutdown(int fd, int how, int64_t deadline);

/* ---- TCP helpers --------------------------------------------------------------------- */

#define ROTOR_TCP_REUSEPORT (1u << 0) /* SO_REUSEPORT: a listener per worker on one port */

/*
 * rotor_tcp_listen - a listening TCP socket on host:port: an IPv4 or IPv6 literal, or a name
 * (rotor_resolve, rotor/resolve.h: literals, localhost and /etc/hosts names without a query;
 * a name that needs DNS is resolved with rotor_resolve on a task, within 10 s, and with a
 * blocking getaddrinfo off a task); NULL or "" for every address, IPv6 and IPv4 on one
 * dual-stack socket, or IPv4 alone where the machine has no IPv6; port 0 picks a free one,
 * see rotor_sock_port. SO_REUSEADDR always, SO_REUSEPORT with ROTOR_TCP_REUSEPORT. Returns
 * the fd; -EINVAL (port out of range, host no valid name), -ENOENT (no such name), -EAGAIN
 * (temporary DNS failure), -ETIMEDOUT (DNS took over 10 s, on a task), -ECANCELED, -ENOMEM,
 * or the errno of socket/bind/listen for the last address tried. Thread: any. Suspends: no,
 * except on a task for a name that needs DNS (off a task that lookup blocks the thread).
 */
ROTOR_API int rotor_tcp_listen(const char *host, int port, int backlog, unsigned flags);
/* rotor_tcp_dial - a TCP connection to host:port (NULL or "" for localhost), resolved with
 * rotor_resolve, trying every address as RFC 8305 (Happy Eyeballs) says: families
 * alternated, the next attempt 250 ms after the last or as soon as it fails, the first to
 * connect wins and the others are cancelled and closed; resolution and connection share
 * the one deadline. Returns the fd; rotor_resolve's errors (-ENOENT, -EAGAIN, -EINVAL, ...);
 * the error of the last attempt that failed (-ECONNREFUSED, -ENETUNREACH, ...);
 * -ETIMEDOUT, -ECANCELED, -EPERM off a task. Thread: task. Suspends: yes. */
ROTOR_API int rotor_tcp_dial(const char *host, int port, int64_t deadline);
/* rotor_sock_port - the local port a socket is bound to, or a negative errno.
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_sock_port(int fd);
/* rotor_sock_steer - give listener fd the connections whose packets the calling worker's CPU
 * handles (SO_INCOMING_CPU; honoured in a SO_REUSEPORT group since Linux 6.2). Returns that
 * CPU, -EPERM off a worker, -EINVAL if the worker is not pinned (a runtime of one worker,
 * ROTOR_NO_PIN), or setsockopt's errno. Thread: worker. Suspends: no. */
ROTOR_API int rotor_sock_steer(int fd);

/* ---- Any descriptor: poll, splice, signals ------------------------------------------- */

/* rotor_poll - wait until fd is ready for some of events (POLLIN, POLLOUT, ...; any fd,
 * e.g. one another library owns). Returns the ready mask (revents, > 0). */
ROTOR_API int rotor_poll(int fd, unsigned events, int64_t deadline);
/* rotor_splice - splice(fd_in, off_in, fd_out, off_out, len, flags) (one side a pipe; an
 * offset of -1 for a pipe or the file position): bytes moved. */
ROTOR_API ssize_t rotor_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                               unsigned flags, int64_t deadline);
/*
 * rotor_signal_wait - wait for one of the n signals listed (asyncio's add_signal_handler, as
 * a coroutine) and return its number. The signals must be blocked in every thread, or the
 * kernel delivers them the usual way: block them with pthread_sigmask before creating the
 * runtime (workers inherit the mask). Also -EINVAL (signals NULL, n == 0, a signal number
 * out of range), -EMFILE. Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_signal_wait(const int *signals, size_t n, int64_t deadline);

/* ---- Registered descriptors ---------------------------------------------------------- */

/*
 * Registered descriptors: rotor_fd_register enters fd in the calling worker's table of
 * registered files and returns a descriptor (ROTOR_FIXED_FD set) that the I/O calls of tasks
 * on that worker take like any other, without the kernel's file lookup and reference count
 * on every operation. fd stays the caller's: the table holds a reference of its own, which
 * rotor_close on the registered descriptor drops. Such a descriptor means nothing to system
 * calls, and another worker's tasks get -EBADF with it. Returns the descriptor, -EBADF (fd
 * negative or already registered), -ENFILE (the table is full), -ECANCELED, -EPERM off a
 * task, or the kernel's error creating the table (-EMFILE: RLIMIT_NOFILE). Thread: task.
 * Suspends: yes (one SQE).
 */
#define ROTOR_FIXED_FD (1 << 30)
ROTOR_API int rotor_fd_register(int fd);

/* ---- Multishot accept ---------------------------------------------------------------- */

/*
 * Multishot accept: one IORING_OP_ACCEPT that keeps producing connections (Linux 5.19+)
 * instead of one operation per connection. An acceptor belongs to the worker that created
 * it; connections that arrive while nobody asks wait in it (their fds owned by it). A
 * handle used after rotor_acceptor_destroy is a stale handle: every call refuses it with
 * -EINVAL, also once another acceptor has its memory (up to 65535 reuses of that memory in
 * between; docs/architecture.md, section 5).
 * rotor_acceptor_create - arm it on listen_fd. Returns 0, -EINVAL, -ENOMEM, -EPERM off a
 *   task. Thread: task. Suspends: no.
 * rotor_acceptor_next - the next connection's fd (SOCK_CLOEXEC), waiting for one; the
 *   accept's errors (-EMFILE, ...), -ETIMEDOUT, -ECANCELED, -EBUSY (another task waits on
 *   it), -EINVAL (NULL or a stale handle), -EPERM (not on its worker).
 *   Thread: task on its worker. Suspends: yes.
 * rotor_acceptor_destroy - cancel the accept in the kernel, wait for its last completion,
 *   close the fds nobody took, free it. Returns 0, -EBUSY (a task waits on it), -EINVAL
 *   (NULL or a stale handle), -EPERM. Thread: task on its worker. Suspends: yes (briefly,
 *   not cancellable).
 */
struct rotor_acceptor;
ROTOR_API int rotor_acceptor_create(int listen_fd, struct rotor_acceptor **out);
ROTOR_API int rotor_acceptor_next(struct rotor_acceptor *a, int64_t deadline);
ROTOR_API int rotor_acceptor_destroy(struct rotor_acceptor *a);

/* ---- Receive streams and buffer rings ------------------------------------------------ */

/*
 * Multishot receive with provided buffers: a buffer ring is a pool of equal buffers
 * registered with the calling worker's ring (Linux 5.19), shared by many receive streams;
 * a receive stream keeps one multishot recv armed on a socket (Linux 6.0), so a connection
 * costs no SQE per read and holds no buffer while idle. Both belong to the worker that
 * created them. Where the kernel has no buffer rings, or with ROTOR_NO_BUFRING, each stream
 * owns one buffer and reads with plain recvs: same calls, same results. A stream handle used
 * after the stream's destroy or detach is a stale handle: every call refuses it with -EINVAL
 * (NULL or a stale handle, below), also once another stream has its memory.
 * rotor_bufring_create - count buffers (a power of two, 1..32768) of size bytes (1..16 MiB).
 *   Returns 0, -EINVAL, -ENOMEM, -EPERM off a task, or the kernel's registration error.
 *   Thread: task. Suspends: no.
 * rotor_bufring_destroy - unregister and free it. Returns 0, -EBUSY (a stream still uses
 *   it), -EINVAL, -EPERM (not on its worker). Thread: its worker (a task, or a worker-local
 *   destructor). Suspends: no.
 * rotor_recv_stream_create - start receiving from socket fd into br's buffers. The stream
 *   does not own fd: destroy it before closing fd. Returns 0, -EINVAL, -ENOMEM, -EPERM,
 *   -EBADF (another worker's registered descriptor).
 *   Thread: task on br's worker. Suspends: no.
 * rotor_recv_stream_next - the next bytes received, in order: *data points at them and stays
 *   valid until the next call on this stream (which gives the buffer back). Returns the
 *   count (at most the buffer size), 0 at end of stream (and on every later call), the
 *   recv's error (sticky), -ETIMEDOUT, -ECANCELED, -EBUSY (another task waits on it),
 *   -EINVAL (data or s NULL, a stale handle), -EPERM (not on its worker). A deadline or a
 *   cancellation loses no data: bytes that arrive meanwhile wait for the next call.
 *   Thread: task on its worker. Suspends: yes.
 * rotor_recv_stream_destroy - give every buffer back, cancel the recv in the kernel and wait
 *   for its last completion, free the stream. Returns 0, -EBUSY (a task waits on it),
 *   -EINVAL (NULL or a stale handle), -EPERM. Thread: task on its worker. Suspends: yes
 *   (briefly, not cancellable).
 * rotor_recv_stream_detach - end the stream without losing a byte, so that fd can be read
 *   elsewhere (another worker's stream): cancel the recv, wait for its last completion,
 *   copy every byte received and not yet returned by next into buf, free the stream.
 *   Returns the bytes copied; -EMSGSIZE if they exceed cap, or -ESHUTDOWN if the stream has
 *   reached its end or an error (both leave the stream usable, the recv re-armed by the
 *   next call, nothing lost); -EBUSY, -EINVAL (NULL, a stale handle, or buf NULL with cap),
 *   -EPERM. Thread: task on its worker.
 *   Suspends: yes (briefly, not cancellable).
 */
struct rotor_bufring;
struct rotor_recv_stream;
ROTOR_API int rotor_bufring_create(unsigned count, size_t size, struct rotor_bufring **out);
ROTOR_API int rotor_bufring_destroy(struct rotor_bufring *br);
ROTOR_API int rotor_recv_stream_create(int fd, struct rotor_bufring *br,
                                       struct rotor_recv_stream **out);
ROTOR_API ssize_t rotor_recv_stream_next(struct rotor_recv_stream *s, const void **data,
                                         int64_t deadline);
ROTOR_API int rotor_recv_stream_destroy(struct rotor_recv_stream *s);
ROTOR_API ssize_t rotor_recv_stream_detach(struct rotor_recv_stream *s, void *buf, size_t cap);

/* ---- Started operations -------------------------------------------------------------- */

/*
 * Started operations: a send that the task starts now and waits for later, going on
 * meanwhile (reading the next request while a response goes out, say); it suspends only if
 * it waits before the kernel is done, and a server that waits at its next flush usually
 * finds the send complete. An operation belongs to the worker that created it; buf belongs
 * to the kernel from rotor_send_start until rotor_op_wait (or rotor_op_destroy) returns.
 * An op handle used after rotor_op_destroy is a stale handle: every call refuses it with
 * -EINVAL (below), also once another operation has its memory.
 * rotor_op_create - a new idle operation. Returns 0, -EINVAL (out NULL), -ENOMEM, -EPERM
 *   off a worker. Thread: worker. Suspends: no.
 * rotor_send_start - start send(fd, buf, len, flags | MSG_NOSIGNAL) on op; flags as send(2)
 *   (with MSG_WAITALL the kernel sends all of buf, or fails). The SQE reaches the kernel with
 *   the worker's next submission, batched with others. Returns 0, -EBUSY (op started and not
 *   waited for, or a task waits on it), -EINVAL (NULL or a stale handle), -EPERM (off a
 *   task on op's worker), -ECANCELED (the task is cancelled), -EBADF (another worker's
 *   registered descriptor). Thread: task on op's worker. Suspends: no.
 * rotor_op_wait - the result of what op started: what rotor_send returns (the count, or the
 *   error), with -ETIMEDOUT when deadline passes first and -ECANCELED when the task is
 *   cancelled (both cancel the send in the kernel, and return once it has let go of buf).
 *   Also -EINVAL (nothing started, NULL or a stale handle), -EBUSY (another task waits on
 *   op), -EPERM. Thread: task on op's worker. Suspends: yes, unless the operation is done.
 * rotor_op_destroy - free op; an operation still in flight is cancelled and waited for
 *   first. Returns 0, -EINVAL (NULL or a stale handle), -EBUSY (a task waits on it), -EPERM
 *   (off a task on op's worker). Thread: task on its worker. Suspends: yes (briefly, not
 *   cancellable) while an operation is in flight.
 */
struct rotor_op;
ROTOR_API int rotor_op_create(struct rotor_op **out);
ROTOR_API int rotor_send_start(struct rotor_op *op, int fd, const void *buf, size_t len, int flags);
ROTOR_API ssize_t rotor_op_wait(struct rotor_op *op, int64_t deadline);
ROTOR_API int rotor_op_destroy(struct rotor_op *op);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_IO_H */
