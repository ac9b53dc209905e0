/*
 * The HTTP/1.1 client (rotor/http_client.h) against what no well-behaved server sends, from
 * a blocking socket server in a thread of the test: malformed, oversized and cut responses,
 * bodies longer than declared, a server that closes its idle keep-alive connections (GET and
 * PUT retried once, POST not), the request as the server receives it (request line, Host
 * with a port or an IPv6 literal, the caller's headers), a relative Location; and URLs.
 * test_http_client.c has the tests against nginx.
 */
#include <criterion/criterion.h>
#include <rotor/http_client.h>
#include <rotor/task.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* ---- URLs ---------------------------------------------------------------------------- */

Test(http_client, takes_urls_apart)
{
	struct rotor_http_url u;
	cr_assert_eq(rotor_http_url_parse("http://example.com", &u), 0);
	cr_assert_eq(u.https, 0);
	cr_assert_eq(u.port, 80);
	cr_assert_str_eq(u.host, "example.com");
	cr_assert_str_eq(u.target, "/");
	cr_assert_eq(rotor_http_url_parse("HTTPS://user:pw@Example.com:8443/a/b?q=1#frag", &u), 0);
	cr_assert_eq(u.https, 1);
	cr_assert_eq(u.port, 8443);
	cr_assert_str_eq(u.host, "Example.com");
	cr_assert_str_eq(u.target, "/a/b?q=1");
	cr_assert_eq(rotor_http_url_parse("https://[::1]/x", &u), 0);
	cr_assert_str_eq(u.host, "::1");
	cr_assert_eq(u.port, 443);
	cr_assert_eq(rotor_http_url_parse("http://[fe80::1%25eth0]:81?x", &u), 0);
	cr_assert_str_eq(u.host, "fe80::1%25eth0");
	cr_assert_eq(u.port, 81);
	cr_assert_str_eq(u.target, "/?x");
	cr_assert_eq(rotor_http_url_parse("http://h:/p", &u), 0);
	cr_assert_eq(u.port, 80);
	const char *bad[] = {"ftp://h/",        "http://",       "http:///x",    "http://h:0/",
	                     "http://h:65536/", "http://h:8x/",  "http://[::1/", "http://[::1]x/",
	                     "http://h /",      "http://h/\r\n", "h/p",          "http://a{b}/"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(rotor_http_url_parse(bad[i], &u), -EINVAL, "%s", bad[i]);
	cr_assert_eq(rotor_http_url_parse(NULL, &u), -EINVAL);
}

/* ---- Against a server of the test's own ---------------------------------------------- */

/* A blocking server in a thread: for each connection, reads requests (heads; a body only
 * by Content-Length) and writes `reply` to each; closes after `per_conn` requests. */
struct raw {
	int fd, port;
	const char *reply;
	size_t reply_len;
	int per_conn;
	atomic_int requests, conns;
	char last_method[16];
	char last_head[1024]; /* the last request's head, NUL-terminated */
	pthread_t thread;
};

static void *raw_thread(void *arg)
{
	struct raw *s = arg;
	for (;;) {
		int fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		atomic_fetch_add(&s->conns, 1);
		char buf[8192];
		size_t have = 0;
		for (int served = 0; served < s->per_conn;) {
			char *end = memmem(buf, have, "\r\n\r\n", 4);
			if (!end) {
				ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
				if (n <= 0)
					break;
				have += (size_t)n;
				continue;
			}
			size_t used = (size_t)(end + 4 - buf);
			sscanf(buf, "%15s", s->last_method);
			size_t keep = used < sizeof(s->last_head) ? used : sizeof(s->last_head) - 1;
			memcpy(s->last_head, buf, keep);
			s->last_head[keep] = '\0';
			memmove(buf, buf + used, have - used);
			have -= used;
			atomic_fetch_add(&s->requests, 1);
			send(fd, s->reply, s->reply_len, MSG_NOSIGNAL);
			served++;
		}
		close(fd);
	}
}

static void raw_start(struct raw *s, const char *reply, size_t len, int per_conn)
{
	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	CHECK_EQ(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(listen(s->fd, 16), 0);
	getsockname(s->fd, (struct sockaddr *)&a, &alen);
	s->port = ntohs(a.sin_port);
	s->reply = reply;
	s->reply_len = len;
	s->per_conn = per_conn;
	pthread_create(&s->thread, NULL, raw_thread, s);
}

static void raw_stop(struct raw *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static int raw_fetch(struct rotor_http_client *c, struct raw *s, const char *method,
                     struct rotor_http_response **out)
{
	char u[64];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", s->port);
	struct rotor_http_client_request q = {
	    .method = method, .url = u, .deadline = rotor_now() + 5 * SEC};
	*out = NULL;
	return rotor_http_client_fetch(c, &q, 0, out);
}

/* One reply and the error the client must make of it. */
static int bad_reply(const char *reply, size_t len)
{
	struct raw s;
	raw_start(&s, reply, len, 1);
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	struct rotor_http_response *r;
	int err = raw_fetch(c, &s, "GET", &r);
	if (err == 0)
		rotor_http_response_destroy(r);
	struct rotor_http_client_stats st;
	rotor_http_client_stats(c, &st);
	if (err)
		CHECK_EQ(st.idle, 0); /* never pooled */
	CHECK_EQ(st.busy, 0);
	rotor_http_client_destroy(c);
	raw_stop(&s);
	return err;
}

#define BAD(reply, want)                                                                           \
	do {                                                                                       \
		static const char r_[] = reply;                                                    \
		CHECK_EQ(bad_reply(r_, sizeof(r_) - 1), want);                                     \
	} while (0)

static void *malformed_main(void *arg)
{
	(void)arg;
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0);
	/* Malformed heads. */
	BAD("HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", -EBADMSG);
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", -EBADMSG);
	BAD("HTTP/1.1 200 OK\r\nBad Field: 1\r\nContent-Length: 2\r\n\r\nok", -EBADMSG);
	BAD("HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", -EPROTONOSUPPORT);
	BAD("HTTP/1.1 200 OK\r\nContent-Le", -EBADMSG); /* cut mid-head */
	BAD("", -ECONNRESET);                           /* closed before a byte */
	/* Bad chunk sizes and lines. */
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
	    -EBADMSG);
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
	    -EBADMSG);
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", -EBADMSG);
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
	    -EBADMSG);
	/* A good chunked body, extensions and a trailer. */
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n"
	    "0\r\nX-T: 1\r\n\r\n",
	    0);
	/* Cut mid-body: by length, mid-chunk, before the last chunk. */
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", -EPROTO);
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhel", -EPROTO);
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", -EPROTO);
	/* Longer than declared. */
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", -EPROTO);
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nEXTRA",
	    -EPROTO);
	/* To the close: whatever comes is the body. */
	BAD("HTTP/1.0 200 OK\r\n\r\nall of it", 0);
	/* An oversized head: over 64 KiB of fields before the blank line. */
	static char big[80000];
	size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
	while (n < 70000)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Pad: %0100d\r\n", 0);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "Content-Length: 0\r\n\r\n");
	CHECK_EQ(bad_reply(big, n), -EMSGSIZE);
	/* Too many fields for the client's table. */
	n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 150; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-%d: v\r\n", i);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "Content-Length: 0\r\n\r\n");
	CHECK_EQ(bad_reply(big, n), -EMSGSIZE);
	/* A body over fetch's limit, declared or chunked. */
	struct raw s;
	static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                              "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
	raw_start(&s, chunked, sizeof(chunked) - 1, 100);
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	char u[64];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", s.port);
	struct rotor_http_client_request q = {.url = u};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 15, &r), -EFBIG);
	CHECK_EQ(rotor_http_client_fetch(c, &q, 16, &r), 0);
	if (r) {
		CHECK(r->body_len == 16 && !memcmp(r->body, "1234567812345678", 16));
		rotor_http_response_destroy(r);
	}
	rotor_http_client_destroy(c);
	raw_stop(&s);
	/* Refused. */
	CHECK_EQ(raw_fetch(NULL, &s, "GET", &r), -EINVAL);
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	CHECK_EQ(raw_fetch(c, &s, "GET", &r), -ECONNREFUSED);
	rotor_http_client_destroy(c);
	return NULL;
}

