/*
 * Task-local and worker-local storage. Keys are process-wide slots; a task's values live
 * in an array allocated on its first set and destroyed when it ends (on its worker, before
 * its joiner wakes); a worker's values are created on first use and destroyed when it
 * exits. Only the owning thread touches either array, so no locking.
 */
#include "runtime.h"
#include "task.h"

#include <errno.h>
#include <stdlib.h>

static _Atomic int nkeys;
static void (*_Atomic destructors[ROTOR_KEYS_MAX])(void *);

int rotor_key_create(void (*destructor)(void *value))
{
	int k = atomic_fetch_add(&nkeys, 1);
	if (k >= ROTOR_KEYS_MAX) {
		atomic_fetch_sub(&nkeys, 1);
		return -EAGAIN;
	}
	atomic_store(&destructors[k], destructor);
	return k;
}

static bool key_ok(int key)
{
	return key >= 0 && key < atomic_load_explicit(&nkeys, memory_order_acquire) &&
	       key < ROTOR_KEYS_MAX;
}

int rotor_task_set(int key, void *value)
{
	struct rotor_task *t = rotor_current();
	if (!t)
		return -EPERM;
	if (!key_ok(key))
		return -EINVAL;
	if (!t->locals) {
		if (!value)
			return 0;
		t->locals = rotor__calloc(ROTOR__FAULT_TASK_LOCALS, ROTOR_KEYS_MAX, sizeof(void *));
		if (!t->locals)
			return -ENOMEM;
	}
	t->locals[key] = value;
	return 0;
}

void *rotor_task_get(int key)
{
	struct rotor_task *t = rotor_current();
	if (!t || !t->locals || !key_ok(key))
		return NULL;
	return t->locals[key];
}

static void destroy_values(void **v)
{
	/* A destructor may set values again (pthread keys' rule): a few passes. */
	for (int pass = 0; pass < 4; pass++) {
		bool any = false;
		for (int k = 0; k < ROTOR_KEYS_MAX; k++) {
			void *x = v[k];
			void (*d)(void *) = atomic_load(&destructors[k]);
			if (!x)
				continue;
			v[k] = NULL;
			if (d) {
				d(x);
				any = true;
			}
		}
		if (!any)
			break;
	}
}

void rotor__task_locals_destroy(struct rotor_task *t)
{
	if (!t->locals)
		return;
	destroy_values(t->locals);
	rotor__free(ROTOR__FAULT_TASK_LOCALS, t->locals);
	t->locals = NULL;
}

int rotor_worker_local(int key, void *(*create)(void *arg), void *arg, void **out)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w)
		return -EPERM;
	if (!key_ok(key) || !create || !out)
		return -EINVAL;
	if (!w->locals) {
		w->locals =
		    rotor__calloc(ROTOR__FAULT_WORKER_LOCALS, ROTOR_KEYS_MAX, sizeof(void *));
		if (!w->locals)
			return -ENOMEM;
	}
	if (!w->locals[key]) {
		void *v = create(arg);
		if (!v)
			return -ENOMEM;
		w->locals[key] = v;
	}
	*out = w->locals[key];
	return 0;
}

void rotor__worker_locals_destroy(struct rotor__worker *w)
{
	if (!w->locals)
		return;
	destroy_values(w->locals);
	rotor__free(ROTOR__FAULT_WORKER_LOCALS, w->locals);
	w->locals = NULL;
}
