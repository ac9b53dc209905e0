/*
 * rotor/local.h: task-local values (contextvars) and worker-local objects (one per worker,
 * created on first use), both named by keys from rotor_key_create.
 */
#ifndef ROTOR_PUBLIC_LOCAL_H
#define ROTOR_PUBLIC_LOCAL_H

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Task-local and worker-local storage --------------------------------------------- */

/*
 * Keys name a slot in every task (the seeds' contextvars) and in every worker (the seed-003
 * per-loop shared object). At most ROTOR_KEYS_MAX keys per process; keys are never freed.
 */
#define ROTOR_KEYS_MAX 64

/* rotor_key_create - a new key; destructor (may be NULL) runs on each non-NULL value when
 * its task ends or its worker exits. Returns the key (>= 0) or -EAGAIN (all keys used).
 * Thread: any. */
ROTOR_API int rotor_key_create(void (*destructor)(void *value));
/* rotor_task_set - set the calling task's value for key (the old value is not destroyed).
 * Returns 0, -EINVAL (bad key), -ENOMEM, -EPERM off a task. Thread: task. Suspends: no. */
ROTOR_API int rotor_task_set(int key, void *value);
/* rotor_task_get - the calling task's value for key, NULL if unset, off a task, or a bad
 * key. A new task starts with every value unset. Thread: task. Suspends: no. */
ROTOR_API void *rotor_task_get(int key);
/*
 * rotor_worker_local - the calling worker's object for key, created on first use by
 * create(arg) on that worker (the same object for every task there). *out receives it.
 * Returns 0, -EINVAL (bad key, create NULL), -ENOMEM (create returned NULL), -EPERM off a
 * worker. The key's destructor runs on it when the worker exits. Thread: worker.
 * Suspends: no (create must not suspend).
 */
ROTOR_API int rotor_worker_local(int key, void *(*create)(void *arg), void *arg, void **out);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_LOCAL_H */
