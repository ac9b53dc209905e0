/*
 * Tasks: spawn, join, detach, cancel, placement on workers, names, identity, yield order and
 * scale. Every runtime here is a rotor_run(); checks made inside tasks are recorded and
 * asserted by the test's thread after rotor_run returns.
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

static void *returns_double(void *arg)
{
	return P(U(arg) * 2);
}

static int run_main(unsigned workers, rotor_fn fn, void *arg, void **res)
{
	struct rotor_config cfg = {.workers = workers};
	return rotor_run(&cfg, fn, arg, res);
}

#define RUN_MAIN(workers, fn, arg)                                                                 \
	do {                                                                                       \
		int rc_ = run_main(workers, fn, arg, NULL);                                        \
		cr_assert_eq(rc_, 0, "rotor_run: %d", rc_);                                        \
		ASSERT_CHECKS();                                                                   \
	} while (0)

/* ---- spawn and join ------------------------------------------------------------------- */

static void *main_spawns_and_joins(void *arg)
{
	(void)arg;
	struct rotor_task *h = NULL;
	void *res = NULL;
	CHECK_EQ(rotor_spawn(returns_double, P(21), &h), 0);
	CHECK(h != NULL);
	CHECK_EQ(rotor_task_worker(h), 0);
	CHECK_EQ(rotor_join(h, &res), 0);
	CHECK_EQ(U(res), 42);

	CHECK_EQ(rotor_spawn_attr(NULL, returns_double, P(5), &h), 0);
	CHECK_EQ(rotor_task_worker(h), 0); /* attr NULL: ROTOR_WORKER_SELF */
	CHECK_EQ(rotor_join(h, NULL), 0);
	return NULL;
}

Test(task, spawn_and_join_return_the_result, .timeout = 10)
{
	RUN_MAIN(2, main_spawns_and_joins, NULL);
}

static void *main_joins_a_finished_task(void *arg)
{
	(void)arg;
	struct rotor_task *h = NULL;
	void *res = NULL;
	CHECK_EQ(rotor_spawn(returns_double, P(8), &h), 0);
	CHECK_EQ(rotor_sleep(10 * MS), 0); /* h has long finished */
	CHECK_EQ(rotor_join(h, &res), 0);
	CHECK_EQ(U(res), 16);
	return NULL;
}

Test(task, join_of_a_finished_task_returns_at_once, .timeout = 10)
{
	RUN_MAIN(1, main_joins_a_finished_task, NULL);
}

/* ---- cancellation ---------------------------------------------------------------------- */

struct sleeper {
	atomic_int started;
	atomic_int rc;
	atomic_int rc_again;
	atomic_int yield_rc;
	atomic_int cancelled;
	_Atomic int64_t took;
};

static void sleeper_init(struct sleeper *s)
{
	atomic_init(&s->started, 0);
	atomic_init(&s->rc, 1);
	atomic_init(&s->rc_again, 1);
	atomic_init(&s->yield_rc, 1);
	atomic_init(&s->cancelled, -1);
	atomic_init(&s->took, -1);
}

/* Sleeps 10 s unless cancelled; records what every wait returned. */
static void *records_its_sleep(void *arg)
{
	struct sleeper *s = arg;
	atomic_store(&s->started, 1);
	int64_t t0 = rotor_now();
	atomic_store(&s->rc, rotor_sleep(10 * SEC));
	atomic_store(&s->took, rotor_now() - t0);
	atomic_store(&s->cancelled, rotor_task_cancelled());
	atomic_store(&s->rc_again, rotor_sleep(10 * SEC));
	atomic_store(&s->yield_rc, rotor_yield());
	return P(55);
}

static void check_sleeper_cancelled(struct sleeper *s)
{
	CHECK_EQ(atomic_load(&s->rc), -ECANCELED);
	CHECK(atomic_load(&s->took) >= 0 && atomic_load(&s->took) < 2 * SEC);
	CHECK_EQ(atomic_load(&s->cancelled), 1);
	CHECK_EQ(atomic_load(&s->rc_again), -ECANCELED);
	CHECK_EQ(atomic_load(&s->yield_rc), -ECANCELED);
}

