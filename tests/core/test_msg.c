/*
 * Cross-worker posting under pressure: every post (task spawned onto another worker, task
 * submitted or callback posted from a foreign thread) is delivered exactly once, also into a
 * runtime with a deliberately tiny CQ and message budget, and with the fallbacks for older
 * kernels (per-thread rings instead of ringless MSG_RING; no DEFER_TASKRUN).
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

/* The tiny configuration every test here uses: a CQ of 8 entries overflows at once, and two
 * messages in flight per (sender, target) make every sender wait for room all the time. */
static struct rotor_config tiny_config(unsigned flags)
{
	return (struct rotor_config){
	    .workers = 2,
	    .sq_entries = 4,
	    .cq_entries = 8,
	    .msg_inflight = 2,
	    .flags = flags,
	};
}

/* ---- one million posts ------------------------------------------------------------------ */

/* Index ranges of the million deliveries, one counter per index:
 *   [0, HOPS)                       task spawned by worker 0 onto worker 1
 *   [HOPS, 2 HOPS)                  task spawned back by that task onto worker 0
 *   [2 HOPS, 2 HOPS + SUBMITS)      rotor_submit from a foreign thread, workers alternating
 *   [2 HOPS + SUBMITS, TOTAL)       rotor_call_soon_threadsafe from a foreign thread */
#define HOPS    300000
#define SUBMITS 200000
#define SOONS   200000
#define TOTAL   (2 * HOPS + SUBMITS + SOONS)

static atomic_int *hits;
static atomic_int delivered;
static atomic_int misplaced; /* ran on another worker than the one it was posted to */
static atomic_int post_errors;
static atomic_int first_post_error;

static void post_failed(int rc)
{
	int zero = 0;
	atomic_fetch_add(&post_errors, 1);
	atomic_compare_exchange_strong(&first_post_error, &zero, rc);
}

static void hit(uintptr_t idx, int want_worker)
{
	if (rotor_worker_id() != want_worker)
		atomic_fetch_add(&misplaced, 1);
	if (idx < TOTAL)
		atomic_fetch_add(&hits[idx], 1);
	atomic_fetch_add(&delivered, 1);
}

static void *hop_back(void *arg)
{
	hit(U(arg), 0);
	return NULL;
}

static void *hop_out(void *arg)
{
	struct rotor_task_attr on0 = {.on = ROTOR_ON_WORKER(0)};
	hit(U(arg), 1);
	int rc = rotor_spawn_attr(&on0, hop_back, P(U(arg) + HOPS), NULL);
	if (rc)
		post_failed(rc);
	return NULL;
}

static void *pinger(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	for (uintptr_t i = 0; i < HOPS; i++) {
		int rc = rotor_spawn_attr(&on1, hop_out, P(i), NULL);
		if (rc)
			post_failed(rc);
		if (i % 64 == 63 && rotor_yield() != 0)
			post_failed(-ECANCELED);
	}
	return NULL;
}

static void *submitted(void *arg)
{
	hit(U(arg), (int)(U(arg) % 2));
	return NULL;
}

static void *submitter(void *arg)
{
	struct rotor_runtime *rt = arg;
	for (uintptr_t i = 2 * HOPS; i < 2 * HOPS + SUBMITS; i++) {
		struct rotor_future *f = NULL;
		int rc = rotor_submit(rt, (int)(i % 2), submitted, P(i), &f);
		if (rc)
			post_failed(rc);
		else
			rotor_future_destroy(f);
	}
	return NULL;
}

static void called_soon(void *arg)
{
	hit(U(arg), (int)(U(arg) % 2));
}

static void *soon_caller(void *arg)
{
	struct rotor_runtime *rt = arg;
	for (uintptr_t i = 2 * HOPS + SUBMITS; i < TOTAL; i++) {
		int rc = rotor_call_soon_threadsafe(rt, (int)(i % 2), called_soon, P(i));
		if (rc)
			post_failed(rc);
	}
	return NULL;
}

