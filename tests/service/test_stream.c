/*
 * Buffered streams (rotor/stream.h): exact frames, delimited lines and peeks over bytes that
 * arrive in pieces and span receive buffers, the input limit, deadlines and cancellation
 * that lose nothing, end of stream in the middle of a frame, writes gathered into one send
 * and kept in call order across tasks, a reader and a writer at once, sticky send errors,
 * shutdown, destroy giving every buffer back, and misuse. Each reading scenario runs on
 * three transports: a plain socket on the worker's default pool, a plain socket on a pool of
 * 16-byte buffers (every frame spans buffers), and a transport of the test's own that reads
 * at most 7 bytes at a time (what TLS plugs in, lib/service/stream.h); and with the kernel's
 * buffer rings and without (ROTOR_NO_BUFRING).
 */
#include <criterion/criterion.h>
#include <rotor/stream.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"
#include "stream.h" /* lib/service: the transport contract */

#define F ROTOR_FOREVER

enum kind { PLAIN, SMALL, IO, KINDS };

static void run_mode(unsigned workers, unsigned flags, rotor_fn fn, void *arg)
{
	atomic_store(&check_failures, 0);
	check_first[0] = 0;
	struct rotor_config cfg = {.workers = workers, .flags = flags};
	int rc = rotor_run(&cfg, fn, arg, NULL);
	cr_assert_eq(rc, 0, "rotor_run: %d", rc);
	ASSERT_CHECKS();
}

/* Both modes: the kernel's buffer rings, and a buffer per stream with plain recvs. */
static void run_both(rotor_fn fn)
{
	run_mode(1, 0, fn, NULL);
	run_mode(1, ROTOR_NO_BUFRING, fn, NULL);
}

/* A connected TCP pair over loopback, Nagle off on both ends. */
static void tcp_pair(int *a, int *b)
{
	int l = rotor_tcp_listen("127.0.0.1", 0, 64, 0);
	CHECK(l >= 0);
	*a = rotor_tcp_dial("127.0.0.1", rotor_sock_port(l), rotor_now() + 2 * SEC);
	*b = rotor_accept(l, NULL, NULL, 0, rotor_now() + 2 * SEC);
	CHECK(*a >= 0 && *b >= 0);
	int one = 1;
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
}

/* ---- the test's own transport: a socket read at most max_read bytes at a time ---- */

static atomic_int tio_destroyed;

struct tio {
	int fd;
	size_t max_read;
	int writevs;      /* calls of writev */
	int64_t slow_ns;  /* writev sleeps this long first (writers queue meanwhile) */
	size_t last_size; /* bytes the last writev sent */
};

static ssize_t tio_read(void *ctx, void *buf, size_t len, int64_t deadline)
{
	struct tio *t = ctx;
	return rotor_recv(t->fd, buf, len < t->max_read ? len : t->max_read, 0, deadline);
}

static ssize_t tio_writev(void *ctx, const struct iovec *iov, int cnt, int64_t deadline)
{
	struct tio *t = ctx;
	size_t total = 0;
	t->writevs++;
	if (t->slow_ns)
		rotor_sleep(t->slow_ns);
	for (int i = 0; i < cnt; i++) {
		CHECK(iov[i].iov_len > 0);
		for (size_t off = 0; off < iov[i].iov_len;) {
			ssize_t n = rotor_send(t->fd, (const char *)iov[i].iov_base + off,
			                       iov[i].iov_len - off, 0, deadline);
			if (n < 0)
				return n;
			off += (size_t)n;
		}
		total += iov[i].iov_len;
	}
	t->last_size = total;
	return (ssize_t)total;
}

static int tio_shutdown(void *ctx, int64_t deadline)
{
	struct tio *t = ctx;
	return rotor_shutdown(t->fd, SHUT_WR, deadline);
}

static void tio_destroy(void *ctx)
{
	atomic_fetch_add(&tio_destroyed, 1);
	free(ctx);
}

static const struct rotor__stream_io tio_io = {tio_read, tio_writev, tio_shutdown, tio_destroy};

/* ---- a stream of each kind over a fresh pair ---- */

struct pair {
	int a, b; /* the stream's socket, and the peer's */
	struct rotor_bufring *pool;
	struct rotor_stream *s;
	struct tio *t; /* kind IO */
};

static void open_pair(struct pair *p, enum kind kind, const struct rotor_stream_config *cfg0)
{
	struct rotor_stream_config cfg = cfg0 ? *cfg0 : (struct rotor_stream_config){0};
	memset(p, 0, sizeof(*p));
	tcp_pair(&p->a, &p->b);
	if (kind == SMALL) {
		CHECK_EQ(rotor_bufring_create(16, 16, &p->pool), 0);
		cfg.bufring = p->pool;
	}
	if (kind == IO) {
		p->t = calloc(1, sizeof(*p->t));
		p->t->fd = p->a;
		p->t->max_read = 7;
		CHECK_EQ(rotor__stream_create_io(p->a, &tio_io, p->t, &cfg, &p->s), 0);
	} else {
		CHECK_EQ(rotor_stream_create(p->a, &cfg, &p->s), 0);
	}
	CHECK(p->s != NULL);
}

static void close_pair(struct pair *p)
{
	if (p->s)
		CHECK_EQ(rotor_stream_destroy(p->s), 0);
	if (p->pool)
		CHECK_EQ(rotor_bufring_destroy(p->pool), 0);
	close(p->a);
	close(p->b);
}

static void send_str(int fd, const char *str)
{
	size_t len = strlen(str);
	CHECK_EQ(rotor_send(fd, str, len, MSG_NOSIGNAL, rotor_now() + 2 * SEC), len);
}

/* A peer that sends its pieces with a pause before each, so they arrive as separate reads. */
struct script {
	int fd;
	int gap_ms;
	const char *piece[8];
};

static void *play(void *arg)
{
	struct script *sc = arg;
	for (int i = 0; i < 8 && sc->piece[i]; i++) {
		rotor_sleep(sc->gap_ms * MS);
		send_str(sc->fd, sc->piece[i]);
	}
	return NULL;
}

