/*
 * bench_sync: the coordination primitives against their pthread equivalents measured in the
 * same run (and Go's buffered channel where Go is installed):
 *   mutex      uncontended lock+unlock, one task       vs pthread_mutex, one thread
 *              (the shared mutex, and the worker-local one of rotor_mutex_init_local)
 *   chan_local send+recv on one worker, capacity 64    vs a mutex+condvar queue, one thread
 *   chan_xw    messages/s, producer task on worker 0,  vs a mutex+condvar bounded queue
 *              consumer on worker 1, capacity 1024        between two threads; Go chan
 *   offload    rotor_offload of a no-op, round trip    vs a mutex+condvar pool: submit and
 *                                                         wait on a condvar for the result
 */
#include "bench.h"

#include <rotor.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP_XW 1024

static long n_ops;

/* ---- rotor side ---- */

struct measured {
	double ns;
	double cpu_ns;
};

/* Uncontended lock+unlock of a mutex made by init (shared or worker-local). */
static double lock_unlock_ns(int (*init)(struct rotor_mutex *))
{
	struct rotor_mutex mu;
	init(&mu);
	int64_t t0 = bench_now();
	for (long i = 0; i < n_ops; i++) {
		rotor_mutex_lock(&mu);
		rotor_mutex_unlock(&mu);
	}
	return (double)(bench_now() - t0) / (double)n_ops;
}

static void *mutex_task(void *arg)
{
	((struct measured *)arg)->ns = lock_unlock_ns(rotor_mutex_init);
	return NULL;
}

static void *mutex_local_task(void *arg)
{
	((struct measured *)arg)->ns = lock_unlock_ns(rotor_mutex_init_local);
	return NULL;
}

static void *chan_local_task(void *arg)
{
	struct measured *m = arg;
	struct rotor_chan *ch;
	if (rotor_chan_create(64, &ch) < 0)
		return NULL;
	void *v;
	int64_t t0 = bench_now();
	for (long i = 0; i < n_ops; i++) {
		rotor_chan_send(ch, (void *)i);
		rotor_chan_recv(ch, &v);
	}
	m->ns = (double)(bench_now() - t0) / (double)n_ops;
	rotor_chan_destroy(ch);
	return NULL;
}

static void *xw_consumer(void *arg)
{
	struct rotor_chan *ch = arg;
	void *v;
	uintptr_t sum = 0;
	while (rotor_chan_recv(ch, &v) == 0)
		sum += (uintptr_t)v;
	return (void *)sum;
}

static void *chan_xw_task(void *arg)
{
	struct measured *m = arg;
	struct rotor_chan *ch;
	if (rotor_chan_create(CAP_XW, &ch) < 0)
		return NULL;
	struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *c;
	int64_t t0 = bench_now(), c0 = bench_cpu();
	rotor_spawn_attr(&a, xw_consumer, ch, &c);
	for (long i = 0; i < n_ops; i++)
		rotor_chan_send(ch, (void *)i);
	rotor_chan_close(ch);
	rotor_join(c, NULL);
	double wall = (double)(bench_now() - t0);
	m->ns = (double)n_ops * 1e9 / wall;
	m->cpu_ns = (double)(bench_cpu() - c0) / (double)n_ops;
	rotor_chan_destroy(ch);
	return NULL;
}

static void *noop(void *arg)
{
	return arg;
}

static void *offload_task(void *arg)
{
	struct measured *m = arg;
	long n = n_ops / 20;
	rotor_offload(noop, NULL, NULL); /* starts the pool */
	int64_t t0 = bench_now();
	for (long i = 0; i < n; i++)
		rotor_offload(noop, NULL, NULL);
	m->ns = (double)(bench_now() - t0) / (double)n;
	return NULL;
}

static double rotor_measure(int workers, rotor_fn fn, double *cpu)
{
	struct measured m = {0, 0};
	struct rotor_config cfg = {.workers = (unsigned)workers};
	if (rotor_run(&cfg, fn, &m, NULL) < 0)
		return -1;
	if (cpu)
		*cpu = m.cpu_ns;
	return m.ns;
}