static void *main_cancels_a_sleeper(void *arg)
{
	int worker = (int)U(arg);
	struct sleeper s;
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(worker)};
	struct rotor_task *h = NULL;
	void *res = NULL;
	sleeper_init(&s);
	CHECK_EQ(rotor_spawn_attr(&attr, records_its_sleep, &s, &h), 0);
	for (int i = 0; i < 5000 && !atomic_load(&s.started); i++)
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(atomic_load(&s.started), 1);
	CHECK_EQ(rotor_sleep(5 * MS), 0); /* let it reach its sleep */
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_cancel(h), 0);
	CHECK_EQ(rotor_join(h, &res), -ECANCELED);
	CHECK(rotor_now() - t0 < 2 * SEC);
	CHECK_EQ(U(res), 55); /* the task ran: its result is still stored */
	check_sleeper_cancelled(&s);
	return NULL;
}

Test(task, cancel_wakes_a_sleeping_task_and_join_returns_ecanceled, .timeout = 15)
{
	RUN_MAIN(1, main_cancels_a_sleeper, P(0));
}

Test(task, cancel_wakes_a_sleeping_task_on_another_worker, .timeout = 15)
{
	RUN_MAIN(2, main_cancels_a_sleeper, P(1));
}

struct foreign_cancel {
	struct rotor_task *t;
	atomic_int rc;
};

static void *cancel_from_thread(void *arg)
{
	struct foreign_cancel *fc = arg;
	atomic_store(&fc->rc, rotor_cancel(fc->t));
	return NULL;
}

static void *main_cancels_from_a_foreign_thread(void *arg)
{
	(void)arg;
	struct sleeper s;
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1)};
	struct foreign_cancel fc;
	pthread_t th;
	sleeper_init(&s);
	atomic_init(&fc.rc, 1);
	CHECK_EQ(rotor_spawn_attr(&attr, records_its_sleep, &s, &fc.t), 0);
	while (!atomic_load(&s.started))
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(rotor_sleep(5 * MS), 0);
	CHECK_EQ(pthread_create(&th, NULL, cancel_from_thread, &fc), 0);
	pthread_join(th, NULL); /* a brief block of worker 0; the cancel needs only worker 1 */
	CHECK_EQ(atomic_load(&fc.rc), 0);
	CHECK_EQ(rotor_join(fc.t, NULL), -ECANCELED);
	check_sleeper_cancelled(&s);
	return NULL;
}

Test(task, cancel_from_a_foreign_thread, .timeout = 15)
{
	RUN_MAIN(2, main_cancels_from_a_foreign_thread, NULL);
}

static atomic_int ran;

static void *marks_ran(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	return P(1);
}

static void *main_cancels_before_first_run(void *arg)
{
	(void)arg;
	struct rotor_task *h = NULL, *d = NULL;
	CHECK_EQ(rotor_spawn(marks_ran, NULL, &h), 0);
	CHECK_EQ(rotor_cancel(h), 0);
	CHECK_EQ(rotor_spawn(marks_ran, NULL, &d), 0);
	CHECK_EQ(rotor_cancel(d), 0);
	CHECK_EQ(rotor_detach(d), 0);
	CHECK_EQ(rotor_join(h, NULL), -ECANCELED);
	CHECK_EQ(rotor_sleep(20 * MS), 0);
	CHECK_EQ(atomic_load(&ran), 0);
	return NULL;
}

Test(task, task_cancelled_before_it_ran_never_runs, .timeout = 10)
{
	RUN_MAIN(1, main_cancels_before_first_run, NULL);
	cr_assert_eq(atomic_load(&ran), 0, "a task cancelled before it ran has run");
}

struct joiner {
	struct rotor_task *target;
	atomic_int started;
	atomic_int rc;
};

static void *sleeps_100ms_returns_9(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_sleep(100 * MS), 0);
	return P(9);
}

static void *joins_target(void *arg)
{
	struct joiner *j = arg;
	atomic_store(&j->started, 1);
	atomic_store(&j->rc, rotor_join(j->target, NULL));
	return NULL;
}

static void *main_cancels_a_joiner(void *arg)
{
	(void)arg;
	struct joiner j;
	struct rotor_task *jh = NULL;
	void *res = NULL;
	atomic_init(&j.started, 0);
	atomic_init(&j.rc, 1);
	CHECK_EQ(rotor_spawn(sleeps_100ms_returns_9, NULL, &j.target), 0);
	CHECK_EQ(rotor_spawn(joins_target, &j, &jh), 0);
	while (!atomic_load(&j.started))
		CHECK_EQ(rotor_yield(), 0);
	CHECK_EQ(rotor_yield(), 0);
	CHECK_EQ(rotor_cancel(jh), 0);
	CHECK_EQ(rotor_join(jh, NULL), -ECANCELED);
	CHECK_EQ(atomic_load(&j.rc), -ECANCELED);
	/* the joiner was cancelled while waiting: the target's handle stays valid */
	CHECK_EQ(rotor_join(j.target, &res), 0);
	CHECK_EQ(U(res), 9);
	return NULL;
}

