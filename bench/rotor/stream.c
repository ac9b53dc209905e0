/*
 * bench_stream: a line protocol echoed through a buffered stream (rotor/stream.h) against the
 * same server written by hand on the primitives the stream is built on (a receive stream on
 * a buffer ring, lines parsed where the kernel put them, a partial line gathered, replies
 * gathered and sent once per receive buffer): what the stream's generality costs. And the
 * stream with one send per reply (write_all) against its gathered writes (write, then flush
 * when nothing more is buffered): why writes gather. One worker runs the client and the
 * server over loopback TCP; the client pipelines batches of 32 lines and waits for their
 * replies. CPU and wall nanoseconds per line, client included (the same on every side).
 */
#include "bench.h"

#include <rotor.h>
#include <rotor/stream.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define F          ROTOR_FOREVER
#define BATCH      32
#define POOL_COUNT 512
#define POOL_SIZE  4096

enum variant { RAW, STREAM, STREAM_SEND_EACH };
static const char *const variant_name[] = {"recv-stream-by-hand", "stream", "stream-write_all"};

struct run {
	enum variant v;
	long n; /* lines */
	int fd[2];
	double wall_ns, cpu_ns;
	int err;
};

/* ---- servers ---- */

static int send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = rotor_send(fd, p, len, 0, F);
		if (n <= 0)
			return n < 0 ? (int)n : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct out {
	int fd;
	size_t len;
	char buf[16384];
};

