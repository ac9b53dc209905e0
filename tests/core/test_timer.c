/*
 * Timers and callbacks: sleep, sleep_until, call_soon, call_later, rotor_timer_cancel, and
 * the rule that a callback must not suspend. Ordering is asserted (deadline order on one
 * worker); timing only with generous bounds.
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
#include "internal.h"

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

/* An append-only log, written on one worker and read after rotor_run returns. */
#define LOG_MAX 2048
static int64_t log_v[LOG_MAX];
static int log_n;

static void log_add(int64_t v)
{
	if (log_n < LOG_MAX)
		log_v[log_n++] = v;
}

/* Sleeps until every one of n entries is logged, or 5 s have passed. */
static void wait_log(int n)
{
	int64_t deadline = rotor_now() + 5 * SEC;
	while (log_n < n && rotor_now() < deadline)
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(log_n, n);
}

static void assert_log(const int64_t *want, int n)
{
	cr_assert_eq(log_n, n, "%d entries logged, want %d", log_n, n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(log_v[i], want[i], "entry %d: %lld, want %lld", i, (long long)log_v[i],
		             (long long)want[i]);
}

/* ---- sleep -------------------------------------------------------------------------------- */

static void *sleeps_arg_ms_then_logs(void *arg)
{
	int64_t ms = (int64_t)U(arg), t0 = rotor_now();
	CHECK_EQ(rotor_sleep(ms * MS), 0);
	int64_t took = rotor_now() - t0;
	CHECK(took >= ms * MS);
	CHECK(took < ms * MS + 2 * SEC);
	log_add(ms);
	return NULL;
}

static void *main_sleeps_in_shuffled_order(void *arg)
{
	(void)arg;
	static const int ms[] = {150, 30, 120, 60, 90};
	struct rotor_task *h[5];
	for (int i = 0; i < 5; i++)
		CHECK_EQ(rotor_spawn(sleeps_arg_ms_then_logs, P(ms[i]), &h[i]), 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(rotor_join(h[i], NULL), 0);
	return NULL;
}

Test(timer, sleeps_wake_in_deadline_order, .timeout = 10)
{
	static const int64_t want[] = {30, 60, 90, 120, 150};
	RUN_MAIN(1, main_sleeps_in_shuffled_order, NULL);
	assert_log(want, 5);
}

struct until {
	int64_t deadline;
	int key;
};

static void *sleeps_until_then_logs(void *arg)
{
	struct until *u = arg;
	CHECK_EQ(rotor_sleep_until(u->deadline), 0);
	CHECK(rotor_now() >= u->deadline);
	log_add(u->key);
	return NULL;
}

static void *main_sleeps_until_many_deadlines(void *arg)
{
	(void)arg;
	enum { N = 1000 };
	static struct until u[N];
	static struct rotor_task *h[N];
	int64_t base = rotor_now() + 100 * MS; /* well after the last task has started */
	unsigned seed = 12345;
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		u[i].key = (int)((seed >> 8) % 5000); /* up to 50 ms after base, 10 us steps */
		u[i].deadline = base + (int64_t)u[i].key * 10000;
		CHECK_EQ(rotor_spawn(sleeps_until_then_logs, &u[i], &h[i]), 0);
	}
	for (int i = 0; i < N; i++)
		CHECK_EQ(rotor_join(h[i], NULL), 0);
	return NULL;
}

Test(timer, a_thousand_deadlines_wake_in_order, .timeout = 20)
{
	RUN_MAIN(1, main_sleeps_until_many_deadlines, NULL);
	cr_assert_eq(log_n, 1000);
	for (int i = 1; i < log_n; i++)
		cr_assert_leq(log_v[i - 1], log_v[i],
		              "woke out of deadline order at %d: %lld > %lld", i,
		              (long long)log_v[i - 1], (long long)log_v[i]);
}

static void *main_times_sleeps(void *arg)
{
	(void)arg;
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_sleep(50 * MS), 0);
	int64_t took = rotor_now() - t0;
	CHECK(took >= 50 * MS);
	CHECK(took < 2 * SEC);

	t0 = rotor_now();
	CHECK_EQ(rotor_sleep(0), 0);
	CHECK(rotor_now() - t0 < 1 * SEC);

	int64_t deadline = rotor_now() + 30 * MS;
	CHECK_EQ(rotor_sleep_until(deadline), 0);
	CHECK(rotor_now() >= deadline);
	return NULL;
}

