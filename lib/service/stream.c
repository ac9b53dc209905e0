/*
 * Buffered streams (include/rotor/stream.h). Input sits in at most two places, in order: the
 * stream's own buffer (in[in_off, in_off + in_len)), then the unread rest of the receive
 * buffer the transport handed over last (cur[0, cur_len)), which a plain socket's receive
 * stream keeps until its next call. Calls see the front contiguously: the own buffer when it
 * holds anything, else cur, zero-copy. Bytes move into the own buffer only when a caller needs
 * more than cur holds (a frame across receive buffers), and cur is always empty when the
 * transport is asked for more, so nothing the receive stream takes back is still referred to.
 * The own buffer never holds more than max_input. Output gathers in out[0, out_len); the first
 * out_flight bytes of it are in the kernel while a sender holds wlock, and writes that fit go
 * on appending behind them. Everything belongs to the creating worker: no atomics.
 */
#include "core.h"
#include "stream.h"

#include <rotor/stream.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define DEFAULT_MAX_INPUT (64 * 1024)
#define DEFAULT_OUTPUT    (16 * 1024)
/* The worker's own pool for plain streams: what examples/http_server.c uses, 2 MiB. */
#define POOL_BUFFERS     512
#define POOL_BUFFER_SIZE 4096
/* The own buffer's first size, and a transport's reads into it. */
#define IN_FIRST (8 * 1024)
/* A frame across receive buffers: copy at least this much of the next one (or as much as is
 * already gathered, doubling), so a parser that asks for one byte more each time gathers in
 * O(n), while the rest of that buffer stays zero-copy for the frames after it. */
#define GATHER_MIN 256
/* Entries of a send vector kept on the task's stack; a longer writev allocates one. */
#define IOV_STACK 16
#define IOV_CAP   1024 /* IOV_MAX: the out buffer and 1023 of the caller's */
/* Output buffers of the default size kept per worker for the next stream that writes. */
#define SPARE_OUT 16

/* What a worker keeps for its streams (a worker-local object). */
struct worker_streams {
	struct rotor_bufring *pool; /* plain streams' default pool, made on first use */
	int spares;
	char *spare[SPARE_OUT];
};

struct rotor_stream {
	struct rotor__worker *w;
	struct worker_streams *ws;
	int fd;
	const struct rotor__stream_io *io; /* NULL: a plain socket, read through rs */
	void *ctx;
	struct rotor_recv_stream *rs;
	bool own_pool; /* rs receives into the worker's pool: the stream may move (detach) */
	size_t max_input, out_size;
	/* input */
	char *in;
	size_t in_off, in_len, in_cap;
	const char *cur;
	size_t cur_len;
	struct rotor_task *reader; /* the task in a reading call */
	int rerr;                  /* sticky: the receive failed */
	bool eof;
	/* output */
	bool shut;
	int werr; /* sticky: a send failed */
	char *out;
	size_t out_len, out_flight;
	struct rotor_mutex wlock; /* held by the task that sends */
	struct rotor_task *sender;
	int wwaiting; /* tasks waiting for wlock */
	int wqueued;  /* of those, the ones with bytes to place (not a bare flush) */
};

/* ---- the worker's pool and spare buffers ---- */

static int ws_key = -1;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_free(void *v)
{
	struct worker_streams *ws = v;
	/* A stream left undestroyed keeps the pool registered (-EBUSY): the ring goes with
	 * the worker anyway. */
	if (ws->pool)
		rotor_bufring_destroy(ws->pool);
	for (int i = 0; i < ws->spares; i++)
		free(ws->spare[i]);
	free(ws);
}

static void ws_key_make(void)
{
	ws_key = rotor_key_create(ws_free);
}

static void *ws_new(void *arg)
{
	(void)arg;
	return calloc(1, sizeof(struct worker_streams));
}

static int worker_streams(struct worker_streams **out)
{
	pthread_once(&ws_once, ws_key_make);
	if (ws_key < 0)
		return -ENOMEM;
	return rotor_worker_local(ws_key, ws_new, NULL, (void **)out);
}

int rotor__stream_pool(struct rotor_bufring **out)
{
	struct worker_streams *ws;
	int err = worker_streams(&ws);
	if (err < 0)
		return err;
	if (!ws->pool &&
	    (err = rotor_bufring_create(POOL_BUFFERS, POOL_BUFFER_SIZE, &ws->pool)) < 0)
		return err;
	*out = ws->pool;
	return 0;
}

