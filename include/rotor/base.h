/*
 * rotor/base.h: what every module of rotor shares. The export macro and the version, the
 * runtime handle and the task body type that several modules pass around, the worker
 * selectors, and time: int64_t nanoseconds on CLOCK_MONOTONIC, deadlines absolute
 * (ROTOR_FOREVER for none), read with rotor_now().
 */
#ifndef ROTOR_PUBLIC_BASE_H
#define ROTOR_PUBLIC_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ROTOR_BUILDING)
#define ROTOR_API __attribute__((visibility("default")))
#else
#define ROTOR_API
#endif

#define ROTOR_VERSION_MAJOR 0
#define ROTOR_VERSION_MINOR 1
#define ROTOR_VERSION_PATCH 0

struct rotor_runtime;

/* A task's body: returns its result, which rotor_join() or a future hands back. */
typedef void *(*rotor_fn)(void *arg);

#define ROTOR_FOREVER INT64_MAX

/* Worker selectors for spawn and submit. */
#define ROTOR_WORKER_SELF (-1) /* the calling worker (internal; rotor_submit refuses it) */
#define ROTOR_WORKER_ANY  (-2) /* the least-loaded worker */

/* rotor_now - CLOCK_MONOTONIC in nanoseconds. Thread: any. Suspends: no. */
ROTOR_API int64_t rotor_now(void);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_BASE_H */
