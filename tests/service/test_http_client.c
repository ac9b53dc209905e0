/*
 * The HTTP/1.1 client (rotor/http_client.h, lib/service/http_client.c, http_pool.c) against
 * a real nginx on a free loopback port: static files of several sizes, a chunked body
 * (sub_filter drops Content-Length), PUT and DELETE (the DAV module) with whole and streamed
 * bodies, HEAD, keep-alive reuse counted by nginx's own $connection log and by the pool's
 * counters, the cap per origin, a pool per worker, the idle timeout, a deadline and a
 * cancellation mid-body, -EFBIG, redirects, and https (verification refusing a self-signed
 * certificate, then trusting it as the CA). test_http_client_raw.c has the malformed
 * responses and stale connections, from a server of the test's own.
 */
#include <criterion/criterion.h>
#include <rotor/http_client.h>
#include <rotor/task.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "check.h"

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rotor-httpc-XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void remove_dir(void)
{
	if (dir[0])
		sh("rm -rf %s", dir);
}

/* Byte i of the test files: a pattern that shows a byte out of place. */
static char pattern(size_t i)
{
	return (char)('a' + (i * 7 + i / 251) % 26);
}

static void write_file(const char *name, size_t n)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/www/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	for (size_t i = 0; i < n; i++)
		fputc(pattern(i), f);
	fclose(f);
}

static bool is_pattern(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != pattern(i))
			return false;
	return true;
}

/* ---- nginx --------------------------------------------------------------------------- */

static pid_t nginx_pid;
static int nginx_port, nginx_tls_port;

static int free_port(void)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(l, (struct sockaddr *)&a, &len);
	close(l);
	return ntohs(a.sin_port);
}

