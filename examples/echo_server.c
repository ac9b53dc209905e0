/*
 * A TCP echo server: one listener per worker on the same port (SO_REUSEPORT), a task per
 * connection reading through a receive stream (one multishot recv into buffers the worker's
 * connections share), graceful stop on SIGINT/SIGTERM (a task waits for the signal with
 * rotor_signal_wait and stops the runtime: every task blocked in accept or recv is
 * cancelled, connections are closed, the process exits 0).
 *
 *   echo_server [--port N] [--workers N] [--host ADDR] [--max-conns N] [--no-steer] [--stats]
 *
 * With several workers, each steers its listener (rotor_sock_steer): a connection goes to the
 * worker on the CPU that handled its handshake, unless that worker serves clearly more than
 * another, and later moves to the worker on the CPU its packets arrive on if its client's
 * thread moves (server.h); --no-steer leaves the choice to the kernel's hash.
 * Prints "listening on HOST:PORT (N workers)" once it accepts, and at the stop
 * "connections per worker: N0 N1 ...; moved M", then "stopped". Port 0 picks a free port.
 * --stats prints each worker's counters (rotor_stats_format) when the stop begins.
 */
#include <rotor.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

#define MAX_WORKERS SERVER_MAX_WORKERS

static int listeners[MAX_WORKERS];
static bool steer = true; /* --no-steer: false */
static const char *listen_host;
static int listen_port;
static int max_conns = 10000;

#define BUF_SIZE 4096 /* a receive buffer: the most one read returns */

/* Each worker's receive buffers, shared by its connections (see rotor_recv_stream_create). */
static int pool_key = -1;

static void *pool_create(void *arg)
{
	(void)arg;
	struct rotor_bufring *br;
	return rotor_bufring_create(512, BUF_SIZE, &br) < 0 ? NULL : br;
}

static void pool_destroy(void *br)
{
	rotor_bufring_destroy(br);
}

/* What a connection sends from: what arrived is copied to one of two buffers and handed to
 * the kernel with a started send, and the task reads on. It suspends once per echo (for
 * the next read) instead of twice, and waits for a send only if the one before is still
 * going when the next bytes arrive. */
struct echo {
	int fd;
	int reads;      /* since server_follow last looked */
	int seen_cpu;   /* server_follow's memory */
	size_t carried; /* bytes in out[cur] a move brought along, echoed first */
	struct rotor_op *send;
	size_t sending; /* bytes of out[cur ^ 1] in flight; 0: none */
	int cur;
	char out[2][BUF_SIZE];
};

/* 0 once the send in flight, if any, went out whole. */
static int send_done(struct echo *e)
{
	if (!e->sending)
		return 0;
	ssize_t w = rotor_op_wait(e->send, ROTOR_FOREVER);
	size_t want = e->sending;
	e->sending = 0;
	return w < 0 ? (int)w : (size_t)w == want ? 0 : -EPIPE;
}

/* A connection no task serves (server_release). */
static void release_connection(void *arg)
{
	struct echo *e = arg;
	close(e->fd);
	free(e);
}

static void *serve_connection(void *arg);

/* Move the connection to worker `to` (server_follow), with no send in flight: what the
 * receive stream had taken in goes along in out[cur]. Returns true if the connection is gone
 * from this task, false (nothing changed) if the stream has ended. */
static bool move_connection(struct echo *e, struct rotor_recv_stream **rs, int to)
{
	if (send_done(e) < 0)
		return false;
	ssize_t n = rotor_recv_stream_detach(*rs, e->out[e->cur], BUF_SIZE);
	if (n < 0)
		return false;
	*rs = NULL;
	e->carried = (size_t)n;
	rotor_op_destroy(e->send);
	e->send = NULL;
	server_conn_moved(to);
	server_serve(to, serve_connection, e);
	return true;
}