Test(http_client, refuses_malformed_and_cut_responses_with_clear_errors, .timeout = 30)
{
	run_checked(1, malformed_main, NULL);
}

static void *stale_main(void *arg)
{
	(void)arg;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	/* The server answers one request per connection and then closes it (keep-alive as far
	 * as the response says): the pooled connection is stale when used next. */
	struct raw s;
	raw_start(&s, ok, sizeof(ok) - 1, 1);
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	struct rotor_http_response *r;
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(raw_fetch(c, &s, "GET", &r), 0);
		if (r) {
			CHECK(r->body_len == 2 && !memcmp(r->body, "ok", 2));
			rotor_http_response_destroy(r);
		}
		if (i == 0)
			rotor_sleep(50 * MS); /* the close has arrived: found when taken */
	}
	struct rotor_http_client_stats st;
	rotor_http_client_stats(c, &st);
	CHECK_EQ(st.requests, 3);
	CHECK_EQ(atomic_load(&s.requests), 3);
	CHECK_EQ(atomic_load(&s.conns), 3);
	/* POST on the stale connection: not retried, -ECONNRESET, the server saw nothing. */
	CHECK_EQ(raw_fetch(c, &s, "POST", &r), -ECONNRESET);
	CHECK_EQ(atomic_load(&s.requests), 3);
	/* PUT is idempotent: retried. */
	CHECK_EQ(raw_fetch(c, &s, "GET", &r), 0);
	rotor_http_response_destroy(r);
	CHECK_EQ(raw_fetch(c, &s, "PUT", &r), 0);
	rotor_http_response_destroy(r);
	CHECK(!strcmp(s.last_method, "PUT"));
	rotor_http_client_stats(c, &st);
	CHECK(st.retries >= 2);
	CHECK_EQ(atomic_load(&s.requests), 5);
	rotor_http_client_destroy(c);
	raw_stop(&s);
	return NULL;
}

