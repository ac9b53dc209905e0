/*
 * The HTTP client's connection pools (http_pool.h). Each worker keeps, in a worker-local
 * object, one pool per client it has served, and in it one origin per scheme, host and port;
 * everything here belongs to that worker, so nothing is locked. An origin's semaphore holds
 * max_per_origin slots: a request takes one before it takes or opens a connection and gives
 * it back with the connection, so waiters queue in FIFO order at the cap. Idle connections
 * sit newest first; a reaper task per pool sleeps until the oldest one's timeout, closes what
 * has expired, and ends when nothing is idle (or closes everything when the runtime stops).
 */
#include "http_pool.h"

#include <rotor/local.h>
#include <rotor/offload.h>
#include <rotor/stream.h>
#include <rotor/sync.h>
#include <rotor/task.h>
#include <rotor/tls.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MIN_INPUT (64 * 1024)

struct rotor__http_origin {
	struct rotor__http_origin *next;
	struct pool *pool;
	int https;
	int port;
	char host[256];
	struct rotor_sem slots;
	struct rotor__http_conn *idle; /* newest first */
	unsigned nidle;
	unsigned nbusy;
};

struct pool {
	struct pool *next;
	struct rotor_http_client *c; /* a hold on it */
	struct rotor__http_origin *origins;
	bool reaping;   /* a reaper task runs */
	unsigned holds; /* tasks in a call that may suspend while using the pool */
	struct rotor_http_client_stats st;
};

struct worker_pools {
	struct pool *pools;
};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key = -1;

static void close_conn(struct rotor__http_conn *k)
{
	if (k->s)
		rotor_stream_destroy(k->s);
	if (k->fd >= 0)
		close(k->fd);
	free(k);
}

static void free_pool(struct pool *p)
{
	struct rotor__http_origin *o = p->origins;
	while (o) {
		struct rotor__http_origin *n = o->next;
		free(o);
		o = n;
	}
	rotor__http_client_unref(p->c);
	free(p);
}

/* At the worker's exit no task runs: idle connections left (none while a reaper could close
 * them) are closed without their stream, which cannot be destroyed off a task. */
static void worker_pools_free(void *v)
{
	struct worker_pools *wp = v;
	struct pool *p = wp->pools;
	while (p) {
		struct pool *n = p->next;
		for (struct rotor__http_origin *o = p->origins; o; o = o->next)
			while (o->idle) {
				struct rotor__http_conn *k = o->idle;
				o->idle = k->next;
				close(k->fd);
				free(k);
			}
		free_pool(p);
		p = n;
	}
	free(wp);
}

static void make_key(void)
{
	key = rotor_key_create(worker_pools_free);
}

static void *worker_pools_create(void *arg)
{
	(void)arg;
	return calloc(1, sizeof(struct worker_pools));
}

static struct worker_pools *worker_pools(void)
{
	pthread_once(&key_once, make_key);
	void *v = NULL;
	if (key < 0 || rotor_worker_local(key, worker_pools_create, NULL, &v) != 0)
		return NULL;
	return v;
}

/* c's pool on this worker; create: made if there is none. */
static struct pool *pool_of(struct rotor_http_client *c, bool create)
{
	struct worker_pools *wp = worker_pools();
	if (!wp)
		return NULL;
	for (struct pool *p = wp->pools; p; p = p->next)
		if (p->c == c)
			return p;
	if (!create)
		return NULL;
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->c = c;
	atomic_fetch_add(&c->refs, 1);
	p->next = wp->pools;
	wp->pools = p;
	return p;
}

