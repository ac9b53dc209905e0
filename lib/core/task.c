/*
 * Task life cycle: allocation from type-stable caches, spawn, the slot entry loop, join,
 * detach, cancel, yield and sleep. Scheduling state (state, flags, the live list, the
 * timer) is changed only by the owning worker; see task.h for what others may touch.
 */
#include "task.h"
#include "msg.h"
#include "probes.h"
#include "runtime.h"
#include "stall.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- type-stable allocation ---- */

#define TASKS_PER_CHUNK 256
/* Freed structs wait in a FIFO this long before reuse, so a stale handle keeps reading
 * "released" for a good while (misuse is reported, not silently aliased). */
#define QUARANTINE 64

struct task_chunk {
	struct task_chunk *next;
	struct rotor_task tasks[TASKS_PER_CHUNK];
};

static _Atomic uint64_t foreign_ids;

/* Under rt->pool_lock: a new chunk; all but the first struct go to q. */
static struct rotor_task *chunk_alloc(struct rotor_runtime *rt, struct rotor__queue *q,
                                      uint32_t home)
{
	struct task_chunk *c = rotor__calloc(ROTOR__FAULT_TASK_CHUNK, 1, sizeof(*c));
	if (!c)
		return NULL;
	c->next = rt->task_chunks;
	rt->task_chunks = c;
	for (int i = 0; i < TASKS_PER_CHUNK; i++) {
		c->tasks[i].home = home;
		c->tasks[i].state = ROTOR__T_FREE;
		atomic_init(&c->tasks[i].handle, ROTOR__H_RELEASED);
		if (i)
			rotor__queue_push(q, &c->tasks[i].item);
	}
	return &c->tasks[0];
}

/*
 * Structs given back by other threads arrive as a chain on an atomic stack. Walking a chain
 * of structs last touched on another core is a dependent cache miss per struct (40% of
 * worker 0 in bench_post when it moved whole chains at once): the chain is taken as it is
 * and its structs join the FIFO two per allocation, each miss then overlapping the work
 * around it. The FIFO keeps its quarantine.
 */
static void refill(struct rotor__queue *q, struct rotor__item **spare,
                   _Atomic(struct rotor__item *) *remote)
{
	if (!*spare && atomic_load_explicit(remote, memory_order_relaxed))
		*spare = atomic_exchange_explicit(remote, NULL, memory_order_acquire);
	for (int k = 0; k < 2 && *spare; k++) {
		struct rotor__item *it = *spare;
		*spare = it->next;
		rotor__queue_push(q, it);
	}
}

static struct rotor_task *cache_take(struct rotor_runtime *rt, struct rotor__worker *w)
{
	struct rotor__task_cache *c = &w->tcache;
	if (c->free.len <= QUARANTINE)
		refill(&c->free, &c->spare, &c->remote);
	if (c->free.len > QUARANTINE)
		return rotor__container_of(rotor__queue_pop(&c->free), struct rotor_task, item);
	pthread_mutex_lock(&rt->pool_lock);
	struct rotor_task *t = chunk_alloc(rt, &c->free, (uint32_t)w->id);
	pthread_mutex_unlock(&rt->pool_lock);
	return t;
}

static struct rotor_task *foreign_take(struct rotor_runtime *rt)
{
	struct rotor_task *t;
	pthread_mutex_lock(&rt->pool_lock);
	if (rt->foreign_free.len <= QUARANTINE)
		refill(&rt->foreign_free, &rt->foreign_spare, &rt->foreign_remote);
	if (rt->foreign_free.len > QUARANTINE)
		t = rotor__container_of(rotor__queue_pop(&rt->foreign_free), struct rotor_task,
		                        item);
	else
		t = chunk_alloc(rt, &rt->foreign_free, UINT32_MAX);
	pthread_mutex_unlock(&rt->pool_lock);
	return t;
}

static void put_num(char *p, uint64_t v)
{
	char tmp[24];
	int k = 0;
	do
		tmp[k++] = (char)('0' + v % 10);
	while ((v /= 10) && k < 20);
	while (k)
		*p++ = tmp[--k];
	*p = 0;
}

