/*
 * Provided buffer rings and multishot receive streams. A buffer ring is a pool of equal
 * buffers registered with one worker's ring (a buffer group); a stream keeps one multishot
 * recv armed on a socket, and each CQE names the buffer the kernel filled. Filled buffers
 * wait on the stream's list (linked through the ring's per-buffer arrays, so a completion
 * never allocates) until the owner takes them; a taken buffer goes back to the kernel at
 * the stream's next call. Everything here belongs to one worker: no locks.
 *
 * -ENOBUFS ends a multishot recv without ending the stream: the stream waits on the ring's
 * starved list and is re-armed when a buffer comes back. Where the kernel has no buffer
 * rings (or ROTOR_NO_BUFRING), each stream owns one buffer and receives with plain recvs:
 * same calls, same results.
 *
 * Streams live in a type-stable pool (core/handle.h): a handle used after the stream's
 * destroy or detach gets -EINVAL, even once its slot holds another stream.
 */
#include "io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BUFRING_MAX_COUNT 32768u /* the kernel's limit on a buffer ring's entries */
#define BUFRING_MAX_SIZE  (1u << 24)
#define NO_BUF            (-1)

struct rotor_bufring {
	struct rotor__worker *w;
	struct io_uring_buf_ring *ring; /* NULL: no kernel buffer ring, streams own buffers */
	size_t ring_bytes;
	char *base; /* count buffers of size bytes */
	size_t base_bytes;
	size_t size;
	unsigned count;
	uint16_t bgid;
	unsigned streams;
	unsigned avail; /* buffers in the kernel's ring, as far as the CQEs reaped tell */
	uint32_t *len;  /* per buffer: bytes the kernel put in it */
	int32_t *next;  /* per buffer: the next filled buffer of the same stream */
	struct rotor_recv_stream *starved, *starved_tail; /* ran out of buffers: re-arm later */
};

struct rotor_recv_stream {
	struct rotor__multi multi; /* first: the completion's user_data points here */
	struct rotor_bufring *br;
	int fd;         /* as the caller gave it (maybe a registered descriptor) */
	int kfd;        /* as the kernel takes it */
	bool fixed;     /* kfd is a slot of the worker's registered files */
	bool armed;     /* a multishot recv is in the kernel */
	bool starved;   /* on br's starved list */
	bool closing;   /* destroy: cancel sent, waiting for the last completion */
	bool detaching; /* detach: cancel sent, still queueing what arrives */
	bool eof;
	int error;          /* sticky: the recv failed */
	int32_t head, tail; /* filled buffers not yet taken */
	int32_t held;       /* the buffer the owner holds, returned at the next call */
	char *own;          /* without a kernel buffer ring: the stream's one buffer */
	struct rotor_recv_stream *starved_next;
	struct rotor_task *waiter;
};

static _Thread_local uint16_t next_bgid;
static struct rotor__pool streams = ROTOR__POOL_INIT(struct rotor_recv_stream, RECV_STREAM);

static struct rotor__worker *owner_task(int *err)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w || !rotor__task_self()) {
		*err = -EPERM;
		return NULL;
	}
	return w;
}

