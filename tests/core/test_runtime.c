/*
 * Runtime life cycle: rotor_run and rotor_runtime_create/stop/destroy, the runtime and
 * worker queries, configuration errors and the per-worker counters. Checks made on workers
 * are recorded and asserted by the test's own thread once the runtime is gone.
 */
#include <criterion/criterion.h>
#include <rotor.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int wait_state(struct rotor_runtime *rt, int state, int64_t timeout_ns)
{
	int64_t deadline = rotor_now() + timeout_ns;
	while (rotor_runtime_state(rt) != state) {
		if (rotor_now() > deadline)
			return -ETIMEDOUT;
		pause_ms(1);
	}
	return 0;
}

/* Open fds and threads of this process, to check that a runtime leaves none behind. An
 * exited thread may linger in /proc for a moment after its join, hence the polling. */
struct census {
	int fds, threads;
};

static struct census census_take(void)
{
	return (struct census){count_dir("/proc/self/fd"), count_dir("/proc/self/task")};
}

static void assert_census_back_to(struct census before)
{
	struct census now = census_take();
	for (int i = 0; i < 2000 && (now.fds != before.fds || now.threads != before.threads); i++) {
		pause_ms(1);
		now = census_take();
	}
	cr_assert_eq(now.fds, before.fds, "fds leaked: %d before, %d after", before.fds, now.fds);
	cr_assert_eq(now.threads, before.threads, "threads leaked: %d before, %d after",
	             before.threads, now.threads);
}

static void *returns_arg_plus_one(void *arg)
{
	return P(U(arg) + 1);
}

/* Encodes the worker that ran the task with the argument: (arg << 8) | worker. */
static void *returns_arg_and_worker(void *arg)
{
	return P((U(arg) << 8) | (uintptr_t)(rotor_worker_id() & 0xff));
}

/* ---- rotor_run ----------------------------------------------------------------------- */

Test(runtime, run_returns_the_main_tasks_result, .timeout = 10)
{
	struct census before = census_take();
	struct rotor_config cfg = {.workers = 1};
	void *res = NULL;
	int rc = rotor_run(&cfg, returns_arg_plus_one, P(41), &res);
	cr_assert_eq(rc, 0, "rotor_run: %d", rc);
	cr_assert_eq(U(res), 42, "result %zu", (size_t)U(res));
	assert_census_back_to(before);
}

Test(runtime, run_accepts_a_null_result_pointer, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1};
	cr_assert_eq(rotor_run(&cfg, returns_arg_plus_one, NULL, NULL), 0);
}

static pthread_t run_caller;

static void *main_checks_it_is_worker_0_on_the_caller(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_worker_id(), 0);
	CHECK(pthread_equal(pthread_self(), run_caller));
	CHECK(rotor_runtime_current() != NULL);
	CHECK(rotor_current() != NULL);
	CHECK_EQ(rotor_runtime_state(rotor_runtime_current()), ROTOR_RUNNING);
	return P(5);
}

Test(runtime, run_makes_the_calling_thread_worker_0, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 2};
	void *res = NULL;
	run_caller = pthread_self();
	cr_assert_eq(rotor_run(&cfg, main_checks_it_is_worker_0_on_the_caller, NULL, &res), 0);
	cr_assert_eq(U(res), 5);
	ASSERT_CHECKS();
	cr_assert_eq(rotor_worker_id(), -EPERM, "still a worker after rotor_run returned");
	cr_assert_null(rotor_runtime_current());
}

struct visit {
	int workers;
	atomic_int seen[8];
};

static void *record_worker_id(void *arg)
{
	atomic_store((atomic_int *)arg, rotor_worker_id());
	return P(rotor_worker_id() + 100);
}