/* A struct from a cache made ready for a new task owned by `owner`. */
static inline struct rotor_task *task_init(struct rotor_task *t, struct rotor_runtime *rt,
                                           int owner, uint64_t id)
{
	t->rt = rt;
	t->item.kind = ROTOR__ITEM_TASK;
	t->item.worker = (uint32_t)owner;
	t->slot = NULL;
	t->result = NULL;
	t->state = ROTOR__T_NEW;
	t->flags = 0;
	t->wait_res = 0;
	t->err = 0;
	t->cancel_hook = NULL;
	t->wait_obj = NULL;
	t->ext = NULL;
	t->tmr.idx = 0; /* shield_tmr, shield_depth and cancel_pending: reset at the end of a run */
	t->wait_deadline = ROTOR_FOREVER;
	t->id = id;
	t->end = NULL;
	/* A new generation for this use of the struct (1..65535), unless its address leaves no
	 * room for one in a handle. */
	uint32_t gen = 0;
	if (!((uintptr_t)t >> ROTOR__HANDLE_GEN_SHIFT)) {
		gen = atomic_load_explicit(&t->gen, memory_order_relaxed) + 1;
		if (gen > 0xffff)
			gen = 1;
	}
	atomic_store_explicit(&t->gen, gen, memory_order_relaxed);
	rotor__event_init(&t->done);
	atomic_store_explicit(&t->cancel_req, 0, memory_order_relaxed);
	atomic_store_explicit(&t->name_state, 0, memory_order_relaxed);
	return t;
}

/* Worker w: a struct from its cache for a task owned by `owner` (w itself, or the worker a
 * spawn posts it to). NULL on ENOMEM. */
static inline struct rotor_task *task_alloc_here(struct rotor__worker *w, int owner)
{
	struct rotor_task *t = cache_take(w->rt, w);
	if (!t)
		return NULL;
	return task_init(t, w->rt, owner, ++w->task_seq * (uint64_t)w->rt->n + (uint64_t)w->id);
}

struct rotor_task *rotor__task_alloc(struct rotor_runtime *rt, int owner)
{
	struct rotor__worker *w = rotor__worker_self();
	if (w && w->rt == rt)
		return task_alloc_here(w, owner);
	struct rotor_task *t = foreign_take(rt);
	if (!t)
		return NULL;
	uint64_t id = atomic_fetch_add(&foreign_ids, 1) + 1;
	return task_init(t, rt, owner,
	                 id * (uint64_t)rt->n + (uint64_t)owner + ((uint64_t)1 << 40));
}

