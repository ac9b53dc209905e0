/*
 * Futures and the foreign-thread entry points: future create/set/wait/cancel between tasks,
 * workers and plain threads; rotor_submit, rotor_try_submit, rotor_call and
 * rotor_call_soon_threadsafe.
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

static int run_main(unsigned workers, rotor_fn fn, void *arg)
{
	struct rotor_config cfg = {.workers = workers};
	return rotor_run(&cfg, fn, arg, NULL);
}

#define RUN_MAIN(workers, fn, arg)                                                                 \
	do {                                                                                       \
		int rc_ = run_main(workers, fn, arg);                                              \
		cr_assert_eq(rc_, 0, "rotor_run: %d", rc_);                                        \
		ASSERT_CHECKS();                                                                   \
	} while (0)

static struct rotor_runtime *make_rt(unsigned workers)
{
	struct rotor_config cfg = {.workers = workers};
	struct rotor_runtime *rt = NULL;
	int rc = rotor_runtime_create(&cfg, &rt);
	cr_assert_eq(rc, 0, "rotor_runtime_create: %d", rc);
	return rt;
}

static struct rotor_future *make_future(void)
{
	struct rotor_future *f = NULL;
	cr_assert_eq(rotor_future_create(&f), 0);
	cr_assert_not_null(f);
	return f;
}

static void *returns_7i_plus_3(void *arg)
{
	return P(U(arg) * 7 + 3);
}

/* Waits on the future in arg (up to 5 s) and returns its result + 1, or 0 on an error. */
struct waiter {
	struct rotor_future *f;
	atomic_int started;
	atomic_int rc;
};

static void waiter_init(struct waiter *w, struct rotor_future *f)
{
	w->f = f;
	atomic_init(&w->started, 0);
	atomic_init(&w->rc, 1);
}

static void *waits_and_returns_result_plus_one(void *arg)
{
	struct waiter *w = arg;
	void *res = NULL;
	atomic_store(&w->started, 1);
	int rc = rotor_future_wait(w->f, rotor_now() + 5 * SEC, &res);
	atomic_store(&w->rc, rc);
	return rc == 0 ? P(U(res) + 1) : NULL;
}

static void *sleeps_10ms_then_sets_41(void *arg)
{
	CHECK_EQ(rotor_sleep(10 * MS), 0);
	CHECK_EQ(rotor_future_set((struct rotor_future *)arg, P(41)), 0);
	return NULL;
}

/* ---- between tasks --------------------------------------------------------------------------- */

static void *main_waits_and_sets(void *arg)
{
	int waiter_worker = (int)U(arg) & 1, setter_worker = (int)U(arg) >> 1;
	struct rotor_task_attr wa = {.on = ROTOR_ON_WORKER(waiter_worker)},
	                       sa = {.on = ROTOR_ON_WORKER(setter_worker)};
	struct rotor_future *f = NULL;
	struct rotor_task *w, *s;
	struct waiter wt;
	void *res = NULL;
	CHECK_EQ(rotor_future_create(&f), 0);
	CHECK_EQ(rotor_future_done(f), 0);
	waiter_init(&wt, f);
	CHECK_EQ(rotor_spawn_attr(&wa, waits_and_returns_result_plus_one, &wt, &w), 0);
	CHECK_EQ(rotor_spawn_attr(&sa, sleeps_10ms_then_sets_41, f, &s), 0);
	CHECK_EQ(rotor_join(w, &res), 0);
	CHECK_EQ(atomic_load(&wt.rc), 0);
	CHECK_EQ(U(res), 42);
	CHECK_EQ(rotor_join(s, NULL), 0);
	CHECK_EQ(rotor_future_done(f), 1);
	rotor_future_destroy(f);
	return NULL;
}

Test(future, set_and_wait_between_tasks_on_one_worker, .timeout = 10)
{
	RUN_MAIN(1, main_waits_and_sets, P(0));
}

Test(future, set_on_worker_0_wakes_a_waiter_on_worker_1, .timeout = 10)
{
	RUN_MAIN(2, main_waits_and_sets, P(1));
}

Test(future, set_on_worker_1_wakes_a_waiter_on_worker_0, .timeout = 10)
{
	RUN_MAIN(2, main_waits_and_sets, P(2));
}

