/*
 * Runtime life cycle. Workers start behind a gate so that every ring exists before any
 * task can post to it. Stopping: every worker cancels its tasks and publishes, each turn,
 * whether it is quiet (no live task, nothing queued, nothing to post) with its sent and
 * received message counts. Worker 0 declares the runtime terminated after two consecutive
 * looks that find everyone quiet, no non-worker message unread, sent == received and the
 * same totals both times (Mattern's four-counter method: a message in flight would show as
 * a difference, and one sent and received between the looks as a change). It then waits
 * for non-worker posters to leave and tells every worker to exit.
 */
#include "runtime.h"
#include "log.h"
#include "msg.h"
#include "ring.h"
#include "stall.h"
#include "task.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void rotor__msg_probe(struct rotor_runtime *rt);
void rotor__msg_fini(struct rotor_runtime *rt);

/* The list a debugger starts from: linked once a runtime is allocated, unlinked before it is
 * freed. Nothing in the library reads it. */
struct rotor_runtime *rotor__runtimes;
static pthread_mutex_t runtimes_lock = PTHREAD_MUTEX_INITIALIZER;

static void registry_link(struct rotor_runtime *rt)
{
	pthread_mutex_lock(&runtimes_lock);
	rt->dbg_next = rotor__runtimes;
	rotor__runtimes = rt;
	pthread_mutex_unlock(&runtimes_lock);
}

static void registry_unlink(struct rotor_runtime *rt)
{
	pthread_mutex_lock(&runtimes_lock);
	for (struct rotor_runtime **p = &rotor__runtimes; *p; p = &(*p)->dbg_next)
		if (*p == rt) {
			*p = rt->dbg_next;
			break;
		}
	pthread_mutex_unlock(&runtimes_lock);
}

__attribute__((noreturn)) void rotor__panic(const char *func, const char *fmt, ...)
{
	char what[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	struct rotor__worker *w = rotor__worker_self();
	if (w)
		rotor__log(w->rt, ROTOR_LOG_ERROR, "rotor: w%d: %s: %s", w->id, func, what);
	else
		rotor__log(NULL, ROTOR_LOG_ERROR, "rotor: %s: %s", func, what);
	abort();
}

#define ROTOR__KNOWN_FLAGS                                                                         \
	(ROTOR_NO_PIN | ROTOR_NO_DEFER_TASKRUN | ROTOR_NO_SINGLE_ISSUER | ROTOR_NO_RINGLESS_MSG |  \
	 ROTOR_NO_GUARD_MADVISE | ROTOR_NO_COOP_TASKRUN | ROTOR_NO_SPIN | ROTOR_NO_STALL_CHECK |   \
	 ROTOR_NO_BUFRING | ROTOR_NO_RING_FD_REG | ROTOR_NO_SEGV_HANDLER)

unsigned rotor__env_flags(void)
{
	static const struct {
		const char *name;
		unsigned flag;
	} names[] = {{"pin", ROTOR_NO_PIN},
	             {"defer_taskrun", ROTOR_NO_DEFER_TASKRUN},
	             {"single_issuer", ROTOR_NO_SINGLE_ISSUER},
	             {"ringless_msg", ROTOR_NO_RINGLESS_MSG},
	             {"guard_madvise", ROTOR_NO_GUARD_MADVISE},
	             {"coop_taskrun", ROTOR_NO_COOP_TASKRUN},
	             {"spin", ROTOR_NO_SPIN},
	             {"stall_check", ROTOR_NO_STALL_CHECK},
	             {"bufring", ROTOR_NO_BUFRING},
	             {"ring_fd_reg", ROTOR_NO_RING_FD_REG},
	             {"segv_handler", ROTOR_NO_SEGV_HANDLER}};
	const char *env = getenv("ROTOR_DISABLE");
	unsigned flags = 0;
	while (env && *env) {
		size_t len = strcspn(env, ",");
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len && !strncmp(env, names[i].name, len))
				flags |= names[i].flag;
		env += len;
		if (*env == ',')
			env++;
	}
	return flags;
}

