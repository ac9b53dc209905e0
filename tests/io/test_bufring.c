/*
 * Provided buffer rings and multishot receive streams: every byte arrives once and in order
 * (also when many streams share a ring too small for them, which makes the kernel end their
 * recvs with -ENOBUFS and rotor re-arm them), deadlines and cancellation lose no data, end of
 * stream and errors are sticky, misuse gets an errno. Each scenario runs twice: with the
 * kernel's buffer rings and with ROTOR_NO_BUFRING (a buffer per stream, plain recvs).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rotor.h>

#include "check.h"

#define F ROTOR_FOREVER

static void run_mode(unsigned workers, unsigned flags, rotor_fn fn)
{
	atomic_store(&check_failures, 0);
	check_first[0] = 0;
	struct rotor_config cfg = {.workers = workers, .flags = flags};
	int rc = rotor_run(&cfg, fn, NULL, NULL);
	cr_assert_eq(rc, 0, "rotor_run: %d", rc);
	ASSERT_CHECKS();
}

/* A connected TCP pair over loopback: *a the dialled end, *b the accepted one. */
static void tcp_pair(int *a, int *b)
{
	int l = rotor_tcp_listen("127.0.0.1", 0, 64, 0);
	CHECK(l >= 0);
	*a = rotor_tcp_dial("127.0.0.1", rotor_sock_port(l), rotor_now() + 2 * SEC);
	*b = rotor_accept(l, NULL, NULL, 0, rotor_now() + 2 * SEC);
	CHECK(*a >= 0 && *b >= 0);
	close(l);
}

static uint8_t pattern(uint32_t stream, uint64_t i)
{
	return (uint8_t)((i * 7 + stream * 13) % 251);
}

struct sender {
	int fd;
	uint32_t id;
	size_t total;
};

/* Sends total pattern bytes in chunks of varying size, then shuts its side down. */
static void *send_pattern(void *arg)
{
	struct sender *s = arg;
	uint8_t buf[3000];
	size_t off = 0, step = 1;
	while (off < s->total) {
		size_t n = step % sizeof(buf) + 1;
		if (n > s->total - off)
			n = s->total - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(s->id, off + i);
		/* A stream socket may take part of a send when its buffer is nearly full. */
		for (size_t sent = 0; sent < n;) {
			ssize_t w = rotor_send(s->fd, buf + sent, n - sent, MSG_NOSIGNAL, F);
			CHECK_EQ(w > 0, 1);
			if (w <= 0) {
				shutdown(s->fd, SHUT_WR); /* the reader sees the end, not a hang */
				return NULL;
			}
			sent += (size_t)w;
		}
		off += n;
		step = step * 5 + 3;
	}
	CHECK(shutdown(s->fd, SHUT_WR) == 0);
	return NULL;
}

/* Reads a stream to its end and checks every byte. */
static size_t drain_and_check(struct rotor_recv_stream *rs, uint32_t id, size_t size)
{
	size_t got = 0;
	const void *data;
	ssize_t n;
	while ((n = rotor_recv_stream_next(rs, &data, F)) > 0) {
		CHECK((size_t)n <= size);
		const uint8_t *p = data;
		for (ssize_t i = 0; i < n; i++)
			if (p[i] != pattern(id, got + (size_t)i)) {
				CHECK(!"byte out of order");
				return got;
			}
		got += (size_t)n;
	}
	CHECK(n == 0);
	CHECK(rotor_recv_stream_next(rs, &data, F) == 0); /* end of stream is sticky */
	return got;
}

