/*
 * Seed 001, the event-loop lesson: the ways to run a loop, a loop per thread, callbacks, and
 * a callback that blocks the loop. One subcommand per section of the seed:
 *
 *   run                 asyncio.run(do_something_important())          -> rotor_run()
 *   run_until_complete  loop.run_until_complete(...) on a loop made by hand
 *                       -> rotor_runtime_create() + rotor_call() + rotor_runtime_destroy()
 *   loop_per_thread     two threads, each running its own loop           -> rotor_run() x 2
 *   callbacks           call_soon / call_later, and a Future awaited by a coroutine and
 *                       resolved by a call_later callback  -> rotor_call_soon/_later + future
 *   blocking            a monitor prints "Alive at T" every 1 s while a call_later callback
 *                       blocks the worker with a synchronous sleep: the Alive messages stop
 *   blocking_fixed      the resolver is a coroutine that sleeps with rotor_sleep(): Alive
 *                       keeps its 1 s period
 *
 * blocking and blocking_fixed print the largest gap between two Alive messages
 * ("max_alive_gap=S") so that a test can see the loop stall, or not.
 * Every subcommand checks its own invariants and exits non-zero if one fails.
 *
 *   seed001_event_loop SUBCOMMAND [--scale F] [--workers N] [--block S]
 */
#include "example.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct rotor_config cfg;
static double block_s = 10.0; /* the seed's time.sleep(10) / asyncio.sleep(10) */

static long thread_id(void)
{
	return (long)syscall(SYS_gettid);
}

/* The seed prints current_thread().getName() and the running loop's id. */
static void print_identity(const char *who)
{
	char name[32] = "?";
	struct rotor_runtime *rt = rotor_runtime_current();

	pthread_getname_np(pthread_self(), name, sizeof(name));
	if (rt)
		printf("%s: thread %s (tid %ld), loop %p, worker %d of %d\n", who, name,
		       thread_id(), (void *)rt, rotor_worker_id(), rotor_runtime_workers(rt));
	else
		printf("%s: thread %s (tid %ld), no running loop here\n", who, name, thread_id());
}

/* ---- run, run_until_complete ------------------------------------------------------------ */

/* async def do_something_important(): await asyncio.sleep(10) */
static void *do_something_important(void *arg)
{
	int64_t start = rotor_now();
	int rc = rotor_sleep(ex_seconds(10.0));

	(void)arg;
	if (rc < 0)
		ex_fail("rotor_sleep: %s", strerror(-rc));
	return (void *)(intptr_t)(rotor_now() - start);
}

static void check_slept(void *result, int64_t start)
{
	int64_t slept = (int64_t)(intptr_t)result;
	int64_t ran = rotor_now() - start;

	printf("Program ran for %.3f seconds (the coroutine slept %.3f)\n", ex_ns_to_s(ran),
	       ex_ns_to_s(slept));
	if (slept < ex_seconds(10.0) || ran < slept)
		ex_fail("slept %.3f s of %.3f s, call returned after %.3f s", ex_ns_to_s(slept),
		        ex_ns_to_s(ex_seconds(10.0)), ex_ns_to_s(ran));
}

static void cmd_run(void)
{
	int64_t start = rotor_now();
	void *result = NULL;

	EX_CHECK(rotor_run(&cfg, do_something_important, NULL, &result));
	check_slept(result, start);
	if (rotor_runtime_current() != NULL)
		ex_fail("the main thread still has a loop after rotor_run() returned");
}

static void cmd_run_until_complete(void)
{
	int64_t start = rotor_now();
	struct rotor_runtime *rt;
	void *result = NULL;

	/* loop = asyncio.new_event_loop(); loop.run_until_complete(...); loop.close() */
	EX_CHECK(rotor_runtime_create(&cfg, &rt));
	EX_CHECK(rotor_call(rt, ROTOR_WORKER_ANY, do_something_important, NULL, &result));
	EX_CHECK(rotor_runtime_destroy(rt));
	check_slept(result, start);
}

/* ---- loop_per_thread -------------------------------------------------------------------- */

struct loop_thread {
	pthread_t thread;
	char name[16];
	unsigned seed;
	struct rotor_runtime *seen_rt; /* rotor_runtime_current() inside the coroutine */
	long seen_tid;
	int seen_worker, seen_workers, rc;
};

static atomic_int loops_arrived;

