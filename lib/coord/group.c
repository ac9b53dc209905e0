/*
 * Task groups: an array of the handles of the tasks spawned into a group, owned by one
 * worker (its tasks use it without locks). Waiting joins whichever task ends first
 * (rotor_wait_any); the first failure cancels the rest. Built on the public task calls and a
 * shield, so that a cancelled waiter still waits for the tasks it cancels.
 */
#include "core.h"

#include <errno.h>
#include <string.h>

struct rotor_group {
	struct rotor_task **tasks; /* handles of the tasks not yet joined */
	size_t n, cap;
	int worker;
	int first_err; /* the first failure, or 0 */
	bool cancelled;
};

/* The group, if the caller may use it: else NULL with *err set. */
static struct rotor_group *owned(struct rotor_group *g, int *err)
{
	struct rotor__worker *w = rotor__worker_self();
	*err = !g                                 ? -EINVAL
	       : !w || !rotor__task_self()        ? -EPERM
	       : rotor__worker_id(w) != g->worker ? -EPERM
	                                          : 0;
	return *err ? NULL : g;
}

int rotor_group_create(struct rotor_group **out)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w || !rotor__task_self())
		return -EPERM;
	if (!out)
		return -EINVAL;
	struct rotor_group *g = rotor__calloc(ROTOR__FAULT_GROUP, 1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->worker = rotor__worker_id(w);
	*out = g;
	return 0;
}

int rotor_group_spawn(struct rotor_group *g, const struct rotor_task_attr *attr, rotor_fn fn,
                      void *arg)
{
	int err;
	if (!owned(g, &err))
		return err;
	if (g->cancelled)
		return -ECANCELED;
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 8;
		struct rotor_task **t = rotor__malloc(ROTOR__FAULT_GROUP_TASKS, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		if (g->n)
			memcpy(t, g->tasks, g->n * sizeof(*t));
		rotor__free(ROTOR__FAULT_GROUP_TASKS, g->tasks);
		g->tasks = t;
		g->cap = cap;
	}
	int r = rotor_spawn_attr(attr, fn, arg, &g->tasks[g->n]);
	if (r == 0)
		g->n++;
	return r;
}

static void cancel_all(struct rotor_group *g)
{
	g->cancelled = true;
	for (size_t i = 0; i < g->n; i++)
		rotor_cancel(g->tasks[i]);
}

int rotor_group_cancel(struct rotor_group *g)
{
	int err;
	if (!owned(g, &err))
		return err;
	cancel_all(g);
	return 0;
}

/* Join the task at i, which has ended, and drop it from the array. */
static void reap(struct rotor_group *g, size_t i)
{
	int r = rotor_join(g->tasks[i], NULL);
	g->tasks[i] = g->tasks[--g->n];
	if (r < 0 && r != -ECANCELED && !g->first_err) {
		g->first_err = r;
		cancel_all(g);
	}
}

/* Wait for every task, each already cancelled, as a shielded wait bounded by the runtime's
 * stop_report_ms: 0, or -ETIMEDOUT with the tasks that outlived it still in the array. */
static int drain(struct rotor_group *g)
{
	const struct rotor_config *cfg =
	    rotor__runtime_config(rotor__worker_runtime(rotor__worker_self()));
	int64_t until = rotor_now() + (int64_t)cfg->stop_report_ms * 1000000;
	rotor_shield_begin(until);
	int r = 0;
	while (g->n) {
		int i = rotor_wait_any(g->tasks, g->n, until);
		if (i < 0) {
			r = -ETIMEDOUT;
			break;
		}
		reap(g, (size_t)i);
	}
	rotor_shield_end();
	return r;
}

int rotor_group_wait(struct rotor_group *g, int64_t deadline)
{
	int err;
	if (!owned(g, &err))
		return err;
	while (g->n) {
		int i = rotor_wait_any(g->tasks, g->n, deadline);
		if (i == -ECANCELED) {
			/* The waiter was cancelled: so are its tasks, and it waits for them. */
			cancel_all(g);
			drain(g);
			return -ECANCELED;
		}
		if (i < 0)
			return i;
		reap(g, (size_t)i);
	}
	return g->first_err ? g->first_err : g->cancelled ? -ECANCELED : 0;
}

int rotor_group_destroy(struct rotor_group *g)
{
	int err;
	if (!owned(g, &err))
		return err;
	int r = 0;
	if (g->n) {
		cancel_all(g);
		r = drain(g);
		for (size_t i = 0; i < g->n; i++)
			rotor_detach(g->tasks[i]); /* cancelled; they end on their own */
	}
	rotor__free(ROTOR__FAULT_GROUP_TASKS, g->tasks);
	rotor__free(ROTOR__FAULT_GROUP, g);
	return r;
}
