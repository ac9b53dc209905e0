/*
 * Type-stable pools and generation handles (handle.h). Slots come in chunks that are never
 * freed; a freed slot keeps its generation, waits in its pool's FIFO behind QUARANTINE
 * others, and takes the next generation when it is handed out again. Under ASan a free
 * slot's object is poisoned, so the library's own late use of a freed object is still
 * reported; a stale handle reads only the slot's head, which stays addressable.
 */
#include "handle.h"

#include <stdlib.h>
#include <string.h>

#include "sanitize.h"

#ifdef ROTOR__ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SLOTS_PER_CHUNK 64
#define QUARANTINE      64

struct chunk {
	struct chunk *next;
	alignas(max_align_t) unsigned char slots[];
};

static size_t slot_bytes(const struct rotor__pool *p)
{
	size_t a = alignof(max_align_t);
	return (sizeof(struct rotor__slot_head) + p->size + a - 1) & ~(a - 1);
}

static void push_free(struct rotor__pool *p, struct rotor__slot_head *s)
{
	s->next = NULL;
	if (p->tail)
		p->tail->next = s;
	else
		p->head = s;
	p->tail = s;
	p->nfree++;
}

/* Under p->lock: a chunk's slots onto the free FIFO. False on ENOMEM. Not a fault site of
 * its own: every alloc is one already (rotor__pool_alloc). */
static bool grow(struct rotor__pool *p)
{
	size_t sz = slot_bytes(p);
	struct chunk *c = calloc(1, sizeof(*c) + SLOTS_PER_CHUNK * sz);
	if (!c)
		return false;
	if ((uintptr_t)c + sizeof(*c) + SLOTS_PER_CHUNK * sz > ROTOR__HANDLE_ADDR) {
		/* An address that leaves no room for a generation (5-level paging's upper half,
		 * a tagged heap): no handle could name it. */
		free(c);
		return false;
	}
	c->next = p->chunks;
	p->chunks = c;
	for (int i = 0; i < SLOTS_PER_CHUNK; i++) {
		struct rotor__slot_head *s = (void *)(c->slots + (size_t)i * sz);
		s->pool = p;
		atomic_init(&s->word, 0);
		POISON(s->obj, p->size);
		push_free(p, s);
	}
	return true;
}

void *rotor__pool_alloc(struct rotor__pool *p)
{
	if (ROTOR__FAULT_AT(p->site))
		return NULL;
	pthread_mutex_lock(&p->lock);
	if (p->nfree <= QUARANTINE && !grow(p)) {
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	struct rotor__slot_head *s = p->head;
	p->head = s->next;
	if (!p->head)
		p->tail = NULL;
	p->nfree--;
	pthread_mutex_unlock(&p->lock);
	UNPOISON(s->obj, p->size);
	memset(s->obj, 0, p->size);
	uint32_t gen = (atomic_load_explicit(&s->word, memory_order_relaxed) & ROTOR__SLOT_GEN) + 1;
	if (gen > ROTOR__SLOT_GEN)
		gen = 1; /* 0 is never a generation: a raw pointer is never a handle */
	/* Release: whoever decodes the new handle (acquire) sees the object zeroed. */
	atomic_store_explicit(&s->word, ROTOR__SLOT_LIVE | gen, memory_order_release);
	return s->obj;
}

int rotor__pool_retire(void *obj)
{
	struct rotor__slot_head *s = rotor__slot_of(obj);
	uint32_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
	while (w & ROTOR__SLOT_LIVE)
		if (atomic_compare_exchange_weak_explicit(&s->word, &w, w & ROTOR__SLOT_GEN,
		                                          memory_order_acq_rel,
		                                          memory_order_relaxed))
			return 1;
	return 0;
}

void rotor__pool_free(void *obj)
{
	struct rotor__slot_head *s = rotor__slot_of(obj);
	struct rotor__pool *p = s->pool;
	rotor__pool_retire(obj);
	POISON(s->obj, p->size);
	pthread_mutex_lock(&p->lock);
	push_free(p, s);
	pthread_mutex_unlock(&p->lock);
}