void rotor__task_release(struct rotor_task *t)
{
	/* Holding the only reference, nobody can take another: skip the locked op. */
	if (atomic_load_explicit(&t->refs, memory_order_acquire) != 1 &&
	    atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	struct rotor_runtime *rt = t->rt;
	t->state = ROTOR__T_FREE;
	atomic_store_explicit(&t->handle, ROTOR__H(atomic_load(&t->gen), ROTOR__H_RELEASED),
	                      memory_order_release);
	struct rotor__worker *w = rotor__worker_self();
	if (w && w->rt == rt && (uint32_t)w->id == t->home) {
		rotor__queue_push(&w->tcache.free, &t->item);
	} else if (w && w->rt == rt) {
		struct rotor__queue *q = t->home == UINT32_MAX ? &w->tcache.give_back_foreign
		                                               : &w->tcache.give_back[t->home];
		if (rotor__queue_empty(q))
			w->tcache.give_back_pending++;
		rotor__queue_push(q, &t->item);
	} else {
		rotor__item_stack_push(t->home == UINT32_MAX ? &rt->foreign_remote
		                                             : &rt->w[t->home]->tcache.remote,
		                       &t->item, &t->item.next);
	}
}

static void give_back_one(struct rotor__worker *w, struct rotor__queue *q,
                          _Atomic(struct rotor__item *) *remote)
{
	if (rotor__queue_empty(q))
		return;
	struct rotor__item **tail = q->tail;
	rotor__item_stack_push(remote, rotor__queue_take(q), tail);
	w->tcache.give_back_pending--;
}

void rotor__task_give_back(struct rotor__worker *w)
{
	struct rotor_runtime *rt = w->rt;
	give_back_one(w, &w->tcache.give_back_foreign, &rt->foreign_remote);
	for (int i = 0; i < rt->n && w->tcache.give_back_pending; i++)
		give_back_one(w, &w->tcache.give_back[i], &rt->w[i]->tcache.remote);
}

void rotor__task_pool_fini(struct rotor_runtime *rt)
{
	struct task_chunk *c = rt->task_chunks;
	while (c) {
		struct task_chunk *next = c->next;
		rotor__free(ROTOR__FAULT_TASK_CHUNK, c);
		c = next;
	}
	rt->task_chunks = NULL;
}

/* ---- scheduling ---- */

void rotor__task_ready(struct rotor__worker *w, struct rotor_task *t, int res)
{
	t->wait_res = res;
	t->state = ROTOR__T_READY;
	if (t->slot)
		__builtin_prefetch(t->slot);
	rotor__runq_push(w, &t->item);
}

static void lazy_fire(struct rotor__timer *tm);

void rotor__task_end_wait(struct rotor__worker *w, struct rotor_task *t, int res)
{
	t->cancel_hook = NULL;
	if (t->tmr.fire == lazy_fire)
		t->wait_deadline = ROTOR_FOREVER; /* parked */
	else
		rotor__timer_disarm(&w->timers, &t->tmr);
	rotor__task_ready(w, t, res);
}

/*
 * Deadlines of waits are lazy. A service sets a deadline on nearly every wait and nearly
 * every wait ends before it: unlinking and relinking the timer each time touched two other
 * tasks' timers (their cache lines) per wait, the first librotor symbol in a profile of the
 * HTTP example. So a wait that ends leaves its timer armed ("parked", wait_deadline
 * FOREVER), and the next wait with a deadline no earlier only records it. When a parked
 * timer comes due, lazy_fire drops it, or moves it on to the current wait's later deadline,
 * or times that wait out. Anything else that arms t->tmr disarms it first
 * (timer_take), and a task's timer is disarmed when its function returns.
 */
static void lazy_fire(struct rotor__timer *tm)
{
	struct rotor_task *t = rotor__container_of(tm, struct rotor_task, tmr);
	if (t->wait_deadline == ROTOR_FOREVER)
		return; /* parked: no wait to time out */
	if (t->state != ROTOR__T_WAITING)
		return; /* its wait ended in this same turn, not resumed yet: the result stands */
	if (t->wait_deadline > tm->deadline) {
		/* Due later: timers_run fires it again if that is already past. */
		rotor__timer_arm(&rotor__worker_self()->timers, tm, t->wait_deadline);
		return;
	}
	t->wait_timeout(t);
}

/* Arm t->tmr to call fire at deadline, after disarming whatever deadline a past wait left
 * parked there. */
static void timer_take(struct rotor__worker *w, struct rotor_task *t,
                       void (*fire)(struct rotor__timer *), int64_t deadline)
{
	rotor__timer_disarm(&w->timers, &t->tmr);
	t->tmr.fire = fire;
	rotor__timer_arm(&w->timers, &t->tmr, deadline);
}

int rotor__task_wait(struct rotor__worker *w, void *obj, void (*cancel)(struct rotor_task *t),
                     void (*timeout)(struct rotor_task *t), int64_t deadline)
{
	struct rotor_task *t = w->current;
	t->wait_obj = obj;
	t->cancel_hook = cancel;
	if (deadline != ROTOR_FOREVER) {
		/* A parked timer due no later than this deadline serves as it is. */
		if (!rotor__timer_armed(&t->tmr) || t->tmr.fire != lazy_fire ||
		    t->tmr.deadline > deadline)
			timer_take(w, t, lazy_fire, deadline);
		t->wait_deadline = deadline;
		t->wait_timeout = timeout;
	}
	int r = rotor__suspend(w);
	t->cancel_hook = NULL;
	t->wait_obj = NULL;
	t->wait_deadline = ROTOR_FOREVER;
	return r;
}

void rotor__task_wake(struct rotor_task *t, int res)
{
	struct rotor__worker *w = rotor__worker_self();
	if (w && w->rt == t->rt && (uint32_t)w->id == t->item.worker) {
		rotor__task_ready(w, t, res);
		return;
	}
	/* The owner sets READY when the item arrives; we may only leave the result. */
	t->wait_res = res;
	rotor__post(t->rt, &t->item, ROTOR__POST_WAIT);
}

/* A new task joins w's live list (a stop cancels what is on it). */
static void live_link(struct rotor__worker *w, struct rotor_task *t)
{
	t->live_prev = NULL;
	t->live_next = w->live;
	if (w->live)
		w->live->live_prev = t;
	w->live = t;
	w->nlive++;
	ROTOR__STAT_INC(w->stats.tasks_spawned);
	if (w->stopping || atomic_load_explicit(&t->cancel_req, memory_order_relaxed))
		t->flags |= ROTOR__TF_CANCELLED;
}

void rotor__task_arrive(struct rotor__worker *w, struct rotor_task *t)
{
	live_link(w, t);
	rotor__runq_push(w, &t->item);
}

static void retire(struct rotor__worker *w, struct rotor_task *t)
{
	/* Its struct will be reused: a timer still linked would corrupt the worker's timers. */
	if (ROTOR__UNLIKELY(rotor__timer_armed(&t->tmr)))
		ROTOR__PANIC("w%d: task %s ended with its timer armed", w->id, t->name);
	if (t->live_prev)
		t->live_prev->live_next = t->live_next;
	else
		w->live = t->live_next;
	if (t->live_next)
		t->live_next->live_prev = t->live_prev;
	w->nlive--;
	ROTOR__STAT_INC(w->stats.tasks_finished);
	rotor__task_release(t);
}

/* Publish the end of a task: result for the future, then wake the joiner. The main task of
 * rotor_run stops the runtime when it ends, even if it never ran. */
static void complete(struct rotor_task *t, int err)
{
	rotor__ext_fini(&t->ext);
	/* A failure the body declared (rotor_task_fail) is what the task ended with, even if it
	 * was also cancelled: it says more. */
	if (!t->err)
		t->err = err;
	if (t->flags & ROTOR__TF_MAIN)
		rotor__runtime_request_stop(t->rt);
	if (t->end)
		t->end->ended(t->end, t, t->result, t->err);
	/* Detached at spawn: no handle, so nobody can ever wait on done. */
	if (ROTOR__H_STATE(atomic_load_explicit(&t->handle, memory_order_relaxed)) != ROTOR__H_NONE)
		rotor__event_set_owner(&t->done);
}

void rotor__task_run(struct rotor__worker *w, struct rotor_task *t)
{
	if (t->state == ROTOR__T_NEW) {
		if (t->flags & ROTOR__TF_CANCELLED) {
			if (t->discard)
				t->discard(t->arg);
			t->state = ROTOR__T_DONE;
			complete(t, -ECANCELED);
			retire(w, t);
			return;
		}
		t->slot = rotor__stack_get(&w->stacks);
		if (!t->slot) {
			/* fn never runs: what arg owns is released as for a cancelled task. */
			if (t->discard)
				t->discard(t->arg);
			t->state = ROTOR__T_DONE;
			complete(t, -ENOMEM);
			retire(w, t);
			return;
		}
		ROTOR__STAT_INC(w->stats.stacks_in_use);
		__atomic_store_n(&w->stats.stacks_total, w->stacks.total, __ATOMIC_RELAXED);
	} else if (ROTOR__UNLIKELY(t->state != ROTOR__T_READY)) {
		ROTOR__PANIC("w%d: task %s resumed in state %u", w->id, t->name, t->state);
	}
	t->state = ROTOR__T_RUNNING;
	w->current = t;
	ROTOR__STAT_INC(w->stats.switches);
	rotor__stall_run_begin(w, t, t->slot->lo, (char *)t->slot + sizeof(struct rotor__slot));
	rotor__switch_to_task(w, t->slot);
	rotor__stall_run_end(w);
	w->current = NULL;
	if (t->state == ROTOR__T_DONE) {
		rotor__stack_put(&w->stacks, t->slot);
		ROTOR__STAT_ADD(w->stats.stacks_in_use, (uint64_t)-1);
		t->slot = NULL;
		retire(w, t);
	}
}

void rotor__task_slot_entry(void)
{
	rotor__switch_first_entry();
	struct rotor__worker *w = rotor__worker_self();
	for (;;) {
		struct rotor_task *t = w->current;
		t->flags |= ROTOR__TF_RAN;
		t->result = t->fn(t->arg);
		rotor__timer_disarm(&w->timers, &t->tmr); /* a parked deadline */
		if (ROTOR__UNLIKELY(t->shield_depth)) {   /* a shield left open */
			if (rotor__timer_armed(&t->shield_tmr))
				rotor__timer_disarm(&w->timers, &t->shield_tmr);
			t->shield_depth = 0;
			t->cancel_pending = false;
		}
		ROTOR__PROBE(task_exit, w->id, t, t->id);
		complete(t, (t->flags & ROTOR__TF_CANCELLED) ? -ECANCELED : 0);
		t->state = ROTOR__T_DONE;
		/* The scheduler recycles this slot; when it is handed out again, execution
		 * continues here with the next task in w->current. */
		rotor__switch_to_sched(w, t->slot);
	}
}

/* A new task's references and handle, and the task_spawn probe: one function, so that the
 * probe has one site (perf probe refuses an SDT note with two). */
static __attribute__((noinline)) void spawned(int worker, struct rotor_task *t, const char *name,
                                              uint32_t refs, uint32_t handle)
{
	ROTOR__PROBE(task_spawn, worker, t, t->id, t->fn, name);
	(void)worker;
	(void)name;
	atomic_store_explicit(&t->refs, refs, memory_order_relaxed);
	atomic_store_explicit(&t->handle,
	                      ROTOR__H(atomic_load_explicit(&t->gen, memory_order_relaxed), handle),
	                      memory_order_relaxed);
}

int rotor__task_start(struct rotor_runtime *rt, int worker, const char *name, rotor_fn fn,
                      void *arg, struct rotor_task **out, struct rotor__task_end *end,
                      unsigned flags, void (*discard)(void *))
{
	struct rotor__worker *w = rotor__worker_self();
	bool local_rt = w && w->rt == rt;
	if (worker == ROTOR_WORKER_SELF) {
		if (!local_rt)
			return w ? -EINVAL : -EPERM;
		worker = w->id;
	} else if (worker == ROTOR_WORKER_ANY) {
		worker = rotor__pick_worker(rt);
	} else if (worker < 0 || worker >= rt->n) {
		return -EINVAL;
	}
	if (local_rt && atomic_load_explicit(&rt->state, memory_order_relaxed) != ROTOR_RUNNING)
		return -ESHUTDOWN;
	/* Detached, unnamed, for another worker: a request, and the target makes the task. */
	if (local_rt && worker != w->id && !out && !end && !name && !flags &&
	    rotor__spawn_post(w, worker, (union rotor__req_fn){.task = fn}, arg, discard) == 0)
		return 0;
	struct rotor_task *t = rotor__task_alloc(rt, worker);
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->discard = discard;
	t->arg = arg;
	if (name) {
		strncpy(t->name, name, sizeof(t->name) - 1);
		t->name[sizeof(t->name) - 1] = 0;
		atomic_store_explicit(&t->name_state, 2, memory_order_release);
	}
	t->end = end;
	spawned(worker, t, name, 1u + (out != NULL) + (end != NULL),
	        out ? ROTOR__H_HELD : ROTOR__H_NONE);
	if (end)
		end->bind(end, t);
	if (local_rt && worker == w->id) {
		rotor__task_arrive(w, t);
	} else {
		int r = rotor__post(rt, &t->item, flags | ROTOR__POST_NEW);
		if (r < 0) {
			if (end)
				end->unbind(end);
			atomic_store(&t->refs, 1);
			rotor__task_release(t);
			return r;
		}
	}
	if (out)
		*out = rotor__task_handle(t);
	return 0;
}

int rotor__task_run_new(struct rotor__worker *w, rotor_fn fn, void *arg, void (*discard)(void *))
{
	struct rotor_task *t = task_alloc_here(w, w->id);
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->discard = discard;
	t->arg = arg;
	spawned(w->id, t, NULL, 1, ROTOR__H_NONE);
	live_link(w, t);
	rotor__task_run(w, t);
	return 0;
}

int rotor__task_request(struct rotor_runtime *rt, int worker, struct rotor__start_req *r,
                        unsigned flags)
{
	if (worker == ROTOR_WORKER_ANY)
		worker = rotor__pick_worker(rt);
	else if (worker < 0 || worker >= rt->n)
		return -EINVAL;
	r->item.kind = ROTOR__ITEM_START;
	r->item.worker = (uint32_t)worker;
	return rotor__post(rt, &r->item, flags | ROTOR__POST_NEW);
}

void rotor__task_start_req(struct rotor__worker *w, struct rotor__start_req *r)
{
	struct rotor__task_end *e = r->end;
	struct rotor_task *t = task_alloc_here(w, w->id);
	if (!t) {
		e->ended(e, NULL, NULL, -ENOMEM);
		return;
	}
	t->fn = r->fn;
	t->discard = NULL;
	t->arg = r->arg;
	t->end = e;
	/* Its own reference and the end's hold; the request's hold on the end is now t's. */
	spawned(w->id, t, NULL, 2, ROTOR__H_NONE);
	if (!e->adopt(e, t))
		t->flags |= ROTOR__TF_CANCELLED; /* never runs: ended(-ECANCELED) */
	rotor__task_arrive(w, t);
}

/* The cancel takes effect: every later wait sees it, and a cancellable wait ends now. */
static void cancel_now(struct rotor_task *t)
{
	t->flags |= ROTOR__TF_CANCELLED;
	if (t->state == ROTOR__T_WAITING && t->cancel_hook) {
		void (*hook)(struct rotor_task *) = t->cancel_hook;
		t->cancel_hook = NULL;
		hook(t);
	}
}

static void keep_cancel(struct rotor__worker *w, struct rotor_task *t)
    __attribute__((noinline, cold));

void rotor__task_cancel_local(struct rotor__worker *w, struct rotor_task *t)
{
	if (t->state == ROTOR__T_DONE || t->state == ROTOR__T_FREE)
		return;
	if (t->shield_depth && !(t->flags & ROTOR__TF_SHIELD_OVER)) {
		keep_cancel(w, t); /* applied when the shield ends or runs out */
		return;
	}
	cancel_now(t);
}

void rotor__tasks_cancel_all(struct rotor__worker *w)
{
	for (struct rotor_task *t = w->live; t; t = t->live_next)
		rotor__task_cancel_local(w, t);
}

/* ---- public calls ---- */

int rotor_spawn(rotor_fn fn, void *arg, struct rotor_task **out)
{
	return rotor_spawn_attr(NULL, fn, arg, out);
}

int rotor_spawn_attr(const struct rotor_task_attr *attr, rotor_fn fn, void *arg,
                     struct rotor_task **out)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w)
		return -EPERM;
	if (!fn || (attr && attr->reserved))
		return -EINVAL;
	int on = attr ? attr->on : ROTOR_ON_SELF;
	int worker = on == ROTOR_ON_SELF  ? ROTOR_WORKER_SELF
	             : on == ROTOR_ON_ANY ? ROTOR_WORKER_ANY
	             : on > 0             ? on - 1
	                                  : -3; /* refused below as out of range */
	return rotor__task_start(w->rt, worker, attr ? attr->name : NULL, fn, arg, out, NULL, 0,
	                         attr ? attr->discard : NULL);
}