static void *main_waits_with_a_deadline(void *arg)
{
	(void)arg;
	struct rotor_future *f = NULL;
	void *res = NULL;
	CHECK_EQ(rotor_future_create(&f), 0);
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_future_wait(f, t0 + 30 * MS, &res), -ETIMEDOUT);
	CHECK(rotor_now() - t0 >= 30 * MS);
	CHECK(rotor_now() - t0 < 2 * SEC);
	CHECK_EQ(rotor_future_wait(f, 0, NULL), -ETIMEDOUT);
	CHECK_EQ(rotor_future_done(f), 0);
	CHECK_EQ(rotor_future_set(f, P(5)), 0);
	CHECK_EQ(rotor_future_wait(f, ROTOR_FOREVER, &res), 0);
	CHECK_EQ(U(res), 5);
	CHECK_EQ(rotor_future_wait(f, ROTOR_FOREVER, NULL), 0);
	rotor_future_destroy(f);
	return NULL;
}

Test(future, task_wait_with_a_deadline_times_out, .timeout = 10)
{
	RUN_MAIN(1, main_waits_with_a_deadline, NULL);
}

static void *main_waits_twice(void *arg)
{
	(void)arg;
	struct rotor_future *f = NULL;
	struct rotor_task *w1, *w2;
	struct waiter a, b;
	void *res = NULL;
	CHECK_EQ(rotor_future_create(&f), 0);
	waiter_init(&a, f);
	waiter_init(&b, f);
	CHECK_EQ(rotor_spawn(waits_and_returns_result_plus_one, &a, &w1), 0);
	while (!atomic_load(&a.started))
		CHECK_EQ(rotor_yield(), 0);
	CHECK_EQ(rotor_spawn(waits_and_returns_result_plus_one, &b, &w2), 0);
	CHECK_EQ(rotor_join(w2, NULL), 0);
	CHECK_EQ(atomic_load(&b.rc), -EBUSY); /* one task at a time may wait */
	CHECK_EQ(rotor_future_set(f, P(1)), 0);
	CHECK_EQ(rotor_join(w1, &res), 0);
	CHECK_EQ(atomic_load(&a.rc), 0);
	CHECK_EQ(U(res), 2);
	rotor_future_destroy(f);
	return NULL;
}

Test(future, second_waiting_task_gets_ebusy, .timeout = 10)
{
	RUN_MAIN(1, main_waits_twice, NULL);
}

static void *main_cancels_a_waiting_task(void *arg)
{
	(void)arg;
	struct rotor_future *f = NULL;
	struct rotor_task *w;
	struct waiter wt;
	void *res = NULL;
	CHECK_EQ(rotor_future_create(&f), 0);
	waiter_init(&wt, f);
	CHECK_EQ(rotor_spawn(waits_and_returns_result_plus_one, &wt, &w), 0);
	while (!atomic_load(&wt.started))
		CHECK_EQ(rotor_yield(), 0);
	CHECK_EQ(rotor_yield(), 0);
	CHECK_EQ(rotor_cancel(w), 0);
	CHECK_EQ(rotor_join(w, NULL), -ECANCELED);
	CHECK_EQ(atomic_load(&wt.rc), -ECANCELED);
	/* the waiter was cancelled, not the future */
	CHECK_EQ(rotor_future_done(f), 0);
	CHECK_EQ(rotor_future_set(f, P(3)), 0);
	CHECK_EQ(rotor_future_wait(f, ROTOR_FOREVER, &res), 0);
	CHECK_EQ(U(res), 3);
	rotor_future_destroy(f);
	return NULL;
}

Test(future, cancelled_waiting_task_gets_ecanceled, .timeout = 10)
{
	RUN_MAIN(1, main_cancels_a_waiting_task, NULL);
}

static void *main_cancels_a_future(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_future *f = NULL, *g = NULL;
	struct rotor_task *w;
	struct waiter wt;
	CHECK_EQ(rotor_future_create(&f), 0);
	waiter_init(&wt, f);
	CHECK_EQ(rotor_spawn_attr(&on1, waits_and_returns_result_plus_one, &wt, &w), 0);
	while (!atomic_load(&wt.started))
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(rotor_sleep(5 * MS), 0);
	CHECK_EQ(rotor_future_cancel(f), 0);
	CHECK_EQ(rotor_join(w, NULL), 0); /* the task was not cancelled, its wait was */
	CHECK_EQ(atomic_load(&wt.rc), -ECANCELED);
	CHECK_EQ(rotor_future_done(f), 1);
	CHECK_EQ(rotor_future_set(f, P(1)), -EALREADY);
	CHECK_EQ(rotor_future_wait(f, ROTOR_FOREVER, NULL), -ECANCELED);
	rotor_future_destroy(f);

	CHECK_EQ(rotor_future_create(&g), 0);
	CHECK_EQ(rotor_future_set(g, P(1)), 0);
	CHECK_EQ(rotor_future_cancel(g), -EALREADY);
	CHECK_EQ(rotor_future_wait(g, ROTOR_FOREVER, NULL), 0);
	rotor_future_destroy(g);
	return NULL;
}