static void *main_visits_every_worker(void *arg)
{
	struct visit *v = arg;
	struct rotor_task *h[8];
	CHECK_EQ(rotor_runtime_workers(rotor_runtime_current()), v->workers);
	for (int w = 0; w < v->workers; w++) {
		struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(w)};
		int rc = rotor_spawn_attr(&attr, record_worker_id, &v->seen[w], &h[w]);
		CHECK_EQ(rc, 0);
		if (rc == 0)
			CHECK_EQ(rotor_task_worker(h[w]), w);
		else
			h[w] = NULL;
	}
	for (int w = 0; w < v->workers; w++) {
		void *res = NULL;
		if (!h[w])
			continue;
		CHECK_EQ(rotor_join(h[w], &res), 0);
		CHECK_EQ(U(res), w + 100);
	}
	return P(v->workers);
}

static void run_with_workers(int n)
{
	struct census before = census_take();
	struct visit v = {.workers = n};
	struct rotor_config cfg = {.workers = (unsigned)n};
	void *res = NULL;
	for (int w = 0; w < 8; w++)
		atomic_init(&v.seen[w], -1);
	int rc = rotor_run(&cfg, main_visits_every_worker, &v, &res);
	cr_assert_eq(rc, 0, "rotor_run with %d workers: %d", n, rc);
	cr_assert_eq(U(res), (uintptr_t)n);
	ASSERT_CHECKS();
	for (int w = 0; w < n; w++)
		cr_assert_eq(atomic_load(&v.seen[w]), w, "task for worker %d ran on %d", w,
		             atomic_load(&v.seen[w]));
	assert_census_back_to(before);
}

Test(runtime, run_with_one_worker, .timeout = 10)
{
	run_with_workers(1);
}

Test(runtime, run_with_two_workers, .timeout = 10)
{
	run_with_workers(2);
}

Test(runtime, run_with_more_workers_than_cpus, .timeout = 10)
{
	run_with_workers(3);
}

static void *main_reports_workers(void *arg)
{
	(void)arg;
	return P(rotor_runtime_workers(rotor_runtime_current()));
}

Test(runtime, zero_workers_means_one_per_online_cpu, .timeout = 10)
{
	struct rotor_config cfg = {0};
	void *res = NULL;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cr_assert_eq(rotor_run(&cfg, main_reports_workers, NULL, &res), 0);
	cr_assert_eq((long)U(res), cpus, "%ld workers for %ld online CPUs", (long)U(res), cpus);
}

static void *main_uses_every_fallback(void *arg)
{
	(void)arg;
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *h;
	void *res = NULL;
	CHECK_EQ(rotor_spawn_attr(&attr, returns_arg_and_worker, P(3), &h), 0);
	CHECK_EQ(rotor_join(h, &res), 0);
	CHECK_EQ(U(res), (3 << 8) | 1);
	CHECK_EQ(rotor_sleep(1 * MS), 0);
	return P(9);
}

Test(runtime, every_fallback_flag_together_still_runs, .timeout = 10)
{
	struct rotor_config cfg = {
	    .workers = 2,
	    .flags = ROTOR_NO_PIN | ROTOR_NO_DEFER_TASKRUN | ROTOR_NO_SINGLE_ISSUER |
	             ROTOR_NO_RINGLESS_MSG | ROTOR_NO_GUARD_MADVISE | ROTOR_NO_COOP_TASKRUN,
	};
	void *res = NULL;
	cr_assert_eq(rotor_run(&cfg, main_uses_every_fallback, NULL, &res), 0);
	cr_assert_eq(U(res), 9);
	ASSERT_CHECKS();
}

