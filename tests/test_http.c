/*
 * The HTTP server example end to end: each test starts examples/http_server as a child on a
 * free port with 2 workers and a temporary --root, talks to it through plain sockets (and
 * once through curl), and stops it with SIGTERM, which must end it with status 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <criterion/criterion.h>

#include <sched.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define HELLO     "Hello, World!"
#define FILE_TEXT "static text, read through the ring\n"
#define BIG_SIZE  (300 * 1024) /* larger than the server's output buffer */

struct server {
	pid_t pid;
	int port;
	FILE *out;
	char dir[64];  /* the temporary directory: root/ and a secret beside it */
	char root[96]; /* what --root names */
	long moved;    /* connections that moved between workers, from the stop report */
};

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(data, 1, n, f), n);
	fclose(f);
}

static char big_byte(size_t i)
{
	return (char)('a' + (i * 7 + i / 251) % 26);
}

static void make_root(struct server *s)
{
	strcpy(s->dir, "/tmp/rotor_http_XXXXXX");
	cr_assert_not_null(mkdtemp(s->dir));
	snprintf(s->root, sizeof(s->root), "%s/www", s->dir);
	cr_assert_eq(mkdir(s->root, 0700), 0);
	write_file(s->dir, "secret.txt", "secret\n", 7);
	write_file(s->root, "hello.txt", FILE_TEXT, strlen(FILE_TEXT));
	write_file(s->root, "data.json", "{\"a\":1}", 7);
	write_file(s->root, "page.html", "<p>hi</p>", 9);
	write_file(s->root, "blob.bin", "\x00\x01\x02", 3);
	char *big = malloc(BIG_SIZE);
	for (size_t i = 0; i < BIG_SIZE; i++)
		big[i] = big_byte(i);
	write_file(s->root, "big.txt", big, BIG_SIZE);
	free(big);
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/sub", s->root);
	cr_assert_eq(mkdir(sub, 0700), 0);
	write_file(sub, "inner.txt", "inner", 5);
}

static void remove_root(struct server *s)
{
	static const char *const files[] = {
	    "www/hello.txt",     "www/data.json", "www/page.html", "www/blob.bin", "www/big.txt",
	    "www/sub/inner.txt", "www/sub",       "www",           "secret.txt",   ""};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", s->dir, files[i]);
		remove(path);
	}
}

