/*
 * A mixed workload with its invariants checked, without Criterion, so that it also runs
 * under ThreadSanitizer (Criterion's process arena cannot start under TSan). Cross-worker
 * spawns and joins, futures from foreign threads, cancellations, callbacks from foreign
 * threads, and a stop while tasks sleep. Exit status 0 when every check holds.
 */
#include <rotor.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "stress: %s:%d: check failed: %s\n", __FILE__, __LINE__,   \
			        #cond);                                                            \
			atomic_fetch_add(&failures, 1);                                            \
		}                                                                                  \
	} while (0)

static atomic_int failures;
static atomic_long ran;
static atomic_long callbacks;

static void *leaf(void *arg)
{
	atomic_fetch_add(&ran, 1);
	if ((uintptr_t)arg % 7 == 0)
		rotor_sleep(100000);
	else if ((uintptr_t)arg % 3 == 0)
		rotor_yield();
	return (void *)((uintptr_t)arg * 3 + 1);
}

/* Spawns children on every worker and joins them all. */
static void *fan_out(void *arg)
{
	enum { N = 64 };
	struct rotor_task *t[N];
	int workers = rotor_runtime_workers(rotor_runtime_current());
	for (int i = 0; i < N; i++) {
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(i % workers)};
		CHECK(rotor_spawn_attr(&a, leaf, (void *)(uintptr_t)i, &t[i]) == 0);
	}
	for (int i = 0; i < N; i++) {
		void *res;
		CHECK(rotor_join(t[i], &res) == 0);
		CHECK((uintptr_t)res == (uintptr_t)i * 3 + 1);
	}
	return arg;
}

static void *sleeper(void *arg)
{
	(void)arg;
	int r = rotor_sleep(60LL * 1000 * 1000 * 1000);
	CHECK(r == -ECANCELED);
	return NULL;
}

static void count_callback(void *arg)
{
	(void)arg;
	atomic_fetch_add(&callbacks, 1);
}

static void *foreign_submitter(void *arg)
{
	struct rotor_runtime *rt = arg;
	for (int round = 0; round < 50; round++) {
		struct rotor_future *f[20];
		for (int i = 0; i < 20; i++)
			CHECK(rotor_submit(rt, ROTOR_WORKER_ANY, fan_out, (void *)(uintptr_t)i,
			                   &f[i]) == 0);
		for (int i = 0; i < 20; i++) {
			void *res;
			CHECK(rotor_future_wait(f[i], ROTOR_FOREVER, &res) == 0);
			CHECK((uintptr_t)res == (uintptr_t)i);
			rotor_future_destroy(f[i]);
		}
		CHECK(rotor_call_soon_threadsafe(rt, ROTOR_WORKER_ANY, count_callback, NULL) == 0);
		/* A task cancelled while it sleeps. */
		struct rotor_future *s;
		CHECK(rotor_submit(rt, round % 2, sleeper, NULL, &s) == 0);
		CHECK(rotor_future_cancel(s) == 0);
		CHECK(rotor_future_wait(s, ROTOR_FOREVER, NULL) == -ECANCELED);
		rotor_future_destroy(s);
	}
	return NULL;
}

/* ---- coordination primitives across workers ---- */

static struct rotor_mutex mu;
static long guarded;
static struct rotor_chan *ch_a, *ch_b;
static atomic_long chan_sum;

static void *triple_plus_one(void *arg)
{
	return (void *)((uintptr_t)arg * 3 + 1);
}

static void *lock_and_send(void *arg)
{
	for (int i = 0; i < 200; i++) {
		CHECK(rotor_mutex_lock(&mu) == 0);
		guarded++;
		if (i % 50 == 0)
			rotor_yield();
		CHECK(rotor_mutex_unlock(&mu) == 0);
		CHECK(rotor_chan_send(i % 2 ? ch_b : ch_a, (void *)(uintptr_t)(i + 1)) == 0);
	}
	void *r = NULL;
	CHECK(rotor_offload(triple_plus_one, (void *)(uintptr_t)3, &r) == 0 && (uintptr_t)r == 10);
	return arg;
}