static void million_posts(unsigned flags)
{
	struct rotor_config cfg = tiny_config(flags);
	struct rotor_runtime *rt = NULL;
	struct rotor_future *pf = NULL;
	pthread_t a, b;

	hits = calloc(TOTAL, sizeof(*hits));
	cr_assert_not_null(hits);
	int64_t t0 = rotor_now();
	int rc = rotor_runtime_create(&cfg, &rt);
	cr_assert_eq(rc, 0, "rotor_runtime_create: %d", rc);
	cr_assert_eq(rotor_submit(rt, 0, pinger, NULL, &pf), 0);
	cr_assert_eq(pthread_create(&a, NULL, submitter, rt), 0);
	cr_assert_eq(pthread_create(&b, NULL, soon_caller, rt), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	cr_assert_eq(rotor_future_wait(pf, rotor_now() + 60 * SEC, NULL), 0);
	rotor_future_destroy(pf);
	rc = wait_at_least(&delivered, TOTAL, 60 * SEC);
	int64_t took = rotor_now() - t0;
	cr_assert_eq(rc, 0, "%d of %d delivered (%d post errors, first %d)",
	             atomic_load(&delivered), TOTAL, atomic_load(&post_errors),
	             atomic_load(&first_post_error));
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_log_info("flags %#x: %d deliveries in %lld ms", flags, TOTAL, (long long)(took / MS));

	cr_assert_eq(atomic_load(&post_errors), 0, "%d posts failed, first with %d",
	             atomic_load(&post_errors), atomic_load(&first_post_error));
	cr_assert_eq(atomic_load(&delivered), TOTAL, "%d deliveries for %d posts",
	             atomic_load(&delivered), TOTAL);
	for (int i = 0; i < TOTAL; i++)
		cr_assert_eq(atomic_load(&hits[i]), 1, "post %d delivered %d times", i,
		             atomic_load(&hits[i]));
	cr_assert_eq(atomic_load(&misplaced), 0, "%d ran on the wrong worker",
	             atomic_load(&misplaced));
	free(hits);
}

Test(msg, million_posts_into_a_tiny_cq_each_delivered_once, .timeout = 120)
{
	million_posts(0);
}

Test(msg, million_posts_through_per_thread_rings, .timeout = 120)
{
	million_posts(ROTOR_NO_RINGLESS_MSG);
}

Test(msg, million_posts_without_defer_taskrun, .timeout = 120)
{
	million_posts(ROTOR_NO_DEFER_TASKRUN);
}

/* ---- many senders, one target ------------------------------------------------------------ */

#define SENDERS    8
#define PER_SENDER 10000
static atomic_int *sender_hits;

static void counts_sender_post(void *arg)
{
	if (rotor_worker_id() != 1)
		atomic_fetch_add(&misplaced, 1);
	atomic_fetch_add(&sender_hits[U(arg)], 1);
	atomic_fetch_add(&delivered, 1);
}

struct sender {
	struct rotor_runtime *rt;
	int id;
};

static void *sends_to_worker_1(void *arg)
{
	struct sender *s = arg;
	for (int i = 0; i < PER_SENDER; i++) {
		int rc = rotor_call_soon_threadsafe(s->rt, 1, counts_sender_post,
		                                    P(s->id * PER_SENDER + i));
		if (rc)
			post_failed(rc);
	}
	return NULL;
}

static void many_senders(unsigned flags)
{
	struct rotor_config cfg = tiny_config(flags);
	struct rotor_runtime *rt = NULL;
	struct sender s[SENDERS];
	pthread_t th[SENDERS];
	sender_hits = calloc(SENDERS * PER_SENDER, sizeof(*sender_hits));
	cr_assert_not_null(sender_hits);
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	for (int i = 0; i < SENDERS; i++) {
		s[i] = (struct sender){.rt = rt, .id = i};
		cr_assert_eq(pthread_create(&th[i], NULL, sends_to_worker_1, &s[i]), 0);
	}
	for (int i = 0; i < SENDERS; i++)
		pthread_join(th[i], NULL);
	int rc = wait_at_least(&delivered, SENDERS * PER_SENDER, 30 * SEC);
	cr_assert_eq(rc, 0, "%d of %d delivered", atomic_load(&delivered), SENDERS * PER_SENDER);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_assert_eq(atomic_load(&post_errors), 0, "first post error %d",
	             atomic_load(&first_post_error));
	for (int i = 0; i < SENDERS * PER_SENDER; i++)
		cr_assert_eq(atomic_load(&sender_hits[i]), 1, "post %d delivered %d times", i,
		             atomic_load(&sender_hits[i]));
	cr_assert_eq(atomic_load(&misplaced), 0);
	free(sender_hits);
}

Test(msg, eight_threads_post_into_one_tiny_worker, .timeout = 60)
{
	many_senders(0);
}

Test(msg, eight_threads_post_into_one_tiny_worker_through_rings, .timeout = 60)
{
	many_senders(ROTOR_NO_RINGLESS_MSG);
}

/* ---- wake-ups across workers ---------------------------------------------------------------- */

#define ROUNDS 10000

struct pingpong {
	struct rotor_future *ping[ROUNDS];
	struct rotor_future *pong[ROUNDS];
};

static void *ponger(void *arg)
{
	struct pingpong *pp = arg;
	for (int i = 0; i < ROUNDS; i++) {
		void *res = NULL;
		CHECK_EQ(rotor_future_wait(pp->ping[i], rotor_now() + 10 * SEC, &res), 0);
		CHECK_EQ(U(res), i);
		CHECK_EQ(rotor_future_set(pp->pong[i], P(i + 1)), 0);
	}
	return NULL;
}

static void *main_pingpongs(void *arg)
{
	(void)arg;
	static struct pingpong pp;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *h;
	for (int i = 0; i < ROUNDS; i++) {
		CHECK_EQ(rotor_future_create(&pp.ping[i]), 0);
		CHECK_EQ(rotor_future_create(&pp.pong[i]), 0);
	}
	CHECK_EQ(rotor_spawn_attr(&on1, ponger, &pp, &h), 0);
	for (int i = 0; i < ROUNDS; i++) {
		void *res = NULL;
		CHECK_EQ(rotor_future_set(pp.ping[i], P(i)), 0);
		CHECK_EQ(rotor_future_wait(pp.pong[i], rotor_now() + 10 * SEC, &res), 0);
		CHECK_EQ(U(res), i + 1);
	}
	CHECK_EQ(rotor_join(h, NULL), 0);
	for (int i = 0; i < ROUNDS; i++) {
		rotor_future_destroy(pp.ping[i]);
		rotor_future_destroy(pp.pong[i]);
	}
	return NULL;
}

Test(msg, future_ping_pong_across_workers_with_a_tiny_cq, .timeout = 60)
{
	struct rotor_config cfg = tiny_config(0);
	cr_assert_eq(rotor_run(&cfg, main_pingpongs, NULL, NULL), 0);
	ASSERT_CHECKS();
}

static void *returns_arg_xor_worker(void *arg)
{
	return P(U(arg) ^ (uintptr_t)rotor_worker_id());
}

static void *main_joins_across_a_tiny_cq(void *arg)
{
	(void)arg;
	enum { N = 20000, BATCH = 1000 };
	static struct rotor_task *h[BATCH];
	for (int base = 0; base < N; base += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
			CHECK_EQ(rotor_spawn_attr(&on1, returns_arg_xor_worker, P((base + i) << 1),
			                          &h[i]),
			         0);
		}
		for (int i = 0; i < BATCH; i++) {
			void *res = NULL;
			CHECK_EQ(rotor_join(h[i], &res), 0);
			CHECK_EQ(U(res), ((uintptr_t)(base + i) << 1) | 1);
		}
	}
	return NULL;
}