Test(task, joiner_cancelled_while_waiting_leaves_the_handle_valid, .timeout = 10)
{
	RUN_MAIN(1, main_cancels_a_joiner, NULL);
}

static void *reports_cancelled(void *arg)
{
	(void)arg;
	return P(rotor_task_cancelled());
}

static void *main_checks_not_cancelled(void *arg)
{
	(void)arg;
	struct rotor_task *h;
	void *res = P(7);
	CHECK_EQ(rotor_task_cancelled(), 0);
	CHECK_EQ(rotor_spawn(reports_cancelled, NULL, &h), 0);
	CHECK_EQ(rotor_join(h, &res), 0);
	CHECK_EQ(U(res), 0);
	return NULL;
}

Test(task, fresh_task_is_not_cancelled, .timeout = 10)
{
	RUN_MAIN(1, main_checks_not_cancelled, NULL);
}

/* ---- placement ------------------------------------------------------------------------- */

struct placed {
	atomic_int worker;
};

static void *records_worker(void *arg)
{
	atomic_store(&((struct placed *)arg)->worker, rotor_worker_id());
	return P(rotor_worker_id());
}

static void *main_spawns_on_each_worker(void *arg)
{
	(void)arg;
	struct placed p[3];
	struct rotor_task *h[3];
	for (int k = 0; k < 3; k++) {
		struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(k)};
		atomic_init(&p[k].worker, -1);
		CHECK_EQ(rotor_spawn_attr(&attr, records_worker, &p[k], &h[k]), 0);
		CHECK_EQ(rotor_task_worker(h[k]), k);
	}
	for (int k = 0; k < 3; k++) {
		void *res = NULL;
		CHECK_EQ(rotor_join(h[k], &res), 0);
		CHECK_EQ(U(res), k);
		CHECK_EQ(atomic_load(&p[k].worker), k);
	}
	return NULL;
}

Test(task, spawn_on_worker_k_runs_there, .timeout = 10)
{
	RUN_MAIN(3, main_spawns_on_each_worker, NULL);
}

static void *main_spawns_on_any_worker(void *arg)
{
	(void)arg;
	enum { N = 30 };
	struct placed p[N];
	struct rotor_task *h[N];
	int said[N];
	for (int i = 0; i < N; i++) {
		struct rotor_task_attr attr = {.on = ROTOR_ON_ANY};
		atomic_init(&p[i].worker, -1);
		CHECK_EQ(rotor_spawn_attr(&attr, records_worker, &p[i], &h[i]), 0);
		said[i] = rotor_task_worker(h[i]);
		CHECK(said[i] >= 0 && said[i] < 3);
	}
	for (int i = 0; i < N; i++) {
		CHECK_EQ(rotor_join(h[i], NULL), 0);
		CHECK_EQ(atomic_load(&p[i].worker), said[i]);
	}
	return NULL;
}

Test(task, worker_any_picks_a_valid_worker_and_reports_it, .timeout = 10)
{
	RUN_MAIN(3, main_spawns_on_any_worker, NULL);
}

static void *spawns_on_self(void *arg)
{
	(void)arg;
	struct placed p;
	struct rotor_task *h;
	atomic_init(&p.worker, -1);
	CHECK_EQ(rotor_spawn(records_worker, &p, &h), 0);
	CHECK_EQ(rotor_task_worker(h), rotor_worker_id());
	CHECK_EQ(rotor_join(h, NULL), 0);
	CHECK_EQ(atomic_load(&p.worker), rotor_worker_id());
	return P(rotor_worker_id());
}

static void *main_spawns_a_spawner_on_worker_1(void *arg)
{
	(void)arg;
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *h;
	void *res = NULL;
	CHECK_EQ(rotor_spawn_attr(&attr, spawns_on_self, NULL, &h), 0);
	CHECK_EQ(rotor_join(h, &res), 0);
	CHECK_EQ(U(res), 1);
	return NULL;
}

Test(task, spawn_from_worker_1_defaults_to_worker_1, .timeout = 10)
{
	RUN_MAIN(2, main_spawns_a_spawner_on_worker_1, NULL);
}

/* ---- names and identity ------------------------------------------------------------------ */

static void *reports_own_name(void *arg)
{
	const char *name = rotor_task_name(rotor_current());
	CHECK(name != NULL);
	if (name)
		CHECK_EQ(strcmp(name, (const char *)arg), 0);
	return NULL;
}