static bool answers(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* nginx, one worker in the foreground, serving dir/www on a plain and a TLS port (a
 * self-signed certificate for localhost and 127.0.0.1), logging "$connection" per request. */
static void start_nginx(void)
{
	if (sh("command -v nginx >/dev/null 2>&1") != 0)
		cr_skip_test("needs nginx (Debian: nginx-light)");
	if (sh("command -v openssl >/dev/null 2>&1") != 0)
		cr_skip_test("needs the openssl command (Debian: openssl)");
	make_dir();
	cr_assert_eq(sh("mkdir -p %s/www %s/tmp && cd %s && openssl req -x509 -newkey ec -pkeyopt "
	                "ec_paramgen_curve:P-256 -nodes -keyout key.pem -subj /CN=localhost "
	                "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 -out cert.pem "
	                "2>/dev/null",
	                dir, dir, dir),
	             0);
	write_file("one", 1);
	write_file("small", 10000);
	write_file("large", 5 << 20);
	FILE *f = fopen(strcat(strcpy((char[128]){0}, dir), "/www/sub.txt"), "w");
	cr_assert(f);
	for (int i = 0; i < 2000; i++)
		fprintf(f, "line %d MARK\n", i);
	fclose(f);
	for (int attempt = 0; attempt < 3; attempt++) {
		nginx_port = free_port();
		nginx_tls_port = free_port();
		char conf[256];
		snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
		f = fopen(conf, "w");
		cr_assert(f);
		fprintf(
		    f,
		    "daemon off; master_process off; worker_processes 1;\n"
		    "pid %s/nginx.pid; error_log %s/error.log;\n"
		    "events { worker_connections 256; }\n"
		    "http {\n"
		    " log_format c '$connection $request_method $uri $status';\n"
		    " access_log %s/access.log c;\n"
		    " client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n"
		    " fastcgi_temp_path %s/tmp; uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;\n"
		    " keepalive_requests 100000;\n"
		    " types { text/plain txt; }\n"
		    " server {\n"
		    "  listen 127.0.0.1:%d; listen 127.0.0.1:%d ssl;\n"
		    "  ssl_certificate %s/cert.pem; ssl_certificate_key %s/key.pem;\n"
		    "  root %s/www;\n"
		    "  location /dav/ { dav_methods PUT DELETE; create_full_put_path on; }\n"
		    "  location /sub.txt { sub_filter MARK mark!; sub_filter_once off;\n"
		    "                      sub_filter_types *; }\n"
		    "  location /slow { alias %s/www/large; limit_rate 200k; }\n"
		    "  absolute_redirect off;\n"
		    "  location = /r302 { return 302 /small; }\n"
		    "  location = /r303 { return 303 /one; }\n"
		    "  location = /r301 { return 301 http://127.0.0.1:%d/one; }\n"
		    "  location = /loop { return 302 /loop; }\n"
		    " }\n"
		    "}\n",
		    dir, dir, dir, dir, dir, dir, dir, dir, nginx_port, nginx_tls_port, dir, dir,
		    dir, dir, nginx_port);
		fclose(f);
		char *argv[] = {"nginx", "-p", dir, "-c", conf, NULL};
		nginx_pid = fork();
		cr_assert(nginx_pid >= 0);
		if (nginx_pid == 0) {
			int null = open("/dev/null", 1);
			dup2(null, 1);
			dup2(null, 2);
			execvp("nginx", argv);
			_exit(127);
		}
		for (int i = 0; i < 200 && !answers(nginx_port); i++) {
			if (waitpid(nginx_pid, NULL, WNOHANG) == nginx_pid) {
				nginx_pid = 0;
				break;
			}
			pause_ms(10);
		}
		if (nginx_pid && answers(nginx_port) && answers(nginx_tls_port))
			return;
		if (nginx_pid) {
			kill(nginx_pid, SIGKILL);
			waitpid(nginx_pid, NULL, 0);
			nginx_pid = 0;
		}
	}
	cr_assert_fail("nginx did not start (see %s/error.log)", dir);
}

static void stop_nginx(void)
{
	if (nginx_pid) {
		kill(nginx_pid, SIGTERM);
		waitpid(nginx_pid, NULL, 0);
		nginx_pid = 0;
	}
	remove_dir();
}

/* Distinct connections nginx logged requests on. */
static int nginx_connections(void)
{
	char path[128], line[256];
	snprintf(path, sizeof(path), "%s/access.log", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long seen[512];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		long c = atol(line);
		bool dup = false;
		for (int i = 0; i < n; i++)
			dup |= seen[i] == c;
		if (!dup && n < 512)
			seen[n++] = c;
	}
	fclose(f);
	return n;
}

static char url_buf[8][160];
static const char *url(int k, const char *path)
{
	snprintf(url_buf[k], sizeof(url_buf[k]), "http://127.0.0.1:%d%s", nginx_port, path);
	return url_buf[k];
}

/* ---- Against nginx -------------------------------------------------------------------- */

static void *static_main(void *arg)
{
	(void)arg;
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	static const struct {
		const char *path;
		size_t len;
	} files[] = {{"/one", 1}, {"/small", 10000}, {"/large", 5 << 20}};
	for (int rep = 0; rep < 2; rep++)
		for (size_t i = 0; i < 3; i++) {
			struct rotor_http_client_request q = {.url = url(0, files[i].path),
			                                      .deadline = rotor_now() + 10 * SEC};
			struct rotor_http_response *r = NULL;
			int err = rotor_http_client_fetch(c, &q, 0, &r);
			CHECK_EQ(err, 0);
			if (err)
				continue;
			CHECK_EQ(r->status, 200);
			CHECK_EQ(r->minor, 1);
			CHECK(!strcmp(r->reason, "OK"));
			CHECK_EQ(r->content_length, (long long)files[i].len);
			CHECK_EQ(r->body_len, files[i].len);
			CHECK(is_pattern(r->body, r->body_len));
			CHECK_EQ(r->body[r->body_len], 0);
			const char *server = rotor_http_response_header(r, "SERVER");
			CHECK(server && !strncmp(server, "nginx", 5));
			CHECK(rotor_http_response_header(r, "X-None") == NULL);
			rotor_http_response_destroy(r);
		}
	struct rotor_http_client_request q = {.url = url(0, "/nothing-here")};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 404);
		CHECK(r->body_len > 0);
		rotor_http_response_destroy(r);
	}
	/* A body over the limit: -EFBIG, and the connection is not pooled half-read. */
	q.url = url(0, "/small");
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 9999, &r), -EFBIG);
	CHECK_EQ(rotor_http_client_fetch(c, &q, 10000, &r), 0);
	rotor_http_response_destroy(r);
	struct rotor_http_client_stats st;
	CHECK_EQ(rotor_http_client_stats(c, &st), 0);
	CHECK_EQ(st.requests, 9);
	CHECK_EQ(st.connects, 2); /* the first carried eight, the last a new one */
	CHECK_EQ(st.reused, 7);
	CHECK_EQ(st.idle, 1);
	CHECK_EQ(rotor_http_client_destroy(c), 0);
	return NULL;
}