static void rt_free(struct rotor_runtime *rt)
{
	registry_unlink(rt);
	for (int i = 0; rt->w && i < rt->n; i++) {
		struct rotor__worker *w = rt->w[i];
		if (!w)
			continue;
		rotor__free(ROTOR__FAULT_WORKER_OUTBOX, w->out);
		rotor__free(ROTOR__FAULT_WORKER_CONSUMED, w->consumed);
		rotor__free(ROTOR__FAULT_WORKER_GIVEBACK, w->tcache.give_back);
		rotor__spawn_pool_fini(w);
		rotor__free(ROTOR__FAULT_WORKER_ALLOC, w);
	}
	rotor__task_pool_fini(rt);
	rotor__msg_fini(rt);
	rotor__free(ROTOR__FAULT_RT_WORKERS, rt->w);
	rotor__free(ROTOR__FAULT_RT_CPUS, rt->cpus);
	pthread_mutex_destroy(&rt->lock);
	pthread_cond_destroy(&rt->cond);
	pthread_mutex_destroy(&rt->pool_lock);
	pthread_mutex_destroy(&rt->doorbell_lock);
	rotor__free(ROTOR__FAULT_RT_ALLOC, rt);
}

static int rt_alloc(const struct rotor_config *cfg, struct rotor_runtime **out)
{
	struct rotor_config c;
	if (cfg)
		c = *cfg;
	else
		memset(&c, 0, sizeof(c));
	size_t ss;
	if (rotor__stack_size(c.stack_size, &ss) < 0)
		return -EINVAL;
	if (c.workers > 1024 || c.sq_entries > 32768 || c.cq_entries > 65536)
		return -EINVAL;
	if (c.sq_entries && c.cq_entries && c.cq_entries < c.sq_entries)
		return -EINVAL;
	if (c.flags & ~ROTOR__KNOWN_FLAGS)
		return -EINVAL;
	c.flags |= rotor__env_flags();
	cpu_set_t set;
	CPU_ZERO(&set);
	int ncpus = 0;
	int cpus[CPU_SETSIZE];
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpus[ncpus++] = i;
	if (!ncpus) {
		cpus[0] = 0;
		ncpus = 1;
	}
	if (!c.workers)
		c.workers = (unsigned)ncpus;
	if (!c.msg_inflight)
		c.msg_inflight = 64;
	/* ROTOR_SPIN_US in the environment overrides the configuration (0: never spin), so
	 * that a deployed program can be tuned without a rebuild. */
	const char *spin_env = getenv("ROTOR_SPIN_US");
	if (spin_env && *spin_env) {
		char *end;
		unsigned long v = strtoul(spin_env, &end, 10);
		if (!*end && v <= 1000000) {
			c.spin_us = (unsigned)v;
			if (!v)
				c.flags |= ROTOR_NO_SPIN;
		}
	}
	if (!c.spin_us)
		c.spin_us = 20;
	if (c.flags & ROTOR_NO_SPIN)
		c.spin_us = 0;
	if (c.spin_us > 1000000 || c.offload_threads > 1024 || c.log_level < 0 ||
	    c.log_level > ROTOR_LOG_DEBUG)
		return -EINVAL;
	if (!c.offload_threads)
		c.offload_threads = 2;
	if (!c.stall_ms)
		c.stall_ms = 100;
	if (!c.stop_report_ms)
		c.stop_report_ms = 5000;

	struct rotor_runtime *rt = rotor__calloc(ROTOR__FAULT_RT_ALLOC, 1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->cfg = c;
	rt->n = (int)c.workers;
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->cond, NULL);
	pthread_mutex_init(&rt->pool_lock, NULL);
	pthread_mutex_init(&rt->doorbell_lock, NULL);
	rotor__queue_init(&rt->foreign_free);
	atomic_init(&rt->state, ROTOR_RUNNING);
	rt->cpus = rotor__malloc(ROTOR__FAULT_RT_CPUS, sizeof(int) * (size_t)ncpus);
	rt->w = rotor__calloc(ROTOR__FAULT_RT_WORKERS, (size_t)rt->n, sizeof(*rt->w));
	if (!rt->cpus || !rt->w)
		goto nomem;
	memcpy(rt->cpus, cpus, sizeof(int) * (size_t)ncpus);
	rt->ncpus = ncpus;
	atomic_init(&rt->drain_deadline, ROTOR_FOREVER);
	for (int i = 0; i < rt->n; i++) {
		struct rotor__worker *w = rotor__aligned_alloc(ROTOR__FAULT_WORKER_ALLOC, 64,
		                                               (sizeof(*w) + 63) & ~(size_t)63);
		if (!w)
			goto nomem;
		memset(w, 0, sizeof(*w));
		rt->w[i] = w;
		w->rt = rt;
		w->id = i;
		w->inflight_max = c.msg_inflight;
		w->stop_item.kind = ROTOR__ITEM_STOP;
		w->stop_item.worker = (uint32_t)i;
		w->out = rotor__calloc(ROTOR__FAULT_WORKER_OUTBOX, (size_t)rt->n, sizeof(*w->out));
		w->consumed = rotor__aligned_alloc(ROTOR__FAULT_WORKER_CONSUMED, 64,
		                                   sizeof(*w->consumed) * (size_t)rt->n);
		w->tcache.give_back = rotor__calloc(ROTOR__FAULT_WORKER_GIVEBACK, (size_t)rt->n,
		                                    sizeof(*w->tcache.give_back));
		if (!w->out || !w->consumed || !w->tcache.give_back)
			goto nomem;
		memset(w->consumed, 0, sizeof(*w->consumed) * (size_t)rt->n);
		for (int j = 0; j < rt->n; j++) {
			rotor__queue_init(&w->out[j].q);
			rotor__queue_init(&w->tcache.give_back[j]);
		}
	}
	registry_link(rt);
	*out = rt;
	return 0;
nomem:
	rt_free(rt);
	return -ENOMEM;
}