static struct rotor_task *start_script(struct script *sc)
{
	struct rotor_task *t = NULL;
	CHECK_EQ(rotor_spawn(play, sc, &t), 0);
	return t;
}

#define CHECK_BYTES(p, str) CHECK(memcmp((p), (str), strlen(str)) == 0)

/* ---- reading ---- */

static void *exact_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		char buf[64];
		open_pair(&p, k, NULL);
		struct script sc = {
		    p.b, 3, {"01", "234", "56789", "abcdefghijklmnopqrstuvwxyz0123456789!"}};
		struct rotor_task *t = start_script(&sc);
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 4, F), 4);
		CHECK_BYTES(buf, "0123");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 6, F), 6);
		CHECK_BYTES(buf, "456789");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 37, F), 37);
		CHECK_BYTES(buf, "abcdefghijklmnopqrstuvwxyz0123456789!");
		CHECK_EQ(rotor_join(t, NULL), 0);
		/* Frames back to back in one send come out one by one. */
		send_str(p.b, "[frame one.][frame two...][3]");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 12, F), 12);
		CHECK_BYTES(buf, "[frame one.]");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 14, F), 14);
		CHECK_BYTES(buf, "[frame two...]");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 3, F), 3);
		CHECK_BYTES(buf, "[3]");
		close_pair(&p);
	}
	return NULL;
}

Test(stream, read_exact_gathers_frames_split_across_reads_and_buffers, .timeout = 30)
{
	run_both(exact_main);
}

static void *read_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		char buf[64];
		open_pair(&p, k, NULL);
		send_str(p.b, "hello");
		ssize_t n = 0;
		while (n < 5) {
			ssize_t r = rotor_stream_read(p.s, buf + n, sizeof(buf) - (size_t)n, F);
			CHECK(r > 0);
			if (r <= 0)
				break;
			n += r;
		}
		CHECK_EQ(n, 5);
		CHECK_BYTES(buf, "hello");
		/* At most len, the rest stays. */
		send_str(p.b, "abcdef");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 1, F), 1);
		CHECK_EQ(rotor_stream_read(p.s, buf, 2, F), 2);
		CHECK_BYTES(buf, "bc");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 3, F), 3);
		CHECK_BYTES(buf, "def");
		close_pair(&p);
	}
	return NULL;
}

Test(stream, read_returns_what_is_there_up_to_len, .timeout = 30)
{
	run_both(read_main);
}

static void *until_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		const void *line;
		open_pair(&p, k, NULL);
		/* A header block across 16-byte buffers and several sends; the delimiter
		 * itself split between two sends, and between two buffers. */
		struct script sc = {p.b,
		                    3,
		                    {"GET / HTTP/1.1\r\nHost: exam",
		                     "ple.org\r\nX-Long-Header: 0123456789\r", "\n\r", "\nPING\r",
		                     "\nA\nB\n"}};
		struct rotor_task *t = start_script(&sc);
		const char *head =
		    "GET / HTTP/1.1\r\nHost: example.org\r\nX-Long-Header: 0123456789\r\n\r\n";
		CHECK_EQ(rotor_stream_read_until(p.s, "\r\n\r\n", 4, 0, &line, F), strlen(head));
		CHECK_BYTES(line, head);
		CHECK_EQ(rotor_stream_read_until(p.s, "\r\n", 2, 0, &line, F), 6);
		CHECK_BYTES(line, "PING\r\n");
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &line, F), 2);
		CHECK_BYTES(line, "A\n");
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &line, F), 2);
		CHECK_BYTES(line, "B\n");
		CHECK_EQ(rotor_join(t, NULL), 0);
		/* The delimiter straddling the boundary of the 16-byte buffers: at 15..16. */
		send_str(p.b, "0123456789abcde\r\nrest\r\n");
		CHECK_EQ(rotor_stream_read_until(p.s, "\r\n", 2, 0, &line, F), 17);
		CHECK_BYTES(line, "0123456789abcde\r\n");
		CHECK_EQ(rotor_stream_read_until(p.s, "\r\n", 2, 0, &line, F), 6);
		CHECK_BYTES(line, "rest\r\n");
		close_pair(&p);
	}
	return NULL;
}

Test(stream, read_until_finds_delimiters_across_reads_and_buffer_boundaries, .timeout = 30)
{
	run_both(until_main);
}

/* Lines that arrive in one receive buffer are returned where they sit, one after another. */
static void *in_place_main(void *arg)
{
	(void)arg;
	struct pair p;
	const void *l1, *l2, *l3, *pk;
	open_pair(&p, PLAIN, NULL);
	send_str(p.b, "one\ntwo\nthree\n");
	CHECK_EQ(rotor_stream_peek(p.s, 14, &pk, F), 14);
	CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &l1, F), 4);
	CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &l2, F), 4);
	CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &l3, F), 6);
	CHECK(l1 == pk);
	CHECK((const char *)l2 == (const char *)l1 + 4);
	CHECK((const char *)l3 == (const char *)l2 + 4);
	CHECK_BYTES(l3, "three\n");
	close_pair(&p);
	return NULL;
}

Test(stream, lines_in_one_receive_buffer_are_returned_in_place, .timeout = 30)
{
	run_mode(1, 0, in_place_main, NULL);
}

