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
		CHECK(rotor_send(s->fd, buf, n, MSG_NOSIGNAL, F) == (ssize_t)n);
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
