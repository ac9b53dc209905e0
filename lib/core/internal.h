/*
 * Shared internals: asserts, panic, container_of, intrusive item queues, the tags carried
 * in io_uring user_data, the sanitizer hooks and the fault-injection hooks (fault.h).
 * Every lib/ file includes this first.
 */
#ifndef ROTOR_INTERNAL_H
#define ROTOR_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rotor.h"

#ifdef NDEBUG
#define ROTOR_ASSERT(x) ((void)0)
#else
#define ROTOR_ASSERT(x) assert(x)
#endif

#define ROTOR_LIKELY(x)   __builtin_expect(!!(x), 1)
#define ROTOR_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define rotor__container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Always-on panic for corrupted state: "rotor: wN: function: message", then abort(). */
__attribute__((noreturn, format(printf, 2, 3))) void rotor__panic(const char *func, const char *fmt,
                                                                  ...);
#define ROTOR_PANIC(...) rotor__panic(__func__, __VA_ARGS__)

/* Fault-injection hooks and the allocation, mapping and thread wrappers (fault.h). */
#include "fault.h"

/*
 * Valgrind: memcheck cannot see the kernel write through io_uring, so bytes an operation
 * received look uninitialised at their first use, anywhere in the caller's code. The I/O
 * calls say what the kernel wrote (ROTOR__KERNEL_WROTE); RUNNING_ON_VALGRIND picks the
 * ring wait valgrind can run (ring.c). Both cost nothing outside valgrind.
 */
#if defined(__has_include) && !defined(ROTOR_NO_VALGRIND)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define ROTOR_HAVE_VALGRIND_MEMCHECK 1
#endif
#endif
#ifdef ROTOR_HAVE_VALGRIND_MEMCHECK
#define ROTOR__KERNEL_WROTE(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#define ROTOR__ON_VALGRIND()      RUNNING_ON_VALGRIND
#else
#define ROTOR__KERNEL_WROTE(p, n) ((void)(p), (void)(n))
#define ROTOR__ON_VALGRIND()      0
#endif

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

/*
 * An item is anything a worker's run queue or a cross-worker batch carries. `worker` is
 * the index of the worker that must process it.
 */
enum rotor__item_kind {
	ROTOR__ITEM_TASK = 1,     /* start or resume a task */
	ROTOR__ITEM_CALLBACK = 2, /* run a callback */
	ROTOR__ITEM_CANCEL = 3,   /* cancel a task owned by this worker */
	ROTOR__ITEM_STOP = 4,     /* begin stopping */
};

struct rotor__item {
	struct rotor__item *next;
	uint32_t kind;
	uint32_t worker;
};

/* FIFO of items, singly linked. */
struct rotor__queue {
	struct rotor__item *head;
	struct rotor__item **tail;
	size_t len;
};

static inline void rotor__queue_init(struct rotor__queue *q)
{
	q->head = NULL;
	q->tail = &q->head;
	q->len = 0;
}

static inline bool rotor__queue_empty(const struct rotor__queue *q)
{
	return q->head == NULL;
}

static inline void rotor__queue_push(struct rotor__queue *q, struct rotor__item *it)
{
	it->next = NULL;
	*q->tail = it;
	q->tail = &it->next;
	q->len++;
}

static inline struct rotor__item *rotor__queue_pop(struct rotor__queue *q)
{
	struct rotor__item *it = q->head;
	if (it) {
		q->head = it->next;
		if (!q->head)
			q->tail = &q->head;
		q->len--;
	}
	return it;
}

/* Take the whole queue as a NULL-terminated list and leave it empty. */
static inline struct rotor__item *rotor__queue_take(struct rotor__queue *q)
{
	struct rotor__item *head = q->head;
	rotor__queue_init(q);
	return head;
}

/* Put a NULL-terminated list back in front of the queue (a failed post being retried). */
void rotor__queue_prepend(struct rotor__queue *q, struct rotor__item *list);

/* Relaxed counters that other threads may read: a plain increment on x86-64 and aarch64. */
#define ROTOR_STAT_ADD(var, n) __atomic_store_n(&(var), (var) + (n), __ATOMIC_RELAXED)
#define ROTOR_STAT_INC(var)    ROTOR_STAT_ADD(var, 1)
#define ROTOR_STAT_READ(var)   __atomic_load_n(&(var), __ATOMIC_RELAXED)

/*
 * Sanitizer hooks. The kernel orders what crosses a MSG_RING, but TSan cannot see that, so
 * the sender releases and the receiver acquires on the batch head.
 */
#if defined(__SANITIZE_THREAD__)
#define ROTOR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROTOR_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ROTOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROTOR_ASAN 1
#endif
#endif

#ifdef ROTOR_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define ROTOR_TSAN_RELEASE(p) __tsan_release(p)
#define ROTOR_TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define ROTOR_TSAN_RELEASE(p) ((void)0)
#define ROTOR_TSAN_ACQUIRE(p) ((void)0)
#endif

static inline void rotor__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* futex helpers (private futexes, 32-bit words). */
int rotor__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline);
void rotor__futex_wake(_Atomic uint32_t *addr, int n);

#endif
