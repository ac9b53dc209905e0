/*
 * bench_submit: work submitted from a thread that is no worker (the main thread) into a
 * background runtime of 2 workers: (a) N rotor_submit() to ROTOR_WORKER_ANY, then wait and
 * destroy every future: submits/s; (b) rotor_call() round trips, one at a time: µs.
 * Baselines: a mutex + condvar thread pool of 2 threads doing the same, Python's
 * asyncio.run_coroutine_threadsafe (peers/asyncio_submit.py; uvloop too if importable), and
 * tokio's Handle::spawn into a multi-thread runtime of 2 workers (peers/tokio, if built).
 */
#include "bench.h"

#include <rotor.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BENCH_SOURCE_DIR
#define BENCH_SOURCE_DIR "bench"
#endif

#define WARM 1000

struct submit_result {
	double per_s;  /* throughput */
	double cpu_ns; /* process CPU per submit */
	double rt_us;  /* round trip */
	double rt_cpu_us;
	double instr_submit; /* instructions per submit, per round trip; -1: not counted */
	double instr_rt;
};

static void *identity(void *arg)
{
	return arg;
}

/* ---- rotor ----------------------------------------------------------------------------- */

static int submit_and_wait(struct rotor_runtime *rt, struct rotor_future **f, long n)
{
	int rc = 0;
	long i, done;

	for (i = 0; i < n; i++) {
		rc = rotor_submit(rt, ROTOR_WORKER_ANY, identity, (void *)(intptr_t)i, &f[i]);
		if (rc < 0)
			break;
	}
	for (done = 0; done < i; done++) {
		void *res = NULL;
		int wrc = rotor_future_wait(f[done], ROTOR_FOREVER, &res);
		if (wrc == 0 && res != (void *)(intptr_t)done)
			wrc = -EPROTO;
		if (rc == 0)
			rc = wrc;
		rotor_future_destroy(f[done]);
	}
	return rc;
}

static int call_each(struct rotor_runtime *rt, long m)
{
	for (long i = 0; i < m; i++) {
		void *res = NULL;
		int rc = rotor_call(rt, ROTOR_WORKER_ANY, identity, (void *)(intptr_t)i, &res);
		if (rc < 0)
			return rc;
		if (res != (void *)(intptr_t)i)
			return -EPROTO;
	}
	return 0;
}

static int run_rotor(struct rotor_runtime *rt, struct rotor_future **f, long n, long m,
                     struct submit_result *r)
{
	int rc = submit_and_wait(rt, f, WARM);
	if (rc < 0)
		return rc;
	int64_t t0 = bench_now(), c0 = bench_cpu(), i0 = bench_instructions();
	rc = submit_and_wait(rt, f, n);
	int64_t i1 = bench_instructions(), t1 = bench_now(), c1 = bench_cpu();
	if (rc < 0)
		return rc;
	r->per_s = (double)n * 1e9 / (double)(t1 - t0);
	r->cpu_ns = (double)(c1 - c0) / (double)n;
	r->instr_submit = bench_instr_per_op(i0, i1, (double)n);
	t0 = bench_now();
	c0 = bench_cpu();
	i0 = bench_instructions();
	rc = call_each(rt, m);
	i1 = bench_instructions();
	t1 = bench_now();
	c1 = bench_cpu();
	r->rt_us = (double)(t1 - t0) / 1e3 / (double)m;
	r->rt_cpu_us = (double)(c1 - c0) / 1e3 / (double)m;
	r->instr_rt = bench_instr_per_op(i0, i1, (double)m);
	return rc;
}

/* ---- baseline: a mutex + condvar pool of 2 threads ------------------------------------ */

struct pool_job {
	struct pool_job *next;
	rotor_fn fn;
	void *arg;
	void *result;
	int done;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* signalled on submit when a thread idles */
	pthread_cond_t done; /* broadcast on completion when someone waits */
	struct pool_job *head, **tail;
	int idle, waiters, stop;
	pthread_t threads[2];
};

static void *serve_pool(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->work, &p->lock);
			p->idle--;
		}
		if (!p->head)
			break;
		struct pool_job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = &p->head;
		pthread_mutex_unlock(&p->lock);
		void *res = j->fn(j->arg);
		pthread_mutex_lock(&p->lock);
		j->result = res;
		j->done = 1;
		if (p->waiters)
			pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void start_pool(struct pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->tail = &p->head;
	for (int i = 0; i < 2; i++)
		pthread_create(&p->threads[i], NULL, serve_pool, p);
}

