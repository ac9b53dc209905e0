/*
 * Misuse: every detectable mistake gets a clear negative errno and never a crash or a hang:
 * worker-only calls elsewhere, posts to a stopped runtime, out-of-range workers, released
 * handles, self-joins and the blocking calls a worker must not make.
 */
#include <criterion/criterion.h>
#include <rotor.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static struct rotor_runtime *make_rt(unsigned workers)
{
	struct rotor_config cfg = {.workers = workers};
	struct rotor_runtime *rt = NULL;
	int rc = rotor_runtime_create(&cfg, &rt);
	cr_assert_eq(rc, 0, "rotor_runtime_create: %d", rc);
	return rt;
}

#define RUN_MAIN(nworkers, fn, arg)                                                                \
	do {                                                                                       \
		struct rotor_config cfg_ = {.workers = nworkers};                                  \
		int rc_ = rotor_run(&cfg_, fn, arg, NULL);                                         \
		cr_assert_eq(rc_, 0, "rotor_run: %d", rc_);                                        \
		ASSERT_CHECKS();                                                                   \
	} while (0)

static atomic_int must_not_run;

static void *must_not_run_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&must_not_run, 1);
	return NULL;
}

static void must_not_run_cb(void *arg)
{
	(void)arg;
	atomic_fetch_add(&must_not_run, 1);
}

static void *returns_arg(void *arg)
{
	return arg;
}

static void assert_nothing_ran(void)
{
	cr_assert_eq(atomic_load(&must_not_run), 0, "a call that failed ran its function");
}

/* ---- worker-only calls off a worker ------------------------------------------------------- */

/* Every call that needs a worker or a task, made on a thread that is neither; records how
 * many returned something else than documented. */
static void *tries_worker_calls(void *arg)
{
	(void)arg;
	struct rotor_task *h = NULL;
	struct rotor_timer *t = NULL;
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(0)};
	CHECK_EQ(rotor_spawn(must_not_run_fn, NULL, &h), -EPERM);
	CHECK_EQ(rotor_spawn(must_not_run_fn, NULL, NULL), -EPERM);
	CHECK_EQ(rotor_spawn_attr(&attr, must_not_run_fn, NULL, &h), -EPERM);
	CHECK_EQ(rotor_spawn_attr(NULL, must_not_run_fn, NULL, &h), -EPERM);
	CHECK_EQ(rotor_sleep(1 * MS), -EPERM);
	CHECK_EQ(rotor_sleep_until(rotor_now() + 1 * MS), -EPERM);
	CHECK_EQ(rotor_yield(), -EPERM);
	CHECK_EQ(rotor_call_soon(must_not_run_cb, NULL), -EPERM);
	CHECK_EQ(rotor_call_later(1 * MS, must_not_run_cb, NULL, &t), -EPERM);
	CHECK_EQ(rotor_call_later(1 * MS, must_not_run_cb, NULL, NULL), -EPERM);
	CHECK_EQ(rotor_task_cancelled(), -EPERM);
	CHECK_EQ(rotor_worker_id(), -EPERM);
	CHECK(rotor_current() == NULL);
	CHECK(rotor_runtime_current() == NULL);
	return NULL;
}

Test(misuse, worker_calls_without_any_runtime_are_eperm, .timeout = 10)
{
	tries_worker_calls(NULL);
	ASSERT_CHECKS();
	assert_nothing_ran();
}

Test(misuse, worker_calls_from_non_worker_threads_are_eperm, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	pthread_t th;
	tries_worker_calls(NULL); /* the thread that created the runtime */
	cr_assert_eq(pthread_create(&th, NULL, tries_worker_calls, NULL), 0);
	pthread_join(th, NULL);
	pause_ms(20); /* a wrongly accepted spawn or callback would have run by now */
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
	assert_nothing_ran();
}

static _Atomic(struct rotor_task *) published;
static atomic_int child_started;

static void *sleeps_30ms_returns_5(void *arg)
{
	(void)arg;
	atomic_store(&child_started, 1);
	CHECK_EQ(rotor_sleep(30 * MS), 0);
	return P(5);
}

static void *publishes_a_child_then_joins_it(void *arg)
{
	struct rotor_future *go = arg;
	struct rotor_task *c = NULL;
	void *res = NULL;
	CHECK_EQ(rotor_spawn(sleeps_30ms_returns_5, NULL, &c), 0);
	atomic_store(&published, c);
	CHECK_EQ(rotor_future_wait(go, rotor_now() + 5 * SEC, NULL), 0);
	CHECK_EQ(rotor_join(c, &res), 0); /* the failed foreign join did not release it */
	CHECK_EQ(U(res), 5);
	return NULL;
}