static int reply(struct out *o, const char *p, size_t len)
{
	if (o->len + len > sizeof(o->buf)) {
		int err = send_all(o->fd, o->buf, o->len);
		if (err < 0)
			return err;
		o->len = 0;
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
	return 0;
}

/* What an application writes without the stream: examples/http_server.c's loop. */
static int serve_raw(int fd)
{
	struct rotor_bufring *pool;
	struct rotor_recv_stream *rs;
	static char in[POOL_SIZE * 2];
	static struct out o;
	size_t in_len = 0;
	int err = rotor_bufring_create(POOL_COUNT, POOL_SIZE, &pool);
	if (err < 0)
		return err;
	if ((err = rotor_recv_stream_create(fd, pool, &rs)) < 0) {
		rotor_bufring_destroy(pool);
		return err;
	}
	o.fd = fd;
	o.len = 0;
	for (;;) {
		const void *data;
		ssize_t n = rotor_recv_stream_next(rs, &data, F);
		if (n <= 0) {
			err = (int)n;
			break;
		}
		const char *p = data;
		size_t left = (size_t)n;
		while (left && err == 0) {
			const char *nl = memchr(p, '\n', left);
			size_t take = nl ? (size_t)(nl - p) + 1 : left;
			if (!nl || in_len) {
				if (in_len + take > sizeof(in)) {
					err = -EMSGSIZE;
					break;
				}
				memcpy(in + in_len, p, take);
				in_len += take;
				if (nl) {
					err = reply(&o, in, in_len);
					in_len = 0;
				}
			} else {
				err = reply(&o, p, take);
			}
			p += take;
			left -= take;
		}
		if (err == 0 && o.len) {
			err = send_all(fd, o.buf, o.len);
			o.len = 0;
		}
		if (err < 0)
			break;
	}
	rotor_recv_stream_destroy(rs);
	rotor_bufring_destroy(pool);
	return err;
}

static int serve_stream(int fd, bool each)
{
	struct rotor_stream *s;
	int err = rotor_stream_create(fd, NULL, &s);
	if (err < 0)
		return err;
	for (;;) {
		const void *line, *more;
		ssize_t n = rotor_stream_read_until(s, "\n", 1, 0, &line, F);
		if (n <= 0) {
			err = (int)n;
			break;
		}
		if (each) {
			if ((n = rotor_stream_write_all(s, line, (size_t)n, F)) < 0)
				break;
			continue;
		}
		if ((n = rotor_stream_write(s, line, (size_t)n, F)) < 0 ||
		    (rotor_stream_peek(s, 0, &more, F) == 0 && (n = rotor_stream_flush(s, F)) < 0))
			break;
	}
	rotor_stream_destroy(s);
	return err;
}

static void *server(void *arg)
{
	struct run *r = arg;
	int err =
	    r->v == RAW ? serve_raw(r->fd[1]) : serve_stream(r->fd[1], r->v == STREAM_SEND_EACH);
	if (err < 0 && !r->err)
		r->err = err;
	return NULL;
}

/* ---- the client ---- */

static size_t make_batch(char *buf, size_t cap)
{
	size_t len = 0;
	for (int i = 0; i < BATCH; i++)
		len += (size_t)snprintf(buf + len, cap - len, "GET user:%d:%.*s\r\n", i * 7919,
		                        i % 17, "abcdefghijklmnopq");
	return len;
}

static void *measure(void *arg)
{
	struct run *r = arg;
	static char batch[BATCH * 64], sink[BATCH * 64];
	size_t len = make_batch(batch, sizeof(batch));
	struct rotor_task *t;
	if ((r->err = rotor_spawn(server, r, &t)) < 0)
		return NULL;
	long batches = r->n / BATCH, warm = batches / 20 + 1;
	int64_t t0 = 0, c0 = 0;
	for (long b = 0; b < warm + batches && !r->err; b++) {
		if (b == warm) {
			t0 = bench_now();
			c0 = bench_cpu();
		}
		if ((r->err = send_all(r->fd[0], batch, len)) < 0)
			break;
		for (size_t got = 0; got < len;) {
			ssize_t n = rotor_recv(r->fd[0], sink + got, len - got, 0, F);
			if (n <= 0) {
				r->err = n < 0 ? (int)n : -EPIPE;
				break;
			}
			got += (size_t)n;
		}
	}
	int64_t t1 = bench_now(), c1 = bench_cpu();
	r->wall_ns = (double)(t1 - t0) / (double)(batches * BATCH);
	r->cpu_ns = (double)(c1 - c0) / (double)(batches * BATCH);
	shutdown(r->fd[0], SHUT_WR);
	rotor_join(t, NULL);
	if (!r->err && memcmp(sink, batch, len) != 0)
		r->err = -EPROTO;
	return NULL;
}

static int tcp_pair(int fd[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (fd[1] < 0)
		return -1;
	setsockopt(fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int run_one(enum variant v, long n, struct run *r)
{
	struct rotor_config cfg = {.workers = 1};
	memset(r, 0, sizeof(*r));
	r->v = v;
	r->n = n;
	if (tcp_pair(r->fd) < 0)
		return -EIO;
	int rc = rotor_run(&cfg, measure, r, NULL);
	close(r->fd[0]);
	close(r->fd[1]);
	return rc < 0 ? rc : r->err;
}

int main(int argc, char **argv)
{
	struct bench_ctx b;
	struct bench_series cpu[3], wall[3];
	bench_init(&b, "stream",
	           "A pipelined line protocol echoed through rotor_stream against the same server "
	           "by hand on a receive stream, and with one send per reply; one worker.",
	           7, 3, argc, argv);
	for (int v = 0; v < 3; v++) {
		cpu[v] = (struct bench_series){.impl = variant_name[v]};
		wall[v] = (struct bench_series){.impl = variant_name[v]};
	}
	long n = b.quick ? 64000 : 320000;
	bench_note(&b,
	           "stream: %ld lines per rep in batches of %d, %d reps, one worker; client "
	           "CPU included on every side",
	           n, BATCH, b.reps);
	for (int rep = 0; rep < b.reps; rep++)
		for (int v = 0; v < 3; v++) {
			struct run r;
			int rc = run_one((enum variant)v, n, &r);
			if (rc < 0) {
				bench_note(&b, "  %s failed: %s", variant_name[v], strerror(-rc));
				continue;
			}
			bench_add(&cpu[v], r.cpu_ns);
			bench_add(&wall[v], r.wall_ns);
		}
	bench_report(&b, "line_echo_cpu", "ns/op", &cpu[STREAM], &cpu[RAW]);
	bench_report(&b, "line_echo_wall", "ns/op", &wall[STREAM], &wall[RAW]);
	bench_report(&b, "gathered_vs_send_each_cpu", "ns/op", &cpu[STREAM],
	             &cpu[STREAM_SEND_EACH]);
	return cpu[STREAM].n == b.reps && cpu[RAW].n == b.reps ? 0 : 1;
}