int rotor_join(struct rotor_task *t, void **result)
{
	return rotor_join_until(t, ROTOR_FOREVER, result);
}

int rotor_join_until(struct rotor_task *handle, int64_t deadline, void **result)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w || !w->current)
		return -EPERM;
	uint32_t gen;
	struct rotor_task *t = rotor__task_from_handle(handle, &gen);
	if (!t)
		return -EINVAL;
	if (t == w->current)
		return -EDEADLK;
	uint32_t h = ROTOR__H(gen, ROTOR__H_HELD);
	if (t->rt != w->rt ||
	    !atomic_compare_exchange_strong(&t->handle, &h, ROTOR__H(gen, ROTOR__H_JOINING)))
		return -EINVAL;
	/* Same worker and already ended: t->state is ours to read, nothing to wait for. */
	bool local = t->item.worker == (uint32_t)w->id;
	int r = local && t->state == ROTOR__T_DONE
	            ? 0
	            : rotor__event_wait_task(&t->done, deadline, local);
	if (r < 0) {
		atomic_store(&t->handle, ROTOR__H(gen, ROTOR__H_HELD));
		return r;
	}
	if (result)
		*result = t->result;
	int err = t->err;
	atomic_store_explicit(&t->handle, ROTOR__H(gen, ROTOR__H_RELEASED), memory_order_release);
	rotor__task_release(t);
	return err;
}