Test(http_client, fetches_static_files_of_several_sizes, .init = start_nginx, .fini = stop_nginx,
     .timeout = 30)
{
	run_checked(1, static_main, NULL);
	cr_assert_eq(nginx_connections(), 2);
}

static void *chunked_main(void *arg)
{
	(void)arg;
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	static char want[40000];
	size_t wn = 0;
	for (int i = 0; i < 2000; i++)
		wn += (size_t)snprintf(want + wn, sizeof(want) - wn, "line %d mark!\n", i);
	/* Whole, then in pieces of 7 bytes: the same bytes either way. */
	struct rotor_http_client_request q = {.url = url(0, "/sub.txt"),
	                                      .deadline = rotor_now() + 10 * SEC};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 200);
		CHECK_EQ(r->content_length, -1);
		const char *te = rotor_http_response_header(r, "transfer-encoding");
		CHECK(te && !strcmp(te, "chunked"));
		CHECK_EQ(r->body_len, wn);
		CHECK(r->body_len == wn && !memcmp(r->body, want, wn));
		rotor_http_response_destroy(r);
	}
	r = NULL;
	CHECK_EQ(rotor_http_client_send(c, &q, &r), 0);
	if (r) {
		CHECK(r->body == NULL);
		static char got[40000];
		size_t n = 0;
		ssize_t k;
		while ((k = rotor_http_response_read(r, got + n, 7)) > 0)
			n += (size_t)k;
		CHECK_EQ(k, 0);
		CHECK_EQ(n, wn);
		CHECK(n == wn && !memcmp(got, want, wn));
		CHECK_EQ(rotor_http_response_read(r, got, 7), 0);
		rotor_http_response_destroy(r);
	}
	struct rotor_http_client_stats st;
	rotor_http_client_stats(c, &st);
	CHECK_EQ(st.connects, 1);
	CHECK_EQ(st.idle, 1);
	rotor_http_client_destroy(c);
	return NULL;
}

Test(http_client, reads_a_chunked_body_whole_and_in_pieces, .init = start_nginx, .fini = stop_nginx,
     .timeout = 30)
{
	run_checked(1, chunked_main, NULL);
	cr_assert_eq(nginx_connections(), 1);
}

struct pieces {
	size_t left, sent;
};

static ssize_t body_pieces(void *arg, void *buf, size_t cap)
{
	struct pieces *p = arg;
	size_t n = p->left < cap ? p->left : cap;
	if (n > 5000)
		n = 5000;
	for (size_t i = 0; i < n; i++)
		((char *)buf)[i] = pattern(p->sent + i);
	p->left -= n;
	p->sent += n;
	return (ssize_t)n;
}

