/*
 * Sessions (include/rotor/session.h): per-worker objects with a lifecycle that can do I/O.
 * Each worker keeps a table (a worker-local object) of the sessions it has used: per session,
 * the current object with its count of holders, the objects replaced but still held, and the
 * state of an opening in progress (the tasks that wait for it sleep on an event). A keeper
 * task per worker, started with the table, closes replaced objects once their last holder
 * puts them back; the runtime's stop or drain cancels it, and then, shielded, it waits for
 * the holders (up to close_ns) and closes every object of its worker in a task, before the
 * worker can exit. Only the owning worker touches its table: no locks; a session's count of
 * tables that refer to it is the one atomic, read by rotor_session_destroy.
 */
#include "core.h"

#include <rotor.h>
#include <rotor/session.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define DEFAULT_CLOSE_NS (5 * 1000000000LL)

struct rotor_session {
	struct rotor_session_ops ops;
	void *arg;
	atomic_int tables; /* worker tables that have an entry for it */
};

/* An object and its holders. */
struct held {
	struct held *next;
	void *obj;
	int holds;
};

/* One session on one worker. */
struct entry {
	struct entry *next;
	struct rotor_session *s;
	struct held *cur;     /* NULL: not open */
	struct held *retired; /* replaced, closed once nobody holds them */
	bool opening;
	uint64_t attempts; /* openings finished, for the tasks that wait for one */
	int err;           /* the last opening's error */
	struct rotor_event done;
};

/* The worker's sessions. */
struct table {
	struct entry *list;
	bool closing;            /* the stop began: no more objects */
	struct rotor_event wake; /* the keeper: an object to close, or holders gone */
};

static int table_key = -1;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void held_free_list(struct held *h)
{
	while (h) {
		struct held *n = h->next;
		free(h);
		h = n;
	}
}

/* At the worker's exit, every task ended: the keeper closed what it could. */
static void table_free(void *v)
{
	struct table *t = v;
	while (t->list) {
		struct entry *e = t->list;
		t->list = e->next;
		free(e->cur);
		held_free_list(e->retired);
		atomic_fetch_sub(&e->s->tables, 1);
		free(e);
	}
	free(t);
}

static void table_key_make(void)
{
	table_key = rotor_key_create(table_free);
}

static int64_t close_ns(const struct rotor_session *s)
{
	return s->ops.close_ns > 0 ? s->ops.close_ns : DEFAULT_CLOSE_NS;
}

/* Close obj on this task, shielded for the session's close_ns. */
static void close_obj(struct rotor_session *s, void *obj)
{
	if (!s->ops.close)
		return;
	rotor_shield_begin(rotor_now() + close_ns(s));
	s->ops.close(s->arg, obj);
	rotor_shield_end();
}

/* Close the replaced objects nobody holds; whether any is still held. */
static bool close_retired(struct table *t)
{
	bool held = false;
	for (struct entry *e = t->list; e; e = e->next) {
		struct held **p = &e->retired;
		while (*p) {
			struct held *h = *p;
			if (h->holds > 0) {
				held = true;
				p = &h->next;
				continue;
			}
			*p = h->next;
			close_obj(e->s, h->obj);
			free(h);
		}
	}
	return held;
}

static bool any_held(const struct table *t)
{
	for (const struct entry *e = t->list; e; e = e->next) {
		if (e->cur && e->cur->holds > 0)
			return true;
		for (const struct held *h = e->retired; h; h = h->next)
			if (h->holds > 0)
				return true;
	}
	return false;
}

static void *keeper_main(void *arg)
{
	struct table *t = arg;
	for (;;) {
		rotor_event_clear(&t->wake);
		close_retired(t);
		if (rotor_event_wait(&t->wake) < 0)
			break; /* cancelled: the runtime stops or drains */
	}
	t->closing = true;
	/* The holders first (a drain's shielded tasks finishing their requests), for the
	 * longest close_ns of this worker's sessions. */
	int64_t wait = 0;
	for (struct entry *e = t->list; e; e = e->next)
		if (close_ns(e->s) > wait)
			wait = close_ns(e->s);
	int64_t end = rotor_now() + wait;
	rotor_shield_begin(end);
	while (any_held(t) && rotor_now() < end) {
		rotor_event_clear(&t->wake);
		if (rotor_event_wait_until(&t->wake, end) == -ECANCELED)
			break;
	}
	rotor_shield_end();
	for (struct entry *e = t->list; e; e = e->next) {
		while (e->retired) {
			struct held *h = e->retired;
			e->retired = h->next;
			close_obj(e->s, h->obj);
			free(h);
		}
		if (e->cur) {
			struct held *h = e->cur;
			e->cur = NULL;
			close_obj(e->s, h->obj);
			free(h);
		}
	}
	return NULL;
}

/* A stop that cancels the keeper before it ever ran: nobody will close what opens from now
 * on, so refuse it (an object opened already stays open: the gap the architecture notes). */
static void keeper_discarded(void *arg)
{
	struct table *t = arg;
	t->closing = true;
}

