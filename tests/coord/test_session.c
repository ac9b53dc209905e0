/*
 * Sessions (rotor/session.h): an object per worker opened by a task on first use (the opening
 * may suspend), concurrent first users waiting for the one opening and all getting its error
 * when it fails, replacement of a broken object (closed by a task once its last holder puts it
 * back), closing by a task on each worker when the runtime stops or drains (shielded, after
 * the holders are done), and misuse.
 */
#include <criterion/criterion.h>
#include <rotor/session.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define F ROTOR_FOREVER

struct obj {
	int worker;
	int serial;
};

static atomic_int opens, closes, closed_on_own_worker, close_slept;
static atomic_int fail_with;                   /* open's error, 0: succeed */
static _Atomic int64_t put_at[2], close_at[2]; /* per worker */

static void reset(void)
{
	atomic_store(&opens, 0);
	atomic_store(&closes, 0);
	atomic_store(&closed_on_own_worker, 0);
	atomic_store(&close_slept, 0);
	atomic_store(&fail_with, 0);
	for (int w = 0; w < 2; w++) {
		atomic_store(&put_at[w], 0);
		atomic_store(&close_at[w], 0);
	}
}

static int open_obj(void *arg, int64_t deadline, void **out)
{
	(void)arg;
	CHECK(rotor_current() != NULL); /* on a task: it may suspend */
	int n = atomic_fetch_add(&opens, 1) + 1;
	int err =
	    rotor_sleep_until(rotor_now() + 30 * MS < deadline ? rotor_now() + 30 * MS : deadline);
	if (err < 0)
		return err;
	if (atomic_load(&fail_with))
		return atomic_load(&fail_with);
	struct obj *o = malloc(sizeof(*o));
	o->worker = rotor_worker_id();
	o->serial = n;
	*out = o;
	return 0;
}

static void close_obj(void *arg, void *v)
{
	(void)arg;
	struct obj *o = v;
	if (o->worker < 2)
		atomic_store(&close_at[o->worker], rotor_now());
	CHECK(rotor_current() != NULL);
	if (o->worker == rotor_worker_id())
		atomic_fetch_add(&closed_on_own_worker, 1);
	/* Shielded: a close during a stop may still wait (say goodbye to a server). */
	if (rotor_sleep(5 * MS) == 0)
		atomic_fetch_add(&close_slept, 1);
	free(o);
	atomic_fetch_add(&closes, 1);
}

static const struct rotor_session_ops ops = {
    .open = open_obj, .close = close_obj, .close_ns = 2 * SEC};
static struct rotor_session *sess;

static void make_session(void)
{
	reset();
	cr_assert_eq(rotor_session_create(&ops, NULL, &sess), 0);
}

static void free_session(void)
{
	cr_expect_eq(rotor_session_destroy(sess), 0);
	sess = NULL;
}

/* ---- opening ---------------------------------------------------------------------------- */

static void *user(void *arg)
{
	struct obj **got = arg;
	void *o = NULL;
	int err = rotor_session_get(sess, rotor_now() + 5 * SEC, &o);
	if (err == 0) {
		*got = o;
		CHECK_EQ(((struct obj *)o)->worker, rotor_worker_id());
		rotor_sleep(MS);
		CHECK_EQ(rotor_session_put(sess, o), 0);
	} else {
		*got = (struct obj *)(intptr_t)err;
	}
	return NULL;
}

#define USERS 50

static void *first_use_main(void *arg)
{
	(void)arg;
	struct obj *got[2][USERS];
	struct rotor_task *t[2][USERS];
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < USERS; i++) {
			struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(w)};
			CHECK_EQ(rotor_spawn_attr(&a, user, &got[w][i], &t[w][i]), 0);
		}
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < USERS; i++)
			rotor_join(t[w][i], NULL);
	/* One opening per worker, however many tasks needed it during it. */
	CHECK_EQ(atomic_load(&opens), 2);
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < USERS; i++) {
			CHECK(got[w][i] == got[w][0]);
			CHECK_EQ(got[w][i]->worker, w);
		}
	CHECK(got[0][0] != got[1][0]);
	CHECK_EQ(atomic_load(&closes), 0);
	return NULL;
}

Test(session, opened_by_a_task_on_first_use_once_per_worker_while_others_wait, .init = make_session,
     .fini = free_session, .timeout = 30)
{
	run_checked(2, first_use_main, NULL);
	/* The stop closed both, each in a task on its own worker. */
	cr_expect_eq(atomic_load(&closes), 2);
	cr_expect_eq(atomic_load(&closed_on_own_worker), 2);
	cr_expect_eq(atomic_load(&close_slept), 2);
}

