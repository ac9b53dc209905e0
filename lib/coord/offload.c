/*
 * The offload pool (run_in_executor): plain threads that run blocking calls for tasks. A
 * job record lives on the waiting task's stack; the task is suspended without a cancel
 * hook, so the record stays valid until the pool thread has written the result and woken
 * the task through its worker's ring (the non-worker post path: inbox + doorbell). Room in
 * the queue is a coroutine semaphore, so a task that finds it full waits, not its worker.
 */
#include "core.h"

#include <pthread.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

struct job {
	struct job *next;
	rotor_fn fn;
	void *arg;
	void *result;
	struct rotor_task *task;
};

struct rotor__offload {
	struct rotor__ext ext; /* the runtime's ROTOR__EXT_OFFLOAD: pool_fini at its destroy */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *_Atomic head; /* written under lock; polled without it */
	struct job **tail;
	unsigned sleepers; /* pool threads in cond_wait (under lock) */
	unsigned spin_us;
	bool stop;
	unsigned nthreads;
	pthread_t *threads;
	struct rotor_sem room;
	cpu_set_t cpus; /* the runtime's, not the CPU of the worker that started the pool */
};

/* Poll for a job before sleeping, as workers do: a futex wake-up of a sleeping pool thread
 * costs microseconds on a VM, more than most offloaded calls. */
static void spin_for_job(struct rotor__offload *p)
{
	int64_t until = rotor_now() + (int64_t)p->spin_us * 1000;
	while (!atomic_load_explicit(&p->head, memory_order_relaxed) && rotor_now() < until) {
		for (int i = 0; i < 32; i++)
			rotor__cpu_relax();
		sched_yield();
	}
}

static void *pool_main(void *arg)
{
	struct rotor__offload *p = arg;
	/* Created by a worker, the thread inherited its single-CPU affinity: blocking work would
	 * compete with that worker only. Best effort: a refusal leaves it where it is. */
	pthread_setaffinity_np(pthread_self(), sizeof(p->cpus), &p->cpus);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (!p->head && !p->stop && p->spin_us) {
			pthread_mutex_unlock(&p->lock);
			spin_for_job(p);
			pthread_mutex_lock(&p->lock);
		}
		while (!p->head && !p->stop) {
			p->sleepers++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->sleepers--;
		}
		if (!p->head)
			break;
		struct job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = (struct job **)&p->head;
		pthread_mutex_unlock(&p->lock);
		rotor_sem_release(&p->room);
		j->result = j->fn(j->arg);
		/* Last touch of j: after the wake the task may return and its stack move on. */
		rotor__task_wake(j->task, 0);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void pool_free(struct rotor__offload *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	rotor__free(ROTOR__FAULT_OFFLOAD_THREADS, p->threads);
	rotor__free(ROTOR__FAULT_OFFLOAD_POOL, p);
}

static void pool_fini(struct rotor__ext *e)
{
	/* At the runtime's destroy: no task is left to wait for a job, so the pool is idle. */
	pool_free(rotor__container_of(e, struct rotor__offload, ext));
}

static int pool_create(struct rotor_runtime *rt, struct rotor__ext **out)
{
	const struct rotor_config *cfg = rotor__runtime_config(rt);
	struct rotor__offload *p = rotor__calloc(ROTOR__FAULT_OFFLOAD_POOL, 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	unsigned n = cfg->offload_threads;
	p->threads = rotor__calloc(ROTOR__FAULT_OFFLOAD_THREADS, n, sizeof(pthread_t));
	if (!p->threads) {
		rotor__free(ROTOR__FAULT_OFFLOAD_POOL, p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->tail = (struct job **)&p->head;
	p->ext.fini = pool_fini;
	rotor__runtime_cpuset(rt, &p->cpus);
	p->spin_us = cfg->spin_us;
	rotor_sem_init(&p->room, 64 * n);
	for (unsigned i = 0; i < n; i++) {
		if (rotor__pthread_create(ROTOR__FAULT_OFFLOAD_THREAD, &p->threads[i], pool_main,
		                          p))
			break;
		char name[16];
		snprintf(name, sizeof(name), "rotor/off%u", i % 1000);
		pthread_setname_np(p->threads[i], name);
		p->nthreads++;
	}
	if (!p->nthreads) {
		pool_free(p);
		return -EAGAIN;
	}
	*out = &p->ext;
	return 0;
}

int rotor_offload(rotor_fn fn, void *arg, void **result)
{
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *t = rotor__task_self();
	if (!t)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	if (rotor__task_cancelled(t))
		return -ECANCELED;
	struct rotor_runtime *rt = rotor__worker_runtime(w);
	if (rotor_runtime_state(rt) != ROTOR_RUNNING)
		return -ESHUTDOWN;
	struct rotor__ext *e;
	int r = rotor__runtime_ext(rt, ROTOR__EXT_OFFLOAD, pool_create, &e);
	if (r < 0)
		return r;
	struct rotor__offload *p = rotor__container_of(e, struct rotor__offload, ext);
	r = rotor_sem_acquire(&p->room);
	if (r < 0)
		return r;
	struct job j = {.fn = fn, .arg = arg, .task = t};
	pthread_mutex_lock(&p->lock);
	if (p->tail == (struct job **)&p->head)
		atomic_store_explicit(&p->head, &j, memory_order_relaxed);
	else
		*p->tail = &j;
	p->tail = &j.next;
	/* A polling pool thread sees the job without a wake-up. */
	if (p->sleepers)
		pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* No cancel hook: the job record must outlive the blocking call. */
	rotor__task_wait(w, NULL, NULL, NULL, ROTOR_FOREVER);
	if (result)
		*result = j.result;
	return rotor__task_cancelled(t) ? -ECANCELED : 0;
}