static void *one_stream_main(void *arg)
{
	int a, b;
	tcp_pair(&a, &b);
	struct rotor_bufring *br;
	CHECK(rotor_bufring_create(8, 512, &br) == 0);
	struct rotor_recv_stream *rs;
	CHECK(rotor_recv_stream_create(b, br, &rs) == 0);
	struct sender s = {.fd = a, .id = 1, .total = 1 << 20};
	struct rotor_task *t;
	CHECK(rotor_spawn(send_pattern, &s, &t) == 0);
	CHECK(drain_and_check(rs, 1, 512) == s.total);
	CHECK(rotor_join(t, NULL) == 0);
	CHECK(rotor_bufring_destroy(br) == -EBUSY);
	CHECK(rotor_recv_stream_destroy(rs) == 0);
	CHECK(rotor_bufring_destroy(br) == 0);
	close(a);
	close(b);
	return arg;
}

Test(bufring, one_stream_gets_every_byte_in_order)
{
	run_mode(1, 0, one_stream_main);
}

Test(bufring, one_stream_gets_every_byte_in_order_without_buffer_rings)
{
	run_mode(1, ROTOR_NO_BUFRING, one_stream_main);
}

/* Every call on a stale stream handle: -EINVAL. */
static int stale_stream_calls(struct rotor_recv_stream *stale)
{
	const void *data = NULL;
	char buf[8];
	int bad = 0;
	bad += rotor_recv_stream_next(stale, &data, rotor_now()) != -EINVAL || data;
	bad += rotor_recv_stream_detach(stale, buf, sizeof(buf)) != -EINVAL;
	bad += rotor_recv_stream_destroy(stale) != -EINVAL;
	return bad;
}

/* 100,000 streams made and destroyed in turn on one socket; each time, the handle destroyed
 * last and the one whose slot the live stream took are used: refused, and the live stream
 * still receives its cycle's byte. */
static void *stale_streams_main(void *arg)
{
	static struct stale_ring r;
	int p[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) == 0);
	struct rotor_bufring *br;
	CHECK(rotor_bufring_create(8, 64, &br) == 0);
	int bad = 0, i;
	for (i = 0; i < 100000 && !bad; i++) {
		struct rotor_recv_stream *live;
		CHECK(rotor_recv_stream_create(p[1], br, &live) == 0);
		void *last = stale_last(&r), *alias = stale_alias(&r, live);
		if (last)
			bad += stale_stream_calls(last);
		if (alias)
			bad += stale_stream_calls(alias);
		char c = (char)i;
		const void *data = NULL;
		bad += write(p[0], &c, 1) != 1;
		bad += rotor_recv_stream_next(live, &data, F) != 1 || *(const char *)data != c;
		bad += rotor_recv_stream_destroy(live) != 0;
		stale_put(&r, live);
	}
	CHECK_EQ(bad, 0);
	CHECK(r.hits > 1000);
	CHECK(rotor_bufring_destroy(br) == 0);
	close(p[0]);
	close(p[1]);
	return arg;
}

Test(bufring, a_stale_handle_never_reaches_the_stream_that_reuses_its_slot, .timeout = 120)
{
	run_mode(1, 0, stale_streams_main);
}

Test(bufring, a_stale_handle_never_reaches_the_stream_that_reuses_its_slot_without_buffer_rings,
     .timeout = 120)
{
	run_mode(1, ROTOR_NO_BUFRING, stale_streams_main);
}

#define NSTREAMS 16

struct receiver {
	struct rotor_bufring *br;
	int fd;
	uint32_t id;
	size_t got;
};

static void *receive_all(void *arg)
{
	struct receiver *r = arg;
	struct rotor_recv_stream *rs;
	CHECK(rotor_recv_stream_create(r->fd, r->br, &rs) == 0);
	r->got = drain_and_check(rs, r->id, 256);
	CHECK(rotor_recv_stream_destroy(rs) == 0);
	return NULL;
}