Test(runtime, rotor_now_is_clock_monotonic, .timeout = 10)
{
	struct timespec ts;
	int64_t a = rotor_now();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t mono = (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
	pause_ms(2);
	int64_t b = rotor_now();
	cr_assert_geq(mono, a);
	cr_assert_lt(mono - a, 1 * SEC);
	cr_assert_geq(b - a, 2 * MS, "2 ms passed, rotor_now moved %lld ns", (long long)(b - a));
}

Test(runtime, rotor_disable_environment_still_runs, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 2};
	void *res = NULL;
	cr_assert_eq(
	    setenv("ROTOR_DISABLE",
	           "pin,defer_taskrun,single_issuer,ringless_msg,guard_madvise,coop_taskrun,"
	           "no_such_feature",
	           1),
	    0);
	cr_assert_eq(rotor_run(&cfg, main_uses_every_fallback, NULL, &res), 0);
	cr_assert_eq(U(res), 9);
	struct rotor_runtime *rt = NULL;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	cr_assert_eq(rotor_call(rt, 1, returns_arg_plus_one, P(1), &res), 0);
	cr_assert_eq(U(res), 2);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
}

/* ---- rotor_runtime_create / submit / stop / destroy ---------------------------------- */

Test(runtime, create_submit_destroy, .timeout = 10)
{
	struct census before = census_take();
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt = NULL;
	int rc = rotor_runtime_create(&cfg, &rt);
	cr_assert_eq(rc, 0, "rotor_runtime_create: %d", rc);
	cr_assert_not_null(rt);
	cr_assert_eq(rotor_runtime_workers(rt), 2);
	cr_assert_eq(rotor_runtime_state(rt), ROTOR_RUNNING);
	for (int w = 0; w < 2; w++) {
		struct rotor_future *f = NULL;
		void *res = NULL;
		rc = rotor_submit(rt, w, returns_arg_and_worker, P(7 + w), &f);
		cr_assert_eq(rc, 0, "rotor_submit to worker %d: %d", w, rc);
		rc = rotor_future_wait(f, rotor_now() + 5 * SEC, &res);
		cr_assert_eq(rc, 0, "rotor_future_wait: %d", rc);
		cr_assert_eq(U(res), ((7u + w) << 8) | (unsigned)w, "result %#zx", (size_t)U(res));
		cr_assert_eq(rotor_future_done(f), 1);
		rotor_future_destroy(f);
	}
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	assert_census_back_to(before);
}

Test(runtime, create_and_destroy_without_any_work, .timeout = 10)
{
	struct census before = census_take();
	for (int i = 0; i < 3; i++) {
		struct rotor_config cfg = {.workers = 2};
		struct rotor_runtime *rt = NULL;
		cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
		cr_assert_eq(rotor_runtime_destroy(rt), 0);
	}
	assert_census_back_to(before);
}

Test(runtime, two_runtimes_side_by_side, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1};
	struct rotor_runtime *a = NULL, *b = NULL;
	void *ra = NULL, *rb = NULL;
	cr_assert_eq(rotor_runtime_create(&cfg, &a), 0);
	cr_assert_eq(rotor_runtime_create(&cfg, &b), 0);
	cr_assert_neq(a, b);
	cr_assert_eq(rotor_call(a, 0, returns_arg_plus_one, P(1), &ra), 0);
	cr_assert_eq(rotor_call(b, 0, returns_arg_plus_one, P(2), &rb), 0);
	cr_assert_eq(U(ra), 2);
	cr_assert_eq(U(rb), 3);
	cr_assert_eq(rotor_runtime_destroy(a), 0);
	cr_assert_eq(rotor_runtime_destroy(b), 0);
}