Test(future, future_cancel_wakes_its_waiter_with_ecanceled, .timeout = 10)
{
	RUN_MAIN(2, main_cancels_a_future, NULL);
}

static void *submits_to_the_other_worker(void *arg)
{
	(void)arg;
	struct rotor_runtime *rt = rotor_runtime_current();
	int other = 1 - rotor_worker_id();
	struct rotor_future *f = NULL;
	void *res = NULL;
	CHECK_EQ(rotor_submit(rt, other, returns_7i_plus_3, P(4), &f), 0);
	CHECK_EQ(rotor_future_wait(f, rotor_now() + 5 * SEC, &res), 0);
	CHECK_EQ(U(res), 31);
	rotor_future_destroy(f);
	CHECK_EQ(rotor_submit(rt, ROTOR_WORKER_ANY, returns_7i_plus_3, P(5), &f), 0);
	CHECK_EQ(rotor_future_wait(f, rotor_now() + 5 * SEC, &res), 0);
	CHECK_EQ(U(res), 38);
	rotor_future_destroy(f);
	return NULL;
}

static void *main_submits_from_tasks(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *h;
	submits_to_the_other_worker(NULL);
	CHECK_EQ(rotor_spawn_attr(&on1, submits_to_the_other_worker, NULL, &h), 0);
	CHECK_EQ(rotor_join(h, NULL), 0);
	return NULL;
}

Test(future, submit_and_wait_from_a_task, .timeout = 10)
{
	RUN_MAIN(2, main_submits_from_tasks, NULL);
}

/* ---- with foreign threads ------------------------------------------------------------------- */

struct delayed_set {
	struct rotor_future *f;
	void *value;
	atomic_int rc;
};

static void *thread_sets_after_20ms(void *arg)
{
	struct delayed_set *d = arg;
	pause_ms(20);
	atomic_store(&d->rc, rotor_future_set(d->f, d->value));
	return NULL;
}

Test(future, set_from_a_foreign_thread_wakes_a_task, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	struct delayed_set d = {.f = make_future(), .value = P(10)};
	struct rotor_future *g = NULL;
	struct waiter wt;
	void *res = NULL;
	pthread_t th;
	atomic_init(&d.rc, 1);
	waiter_init(&wt, d.f);
	cr_assert_eq(rotor_submit(rt, 1, waits_and_returns_result_plus_one, &wt, &g), 0);
	cr_assert_eq(pthread_create(&th, NULL, thread_sets_after_20ms, &d), 0);
	cr_assert_eq(rotor_future_wait(g, rotor_now() + 5 * SEC, &res), 0);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&d.rc), 0);
	cr_assert_eq(atomic_load(&wt.rc), 0);
	cr_assert_eq(U(res), 11);
	rotor_future_destroy(g);
	rotor_future_destroy(d.f);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

Test(future, foreign_thread_wait_with_a_deadline_times_out, .timeout = 10)
{
	struct rotor_future *f = make_future();
	void *res = P(1234);
	int64_t t0 = rotor_now();
	cr_assert_eq(rotor_future_wait(f, t0 + 50 * MS, &res), -ETIMEDOUT);
	int64_t took = rotor_now() - t0;
	cr_assert_geq(took, 50 * MS, "timed out after %lld ns", (long long)took);
	cr_assert_lt(took, 2 * SEC);
	cr_assert_eq(U(res), 1234, "result written on timeout");
	t0 = rotor_now();
	cr_assert_eq(rotor_future_wait(f, t0 - 1 * SEC, NULL), -ETIMEDOUT);
	cr_assert_lt(rotor_now() - t0, 1 * SEC);
	cr_assert_eq(rotor_future_done(f), 0);
	rotor_future_destroy(f);
}

Test(future, foreign_thread_waits_for_a_set_from_another_thread, .timeout = 10)
{
	struct delayed_set d = {.f = make_future(), .value = P(77)};
	void *res = NULL;
	pthread_t th;
	atomic_init(&d.rc, 1);
	cr_assert_eq(pthread_create(&th, NULL, thread_sets_after_20ms, &d), 0);
	cr_assert_eq(rotor_future_wait(d.f, rotor_now() + 5 * SEC, &res), 0);
	pthread_join(th, NULL);
	cr_assert_eq(U(res), 77);
	cr_assert_eq(atomic_load(&d.rc), 0);
	rotor_future_destroy(d.f);
}

