/*
 * rotor/group.h: task groups, structured concurrency (asyncio's TaskGroup, Trio's nursery).
 * A group owns the tasks spawned into it: waiting on it joins them all, the first failure or
 * a cancel of the group cancels the rest, and nothing it spawned outlives it.
 */
#ifndef ROTOR_PUBLIC_GROUP_H
#define ROTOR_PUBLIC_GROUP_H

#include <rotor/base.h>
#include <rotor/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Task groups --------------------------------------------------------------------- */

struct rotor_group;

/*
 * rotor_group_create - an empty group, owned by the calling task's worker (only tasks of
 * that worker may use it). Returns 0 with *out set, -EINVAL (out NULL), -ENOMEM, -EPERM off
 * a task. Thread: task. Suspends: no.
 */
ROTOR_API int rotor_group_create(struct rotor_group **out);

/*
 * rotor_group_spawn - rotor_spawn_attr() into group g (attr may be NULL); the group holds the
 * handle. Returns 0; -ECANCELED once the group has been cancelled (by a failure or
 * rotor_group_cancel); -EPERM off the group's worker; or rotor_spawn_attr's errors.
 * Thread: task. Suspends: no.
 */
ROTOR_API int rotor_group_spawn(struct rotor_group *g, const struct rotor_task_attr *attr,
                                rotor_fn fn, void *arg);

/*
 * rotor_group_cancel - cancel every task of g, and refuse new ones. Returns 0, -EINVAL (g
 * NULL), -EPERM off the group's worker. Thread: task. Suspends: no.
 */
ROTOR_API int rotor_group_cancel(struct rotor_group *g);

/*
 * rotor_group_wait - join every task of g. The first task that fails (ends with a negative
 * errno other than -ECANCELED: rotor_task_fail, no stack) cancels the others. Returns 0 when
 * all ended well; that first failure; -ECANCELED if the group was cancelled; -ETIMEDOUT at
 * the absolute deadline (the tasks go on, the group keeps them: wait again). If the waiting
 * task is itself cancelled, the group's tasks are cancelled and waited for (under a shield
 * bounded by the runtime's stop_report_ms), and the call returns -ECANCELED.
 * Also -EINVAL (g NULL), -EPERM off the group's worker. Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_group_wait(struct rotor_group *g, int64_t deadline);

/*
 * rotor_group_destroy - cancel the tasks of g still running, wait for them (as above), and
 * free g. Returns 0; -ETIMEDOUT if some did not end within the runtime's stop_report_ms
 * (they are detached, cancelled, and g is freed all the same); -EINVAL (g NULL); -EPERM off
 * the group's worker (g is not freed). Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_group_destroy(struct rotor_group *g);

#ifdef __cplusplus
}
#endif

#endif
