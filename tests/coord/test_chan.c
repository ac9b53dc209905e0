/*
 * Channels: FIFO order, hand-over to waiting receivers, rendezvous, millions of messages
 * between producers and consumers on different workers with nothing lost or duplicated,
 * close and drain, deadlines, cancellation, try-forms from a foreign thread, misuse.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <rotor.h>

#include "check.h"

static struct rotor_chan *ch;

static void *fifo_main(void *arg)
{
	CHECK(rotor_chan_create(8, &ch) == 0);
	for (intptr_t i = 0; i < 8; i++)
		CHECK(rotor_chan_send(ch, (void *)i) == 0);
	CHECK(rotor_chan_try_send(ch, (void *)99) == -EAGAIN);
	CHECK(rotor_chan_send_until(ch, (void *)99, rotor_now() + 2 * MS) == -ETIMEDOUT);
	for (intptr_t i = 0; i < 8; i++) {
		void *v = NULL;
		CHECK(rotor_chan_recv(ch, &v) == 0 && (intptr_t)v == i);
	}
	void *v;
	CHECK(rotor_chan_try_recv(ch, &v) == -EAGAIN);
	int64_t t0 = rotor_now();
	CHECK(rotor_chan_recv_until(ch, &v, t0 + 3 * MS) == -ETIMEDOUT);
	CHECK(rotor_now() - t0 >= 3 * MS);
	CHECK(rotor_chan_destroy(ch) == 0);
	return arg;
}

Test(chan, fifo_order_and_deadlines_on_one_worker, .timeout = 10)
{
	run_checked(1, fifo_main, NULL);
}

/* ---- many producers and consumers across workers ---- */

enum { PRODUCERS = 4, CONSUMERS = 4, PER_PRODUCER = 250000 };
static unsigned char *seen;
static atomic_long received, dupes;

static void *produce(void *arg)
{
	intptr_t base = (intptr_t)arg * PER_PRODUCER;
	for (intptr_t i = 0; i < PER_PRODUCER; i++)
		CHECK(rotor_chan_send(ch, (void *)(base + i + 1)) == 0);
	return NULL;
}

static void *consume(void *arg)
{
	void *v;
	int r;
	while ((r = rotor_chan_recv(ch, &v)) == 0) {
		intptr_t i = (intptr_t)v - 1;
		if (i < 0 || i >= PRODUCERS * PER_PRODUCER ||
		    __atomic_exchange_n(&seen[i], 1, __ATOMIC_RELAXED))
			atomic_fetch_add(&dupes, 1);
		atomic_fetch_add_explicit(&received, 1, memory_order_relaxed);
	}
	CHECK(r == -EPIPE);
	return arg;
}