static void *methods_main(void *arg)
{
	(void)arg;
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	int64_t dl = rotor_now() + 10 * SEC;
	/* PUT with a streamed, chunked body of 300 000 bytes, then read back. */
	struct pieces p = {300000, 0};
	struct rotor_http_client_request q = {.method = "PUT",
	                                      .url = url(0, "/dav/a"),
	                                      .body_fn = body_pieces,
	                                      .body_arg = &p,
	                                      .deadline = dl};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 201);
		rotor_http_response_destroy(r);
	}
	struct rotor_http_client_request g = {.url = url(0, "/dav/a"), .deadline = dl};
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &g, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 200);
		CHECK_EQ(r->body_len, 300000);
		CHECK(is_pattern(r->body, r->body_len));
		rotor_http_response_destroy(r);
	}
	/* PUT a whole body with headers of the caller's, streamed with Content-Length. */
	static const struct rotor_http_client_header hs[] = {{"X-Test", "yes"},
	                                                     {"Content-Type", "text/plain"}};
	struct rotor_http_client_request q2 = {.method = "PUT",
	                                       .url = url(0, "/dav/a"),
	                                       .headers = hs,
	                                       .nheaders = 2,
	                                       .body = "hello",
	                                       .body_len = 5,
	                                       .deadline = dl};
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q2, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 204);
		rotor_http_response_destroy(r);
	}
	struct pieces p3 = {12345, 0};
	struct rotor_http_client_request q3 = {.method = "PUT",
	                                       .url = url(0, "/dav/b"),
	                                       .body_fn = body_pieces,
	                                       .body_arg = &p3,
	                                       .body_len = 12345,
	                                       .deadline = dl};
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q3, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 201);
		rotor_http_response_destroy(r);
	}
	/* HEAD: the length declared, no body, the connection reusable after it. */
	struct rotor_http_client_request h = {
	    .method = "HEAD", .url = url(0, "/dav/b"), .deadline = dl};
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &h, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 200);
		CHECK_EQ(r->body_len, 0);
		const char *cl = rotor_http_response_header(r, "content-length");
		CHECK(cl && !strcmp(cl, "12345"));
		rotor_http_response_destroy(r);
	}
	g.url = url(1, "/dav/a");
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &g, 0, &r), 0);
	if (r) {
		CHECK(r->body_len == 5 && !memcmp(r->body, "hello", 5));
		rotor_http_response_destroy(r);
	}
	struct rotor_http_client_request d = {
	    .method = "DELETE", .url = url(0, "/dav/a"), .deadline = dl};
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &d, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 204);
		rotor_http_response_destroy(r);
	}
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &g, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 404);
		rotor_http_response_destroy(r);
	}
	/* A body_fn that gives fewer bytes than body_len: -EINVAL, nothing pooled broken. */
	struct pieces p4 = {10, 0};
	struct rotor_http_client_request q4 = {.method = "PUT",
	                                       .url = url(0, "/dav/c"),
	                                       .body_fn = body_pieces,
	                                       .body_arg = &p4,
	                                       .body_len = 11,
	                                       .deadline = dl};
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q4, 0, &r), -EINVAL);
	/* Header injection refused before anything is sent. */
	static const struct rotor_http_client_header evil[] = {{"X-A", "1\r\nX-B: 2"}};
	struct rotor_http_client_request q5 = {
	    .url = url(0, "/one"), .headers = evil, .nheaders = 1};
	CHECK_EQ(rotor_http_client_fetch(c, &q5, 0, &r), -EINVAL);
	static const struct rotor_http_client_header evil2[] = {{"X A", "1"}};
	q5.headers = evil2;
	CHECK_EQ(rotor_http_client_fetch(c, &q5, 0, &r), -EINVAL);
	q5.headers = NULL;
	q5.nheaders = 0;
	q5.method = "GE T";
	CHECK_EQ(rotor_http_client_fetch(c, &q5, 0, &r), -EINVAL);
	rotor_http_client_destroy(c);
	return NULL;
}

Test(http_client, puts_deletes_and_heads_with_whole_and_streamed_bodies, .init = start_nginx,
     .fini = stop_nginx, .timeout = 30)
{
	run_checked(1, methods_main, NULL);
}

struct many {
	struct rotor_http_client *c;
	int n;
	unsigned max_busy;
};