int rotor_detach(struct rotor_task *handle)
{
	uint32_t gen;
	struct rotor_task *t = rotor__task_from_handle(handle, &gen);
	if (!t)
		return -EINVAL;
	uint32_t h = ROTOR__H(gen, ROTOR__H_HELD);
	if (!atomic_compare_exchange_strong(&t->handle, &h, ROTOR__H(gen, ROTOR__H_RELEASED)))
		return -EINVAL;
	rotor__task_release(t);
	return 0;
}

/* Cancel t from any thread. The caller must hold a reference that keeps t alive. */
int rotor__task_cancel_any(struct rotor_task *t)
{
	struct rotor__worker *w = rotor__worker_self();
	bool first = !atomic_exchange(&t->cancel_req, 1);
	if (w && w->rt == t->rt && (uint32_t)w->id == t->item.worker) {
		rotor__task_cancel_local(w, t);
		return 0;
	}
	/* The request is the task's own cancel_item, so cancelling needs no memory and cannot
	 * fail; one request is enough, a later cancel finds it made. */
	if (!first)
		return 0;
	t->cancel_item.kind = ROTOR__ITEM_CANCEL;
	t->cancel_item.worker = t->item.worker;
	atomic_fetch_add(&t->refs, 1);
	int r = rotor__post(t->rt, &t->cancel_item, ROTOR__POST_WAIT);
	if (r < 0) {
		/* Runtime gone quiet: the task has ended, nothing to cancel. */
		rotor__task_release(t);
		return r == -ESHUTDOWN ? 0 : r;
	}
	return 0;
}

