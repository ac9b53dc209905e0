/*
 * What every lib/ file needs first: asserts, the always-on panic, container_of, branch
 * hints, relaxed statistics counters, the tags carried in io_uring user_data, and the
 * fault-injectable allocation, mapping and thread wrappers (fault.h). Everything else
 * lives in a header of its own concern.
 */
#ifndef ROTOR__INTERNAL_H
#define ROTOR__INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rotor.h"

#ifdef NDEBUG
#define ROTOR__ASSERT(x) ((void)0)
#else
#define ROTOR__ASSERT(x) assert(x)
#endif

#define ROTOR__LIKELY(x)   __builtin_expect(!!(x), 1)
#define ROTOR__UNLIKELY(x) __builtin_expect(!!(x), 0)

#define rotor__container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Always-on panic for corrupted state: "rotor: wN: function: message", then abort(). */
__attribute__((noreturn, format(printf, 2, 3))) void rotor__panic(const char *func, const char *fmt,
                                                                  ...);
#define ROTOR__PANIC(...) rotor__panic(__func__, __VA_ARGS__)

/* Fault-injection hooks and the allocation, mapping and thread wrappers (fault.h). */
#include "fault.h"

/*
 * user_data tags. Pointers are at least 8-byte aligned, so the low 3 bits carry the kind
 * of completion. Tag 0 is an operation record on a waiting coroutine's stack, the common
 * case, so it needs no masking.
 */
enum {
	ROTOR__TAG_OP = 0,     /* struct rotor__op * */
	ROTOR__TAG_ITEMS = 1,  /* MSG_RING received: head of an item batch */
	ROTOR__TAG_POSTED = 2, /* our MSG_RING post failed: batch to retry */
	ROTOR__TAG_EXIT = 3,   /* MSG_RING received: leave the loop */
	ROTOR__TAG_EXITSENT = 4,
	ROTOR__TAG_IGNORE = 5,
	ROTOR__TAG_DOORBELL = 6, /* MSG_RING received: the inbox has items */
	ROTOR__TAG_MULTI = 7,    /* struct rotor__multi *: a multishot operation's completion */
	ROTOR__TAG_MASK = 7,
};

static inline uint64_t rotor__tag(const void *p, unsigned tag)
{
	return (uint64_t)(uintptr_t)p | tag;
}

static inline void *rotor__untag(uint64_t ud)
{
	return (void *)(uintptr_t)(ud & ~(uint64_t)ROTOR__TAG_MASK);
}

/* The deadline ns after now, saturating at ROTOR_FOREVER: a delay of ROTOR_FOREVER, or one
 * whose sum would overflow, never comes due. A negative ns counts as 0. */
static inline int64_t rotor__deadline_in(int64_t now, int64_t ns)
{
	if (ns <= 0)
		return now;
	return ns > ROTOR_FOREVER - now ? ROTOR_FOREVER : now + ns;
}

/* Relaxed counters that other threads may read: a plain increment on x86-64 and aarch64. */
#define ROTOR__STAT_ADD(var, n) __atomic_store_n(&(var), (var) + (n), __ATOMIC_RELAXED)
#define ROTOR__STAT_INC(var)    ROTOR__STAT_ADD(var, 1)
#define ROTOR__STAT_READ(var)   __atomic_load_n(&(var), __ATOMIC_RELAXED)

static inline void rotor__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