static void *many_task(void *arg)
{
	struct many *m = arg;
	for (int i = 0; i < m->n; i++) {
		struct rotor_http_client_request q = {.url = url(0, "/small"),
		                                      .deadline = rotor_now() + 10 * SEC};
		struct rotor_http_response *r = NULL;
		int err = rotor_http_client_send(m->c, &q, &r);
		CHECK_EQ(err, 0);
		if (err)
			continue;
		struct rotor_http_client_stats st;
		rotor_http_client_stats(m->c, &st);
		if (st.busy > m->max_busy)
			m->max_busy = st.busy;
		char buf[4096];
		size_t got = 0;
		ssize_t k;
		while ((k = rotor_http_response_read(r, buf, sizeof(buf))) > 0)
			got += (size_t)k;
		CHECK_EQ(k, 0);
		CHECK_EQ(got, 10000);
		rotor_http_response_destroy(r);
	}
	return NULL;
}

static void *reuse_main(void *arg)
{
	(void)arg;
	struct rotor_http_client_config cfg = {.max_per_origin = 3};
	struct many m = {.n = 10};
	CHECK_EQ(rotor_http_client_create(&cfg, &m.c), 0);
	struct rotor_task *t[20];
	for (int i = 0; i < 20; i++)
		CHECK_EQ(rotor_spawn(many_task, &m, &t[i]), 0);
	for (int i = 0; i < 20; i++)
		rotor_join(t[i], NULL);
	struct rotor_http_client_stats st;
	rotor_http_client_stats(m.c, &st);
	CHECK_EQ(st.requests, 200);
	CHECK_EQ(st.connects, 3);
	CHECK_EQ(st.reused, 197);
	CHECK_EQ(m.max_busy, 3);
	CHECK_EQ(st.idle, 3);
	CHECK_EQ(st.busy, 0);
	rotor_http_client_destroy(m.c);
	return NULL;
}

Test(http_client, pools_keep_alive_connections_within_the_cap_per_origin, .init = start_nginx,
     .fini = stop_nginx, .timeout = 30)
{
	run_checked(1, reuse_main, NULL);
	cr_assert_eq(nginx_connections(), 3);
}

static void *idle_main(void *arg)
{
	(void)arg;
	struct rotor_http_client_config cfg = {.idle_timeout = 100 * MS};
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(&cfg, &c), 0);
	struct rotor_http_client_request q = {.url = url(0, "/one")};
	struct rotor_http_response *r = NULL;
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
		rotor_http_response_destroy(r);
		struct rotor_http_client_stats st;
		rotor_http_client_stats(c, &st);
		CHECK_EQ(st.idle, 1);
		rotor_sleep(300 * MS);
		rotor_http_client_stats(c, &st);
		CHECK_EQ(st.idle, 0); /* the reaper closed it */
		CHECK_EQ(st.connects, (unsigned)i + 1);
	}
	/* No pooling at all with a negative timeout. */
	rotor_http_client_destroy(c);
	cfg.idle_timeout = -1;
	CHECK_EQ(rotor_http_client_create(&cfg, &c), 0);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
		rotor_http_response_destroy(r);
	}
	struct rotor_http_client_stats st;
	rotor_http_client_stats(c, &st);
	CHECK_EQ(st.connects, 2);
	CHECK_EQ(st.idle, 0);
	rotor_http_client_destroy(c);
	return NULL;
}

Test(http_client, closes_connections_idle_past_the_timeout, .init = start_nginx, .fini = stop_nginx,
     .timeout = 30)
{
	run_checked(1, idle_main, NULL);
	cr_assert_eq(nginx_connections(), 4);
}

static void *deadline_main(void *arg)
{
	(void)arg;
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	int64_t t0 = rotor_now();
	struct rotor_http_client_request q = {.url = url(0, "/slow"), .deadline = t0 + 400 * MS};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), -ETIMEDOUT);
	int64_t took = rotor_now() - t0;
	CHECK(took >= 400 * MS && took < 1500 * MS);
	/* Streamed: the head arrives, then a read passes the deadline. */
	q.deadline = rotor_now() + 300 * MS;
	CHECK_EQ(rotor_http_client_send(c, &q, &r), 0);
	if (r) {
		static char buf[65536];
		ssize_t k;
		size_t got = 0;
		while ((k = rotor_http_response_read(r, buf, sizeof(buf))) > 0)
			got += (size_t)k;
		CHECK_EQ(k, -ETIMEDOUT);
		CHECK(got > 0 && got < (5 << 20));
		CHECK_EQ(rotor_http_response_read(r, buf, sizeof(buf)), -ETIMEDOUT);
		rotor_http_response_destroy(r);
	}
	struct rotor_http_client_stats st;
	rotor_http_client_stats(c, &st);
	CHECK_EQ(st.idle, 0);
	CHECK_EQ(st.busy, 0);
	/* A deadline already past: nothing is even dialed. */
	q.deadline = rotor_now() - 1;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), -ETIMEDOUT);
	rotor_http_client_destroy(c);
	return NULL;
}

