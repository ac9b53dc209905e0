/*
 * Seed 000, "Submit an Arbitrary Number of Coroutines in Asyncio Event Loop during Runtime":
 * an event loop runs in the background (AsyncLoopThread + run_forever) and the main thread
 * keeps adding coroutines to it with asyncio.run_coroutine_threadsafe().
 *
 * In rotor the background loop is rotor_runtime_create() (one worker per core), and
 * run_coroutine_threadsafe() is rotor_submit(): the main thread, which is no worker, posts
 * each coroutine straight into a worker's io_uring ring with IORING_OP_MSG_RING. Every 3 s it
 * adds a batch of 1000 coroutines, each sleeping a random 3-5 s and printing
 * "Coro N has finished".
 *
 * Unlike the seed, this program also checks its work: every coroutine's future is waited on,
 * and each coroutine must have finished exactly once, slept at least its time, and run on a
 * worker. With --batches N it stops after N batches; without it, it runs until SIGINT or
 * SIGTERM, then waits for what it started. Exit 0 only if every check held.
 *
 *   seed000_submit_at_runtime [--batches N] [--batch-size N] [--scale F] [--workers N]
 *                             [--seed N] [--quiet]
 */
#include "example.h"

#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

struct coro {
	long num;
	int64_t sleep_ns;
	atomic_int finished; /* times the body ran to its end: must be 1 */
	atomic_int early;    /* woke before its sleep was over */
	atomic_int off_worker;
	struct rotor_future *future;
};

struct batch {
	struct coro *coros;
	long n;
};

static bool quiet;
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* The seed's coroutine(num, sec): await asyncio.sleep(sec); print('Coro %d has finished'). */
static void *coroutine(void *arg)
{
	struct coro *c = arg;
	int64_t deadline = rotor_now() + c->sleep_ns;
	int rc;

	if (rotor_worker_id() < 0 || rotor_current() == NULL)
		atomic_fetch_add(&c->off_worker, 1);
	rc = rotor_sleep(c->sleep_ns);
	if (rc < 0)
		return (void *)(intptr_t)rc;
	if (rotor_now() < deadline)
		atomic_fetch_add(&c->early, 1);
	if (!quiet)
		printf("Coro %ld has finished\n", c->num);
	atomic_fetch_add(&c->finished, 1);
	return c;
}

static struct batch submit_batch(struct rotor_runtime *rt, long first, long n)
{
	struct batch b = {.coros = calloc((size_t)n, sizeof(struct coro)), .n = n};

	if (!b.coros) {
		fprintf(stderr, "out of memory\n");
		exit(EX_FAILED);
	}
	for (long i = 0; i < n; i++) {
		struct coro *c = &b.coros[i];

		c->num = first + i;
		/* randint(3, 5) seconds in the seed; here any time in [3 s, 5 s], so that the
		 * timers do not all share three deadlines. */
		c->sleep_ns = ex_seconds(3.0 + (double)(random() % 2001) / 1000.0);
		if (!quiet)
			printf("Add Coro %ld to the loop\n", c->num);
		EX_CHECK(rotor_submit(rt, ROTOR_WORKER_ANY, coroutine, c, &c->future));
	}
	return b;
}

/* Wait for every coroutine of a batch (the seed never does: its futures are dropped) and
 * check each one's record. Returns how many finished. */
