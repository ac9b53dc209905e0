/*
 * Task-local and worker-local storage: values are per task and per worker, a worker's object
 * is made once on first use, destructors run when the task or the worker ends, misuse gets
 * an errno.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <rotor.h>

#include "check.h"

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
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(i % 2)};
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