Test(runtime, state_goes_from_running_to_stopped, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt = NULL;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	cr_assert_eq(rotor_runtime_state(rt), ROTOR_RUNNING);
	cr_assert_eq(rotor_runtime_stop(rt), 0);
	int st = rotor_runtime_state(rt);
	cr_assert(st == ROTOR_STOPPING || st == ROTOR_STOPPED, "state after stop: %d", st);
	cr_assert_eq(wait_state(rt, ROTOR_STOPPED, 5 * SEC), 0, "never STOPPED (state %d)",
	             rotor_runtime_state(rt));
	cr_assert_eq(rotor_runtime_stop(rt), 0, "stop is idempotent");
	cr_assert_eq(rotor_runtime_state(rt), ROTOR_STOPPED);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

/* ---- rotor_runtime_current / rotor_worker_id ------------------------------------------ */

struct whoami {
	atomic_int worker;
	_Atomic(struct rotor_runtime *) rt;
	atomic_int task_is_null;
	atomic_int done;
};

static void *task_whoami(void *arg)
{
	struct whoami *w = arg;
	atomic_store(&w->rt, rotor_runtime_current());
	atomic_store(&w->worker, rotor_worker_id());
	atomic_store(&w->task_is_null, rotor_current() == NULL);
	return NULL;
}

static void callback_whoami(void *arg)
{
	struct whoami *w = arg;
	task_whoami(arg);
	atomic_store(&w->done, 1);
}

static void *foreign_whoami(void *arg)
{
	task_whoami(arg);
	return NULL;
}

Test(runtime, current_and_worker_id_on_and_off_workers, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt = NULL;

	cr_assert_null(rotor_runtime_current(), "no runtime yet, yet not NULL");
	cr_assert_eq(rotor_worker_id(), -EPERM);

	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	cr_assert_null(rotor_runtime_current(), "the creating thread is no worker");
	cr_assert_eq(rotor_worker_id(), -EPERM);

	for (int w = 0; w < 2; w++) {
		struct whoami who = {.worker = -100};
		cr_assert_eq(rotor_call(rt, w, task_whoami, &who, NULL), 0);
		cr_assert_eq(atomic_load(&who.rt), rt, "task: rotor_runtime_current");
		cr_assert_eq(atomic_load(&who.worker), w, "task: rotor_worker_id");
		cr_assert_eq(atomic_load(&who.task_is_null), 0, "task: rotor_current is NULL");

		struct whoami cb = {.worker = -100};
		cr_assert_eq(rotor_call_soon_threadsafe(rt, w, callback_whoami, &cb), 0);
		cr_assert_eq(wait_at_least(&cb.done, 1, 5 * SEC), 0, "callback never ran");
		cr_assert_eq(atomic_load(&cb.rt), rt, "callback: rotor_runtime_current");
		cr_assert_eq(atomic_load(&cb.worker), w, "callback: rotor_worker_id");
		cr_assert_eq(atomic_load(&cb.task_is_null), 1, "callback: rotor_current not NULL");
	}

	struct whoami other = {.worker = -100};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, foreign_whoami, &other), 0);
	pthread_join(th, NULL);
	cr_assert_null(atomic_load(&other.rt), "foreign thread: rotor_runtime_current");
	cr_assert_eq(atomic_load(&other.worker), -EPERM, "foreign thread: rotor_worker_id");
	cr_assert_eq(atomic_load(&other.task_is_null), 1, "foreign thread: rotor_current");

	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

/* ---- stopping with live tasks --------------------------------------------------------- */

#define SLEEPERS 4
static atomic_int sleepers_started;
static atomic_int sleeper_rc[SLEEPERS];

static void *long_sleeper(void *arg)
{
	atomic_fetch_add(&sleepers_started, 1);
	int rc = rotor_sleep(30 * SEC);
	atomic_store(&sleeper_rc[U(arg)], rc);
	return P(U(arg) + 1);
}

static void reset_sleepers(void)
{
	atomic_store(&sleepers_started, 0);
	for (int i = 0; i < SLEEPERS; i++)
		atomic_store(&sleeper_rc[i], 1);
}

static void assert_sleepers_cancelled(void)
{
	for (int i = 0; i < SLEEPERS; i++)
		cr_assert_eq(atomic_load(&sleeper_rc[i]), -ECANCELED,
		             "sleeper %d: rotor_sleep returned %d (1: never returned)", i,
		             atomic_load(&sleeper_rc[i]));
}

static struct rotor_runtime *start_sleepers(struct rotor_future **f)
{
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt = NULL;
	reset_sleepers();
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	for (int i = 0; i < SLEEPERS; i++)
		cr_assert_eq(rotor_submit(rt, i % 2, long_sleeper, P(i), &f[i]), 0);
	cr_assert_eq(wait_at_least(&sleepers_started, SLEEPERS, 5 * SEC), 0,
	             "only %d sleepers started", atomic_load(&sleepers_started));
	return rt;
}

