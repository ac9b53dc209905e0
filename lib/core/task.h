/*
 * Tasks. A task is owned by one worker for life: only that worker changes its scheduling
 * state. Other threads touch a task only through atomics (refs, handle, cancel_req, the
 * done event) and by posting items to its owner (cancel_item, by whoever set cancel_req).
 *
 * Lifetime: refs counts the running task itself plus the user's handle (and whoever
 * bound itself to its end, a submitted task's future). The struct is recycled, FIFO, into a
 * type-stable cache when refs drops to zero, so a stale handle still points at a task struct and
 * misuse is reported, not UB.
 */
#ifndef ROTOR__TASK_H
#define ROTOR__TASK_H

#include <stdatomic.h>

#include "api/core.h"
#include "timer.h"

struct rotor__worker;
struct rotor__slot;

enum rotor__task_state {
	ROTOR__T_NEW = 1,
	ROTOR__T_READY,
	ROTOR__T_RUNNING,
	ROTOR__T_WAITING,
	ROTOR__T_DONE,
	ROTOR__T_FREE,
};

/* The handle word: the generation of the struct's current use above a handle state, so
 * that a stale handle's CAS fails atomically. */
#define ROTOR__H(gen, state) ((uint32_t)(gen) << 8 | (uint32_t)(state))
#define ROTOR__H_STATE(h)    ((h)&0xffu)
#define ROTOR__H_GEN(h)      ((h) >> 8)

enum rotor__handle_state {
	ROTOR__H_NONE = 0, /* detached at spawn, or no user handle */
	ROTOR__H_HELD,
	ROTOR__H_JOINING,
	ROTOR__H_RELEASED,
};

/* Task flags (owner only); ROTOR__TF_CANCELLED is in api/core.h. */
#define ROTOR__TF_RAN         (1u << 1)
#define ROTOR__TF_MAIN        (1u << 2)
#define ROTOR__TF_SHIELD_OVER (1u << 3) /* the running shield's deadline has passed */

struct rotor_task {
	/* First: what api/core.h's inline calls read (a pointer to the task is one to it). */
	union {
		struct rotor__task_head head;
		struct {
			ROTOR__TASK_HEAD
		};
	};
	struct rotor__item item; /* item.worker = owner */
	struct rotor_runtime *rt;
	struct rotor__slot *slot;
	rotor_fn fn;
	void (*discard)(void *arg); /* instead of fn when cancelled before running */
	void *arg;
	void *result;
	uint32_t state;
	int wait_res;
	int err; /* what rotor_join returns: 0, -ECANCELED, -ENOMEM */
	/* While waiting: how to abort the wait on cancellation (owner only). */
	void (*cancel_hook)(struct rotor_task *t);
	void *wait_obj;
	struct rotor__timer tmr; /* may stay armed after a wait: see rotor__task_wait */
	int64_t wait_deadline;   /* of the current wait; FOREVER: none (owner only) */
	void (*wait_timeout)(struct rotor_task *t);
	struct rotor__event done;
	_Atomic uint32_t refs;
	_Atomic uint32_t handle;
	_Atomic uint32_t gen; /* of this use of the struct, 1..65535; 0: handles go unchecked */
	_Atomic uint32_t cancel_req;    /* 1 once a cancel was requested */
	struct rotor__item cancel_item; /* the request to the owner, from another thread */
	struct rotor__task_end *end;    /* told of the task's end (a future), or NULL */
	struct rotor_task *live_prev;
	struct rotor_task *live_next;
	uint32_t home; /* worker whose cache this struct returns to; UINT32_MAX: non-worker */
	struct rotor__ext *ext; /* task-local values (coord/local.c), made on first set */
	uint64_t id;
	_Atomic uint32_t name_state; /* 0: default not formatted, 1: being formatted, 2: set */
	char name[32];
	/* Shields (rotor_shield_begin), owner only, apart from the hot fields above: a cancel that
	 * arrives while shield_depth > 0 waits in cancel_pending until the outermost shield ends or
	 * shield_tmr fires. The timer is armed only once a cancel is kept (at shield_deadline, or
	 * the runtime's drain deadline if earlier), so that an uncancelled shield costs no timer.
	 */
	uint32_t shield_depth;
	bool cancel_pending;
	int64_t shield_deadline;
	struct rotor__timer shield_tmr;
};