static long reap_batch(struct batch *b)
{
	long done = 0;

	for (long i = 0; i < b->n; i++) {
		struct coro *c = &b->coros[i];
		void *res = NULL;
		int rc = rotor_future_wait(c->future, ROTOR_FOREVER, &res);

		if (rc < 0)
			ex_fail("Coro %ld: rotor_future_wait: %s", c->num, strerror(-rc));
		else if (res != c)
			ex_fail("Coro %ld: result %p, expected %p", c->num, res, (void *)c);
		rotor_future_destroy(c->future);
		if (atomic_load(&c->finished) != 1)
			ex_fail("Coro %ld finished %d times", c->num, atomic_load(&c->finished));
		if (atomic_load(&c->early))
			ex_fail("Coro %ld woke before its %.3f s were over", c->num,
			        ex_ns_to_s(c->sleep_ns));
		if (atomic_load(&c->off_worker))
			ex_fail("Coro %ld did not run as a task on a worker", c->num);
		done += atomic_load(&c->finished) == 1;
	}
	free(b->coros);
	b->coros = NULL;
	return done;
}

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s [--batches N] [--batch-size N] [--scale F] [--workers N] [--seed N] "
	        "[--quiet]\n"
	        "  --batches N     stop after N batches (default: until SIGINT/SIGTERM)\n"
	        "  --batch-size N  coroutines per batch (default 1000)\n"
	        "  --scale F       multiply every duration by F (default 1)\n"
	        "  --workers N     worker threads (default: one per CPU)\n",
	        prog);
	exit(EX_USAGE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"batches", required_argument, NULL, 'b'}, {"batch-size", required_argument, NULL, 'n'},
	    {"scale", required_argument, NULL, 's'},   {"workers", required_argument, NULL, 'w'},
	    {"seed", required_argument, NULL, 'r'},    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	struct rotor_config cfg = {0};
	long batches = 0, batch_size = 1000, started = 0, finished = 0, nbatches = 0;
	unsigned seed = 42;
	struct batch *live = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			batches = ex_parse_long("--batches", optarg, 1);
			break;
		case 'n':
			batch_size = ex_parse_long("--batch-size", optarg, 1);
			break;
		case 's':
			ex_scale = ex_parse_double("--scale", optarg, 0.0);
			break;
		case 'w':
			cfg.workers = (unsigned)ex_parse_long("--workers", optarg, 0);
			break;
		case 'r':
			seed = (unsigned)ex_parse_long("--seed", optarg, 0);
			break;
		case 'q':
			quiet = true;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	ex_init();
	srandom(seed);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	/* loop_handler = AsyncLoopThread(); loop_handler.start() */
	struct rotor_runtime *rt;
	EX_CHECK(rotor_runtime_create(&cfg, &rt));
	printf("runtime started with %d workers\n", rotor_runtime_workers(rt));

	for (long b = 0; (batches == 0 || b < batches) && !interrupted; b++) {
		struct batch *grown = realloc(live, (size_t)(nbatches + 1) * sizeof(*live));

		if (!grown) {
			fprintf(stderr, "out of memory\n");
			return EX_FAILED;
		}
		live = grown;
		if (b > 0)
			printf("Adding %ld more coros\n", batch_size);
		live[nbatches++] = submit_batch(rt, started, batch_size);
		started += batch_size;
		/* A batch submitted two periods ago has had 6 s for sleeps of at most 5 s:
		 * reaping it keeps memory flat when running forever. */
		if (nbatches > 2) {
			finished += reap_batch(&live[0]);
			memmove(&live[0], &live[1], (size_t)(nbatches - 1) * sizeof(*live));
			nbatches--;
		}
		if (batches == 0 || b + 1 < batches) {
			/* time.sleep(3): no loop on this thread, so a plain blocking sleep. */
			int64_t until = rotor_now() + ex_seconds(3.0);

			while (!interrupted && rotor_now() < until)
				ex_block(until - rotor_now() < 50 * NS_PER_MS ? until - rotor_now()
				                                              : 50 * NS_PER_MS);
		}
	}
	for (long i = 0; i < nbatches; i++)
		finished += reap_batch(&live[i]);
	free(live);

	EX_CHECK(rotor_runtime_destroy(rt));
	printf("started=%ld finished=%ld elapsed=%.3f s\n", started, finished, ex_elapsed());
	if (finished != started)
		ex_fail("%ld coroutines started but %ld finished exactly once", started, finished);
	return ex_exit_code();
}
