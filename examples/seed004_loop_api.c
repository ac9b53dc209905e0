/*
 * Seed 004, the event-loop API tour: asyncio.run(main()), new_event_loop(), is_running() /
 * is_closed(), get_event_loop() / get_running_loop(), run_until_complete(), and running
 * several coroutines at once with loop.create_task() + asyncio.gather().
 *
 *   asyncio.run(main())               rotor_run()
 *   asyncio.new_event_loop()          rotor_runtime_create()
 *   loop.is_running(), is_closed()    rotor_runtime_state() == ROTOR_RUNNING, ROTOR_STOPPED
 *   asyncio.get_running_loop()        rotor_runtime_current() inside a coroutine (NULL on a
 *                                     thread that runs no loop)
 *   loop.run_until_complete(coro)     rotor_call()
 *   loop.create_task(), gather()      rotor_spawn() with handles, rotor_join() each in order
 *   loop.stop(), loop.close()         rotor_runtime_stop(), rotor_runtime_destroy()
 *
 * display_nums() prints 1..5 and display_letters() a..e, sleeping 0.5 s after each. Awaited
 * one after the other they print in two blocks; as two tasks on one loop they interleave and
 * take half the time. Every step checks itself; exit 0 only if all held.
 *
 *   seed004_loop_api [--scale F] [--workers N]
 */
#include "example.h"

#include <getopt.h>
#include <stdbool.h>

#define ITEMS 5

/* What the display coroutines printed, in order: written only by tasks of one worker at a
 * time, and read by the main thread after rotor_call() returned. */
static char printed[4 * ITEMS + 1];
static int nprinted;

static void emit(char c)
{
	printf("%c\n", c);
	if (nprinted < (int)sizeof(printed) - 1)
		printed[nprinted++] = c;
}

static void reset_printed(void)
{
	nprinted = 0;
	memset(printed, 0, sizeof(printed));
}

/* async def display_nums() */
static void *display_nums(void *arg)
{
	(void)arg;
	for (int i = 0; i < ITEMS; i++) {
		emit((char)('1' + i));
		if (rotor_sleep(ex_seconds(0.5)) < 0)
			return NULL;
	}
	return (void *)"nums";
}

/* async def display_letters() */
static void *display_letters(void *arg)
{
	(void)arg;
	for (int i = 0; i < ITEMS; i++) {
		emit((char)('a' + i));
		if (rotor_sleep(ex_seconds(0.5)) < 0)
			return NULL;
	}
	return (void *)"letters";
}

/* async def main(): await display_nums(); await display_letters() -- awaiting a coroutine
 * runs it to its end in the caller's task, so in C it is a plain call. */
static void *main_awaits_both(void *arg)
{
	(void)arg;
	if (!display_nums(NULL) || !display_letters(NULL))
		return NULL;
	return (void *)"main";
}

/* asyncio.get_running_loop() from inside a coroutine. */
static void *get_running_loop(void *arg)
{
	(void)arg;
	return rotor_runtime_current();
}

/* tasks = [loop.create_task(display_nums()), loop.create_task(display_letters())];
 * await asyncio.gather(*tasks) -- results in the order of the tasks. */
static void *gather_both(void *arg)
{
	const char **results = arg;
	struct rotor_task *tasks[2];
	rotor_fn fns[2] = {display_nums, display_letters};

	for (int i = 0; i < 2; i++)
		EX_CHECK(rotor_spawn(fns[i], NULL, &tasks[i]));
	for (int i = 0; i < 2; i++) {
		void *r = NULL;

		EX_CHECK(rotor_join(tasks[i], &r));
		results[i] = r;
	}
	return (void *)"gathered";
}

static const char *state_name(int state)
{
	switch (state) {
	case ROTOR_RUNNING:
		return "running";
	case ROTOR_STOPPING:
		return "stopping";
	case ROTOR_STOPPED:
		return "stopped";
	default:
		return "?";
	}
}