static void *mpmc_main(void *arg)
{
	size_t cap = (size_t)(intptr_t)arg;
	CHECK(rotor_chan_create(cap, &ch) == 0);
	atomic_store(&received, 0);
	atomic_store(&dupes, 0);
	struct rotor_task *p[PRODUCERS], *c[CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++)
		c[i] = spawn_on(i % 2, consume, NULL);
	for (int i = 0; i < PRODUCERS; i++)
		p[i] = spawn_on((i + 1) % 2, produce, (void *)(intptr_t)i);
	CHECK(rotor_gather(p, PRODUCERS, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(rotor_chan_close(ch) == 0);
	CHECK(rotor_chan_close(ch) == -EALREADY);
	CHECK(rotor_gather(c, CONSUMERS, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(rotor_chan_destroy(ch) == 0);
	return NULL;
}

Test(chan, a_million_messages_across_workers_none_lost_or_duplicated, .timeout = 120)
{
	static const size_t caps[] = {64, 1, 0};
	for (size_t k = 0; k < 3; k++) {
		seen = calloc(PRODUCERS * PER_PRODUCER, 1);
		run_checked(2, mpmc_main, (void *)(intptr_t)caps[k]);
		cr_assert_eq(atomic_load(&received), PRODUCERS * PER_PRODUCER,
		             "capacity %zu: %ld received", caps[k], atomic_load(&received));
		cr_assert_eq(atomic_load(&dupes), 0, "capacity %zu: %ld duplicates", caps[k],
		             atomic_load(&dupes));
		for (long i = 0; i < PRODUCERS * PER_PRODUCER; i++)
			cr_assert(seen[i], "capacity %zu: message %ld lost", caps[k], i);
		free(seen);
	}
}

/* ---- close, drain, blocked senders ---- */

static atomic_int blocked_send_rc;

static void *blocked_sender(void *arg)
{
	task_begins();
	atomic_store(&blocked_send_rc, rotor_chan_send(ch, arg));
	return NULL;
}

static void *close_main(void *arg)
{
	CHECK(rotor_chan_create(2, &ch) == 0);
	CHECK(rotor_chan_send(ch, (void *)1) == 0);
	CHECK(rotor_chan_send(ch, (void *)2) == 0);
	atomic_store(&tasks_begun, 0);
	struct rotor_task *s = spawn_on(1, blocked_sender, (void *)3);
	/* The sender must be blocked before destroy is tried, or destroy frees the channel:
	 * wait until it has begun, then give it ample time to block (valgrind is slow). */
	settle(1);
	rotor_sleep(20 * MS);
	CHECK(rotor_chan_destroy(ch) == -EBUSY);
	CHECK(rotor_chan_close(ch) == 0);
	CHECK(rotor_join(s, NULL) == 0);
	CHECK(atomic_load(&blocked_send_rc) == -EPIPE);
	CHECK(rotor_chan_send(ch, (void *)4) == -EPIPE);
	CHECK(rotor_chan_try_send(ch, (void *)4) == -EPIPE);
	void *v = NULL;
	CHECK(rotor_chan_recv(ch, &v) == 0 && v == (void *)1);
	CHECK(rotor_chan_try_recv(ch, &v) == 0 && v == (void *)2);
	CHECK(rotor_chan_recv(ch, &v) == -EPIPE);
	CHECK(rotor_chan_try_recv(ch, &v) == -EPIPE);
	CHECK(rotor_chan_destroy(ch) == 0);
	return arg;
}

Test(chan, close_wakes_senders_and_receivers_drain_then_end, .timeout = 10)
{
	run_checked(2, close_main, NULL);
}

/* ---- rendezvous, cancellation ---- */

static atomic_int cancelled_recv_rc;

static void *receiver_cancelled(void *arg)
{
	task_begins();
	void *v;
	atomic_store(&cancelled_recv_rc, rotor_chan_recv(ch, &v));
	return arg;
}

static void *rendezvous_main(void *arg)
{
	CHECK(rotor_chan_create(0, &ch) == 0);
	CHECK(rotor_chan_try_send(ch, (void *)1) == -EAGAIN); /* nobody receiving */
	struct rotor_task *r = spawn_on(1, receiver_cancelled, NULL);
	settle(1);
	CHECK(rotor_cancel(r) == 0);
	CHECK(rotor_join(r, NULL) == -ECANCELED);
	CHECK(atomic_load(&cancelled_recv_rc) == -ECANCELED);
	/* The cancelled receiver left no trace: a send still finds nobody. */
	CHECK(rotor_chan_try_send(ch, (void *)1) == -EAGAIN);
	CHECK(rotor_chan_destroy(ch) == 0);
	return arg;
}

Test(chan, rendezvous_and_cancelled_receiver, .timeout = 10)
{
	run_checked(2, rendezvous_main, NULL);
}

static void *foreign_sender(void *arg)
{
	for (intptr_t i = 1; i <= 1000;) {
		int r = rotor_chan_try_send(ch, (void *)i);
		if (r == 0)
			i++;
		else if (r != -EAGAIN)
			return (void *)1;
	}
	return NULL;
}

static void *foreign_main(void *arg)
{
	CHECK(rotor_chan_create(16, &ch) == 0);
	pthread_t th;
	pthread_create(&th, NULL, foreign_sender, NULL);
	for (intptr_t i = 1; i <= 1000; i++) {
		void *v = NULL;
		CHECK(rotor_chan_recv(ch, &v) == 0 && (intptr_t)v == i);
	}
	void *tr;
	pthread_join(th, &tr);
	CHECK(tr == NULL);
	CHECK(rotor_chan_destroy(ch) == 0);
	return arg;
}

Test(chan, a_foreign_thread_feeds_a_task, .timeout = 20)
{
	run_checked(2, foreign_main, NULL);
}

Test(chan, misuse, .timeout = 10)
{
	struct rotor_chan *c;
	void *v;
	cr_assert_eq(rotor_chan_create((size_t)1 << 40, &c), -EINVAL);
	cr_assert_eq(rotor_chan_create(4, &c), 0);
	cr_assert_eq(rotor_chan_send(c, NULL), -EPERM);
	cr_assert_eq(rotor_chan_recv(c, &v), -EPERM);
	cr_assert_eq(rotor_chan_try_recv(c, NULL), -EINVAL);
	cr_assert_eq(rotor_chan_destroy(c), 0);
}

/* ---- select ---- */

static struct rotor_chan *a, *b;

static void *sends_to_b_later(void *arg)
{
	rotor_sleep(5 * MS);
	CHECK(rotor_chan_send(b, arg) == 0);
	return NULL;
}

static void *select_main(void *arg)
{
	CHECK(rotor_chan_create(1, &a) == 0);
	CHECK(rotor_chan_create(1, &b) == 0);
	struct rotor_select_case c[2] = {{.ch = a, .op = ROTOR_SELECT_RECV},
	                                 {.ch = b, .op = ROTOR_SELECT_RECV}};
	/* Nothing ready: a past deadline polls. */
	CHECK(rotor_chan_select(c, 2, 0) == -ETIMEDOUT);
	CHECK(rotor_chan_select(c, 2, rotor_now() + 2 * MS) == -ETIMEDOUT);
	/* Both ready: the lowest index wins, the other value stays. */
	CHECK(rotor_chan_send(a, (void *)1) == 0);
	CHECK(rotor_chan_send(b, (void *)2) == 0);
	CHECK(rotor_chan_select(c, 2, ROTOR_FOREVER) == 0 && c[0].value == (void *)1 &&
	      c[0].result == 0);
	CHECK(rotor_chan_select(c, 2, ROTOR_FOREVER) == 1 && c[1].value == (void *)2);
	/* Wait on both; a sender on another worker completes case 1, and case 0's waiter is
	 * withdrawn (a later value on a stays for a plain receive). */
	struct rotor_task_attr at = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *t;
	CHECK(rotor_spawn_attr(&at, sends_to_b_later, (void *)7, &t) == 0);
	CHECK(rotor_chan_select(c, 2, ROTOR_FOREVER) == 1 && c[1].value == (void *)7);
	CHECK(rotor_join(t, NULL) == 0);
	CHECK(rotor_chan_try_send(a, (void *)8) == 0);
	void *v = NULL;
	CHECK(rotor_chan_try_recv(a, &v) == 0 && v == (void *)8);
	/* A send case on a full channel, next to a receive that is ready. */
	CHECK(rotor_chan_send(a, (void *)9) == 0);
	struct rotor_select_case s2[2] = {{.ch = a, .op = ROTOR_SELECT_SEND, .value = (void *)10},
	                                  {.ch = a, .op = ROTOR_SELECT_RECV}};
	CHECK(rotor_chan_select(s2, 2, ROTOR_FOREVER) == 1 && s2[1].value == (void *)9);
	CHECK(rotor_chan_select(s2, 2, ROTOR_FOREVER) == 0);
	CHECK(rotor_chan_try_recv(a, &v) == 0 && v == (void *)10);
	/* A closed channel completes its case with -EPIPE. */
	CHECK(rotor_chan_close(b) == 0);
	CHECK(rotor_chan_select(c, 2, ROTOR_FOREVER) == 1 && c[1].result == -EPIPE);
	CHECK(rotor_chan_destroy(a) == 0);
	CHECK(rotor_chan_destroy(b) == 0);
	return arg;
}

Test(chan, select_picks_a_ready_case_and_withdraws_the_others, .timeout = 10)
{
	run_checked(2, select_main, NULL);
}

static atomic_int select_rc;

static void *selects_forever(void *arg)
{
	task_begins();
	struct rotor_select_case c[2] = {{.ch = a, .op = ROTOR_SELECT_RECV},
	                                 {.ch = b, .op = ROTOR_SELECT_RECV}};
	atomic_store(&select_rc, rotor_chan_select(c, 2, ROTOR_FOREVER));
	return arg;
}

static void *select_cancel_main(void *arg)
{
	CHECK(rotor_chan_create(0, &a) == 0);
	CHECK(rotor_chan_create(0, &b) == 0);
	struct rotor_task_attr at = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *t;
	CHECK(rotor_spawn_attr(&at, selects_forever, NULL, &t) == 0);
	settle(1);
	CHECK(rotor_cancel(t) == 0);
	CHECK(rotor_join(t, NULL) == -ECANCELED);
	CHECK(atomic_load(&select_rc) == -ECANCELED);
	/* Its waiters are gone from both channels. */
	CHECK(rotor_chan_try_send(a, NULL) == -EAGAIN && rotor_chan_try_send(b, NULL) == -EAGAIN);
	CHECK(rotor_chan_destroy(a) == 0 && rotor_chan_destroy(b) == 0);
	return arg;
}

Test(chan, cancelled_select_withdraws_from_every_channel, .timeout = 10)
{
	run_checked(2, select_cancel_main, NULL);
}

/* Many selectors on two channels against producers on both workers: every value received
 * exactly once. */
enum { SEL_PRODUCERS = 4, SEL_PER = 50000, SELECTORS = 4 };
static unsigned char *sel_seen;
static atomic_long sel_got, sel_dupes;

static void *produce_to(void *arg)
{
	intptr_t p = (intptr_t)arg;
	struct rotor_chan *dst = p % 2 ? b : a;
	for (intptr_t i = 0; i < SEL_PER; i++)
		CHECK(rotor_chan_send(dst, (void *)(p * SEL_PER + i + 1)) == 0);
	return NULL;
}

static void *select_consumer(void *arg)
{
	int open = 2;
	bool a_open = true, b_open = true;
	while (open) {
		struct rotor_select_case c[2];
		size_t n = 0;
		if (a_open)
			c[n++] = (struct rotor_select_case){.ch = a, .op = ROTOR_SELECT_RECV};
		if (b_open)
			c[n++] = (struct rotor_select_case){.ch = b, .op = ROTOR_SELECT_RECV};
		int k = rotor_chan_select(c, n, ROTOR_FOREVER);
		CHECK(k >= 0);
		if (k < 0)
			break;
		if (c[k].result == -EPIPE) {
			if (c[k].ch == a)
				a_open = false;
			else
				b_open = false;
			open--;
			continue;
		}
		intptr_t i = (intptr_t)c[k].value - 1;
		if (i < 0 || i >= SEL_PRODUCERS * SEL_PER ||
		    __atomic_exchange_n(&sel_seen[i], 1, __ATOMIC_RELAXED))
			atomic_fetch_add(&sel_dupes, 1);
		atomic_fetch_add(&sel_got, 1);
	}
	return arg;
}

static void *select_stress_main(void *arg)
{
	CHECK(rotor_chan_create((size_t)(intptr_t)arg, &a) == 0);
	CHECK(rotor_chan_create((size_t)(intptr_t)arg, &b) == 0);
	struct rotor_task *p[SEL_PRODUCERS], *c[SELECTORS];
	for (int i = 0; i < SELECTORS; i++) {
		struct rotor_task_attr at = {.on = ROTOR_ON_WORKER(i % 2)};
		CHECK(rotor_spawn_attr(&at, select_consumer, NULL, &c[i]) == 0);
	}
	for (int i = 0; i < SEL_PRODUCERS; i++) {
		struct rotor_task_attr at = {.on = ROTOR_ON_WORKER((i / 2) % 2)};
		CHECK(rotor_spawn_attr(&at, produce_to, (void *)(intptr_t)i, &p[i]) == 0);
	}
	CHECK(rotor_gather(p, SEL_PRODUCERS, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(rotor_chan_close(a) == 0 && rotor_chan_close(b) == 0);
	CHECK(rotor_gather(c, SELECTORS, ROTOR_FOREVER, NULL, NULL) == 0);
	CHECK(rotor_chan_destroy(a) == 0 && rotor_chan_destroy(b) == 0);
	return NULL;
}

Test(chan, selectors_across_workers_lose_and_duplicate_nothing, .timeout = 60)
{
	static const intptr_t caps[] = {16, 0};
	for (int k = 0; k < 2; k++) {
		sel_seen = calloc(SEL_PRODUCERS * SEL_PER, 1);
		atomic_store(&sel_got, 0);
		atomic_store(&sel_dupes, 0);
		run_checked(2, select_stress_main, (void *)caps[k]);
		cr_assert_eq(atomic_load(&sel_got), SEL_PRODUCERS * SEL_PER, "cap %ld: %ld got",
		             (long)caps[k], atomic_load(&sel_got));
		cr_assert_eq(atomic_load(&sel_dupes), 0);
		for (long i = 0; i < SEL_PRODUCERS * SEL_PER; i++)
			cr_assert(sel_seen[i], "cap %ld: value %ld lost", (long)caps[k], i);
		free(sel_seen);
	}
}
