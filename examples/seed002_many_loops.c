/*
 * Seed 002, "Asyncio Run Multiple Concurrent Event Loops": one event loop per thread,
 * threading.Thread(target=asyncio.run, args=(main_coroutine(f'Loop{i}'),)), so that a
 * program "can scale from thousands to millions of coroutines".
 *
 * Default mode: N threads (default 5), each calling rotor_run() with one worker on a main
 * coroutine that loops 6 times printing "LoopK: running..." and sleeping 0.5 s. With
 * --main-too the main thread runs one of the loops itself (the seed's first example, Loop1
 * in a thread and Loop2 in the main thread). Checks: every loop finished its 6 rounds, each
 * ran on its own thread and its own runtime, and the loops ran concurrently (the whole run
 * takes about one loop's time, not N).
 *
 * --coroutines M: the rotor way to scale. Instead of one loop per thread that the program
 * manages, one runtime with a worker per core runs M concurrent sleeping coroutines (one
 * spawner task per worker starts its share locally, then joins them). Checks: all M ran,
 * each on the worker it was given, and they slept concurrently.
 *
 *   seed002_many_loops [--loops N] [--main-too] [--scale F]
 *   seed002_many_loops --coroutines M [--workers N] [--sleep S] [--stack-size BYTES]
 */
#include "example.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ROUNDS 6

/* ---- one loop per thread ---------------------------------------------------------------- */

struct loop {
	pthread_t thread;
	char name[16];
	int nloops;
	struct rotor_runtime *rt;
	long tid;
	int rounds, rc;
	int64_t first_round, last_round;
};

static atomic_int loops_arrived;

/* async def main_coroutine(name) */
static void *main_coroutine(void *arg)
{
	struct loop *l = arg;
	int64_t give_up = rotor_now() + 10 * NS_PER_SEC;

	printf("%s coroutine running...\n", l->name);
	/* loop = asyncio.get_running_loop() */
	l->rt = rotor_runtime_current();
	l->tid = (long)syscall(SYS_gettid);
	printf("%s: %p - <rotor runtime workers=%d worker=%d tid=%ld>\n", l->name, (void *)l->rt,
	       l->rt ? rotor_runtime_workers(l->rt) : -1, rotor_worker_id(), l->tid);
	/* A start line: every loop is up before any starts its rounds, so the runtimes being
	 * compared are alive together (waiting with rotor_sleep, never blocking the loop). */
	atomic_fetch_add(&loops_arrived, 1);
	while (atomic_load(&loops_arrived) < l->nloops && rotor_now() < give_up)
		rotor_sleep(NS_PER_MS);
	for (int i = 0; i < ROUNDS; i++) {
		int64_t now = rotor_now();

		if (i == 0)
			l->first_round = now;
		l->last_round = now;
		printf("%s: running...\n", l->name);
		if (rotor_sleep(ex_seconds(0.5)) < 0)
			return NULL;
		l->rounds++;
	}
	printf("%s done\n", l->name);
	return NULL;
}

static void *run_loop(void *arg)
{
	struct loop *l = arg;
	/* N independent 1-worker runtimes would all pin their worker 0 to CPU 0: let the
	 * scheduler spread the loops' threads instead. */
	struct rotor_config cfg = {.workers = 1, .flags = ROTOR_NO_PIN};

	l->rc = rotor_run(&cfg, main_coroutine, l, NULL);
	return NULL;
}

