/*
 * A TCP echo server. rotor/server.h does the serving (a listener per worker on one port,
 * steered to the worker's CPU; a task per connection, moved when its packets move); this file
 * says what a connection does: read through a receive stream, echo with started sends.
 * SIGINT/SIGTERM end it: tasks are cancelled, connections closed, the process exits 0.
 *
 *   echo_server [--port N] [--workers N] [--host ADDR] [--max-conns N] [--no-steer] [--stats]
 *
 * Prints "listening on HOST:PORT (N workers)" once it accepts, and at the stop (after each
 * worker's counters with --stats) "connections per worker: N0 N1 ...; moved M", "stopped".
 */
#include <rotor.h>
#include <rotor/server.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_SIZE 4096 /* a receive buffer: the most one read returns */

static struct rotor_server *server;
static int stats;         /* --stats */
static int pool_key = -1; /* each worker's receive buffers, shared by its connections */

static void *pool_create(void *arg)
{
	struct rotor_bufring *br;
	(void)arg;
	return rotor_bufring_create(512, BUF_SIZE, &br) < 0 ? NULL : br;
}

static void pool_destroy(void *br)
{
	rotor_bufring_destroy(br);
}

/* A connection's state. What arrived is copied to one of two buffers and sent with a started
 * send while the task reads on: it suspends once per echo, not twice. */
struct echo {
	size_t carried; /* bytes in out[cur] a move brought along, echoed first */
	size_t sending; /* bytes of out[cur ^ 1] in flight; 0: none */
	struct rotor_op *send;
	int cur;
	char out[2][BUF_SIZE];
};

/* 0 once the send in flight, if any, went out whole. */
static int send_done(struct echo *e)
{
	size_t want = e->sending;
	e->sending = 0;
	return want && rotor_op_wait(e->send, ROTOR_FOREVER) != (ssize_t)want ? -1 : 0;
}

static int echo(struct echo *e, int fd, const void *data, size_t n)
{
	if (send_done(e) < 0)
		return -1;
	char *out = e->out[e->cur];
	memmove(out, data, n); /* data may be out already: what a move carried */
	e->sending = n;
	e->cur ^= 1;
	return rotor_send_start(e->send, fd, out, n, MSG_WAITALL);
}

static void serve(struct rotor_server_conn *c, void *arg)
{
	struct echo *e = rotor_server_conn_data(c);
	int fd = rotor_server_conn_fd(c), to;
	struct rotor_bufring *pool;
	struct rotor_recv_stream *rs = NULL;
	const void *data;
	ssize_t n = (ssize_t)e->carried;
	(void)arg;
	if (rotor_op_create(&e->send) < 0 ||
	    rotor_worker_local(pool_key, pool_create, NULL, (void **)&pool) < 0 ||
	    rotor_recv_stream_create(fd, pool, &rs) < 0 || (n && echo(e, fd, e->out[e->cur], n)))
		goto out;
	while ((n = rotor_recv_stream_next(rs, &data, ROTOR_FOREVER)) > 0) {
		if (echo(e, fd, data, (size_t)n) < 0)
			break;
		/* Its packets come to another worker's CPU: go there, with what the stream holds.
		 */
		if ((to = rotor_server_follow(c)) >= 0 && send_done(e) == 0 &&
		    (n = rotor_recv_stream_detach(rs, e->out[e->cur], BUF_SIZE)) >= 0) {
			rs = NULL;
			e->carried = (size_t)n;
			rotor_server_move(c, to);
			break;
		}
	}
	/* Stopping (a drain): what was received still goes back whole, within a second. */
	if (rotor_shield_begin(rotor_now() + 1000000000) == 0) {
		send_done(e);
		rotor_shield_end();
	}
out:
	if (rs)
		rotor_recv_stream_destroy(rs);
	if (e->send)
		rotor_op_destroy(e->send); /* a send still in flight is cancelled first */
	e->send = NULL;
}

static void *run(void *host)
{
	static const int signals[] = {SIGINT, SIGTERM};
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_server_stats st;
	int r = rotor_server_start(server);
	if (r < 0) {
		fprintf(stderr, "echo_server: %s\n", strerror(-r));
		return host; /* failed */
	}
	for (int i = 0; rotor_server_stats(server, i, &st) == 0; i++)
		if (st.steer_error) /* harmless: the kernel's hash spreads its connections */
			fprintf(stderr, "echo_server: worker %d: steering connections: %s\n", i,
			        strerror(-st.steer_error));
	printf("listening on %s:%d (%d workers)\n", (const char *)host, rotor_server_port(server),
	       rotor_runtime_workers(rt));
	fflush(stdout);
	int sig = rotor_signal_wait(signals, 2, ROTOR_FOREVER);
	if (sig > 0)
		fprintf(stderr, "echo_server: signal %d, stopping\n", sig);
	/* Data being echoed goes out; idle connections and the listeners close now. */
	rotor_runtime_drain(rt, rotor_now() + 2000000000);
	static char buf[1 << 16]; /* a line per worker */
	if (stats && rotor_stats_format(rt, buf, sizeof(buf), 0) > 0)
		fputs(buf, stdout);
	return NULL; /* the runtime stops: every task is cancelled, every connection closed */
}

int main(int argc, char **argv)
{
	struct rotor_server_config sc = {.host = "127.0.0.1", .port = 7000, .serve = serve};
	sc.conn_size = sizeof(struct echo);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--no-steer"))
			sc.flags |= ROTOR_SERVER_NO_STEER;
		else if (!strcmp(a, "--stats"))
			stats = 1;
		else if (v && !strcmp(a, "--host"))
			sc.host = argv[++i];
		else if (v && !strcmp(a, "--port"))
			sc.port = atoi(argv[++i]);
		else if (v && !strcmp(a, "--workers"))
			sc.workers = (unsigned)atoi(argv[++i]);
		else if (v && !strcmp(a, "--max-conns"))
			sc.max_conns = atoi(argv[++i]);
		else {
			fprintf(stderr,
			        "usage: %s [--port N] [--workers N] [--host ADDR] "
			        "[--max-conns N] [--no-steer] [--stats]\n",
			        argv[0]);
			return 2;
		}
	}
	/* rotor_signal_wait receives them: block them in every thread (workers inherit). */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int r = rotor_server_create(&sc, &server);
	if (r < 0) {
		fprintf(stderr, "echo_server: listen on %s:%d: %s\n", sc.host, sc.port,
		        strerror(-r));
		return 1;
	}
	pool_key = rotor_key_create(pool_destroy);
	struct rotor_config cfg = {.workers = sc.workers};
	void *failed = NULL;
	if ((r = rotor_run(&cfg, run, (void *)sc.host, &failed)) < 0)
		fprintf(stderr, "echo_server: %s\n", strerror(-r));
	if (r < 0 || failed)
		return 1;
	struct rotor_server_stats st;
	unsigned long long moved = 0;
	printf("connections per worker:");
	for (int i = 0; rotor_server_stats(server, i, &st) == 0; i++, moved += st.moved_out)
		printf(" %llu", (unsigned long long)st.given);
	printf("; moved %llu\nstopped\n", moved);
	return rotor_server_destroy(server) < 0;
}
