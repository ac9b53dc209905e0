/*
 * Coroutine stacks: slots cut from per-worker arenas (chunks), each slot a guard page below
 * its stack, with the slot's descriptor at the very top:
 *
 *   chunk:  | guard | stack ........ colour | struct rotor__slot | guard | stack ... |
 *            lo-4K   lo               top    top+colour
 *
 * A pool belongs to one worker; slots are reused LIFO so hot stacks stay in cache.
 */
#ifndef ROTOR__STACK_H
#define ROTOR__STACK_H

#include "context.h"

struct rotor__slot {
	struct rotor__ctx ctx;
	struct rotor__slot *next_free;
	char *lo;  /* lowest usable byte, just above the guard page */
	char *top; /* initial stack pointer bound (coloured) */
	uint32_t index;
	void *tsan_fiber;
	unsigned vg_id;
	void *asan_fake; /* ASan fake-stack handle while switched out */
};

struct rotor__stack_chunk;

enum rotor__guard_mode {
	ROTOR__GUARD_MADVISE = 1, /* MADV_GUARD_INSTALL, Linux 6.13 */
	ROTOR__GUARD_MPROTECT = 2,
};

struct rotor__stack_pool {
	size_t stack_size; /* usable bytes per slot */
	size_t slot_size;  /* stack + guard page */
	size_t chunk_slots;
	struct rotor__slot *free;
	struct rotor__stack_chunk *chunks;
	uint32_t next_index;
	int guard_mode;
	uint64_t in_use;
	uint64_t total;
	void (*entry)(void);
	int pidfd; /* own pidfd for process_madvise: -1 not yet, -2 unavailable */
};

/* Round a requested stack size; -EINVAL below ROTOR_STACK_MIN. */
int rotor__stack_size(size_t requested, size_t *out);
int rotor__stack_pool_init(struct rotor__stack_pool *p, size_t stack_size, unsigned cfg_flags,
                           void (*entry)(void));
void rotor__stack_pool_fini(struct rotor__stack_pool *p);
/* A slot whose context starts (or resumes) the pool's entry loop; NULL when out of memory. */
struct rotor__slot *rotor__stack_get(struct rotor__stack_pool *p);
void rotor__stack_put(struct rotor__stack_pool *p, struct rotor__slot *s);
/* If addr falls in a guard page of this pool, return 1 and the stack size. */
int rotor__stack_guard_hit(const struct rotor__stack_pool *p, const void *addr);

/* Per-thread SIGSEGV reporting on an alternate stack (installed by each worker). */
int rotor__overflow_thread_init(void **altstack);
void rotor__overflow_thread_fini(void *altstack);

#endif