/*
 * Handles. The pointer a user holds carries the struct's generation in its top 16 bits
 * (user-space addresses leave them zero on x86-64 and aarch64), so a handle kept after its
 * task was released still gets -EINVAL once the struct has been reused for another task,
 * not only during the quarantine of the type-stable cache. Only a struct reused a multiple
 * of 65535 times in between would alias. A handle with no generation (a struct at an
 * address that uses those bits, or the core's own raw pointer) is taken as it is.
 */
#define ROTOR__HANDLE_GEN_SHIFT 48
static inline struct rotor_task *rotor__task_handle(struct rotor_task *t)
{
	uintptr_t gen = atomic_load_explicit(&t->gen, memory_order_relaxed);
	return (struct rotor_task *)((uintptr_t)t | gen << ROTOR__HANDLE_GEN_SHIFT);
}
/* The struct a handle points at, and in *gen the generation the handle names (the struct's
 * own for a handle that carries none); NULL for a NULL handle. Whether the handle is still
 * good is decided with the generation kept in the handle word (ROTOR__H), atomically. */
static inline struct rotor_task *rotor__task_from_handle(const struct rotor_task *h, uint32_t *gen)
{
	uintptr_t p = (uintptr_t)h;
	struct rotor_task *t =
	    (struct rotor_task *)(p & (((uintptr_t)1 << ROTOR__HANDLE_GEN_SHIFT) - 1));
	*gen = (uint32_t)(p >> ROTOR__HANDLE_GEN_SHIFT);
	if (t && !*gen)
		*gen = atomic_load_explicit(&t->gen, memory_order_relaxed);
	return t;
}

/* t's name, "task-<id>" formatted on first use (rotor_task_name without the handle check,
 * for the core's own reports). */
const char *rotor__task_name(struct rotor_task *t);

/* Worker w: make the task a rotor__start_req asks for and queue it. */
void rotor__task_start_req(struct rotor__worker *w, struct rotor__start_req *r);
/* Worker w, in its run loop: make fn(arg) a detached, unnamed task of its own and run it
 * now, until it ends or first suspends (a spawn request's turn, spawnreq.c). Returns 0 or
 * -ENOMEM (then nothing was started). */
int rotor__task_run_new(struct rotor__worker *w, rotor_fn fn, void *arg, void (*discard)(void *));
/* Allocate a task struct for runtime rt, owned by worker `owner`. NULL on ENOMEM. */
struct rotor_task *rotor__task_alloc(struct rotor_runtime *rt, int owner);
/* Free every cached task struct of the runtime (at destroy). */
void rotor__task_pool_fini(struct rotor_runtime *rt);

/* Owner only: t is about to be queued to run. Its slot header (the saved stack pointer) is
 * fetched now, so that the run loop can prefetch the stack below it (worker.c) without
 * waiting on it. */
void rotor__task_ready(struct rotor__worker *w, struct rotor_task *t, int res);
/* Owner only: cancel t now (runs its cancel hook if it waits). */
void rotor__task_cancel_local(struct rotor__worker *w, struct rotor_task *t);
/* Owner only: a task item taken from the run queue. */
void rotor__task_run(struct rotor__worker *w, struct rotor_task *t);
/* Slot entry loop (never returns). */
void rotor__task_slot_entry(void);
/* Owner: a new task reached its worker. */
void rotor__task_arrive(struct rotor__worker *w, struct rotor_task *t);
/* Owner: cancel every live task (stop). */
void rotor__tasks_cancel_all(struct rotor__worker *w);

/* Give task structs freed here back to their home workers (one CAS per home). */
void rotor__task_give_back(struct rotor__worker *w);

#endif
