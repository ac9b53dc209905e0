/*
 * uv_echo: bench_echo's libuv peer, a TCP echo server written the way libuv is meant to be
 * used for speed. One thread per worker, each running its own uv loop with its own
 * SO_REUSEPORT listener (the socket is made here, bound, then handed to uv_tcp_open and
 * uv_listen); the bytes read are written back at once with uv_try_write, and only a
 * partial write is copied and queued with uv_write (reading stops until it completes:
 * back-pressure). Workers are pinned one per allowed CPU when there are several, as rotor
 * pins its workers.
 *
 *   uv_echo [--port N] [--workers N] [--host ADDR]
 *
 * Prints "listening on HOST:PORT (N workers)" once it accepts, like examples/echo_server;
 * SIGINT or SIGTERM stops it (every handle closed, "stopped", exit 0). Port 0 picks one.
 */
#define _GNU_SOURCE
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_WORKERS 256
#define BUF_SIZE    16384

struct conn {
	uv_tcp_t tcp; /* first: the handle is the connection */
	uv_write_t req;
	char *pending; /* BUF_SIZE bytes, allocated at the first partial write */
};

struct worker {
	pthread_t thread;
	int cpu;
	uv_loop_t loop;
	uv_tcp_t server;
	uv_async_t stop;
};

static struct worker workers[MAX_WORKERS];
static unsigned nworkers;
static _Thread_local char buf[BUF_SIZE];

static void free_conn(uv_handle_t *h)
{
	struct conn *c = (struct conn *)h;
	free(c->pending);
	free(c);
}

static void drop(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, free_conn);
}

/* libuv reads into this and calls on_read before it asks again: one buffer per thread. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	*b = uv_buf_init(buf, sizeof(buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_written(uv_write_t *req, int status)
{
	struct conn *c = (struct conn *)req->handle;
	if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		drop(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = (struct conn *)s;
	if (n <= 0) {
		if (n < 0) /* UV_EOF or an error; 0 is EAGAIN */
			drop(c);
		return;
	}
	uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
	int w = uv_try_write(s, &out, 1);
	if (w == n)
		return;
	if (w == UV_EAGAIN)
		w = 0;
	if (w < 0 || (!c->pending && !(c->pending = malloc(BUF_SIZE)))) {
		drop(c);
		return;
	}
	memcpy(c->pending, b->base + w, (size_t)(n - w));
	out = uv_buf_init(c->pending, (unsigned)(n - w));
	uv_read_stop(s);
	if (uv_write(&c->req, s, &out, 1, on_written) < 0)
		drop(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_tcp_init(server->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		drop(c);
}

static void close_handle(uv_handle_t *h, void *arg)
{
	if (uv_is_closing(h))
		return;
	if (h->type == UV_TCP && h->data != arg) /* a connection: its memory goes too */
		uv_close(h, free_conn);
	else
		uv_close(h, NULL);
}

static void on_stop(uv_async_t *a)
{
	uv_walk(a->loop, close_handle, a->loop);
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	if (nworkers > 1) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_loop_close(&w->loop);
	return NULL;
}

/* A listening socket on host:*port with SO_REUSEPORT; *port gets the port bound. */
static int listen_socket(const char *host, int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
	socklen_t len = sizeof(sa);
	int one = 1;
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 7000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			nworkers = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--port N] [--workers N] [--host ADDR]\n",
			        argv[0]);
			return 2;
		}
	}
	int cpus[CPU_SETSIZE], ncpus = 0;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &allowed))
				cpus[ncpus++] = i;
	if (!ncpus)
		cpus[ncpus++] = 0;
	if (!nworkers)
		nworkers = (unsigned)ncpus;
	if (nworkers > MAX_WORKERS)
		nworkers = MAX_WORKERS;
	/* The main thread takes the signals in sigwait: block them in every thread. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (unsigned i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];
		w->cpu = cpus[i % (unsigned)ncpus];
		int fd = listen_socket(host, &port); /* port 0: every worker on the one picked */
		int r = fd < 0 ? fd : uv_loop_init(&w->loop);
		if (r >= 0)
			r = uv_tcp_init(&w->loop, &w->server);
		if (r >= 0) {
			w->server.data = &w->loop; /* tells the listener from connections at stop */
			r = uv_tcp_open(&w->server, fd);
		}
		if (r >= 0)
			r = uv_listen((uv_stream_t *)&w->server, 1024, on_connection);
		if (r >= 0)
			r = uv_async_init(&w->loop, &w->stop, on_stop);
		if (r < 0) {
			fprintf(stderr, "uv_echo: listen on %s:%d: %s\n", host, port,
			        fd < 0 ? strerror(-fd) : uv_strerror(r));
			return 1;
		}
	}
	printf("listening on %s:%d (%u workers)\n", host, port, nworkers);
	fflush(stdout);
	for (unsigned i = 0; i < nworkers; i++)
		if (pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]) != 0) {
			fprintf(stderr, "uv_echo: pthread_create failed\n");
			return 1;
		}
	int sig = 0;
	sigwait(&set, &sig);
	fprintf(stderr, "uv_echo: signal %d, stopping\n", sig);
	for (unsigned i = 0; i < nworkers; i++)
		uv_async_send(&workers[i].stop);
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
	printf("stopped\n");
	return 0;
}