static void pin(struct rotor__worker *w)
{
	struct rotor_runtime *rt = w->rt;
	/* One worker has nothing to spread; several are pinned one per CPU. */
	w->cpu = -1;
	if (rt->n < 2 || (rt->cfg.flags & ROTOR_NO_PIN))
		return;
	int cpu = rt->cpus[w->id % rt->ncpus];
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0)
		w->cpu = cpu;
}

/* Report this worker's start-up result and wait at the gate. Returns 1 to run. */
static int gate(struct rotor_runtime *rt, int r)
{
	pthread_mutex_lock(&rt->lock);
	rt->ready++;
	if (r < 0 && !rt->start_err)
		rt->start_err = r;
	pthread_cond_broadcast(&rt->cond);
	while (rt->gate == 0)
		pthread_cond_wait(&rt->cond, &rt->lock);
	int go = rt->gate > 0;
	pthread_mutex_unlock(&rt->lock);
	return go && r == 0;
}

static void *worker_main(void *arg)
{
	struct rotor__worker *w = arg;
	char name[16];
	snprintf(name, sizeof(name), "rotor/w%d", w->id);
	pthread_setname_np(pthread_self(), name);
	pin(w);
	int r = rotor__worker_init(w);
	if (!gate(w->rt, r)) {
		if (r == 0)
			rotor__worker_fini(w);
		return NULL;
	}
	rotor__worker_loop(w);
	rotor__worker_fini(w);
	return NULL;
}

/* Start workers first..n-1 as threads; when caller_w0, worker 0 is set up on this thread.
 * Returns once every ring exists, or with the first error (everything torn down). */
static int rt_start(struct rotor_runtime *rt)
{
	int first = rt->caller_w0 ? 1 : 0;
	int started = 0, r = 0;
	for (int i = first; i < rt->n; i++) {
		r = -rotor__pthread_create(ROTOR__FAULT_WORKER_THREAD, &rt->w[i]->thread,
		                           worker_main, rt->w[i]);
		if (r < 0)
			break;
		started++;
	}
	int r0 = 0;
	if (rt->caller_w0) {
		pin(rt->w[0]);
		r0 = rotor__worker_init(rt->w[0]);
	}
	pthread_mutex_lock(&rt->lock);
	while (rt->ready < started)
		pthread_cond_wait(&rt->cond, &rt->lock);
	if (!r)
		r = rt->start_err ? rt->start_err : r0;
	rt->gate = r < 0 ? -1 : 1;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	if (r < 0) {
		for (int i = first; i < first + started; i++)
			pthread_join(rt->w[i]->thread, NULL);
		if (rt->caller_w0 && r0 == 0)
			rotor__worker_fini(rt->w[0]);
		return r;
	}
	rotor__msg_probe(rt);
	rotor__stall_start(rt);
	return 0;
}