Test(timer, sleep_lasts_at_least_its_duration, .timeout = 10)
{
	RUN_MAIN(1, main_times_sleeps, NULL);
}

static void *main_sleeps_until_the_past(void *arg)
{
	(void)arg;
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_sleep_until(t0 - 1 * SEC), 0);
	CHECK_EQ(rotor_sleep_until(0), 0);
	CHECK_EQ(rotor_sleep_until(t0), 0);
	CHECK(rotor_now() - t0 < 1 * SEC);
	return NULL;
}

Test(timer, sleep_until_in_the_past_returns_at_once, .timeout = 10)
{
	RUN_MAIN(1, main_sleeps_until_the_past, NULL);
}

static void *main_sleeps_on_both_workers(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *a, *b;
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_spawn(sleeps_arg_ms_then_logs, P(30), &a), 0);
	CHECK_EQ(rotor_spawn_attr(&on1, sleeps_arg_ms_then_logs, P(30), &b), 0);
	CHECK_EQ(rotor_join(a, NULL), 0);
	CHECK_EQ(rotor_join(b, NULL), 0);
	CHECK(rotor_now() - t0 < 2 * SEC); /* they slept side by side, not one after the other */
	return NULL;
}

Test(timer, sleeps_on_two_workers, .timeout = 10)
{
	RUN_MAIN(2, main_sleeps_on_both_workers, NULL);
}

/* ---- call_soon ---------------------------------------------------------------------------- */

static atomic_int cb_off_task;
static atomic_int cb_worker = -1;

static void logs_arg(void *arg)
{
	if (rotor_current() != NULL)
		atomic_store(&cb_off_task, -1);
	else if (atomic_load(&cb_off_task) == 0)
		atomic_store(&cb_off_task, 1);
	atomic_store(&cb_worker, rotor_worker_id());
	log_add((int64_t)U(arg));
}

static void logs_and_chains(void *arg)
{
	logs_arg(arg);
	CHECK_EQ(rotor_call_soon(logs_arg, P(U(arg) + 100)), 0);
}

static void *main_calls_soon(void *arg)
{
	(void)arg;
	for (int i = 1; i <= 5; i++)
		CHECK_EQ(rotor_call_soon(i == 1 ? logs_and_chains : logs_arg, P(i)), 0);
	CHECK_EQ(log_n, 0); /* callbacks run at the next loop turn, never inside call_soon */
	wait_log(6);
	return NULL;
}

Test(timer, call_soon_runs_callbacks_in_order_off_any_task, .timeout = 10)
{
	static const int64_t want[] = {1, 2, 3, 4, 5, 101};
	RUN_MAIN(1, main_calls_soon, NULL);
	assert_log(want, 6);
	cr_assert_eq(atomic_load(&cb_off_task), 1, "rotor_current() in a callback is not NULL");
	cr_assert_eq(atomic_load(&cb_worker), 0);
}

static void *calls_soon_on_worker_1(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_call_soon(logs_arg, P(7)), 0);
	wait_log(1);
	return NULL;
}

static void *main_calls_soon_on_worker_1(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *h;
	CHECK_EQ(rotor_spawn_attr(&on1, calls_soon_on_worker_1, NULL, &h), 0);
	CHECK_EQ(rotor_join(h, NULL), 0);
	return NULL;
}

Test(timer, call_soon_runs_on_the_calling_worker, .timeout = 10)
{
	RUN_MAIN(2, main_calls_soon_on_worker_1, NULL);
	cr_assert_eq(atomic_load(&cb_worker), 1);
}

/* ---- call_later --------------------------------------------------------------------------- */

struct fired {
	int64_t at;
	struct rotor_future *f;
	atomic_int count;
};

static void records_fire_time(void *arg)
{
	struct fired *fi = arg;
	fi->at = rotor_now();
	atomic_fetch_add(&fi->count, 1);
	if (fi->f)
		CHECK_EQ(rotor_future_set(fi->f, P(1)), 0);
}