static void *table_new(void *arg)
{
	(void)arg;
	struct table *t = calloc(1, sizeof(*t));
	if (t)
		rotor_event_init(&t->wake);
	return t;
}

/* The calling worker's table (its keeper starts with its first entry, entry_get). */
static int table_get(struct table **out)
{
	pthread_once(&table_once, table_key_make);
	if (table_key < 0)
		return -ENOMEM;
	struct table *t;
	int err = rotor_worker_local(table_key, table_new, NULL, (void **)&t);
	if (err < 0)
		return err;
	*out = t;
	return 0;
}

static struct entry *entry_find(struct table *t, const struct rotor_session *s)
{
	for (struct entry *e = t->list; e; e = e->next)
		if (e->s == s)
			return e;
	return NULL;
}

/* The entry of s on this worker, made (and the keeper started, for the first) if need be. */
static int entry_get(struct table *t, struct rotor_session *s, struct entry **out)
{
	struct entry *e = entry_find(t, s);
	if (e) {
		*out = e;
		return 0;
	}
	if (!t->list) {
		struct rotor_task_attr ka = {.name = "session keeper", .discard = keeper_discarded};
		int err = rotor_spawn_attr(&ka, keeper_main, t, NULL);
		if (err < 0)
			return err;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->s = s;
	rotor_event_init(&e->done);
	e->next = t->list;
	t->list = e;
	atomic_fetch_add(&s->tables, 1);
	*out = e;
	return 0;
}

int rotor_session_create(const struct rotor_session_ops *ops, void *arg, struct rotor_session **out)
{
	if (!ops || !ops->open || !out || ops->close_ns < 0)
		return -EINVAL;
	struct rotor_session *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ops = *ops;
	s->arg = arg;
	*out = s;
	return 0;
}

int rotor_session_destroy(struct rotor_session *s)
{
	if (!s)
		return -EINVAL;
	if (atomic_load(&s->tables) > 0)
		return -EBUSY;
	free(s);
	return 0;
}

/* Open e's object in the calling task. */
static int open_obj(struct table *t, struct entry *e, int64_t deadline, void **obj)
{
	struct rotor_session *s = e->s;
	e->opening = true;
	rotor_event_clear(&e->done);
	void *o = NULL;
	int err = s->ops.open(s->arg, deadline, &o);
	struct held *h = NULL;
	if (!err && (t->closing || !(h = malloc(sizeof(*h))))) {
		/* The stop began meanwhile (or no memory): nobody would close it later. */
		err = t->closing ? -ESHUTDOWN : -ENOMEM;
		close_obj(s, o);
	}
	if (!err) {
		*h = (struct held){.obj = o, .holds = 1};
		e->cur = h;
		*obj = o;
	}
	e->err = err;
	e->opening = false;
	e->attempts++;
	rotor_event_set(&e->done);
	return err;
}

int rotor_session_get(struct rotor_session *s, int64_t deadline, void **obj)
{
	if (!s || !obj)
		return -EINVAL;
	if (!rotor__task_self())
		return -EPERM;
	struct table *t;
	struct entry *e;
	int err = table_get(&t);
	if (err < 0)
		return err;
	if (t->closing)
		return -ESHUTDOWN;
	if ((err = entry_get(t, s, &e)) < 0)
		return err;
	if (e->opening) {
		uint64_t seen = e->attempts;
		while (e->attempts == seen)
			if ((err = rotor_event_wait_until(&e->done, deadline)) < 0)
				return err;
		if (!e->cur)
			return e->err < 0 ? e->err : -ESHUTDOWN;
	}
	if (e->cur) {
		e->cur->holds++;
		*obj = e->cur->obj;
		return 0;
	}
	if (t->closing)
		return -ESHUTDOWN;
	return open_obj(t, e, deadline, obj);
}

/* The held record of obj in e (current or retired), or NULL. */
static struct held *held_of(struct entry *e, void *obj, bool *retired)
{
	*retired = false;
	if (e->cur && e->cur->obj == obj)
		return e->cur;
	*retired = true;
	for (struct held *h = e->retired; h; h = h->next)
		if (h->obj == obj)
			return h;
	return NULL;
}

static int give_back(struct rotor_session *s, void *obj, bool replace)
{
	if (!s)
		return -EINVAL;
	if (!rotor__worker_self())
		return -EPERM;
	struct table *t;
	int err = table_get(&t);
	if (err < 0)
		return err;
	struct entry *e = entry_find(t, s);
	bool retired;
	struct held *h = e ? held_of(e, obj, &retired) : NULL;
	if (!h || h->holds < 1)
		return -EINVAL;
	h->holds--;
	if (replace && !retired) {
		e->cur = NULL;
		h->next = e->retired;
		e->retired = h;
		retired = true;
	}
	if (h->holds == 0 && (retired || t->closing))
		rotor_event_set(&t->wake);
	return 0;
}

int rotor_session_put(struct rotor_session *s, void *obj)
{
	return give_back(s, obj, false);
}

int rotor_session_replace(struct rotor_session *s, void *obj)
{
	return give_back(s, obj, true);
}
