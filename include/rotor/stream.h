/*
 * rotor/stream.h: buffered streams over a connected socket, plain or TLS with the same
 * calls, for protocol code: exact frames, delimited lines and header blocks, zero-copy
 * peeks into contiguous bytes, and writes gathered in an output buffer so that many small
 * writes go out as one send. Short reads and writes never reach the caller; a limit on the
 * input a stream buffers keeps a peer from growing its memory without bound.
 */
#ifndef ROTOR_PUBLIC_STREAM_H
#define ROTOR_PUBLIC_STREAM_H

#include <rotor.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovec;
struct rotor_bufring;
struct rotor_stream;

/* All zero means defaults. */
struct rotor_stream_config {
	/* Input bytes a stream buffers at most: the largest frame rotor_stream_peek,
	 * rotor_stream_read_exact and rotor_stream_read_until take (-EMSGSIZE beyond); 0: 64 KiB.
	 */
	size_t max_input;
	/* Output bytes gathered before a write sends them; 0: 16 KiB. */
	size_t output_size;
	/* A plain socket receives into this pool's buffers (rotor_bufring_create, on the
	 * stream's worker); NULL: a pool of the worker's own, made on first use and shared by
	 * every plain stream of that worker. Not used by TLS streams. */
	struct rotor_bufring *bufring;
};

/*
 * The calls below, but rotor_stream_fd, run on a task of the worker that created the stream
 * (-EPERM elsewhere). One task reads at a time (-EBUSY for another while a read waits); any
 * number of tasks write, and a reader and a writer run at once (a task reading replies while
 * others send requests): writes go out in the order they were made. Every call that waits
 * takes an absolute deadline (ROTOR_FOREVER for none) and returns -ETIMEDOUT when it passes,
 * -ECANCELED when the task is cancelled.
 */

/* ---- Streams --------------------------------------------------------------------------- */

/*
 * rotor_stream_create - a stream over connected socket fd (a plain fd or a registered
 * descriptor of this worker), configured as cfg (NULL: the defaults). It receives through a
 * multishot receive stream on cfg->bufring, so that an idle stream holds no buffer, and sends
 * with one SQE per flush. The stream does not own fd: destroy it, then close fd. Returns 0
 * and sets *out, or -EINVAL (out NULL, fd negative), -ENOMEM, -EPERM (off a task, or
 * cfg->bufring another worker's), -EBADF (another worker's registered descriptor), or the
 * kernel's error registering the worker's pool. Thread: task. Suspends: no.
 */
ROTOR_API int rotor_stream_create(int fd, const struct rotor_stream_config *cfg,
                                  struct rotor_stream **out);

/*
 * rotor_stream_destroy - free s and everything it holds: its buffers go back to their pool,
 * its receive is cancelled in the kernel and waited for, its transport (TLS) is freed.
 * Output not flushed is dropped: flush first. The socket stays open. Returns 0, -EINVAL (s
 * NULL), -EBUSY (nothing done: a task waits in a call on s), -EPERM. Thread: task on its
 * worker; any thread for a detached stream (rotor_stream_detach). Suspends: yes (briefly,
 * not cancellable), not for a detached stream.
 */
ROTOR_API int rotor_stream_destroy(struct rotor_stream *s);

/* rotor_stream_fd - the socket s reads and writes, or -EINVAL (s NULL).
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_stream_fd(const struct rotor_stream *s);

/*
 * rotor_stream_detach - unbind s from its worker without losing a byte, so that a task on
 * another worker takes it over with rotor_stream_attach (a connection moved with
 * rotor_server_move, s carried in its state): what is buffered and what the kernel has
 * received go into the stream's own buffer, its receive stream ends. For a plain stream on
 * its worker's own pool (cfg->bufring NULL) over a plain descriptor, with its output flushed
 * and no task waiting on it. Returns 0, or -EINVAL (s NULL), -EPERM, -EBUSY (output not
 * flushed, or a task waits on s), -EOPNOTSUPP (a TLS stream, or one on a pool of the
 * caller's), -EMSGSIZE (more is received than the input limit holds) or -ESHUTDOWN (the
 * stream has reached its end or an error): after those three s is unchanged and usable.
 * Thread: task on its worker. Suspends: yes (briefly, not cancellable).
 */
