/*
 * The offload pool (run_in_executor) and task/worker-local storage: a blocking call does
 * not stall the worker, results come back, the queue applies backpressure, cancellation
 * waits for the call, values are per task and per worker with destructors run.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
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
		struct rotor_task_attr a = {.worker = i % 2};
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

/* ---- task-local and worker-local ---- */

static int key_a = -1, key_session = -1;
static atomic_int destroyed, sessions_made;

static void count_destroy(void *v)
{
	free(v);
	atomic_fetch_add(&destroyed, 1);
}

static void *uses_locals(void *arg)
{
	CHECK(rotor_task_get(key_a) == NULL); /* fresh for every task */
	int *mine = malloc(sizeof(int));
	*mine = (int)(intptr_t)arg;
	CHECK(rotor_task_set(key_a, mine) == 0);
	rotor_yield();
	int *back = rotor_task_get(key_a);
	CHECK(back == mine && *back == (int)(intptr_t)arg);
	return arg;
}

static void *make_session(void *arg)
{
	atomic_fetch_add(&sessions_made, 1);
	int *s = malloc(sizeof(int));
	*s = rotor_worker_id();
	return s;
}

static void *uses_session(void *arg)
{
	int *s = NULL;
	CHECK(rotor_worker_local(key_session, make_session, NULL, (void **)&s) == 0);
	CHECK(s && *s == rotor_worker_id());
	return arg;
}

static void *locals_main(void *arg)
{
	enum { N = 50 };
	struct rotor_task *t[2 * N];
	for (int i = 0; i < N; i++) {
		struct rotor_task_attr a = {.worker = i % 2};
		CHECK(rotor_spawn_attr(&a, uses_locals, (void *)(intptr_t)i, &t[i]) == 0);
		CHECK(rotor_spawn_attr(&a, uses_session, NULL, &t[N + i]) == 0);
	}
	CHECK(rotor_gather(t, 2 * N, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(atomic_load(&destroyed) == N); /* each task's value, when it ended */
	CHECK(rotor_task_set(ROTOR_KEYS_MAX + 1, NULL) == -EINVAL);
	CHECK(rotor_task_get(-1) == NULL);
	return arg;
}

Test(local, per_task_values_and_one_object_per_worker, .timeout = 20)
{
	if (key_a < 0) {
		key_a = rotor_key_create(count_destroy);
		key_session = rotor_key_create(count_destroy);
	}
	cr_assert_geq(key_a, 0);
	atomic_store(&destroyed, 0);
	atomic_store(&sessions_made, 0);
	run_checked(2, locals_main, NULL);
	cr_assert_eq(atomic_load(&sessions_made), 2, "one session per worker: %d",
	             atomic_load(&sessions_made));
	/* The two worker sessions were destroyed when the workers exited. */
	cr_assert_eq(atomic_load(&destroyed), 50 + 2);
	cr_assert_eq(rotor_task_set(key_a, NULL), -EPERM);
	void *v;
	cr_assert_eq(rotor_worker_local(key_session, make_session, NULL, &v), -EPERM);
}