Test(runtime, destroy_cancels_sleeping_tasks, .timeout = 15)
{
	struct census before = census_take();
	struct rotor_future *f[SLEEPERS];
	struct rotor_runtime *rt = start_sleepers(f);
	for (int i = 0; i < SLEEPERS; i++)
		rotor_future_destroy(f[i]);
	int64_t t0 = rotor_now();
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	int64_t took = rotor_now() - t0;
	cr_assert_lt(took, 5 * SEC, "destroy took %lld ms", (long long)(took / MS));
	assert_sleepers_cancelled();
	assert_census_back_to(before);
}

Test(runtime, stop_cancels_sleeping_tasks_and_their_futures, .timeout = 15)
{
	struct rotor_future *f[SLEEPERS];
	struct rotor_runtime *rt = start_sleepers(f);
	cr_assert_eq(rotor_runtime_stop(rt), 0);
	for (int i = 0; i < SLEEPERS; i++) {
		int rc = rotor_future_wait(f[i], rotor_now() + 5 * SEC, NULL);
		cr_assert_eq(rc, -ECANCELED, "future of sleeper %d: %d", i, rc);
		cr_assert_eq(rotor_future_done(f[i]), 1);
		rotor_future_destroy(f[i]);
	}
	cr_assert_eq(wait_state(rt, ROTOR_STOPPED, 5 * SEC), 0, "never STOPPED");
	assert_sleepers_cancelled();
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

static void *main_leaves_sleepers_behind(void *arg)
{
	(void)arg;
	for (int i = 0; i < SLEEPERS; i++) {
		struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(i % 2)};
		CHECK_EQ(rotor_spawn_attr(&attr, long_sleeper, P(i), NULL), 0);
	}
	while (atomic_load(&sleepers_started) < SLEEPERS)
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	return P(77);
}

Test(runtime, run_cancels_tasks_left_when_main_returns, .timeout = 15)
{
	struct rotor_config cfg = {.workers = 2};
	void *res = NULL;
	reset_sleepers();
	int64_t t0 = rotor_now();
	cr_assert_eq(rotor_run(&cfg, main_leaves_sleepers_behind, NULL, &res), 0);
	cr_assert_lt(rotor_now() - t0, 5 * SEC, "rotor_run waited for the sleepers");
	cr_assert_eq(U(res), 77);
	ASSERT_CHECKS();
	assert_sleepers_cancelled();
}

static void *main_stops_its_own_runtime(void *arg)
{
	(void)arg;
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1)};
	CHECK_EQ(rotor_spawn_attr(&attr, long_sleeper, P(0), NULL), 0);
	while (atomic_load(&sleepers_started) < 1)
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(rotor_task_cancelled(), 0);
	CHECK_EQ(rotor_runtime_stop(rt), 0);
	CHECK_EQ(rotor_runtime_state(rt), ROTOR_STOPPING);
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_sleep(20 * SEC), -ECANCELED);
	CHECK(rotor_now() - t0 < 5 * SEC);
	CHECK_EQ(rotor_task_cancelled(), 1);
	return P(123);
}

Test(runtime, main_task_stops_its_own_runtime, .timeout = 15)
{
	struct rotor_config cfg = {.workers = 2};
	void *res = NULL;
	reset_sleepers();
	cr_assert_eq(rotor_run(&cfg, main_stops_its_own_runtime, NULL, &res), 0);
	cr_assert_eq(U(res), 123);
	ASSERT_CHECKS();
	cr_assert_eq(atomic_load(&sleeper_rc[0]), -ECANCELED, "sleeper: %d",
	             atomic_load(&sleeper_rc[0]));
}