/* ---- creating and destroying ---- */

/* A stream with no transport yet in *sp (out is only checked). */
static int stream_new(int fd, const struct rotor_stream_config *cfg, struct rotor_stream **out,
                      struct rotor_stream **sp)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w || !rotor__task_self())
		return -EPERM;
	if (!out || fd < 0)
		return -EINVAL;
	struct worker_streams *ws;
	int err = worker_streams(&ws);
	if (err < 0)
		return err;
	struct rotor_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->w = w;
	s->ws = ws;
	s->fd = fd;
	s->max_input = cfg && cfg->max_input ? cfg->max_input : DEFAULT_MAX_INPUT;
	s->out_size = cfg && cfg->output_size ? cfg->output_size : DEFAULT_OUTPUT;
	rotor_mutex_init_local(&s->wlock);
	*sp = s;
	return 0;
}

int rotor_stream_create(int fd, const struct rotor_stream_config *cfg, struct rotor_stream **out)
{
	struct rotor_stream *s;
	int err = stream_new(fd, cfg, out, &s);
	if (err < 0)
		return err;
	struct rotor_bufring *pool = cfg ? cfg->bufring : NULL;
	s->own_pool = !pool;
	if ((!pool && (err = rotor__stream_pool(&pool)) < 0) ||
	    (err = rotor_recv_stream_create(fd, pool, &s->rs)) < 0) {
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

int rotor__stream_create_io(int fd, const struct rotor__stream_io *io, void *ctx,
                            const struct rotor_stream_config *cfg, struct rotor_stream **out)
{
	if (!io || !io->read || !io->writev || !io->shutdown || !io->destroy) {
		if (io && io->destroy)
			io->destroy(ctx);
		return -EINVAL;
	}
	struct rotor_stream *s;
	int err = stream_new(fd, cfg, out, &s);
	if (err < 0) {
		io->destroy(ctx);
		return err;
	}
	s->io = io;
	s->ctx = ctx;
	*out = s;
	return 0;
}

void *rotor__stream_io_ctx(const struct rotor_stream *s, const struct rotor__stream_io *io)
{
	return s && io && s->io == io ? s->ctx : NULL;
}

int rotor_stream_fd(const struct rotor_stream *s)
{
	return s ? s->fd : -EINVAL;
}

/* 0 if the calling task may use s, else -EINVAL or -EPERM. */
static int owner(const struct rotor_stream *s)
{
	if (!s)
		return -EINVAL;
	struct rotor__worker *w = rotor__worker_self();
	return w && w == s->w && rotor__task_self() ? 0 : -EPERM;
}

static void out_release(struct rotor_stream *s)
{
	if (!s->out)
		return;
	if (s->out_size == DEFAULT_OUTPUT && s->ws->spares < SPARE_OUT)
		s->ws->spare[s->ws->spares++] = s->out;
	else
		free(s->out);
	s->out = NULL;
}

static int out_acquire(struct rotor_stream *s)
{
	if (s->out)
		return 0;
	if (s->out_size == DEFAULT_OUTPUT && s->ws->spares)
		s->out = s->ws->spare[--s->ws->spares];
	else
		s->out = malloc(s->out_size);
	return s->out ? 0 : -ENOMEM;
}

int rotor_stream_destroy(struct rotor_stream *s)
{
	if (s && !s->w) {
		/* Detached: nothing in the kernel, no output, any thread. */
		free(s->in);
		free(s);
		return 0;
	}
	int err = owner(s);
	if (err < 0)
		return err;
	if (s->reader || s->sender || s->wwaiting)
		return -EBUSY;
	if (s->rs)
		rotor_recv_stream_destroy(s->rs); /* gives back cur's buffer and every queued one */
	if (s->io)
		s->io->destroy(s->ctx);
	out_release(s);
	free(s->in);
	free(s);
	return 0;
}

/* ---- reading ---- */

static int begin_read(struct rotor_stream *s)
{
	int err = owner(s);
	if (err < 0)
		return err;
	if (s->reader)
		return -EBUSY;
	s->reader = rotor__task_self();
	return 0;
}

static inline ssize_t end_read(struct rotor_stream *s, ssize_t r)
{
	s->reader = NULL;
	return r;
}

/* The contiguous bytes at the front: the own buffer's, or else cur's. */
static size_t front(const struct rotor_stream *s, const char **p)
{
	if (s->in_len) {
		*p = s->in + s->in_off;
		return s->in_len;
	}
	*p = s->cur;
	return s->cur_len;
}

static void take(struct rotor_stream *s, size_t n)
{
	size_t k = n < s->in_len ? n : s->in_len;
	s->in_off += k;
	s->in_len -= k;
	if (!s->in_len)
		s->in_off = 0;
	s->cur += n - k;
	s->cur_len -= n - k;
}

/* Room for need more bytes after the own buffer's (need <= max_input - in_len). */
static int make_room(struct rotor_stream *s, size_t need)
{
	if (s->in_cap - s->in_off - s->in_len >= need)
		return 0;
	if (s->in_cap - s->in_len >= need) {
		memmove(s->in, s->in + s->in_off, s->in_len);
		s->in_off = 0;
		return 0;
	}
	size_t cap = s->in_cap ? s->in_cap : IN_FIRST;
	while (cap < s->in_len + need && cap <= s->max_input / 2)
		cap *= 2;
	if (cap < s->in_len + need || cap > s->max_input)
		cap = s->max_input;
	char *p = malloc(cap);
	if (!p)
		return -ENOMEM;
	if (s->in_len)
		memcpy(p, s->in + s->in_off, s->in_len);
	free(s->in);
	s->in = p;
	s->in_off = 0;
	s->in_cap = cap;
	return 0;
}

/* Move n of cur's bytes behind the own buffer's. */
static int gather(struct rotor_stream *s, size_t n)
{
	int err = make_room(s, n);
	if (err < 0)
		return err;
	memcpy(s->in + s->in_off + s->in_len, s->cur, n);
	s->in_len += n;
	s->cur += n;
	s->cur_len -= n;
	return 0;
}

/* More bytes from the transport, cur being empty: the count, 0 at end of stream, or the
 * error (made sticky unless it ended only this wait). */
static ssize_t pull(struct rotor_stream *s, size_t want, int64_t deadline)
{
	ssize_t n;
	if (s->eof)
		return 0;
	if (s->rerr)
		return s->rerr;
	if (!s->io) {
		if (!s->in_len && s->in) {
			/* Nothing gathered: an idle stream holds no buffer of its own. */
			free(s->in);
			s->in = NULL;
			s->in_cap = s->in_off = 0;
		}
		const void *data;
		n = rotor_recv_stream_next(s->rs, &data, deadline);
		if (n > 0) {
			s->cur = data;
			s->cur_len = (size_t)n;
		}
	} else {
		/* A transport reads into the own buffer, as much as it has room for. */
		size_t need = want > s->in_len ? want - s->in_len : 1;
		if (make_room(s, need) < 0)
			return -ENOMEM;
		size_t room = s->in_cap - s->in_off - s->in_len;
		if (room < IN_FIRST / 8 && s->in_off) {
			/* Not a trickle of reads into the end of the buffer: move the bytes up. */
			memmove(s->in, s->in + s->in_off, s->in_len);
			s->in_off = 0;
			room = s->in_cap - s->in_len;
		}
		n = s->io->read(s->ctx, s->in + s->in_off + s->in_len, room, deadline);
		if (n > 0)
			s->in_len += (size_t)n;
	}
	if (n == 0)
		s->eof = true;
	else if (n < 0 && n != -ETIMEDOUT && n != -ECANCELED)
		s->rerr = (int)n;
	return n;
}

/*
 * Make at least want (1..max_input) bytes contiguous at the front. exact: gather only what
 * is missing (the next frame stays in cur, zero-copy); else gather generously (a parser
 * that does not know its frame's length asks again with one byte more). Returns the
 * contiguous count (>= want), 0 at end of stream with nothing buffered, -ENODATA at end of
 * stream with fewer than want, or the pull's error.
 */
static ssize_t fill(struct rotor_stream *s, size_t want, bool exact, int64_t deadline)
{
	for (;;) {
		int err = 0;
		if (s->in_len) {
			if (s->in_len >= want)
				return (ssize_t)s->in_len;
			if (s->cur_len) {
				size_t need = want - s->in_len, n = need;
				if (!exact) {
					n = s->in_len > GATHER_MIN ? s->in_len : GATHER_MIN;
					n = n > need ? n : need;
					if (n > s->max_input - s->in_len)
						n = s->max_input - s->in_len;
				}
				if (n > s->cur_len)
					n = s->cur_len;
				if ((err = gather(s, n)) < 0)
					return err;
				continue;
			}
		} else if (s->cur_len >= want) {
			return (ssize_t)s->cur_len;
		} else if (s->cur_len) {
			if ((err = gather(s, s->cur_len)) < 0)
				return err;
			continue;
		}
		ssize_t n = pull(s, want, deadline);
		if (n == 0)
			return s->in_len ? -ENODATA : 0;
		if (n < 0)
			return n;
	}
}

ssize_t rotor_stream_read(struct rotor_stream *s, void *buf, size_t len, int64_t deadline)
{
	int err = begin_read(s);
	if (err < 0)
		return err;
	if (!buf || !len)
		return end_read(s, -EINVAL);
	if (!s->in_len && !s->cur_len) {
		ssize_t n = fill(s, 1, true, deadline);
		if (n <= 0)
			return end_read(s, n);
	}
	size_t done = 0;
	while (done < len && (s->in_len || s->cur_len)) {
		const char *p;
		size_t n = front(s, &p);
		if (n > len - done)
			n = len - done;
		memcpy((char *)buf + done, p, n);
		take(s, n);
		done += n;
	}
	return end_read(s, (ssize_t)done);
}

ssize_t rotor_stream_read_exact(struct rotor_stream *s, void *buf, size_t n, int64_t deadline)
{
	int err = begin_read(s);
	if (err < 0)
		return err;
	if (!buf || !n)
		return end_read(s, -EINVAL);
	if (n > s->max_input)
		return end_read(s, -EMSGSIZE);
	ssize_t r = fill(s, n, true, deadline);
	if (r <= 0)
		return end_read(s, r);
	const char *p;
	front(s, &p);
	memcpy(buf, p, n);
	take(s, n);
	return end_read(s, (ssize_t)n);
}

ssize_t rotor_stream_read_until(struct rotor_stream *s, const void *delim, size_t dlen, size_t max,
                                const void **line, int64_t deadline)
{
	int err = begin_read(s);
	if (err < 0)
		return err;
	if (!delim || !dlen || !line)
		return end_read(s, -EINVAL);
	if (!max || max > s->max_input)
		max = s->max_input;
	if (dlen > max)
		return end_read(s, -EMSGSIZE);
	size_t scanned = 0; /* bytes at the front known to hold no whole delimiter */
	for (;;) {
		const char *p;
		size_t n = front(s, &p), lim = n < max ? n : max;
		size_t from = scanned >= dlen - 1 ? scanned - (dlen - 1) : 0;
		if (lim > from) {
			const char *hit = dlen == 1
			                      ? memchr(p + from, *(const char *)delim, lim - from)
			                      : memmem(p + from, lim - from, delim, dlen);
			if (hit) {
				size_t len = (size_t)(hit - p) + dlen;
				*line = p;
				take(s, len);
				return end_read(s, (ssize_t)len);
			}
		}
		if (n >= max)
			return end_read(s, -EMSGSIZE);
		scanned = n;
		ssize_t r = fill(s, n + 1, false, deadline);
		if (r <= 0)
			return end_read(s, r);
	}
}

ssize_t rotor_stream_peek(struct rotor_stream *s, size_t want, const void **data, int64_t deadline)
{
	int err = begin_read(s);
	if (err < 0)
		return err;
	if (!data)
		return end_read(s, -EINVAL);
	if (want > s->max_input)
		return end_read(s, -EMSGSIZE);
	ssize_t r;
	if (want) {
		r = fill(s, want, false, deadline);
		if (r <= 0)
			return end_read(s, r);
	}
	const char *p;
	r = (ssize_t)front(s, &p);
	*data = r ? p : NULL;
	return end_read(s, r);
}

int rotor_stream_consume(struct rotor_stream *s, size_t n)
{
	int err = owner(s);
	if (err < 0)
		return err;
	if (s->reader)
		return -EBUSY;
	if (n > s->in_len + s->cur_len)
		return -EINVAL;
	take(s, n);
	return 0;
}

/* ---- writing ---- */

enum put_how { PUT_WRITE, PUT_FLUSH, PUT_SHUTDOWN };

/* Send all cnt (> 0) entries of v (which this advances): 0 or a negative errno. */
static int send_all(struct rotor_stream *s, struct iovec *v, int cnt, int64_t deadline)
{
	if (s->io) {
		ssize_t r = s->io->writev(s->ctx, v, cnt, deadline);
		return r < 0 ? (int)r : 0;
	}
	while (cnt) {
		ssize_t n;
		/* MSG_WAITALL: the kernel goes on with the rest of a partial send itself. */
		if (cnt == 1) {
			n = rotor_send(s->fd, v->iov_base, v->iov_len, MSG_WAITALL, deadline);
		} else {
			struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)cnt};
			n = rotor_sendmsg(s->fd, &m, MSG_WAITALL, deadline);
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EPIPE;
		for (size_t k = (size_t)n; k;) {
			if (k >= v->iov_len) {
				k -= v->iov_len;
				v++;
				cnt--;
			} else {
				v->iov_base = (char *)v->iov_base + k;
				v->iov_len -= k;
				k = 0;
			}
		}
	}
	return 0;
}

static void copy_in(struct rotor_stream *s, const struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++) {
		if (!iov[i].iov_len)
			continue;
		memcpy(s->out + s->out_len, iov[i].iov_base, iov[i].iov_len);
		s->out_len += iov[i].iov_len;
	}
}