ROTOR_API int rotor_stream_detach(struct rotor_stream *s);

/*
 * rotor_stream_attach - bind detached stream s to the calling worker: it receives through
 * this worker's pool and reads what was buffered first. Returns 0, or -EINVAL (s NULL, or
 * not detached), -EPERM (off a task), -ENOMEM, or the errors of rotor_stream_create (-EBADF:
 * fd was a registered descriptor of the old worker). A detached stream may also be destroyed
 * from any thread, without suspending (a server's close hook). Thread: task. Suspends: no.
 */
ROTOR_API int rotor_stream_attach(struct rotor_stream *s);

/* ---- Reading ----------------------------------------------------------------------------
 * Bytes are taken from the front of what s has received, in order; what a call points at
 * stays valid until the next reading call on s, by any task. A deadline or a
 * cancellation loses nothing: what a call had gathered stays buffered for the next one.
 * End of stream is 0 when nothing is left buffered; a call that needs more bytes than are
 * left at the end returns -ENODATA and leaves them buffered (rotor_stream_peek with want 0
 * sees them). A receive error (-ECONNRESET, ...) is sticky: every call that needs more than
 * is buffered returns it, and what is buffered can still be taken.
 */

/*
 * rotor_stream_read - copy 1 to len (> 0) bytes into buf: what is buffered, or, if nothing
 * is, the next bytes received. Returns the count, 0 at end of stream, or a negative errno:
 * -EINVAL, -EBUSY, -EPERM, -ETIMEDOUT, -ECANCELED, -ENOMEM, the receive's error.
 * Thread: task on its worker. Suspends: yes (not when bytes are buffered).
 */
ROTOR_API ssize_t rotor_stream_read(struct rotor_stream *s, void *buf, size_t len,
                                    int64_t deadline);

/*
 * rotor_stream_read_exact - copy exactly n bytes into buf, waiting until all of them have
 * arrived; a call that fails takes nothing. Returns n, 0 at end of stream with nothing
 * buffered, or a negative errno: -ENODATA (the stream ended with fewer than n bytes left),
 * -EMSGSIZE (n over the input limit), -EINVAL, -EBUSY, -EPERM, -ETIMEDOUT, -ECANCELED,
 * -ENOMEM, the receive's error. Thread: task on its worker. Suspends: yes (not when n bytes
 * are buffered).
 */
ROTOR_API ssize_t rotor_stream_read_exact(struct rotor_stream *s, void *buf, size_t n,
                                          int64_t deadline);

/*
 * rotor_stream_read_until - the bytes up to and including the first occurrence of the dlen
 * (> 0) bytes at delim (a line, "\r\n"; a header block, "\r\n\r\n"), taken from the stream:
 * *line points at them, contiguous, valid until the next reading call on s (no copy when
 * they sit in one receive buffer). max bounds the length with the delimiter (0, or over
 * the input limit: the limit). Returns the length, 0 at end of stream with nothing
 * buffered, or a negative errno: -EMSGSIZE (max bytes buffered and no delimiter among them:
 * they stay buffered; or dlen over max), -ENODATA (the stream ended before a delimiter), -EINVAL,
 * -EBUSY, -EPERM, -ETIMEDOUT, -ECANCELED, -ENOMEM, the receive's error. Thread: task on its worker.
 * Suspends: yes (not when a delimiter is buffered).
 */
ROTOR_API ssize_t rotor_stream_read_until(struct rotor_stream *s, const void *delim, size_t dlen,
                                          size_t max, const void **line, int64_t deadline);

