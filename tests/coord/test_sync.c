/*
 * Sync primitives between tasks on one worker and across workers: mutual exclusion,
 * hand-off order, condition variables, semaphores, events, wait groups, gather, deadlines,
 * cancellation while waiting, and misuse.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rotor.h>

#include "check.h"

/* ---- mutex ---- */

static struct rotor_mutex mu;
static long shared_counter;
static atomic_int inside;

static void *increment_under_lock(void *arg)
{
	for (int i = 0; i < 200; i++) {
		CHECK(rotor_mutex_lock(&mu) == 0);
		CHECK(atomic_fetch_add(&inside, 1) == 0);
		long v = shared_counter;
		if (i % 3 == 0)
			rotor_yield(); /* hold the lock across a suspension */
		shared_counter = v + 1;
		atomic_fetch_sub(&inside, 1);
		CHECK(rotor_mutex_unlock(&mu) == 0);
	}
	return arg;
}

static void *mutex_main(void *arg)
{
	enum { N = 40 };
	struct rotor_task *t[N];
	rotor_mutex_init(&mu);
	shared_counter = 0;
	int workers = rotor_runtime_workers(rotor_runtime_current());
	for (int i = 0; i < N; i++)
		t[i] = spawn_on(i % workers, increment_under_lock, NULL);
	CHECK(rotor_gather(t, N, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(shared_counter == N * 200);
	return arg;
}

Test(sync, mutex_excludes_across_workers, .timeout = 30)
{
	run_checked(2, mutex_main, NULL);
	run_checked(3, mutex_main, NULL);
}

static void *holds_then_releases(void *arg)
{
	task_begins();
	CHECK(rotor_mutex_lock(&mu) == 0);
	rotor_sleep(30 * MS);
	CHECK(rotor_mutex_unlock(&mu) == 0);
	return arg;
}

static void *mutex_misuse_main(void *arg)
{
	rotor_mutex_init(&mu);
	CHECK(rotor_mutex_unlock(&mu) == -EPERM);
	CHECK(rotor_mutex_lock(&mu) == 0);
	CHECK(rotor_mutex_lock(&mu) == -EDEADLK);
	CHECK(rotor_mutex_unlock(&mu) == 0);
	CHECK(rotor_mutex_unlock(&mu) == -EPERM);

	/* Held elsewhere: trylock says busy, a deadline expires, unlock by a non-owner fails. */
	struct rotor_task *h = spawn_on(1, holds_then_releases, NULL);
	settle(1);
	CHECK(rotor_mutex_trylock(&mu) == -EBUSY);
	CHECK(rotor_mutex_unlock(&mu) == -EPERM);
	int64_t t0 = rotor_now();
	CHECK(rotor_mutex_lock_until(&mu, t0 + 5 * MS) == -ETIMEDOUT);
	CHECK(rotor_now() - t0 >= 5 * MS);
	/* And then the hand-off arrives once the holder lets go. */
	CHECK(rotor_mutex_lock(&mu) == 0);
	CHECK(rotor_mutex_unlock(&mu) == 0);
	CHECK(rotor_join(h, NULL) == 0);
	return arg;
}

Test(sync, mutex_errors_deadlines_and_handoff, .timeout = 30)
{
	run_checked(2, mutex_misuse_main, NULL);
}

static atomic_int cancelled_lock_rc;

static void *waits_for_lock(void *arg)
{
	task_begins();
	atomic_store(&cancelled_lock_rc, rotor_mutex_lock(&mu));
	return arg;
}

static void *mutex_cancel_main(void *arg)
{
	rotor_mutex_init(&mu);
	CHECK(rotor_mutex_lock(&mu) == 0);
	struct rotor_task *w = spawn_on(1, waits_for_lock, NULL);
	settle(1);
	CHECK(rotor_cancel(w) == 0);
	CHECK(rotor_join(w, NULL) == -ECANCELED);
	CHECK(atomic_load(&cancelled_lock_rc) == -ECANCELED);
	/* The mutex is consistent: unlock works and a new locker gets it at once. */
	CHECK(rotor_mutex_unlock(&mu) == 0);
	CHECK(rotor_mutex_trylock(&mu) == 0);
	CHECK(rotor_mutex_unlock(&mu) == 0);
	return arg;
}

Test(sync, cancelled_mutex_waiter_leaves_it_consistent, .timeout = 30)
{
	run_checked(2, mutex_cancel_main, NULL);
}

Test(sync, waits_off_a_task_are_eperm, .timeout = 10)
{
	struct rotor_mutex m;
	struct rotor_sem s;
	struct rotor_event e;
	struct rotor_waitgroup g;
	rotor_mutex_init(&m);
	rotor_sem_init(&s, 0);
	rotor_event_init(&e);
	rotor_waitgroup_init(&g);
	rotor_waitgroup_add(&g, 1);
	cr_assert_eq(rotor_mutex_lock(&m), -EPERM);
	cr_assert_eq(rotor_sem_acquire(&s), -EPERM);
	cr_assert_eq(rotor_event_wait(&e), -EPERM);
	cr_assert_eq(rotor_waitgroup_wait(&g), -EPERM);
	/* The non-suspending halves work from any thread. */
	cr_assert_eq(rotor_sem_release(&s), 0);
	cr_assert_eq(rotor_sem_try_acquire(&s), 0);
	cr_assert_eq(rotor_sem_try_acquire(&s), -EAGAIN);
	cr_assert_eq(rotor_event_set(&e), 0);
	cr_assert_eq(rotor_event_is_set(&e), 1);
	cr_assert_eq(rotor_waitgroup_add(&g, -2), -EINVAL);
	cr_assert_eq(rotor_waitgroup_done(&g), 0);
}

/* ---- condition variable ---- */

static struct rotor_cond cv;
static long queue_items, consumed;
static int producers_done;

static void *producer(void *arg)
{
	for (int i = 0; i < 500; i++) {
		CHECK(rotor_mutex_lock(&mu) == 0);
		queue_items++;
		CHECK(rotor_cond_signal(&cv) == 0);
		CHECK(rotor_mutex_unlock(&mu) == 0);
		if (i % 7 == 0)
			rotor_yield();
	}
	CHECK(rotor_mutex_lock(&mu) == 0);
	producers_done++;
	rotor_cond_broadcast(&cv);
	CHECK(rotor_mutex_unlock(&mu) == 0);
	return arg;
}

static void *consumer(void *arg)
{
	CHECK(rotor_mutex_lock(&mu) == 0);
	for (;;) {
		while (queue_items == 0 && producers_done < 2)
			CHECK(rotor_cond_wait(&cv, &mu) == 0);
		if (queue_items == 0)
			break;
		queue_items--;
		consumed++;
	}
	CHECK(rotor_mutex_unlock(&mu) == 0);
	return arg;
}

static void *cond_main(void *arg)
{
	rotor_mutex_init(&mu);
	rotor_cond_init(&cv);
	queue_items = consumed = 0;
	producers_done = 0;
	struct rotor_task *t[5];
	t[0] = spawn_on(0, consumer, NULL);
	t[1] = spawn_on(1, consumer, NULL);
	t[2] = spawn_on(1, consumer, NULL);
	t[3] = spawn_on(0, producer, NULL);
	t[4] = spawn_on(1, producer, NULL);
	CHECK(rotor_gather(t, 5, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(consumed == 1000);
	/* A timed wait comes back with the mutex held. */
	CHECK(rotor_mutex_lock(&mu) == 0);
	CHECK(rotor_cond_wait_until(&cv, &mu, rotor_now() + 2 * MS) == -ETIMEDOUT);
	CHECK(rotor_mutex_unlock(&mu) == 0);
	CHECK(rotor_cond_wait(&cv, &mu) == -EPERM);
	return arg;
}

Test(sync, condition_variable_producers_consumers_across_workers, .timeout = 30)
{
	run_checked(2, cond_main, NULL);
}

/* ---- semaphore ---- */

static struct rotor_sem sem;
static atomic_int holders, max_holders;

static void *uses_a_unit(void *arg)
{
	CHECK(rotor_sem_acquire(&sem) == 0);
	int h = atomic_fetch_add(&holders, 1) + 1;
	int m = atomic_load(&max_holders);
	while (h > m && !atomic_compare_exchange_weak(&max_holders, &m, h))
		;
	rotor_sleep(1 * MS);
	atomic_fetch_sub(&holders, 1);
	CHECK(rotor_sem_release(&sem) == 0);
	return arg;
}

static void *sem_main(void *arg)
{
	enum { N = 60 };
	struct rotor_task *t[N];
	rotor_sem_init(&sem, 3);
	atomic_store(&max_holders, 0);
	for (int i = 0; i < N; i++)
		t[i] = spawn_on(i % 2, uses_a_unit, NULL);
	CHECK(rotor_gather(t, N, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(atomic_load(&max_holders) == 3);
	/* All three units are back. */
	for (int i = 0; i < 3; i++)
		CHECK(rotor_sem_try_acquire(&sem) == 0);
	CHECK(rotor_sem_try_acquire(&sem) == -EAGAIN);
	CHECK(rotor_sem_acquire_until(&sem, rotor_now() + 2 * MS) == -ETIMEDOUT);
	return arg;
}

Test(sync, semaphore_bounds_concurrency, .timeout = 30)
{
	run_checked(2, sem_main, NULL);
}

static void *releases_from_thread(void *arg)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	rotor_sem_release(arg);
	return NULL;
}

static void *sem_foreign_main(void *arg)
{
	struct rotor_sem s;
	rotor_sem_init(&s, 0);
	pthread_t th;
	pthread_create(&th, NULL, releases_from_thread, &s);
	CHECK(rotor_sem_acquire(&s) == 0);
	pthread_join(th, NULL);
	return arg;
}

Test(sync, semaphore_released_by_a_foreign_thread, .timeout = 30)
{
	run_checked(2, sem_foreign_main, NULL);
}

/* ---- event and wait group ---- */

static struct rotor_event ev;
static struct rotor_waitgroup wg;
static atomic_int woke;

static void *waits_for_event(void *arg)
{
	CHECK(rotor_event_wait(&ev) == 0);
	atomic_fetch_add(&woke, 1);
	CHECK(rotor_waitgroup_done(&wg) == 0);
	return arg;
}

static void *event_main(void *arg)
{
	enum { N = 30 };
	rotor_event_init(&ev);
	rotor_waitgroup_init(&wg);
	atomic_store(&woke, 0);
	CHECK(rotor_waitgroup_add(&wg, N) == 0);
	for (int i = 0; i < N; i++)
		CHECK(rotor_detach(spawn_on(i % 2, waits_for_event, NULL)) == 0);
	rotor_sleep(5 * MS);
	CHECK(atomic_load(&woke) == 0);
	CHECK(rotor_waitgroup_wait_until(&wg, rotor_now() + MS) == -ETIMEDOUT);
	CHECK(rotor_event_set(&ev) == 0);
	CHECK(rotor_waitgroup_wait(&wg) == 0);
	CHECK(atomic_load(&woke) == N);
	/* Set stays set until cleared. */
	CHECK(rotor_event_wait(&ev) == 0);
	CHECK(rotor_event_clear(&ev) == 0);
	CHECK(rotor_event_wait_until(&ev, rotor_now() + MS) == -ETIMEDOUT);
	return arg;
}

Test(sync, event_wakes_every_waiter_and_waitgroup_counts, .timeout = 30)
{
	run_checked(2, event_main, NULL);
}

static atomic_int cancelled_wait_rc;

static void *waits_forever_on_event(void *arg)
{
	task_begins();
	atomic_store(&cancelled_wait_rc, rotor_event_wait(arg));
	return NULL;
}

static void *event_cancel_main(void *arg)
{
	struct rotor_event e;
	rotor_event_init(&e);
	struct rotor_task *t = spawn_on(1, waits_forever_on_event, &e);
	settle(1);
	CHECK(rotor_cancel(t) == 0);
	CHECK(rotor_join(t, NULL) == -ECANCELED);
	CHECK(atomic_load(&cancelled_wait_rc) == -ECANCELED);
	/* Setting it afterwards finds no stale waiter. */
	CHECK(rotor_event_set(&e) == 0);
	return arg;
}

Test(sync, cancelled_event_waiter, .timeout = 30)
{
	run_checked(2, event_cancel_main, NULL);
}

/* ---- join_until and gather ---- */

static void *sleeps_arg_ms(void *arg)
{
	rotor_sleep((int64_t)(intptr_t)arg * MS);
	return (void *)((intptr_t)arg + 1000);
}

static void *gather_main(void *arg)
{
	struct rotor_task *t[4];
	void *res[4];
	int errs[4];
	for (int i = 0; i < 4; i++)
		t[i] = spawn_on(i % 2, sleeps_arg_ms, (void *)(intptr_t)(i * 2));
	CHECK(rotor_gather(t, 4, ROTOR_FOREVER, res, errs) == 0);
	for (int i = 0; i < 4; i++)
		CHECK((intptr_t)res[i] == i * 2 + 1000 && errs[i] == 0);

	struct rotor_task *slow = spawn_on(1, sleeps_arg_ms, (void *)(intptr_t)50);
	void *r = NULL;
	CHECK(rotor_join_until(slow, rotor_now() + 5 * MS, &r) == -ETIMEDOUT);
	/* The handle stays valid: join it for real. */
	CHECK(rotor_join(slow, &r) == 0 && (intptr_t)r == 1050);

	struct rotor_task *u[2] = {spawn_on(0, sleeps_arg_ms, (void *)(intptr_t)1),
	                           spawn_on(1, sleeps_arg_ms, (void *)(intptr_t)200)};
	CHECK(rotor_gather(u, 2, rotor_now() + 50 * MS, res, errs) == -ETIMEDOUT);
	CHECK(errs[0] == 0 && errs[1] == -ETIMEDOUT);
	CHECK(rotor_join(u[1], NULL) == 0);
	return arg;
}

Test(sync, gather_and_join_until, .timeout = 30)
{
	run_checked(2, gather_main, NULL);
}

/* ---- wait_any ---- */

static void *wait_any_main(void *arg)
{
	struct rotor_task *t[3];
	intptr_t ms[3] = {40, 5, 20};
	for (int i = 0; i < 3; i++)
		t[i] = spawn_on(i % 2, sleeps_arg_ms, (void *)ms[i]);
	CHECK(rotor_wait_any(t, 3, rotor_now() + 1 * MS) == -ETIMEDOUT);
	CHECK(rotor_wait_any(t, 3, ROTOR_FOREVER) == 1);
	void *r = NULL;
	CHECK(rotor_join(t[1], &r) == 0 && (intptr_t)r == 1005);
	struct rotor_task *rest[2] = {t[0], t[2]};
	CHECK(rotor_wait_any(rest, 2, ROTOR_FOREVER) == 1);
	/* Already ended: returns at once, lowest index first. */
	rotor_sleep(30 * MS);
	CHECK(rotor_wait_any(rest, 2, 0) == 0);
	CHECK(rotor_gather(rest, 2, ROTOR_FOREVER, NULL, NULL) == 0);
	/* Misuse: a released handle. */
	CHECK(rotor_wait_any(rest, 2, ROTOR_FOREVER) == -EINVAL);
	return arg;
}

Test(sync, wait_any_returns_the_first_task_to_end, .timeout = 30)
{
	run_checked(2, wait_any_main, NULL);
}

static atomic_int wait_any_rc;

static void *waits_any_forever(void *arg)
{
	task_begins();
	atomic_store(&wait_any_rc, rotor_wait_any(arg, 2, ROTOR_FOREVER));
	return NULL;
}

static void *wait_any_cancel_main(void *arg)
{
	struct rotor_task *t[2] = {spawn_on(0, sleeps_arg_ms, (void *)(intptr_t)100),
	                           spawn_on(1, sleeps_arg_ms, (void *)(intptr_t)100)};
	struct rotor_task *w = spawn_on(1, waits_any_forever, t);
	settle(1);
	CHECK(rotor_cancel(w) == 0);
	CHECK(rotor_join(w, NULL) == -ECANCELED);
	CHECK(atomic_load(&wait_any_rc) == -ECANCELED);
	/* Its tokens were taken back: the tasks can be joined normally. */
	CHECK(rotor_gather(t, 2, ROTOR_FOREVER, NULL, NULL) == 0);
	return arg;
}

Test(sync, cancelled_wait_any_leaves_the_tasks_joinable, .timeout = 30)
{
	run_checked(2, wait_any_cancel_main, NULL);
}

/* ---- discard: a task cancelled before it runs ---- */

static atomic_int discarded, ran_anyway;

static void discard_arg(void *arg)
{
	atomic_fetch_add(&discarded, (int)(intptr_t)arg);
}

static void *must_not_run(void *arg)
{
	atomic_fetch_add(&ran_anyway, 1);
	return arg;
}

static void *discard_main(void *arg)
{
	struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(1), .discard = discard_arg};
	struct rotor_task *t;
	CHECK(rotor_spawn_attr(&a, must_not_run, (void *)(intptr_t)7, &t) == 0);
	CHECK(rotor_cancel(t) == 0);
	CHECK(rotor_join(t, NULL) == -ECANCELED);
	/* A task that runs never has discard called. */
	CHECK(rotor_spawn_attr(&a, must_not_run, (void *)(intptr_t)100, &t) == 0);
	CHECK(rotor_join(t, NULL) == 0);
	/* Spawned and left when the runtime stops: discarded at the stop. */
	for (int i = 0; i < 10; i++)
		CHECK(rotor_spawn_attr(&a, must_not_run, (void *)(intptr_t)1000, NULL) == 0);
	rotor_runtime_stop(rotor_runtime_current());
	return arg;
}

Test(sync, discard_releases_what_an_unrun_task_owns, .timeout = 20)
{
	atomic_store(&discarded, 0);
	atomic_store(&ran_anyway, 0);
	run_checked(2, discard_main, NULL);
	/* 7 for the cancelled one; each of the 10 left at the stop either ran or was discarded. */
	cr_assert_eq(atomic_load(&discarded) % 1000, 7, "discarded %d", atomic_load(&discarded));
	cr_assert_eq(atomic_load(&discarded) / 1000 + (atomic_load(&ran_anyway) - 1), 10,
	             "discarded %d, ran %d", atomic_load(&discarded), atomic_load(&ran_anyway));
}

/* ---- worker-local mutex ---- */

static struct rotor_mutex lmu;
static long lcount;
static atomic_int other_worker_rc = 1;

static void *local_incrementer(void *arg)
{
	for (int i = 0; i < 100; i++) {
		CHECK(rotor_mutex_lock(&lmu) == 0);
		long v = lcount;
		if (i % 10 == 0)
			rotor_yield(); /* others queue up behind the held lock */
		lcount = v + 1;
		CHECK(rotor_mutex_unlock(&lmu) == 0);
	}
	return arg;
}

static void *from_other_worker(void *arg)
{
	atomic_store(&other_worker_rc, rotor_mutex_lock(&lmu));
	CHECK(rotor_mutex_trylock(&lmu) == -EPERM);
	return arg;
}

static void *local_waits_cancelled(void *arg)
{
	CHECK(rotor_mutex_lock(&lmu) == -ECANCELED);
	return arg;
}

static void *local_mutex_main(void *arg)
{
	enum { N = 20 };
	struct rotor_task *t[N];
	rotor_mutex_init_local(&lmu);
	lcount = 0;
	for (int i = 0; i < N; i++)
		t[i] = spawn_on(0, local_incrementer, NULL);
	CHECK(rotor_gather(t, N, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(lcount == N * 100);
	/* Bound to worker 0 now: worker 1 is refused. */
	struct rotor_task *o = spawn_on(1, from_other_worker, NULL);
	CHECK(rotor_join(o, NULL) == 0);
	CHECK(atomic_load(&other_worker_rc) == -EPERM);
	/* Errors, deadlines and cancellation as for the shared mutex. */
	CHECK(rotor_mutex_unlock(&lmu) == -EPERM);
	CHECK(rotor_mutex_lock(&lmu) == 0);
	CHECK(rotor_mutex_lock(&lmu) == -EDEADLK);
	CHECK(rotor_mutex_trylock(&lmu) == -EBUSY);
	struct rotor_task *c = spawn_on(0, local_waits_cancelled, NULL);
	rotor_yield();
	CHECK(rotor_cancel(c) == 0);
	CHECK(rotor_join(c, NULL) == -ECANCELED);
	CHECK(rotor_mutex_unlock(&lmu) == 0);
	CHECK(rotor_mutex_trylock(&lmu) == 0);
	CHECK(rotor_mutex_unlock(&lmu) == 0);
	/* A condition variable works with it too. */
	struct rotor_cond c2;
	rotor_cond_init(&c2);
	CHECK(rotor_mutex_lock(&lmu) == 0);
	CHECK(rotor_cond_wait_until(&c2, &lmu, rotor_now() + MS) == -ETIMEDOUT);
	CHECK(rotor_mutex_unlock(&lmu) == 0);
	return arg;
}

Test(sync, worker_local_mutex, .timeout = 20)
{
	run_checked(2, local_mutex_main, NULL);
}