int rotor_cancel(struct rotor_task *handle)
{
	uint32_t gen;
	struct rotor_task *t = rotor__task_from_handle(handle, &gen);
	if (!t)
		return -EINVAL;
	struct rotor__worker *w = rotor__worker_self();
	uint32_t h = atomic_load(&t->handle);
	bool self_task = w && w->current == t && gen == atomic_load(&t->gen);
	if (!self_task && (ROTOR__H_GEN(h) != gen || (ROTOR__H_STATE(h) != ROTOR__H_HELD &&
	                                              ROTOR__H_STATE(h) != ROTOR__H_JOINING)))
		return -EINVAL;
	return rotor__task_cancel_any(t);
}

int rotor_task_fail(int err)
{
	struct rotor_task *t = rotor__task_self();
	if (!t)
		return -EPERM;
	if (err >= 0 || err < -4095)
		return -EINVAL;
	t->err = err;
	return 0;
}

/* ---- shields ---- */

static void shield_over(struct rotor__timer *tm)
{
	struct rotor_task *t = rotor__container_of(tm, struct rotor_task, shield_tmr);
	t->flags |= ROTOR__TF_SHIELD_OVER;
	if (t->cancel_pending) {
		t->cancel_pending = false;
		cancel_now(t);
	}
}

/* A cancel is kept under t's shield: it takes effect at the shield's deadline, or the
 * runtime's drain deadline if that comes first, unless the shield ends before. */