static void stop_pool(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < 2; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
}

static struct pool_job *submit_to_pool(struct pool *p, rotor_fn fn, void *arg)
{
	struct pool_job *j = malloc(sizeof(*j));

	if (!j)
		abort();
	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	j->done = 0;
	pthread_mutex_lock(&p->lock);
	*p->tail = j;
	p->tail = &j->next;
	if (p->idle)
		pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	return j;
}

static void *wait_pool_job(struct pool *p, struct pool_job *j)
{
	pthread_mutex_lock(&p->lock);
	while (!j->done) {
		p->waiters++;
		pthread_cond_wait(&p->done, &p->lock);
		p->waiters--;
	}
	pthread_mutex_unlock(&p->lock);
	void *res = j->result;
	free(j);
	return res;
}

static int submit_and_wait_pool(struct pool *p, struct pool_job **j, long n)
{
	int rc = 0;

	for (long i = 0; i < n; i++)
		j[i] = submit_to_pool(p, identity, (void *)(intptr_t)i);
	for (long i = 0; i < n; i++)
		if (wait_pool_job(p, j[i]) != (void *)(intptr_t)i)
			rc = -EPROTO;
	return rc;
}

static int run_pool(struct pool_job **j, long n, long m, struct submit_result *r)
{
	struct pool p;
	int rc;

	start_pool(&p);
	rc = submit_and_wait_pool(&p, j, WARM);
	int64_t t0 = bench_now(), c0 = bench_cpu(), i0 = bench_instructions();
	if (rc == 0)
		rc = submit_and_wait_pool(&p, j, n);
	int64_t i1 = bench_instructions(), t1 = bench_now(), c1 = bench_cpu();
	r->per_s = (double)n * 1e9 / (double)(t1 - t0);
	r->cpu_ns = (double)(c1 - c0) / (double)n;
	r->instr_submit = bench_instr_per_op(i0, i1, (double)n);
	t0 = bench_now();
	c0 = bench_cpu();
	i0 = bench_instructions();
	for (long i = 0; i < m && rc == 0; i++)
		if (wait_pool_job(&p, submit_to_pool(&p, identity, (void *)(intptr_t)i)) !=
		    (void *)(intptr_t)i)
			rc = -EPROTO;
	i1 = bench_instructions();
	t1 = bench_now();
	c1 = bench_cpu();
	r->rt_us = (double)(t1 - t0) / 1e3 / (double)m;
	r->rt_cpu_us = (double)(c1 - c0) / 1e3 / (double)m;
	r->instr_rt = bench_instr_per_op(i0, i1, (double)m);
	stop_pool(&p);
	return rc;
}

/* ---- baseline: Python asyncio ---------------------------------------------------------- */

/* A peer process printing submit_per_s, submit_cpu_ns, rt_us and rt_cpu_us. */
static int run_peer(const struct bench_ctx *b, const char *cmd, struct submit_result *r)
{
	char out[4096];

	/* Out of process: its instructions are not counted. */
	r->instr_submit = r->instr_rt = -1;
	if (bench_run_peer(b, cmd, out, sizeof(out)) < 0)
		return -1;
	if (bench_peer_value(out, "submit_per_s", &r->per_s) < 0 ||
	    bench_peer_value(out, "submit_cpu_ns", &r->cpu_ns) < 0 ||
	    bench_peer_value(out, "rt_us", &r->rt_us) < 0 ||
	    bench_peer_value(out, "rt_cpu_us", &r->rt_cpu_us) < 0)
		return -1;
	return 0;
}

static int run_python(const struct bench_ctx *b, int uvloop, long n, long m,
                      struct submit_result *r)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "'%s' '%s/peers/asyncio_submit.py' --n %ld --rt %ld%s",
	         b->python, BENCH_SOURCE_DIR, n, m, uvloop ? " --uvloop" : "");
	return run_peer(b, cmd, r);
}

/* ---- baseline: tokio's Handle::spawn from the main thread (peers/tokio) ------------------ */

static int run_tokio(const struct bench_ctx *b, const char *exe, long n, long m,
                     struct submit_result *r)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "'%s' --n %ld --rt %ld", exe, n, m);
	return run_peer(b, cmd, r);
}

static int have_uvloop(const struct bench_ctx *b)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "'%s' -c 'import uvloop' >/dev/null 2>&1", b->python);
	return system(cmd) == 0;
}

/* ---- main ------------------------------------------------------------------------------ */