static void *main_calls_later(void *arg)
{
	(void)arg;
	struct fired fi = {0};
	CHECK_EQ(rotor_future_create(&fi.f), 0);
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_call_later(50 * MS, records_fire_time, &fi, NULL), 0);
	CHECK_EQ(rotor_future_wait(fi.f, t0 + 5 * SEC, NULL), 0);
	CHECK(fi.at - t0 >= 50 * MS);
	CHECK(fi.at - t0 < 2 * SEC);
	CHECK_EQ(atomic_load(&fi.count), 1);
	rotor_future_destroy(fi.f);
	return NULL;
}

Test(timer, call_later_fires_after_its_delay, .timeout = 10)
{
	RUN_MAIN(1, main_calls_later, NULL);
}

static void later_from_callback(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_call_later(5 * MS, logs_arg, P(99), NULL), 0);
}

static void *main_calls_later_in_shuffled_order(void *arg)
{
	(void)arg;
	static const int ms[] = {30, 10, 20, 0, 40};
	for (int i = 0; i < 5; i++)
		CHECK_EQ(rotor_call_later(ms[i] * MS, logs_arg, P(ms[i]), NULL), 0);
	CHECK_EQ(rotor_call_later(60 * MS, later_from_callback, NULL, NULL), 0);
	wait_log(6);
	return NULL;
}

Test(timer, call_later_callbacks_fire_in_deadline_order, .timeout = 10)
{
	static const int64_t want[] = {0, 10, 20, 30, 40, 99};
	RUN_MAIN(1, main_calls_later_in_shuffled_order, NULL);
	assert_log(want, 6);
}

static void *main_cancels_timers(void *arg)
{
	(void)arg;
	struct fired early = {0}, late = {0};
	struct rotor_timer *t = NULL;

	CHECK_EQ(rotor_call_later(100 * MS, records_fire_time, &late, &t), 0);
	CHECK(t != NULL);
	CHECK_EQ(rotor_timer_cancel(t), 0);
	CHECK_EQ(rotor_sleep(200 * MS), 0);
	CHECK_EQ(atomic_load(&late.count), 0);

	CHECK_EQ(rotor_call_later(1 * MS, records_fire_time, &early, &t), 0);
	for (int i = 0; i < 5000 && atomic_load(&early.count) == 0; i++)
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(atomic_load(&early.count), 1);
	CHECK_EQ(rotor_timer_cancel(t), -EALREADY);
	CHECK_EQ(atomic_load(&early.count), 1);
	return NULL;
}

Test(timer, timer_cancel_before_and_after_firing, .timeout = 10)
{
	RUN_MAIN(1, main_cancels_timers, NULL);
}

