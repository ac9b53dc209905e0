/*
 * Task groups (rotor/group.h) and tasks that fail with an error code (rotor_task_fail):
 * waiting joins every task, the first failure or a cancel cancels the rest, a cancelled
 * waiter still waits for what it cancels, nothing outlives the group.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rotor.h>

#include "check.h"

static atomic_int ended, cancelled;

static void *sleeps_arg_ms(void *arg)
{
	int r = rotor_sleep((int64_t)(intptr_t)arg * MS);
	atomic_fetch_add(r == -ECANCELED ? &cancelled : &ended, 1);
	return arg;
}

static void *fails_with_eio_after_10ms(void *arg)
{
	(void)arg;
	rotor_sleep(10 * MS);
	CHECK_EQ(rotor_task_fail(-EIO), 0);
	atomic_fetch_add(&ended, 1);
	return NULL;
}

static void reset(void)
{
	atomic_store(&ended, 0);
	atomic_store(&cancelled, 0);
}

static void *waits_for_ten(void *arg)
{
	(void)arg;
	struct rotor_group *g;
	CHECK_EQ(rotor_group_create(&g), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(rotor_group_spawn(g, NULL, sleeps_arg_ms, P(i * 3)), 0);
	CHECK_EQ(rotor_group_wait(g, ROTOR_FOREVER), 0);
	CHECK_EQ(atomic_load(&ended), 10);
	CHECK_EQ(rotor_group_destroy(g), 0);
	return NULL;
}

Test(group, waiting_joins_every_task, .timeout = 10)
{
	reset();
	run_checked(2, waits_for_ten, NULL);
}

static void *one_fails(void *arg)
{
	(void)arg;
	struct rotor_group *g;
	CHECK_EQ(rotor_group_create(&g), 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(rotor_group_spawn(g, NULL, sleeps_arg_ms, P(10000)), 0);
	CHECK_EQ(rotor_group_spawn(g, NULL, fails_with_eio_after_10ms, NULL), 0);
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_group_wait(g, ROTOR_FOREVER), -EIO);
	CHECK(rotor_now() - t0 < 5000 * MS);
	CHECK_EQ(atomic_load(&cancelled), 5);
	CHECK_EQ(rotor_group_spawn(g, NULL, sleeps_arg_ms, P(1)), -ECANCELED);
	CHECK_EQ(rotor_group_destroy(g), 0);
	return NULL;
}

Test(group, the_first_failure_cancels_the_rest_and_is_what_wait_returns, .timeout = 10)
{
	reset();
	run_checked(2, one_fails, NULL);
}

static void *cancels_its_group(void *arg)
{
	(void)arg;
	struct rotor_group *g;
	CHECK_EQ(rotor_group_create(&g), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(rotor_group_spawn(g, NULL, sleeps_arg_ms, P(10000)), 0);
	CHECK_EQ(rotor_group_wait(g, rotor_now() + 10 * MS), -ETIMEDOUT);
	CHECK_EQ(rotor_group_cancel(g), 0);
	CHECK_EQ(rotor_group_wait(g, ROTOR_FOREVER), -ECANCELED);
	CHECK_EQ(atomic_load(&cancelled), 3);
	CHECK_EQ(rotor_group_destroy(g), 0);
	return NULL;
}

Test(group, a_timed_out_wait_keeps_the_tasks_and_a_cancel_ends_them, .timeout = 10)
{
	reset();
	run_checked(1, cancels_its_group, NULL);
}

static atomic_int waiter_returned_before_children;

static void *waits_on_sleepers(void *arg)
{
	(void)arg;
	struct rotor_group *g;
	CHECK_EQ(rotor_group_create(&g), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(rotor_group_spawn(g, NULL, sleeps_arg_ms, P(10000)), 0);
	CHECK_EQ(rotor_group_wait(g, ROTOR_FOREVER), -ECANCELED);
	if (atomic_load(&cancelled) != 4)
		atomic_store(&waiter_returned_before_children, 1);
	CHECK_EQ(rotor_group_destroy(g), 0);
	return NULL;
}

static void *main_cancels_the_waiter(void *arg)
{
	(void)arg;
	struct rotor_task *t;
	CHECK_EQ(rotor_spawn(waits_on_sleepers, NULL, &t), 0);
	CHECK_EQ(rotor_sleep(10 * MS), 0);
	CHECK_EQ(rotor_cancel(t), 0);
	CHECK_EQ(rotor_join(t, NULL), -ECANCELED);
	return NULL;
}

Test(group, a_cancelled_waiter_cancels_its_tasks_and_waits_for_them, .timeout = 10)
{
	reset();
	atomic_store(&waiter_returned_before_children, 0);
	run_checked(2, main_cancels_the_waiter, NULL);
	cr_assert_eq(atomic_load(&waiter_returned_before_children), 0);
}

static void *destroys_a_busy_group(void *arg)
{
	(void)arg;
	struct rotor_group *g;
	CHECK_EQ(rotor_group_create(&g), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(rotor_group_spawn(g, NULL, sleeps_arg_ms, P(10000)), 0);
	CHECK_EQ(rotor_sleep(5 * MS), 0);
	CHECK_EQ(rotor_group_destroy(g), 0);
	CHECK_EQ(atomic_load(&cancelled), 6); /* nothing outlived it */
	return NULL;
}

