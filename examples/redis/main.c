/*
 * redis_server: a Redis-protocol server whose keys are owned by workers, one shard per
 * core (Seastar's memcached, Dragonfly). One listener per worker on one port (rotor/server.h);
 * a connection runs on the worker that accepted it, runs the commands on that worker's keys
 * inline and forwards the others to their owners in batches (conn.h, forward.c).
 *
 *   redis_server [--port N] [--host ADDR] [--workers N] [--maxmemory BYTES] [--maxclients N]
 *                [--timeout-ms N] [--max-bulk BYTES] [--max-query BYTES] [--owners N] [--stats]
 *
 * --owners N: only the first N workers own keys (default: all); --owners 1 with two workers
 * measures the cross-core path: every command of worker 1's connections travels.
 * Prints "listening on HOST:PORT (N workers)" once it accepts; SIGTERM or SIGINT stop it
 * gracefully (replies being written finish). --stats prints, at the stop, the parts run where
 * they arrived, the parts forwarded, the batches (one callback each) they travelled in, and
 * parts per batch, per worker and in total, then the runtime's counters.
 */
#include "redis.h"

#include <rotor/server.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "conn.h"

int nworkers = 1;
int nowners;
long long maxmemory;
long long max_bulk = ROTOR_RESP_MAX_BULK_DEF;
struct rotor_runtime *runtime;
int port = 6379;
extern long long max_query;
extern int64_t idle_ns;

void cmd_init(void);
void conn_init(void);
void conn_serve(struct rotor_server_conn *sc, void *arg);
void conn_close(struct rotor_server_conn *sc, void *arg);

static struct rotor_server *server;
static int sigfd = -1;
static bool print_stats;

/* The active expiry of one worker's shard: ten times a second, a bounded sample. */
static void *sweeper(void *arg)
{
	struct shard *s = &shards[(int)(intptr_t)arg];
	while (rotor_sleep(100 * 1000000LL) == 0)
		db_sweep(s, 200);
	return NULL;
}

static void *run(void *host)
{
	runtime = rotor_runtime_current();
	for (int w = 0; w < nworkers; w++) {
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(w), .name = "expire"};
		shards[w].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(w + 1);
		rotor_spawn_attr(&a, sweeper, (void *)(intptr_t)w, NULL);
	}
	int r = rotor_server_start(server);
	if (r < 0) {
		fprintf(stderr, "redis_server: %s\n", strerror(-r));
		rotor_runtime_stop(runtime);
		return host;
	}
	printf("listening on %s:%d (%d workers)\n", (const char *)host, rotor_server_port(server),
	       nworkers);
	fflush(stdout);
	struct signalfd_siginfo si;
	ssize_t n = rotor_read(sigfd, &si, sizeof(si), -1, ROTOR_FOREVER);
	if (n == (ssize_t)sizeof(si))
		fprintf(stderr, "redis_server: signal %u, stopping\n", si.ssi_signo);
	rotor_runtime_drain(runtime, rotor_now() + 2000 * 1000000LL);
	if (print_stats) {
		static char buf[1 << 16];
		if (rotor_stats_format(runtime, buf, sizeof(buf), 0) > 0)
			fputs(buf, stdout);
	}
	return NULL;
}

static void stats_print(void)
{
	uint64_t fp = 0, fm = 0, lp = 0;
	for (int w = 0; w < nworkers; w++) {
		struct shard *s = &shards[w];
		printf("worker %d: keys %zu, local parts %llu, forwarded parts %llu in %llu "
		       "batches (%.2f per batch)\n",
		       w, s->count, (unsigned long long)s->local_parts,
		       (unsigned long long)s->fwd_parts, (unsigned long long)s->fwd_msgs,
		       s->fwd_msgs ? (double)s->fwd_parts / (double)s->fwd_msgs : 0.0);
		fp += s->fwd_parts;
		fm += s->fwd_msgs;
		lp += s->local_parts;
	}
	printf("total: local parts %llu, forwarded parts %llu, batches %llu, parts per batch "
	       "%.2f\n",
	       (unsigned long long)lp, (unsigned long long)fp, (unsigned long long)fm,
	       fm ? (double)fp / (double)fm : 0.0);
}

int main(int argc, char **argv)
{
	struct rotor_server_config sc = {.host = "127.0.0.1", .port = 6379};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--stats")) {
			print_stats = true;
			continue;
		}
		if (!v)
			goto usage;
		i++;
		if (!strcmp(a, "--port"))
			sc.port = atoi(v);
		else if (!strcmp(a, "--host"))
			sc.host = v;
		else if (!strcmp(a, "--workers"))
			sc.workers = (unsigned)atoi(v);
		else if (!strcmp(a, "--owners"))
			nowners = atoi(v);
		else if (!strcmp(a, "--maxmemory"))
			maxmemory = atoll(v);
		else if (!strcmp(a, "--maxclients"))
			sc.max_conns = atoi(v);
		else if (!strcmp(a, "--timeout-ms"))
			idle_ns = atoll(v) * 1000000LL;
		else if (!strcmp(a, "--max-bulk"))
			max_bulk = atoll(v);
		else if (!strcmp(a, "--max-query"))
			max_query = atoll(v);
		else
			goto usage;
	}
	if (sc.workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		sc.workers = n > 0 ? (unsigned)n : 1;
	}
	if (sc.workers > MAX_WORKERS || max_bulk <= 0 || max_query <= 0 || maxmemory < 0) {
		fprintf(stderr, "redis_server: --workers 1..%d, sizes positive\n", MAX_WORKERS);
		return 2;
	}
	nworkers = (int)sc.workers;
	if (nowners <= 0 || nowners > nworkers)
		nowners = nworkers;
	sc.conn_size = sizeof(struct conn);
	sc.serve = conn_serve;
	sc.close = conn_close;
	cmd_init();
	conn_init();
	fwd_init();
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0) {
		perror("redis_server: signalfd");
		return 1;
	}
	int r = rotor_server_create(&sc, &server);
	if (r < 0) {
		fprintf(stderr, "redis_server: listen on %s:%d: %s\n", sc.host, sc.port,
		        strerror(-r));
		return 1;
	}
	port = rotor_server_port(server);
	struct rotor_config cfg = {.workers = sc.workers};
	void *failed = NULL;
	r = rotor_run(&cfg, run, (void *)sc.host, &failed);
	close(sigfd);
	if (r < 0)
		fprintf(stderr, "redis_server: %s\n", strerror(-r));
	if (print_stats)
		stats_print();
	for (int w = 0; w < nworkers; w++)
		db_flush(&shards[w]);
	printf("stopped\n");
	rotor_server_destroy(server);
	return r < 0 || failed ? 1 : 0;
usage:
	fprintf(stderr,
	        "usage: %s [--port N] [--host ADDR] [--workers N] [--maxmemory BYTES] "
	        "[--maxclients N] [--timeout-ms N] [--max-bulk BYTES] [--max-query BYTES] "
	        "[--owners N] [--stats]\n",
	        argv[0]);
	return 2;
}