struct thread_waiter {
	struct rotor_future *f;
	atomic_int rc;
	void *res;
};

static void *thread_waits(void *arg)
{
	struct thread_waiter *w = arg;
	atomic_store(&w->rc, rotor_future_wait(w->f, rotor_now() + 5 * SEC, &w->res));
	return NULL;
}

Test(future, any_number_of_foreign_threads_may_wait, .timeout = 10)
{
	struct rotor_future *f = make_future();
	struct thread_waiter w[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct thread_waiter){.f = f};
		atomic_init(&w[i].rc, 1);
		cr_assert_eq(pthread_create(&th[i], NULL, thread_waits, &w[i]), 0);
	}
	pause_ms(20);
	cr_assert_eq(rotor_future_set(f, P(8)), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(atomic_load(&w[i].rc), 0, "waiter %d: %d", i, atomic_load(&w[i].rc));
		cr_assert_eq(U(w[i].res), 8);
	}
	rotor_future_destroy(f);
}

Test(future, cancel_wakes_foreign_waiters, .timeout = 10)
{
	struct rotor_future *f = make_future();
	struct thread_waiter w = {.f = f};
	pthread_t th;
	atomic_init(&w.rc, 1);
	cr_assert_eq(pthread_create(&th, NULL, thread_waits, &w), 0);
	pause_ms(20);
	cr_assert_eq(rotor_future_cancel(f), 0);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&w.rc), -ECANCELED);
	cr_assert_eq(rotor_future_done(f), 1);
	cr_assert_eq(rotor_future_set(f, NULL), -EALREADY);
	rotor_future_destroy(f);
}

Test(future, set_twice_is_ealready_and_keeps_the_first_value, .timeout = 10)
{
	struct rotor_future *f = make_future();
	void *res = NULL;
	cr_assert_eq(rotor_future_done(f), 0);
	cr_assert_eq(rotor_future_set(f, P(1)), 0);
	cr_assert_eq(rotor_future_done(f), 1);
	cr_assert_eq(rotor_future_set(f, P(2)), -EALREADY);
	cr_assert_eq(rotor_future_wait(f, ROTOR_FOREVER, &res), 0);
	cr_assert_eq(U(res), 1);
	cr_assert_eq(rotor_future_cancel(f), -EALREADY);
	cr_assert_eq(rotor_future_wait(f, rotor_now() - 1, &res), 0, "resolved, yet timed out");
	rotor_future_destroy(f);
}