static int is_default_name(const char *name)
{
	if (!name || strncmp(name, "task-", 5) != 0 || !name[5])
		return 0;
	for (const char *c = name + 5; *c; c++)
		if (*c < '0' || *c > '9')
			return 0;
	return 1;
}

static void *main_names_tasks(void *arg)
{
	(void)arg;
	char buf[64] = "alpha";
	struct rotor_task_attr attr = {.on = ROTOR_ON_SELF, .name = buf};
	struct rotor_task *a, *b, *c, *l;
	CHECK_EQ(rotor_spawn_attr(&attr, reports_own_name, "alpha", &a), 0);
	strcpy(buf, "clobbered"); /* the name was copied */
	CHECK_EQ(strcmp(rotor_task_name(a), "alpha"), 0);

	CHECK_EQ(rotor_spawn(returns_double, NULL, &b), 0);
	CHECK_EQ(rotor_spawn(returns_double, NULL, &c), 0);
	const char *nb = rotor_task_name(b);
	char nb_copy[32] = "";
	CHECK(is_default_name(nb));
	if (nb)
		snprintf(nb_copy, sizeof(nb_copy), "%s", nb);
	const char *nc = rotor_task_name(c);
	CHECK(is_default_name(nc));
	/* "Valid while the handle is": b's name is still b's after asking for c's */
	CHECK(nb && strcmp(nb, nb_copy) == 0);
	CHECK(nb && nc && strcmp(nb, nc) != 0);

	memset(buf, 'x', 40);
	buf[40] = '\0';
	CHECK_EQ(rotor_spawn_attr(&attr, returns_double, NULL, &l), 0);
	CHECK_EQ(strlen(rotor_task_name(l)), 31);
	CHECK_EQ(strncmp(rotor_task_name(l), buf, 31), 0);

	CHECK_EQ(rotor_join(a, NULL), 0);
	CHECK_EQ(rotor_join(b, NULL), 0);
	CHECK_EQ(rotor_join(c, NULL), 0);
	CHECK_EQ(rotor_join(l, NULL), 0);
	return NULL;
}

Test(task, names_given_truncated_and_default, .timeout = 10)
{
	RUN_MAIN(1, main_names_tasks, NULL);
}

static _Atomic(struct rotor_task *) expected_self;

static void *checks_rotor_current(void *arg)
{
	(void)arg;
	CHECK(rotor_current() != NULL);
	CHECK(rotor_current() == atomic_load(&expected_self));
	return NULL;
}

static void *main_checks_rotor_current(void *arg)
{
	(void)arg;
	struct rotor_task *h;
	struct rotor_task *self = rotor_current();
	CHECK(self != NULL);
	CHECK_EQ(rotor_spawn(checks_rotor_current, NULL, &h), 0);
	atomic_store(&expected_self, h); /* h runs at a later turn */
	CHECK(h != self);
	CHECK_EQ(rotor_join(h, NULL), 0);
	CHECK(rotor_current() == self);
	return NULL;
}

Test(task, rotor_current_is_the_spawned_handle, .timeout = 10)
{
	RUN_MAIN(1, main_checks_rotor_current, NULL);
}

/* ---- scheduling order -------------------------------------------------------------------- */

static int order_log[16];
static int order_n;

static void *logs_and_yields(void *arg)
{
	for (int r = 0; r < 3; r++) {
		if (order_n < 16)
			order_log[order_n++] = (int)U(arg) * 10 + r;
		CHECK_EQ(rotor_yield(), 0);
	}
	return NULL;
}