/* With wlock held: send out[0, out_len) and then iov, in one SQE when they fit a vector. */
static int send_out(struct rotor_stream *s, const struct iovec *iov, int cnt, int64_t deadline)
{
	struct iovec stack[IOV_STACK], *v = stack;
	if (cnt + 1 > IOV_STACK && !(v = malloc((size_t)(cnt + 1) * sizeof(*v))))
		return -ENOMEM;
	int n = 0;
	if (s->out_len)
		v[n++] = (struct iovec){s->out, s->out_len};
	for (int i = 0; i < cnt; i++)
		if (iov[i].iov_len)
			v[n++] = iov[i];
	int err = 0;
	if (n) {
		/* Not sent at all is not broken: a task cancelled, or a deadline already
		 * past, leaves the stream as it was. */
		if (rotor__task_cancelled(rotor__task_self()))
			err = -ECANCELED;
		else if (deadline != ROTOR_FOREVER && rotor_now() >= deadline)
			err = -ETIMEDOUT;
		if (err < 0)
			goto out;
		s->out_flight = s->out_len;
		err = send_all(s, v, n, deadline);
		/* Writes that fit went on behind the bytes in flight: keep them. */
		s->out_len -= s->out_flight;
		if (s->out_len)
			memmove(s->out, s->out + s->out_flight, s->out_len);
		s->out_flight = 0;
		if (err < 0)
			s->werr = err;
	}
	if (!s->out_len)
		out_release(s);
out:
	if (v != stack)
		free(v);
	return err;
}