Test(msg, twenty_thousand_joins_across_workers_with_a_tiny_cq, .timeout = 60)
{
	struct rotor_config cfg = tiny_config(0);
	cr_assert_eq(rotor_run(&cfg, main_joins_across_a_tiny_cq, NULL, NULL), 0);
	ASSERT_CHECKS();
}

/* ---- stopping while posts are in flight -------------------------------------------------------
 */

static atomic_int posted_ok;
static atomic_int ran_after_post;
static atomic_int last_rc = 1;

static void counts_run(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran_after_post, 1);
}

static void *posts_until_shutdown(void *arg)
{
	struct rotor_runtime *rt = arg;
	int64_t deadline = rotor_now() + 10 * SEC;
	int rc = 0;
	for (int i = 0; rotor_now() < deadline; i++) {
		rc = rotor_call_soon_threadsafe(rt, i % 2, counts_run, NULL);
		if (rc)
			break;
		atomic_fetch_add(&posted_ok, 1);
	}
	atomic_store(&last_rc, rc);
	return NULL;
}

Test(msg, stop_while_foreign_threads_post, .timeout = 30)
{
	struct rotor_config cfg = tiny_config(0);
	struct rotor_runtime *rt = NULL;
	pthread_t th[2];
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, posts_until_shutdown, rt), 0);
	cr_assert_eq(wait_at_least(&posted_ok, 1000, 5 * SEC), 0);
	cr_assert_eq(rotor_runtime_stop(rt), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&last_rc), -ESHUTDOWN, "posting ended with %d",
	             atomic_load(&last_rc));
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_assert_leq(atomic_load(&ran_after_post), atomic_load(&posted_ok),
	              "%d callbacks ran for %d posts", atomic_load(&ran_after_post),
	              atomic_load(&posted_ok));
}