/* extra: further arguments, NULL-terminated. */
static void start_server_args(struct server *s, const char *const *extra)
{
	make_root(s);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	const char *argv[32] = {"http_server", "--port", "0", "--workers", "2", "--root", s->root};
	int argc = 7;
	for (; extra && *extra; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave a server behind */
		dup2(fds[1], 1);
		close(fds[0]);
		execv(ROTOR_EXAMPLES_DIR "/http_server", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	s->pid = pid;
	s->out = fdopen(fds[0], "r");
	char line[256] = {0};
	cr_assert_not_null(fgets(line, sizeof(line), s->out), "no output from http_server");
	cr_assert_eq(sscanf(line, "listening on 127.0.0.1:%d (2 workers)", &s->port), 1, "%s",
	             line);
}

static void start_server(struct server *s)
{
	static const char *const extra[] = {"--idle-ms", "5000", NULL};
	start_server_args(s, extra);
}

/* SIGTERM: the server must exit 0 and print how it spread connections, then "stopped". */
static void stop_server(struct server *s)
{
	cr_assert_eq(kill(s->pid, SIGTERM), 0);
	int status;
	cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	char line[64] = {0};
	int n0, n1;
	cr_assert(
	    fgets(line, sizeof(line), s->out) &&
	        sscanf(line, "connections per worker: %d %d; moved %ld", &n0, &n1, &s->moved) == 3,
	    "%s", line);
	cr_assert(fgets(line, sizeof(line), s->out) && !strcmp(line, "stopped\n"), "%s", line);
	fclose(s->out);
	remove_root(s);
}

/* ---- A small client ---------------------------------------------------------------------- */

struct client {
	int fd;
	size_t len;
	char buf[BIG_SIZE + 4096];
};

struct response {
	int status;
	char head[4096]; /* status line and header fields, NUL-terminated */
	char *body;      /* malloc'd, NUL-terminated */
	size_t body_len;
};

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static struct client *client_open(int port)
{
	struct client *c = malloc(sizeof(*c));
	c->fd = dial(port);
	c->len = 0;
	return c;
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c);
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		cr_assert_gt(w, 0, "send: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

static void send_str(struct client *c, const char *s)
{
	send_all(c->fd, s, strlen(s));
}

/* More bytes into c->buf; returns what recv returned. */
static ssize_t fill(struct client *c)
{
	cr_assert_lt(c->len, sizeof(c->buf), "response too large");
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	cr_assert(n >= 0 || errno == ECONNRESET, "recv: %s", strerror(errno));
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

/* The value of header name in head, or NULL. */
static const char *header(const struct response *r, const char *name, char *val, size_t cap)
{
	const char *p = strstr(r->head, "\r\n");
	size_t nl = strlen(name);
	while (p && p[2]) {
		p += 2;
		if (!strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			size_t n = strcspn(v, "\r");
			cr_assert_lt(n, cap);
			memcpy(val, v, n);
			val[n] = 0;
			return val;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

/* One response (HEAD: no body whatever Content-Length says). */
static void read_response_for(struct client *c, struct response *r, int head_only)
{
	char *end = NULL;
	while (c->len < 4 || !(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		cr_assert_gt(fill(c), 0, "connection closed before a response head");
	size_t hlen = (size_t)(end - c->buf) + 2;
	cr_assert_lt(hlen, sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	r->head[hlen] = 0;
	cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1, "%s", r->head);
	char val[64];
	cr_assert_not_null(header(r, "Content-Length", val, sizeof(val)), "%s", r->head);
	r->body_len = head_only ? 0 : strtoul(val, NULL, 10);
	size_t need = hlen + 2 + r->body_len;
	while (c->len < need)
		cr_assert_gt(fill(c), 0, "connection closed inside a body");
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, c->buf + hlen + 2, r->body_len);
	r->body[r->body_len] = 0;
	memmove(c->buf, c->buf + need, c->len - need);
	c->len -= need;
}

static void read_response(struct client *c, struct response *r)
{
	read_response_for(c, r, 0);
}

/* The server has closed: end of stream (or a reset), nothing else. */
static void expect_closed(struct client *c)
{
	cr_assert_eq(c->len, 0, "unexpected bytes: %.*s", (int)c->len, c->buf);
	ssize_t n = fill(c);
	cr_assert_leq(n, 0, "expected the connection closed, got %.*s", (int)c->len, c->buf);
}

/* A request on a fresh connection, its status, and the connection's end when closes. */
static int request_once(int port, const char *req, int closes)
{
	struct client *c = client_open(port);
	send_str(c, req);
	struct response r;
	read_response(c, &r);
	if (closes) {
		char val[32];
		cr_assert_not_null(header(&r, "Connection", val, sizeof(val)), "%s", r.head);
		cr_assert_str_eq(val, "close");
		expect_closed(c);
	}
	free(r.body);
	client_close(c);
	return r.status;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: test\r\n\r\n"

/* ---- Tests ------------------------------------------------------------------------------- */

Test(http, plaintext_is_exact_and_deterministic, .timeout = 10)
{
	static const char want[] =
	    "HTTP/1.1 200 OK\r\nServer: rotor\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 13\r\n\r\n" HELLO;
	/* Connections steered to the worker on their CPU (the default), then by hash. */
	static const char *const no_steer[] = {"--no-steer", NULL};
	for (int steer = 1; steer >= 0; steer--) {
		struct server s;
		start_server_args(&s, steer ? NULL : no_steer);
		for (int i = 0; i < 2; i++) {
			struct client *c = client_open(s.port);
			send_str(c, i ? GET("/") : GET("/plaintext"));
			while (c->len < sizeof(want) - 1)
				cr_assert_gt(fill(c), 0);
			cr_assert_eq(c->len, sizeof(want) - 1);
			cr_assert(!memcmp(c->buf, want, c->len), "%.*s", (int)c->len, c->buf);
			client_close(c);
		}
		stop_server(&s);
	}
}

Test(http, keep_alive_serves_many_requests_on_one_connection, .timeout = 10)
{
	struct server s;
	start_server(&s);
	struct client *c = client_open(s.port);
	for (int i = 0; i < 10; i++) {
		struct response r;
		send_str(c, i % 3 == 2 ? GET("/static/hello.txt") : GET("/plaintext?i=1"));
		read_response(c, &r);
		cr_assert_eq(r.status, 200);
		cr_assert_str_eq(r.body, i % 3 == 2 ? FILE_TEXT : HELLO);
		char val[32];
		cr_assert_null(header(&r, "Connection", val, sizeof(val)), "%s", r.head);
		free(r.body);
	}
	client_close(c);
	stop_server(&s);
}

Test(http, pipelined_requests_are_answered_in_order, .timeout = 10)
{
	struct server s;
	start_server(&s);
	struct client *c = client_open(s.port);
	enum { N = 16 };
	static const char *const paths[] = {"/plaintext", "/static/hello.txt", "/nope",
	                                    "/static/data.json"};
	char all[N * 64];
	size_t len = 0;
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len,
		                        "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i % 4]);
	send_all(c->fd, all, len); /* one write: every request in the server's first read */
	for (int i = 0; i < N; i++) {
		struct response r;
		read_response(c, &r);
		switch (i % 4) {
		case 0:
			cr_assert_eq(r.status, 200);
			cr_assert_str_eq(r.body, HELLO);
			break;
		case 1:
			cr_assert_eq(r.status, 200);
			cr_assert_str_eq(r.body, FILE_TEXT);
			break;
		case 2:
			cr_assert_eq(r.status, 404);
			break;
		default:
			cr_assert_eq(r.status, 200);
			cr_assert_str_eq(r.body, "{\"a\":1}");
		}
		free(r.body);
	}
	/* Still open after all of them. */
	struct response r;
	send_str(c, GET("/"));
	read_response(c, &r);
	cr_assert_eq(r.status, 200);
	free(r.body);
	client_close(c);
	stop_server(&s);
}

Test(http, static_files_with_their_content_types, .timeout = 10)
{
	struct server s;
	start_server(&s);
	static const struct {
		const char *path, *type, *body;
		size_t len;
	} cases[] = {
	    {"/static/hello.txt", "text/plain", FILE_TEXT, sizeof(FILE_TEXT) - 1},
	    {"/static/data.json", "application/json", "{\"a\":1}", 7},
	    {"/static/page.html", "text/html", "<p>hi</p>", 9},
	    {"/static/blob.bin", "application/octet-stream", "\x00\x01\x02", 3},
	    {"/static/sub/inner.txt", "text/plain", "inner", 5},
	    {"/static/sub/%69nner.txt", "text/plain", "inner", 5},
	};
	struct client *c = client_open(s.port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char req[256];
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", cases[i].path);
		send_str(c, req);
		struct response r;
		read_response(c, &r);
		cr_assert_eq(r.status, 200, "%s", cases[i].path);
		char val[64];
		cr_assert_not_null(header(&r, "Content-Type", val, sizeof(val)));
		cr_assert_str_eq(val, cases[i].type, "%s", cases[i].path);
		cr_assert_eq(r.body_len, cases[i].len);
		cr_assert(!memcmp(r.body, cases[i].body, cases[i].len), "%s", cases[i].path);
		free(r.body);
	}
	/* A file larger than the server's buffers arrives whole. */
	send_str(c, GET("/static/big.txt"));
	struct response r;
	read_response(c, &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, BIG_SIZE);
	for (size_t i = 0; i < BIG_SIZE; i++)
		cr_assert_eq(r.body[i], big_byte(i), "byte %zu", i);
	free(r.body);
	/* HEAD: the same head, no body. */
	send_str(c, "HEAD /static/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response_for(c, &r, 1);
	cr_assert_eq(r.status, 200);
	char val[32], want[32];
	snprintf(want, sizeof(want), "%zu", strlen(FILE_TEXT));
	cr_assert_str_eq(header(&r, "Content-Length", val, sizeof(val)), want);
	free(r.body);
	send_str(c, GET("/plaintext"));
	read_response(c, &r);
	cr_assert_str_eq(r.body, HELLO);
	free(r.body);
	client_close(c);
	stop_server(&s);
}

Test(http, missing_files_are_404_and_keep_the_connection, .timeout = 10)
{
	struct server s;
	start_server(&s);
	struct client *c = client_open(s.port);
	static const char *const reqs[] = {GET("/static/missing.txt"), GET("/static/sub"),
	                                   GET("/static/hello.txt/x"), GET("/elsewhere")};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct response r;
		send_str(c, reqs[i]);
		read_response(c, &r);
		cr_assert_eq(r.status, 404, "%s", reqs[i]);
		free(r.body);
	}
	struct response r;
	send_str(c, GET("/plaintext"));
	read_response(c, &r);
	cr_assert_eq(r.status, 200);
	free(r.body);
	client_close(c);
	stop_server(&s);
}

Test(http, paths_outside_the_root_are_400, .timeout = 10)
{
	struct server s;
	start_server(&s);
	static const char *const reqs[] = {
	    GET("/static/../secret.txt"),     GET("/static/sub/../../secret.txt"),
	    GET("/static/%2e%2e/secret.txt"), GET("/static/%2E%2e%2fsecret.txt"),
	    GET("/static//etc/passwd"),       GET("/static/./hello.txt"),
	    GET("/static/hello%00.txt"),      GET("/static/%zz"),
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		cr_assert_eq(request_once(s.port, reqs[i], 1), 400, "%s", reqs[i]);
	stop_server(&s);
}

Test(http, malformed_requests_are_400_and_closed, .timeout = 10)
{
	struct server s;
	start_server(&s);
	static const char *const bad[] = {
	    "GARBAGE\r\n\r\n",
	    "GET /plaintext\r\n\r\n",
	    "GET  /plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
	    "GET plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
	    "GET /plaintext HTTP/1.1 \r\nHost: t\r\n\r\n",
	    "GET /plaintext HTTP/x.1\r\nHost: t\r\n\r\n",
	    "GET /plaintext HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n",
	    "GET /plaintext HTTP/1.1\r\nHost: t\r\nBad : space\r\n\r\n",
	    "GET /plaintext HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n",
	    "GET /plaintext HTTP/1.1\r\n\r\n", /* no Host */
	    "GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n",
	    "GET /plaintext HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(request_once(s.port, bad[i], 1), 400, "%s", bad[i]);
	/* A method the route does not take: 405 (with Allow); one HTTP does not define: 501.
	 * Both leave the framing intact, so the connection stays. */
	cr_assert_eq(request_once(s.port, "POST / HTTP/1.1\r\nHost: t\r\n\r\n", 0), 405);
	cr_assert_eq(request_once(s.port, "get /plaintext HTTP/1.1\r\nHost: t\r\n\r\n", 0), 501);
	cr_assert_eq(request_once(s.port, "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 1), 505);
	/* A malformed request after good ones: the good ones are answered, then 400. */
	struct client *c = client_open(s.port);
	send_str(c, GET("/") GET("/plaintext") "BOGUS\r\n\r\n" GET("/"));
	for (int i = 0; i < 3; i++) {
		struct response r;
		read_response(c, &r);
		cr_assert_eq(r.status, i < 2 ? 200 : 400);
		free(r.body);
	}
	expect_closed(c);
	client_close(c);
	/* A GET may carry a short body: it is skipped, the next request is answered. */
	c = client_open(s.port);
	send_str(c, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde" GET("/"));
	for (int i = 0; i < 2; i++) {
		struct response r;
		read_response(c, &r);
		cr_assert_eq(r.status, 200);
		free(r.body);
	}
	client_close(c);
	stop_server(&s);
}

Test(http, oversized_heads_are_431_or_414, .timeout = 10)
{
	struct server s;
	start_server(&s);
	/* 100 headers of 100 bytes: over 8 KiB of header fields. */
	char *req = malloc(16384);
	size_t n = (size_t)sprintf(req, "GET /plaintext HTTP/1.1\r\nHost: t\r\n");
	for (int i = 0; i < 100; i++)
		n += (size_t)sprintf(req + n, "X-Filler-%02d: %086d\r\n", i, 0);
	strcpy(req + n, "\r\n");
	cr_assert_eq(request_once(s.port, req, 1), 431);
	/* A request line of 10 KiB. */
	n = (size_t)sprintf(req, "GET /");
	memset(req + n, 'a', 10240);
	strcpy(req + n + 10240, " HTTP/1.1\r\nHost: t\r\n\r\n");
	cr_assert_eq(request_once(s.port, req, 1), 414);
	/* Just under the limit is fine. */
	n = (size_t)sprintf(req, "GET /plaintext HTTP/1.1\r\nHost: t\r\nX: ");
	memset(req + n, 'b', 8000);
	strcpy(req + n + 8000, "\r\n\r\n");
	cr_assert_eq(request_once(s.port, req, 0), 200);
	free(req);
	stop_server(&s);
}

Test(http, idle_clients_are_closed, .timeout = 10)
{
	struct server s;
	static const char *const extra[] = {"--idle-ms", "200", NULL};
	start_server_args(&s, extra);
	/* Nothing sent, and part of a request. t0 is taken before the server can start its
	 * clock, so that "took" is never short of the idle time however slow this process is
	 * (valgrind runs it 20-50 times slower). */
	int64_t t0 = now_ms();
	struct client *quiet = client_open(s.port);
	struct client *part = client_open(s.port);
	send_str(part, "GET /plaintext HTTP/1.1\r\nHo");
	expect_closed(quiet);
	int64_t took = now_ms() - t0;
	cr_assert(took >= 150 && took < 2000, "closed after %lld ms", (long long)took);
	expect_closed(part);
	client_close(quiet);
	client_close(part);
	/* A trickle of bytes that never completes a request does not renew the deadline: by
	 * 600 ms it is closed (a deadline renewed by each byte would end at 700 ms). */
	struct client *slow = client_open(s.port);
	for (int i = 0; i < 6; i++) {
		(void)!send(slow->fd, "X", 1, MSG_NOSIGNAL);
		usleep(100 * 1000);
	}
	char ch;
	ssize_t n = recv(slow->fd, &ch, 1, MSG_DONTWAIT);
	cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "still open: %zd %s", n,
	          strerror(errno));
	client_close(slow);
	/* A keep-alive connection is closed once idle too, after its responses. */
	struct client *c = client_open(s.port);
	struct response r;
	t0 = now_ms(); /* before the request: the idle time starts when the server reads it */
	send_str(c, GET("/"));
	read_response(c, &r);
	cr_assert_eq(r.status, 200);
	free(r.body);
	expect_closed(c);
	took = now_ms() - t0;
	cr_assert(took >= 150 && took < 2000, "closed after %lld ms", (long long)took);
	client_close(c);
	stop_server(&s);
}

Test(http, connections_over_max_conns_are_closed, .timeout = 10)
{
	struct server s;
	static const char *const extra[] = {"--max-conns", "3", "--idle-ms", "5000", NULL};
	start_server_args(&s, extra);
	struct client *c[3];
	for (int i = 0; i < 3; i++) {
		/* A response proves the server counts this connection. */
		struct response r;
		c[i] = client_open(s.port);
		send_str(c[i], GET("/"));
		read_response(c[i], &r);
		cr_assert_eq(r.status, 200);
		free(r.body);
	}
	for (int i = 0; i < 3; i++) {
		struct client *extra_client = client_open(s.port);
		expect_closed(extra_client);
		client_close(extra_client);
	}
	/* One ends: a new connection is served again (once the server has seen the end). */
	client_close(c[0]);
	int served = 0;
	for (int tries = 0; tries < 100 && !served; tries++) {
		struct client *n = client_open(s.port);
		(void)!send(n->fd, GET("/"), strlen(GET("/")), MSG_NOSIGNAL);
		ssize_t got = fill(n);
		served = got > 0 && !strncmp(n->buf, "HTTP/1.1 200", 12);
		client_close(n);
		if (!served)
			usleep(20 * 1000);
	}
	cr_assert(served, "no connection served after one ended");
	client_close(c[1]);
	client_close(c[2]);
	stop_server(&s);
}

Test(http, http10_closes_unless_keep_alive_and_close_is_honoured, .timeout = 10)
{
	struct server s;
	start_server(&s);
	cr_assert_eq(request_once(s.port, "GET /plaintext HTTP/1.0\r\n\r\n", 1), 200);
	cr_assert_eq(
	    request_once(s.port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 1), 200);
	/* Connection: close stops a pipeline: what follows it is not answered. */
	cr_assert_eq(request_once(s.port,
	                          "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" GET("/"),
	                          1),
	             200);
	/* HTTP/1.0 with keep-alive: said in the response, and the connection stays. */
	struct client *c = client_open(s.port);
	for (int i = 0; i < 3; i++) {
		struct response r;
		send_str(c, "GET /plaintext HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
		read_response(c, &r);
		cr_assert_eq(r.status, 200);
		char val[32];
		cr_assert_str_eq(header(&r, "Connection", val, sizeof(val)), "keep-alive");
		cr_assert_str_eq(r.body, HELLO);
		free(r.body);
	}
	client_close(c);
	stop_server(&s);
}

Test(http, sigterm_with_connections_open_exits_0, .timeout = 10)
{
	struct server s;
	start_server(&s);
	enum { N = 8 };
	struct client *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = client_open(s.port);
		if (i % 2 == 0) {
			struct response r;
			send_str(c[i], GET("/"));
			read_response(c[i], &r);
			free(r.body);
		} else {
			send_str(c[i], "GET /plaintext HTTP/1.1\r\n"); /* half a request */
		}
	}
	stop_server(&s);
	for (int i = 0; i < N; i++) {
		expect_closed(c[i]);
		client_close(c[i]);
	}
}

Test(http, curl_fetches_plaintext, .timeout = 15)
{
	if (access("/usr/bin/curl", X_OK) != 0 && system("command -v curl >/dev/null 2>&1") != 0)
		cr_skip_test("needs curl");
	struct server s;
	start_server(&s);
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
	         "curl -sS --max-time 5 -i http://127.0.0.1:%d/plaintext "
	         "http://127.0.0.1:%d/static/hello.txt",
	         s.port, s.port);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	char out[4096];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	cr_assert_eq(pclose(p), 0, "curl failed: %s", out);
	const char *first = strstr(out, "HTTP/1.1 200 OK\r\n");
	cr_assert_not_null(first, "%s", out);
	cr_assert_not_null(strstr(first, "\r\n\r\n" HELLO "HTTP/1.1 200 OK\r\n"), "%s", out);
	size_t tl = strlen(FILE_TEXT);
	cr_assert(n >= tl && !strcmp(out + n - tl, FILE_TEXT), "%s", out);
	stop_server(&s);
}

/* HTTPS (--tls-cert/--tls-key): curl verifies the server against a CA made here (ECDSA
 * P-256, for 127.0.0.1), fetches a page and a file over one TLS connection, and refuses the
 * server without the CA. */
Test(http, https_serves_curl_with_a_verified_certificate, .timeout = 30)
{
#ifndef ROTOR_HAVE_TLS
	cr_skip_test("rotor built without OpenSSL: no HTTPS");
#endif
	if (system("command -v curl >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1") != 0)
		cr_skip_test("needs curl and openssl");
	char dir[] = "/tmp/rotor_https_XXXXXX", cmd[2048], cert[96], key[96];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
	         "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout ca.key -subj /CN=rotor-test-ca -days 2 -out ca.pem 2>/dev/null && "
	         "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout key.pem -subj /CN=localhost -out csr.pem 2>/dev/null && "
	         "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
	         "openssl x509 -req -in csr.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	         "-extfile ext.cnf -out cert.pem 2>/dev/null",
	         dir);
	cr_assert_eq(system(cmd), 0, "openssl could not make the certificates");
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	const char *const extra[] = {"--idle-ms", "5000", "--tls-cert", cert,
	                             "--tls-key", key,    NULL};
	struct server s;
	start_server_args(&s, extra);
	snprintf(cmd, sizeof(cmd),
	         "curl -sS --max-time 10 -i --cacert %s/ca.pem https://127.0.0.1:%d/plaintext "
	         "-o /dev/stdout https://127.0.0.1:%d/static/hello.txt -o /dev/stdout "
	         "-o %s/big.out https://127.0.0.1:%d/static/big.txt 2>&1",
	         dir, s.port, s.port, dir, s.port);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	char out[8192];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	cr_assert_eq(pclose(p), 0, "curl failed: %s", out);
	const char *first = strstr(out, "HTTP/1.1 200 OK\r\n");
	cr_assert_not_null(first, "%s", out);
	cr_assert_not_null(strstr(first, "\r\n\r\n" HELLO "HTTP/1.1 200 OK\r\n"), "%s", out);
	cr_assert_not_null(strstr(out, FILE_TEXT), "%s", out);
	/* The big file went through many TLS records: every byte in order. */
	snprintf(cmd, sizeof(cmd), "%s/big.out", dir);
	FILE *f = fopen(cmd, "rb");
	cr_assert_not_null(f);
	static char body[BIG_SIZE + 4096];
	size_t got = fread(body, 1, sizeof(body), f);
	fclose(f);
	char *b = memmem(body, got, "\r\n\r\n", 4);
	cr_assert_not_null(b);
	b += 4;
	cr_assert_eq(got - (size_t)(b - body), BIG_SIZE);
	for (size_t i = 0; i < BIG_SIZE; i++)
		cr_assert_eq(b[i], big_byte(i), "byte %zu", i);
	/* Without the CA, curl refuses the certificate (exit 60) and the server goes on. */
	snprintf(cmd, sizeof(cmd),
	         "curl -sS --max-time 5 https://127.0.0.1:%d/plaintext >/dev/null 2>&1", s.port);
	int st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 60, "curl status %#x", st);
	stop_server(&s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* On loopback a packet is processed on the sender's CPU: a client that sends from the other
 * CPU makes its connection's packets arrive there, and the server moves the connection to
 * the worker on that CPU (rotor/server.h), between two requests, losing nothing. */
Test(http, a_connection_follows_its_client_to_the_other_cpu, .timeout = 20)
{
	cpu_set_t all;
	cpus_to_steer_between(&all);
	struct server s;
	start_server(&s);
	pin_to_nth_cpu(&all, 0);
	struct client *c = client_open(s.port);
	/* Two phases on each CPU: wherever the connection started, it has to move. */
	for (int phase = 0; phase < 4; phase++) {
		pin_to_nth_cpu(&all, phase % 2);
		for (int i = 0; i < 300; i++) {
			struct response r;
			send_str(c, i % 10 == 9 ? GET("/plaintext") GET("/static/hello.txt")
			                        : GET("/plaintext"));
			read_response(c, &r);
			cr_assert_eq(r.status, 200);
			cr_assert_str_eq(r.body, HELLO);
			free(r.body);
			if (i % 10 == 9) {
				read_response(c, &r);
				cr_assert_eq(r.status, 200);
				cr_assert_str_eq(r.body, FILE_TEXT);
				free(r.body);
			}
		}
	}
	cr_assert_eq(sched_setaffinity(0, sizeof(all), &all), 0);
	client_close(c);
	stop_server(&s);
	cr_assert_geq(s.moved, 1, "the connection never followed its client");
}

/* SIGTERM drains (rotor_runtime_drain): a request half received when it comes is answered in
 * full, and then the connection is closed; an idle keep-alive connection is closed at once. */
Test(http, a_request_in_flight_at_sigterm_gets_its_full_response, .timeout = 20)
{
	struct server s;
	start_server(&s);
	struct client *idle = client_open(s.port);
	struct client *c = client_open(s.port);
	struct response r;
	send_str(idle, GET("/plaintext"));
	read_response(idle, &r); /* served once, now idle between requests */
	free(r.body);
	const char *req = GET("/static/big.txt");
	size_t half = strlen(req) / 2;
	cr_assert_eq(send(c->fd, req, half, 0), (ssize_t)half);
	usleep(100 * 1000); /* the server has the first half */
	cr_assert_eq(kill(s.pid, SIGTERM), 0);
	usleep(100 * 1000); /* the drain has begun: the idle connection is closed by now */
	char b;
	cr_assert_eq(recv(idle->fd, &b, 1, MSG_DONTWAIT), 0, "the idle connection was closed");
	send_str(c, req + half);
	read_response(c, &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, (size_t)BIG_SIZE, "the whole body came");
	for (size_t i = 0; i < BIG_SIZE; i++)
		if ((unsigned char)r.body[i] != (unsigned char)big_byte(i))
			cr_assert_fail("byte %zu differs", i);
	free(r.body);
	cr_assert_eq(recv(c->fd, &b, 1, 0), 0, "then the server closed it");
	client_close(c);
	client_close(idle);
	int status;
	cr_assert_eq(waitpid(s.pid, &status, 0), s.pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	fclose(s.out);
	remove_root(&s);
}