/* Free p once its client is gone and it holds no connection and runs no reaper. */
static void pool_maybe_free(struct pool *p)
{
	if (!atomic_load(&p->c->dead) || p->reaping || p->holds)
		return;
	for (struct rotor__http_origin *o = p->origins; o; o = o->next)
		if (o->nidle || o->nbusy)
			return;
	struct worker_pools *wp = worker_pools();
	if (!wp)
		return;
	for (struct pool **pp = &wp->pools; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	free_pool(p);
}

/* Close p's idle connections idle since before cutoff (INT64_MAX: all); returns the
 * earliest idle_since among those left, or INT64_MAX. They leave the lists before the first
 * is closed, since closing suspends and other tasks use the lists meanwhile. */
static int64_t close_idle(struct pool *p, int64_t cutoff)
{
	int64_t oldest = INT64_MAX;
	struct rotor__http_conn *doomed = NULL;
	for (struct rotor__http_origin *o = p->origins; o; o = o->next) {
		struct rotor__http_conn **kp = &o->idle;
		while (*kp) {
			struct rotor__http_conn *k = *kp;
			if (k->idle_since < cutoff || cutoff == INT64_MAX) {
				*kp = k->next;
				o->nidle--;
				p->st.idle--;
				k->next = doomed;
				doomed = k;
			} else {
				if (k->idle_since < oldest)
					oldest = k->idle_since;
				kp = &k->next;
			}
		}
	}
	p->holds++;
	while (doomed) {
		struct rotor__http_conn *k = doomed;
		doomed = k->next;
		close_conn(k);
	}
	p->holds--;
	return oldest;
}

static void *reaper(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		bool dead = atomic_load(&p->c->dead);
		int64_t oldest = close_idle(p, dead ? INT64_MAX : rotor_now() - p->c->idle_timeout);
		if (oldest == INT64_MAX)
			break;
		if (rotor_sleep_until(oldest + p->c->idle_timeout) == -ECANCELED) {
			close_idle(p, INT64_MAX);
			break;
		}
	}
	p->reaping = false;
	pool_maybe_free(p);
	return NULL;
}

static void reaper_discard(void *arg)
{
	struct pool *p = arg;
	p->reaping = false;
}

static struct rotor__http_origin *origin_of(struct pool *p, const struct rotor_http_url *u)
{
	for (struct rotor__http_origin *o = p->origins; o; o = o->next)
		if (o->https == u->https && o->port == u->port && !strcasecmp(o->host, u->host))
			return o;
	struct rotor__http_origin *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->pool = p;
	o->https = u->https;
	o->port = u->port;
	memcpy(o->host, u->host, sizeof(o->host));
	rotor_sem_init(&o->slots, p->c->max_per_origin);
	o->next = p->origins;
	p->origins = o;
	return o;
}

#ifdef ROTOR_HAVE_TLS
struct make_tls {
	const char *ca_file;
	struct rotor_tls_ctx *ctx;
	int err;
};

static void *make_tls(void *arg)
{
	struct make_tls *m = arg;
	struct rotor_tls_config t = {.role = ROTOR_TLS_CLIENT, .ca_file = m->ca_file};
	m->err = rotor_tls_ctx_create(&t, &m->ctx);
	return NULL;
}

/* c's TLS context, made now if it is the client's own and this is its first use. */
static int tls_of(struct rotor_http_client *c, struct rotor_tls_ctx **out)
{
	struct rotor_tls_ctx *x = atomic_load(&c->tls);
	if (!x) {
		int err = rotor_mutex_lock_until(&c->tls_lock, ROTOR_FOREVER);
		if (err < 0)
			return err;
		x = atomic_load(&c->tls);
		if (!x) {
			struct make_tls m = {.ca_file = c->ca_file};
			err = rotor_offload(make_tls, &m, NULL);
			if (err == 0)
				err = m.err;
			if (err == 0)
				atomic_store(&c->tls, x = m.ctx);
			else if (m.ctx)
				rotor_tls_ctx_destroy(m.ctx);
		}
		rotor_mutex_unlock(&c->tls_lock);
		if (err < 0)
			return err;
	}
	*out = x;
	return 0;
}
#endif

static int dial(struct rotor__http_origin *o, int64_t deadline, struct rotor__http_conn **out)
{
	struct rotor_http_client *c = o->pool->c;
	struct rotor__http_conn *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->origin = o;
	k->fd = rotor_tcp_dial(o->host, o->port, deadline);
	if (k->fd < 0) {
		int err = k->fd;
		free(k);
		return err;
	}
	struct rotor_stream_config cfg = {.max_input = c->max_head > MIN_INPUT ? c->max_head + 4096
	                                                                       : MIN_INPUT};
	int err;
	if (o->https) {
#ifdef ROTOR_HAVE_TLS
		struct rotor_tls_ctx *x = NULL;
		err = tls_of(c, &x);
		if (err == 0)
			err = rotor_tls_connect(k->fd, x, o->host, &cfg, deadline, &k->s);
#else
		err = -EPROTONOSUPPORT;
#endif
	} else {
		err = rotor_stream_create(k->fd, &cfg, &k->s);
	}
	if (err < 0) {
		close_conn(k);
		return err;
	}
	o->pool->st.connects++;
	*out = k;
	return 0;
}

