/*
 * The HTTP server (rotor/http.h) through a raw-socket client: framing by Content-Length and
 * chunked (trailers too) in one piece and byte by byte, every framing error answered and
 * closed (CL with TE, bad chunk sizes, oversized heads and bodies), HTTP/1.0 keep-alive and
 * Connection: close, HEAD, Expect: 100-continue both ways, pipelined requests with bodies,
 * unread bodies dropped or closed, routes (exact, prefix, 404, 405 with Allow, 501), a
 * streamed request body echoed as a chunked response, file responses, the header, body and
 * handler deadlines, the connection cap, a drain with a request in flight, HTTPS, and curl for
 * the happy paths. Each test runs the server on a runtime in a thread of its own, on a free
 * loopback port, and stops it before it ends.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <criterion/criterion.h>
#include <rotor/http.h>
#ifdef ROTOR_HAVE_TLS
#include <rotor/tls.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* ---- The server, on a runtime in a thread -------------------------------------------- */

struct srv {
	struct rotor_http_server *s;
	struct rotor_http_config cfg;
	pthread_t th;
	int stop_fd;  /* written to stop: the runtime's main task drains */
	int ready_fd; /* written once the server accepts */
	int port;
	int64_t drain_ns;
};

static void *srv_main(void *arg)
{
	struct srv *v = arg;
	int r = rotor_http_server_start(v->s);
	uint64_t one = 1;
	if (write(v->ready_fd, &one, 8) != 8 || r < 0)
		return NULL;
	uint64_t x;
	rotor_read(v->stop_fd, &x, 8, -1, ROTOR_FOREVER);
	rotor_runtime_drain(rotor_runtime_current(), rotor_now() + v->drain_ns);
	return NULL;
}

static void *srv_thread(void *arg)
{
	struct rotor_config cfg = {.workers = 1};
	rotor_run(&cfg, srv_main, arg, NULL);
	return NULL;
}