/* Sixteen connections on a ring of four buffers: most recvs end with -ENOBUFS. */
static void *many_streams_main(void *arg)
{
	struct rotor_bufring *br;
	CHECK(rotor_bufring_create(4, 256, &br) == 0);
	int a[NSTREAMS], b[NSTREAMS];
	struct sender s[NSTREAMS];
	struct receiver r[NSTREAMS];
	struct rotor_task *ts[NSTREAMS], *tr[NSTREAMS];
	for (int i = 0; i < NSTREAMS; i++) {
		tcp_pair(&a[i], &b[i]);
		s[i] = (struct sender){.fd = a[i], .id = (uint32_t)i, .total = 64 * 1024};
		r[i] = (struct receiver){.br = br, .fd = b[i], .id = (uint32_t)i};
		CHECK(rotor_spawn(receive_all, &r[i], &tr[i]) == 0);
		CHECK(rotor_spawn(send_pattern, &s[i], &ts[i]) == 0);
	}
	for (int i = 0; i < NSTREAMS; i++) {
		CHECK(rotor_join(ts[i], NULL) == 0);
		CHECK(rotor_join(tr[i], NULL) == 0);
		CHECK(r[i].got == s[i].total);
		close(a[i]);
		close(b[i]);
	}
	CHECK(rotor_bufring_destroy(br) == 0);
	return arg;
}

Test(bufring, many_streams_share_a_ring_too_small_for_them, .timeout = 60)
{
	run_mode(1, 0, many_streams_main);
}

Test(bufring, many_streams_without_buffer_rings, .timeout = 60)
{
	run_mode(1, ROTOR_NO_BUFRING, many_streams_main);
}

static struct rotor_recv_stream *shared_rs;
static atomic_long waiter_rc;

static void *wait_next(void *arg)
{
	const void *data;
	task_begins();
	atomic_store(&waiter_rc, (long)rotor_recv_stream_next(shared_rs, &data, F));
	return arg;
}