int rotor_bufring_create(unsigned count, size_t size, struct rotor_bufring **out)
{
	int err;
	struct rotor__worker *w = owner_task(&err);
	if (!w)
		return err;
	if (!out || !count || count > BUFRING_MAX_COUNT || (count & (count - 1)) || !size ||
	    size > BUFRING_MAX_SIZE)
		return -EINVAL;
	struct rotor_bufring *br = rotor__calloc(ROTOR__FAULT_BUFRING, 1, sizeof(*br));
	if (!br)
		return -ENOMEM;
	br->w = w;
	br->size = size;
	br->count = count;
	if (rotor__runtime_config(rotor__worker_runtime(w))->flags & ROTOR_NO_BUFRING)
		goto done; /* streams own their buffers */
	br->len = rotor__malloc(ROTOR__FAULT_BUFRING_LENS, count * sizeof(*br->len));
	br->next = rotor__malloc(ROTOR__FAULT_BUFRING_NEXT, count * sizeof(*br->next));
	br->base_bytes = (size_t)count * size;
	br->base = rotor__mmap(ROTOR__FAULT_BUFRING_BASE, br->base_bytes, PROT_READ | PROT_WRITE,
	                       MAP_PRIVATE | MAP_ANONYMOUS);
	br->ring_bytes = count * sizeof(struct io_uring_buf);
	br->ring = rotor__mmap(ROTOR__FAULT_BUFRING_RING, br->ring_bytes, PROT_READ | PROT_WRITE,
	                       MAP_PRIVATE | MAP_ANONYMOUS);
	if (!br->len || !br->next || br->base == MAP_FAILED || br->ring == MAP_FAILED) {
		err = -ENOMEM;
		goto fail;
	}
	io_uring_buf_ring_init(br->ring);
	int mask = io_uring_buf_ring_mask(count);
	for (unsigned i = 0; i < count; i++)
		io_uring_buf_ring_add(br->ring, br->base + (size_t)i * size, (unsigned)size,
		                      (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(br->ring, (int)count);
	br->avail = count;
	/* Group ids are the worker's own; one left registered by a user's raw call is skipped. */
	for (unsigned tries = 0;; tries++) {
		struct io_uring_buf_reg reg = {
		    .ring_addr = (uint64_t)(uintptr_t)br->ring,
		    .ring_entries = count,
		    .bgid = next_bgid,
		};
		br->bgid = next_bgid++;
		err = ROTOR__FAULT_ERR(BUFRING_REGISTER,
		                       io_uring_register_buf_ring(rotor__worker_ring(w), &reg, 0));
		if (err == 0)
			goto done;
		if (err != -EEXIST || tries == 65535)
			break;
	}
	if (err == -EINVAL || err == -ENOSYS || err == -EOPNOTSUPP) {
		/* A kernel before 5.19: fall back to a buffer per stream. */
		rotor__munmap(ROTOR__FAULT_BUFRING_RING, br->ring, br->ring_bytes);
		rotor__munmap(ROTOR__FAULT_BUFRING_BASE, br->base, br->base_bytes);
		rotor__free(ROTOR__FAULT_BUFRING_LENS, br->len);
		rotor__free(ROTOR__FAULT_BUFRING_NEXT, br->next);
		br->ring = NULL;
		br->base = NULL;
		br->len = NULL;
		br->next = NULL;
		goto done;
	}
fail:
	if (br->ring && br->ring != MAP_FAILED)
		rotor__munmap(ROTOR__FAULT_BUFRING_RING, br->ring, br->ring_bytes);
	if (br->base && br->base != MAP_FAILED)
		rotor__munmap(ROTOR__FAULT_BUFRING_BASE, br->base, br->base_bytes);
	rotor__free(ROTOR__FAULT_BUFRING_LENS, br->len);
	rotor__free(ROTOR__FAULT_BUFRING_NEXT, br->next);
	rotor__free(ROTOR__FAULT_BUFRING, br);
	return err == -ENOMEM ? err : err < 0 ? err : -ENOMEM;
done:
	*out = br;
	return 0;
}

int rotor_bufring_destroy(struct rotor_bufring *br)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!br)
		return -EINVAL;
	if (!w || br->w != w)
		return -EPERM;
	if (br->streams)
		return -EBUSY;
	if (br->ring) {
		io_uring_unregister_buf_ring(rotor__worker_ring(w), br->bgid);
		rotor__munmap(ROTOR__FAULT_BUFRING_RING, br->ring, br->ring_bytes);
		rotor__munmap(ROTOR__FAULT_BUFRING_BASE, br->base, br->base_bytes);
	}
	rotor__free(ROTOR__FAULT_BUFRING_LENS, br->len);
	rotor__free(ROTOR__FAULT_BUFRING_NEXT, br->next);
	rotor__free(ROTOR__FAULT_BUFRING, br);
	return 0;
}