static void *peek_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		const void *d;
		open_pair(&p, k, NULL);
		CHECK_EQ(rotor_stream_peek(p.s, 0, &d, F), 0); /* nothing yet: no wait */
		CHECK(d == NULL);
		struct script sc = {p.b, 3, {"abc", "defghijklmnopqrstuvwxyz", "0123"}};
		struct rotor_task *t = start_script(&sc);
		ssize_t n = rotor_stream_peek(p.s, 20, &d, F);
		CHECK(n >= 20);
		CHECK_BYTES(d, "abcdefghijklmnopqrst");
		CHECK_EQ(rotor_stream_consume(p.s, 2), 0);
		n = rotor_stream_peek(p.s, 0, &d, F);
		CHECK(n >= 1);
		CHECK_BYTES(d, "c");
		/* A parser asking for one byte more each time sees every byte, in order. */
		size_t want = 1;
		while ((n = rotor_stream_peek(p.s, want, &d, F)) > 0 &&
		       memchr(d, '3', (size_t)n) == NULL)
			want = (size_t)n + 1;
		CHECK_EQ(n, 28);
		CHECK_BYTES(d, "cdefghijklmnopqrstuvwxyz0123");
		CHECK_EQ(rotor_stream_consume(p.s, 28), 0);
		CHECK_EQ(rotor_stream_peek(p.s, 0, &d, F), 0);
		CHECK_EQ(rotor_stream_consume(p.s, 1), -EINVAL);
		CHECK_EQ(rotor_join(t, NULL), 0);
		close_pair(&p);
	}
	return NULL;
}

Test(stream, peek_waits_for_want_bytes_and_consume_takes_them, .timeout = 30)
{
	run_both(peek_main);
}

static void *limit_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct rotor_stream_config cfg = {.max_input = 64};
		struct pair p;
		const void *d;
		char buf[128];
		open_pair(&p, k, &cfg);
		CHECK_EQ(rotor_stream_peek(p.s, 65, &d, F), -EMSGSIZE);
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 65, F), -EMSGSIZE);
		/* 100 bytes without a delimiter: refused once 64 are buffered, and kept. */
		char junk[101];
		memset(junk, 'x', 100);
		junk[100] = 0;
		send_str(p.b, junk);
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &d, F), -EMSGSIZE);
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 1000, &d, F), -EMSGSIZE);
		ssize_t n = rotor_stream_peek(p.s, 64, &d, F);
		CHECK(n >= 64);
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 64, F), 64);
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 36, F), 36);
		CHECK(memcmp(buf, junk, 36) == 0);
		/* A per-call max below the limit. */
		send_str(p.b, "0123456789ab\nok\n");
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 10, &d, F), -EMSGSIZE);
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 13, &d, F), 13);
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 3, &d, F), 3);
		CHECK_BYTES(d, "ok\n");
		close_pair(&p);
	}
	return NULL;
}

Test(stream, the_input_limit_refuses_larger_frames_with_emsgsize, .timeout = 30)
{
	run_both(limit_main);
}

static void *deadline_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		const void *d;
		char buf[16];
		open_pair(&p, k, NULL);
		send_str(p.b, "hello");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 10, rotor_now() + 20 * MS), -ETIMEDOUT);
		CHECK_EQ(rotor_stream_peek(p.s, 6, &d, rotor_now() + 10 * MS), -ETIMEDOUT);
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &d, rotor_now() + 10 * MS),
		         -ETIMEDOUT);
		send_str(p.b, "world\n");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 10, rotor_now() + 2 * SEC), 10);
		CHECK_BYTES(buf, "helloworld");
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &d, rotor_now() + 2 * SEC), 1);
		/* A deadline already past with nothing buffered. */
		CHECK_EQ(rotor_stream_read(p.s, buf, 1, rotor_now() - 1), -ETIMEDOUT);
		close_pair(&p);
	}
	return NULL;
}

Test(stream, a_deadline_loses_no_bytes, .timeout = 30)
{
	run_both(deadline_main);
}

struct reader {
	struct rotor_stream *s;
	ssize_t got;
	char buf[16];
};

static void *read_ten(void *arg)
{
	struct reader *r = arg;
	task_begins();
	r->got = rotor_stream_read_exact(r->s, r->buf, 10, F);
	return NULL;
}

static void *cancel_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		char buf[16];
		open_pair(&p, k, NULL);
		struct reader r = {.s = p.s};
		atomic_store(&tasks_begun, 0);
		struct rotor_task *t;
		CHECK_EQ(rotor_spawn(read_ten, &r, &t), 0);
		settle(1);
		send_str(p.b, "hello");
		rotor_sleep(5 * MS); /* the reader gathers them and waits for more */
		CHECK_EQ(rotor_stream_read(p.s, buf, 1, F), -EBUSY);
		CHECK_EQ(rotor_stream_destroy(p.s), -EBUSY);
		CHECK_EQ(rotor_cancel(t), 0);
		CHECK_EQ(rotor_join(t, NULL), -ECANCELED);
		CHECK_EQ(r.got, -ECANCELED);
		send_str(p.b, "world");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 10, rotor_now() + 2 * SEC), 10);
		CHECK_BYTES(buf, "helloworld");
		close_pair(&p);
	}
	return NULL;
}

Test(stream, cancelling_a_read_midway_loses_nothing, .timeout = 30)
{
	run_both(cancel_main);
}

static void *eof_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		const void *d;
		char buf[16];
		open_pair(&p, k, NULL);
		send_str(p.b, "abc");
		shutdown(p.b, SHUT_WR);
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 5, F), -ENODATA);
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &d, F), -ENODATA);
		CHECK_EQ(rotor_stream_peek(p.s, 4, &d, F), -ENODATA);
		CHECK_EQ(rotor_stream_peek(p.s, 0, &d, F), 3);
		CHECK_BYTES(d, "abc");
		CHECK_EQ(rotor_stream_read(p.s, buf, sizeof(buf), F), 3);
		CHECK_EQ(rotor_stream_read(p.s, buf, sizeof(buf), F), 0);
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 5, F), 0);
		CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &d, F), 0);
		CHECK_EQ(rotor_stream_peek(p.s, 1, &d, F), 0);
		close_pair(&p);
	}
	return NULL;
}

Test(stream, end_of_stream_midframe_is_enodata_and_keeps_the_bytes, .timeout = 30)
{
	run_both(eof_main);
}

/* ---- writing ---- */

/* Receives exactly len bytes on fd into buf. */
static void recv_all(int fd, char *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = rotor_recv(fd, buf + got, len - got, 0, rotor_now() + 5 * SEC);
		CHECK(n > 0);
		if (n <= 0)
			return;
		got += (size_t)n;
	}
}

