/*
 * bench_post: cross-worker posting. (a) Throughput: a task on worker 0 spawns detached
 * tasks onto worker 1, K per turn then rotor_yield(); each bumps a counter owned by worker
 * 1; timed from the first spawn until worker 1 has run the last one; the same with callbacks
 * (rotor_call_soon_threadsafe from worker 0), the like of the baseline's closures, also set
 * against bare MSG_RING carrying the same closures (ring_post.c). (b) Ping-pong: a
 * task on worker 0 and one on worker 1 wake each other through futures. Baselines: two pinned
 * pthreads with the mutex + eventfd doorbell queue of mq.c, doing the same.
 */
#include "bench.h"
#include "mq.h"
#include "ring_post.h"

#include <rotor.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define WARM_TASKS  20000
#define WARM_ROUNDS 2000

struct post_result {
	double tasks_per_s;
	double wall_ns;
	double cpu_ns;
	double instr;   /* instructions per task, -1: not counted */
	double per_msg; /* rotor: tasks per MSG_RING message from worker 0 (its counters) */
};

/* ---- rotor: throughput --------------------------------------------------------------- */

/* Lives on worker 1: only tasks of worker 1 touch count. */
struct post_sink {
	long count;
	long target;
	int64_t t_end;
	struct rotor_future *done;
};

struct post_run {
	long n;
	int k;
	bool callbacks; /* post callbacks instead of spawning tasks */
	struct post_result res;
	int err;
};

static void *count_one(void *arg)
{
	struct post_sink *s = arg;

	if (++s->count == s->target) {
		s->t_end = bench_now();
		rotor_future_set(s->done, NULL);
	}
	return NULL;
}

static void count_one_cb(void *arg)
{
	count_one(arg);
}

static int post_on_worker1(struct post_sink *s, bool callbacks)
{
	if (callbacks) {
		for (;;) {
			int rc =
			    rotor_call_soon_threadsafe(rotor_runtime_current(), 1, count_one_cb, s);
			if (rc != -EAGAIN)
				return rc;
			rotor_yield();
		}
	}
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1)};

	for (;;) {
		int rc = rotor_spawn_attr(&attr, count_one, s, NULL);
		if (rc != -EAGAIN)
			return rc;
		rotor_yield();
	}
}

static int post_all(struct post_sink *s, long n, int k, bool callbacks)
{
	int rc = rotor_future_create(&s->done);

	if (rc < 0)
		return rc;
	s->count = 0;
	s->target = n;
	for (long i = 0; i < n;) {
		for (int j = 0; j < k && i < n; j++, i++) {
			rc = post_on_worker1(s, callbacks);
			/* The future stays with the tasks already posted: leaked, not freed early.
			 */
			if (rc < 0)
				return rc;
		}
		rotor_yield();
	}
	rc = rotor_future_wait(s->done, ROTOR_FOREVER, NULL);
	rotor_future_destroy(s->done);
	return rc;
}

static void *measure_post(void *arg)
{
	struct post_run *r = arg;
	struct post_sink warm = {0}, sink = {0};

	r->err = post_all(&warm, WARM_TASKS, r->k, r->callbacks);
	if (r->err < 0)
		return NULL;
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_worker_stats s0, s1;
	rotor_worker_stats(rt, 0, &s0);
	int64_t t0 = bench_now(), c0 = bench_cpu(), i0 = bench_instructions();
	r->err = post_all(&sink, r->n, r->k, r->callbacks);
	int64_t i1 = bench_instructions(), c1 = bench_cpu();
	if (r->err < 0)
		return NULL;
	rotor_worker_stats(rt, 0, &s1);
	if (s1.msgs_out > s0.msgs_out)
		r->res.per_msg =
		    (double)(s1.items_out - s0.items_out) / (double)(s1.msgs_out - s0.msgs_out);
	double wall = (double)(sink.t_end - t0);
	r->res.tasks_per_s = (double)r->n * 1e9 / wall;
	r->res.wall_ns = wall / (double)r->n;
	r->res.cpu_ns = (double)(c1 - c0) / (double)r->n;
	r->res.instr = bench_instr_per_op(i0, i1, (double)r->n);
	return NULL;
}

