/*
 * Spawn requests (spawnreq.c): a detached, unnamed task spawned onto another worker travels as
 * a compact record (fn, arg, discard) in a block of them, and the target builds the task
 * from its own type-stable cache. No task struct crosses cores in either direction; the
 * block, one item in the outbox, carries up to ROTOR__SPAWN_BLOCK spawns of one loop turn.
 * A callback posted by a worker to another (rotor_call_soon_threadsafe) is a record too.
 */
#ifndef ROTOR__SPAWNREQ_H
#define ROTOR__SPAWNREQ_H

#include <stdatomic.h>

#include "item.h"

struct rotor__worker;
struct rotor__outbox;

#define ROTOR__SPAWN_BLOCK 126 /* a block is 3 KiB: 126 records of 24 bytes and a header */

union rotor__req_fn {
	void *(*task)(void *arg);
	void (*callback)(void *arg);
};

struct rotor__spawn_req {
	union rotor__req_fn fn;
	void *arg;
	void (*discard)(void *arg); /* ROTOR__REQ_CALLBACK: fn.callback is a callback to run */
};

/* The discard of a callback's record: a function never called, only compared. */
void rotor__req_callback_mark(void *arg);
#define ROTOR__REQ_CALLBACK rotor__req_callback_mark

/*
 *  block:  | item (kind SPAWNS, worker = target) | home | n | all_next | req[0] ... req[n-1] |
 *
 * The sender (home) owns a block while it fills it in its outbox; it travels in the batch's
 * MSG_RING; the target builds the n tasks and gives the block back to home's `remote` stack
 * (item.next links free blocks). all_next, written only by home, lists every block home ever
 * made, for the runtime's destroy.
 */
struct rotor__spawn_block {
	struct rotor__item item;
	uint32_t home;
	uint32_t n;
	struct rotor__spawn_block *all_next;
	struct rotor__spawn_req req[ROTOR__SPAWN_BLOCK];
};

/* A worker's blocks: free ones (owner only), ones given back by targets (shared), all. */
struct rotor__spawn_pool {
	struct rotor__item *free;
	_Atomic(struct rotor__item *) remote;
	struct rotor__spawn_block *all;
	uint64_t queued; /* records that arrived here and have not run yet (for the load) */
};

/* Worker w: a record in a new block at the end of the outbox for `target` (the slow path
 * of rotor__spawn_post, worker.h). Returns 0 or -ENOMEM. */
int rotor__spawn_post_new_block(struct rotor__worker *w, int target, union rotor__req_fn fn,
                                void *arg, void (*discard)(void *));
/*
 * The target, when the block's turn in its run queue comes: make and run its tasks in order,
 * each until it ends or first suspends, and give the block back. A task is made only when it
 * is about to run, so a backlog of spawns waits as records (24 bytes) and a task that ends
 * at once leaves its struct, still warm, to the next. Returns how many tasks it ran.
 */
uint32_t rotor__spawn_run(struct rotor__worker *w, struct rotor__spawn_block *b);
/* The runtime's destroy: free every block w made. */
void rotor__spawn_pool_fini(struct rotor__worker *w);

#endif