static void *gather_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		char line[16], want[2000], got[2000];
		size_t len = 0;
		open_pair(&p, k, NULL);
		for (int i = 0; i < 200; i++) {
			int n = snprintf(line, sizeof(line), "x%d\n", i);
			memcpy(want + len, line, (size_t)n);
			len += (size_t)n;
			CHECK_EQ(rotor_stream_write(p.s, line, (size_t)n, F), n);
		}
		struct iovec v[3] = {{"a", 1}, {NULL, 0}, {"bc", 2}};
		CHECK_EQ(rotor_stream_writev(p.s, v, 3, F), 3);
		memcpy(want + len, "abc", 3);
		len += 3;
		if (p.t)
			CHECK_EQ(p.t->writevs, 0); /* all of it buffered */
		CHECK_EQ(rotor_stream_flush(p.s, F), 0);
		if (p.t) {
			CHECK_EQ(p.t->writevs, 1); /* and sent at once */
			CHECK_EQ(p.t->last_size, len);
		}
		CHECK_EQ(rotor_stream_flush(p.s, F), 0);
		if (p.t)
			CHECK_EQ(p.t->writevs, 1); /* nothing to send */
		recv_all(p.b, got, len);
		CHECK(memcmp(got, want, len) == 0);
		/* write_all: buffered bytes and its own, sent now, together. */
		CHECK_EQ(rotor_stream_write(p.s, "head:", 5, F), 5);
		CHECK_EQ(rotor_stream_write_all(p.s, "body", 4, F), 4);
		if (p.t)
			CHECK_EQ(p.t->writevs, 2);
		recv_all(p.b, got, 9);
		CHECK_BYTES(got, "head:body");
		close_pair(&p);
	}
	return NULL;
}

Test(stream, small_writes_are_gathered_and_sent_by_one_flush, .timeout = 30)
{
	run_mode(1, 0, gather_main, NULL);
}

struct rx {
	int fd;
	char *buf;
	size_t len;
};

static void *receive(void *arg)
{
	struct rx *rx = arg;
	recv_all(rx->fd, rx->buf, rx->len);
	return NULL;
}

static void *large_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct rotor_stream_config cfg = {.output_size = 1024};
		struct pair p;
		enum { BIG = 1000000 };
		char *big = malloc(BIG), *got = malloc(BIG + 10);
		for (int i = 0; i < BIG; i++)
			big[i] = (char)('a' + i % 26);
		open_pair(&p, k, &cfg);
		/* The peer reads while the stream sends: BIG is more than the socket holds. */
		struct rx rx = {p.b, got, BIG + 10};
		struct rotor_task *t;
		CHECK_EQ(rotor_spawn(receive, &rx, &t), 0);
		CHECK_EQ(rotor_stream_write(p.s, "0123456789", 10, F), 10);
		struct iovec v[2] = {{big, BIG / 2}, {big + BIG / 2, BIG - BIG / 2}};
		CHECK_EQ(rotor_stream_writev(p.s, v, 2, F), BIG);
		if (p.t) {
			CHECK_EQ(p.t->writevs, 1); /* buffered and large together, one send */
			CHECK_EQ(p.t->last_size, BIG + 10);
		}
		CHECK_EQ(rotor_join(t, NULL), 0);
		CHECK(memcmp(got, "0123456789", 10) == 0);
		CHECK(memcmp(got + 10, big, BIG) == 0);
		close_pair(&p);
		free(big);
		free(got);
	}
	return NULL;
}

Test(stream, a_write_larger_than_the_buffer_goes_out_with_what_is_buffered, .timeout = 30)
{
	run_mode(1, 0, large_main, NULL);
}

/* Echoes everything it receives on fd until end of stream, then ends its own side. */
static void *echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;
	while ((n = rotor_recv(fd, buf, sizeof(buf), 0, rotor_now() + 5 * SEC)) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = rotor_send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL, F);
			CHECK(w > 0);
			if (w <= 0)
				return NULL;
			off += w;
		}
	shutdown(fd, SHUT_WR);
	return NULL;
}

enum { LINES = 300 };

static void *read_lines(void *arg)
{
	struct rotor_stream *s = arg;
	char want[32];
	const void *line;
	task_begins();
	for (int i = 0; i < LINES; i++) {
		int n = snprintf(want, sizeof(want), "line %d\n", i);
		CHECK_EQ(rotor_stream_read_until(s, "\n", 1, 0, &line, rotor_now() + 5 * SEC), n);
		CHECK(memcmp(line, want, (size_t)n) == 0);
	}
	CHECK_EQ(rotor_stream_read_until(s, "\n", 1, 0, &line, rotor_now() + 5 * SEC), 0);
	return NULL;
}

static void *duplex_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		open_pair(&p, k, NULL);
		struct rotor_task *peer, *reader;
		CHECK_EQ(rotor_spawn(echo, (void *)(intptr_t)p.b, &peer), 0);
		atomic_store(&tasks_begun, 0);
		CHECK_EQ(rotor_spawn(read_lines, p.s, &reader), 0);
		settle(1); /* the reader waits in read_until while this task writes */
		char line[32];
		for (int i = 0; i < LINES; i++) {
			int n = snprintf(line, sizeof(line), "line %d\n", i);
			CHECK_EQ(rotor_stream_write(p.s, line, (size_t)n, F), n);
			if (i % 7 == 0)
				CHECK_EQ(rotor_stream_flush(p.s, F), 0);
			if (i % 50 == 0)
				rotor_sleep(MS);
		}
		CHECK_EQ(rotor_stream_shutdown(p.s, F), 0);
		CHECK_EQ(rotor_join(reader, NULL), 0);
		CHECK_EQ(rotor_join(peer, NULL), 0);
		close_pair(&p);
	}
	return NULL;
}

Test(stream, a_reader_task_and_a_writer_task_share_a_stream, .timeout = 60)
{
	run_both(duplex_main);
}

/* Writers each write one line, some short (buffered), some longer than the buffer (sent at
 * once), some with write_all; the transport's slow sends make them queue. */
enum { WRITERS = 40 };

struct writer {
	struct rotor_stream *s;
	int i;
};

