/*
 * The stall detector: a task (or a callback) that holds its worker past the threshold is
 * reported once, with its name, worker, duration and a backtrace naming the function it
 * is stuck in; it keeps running; a task that yields is never reported; the detector can be
 * turned off.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rotor.h>

#define MS 1000000LL

static char captured[16384];

/* Run fn on a runtime with stderr sent to a file, then read that file into captured. */
static void run_capturing(struct rotor_config *cfg, rotor_fn fn, void *arg)
{
	fflush(stderr);
	int saved = dup(2);
	char path[] = "/tmp/rotor-stall-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	dup2(fd, 2);
	int r = rotor_run(cfg, fn, arg, NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, captured, sizeof(captured) - 1, 0);
	captured[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	cr_assert_eq(r, 0);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static atomic_int finished;
static struct rotor_worker_stats stats;

/* Not static: the backtrace names it through the dynamic symbol table (-rdynamic). */
/* Spends its time in its own loop, reading the clock only now and then: a signal that lands
 * on the first instruction of a called function (before it saves the frame pointer) hides
 * its caller from a frame-pointer walk, and the backtrace must show this function. */
__attribute__((noinline)) void rotor_test_spin_without_yielding(int64_t ns)
{
	int64_t end = rotor_now() + ns;
	volatile unsigned spin = 0;
	while (rotor_now() < end)
		for (int i = 0; i < 20000; i++)
			spin++;
}

static void *hog(void *arg)
{
	rotor_test_spin_without_yielding((int64_t)(intptr_t)arg * MS);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void *polite(void *arg)
{
	int64_t end = rotor_now() + (int64_t)(intptr_t)arg * MS;
	while (rotor_now() < end) {
		rotor_test_spin_without_yielding(5 * MS);
		rotor_yield();
	}
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void *main_spawns(void *arg)
{
	rotor_fn fn = arg;
	struct rotor_task_attr a = {.on = ROTOR_ON_SELF, .name = "the-hog"};
	struct rotor_task *t;
	if (rotor_spawn_attr(&a, fn, (void *)(intptr_t)300, &t) < 0 || rotor_join(t, NULL) < 0)
		return NULL;
	rotor_worker_stats(rotor_runtime_current(), 0, &stats);
	return NULL;
}

Test(stall, a_task_that_never_yields_is_reported_once_with_a_backtrace, .timeout = 20)
{
	struct rotor_config cfg = {.workers = 1, .stall_ms = 50};
	atomic_store(&finished, 0);
	run_capturing(&cfg, main_spawns, hog);
	cr_assert_eq(atomic_load(&finished), 1, "the stalled task kept running to its end");
	cr_assert_eq(count(captured, "stall: task the-hog has held worker 0 for at least"), 1,
	             "stderr: %s", captured);
	cr_assert(strstr(captured, "rotor_test_spin_without_yielding"), "no backtrace: %s",
	          captured);
	cr_assert_eq(stats.stalls, 1);
}

Test(stall, a_task_that_yields_is_not_reported, .timeout = 20)
{
	struct rotor_config cfg = {.workers = 1, .stall_ms = 50};
	atomic_store(&finished, 0);
	run_capturing(&cfg, main_spawns, polite);
	cr_assert_eq(atomic_load(&finished), 1);
	cr_assert_eq(count(captured, "stall:"), 0, "stderr: %s", captured);
	cr_assert_eq(stats.stalls, 0);
}

Test(stall, the_detector_can_be_turned_off, .timeout = 20)
{
	struct rotor_config cfg = {.workers = 1, .stall_ms = 50, .flags = ROTOR_NO_STALL_CHECK};
	atomic_store(&finished, 0);
	run_capturing(&cfg, main_spawns, hog);
	cr_assert_eq(atomic_load(&finished), 1);
	cr_assert_eq(count(captured, "stall:"), 0, "stderr: %s", captured);
}

static void blocking_callback(void *arg)
{
	rotor_test_spin_without_yielding(200 * MS);
	atomic_fetch_add(&finished, 1);
}

static void *main_calls_back(void *arg)
{
	rotor_call_soon(blocking_callback, NULL);
	rotor_sleep(250 * MS);
	return NULL;
}

Test(stall, a_callback_that_blocks_the_loop_is_reported, .timeout = 20)
{
	struct rotor_config cfg = {.workers = 1, .stall_ms = 50};
	atomic_store(&finished, 0);
	run_capturing(&cfg, main_calls_back, NULL);
	cr_assert_eq(atomic_load(&finished), 1);
	cr_assert_eq(count(captured, "stall: a callback has held worker 0"), 1, "stderr: %s",
	             captured);
}

/* ---- rotor's messages through a log hook ---- */

static char logged[16384];
static atomic_int log_calls;
static int log_level_seen;

static void capture_log(void *arg, int level, const char *msg)
{
	cr_assert_eq(arg, (void *)logged);
	atomic_fetch_add(&log_calls, 1);
	log_level_seen = level;
	strncat(logged, msg, sizeof(logged) - strlen(logged) - 1);
}

Test(stall, a_log_hook_gets_the_report_in_one_message_and_stderr_nothing, .timeout = 20)
{
	struct rotor_config cfg = {
	    .workers = 1, .stall_ms = 50, .log = capture_log, .log_arg = logged};
	logged[0] = 0;
	atomic_store(&log_calls, 0);
	run_capturing(&cfg, main_spawns, hog);
	cr_assert_eq(atomic_load(&log_calls), 1, "log: %s", logged);
	cr_assert_eq(log_level_seen, ROTOR_LOG_WARNING);
	cr_assert(strstr(logged, "stall: task the-hog has held worker 0 for at least"), "log: %s",
	          logged);
	cr_assert(strstr(logged, "\nrotor_test_spin_without_yielding") ||
	              strstr(logged, "(rotor_test_spin_without_yielding+"),
	          "the backtrace belongs to the message: %s", logged);
	cr_assert_null(strstr(captured, "stall"), "stderr: %s", captured);
}

Test(stall, a_log_level_below_warning_drops_the_report, .timeout = 20)
{
	struct rotor_config cfg = {.workers = 1,
	                           .stall_ms = 50,
	                           .log = capture_log,
	                           .log_arg = logged,
	                           .log_level = ROTOR_LOG_ERROR};
	logged[0] = 0;
	atomic_store(&log_calls, 0);
	run_capturing(&cfg, main_spawns, hog);
	cr_assert_eq(atomic_load(&log_calls), 0, "log: %s", logged);
	cr_assert_eq(stats.stalls, 1, "the stall was still counted");
}

Test(stall, a_log_level_out_of_range_is_einval, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1, .log_level = ROTOR_LOG_DEBUG + 1};
	cr_assert_eq(rotor_run(&cfg, main_spawns, hog, NULL), -EINVAL);
	cfg.log_level = -1;
	cr_assert_eq(rotor_run(&cfg, main_spawns, hog, NULL), -EINVAL);
}

/* ---- a stop that tasks outlive ---- */

static void *blocks_400ms(void *arg)
{
	(void)arg;
	struct timespec ts = {0, 400 * 1000 * 1000};
	nanosleep(&ts, NULL);
	return NULL;
}

/* Not static: the report names it through the dynamic symbol table. Its offload wait takes
 * no cancellation, so the task outlives the stop by the length of the call. */
__attribute__((noinline)) void *rotor_test_waits_in_offload(void *arg)
{
	(void)arg;
	void *r = NULL;
	rotor_offload(blocks_400ms, NULL, &r);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void *main_leaves_a_stubborn_task(void *arg)
{
	(void)arg;
	struct rotor_task_attr a = {.name = "stubborn"};
	rotor_spawn_attr(&a, rotor_test_waits_in_offload, NULL, NULL);
	rotor_sleep(20 * MS); /* it is in its offload wait now; returning begins the stop */
	return NULL;
}

Test(stall, tasks_that_outlive_a_stop_are_reported_with_where_they_wait, .timeout = 20)
{
	struct rotor_config cfg = {
	    .workers = 1, .stop_report_ms = 100, .log = capture_log, .log_arg = logged};
	logged[0] = 0;
	atomic_store(&log_calls, 0);
	atomic_store(&finished, 0);
	run_capturing(&cfg, main_leaves_a_stubborn_task, NULL);
	cr_assert_eq(atomic_load(&finished), 1, "the task still ran to its end");
	cr_assert(strstr(logged, "stop: 1 task(s) still alive 100 ms after the stop began"),
	          "log: %s", logged);
	cr_assert(strstr(logged, "task stubborn: waiting"), "log: %s", logged);
	cr_assert(strstr(logged, "rotor_test_waits_in_offload"), "where it waits: %s", logged);
	int reports = atomic_load(&log_calls);
	cr_assert(reports >= 2 && reports <= 5, "one report per 100 ms of the 400: %d", reports);
}