static void *failing_main(void *arg)
{
	(void)arg;
	struct obj *got[USERS];
	struct rotor_task *t[USERS];
	atomic_store(&fail_with, -ECONNREFUSED);
	for (int i = 0; i < USERS; i++)
		CHECK_EQ(rotor_spawn(user, &got[i], &t[i]), 0);
	for (int i = 0; i < USERS; i++)
		rotor_join(t[i], NULL);
	CHECK_EQ(atomic_load(&opens), 1);
	for (int i = 0; i < USERS; i++)
		CHECK_EQ((intptr_t)got[i], -ECONNREFUSED);
	/* The next use tries again. */
	atomic_store(&fail_with, 0);
	void *o = NULL;
	CHECK_EQ(rotor_session_get(sess, rotor_now() + SEC, &o), 0);
	CHECK_EQ(atomic_load(&opens), 2);
	CHECK_EQ(rotor_session_put(sess, o), 0);
	/* A waiter's own deadline ends its wait for another's opening. */
	CHECK_EQ(rotor_session_replace(sess, o), -EINVAL); /* not held any more */
	return NULL;
}

Test(session, a_failed_opening_gives_every_waiter_its_error_and_the_next_use_retries,
     .init = make_session, .fini = free_session, .timeout = 30)
{
	run_checked(1, failing_main, NULL);
	cr_expect_eq(atomic_load(&closes), 1);
}

static void *opener(void *arg)
{
	void *o = NULL;
	CHECK_EQ(rotor_session_get(sess, F, &o), 0);
	CHECK_EQ(rotor_session_put(sess, o), 0);
	(void)arg;
	return NULL;
}

static void *deadline_main(void *arg)
{
	(void)arg;
	struct rotor_task *t;
	CHECK_EQ(rotor_spawn(opener, NULL, &t), 0);
	rotor_yield();
	/* The opening takes 30 ms; this waiter gives up after 5. */
	void *o = NULL;
	CHECK_EQ(rotor_session_get(sess, rotor_now() + 5 * MS, &o), -ETIMEDOUT);
	rotor_join(t, NULL);
	CHECK_EQ(atomic_load(&opens), 1);
	return NULL;
}

Test(session, a_waiter_for_the_opening_keeps_its_own_deadline, .init = make_session,
     .fini = free_session, .timeout = 30)
{
	run_checked(1, deadline_main, NULL);
}

/* ---- replacing -------------------------------------------------------------------------- */

static void *replace_main(void *arg)
{
	(void)arg;
	void *a = NULL, *a2 = NULL, *b = NULL;
	CHECK_EQ(rotor_session_get(sess, F, &a), 0);
	CHECK_EQ(rotor_session_get(sess, F, &a2), 0); /* a second holder of the same */
	CHECK(a == a2);
	/* a is broken: the first holder replaces it; the next use opens b. */
	CHECK_EQ(rotor_session_replace(sess, a), 0);
	CHECK_EQ(rotor_session_get(sess, F, &b), 0);
	CHECK(b != a);
	CHECK_EQ(atomic_load(&opens), 2);
	rotor_sleep(20 * MS);
	CHECK_EQ(atomic_load(&closes), 0);            /* a is still held */
	CHECK_EQ(rotor_session_replace(sess, a2), 0); /* already retired: only put back */
	for (int i = 0; i < 100 && atomic_load(&closes) == 0; i++)
		rotor_sleep(MS);
	CHECK_EQ(atomic_load(&closes), 1); /* by the keeper, a task */
	CHECK_EQ(atomic_load(&closed_on_own_worker), 1);
	CHECK_EQ(rotor_session_put(sess, b), 0);
	return NULL;
}

Test(session, a_replaced_object_is_closed_by_a_task_once_its_last_holder_puts_it_back,
     .init = make_session, .fini = free_session, .timeout = 30)
{
	run_checked(1, replace_main, NULL);
	cr_expect_eq(atomic_load(&closes), 2);
}

/* ---- stopping --------------------------------------------------------------------------- */

static void *holder(void *arg)
{
	(void)arg;
	void *o = NULL;
	CHECK_EQ(rotor_session_get(sess, F, &o), 0);
	/* A request that finishes inside a shield during the drain. */
	rotor_shield_begin(rotor_now() + 5 * SEC);
	rotor_sleep(200 * MS);
	atomic_store(&put_at[rotor_worker_id()], rotor_now());
	CHECK_EQ(rotor_session_put(sess, o), 0);
	rotor_shield_end();
	return NULL;
}