static int run_rotor_post(long n, int k, bool callbacks, struct post_result *res)
{
	struct rotor_config cfg = {.workers = 2};
	struct post_run r = {.n = n, .k = k, .callbacks = callbacks};
	int rc = rotor_run(&cfg, measure_post, &r, NULL);

	*res = r.res;
	return rc < 0 ? rc : r.err;
}

/* ---- rotor: ping-pong ---------------------------------------------------------------- */

struct pingpong {
	long rounds;
	struct rotor_future **ping; /* set by worker 0, waited on worker 1 */
	struct rotor_future **pong; /* set by worker 1, waited on worker 0 */
	double rt_ns;
	double cpu_ns;
	double instr;
	int err;
};

static void *answer_pings(void *arg)
{
	struct pingpong *pp = arg;

	for (long i = 0; i < pp->rounds; i++) {
		int rc = rotor_future_wait(pp->ping[i], ROTOR_FOREVER, NULL);
		if (rc < 0)
			return (void *)(intptr_t)rc;
		rotor_future_set(pp->pong[i], NULL);
	}
	return NULL;
}

static int play_rounds(struct pingpong *pp, long from, long to)
{
	for (long i = from; i < to; i++) {
		int rc = rotor_future_set(pp->ping[i], NULL);
		if (rc < 0)
			return rc;
		rc = rotor_future_wait(pp->pong[i], ROTOR_FOREVER, NULL);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void *measure_pingpong(void *arg)
{
	struct pingpong *pp = arg;
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1), .name = "pong"};
	struct rotor_task *t;
	void *res = NULL;

	pp->err = rotor_spawn_attr(&attr, answer_pings, pp, &t);
	if (pp->err < 0)
		return NULL;
	pp->err = play_rounds(pp, 0, WARM_ROUNDS);
	if (pp->err == 0) {
		long n = pp->rounds - WARM_ROUNDS;
		int64_t t0 = bench_now(), c0 = bench_cpu(), i0 = bench_instructions();
		pp->err = play_rounds(pp, WARM_ROUNDS, pp->rounds);
		int64_t i1 = bench_instructions(), t1 = bench_now(), c1 = bench_cpu();
		pp->rt_ns = (double)(t1 - t0) / (double)n;
		pp->cpu_ns = (double)(c1 - c0) / (double)n;
		pp->instr = bench_instr_per_op(i0, i1, (double)n);
	}
	if (pp->err < 0)
		rotor_cancel(t);
	int rc = rotor_join(t, &res);
	if (pp->err == 0 && rc < 0)
		pp->err = rc;
	if (pp->err == 0 && res)
		pp->err = (int)(intptr_t)res;
	return NULL;
}

static int run_rotor_pingpong(long rounds, double *rt_ns, double *cpu_ns, double *instr)
{
	struct rotor_config cfg = {.workers = 2};
	struct pingpong pp = {.rounds = rounds + WARM_ROUNDS};
	int rc = -ENOMEM;

	pp.ping = calloc((size_t)pp.rounds, sizeof(*pp.ping));
	pp.pong = calloc((size_t)pp.rounds, sizeof(*pp.pong));
	if (!pp.ping || !pp.pong)
		goto out;
	for (long i = 0; i < pp.rounds; i++) {
		rc = rotor_future_create(&pp.ping[i]);
		if (rc == 0)
			rc = rotor_future_create(&pp.pong[i]);
		if (rc < 0)
			goto out;
	}
	rc = rotor_run(&cfg, measure_pingpong, &pp, NULL);
	if (rc == 0)
		rc = pp.err;
	*rt_ns = pp.rt_ns;
	*cpu_ns = pp.cpu_ns;
	*instr = pp.instr;
out:
	for (long i = 0; pp.ping && pp.pong && i < pp.rounds; i++) {
		if (pp.ping[i])
			rotor_future_destroy(pp.ping[i]);
		if (pp.pong[i])
			rotor_future_destroy(pp.pong[i]);
	}
	free(pp.ping);
	free(pp.pong);
	return rc;
}

