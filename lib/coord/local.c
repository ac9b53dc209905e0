/*
 * Task-local and worker-local storage. Keys are process-wide slots; a task's values live
 * in an array allocated on its first set and destroyed when it ends (on its worker, before
 * its joiner wakes); a worker's values are created on first use and destroyed when it
 * exits. Only the owning thread touches either array, so no locking.
 */
#include "core.h"

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

/* Values of one task or one worker: the slot's ext, then the array. */
struct locals {
	struct rotor__ext ext;
	enum rotor__fault_site site;
	void *v[ROTOR_KEYS_MAX];
};

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

/* When the task ends (on its worker, before its joiner wakes) or the worker exits. The
 * slot still points here meanwhile, so a destructor that sets a value sets it here. */
static void locals_fini(struct rotor__ext *e)
{
	struct locals *l = rotor__container_of(e, struct locals, ext);
	destroy_values(l->v);
	rotor__free(l->site, l);
}

/* The values hung on slot, made on first use; NULL if they cannot be. */
static struct locals *locals_of(struct rotor__ext **slot, enum rotor__fault_site site)
{
	if (*slot)
		return rotor__container_of(*slot, struct locals, ext);
	struct locals *l = rotor__calloc(site, 1, sizeof(*l));
	if (!l)
		return NULL;
	l->ext.fini = locals_fini;
	l->site = site;
	*slot = &l->ext;
	return l;
}

int rotor_task_set(int key, void *value)
{
	struct rotor_task *t = rotor__task_self();
	if (!t)
		return -EPERM;
	if (!key_ok(key))
		return -EINVAL;
	struct rotor__ext **slot = rotor__task_ext(t);
	if (!*slot && !value)
		return 0;
	struct locals *l = locals_of(slot, ROTOR__FAULT_TASK_LOCALS);
	if (!l)
		return -ENOMEM;
	l->v[key] = value;
	return 0;
}

void *rotor_task_get(int key)
{
	struct rotor_task *t = rotor__task_self();
	if (!t || !key_ok(key))
		return NULL;
	struct rotor__ext *e = *rotor__task_ext(t);
	return e ? rotor__container_of(e, struct locals, ext)->v[key] : NULL;
}

int rotor_worker_local(int key, void *(*create)(void *arg), void *arg, void **out)
{
	struct rotor__worker *w = rotor__worker_self();
	if (!w)
		return -EPERM;
	if (!key_ok(key) || !create || !out)
		return -EINVAL;
	struct locals *l =
	    locals_of(rotor__worker_ext(w, ROTOR__EXT_LOCALS), ROTOR__FAULT_WORKER_LOCALS);
	if (!l)
		return -ENOMEM;
	if (!l->v[key]) {
		void *v = create(arg);
		if (!v)
			return -ENOMEM;
		l->v[key] = v;
	}
	*out = l->v[key];
	return 0;
}