static void *task_stops_its_runtime(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_runtime_stop(rotor_runtime_current()), 0);
	CHECK_EQ(rotor_runtime_stop(rotor_runtime_current()), 0);
	CHECK_EQ(rotor_yield(), -ECANCELED);
	return NULL;
}

Test(runtime, submitted_task_stops_its_own_runtime, .timeout = 15)
{
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt = NULL;
	struct rotor_future *f = NULL;
	reset_sleepers();
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	cr_assert_eq(rotor_submit(rt, 0, long_sleeper, P(0), &f), 0);
	cr_assert_eq(wait_at_least(&sleepers_started, 1, 5 * SEC), 0);
	rotor_future_destroy(f);
	cr_assert_eq(rotor_submit(rt, 1, task_stops_its_runtime, NULL, &f), 0);
	cr_assert_eq(wait_state(rt, ROTOR_STOPPED, 5 * SEC), 0, "never STOPPED (state %d)",
	             rotor_runtime_state(rt));
	rotor_future_destroy(f);
	cr_assert_eq(atomic_load(&sleeper_rc[0]), -ECANCELED);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
}

/* ---- configuration errors --------------------------------------------------------------- */

static atomic_int main_ran;

static void *main_marks_ran(void *arg)
{
	(void)arg;
	atomic_store(&main_ran, 1);
	return NULL;
}

Test(runtime, stack_below_minimum_is_einval, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1, .stack_size = ROTOR_STACK_MIN - 1};
	struct rotor_runtime *sentinel = (struct rotor_runtime *)&cfg, *rt = sentinel;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), -EINVAL);
	cr_assert_eq(rt, sentinel, "*out touched on failure");
	cfg.stack_size = 4096;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), -EINVAL);
	cr_assert_eq(rotor_run(&cfg, main_marks_ran, NULL, NULL), -EINVAL);
	cr_assert_eq(atomic_load(&main_ran), 0, "main task ran despite a bad config");
}

static void *child_uses_some_stack(void *arg)
{
	volatile char buf[4096];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)i;
	return P(buf[100] + U(arg));
}

static void *main_spawns_on_small_stacks(void *arg)
{
	(void)arg;
	struct rotor_task *h[16];
	uintptr_t sum = 0;
	for (int i = 0; i < 16; i++)
		CHECK_EQ(rotor_spawn(child_uses_some_stack, P(i), &h[i]), 0);
	for (int i = 0; i < 16; i++) {
		void *res = NULL;
		CHECK_EQ(rotor_join(h[i], &res), 0);
		sum += U(res);
	}
	return P(sum);
}

Test(runtime, stack_of_exactly_the_minimum_works, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1, .stack_size = ROTOR_STACK_MIN};
	void *res = NULL;
	cr_assert_eq(rotor_run(&cfg, main_spawns_on_small_stacks, NULL, &res), 0);
	cr_assert_eq(U(res), 16 * 100 + 120);
	ASSERT_CHECKS();
}

Test(runtime, absurd_stack_size_fails_cleanly, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1, .stack_size = SIZE_MAX / 2};
	struct rotor_runtime *sentinel = (struct rotor_runtime *)&cfg, *rt = sentinel;
	int rc = rotor_runtime_create(&cfg, &rt);
	cr_assert(rc == -EINVAL || rc == -ENOMEM, "create with a huge stack: %d", rc);
	cr_assert_eq(rt, sentinel, "*out touched on failure");
}

Test(runtime, unknown_config_flag_is_einval, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1, .flags = 1u << 31};
	struct rotor_runtime *sentinel = (struct rotor_runtime *)&cfg, *rt = sentinel;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), -EINVAL);
	cr_assert_eq(rt, sentinel, "*out touched on failure");
	cr_assert_eq(rotor_run(&cfg, main_marks_ran, NULL, NULL), -EINVAL);
	cr_assert_eq(atomic_load(&main_ran), 0);
}

/* ---- rotor_worker_stats ---------------------------------------------------------------- */