static void *deadline_cancel_main(void *arg)
{
	int a, b;
	tcp_pair(&a, &b);
	struct rotor_bufring *br;
	CHECK(rotor_bufring_create(4, 64, &br) == 0);
	CHECK(rotor_recv_stream_create(b, br, &shared_rs) == 0);
	const void *data;
	int64_t t0 = rotor_now();
	CHECK(rotor_recv_stream_next(shared_rs, &data, t0 + 20 * MS) == -ETIMEDOUT);
	CHECK(rotor_now() - t0 >= 20 * MS);
	CHECK(rotor_recv_stream_next(shared_rs, &data, t0) == -ETIMEDOUT); /* already past */
	/* A task waiting on it is cancelled: -ECANCELED, and the stream goes on. */
	struct rotor_task *t;
	CHECK(rotor_spawn(wait_next, NULL, &t) == 0);
	settle(1);
	CHECK(rotor_recv_stream_next(shared_rs, &data, F) == -EBUSY);
	CHECK(rotor_cancel(t) == 0);
	CHECK(rotor_join(t, NULL) == -ECANCELED);
	CHECK(atomic_load(&waiter_rc) == -ECANCELED);
	/* Bytes sent after the timeouts are all there, in order. */
	CHECK(send(a, "hello", 5, 0) == 5);
	char got[8] = {0};
	size_t n = 0;
	while (n < 5) {
		ssize_t k = rotor_recv_stream_next(shared_rs, &data, rotor_now() + 2 * SEC);
		CHECK(k > 0);
		if (k <= 0)
			break;
		memcpy(got + n, data, (size_t)k);
		n += (size_t)k;
	}
	CHECK(n == 5 && !memcmp(got, "hello", 5));
	/* A reset is an error, and it is sticky. */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	CHECK(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	close(a);
	CHECK(rotor_recv_stream_next(shared_rs, &data, rotor_now() + 2 * SEC) == -ECONNRESET);
	CHECK(rotor_recv_stream_next(shared_rs, &data, rotor_now() + 2 * SEC) == -ECONNRESET);
	CHECK(rotor_recv_stream_destroy(shared_rs) == 0);
	CHECK(rotor_bufring_destroy(br) == 0);
	close(b);
	return arg;
}

Test(bufring, deadlines_and_cancellation_lose_no_data)
{
	run_mode(1, 0, deadline_cancel_main);
}

Test(bufring, deadlines_and_cancellation_without_buffer_rings)
{
	run_mode(1, ROTOR_NO_BUFRING, deadline_cancel_main);
}

/* Stop reading while the peer still sends: every buffer goes back, nothing leaks (ASan). */
static void *destroy_midway_main(void *arg)
{
	int a, b;
	tcp_pair(&a, &b);
	struct rotor_bufring *br;
	CHECK(rotor_bufring_create(8, 128, &br) == 0);
	struct rotor_recv_stream *rs;
	CHECK(rotor_recv_stream_create(b, br, &rs) == 0);
	struct sender s = {.fd = a, .id = 3, .total = 256 * 1024};
	struct rotor_task *t;
	CHECK(rotor_spawn(send_pattern, &s, &t) == 0);
	const void *data;
	for (int i = 0; i < 10; i++)
		CHECK(rotor_recv_stream_next(rs, &data, rotor_now() + 2 * SEC) > 0);
	CHECK(rotor_recv_stream_destroy(rs) == 0);
	/* The ring is whole again: a new stream on the same socket continues the bytes. */
	CHECK(rotor_recv_stream_create(b, br, &rs) == 0);
	size_t more = 0;
	ssize_t n;
	while ((n = rotor_recv_stream_next(rs, &data, rotor_now() + 5 * SEC)) > 0)
		more += (size_t)n;
	CHECK(n == 0 && more > 0);
	CHECK(rotor_join(t, NULL) == 0);
	CHECK(rotor_recv_stream_destroy(rs) == 0);
	CHECK(rotor_bufring_destroy(br) == 0);
	close(a);
	close(b);
	return arg;
}

Test(bufring, destroy_while_data_arrives)
{
	run_mode(1, 0, destroy_midway_main);
}

/* ---- detach: a socket read by one worker's stream, then another's ---- */

/* One leg reads a few buffers on its worker, detaches, and spawns the next leg on the other
 * worker with the bytes the detach handed over; every byte is checked in order, while the
 * sender keeps sending, so bytes arrive during every detach. */
struct relay {
	int fd;
	size_t got;   /* bytes checked so far */
	size_t total; /* what the sender sends */
	int hops;
	int workers;
	int spilled, refused; /* detaches that handed bytes over; that found them too many */
	bool rings;           /* the kernel's buffer rings are in use (not ROTOR_NO_BUFRING) */
	atomic_int done;
	uint8_t spill[1 << 16];
};

static bool relay_check(struct relay *r, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(2, r->got + i)) {
			CHECK(!"byte out of order or lost across a detach");
			return false;
		}
	r->got += n;
	return true;
}

static void *relay_leg(void *arg)
{
	struct relay *r = arg;
	struct rotor_bufring *br;
	struct rotor_recv_stream *rs;
	CHECK(rotor_bufring_create(8, 1024, &br) == 0);
	CHECK(rotor_recv_stream_create(r->fd, br, &rs) == 0);
	const void *data;
	ssize_t n = 1;
	for (int reads = 0;; reads++) {
		/* Detach after a few reads, first into a buffer too small for what is queued. */
		if (reads >= 2 + r->hops % 4) {
			ssize_t d = rotor_recv_stream_detach(
			    rs, r->spill,
			    reads == 2 + r->hops % 4 && r->hops % 2 ? 1 : sizeof(r->spill));
			r->spilled += d > 0;
			r->refused += d == -EMSGSIZE;
			if (d >= 0) {
				if (relay_check(r, r->spill, (size_t)d)) {
					r->hops++;
					CHECK(rotor_bufring_destroy(br) == 0);
					struct rotor_task_attr a = {
					    .on = ROTOR_ON_WORKER(r->hops % r->workers)};
					CHECK(rotor_spawn_attr(&a, relay_leg, r, NULL) == 0);
				}
				return NULL;
			}
			/* -EMSGSIZE: the stream is as it was; -ESHUTDOWN: read it to its end. */
			CHECK(d == -EMSGSIZE || d == -ESHUTDOWN);
		}
		n = rotor_recv_stream_next(rs, &data, F);
		if (n <= 0 || !relay_check(r, data, (size_t)n))
			break;
	}
	CHECK_EQ(n, 0);
	CHECK(rotor_recv_stream_destroy(rs) == 0);
	CHECK(rotor_bufring_destroy(br) == 0);
	atomic_store(&r->done, 1);
	return NULL;
}