static ssize_t put(struct rotor_stream *s, const struct iovec *iov, int cnt, enum put_how how,
                   int64_t deadline)
{
	int err = owner(s);
	if (err < 0)
		return err;
	if (cnt < 0 || cnt >= IOV_CAP || (cnt && !iov))
		return -EINVAL;
	size_t total = 0;
	for (int i = 0; i < cnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	if (s->werr)
		return s->werr;
	if (s->shut)
		return -EPIPE;
	/* Bytes that fit go behind what is buffered (or in flight), unless a writer that came
	 * first still waits to place its own. */
	if (how == PUT_WRITE && !s->wqueued && s->out_size - s->out_len >= total) {
		if (total && (err = out_acquire(s)) < 0)
			return err;
		copy_in(s, iov, cnt);
		return (ssize_t)total;
	}
	if (how == PUT_FLUSH && !total && !s->out_len && !s->sender && !s->wwaiting)
		return 0;
	/* A bare flush places no bytes: writes made while it waits go on appending, and the
	 * first flush to get the lock sends them all (the flushes of many tasks in a turn
	 * share a send). */
	bool places = total > 0;
	s->wwaiting++;
	s->wqueued += places;
	err = rotor_mutex_lock_until(&s->wlock, deadline);
	s->wwaiting--;
	s->wqueued -= places;
	if (err < 0)
		return err; /* nothing written */
	s->sender = rotor__task_self();
	if (s->werr || s->shut) {
		err = s->werr ? s->werr : -EPIPE;
	} else if (how == PUT_WRITE && s->out_size - s->out_len >= total) {
		if (total && (err = out_acquire(s)) == 0)
			copy_in(s, iov, cnt);
	} else {
		err = send_out(s, iov, cnt, deadline);
		if (err == 0 && how == PUT_SHUTDOWN) {
			err = s->io ? s->io->shutdown(s->ctx, deadline)
			            : rotor_shutdown(s->fd, SHUT_WR, deadline);
			if (err < 0)
				s->werr = err;
			else
				s->shut = true;
		}
	}
	s->sender = NULL;
	rotor_mutex_unlock(&s->wlock);
	return err < 0 ? err : (ssize_t)total;
}

ssize_t rotor_stream_write(struct rotor_stream *s, const void *buf, size_t len, int64_t deadline)
{
	/* The call protocol code makes for every token: straight into the buffer when it
	 * fits, with put's checks but none of its vector handling. */
	if (owner(s) == 0 && s->out && buf && !s->wqueued && !s->werr && !s->shut &&
	    s->out_size - s->out_len >= len) {
		memcpy(s->out + s->out_len, buf, len);
		s->out_len += len;
		return (ssize_t)len;
	}
	struct iovec v = {(void *)buf, len};
	return put(s, &v, 1, PUT_WRITE, deadline);
}

ssize_t rotor_stream_writev(struct rotor_stream *s, const struct iovec *iov, int cnt,
                            int64_t deadline)
{
	return put(s, iov, cnt, PUT_WRITE, deadline);
}

ssize_t rotor_stream_write_all(struct rotor_stream *s, const void *buf, size_t len,
                               int64_t deadline)
{
	struct iovec v = {(void *)buf, len};
	return put(s, &v, 1, PUT_FLUSH, deadline);
}

int rotor_stream_flush(struct rotor_stream *s, int64_t deadline)
{
	ssize_t r = put(s, NULL, 0, PUT_FLUSH, deadline);
	return r < 0 ? (int)r : 0;
}

int rotor_stream_shutdown(struct rotor_stream *s, int64_t deadline)
{
	ssize_t r = put(s, NULL, 0, PUT_SHUTDOWN, deadline);
	return r < 0 ? (int)r : 0;
}

/* ---- moving to another worker ---- */

int rotor_stream_detach(struct rotor_stream *s)
{
	int err = owner(s);
	if (err < 0)
		return err;
	if (s->reader || s->sender || s->wwaiting || s->out_len)
		return -EBUSY;
	if (s->io || !s->own_pool)
		return -EOPNOTSUPP;
	if (s->eof || s->rerr)
		return -ESHUTDOWN;
	if (s->cur_len > s->max_input - s->in_len)
		return -EMSGSIZE;
	/* cur's rest first, then what the receive stream holds: room for a few buffers, and
	 * if that is not enough, for all the limit allows. */
	size_t room = s->cur_len + 4 * POOL_BUFFER_SIZE;
	for (int pass = 0; pass < 2; pass++) {
		if (room > s->max_input - s->in_len || pass)
			room = s->max_input - s->in_len;
		if ((err = make_room(s, room)) < 0)
			return err;
		if (s->cur_len)
			gather(s, s->cur_len); /* fits: made room for it */
		char *end = s->in + s->in_off + s->in_len;
		ssize_t n = rotor_recv_stream_detach(s->rs, end, s->in_cap - s->in_off - s->in_len);
		if (n >= 0) {
			s->in_len += (size_t)n;
			s->rs = NULL;
			s->cur = NULL;
			s->w = NULL;
			s->ws = NULL;
			free(s->out); /* empty: out_len is 0 */
			s->out = NULL;
			return 0;
		}
		/* -EMSGSIZE or -ESHUTDOWN: the receive stream is as it was, its recv re-armed
		 * by the next read. */
		if (n != -EMSGSIZE)
			return (int)n;
	}
	return -EMSGSIZE;
}

int rotor_stream_attach(struct rotor_stream *s)
{
	if (!s)
		return -EINVAL;
	if (!rotor__worker_self() || !rotor__task_self())
		return -EPERM;
	if (s->w)
		return -EINVAL;
	struct worker_streams *ws;
	struct rotor_bufring *pool;
	int err;
	if ((err = worker_streams(&ws)) < 0 || (err = rotor__stream_pool(&pool)) < 0 ||
	    (err = rotor_recv_stream_create(s->fd, pool, &s->rs)) < 0)
		return err;
	s->w = rotor__worker_self();
	s->ws = ws;
	rotor_mutex_init_local(&s->wlock); /* a local mutex knows its worker */
	return 0;
}