static void stream_arm(struct rotor_recv_stream *s)
{
	struct io_uring_sqe *sqe = rotor__sqe(s->br->w);
	io_uring_prep_recv_multishot(sqe, s->kfd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT | (s->fixed ? IOSQE_FIXED_FILE : 0);
	sqe->buf_group = s->br->bgid;
	io_uring_sqe_set_data64(sqe, rotor__tag(&s->multi, ROTOR__TAG_MULTI));
	s->armed = true;
}

/* Hand buffer bid back to the kernel; a stream that ran dry gets to try again. */
static void give_back(struct rotor_bufring *br, int32_t bid)
{
	io_uring_buf_ring_add(br->ring, br->base + (size_t)bid * br->size, (unsigned)br->size,
	                      (unsigned short)bid, io_uring_buf_ring_mask(br->count), 0);
	/* Release store of the tail (in liburing): the kernel sees the entry before the tail. */
	io_uring_buf_ring_advance(br->ring, 1);
	br->avail++;
	struct rotor_recv_stream *s = br->starved;
	if (s) {
		br->starved = s->starved_next;
		if (!br->starved)
			br->starved_tail = NULL;
		s->starved = false;
		if (!s->closing && !s->armed)
			stream_arm(s);
	}
}

static void starve(struct rotor_recv_stream *s)
{
	struct rotor_bufring *br = s->br;
	if (br->avail) {
		/* Buffers came back after the kernel ran dry and before we reaped it. */
		stream_arm(s);
		return;
	}
	s->starved = true;
	s->starved_next = NULL;
	if (br->starved_tail)
		br->starved_tail->starved_next = s;
	else
		br->starved = s;
	br->starved_tail = s;
}

static void unstarve(struct rotor_recv_stream *s)
{
	struct rotor_bufring *br = s->br;
	struct rotor_recv_stream **pp = &br->starved, *prev = NULL;
	while (*pp && *pp != s) {
		prev = *pp;
		pp = &(*pp)->starved_next;
	}
	if (*pp) {
		*pp = s->starved_next;
		if (br->starved_tail == s)
			br->starved_tail = prev;
	}
	s->starved = false;
}

static void stream_wake(struct rotor__worker *w, struct rotor_recv_stream *s, int res)
{
	struct rotor_task *t = s->waiter;
	if (!t)
		return;
	s->waiter = NULL;
	rotor__task_end_wait(w, t, res);
}

static void stream_complete(struct rotor__worker *w, struct rotor__multi *m,
                            struct io_uring_cqe *cqe)
{
	struct rotor_recv_stream *s = rotor__container_of(m, struct rotor_recv_stream, multi);
	struct rotor_bufring *br = s->br;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		s->armed = false;
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		int32_t bid = (int32_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		br->avail--;
		if (cqe->res > 0 && !s->closing) {
			br->len[bid] = (uint32_t)cqe->res;
			br->next[bid] = NO_BUF;
			if (s->tail != NO_BUF)
				br->next[s->tail] = bid;
			else
				s->head = bid;
			s->tail = bid;
		} else {
			give_back(br, bid);
		}
	}
	if (s->closing) {
		if (!s->armed)
			stream_wake(w, s, 0);
		return;
	}
	if (s->detaching) {
		/* Data is queued above; the cancel's own -ECANCELED, or a recv that ran out of
		 * buffers, ends the recv without ending the stream. */
		if (cqe->res == 0)
			s->eof = true;
		else if (cqe->res < 0 && cqe->res != -ECANCELED && cqe->res != -ENOBUFS)
			s->error = cqe->res;
		if (!s->armed)
			stream_wake(w, s, 0);
		return;
	}
	if (cqe->res == 0)
		s->eof = true;
	else if (cqe->res == -ENOBUFS && !s->armed && !s->starved)
		starve(s); /* not the end of the stream: re-armed when a buffer comes back */
	else if (cqe->res < 0)
		s->error = cqe->res;
	if (s->head != NO_BUF || s->eof || s->error)
		stream_wake(w, s, 0);
}

int rotor_recv_stream_create(int fd, struct rotor_bufring *br, struct rotor_recv_stream **out)
{
	int err;
	struct rotor__worker *w = owner_task(&err);
	if (!w)
		return err;
	if (!br || !out || fd < 0)
		return -EINVAL;
	if (br->w != w)
		return -EPERM;
	int kfd;
	bool fixed;
	if ((err = rotor__fd_kernel(w, fd, &kfd, &fixed)) < 0)
		return err;
	struct rotor_recv_stream *s = rotor__pool_alloc(&streams);
	if (!s)
		return -ENOMEM;
	if (!br->ring && !(s->own = rotor__malloc(ROTOR__FAULT_RECV_STREAM_BUF, br->size))) {
		rotor__pool_free(s);
		return -ENOMEM;
	}
	s->multi.complete = stream_complete;
	s->br = br;
	s->fd = fd;
	s->kfd = kfd;
	s->fixed = fixed;
	s->head = s->tail = s->held = NO_BUF;
	br->streams++;
	if (br->ring)
		stream_arm(s); /* data that arrives before the first next() is already taken in */
	*out = rotor__handle_of(s);
	return 0;
}

/* The stream handle h names when the calling task may use it now (*w its worker), else NULL
 * with *err set. Inlined: it is on every receive's path. */
static inline __attribute__((always_inline)) struct rotor_recv_stream *
stream_owned(struct rotor_recv_stream *h, struct rotor__worker **w, int *err)
{
	if (!(*w = owner_task(err)))
		return NULL;
	struct rotor_recv_stream *s = rotor__handle_get(&streams, h);
	*err = !s ? -EINVAL : s->br->w != *w ? -EPERM : s->waiter ? -EBUSY : 0;
	return *err ? NULL : s;
}

static void stream_timeout(struct rotor_task *t)
{
	struct rotor_recv_stream *s = rotor__task_wait_obj(t);
	stream_wake(s->br->w, s, -ETIMEDOUT);
}

static void stream_cancel(struct rotor_task *t)
{
	struct rotor_recv_stream *s = rotor__task_wait_obj(t);
	stream_wake(s->br->w, s, -ECANCELED);
}

ssize_t rotor_recv_stream_next(struct rotor_recv_stream *h, const void **data, int64_t deadline)
{
	int err;
	struct rotor__worker *w;
	struct rotor_recv_stream *s = stream_owned(h, &w, &err);
	if (!s)
		return err;
	if (!data)
		return -EINVAL;
	struct rotor_bufring *br = s->br;
	struct rotor_task *t = rotor__task_self();
	if (rotor__task_cancelled(t))
		return -ECANCELED;
	if (s->held != NO_BUF) {
		give_back(br, s->held);
		s->held = NO_BUF;
	}
	if (!br->ring) {
		if (s->eof)
			return 0;
		if (s->error)
			return s->error;
		s->waiter = t; /* for -EBUSY only: the recv's own CQE resumes us */
		ssize_t n = rotor_recv(s->fd, s->own, br->size, 0, deadline);
		s->waiter = NULL;
		if (n == 0)
			s->eof = true;
		else if (n < 0 && n != -ETIMEDOUT && n != -ECANCELED)
			s->error = (int)n;
		*data = n > 0 ? s->own : NULL;
		return n;
	}
	for (;;) {
		if (s->head != NO_BUF) {
			int32_t bid = s->head;
			s->head = br->next[bid];
			if (s->head == NO_BUF)
				s->tail = NO_BUF;
			s->held = bid;
			*data = br->base + (size_t)bid * br->size;
			return br->len[bid];
		}
		if (s->eof)
			return 0;
		if (s->error)
			return s->error;
		if (!s->armed && !s->starved)
			stream_arm(s);
		/* A deadline already past fires at the loop's next timer pass: no clock read. */
		s->waiter = t;
		int r = rotor__task_wait(w, s, stream_cancel, stream_timeout, deadline);
		if (r < 0)
			return r;
	}
}

/* Cancel the recv in the kernel and wait (not cancellable) for its last CQE; what that CQE
 * and any before it carry is handled by stream_complete as s->closing or s->detaching say. */
static void stream_end_recv(struct rotor__worker *w, struct rotor_recv_stream *s)
{
	rotor__cancel_op(w, rotor__tag(&s->multi, ROTOR__TAG_MULTI));
	while (s->armed) {
		s->waiter = rotor__task_self();
		rotor__task_wait(w, NULL, NULL, NULL, ROTOR_FOREVER);
	}
}

static void stream_free(struct rotor_recv_stream *s)
{
	s->br->streams--;
	rotor__free(ROTOR__FAULT_RECV_STREAM_BUF, s->own);
	rotor__pool_free(s);
}

ssize_t rotor_recv_stream_detach(struct rotor_recv_stream *h, void *buf, size_t cap)
{
	int err;
	struct rotor__worker *w;
	struct rotor_recv_stream *s = stream_owned(h, &w, &err);
	if (!s)
		return err;
	if (!buf && cap)
		return -EINVAL;
	struct rotor_bufring *br = s->br;
	if (s->eof || s->error)
		return -ESHUTDOWN;
	if (!br->ring) {
		/* One plain recv per call, none between calls: nothing is queued. */
		stream_free(s);
		return 0;
	}
	if (s->held != NO_BUF) {
		give_back(br, s->held);
		s->held = NO_BUF;
	}
	if (s->starved)
		unstarve(s);
	if (s->armed) {
		/* What the kernel received before the cancel took effect still comes, in order:
		 * keep queueing it until the recv's last completion. */
		s->detaching = true;
		stream_end_recv(w, s);
		s->detaching = false;
	}
	/* Not armed now: a refusal below leaves a stream whose next call re-arms the recv. */
	if (s->eof || s->error)
		return -ESHUTDOWN;
	size_t total = 0;
	for (int32_t bid = s->head; bid != NO_BUF; bid = br->next[bid])
		total += br->len[bid];
	if (total > cap)
		return -EMSGSIZE;
	char *out = buf;
	for (int32_t bid = s->head, next; bid != NO_BUF; bid = next) {
		next = br->next[bid];
		memcpy(out, br->base + (size_t)bid * br->size, br->len[bid]);
		out += br->len[bid];
		give_back(br, bid);
	}
	stream_free(s);
	return (ssize_t)total;
}

int rotor_recv_stream_destroy(struct rotor_recv_stream *h)
{
	int err;
	struct rotor__worker *w;
	struct rotor_recv_stream *s = stream_owned(h, &w, &err);
	if (!s)
		return err;
	struct rotor_bufring *br = s->br;
	s->closing = true;
	if (s->starved)
		unstarve(s);
	if (s->held != NO_BUF)
		give_back(br, s->held);
	for (int32_t bid = s->head, next; bid != NO_BUF; bid = next) {
		next = br->next[bid];
		give_back(br, bid);
	}
	if (s->armed) {
		/* The kernel may still fill buffers for it: cancel, then wait for its last CQE. */
		stream_end_recv(w, s);
	}
	stream_free(s);
	return 0;
}