static void *important_on_own_loop(void *arg)
{
	struct loop_thread *lt = arg;
	int64_t give_up = rotor_now() + 10 * NS_PER_SEC;

	print_identity(lt->name);
	lt->seen_rt = rotor_runtime_current();
	lt->seen_tid = thread_id();
	lt->seen_worker = rotor_worker_id();
	lt->seen_workers = lt->seen_rt ? rotor_runtime_workers(lt->seen_rt) : -1;
	/* Wait (without blocking the loop) until the other thread's loop runs too, so that
	 * "each thread has its own loop" is checked on loops that are alive together. */
	atomic_fetch_add(&loops_arrived, 1);
	while (atomic_load(&loops_arrived) < 2 && rotor_now() < give_up)
		rotor_sleep(NS_PER_MS);
	/* await asyncio.sleep(random.randint(1, 5)) */
	rotor_sleep(ex_seconds((double)(1 + rand_r(&lt->seed) % 5)));
	return NULL;
}

static void *launch_event_loop(void *arg)
{
	struct loop_thread *lt = arg;
	struct rotor_config one = cfg;

	one.workers = 1;
	/* Two independent 1-worker runtimes would both pin their worker 0 to CPU 0. */
	one.flags |= ROTOR_NO_PIN;
	pthread_setname_np(pthread_self(), lt->name);
	lt->rc = rotor_run(&one, important_on_own_loop, lt, NULL);
	return NULL;
}