static void counts_a_call(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* 100,000 call_later timers made and cancelled in turn; each time, the handle cancelled last
 * and the one whose slot the live timer took are cancelled again: -EINVAL, and the live timer
 * is still pending (its own cancel is 0) and never fires. */
static void *main_uses_stale_timer_handles(void *arg)
{
	(void)arg;
	static struct stale_ring r;
	static atomic_int calls;
	int bad = 0, i;
	for (i = 0; i < 100000 && !bad; i++) {
		struct rotor_timer *live = NULL;
		CHECK_EQ(rotor_call_later(10 * SEC, counts_a_call, &calls, &live), 0);
		void *last = stale_last(&r), *alias = stale_alias(&r, live);
		if (last)
			bad += rotor_timer_cancel(last) != -EINVAL;
		if (alias)
			bad += rotor_timer_cancel(alias) != -EINVAL;
		bad += rotor_timer_cancel(live) != 0;
		stale_put(&r, live);
		/* Handle-less callbacks share the slots. */
		if (i % 64 == 0)
			CHECK_EQ(rotor_call_soon(counts_a_call, &calls), 0);
	}
	CHECK_EQ(bad, 0);
	CHECK(r.hits > 1000);
	/* One that fired: its cancel frees it (-EALREADY), a second cancel is refused. */
	struct rotor_timer *t = NULL;
	int before = atomic_load(&calls);
	CHECK_EQ(rotor_call_later(MS, counts_a_call, &calls, &t), 0);
	for (int k = 0; k < 5000 && atomic_load(&calls) == before; k++)
		CHECK_EQ(rotor_sleep(MS), 0);
	CHECK_EQ(rotor_timer_cancel(t), -EALREADY);
	CHECK_EQ(rotor_timer_cancel(t), -EINVAL);
	CHECK_EQ(atomic_load(&calls), (100000 + 63) / 64 + 1); /* the call_soons and that one */
	return NULL;
}

Test(timer, a_stale_handle_never_reaches_the_timer_that_reuses_its_slot, .timeout = 60)
{
	RUN_MAIN(1, main_uses_stale_timer_handles, NULL);
}

static atomic_int foreign_cancel_rc = 1;

static void *cancels_timer_elsewhere(void *arg)
{
	return P(rotor_timer_cancel((struct rotor_timer *)arg));
}

static void *foreign_cancels_timer(void *arg)
{
	atomic_store(&foreign_cancel_rc, rotor_timer_cancel((struct rotor_timer *)arg));
	return NULL;
}

static void *main_cancels_timer_from_elsewhere(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct fired fi = {0};
	struct rotor_timer *t = NULL;
	struct rotor_task *h;
	void *res = NULL;
	pthread_t th;

	/* 1 s: the two attempts from elsewhere must come first, also under valgrind (where
	 * they took over 100 ms). */
	CHECK_EQ(rotor_call_later(1000 * MS, records_fire_time, &fi, &t), 0);
	CHECK_EQ(rotor_spawn_attr(&on1, cancels_timer_elsewhere, t, &h), 0);
	CHECK_EQ(rotor_join(h, &res), 0);
	CHECK_EQ((int)(intptr_t)res, -EPERM);
	CHECK_EQ(pthread_create(&th, NULL, foreign_cancels_timer, t), 0);
	pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&foreign_cancel_rc), -EPERM);
	/* neither attempt freed it: the owner still cancels it */
	CHECK_EQ(rotor_timer_cancel(t), 0);
	CHECK_EQ(rotor_sleep(1100 * MS), 0);
	CHECK_EQ(atomic_load(&fi.count), 0);
	return NULL;
}

Test(timer, timer_cancel_off_its_worker_is_eperm, .timeout = 10)
{
	RUN_MAIN(2, main_cancels_timer_from_elsewhere, NULL);
}

static void *main_sets_many_timers(void *arg)
{
	(void)arg;
	enum { N = 1000 };
	unsigned seed = 777;
	/* Delays aim at base + key ms, so that the deadlines' order is the keys' order however
	 * long this loop takes; equal keys may fire in either order. */
	int64_t base = rotor_now() + 50 * MS;
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		int64_t key = (int64_t)((seed >> 8) % 50);
		int64_t delay = base + key * MS - rotor_now();
		CHECK(delay >= 0);
		CHECK_EQ(rotor_call_later(delay < 0 ? 0 : delay, logs_arg, P(key), NULL), 0);
	}
	wait_log(N);
	return NULL;
}

Test(timer, a_thousand_call_laters_fire_in_order, .timeout = 20)
{
	RUN_MAIN(1, main_sets_many_timers, NULL);
	cr_assert_eq(log_n, 1000);
	for (int i = 1; i < log_n; i++)
		cr_assert_leq(log_v[i - 1], log_v[i], "fired out of deadline order at %d", i);
}

/* ---- what a callback may and may not do ------------------------------------------------------ */

struct in_callback {
	struct rotor_task *sibling;
	struct rotor_future *f;
	struct rotor_future *done;
	atomic_int spawned_ran;
};

static void *marks_spawned_ran(void *arg)
{
	atomic_store(&((struct in_callback *)arg)->spawned_ran, 1);
	return NULL;
}

static void noop_cb(void *arg)
{
	(void)arg;
}