static void *main_interleaves_three_tasks(void *arg)
{
	(void)arg;
	struct rotor_task *h[3];
	for (int i = 0; i < 3; i++)
		CHECK_EQ(rotor_spawn(logs_and_yields, P(i + 1), &h[i]), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(rotor_join(h[i], NULL), 0);
	return NULL;
}

Test(task, yield_interleaves_tasks_in_fifo_order, .timeout = 10)
{
	static const int want[] = {10, 20, 30, 11, 21, 31, 12, 22, 32};
	RUN_MAIN(1, main_interleaves_three_tasks, NULL);
	cr_assert_eq(order_n, 9, "%d entries logged", order_n);
	for (int i = 0; i < 9; i++)
		cr_assert_eq(order_log[i], want[i], "entry %d: %d, want %d", i, order_log[i],
		             want[i]);
}

/* ---- joins across workers -------------------------------------------------------------- */

static void *sleeps_20ms_returns_arg(void *arg)
{
	CHECK_EQ(rotor_sleep(20 * MS), 0);
	return arg;
}

static void *joins_arg_plus_one(void *arg)
{
	void *res = NULL;
	CHECK_EQ(rotor_worker_id(), 1);
	CHECK_EQ(rotor_join((struct rotor_task *)arg, &res), 0);
	return P(U(res) + 1);
}

static void *main_joins_across_workers(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *x, *j, *y, *z;
	void *res = NULL;

	/* worker 0 joins a task of worker 1 */
	CHECK_EQ(rotor_spawn_attr(&on1, sleeps_20ms_returns_arg, P(30), &y), 0);
	CHECK_EQ(rotor_join(y, &res), 0);
	CHECK_EQ(U(res), 30);

	/* worker 0 joins a task of worker 1 that has already ended */
	CHECK_EQ(rotor_spawn_attr(&on1, returns_double, P(4), &z), 0);
	CHECK_EQ(rotor_sleep(20 * MS), 0);
	CHECK_EQ(rotor_join(z, &res), 0);
	CHECK_EQ(U(res), 8);

	/* worker 1 joins a task of worker 0 */
	CHECK_EQ(rotor_spawn(sleeps_20ms_returns_arg, P(7), &x), 0);
	CHECK_EQ(rotor_spawn_attr(&on1, joins_arg_plus_one, x, &j), 0);
	CHECK_EQ(rotor_join(j, &res), 0);
	CHECK_EQ(U(res), 8);
	return NULL;
}

Test(task, join_across_workers, .timeout = 10)
{
	RUN_MAIN(2, main_joins_across_workers, NULL);
}

/* ---- many tasks -------------------------------------------------------------------------- */

#define MANY 10000
static atomic_int ran_on[2];

static void *counts_and_returns_3i_plus_1(void *arg)
{
	int w = rotor_worker_id();
	if (w >= 0 && w < 2)
		atomic_fetch_add(&ran_on[w], 1);
	return P(U(arg) * 3 + 1);
}

static void *main_spawns_ten_thousand(void *arg)
{
	(void)arg;
	static struct rotor_task *h[MANY];
	int spawned = 0;
	for (int i = 0; i < MANY; i++) {
		struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(i % 2)};
		int rc = rotor_spawn_attr(&attr, counts_and_returns_3i_plus_1, P(i), &h[i]);
		CHECK_EQ(rc, 0);
		if (rc)
			break;
		spawned++;
	}
	for (int i = 0; i < spawned; i++) {
		void *res = NULL;
		int rc = rotor_join(h[i], &res);
		CHECK_EQ(rc, 0);
		if (rc == 0)
			CHECK_EQ(U(res), 3 * (uintptr_t)i + 1);
	}
	return P(spawned);
}

Test(task, ten_thousand_tasks_spawned_and_joined, .timeout = 60)
{
	void *res = NULL;
	cr_assert_eq(run_main(2, main_spawns_ten_thousand, NULL, &res), 0);
	ASSERT_CHECKS();
	cr_assert_eq(U(res), MANY);
	cr_assert_eq(atomic_load(&ran_on[0]), MANY / 2);
	cr_assert_eq(atomic_load(&ran_on[1]), MANY / 2);
}

/* ---- detach ------------------------------------------------------------------------------ */

static atomic_int detached_done;

static void *sleeps_then_counts(void *arg)
{
	CHECK_EQ(rotor_sleep((int64_t)U(arg) * MS), 0);
	atomic_fetch_add(&detached_done, 1);
	return NULL;
}

static void *main_detaches(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *a, *b, *c;
	CHECK_EQ(rotor_spawn(sleeps_then_counts, P(10), NULL), 0); /* out NULL: detached */
	CHECK_EQ(rotor_spawn(sleeps_then_counts, P(10), &a), 0);
	CHECK_EQ(rotor_detach(a), 0);
	CHECK_EQ(rotor_spawn_attr(&on1, sleeps_then_counts, P(10), &b), 0);
	CHECK_EQ(rotor_detach(b), 0);
	CHECK_EQ(rotor_spawn(sleeps_then_counts, P(0), &c), 0);
	while (atomic_load(&detached_done) < 4)
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(rotor_detach(c), 0); /* c has ended: its memory goes now */
	return NULL;
}

Test(task, detached_tasks_run_to_completion, .timeout = 10)
{
	RUN_MAIN(2, main_detaches, NULL);
	cr_assert_eq(atomic_load(&detached_done), 4);
}

struct handoff {
	_Atomic(struct rotor_task *) child;
	atomic_int detach_rc;
};