Test(misuse, join_off_a_worker_is_eperm_and_keeps_the_handle, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(1);
	struct rotor_future *go = NULL, *f = NULL;
	struct rotor_task *c;
	cr_assert_eq(rotor_future_create(&go), 0);
	cr_assert_eq(rotor_submit(rt, 0, publishes_a_child_then_joins_it, go, &f), 0);
	int64_t deadline = rotor_now() + 5 * SEC;
	while (!(c = atomic_load(&published)) && rotor_now() < deadline)
		pause_ms(1);
	cr_assert_not_null(c);
	cr_assert_eq(rotor_join(c, NULL), -EPERM);
	cr_assert_eq(rotor_future_set(go, NULL), 0);
	cr_assert_eq(rotor_future_wait(f, rotor_now() + 5 * SEC, NULL), 0);
	rotor_future_destroy(f);
	rotor_future_destroy(go);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
}

/* ---- a stopped runtime -------------------------------------------------------------------- */

static void assert_shutdown_refuses(struct rotor_runtime *rt)
{
	struct rotor_future *f = NULL;
	void *res = NULL;
	cr_assert_eq(rotor_submit(rt, 0, must_not_run_fn, NULL, &f), -ESHUTDOWN);
	cr_assert_eq(rotor_submit(rt, ROTOR_WORKER_ANY, must_not_run_fn, NULL, &f), -ESHUTDOWN);
	cr_assert_eq(rotor_try_submit(rt, 1, must_not_run_fn, NULL, &f), -ESHUTDOWN);
	cr_assert_eq(rotor_call(rt, 1, must_not_run_fn, NULL, &res), -ESHUTDOWN);
	cr_assert_eq(rotor_call_soon_threadsafe(rt, 0, must_not_run_cb, NULL), -ESHUTDOWN);
	cr_assert_eq(rotor_call_soon_threadsafe(rt, ROTOR_WORKER_ANY, must_not_run_cb, NULL),
	             -ESHUTDOWN);
}

Test(misuse, posts_after_stop_are_eshutdown, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	cr_assert_eq(rotor_runtime_stop(rt), 0);
	assert_shutdown_refuses(rt); /* STOPPING or STOPPED */
	int64_t deadline = rotor_now() + 5 * SEC;
	while (rotor_runtime_state(rt) != ROTOR_STOPPED && rotor_now() < deadline)
		pause_ms(1);
	cr_assert_eq(rotor_runtime_state(rt), ROTOR_STOPPED);
	assert_shutdown_refuses(rt);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	assert_nothing_ran();
}

static void *main_spawns_while_stopping(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *h = NULL;
	struct rotor_future *f = NULL;
	CHECK_EQ(rotor_runtime_stop(rotor_runtime_current()), 0);
	CHECK_EQ(rotor_spawn(must_not_run_fn, NULL, &h), -ESHUTDOWN);
	CHECK_EQ(rotor_spawn(must_not_run_fn, NULL, NULL), -ESHUTDOWN);
	CHECK_EQ(rotor_spawn_attr(&on1, must_not_run_fn, NULL, &h), -ESHUTDOWN);
	CHECK_EQ(rotor_submit(rotor_runtime_current(), 1, must_not_run_fn, NULL, &f), -ESHUTDOWN);
	return NULL;
}

Test(misuse, spawn_on_a_stopping_runtime_is_eshutdown, .timeout = 10)
{
	RUN_MAIN(2, main_spawns_while_stopping, NULL);
	assert_nothing_ran();
}

/* ---- out-of-range workers and bad attributes ------------------------------------------------- */

Test(misuse, out_of_range_worker_from_a_plain_thread_is_einval, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	struct rotor_future *f = NULL;
	struct rotor_worker_stats st;
	void *res = NULL;
	int bad[] = {2, 3, 1000, -3, -1000, ROTOR_WORKER_SELF};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int w = bad[i];
		cr_assert_eq(rotor_submit(rt, w, must_not_run_fn, NULL, &f), -EINVAL, "submit %d",
		             w);
		cr_assert_eq(rotor_try_submit(rt, w, must_not_run_fn, NULL, &f), -EINVAL,
		             "try_submit %d", w);
		cr_assert_eq(rotor_call(rt, w, must_not_run_fn, NULL, &res), -EINVAL, "call %d", w);
		cr_assert_eq(rotor_call_soon_threadsafe(rt, w, must_not_run_cb, NULL), -EINVAL,
		             "call_soon_threadsafe %d", w);
		cr_assert_eq(rotor_worker_stats(rt, w, &st), -EINVAL, "worker_stats %d", w);
	}
	pause_ms(20);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	assert_nothing_ran();
}