static int writer_line(int i, char *buf, size_t cap)
{
	int pad = i % 4 == 0 ? 90 : i % 3;
	return snprintf(buf, cap, "%02d %.*s\n", i, pad,
	                "................................................................"
	                "................................");
}

static void *write_line(void *arg)
{
	struct writer *w = arg;
	char buf[128];
	int n = writer_line(w->i, buf, sizeof(buf));
	ssize_t r = w->i % 5 == 0 ? rotor_stream_write_all(w->s, buf, (size_t)n, F)
	                          : rotor_stream_write(w->s, buf, (size_t)n, F);
	CHECK_EQ(r, n);
	return NULL;
}

static void *order_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct rotor_stream_config cfg = {.output_size = 64};
		struct pair p;
		open_pair(&p, k, &cfg);
		if (p.t)
			p.t->slow_ns = 2 * MS;
		struct writer w[WRITERS];
		struct rotor_task *t[WRITERS];
		for (int i = 0; i < WRITERS; i++) {
			w[i] = (struct writer){p.s, i};
			CHECK_EQ(rotor_spawn(write_line, &w[i], &t[i]), 0);
		}
		for (int i = 0; i < WRITERS; i++)
			CHECK_EQ(rotor_join(t[i], NULL), 0);
		CHECK_EQ(rotor_stream_shutdown(p.s, F), 0);
		char want[128 * WRITERS], got[128 * WRITERS];
		size_t len = 0;
		for (int i = 0; i < WRITERS; i++)
			len += (size_t)writer_line(i, want + len, sizeof(want) - len);
		recv_all(p.b, got, len);
		CHECK(memcmp(got, want, len) == 0);
		CHECK_EQ(rotor_recv(p.b, got, 1, 0, rotor_now() + SEC), 0);
		close_pair(&p);
	}
	return NULL;
}

Test(stream, writes_by_many_tasks_go_out_in_call_order, .timeout = 60)
{
	run_mode(1, 0, order_main, NULL);
}

static void *sticky_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		open_pair(&p, k, NULL);
		/* The peer goes away with a reset: sends fail from then on. */
		struct linger lg = {1, 0};
		setsockopt(p.b, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(p.b);
		p.b = -1;
		static char chunk[65536];
		ssize_t e = 0;
		for (int i = 0; i < 100 && e >= 0; i++)
			e = rotor_stream_write_all(p.s, chunk, sizeof(chunk),
			                           rotor_now() + 5 * SEC);
		CHECK(e == -EPIPE || e == -ECONNRESET);
		CHECK_EQ(rotor_stream_write(p.s, "x", 1, F), e);
		CHECK_EQ(rotor_stream_flush(p.s, F), e);
		CHECK_EQ(rotor_stream_write_all(p.s, "x", 1, F), e);
		CHECK_EQ(rotor_stream_shutdown(p.s, F), e);
		char buf[8];
		ssize_t r = rotor_stream_read(p.s, buf, sizeof(buf), rotor_now() + 5 * SEC);
		CHECK(r == 0 || r == -ECONNRESET);
		CHECK_EQ(rotor_stream_read(p.s, buf, sizeof(buf), rotor_now() + 5 * SEC), r);
		close_pair(&p);
	}
	return NULL;
}

Test(stream, a_failed_send_breaks_the_sending_side_for_good, .timeout = 30)
{
	run_mode(1, 0, sticky_main, NULL);
}

static void *timed_out_send_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		open_pair(&p, k, NULL);
		/* Nobody reads: the socket fills up and a send waits until its deadline. */
		static char chunk[65536];
		ssize_t e = 0;
		for (int i = 0; i < 1000 && e >= 0; i++)
			e = rotor_stream_write_all(p.s, chunk, sizeof(chunk),
			                           rotor_now() + 50 * MS);
		CHECK_EQ(e, -ETIMEDOUT);
		CHECK_EQ(rotor_stream_write(p.s, "x", 1, F), -ETIMEDOUT);
		CHECK_EQ(rotor_stream_flush(p.s, F), -ETIMEDOUT);
		/* A deadline already past before anything is sent breaks nothing. */
		struct pair q;
		open_pair(&q, k, NULL);
		CHECK_EQ(rotor_stream_write_all(q.s, "x", 1, rotor_now() - 1), -ETIMEDOUT);
		CHECK_EQ(rotor_stream_write_all(q.s, "y", 1, F), 1);
		char got[2];
		recv_all(q.b, got, 1); /* "x" was refused, not written */
		CHECK_EQ(got[0], 'y');
		close_pair(&q);
		close_pair(&p);
	}
	return NULL;
}

Test(stream, a_send_that_times_out_breaks_the_sending_side, .timeout = 60)
{
	run_mode(1, 0, timed_out_send_main, NULL);
}

static void *shutdown_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < KINDS; k++) {
		struct pair p;
		char buf[8];
		open_pair(&p, k, NULL);
		CHECK_EQ(rotor_stream_write(p.s, "bye", 3, F), 3);
		CHECK_EQ(rotor_stream_shutdown(p.s, F), 0);
		recv_all(p.b, buf, 3);
		CHECK_BYTES(buf, "bye");
		CHECK_EQ(rotor_recv(p.b, buf, 1, 0, rotor_now() + SEC), 0);
		CHECK_EQ(rotor_stream_write(p.s, "x", 1, F), -EPIPE);
		CHECK_EQ(rotor_stream_flush(p.s, F), -EPIPE);
		CHECK_EQ(rotor_stream_shutdown(p.s, F), -EPIPE);
		send_str(p.b, "ok");
		CHECK_EQ(rotor_stream_read_exact(p.s, buf, 2, rotor_now() + SEC), 2);
		CHECK_BYTES(buf, "ok");
		close_pair(&p);
	}
	return NULL;
}

Test(stream, shutdown_flushes_ends_the_sending_side_and_keeps_reading, .timeout = 30)
{
	run_mode(1, 0, shutdown_main, NULL);
}

/* ---- lifetime ---- */