Test(http_client, retries_an_idempotent_request_once_on_a_stale_connection, .timeout = 30)
{
	run_checked(1, stale_main, NULL);
}

static void *request_main(void *arg)
{
	(void)arg;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct raw s;
	raw_start(&s, ok, sizeof(ok) - 1, 100);
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	char u[96], want[256];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/a/b?c=d#frag", s.port);
	static const struct rotor_http_client_header hs[] = {{"X-One", "1"}, {"Accept", "*/*"}};
	struct rotor_http_client_request q = {
	    .method = "OPTIONS", .url = u, .headers = hs, .nheaders = 2};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
	rotor_http_response_destroy(r);
	snprintf(
	    want, sizeof(want),
	    "OPTIONS /a/b?c=d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-One: 1\r\nAccept: */*\r\n\r\n",
	    s.port);
	CHECK(!strcmp(s.last_head, want));
	/* The caller's Host replaces rotor's; POST without a body says Content-Length: 0. */
	static const struct rotor_http_client_header host[] = {{"host", "example.com"}};
	struct rotor_http_client_request p = {
	    .method = "POST", .url = u, .headers = host, .nheaders = 1};
	CHECK_EQ(rotor_http_client_fetch(c, &p, 0, &r), 0);
	rotor_http_response_destroy(r);
	CHECK(!strcmp(s.last_head, "POST /a/b?c=d HTTP/1.1\r\nhost: example.com\r\n"
	                           "Content-Length: 0\r\n\r\n"));
	rotor_http_client_destroy(c);
	raw_stop(&s);
	/* An IPv6 literal goes into Host in brackets (a server on ::1, if the machine has it). */
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t alen = sizeof(a6);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0 && listen(fd, 4) == 0) {
		getsockname(fd, (struct sockaddr *)&a6, &alen);
		int port = ntohs(a6.sin6_port);
		snprintf(u, sizeof(u), "http://[::1]:%d/", port);
		struct raw s6 = {.fd = fd,
		                 .port = port,
		                 .reply = ok,
		                 .reply_len = sizeof(ok) - 1,
		                 .per_conn = 1};
		pthread_create(&s6.thread, NULL, raw_thread, &s6);
		CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
		struct rotor_http_client_request g = {.url = u};
		CHECK_EQ(rotor_http_client_fetch(c, &g, 0, &r), 0);
		rotor_http_response_destroy(r);
		snprintf(want, sizeof(want), "GET / HTTP/1.1\r\nHost: [::1]:%d\r\n\r\n", port);
		CHECK(!strcmp(s6.last_head, want));
		rotor_http_client_destroy(c);
		raw_stop(&s6);
	} else if (fd >= 0) {
		close(fd);
	}
	return NULL;
}

static void *relative_main(void *arg)
{
	(void)arg;
	static const char moved[] = "HTTP/1.1 302 Found\r\nLocation: two?x\r\nContent-Length: 4\r\n"
	                            "\r\nbody";
	struct raw s;
	raw_start(&s, moved, sizeof(moved) - 1, 100);
	struct rotor_http_client_config cfg = {.max_redirects = 2};
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(&cfg, &c), 0);
	char u[96];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/a/one", s.port);
	static const struct rotor_http_client_header hs[] = {{"Cookie", "secret"}};
	struct rotor_http_client_request q = {.url = u, .headers = hs, .nheaders = 1};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), -ELOOP);
	CHECK_EQ(atomic_load(&s.requests), 3);
	CHECK_EQ(atomic_load(&s.conns), 1);
	/* Same origin: the Cookie goes along. */
	char want[256];
	snprintf(want, sizeof(want),
	         "GET /a/two?x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: secret\r\n\r\n", s.port);
	CHECK(!strcmp(s.last_head, want));
	rotor_http_client_destroy(c);
	raw_stop(&s);
	return NULL;
}

Test(http_client, resolves_a_relative_location, .timeout = 30)
{
	run_checked(1, relative_main, NULL);
}

Test(http_client, writes_the_request_line_host_and_headers_as_given, .timeout = 30)
{
	run_checked(1, request_main, NULL);
}