static void *yields_three_times(void *arg)
{
	for (int i = 0; i < 3; i++)
		CHECK_EQ(rotor_yield(), 0);
	return arg;
}

Test(runtime, worker_stats_count_tasks_messages_and_stacks, .timeout = 20)
{
	enum { N0 = 100, N1 = 200 };
	static struct rotor_future *f[N0 + N1];
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt = NULL;
	struct rotor_worker_stats s[2];

	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	for (int i = 0; i < N0 + N1; i++)
		cr_assert_eq(rotor_submit(rt, i < N0 ? 0 : 1, yields_three_times, P(i), &f[i]), 0);
	for (int i = 0; i < N0 + N1; i++) {
		void *res = NULL;
		cr_assert_eq(rotor_future_wait(f[i], rotor_now() + 10 * SEC, &res), 0);
		cr_assert_eq(U(res), (uintptr_t)i);
		rotor_future_destroy(f[i]);
	}
	cr_assert_eq(rotor_runtime_stop(rt), 0);
	cr_assert_eq(wait_state(rt, ROTOR_STOPPED, 5 * SEC), 0);

	uint64_t spawned = 0, finished = 0;
	for (int w = 0; w < 2; w++) {
		uint64_t n = w == 0 ? N0 : N1;
		memset(&s[w], 0xa5, sizeof(s[w]));
		cr_assert_eq(rotor_worker_stats(rt, w, &s[w]), 0);
		spawned += s[w].tasks_spawned;
		finished += s[w].tasks_finished;
		cr_assert_geq(s[w].tasks_finished, n, "w%d tasks_finished %llu", w,
		              (unsigned long long)s[w].tasks_finished);
		cr_assert_geq(s[w].switches, 4 * n, "w%d switches %llu", w,
		              (unsigned long long)s[w].switches);
		cr_assert_geq(s[w].items_in, n, "w%d items_in %llu", w,
		              (unsigned long long)s[w].items_in);
		cr_assert_geq(s[w].cqes, s[w].msgs_in, "w%d: fewer CQEs than messages", w);
		cr_assert_geq(s[w].enters, 1, "w%d enters", w);
		cr_assert_eq(s[w].stacks_in_use, 0, "w%d: %llu stacks in use after STOPPED", w,
		             (unsigned long long)s[w].stacks_in_use);
		cr_assert_geq(s[w].stacks_total, 1, "w%d stacks_total", w);
		cr_assert_lt(s[w].cq_overflows, 1000000, "w%d cq_overflows looks uninitialised", w);
	}
	/* Which worker counts a spawn is not documented, but once every task has ended the
	 * runtime's totals must agree: each task was spawned once and finished once. */
	cr_assert_geq(finished, N0 + N1, "%llu tasks finished", (unsigned long long)finished);
	cr_assert_eq(spawned, finished, "runtime totals after STOPPED: %llu spawned, %llu finished",
	             (unsigned long long)spawned, (unsigned long long)finished);
	cr_assert_eq(rotor_worker_stats(rt, 2, &s[0]), -EINVAL);
	cr_assert_eq(rotor_worker_stats(rt, -1, &s[0]), -EINVAL);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
}

static void *main_spawns_onto_worker_1(void *arg)
{
	(void)arg;
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_task *h[50];
	struct rotor_worker_stats s0, s1;
	for (int i = 0; i < 50; i++) {
		struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1)};
		CHECK_EQ(rotor_spawn_attr(&attr, returns_arg_plus_one, P(i), &h[i]), 0);
	}
	for (int i = 0; i < 50; i++) {
		void *res = NULL;
		CHECK_EQ(rotor_join(h[i], &res), 0);
		CHECK_EQ(U(res), i + 1);
	}
	CHECK_EQ(rotor_worker_stats(rt, 0, &s0), 0);
	CHECK_EQ(rotor_worker_stats(rt, 1, &s1), 0);
	CHECK(s0.items_out >= 50);
	CHECK(s0.msgs_out >= 1);
	CHECK(s1.items_in >= 50);
	CHECK(s1.msgs_in >= 1);
	CHECK(s0.tasks_spawned + s1.tasks_spawned >= 51);
	CHECK(s0.stacks_total >= s0.stacks_in_use);
	return NULL;
}