Test(future, submit_and_wait_from_the_main_thread, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	int workers[] = {0, 1, ROTOR_WORKER_ANY};
	for (int i = 0; i < 3; i++) {
		struct rotor_future *f = NULL;
		void *res = NULL;
		cr_assert_eq(rotor_submit(rt, workers[i], returns_7i_plus_3, P(i + 1), &f), 0);
		cr_assert_not_null(f);
		cr_assert_eq(rotor_future_wait(f, rotor_now() + 5 * SEC, &res), 0);
		cr_assert_eq(U(res), 7 * (i + 1) + 3);
		cr_assert_eq(rotor_future_done(f), 1);
		rotor_future_destroy(f);
	}
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

static atomic_int started;
static atomic_int sleep_rc = 1;
static atomic_int finished;

static void *records_a_long_sleep(void *arg)
{
	(void)arg;
	atomic_store(&started, 1);
	atomic_store(&sleep_rc, rotor_sleep(10 * SEC));
	atomic_store(&finished, 1);
	return P(1);
}

Test(future, future_cancel_cancels_the_submitted_task, .timeout = 15)
{
	struct rotor_runtime *rt = make_rt(2);
	struct rotor_future *f = NULL;
	cr_assert_eq(rotor_submit(rt, 1, records_a_long_sleep, NULL, &f), 0);
	cr_assert_eq(wait_at_least(&started, 1, 5 * SEC), 0);
	pause_ms(5);
	int64_t t0 = rotor_now();
	cr_assert_eq(rotor_future_cancel(f), 0);
	cr_assert_eq(rotor_future_wait(f, rotor_now() + 5 * SEC, NULL), -ECANCELED);
	cr_assert_eq(wait_at_least(&finished, 1, 5 * SEC), 0, "task still asleep");
	cr_assert_lt(rotor_now() - t0, 2 * SEC);
	cr_assert_eq(atomic_load(&sleep_rc), -ECANCELED);
	rotor_future_destroy(f);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

Test(future, destroying_a_future_before_its_task_ends, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	for (int i = 0; i < 100; i++) {
		struct rotor_future *f = NULL;
		cr_assert_eq(rotor_submit(rt, i % 2, returns_7i_plus_3, P(i), &f), 0);
		rotor_future_destroy(f);
	}
	struct rotor_future *g = NULL;
	cr_assert_eq(rotor_submit(rt, 1, records_a_long_sleep, NULL, &g), 0);
	cr_assert_eq(wait_at_least(&started, 1, 5 * SEC), 0);
	rotor_future_destroy(g);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_assert_eq(atomic_load(&sleep_rc), -ECANCELED);
}

static void *sleeps_50ms_returns_1(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	CHECK_EQ(rotor_sleep(50 * MS), 0);
	atomic_fetch_add((atomic_int *)arg, 1);
	return P(1);
}

/* rotor.h: rotor_future_set "resolve[s] the future", any future, "Returns 0, or -EALREADY
 * if it was already resolved or cancelled": a submitted future still pending is neither. */
Test(future, set_resolves_a_submitted_future_before_its_task_ends, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	struct rotor_future *f = NULL;
	atomic_int progress;
	void *res = NULL;
	atomic_init(&progress, 0);
	cr_assert_eq(rotor_submit(rt, 1, sleeps_50ms_returns_1, &progress, &f), 0);
	cr_assert_eq(wait_at_least(&progress, 1, 5 * SEC), 0);
	int rc = rotor_future_set(f, P(2));
	cr_assert_eq(rc, 0, "rotor_future_set on a pending submitted future: %d", rc);
	cr_assert_eq(rotor_future_wait(f, rotor_now() + 5 * SEC, &res), 0);
	cr_assert_eq(U(res), 2, "the set value, not the task's");
	cr_assert_eq(wait_at_least(&progress, 2, 5 * SEC), 0, "the task did not run to its end");
	rotor_future_destroy(f);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
}

/* From a thread that is no worker, the target makes the task after the handle is out, so a
 * cancel, a set or a destroy can come before the task exists, while it is being made, or
 * after. Whatever the order: a cancelled future gives -ECANCELED and its task, if it ran at
 * all, saw the cancel; a set future gives the set value; each task that ran ran once, and
 * nothing is leaked (ASan) or freed twice. */
static atomic_int race_runs, race_saw_cancel;

static void *counts_and_yields(void *arg)
{
	(void)arg;
	atomic_fetch_add(&race_runs, 1);
	if (rotor_yield() == -ECANCELED)
		atomic_fetch_add(&race_saw_cancel, 1);
	return P(5);
}

Test(future, claims_racing_the_target_making_the_task, .timeout = 60)
{
	enum { N = 20000 };
	struct rotor_runtime *rt = make_rt(2);
	int cancelled_first = 0;
	for (int i = 0; i < N; i++) {
		struct rotor_future *f = NULL;
		void *res = NULL;
		cr_assert_eq(rotor_submit(rt, ROTOR_WORKER_ANY, counts_and_yields, NULL, &f), 0);
		switch (i % 3) {
		case 0: {
			int rc = rotor_future_cancel(f);
			cr_assert(rc == 0 || rc == -EALREADY, "cancel: %d", rc);
			int wrc = rotor_future_wait(f, rotor_now() + 5 * SEC, &res);
			if (rc == 0) {
				cr_assert_eq(wrc, -ECANCELED, "wait after a cancel: %d", wrc);
				cancelled_first++;
			} else {
				cr_assert_eq(wrc, 0);
				cr_assert_eq(U(res), 5);
			}
			break;
		}
		case 1: {
			int rc = rotor_future_set(f, P(9));
			cr_assert(rc == 0 || rc == -EALREADY, "set: %d", rc);
			cr_assert_eq(rotor_future_wait(f, rotor_now() + 5 * SEC, &res), 0);
			cr_assert_eq(U(res), rc == 0 ? 9 : 5);
			break;
		}
		default:
			break; /* destroyed at once, the task on its way */
		}
		rotor_future_destroy(f);
	}
	/* A call to each worker runs after every task made there before it has started. */
	for (int w = 0; w < 2; w++)
		cr_assert_eq(rotor_call(rt, w, counts_and_yields, NULL, NULL), 0);
	atomic_fetch_sub(&race_runs, 2);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_log_info("%d runs, %d saw the cancel, %d cancels won", atomic_load(&race_runs),
	            atomic_load(&race_saw_cancel), cancelled_first);
	cr_assert_leq(atomic_load(&race_runs), N);
	/* Every third future was destroyed unclaimed: its task runs to its end. */
	cr_assert_geq(atomic_load(&race_runs), N / 3);
	cr_assert_leq(atomic_load(&race_saw_cancel), cancelled_first);
}

/* ---- rotor_call ---------------------------------------------------------------------------- */

static void *cancels_itself(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_cancel(rotor_current()), 0);
	CHECK_EQ(rotor_yield(), -ECANCELED);
	return P(1);
}

Test(future, call_returns_the_result, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	void *res = NULL;
	cr_assert_eq(rotor_call(rt, 1, returns_7i_plus_3, P(5), &res), 0);
	cr_assert_eq(U(res), 38);
	cr_assert_eq(rotor_call(rt, 0, returns_7i_plus_3, P(6), &res), 0);
	cr_assert_eq(U(res), 45);
	cr_assert_eq(rotor_call(rt, ROTOR_WORKER_ANY, returns_7i_plus_3, P(1), NULL), 0);
	cr_assert_eq(rotor_call(rt, 1, cancels_itself, NULL, &res), -ECANCELED);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
}

/* ---- rotor_try_submit ---------------------------------------------------------------------- */

static atomic_int spin_release;
static atomic_int spinning;

/* Holds its worker without yielding (the callback-that-blocks-the-loop of the seeds), so
 * that nothing posted to that worker is read. */
static void *spins_until_released(void *arg)
{
	(void)arg;
	int64_t deadline = rotor_now() + 5 * SEC;
	atomic_store(&spinning, 1);
	while (!atomic_load(&spin_release) && rotor_now() < deadline)
		;
	return NULL;
}

Test(future, try_submit_is_eagain_while_the_target_is_full, .timeout = 20)
{
	enum { MAX_TRIES = 10000 };
	static struct rotor_future *f[MAX_TRIES];
	struct rotor_config cfg = {.workers = 2, .msg_inflight = 2};
	struct rotor_runtime *rt = NULL;
	struct rotor_future *spin = NULL, *g = NULL;
	void *res = NULL;
	int ok = 0, rc = 0;

	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	cr_assert_eq(rotor_try_submit(rt, 1, returns_7i_plus_3, P(1), &g), 0);
	cr_assert_eq(rotor_future_wait(g, rotor_now() + 5 * SEC, &res), 0);
	cr_assert_eq(U(res), 10);
	rotor_future_destroy(g);

	cr_assert_eq(rotor_submit(rt, 1, spins_until_released, NULL, &spin), 0);
	cr_assert_eq(wait_at_least(&spinning, 1, 5 * SEC), 0);
	while (ok < MAX_TRIES) {
		rc = rotor_try_submit(rt, 1, returns_7i_plus_3, P(ok), &f[ok]);
		if (rc != 0)
			break;
		ok++;
	}
	atomic_store(&spin_release, 1);
	cr_assert_eq(rc, -EAGAIN, "after %d posts into a held worker: %d", ok, rc);
	cr_assert_geq(ok, 1, "not even one post had room");
	for (int i = 0; i < ok; i++) {
		cr_assert_eq(rotor_future_wait(f[i], rotor_now() + 5 * SEC, &res), 0);
		cr_assert_eq(U(res), 7 * (uintptr_t)i + 3);
		rotor_future_destroy(f[i]);
	}
	cr_assert_eq(rotor_future_wait(spin, rotor_now() + 5 * SEC, NULL), 0);
	rotor_future_destroy(spin);

	/* room again once the worker reads its messages */
	int64_t deadline = rotor_now() + 5 * SEC;
	while ((rc = rotor_try_submit(rt, 1, returns_7i_plus_3, P(2), &g)) == -EAGAIN &&
	       rotor_now() < deadline)
		pause_ms(1);
	cr_assert_eq(rc, 0);
	cr_assert_eq(rotor_future_wait(g, rotor_now() + 5 * SEC, &res), 0);
	cr_assert_eq(U(res), 17);
	rotor_future_destroy(g);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

/* ---- many futures from many threads ---------------------------------------------------------- */

#define SUBMITTERS    4
#define PER_SUBMITTER 25000
#define SUBMIT_BATCH  5000
static atomic_int tasks_ran;
static atomic_int wrong_results;
static atomic_int submit_errors;

struct submitter {
	struct rotor_runtime *rt;
	int id;
};

static void *counts_and_returns_7i_plus_3(void *arg)
{
	atomic_fetch_add(&tasks_ran, 1);
	return returns_7i_plus_3(arg);
}

static void *submits_many(void *arg)
{
	struct submitter *s = arg;
	struct rotor_future **f = calloc(SUBMIT_BATCH, sizeof(*f));
	if (!f) {
		atomic_fetch_add(&submit_errors, 1);
		return NULL;
	}
	for (int base = 0; base < PER_SUBMITTER; base += SUBMIT_BATCH) {
		int n = 0;
		for (int i = 0; i < SUBMIT_BATCH; i++) {
			uintptr_t idx = (uintptr_t)s->id * PER_SUBMITTER + (uintptr_t)(base + i);
			int worker = i % 3 == 2 ? ROTOR_WORKER_ANY : i % 3;
			int rc = rotor_submit(s->rt, worker, counts_and_returns_7i_plus_3, P(idx),
			                      &f[n]);
			if (rc) {
				atomic_fetch_add(&submit_errors, 1);
				continue;
			}
			n++;
		}
		for (int i = 0; i < n; i++) {
			uintptr_t idx = (uintptr_t)s->id * PER_SUBMITTER + (uintptr_t)(base + i);
			void *res = NULL;
			int rc = rotor_future_wait(f[i], rotor_now() + 30 * SEC, &res);
			if (rc != 0 || U(res) != idx * 7 + 3)
				atomic_fetch_add(&wrong_results, 1);
			rotor_future_destroy(f[i]);
		}
	}
	free(f);
	return NULL;
}

Test(future, hundred_thousand_futures_from_four_threads, .timeout = 120)
{
	struct rotor_runtime *rt = make_rt(2);
	struct submitter s[SUBMITTERS];
	pthread_t th[SUBMITTERS];
	for (int i = 0; i < SUBMITTERS; i++) {
		s[i] = (struct submitter){.rt = rt, .id = i};
		cr_assert_eq(pthread_create(&th[i], NULL, submits_many, &s[i]), 0);
	}
	for (int i = 0; i < SUBMITTERS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_assert_eq(atomic_load(&submit_errors), 0, "%d submits failed",
	             atomic_load(&submit_errors));
	cr_assert_eq(atomic_load(&wrong_results), 0, "%d futures missing or wrong",
	             atomic_load(&wrong_results));
	cr_assert_eq(atomic_load(&tasks_ran), SUBMITTERS * PER_SUBMITTER, "%d tasks ran",
	             atomic_load(&tasks_ran));
}

/* ---- call_soon_threadsafe -------------------------------------------------------------------- */

struct soon {
	struct rotor_future *f;
	atomic_int worker;
	atomic_int off_task;
};

static void callback_reports(void *arg)
{
	struct soon *s = arg;
	atomic_store(&s->worker, rotor_worker_id());
	atomic_store(&s->off_task, rotor_current() == NULL);
	CHECK_EQ(rotor_future_set(s->f, P(rotor_worker_id() + 1)), 0);
}

static void *thread_calls_soon_threadsafe(void *arg)
{
	struct rotor_runtime *rt = arg;
	for (int w = 0; w < 2; w++) {
		struct soon s = {.f = NULL};
		void *res = NULL;
		CHECK_EQ(rotor_future_create(&s.f), 0);
		atomic_init(&s.worker, -1);
		CHECK_EQ(rotor_call_soon_threadsafe(rt, w, callback_reports, &s), 0);
		CHECK_EQ(rotor_future_wait(s.f, rotor_now() + 5 * SEC, &res), 0);
		CHECK_EQ(U(res), w + 1);
		CHECK_EQ(atomic_load(&s.worker), w);
		CHECK_EQ(atomic_load(&s.off_task), 1);
		rotor_future_destroy(s.f);
	}
	return NULL;
}

Test(future, call_soon_threadsafe_from_a_foreign_thread, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, thread_calls_soon_threadsafe, rt), 0);
	pthread_join(th, NULL);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
}

/* The waiter owns the future again as soon as its wait returns: destroying it at once must
 * be safe however far the setter still is inside rotor_future_set(). */
static void sets_future_to_arg(void *arg)
{
	CHECK_EQ(rotor_future_set((struct rotor_future *)arg, P(42)), 0);
}

static atomic_int destroy_race_errors;

struct destroy_race {
	struct rotor_runtime *rt;
	int worker;
};

static void *waits_then_destroys_at_once(void *arg)
{
	struct destroy_race *d = arg;
	struct rotor_future *f = NULL;
	void *res = NULL;
	if (rotor_future_create(&f) != 0 ||
	    rotor_call_soon_threadsafe(d->rt, d->worker, sets_future_to_arg, f) != 0 ||
	    rotor_future_wait(f, rotor_now() + 5 * SEC, &res) != 0 || U(res) != 42)
		atomic_fetch_add(&destroy_race_errors, 1);
	rotor_future_destroy(f);
	return NULL;
}

Test(future, waiter_may_destroy_the_future_as_soon_as_wait_returns, .timeout = 30)
{
	struct rotor_runtime *rt = make_rt(2);
	/* A fresh thread each time: woken by the setter's futex wake, it tends to preempt
	 * the setter's worker on a shared CPU, which is when a late touch shows. */
	for (int i = 0; i < 400; i++) {
		struct destroy_race d = {.rt = rt, .worker = i % 2};
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, waits_then_destroys_at_once, &d), 0);
		pthread_join(th, NULL);
	}
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_assert_eq(atomic_load(&destroy_race_errors), 0);
	ASSERT_CHECKS();
}

