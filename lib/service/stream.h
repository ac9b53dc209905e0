/*
 * What moves a stream's bytes (stream.c): a plain socket (the stream's own path, reading
 * through a multishot receive stream), or a transport another service module provides, such
 * as TLS (tls.c), which hands the stream plaintext. The stream buffers, frames and gathers;
 * a transport only reads into the buffer it is given and writes all of what it is given.
 */
#ifndef ROTOR__STREAM_H
#define ROTOR__STREAM_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <rotor/stream.h>

/*
 * A transport. Every call runs on a task of the stream's worker and may suspend. Deadlines
 * are absolute. The stream never runs two reads at once, nor two of writev and shutdown at
 * once; but a read and a writev (or shutdown) may overlap, one task waiting in each (a task
 * reading replies while another sends requests). destroy runs alone.
 */
struct rotor__stream_io {
	/* Read at most len (> 0) bytes into buf: the count (> 0), 0 at a clean end of stream
	 * (TLS: close_notify received), or a negative errno (-ETIMEDOUT when deadline passed,
	 * -ECANCELED when the task was cancelled; neither loses bytes: what arrives meanwhile
	 * is returned by the next read; the transport's own errors, e.g. -EPROTO for a
	 * truncated TLS stream). */
	ssize_t (*read)(void *ctx, void *buf, size_t len, int64_t deadline);
	/* Write all cnt entries of iov (their total > 0): the total, or a negative errno. A
	 * partial write is never returned; after an error the sending side is broken. */
	ssize_t (*writev)(void *ctx, const struct iovec *iov, int cnt, int64_t deadline);
	/* End the sending side in order (TLS: close_notify; plain: shutdown(SHUT_WR)). 0 or a
	 * negative errno. */
	int (*shutdown)(void *ctx, int64_t deadline);
	/* Free ctx. Does not close the socket (the stream's owner does). May suspend briefly,
	 * not cancellably. */
	void (*destroy)(void *ctx);
};

/* A stream over transport io (its state ctx) on socket fd, configured as cfg (NULL: the
 * defaults); the stream owns ctx from then on, and destroys it with the stream (also when
 * this fails). 0 and *out, or -EINVAL, -ENOMEM, -EPERM (off a task). Thread: task.
 * Suspends: no. */
int rotor__stream_create_io(int fd, const struct rotor__stream_io *io, void *ctx,
                            const struct rotor_stream_config *cfg, struct rotor_stream **out);

/* The calling worker's pool of receive buffers that plain streams share (made on first use,
 * freed when the worker exits): a transport may receive through it too. 0 and *out, or
 * -ENOMEM, -EPERM (off a task), or rotor_bufring_create's error. Thread: task.
 * Suspends: no. */
int rotor__stream_pool(struct rotor_bufring **out);

/* The transport state of s if s runs on io, else NULL (for calls such as a TLS session's
 * ALPN protocol on a stream). Thread: any. Suspends: no. */
void *rotor__stream_io_ctx(const struct rotor_stream *s, const struct rotor__stream_io *io);

#endif