Test(runtime, worker_stats_count_cross_worker_posts, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 2};
	cr_assert_eq(rotor_run(&cfg, main_spawns_onto_worker_1, NULL, NULL), 0);
	ASSERT_CHECKS();
}

/* Ten sleeps of 20 ms with nothing else to do: each idle spell polls (unless ROTOR_NO_SPIN),
 * finds nothing and sleeps in the ring. Long enough that a poll which lost the CPU to a busy
 * machine (its sched_yield) still finds the deadline ahead: with 2 ms, one run in ten on a
 * loaded machine had the deadline pass during every poll, so the worker never slept. */
static void *sleeps_ten_times(void *arg)
{
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_worker_stats a, b;
	CHECK_EQ(rotor_worker_stats(rt, 0, &a), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(rotor_sleep(20 * MS), 0);
	CHECK_EQ(rotor_worker_stats(rt, 0, &b), 0);
	CHECK(b.sleeps - a.sleeps >= 10);
	CHECK(b.polls_won <= b.polls);
	/* No polling: ROTOR_NO_SPIN (arg), or the environment's ROTOR_SPIN_US=0 or
	 * ROTOR_DISABLE=spin (CI's rerun). */
	const char *env = getenv("ROTOR_SPIN_US");
	if (arg || (env && !strcmp(env, "0")) || rotor_disabled("spin"))
		CHECK(b.polls - a.polls == 0);
	else
		CHECK(b.polls - a.polls >= 10);
	return NULL;
}

Test(runtime, worker_stats_count_sleeps_and_polls, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1};
	cr_assert_eq(rotor_run(&cfg, sleeps_ten_times, NULL, NULL), 0);
	cfg.flags = ROTOR_NO_SPIN;
	cr_assert_eq(rotor_run(&cfg, sleeps_ten_times, P(1), NULL), 0);
	ASSERT_CHECKS();
}

/* ---- rotor_stats_format ------------------------------------------------------------------ */

Test(runtime, stats_format_text_and_json, .timeout = 20)
{
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt = NULL;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	void *res;
	cr_assert_eq(rotor_call(rt, 1, yields_three_times, P(3), &res), 0);
	/* The future resolves just before its task is counted finished: stop first, so the
	 * counters are final. */
	cr_assert_eq(rotor_runtime_stop(rt), 0);
	cr_assert_eq(wait_state(rt, ROTOR_STOPPED, 5 * SEC), 0);
	char small[8];
	int need = rotor_stats_format(rt, small, sizeof(small), 0);
	cr_assert_gt(need, (int)sizeof(small));
	cr_assert_eq(strlen(small), sizeof(small) - 1, "truncated and terminated");
	char *text = malloc((size_t)need + 1);
	cr_assert_eq(rotor_stats_format(rt, text, (size_t)need + 1, 0), need);
	cr_assert(strstr(text, "w0 tasks_spawned=") && strstr(text, "\nw1 tasks_spawned="), "%s",
	          text);
	cr_assert(strstr(text, "w1 tasks_spawned=1 tasks_finished=1 tasks_alive=0"), "%s", text);
	free(text);
	need = rotor_stats_format(rt, NULL, 0, 1);
	char *json = malloc((size_t)need + 1);
	cr_assert_eq(rotor_stats_format(rt, json, (size_t)need + 1, 1), need);
	cr_assert(!strncmp(json, "{\"workers\":[{\"worker\":0,\"tasks_spawned\":", 40), "%s", json);
	cr_assert(strstr(json, "},{\"worker\":1,") && json[need - 1] == '}', "%s", json);
	free(json);
	cr_assert_eq(rotor_stats_format(NULL, NULL, 0, 0), -EINVAL);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}