static atomic_int soon_count;
static atomic_int soon_bad_worker;

static void counts_on_any(void *arg)
{
	(void)arg;
	int w = rotor_worker_id();
	if (w < 0 || w >= 2)
		atomic_fetch_add(&soon_bad_worker, 1);
	atomic_fetch_add(&soon_count, 1);
}

Test(future, a_thousand_threadsafe_callbacks_on_any_worker, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(2);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(rotor_call_soon_threadsafe(rt, ROTOR_WORKER_ANY, counts_on_any, NULL),
		             0);
	cr_assert_eq(wait_at_least(&soon_count, 1000, 5 * SEC), 0, "%d of 1000 ran",
	             atomic_load(&soon_count));
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_assert_eq(atomic_load(&soon_count), 1000);
	cr_assert_eq(atomic_load(&soon_bad_worker), 0);
}

/* ---- stale handles ---- */

/* Every call on a stale future handle: -EINVAL, and destroy does nothing. */
static int stale_future_calls(struct rotor_future *stale)
{
	int bad = 0;
	void *res = NULL;
	bad += rotor_future_set(stale, P(1)) != -EINVAL;
	bad += rotor_future_cancel(stale) != -EINVAL;
	bad += rotor_future_done(stale) != -EINVAL;
	bad += rotor_future_wait(stale, 0, &res) != -EINVAL;
	bad += res != NULL;
	rotor_future_destroy(stale);
	return bad;
}

