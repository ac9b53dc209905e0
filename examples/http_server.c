/*
 * A small HTTP/1.1 server on rotor's HTTP module (rotor/http.h): the library frames requests
 * (keep-alive, pipelining with the answers to one read sent together, chunked bodies,
 * limits, deadlines), runs a task per connection on the server module (a listener per
 * worker, steering, connections that follow their packets), and calls this program's
 * handlers; a graceful stop on SIGINT/SIGTERM as in echo_server.c.
 *
 *   http_server [--port N] [--workers N] [--host ADDR] [--root DIR] [--max-conns N]
 *               [--idle-ms N] [--no-steer] [--stats] [--tls-cert PEM --tls-key PEM]
 *
 *   GET /plaintext, GET /   200 "Hello, World!" (text/plain), a fixed response
 *   GET /hello              the same, from a handler
 *   GET /static/<path>      the file <path> under --root (default: the current directory)
 *   POST /post              reads the whole body (up to 1 MiB), answers "received N bytes"
 *   POST /echo              streams the body back as it arrives, chunked
 *
 * HEAD is answered wherever GET is. Prints "listening on HOST:PORT (N workers)" once it
 * accepts, and at the stop "connections per worker: N0 N1 ...; moved M", then "stopped".
 * Port 0 picks a free port. Responses carry no Date header, so the same request always gets
 * the same bytes. A client that takes longer than --idle-ms (default 10000) to start a
 * request, send its head or its body is closed. --stats prints each worker's counters
 * (rotor_stats_format) when the stop begins.
 *
 * With --tls-cert and --tls-key (PEM files) it serves HTTPS instead (TLS 1.2 and 1.3, ALPN
 * http/1.1, AES-128-GCM preferred) through the library's TLS streams. Built without
 * OpenSSL, the options are refused.
 *
 * Paths under /static/ are percent-decoded and then every component is checked
 * (rotor_http_safe_path): empty, "." and ".." components are refused with 400, so no
 * request names a file outside --root (a symbolic link inside --root is followed: the
 * root's owner decides what it points at).
 */
#include <rotor.h>
#include <rotor/http.h>
#include <rotor/server.h>
#ifdef ROTOR_HAVE_TLS
#include <rotor/tls.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS_PER_MS 1000000LL
#define HELLO     "Hello, World!"

static struct rotor_http_server *server;
static bool print_stats; /* --stats */
static int sigfd = -1;
/* On SIGTERM a request being answered gets this long to finish (rotor_runtime_drain). */
static int64_t drain_ns = 5000 * NS_PER_MS;
static const char *root = ".";

static int hello(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	return rotor_http_respond(res, 200, "text/plain", HELLO, 13);
}

static const char *content_type(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".txt"))
		return "text/plain";
	if (!strcmp(dot, ".html") || !strcmp(dot, ".htm"))
		return "text/html";
	if (!strcmp(dot, ".json"))
		return "application/json";
	return "application/octet-stream";
}

static int text(struct rotor_http_response *res, int status, const char *body, bool close)
{
	if (close)
		rotor_http_header_add(res, "Connection", "close");
	return rotor_http_respond(res, status, "text/plain", body, strlen(body));
}

/* /static/<path>: the file, read through the ring into the connection's output. */
static int serve_static(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	char path[PATH_MAX];
	int r = rotor_http_safe_path(root, req->path + 8, req->path_len - 8, path, sizeof(path));
	if (r == -ENAMETOOLONG)
		return text(res, 414, "URI Too Long\n", true);
	if (r < 0)
		return text(res, 400, "Bad Request\n", true);
	int fd = rotor_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0, req->deadline);
	if (fd == -ECANCELED)
		return fd;
	if (fd == -EACCES || fd == -EPERM)
		return text(res, 403, "Forbidden\n", false);
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP || fd == -ENAMETOOLONG)
		return text(res, 404, "Not Found\n", false);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		r = text(res, 404, "Not Found\n", false);
	else
		r = rotor_http_respond_file(res, 200, content_type(path), fd, 0,
		                            (size_t)st.st_size);
	rotor_close(fd, ROTOR_FOREVER);
	return r;
}