Test(session, a_drain_closes_each_object_in_a_task_after_its_holders_are_done, .init = make_session,
     .fini = free_session, .timeout = 30)
{
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	struct rotor_future *f[2];
	for (int w = 0; w < 2; w++)
		cr_assert_eq(rotor_submit(rt, w, holder, NULL, &f[w]), 0);
	for (int i = 0; i < 200 && atomic_load(&opens) < 2; i++)
		pause_ms(5);
	pause_ms(50); /* both opened and holding */
	cr_expect_eq(rotor_session_destroy(sess), -EBUSY);
	cr_assert_eq(rotor_runtime_drain(rt, rotor_now() + 5 * SEC), 0);
	for (int w = 0; w < 2; w++) {
		rotor_future_wait(f[w], F, NULL);
		rotor_future_destroy(f[w]);
	}
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	ASSERT_CHECKS();
	cr_expect_eq(atomic_load(&closes), 2);
	cr_expect_eq(atomic_load(&closed_on_own_worker), 2);
	cr_expect_eq(atomic_load(&close_slept), 2);
	for (int w = 0; w < 2; w++)
		cr_expect_geq(atomic_load(&close_at[w]), atomic_load(&put_at[w]),
		              "worker %d's object was closed while a task still held it", w);
}

static void *late_user(void *arg)
{
	(void)arg;
	void *o = NULL;
	rotor_shield_begin(rotor_now() + SEC);
	rotor_sleep(100 * MS); /* the keeper is closing by now */
	CHECK_EQ(rotor_session_get(sess, F, &o), -ESHUTDOWN);
	rotor_shield_end();
	return NULL;
}

static void *stop_main(void *arg)
{
	(void)arg;
	void *o = NULL;
	CHECK_EQ(rotor_session_get(sess, F, &o), 0);
	CHECK_EQ(rotor_session_put(sess, o), 0);
	CHECK_EQ(rotor_spawn(late_user, NULL, NULL), 0);
	return NULL; /* rotor_run stops the runtime */
}

Test(session, a_stop_closes_in_a_task_and_later_uses_are_refused, .init = make_session,
     .fini = free_session, .timeout = 30)
{
	run_checked(1, stop_main, NULL);
	cr_expect_eq(atomic_load(&closes), 1);
	cr_expect_eq(atomic_load(&close_slept), 1);
}

/* ---- misuse ----------------------------------------------------------------------------- */

static void cb_put(void *arg)
{
	CHECK_EQ(rotor_session_put(sess, arg), 0); /* a callback may give back */
}

static void *misuse_main(void *arg)
{
	(void)arg;
	void *o = NULL;
	int x;
	CHECK_EQ(rotor_session_get(NULL, F, &o), -EINVAL);
	CHECK_EQ(rotor_session_get(sess, F, NULL), -EINVAL);
	CHECK_EQ(rotor_session_put(sess, &x), -EINVAL);
	CHECK_EQ(rotor_session_put(NULL, &x), -EINVAL);
	CHECK_EQ(rotor_session_get(sess, F, &o), 0);
	CHECK_EQ(rotor_session_put(sess, o), 0);
	CHECK_EQ(rotor_session_put(sess, o), -EINVAL); /* put twice */
	CHECK_EQ(rotor_session_get(sess, F, &o), 0);
	CHECK_EQ(rotor_call_soon(cb_put, o), 0);
	rotor_sleep(5 * MS);
	CHECK_EQ(rotor_session_put(sess, o), -EINVAL);
	return NULL;
}

Test(session, misuse_gets_clear_errors, .init = make_session, .fini = free_session, .timeout = 30)
{
	struct rotor_session *s;
	void *o;
	struct rotor_session_ops bad = {.open = NULL};
	cr_expect_eq(rotor_session_create(NULL, NULL, &s), -EINVAL);
	cr_expect_eq(rotor_session_create(&bad, NULL, &s), -EINVAL);
	bad.open = open_obj;
	bad.close_ns = -1;
	cr_expect_eq(rotor_session_create(&bad, NULL, &s), -EINVAL);
	cr_expect_eq(rotor_session_create(&ops, NULL, NULL), -EINVAL);
	cr_expect_eq(rotor_session_destroy(NULL), -EINVAL);
	cr_expect_eq(rotor_session_get(sess, F, &o), -EPERM);
	cr_expect_eq(rotor_session_put(sess, NULL), -EPERM);
	run_checked(1, misuse_main, NULL);
}