static void rt_join(struct rotor_runtime *rt)
{
	for (int i = rt->caller_w0 ? 1 : 0; i < rt->n; i++)
		pthread_join(rt->w[i]->thread, NULL);
	/* No task is left to use what the layers above keep here (the offload pool is idle). */
	for (int i = 0; i < ROTOR__EXT_COUNT; i++)
		rotor__ext_fini(&rt->ext[i]);
	rotor__stall_stop(rt);
	/* Non-worker posters may still be leaving post_foreign(). */
	while (atomic_load(&rt->foreign_active))
		sched_yield();
}

int rotor_runtime_create(const struct rotor_config *cfg, struct rotor_runtime **out)
{
	if (!out)
		return -EINVAL;
	struct rotor_runtime *rt;
	int r = rt_alloc(cfg, &rt);
	if (r < 0)
		return r;
	r = rt_start(rt);
	if (r < 0) {
		rt_free(rt);
		return r;
	}
	*out = rt;
	return 0;
}

void rotor__runtime_request_stop(struct rotor_runtime *rt)
{
	int exp = ROTOR_RUNNING;
	if (!atomic_compare_exchange_strong(&rt->state, &exp, ROTOR_STOPPING))
		return;
	for (int i = 0; i < rt->n; i++)
		rotor__post(rt, &rt->w[i]->stop_item, ROTOR__POST_WAIT);
}

int rotor_runtime_stop(struct rotor_runtime *rt)
{
	if (!rt)
		return -EINVAL;
	rotor__runtime_request_stop(rt);
	return 0;
}

int rotor_runtime_drain(struct rotor_runtime *rt, int64_t deadline)
{
	if (!rt)
		return -EINVAL;
	/* Before the stop request: the workers read it when they cancel their tasks. An
	 * earlier drain's deadline stands if it is sooner. */
	int64_t cur = atomic_load(&rt->drain_deadline);
	while (deadline < cur && !atomic_compare_exchange_weak(&rt->drain_deadline, &cur, deadline))
		;
	rotor__runtime_request_stop(rt);
	return 0;
}

int rotor_runtime_destroy(struct rotor_runtime *rt)
{
	if (!rt)
		return -EINVAL;
	struct rotor__worker *w = rotor__worker_self();
	if (w && w->rt == rt)
		return -EDEADLK;
	rotor__runtime_request_stop(rt);
	rt_join(rt);
	rt_free(rt);
	return 0;
}

int rotor__runtime_terminated(struct rotor_runtime *rt)
{
	if (atomic_load(&rt->state) == ROTOR_STOPPED)
		return atomic_load(&rt->foreign_active) == 0;
	uint64_t sent = 0, recv = 0;
	bool ok = true;
	for (int i = 0; i < rt->n && ok; i++) {
		struct rotor__worker *w = rt->w[i];
		ok = atomic_load(&w->pub_quiet) && atomic_load(&w->foreign_inflight) == 0;
		sent += atomic_load(&w->pub_sent);
		recv += atomic_load(&w->pub_recv);
	}
	ok = ok && sent == recv && atomic_load(&rt->foreign_active) == 0;
	if (!ok) {
		rt->wave_ok = false;
		return 0;
	}
	if (!rt->wave_ok || rt->wave_sent != sent || rt->wave_recv != recv) {
		rt->wave_ok = true;
		rt->wave_sent = sent;
		rt->wave_recv = recv;
		return 0;
	}
	atomic_store(&rt->state, ROTOR_STOPPED);
	return atomic_load(&rt->foreign_active) == 0;
}