static void *select_receiver(void *arg)
{
	int open = 2;
	while (open) {
		struct rotor_select_case c[2] = {{.ch = ch_a, .op = ROTOR_SELECT_RECV},
		                                 {.ch = ch_b, .op = ROTOR_SELECT_RECV}};
		int k = rotor_chan_select(c, 2, ROTOR_FOREVER);
		CHECK(k >= 0);
		if (k < 0)
			break;
		if (c[k].result == -EPIPE) {
			open = 0; /* both close together below */
			continue;
		}
		atomic_fetch_add(&chan_sum, (long)(uintptr_t)c[k].value);
	}
	return arg;
}

static void *coordination(void *arg)
{
	enum { SENDERS = 8, RECEIVERS = 3 };
	rotor_mutex_init(&mu);
	CHECK(rotor_chan_create(4, &ch_a) == 0 && rotor_chan_create(0, &ch_b) == 0);
	struct rotor_task *s[SENDERS], *r[RECEIVERS];
	for (int i = 0; i < RECEIVERS; i++) {
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(i % 2)};
		CHECK(rotor_spawn_attr(&a, select_receiver, NULL, &r[i]) == 0);
	}
	for (int i = 0; i < SENDERS; i++) {
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER((i + 1) % 2)};
		CHECK(rotor_spawn_attr(&a, lock_and_send, NULL, &s[i]) == 0);
	}
	CHECK(rotor_wait_any(s, SENDERS, ROTOR_FOREVER) >= 0);
	CHECK(rotor_gather(s, SENDERS, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(rotor_chan_close(ch_a) == 0 && rotor_chan_close(ch_b) == 0);
	CHECK(rotor_gather(r, RECEIVERS, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(guarded == SENDERS * 200L);
	CHECK(atomic_load(&chan_sum) == SENDERS * (200L * 201 / 2));
	rotor_chan_destroy(ch_a);
	rotor_chan_destroy(ch_b);
	return arg;
}

/* Tasks that hold their worker just past the stall threshold, so that the stall detector
 * reports them by name around the time they end, each followed by enough short tasks on the
 * same worker that its struct is reused: the detector's read of the name must not race
 * (TSan) with that reuse. */
static void *busy_unnamed(void *arg)
{
	int64_t until = rotor_now() + (int64_t)(uintptr_t)arg;
	while (rotor_now() < until)
		;
	return arg;
}

static void *nothing(void *arg)
{
	return arg;
}

static void *stall_then_reuse(void *arg)
{
	struct rotor_task *t;
	for (int k = 0; k < 8; k++) {
		uintptr_t ns = (uintptr_t)(101 + 4 * k) * 1000000u;
		CHECK(rotor_spawn(busy_unnamed, (void *)ns, &t) == 0);
		CHECK(rotor_join(t, NULL) == 0);
		for (int i = 0; i < 200; i++) {
			CHECK(rotor_spawn(nothing, NULL, &t) == 0);
			CHECK(rotor_join(t, NULL) == 0);
		}
	}
	return arg;
}

int main(void)
{
	struct rotor_config cfg = {.workers = 2, .msg_inflight = 2};
	struct rotor_runtime *rt;
	CHECK(rotor_runtime_create(&cfg, &rt) == 0);
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, foreign_submitter, rt);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	/* Stop with tasks asleep: they are cancelled and the stop completes. */
	for (int i = 0; i < 10; i++) {
		struct rotor_future *f;
		CHECK(rotor_submit(rt, ROTOR_WORKER_ANY, sleeper, NULL, &f) == 0);
		rotor_future_destroy(f);
	}
	CHECK(rotor_call(rt, 0, coordination, NULL, NULL) == 0);
	CHECK(rotor_call(rt, 1, stall_then_reuse, NULL, NULL) == 0);
	CHECK(rotor_runtime_destroy(rt) == 0);
	long expect = 3L * 50 * 20 * 64;
	CHECK(atomic_load(&ran) == expect);
	CHECK(atomic_load(&callbacks) == 3L * 50);
	int f = atomic_load(&failures);
	printf("stress: %ld tasks, %ld callbacks: %s\n", atomic_load(&ran), atomic_load(&callbacks),
	       f ? "FAILED" : "ok");
	return f ? 1 : 0;
}