/* ---- every worker posting to every other ------------------------------------------------ */

#define A2A_WORKERS 4
#define A2A_PER     25000 /* per (sender, target) pair */
#define A2A_TOTAL   (A2A_WORKERS * A2A_WORKERS * A2A_PER)
static atomic_int *a2a_hits;
static atomic_int a2a_delivered;

static void *a2a_child(void *arg)
{
	uintptr_t idx = U(arg);
	int target = (int)(idx / A2A_PER % A2A_WORKERS);
	if (rotor_worker_id() != target)
		atomic_fetch_add(&misplaced, 1);
	atomic_fetch_add(&a2a_hits[idx], 1);
	atomic_fetch_add(&a2a_delivered, 1);
	return NULL;
}

/* Index of the k-th post from sender s to target t: (s * WORKERS + t) * PER + k. */
static void *a2a_sender(void *arg)
{
	uintptr_t s = U(arg);
	for (uintptr_t k = 0; k < A2A_PER; k++) {
		for (int t = 0; t < A2A_WORKERS; t++) {
			struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(t)};
			uintptr_t idx = (s * A2A_WORKERS + (uintptr_t)t) * A2A_PER + k;
			int rc = rotor_spawn_attr(&attr, a2a_child, P(idx), NULL);
			if (rc)
				post_failed(rc);
		}
		if (k % 32 == 31 && rotor_yield() != 0)
			post_failed(-ECANCELED);
	}
	return NULL;
}

Test(msg, four_workers_post_to_each_other_with_a_tiny_cq, .timeout = 60)
{
	struct rotor_config cfg = tiny_config(0);
	struct rotor_runtime *rt = NULL;
	struct rotor_future *f[A2A_WORKERS];
	cfg.workers = A2A_WORKERS;
	a2a_hits = calloc(A2A_TOTAL, sizeof(*a2a_hits));
	cr_assert_not_null(a2a_hits);
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	for (int s = 0; s < A2A_WORKERS; s++)
		cr_assert_eq(rotor_submit(rt, s, a2a_sender, P(s), &f[s]), 0);
	for (int s = 0; s < A2A_WORKERS; s++) {
		cr_assert_eq(rotor_future_wait(f[s], rotor_now() + 30 * SEC, NULL), 0);
		rotor_future_destroy(f[s]);
	}
	int rc = wait_at_least(&a2a_delivered, A2A_TOTAL, 30 * SEC);
	cr_assert_eq(rc, 0, "%d of %d delivered", atomic_load(&a2a_delivered), A2A_TOTAL);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
	cr_assert_eq(atomic_load(&post_errors), 0, "first post error %d",
	             atomic_load(&first_post_error));
	for (int i = 0; i < A2A_TOTAL; i++)
		cr_assert_eq(atomic_load(&a2a_hits[i]), 1, "post %d delivered %d times", i,
		             atomic_load(&a2a_hits[i]));
	cr_assert_eq(atomic_load(&misplaced), 0, "%d ran on the wrong worker",
	             atomic_load(&misplaced));
	free(a2a_hits);
}

/* ---- spawn requests (lib/core/spawnreq.c) ------------------------------------------------
 * Detached unnamed spawns and callbacks from a worker to another travel as records in
 * blocks; the rest (a named task, one with a handle) as task structs. Whatever the form,
 * what one worker posts to another runs there in the order it was posted. */

enum { ORDER_N = 3000 };
static int order_log[ORDER_N]; /* written on worker 1 only */
static int order_seen;         /* worker 1 only */
static atomic_int order_done;

static void order_note(uintptr_t i)
{
	if (rotor_worker_id() != 1)
		atomic_fetch_add(&misplaced, 1);
	if (order_seen < ORDER_N)
		order_log[order_seen] = (int)i;
	if (++order_seen == ORDER_N)
		atomic_store(&order_done, 1);
}