/*
 * rotor_stream_peek - the buffered bytes, once at least want of them are, contiguous at
 * *data and left in the stream (rotor_stream_consume takes them): valid until the next
 * reading call on s. Zero-copy while they sit in one receive buffer; bytes spanning buffers
 * are gathered in the stream's own. The count may exceed want. want 0: what is buffered now,
 * without waiting (0 if nothing). Returns the count, 0 at end of stream with nothing
 * buffered, or a negative errno: -ENODATA (the stream ended with fewer than want bytes
 * left), -EMSGSIZE (want over the input limit), -EINVAL, -EBUSY, -EPERM, -ETIMEDOUT,
 * -ECANCELED, -ENOMEM, the receive's error. Thread: task on its worker. Suspends: yes (not
 * when want bytes are buffered, nor for want 0).
 */
ROTOR_API ssize_t rotor_stream_peek(struct rotor_stream *s, size_t want, const void **data,
                                    int64_t deadline);

/*
 * rotor_stream_consume - take n bytes from the front of what is buffered (what peek showed,
 * or less). Returns 0, -EINVAL (s NULL, or n more than is buffered), -EBUSY (a read waits),
 * -EPERM. Thread: task on its worker. Suspends: no.
 */
ROTOR_API int rotor_stream_consume(struct rotor_stream *s, size_t n);

/* ---- Writing ----------------------------------------------------------------------------
 * Writes are gathered in the stream's output buffer (cfg->output_size) and go out with the
 * next flush; a write that does not fit sends what is buffered and its own bytes together,
 * in one SQE, without copying them. Nothing is sent partly as far as the caller can tell:
 * a call returns once all of its bytes are buffered or sent. A send that fails, times out
 * or is cancelled breaks the sending side, since the peer may have received part of it:
 * every later write, flush and shutdown returns the same error (sticky). After
 * rotor_stream_shutdown they return -EPIPE.
 */

/*
 * rotor_stream_write - write len bytes of buf. Returns len, or a negative errno: -EINVAL,
 * -EPERM, -EPIPE (shut down), -ENOMEM, -ETIMEDOUT or -ECANCELED (while waiting for the
 * writer before it: nothing written, the stream intact; while sending: broken), the send's
 * error (-ECONNRESET, -EPIPE, ...; sticky). Thread: task on its worker. Suspends: yes (not
 * when the bytes fit in the output buffer and no earlier writer waits to place its own).
 */
ROTOR_API ssize_t rotor_stream_write(struct rotor_stream *s, const void *buf, size_t len,
                                     int64_t deadline);

/*
 * rotor_stream_writev - write the cnt (0 to 1023) buffers of iov, in order, as one write.
 * Returns their total, or the errors of rotor_stream_write (-EINVAL also for cnt out of
 * range). Thread: task on its worker. Suspends: yes (not when they fit in the output
 * buffer).
 */
ROTOR_API ssize_t rotor_stream_writev(struct rotor_stream *s, const struct iovec *iov, int cnt,
                                      int64_t deadline);

/*
 * rotor_stream_write_all - write len bytes of buf and flush: everything written so far has
 * been sent when it returns. Returns len, or the errors of rotor_stream_write.
 * Thread: task on its worker. Suspends: yes.
 */
ROTOR_API ssize_t rotor_stream_write_all(struct rotor_stream *s, const void *buf, size_t len,
                                         int64_t deadline);

/*
 * rotor_stream_flush - send what is buffered, after whatever another task is sending: every
 * byte written before the call has been sent when it returns. Returns 0, or a negative
 * errno: -EINVAL, -EPERM, -EPIPE (shut down), -ETIMEDOUT or -ECANCELED (as for
 * rotor_stream_write), the send's error (sticky). Thread: task on its worker. Suspends: yes
 * (not when nothing is buffered or being sent).
 */
ROTOR_API int rotor_stream_flush(struct rotor_stream *s, int64_t deadline);

/*
 * rotor_stream_shutdown - flush, then end the sending side in order (plain: shutdown(2)
 * SHUT_WR; TLS: close_notify); the peer reads end of stream, and s can still read. Returns
 * 0, or the errors of rotor_stream_flush and of the shutdown (-ENOTCONN, ...; after which
 * the stream is broken). Thread: task on its worker. Suspends: yes.
 */
ROTOR_API int rotor_stream_shutdown(struct rotor_stream *s, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_STREAM_H */