/* Whether idle connection k may carry a request: not expired, and nothing received while it
 * sat idle (a byte would be garbage, an end or an error says the server let it go). */
static bool usable(struct rotor__http_conn *k, int64_t now, int64_t timeout)
{
	if (now - k->idle_since >= timeout)
		return false;
	const void *d;
	return rotor_stream_peek(k->s, 0, &d, 0) == 0;
}

int rotor__http_conn_get(struct rotor_http_client *c, const struct rotor_http_url *u, bool fresh,
                         int64_t deadline, struct rotor__http_conn **out)
{
	struct pool *p = pool_of(c, true);
	if (!p)
		return -ENOMEM;
	struct rotor__http_origin *o = origin_of(p, u);
	if (!o)
		return -ENOMEM;
	p->holds++;
	int err = rotor_sem_acquire_until(&o->slots, deadline);
	if (err < 0)
		goto out;
	int64_t now = rotor_now();
	while (o->idle && !fresh) {
		struct rotor__http_conn *k = o->idle;
		o->idle = k->next;
		o->nidle--;
		p->st.idle--;
		k->next = NULL;
		if (!usable(k, now, c->idle_timeout)) {
			close_conn(k);
			continue;
		}
		k->reused = true;
		o->nbusy++;
		p->st.busy++;
		*out = k;
		goto out;
	}
	err = dial(o, deadline, out);
	if (err < 0) {
		rotor_sem_release(&o->slots);
		goto out;
	}
	o->nbusy++;
	p->st.busy++;
out:
	p->holds--;
	pool_maybe_free(p);
	return err;
}

void rotor__http_conn_put(struct rotor__http_conn *k, bool reusable)
{
	struct rotor__http_origin *o = k->origin;
	struct pool *p = o->pool;
	o->nbusy--;
	p->st.busy--;
	if (reusable && p->c->idle_timeout >= 0 && !atomic_load(&p->c->dead) && !p->reaping) {
		struct rotor_task_attr a = {.name = "http-reaper", .discard = reaper_discard};
		p->reaping = rotor_spawn_attr(&a, reaper, p, NULL) == 0;
		reusable = p->reaping; /* no reaper to close it later: do not keep it */
	}
	if (reusable && p->c->idle_timeout >= 0 && !atomic_load(&p->c->dead)) {
		k->idle_since = rotor_now();
		k->reused = false;
		k->next = o->idle;
		o->idle = k;
		o->nidle++;
		p->st.idle++;
	} else {
		p->holds++;
		close_conn(k);
		p->holds--;
	}
	rotor_sem_release(&o->slots);
	pool_maybe_free(p);
}

void rotor__http_count(struct rotor__http_conn *k, int which)
{
	struct rotor_http_client_stats *st = &k->origin->pool->st;
	if (which == ROTOR__HTTP_REQUESTS)
		st->requests++;
	else if (which == ROTOR__HTTP_REUSED)
		st->reused++;
	else
		st->retries++;
}

void rotor__http_pool_close(struct rotor_http_client *c)
{
	struct pool *p = pool_of(c, false);
	if (!p)
		return;
	close_idle(p, INT64_MAX);
	pool_maybe_free(p);
}

int rotor_http_client_stats(struct rotor_http_client *c, struct rotor_http_client_stats *out)
{
	if (!c || !out)
		return -EINVAL;
	if (!rotor_current())
		return -EPERM;
	struct pool *p = pool_of(c, false);
	if (p)
		*out = p->st;
	else
		memset(out, 0, sizeof(*out));
	return 0;
}

void rotor__http_client_unref(struct rotor_http_client *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
#ifdef ROTOR_HAVE_TLS
	struct rotor_tls_ctx *x = atomic_load(&c->tls);
	if (c->own_tls && x)
		rotor_tls_ctx_destroy(x);
#endif
	free(c->ca_file);
	free(c);
}