static void tries_suspending_calls(void *arg)
{
	struct in_callback *c = arg;
	CHECK(rotor_current() == NULL);
	CHECK_EQ(rotor_sleep(1 * MS), -EPERM);
	CHECK_EQ(rotor_sleep_until(rotor_now() + 1 * MS), -EPERM);
	CHECK_EQ(rotor_yield(), -EPERM);
	CHECK_EQ(rotor_task_cancelled(), -EPERM);
	CHECK_EQ(rotor_future_wait(c->f, ROTOR_FOREVER, NULL), -EPERM);
	CHECK_EQ(rotor_future_wait(c->f, rotor_now() + 10 * MS, NULL), -EPERM);
	CHECK_EQ(rotor_join(c->sibling, NULL), -EPERM);
	/* calls that do not suspend are fine */
	CHECK_EQ(rotor_call_soon(noop_cb, NULL), 0);
	CHECK_EQ(rotor_call_later(1 * MS, noop_cb, NULL, NULL), 0);
	CHECK_EQ(rotor_spawn(marks_spawned_ran, c, NULL), 0);
	CHECK_EQ(rotor_future_set(c->done, P(1)), 0);
}

static void *main_checks_callback_limits(void *arg)
{
	int via = (int)U(arg);
	struct in_callback c = {0};
	void *res = NULL;
	CHECK_EQ(rotor_future_create(&c.f), 0);
	CHECK_EQ(rotor_future_create(&c.done), 0);
	CHECK_EQ(rotor_spawn(sleeps_arg_ms_then_logs, P(20), &c.sibling), 0);
	if (via == 0)
		CHECK_EQ(rotor_call_soon(tries_suspending_calls, &c), 0);
	else if (via == 1)
		CHECK_EQ(rotor_call_later(5 * MS, tries_suspending_calls, &c, NULL), 0);
	else
		CHECK_EQ(rotor_call_soon_threadsafe(rotor_runtime_current(), 0,
		                                    tries_suspending_calls, &c),
		         0);
	CHECK_EQ(rotor_future_wait(c.done, rotor_now() + 5 * SEC, &res), 0);
	CHECK_EQ(U(res), 1);
	for (int i = 0; i < 5000 && !atomic_load(&c.spawned_ran); i++)
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(atomic_load(&c.spawned_ran), 1);
	/* the callback's failed join left the handle valid, and the future unresolved */
	CHECK_EQ(rotor_join(c.sibling, NULL), 0);
	CHECK_EQ(rotor_future_done(c.f), 0);
	rotor_future_destroy(c.f);
	rotor_future_destroy(c.done);
	return NULL;
}

Test(timer, suspending_calls_from_call_soon_callback_are_eperm, .timeout = 10)
{
	RUN_MAIN(1, main_checks_callback_limits, P(0));
}

Test(timer, suspending_calls_from_call_later_callback_are_eperm, .timeout = 10)
{
	RUN_MAIN(1, main_checks_callback_limits, P(1));
}

Test(timer, suspending_calls_from_threadsafe_callback_are_eperm, .timeout = 10)
{
	RUN_MAIN(1, main_checks_callback_limits, P(2));
}

static void *main_leaves_a_timer_pending(void *arg)
{
	(void)arg;
	struct rotor_timer *t = NULL;
	CHECK_EQ(rotor_call_later(60 * SEC, logs_arg, P(1), NULL), 0);
	CHECK_EQ(rotor_call_later(60 * SEC, logs_arg, P(2), &t), 0);
	return NULL;
}

Test(timer, pending_timers_do_not_keep_the_runtime_alive, .timeout = 15)
{
	int64_t t0 = rotor_now();
	RUN_MAIN(2, main_leaves_a_timer_pending, NULL);
	cr_assert_lt(rotor_now() - t0, 5 * SEC, "rotor_run waited for a 60 s timer");
	cr_assert_eq(log_n, 0, "a 60 s timer fired");
}

/* ---- no memory for the heap: deadlines are kept all the same ---- */

static int wake_order[3];
static atomic_int woke_n;

static int64_t sleep_base;

/* Sleep until sleep_base + arg ms: absolute, so that the wake order does not depend on how
 * soon each sleeper started (valgrind runs them 20-50 times slower). */