static void keep_cancel(struct rotor__worker *w, struct rotor_task *t)
{
	t->cancel_pending = true;
	int64_t until = t->shield_deadline;
	int64_t drain = atomic_load_explicit(&t->rt->drain_deadline, memory_order_relaxed);
	if (drain < until)
		until = drain;
	if (rotor__timer_armed(&t->shield_tmr)) {
		if (t->shield_tmr.deadline <= until)
			return;
		rotor__timer_disarm(&w->timers, &t->shield_tmr);
	}
	t->shield_tmr.fire = shield_over;
	rotor__timer_arm(&w->timers, &t->shield_tmr, until);
}

int rotor_shield_begin(int64_t deadline)
{
	struct rotor_task *t = rotor__task_self();
	if (!t)
		return -EPERM;
	if (deadline == ROTOR_FOREVER || t->shield_depth == UINT32_MAX)
		return -EINVAL;
	if (t->shield_depth++ == 0) {
		t->flags &= ~ROTOR__TF_SHIELD_OVER;
		t->shield_deadline = deadline;
		/* A task already cancelled gets its calls back until the shield ends. */
		if (ROTOR__UNLIKELY(t->flags & ROTOR__TF_CANCELLED)) {
			t->flags &= ~ROTOR__TF_CANCELLED;
			keep_cancel(rotor__worker_self(), t);
		}
	} else if (deadline < t->shield_deadline) {
		/* Nested: the earliest deadline holds for the whole shield. */
		t->shield_deadline = deadline;
		if (t->cancel_pending)
			keep_cancel(rotor__worker_self(), t);
	}
	return 0;
}

/* The outermost shield ends with a cancel kept under it, or its timer armed. */
static __attribute__((noinline, cold)) void shield_close(struct rotor_task *t)
{
	if (rotor__timer_armed(&t->shield_tmr))
		rotor__timer_disarm(&rotor__worker_self()->timers, &t->shield_tmr);
	if (t->cancel_pending) {
		t->cancel_pending = false;
		t->flags |= ROTOR__TF_CANCELLED;
	}
}

