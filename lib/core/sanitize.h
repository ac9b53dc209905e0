/*
 * What the sanitizers and valgrind must be told that they cannot see: the kernel writing
 * through io_uring (memcheck), and the ordering a MSG_RING gives (TSan). Each costs nothing
 * in a build without that tool.
 */
#ifndef ROTOR__SANITIZE_H
#define ROTOR__SANITIZE_H

/*
 * Valgrind: memcheck cannot see the kernel write through io_uring, so bytes an operation
 * received look uninitialised at their first use, anywhere in the caller's code. The I/O
 * calls say what the kernel wrote (ROTOR__KERNEL_WROTE); RUNNING_ON_VALGRIND picks the
 * ring wait valgrind can run (ring.c). Both cost nothing outside valgrind.
 */
#if defined(__has_include) && !defined(ROTOR_NO_VALGRIND)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define ROTOR__HAVE_VALGRIND_MEMCHECK 1
#endif
#endif
#ifdef ROTOR__HAVE_VALGRIND_MEMCHECK
#define ROTOR__KERNEL_WROTE(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#define ROTOR__ON_VALGRIND()      RUNNING_ON_VALGRIND
#else
#define ROTOR__KERNEL_WROTE(p, n) ((void)(p), (void)(n))
#define ROTOR__ON_VALGRIND()      0
#endif

/*
 * Sanitizer hooks. The kernel orders what crosses a MSG_RING, but TSan cannot see that, so
 * the sender releases and the receiver acquires on the batch head.
 */
#if defined(__SANITIZE_THREAD__)
#define ROTOR__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROTOR__TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ROTOR__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROTOR__ASAN 1
#endif
#endif

#ifdef ROTOR__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define ROTOR__TSAN_RELEASE(p) __tsan_release(p)
#define ROTOR__TSAN_ACQUIRE(p) __tsan_acquire(p)
/* Around a read that races by design (a diagnostic reading type-stable memory that may
 * have been reused: it may print a later object's name, never crash). */
#define ROTOR__TSAN_IGNORE_BEGIN()                                                                 \
	(AnnotateIgnoreReadsBegin(__FILE__, __LINE__),                                             \
	 AnnotateIgnoreWritesBegin(__FILE__, __LINE__))
#define ROTOR__TSAN_IGNORE_END()                                                                   \
	(AnnotateIgnoreWritesEnd(__FILE__, __LINE__), AnnotateIgnoreReadsEnd(__FILE__, __LINE__))
#else
#define ROTOR__TSAN_RELEASE(p)     ((void)0)
#define ROTOR__TSAN_ACQUIRE(p)     ((void)0)
#define ROTOR__TSAN_IGNORE_BEGIN() ((void)0)
#define ROTOR__TSAN_IGNORE_END()   ((void)0)
#endif

#endif