static void *main_spawns_out_of_range(void *arg)
{
	(void)arg;
	struct rotor_task *h = NULL;
	int bad[] = {2, 3, 1000, -3, -1000};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(bad[i])};
		CHECK_EQ(rotor_spawn_attr(&attr, must_not_run_fn, NULL, &h), -EINVAL);
		CHECK_EQ(rotor_spawn_attr(&attr, must_not_run_fn, NULL, NULL), -EINVAL);
	}
	struct rotor_task_attr reserved = {.on = ROTOR_ON_WORKER(0), .reserved = 1};
	CHECK_EQ(rotor_spawn_attr(&reserved, must_not_run_fn, NULL, &h), -EINVAL);
	CHECK_EQ(rotor_sleep(20 * MS), 0);
	return NULL;
}

Test(misuse, spawn_on_an_out_of_range_worker_or_with_reserved_set_is_einval, .timeout = 10)
{
	RUN_MAIN(2, main_spawns_out_of_range, NULL);
	assert_nothing_ran();
}

/* ---- released handles ------------------------------------------------------------------------ */

static atomic_int sleeper_done;
static atomic_int sleeper_rc = 1;

static void *sleeps_20ms(void *arg)
{
	(void)arg;
	atomic_store(&sleeper_rc, rotor_sleep(20 * MS));
	atomic_store(&sleeper_done, 1);
	return NULL;
}

static void *main_reuses_released_handles(void *arg)
{
	(void)arg;
	struct rotor_task *h = NULL, *d = NULL;
	void *res = NULL;

	CHECK_EQ(rotor_spawn(returns_arg, P(3), &h), 0);
	CHECK_EQ(rotor_join(h, &res), 0);
	CHECK_EQ(U(res), 3);
	CHECK_EQ(rotor_join(h, &res), -EINVAL);
	CHECK_EQ(rotor_detach(h), -EINVAL);
	CHECK_EQ(rotor_cancel(h), -EINVAL);

	CHECK_EQ(rotor_spawn(sleeps_20ms, NULL, &d), 0);
	CHECK_EQ(rotor_detach(d), 0);
	CHECK_EQ(rotor_join(d, NULL), -EINVAL); /* still running, but detached */
	CHECK_EQ(rotor_detach(d), -EINVAL);
	CHECK_EQ(rotor_cancel(d), -EINVAL);
	while (!atomic_load(&sleeper_done))
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(atomic_load(&sleeper_rc), 0); /* the refused cancel did not cancel it */
	CHECK_EQ(rotor_sleep(5 * MS), 0);
	CHECK_EQ(rotor_join(d, NULL), -EINVAL); /* ended and freed */
	CHECK_EQ(rotor_detach(d), -EINVAL);
	return NULL;
}

Test(misuse, joined_or_detached_handles_are_einval, .timeout = 10)
{
	RUN_MAIN(1, main_reuses_released_handles, NULL);
}

struct double_join {
	struct rotor_task *target;
	atomic_int rc;
};

static void *joins_target(void *arg)
{
	struct double_join *dj = arg;
	void *res = NULL;
	int rc = rotor_join(dj->target, &res);
	atomic_store(&dj->rc, rc);
	return rc == 0 ? res : NULL;
}

static void *main_joins_from_two_tasks(void *arg)
{
	(void)arg;
	struct double_join a, b;
	struct rotor_task *t, *ja, *jb;
	void *res = NULL;
	CHECK_EQ(rotor_spawn(sleeps_30ms_returns_5, NULL, &t), 0);
	a.target = b.target = t;
	atomic_init(&a.rc, 1);
	atomic_init(&b.rc, 1);
	CHECK_EQ(rotor_spawn(joins_target, &a, &ja), 0);
	CHECK_EQ(rotor_sleep(5 * MS), 0); /* a is now waiting in its join */
	CHECK_EQ(rotor_spawn(joins_target, &b, &jb), 0);
	CHECK_EQ(rotor_join(jb, NULL), 0);
	CHECK_EQ(atomic_load(&b.rc), -EINVAL);
	CHECK_EQ(rotor_join(ja, &res), 0);
	CHECK_EQ(atomic_load(&a.rc), 0);
	CHECK_EQ(U(res), 5);
	return NULL;
}

Test(misuse, second_joiner_of_a_task_is_einval, .timeout = 10)
{
	RUN_MAIN(1, main_joins_from_two_tasks, NULL);
}

/* ---- deadlocks ------------------------------------------------------------------------------- */

static void *joins_itself(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_join(rotor_current(), NULL), -EDEADLK);
	return P(6);
}

