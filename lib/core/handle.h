/*
 * Handles that cannot act on the wrong object (handle.c). An object a user holds a pointer to
 * (a future, a call_later timer, an acceptor, a receive stream, a started operation) lives in
 * a slot of a pool of its type whose memory is never given back to malloc, and the pointer
 * the user gets carries the slot's generation in its top 16 bits, as task handles do
 * (core/task.h). Every public call decodes the handle with rotor__handle_get: a handle whose
 * object was destroyed, whose slot now holds another object, of another type, or with no
 * generation (a raw pointer) gives NULL, never the object. Only a slot reused a multiple of
 * 65535 times between a handle's destroy and its next use would alias; freed slots wait in
 * a FIFO before reuse, so that is 65535 times the quarantine's worth of cycles.
 *
 *   handle:  [ generation, 16 bits | address of the object, 48 bits ]
 *   slot:    [ word: LIVE bit | generation ][ pool ][ next free ] [ the object ... ]
 */
#ifndef ROTOR__HANDLE_H
#define ROTOR__HANDLE_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "internal.h"

#define ROTOR__HANDLE_SHIFT 48
#define ROTOR__HANDLE_ADDR  (((uintptr_t)1 << ROTOR__HANDLE_SHIFT) - 1)
#define ROTOR__SLOT_LIVE    (1u << 16) /* the slot's handle is good (its word's generation) */
#define ROTOR__SLOT_GEN     0xffffu

struct rotor__pool;

struct rotor__slot_head {
	_Atomic uint32_t word; /* ROTOR__SLOT_LIVE | generation; the generation stays when freed */
	struct rotor__pool *pool;
	struct rotor__slot_head *next; /* on the pool's free FIFO */
	alignas(max_align_t) unsigned char obj[];
};

/*
 * A pool of objects of one type, process-wide: a handle may outlive the worker and the
 * runtime that made its object (a future does by design; any other stale handle may), so the
 * memory stays until the process exits. Alloc and free take a short mutex; any thread.
 */
struct rotor__pool {
	size_t size; /* of the object */
	enum rotor__fault_site site;
	pthread_mutex_t lock;
	struct rotor__slot_head *head, *tail; /* free slots, oldest first */
	size_t nfree;
	void *chunks; /* every chunk ever made, reachable (so no leak report) */
};
#define ROTOR__POOL_INIT(type, fault)                                                              \
	{                                                                                          \
		.size = sizeof(type), .site = ROTOR__FAULT_##fault,                                \
		.lock = PTHREAD_MUTEX_INITIALIZER                                                  \
	}

/* A zeroed object from p with a new generation, its handle still live; NULL on ENOMEM (the
 * pool's fault site fails as an allocation would). Thread: any. */
void *rotor__pool_alloc(struct rotor__pool *p);
/* End the handle of obj (from p) if it is still live: 1 if this call ended it, 0 if it had
 * ended already (so that of two racing destroys one wins). The memory stays the object's.
 * Thread: any. */
int rotor__pool_retire(void *obj);
/* Give obj back to its pool (retiring its handle if need be). Thread: any. */
void rotor__pool_free(void *obj);

static inline struct rotor__slot_head *rotor__slot_of(const void *obj)
{
	return rotor__container_of(obj, struct rotor__slot_head, obj);
}

/* The handle of obj, a live object of a pool. */
static inline void *rotor__handle_of(void *obj)
{
	uint32_t w = atomic_load_explicit(&rotor__slot_of(obj)->word, memory_order_relaxed);
	return (void *)((uintptr_t)obj | (uintptr_t)(w & ROTOR__SLOT_GEN) << ROTOR__HANDLE_SHIFT);
}

/* The object handle h names in pool p, or NULL: a NULL or raw (generation 0) handle is
 * refused without a load; any other is checked against its slot's pool and word. The
 * acquire pairs with the release in pool_alloc: the new object's fields are seen. */
static inline void *rotor__handle_get(const struct rotor__pool *p, const void *h)
{
	uintptr_t v = (uintptr_t)h;
	uint32_t gen = (uint32_t)(v >> ROTOR__HANDLE_SHIFT);
	void *obj = (void *)(v & ROTOR__HANDLE_ADDR);
	if (ROTOR__UNLIKELY(!gen || !obj))
		return NULL;
	struct rotor__slot_head *s = rotor__slot_of(obj);
	if (ROTOR__UNLIKELY(s->pool != p || atomic_load_explicit(&s->word, memory_order_acquire) !=
	                                        (ROTOR__SLOT_LIVE | gen)))
		return NULL;
	return obj;
}

#endif