static void many_loops(int n, bool main_too)
{
	struct loop *loops = calloc((size_t)n, sizeof(*loops));
	int64_t start = rotor_now(), round_time = ex_seconds(0.5) * ROUNDS;
	int64_t elapsed;

	if (!loops) {
		fprintf(stderr, "out of memory\n");
		exit(EX_FAILED);
	}
	for (int i = 0; i < n; i++) {
		snprintf(loops[i].name, sizeof(loops[i].name), "Loop%d", i);
		loops[i].nloops = n;
	}
	/* The main thread keeps the last loop for itself with --main-too. */
	for (int i = 0; i < n - (main_too ? 1 : 0); i++)
		if (pthread_create(&loops[i].thread, NULL, run_loop, &loops[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(EX_FAILED);
		}
	if (main_too)
		run_loop(&loops[n - 1]);
	for (int i = 0; i < n - (main_too ? 1 : 0); i++)
		pthread_join(loops[i].thread, NULL);
	elapsed = rotor_now() - start;

	int done = 0;
	for (int i = 0; i < n; i++) {
		EX_CHECK(loops[i].rc);
		if (loops[i].rounds != ROUNDS)
			ex_fail("%s ran %d rounds of %d", loops[i].name, loops[i].rounds, ROUNDS);
		done += loops[i].rounds == ROUNDS;
		for (int j = 0; j < i; j++) {
			if (loops[i].rt == loops[j].rt)
				ex_fail("%s and %s share the loop %p", loops[i].name, loops[j].name,
				        (void *)loops[i].rt);
			if (loops[i].tid == loops[j].tid)
				ex_fail("%s and %s share thread %ld", loops[i].name, loops[j].name,
				        loops[i].tid);
		}
	}
	/* Concurrency: every loop's first round came before any loop's last one. */
	int64_t latest_first = 0, earliest_last = INT64_MAX;
	for (int i = 0; i < n; i++) {
		if (loops[i].first_round > latest_first)
			latest_first = loops[i].first_round;
		if (loops[i].last_round < earliest_last)
			earliest_last = loops[i].last_round;
	}
	if (n > 1 && latest_first >= earliest_last)
		ex_fail("the loops did not overlap: one ended its rounds before another began");
	printf("loops=%d done=%d elapsed=%.3f s (one loop's rounds: %.3f s)\n", n, done,
	       ex_ns_to_s(elapsed), ex_ns_to_s(round_time));
	free(loops);
}

/* ---- one runtime, many coroutines ------------------------------------------------------- */

struct shard {
	int worker;
	long first, count;
	int64_t sleep_ns;
	long finished, wrong_worker;
};

static atomic_long sleeping_now, sleeping_max;

static void *sleeper(void *arg)
{
	struct shard *s = arg;
	long now = atomic_fetch_add(&sleeping_now, 1) + 1;
	long max = atomic_load(&sleeping_max);

	while (now > max && !atomic_compare_exchange_weak(&sleeping_max, &max, now))
		;
	if (rotor_worker_id() != s->worker)
		s->wrong_worker++; /* only this worker's tasks touch s: no race */
	int rc = rotor_sleep(s->sleep_ns);
	atomic_fetch_sub(&sleeping_now, 1);
	return (void *)(intptr_t)(rc == 0);
}

/* One per worker: start this worker's share of sleepers locally, then join them all. */
static void *spawner(void *arg)
{
	struct shard *s = arg;
	struct rotor_task **tasks = malloc((size_t)s->count * sizeof(*tasks));

	if (!tasks) {
		ex_fail("worker %d: out of memory for %ld handles", s->worker, s->count);
		return NULL;
	}
	for (long i = 0; i < s->count; i++) {
		int rc = rotor_spawn(sleeper, s, &tasks[i]);

		if (rc < 0) {
			ex_fail("worker %d: rotor_spawn #%ld: %s", s->worker, i, strerror(-rc));
			s->count = i;
			break;
		}
		/* Let the ones already started reach their sleep, and keep the loop turning. */
		if (i % 1024 == 1023)
			rotor_yield();
	}
	for (long i = 0; i < s->count; i++) {
		void *ok = NULL;
		int rc = rotor_join(tasks[i], &ok);

		if (rc == 0 && ok)
			s->finished++;
		else
			ex_fail("worker %d: sleeper #%ld: join %d, result %p", s->worker, i, rc,
			        ok);
	}
	free(tasks);
	return NULL;
}

struct many {
	long coroutines;
	int64_t sleep_ns;
	long finished;
};

static void *many_main(void *arg)
{
	struct many *m = arg;
	int workers = rotor_runtime_workers(rotor_runtime_current());
	struct shard *shards = calloc((size_t)workers, sizeof(*shards));
	struct rotor_task **spawners = calloc((size_t)workers, sizeof(*spawners));
	long first = 0;

	if (!shards || !spawners) {
		ex_fail("out of memory");
		return NULL;
	}
	for (int w = 0; w < workers; w++) {
		struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(w), .name = "spawner"};

		shards[w].worker = w;
		shards[w].first = first;
		shards[w].count = m->coroutines / workers + (w < m->coroutines % workers);
		shards[w].sleep_ns = m->sleep_ns;
		first += shards[w].count;
		EX_CHECK(rotor_spawn_attr(&attr, spawner, &shards[w], &spawners[w]));
	}
	for (int w = 0; w < workers; w++) {
		EX_CHECK(rotor_join(spawners[w], NULL));
		m->finished += shards[w].finished;
		if (shards[w].wrong_worker)
			ex_fail("%ld sleepers of worker %d ran elsewhere", shards[w].wrong_worker,
			        w);
		printf("worker %d: %ld of %ld coroutines finished\n", w, shards[w].finished,
		       shards[w].count);
	}
	free(shards);
	free(spawners);
	return NULL;
}

static void many_coroutines(long m, unsigned workers, double sleep_s, size_t stack_size)
{
	struct rotor_config cfg = {.workers = workers, .stack_size = stack_size};
	struct many many = {.coroutines = m, .sleep_ns = ex_seconds(sleep_s)};
	int64_t start = rotor_now(), elapsed;

	EX_CHECK(rotor_run(&cfg, many_main, &many, NULL));
	elapsed = rotor_now() - start;
	printf("coroutines=%ld finished=%ld max_concurrent=%ld elapsed=%.3f s (each slept "
	       "%.3f s)\n",
	       m, many.finished, atomic_load(&sleeping_max), ex_ns_to_s(elapsed),
	       ex_ns_to_s(many.sleep_ns));
	if (many.finished != m)
		ex_fail("%ld coroutines started, %ld finished", m, many.finished);
	/* They slept together: far less than one after the other would take. */
	if (m > 1 && atomic_load(&sleeping_max) < 2)
		ex_fail("the coroutines never slept concurrently");
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s [--loops N] [--main-too] [--scale F]\n"
	        "       %s --coroutines M [--workers N] [--sleep S] [--stack-size BYTES] "
	        "[--scale F]\n"
	        "  --loops N        threads, each running its own 1-worker loop (default 5)\n"
	        "  --main-too       the main thread runs the last loop itself\n"
	        "  --coroutines M   one runtime running M concurrent sleeping coroutines\n"
	        "  --workers N      workers for --coroutines (default: one per CPU)\n"
	        "  --sleep S        seconds each coroutine sleeps, before scaling (default 1)\n"
	        "  --stack-size B   bytes per coroutine stack (default: rotor's, 64 KiB)\n"
	        "  --scale F        multiply every duration by F (default 1)\n",
	        prog, prog);
	exit(EX_USAGE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"loops", required_argument, NULL, 'l'},
	    {"main-too", no_argument, NULL, 'm'},
	    {"coroutines", required_argument, NULL, 'c'},
	    {"workers", required_argument, NULL, 'w'},
	    {"sleep", required_argument, NULL, 'z'},
	    {"stack-size", required_argument, NULL, 'k'},
	    {"scale", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long loops = 5, coroutines = 0, stack_size = 0;
	unsigned workers = 0;
	double sleep_s = 1.0;
	bool main_too = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			loops = ex_parse_long("--loops", optarg, 1);
			break;
		case 'm':
			main_too = true;
			break;
		case 'c':
			coroutines = ex_parse_long("--coroutines", optarg, 1);
			break;
		case 'w':
			workers = (unsigned)ex_parse_long("--workers", optarg, 0);
			break;
		case 'z':
			sleep_s = ex_parse_double("--sleep", optarg, 0.0);
			break;
		case 'k':
			stack_size = ex_parse_long("--stack-size", optarg, 0);
			break;
		case 's':
			ex_scale = ex_parse_double("--scale", optarg, 0.0);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc || loops > 1000)
		usage(argv[0]);
	ex_init();
	if (coroutines)
		many_coroutines(coroutines, workers, sleep_s, (size_t)stack_size);
	else
		many_loops((int)loops, main_too);
	return ex_exit_code();
}