static void print_loop_state(struct rotor_runtime *rt)
{
	int st = rotor_runtime_state(rt);

	printf("loop %p: is_running=%s is_closed=%s (%s)\n", (void *)rt,
	       st == ROTOR_RUNNING ? "True" : "False", st == ROTOR_STOPPED ? "True" : "False",
	       state_name(st));
}

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s [--scale F] [--workers N]\n"
	        "  --scale F    multiply every duration by F (default 1)\n"
	        "  --workers N  workers (default: one per CPU)\n",
	        prog);
	exit(EX_USAGE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"scale", required_argument, NULL, 's'},
	    {"workers", required_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct rotor_config cfg = {0};
	int64_t one, start, took;
	void *r = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			ex_scale = ex_parse_double("--scale", optarg, 0.0);
			break;
		case 'w':
			cfg.workers = (unsigned)ex_parse_long("--workers", optarg, 0);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	ex_init();
	one = ex_seconds(0.5) * ITEMS;

	/* 1. asyncio.run(main()): create, run, close, all in one call. */
	printf("== asyncio.run(main())\n");
	reset_printed();
	start = rotor_now();
	EX_CHECK(rotor_run(&cfg, main_awaits_both, NULL, &r));
	took = rotor_now() - start;
	printf("printed=%s took=%.3f\n", printed, ex_ns_to_s(took));
	if (!r || strcmp(r, "main") != 0 || strcmp(printed, "12345abcde") != 0 || took < 2 * one)
		ex_fail("asyncio.run(main()): result %s, printed '%s' in %.3f s",
		        r ? (char *)r : "NULL", printed, ex_ns_to_s(took));

	/* 2. loop = asyncio.new_event_loop(); is_running(), is_closed(). */
	printf("== new_event_loop\n");
	struct rotor_runtime *loop;
	EX_CHECK(rotor_runtime_create(&cfg, &loop));
	print_loop_state(loop);
	if (rotor_runtime_state(loop) != ROTOR_RUNNING)
		ex_fail("a new runtime is not running");

	/* 3. get_event_loop() on the main thread, get_running_loop() in a coroutine. */
	printf("== get_running_loop\n");
	if (rotor_runtime_current() != NULL)
		ex_fail("the main thread runs no loop, yet rotor_runtime_current() = %p",
		        (void *)rotor_runtime_current());
	EX_CHECK(rotor_call(loop, ROTOR_WORKER_ANY, get_running_loop, NULL, &r));
	printf("running loop inside a coroutine: %p (the loop: %p) same=%d\n", r, (void *)loop,
	       r == loop);
	if (r != loop)
		ex_fail("get_running_loop() in a coroutine gave %p, not the loop %p", r,
		        (void *)loop);

	/* 4. loop.run_until_complete(display_nums()) */
	printf("== run_until_complete(display_nums())\n");
	reset_printed();
	start = rotor_now();
	EX_CHECK(rotor_call(loop, ROTOR_WORKER_ANY, display_nums, NULL, &r));
	took = rotor_now() - start;
	if (!r || strcmp(r, "nums") != 0 || strcmp(printed, "12345") != 0 || took < one)
		ex_fail("run_until_complete(display_nums()): result %s, printed '%s' in %.3f s",
		        r ? (char *)r : "NULL", printed, ex_ns_to_s(took));

	/* 5. create_task x 2 + gather, run until complete. */
	printf("== create_task + gather\n");
	const char *results[2] = {NULL, NULL};
	reset_printed();
	start = rotor_now();
	EX_CHECK(rotor_call(loop, ROTOR_WORKER_ANY, gather_both, results, &r));
	took = rotor_now() - start;
	/* Interleaved: a letter came before the last number. */
	int first_letter = (int)(strchr(printed, 'a') ? strchr(printed, 'a') - printed : -1);
	int last_num = (int)(strchr(printed, '5') ? strchr(printed, '5') - printed : -1);
	bool interleaved = first_letter >= 0 && last_num >= 0 && first_letter < last_num;
	printf("printed=%s interleaved=%d took=%.3f one_coroutine=%.3f gather=[%s, %s]\n", printed,
	       interleaved, ex_ns_to_s(took), ex_ns_to_s(one), results[0] ? results[0] : "NULL",
	       results[1] ? results[1] : "NULL");
	if (nprinted != 2 * ITEMS || !interleaved)
		ex_fail("the gathered tasks did not interleave: printed '%s'", printed);
	if (!results[0] || strcmp(results[0], "nums") != 0 || !results[1] ||
	    strcmp(results[1], "letters") != 0)
		ex_fail("gather results out of order");
	if (took < one || took >= one + one * 3 / 4)
		ex_fail("gather took %.3f s; concurrent tasks should take about %.3f s",
		        ex_ns_to_s(took), ex_ns_to_s(one));

	/* 6. loop.stop(); loop.close() */
	printf("== stop, close\n");
	EX_CHECK(rotor_runtime_stop(loop));
	int64_t give_up = rotor_now() + 10 * NS_PER_SEC;
	while (rotor_runtime_state(loop) != ROTOR_STOPPED && rotor_now() < give_up)
		ex_block(NS_PER_MS);
	print_loop_state(loop);
	if (rotor_runtime_state(loop) != ROTOR_STOPPED)
		ex_fail("the runtime did not reach ROTOR_STOPPED after rotor_runtime_stop()");
	struct rotor_future *late = NULL;
	int rc = rotor_submit(loop, ROTOR_WORKER_ANY, display_nums, NULL, &late);
	if (rc != -ESHUTDOWN)
		ex_fail("a closed loop accepted work: rotor_submit returned %d", rc);
	if (rc == 0)
		rotor_future_destroy(late);
	EX_CHECK(rotor_runtime_destroy(loop));
	printf("loop_api_ok=%d\n", ex_exit_code() == EX_OK);
	return ex_exit_code();
}