static void *serve_connection(void *arg)
{
	struct echo *e = arg;
	struct rotor_bufring *pool;
	struct rotor_recv_stream *rs = NULL;
	if (rotor_op_create(&e->send) < 0 ||
	    rotor_worker_local(pool_key, pool_create, NULL, (void **)&pool) < 0 ||
	    rotor_recv_stream_create(e->fd, pool, &rs) < 0)
		goto out;
	if (e->carried) {
		if (rotor_send_start(e->send, e->fd, e->out[e->cur], e->carried, MSG_WAITALL) < 0)
			goto out;
		e->sending = e->carried;
		e->carried = 0;
		e->cur ^= 1;
	}
	const void *data;
	ssize_t n;
	while ((n = rotor_recv_stream_next(rs, &data, ROTOR_FOREVER)) > 0) {
		if (send_done(e) < 0)
			break;
		memcpy(e->out[e->cur], data, (size_t)n);
		if (rotor_send_start(e->send, e->fd, e->out[e->cur], (size_t)n, MSG_WAITALL) < 0)
			break;
		e->sending = (size_t)n;
		e->cur ^= 1;
		if (++e->reads >= SERVER_FOLLOW_EVERY) {
			e->reads = 0;
			int to = server_follow(e->fd, &e->seen_cpu);
			if (to >= 0 && move_connection(e, &rs, to))
				return NULL;
		}
	}
	send_done(e);
out:
	if (rs)
		rotor_recv_stream_destroy(rs);
	if (e->send)
		rotor_op_destroy(e->send); /* a send still in flight is cancelled first */
	close(e->fd);
	free(e);
	server_conn_done(rotor_worker_id());
	return NULL;
}

static void *accept_loop(void *arg)
{
	int l = listeners[rotor_worker_id()];
	(void)arg;
	server_steer("echo_server", l, steer);
	for (;;) {
		int fd = rotor_accept(l, NULL, NULL, 0, ROTOR_FOREVER);
		if (fd == -ECANCELED)
			break;
		if (fd < 0) {
			/* -EMFILE and friends: back off instead of spinning. */
			if (rotor_sleep(10 * 1000 * 1000) == -ECANCELED)
				break;
			continue;
		}
		int to = server_admit(steer, max_conns);
		struct echo *e = to < 0 ? NULL : calloc(1, sizeof(*e));
		if (!e) {
			if (to >= 0)
				server_conn_done(to);
			close(fd);
			continue;
		}
		e->fd = fd;
		e->seen_cpu = -1;
		server_serve(to, serve_connection, e);
	}
	return NULL;
}

static void *wait_for_signal(void *arg)
{
	static const int signals[] = {SIGINT, SIGTERM};
	(void)arg;
	int sig = rotor_signal_wait(signals, 2, ROTOR_FOREVER);
	if (sig > 0)
		fprintf(stderr, "echo_server: signal %d, stopping\n", sig);
	server_print_stats();
	rotor_runtime_stop(rotor_runtime_current());
	return NULL;
}

static void *main_task(void *arg)
{
	struct rotor_task_attr s = {.worker = 0, .name = "signals"};
	rotor_spawn_attr(&s, wait_for_signal, arg, NULL);
	server_start("echo_server", accept_loop, listen_host, listen_port);
	return NULL;
}

static void *run_forever(void *arg)
{
	main_task(arg);
	/* The main task waits with the rest; the signal task stops the runtime. */
	rotor_sleep(ROTOR_FOREVER);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 7000;
	unsigned workers = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			workers = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else if (!strcmp(argv[i], "--max-conns") && i + 1 < argc)
			max_conns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-steer"))
			steer = false;
		else if (!strcmp(argv[i], "--stats"))
			server_stats = true;
		else {
			fprintf(stderr,
			        "usage: %s [--port N] [--workers N] [--host ADDR] "
			        "[--max-conns N] [--no-steer] [--stats]\n",
			        argv[0]);
			return 2;
		}
	}
	if (!workers)
		workers = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (workers > MAX_WORKERS)
		workers = MAX_WORKERS;
	/* rotor_signal_wait receives them: block them in every thread (workers inherit). */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (unsigned i = 0; i < workers; i++) {
		listeners[i] = rotor_tcp_listen(host, port, 1024, ROTOR_TCP_REUSEPORT);
		if (listeners[i] < 0) {
			fprintf(stderr, "echo_server: listen on %s:%d: %s\n", host, port,
			        strerror(-listeners[i]));
			return 1;
		}
		port = rotor_sock_port(listeners[i]); /* port 0: every worker on the one picked */
	}
	listen_host = host;
	listen_port = port;
	server_release = release_connection;
	pool_key = rotor_key_create(pool_destroy);
	struct rotor_config cfg = {.workers = workers};
	int r = rotor_run(&cfg, run_forever, NULL, NULL);
	for (unsigned i = 0; i < workers; i++)
		close(listeners[i]);
	if (r < 0) {
		fprintf(stderr, "echo_server: %s\n", strerror(-r));
		return 1;
	}
	server_report(workers);
	printf("stopped\n");
	return 0;
}