static void *destroy_main(void *arg)
{
	(void)arg;
	struct rotor_bufring *pool;
	CHECK_EQ(rotor_bufring_create(4, 64, &pool), 0);
	struct rotor_stream_config cfg = {.bufring = pool};
	char big[1000], got[1000];
	for (int i = 0; i < 1000; i++)
		big[i] = (char)('A' + i % 23);
	/* A stream that dies holding a buffer, with the pool's others queued for it. */
	struct pair p;
	tcp_pair(&p.a, &p.b);
	CHECK_EQ(rotor_stream_create(p.a, &cfg, &p.s), 0);
	CHECK_EQ(rotor_send(p.b, big, sizeof(big), MSG_NOSIGNAL, F), sizeof(big));
	rotor_sleep(5 * MS);
	const void *d;
	CHECK(rotor_stream_peek(p.s, 70, &d, F) >= 70); /* one buffer gathered, one held */
	CHECK_EQ(rotor_stream_write(p.s, "unsent", 6, F), 6);
	CHECK_EQ(rotor_bufring_destroy(pool), -EBUSY);
	CHECK_EQ(rotor_stream_destroy(p.s), 0);
	close(p.a);
	close(p.b);
	/* Every buffer is back: another stream on the pool gets all of its bytes. */
	struct pair q;
	tcp_pair(&q.a, &q.b);
	CHECK_EQ(rotor_stream_create(q.a, &cfg, &q.s), 0);
	CHECK_EQ(rotor_send(q.b, big, sizeof(big), MSG_NOSIGNAL, F), sizeof(big));
	for (int i = 0; i < 20; i++)
		CHECK_EQ(rotor_stream_read_exact(q.s, got + i * 50, 50, rotor_now() + 2 * SEC), 50);
	CHECK(memcmp(got, big, sizeof(big)) == 0);
	CHECK_EQ(rotor_stream_destroy(q.s), 0);
	CHECK_EQ(rotor_bufring_destroy(pool), 0);
	close(q.a);
	close(q.b);
	return NULL;
}

Test(stream, destroy_gives_every_buffer_back, .timeout = 30)
{
	run_both(destroy_main);
}

/* Many streams on the worker's own pool at once, each reading a line and answering it. */
enum { MANY = 100 };

static void *many_main(void *arg)
{
	(void)arg;
	struct pair p[MANY];
	for (int i = 0; i < MANY; i++)
		open_pair(&p[i], PLAIN, NULL);
	for (int i = 0; i < MANY; i++) {
		char line[16];
		snprintf(line, sizeof(line), "req %d\n", i);
		send_str(p[i].b, line);
	}
	for (int i = 0; i < MANY; i++) {
		const void *line;
		char want[16], got[16];
		int n = snprintf(want, sizeof(want), "req %d\n", i);
		CHECK_EQ(rotor_stream_read_until(p[i].s, "\n", 1, 0, &line, rotor_now() + 2 * SEC),
		         n);
		CHECK(memcmp(line, want, (size_t)n) == 0);
		CHECK_EQ(rotor_stream_write_all(p[i].s, line, (size_t)n, F), n);
		recv_all(p[i].b, got, (size_t)n);
		CHECK(memcmp(got, want, (size_t)n) == 0);
	}
	struct rotor_bufring *a, *b;
	CHECK_EQ(rotor__stream_pool(&a), 0);
	CHECK_EQ(rotor__stream_pool(&b), 0);
	CHECK(a == b);
	for (int i = 0; i < MANY; i++)
		close_pair(&p[i]);
	return NULL;
}

Test(stream, plain_streams_share_the_workers_pool, .timeout = 30)
{
	int before = count_dir("/proc/self/fd");
	run_both(many_main);
	cr_assert_eq(count_dir("/proc/self/fd"), before, "descriptors left behind");
}

/* ---- the transport contract ---- */

static void *transport_main(void *arg)
{
	(void)arg;
	struct rotor_stream *s = NULL;
	atomic_store(&tio_destroyed, 0);
	/* A transport without every call is refused, and its state still freed. */
	struct rotor__stream_io bad = tio_io;
	bad.shutdown = NULL;
	CHECK_EQ(rotor__stream_create_io(3, &bad, calloc(1, sizeof(struct tio)), NULL, &s),
	         -EINVAL);
	CHECK_EQ(atomic_load(&tio_destroyed), 1);
	CHECK_EQ(rotor__stream_create_io(-1, &tio_io, calloc(1, sizeof(struct tio)), NULL, &s),
	         -EINVAL);
	CHECK_EQ(atomic_load(&tio_destroyed), 2);
	CHECK(s == NULL);
	struct pair p, q;
	open_pair(&p, IO, NULL);
	open_pair(&q, PLAIN, NULL);
	CHECK(rotor__stream_io_ctx(p.s, &tio_io) == p.t);
	CHECK(rotor__stream_io_ctx(p.s, &bad) == NULL);
	CHECK(rotor__stream_io_ctx(q.s, &tio_io) == NULL);
	CHECK_EQ(rotor_stream_fd(p.s), p.a);
	CHECK_EQ(rotor_stream_fd(q.s), q.a);
	close_pair(&p);
	CHECK_EQ(atomic_load(&tio_destroyed), 3); /* with the stream, once */
	close_pair(&q);
	return NULL;
}

Test(stream, a_transport_stream_owns_its_state_from_creation)
{
	run_mode(1, 0, transport_main, NULL);
	/* Off a task: refused, and the state freed all the same. */
	struct rotor_stream *s = NULL;
	atomic_store(&tio_destroyed, 0);
	cr_assert_eq(rotor__stream_create_io(3, &tio_io, calloc(1, sizeof(struct tio)), NULL, &s),
	             -EPERM);
	cr_assert_eq(atomic_load(&tio_destroyed), 1);
	cr_assert_null(s);
}

/* ---- misuse ---- */

struct other {
	struct rotor_stream *s;
	struct rotor_bufring *pool;
	int fd;
};