int rotor__pick_worker(struct rotor_runtime *rt)
{
	unsigned start = atomic_fetch_add_explicit(&rt->rr, 1, memory_order_relaxed);
	/* A thread that is no worker avoids, on a tie, the worker pinned to its own CPU:
	 * that one would have to take the CPU from the caller to run the task. */
	int avoid = -1;
	if (!rotor__worker_self() && rt->n > 1 && !(rt->cfg.flags & ROTOR_NO_PIN)) {
		int cpu = sched_getcpu();
		for (int i = 0; i < rt->n && cpu >= 0; i++)
			if (rt->cpus[i % rt->ncpus] == cpu) {
				avoid = i;
				break;
			}
	}
	int best = -1;
	uint64_t best_load = UINT64_MAX;
	for (int k = 0; k < rt->n; k++) {
		int i = (int)((start + (unsigned)k) % (unsigned)rt->n);
		uint64_t l = atomic_load_explicit(&rt->w[i]->pub_load, memory_order_relaxed);
		if (l < best_load || (l == best_load && best == avoid)) {
			best = i;
			best_load = l;
		}
	}
	return best;
}

/* ---- rotor_run: the caller's thread is worker 0 ---- */

struct main_arg {
	rotor_fn fn;
	void *arg;
	void *result;
};

/* The runtime stops when this ends (ROTOR__TF_MAIN, task.c), whether fn ran or not. */
static void *main_task(void *p)
{
	struct main_arg *m = p;
	m->result = m->fn(m->arg);
	return NULL;
}

int rotor_run(const struct rotor_config *cfg, rotor_fn fn, void *arg, void **result)
{
	if (!fn)
		return -EINVAL;
	if (rotor__worker_self())
		return -EBUSY;
	struct rotor_runtime *rt;
	int r = rt_alloc(cfg, &rt);
	if (r < 0)
		return r;
	cpu_set_t saved;
	bool have_saved = sched_getaffinity(0, sizeof(saved), &saved) == 0;
	rt->caller_w0 = true;
	r = rt_start(rt);
	if (r < 0) {
		if (have_saved)
			sched_setaffinity(0, sizeof(saved), &saved);
		rt_free(rt);
		return r;
	}
	struct main_arg m = {fn, arg, NULL};
	struct rotor_task *handle = NULL;
	r = rotor__task_start(rt, 0, "main", main_task, &m, &handle, NULL, 0, NULL);
	uint32_t gen;
	struct rotor_task *mt = rotor__task_from_handle(handle, &gen);
	if (r < 0)
		rotor__runtime_request_stop(rt);
	else
		mt->flags |= ROTOR__TF_MAIN; /* queued on this thread, not yet run */
	rotor__worker_loop(rt->w[0]);
	if (mt) {
		/* fn never ran: no stack for it (-ENOMEM), or a stop came first (-ECANCELED). */
		if (!(mt->flags & ROTOR__TF_RAN))
			r = mt->err;
		rotor_detach(handle);
	}
	rotor__worker_fini(rt->w[0]);
	rt_join(rt);
	rt_free(rt);
	if (have_saved)
		sched_setaffinity(0, sizeof(saved), &saved);
	if (r == 0 && result)
		*result = m.result;
	return r;
}

int rotor_runtime_state(const struct rotor_runtime *rt)
{
	return rt ? atomic_load(&((struct rotor_runtime *)rt)->state) : -EINVAL;
}

int rotor_runtime_workers(const struct rotor_runtime *rt)
{
	return rt ? rt->n : -EINVAL;
}

struct rotor_runtime *rotor_runtime_current(void)
{
	struct rotor__worker *w = rotor__worker_self();
	return w ? w->rt : NULL;
}

int rotor_worker_id(void)
{
	struct rotor__worker *w = rotor__worker_self();
	return w ? w->id : -EPERM;
}