static void *detaches_from_a_thread(void *arg)
{
	struct handoff *ho = arg;
	atomic_store(&ho->detach_rc, rotor_detach(atomic_load(&ho->child)));
	return NULL;
}

static void *main_detaches_from_a_foreign_thread(void *arg)
{
	(void)arg;
	struct handoff ho;
	struct rotor_task *c;
	pthread_t th;
	atomic_init(&ho.detach_rc, 1);
	CHECK_EQ(rotor_spawn(sleeps_then_counts, P(20), &c), 0);
	atomic_init(&ho.child, c);
	CHECK_EQ(pthread_create(&th, NULL, detaches_from_a_thread, &ho), 0);
	pthread_join(th, NULL); /* a brief block of the worker: detach does not need it */
	CHECK_EQ(atomic_load(&ho.detach_rc), 0);
	for (int i = 0; i < 5000 && atomic_load(&detached_done) < 1; i++)
		CHECK_EQ(rotor_sleep(1 * MS), 0);
	CHECK_EQ(atomic_load(&detached_done), 1);
	return NULL;
}

Test(task, detach_from_a_foreign_thread, .timeout = 10)
{
	RUN_MAIN(1, main_detaches_from_a_foreign_thread, NULL);
}

static void *main_cancels_an_ended_task(void *arg)
{
	(void)arg;
	struct rotor_task *h;
	void *res = NULL;
	CHECK_EQ(rotor_spawn(returns_double, P(6), &h), 0);
	CHECK_EQ(rotor_sleep(10 * MS), 0); /* h has ended, its handle is still held */
	CHECK_EQ(rotor_cancel(h), 0);
	CHECK_EQ(rotor_join(h, &res), 0); /* it ended before the cancel: not cancelled */
	CHECK_EQ(U(res), 12);
	return NULL;
}

Test(task, cancel_of_an_ended_but_unjoined_task_is_harmless, .timeout = 10)
{
	RUN_MAIN(1, main_cancels_an_ended_task, NULL);
}

/* ---- where an attr puts a task ---- */

static void *reports_worker(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)rotor_worker_id();
}

static int spawned_on(const struct rotor_task_attr *a)
{
	struct rotor_task *t;
	void *res = NULL;
	int r = rotor_spawn_attr(a, reports_worker, NULL, &t);
	if (r < 0)
		return r;
	CHECK_EQ(rotor_join(t, &res), 0);
	return (int)(intptr_t)res;
}

/* Runs on worker 1: only a name (the zero value of .on) must not move the task. */
static void *spawns_with_attrs(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_worker_id(), 1);
	struct rotor_task_attr named = {.name = "named"};
	CHECK_EQ(spawned_on(&named), 1);
	struct rotor_task_attr zero = {0};
	CHECK_EQ(spawned_on(&zero), 1);
	struct rotor_task_attr self = {.on = ROTOR_ON_SELF, .name = "self"};
	CHECK_EQ(spawned_on(&self), 1);
	struct rotor_task_attr on0 = {.on = ROTOR_ON_WORKER(0)};
	CHECK_EQ(spawned_on(&on0), 0);
	struct rotor_task_attr any = {.on = ROTOR_ON_ANY};
	int w = spawned_on(&any);
	CHECK(w == 0 || w == 1);
	struct rotor_task_attr past = {.on = ROTOR_ON_WORKER(2)};
	CHECK_EQ(spawned_on(&past), -EINVAL);
	struct rotor_task_attr neg = {.on = -5};
	CHECK_EQ(spawned_on(&neg), -EINVAL);
	return NULL;
}

static void *main_spawns_on_worker_1(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *t;
	CHECK_EQ(rotor_spawn_attr(&on1, spawns_with_attrs, NULL, &t), 0);
	CHECK_EQ(rotor_join(t, NULL), 0);
	return NULL;
}

Test(task, an_attr_that_only_names_the_task_keeps_it_on_the_calling_worker, .timeout = 10)
{
	cr_assert_eq(run_main(2, main_spawns_on_worker_1, NULL, NULL), 0);
	ASSERT_CHECKS();
}

/* ---- stale handles ---- */

static void *returns_after_a_yield(void *arg)
{
	rotor_yield();
	return arg;
}

/* A handle kept after its join, used while its struct serves 100,000 other tasks in turn:
 * every call on it is -EINVAL, and none reaches the live task that now owns the struct. */
