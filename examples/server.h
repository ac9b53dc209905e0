/*
 * Where the example servers put a new connection. Each worker accepts on its own listener
 * (one SO_REUSEPORT group) and, unless --no-steer, steers it (rotor_sock_steer): a
 * connection then arrives at the worker on the CPU that handled its handshake, where its
 * packets are processed and its wake-ups stay on one CPU. Steering follows the clients, so
 * clients that all connected from one CPU would all land on one worker: a worker serving
 * clearly more connections than the least loaded one hands the new one over (the task that
 * serves it is spawned there), which costs that connection its locality and nothing more.
 * And a connection whose packets come to another worker's CPU for a while moves there
 * (server_follow). Header-only, included by echo_server.c and http_server.c.
 */
#ifndef ROTOR_EXAMPLE_SERVER_H
#define ROTOR_EXAMPLE_SERVER_H

#include <rotor.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SERVER_MAX_WORKERS 256

/* Connections each worker serves: raised by the worker that accepts, for the one that will
 * serve; lowered by that one when the connection ends. Read by every accepting worker. */
static atomic_int server_load[SERVER_MAX_WORKERS];
/* Connections admitted and not yet ended, on every worker (the --max-conns cap). */
static atomic_int server_open;
/* Connections each worker was given, for the line printed at the stop (server_report). */
static atomic_long server_given[SERVER_MAX_WORKERS];
/* Connections that moved to another worker (server_follow). */
static atomic_long server_moves;

/* A worker keeps what it accepts while it serves at most twice as many connections as the
 * least loaded worker, plus this many. Two workers that accept bursts of steered connections
 * at slightly different moments stay within it (a tighter bound moved 9 of 100 connections
 * wrk -t2 had spread evenly, and cost steering's gain on them); clients that all connected
 * from one CPU end up about two to one. */
#define SERVER_BALANCE_SLACK 8

/* Accept tasks that have not yet steered their listener (server_start waits for them). */
static struct rotor_waitgroup server_steering;
/* The CPU each worker steers its listener to, -1 when it does not (server_steer); read by
 * every worker's connections (server_follow), which may run before the steering is done. */
static atomic_int server_cpu[SERVER_MAX_WORKERS];

/* Called by each accept task before its first accept: steer this worker's listener when
 * steer is set and there are several workers. A failure is reported and harmless: the
 * kernel's hash then spreads connections. */
static inline void server_steer(const char *prog, int listener, bool steer)
{
	if (steer && rotor_runtime_workers(rotor_runtime_current()) > 1) {
		int r = rotor_sock_steer(listener);
		if (r < 0)
			fprintf(stderr, "%s: worker %d: steering connections: %s\n", prog,
			        rotor_worker_id(), strerror(-r));
		else
			atomic_store_explicit(&server_cpu[rotor_worker_id()], r,
			                      memory_order_relaxed);
	}
	rotor_waitgroup_done(&server_steering);
}

/* Spawn accept on every worker and print "listening on HOST:PORT (N workers)" once each has
 * steered its listener: steering applies to handshakes after it, and clients connect when
 * they read that line. Thread: task. */
static inline void server_start(const char *prog, rotor_fn accept, const char *host, int port)
{
	int n = rotor_runtime_workers(rotor_runtime_current());
	for (int i = 0; i < SERVER_MAX_WORKERS; i++)
		atomic_store_explicit(&server_cpu[i], -1, memory_order_relaxed);
	rotor_waitgroup_init(&server_steering);
	rotor_waitgroup_add(&server_steering, n);
	for (int i = 0; i < n; i++) {
		struct rotor_task_attr a = {.worker = i, .name = "accept"};
		int r = rotor_spawn_attr(&a, accept, NULL, NULL);
		if (r < 0) {
			fprintf(stderr, "%s: worker %d: no accept task: %s\n", prog, i,
			        strerror(-r));
			rotor_waitgroup_done(&server_steering);
		}
	}
	if (rotor_waitgroup_wait(&server_steering) == 0) {
		printf("listening on %s:%d (%d workers)\n", host, port, n);
		fflush(stdout);
	}
}

/* Admit a connection accepted here, or -1 when max are open already (the caller closes it).
 * Returns the worker that is to serve it, its counts raised (server_conn_done lowers them):
 * this one unless steering made it serve too many (unsteered, the kernel's hash spreads). */