int rotor_worker_stats(const struct rotor_runtime *rt, int i, struct rotor_worker_stats *out)
{
	if (!rt || !out || i < 0 || i >= rt->n)
		return -EINVAL;
	const struct rotor_worker_stats *s = &rt->w[i]->stats;
	out->tasks_spawned = ROTOR__STAT_READ(s->tasks_spawned);
	out->tasks_finished = ROTOR__STAT_READ(s->tasks_finished);
	out->switches = ROTOR__STAT_READ(s->switches);
	out->sqes = ROTOR__STAT_READ(s->sqes);
	out->cqes = ROTOR__STAT_READ(s->cqes);
	out->enters = ROTOR__STAT_READ(s->enters);
	out->msgs_out = ROTOR__STAT_READ(s->msgs_out);
	out->msgs_in = ROTOR__STAT_READ(s->msgs_in);
	out->items_out = ROTOR__STAT_READ(s->items_out);
	out->items_in = ROTOR__STAT_READ(s->items_in);
	out->post_retries = ROTOR__STAT_READ(s->post_retries);
	out->cq_overflows = ROTOR__STAT_READ(s->cq_overflows);
	out->stacks_in_use = ROTOR__STAT_READ(s->stacks_in_use);
	out->stacks_total = ROTOR__STAT_READ(s->stacks_total);
	out->stalls = ROTOR__STAT_READ(s->stalls);
	out->sleeps = ROTOR__STAT_READ(s->sleeps);
	out->polls = ROTOR__STAT_READ(s->polls);
	out->polls_won = ROTOR__STAT_READ(s->polls_won);
	out->tasks_alive = out->tasks_spawned - out->tasks_finished;
	return 0;
}

int rotor_stats_format(const struct rotor_runtime *rt, char *buf, size_t len, int json)
{
	if (!rt || (!buf && len))
		return -EINVAL;
	static const char *const names[] = {
	    "tasks_spawned", "tasks_finished", "tasks_alive",  "switches", "sqes",
	    "cqes",          "enters",         "msgs_out",     "msgs_in",  "items_out",
	    "items_in",      "post_retries",   "cq_overflows", "stalls",   "stacks_in_use",
	    "stacks_total",  "sleeps",         "polls",        "polls_won"};
	size_t n = 0;
	char scratch[1]; /* where output past the end of buf (or without buf) is "written" */
#define PUT(...)                                                                                   \
	do {                                                                                       \
		bool room_ = buf && n < len;                                                       \
		int k_ = snprintf(room_ ? buf + n : scratch, room_ ? len - n : 0, __VA_ARGS__);    \
		if (k_ < 0)                                                                        \
			return -EINVAL;                                                            \
		n += (size_t)k_;                                                                   \
	} while (0)
	if (len)
		buf[0] = 0;
	if (json)
		PUT("{\"workers\":[");
	for (int i = 0; i < rt->n; i++) {
		struct rotor_worker_stats s;
		rotor_worker_stats(rt, i, &s);
		const uint64_t v[] = {
		    s.tasks_spawned, s.tasks_finished, s.tasks_alive,  s.switches, s.sqes,
		    s.cqes,          s.enters,         s.msgs_out,     s.msgs_in,  s.items_out,
		    s.items_in,      s.post_retries,   s.cq_overflows, s.stalls,   s.stacks_in_use,
		    s.stacks_total,  s.sleeps,         s.polls,        s.polls_won};
		if (json)
			PUT("%s{\"worker\":%d", i ? "," : "", i);
		else
			PUT("w%d", i);
		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
			PUT(json ? ",\"%s\":%llu" : " %s=%llu", names[k], (unsigned long long)v[k]);
		PUT(json ? "}" : "\n");
	}
	if (json)
		PUT("]}");
#undef PUT
	return n > INT32_MAX ? -EINVAL : (int)n;
}

/* ---- the core as the layers above see it (api/core.h) ---- */

const struct rotor_config *rotor__runtime_config(const struct rotor_runtime *rt)
{
	return &rt->cfg;
}

void rotor__runtime_cpuset(const struct rotor_runtime *rt, cpu_set_t *set)
{
	CPU_ZERO(set);
	for (int i = 0; i < rt->ncpus; i++)
		CPU_SET(rt->cpus[i], set);
}

int rotor__runtime_ext(struct rotor_runtime *rt, enum rotor__ext_id id,
                       int (*make)(struct rotor_runtime *rt, struct rotor__ext **e),
                       struct rotor__ext **out)
{
	pthread_mutex_lock(&rt->lock);
	int r = rt->ext[id] ? 0 : make(rt, &rt->ext[id]);
	*out = rt->ext[id];
	pthread_mutex_unlock(&rt->lock);
	return r;
}