Test(http_client, ends_a_request_at_its_deadline_mid_body, .init = start_nginx, .fini = stop_nginx,
     .timeout = 30)
{
	run_checked(1, deadline_main, NULL);
}

static struct rotor_http_client *shared_client;

static void *worker_task(void *arg)
{
	/* Each worker its own buffer: both run at once, on two threads. */
	int k = (int)(intptr_t)arg;
	for (int i = 0; i < 20; i++) {
		struct rotor_http_client_request q = {.url = url(k, "/one"),
		                                      .deadline = rotor_now() + 10 * SEC};
		struct rotor_http_response *r = NULL;
		CHECK_EQ(rotor_http_client_fetch(shared_client, &q, 0, &r), 0);
		rotor_http_response_destroy(r);
	}
	struct rotor_http_client_stats st;
	rotor_http_client_stats(shared_client, &st);
	CHECK_EQ(st.requests, 20); /* this worker's pool only */
	CHECK_EQ(st.connects, 1);
	CHECK_EQ(st.idle, 1);
	/* Closed on this worker now, on the other by its runtime's stop. */
	return NULL;
}

static void *workers_main(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_http_client_create(NULL, &shared_client), 0);
	struct rotor_task *a = spawn_on(0, worker_task, (void *)(intptr_t)6);
	struct rotor_task *b = spawn_on(1, worker_task, (void *)(intptr_t)7);
	rotor_join(a, NULL);
	rotor_join(b, NULL);
	CHECK_EQ(rotor_http_client_destroy(shared_client), 0);
	return NULL;
}

Test(http_client, keeps_a_pool_per_worker, .init = start_nginx, .fini = stop_nginx, .timeout = 30)
{
	run_checked(2, workers_main, NULL);
	cr_assert_eq(nginx_connections(), 2);
}

static void *slow_fetch(void *arg)
{
	struct rotor_http_client_request q = {.url = url(0, "/slow")};
	struct rotor_http_response *r = NULL;
	int err = rotor_http_client_fetch(arg, &q, 0, &r);
	CHECK_EQ(err, -ECANCELED);
	return NULL;
}

static void *cancel_main(void *arg)
{
	(void)arg;
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	struct rotor_task *t = NULL;
	CHECK_EQ(rotor_spawn(slow_fetch, c, &t), 0);
	rotor_sleep(200 * MS); /* mid-body: /slow sends 200 KB/s of 5 MB */
	CHECK_EQ(rotor_cancel(t), 0);
	CHECK_EQ(rotor_join(t, NULL), -ECANCELED);
	struct rotor_http_client_stats st;
	rotor_http_client_stats(c, &st);
	CHECK_EQ(st.busy, 0); /* the broken connection was closed, not pooled */
	CHECK_EQ(st.idle, 0);
	/* The slot came back: a request still gets through. */
	struct rotor_http_client_request q = {.url = url(0, "/one")};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
	rotor_http_response_destroy(r);
	rotor_http_client_destroy(c);
	return NULL;
}

Test(http_client, cancels_a_request_mid_body_without_pooling_its_connection, .init = start_nginx,
     .fini = stop_nginx, .timeout = 30)
{
	run_checked(1, cancel_main, NULL);
}

