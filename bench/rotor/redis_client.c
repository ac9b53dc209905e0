/*
 * The load side of bench_redis_client (bench/redis_client.sh): rotor's Redis client on one
 * worker, issuing GET or SET (-d bytes, keys "key:%012d" over a keyspace, as redis-benchmark
 * -r names them) until killed or --seconds pass. --tasks N: N tasks, each one command at a
 * time (they share the worker's one connection: their commands of a turn go out in one
 * write). --pipeline N: one task sending pipelines of N (rotor_redis_pipeline). The script
 * measures the window itself (its CPU from /proc, the server's command count); this program
 * only prints its own totals at the end.
 *   redis_client_load --port P [--tasks N | --pipeline N] [--cmd get|set] [--keyspace K]
 *                     [--datasize D] [--seconds S] [--connections C] [--no-spin]
 * --no-spin: the worker sleeps at once when idle (ROTOR_NO_SPIN) instead of polling its ring
 * for a while first, which trades latency for CPU.
 */
#include <rotor.h>
#include <rotor/redis.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int port, tasks = 50, pipe_n, connections = 1, keyspace = 100000, datasize = 16;
static int is_set, no_spin;
static double seconds = 3600;
static volatile sig_atomic_t stop;
static long long done, errors;
static char value[4096];

struct loader {
	struct rotor_redis *r;
	unsigned seed;
	int64_t end;
};

/* "key:%012u" of a random number below keyspace, the digits written in place as
 * redis-benchmark -r writes them (snprintf was a tenth of this client's CPU in perf, a cost
 * the peer does not pay). */
static void key_of(struct loader *l, char *key)
{
	l->seed = l->seed * 1103515245u + 12345u;
	unsigned v = (l->seed >> 8) % (unsigned)keyspace;
	memcpy(key, "key:", 4);
	for (int i = 15; i >= 4; i--) {
		key[i] = (char)('0' + v % 10);
		v /= 10;
	}
	key[16] = 0;
}

static void *one_at_a_time(void *arg)
{
	struct loader *l = arg;
	char key[24];
	while (!stop && rotor_now() < l->end) {
		key_of(l, key);
		const char *argv[] = {is_set ? "SET" : "GET", key, value};
		size_t lens[] = {3, 16, (size_t)datasize};
		struct rotor_redis_reply *x = NULL;
		int err = rotor_redis_command(l->r, is_set ? 3 : 2, argv, lens,
		                              rotor_now() + 5000000000LL, &x);
		if (err < 0 || x->type == ROTOR_REDIS_ERROR)
			errors++;
		else
			done++;
		rotor_redis_reply_free(x);
	}
	return NULL;
}

static void *pipelined(void *arg)
{
	struct loader *l = arg;
	/* On the heap: a task's stack is 64 KiB. */
	char(*keys)[24] = malloc(sizeof(*keys) * (size_t)pipe_n);
	const char *(*argv)[3] = malloc(sizeof(*argv) * (size_t)pipe_n);
	size_t(*lens)[3] = malloc(sizeof(*lens) * (size_t)pipe_n);
	struct rotor_redis_cmd *cmds = malloc(sizeof(*cmds) * (size_t)pipe_n);
	struct rotor_redis_reply **replies = malloc(sizeof(*replies) * (size_t)pipe_n);
	while (!stop && rotor_now() < l->end) {
		for (int i = 0; i < pipe_n; i++) {
			key_of(l, keys[i]);
			argv[i][0] = is_set ? "SET" : "GET";
			argv[i][1] = keys[i];
			argv[i][2] = value;
			lens[i][0] = 3;
			lens[i][1] = 16;
			lens[i][2] = (size_t)datasize;
			cmds[i] = (struct rotor_redis_cmd){is_set ? 3 : 2, argv[i], lens[i]};
		}
		if (rotor_redis_pipeline(l->r, pipe_n, cmds, rotor_now() + 5000000000LL, replies) <
		    0) {
			errors += pipe_n;
			continue;
		}
		for (int i = 0; i < pipe_n; i++) {
			if (replies[i]->type == ROTOR_REDIS_ERROR)
				errors++;
			else
				done++;
			rotor_redis_reply_free(replies[i]);
		}
	}
	free(keys);
	free(argv);
	free(lens);
	free(cmds);
	free(replies);
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	struct rotor_redis_config cfg = {
	    .host = "127.0.0.1", .port = port, .connections = connections};
	struct rotor_redis *r;
	int err = rotor_redis_connect(&cfg, rotor_now() + 5000000000LL, &r);
	if (err < 0) {
		fprintf(stderr, "redis_client_load: connect: %s\n", strerror(-err));
		return (void *)1;
	}
	int n = pipe_n ? 1 : tasks;
	struct loader *ls = calloc((size_t)n, sizeof(*ls));
	struct rotor_task **ts = calloc((size_t)n, sizeof(*ts));
	int64_t end = rotor_now() + (int64_t)(seconds * 1e9);
	for (int i = 0; i < n; i++) {
		ls[i] = (struct loader){r, 12345u + 7919u * (unsigned)i, end};
		rotor_spawn(pipe_n ? pipelined : one_at_a_time, &ls[i], &ts[i]);
	}
	for (int i = 0; i < n; i++)
		rotor_join(ts[i], NULL);
	struct rotor_redis_stats st;
	rotor_redis_stats(r, &st);
	printf("redis_client_load: ops=%lld errors=%lld commands=%llu writes=%llu (%.1f per "
	       "write)\n",
	       done, errors, (unsigned long long)st.commands, (unsigned long long)st.writes,
	       st.writes ? (double)st.commands / (double)st.writes : 0.0);
	rotor_redis_close(r, rotor_now() + 1000000000LL);
	free(ls);
	free(ts);
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"tasks", required_argument, NULL, 't'},
	    {"pipeline", required_argument, NULL, 'P'},
	    {"cmd", required_argument, NULL, 'c'},
	    {"keyspace", required_argument, NULL, 'r'},
	    {"datasize", required_argument, NULL, 'd'},
	    {"seconds", required_argument, NULL, 's'},
	    {"connections", required_argument, NULL, 'n'},
	    {"no-spin", no_argument, NULL, 'S'},
	    {NULL, 0, NULL, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 't':
			tasks = atoi(optarg);
			break;
		case 'P':
			pipe_n = atoi(optarg);
			break;
		case 'c':
			is_set = !strcmp(optarg, "set");
			break;
		case 'r':
			keyspace = atoi(optarg);
			break;
		case 'd':
			datasize = atoi(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'n':
			connections = atoi(optarg);
			break;
		case 'S':
			no_spin = 1;
			break;
		default:
			return 2;
		}
	}
	if (port <= 0 || tasks < 1 || pipe_n < 0 || pipe_n > 1024 || keyspace < 1 || datasize < 0 ||
	    datasize > (int)sizeof(value)) {
		fprintf(stderr,
		        "usage: redis_client_load --port P [--tasks N | --pipeline N] ...\n");
		return 2;
	}
	memset(value, 'x', sizeof(value));
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	struct rotor_config cfg = {.workers = 1, .flags = no_spin ? ROTOR_NO_SPIN : 0};
	void *res = NULL;
	int err = rotor_run(&cfg, main_task, NULL, &res);
	if (err < 0) {
		fprintf(stderr, "redis_client_load: rotor_run: %s\n", strerror(-err));
		return 1;
	}
	return res ? 1 : 0;
}
