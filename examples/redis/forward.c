/*
 * Parts bound for other workers. Each worker keeps one open batch per owner; fwd_add
 * appends to it and, the first time in a loop turn, asks for flush() with rotor_call_soon,
 * which runs once the tasks ready in this turn have run (and parsed their rounds). flush()
 * posts each open batch as one rotor_call_soon_threadsafe: one callback per owner per turn,
 * and the runtime gathers a turn's posts to one worker into one MSG_RING. The owner runs the
 * parts in order, writes their replies into the batch, and posts the batch back the same
 * way; the origin copies each reply to its connection and wakes the connections whose
 * parts are all back. A batch is reused: it returns to its origin's free list.
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

struct fwd_worker {
	struct batch *open[MAX_WORKERS];
	struct batch *free;
	bool scheduled;
} __attribute__((aligned(64)));

static struct fwd_worker fw[MAX_WORKERS];
static _Atomic(struct batch *) lost_batches; /* never back: kept reachable till the exit */

void fwd_init(void)
{
	memset(fw, 0, sizeof(fw));
}

/* On the origin: every part is back. */
static void batch_done(void *arg)
{
	struct batch *b = arg;
	for (struct part *p = b->head; p; p = p->next) {
		struct conn *c = p->conn;
		p->off = c->dout.len;
		p->len = p->rlen;
		p->back = true;
		if (rotor_resp_put_raw(&c->dout, b->out.buf + p->roff, p->rlen) < 0)
			p->len = 0; /* conn.c answers an empty reply with an error */
		if (--c->pending == 0)
			rotor_event_set(&c->done);
	}
	b->head = NULL;
	b->n = 0;
	b->out.len = 0;
	b->next = fw[b->from].free;
	fw[b->from].free = b;
}

/* On the owner: run the parts in order. */
static void batch_run(void *arg)
{
	struct batch *b = arg;
	struct shard *s = &shards[b->to];
	for (struct part *p = b->head; p; p = p->next) {
		p->roff = b->out.len;
		p->cmd->run(s, p->argc, p->argv, &b->out);
		p->rlen = b->out.len - p->roff;
	}
	/* Only fails while the runtime stops (a drain refuses new posts): the origin's
	 * connections still wait, shielded, and read this flag once their wait is cut short. The
	 * batch is not touched again here (it stays the origin's, never freed). */
	if (rotor_call_soon_threadsafe(runtime, b->from, batch_done, b) < 0) {
		b->next = atomic_load(&lost_batches);
		while (!atomic_compare_exchange_weak(&lost_batches, &b->next, b))
			;
		atomic_store_explicit(&b->lost, true, memory_order_release);
	}
}

static void flush(void *arg)
{
	struct fwd_worker *w = arg;
	int self = (int)(w - fw);
	w->scheduled = false;
	for (int o = 0; o < nworkers; o++) {
		struct batch *b = w->open[o];
		if (!b)
			continue;
		w->open[o] = NULL;
		shards[self].fwd_msgs++;
		shards[self].fwd_parts += (uint64_t)b->n;
		if (rotor_call_soon_threadsafe(runtime, o, batch_run, b) < 0) {
			/* The runtime is stopping: answer here, so the connections stop waiting. */
			for (struct part *p = b->head; p; p = p->next) {
				p->roff = b->out.len;
				rotor_resp_put_error(&b->out, "ERR server is shutting down");
				p->rlen = b->out.len - p->roff;
			}
			batch_done(b);
		}
	}
}

void fwd_add(struct part *p)
{
	int self = rotor_worker_id();
	struct fwd_worker *w = &fw[self];
	struct batch *b = w->open[p->owner];
	if (!b) {
		b = w->free;
		if (b)
			w->free = b->next;
		else if (!(b = calloc(1, sizeof(*b))))
			abort(); /* a few bytes; a connection cannot wait for a reply never sent */
		b->from = self;
		b->to = p->owner;
		atomic_store_explicit(&b->lost, false, memory_order_relaxed);
		b->head = NULL;
		b->tail = &b->head;
		w->open[p->owner] = b;
	}
	p->next = NULL;
	p->batch = b;
	*b->tail = p;
	b->tail = &p->next;
	b->n++;
	if (!w->scheduled) {
		if (rotor_call_soon(flush, w) == 0)
			w->scheduled = true;
		else
			flush(w); /* no memory for the callback: post now, in smaller batches */
	}
}