static void *main_joins_itself(void *arg)
{
	(void)arg;
	struct rotor_task *h;
	void *res = NULL;
	CHECK_EQ(rotor_join(rotor_current(), NULL), -EDEADLK);
	CHECK_EQ(rotor_spawn(joins_itself, NULL, &h), 0);
	CHECK_EQ(rotor_join(h, &res), 0); /* its own failed join left the handle valid */
	CHECK_EQ(U(res), 6);
	return NULL;
}

Test(misuse, join_of_itself_is_edeadlk, .timeout = 10)
{
	RUN_MAIN(1, main_joins_itself, NULL);
}

static void calls_from_callback(void *arg)
{
	struct rotor_future *done = arg;
	struct rotor_config cfg = {.workers = 1};
	void *res = NULL;
	CHECK_EQ(rotor_call(rotor_runtime_current(), 0, must_not_run_fn, NULL, &res), -EDEADLK);
	CHECK_EQ(rotor_runtime_destroy(rotor_runtime_current()), -EDEADLK);
	CHECK_EQ(rotor_run(&cfg, must_not_run_fn, NULL, NULL), -EBUSY);
	CHECK_EQ(rotor_future_set(done, NULL), 0);
}

static void *main_makes_blocking_calls(void *arg)
{
	(void)arg;
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_config cfg = {.workers = 1};
	struct rotor_future *done = NULL;
	void *res = NULL;
	for (int w = 0; w < 2; w++)
		CHECK_EQ(rotor_call(rt, w, must_not_run_fn, NULL, &res), -EDEADLK);
	CHECK_EQ(rotor_call(rt, ROTOR_WORKER_ANY, must_not_run_fn, NULL, NULL), -EDEADLK);
	CHECK_EQ(rotor_runtime_destroy(rt), -EDEADLK);
	CHECK_EQ(rotor_runtime_state(rt), ROTOR_RUNNING);
	CHECK_EQ(rotor_run(&cfg, must_not_run_fn, NULL, &res), -EBUSY);
	CHECK_EQ(rotor_future_create(&done), 0);
	CHECK_EQ(rotor_call_soon(calls_from_callback, done), 0);
	CHECK_EQ(rotor_future_wait(done, rotor_now() + 5 * SEC, NULL), 0);
	rotor_future_destroy(done);
	CHECK_EQ(rotor_sleep(20 * MS), 0);
	return NULL;
}

Test(misuse, blocking_calls_on_a_worker_are_refused, .timeout = 15)
{
	RUN_MAIN(2, main_makes_blocking_calls, NULL);
	assert_nothing_ran();
}

static void *task_tries_to_destroy(void *arg)
{
	(void)arg;
	struct rotor_config cfg = {.workers = 1};
	CHECK_EQ(rotor_runtime_destroy(rotor_runtime_current()), -EDEADLK);
	CHECK_EQ(rotor_run(&cfg, must_not_run_fn, NULL, NULL), -EBUSY);
	CHECK_EQ(rotor_call(rotor_runtime_current(), 0, must_not_run_fn, NULL, NULL), -EDEADLK);
	return P(rotor_worker_id() + 10);
}

Test(misuse, destroy_from_a_submitted_task_is_edeadlk, .timeout = 15)
{
	struct rotor_runtime *rt = make_rt(2);
	void *res = NULL;
	for (int w = 0; w < 2; w++) {
		cr_assert_eq(rotor_call(rt, w, task_tries_to_destroy, NULL, &res), 0);
		cr_assert_eq(U(res), (uintptr_t)w + 10);
	}
	/* the refused destroy left the runtime working */
	cr_assert_eq(rotor_runtime_state(rt), ROTOR_RUNNING);
	cr_assert_eq(rotor_call(rt, 1, returns_arg, P(4), &res), 0);
	cr_assert_eq(U(res), 4);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
	assert_nothing_ran();
}

/* ---- configuration ----------------------------------------------------------------------- */

Test(misuse, stack_below_minimum_is_einval, .timeout = 10)
{
	size_t sizes[] = {1, 4096, ROTOR_STACK_MIN - 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct rotor_config cfg = {.workers = 1, .stack_size = sizes[i]};
		struct rotor_runtime *sentinel = (struct rotor_runtime *)&cfg, *rt = sentinel;
		cr_assert_eq(rotor_runtime_create(&cfg, &rt), -EINVAL, "stack %zu", sizes[i]);
		cr_assert_eq(rt, sentinel, "*out touched on failure");
		cr_assert_eq(rotor_run(&cfg, must_not_run_fn, NULL, NULL), -EINVAL);
	}
	assert_nothing_ran();
}