static void *main_uses_a_stale_handle(void *arg)
{
	(void)arg;
	struct rotor_task *stale;
	CHECK_EQ(rotor_spawn(returns_after_a_yield, NULL, &stale), 0);
	CHECK_EQ(rotor_join(stale, NULL), 0);
	int bad = 0;
	for (int i = 0; i < 100000; i++) {
		struct rotor_task *live;
		void *res = NULL;
		if (rotor_spawn(returns_after_a_yield, P(i + 1), &live) < 0) {
			CHECK(0);
			break;
		}
		bad += rotor_cancel(stale) != -EINVAL;
		bad += rotor_detach(stale) != -EINVAL;
		bad += rotor_join_until(stale, rotor_now(), NULL) != -EINVAL;
		bad += rotor_task_worker(stale) != -EINVAL;
		bad += rotor_task_name(stale)[0] != 0;
		struct rotor_task *set[1] = {stale};
		bad += rotor_wait_any(set, 1, rotor_now()) != -EINVAL;
		/* The live task was neither cancelled nor joined by the stale calls. */
		CHECK_EQ(rotor_join(live, &res), 0);
		bad += res != P(i + 1);
		if (bad)
			break;
	}
	CHECK_EQ(bad, 0);
	return NULL;
}

Test(task, a_stale_handle_never_reaches_the_task_that_reuses_its_struct, .timeout = 60)
{
	RUN_MAIN(1, main_uses_a_stale_handle, NULL);
}

/* ---- shields ---- */

static atomic_int shield_step;

/* Cancelled in its sleep, it opens a shield: its calls work again until the shield ends. */
static void *cleans_up_after_a_cancel(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_sleep(10 * 1000 * MS), -ECANCELED);
	CHECK_EQ(rotor_sleep(0), -ECANCELED);
	CHECK_EQ(rotor_shield_begin(rotor_now() + 1000 * MS), 0);
	CHECK_EQ(rotor_task_cancelled(), 0);
	CHECK_EQ(rotor_sleep(10 * MS), 0); /* the goodbye */
	atomic_store(&shield_step, 1);
	CHECK_EQ(rotor_shield_end(), 0);
	CHECK_EQ(rotor_task_cancelled(), 1);
	CHECK_EQ(rotor_sleep(10 * MS), -ECANCELED);
	return NULL;
}

/* Shielded from the start: a cancel that comes during its sleep waits for the shield's end. */
static void *sleeps_in_a_shield(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_shield_begin(rotor_now() + 1000 * MS), 0);
	CHECK_EQ(rotor_shield_begin(rotor_now() + 2000 * MS), 0); /* nested */
	CHECK_EQ(rotor_sleep(50 * MS), 0);
	CHECK_EQ(rotor_task_cancelled(), 0);
	CHECK_EQ(rotor_shield_end(), 0);
	CHECK_EQ(rotor_task_cancelled(), 0); /* the outer shield is still open */
	CHECK_EQ(rotor_shield_end(), 0);
	atomic_store(&shield_step, 2);
	CHECK_EQ(rotor_task_cancelled(), 1);
	return NULL;
}

/* A shield whose deadline passes: the kept cancel ends the wait it is in. */
static void *outstays_its_shield(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_shield_begin(rotor_now() + 30 * MS), 0);
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_sleep(2000 * MS), -ECANCELED);
	CHECK(rotor_now() - t0 < 1000 * MS);
	atomic_store(&shield_step, 3);
	CHECK_EQ(rotor_shield_end(), 0);
	return NULL;
}

static void *main_cancels_a_shielded_task(void *body)
{
	struct rotor_task *t;
	atomic_store(&shield_step, 0);
	CHECK_EQ(rotor_spawn(body, NULL, &t), 0);
	CHECK_EQ(rotor_sleep(10 * MS), 0);
	CHECK_EQ(rotor_cancel(t), 0);
	CHECK_EQ(rotor_join(t, NULL), -ECANCELED);
	return NULL;
}

Test(task, a_shield_gives_a_cancelled_task_its_calls_back_until_it_ends, .timeout = 10)
{
	RUN_MAIN(1, main_cancels_a_shielded_task, cleans_up_after_a_cancel);
	cr_assert_eq(atomic_load(&shield_step), 1);
}

Test(task, a_cancel_during_a_shield_takes_effect_when_the_outer_shield_ends, .timeout = 10)
{
	RUN_MAIN(1, main_cancels_a_shielded_task, sleeps_in_a_shield);
	cr_assert_eq(atomic_load(&shield_step), 2);
}

Test(task, a_shields_deadline_ends_the_wait_its_kept_cancel_was_held_from, .timeout = 10)
{
	RUN_MAIN(1, main_cancels_a_shielded_task, outstays_its_shield);
	cr_assert_eq(atomic_load(&shield_step), 3);
}