static struct relay relay;

static void *detach_main(void *arg)
{
	int a;
	tcp_pair(&a, &relay.fd);
	relay.total = 1 << 20;
	relay.got = 0;
	relay.hops = 0;
	relay.spilled = relay.refused = 0;
	relay.workers = rotor_runtime_workers(rotor_runtime_current());
	atomic_store(&relay.done, 0);
	struct sender s = {.fd = a, .id = 2, .total = relay.total};
	struct rotor_task *t;
	CHECK(rotor_spawn(send_pattern, &s, &t) == 0);
	relay_leg(&relay);
	CHECK(rotor_join(t, NULL) == 0);
	while (!atomic_load(&relay.done))
		rotor_sleep(1 * MS);
	CHECK(relay.got == relay.total);
	CHECK(relay.hops > 10);
	/* With buffer rings, bytes were queued at some detaches, and too many for one byte at
	 * some; without, nothing is ever queued between calls. */
	CHECK(relay.rings ? relay.spilled > 0 && relay.refused > 0
	                  : relay.spilled == 0 && relay.refused == 0);
	close(a);
	close(relay.fd);
	return arg;
}

Test(bufring, detach_hands_a_socket_to_another_worker_without_losing_a_byte, .timeout = 60)
{
	relay.rings = !rotor_disabled("bufring");
	run_mode(2, 0, detach_main);
}

Test(bufring, detach_without_buffer_rings, .timeout = 60)
{
	relay.rings = false;
	run_mode(2, ROTOR_NO_BUFRING, detach_main);
}

static struct rotor_bufring *other_br;

static void *use_from_other_worker(void *arg)
{
	struct rotor_recv_stream *rs;
	CHECK(rotor_recv_stream_create(0, other_br, &rs) == -EPERM);
	CHECK(rotor_bufring_destroy(other_br) == -EPERM);
	return arg;
}

static void *misuse_main(void *arg)
{
	struct rotor_bufring *br = NULL;
	CHECK(rotor_bufring_create(0, 64, &br) == -EINVAL);
	CHECK(rotor_bufring_create(3, 64, &br) == -EINVAL);
	CHECK(rotor_bufring_create(65536, 64, &br) == -EINVAL);
	CHECK(rotor_bufring_create(4, 0, &br) == -EINVAL);
	CHECK(rotor_bufring_create(4, 64, NULL) == -EINVAL);
	CHECK(br == NULL);
	CHECK(rotor_bufring_create(4, 64, &br) == 0);
	struct rotor_recv_stream *rs;
	CHECK(rotor_recv_stream_create(-1, br, &rs) == -EINVAL);
	CHECK(rotor_recv_stream_create(0, NULL, &rs) == -EINVAL);
	CHECK(rotor_recv_stream_next(NULL, NULL, F) == -EINVAL);
	CHECK(rotor_recv_stream_destroy(NULL) == -EINVAL);
	char one;
	CHECK(rotor_recv_stream_detach(NULL, &one, 1) == -EINVAL);
	CHECK(rotor_bufring_destroy(NULL) == -EINVAL);
	other_br = br;
	struct rotor_task *t = spawn_on(1, use_from_other_worker, NULL);
	CHECK(rotor_join(t, NULL) == 0);
	CHECK(rotor_bufring_destroy(br) == 0);
	return arg;
}

Test(bufring, misuse_gets_an_errno)
{
	struct rotor_bufring *br;
	cr_assert_eq(rotor_bufring_create(4, 64, &br), -EPERM); /* not on a task */
	run_mode(2, 0, misuse_main);
}