/* ---- rotor: ping-pong by spawning the next hop ---------------------------------------- */

/* Handed from worker to worker: each hop's spawn orders its writes before the next hop. */
struct hop_run {
	long hops_left;
	int64_t t0, c0, i0;
	long warm_hops;
	struct rotor_future *done;
	int err;
};

static void *hop_over(void *arg)
{
	struct hop_run *h = arg;
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1 - rotor_worker_id())};

	if (--h->hops_left == h->warm_hops) {
		h->t0 = bench_now();
		h->c0 = bench_cpu();
		h->i0 = bench_instructions();
	}
	if (h->hops_left == 0) {
		rotor_future_set(h->done, NULL);
		return NULL;
	}
	for (;;) {
		int rc = rotor_spawn_attr(&attr, hop_over, h, NULL);
		if (rc == 0)
			return NULL;
		if (rc != -EAGAIN) {
			h->err = rc;
			rotor_future_set(h->done, NULL);
			return NULL;
		}
		rotor_yield();
	}
}

struct hop_measure {
	long rounds;
	double rt_ns, cpu_ns, instr;
	int err;
};

static void *measure_hops(void *arg)
{
	struct hop_measure *m = arg;
	struct hop_run h = {.hops_left = 2 * (m->rounds + WARM_ROUNDS), .warm_hops = 2 * m->rounds};

	m->err = rotor_future_create(&h.done);
	if (m->err < 0)
		return NULL;
	/* The first hop goes to worker 1; an even count of hops ends back on worker 0. */
	struct rotor_task_attr attr = {.on = ROTOR_ON_WORKER(1)};
	m->err = rotor_spawn_attr(&attr, hop_over, &h, NULL);
	if (m->err == 0)
		m->err = rotor_future_wait(h.done, ROTOR_FOREVER, NULL);
	int64_t i1 = bench_instructions(), t1 = bench_now(), c1 = bench_cpu();
	rotor_future_destroy(h.done);
	if (m->err == 0)
		m->err = h.err;
	m->rt_ns = (double)(t1 - h.t0) / (double)m->rounds;
	m->cpu_ns = (double)(c1 - h.c0) / (double)m->rounds;
	m->instr = bench_instr_per_op(h.i0, i1, (double)m->rounds);
	return NULL;
}

static int run_rotor_hops(long rounds, double *rt_ns, double *cpu_ns, double *instr)
{
	struct rotor_config cfg = {.workers = 2};
	struct hop_measure m = {.rounds = rounds};
	int rc = rotor_run(&cfg, measure_hops, &m, NULL);

	*rt_ns = m.rt_ns;
	*cpu_ns = m.cpu_ns;
	*instr = m.instr;
	return rc < 0 ? rc : m.err;
}

/* ---- baseline: two pthreads and the mutex + eventfd queue ---------------------------- */

struct mq_run {
	struct mq q;
	long n; /* measured tasks, after `warm` */
	long warm;
	int k;
	int prealloc;          /* nodes from one array instead of malloc/free per task */
	struct mq_node *nodes; /* prealloc: warm + n nodes */
	long count;            /* consumer's */
	int warm_efd;          /* consumer -> producer: warm-up tasks all ran */
	int64_t t0, c0, i0, t_end;
};

static void bump_count(void *arg)
{
	struct mq_run *r = arg;
	r->count++;
}

static void *consume(void *arg)
{
	struct mq_run *r = arg;
	long total = r->warm + r->n;

	mq_pin_self(1);
	while (r->count < total) {
		struct mq_node *h = mq_take_all(&r->q);
		while (h) {
			struct mq_node *next = h->next;
			h->fn(h->arg);
			if (!r->prealloc)
				free(h);
			h = next;
			if (r->count == r->warm) {
				uint64_t one = 1;
				if (write(r->warm_efd, &one, sizeof(one)) != sizeof(one))
					abort();
			}
		}
	}
	r->t_end = bench_now();
	return NULL;
}