/* POST /post: the whole body, then a short answer. */
static int post(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	const void *body;
	ssize_t n = rotor_http_body(req, 0, &body);
	if (n < 0)
		return (int)n; /* 413, 400, 408: the library answers */
	/* "received N bytes\n", built by hand: snprintf was a tenth of a 4 KiB POST's cost. */
	char msg[48] = "received ", digits[24];
	size_t len = 9, d = 0;
	do
		digits[d++] = (char)('0' + n % 10);
	while ((n /= 10));
	while (d)
		msg[len++] = digits[--d];
	memcpy(msg + len, " bytes\n", 7);
	return rotor_http_respond(res, 200, "text/plain", msg, len + 7);
}

/* POST /echo: each piece of the body goes back as a chunk as soon as it arrives. */
static int echo(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)arg;
	size_t tl = 0;
	const char *ct = rotor_http_header(req, "Content-Type", &tl);
	char type[128];
	snprintf(type, sizeof(type), "%.*s", ct && tl < sizeof(type) ? (int)tl : 0, ct ? ct : "");
	int r = rotor_http_stream_begin(res, 200, *type ? type : "application/octet-stream");
	const void *piece;
	ssize_t n = 0;
	while (r == 0 && (n = rotor_http_body_read(req, &piece)) > 0)
		r = rotor_http_stream_write(res, piece, (size_t)n);
	if (r == 0 && n < 0)
		r = (int)n;
	return r < 0 ? r : rotor_http_stream_end(res);
}

#ifdef ROTOR_HAVE_TLS
static struct rotor_tls_ctx *tls_ctx; /* --tls-cert, --tls-key */

static int tls_setup(const char *cert, const char *key)
{
	struct rotor_tls_config tc = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	tc.alpn = "http/1.1";
	/* AES-128-GCM first (the cheaper of the AES suites, as nginx is configured in bench/). */
	tc.ciphersuites =
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
	tc.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	             "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	             "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
	int r = rotor_tls_ctx_create(&tc, &tls_ctx);
	if (r < 0)
		fprintf(stderr, "http_server: TLS: %s: %s\n", strerror(-r), rotor_tls_error(NULL));
	return r;
}
#endif

static void *run(void *host)
{
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_server *base = rotor_http_server_base(server);
	struct rotor_server_stats st;
	struct signalfd_siginfo si;
	int r = rotor_http_server_start(server);
	if (r < 0) {
		fprintf(stderr, "http_server: %s\n", strerror(-r));
		return host; /* failed */
	}
	for (int i = 0; rotor_server_stats(base, i, &st) == 0; i++)
		if (st.steer_error) /* harmless: the kernel's hash spreads its connections */
			fprintf(stderr, "http_server: worker %d: steering connections: %s\n", i,
			        strerror(-st.steer_error));
	printf("listening on %s:%d (%d workers)\n", (const char *)host,
	       rotor_http_server_port(server), rotor_runtime_workers(rt));
	fflush(stdout);
	ssize_t n = rotor_read(sigfd, &si, sizeof(si), -1, ROTOR_FOREVER);
	if (n == (ssize_t)sizeof(si))
		fprintf(stderr, "http_server: signal %u, stopping\n", si.ssi_signo);
	/* Requests being answered finish; idle connections and the listeners close now. */
	rotor_runtime_drain(rt, rotor_now() + drain_ns);
	static char buf[1 << 16]; /* --stats: a line per worker */
	if (print_stats && rotor_stats_format(rt, buf, sizeof(buf), 0) > 0)
		fputs(buf, stdout);
	return NULL; /* the runtime stops: every task is cancelled, every connection closed */
}