/* ---- pthread baselines ---- */

static double pthread_mutex_measure(void)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int64_t t0 = bench_now();
	for (long i = 0; i < n_ops; i++) {
		pthread_mutex_lock(&mu);
		pthread_mutex_unlock(&mu);
	}
	return (double)(bench_now() - t0) / (double)n_ops;
}

/* A bounded queue of pointers with a mutex and two condition variables. */
struct bq {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	size_t cap, head, count;
	int closed;
	void **buf;
};

static void bq_init(struct bq *q, size_t cap)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->cap = cap;
	q->head = q->count = 0;
	q->closed = 0;
	q->buf = malloc(cap * sizeof(void *));
}

static void bq_fini(struct bq *q)
{
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->buf);
}

static void bq_send(struct bq *q, void *v)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == q->cap)
		pthread_cond_wait(&q->not_full, &q->lock);
	q->buf[(q->head + q->count++) % q->cap] = v;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

static int bq_recv(struct bq *q, void **v)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->lock);
	if (q->count == 0) {
		pthread_mutex_unlock(&q->lock);
		return -1;
	}
	*v = q->buf[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	pthread_cond_signal(&q->not_full);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

static void bq_close(struct bq *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

static double bq_local_measure(void)
{
	struct bq q;
	bq_init(&q, 64);
	void *v;
	int64_t t0 = bench_now();
	for (long i = 0; i < n_ops; i++) {
		bq_send(&q, (void *)i);
		bq_recv(&q, &v);
	}
	double ns = (double)(bench_now() - t0) / (double)n_ops;
	bq_fini(&q);
	return ns;
}

static void *bq_consumer(void *arg)
{
	struct bq *q = arg;
	void *v;
	uintptr_t sum = 0;
	while (bq_recv(q, &v) == 0)
		sum += (uintptr_t)v;
	return (void *)sum;
}

static double bq_xw_measure(double *cpu)
{
	struct bq q;
	bq_init(&q, CAP_XW);
	pthread_t c;
	int64_t t0 = bench_now(), c0 = bench_cpu();
	pthread_create(&c, NULL, bq_consumer, &q);
	for (long i = 0; i < n_ops; i++)
		bq_send(&q, (void *)i);
	bq_close(&q);
	pthread_join(c, NULL);
	double wall = (double)(bench_now() - t0);
	*cpu = (double)(bench_cpu() - c0) / (double)n_ops;
	bq_fini(&q);
	return (double)n_ops * 1e9 / wall;
}

/* The pool baseline: one thread serves jobs; the caller waits on a condvar for each. */
struct pool {
	pthread_mutex_t lock;
	pthread_cond_t job_cond, done_cond;
	int has_job, done, stop;
};

static void *pool_thread(void *arg)
{
	struct pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->has_job && !p->stop)
			pthread_cond_wait(&p->job_cond, &p->lock);
		if (p->stop)
			break;
		p->has_job = 0;
		noop(NULL);
		p->done = 1;
		pthread_cond_signal(&p->done_cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static double pool_measure(void)
{
	struct pool p = {.has_job = 0};
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.job_cond, NULL);
	pthread_cond_init(&p.done_cond, NULL);
	pthread_t th;
	pthread_create(&th, NULL, pool_thread, &p);
	long n = n_ops / 20;
	int64_t t0 = bench_now();
	for (long i = 0; i < n; i++) {
		pthread_mutex_lock(&p.lock);
		p.has_job = 1;
		p.done = 0;
		pthread_cond_signal(&p.job_cond);
		while (!p.done)
			pthread_cond_wait(&p.done_cond, &p.lock);
		pthread_mutex_unlock(&p.lock);
	}
	double ns = (double)(bench_now() - t0) / (double)n;
	pthread_mutex_lock(&p.lock);
	p.stop = 1;
	pthread_cond_signal(&p.job_cond);
	pthread_mutex_unlock(&p.lock);
	pthread_join(th, NULL);
	return ns;
}

int main(int argc, char **argv)
{
	struct bench_ctx b;
	bench_init(&b, "sync",
	           "Coordination: mutex, channel on one worker and across workers, offload round "
	           "trip, each against its pthread equivalent (and Go's buffered channel).",
	           5, 3, argc, argv);
	n_ops = b.quick ? 200000 : 2000000;
	char peer[4096], cmd[8192], out[4096];
	const char *go = bench_peer_path(&b, "chan", peer, sizeof(peer));
	struct bench_series mu = {.impl = "rotor"}, pmu = {.impl = "pthread-mutex"};
	struct bench_series lmu = {.impl = "rotor"}, plmu = {.impl = "pthread-mutex"};
	struct bench_series cl = {.impl = "rotor"}, pcl = {.impl = "mutex-condvar-queue"};
	struct bench_series cx = {.impl = "rotor"}, pcx = {.impl = "mutex-condvar-queue"};
	struct bench_series gcx = {.impl = "go-chan-gomaxprocs2"};
	struct bench_series cxc = {.impl = "rotor"}, pcxc = {.impl = "mutex-condvar-queue"};
	struct bench_series gcxc = {.impl = "go-chan-gomaxprocs2"};
	struct bench_series of = {.impl = "rotor"}, pof = {.impl = "mutex-condvar-pool"};
	bench_note(&b, "sync: %ld ops per rep, %d reps; channel across 2 workers, capacity %d",
	           n_ops, b.reps, CAP_XW);
	if (!go)
		bench_note(&b, "  go peer not found in %s (run.sh builds it): skipped", b.peer_dir);
	for (int rep = 0; rep < b.reps; rep++) {
		double v, cpu;
		if ((v = rotor_measure(1, mutex_task, NULL)) > 0)
			bench_add(&mu, v);
		bench_add(&pmu, pthread_mutex_measure());
		if ((v = rotor_measure(1, mutex_local_task, NULL)) > 0)
			bench_add(&lmu, v);
		bench_add(&plmu, pthread_mutex_measure());
		if ((v = rotor_measure(1, chan_local_task, NULL)) > 0)
			bench_add(&cl, v);
		bench_add(&pcl, bq_local_measure());
		if ((v = rotor_measure(2, chan_xw_task, &cpu)) > 0) {
			bench_add(&cx, v);
			bench_add(&cxc, cpu);
		}
		bench_add(&pcx, bq_xw_measure(&cpu));
		bench_add(&pcxc, cpu);
		if (go) {
			snprintf(cmd, sizeof(cmd), "GOMAXPROCS=2 '%s' -n %ld -cap %d", go, n_ops,
			         CAP_XW);
			if (bench_run_peer(&b, cmd, out, sizeof(out)) == 0) {
				if (bench_peer_value(out, "msgs_per_s", &v) == 0)
					bench_add(&gcx, v);
				if (bench_peer_value(out, "cpu_ns", &v) == 0)
					bench_add(&gcxc, v);
			}
		}
		if ((v = rotor_measure(1, offload_task, NULL)) > 0)
			bench_add(&of, v);
		bench_add(&pof, pool_measure());
	}
	bench_report(&b, "mutex_lock_unlock", "ns", &mu, &pmu);
	bench_report(&b, "mutex_local_lock_unlock", "ns", &lmu, &plmu);
	bench_report(&b, "chan_send_recv_local", "ns", &cl, &pcl);
	bench_report(&b, "chan_cross_worker", "msgs/s", &cx, &pcx);
	bench_report(&b, "chan_cross_worker", "msgs/s", &cx, &gcx);
	bench_report(&b, "chan_cross_worker_cpu", "ns/msg", &cxc, &pcxc);
	bench_report(&b, "chan_cross_worker_cpu", "ns/msg", &cxc, &gcxc);
	bench_report(&b, "offload_roundtrip", "ns", &of, &pof);
	return mu.n == b.reps && cx.n == b.reps && of.n == b.reps ? 0 : 1;
}