static void *sleep_arg_ms(void *arg)
{
	CHECK_EQ(rotor_sleep_until(sleep_base + (int64_t)U(arg) * MS), 0);
	wake_order[atomic_fetch_add(&woke_n, 1)] = (int)U(arg);
	return NULL;
}

static void *out_of_order_sleepers(void *arg)
{
	struct rotor_task *t[3];
	sleep_base = rotor_now() + 300 * MS;
	/* 30 ms first (the in-order list), then 10 and 20: out of order, for the heap. */
	CHECK_EQ(rotor_spawn(sleep_arg_ms, P(30), &t[0]), 0);
	rotor_yield();
	CHECK_EQ(rotor_spawn(sleep_arg_ms, P(10), &t[1]), 0);
	CHECK_EQ(rotor_spawn(sleep_arg_ms, P(20), &t[2]), 0);
	CHECK_EQ(rotor_gather(t, 3, ROTOR_FOREVER, NULL, NULL), 0);
	return arg;
}

Test(timer, deadlines_hold_when_the_heap_cannot_grow, .timeout = 10)
{
	atomic_store(&woke_n, 0);
	atomic_store(&rotor__fault_timer_grow, 1);
	RUN_MAIN(1, out_of_order_sleepers, NULL);
	atomic_store(&rotor__fault_timer_grow, 0);
	cr_assert_eq(atomic_load(&woke_n), 3);
	cr_assert(wake_order[0] == 10 && wake_order[1] == 20 && wake_order[2] == 30,
	          "order %d %d %d", wake_order[0], wake_order[1], wake_order[2]);
}

/* ---- deadlines at the end of time ---- */

static atomic_int far_fired;

static void far_callback(void *arg)
{
	(void)arg;
	atomic_fetch_add(&far_fired, 1);
}

static void *main_calls_later_forever(void *arg)
{
	(void)arg;
	struct rotor_timer *h[3];
	/* now + delay overflowed for these: the callback came due at once. */
	CHECK_EQ(rotor_call_later(ROTOR_FOREVER, far_callback, NULL, &h[0]), 0);
	CHECK_EQ(rotor_call_later(ROTOR_FOREVER - 1, far_callback, NULL, &h[1]), 0);
	CHECK_EQ(rotor_call_later(ROTOR_FOREVER / 2 + 1, far_callback, NULL, &h[2]), 0);
	CHECK_EQ(rotor_sleep(20 * MS), 0);
	CHECK_EQ(atomic_load(&far_fired), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(rotor_timer_cancel(h[i]), 0);
	return NULL;
}

Test(timer, call_later_with_a_delay_near_forever_never_fires, .timeout = 10)
{
	atomic_store(&far_fired, 0);
	cr_assert_eq(run_main(1, main_calls_later_forever, NULL), 0);
	ASSERT_CHECKS();
}

static void *sleeps_until_nearly_forever(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_sleep_until(ROTOR_FOREVER - 1), -ECANCELED);
	return NULL;
}

static void *cancels_after_50ms(void *t)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	rotor_cancel(t);
	return NULL;
}

/* The worker's only timer is due at ROTOR_FOREVER - 1: the wait's deadline (the timer plus
 * its slack) overflowed, so the worker entered the kernel without waiting, over and over. */
static void *main_waits_on_a_far_sleeper(void *arg)
{
	(void)arg;
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_worker_stats a, b;
	struct rotor_task *t;
	pthread_t th;
	CHECK_EQ(rotor_spawn(sleeps_until_nearly_forever, NULL, &t), 0);
	rotor_yield();
	CHECK_EQ(rotor_worker_stats(rt, 0, &a), 0);
	CHECK_EQ(pthread_create(&th, NULL, cancels_after_50ms, t), 0);
	CHECK_EQ(rotor_join(t, NULL), -ECANCELED);
	CHECK_EQ(rotor_worker_stats(rt, 0, &b), 0);
	pthread_join(th, NULL);
	CHECK(b.enters - a.enters < 100);
	return NULL;
}

Test(timer, a_deadline_near_forever_lets_the_worker_sleep, .timeout = 10)
{
	cr_assert_eq(run_main(1, main_waits_on_a_far_sleeper, NULL), 0);
	ASSERT_CHECKS();
}