static inline int server_admit(bool steered, int max)
{
	if (atomic_fetch_add_explicit(&server_open, 1, memory_order_relaxed) >= max) {
		atomic_fetch_sub_explicit(&server_open, 1, memory_order_relaxed);
		return -1;
	}
	int self = rotor_worker_id();
	int n = rotor_runtime_workers(rotor_runtime_current());
	int mine = atomic_load_explicit(&server_load[self], memory_order_relaxed);
	int best = self, least = mine;
	for (int i = 0; i < n && i < SERVER_MAX_WORKERS; i++) {
		int l = atomic_load_explicit(&server_load[i], memory_order_relaxed);
		if (l < least) {
			least = l;
			best = i;
		}
	}
	int to = steered && mine > 2 * least + SERVER_BALANCE_SLACK ? best : self;
	atomic_fetch_add_explicit(&server_load[to], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&server_given[to], 1, memory_order_relaxed);
	return to;
}

/*
 * Steering places a connection by the CPU of its handshake, but a client's thread may move
 * to another CPU afterwards (wrk -t2 often starts both threads on one CPU, and the scheduler
 * spreads them a moment later), and then every packet of the connection is processed there
 * while its task runs here. Every so often a connection asks the kernel which CPU handled
 * its last packet (SO_INCOMING_CPU on the connected socket); when that is another steering
 * worker's CPU twice in a row, and that worker serves no more than twice this one's
 * connections plus SERVER_BALANCE_SLACK, this returns it: the connection should move there.
 * Otherwise -1. *seen carries the CPU of the previous look.
 */
#define SERVER_FOLLOW_EVERY 64 /* reads between two looks, per connection */

static inline int server_follow(int sock, int *seen)
{
	int self = rotor_worker_id();
	int here = atomic_load_explicit(&server_cpu[self], memory_order_relaxed);
	if (here < 0)
		return -1;
	int cpu = -1;
	socklen_t len = sizeof(cpu);
	if (getsockopt(sock, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) < 0 || cpu < 0 ||
	    cpu == here) {
		*seen = -1;
		return -1;
	}
	int prev = *seen;
	*seen = cpu;
	if (prev != cpu)
		return -1;
	int n = rotor_runtime_workers(rotor_runtime_current());
	for (int i = 0; i < n && i < SERVER_MAX_WORKERS; i++)
		if (atomic_load_explicit(&server_cpu[i], memory_order_relaxed) == cpu) {
			int theirs = atomic_load_explicit(&server_load[i], memory_order_relaxed);
			int mine = atomic_load_explicit(&server_load[self], memory_order_relaxed);
			return theirs <= 2 * mine + SERVER_BALANCE_SLACK ? i : -1;
		}
	return -1;
}

/* A connection counted for this worker is to be served by worker to. */
static inline void server_conn_moved(int to)
{
	atomic_fetch_sub_explicit(&server_load[rotor_worker_id()], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&server_load[to], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&server_moves, 1, memory_order_relaxed);
}

/* A connection admitted for worker w has ended, or never started. */
static inline void server_conn_done(int w)
{
	atomic_fetch_sub_explicit(&server_load[w], 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&server_open, 1, memory_order_relaxed);
}

/* How the program ends a connection no task serves (close its socket, free its state): set
 * by main before the runtime starts. */
static void (*server_release)(void *conn);

/* A connection whose task never ran (discard, on the task's worker). */
static inline void server_discard(void *conn)
{
	server_release(conn);
	server_conn_done(rotor_worker_id());
}

/* Serve conn, counted for worker to (server_admit, server_conn_moved), with a task there.
 * When the task cannot be spawned (the runtime is stopping) or never runs (a stop right
 * after), the connection is still closed and its count lowered. */
static inline void server_serve(int to, rotor_fn serve, void *conn)
{
	struct rotor_task_attr a = {.worker = to, .discard = server_discard};
	if (rotor_spawn_attr(&a, serve, conn, NULL) < 0) {
		server_release(conn);
		server_conn_done(to);
	}
}

/* "connections per worker: N0 N1 ...; moved M": where connections were accepted for, and
 * how many moves followed. */
static inline void server_report(unsigned workers)
{
	printf("connections per worker:");
	for (unsigned i = 0; i < workers && i < SERVER_MAX_WORKERS; i++)
		printf(" %ld", atomic_load(&server_given[i]));
	printf("; moved %ld\n", atomic_load(&server_moves));
}

/* --stats: every worker's counters (rotor_stats_format), printed when the stop begins. */
static bool server_stats;

static inline void server_print_stats(void)
{
	struct rotor_runtime *rt = rotor_runtime_current();
	int need = server_stats ? rotor_stats_format(rt, NULL, 0, 0) : -1;
	char *buf = need > 0 ? malloc((size_t)need + 1) : NULL;
	if (buf && rotor_stats_format(rt, buf, (size_t)need + 1, 0) > 0)
		fputs(buf, stdout);
	free(buf);
}

#endif
