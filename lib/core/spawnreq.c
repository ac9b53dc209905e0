/*
 * Spawn requests. Measured (bench_post, 2 workers, K=64 detached spawns per turn from worker
 * 0 onto worker 1): with the task struct made by the sender, 40% of the run was worker 0
 * walking the structs worker 1 gave back (a cache miss each, one after the other) and the
 * rest largely worker 1 reading structs written on the other core. A record is 24 bytes,
 * read in order from a block: the target builds the struct in its own cache, where the
 * struct of the task that just ended is still warm.
 *
 * What a request cannot carry goes the usual way: a handle (the caller needs the struct
 * now), a future bound to the end, a name. A target that cannot allocate the struct ends
 * the task as one that got no stack does: discard(arg), never fn (rotor_task_attr).
 *
 * A callback a worker posts to another worker is a record of the same block (its discard is
 * ROTOR__REQ_CALLBACK), run in its place among the tasks: no callback struct from the shared
 * pool either.
 */
#include "spawnreq.h"
#include "fault.h"
#include "runtime.h"
#include "stall.h"
#include "task.h"
#include "worker.h"

#include <errno.h>

static struct rotor__spawn_block *block_take(struct rotor__worker *w)
{
	struct rotor__spawn_pool *p = &w->spawns;
	if (!p->free && atomic_load_explicit(&p->remote, memory_order_relaxed))
		p->free = atomic_exchange_explicit(&p->remote, NULL, memory_order_acquire);
	if (p->free) {
		struct rotor__item *it = p->free;
		p->free = it->next;
		return rotor__container_of(it, struct rotor__spawn_block, item);
	}
	struct rotor__spawn_block *b = rotor__malloc(ROTOR__FAULT_SPAWN_BLOCK, sizeof(*b));
	if (!b)
		return NULL;
	b->home = (uint32_t)w->id;
	b->all_next = p->all;
	p->all = b;
	return b;
}

void rotor__req_callback_mark(void *arg)
{
	(void)arg;
	ROTOR__PANIC("a callback's record mark was called as a discard");
}

int rotor__spawn_post_new_block(struct rotor__worker *w, int target, union rotor__req_fn fn,
                                void *arg, void (*discard)(void *))
{
	struct rotor__outbox *ob = &w->out[target];
	struct rotor__spawn_block *b = block_take(w);
	if (!b)
		return -ENOMEM;
	b->item.kind = ROTOR__ITEM_SPAWNS;
	b->item.worker = (uint32_t)target;
	b->n = 1;
	b->req[0] = (struct rotor__spawn_req){fn, arg, discard};
	if (rotor__queue_empty(&ob->q))
		w->out_pending++;
	rotor__queue_push(&ob->q, &b->item);
	ob->open = b;
	ob->items++;
	return 0;
}

uint32_t rotor__spawn_run(struct rotor__worker *w, struct rotor__spawn_block *b)
{
	uint32_t n = b->n;
	w->spawns.queued -= n;
	for (uint32_t i = 0; i < n; i++) {
		const struct rotor__spawn_req *r = &b->req[i];
		if (r->discard == ROTOR__REQ_CALLBACK) {
			/* Callbacks in a row are one run for the stall detector (they all run on
			 * the worker's own stack, nameless): a slow one still makes it slow. */
			rotor__stall_run_begin(w, NULL, (void *)w->sched_stack_lo,
			                       (void *)w->sched_stack_hi);
			for (;;) {
				b->req[i].fn.callback(b->req[i].arg);
				if (i + 1 == n || b->req[i + 1].discard != ROTOR__REQ_CALLBACK)
					break;
				i++;
			}
			rotor__stall_run_end(w);
		} else if (rotor__task_run_new(w, r->fn.task, r->arg, r->discard) < 0 &&
		           r->discard) {
			r->discard(r->arg);
		}
	}
	if (b->home == (uint32_t)w->id) {
		b->item.next = w->spawns.free;
		w->spawns.free = &b->item;
		return n;
	}
	rotor__item_stack_push(&w->rt->w[b->home]->spawns.remote, &b->item, &b->item.next);
	return n;
}

void rotor__spawn_pool_fini(struct rotor__worker *w)
{
	struct rotor__spawn_block *b = w->spawns.all;
	while (b) {
		struct rotor__spawn_block *next = b->all_next;
		rotor__free(ROTOR__FAULT_SPAWN_BLOCK, b);
		b = next;
	}
	w->spawns.all = NULL;
	w->spawns.free = NULL;
	atomic_store(&w->spawns.remote, NULL);
}