static void produce(struct mq_run *r, long from, long to)
{
	for (long i = from; i < to;) {
		struct mq_node *first = NULL, *last = NULL;
		for (int j = 0; j < r->k && i < to; j++, i++) {
			struct mq_node *nd = r->prealloc ? &r->nodes[i] : malloc(sizeof(*nd));
			if (!nd)
				abort();
			nd->next = NULL;
			nd->fn = bump_count;
			nd->arg = r;
			if (last)
				last->next = nd;
			else
				first = nd;
			last = nd;
		}
		mq_push_chain(&r->q, first, last);
	}
}

static void *produce_all(void *arg)
{
	struct mq_run *r = arg;
	uint64_t v;

	mq_pin_self(0);
	produce(r, 0, r->warm);
	if (read(r->warm_efd, &v, sizeof(v)) != sizeof(v))
		abort();
	r->t0 = bench_now();
	r->c0 = bench_cpu();
	r->i0 = bench_instructions();
	produce(r, r->warm, r->warm + r->n);
	return NULL;
}

static int run_mq_post(long n, int k, int prealloc, struct post_result *res)
{
	struct mq_run r = {.n = n, .warm = WARM_TASKS, .k = k, .prealloc = prealloc};
	pthread_t prod, cons;
	int rc = mq_init(&r.q);

	if (rc < 0)
		return rc;
	r.warm_efd = eventfd(0, EFD_CLOEXEC);
	if (prealloc)
		r.nodes = malloc(sizeof(*r.nodes) * (size_t)(n + r.warm));
	if (r.warm_efd < 0 || (prealloc && !r.nodes)) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_create(&cons, NULL, consume, &r);
	pthread_create(&prod, NULL, produce_all, &r);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	int64_t i1 = bench_instructions(), c1 = bench_cpu();
	double wall = (double)(r.t_end - r.t0);
	res->tasks_per_s = (double)n * 1e9 / wall;
	res->wall_ns = wall / (double)n;
	res->cpu_ns = (double)(c1 - r.c0) / (double)n;
	res->instr = bench_instr_per_op(r.i0, i1, (double)n);
out:
	if (r.warm_efd >= 0)
		close(r.warm_efd);
	free(r.nodes);
	mq_fini(&r.q);
	return rc;
}

struct mq_pingpong {
	struct mq to_a, to_b;
	struct mq_node ping, pong; /* not on the threads' stacks: the last pong outlives B */
	long rounds;
	double rt_ns, cpu_ns, instr;
};

static void do_nothing(void *arg)
{
}

static void *answer_mq_pings(void *arg)
{
	struct mq_pingpong *pp = arg;

	mq_pin_self(1);
	for (long i = 0; i < pp->rounds + WARM_ROUNDS; i++) {
		struct mq_node *h = mq_take_all(&pp->to_b);
		h->fn(h->arg);
		pp->pong.next = NULL;
		mq_push_chain(&pp->to_a, &pp->pong, &pp->pong);
	}
	return NULL;
}

static void *play_mq_pings(void *arg)
{
	struct mq_pingpong *pp = arg;
	int64_t t0 = 0, c0 = 0, i0 = 0;

	mq_pin_self(0);
	for (long i = 0; i < pp->rounds + WARM_ROUNDS; i++) {
		if (i == WARM_ROUNDS) {
			t0 = bench_now();
			c0 = bench_cpu();
			i0 = bench_instructions();
		}
		pp->ping.next = NULL;
		mq_push_chain(&pp->to_b, &pp->ping, &pp->ping);
		struct mq_node *h = mq_take_all(&pp->to_a);
		h->fn(h->arg);
	}
	pp->instr = bench_instr_per_op(i0, bench_instructions(), (double)pp->rounds);
	pp->rt_ns = (double)(bench_now() - t0) / (double)pp->rounds;
	pp->cpu_ns = (double)(bench_cpu() - c0) / (double)pp->rounds;
	return NULL;
}