/* 100,000 futures made and destroyed in turn; each time, the handle destroyed last and the
 * one whose slot the live future took are used: refused, and the live future untouched. */
Test(future, a_stale_handle_never_reaches_the_future_that_reuses_its_slot, .timeout = 60)
{
	static struct stale_ring r;
	int bad = 0, i;
	for (i = 0; i < 100000 && !bad; i++) {
		struct rotor_future *live = make_future();
		void *last = stale_last(&r), *alias = stale_alias(&r, live);
		if (last)
			bad += stale_future_calls(last);
		if (alias && alias != last)
			bad += stale_future_calls(alias);
		/* Neither resolved, cancelled nor released by the stale calls. */
		bad += rotor_future_done(live) != 0;
		bad += rotor_future_set(live, P(i + 1)) != 0;
		void *res = NULL;
		bad += rotor_future_wait(live, ROTOR_FOREVER, &res) != 0 || res != P(i + 1);
		rotor_future_destroy(live);
		stale_put(&r, live);
	}
	cr_assert_eq(bad, 0, "cycle %d: a stale handle reached a live future", i - 1);
	cr_assert_gt(r.hits, 1000, "only %u cycles reused a stale handle's slot", r.hits);
}

static void *sleeps_50ms(void *arg)
{
	rotor_sleep(50 * MS);
	return arg;
}

/* The user's handle ends at destroy, while the task behind it still holds the memory. */
Test(future, a_destroyed_handle_is_refused_while_its_task_still_runs, .timeout = 10)
{
	struct rotor_runtime *rt = make_rt(1);
	struct rotor_future *f;
	cr_assert_eq(rotor_submit(rt, 0, sleeps_50ms, NULL, &f), 0);
	rotor_future_destroy(f);
	cr_assert_eq(stale_future_calls(f), 0);
	cr_assert_eq(rotor_future_done(NULL), -EINVAL);
	cr_assert_eq(rotor_runtime_drain(rt, rotor_now() + 5 * SEC), 0);
	cr_assert_eq(stale_future_calls(f), 0); /* and after the task let go of it */
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}