static void cmd_loop_per_thread(void)
{
	struct loop_thread lts[2] = {{.name = "Thread-1", .seed = 1},
	                             {.name = "Thread-2", .seed = 2}};

	for (int i = 0; i < 2; i++)
		if (pthread_create(&lts[i].thread, NULL, launch_event_loop, &lts[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(EX_FAILED);
		}
	pthread_setname_np(pthread_self(), "MainThread");
	print_identity("MainThread");
	if (rotor_runtime_current() != NULL || rotor_worker_id() != -EPERM)
		ex_fail("the main thread runs no loop, yet rotor_runtime_current() = %p, "
		        "rotor_worker_id() = %d",
		        (void *)rotor_runtime_current(), rotor_worker_id());
	for (int i = 0; i < 2; i++)
		pthread_join(lts[i].thread, NULL);
	for (int i = 0; i < 2; i++) {
		EX_CHECK(lts[i].rc);
		if (!lts[i].seen_rt || lts[i].seen_worker != 0 || lts[i].seen_workers != 1)
			ex_fail("%s: loop %p, worker %d of %d (expected its own 1-worker loop)",
			        lts[i].name, (void *)lts[i].seen_rt, lts[i].seen_worker,
			        lts[i].seen_workers);
	}
	if (lts[0].seen_rt == lts[1].seen_rt)
		ex_fail("both threads ran on the same loop %p", (void *)lts[0].seen_rt);
	if (lts[0].seen_tid == lts[1].seen_tid || lts[0].seen_tid == thread_id())
		ex_fail("the loops did not run on their own threads");
	printf("distinct_loops=%d\n", lts[0].seen_rt != lts[1].seen_rt);
}

/* ---- callbacks -------------------------------------------------------------------------- */

struct callbacks {
	struct rotor_future *future;
	int64_t soon_at, later_at, resolved_at;
	long coro_tid, soon_tid, later_tid;
	int soon_worker, later_worker;
	bool soon_in_task, later_in_task;
	int later_sleep_rc; /* rotor_sleep() inside a callback: must be -EPERM */
	bool cancelled_ran;
};

static void soon_callback(void *arg)
{
	struct callbacks *cb = arg;

	cb->soon_at = rotor_now();
	cb->soon_tid = thread_id();
	cb->soon_worker = rotor_worker_id();
	cb->soon_in_task = rotor_current() != NULL;
	printf("call_soon callback ran at %.3f\n", ex_elapsed());
}

/* def resolver(future): time.sleep(2); future.set_result(None) */
static void resolver(void *arg)
{
	struct callbacks *cb = arg;

	cb->later_at = rotor_now();
	cb->later_tid = thread_id();
	cb->later_worker = rotor_worker_id();
	cb->later_in_task = rotor_current() != NULL;
	cb->later_sleep_rc = rotor_sleep(1);
	print_identity("resolver (call_later callback)");
	ex_block(ex_seconds(2.0));
	cb->resolved_at = rotor_now();
	if (rotor_future_set(cb->future, (void *)"resolved") < 0)
		ex_fail("rotor_future_set failed");
}

static void never_callback(void *arg)
{
	((struct callbacks *)arg)->cancelled_ran = true;
}

/* async def coro(): future = Future(); loop.call_later(5, resolver, future); await future */
static void *callbacks_coro(void *arg)
{
	struct callbacks *cb = arg;
	struct rotor_timer *never;
	int64_t start = rotor_now();
	void *value = NULL;
	int rc;

	cb->coro_tid = thread_id();
	EX_CHECK(rotor_future_create(&cb->future));
	EX_CHECK(rotor_call_soon(soon_callback, cb));
	if (cb->soon_at != 0)
		ex_fail("call_soon ran its callback at once, not at the next loop turn");
	EX_CHECK(rotor_call_later(ex_seconds(5.0), resolver, cb, NULL));
	/* A timer cancelled before it is due never runs. */
	EX_CHECK(rotor_call_later(ex_seconds(1.0), never_callback, cb, &never));
	if (rotor_timer_cancel(never) != 0)
		ex_fail("rotor_timer_cancel of a pending timer did not return 0");
	print_identity("coro");

	rc = rotor_future_wait(cb->future, ROTOR_FOREVER, &value);
	printf("coro exiting at %.3f\n", ex_elapsed());
	if (rc != 0 || value == NULL || strcmp(value, "resolved") != 0)
		ex_fail("await future: rc %d, value %p", rc, value);
	if (rotor_now() - start < ex_seconds(7.0))
		ex_fail("the future resolved after %.3f s, before call_later(5) + sleep(2)",
		        ex_ns_to_s(rotor_now() - start));
	/* The cancelled timer was due at 1 s: had it been kept, it would have run by now. */
	rotor_future_destroy(cb->future);
	return NULL;
}

static void cmd_callbacks(void)
{
	struct callbacks cb = {.later_sleep_rc = 1};

	print_identity("main");
	EX_CHECK(rotor_run(&cfg, callbacks_coro, &cb, NULL));
	printf("main exiting\n");
	if (cb.soon_at == 0 || cb.later_at == 0)
		ex_fail("a callback never ran (call_soon %d, call_later %d)", cb.soon_at != 0,
		        cb.later_at != 0);
	if (cb.soon_at > cb.later_at)
		ex_fail("call_soon ran after call_later(5 s)");
	if (cb.soon_tid != cb.coro_tid || cb.later_tid != cb.coro_tid || cb.soon_worker != 0 ||
	    cb.later_worker != 0)
		ex_fail("callbacks ran off the calling worker (tids %ld %ld, coro %ld)",
		        cb.soon_tid, cb.later_tid, cb.coro_tid);
	if (cb.soon_in_task || cb.later_in_task)
		ex_fail("a callback saw rotor_current() != NULL");
	if (cb.later_sleep_rc != -EPERM)
		ex_fail("rotor_sleep() in a callback returned %d, not -EPERM", cb.later_sleep_rc);
	if (cb.cancelled_ran)
		ex_fail("a cancelled call_later callback ran");
	printf("callbacks_ok=%d\n", ex_exit_code() == EX_OK);
}

/* ---- blocking, blocking_fixed ----------------------------------------------------------- */

struct blocking {
	struct rotor_future *future;
	atomic_bool shutdown;
	int64_t last_alive, max_gap;
	int alive;
	int64_t block_start, block_end;
};

static void *monitor_coro(void *arg)
{
	struct blocking *b = arg;

	while (!atomic_load(&b->shutdown)) {
		int64_t now = rotor_now();

		printf("Alive at %.3f\n", ex_elapsed());
		if (b->alive++ > 0 && now - b->last_alive > b->max_gap)
			b->max_gap = now - b->last_alive;
		b->last_alive = now;
		if (rotor_sleep(ex_seconds(1.0)) < 0)
			break;
	}
	return NULL;
}

/* The seed's blocking resolver: a callback that calls time.sleep(10). */
static void blocking_resolver(void *arg)
{
	struct blocking *b = arg;

	print_identity("resolver (callback, blocks the loop)");
	b->block_start = rotor_now();
	ex_block(ex_seconds(block_s));
	b->block_end = rotor_now();
	rotor_future_set(b->future, NULL);
}

/* The fix: async def resolver(future): await asyncio.sleep(10); future.set_result(None) */
static void *sleeping_resolver(void *arg)
{
	struct blocking *b = arg;

	print_identity("resolver (coroutine, sleeps)");
	b->block_start = rotor_now();
	rotor_sleep(ex_seconds(block_s));
	b->block_end = rotor_now();
	rotor_future_set(b->future, NULL);
	return NULL;
}

struct blocking_run {
	struct blocking b;
	bool fixed;
};

static void *blocking_coro(void *arg)
{
	struct blocking_run *run = arg;
	struct blocking *b = &run->b;
	struct rotor_task *monitor, *resolver_task = NULL;

	printf("coro running\n");
	EX_CHECK(rotor_future_create(&b->future));
	/* monitor_coro_future = asyncio.ensure_future(monitor_coro()) */
	EX_CHECK(rotor_spawn(monitor_coro, b, &monitor));
	if (run->fixed)
		EX_CHECK(rotor_spawn(sleeping_resolver, b, &resolver_task));
	else
		EX_CHECK(rotor_call_later(ex_seconds(5.0), blocking_resolver, b, NULL));
	print_identity("coro");

	EX_CHECK(rotor_future_wait(b->future, ROTOR_FOREVER, NULL));
	rotor_sleep(ex_seconds(2.0));
	atomic_store(&b->shutdown, true);
	EX_CHECK(rotor_join(monitor, NULL));
	if (resolver_task)
		EX_CHECK(rotor_join(resolver_task, NULL));
	rotor_future_destroy(b->future);
	return NULL;
}

static void cmd_blocking(bool fixed)
{
	struct blocking_run run = {.fixed = fixed};
	struct rotor_config one = cfg;
	int64_t period = ex_seconds(1.0), block = ex_seconds(block_s);

	/* The seed runs everything on one loop: one worker, so the stall is the whole loop's. */
	one.workers = 1;
	print_identity("main");
	EX_CHECK(rotor_run(&one, blocking_coro, &run, NULL));
	printf("main exiting\n");
	printf("alive_messages=%d\n", run.b.alive);
	printf("resolver_time=%.3f\n", ex_ns_to_s(run.b.block_end - run.b.block_start));
	printf("alive_period=%.3f\n", ex_ns_to_s(period));
	printf("max_alive_gap=%.3f\n", ex_ns_to_s(run.b.max_gap));
	if (run.b.alive < 2)
		ex_fail("only %d Alive messages", run.b.alive);
	if (run.b.block_end - run.b.block_start < block)
		ex_fail("the resolver took %.3f s, less than %.3f s",
		        ex_ns_to_s(run.b.block_end - run.b.block_start), ex_ns_to_s(block));
	if (!fixed && run.b.max_gap < block)
		ex_fail("the blocking callback should have silenced the monitor for %.3f s, "
		        "but the largest gap was %.3f s",
		        ex_ns_to_s(block), ex_ns_to_s(run.b.max_gap));
	/* Generous bound: the point is "about one period", against "the whole block". */
	if (fixed && run.b.max_gap >= period + (block - period) / 2)
		ex_fail("with a sleeping resolver the monitor stalled for %.3f s (period %.3f s)",
		        ex_ns_to_s(run.b.max_gap), ex_ns_to_s(period));
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(const char *prog)
{
	fprintf(
	    stderr,
	    "usage: %s SUBCOMMAND [--scale F] [--workers N] [--block S]\n"
	    "  SUBCOMMAND: run | run_until_complete | loop_per_thread | callbacks |\n"
	    "              blocking | blocking_fixed\n"
	    "  --scale F    multiply every duration by F (default 1)\n"
	    "  --workers N  workers for run, run_until_complete, callbacks (default: per CPU)\n"
	    "  --block S    seconds the resolver blocks or sleeps, before scaling (default 10)\n",
	    prog);
	exit(EX_USAGE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"scale", required_argument, NULL, 's'},
	    {"workers", required_argument, NULL, 'w'},
	    {"block", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cmd;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			ex_scale = ex_parse_double("--scale", optarg, 0.0);
			break;
		case 'w':
			cfg.workers = (unsigned)ex_parse_long("--workers", optarg, 0);
			break;
		case 'b':
			block_s = ex_parse_double("--block", optarg, 0.0);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind + 1 != argc)
		usage(argv[0]);
	cmd = argv[optind];
	ex_init();

	if (strcmp(cmd, "run") == 0)
		cmd_run();
	else if (strcmp(cmd, "run_until_complete") == 0)
		cmd_run_until_complete();
	else if (strcmp(cmd, "loop_per_thread") == 0)
		cmd_loop_per_thread();
	else if (strcmp(cmd, "callbacks") == 0)
		cmd_callbacks();
	else if (strcmp(cmd, "blocking") == 0)
		cmd_blocking(false);
	else if (strcmp(cmd, "blocking_fixed") == 0)
		cmd_blocking(true);
	else
		usage(argv[0]);
	return ex_exit_code();
}
