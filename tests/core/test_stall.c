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