static void *tls_main(void *arg)
{
	(void)arg;
	char u[160], ca[128];
	snprintf(u, sizeof(u), "https://localhost:%d/large", nginx_tls_port);
	snprintf(ca, sizeof(ca), "%s/cert.pem", dir);
	/* The system's store does not know the self-signed certificate. */
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	struct rotor_http_client_request q = {.url = u, .deadline = rotor_now() + 10 * SEC};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), -EKEYREJECTED);
	rotor_http_client_destroy(c);
	/* With it as the CA: several MB over https, then small ones on the same connection. */
	struct rotor_http_client_config cfg = {.ca_file = ca};
	CHECK_EQ(rotor_http_client_create(&cfg, &c), 0);
	for (int i = 0; i < 3; i++) {
		size_t want = i == 0 ? 5 << 20 : 10000;
		r = NULL;
		CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
		if (r) {
			CHECK_EQ(r->status, 200);
			CHECK_EQ(r->body_len, want);
			CHECK(is_pattern(r->body, r->body_len));
			rotor_http_response_destroy(r);
		}
		snprintf(u, sizeof(u), "https://127.0.0.1:%d/small", nginx_tls_port);
	}
	/* A CA file that does not exist: the create's error. */
	struct rotor_http_client *c2 = NULL;
	struct rotor_http_client_config none = {.ca_file = "/nonexistent/ca.pem"};
	CHECK_EQ(rotor_http_client_create(&none, &c2), -ENOENT);
	struct rotor_http_client_stats st;
	rotor_http_client_stats(c, &st);
	CHECK_EQ(st.connects, 2); /* localhost, then 127.0.0.1: two origins */
	CHECK_EQ(st.reused, 1);
	rotor_http_client_destroy(c);
	return NULL;
}

Test(http_client, verifies_https_servers_by_default, .init = start_nginx, .fini = stop_nginx,
     .timeout = 30)
{
#ifndef ROTOR_HAVE_TLS
	cr_skip_test("needs rotor built with OpenSSL (libssl-dev)");
#endif
	run_checked(1, tls_main, NULL);
}

static void *redirect_main(void *arg)
{
	(void)arg;
	struct rotor_http_client *c = NULL;
	CHECK_EQ(rotor_http_client_create(NULL, &c), 0);
	/* Off by default: the 302 is the response. */
	struct rotor_http_client_request q = {.url = url(0, "/r302")};
	struct rotor_http_response *r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 302);
		const char *loc = rotor_http_response_header(r, "location");
		CHECK(loc && !strcmp(loc, "/small"));
		rotor_http_response_destroy(r);
	}
	rotor_http_client_destroy(c);
	struct rotor_http_client_config cfg = {.max_redirects = 3};
	CHECK_EQ(rotor_http_client_create(&cfg, &c), 0);
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
	if (r) {
		CHECK_EQ(r->status, 200);
		CHECK_EQ(r->body_len, 10000);
		CHECK(is_pattern(r->body, r->body_len));
		rotor_http_response_destroy(r);
	}
	/* An absolute Location; a 303 to a POST becomes a GET without the body. */
	q.url = url(0, "/r301");
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), 0);
	if (r) {
		CHECK(r->status == 200 && r->body_len == 1);
		rotor_http_response_destroy(r);
	}
	struct rotor_http_client_request p = {
	    .method = "POST", .url = url(0, "/r303"), .body = "x=1", .body_len = 3};
	r = NULL;
	CHECK_EQ(rotor_http_client_fetch(c, &p, 0, &r), 0);
	if (r) {
		CHECK(r->status == 200 && r->body_len == 1);
		rotor_http_response_destroy(r);
	}
	/* A loop ends after max_redirects. */
	q.url = url(0, "/loop");
	CHECK_EQ(rotor_http_client_fetch(c, &q, 0, &r), -ELOOP);
	struct rotor_http_client_stats st;
	rotor_http_client_stats(c, &st);
	CHECK_EQ(st.connects, 1); /* every hop on the one keep-alive connection */
	rotor_http_client_destroy(c);
	return NULL;
}

Test(http_client, follows_redirects_only_when_asked, .init = start_nginx, .fini = stop_nginx,
     .timeout = 30)
{
	run_checked(1, redirect_main, NULL);
	cr_assert_eq(nginx_connections(), 2);
}