static int routes(void)
{
	int r = 0;
	/* The same bytes every time: the server keeps them whole (no handler call). */
	r = r ? r
	      : rotor_http_route_fixed(server, "GET", "/plaintext", 0, 200, "text/plain", HELLO,
	                               13);
	r = r ? r : rotor_http_route_fixed(server, "GET", "/", 0, 200, "text/plain", HELLO, 13);
	/* The same answer from a handler, for comparison (bench: the cost of a handler call). */
	r = r ? r : rotor_http_route(server, "GET", "/hello", 0, hello, NULL);
	r = r ? r
	      : rotor_http_route(server, "GET", "/static/", ROTOR_HTTP_PREFIX, serve_static, NULL);
	r = r ? r : rotor_http_route(server, "POST", "/post", 0, post, NULL);
	r = r ? r : rotor_http_route(server, "POST", "/echo", 0, echo, NULL);
	return r;
}

int main(int argc, char **argv)
{
	struct rotor_http_config hc = {.host = "127.0.0.1", .port = 8080};
	const char *tls_cert = NULL, *tls_key = NULL;
	int64_t idle_ns = 10000 * NS_PER_MS;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			hc.port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			hc.workers = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			hc.host = argv[++i];
		else if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(argv[i], "--max-conns") && i + 1 < argc)
			hc.max_conns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc)
			idle_ns = atoll(argv[++i]) * NS_PER_MS;
		else if (!strcmp(argv[i], "--no-steer"))
			hc.flags |= ROTOR_SERVER_NO_STEER;
		else if (!strcmp(argv[i], "--stats"))
			print_stats = true;
		else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc)
			tls_cert = argv[++i];
		else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc)
			tls_key = argv[++i];
		else {
			fprintf(stderr,
			        "usage: %s [--port N] [--workers N] [--host ADDR] [--root DIR] "
			        "[--max-conns N] [--idle-ms N] [--no-steer] [--stats] "
			        "[--tls-cert PEM --tls-key PEM]\n",
			        argv[0]);
			return 2;
		}
	}
	struct stat st;
	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "http_server: --root %s: not a directory\n", root);
		return 1;
	}
	if (idle_ns <= 0)
		idle_ns = 10000 * NS_PER_MS;
	hc.idle_ns = hc.header_ns = hc.body_ns = idle_ns;
	if (!tls_cert != !tls_key) {
		fprintf(stderr, "http_server: --tls-cert and --tls-key go together\n");
		return 2;
	}
#ifdef ROTOR_HAVE_TLS
	if (tls_cert && tls_setup(tls_cert, tls_key) < 0)
		return 1;
	hc.tls = tls_ctx;
#else
	if (tls_cert) {
		fprintf(stderr, "http_server: built without OpenSSL: no HTTPS\n");
		return 1;
	}
#endif
	/* Signals go to the signalfd only: block them in every thread (inherited). A peer that
	 * closes early must not kill the process: sends also pass MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0) {
		perror("http_server: signalfd");
		return 1;
	}
	int r = rotor_http_server_create(&hc, &server);
	if (r < 0) {
		fprintf(stderr, "http_server: listen on %s:%d: %s\n", hc.host, hc.port,
		        strerror(-r));
		return 1;
	}
	if ((r = routes()) < 0) {
		fprintf(stderr, "http_server: routes: %s\n", strerror(-r));
		return 1;
	}
	struct rotor_config cfg = {.workers = hc.workers};
	void *failed = NULL;
	r = rotor_run(&cfg, run, (void *)hc.host, &failed);
	close(sigfd);
	if (r < 0)
		fprintf(stderr, "http_server: %s\n", strerror(-r));
	if (r < 0 || failed)
		return 1;
	struct rotor_server_stats ss;
	unsigned long long moved = 0;
	printf("connections per worker:");
	for (int i = 0; rotor_server_stats(rotor_http_server_base(server), i, &ss) == 0;
	     i++, moved += ss.moved_out)
		printf(" %llu", (unsigned long long)ss.given);
	printf("; moved %llu\nstopped\n", moved);
	return rotor_http_server_destroy(server) < 0;
}