/* The stop cancels every task: a shielded one finishes what it does first. */
static void *says_goodbye_in_a_shield(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_shield_begin(rotor_now() + 1000 * MS), 0);
	CHECK_EQ(rotor_sleep(50 * MS), 0);
	atomic_store(&shield_step, 4);
	CHECK_EQ(rotor_shield_end(), 0);
	return NULL;
}

static void *main_stops_with_a_shielded_task(void *arg)
{
	(void)arg;
	atomic_store(&shield_step, 0);
	CHECK_EQ(rotor_spawn(says_goodbye_in_a_shield, NULL, NULL), 0);
	CHECK_EQ(rotor_sleep(5 * MS), 0);
	return NULL; /* the stop begins */
}

Test(task, a_stop_waits_for_a_shield_to_end, .timeout = 10)
{
	RUN_MAIN(1, main_stops_with_a_shielded_task, NULL);
	cr_assert_eq(atomic_load(&shield_step), 4);
}

static void *misuses_shields(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_shield_begin(ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_shield_end(), -EINVAL);
	return NULL;
}

Test(task, shield_misuse_is_an_error, .timeout = 10)
{
	cr_assert_eq(rotor_shield_begin(rotor_now()), -EPERM);
	cr_assert_eq(rotor_shield_end(), -EPERM);
	RUN_MAIN(1, misuses_shields, NULL);
}

/* ---- graceful drain ---- */

static atomic_int drained_ok, drained_cut;
static _Atomic int64_t shield_began;

static void *answers_in_a_shield(void *arg)
{
	int64_t ms = (int64_t)(intptr_t)arg;
	atomic_store(&shield_began, rotor_now());
	CHECK_EQ(rotor_shield_begin(rotor_now() + 10 * 1000 * MS), 0);
	int r = rotor_sleep(ms * MS); /* the request being answered */
	atomic_fetch_add(r == 0 ? &drained_ok : &drained_cut, 1);
	CHECK_EQ(rotor_shield_end(), 0);
	return NULL;
}

static void *idles(void *arg)
{
	(void)arg;
	int r = rotor_sleep(10 * 1000 * MS);
	atomic_fetch_add(r == 0 ? &drained_ok : &drained_cut, 1);
	return NULL;
}

static void *spawns(void *arg)
{
	CHECK_EQ(rotor_spawn(answers_in_a_shield, arg, NULL), 0);
	CHECK_EQ(rotor_spawn(idles, NULL, NULL), 0);
	return NULL;
}

/* Drain a runtime whose shielded task needs `ms`, with `grace` ms to spare; returns how long
 * after the shielded task began its work the drain ended (ms), which does not depend on how
 * long this thread's nap before the drain took on a loaded machine. */
static int64_t drain_with(int64_t ms, int64_t grace)
{
	struct rotor_config cfg = {.workers = 1};
	struct rotor_runtime *rt;
	atomic_store(&drained_ok, 0);
	atomic_store(&drained_cut, 0);
	atomic_store(&shield_began, 0);
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	cr_assert_eq(rotor_call(rt, 0, spawns, P(ms), NULL), 0);
	struct timespec ts = {0, 10 * 1000 * 1000};
	for (int i = 0; i < 500 && !atomic_load(&shield_began); i++)
		nanosleep(&ts, NULL);
	nanosleep(&ts, NULL); /* both are in their sleeps */
	cr_assert_eq(rotor_runtime_drain(rt, atomic_load(&shield_began) + grace * MS), 0);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	return (rotor_now() - atomic_load(&shield_began)) / MS;
}

Test(task, a_drain_lets_shielded_work_finish_and_cancels_the_rest_at_once, .timeout = 20)
{
	int64_t took = drain_with(100, 5000);
	cr_assert_eq(atomic_load(&drained_ok), 1, "the shielded answer completed");
	cr_assert_eq(atomic_load(&drained_cut), 1, "the idle task was cancelled");
	cr_assert(took >= 100 && took < 2000, "drain ended %lld ms after the work began",
	          (long long)took);
}

Test(task, a_drains_deadline_cuts_shielded_work_that_takes_longer, .timeout = 20)
{
	int64_t took = drain_with(10 * 1000, 100);
	cr_assert_eq(atomic_load(&drained_ok), 0);
	cr_assert_eq(atomic_load(&drained_cut), 2, "both were cancelled");
	cr_assert(took >= 100 && took < 2000, "drain ended %lld ms after the work began",
	          (long long)took);
}
