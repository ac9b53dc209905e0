/*
 * The offload pool (run_in_executor): a blocking call does not stall the worker, results
 * come back, the queue applies backpressure, cancellation waits for the call.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <rotor.h>

#include "check.h"

static void *blocking_sleep(void *arg)
{
	struct timespec ts = {0, (long)(intptr_t)arg * 1000000L};
	nanosleep(&ts, NULL);
	return (void *)((intptr_t)arg * 10);
}

static atomic_int ticks;

static void *ticker(void *arg)
{
	for (int i = 0; i < 20; i++) {
		rotor_sleep(2 * MS);
		atomic_fetch_add(&ticks, 1);
	}
	return arg;
}

static void *offload_main(void *arg)
{
	struct rotor_task *t;
	atomic_store(&ticks, 0);
	CHECK(rotor_spawn(ticker, NULL, &t) == 0);
	/* 60 ms of blocking on the pool while the ticker on this same worker keeps going. */
	void *res = NULL;
	int64_t t0 = rotor_now();
	CHECK(rotor_offload(blocking_sleep, (void *)60, &res) == 0);
	CHECK((intptr_t)res == 600);
	CHECK(rotor_now() - t0 >= 60 * MS);
	CHECK(atomic_load(&ticks) >= 10);
	CHECK(rotor_join(t, NULL) == 0);
	return arg;
}

Test(offload, blocking_call_runs_off_the_worker, .timeout = 20)
{
	run_checked(1, offload_main, NULL);
}

static atomic_long sum;

static void *offloads_many(void *arg)
{
	for (intptr_t i = 1; i <= 200; i++) {
		void *r = NULL;
		CHECK(rotor_offload(blocking_sleep, (void *)0, &r) == 0);
		atomic_fetch_add(&sum, i);
	}
	return arg;
}

static void *many_main(void *arg)
{
	/* 40 tasks x 200 jobs on 2 pool threads whose queue holds 128: backpressure. */
	enum { N = 40 };
	struct rotor_task *t[N];
	atomic_store(&sum, 0);
	for (int i = 0; i < N; i++) {
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(i % 2)};
		CHECK(rotor_spawn_attr(&a, offloads_many, NULL, &t[i]) == 0);
	}
	CHECK(rotor_gather(t, N, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(atomic_load(&sum) == N * 200L * 201 / 2);
	return arg;
}

Test(offload, thousands_of_jobs_from_tasks_on_two_workers, .timeout = 60)
{
	run_checked(2, many_main, NULL);
}

static atomic_int offload_rc;

static void *offload_then_report(void *arg)
{
	task_begins();
	void *r = NULL;
	atomic_store(&offload_rc, rotor_offload(blocking_sleep, (void *)30, &r));
	CHECK((intptr_t)r == 300); /* the call ran to its end and its result came back */
	return arg;
}

static void *cancel_main(void *arg)
{
	struct rotor_task *t;
	CHECK(rotor_spawn(offload_then_report, NULL, &t) == 0);
	settle(1);
	int64_t t0 = rotor_now();
	CHECK(rotor_cancel(t) == 0);
	CHECK(rotor_join(t, NULL) == -ECANCELED);
	CHECK(rotor_now() - t0 >= 15 * MS); /* it waited for the blocking call */
	CHECK(atomic_load(&offload_rc) == -ECANCELED);
	CHECK(rotor_offload(blocking_sleep, (void *)0, NULL) == 0);
	return arg;
}

Test(offload, cancelled_task_waits_for_its_call, .timeout = 20)
{
	run_checked(1, cancel_main, NULL);
}

Test(offload, off_a_task_is_eperm, .timeout = 10)
{
	cr_assert_eq(rotor_offload(blocking_sleep, NULL, NULL), -EPERM);
}

/* ---- where the pool runs ---- */

static void *own_cpu_count(void *arg)
{
	(void)arg;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return (void *)(intptr_t)-1;
	return (void *)(intptr_t)CPU_COUNT(&set);
}

static void *main_asks_the_pool_for_its_cpus(void *all)
{
	void *n = NULL;
	CHECK_EQ(rotor_offload(own_cpu_count, NULL, &n), 0);
	/* The pool thread was started by this worker, which is pinned to one CPU. */
	CHECK_EQ((int)(intptr_t)n, CPU_COUNT((cpu_set_t *)all));
	return NULL;
}

Test(offload, pool_threads_run_on_the_runtimes_cpus_not_one_workers, .timeout = 20)
{
	cpu_set_t all;
	cpus_to_steer_between(&all); /* skips with fewer than two CPUs or unpinned workers */
	struct rotor_config cfg = {.workers = 2};
	cr_assert_eq(rotor_run(&cfg, main_asks_the_pool_for_its_cpus, &all, NULL), 0);
	ASSERT_CHECKS();
}