static void *order_task(void *arg)
{
	order_note(U(arg));
	return NULL;
}

static void order_callback(void *arg)
{
	order_note(U(arg));
}

static void *main_posts_in_order(void *arg)
{
	(void)arg;
	struct rotor_runtime *rt = rotor_runtime_current();
	static struct rotor_task *held[ORDER_N];
	int nheld = 0;
	for (int i = 0; i < ORDER_N; i++) {
		struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
		if (i % 5 == 1) {
			CHECK_EQ(rotor_call_soon_threadsafe(rt, 1, order_callback, P(i)), 0);
		} else if (i % 7 == 2) {
			on1.name = "named";
			CHECK_EQ(rotor_spawn_attr(&on1, order_task, P(i), NULL), 0);
		} else if (i % 11 == 3) {
			CHECK_EQ(rotor_spawn_attr(&on1, order_task, P(i), &held[nheld]), 0);
			nheld++;
		} else {
			CHECK_EQ(rotor_spawn_attr(&on1, order_task, P(i), NULL), 0);
		}
		/* Turns of 1 to 400 posts: blocks that fill up, and batches of several. */
		if (i % 400 == 399 || i % 97 == 0)
			CHECK_EQ(rotor_yield(), 0);
	}
	for (int i = 0; i < nheld; i++)
		CHECK_EQ(rotor_join(held[i], NULL), 0);
	while (!atomic_load(&order_done))
		CHECK_EQ(rotor_sleep(MS), 0);
	return NULL;
}

Test(msg, spawns_and_callbacks_from_a_worker_run_in_the_order_posted, .timeout = 30)
{
	struct rotor_config cfg = tiny_config(0);
	atomic_store(&misplaced, 0);
	cr_assert_eq(rotor_run(&cfg, main_posts_in_order, NULL, NULL), 0);
	ASSERT_CHECKS();
	cr_assert_eq(order_seen, ORDER_N);
	cr_assert_eq(atomic_load(&misplaced), 0);
	for (int i = 0; i < ORDER_N; i++)
		cr_assert_eq(order_log[i], i, "position %d ran post %d", i, order_log[i]);
}

/* A stop while records are on their way: each posted spawn either runs or, cancelled before
 * it could, has its discard called; exactly one of the two, for every one. */
enum { STOP_N = 20000 };
static atomic_int stop_fates[STOP_N];
static atomic_int stop_ran, stop_discarded;

static void *stop_task(void *arg)
{
	atomic_fetch_add(&stop_fates[U(arg)], 1);
	atomic_fetch_add(&stop_ran, 1);
	return NULL;
}

static void stop_discard(void *arg)
{
	atomic_fetch_add(&stop_fates[U(arg)], 1);
	atomic_fetch_add(&stop_discarded, 1);
}

static void *main_posts_then_returns(void *arg)
{
	(void)arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1), .discard = stop_discard};
	for (int i = 0; i < STOP_N; i++) {
		CHECK_EQ(rotor_spawn_attr(&on1, stop_task, P(i), NULL), 0);
		if (i % 1000 == 999)
			CHECK_EQ(rotor_yield(), 0);
		/* The first half runs before the stop: both fates are tested. */
		while (i == STOP_N / 2 - 1 && atomic_load(&stop_ran) < STOP_N / 2)
			CHECK_EQ(rotor_sleep(MS), 0);
	}
	return NULL; /* the runtime stops with the second half on its way */
}

Test(msg, a_stop_runs_or_discards_every_spawn_request_once, .timeout = 30)
{
	struct rotor_config cfg = tiny_config(0);
	cr_assert_eq(rotor_run(&cfg, main_posts_then_returns, NULL, NULL), 0);
	ASSERT_CHECKS();
	cr_log_info("%d ran, %d discarded", atomic_load(&stop_ran), atomic_load(&stop_discarded));
	cr_assert_geq(atomic_load(&stop_ran), STOP_N / 2);
	cr_assert_eq(atomic_load(&stop_ran) + atomic_load(&stop_discarded), STOP_N);
	for (int i = 0; i < STOP_N; i++)
		cr_assert_eq(atomic_load(&stop_fates[i]), 1, "spawn %d: %d fates", i,
		             atomic_load(&stop_fates[i]));
}