int rotor_shield_end(void)
{
	struct rotor_task *t = rotor__task_self();
	if (!t)
		return -EPERM;
	if (!t->shield_depth)
		return -EINVAL;
	if (--t->shield_depth)
		return 0;
	t->flags &= ~ROTOR__TF_SHIELD_OVER;
	/* The timer is armed only when a cancel was kept, and the two end together. */
	if (ROTOR__UNLIKELY(t->cancel_pending || rotor__timer_armed(&t->shield_tmr)))
		shield_close(t);
	return 0;
}

int rotor_yield(void)
{
	struct rotor__worker *w = rotor__worker_self();
	struct rotor_task *t = w ? w->current : NULL;
	if (!t)
		return -EPERM;
	if (t->flags & ROTOR__TF_CANCELLED)
		return -ECANCELED;
	t->state = ROTOR__T_READY;
	rotor__runq_push(w, &t->item);
	rotor__switch_to_sched(w, t->slot);
	return 0;
}

static void sleep_over(struct rotor_task *t)
{
	rotor__task_end_wait(rotor__worker_self(), t, 0);
}

static void sleep_cancel(struct rotor_task *t)
{
	rotor__task_end_wait(rotor__worker_self(), t, -ECANCELED);
}

int rotor_sleep_until(int64_t deadline)
{
	int err;
	if (!rotor__wait_begin(&err))
		return err;
	if (deadline <= rotor_now())
		return rotor_yield();
	return rotor__task_wait(rotor__worker_self(), NULL, sleep_cancel, sleep_over, deadline);
}

int rotor_sleep(int64_t ns)
{
	return rotor_sleep_until(rotor__deadline_in(rotor_now(), ns));
}

struct rotor_task *rotor_current(void)
{
	struct rotor_task *t = rotor__task_self();
	return t ? rotor__task_handle(t) : NULL;
}

/* The task of a handle still held (or of the calling task itself, which rotor_current
 * names whatever became of its handle), or NULL. */
static struct rotor_task *live_task(const struct rotor_task *handle)
{
	uint32_t gen;
	struct rotor_task *t = rotor__task_from_handle(handle, &gen);
	if (!t)
		return NULL;
	uint32_t h = atomic_load_explicit(&t->handle, memory_order_acquire);
	if (t == rotor__task_self() && gen == atomic_load_explicit(&t->gen, memory_order_relaxed))
		return t;
	if (ROTOR__H_GEN(h) != gen ||
	    (ROTOR__H_STATE(h) != ROTOR__H_HELD && ROTOR__H_STATE(h) != ROTOR__H_JOINING))
		return NULL;
	return t;
}

const char *rotor_task_name(const struct rotor_task *handle)
{
	struct rotor_task *m = live_task(handle);
	return m ? rotor__task_name(m) : "";
}

const char *rotor__task_name(struct rotor_task *m)
{
	uint32_t st = atomic_load_explicit(&m->name_state, memory_order_acquire);
	if (st == 2)
		return m->name;
	/* Unnamed: format "task-<id>" on first use (spawn stays cheap); whoever wins the
	 * CAS writes it, anyone else waits the few nanoseconds that takes. */
	if (st == 0 && atomic_compare_exchange_strong(&m->name_state, &st, 1)) {
		memcpy(m->name, "task-", 5);
		put_num(m->name + 5, m->id);
		atomic_store_explicit(&m->name_state, 2, memory_order_release);
		return m->name;
	}
	while (atomic_load_explicit(&m->name_state, memory_order_acquire) != 2)
		;
	return m->name;
}

int rotor_task_worker(const struct rotor_task *handle)
{
	struct rotor_task *t = live_task(handle);
	return t ? (int)t->item.worker : -EINVAL;
}

int rotor_task_cancelled(void)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w || !w->current)
		return -EPERM;
	return (w->current->flags & ROTOR__TF_CANCELLED) != 0;
}

/* ---- the core as the layers above see it (api/core.h) ---- */

struct rotor_task *rotor__wait_begin(int *err)
{
	struct rotor_task *t = rotor__task_self();
	if (!t) {
		*err = -EPERM;
		return NULL;
	}
	if (t->flags & ROTOR__TF_CANCELLED) {
		*err = -ECANCELED;
		return NULL;
	}
	return t;
}

struct rotor_runtime *rotor__task_runtime(const struct rotor_task *t)
{
	return t->rt;
}

void *rotor__task_wait_obj(const struct rotor_task *t)
{
	return t->wait_obj;
}

struct rotor__ext **rotor__task_ext(struct rotor_task *t)
{
	return &t->ext;
}