struct submit_series {
	struct bench_series per_s, cpu_ns, rt_us, rt_cpu_us;
};

static void init_series(struct submit_series *s, const char *impl)
{
	memset(s, 0, sizeof(*s));
	s->per_s.impl = s->cpu_ns.impl = s->rt_us.impl = s->rt_cpu_us.impl = impl;
}

static void add_result(struct submit_series *s, const struct submit_result *r)
{
	bench_add(&s->per_s, r->per_s);
	bench_add(&s->cpu_ns, r->cpu_ns);
	bench_add(&s->rt_us, r->rt_us);
	bench_add(&s->rt_cpu_us, r->rt_cpu_us);
	bench_add_instr(&s->per_s, r->instr_submit);
	bench_add_instr(&s->cpu_ns, r->instr_submit);
	bench_add_instr(&s->rt_us, r->instr_rt);
	bench_add_instr(&s->rt_cpu_us, r->instr_rt);
}

int main(int argc, char **argv)
{
	struct bench_ctx b;
	struct submit_series rot, pool, py, uv, tk;
	char tpeer[4096];
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt;
	int failed = 0;

	bench_init(&b, "submit",
	           "Foreign-thread submit into 2 workers: N submits then wait all (submits/s), and "
	           "one-at-a-time rotor_call round trips (us), against a 2-thread mutex+condvar "
	           "pool and Python asyncio.run_coroutine_threadsafe.",
	           5, 3, argc, argv);
	long n = b.quick ? 20000 : 100000;
	long m = b.quick ? 1000 : 5000;
	int uvloop = have_uvloop(&b);
	const char *tokio = bench_peer_path(&b, "tokio-submit", tpeer, sizeof(tpeer));
	void *slots = malloc(sizeof(void *) * (size_t)(n > WARM ? n : WARM));

	init_series(&rot, "rotor");
	init_series(&pool, "threadpool-mutex-condvar");
	init_series(&py, "asyncio");
	init_series(&uv, "uvloop");
	init_series(&tk, "tokio-handle-spawn");
	int rc = rotor_runtime_create(&cfg, &rt);
	if (rc < 0 || !slots) {
		fprintf(stderr, "bench_submit: rotor_runtime_create: %s\n", strerror(-rc));
		return 1;
	}
	bench_note(&b, "submit: %ld submits + %ld round trips per rep, %d reps, 2 workers; %s", n,
	           m, b.reps, uvloop ? "uvloop found" : "uvloop not importable: skipped");
	if (!tokio)
		bench_note(
		    &b,
		    "  tokio peer not found in %s (run.sh builds it with cargo): baseline skipped",
		    b.peer_dir);
	for (int rep = 0; rep < b.reps; rep++) {
		struct submit_result r;
		rc = run_rotor(rt, slots, n, m, &r);
		if (rc < 0) {
			bench_note(&b, "  rotor failed: %s", strerror(-rc));
			failed = 1;
		} else {
			add_result(&rot, &r);
		}
		if (run_pool(slots, n, m, &r) == 0)
			add_result(&pool, &r);
		if (run_python(&b, 0, n, m, &r) == 0)
			add_result(&py, &r);
		if (uvloop && run_python(&b, 1, n, m, &r) == 0)
			add_result(&uv, &r);
		if (tokio && run_tokio(&b, tokio, n, m, &r) == 0)
			add_result(&tk, &r);
	}
	rotor_runtime_destroy(rt);
	free(slots);

	/* uvloop and tokio only where they ran. */
	const struct submit_series *base[] = {&py, &uv, &pool, &tk};
#define SHOWN(s) ((s)->per_s.n > 0 || ((s) != &uv && (s) != &tk))
	for (int i = 0; i < 4; i++)
		if (SHOWN(base[i]))
			bench_report(&b, "submit_throughput", "submits/s", &rot.per_s,
			             &base[i]->per_s);
	for (int i = 0; i < 4; i++)
		if (SHOWN(base[i]))
			bench_report(&b, "submit_cpu", "ns/submit", &rot.cpu_ns, &base[i]->cpu_ns);
	for (int i = 0; i < 4; i++)
		if (SHOWN(base[i]))
			bench_report(&b, "call_roundtrip", "us", &rot.rt_us, &base[i]->rt_us);
	for (int i = 0; i < 4; i++)
		if (SHOWN(base[i]))
			bench_report(&b, "call_roundtrip_cpu", "us", &rot.rt_cpu_us,
			             &base[i]->rt_cpu_us);
#undef SHOWN
	return failed;
}