Test(group, destroy_cancels_and_waits_for_what_runs, .timeout = 10)
{
	reset();
	run_checked(2, destroys_a_busy_group, NULL);
}

/* ---- rotor_task_fail through join, gather and a future ---- */

static void *fails_with_arg(void *arg)
{
	CHECK_EQ(rotor_task_fail((int)(intptr_t)arg), 0);
	return P(7);
}

static void *joins_failures(void *arg)
{
	(void)arg;
	struct rotor_task *t[2];
	void *res = NULL;
	CHECK_EQ(rotor_spawn(fails_with_arg, P(-EIO), &t[0]), 0);
	CHECK_EQ(rotor_join(t[0], &res), -EIO);
	CHECK(res == P(7)); /* the result is stored all the same */
	CHECK_EQ(rotor_spawn(fails_with_arg, P(-EPIPE), &t[0]), 0);
	CHECK_EQ(rotor_spawn(sleeps_arg_ms, P(1), &t[1]), 0);
	int errs[2];
	CHECK_EQ(rotor_gather(t, 2, ROTOR_FOREVER, NULL, errs), -EPIPE);
	CHECK_EQ(errs[0], -EPIPE);
	CHECK_EQ(errs[1], 0);
	CHECK_EQ(rotor_task_fail(0), -EINVAL);
	CHECK_EQ(rotor_task_fail(5), -EINVAL);
	return NULL;
}

Test(group, a_failure_declared_by_a_task_is_what_join_and_gather_report, .timeout = 10)
{
	reset();
	run_checked(1, joins_failures, NULL);
	cr_assert_eq(rotor_task_fail(-EIO), -EPERM);
}

Test(group, a_submitted_task_that_fails_fails_its_future, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1};
	struct rotor_runtime *rt;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	void *res = NULL;
	cr_assert_eq(rotor_call(rt, 0, fails_with_arg, P(-ENOENT), &res), -ENOENT);
	rotor_runtime_stop(rt);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}

/* ---- misuse ---- */

static struct rotor_group *shared_group;

static void *uses_another_workers_group(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_group_spawn(shared_group, NULL, sleeps_arg_ms, P(1)), -EPERM);
	CHECK_EQ(rotor_group_wait(shared_group, ROTOR_FOREVER), -EPERM);
	CHECK_EQ(rotor_group_cancel(shared_group), -EPERM);
	CHECK_EQ(rotor_group_destroy(shared_group), -EPERM);
	return NULL;
}

static void *misuses_groups(void *arg)
{
	(void)arg;
	CHECK_EQ(rotor_group_create(NULL), -EINVAL);
	CHECK_EQ(rotor_group_wait(NULL, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_group_create(&shared_group), 0);
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *t;
	CHECK_EQ(rotor_spawn_attr(&on1, uses_another_workers_group, NULL, &t), 0);
	CHECK_EQ(rotor_join(t, NULL), 0);
	CHECK_EQ(rotor_group_destroy(shared_group), 0);
	return NULL;
}

Test(group, misuse_is_an_error, .timeout = 10)
{
	struct rotor_group *g;
	cr_assert_eq(rotor_group_create(&g), -EPERM);
	reset();
	run_checked(2, misuses_groups, NULL);
}