static int h_echo(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_pieces(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_ignore(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_stream(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_slow(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_file(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_late(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_info(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_name(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_none(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);
static int h_badtype(struct rotor_http_request *req, struct rotor_http_response *res, void *arg);

static const char FILE_TEXT[] = "a file, read through the ring\n";
static char file_path[64];

static void make_file(void)
{
	if (file_path[0])
		return;
	snprintf(file_path, sizeof(file_path), "/tmp/rotor_http_file_XXXXXX");
	int fd = mkstemp(file_path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, FILE_TEXT, strlen(FILE_TEXT)), (ssize_t)strlen(FILE_TEXT));
	close(fd);
}

static void srv_start_cfg(struct srv *v, struct rotor_http_config *cfg)
{
	make_file();
	memset(v, 0, sizeof(*v));
	cfg->host = "127.0.0.1";
	cfg->port = 0;
	cfg->workers = 1;
	v->drain_ns = 2 * SEC;
	cr_assert_eq(rotor_http_server_create(cfg, &v->s), 0);
	struct {
		const char *m, *p;
		unsigned f;
		rotor_http_handler_fn fn;
		const char *arg;
	} rs[] = {
	    {"POST", "/echo", 0, h_echo, NULL},
	    {"POST", "/pieces", 0, h_pieces, NULL},
	    {"POST", "/ignore", 0, h_ignore, NULL},
	    {"GET", "/ignore", 0, h_ignore, NULL},
	    {"POST", "/stream", 0, h_stream, NULL},
	    {"GET", "/slow", 0, h_slow, NULL},
	    {"GET", "/file", 0, h_file, NULL},
	    {"GET", "/late", 0, h_late, NULL},
	    {"GET", "/info", 0, h_info, NULL},
	    {"GET", "/a/", ROTOR_HTTP_PREFIX, h_name, "prefix /a/"},
	    {"GET", "/a/b/", ROTOR_HTTP_PREFIX, h_name, "prefix /a/b/"},
	    {"GET", "/a/b/c", 0, h_name, "exact /a/b/c"},
	    {"PUT", "/only-put", 0, h_name, "put"},
	    {"DELETE", "/only-put", 0, h_name, "delete"},
	    {"BREW", "/coffee", 0, h_name, "brewed"},
	    {NULL, "/any", 0, h_name, "any method"},
	    {"GET", "/none", 0, h_none, NULL},
	    {"GET", "/badtype", 0, h_badtype, NULL},
	};
	for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++)
		cr_assert_eq(
		    rotor_http_route(v->s, rs[i].m, rs[i].p, rs[i].f, rs[i].fn, (void *)rs[i].arg),
		    0, "%s", rs[i].p);
	cr_assert_eq(
	    rotor_http_route_fixed(v->s, "GET", "/fixed", 0, 200, "text/plain", "fixed!", 6), 0);
	v->port = rotor_http_server_port(v->s);
	cr_assert_gt(v->port, 0);
	v->stop_fd = eventfd(0, EFD_CLOEXEC);
	v->ready_fd = eventfd(0, EFD_CLOEXEC);
	cr_assert(v->stop_fd >= 0 && v->ready_fd >= 0);
	cr_assert_eq(pthread_create(&v->th, NULL, srv_thread, v), 0);
	uint64_t x;
	cr_assert_eq(read(v->ready_fd, &x, 8), 8);
}

static void srv_start(struct srv *v)
{
	struct rotor_http_config cfg = {.max_body = 64 * 1024, .max_head = 4096};
	srv_start_cfg(v, &cfg);
}

static void srv_stop(struct srv *v)
{
	if (file_path[0])
		unlink(file_path);
	uint64_t one = 1;
	cr_assert_eq(write(v->stop_fd, &one, 8), 8);
	pthread_join(v->th, NULL);
	cr_assert_eq(rotor_http_server_destroy(v->s), 0);
	close(v->stop_fd);
	close(v->ready_fd);
}

/* ---- Handlers ---------------------------------------------------------------------------- */

/* The whole body back, with the query and the X-Tag field when there is one. */
static int h_echo(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	const void *body;
	ssize_t n = rotor_http_body(req, 0, &body);
	if (n < 0)
		return (int)n;
	return rotor_http_respond(res, 200, "application/octet-stream", body, (size_t)n);
}

/* The body read in pieces: "<pieces> <bytes> <sum of bytes>". */
static int h_pieces(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	const void *p;
	ssize_t n;
	long pieces = 0, bytes = 0, sum = 0;
	while ((n = rotor_http_body_read(req, &p)) > 0) {
		pieces++;
		bytes += n;
		for (ssize_t i = 0; i < n; i++)
			sum += ((const unsigned char *)p)[i];
	}
	if (n < 0)
		return (int)n;
	char out[96];
	int len = snprintf(out, sizeof(out), "%ld %ld %ld", pieces, bytes, sum);
	return rotor_http_respond(res, 200, "text/plain", out, (size_t)len);
}

static int h_ignore(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	return rotor_http_respond(res, 200, "text/plain", "ignored", 7);
}

/* Each piece of the body back as a chunk, at once. */
static int h_stream(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	cr_assert_eq(rotor_http_header_add(res, "X-Streamed", "yes"), 0);
	int r = rotor_http_stream_begin(res, 200, "text/plain");
	const void *p;
	ssize_t n = 0;
	while (r == 0 && (n = rotor_http_body_read(req, &p)) > 0)
		r = rotor_http_stream_write(res, p, (size_t)n);
	if (r == 0 && n < 0)
		r = (int)n;
	return r < 0 ? r : rotor_http_stream_end(res);
}

/* Suspends 300 ms (another service, say), then answers. */
static int h_slow(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	(void)req;
	rotor_sleep(300 * MS); /* the server shields it from a drain: no shield of its own */
	return rotor_http_respond(res, 200, "text/plain", "slow", 4);
}

static int h_file(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	int fd = rotor_open(file_path, O_RDONLY, 0, req->deadline);
	if (fd < 0)
		return fd;
	int r = rotor_http_respond_file(res, 200, "text/plain", fd, 2, strlen(FILE_TEXT) - 2);
	rotor_close(fd, ROTOR_FOREVER);
	return r;
}

/* Streams one chunk, then sleeps past the handler deadline and tries another. */
static int h_late(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	int r = rotor_http_stream_begin(res, 200, "text/plain");
	if (r == 0)
		r = rotor_http_stream_write(res, "early", 5);
	if (r == 0) {
		rotor_sleep_until(req->deadline + 50 * MS);
		r = rotor_http_stream_write(res, "late", 4);
	}
	return r;
}

/* What the request object says: method, path, query, X-Tag (looked up in lower case). */
static int h_info(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	size_t tl = 0;
	const char *tag = rotor_http_header(req, "x-tag", &tl);
	char out[256];
	int n = snprintf(out, sizeof(out), "%.*s|%.*s|%.*s|%.*s|%d", (int)req->method_len,
	                 req->method, (int)req->path_len, req->path, (int)req->query_len,
	                 req->query ? req->query : "", tag ? (int)tl : 4, tag ? tag : "none",
	                 req->minor);
	return rotor_http_respond(res, 200, "text/plain", out, (size_t)n);
}

static int h_name(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)req;
	return rotor_http_respond(res, 200, "text/plain", arg, strlen(arg));
}

static int h_none(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)req;
	(void)res;
	(void)arg;
	return 0; /* answers nothing: a 500 */
}

/* A Content-Type that would end its field (a response split) or overflow the head: refused
 * before anything is begun, so a proper response can follow. What the calls returned, for
 * the test to check. */
static int badtype_rc[4];

static int h_badtype(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	char longtype[200];
	memset(longtype, 'a', sizeof(longtype) - 1);
	longtype[sizeof(longtype) - 1] = 0;
	badtype_rc[0] = rotor_http_respond(res, 200, "text/plain\r\nX-Injected: 1", "no", 2);
	badtype_rc[1] = rotor_http_respond(res, 200, longtype, "no", 2);
	badtype_rc[2] = rotor_http_stream_begin(res, 200, "a\nb");
	badtype_rc[3] = rotor_http_respond(res, 200, "text/plain", "ok", 2);
	return 0;
}

/* ---- The client -------------------------------------------------------------------------- */

struct client {
	int fd;
	char buf[1 << 17];
	size_t len;
};

struct response {
	int status;
	char head[4096];
	char body[1 << 16];
	size_t body_len;
	bool chunked;
};

static struct client *client_open(int port)
{
	struct client *c = calloc(1, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(c->fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = {.tv_sec = 5};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return c;
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c);
}

static void send_raw(struct client *c, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		cr_assert_gt(w, 0, "send: %s", strerror(errno));
		s += w;
		n -= (size_t)w;
	}
}

static void send_str(struct client *c, const char *s)
{
	send_raw(c, s, strlen(s));
}

/* Byte by byte, each its own segment. */
static void send_slowly(struct client *c, const char *s)
{
	for (; *s; s++) {
		send_raw(c, s, 1);
		usleep(200);
	}
}

/* More bytes into buf; 0 at the end of the stream. */
static ssize_t fill(struct client *c)
{
	cr_assert_lt(c->len, sizeof(c->buf));
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	cr_assert_geq(n, 0, "recv: %s", strerror(errno));
	c->len += (size_t)n;
	return n;
}

static void take(struct client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static const char *field(const struct response *r, const char *name, char *out, size_t cap)
{
	const char *p = strstr(r->head, "\r\n");
	size_t n = strlen(name);
	while (p && p[2] != '\r') {
		p += 2;
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			const char *e = strstr(v, "\r\n");
			snprintf(out, cap, "%.*s", (int)(e - v), v);
			return out;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

/* One response (a 1xx included); no body when head_only. */
static void read_response_for(struct client *c, struct response *r, bool head_only)
{
	char *end;
	memset(r, 0, sizeof(*r));
	while (c->len < 4 || !(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		cr_assert_gt(fill(c), 0, "the connection closed before a response head");
	size_t hl = (size_t)(end - c->buf) + 4;
	cr_assert_lt(hl, sizeof(r->head));
	memcpy(r->head, c->buf, hl);
	take(c, hl);
	cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1, "%s", r->head);
	char v[64];
	if (head_only || r->status < 200)
		return;
	if (field(r, "Transfer-Encoding", v, sizeof(v))) {
		cr_assert_str_eq(v, "chunked");
		r->chunked = true;
		for (;;) {
			char *nl;
			while (!(nl = memmem(c->buf, c->len, "\r\n", 2)))
				cr_assert_gt(fill(c), 0);
			size_t size = strtoul(c->buf, NULL, 16);
			take(c, (size_t)(nl - c->buf) + 2);
			while (c->len < size + 2)
				cr_assert_gt(fill(c), 0);
			cr_assert_lt(r->body_len + size, sizeof(r->body));
			memcpy(r->body + r->body_len, c->buf, size);
			r->body_len += size;
			cr_assert(!memcmp(c->buf + size, "\r\n", 2) || size == 0);
			if (size == 0) {
				take(c, 2); /* no trailers from this server */
				break;
			}
			take(c, size + 2);
		}
	} else if (field(r, "Content-Length", v, sizeof(v))) {
		size_t n = strtoul(v, NULL, 10);
		cr_assert_lt(n, sizeof(r->body));
		while (c->len < n)
			cr_assert_gt(fill(c), 0);
		memcpy(r->body, c->buf, n);
		r->body_len = n;
		take(c, n);
	} else {
		while (fill(c) > 0)
			;
		memcpy(r->body, c->buf, c->len);
		r->body_len = c->len;
		c->len = 0;
	}
	r->body[r->body_len] = 0;
}

static void read_response(struct client *c, struct response *r)
{
	read_response_for(c, r, false);
}

static void expect_closed(struct client *c)
{
	char b[256];
	ssize_t n;
	cr_assert_eq(c->len, 0, "bytes after the last response: %.*s", (int)c->len, c->buf);
	while ((n = recv(c->fd, b, sizeof(b), 0)) > 0)
		cr_assert_fail("bytes after the last response: %.*s", (int)n, b);
	cr_assert(n == 0 || errno == ECONNRESET, "the server did not close: %s", strerror(errno));
}

/* One request on a fresh connection: its response (in *r), checked closed when closes. */
static int once(int port, const char *req, bool closes, struct response *r)
{
	struct client *c = client_open(port);
	send_str(c, req);
	read_response(c, r);
	if (closes) {
		char v[32];
		cr_assert_not_null(field(r, "Connection", v, sizeof(v)), "%s", r->head);
		cr_assert_str_eq(v, "close");
		expect_closed(c);
	}
	client_close(c);
	return r->status;
}

static struct response R; /* big: not on the stack */
static struct response R2;

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define POST(path, body) "POST " path " HTTP/1.1\r\nHost: t\r\nContent-Length: " #body "\r\n\r\n"

/* ---- Tests ------------------------------------------------------------------------------- */

Test(http_server, content_length_bodies_in_one_piece_and_byte_by_byte)
{
	struct srv v;
	srv_start(&v);
	static const char req[] = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n"
	                          "hello world";
	for (int slow = 0; slow < 2; slow++) {
		struct client *c = client_open(v.port);
		for (int i = 0; i < 2; i++) { /* twice on one connection */
			slow ? send_slowly(c, req) : send_str(c, req);
			read_response(c, &R);
			cr_assert_eq(R.status, 200);
			cr_assert_eq(R.body_len, 11);
			cr_assert_str_eq(R.body, "hello world");
		}
		client_close(c);
	}
	/* An empty body, and a body read in pieces: every byte counted once. */
	cr_assert_eq(once(v.port, POST("/echo", 0), false, &R), 200);
	cr_assert_eq(R.body_len, 0);
	struct client *c = client_open(v.port);
	send_slowly(c, POST("/pieces", 5) "abcde");
	read_response(c, &R);
	long pieces, bytes, sum;
	cr_assert_eq(sscanf(R.body, "%ld %ld %ld", &pieces, &bytes, &sum), 3);
	cr_assert_eq(bytes, 5);
	cr_assert_eq(sum, 'a' + 'b' + 'c' + 'd' + 'e');
	cr_assert_geq(pieces, 2, "byte by byte gives the handler several pieces");
	client_close(c);
	srv_stop(&v);
}

Test(http_server, chunked_bodies_with_trailers_in_one_piece_and_byte_by_byte)
{
	struct srv v;
	srv_start(&v);
	static const char req[] =
	    "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";
	for (int slow = 0; slow < 2; slow++) {
		struct client *c = client_open(v.port);
		for (int i = 0; i < 2; i++) {
			slow ? send_slowly(c, req) : send_str(c, req);
			read_response(c, &R);
			cr_assert_eq(R.status, 200);
			cr_assert_str_eq(R.body, "hello world");
		}
		client_close(c);
	}
	srv_stop(&v);
}

Test(http_server, framing_errors_are_answered_and_closed)
{
	struct srv v;
	srv_start(&v);
	static const struct {
		const char *req;
		int status;
	} bad[] = {
	    /* Content-Length with Transfer-Encoding: the classic smuggling pair. */
	    {"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n"
	     "0\r\n\r\n",
	     400},
	    {"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	     400},
	    {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
	    {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
	    {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
	    {"GET /info HTTP/3.0\r\nHost: t\r\n\r\n", 505},
	    {"GET info HTTP/1.1\r\nHost: t\r\n\r\n", 400},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(once(v.port, bad[i].req, true, &R), bad[i].status, "%s", bad[i].req);
	/* Bad chunk sizes: the body cannot be framed, the handler's read fails, 400, close. */
	static const char *const chunks[] = {"zz\r\nabc\r\n0\r\n\r\n", "-1\r\n\r\n",
	                                     "12345678901234567\r\n", "3\r\nabcX\r\n0\r\n\r\n"};
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		char req[256];
		snprintf(req, sizeof(req),
		         "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%s",
		         chunks[i]);
		cr_assert_eq(once(v.port, req, true, &R), 400, "%s", chunks[i]);
	}
	/* Good requests before a bad one are answered first. */
	struct client *c = client_open(v.port);
	send_str(c, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\nGET /info HTTP/1.1\r\n\r\nGET /fixed "
	            "HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(c, &R);
	cr_assert_eq(R.status, 200);
	read_response(c, &R);
	cr_assert_eq(R.status, 400, "no Host in HTTP/1.1");
	expect_closed(c);
	client_close(c);
	srv_stop(&v);
}

Test(http_server, oversized_heads_are_431_and_bodies_413)
{
	struct srv v;
	srv_start(&v); /* max_head 4096, max_body 64 KiB */
	static char req[80000];
	int n = sprintf(req, "GET /info HTTP/1.1\r\nHost: t\r\nX-Big: ");
	memset(req + n, 'x', 5000);
	strcpy(req + n + 5000, "\r\n\r\n");
	cr_assert_eq(once(v.port, req, true, &R), 431);
	/* A request line over the limit: 414. */
	n = sprintf(req, "GET /");
	memset(req + n, 'a', 5000);
	strcpy(req + n + 5000, " HTTP/1.1\r\nHost: t\r\n\r\n");
	cr_assert_eq(once(v.port, req, true, &R), 414);
	/* More fields than max_fields (64): 431. */
	n = sprintf(req, "GET /info HTTP/1.1\r\nHost: t\r\n");
	for (int i = 0; i < 70; i++)
		n += sprintf(req + n, "X-%d: 1\r\n", i);
	strcpy(req + n, "\r\n");
	cr_assert_eq(once(v.port, req, true, &R), 431);
	/* A Content-Length over max_body: 413 before the handler reads a byte. */
	cr_assert_eq(once(v.port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n",
	                  true, &R),
	             413);
	/* A chunked body that grows past max_body: 413 when the handler's read passes it. */
	struct client *c = client_open(v.port);
	send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
	static char chunk[8300];
	n = sprintf(chunk, "2000\r\n");
	memset(chunk + n, 'y', 0x2000);
	strcpy(chunk + n + 0x2000, "\r\n");
	for (int i = 0; i < 9; i++)
		send_str(c, chunk);
	read_response(c, &R);
	cr_assert_eq(R.status, 413);
	client_close(c);
	srv_stop(&v);
}

Test(http_server, http10_keep_alive_and_connection_close)
{
	struct srv v;
	srv_start(&v);
	char val[32];
	/* HTTP/1.0: closed unless it asks for keep-alive, which the response then says. */
	cr_assert_eq(once(v.port, "GET /fixed HTTP/1.0\r\n\r\n", true, &R), 200);
	struct client *c = client_open(v.port);
	for (int i = 0; i < 3; i++) {
		send_str(c, "GET /info HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
		read_response(c, &R);
		cr_assert_eq(R.status, 200);
		cr_assert_str_eq(field(&R, "Connection", val, sizeof(val)), "keep-alive");
		cr_assert_str_eq(R.body, "GET|/info||none|0");
	}
	client_close(c);
	/* Connection: close ends a pipeline: what follows is not answered. */
	c = client_open(v.port);
	send_str(c, "GET /fixed HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
	            "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(c, &R);
	cr_assert_str_eq(field(&R, "Connection", val, sizeof(val)), "close");
	expect_closed(c);
	client_close(c);
	/* HTTP/1.1 stays open by default and says nothing. */
	cr_assert_eq(once(v.port, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n", false, &R), 200);
	cr_assert_null(field(&R, "Connection", val, sizeof(val)));
	srv_stop(&v);
}

Test(http_server, head_gets_the_headers_of_get_and_no_body)
{
	struct srv v;
	srv_start(&v);
	static const char *const paths[] = {"/fixed", "/a/b/c", "/file"};
	struct client *c = client_open(v.port);
	for (size_t i = 0; i < 3; i++) {
		char req[128];
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
		send_str(c, req);
		read_response(c, &R);
		snprintf(req, sizeof(req), "HEAD %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
		send_str(c, req);
		read_response_for(c, &R2, true);
		cr_assert_eq(R2.status, 200);
		char a[32], b[32];
		cr_assert_str_eq(field(&R2, "Content-Length", b, sizeof(b)),
		                 field(&R, "Content-Length", a, sizeof(a)), "%s", paths[i]);
		cr_assert_str_eq(field(&R2, "Content-Type", b, sizeof(b)),
		                 field(&R, "Content-Type", a, sizeof(a)));
	}
	/* Nothing followed the HEAD responses: the next response starts right away. */
	send_str(c, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(c, &R);
	cr_assert_str_eq(R.body, "fixed!");
	client_close(c);
	srv_stop(&v);
}

Test(http_server, expect_100_continue_only_when_the_handler_reads)
{
	struct srv v;
	srv_start(&v);
	/* The handler reads: 100 Continue, then the client sends the body, then 200. */
	struct client *c = client_open(v.port);
	send_str(
	    c,
	    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
	read_response(c, &R);
	cr_assert_eq(R.status, 100);
	send_str(c, "body");
	read_response(c, &R);
	cr_assert_eq(R.status, 200);
	cr_assert_str_eq(R.body, "body");
	/* Still usable. */
	send_str(c, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(c, &R);
	cr_assert_eq(R.status, 200);
	client_close(c);
	/* The handler answers without reading: no 100, the response, then the close. */
	c = client_open(v.port);
	send_str(c, "POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: "
	            "100-continue\r\n\r\n");
	read_response(c, &R);
	cr_assert_eq(R.status, 200);
	cr_assert_str_eq(R.body, "ignored");
	char val[32];
	cr_assert_str_eq(field(&R, "Connection", val, sizeof(val)), "close");
	expect_closed(c);
	client_close(c);
	srv_stop(&v);
}

Test(http_server, pipelined_requests_with_bodies_are_answered_in_order)
{
	struct srv v;
	srv_start(&v);
	struct client *c = client_open(v.port);
	static const char reqs[] = POST(
	    "/echo", 3) "one"
	                "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
	                "3\r\ntwo\r\n0\r\n\r\n"
	                "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n" POST("/ignore", 5) "xxxxx" POST(
	                    "/echo", 5) "three"
	                                "GET /info?q=1 HTTP/1.1\r\nHost: t\r\nX-TAG: T\r\n\r\n";
	static const char *const want[] = {"one",     "two",   "fixed!",
	                                   "ignored", "three", "GET|/info|q=1|T|1"};
	for (int slow = 0; slow < 2; slow++) {
		slow ? send_slowly(c, reqs) : send_str(c, reqs);
		for (size_t i = 0; i < 6; i++) {
			read_response(c, &R);
			cr_assert_eq(R.status, 200, "%zu", i);
			cr_assert_str_eq(R.body, want[i], "%zu", i);
		}
	}
	client_close(c);
	srv_stop(&v);
}

Test(http_server, an_unread_body_is_dropped_or_the_connection_closed)
{
	struct srv v;
	srv_start(&v);
	/* Small: dropped, and the next request is framed where it starts. */
	struct client *c = client_open(v.port);
	send_str(c, "GET /ignore HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
	            "4\r\nGET \r\n0\r\n\r\nGET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(c, &R);
	cr_assert_str_eq(R.body, "ignored");
	read_response(c, &R);
	cr_assert_str_eq(R.body, "fixed!");
	client_close(c);
	/* Over 64 KiB, with max_body larger: the response says close. */
	struct rotor_http_config cfg = {.max_body = 1 << 20};
	srv_stop(&v);
	srv_start_cfg(&v, &cfg);
	c = client_open(v.port);
	send_str(c, "POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
	read_response(c, &R);
	char val[32];
	cr_assert_str_eq(field(&R, "Connection", val, sizeof(val)), "close");
	client_close(c);
	srv_stop(&v);
}

Test(http_server, routes_exact_prefix_404_405_501)
{
	struct srv v;
	srv_start(&v);
	static const struct {
		const char *req;
		int status;
		const char *body;
	} cases[] = {
	    {"GET /a/b/c HTTP/1.1\r\nHost: t\r\n\r\n", 200, "exact /a/b/c"},
	    {"GET /a/b/c/d HTTP/1.1\r\nHost: t\r\n\r\n", 200, "prefix /a/b/"},
	    {"GET /a/b/ HTTP/1.1\r\nHost: t\r\n\r\n", 200, "prefix /a/b/"},
	    {"GET /a/x?y HTTP/1.1\r\nHost: t\r\n\r\n", 200, "prefix /a/"},
	    {"GET /a HTTP/1.1\r\nHost: t\r\n\r\n", 404, "Not Found\n"},
	    {"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", 404, "Not Found\n"},
	    {"PUT /only-put HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 200, "put"},
	    {"GET /only-put HTTP/1.1\r\nHost: t\r\n\r\n", 405, "Method Not Allowed\n"},
	    {"BREW /coffee HTTP/1.1\r\nHost: t\r\n\r\n", 200, "brewed"},
	    {"BREW /info HTTP/1.1\r\nHost: t\r\n\r\n", 405, "Method Not Allowed\n"},
	    {"FROB /info HTTP/1.1\r\nHost: t\r\n\r\n", 501, "Not Implemented\n"},
	    {"PATCH /any HTTP/1.1\r\nHost: t\r\n\r\n", 200, "any method"},
	    {"GET http://example.com/a/b/c HTTP/1.1\r\nHost: example.com\r\n\r\n", 200,
	     "exact /a/b/c"},
	    {"GET /none HTTP/1.1\r\nHost: t\r\n\r\n", 500, "Internal Server Error\n"},
	};
	struct client *c = client_open(v.port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		send_str(c, cases[i].req);
		read_response(c, &R);
		cr_assert_eq(R.status, cases[i].status, "%s", cases[i].req);
		cr_assert_str_eq(R.body, cases[i].body, "%s", cases[i].req);
		if (R.status == 500)
			break; /* closes */
		if (R.status == 405) {
			char val[64];
			cr_assert_not_null(field(&R, "Allow", val, sizeof(val)));
			cr_assert_str_eq(val, strstr(cases[i].req, "only-put") ? "PUT, DELETE"
			                                                       : "GET, HEAD");
		}
	}
	client_close(c);
	srv_stop(&v);
}

Test(http_server, a_streamed_body_comes_back_chunked_as_it_arrives)
{
	struct srv v;
	srv_start(&v);
	struct client *c = client_open(v.port);
	send_str(c, "POST /stream HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
	/* The head comes once the handler begins; each piece comes back before the next goes. */
	static const char *const pieces[] = {"first", "second piece", "3"};
	char *end;
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		cr_assert_gt(fill(c), 0, "no head before the body");
	cr_assert(strstr(c->buf, "Transfer-Encoding: chunked\r\n"), "%s", c->buf);
	cr_assert(strstr(c->buf, "X-Streamed: yes\r\n"), "%s", c->buf);
	take(c, (size_t)(end - c->buf) + 4);
	for (int i = 0; i < 3; i++) {
		char chunk[64], want[64];
		snprintf(chunk, sizeof(chunk), "%zx\r\n%s\r\n", strlen(pieces[i]), pieces[i]);
		send_str(c, chunk);
		while (c->len < strlen(chunk))
			cr_assert_gt(fill(c), 0);
		snprintf(want, sizeof(want), "%zx\r\n%s\r\n", strlen(pieces[i]), pieces[i]);
		cr_assert(!memcmp(c->buf, want, strlen(want)), "%.*s", (int)c->len, c->buf);
		take(c, strlen(want));
	}
	send_str(c, "0\r\n\r\n");
	while (c->len < 5)
		cr_assert_gt(fill(c), 0);
	cr_assert(!memcmp(c->buf, "0\r\n\r\n", 5));
	take(c, 5);
	/* HTTP/1.0: no chunks, the body ends with the connection. */
	send_str(c, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(c, &R);
	cr_assert_str_eq(R.body, "fixed!");
	client_close(c);
	c = client_open(v.port);
	send_str(c, "POST /stream HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd");
	read_response(c, &R);
	cr_assert(!R.chunked);
	cr_assert_str_eq(R.body, "abcd");
	client_close(c);
	srv_stop(&v);
}

Test(http_server, file_responses_read_through_the_ring)
{
	struct srv v;
	srv_start(&v);
	cr_assert_eq(once(v.port, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n", false, &R), 200);
	cr_assert_str_eq(R.body, FILE_TEXT + 2);
	srv_stop(&v);
}

Test(http_server, header_body_and_handler_deadlines)
{
	struct srv v;
	struct rotor_http_config cfg = {.idle_ns = 300 * MS,
	                                .header_ns = 200 * MS,
	                                .body_ns = 200 * MS,
	                                .handler_ns = 200 * MS};
	srv_start_cfg(&v, &cfg);
	/* Half a head: closed after header_ns (with nothing sent). */
	int64_t t0 = ms_now();
	struct client *c = client_open(v.port);
	send_str(c, "GET /fixed HTTP/1.1\r\nHo");
	char b;
	cr_assert_eq(recv(c->fd, &b, 1, 0), 0);
	int64_t took = ms_now() - t0;
	cr_assert(took >= 190 && took < 3000, "closed after %lld ms", (long long)took);
	client_close(c);
	/* Half a body: the handler's read times out, 408, close. */
	c = client_open(v.port);
	send_str(c, POST("/echo", 10) "abc");
	read_response(c, &R);
	cr_assert_eq(R.status, 408);
	expect_closed(c);
	client_close(c);
	/* A handler past its deadline: its stream write fails, the connection closes with the
	 * chunked body unfinished. */
	c = client_open(v.port);
	send_str(c, "GET /late HTTP/1.1\r\nHost: t\r\n\r\n");
	while (fill(c) > 0)
		;
	cr_assert(memmem(c->buf, c->len, "early", 5));
	cr_assert_null(memmem(c->buf, c->len, "late", 4));
	cr_assert_null(memmem(c->buf, c->len, "0\r\n\r\n", 5), "no last chunk");
	client_close(c);
	/* Idle between requests: closed after idle_ns. */
	c = client_open(v.port);
	send_str(c, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(c, &R);
	t0 = ms_now();
	cr_assert_eq(recv(c->fd, &b, 1, 0), 0);
	took = ms_now() - t0;
	cr_assert(took >= 250 && took < 3000, "idle closed after %lld ms", (long long)took);
	client_close(c);
	srv_stop(&v);
}

Test(http_server, connections_over_the_cap_are_closed)
{
	struct srv v;
	struct rotor_http_config cfg = {.max_conns = 2};
	srv_start_cfg(&v, &cfg);
	struct client *a = client_open(v.port), *b = client_open(v.port);
	send_str(a, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(a, &R);
	send_str(b, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(b, &R);
	struct client *c = client_open(v.port);
	char x;
	ssize_t k = recv(c->fd, &x, 1, 0);
	cr_assert(k == 0 || (k < 0 && errno == ECONNRESET), "a third connection is closed");
	client_close(c);
	struct rotor_server_stats st;
	cr_assert_eq(rotor_server_stats(rotor_http_server_base(v.s), 0, &st), 0);
	cr_assert_geq(st.refused, 1);
	client_close(a);
	client_close(b);
	srv_stop(&v);
}

Test(http_server, a_drain_lets_a_request_in_flight_finish_then_closes)
{
	struct srv v;
	srv_start(&v);
	struct client *idle = client_open(v.port), *c = client_open(v.port);
	send_str(idle, "GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(idle, &R);
	send_str(c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
	usleep(100 * 1000); /* the handler sleeps */
	uint64_t one = 1;
	cr_assert_eq(write(v.stop_fd, &one, 8), 8); /* as SIGTERM in the example */
	read_response(c, &R);
	cr_assert_eq(R.status, 200);
	cr_assert_str_eq(R.body, "slow");
	expect_closed(c);
	char b;
	cr_assert_eq(recv(idle->fd, &b, 1, 0), 0, "the idle connection was closed");
	client_close(c);
	client_close(idle);
	pthread_join(v.th, NULL);
	cr_assert_eq(rotor_http_server_destroy(v.s), 0);
	close(v.stop_fd);
	close(v.ready_fd);
}

static bool have(const char *prog)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

/* Runs cmd, returns its output (static). */
static const char *run(const char *cmd)
{
	static char out[1 << 16];
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	cr_assert_eq(pclose(p), 0, "%s: %s", cmd, out);
	return out;
}

Test(http_server, curl_happy_paths)
{
	if (!have("curl"))
		cr_skip_test("needs curl");
	struct srv v;
	srv_start(&v);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "curl -sS --max-time 5 http://127.0.0.1:%d/fixed", v.port);
	cr_assert_str_eq(run(cmd), "fixed!");
	snprintf(cmd, sizeof(cmd),
	         "curl -sS --max-time 5 --data-binary 'posted data' http://127.0.0.1:%d/echo",
	         v.port);
	cr_assert_str_eq(run(cmd), "posted data");
	/* A chunked upload, echoed back chunked. */
	snprintf(cmd, sizeof(cmd),
	         "printf 'streamed' | curl -sS --max-time 5 -H 'Transfer-Encoding: chunked' "
	         "--data-binary @- http://127.0.0.1:%d/stream",
	         v.port);
	cr_assert_str_eq(run(cmd), "streamed");
	/* curl sends Expect: 100-continue for bodies over 1 KiB. */
	snprintf(cmd, sizeof(cmd),
	         "head -c 5000 /dev/zero | curl -sS --max-time 5 --data-binary @- "
	         "http://127.0.0.1:%d/pieces -o /dev/stdout -w ' %%{http_code}'",
	         v.port);
	const char *out = run(cmd);
	long pieces, bytes, sum;
	cr_assert_eq(sscanf(out, "%ld %ld %ld", &pieces, &bytes, &sum), 3, "%s", out);
	cr_assert_eq(bytes, 5000);
	cr_assert(strstr(out, " 200"), "%s", out);
	snprintf(cmd, sizeof(cmd), "curl -sS --max-time 5 -I http://127.0.0.1:%d/info", v.port);
	cr_assert(strstr(run(cmd), "HTTP/1.1 200 OK\r\n"));
	srv_stop(&v);
}

Test(http_server, https_through_the_tls_layer)
{
#ifndef ROTOR_HAVE_TLS
	cr_skip_test("rotor built without OpenSSL: no HTTPS");
#else
	if (!have("curl") || !have("openssl"))
		cr_skip_test("needs curl and openssl");
	char dir[] = "/tmp/rotor_https_XXXXXX", cmd[1024], cert[96], key[96];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
	         "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout key.pem -subj /CN=localhost -days 2 -out cert.pem "
	         "-addext subjectAltName=IP:127.0.0.1 2>/dev/null",
	         dir);
	cr_assert_eq(system(cmd), 0);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	struct rotor_tls_config tc = {
	    .role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key, .alpn = "http/1.1"};
	struct rotor_tls_ctx *ctx;
	cr_assert_eq(rotor_tls_ctx_create(&tc, &ctx), 0);
	struct srv v;
	struct rotor_http_config cfg = {.tls = ctx};
	srv_start_cfg(&v, &cfg);
	snprintf(cmd, sizeof(cmd),
	         "curl -sS --max-time 5 --cacert %s https://127.0.0.1:%d/fixed "
	         "https://127.0.0.1:%d/a/b/c",
	         cert, v.port, v.port);
	cr_assert_str_eq(run(cmd), "fixed!exact /a/b/c");
	snprintf(cmd, sizeof(cmd),
	         "curl -sS --max-time 5 --cacert %s --data-binary 'over tls' "
	         "https://127.0.0.1:%d/echo",
	         cert, v.port);
	cr_assert_str_eq(run(cmd), "over tls");
	snprintf(cmd, sizeof(cmd),
	         "printf 'chunks over tls' | curl -sS --max-time 5 --cacert %s -H "
	         "'Transfer-Encoding: chunked' --data-binary @- https://127.0.0.1:%d/stream",
	         cert, v.port);
	cr_assert_str_eq(run(cmd), "chunks over tls");
	srv_stop(&v);
	rotor_tls_ctx_destroy(ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
#endif
}

Test(http_server, safe_path_refuses_what_could_leave_the_root)
{
	char out[64];
	cr_assert_eq(rotor_http_safe_path("/r", "a/b.txt", 7, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/r/a/b.txt");
	cr_assert_eq(rotor_http_safe_path("/r", "%61%2Fb", 7, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/r/a/b");
	static const char *const bad[] = {"../x", "a/../../x", "%2e%2e/x", "%2E%2e%2fx",
	                                  "/etc", "./a",       "a//b",     "a%00b",
	                                  "%zz",  "a/",        "",         "%4"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(rotor_http_safe_path("/r", bad[i], strlen(bad[i]), out, sizeof(out)),
		             -EINVAL, "%s", bad[i]);
	cr_assert_eq(rotor_http_safe_path("/r", "abcdefgh", 8, out, 8), -ENAMETOOLONG);
}

Test(http_server, route_and_response_misuse)
{
	struct rotor_http_server *s;
	struct rotor_http_config cfg = {.host = "127.0.0.1", .workers = 1};
	cr_assert_eq(rotor_http_server_create(NULL, &s), -EINVAL);
	cr_assert_eq(rotor_http_server_create(&cfg, &s), 0);
	cr_assert_eq(rotor_http_route(s, "GET", "/x", 0, h_name, "x"), 0);
	cr_assert_eq(rotor_http_route(s, "GET", "/x", 0, h_name, "x"), -EEXIST);
	cr_assert_eq(rotor_http_route(s, "POST", "/x", 0, h_name, "x"), 0);
	cr_assert_eq(rotor_http_route(s, "GET", "x", 0, h_name, "x"), -EINVAL);
	cr_assert_eq(rotor_http_route(s, "GET", "/x?y", 0, h_name, "x"), -EINVAL);
	cr_assert_eq(rotor_http_route(s, "GET", "/y", 4, h_name, "x"), -EINVAL);
	cr_assert_eq(rotor_http_route(s, "GET", "/y", 0, NULL, "x"), -EINVAL);
	cr_assert_eq(rotor_http_route_fixed(s, "GET", "/z", 0, 99, NULL, "", 0), -EINVAL);
	cr_assert_eq(rotor_http_route_fixed(s, "GET", "/z", 0, 200, "a\r\nb", "", 0), -EINVAL);
	cr_assert_eq(rotor_http_server_port(NULL), -EINVAL);
	cr_assert_null(rotor_http_server_base(NULL));
	cr_assert_eq(rotor_http_header_add(NULL, "a", "b"), -EINVAL);
	cr_assert_eq(rotor_http_respond(NULL, 200, NULL, NULL, 0), -EINVAL);
	cr_assert_eq(rotor_http_server_destroy(s), 0);
}

Test(http_server, a_content_type_with_cr_or_lf_or_too_long_is_refused_before_the_response)
{
	struct srv v;
	srv_start(&v);
	struct client *c = client_open(v.port);
	send_str(c, "GET /badtype HTTP/1.1\r\nHost: x\r\n\r\n");
	read_response(c, &R);
	/* Keep-alive: the next request on the connection is still framed right. */
	send_str(c, "GET /badtype HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	read_response(c, &R2);
	client_close(c);
	srv_stop(&v);
	cr_assert_eq(badtype_rc[0], -EINVAL);
	cr_assert_eq(badtype_rc[1], -EINVAL);
	cr_assert_eq(badtype_rc[2], -EINVAL);
	cr_assert_eq(badtype_rc[3], 0);
	cr_assert_eq(R.status, 200);
	cr_assert_null(strstr(R.head, "X-Injected"), "%s", R.head);
	cr_assert_eq(R.body_len, 2);
	cr_assert_eq(memcmp(R.body, "ok", 2), 0);
	cr_assert_eq(R2.status, 200);
	cr_assert_eq(R2.body_len, 2);
}