static void *from_other_worker(void *arg)
{
	struct other *o = arg;
	char buf[4];
	const void *d;
	struct rotor_stream *s2 = NULL;
	struct rotor_stream_config cfg = {.bufring = o->pool};
	CHECK_EQ(rotor_stream_read(o->s, buf, 1, F), -EPERM);
	CHECK_EQ(rotor_stream_peek(o->s, 0, &d, F), -EPERM);
	CHECK_EQ(rotor_stream_consume(o->s, 0), -EPERM);
	CHECK_EQ(rotor_stream_write(o->s, "x", 1, F), -EPERM);
	CHECK_EQ(rotor_stream_flush(o->s, F), -EPERM);
	CHECK_EQ(rotor_stream_destroy(o->s), -EPERM);
	CHECK_EQ(rotor_stream_fd(o->s), o->fd); /* any thread */
	CHECK_EQ(rotor_stream_create(o->fd, &cfg, &s2), -EPERM);
	CHECK(s2 == NULL);
	return NULL;
}

static void *misuse_main(void *arg)
{
	(void)arg;
	struct pair p;
	char buf[4];
	const void *d;
	struct rotor_stream *s = NULL;
	open_pair(&p, PLAIN, NULL);
	CHECK_EQ(rotor_stream_create(-1, NULL, &s), -EINVAL);
	CHECK_EQ(rotor_stream_create(p.a, NULL, NULL), -EINVAL);
	CHECK(s == NULL);
	CHECK_EQ(rotor_stream_destroy(NULL), -EINVAL);
	CHECK_EQ(rotor_stream_fd(NULL), -EINVAL);
	CHECK_EQ(rotor_stream_read(NULL, buf, 1, F), -EINVAL);
	CHECK_EQ(rotor_stream_read(p.s, NULL, 1, F), -EINVAL);
	CHECK_EQ(rotor_stream_read(p.s, buf, 0, F), -EINVAL);
	CHECK_EQ(rotor_stream_read_exact(NULL, buf, 1, F), -EINVAL);
	CHECK_EQ(rotor_stream_read_exact(p.s, NULL, 1, F), -EINVAL);
	CHECK_EQ(rotor_stream_read_until(NULL, "\n", 1, 0, &d, F), -EINVAL);
	CHECK_EQ(rotor_stream_read_until(p.s, NULL, 1, 0, &d, F), -EINVAL);
	CHECK_EQ(rotor_stream_read_until(p.s, "\n", 0, 0, &d, F), -EINVAL);
	CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, NULL, F), -EINVAL);
	CHECK_EQ(rotor_stream_read_until(p.s, "\r\n", 2, 1, &d, F), -EMSGSIZE);
	CHECK_EQ(rotor_stream_peek(NULL, 1, &d, F), -EINVAL);
	CHECK_EQ(rotor_stream_peek(p.s, 1, NULL, F), -EINVAL);
	CHECK_EQ(rotor_stream_consume(NULL, 0), -EINVAL);
	CHECK_EQ(rotor_stream_write(NULL, "x", 1, F), -EINVAL);
	CHECK_EQ(rotor_stream_write(p.s, NULL, 1, F), -EINVAL);
	CHECK_EQ(rotor_stream_write(p.s, NULL, 0, F), 0);
	struct iovec v = {"x", 1};
	CHECK_EQ(rotor_stream_writev(p.s, &v, -1, F), -EINVAL);
	CHECK_EQ(rotor_stream_writev(p.s, &v, 1024, F), -EINVAL);
	CHECK_EQ(rotor_stream_writev(p.s, NULL, 1, F), -EINVAL);
	CHECK_EQ(rotor_stream_write_all(NULL, "x", 1, F), -EINVAL);
	CHECK_EQ(rotor_stream_flush(NULL, F), -EINVAL);
	CHECK_EQ(rotor_stream_shutdown(NULL, F), -EINVAL);
	/* Another worker's task. */
	struct other o = {p.s, NULL, p.a};
	CHECK_EQ(rotor_bufring_create(4, 64, &o.pool), 0);
	struct rotor_task *t = spawn_on(1, from_other_worker, &o);
	CHECK_EQ(rotor_join(t, NULL), 0);
	CHECK_EQ(rotor_bufring_destroy(o.pool), 0);
	close_pair(&p);
	return NULL;
}

Test(stream, misuse_gets_an_errno, .timeout = 30)
{
	struct rotor_stream *s = NULL;
	cr_assert_eq(rotor_stream_create(0, NULL, &s), -EPERM);
	cr_assert_null(s);
	cr_assert_eq(rotor_stream_fd(NULL), -EINVAL);
	run_mode(2, 0, misuse_main, NULL);
}

/* ---- moving a stream to another worker ---- */

static struct rotor_stream *left_detached;

static void *take_over(void *arg)
{
	struct rotor_stream *s = arg;
	const void *line;
	CHECK_EQ(rotor_stream_attach(s), 0);
	CHECK_EQ(rotor_stream_attach(s), -EINVAL);
	CHECK_EQ(rotor_stream_read_until(s, "\n", 1, 0, &line, rotor_now() + 2 * SEC), 4);
	CHECK_BYTES(line, "two\n");
	CHECK_EQ(rotor_stream_read_until(s, "\n", 1, 0, &line, rotor_now() + 2 * SEC), 6);
	CHECK_BYTES(line, "three\n");
	CHECK_EQ(rotor_stream_read_until(s, "\n", 1, 0, &line, rotor_now() + 2 * SEC), 5);
	CHECK_BYTES(line, "four\n");
	CHECK_EQ(rotor_stream_write_all(s, "moved\n", 6, F), 6);
	CHECK_EQ(rotor_stream_destroy(s), 0);
	return NULL;
}