static int run_mq_pingpong(long rounds, double *rt_ns, double *cpu_ns, double *instr)
{
	struct mq_pingpong pp = {
	    .rounds = rounds, .ping = {.fn = do_nothing}, .pong = {.fn = do_nothing}};
	pthread_t a, b;
	int rc = mq_init(&pp.to_a);

	if (rc < 0)
		return rc;
	rc = mq_init(&pp.to_b);
	if (rc < 0) {
		mq_fini(&pp.to_a);
		return rc;
	}
	pthread_create(&b, NULL, answer_mq_pings, &pp);
	pthread_create(&a, NULL, play_mq_pings, &pp);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	*rt_ns = pp.rt_ns;
	*cpu_ns = pp.cpu_ns;
	*instr = pp.instr;
	mq_fini(&pp.to_a);
	mq_fini(&pp.to_b);
	return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

struct post_series {
	struct bench_series rate, wall, cpu;
};

static void add_result(struct post_series *s, const struct post_result *r)
{
	bench_add(&s->rate, r->tasks_per_s);
	bench_add(&s->wall, r->wall_ns);
	bench_add(&s->cpu, r->cpu_ns);
	bench_add_instr(&s->rate, r->instr);
	bench_add_instr(&s->wall, r->instr);
	bench_add_instr(&s->cpu, r->instr);
}

static void init_series(struct post_series *s, const char *impl)
{
	memset(s, 0, sizeof(*s));
	s->rate.impl = s->wall.impl = s->cpu.impl = impl;
}

/* One run of bare MSG_RING at per_msg closures per message into rate and cpu. */
static void add_raw(struct bench_ctx *b, long n, int per_msg, struct bench_series *rate,
                    struct bench_series *cpu)
{
	double per_s, cpu_ns;
	int rc = ring_post_run(n, WARM_TASKS, per_msg, &per_s, &cpu_ns);
	if (rc < 0) {
		bench_note(b, "  raw MSG_RING, %d per message, failed: %s", per_msg, strerror(-rc));
		return;
	}
	bench_add(rate, per_s);
	bench_add(cpu, cpu_ns);
}

static int measure_k(struct bench_ctx *b, int k, long n)
{
	struct post_series rot, cb, mq, pre;
	/* Bare MSG_RING at K closures per message, and at 256 (its capacity in big batches). */
	const char *raw_k = k == 1 ? "msg-ring-raw-1-per-msg" : "msg-ring-raw-64-per-msg";
	struct bench_series raw = {.impl = raw_k}, raw_cpu = {.impl = raw_k};
	struct bench_series cap = {.impl = "msg-ring-raw-256-per-msg"},
	                    cap_cpu = {.impl = "msg-ring-raw-256-per-msg"};
	struct bench_series per_msg = {.impl = "rotor"};
	char metric[64], m_ns[64], m_cpu[64];

	init_series(&rot, "rotor");
	init_series(&cb, "rotor");
	init_series(&mq, "mutex-eventfd-queue");
	init_series(&pre, "mutex-eventfd-queue-prealloc");
	bench_note(b, "post K=%d: %ld tasks per rep, %d reps", k, n, b->reps);
	for (int rep = 0; rep < b->reps; rep++) {
		struct post_result r;
		int rc = run_rotor_post(n, k, false, &r);
		if (rc < 0) {
			bench_note(b, "  rotor K=%d failed: %s", k, strerror(-rc));
		} else {
			add_result(&rot, &r);
			bench_add(&per_msg, r.per_msg);
		}
		rc = run_rotor_post(n, k, true, &r);
		if (rc < 0)
			bench_note(b, "  rotor callbacks K=%d failed: %s", k, strerror(-rc));
		else
			add_result(&cb, &r);
		if (run_mq_post(n, k, 0, &r) == 0)
			add_result(&mq, &r);
		if (run_mq_post(n, k, 1, &r) == 0)
			add_result(&pre, &r);
		add_raw(b, n, k, &raw, &raw_cpu);
		add_raw(b, n, 256, &cap, &cap_cpu);
	}
	if (per_msg.n > 0)
		bench_note(b,
		           "  rotor tasks per MSG_RING message (worker 0 items_out/msgs_out): "
		           "median %.1f",
		           bench_median(&per_msg));
	snprintf(metric, sizeof(metric), "post_k%d", k);
	snprintf(m_ns, sizeof(m_ns), "post_k%d_wall", k);
	snprintf(m_cpu, sizeof(m_cpu), "post_k%d_cpu", k);
	bench_report(b, metric, "tasks/s", &rot.rate, &mq.rate);
	bench_report(b, metric, "tasks/s", &rot.rate, &pre.rate);
	bench_report(b, m_ns, "ns/task", &rot.wall, &mq.wall);
	bench_report(b, m_cpu, "ns/task", &rot.cpu, &mq.cpu);
	/* Callbacks: closures run on worker 1, as the baseline's are. */
	snprintf(metric, sizeof(metric), "post_cb_k%d", k);
	snprintf(m_cpu, sizeof(m_cpu), "post_cb_k%d_cpu", k);
	bench_report(b, metric, "callbacks/s", &cb.rate, &pre.rate);
	bench_report(b, m_cpu, "ns/callback", &cb.cpu, &pre.cpu);
	/* The mechanism itself: closures in chains over bare MSG_RING (ring_post.c), K per
	 * message as posted and 256 per message, its capacity; rotor's batches are a loop turn's
	 * worth, often more than K. */
	bench_report(b, metric, "callbacks/s", &cb.rate, &raw);
	bench_report(b, m_cpu, "ns/callback", &cb.cpu, &raw_cpu);
	bench_report(b, metric, "callbacks/s", &cb.rate, &cap);
	bench_report(b, m_cpu, "ns/callback", &cb.cpu, &cap_cpu);
	return rot.rate.n == b->reps && cb.rate.n == b->reps ? 0 : 1;
}

static int measure_pingpongs(struct bench_ctx *b, long rounds)
{
	struct bench_series fut = {.impl = "rotor"}, fut_cpu = {.impl = "rotor"};
	struct bench_series hop = {.impl = "rotor"}, hop_cpu = {.impl = "rotor"};
	struct bench_series mq = {.impl = "mutex-eventfd-queue"},
	                    mq_cpu = {.impl = "mutex-eventfd-queue"};

	bench_note(b, "pingpong: %ld round trips per rep, %d reps (futures; spawned hops)", rounds,
	           b->reps);
	for (int rep = 0; rep < b->reps; rep++) {
		double rt = 0, cpu = 0, in = -1;
		int rc = run_rotor_pingpong(rounds, &rt, &cpu, &in);
		if (rc < 0) {
			bench_note(b, "  rotor ping-pong (futures) failed: %s", strerror(-rc));
		} else {
			bench_add(&fut, rt);
			bench_add(&fut_cpu, cpu);
			bench_add_instr(&fut, in);
			bench_add_instr(&fut_cpu, in);
		}
		if (run_mq_pingpong(rounds, &rt, &cpu, &in) == 0) {
			bench_add(&mq, rt);
			bench_add(&mq_cpu, cpu);
			bench_add_instr(&mq, in);
			bench_add_instr(&mq_cpu, in);
		}
		rc = run_rotor_hops(rounds, &rt, &cpu, &in);
		if (rc < 0) {
			bench_note(b, "  rotor ping-pong (hops) failed: %s", strerror(-rc));
		} else {
			bench_add(&hop, rt);
			bench_add(&hop_cpu, cpu);
			bench_add_instr(&hop, in);
			bench_add_instr(&hop_cpu, in);
		}
	}
	bench_report(b, "pingpong", "ns/roundtrip", &fut, &mq);
	bench_report(b, "pingpong_cpu", "ns/roundtrip", &fut_cpu, &mq_cpu);
	bench_report(b, "pingpong_spawn", "ns/roundtrip", &hop, &mq);
	bench_report(b, "pingpong_spawn_cpu", "ns/roundtrip", &hop_cpu, &mq_cpu);
	return fut.n == b->reps && hop.n == b->reps ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct bench_ctx b;

	bench_init(&b, "post",
	           "Cross-worker spawn throughput (K=64, K=1) and ping-pong, 2 workers, against "
	           "two pthreads with a mutex + eventfd queue.",
	           5, 3, argc, argv);
	int failed = measure_k(&b, 64, b.quick ? 300000 : 2000000);
	failed |= measure_k(&b, 1, b.quick ? 50000 : 300000);
	failed |= measure_pingpongs(&b, b.quick ? 5000 : 50000);
	return failed;
}