static void *move_main(void *arg)
{
	(void)arg;
	struct pair p;
	const void *line;
	char buf[8];
	open_pair(&p, PLAIN, NULL);
	/* "one\n" taken, "two" left in the receive buffer, "\nthree\n" queued behind it. */
	send_str(p.b, "one\ntwo");
	CHECK_EQ(rotor_stream_read_until(p.s, "\n", 1, 0, &line, F), 4);
	send_str(p.b, "\nthree\n");
	rotor_sleep(5 * MS);
	CHECK_EQ(rotor_stream_write(p.s, "x", 1, F), 1);
	CHECK_EQ(rotor_stream_detach(p.s), -EBUSY); /* output not flushed */
	CHECK_EQ(rotor_stream_flush(p.s, F), 0);
	recv_all(p.b, buf, 1);
	CHECK_EQ(rotor_stream_detach(p.s), 0);
	CHECK_EQ(rotor_stream_read(p.s, buf, 1, F), -EPERM);
	CHECK_EQ(rotor_stream_detach(p.s), -EPERM);
	send_str(p.b, "four\n"); /* waits in the socket for the next worker */
	struct rotor_task *t = spawn_on(1, take_over, p.s);
	CHECK_EQ(rotor_join(t, NULL), 0);
	recv_all(p.b, buf, 6);
	CHECK_BYTES(buf, "moved\n");
	p.s = NULL; /* destroyed on worker 1 */
	close_pair(&p);
	/* Only plain streams on the worker's own pool move; not one at its end. */
	for (int k = SMALL; k <= IO; k++) {
		open_pair(&p, k, NULL);
		CHECK_EQ(rotor_stream_detach(p.s), -EOPNOTSUPP);
		close_pair(&p);
	}
	open_pair(&p, PLAIN, NULL);
	shutdown(p.b, SHUT_WR);
	CHECK_EQ(rotor_stream_read(p.s, buf, 1, F), 0);
	CHECK_EQ(rotor_stream_detach(p.s), -ESHUTDOWN);
	close_pair(&p);
	/* A detached stream is destroyed from any thread: this one by the test's own. */
	open_pair(&p, PLAIN, NULL);
	send_str(p.b, "kept");
	rotor_sleep(5 * MS);
	CHECK_EQ(rotor_stream_detach(p.s), 0);
	left_detached = p.s;
	p.s = NULL;
	close_pair(&p);
	return NULL;
}

Test(stream, a_detached_stream_moves_to_another_worker_losing_nothing, .timeout = 30)
{
	run_mode(2, 0, move_main, NULL);
	cr_assert_not_null(left_detached);
	cr_assert_eq(rotor_stream_destroy(left_detached), 0);
	left_detached = NULL;
	run_mode(2, ROTOR_NO_BUFRING, move_main, NULL);
	cr_assert_eq(rotor_stream_destroy(left_detached), 0);
}

/* Many tasks that each write a line and flush, in one turn: the first flush sends its line,
 * the next sends every line written meanwhile, the others find nothing left to send. */
static void *write_and_flush(void *arg)
{
	struct writer *w = arg;
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "cmd %02d\n", w->i);
	CHECK_EQ(rotor_stream_write(w->s, buf, (size_t)n, F), n);
	CHECK_EQ(rotor_stream_flush(w->s, F), 0);
	return NULL;
}

static void *pipelining_main(void *arg)
{
	(void)arg;
	struct pair p;
	open_pair(&p, IO, NULL);
	p.t->slow_ns = 2 * MS;
	struct writer w[WRITERS];
	struct rotor_task *t[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){p.s, i};
		CHECK_EQ(rotor_spawn(write_and_flush, &w[i], &t[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++)
		CHECK_EQ(rotor_join(t[i], NULL), 0);
	CHECK_EQ(p.t->writevs, 2);
	char want[16 * WRITERS], got[16 * WRITERS];
	size_t len = 0;
	for (int i = 0; i < WRITERS; i++)
		len += (size_t)snprintf(want + len, sizeof(want) - len, "cmd %02d\n", i);
	recv_all(p.b, got, len);
	CHECK(memcmp(got, want, len) == 0);
	close_pair(&p);
	return NULL;
}

Test(stream, the_flushes_of_many_tasks_share_one_send, .timeout = 30)
{
	run_mode(1, 0, pipelining_main, NULL);
}

/* Streams waiting to read hold no receive buffer: sixteen of them take turns on a pool of
 * two buffers, each answering a line and waiting for the next. */
enum { TAKERS = 16, ROUNDS = 5 };

static void *answer_lines(void *arg)
{
	struct rotor_stream *s = arg;
	const void *line;
	ssize_t n;
	task_begins();
	while ((n = rotor_stream_read_until(s, "\n", 1, 0, &line, rotor_now() + 5 * SEC)) > 0)
		CHECK_EQ(rotor_stream_write_all(s, line, (size_t)n, F), n);
	CHECK_EQ(n, 0);
	return NULL;
}

static void *idle_main(void *arg)
{
	(void)arg;
	struct rotor_bufring *pool;
	CHECK_EQ(rotor_bufring_create(2, 64, &pool), 0);
	struct rotor_stream_config cfg = {.bufring = pool};
	struct pair p[TAKERS];
	struct rotor_task *t[TAKERS];
	atomic_store(&tasks_begun, 0);
	for (int i = 0; i < TAKERS; i++) {
		tcp_pair(&p[i].a, &p[i].b);
		CHECK_EQ(rotor_stream_create(p[i].a, &cfg, &p[i].s), 0);
		CHECK_EQ(rotor_spawn(answer_lines, p[i].s, &t[i]), 0);
	}
	settle(TAKERS);
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < TAKERS; i++) {
			char line[16], got[16];
			int n = snprintf(line, sizeof(line), "%d.%d\n", r, i);
			send_str(p[i].b, line);
			recv_all(p[i].b, got, (size_t)n);
			CHECK(memcmp(got, line, (size_t)n) == 0);
		}
	for (int i = 0; i < TAKERS; i++) {
		shutdown(p[i].b, SHUT_WR);
		CHECK_EQ(rotor_join(t[i], NULL), 0);
		CHECK_EQ(rotor_stream_destroy(p[i].s), 0);
		close(p[i].a);
		close(p[i].b);
	}
	CHECK_EQ(rotor_bufring_destroy(pool), 0);
	return NULL;
}

Test(stream, streams_waiting_to_read_hold_no_buffer, .timeout = 30)
{
	run_both(idle_main);
}
