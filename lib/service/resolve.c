/*
 * Name resolution (include/rotor/resolve.h) beyond what hosts.c answers. Owns each worker's
 * resolver: the cache of names and the tasks waiting for one, and its c-ares channel, made on first
 * use, whose sockets one-shot poll SQEs on the worker's ring watch and whose timeouts one
 * call_later serves. Invariants: an entry with a query outstanding (PENDING) is never evicted nor
 * freed but by the query's end (complete); a waiter is on its entry's list exactly while its task
 * has not been given a result; a socket record is freed only when no poll of it is in the kernel,
 * or at the worker's exit, when the ring goes with it and nothing more is reaped.
 */
#include "core.h"
#include "resolve.h"

#include <rotor/local.h>
#include <rotor/offload.h>
#include <rotor/task.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef ROTOR_HAVE_CARES
#include <ares.h>
#endif

#define SEC_NS       (1000 * 1000 * 1000LL)
#define CACHE_MAX    1024 /* names a worker keeps (entries with a query outstanding aside) */
#define BUCKETS      4096 /* a power of two */
#define TTL_MAX_NS   (300 * SEC_NS)
#define TTL_HOSTS_NS (5 * SEC_NS) /* an /etc/hosts answer: an edit shows within this */
#define TTL_NEG_NS   (5 * SEC_NS) /* NXDOMAIN, NODATA */
#define ADDRS_MAX    32           /* addresses kept per name */
#define HOSTS_CHECK  (1 * SEC_NS) /* how often a worker looks whether the file changed */
#define INFLIGHT_MAX 256          /* queries a worker has outstanding; more wait their turn */
#define RCVBUF       (1 << 20)

/* ---- the worker's resolver and its cache ------------------------------------------------- */

enum { PENDING, POSITIVE, NEGATIVE };

struct waiter;

/* A name (and family) the worker knows or is asking about. */
struct entry {
	struct entry *hnext;       /* its bucket's chain */
	struct entry *prev, *next; /* the LRU list, most recent first */
	struct resolver *r;
	struct waiter *waiters;   /* PENDING: the tasks that want it */
	struct entry *qnext;      /* PENDING, not asked yet: the queue */
	struct rotor_addr *addrs; /* POSITIVE: naddrs addresses, port 0 */
	unsigned naddrs;
	uint32_t hash;
	int family;
	int state;
	int err;     /* NEGATIVE: what to answer */
	bool cached; /* in the table (else: freed when its query ends) */
	int64_t expires;
	char name[];
};

/* A task waiting for an entry, on the task's stack. */
struct waiter {
	struct waiter *next, **pprev; /* pprev NULL: off the list, res set */
	struct rotor_task *task;
	struct entry *e;
	struct rotor_addr *out;
	size_t cap;
	int port;
	int res;
	bool waiting; /* the task is suspended (else it is the one starting the query) */
};

#ifdef ROTOR_HAVE_CARES
struct sock;
#endif

struct resolver {
	struct rotor__worker *w;
	struct entry lru; /* sentinel of the LRU list */
	unsigned count;   /* entries in the table */
	struct rotor__hosts hosts;
#ifdef ROTOR_HAVE_CARES
	ares_channel ch;
	bool ch_made;
	bool closing;     /* the worker is exiting: the channel is being destroyed */
	int64_t timer_at; /* the one call_later for c-ares' timeouts is pending */
	struct sock *socks;
	unsigned inflight;                 /* queries c-ares has (at most INFLIGHT_MAX) */
	struct entry *queue, **queue_tail; /* the ones waiting for room, in order */
	bool pumping;
#endif
	struct entry *buckets[BUCKETS];
};

static uint32_t name_hash(const char *s, int family)
{
	uint32_t h = 2166136261u ^ (uint32_t)family;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void lru_unlink(struct entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_front(struct resolver *r, struct entry *e)
{
	e->next = r->lru.next;
	e->prev = &r->lru;
	r->lru.next->prev = e;
	r->lru.next = e;
}

static struct entry *cache_find(struct resolver *r, const char *name, int family, uint32_t h)
{
	for (struct entry *e = r->buckets[h & (BUCKETS - 1)]; e; e = e->hnext)
		if (e->hash == h && e->family == family && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static void cache_insert(struct resolver *r, struct entry *e)
{
	struct entry **b = &r->buckets[e->hash & (BUCKETS - 1)];
	e->hnext = *b;
	*b = e;
	lru_front(r, e);
	e->cached = true;
	r->count++;
}

static void cache_remove(struct resolver *r, struct entry *e)
{
	struct entry **p = &r->buckets[e->hash & (BUCKETS - 1)];
	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	lru_unlink(e);
	e->cached = false;
	r->count--;
}

static void entry_free(struct entry *e)
{
	free(e->addrs);
	free(e);
}

/* Over the bound: drop the least recently used names (a bounded look, skipping the ones
 * being asked about, which cannot go). */
static void cache_trim(struct resolver *r)
{
	struct entry *e = r->lru.prev;
	for (int look = 0; r->count > CACHE_MAX && e != &r->lru && look < 64; look++) {
		struct entry *prev = e->prev;
		if (e->state != PENDING) {
			cache_remove(r, e);
			entry_free(e);
		}
		e = prev;
	}
}

static struct entry *entry_new(struct resolver *r, const char *name, int family, uint32_t h)
{
	size_t n = strlen(name) + 1;
	struct entry *e = calloc(1, sizeof(*e) + n);
	if (!e)
		return NULL;
	memcpy(e->name, name, n);
	e->r = r;
	e->hash = h;
	e->family = family;
	e->state = PENDING;
	return e;
}

/* Answer from e (known) into out: the count, or its error. */
static int entry_answer(const struct entry *e, int port, struct rotor_addr *out, size_t cap)
{
	if (e->state == NEGATIVE)
		return e->err;
	size_t n = e->naddrs < cap ? e->naddrs : cap;
	for (size_t i = 0; i < n; i++) {
		out[i] = e->addrs[i];
		rotor__addr_port(&out[i], port);
	}
	return (int)n;
}

static void waiter_unlink(struct waiter *wt)
{
	if (wt->next)
		wt->next->pprev = wt->pprev;
	*wt->pprev = wt->next;
	wt->pprev = NULL;
}

/*
 * The query for e ended: err 0 with e->addrs set (ttl_ns how long they hold), or an errno.
 * Every waiter gets its answer (a suspended task is woken with it as its wait's result);
 * then e stays as a cache entry, or goes: a temporary failure is not remembered.
 */
static void complete(struct resolver *r, struct entry *e, int err, int64_t ttl_ns)
{
	int64_t now = rotor_now();
	if (!err && e->naddrs == 0)
		err = -ENOENT;
	e->err = err;
	e->state = err ? NEGATIVE : POSITIVE;
	if (err == -ENOENT)
		ttl_ns = TTL_NEG_NS;
	e->expires = now + (ttl_ns < TTL_MAX_NS ? ttl_ns : TTL_MAX_NS);
	while (e->waiters) {
		struct waiter *wt = e->waiters;
		waiter_unlink(wt);
		wt->res = entry_answer(e, wt->port, wt->out, wt->cap);
		if (wt->waiting)
			rotor__task_end_wait(r->w, wt->task, wt->res);
	}
	bool keep = e->cached && (err == 0 || err == -ENOENT) && ttl_ns > 0;
	if (e->cached && !keep)
		cache_remove(r, e);
	if (!keep)
		entry_free(e);
	else
		cache_trim(r);
}

/* Keep the answer a query had no need of (/etc/hosts): n addresses, or -ENOENT. */
static void remember(struct resolver *r, const char *name, int family, uint32_t h,
                     const struct rotor_addr *a, int n)
{
	struct entry *e = entry_new(r, name, family, h);
	if (!e)
		return;
	if (n > 0 && !(e->addrs = malloc(sizeof(*a) * (size_t)n))) {
		free(e);
		return;
	}
	for (int i = 0; i < n; i++) {
		e->addrs[i] = a[i];
		rotor__addr_port(&e->addrs[i], 0);
	}
	e->naddrs = n > 0 ? (unsigned)n : 0;
	cache_insert(r, e);
	complete(r, e, n > 0 ? 0 : n, TTL_HOSTS_NS);
}

/* The worker's parse of /etc/hosts, read again when the file changed (inode, size or
 * modification time; looked at once a second at most). */
static const struct rotor__hosts *hosts_current(struct resolver *r)
{
	int64_t now = rotor_now();
	if (r->hosts.checked && now - r->hosts.checked < HOSTS_CHECK)
		return &r->hosts;
	r->hosts.checked = now;
	struct stat st;
	if (stat(ROTOR__HOSTS_PATH, &st) < 0)
		memset(&st, 0, sizeof(st));
	const struct stat *old = &r->hosts.st;
	if (st.st_ino != old->st_ino || st.st_dev != old->st_dev || st.st_size != old->st_size ||
	    st.st_mtim.tv_sec != old->st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != old->st_mtim.tv_nsec || !r->hosts.loaded) {
		rotor__hosts_load(&r->hosts); /* on -ENOMEM: empty, and read again next time */
		r->hosts.checked = now;
	}
	return &r->hosts;
}

static void waiter_leave(struct rotor_task *t, int res)
{
	struct waiter *wt = rotor__task_wait_obj(t);
	if (!wt->pprev)
		return; /* answered already: that ended the wait */
	waiter_unlink(wt);
	rotor__task_end_wait(wt->e->r->w, t, res);
}

static void waiter_timeout(struct rotor_task *t)
{
	waiter_leave(t, -ETIMEDOUT);
}

static void waiter_cancel(struct rotor_task *t)
{
	waiter_leave(t, -ECANCELED);
}

/* ---- DNS through c-ares, on the worker's ring ------------------------------------------- */

#ifdef ROTOR_HAVE_CARES

/* A socket of the channel, watched by one-shot polls (a level check at each arming, so a
 * partial read by c-ares loses no wake-up). */
struct sock {
	struct rotor__multi multi; /* first: the poll's user_data points here */
	struct resolver *r;
	struct sock *next;
	int fd;
	unsigned want;  /* POLLIN | POLLOUT as c-ares asks; 0: c-ares has closed it */
	unsigned armed; /* the mask of the poll in the kernel; 0: none */
	bool busy;      /* its completion is in ares_process_fd */
};

static pthread_once_t cares_once = PTHREAD_ONCE_INIT;
static int cares_status;

static void cares_init(void)
{
	cares_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static int ares_errno(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
		return -ENOENT;
	case ARES_ENOMEM:
		return -ENOMEM;
	case ARES_EBADNAME:
	case ARES_EBADFAMILY:
	case ARES_EBADFLAGS:
		return -EINVAL;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return -ECANCELED;
	default: /* SERVFAIL, REFUSED, FORMERR, bad answers, connection refused, c-ares' timeout */
		return -EAGAIN;
	}
}

static void arm_timer(struct resolver *r);

static void sock_arm(struct sock *s)
{
	struct io_uring_sqe *sqe = rotor__sqe(s->r->w);
	io_uring_prep_poll_add(sqe, s->fd, s->want);
	io_uring_sqe_set_data64(sqe, rotor__tag(&s->multi, ROTOR__TAG_MULTI));
	s->armed = s->want;
}

static void sock_free(struct resolver *r, struct sock *s)
{
	struct sock **p = &r->socks;
	while (*p != s)
		p = &(*p)->next;
	*p = s->next;
	free(s);
}

static void sock_complete(struct rotor__worker *w, struct rotor__multi *m, struct io_uring_cqe *cqe)
{
	struct sock *s = rotor__container_of(m, struct sock, multi);
	struct resolver *r = s->r;
	(void)w;
	s->armed = 0;
	if (s->want && cqe->res != -ECANCELED) {
		/* Another error (the fd went bad): let c-ares read it and fail that server. */
		unsigned ev = cqe->res > 0 ? (unsigned)cqe->res : POLLERR;
		ares_socket_t rfd = (ev & (POLLIN | POLLERR | POLLHUP)) && (s->want & POLLIN)
		                        ? s->fd
		                        : ARES_SOCKET_BAD;
		ares_socket_t wfd = (ev & (POLLOUT | POLLERR | POLLHUP)) && (s->want & POLLOUT)
		                        ? s->fd
		                        : ARES_SOCKET_BAD;
		s->busy = true;
		ares_process_fd(r->ch, rfd, wfd);
		s->busy = false;
	}
	if (!s->want)
		sock_free(r, s);
	else if (!s->armed)
		sock_arm(s);
	arm_timer(r);
}

/* c-ares: watch fd for reading and/or writing, or (both 0) stop, it is being closed. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	unsigned want = (readable ? POLLIN : 0) | (writable ? POLLOUT : 0);
	struct sock *s = r->socks;
	while (s && !(s->fd == fd && s->want))
		s = s->next;
	if (!s) {
		if (!want || !(s = calloc(1, sizeof(*s))))
			return; /* no memory: the query ends by c-ares' timeout */
		s->multi.complete = sock_complete;
		s->r = r;
		s->fd = fd;
		s->next = r->socks;
		r->socks = s;
	}
	s->want = want;
	if (r->closing || s->busy)
		return; /* closing: the ring goes too; busy: sock_complete re-arms */
	if (!want) {
		if (s->armed)
			rotor__cancel_op(r->w, rotor__tag(&s->multi, ROTOR__TAG_MULTI));
		else
			sock_free(r, s);
	} else if (s->armed && (s->armed & want) != want) {
		/* Its completion (-ECANCELED) re-arms with what is wanted now. */
		rotor__cancel_op(r->w, rotor__tag(&s->multi, ROTOR__TAG_MULTI));
	} else if (!s->armed) {
		sock_arm(s);
	}
}

static void on_timer(void *arg)
{
	struct resolver *r = arg;
	r->timer_at = 0;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(r);
}

/* One call_later at c-ares' next timeout. One pending is always early enough: a query
 * started later times out later, and only on_timer (retries) brings new earlier timeouts. */
static void arm_timer(struct resolver *r)
{
	struct timeval tv;
	if (r->closing || r->timer_at || !ares_timeout(r->ch, NULL, &tv))
		return;
	int64_t delay = (int64_t)tv.tv_sec * SEC_NS + (int64_t)tv.tv_usec * 1000;
	/* c-ares counts in whole milliseconds, rounded down: 0 can mean "in 0.9 ms", and a
	 * timer at once would spin until then. */
	if (delay < 1000 * 1000)
		delay = 1000 * 1000;
	if (rotor_call_later(delay, on_timer, r, NULL) == 0)
		r->timer_at = rotor_now() + delay;
}

static int channel(struct resolver *r)
{
	if (r->ch_made)
		return 0;
	pthread_once(&cares_once, cares_init);
	if (cares_status != ARES_SUCCESS)
		return -ENOMEM;
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = sock_state;
	o.sock_state_cb_data = r;
	o.lookups = (char *)"b"; /* DNS only: /etc/hosts is read here, with the cache */
	o.socket_receive_buffer_size = RCVBUF; /* a burst of INFLIGHT_MAX answers */
	int st = ares_init_options(
	    &r->ch, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_RCVBUF);
	if (st != ARES_SUCCESS)
		return st == ARES_ENOMEM ? -ENOMEM : -EAGAIN;
	r->ch_made = true;
	return 0;
}

static void pump(struct resolver *r);

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct entry *e = arg;
	struct resolver *r = e->r;
	(void)timeouts;
	r->inflight--;
	int err = ares_errno(status);
	int64_t ttl = TTL_MAX_NS;
	if (!err && ai) {
		unsigned n = 0;
		for (struct ares_addrinfo_node *nd = ai->nodes; nd; nd = nd->ai_next)
			n++;
		n = n < ADDRS_MAX ? n : ADDRS_MAX;
		e->addrs = n ? malloc(sizeof(*e->addrs) * n) : NULL;
		if (n && !e->addrs)
			err = -ENOMEM;
		for (struct ares_addrinfo_node *nd = ai->nodes; nd && e->addrs && e->naddrs < n;
		     nd = nd->ai_next) {
			struct rotor_addr *a = &e->addrs[e->naddrs];
			if (nd->ai_family == AF_INET)
				rotor__addr_v4(a, &((struct sockaddr_in *)nd->ai_addr)->sin_addr);
			else if (nd->ai_family == AF_INET6)
				rotor__addr_v6(a, &((struct sockaddr_in6 *)nd->ai_addr)->sin6_addr,
				               ((struct sockaddr_in6 *)nd->ai_addr)->sin6_scope_id);
			else
				continue;
			e->naddrs++;
			int64_t t = (int64_t)(nd->ai_ttl > 0 ? nd->ai_ttl : 0) * SEC_NS;
			ttl = t < ttl ? t : ttl;
		}
	}
	if (ai)
		ares_freeaddrinfo(ai);
	complete(r, e, err, ttl);
	if (!r->closing)
		pump(r);
}

static void ask(struct resolver *r, struct entry *e)
{
	struct ares_addrinfo_hints h;
	memset(&h, 0, sizeof(h));
	h.ai_family = e->family;
	h.ai_socktype = SOCK_STREAM; /* one node per address */
	r->inflight++;
	ares_getaddrinfo(r->ch, e->name, NULL, &h, on_answer, e);
}

/* Ask for the queued names while there is room; a name nobody waits for any more is
 * dropped. Not re-entered from an answer that comes at once. */
static void pump(struct resolver *r)
{
	if (r->pumping)
		return;
	r->pumping = true;
	while (r->queue && r->inflight < INFLIGHT_MAX) {
		struct entry *e = r->queue;
		if (!(r->queue = e->qnext))
			r->queue_tail = &r->queue;
		if (e->waiters)
			ask(r, e);
		else
			complete(r, e, -ECANCELED, 0);
	}
	r->pumping = false;
	arm_timer(r);
}

/* Ask for e, or queue it behind INFLIGHT_MAX others. Its answer may come before this
 * returns (complete then runs here). */
static int dns_start(struct resolver *r, struct entry *e)
{
	int err = channel(r);
	if (err < 0)
		return err;
	if (r->inflight < INFLIGHT_MAX && !r->queue) {
		ask(r, e);
		arm_timer(r);
	} else {
		e->qnext = NULL;
		*r->queue_tail = e;
		r->queue_tail = &e->qnext;
	}
	return 0;
}

#else /* no c-ares: getaddrinfo on the offload pool, deadline not honoured (resolve.h) */

struct gai_job {
	const char *name;
	int family;
	int rc, err;
	struct addrinfo *ai;
};

static void *gai_run(void *arg)
{
	struct gai_job *j = arg;
	struct addrinfo h;
	memset(&h, 0, sizeof(h));
	h.ai_family = j->family;
	h.ai_socktype = SOCK_STREAM;
	errno = 0;
	j->rc = getaddrinfo(j->name, NULL, &h, &j->ai);
	j->err = errno;
	return NULL;
}

static int dns_start(struct resolver *r, struct entry *e)
{
	struct gai_job j = {.name = e->name, .family = e->family};
	int r0 = rotor_offload(gai_run, &j, NULL);
	if (r0 < 0 && r0 != -ECANCELED)
		return r0;
	errno = j.err;
	int err = rotor__eai_errno(j.rc);
	if (!err && !(e->addrs = malloc(sizeof(*e->addrs) * ADDRS_MAX)))
		err = -ENOMEM;
	if (!err)
		e->naddrs = (unsigned)rotor__addrinfo_copy(j.ai, e->addrs, ADDRS_MAX);
	if (j.ai)
		freeaddrinfo(j.ai);
	complete(r, e, err, TTL_HOSTS_NS);
	return 0;
}

#endif

/* ---- the resolver of the calling worker ---------------------------------------------------- */

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int resolver_key = -1;

static void resolver_destroy(void *v)
{
	struct resolver *r = v;
#ifdef ROTOR_HAVE_CARES
	r->closing = true;
	if (r->ch_made)
		ares_destroy(r->ch); /* ends every query (complete: -ECANCELED, nobody waits) */
	while (r->socks) {
		struct sock *s = r->socks;
		r->socks = s->next;
		free(s); /* a poll still in the kernel goes with the ring, never reaped */
	}
	while (r->queue) {
		struct entry *e = r->queue;
		r->queue = e->qnext;
		if (!e->cached) /* the table's are freed below */
			entry_free(e);
	}
#endif
	rotor__hosts_fini(&r->hosts);
	for (size_t i = 0; i < BUCKETS; i++) {
		while (r->buckets[i]) {
			struct entry *e = r->buckets[i];
			r->buckets[i] = e->hnext;
			entry_free(e);
		}
	}
	free(r);
}

static void key_init(void)
{
	resolver_key = rotor_key_create(resolver_destroy);
}

static void *resolver_new(void *arg)
{
	struct resolver *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->w = arg;
	r->lru.next = r->lru.prev = &r->lru;
#ifdef ROTOR_HAVE_CARES
	r->queue_tail = &r->queue;
#endif
	return r;
}

static int resolver_get(struct rotor__worker *w, struct resolver **out)
{
	pthread_once(&key_once, key_init);
	if (resolver_key < 0)
		return -ENOMEM;
	void *v;
	int err = rotor_worker_local(resolver_key, resolver_new, w, &v);
	if (err < 0)
		return err;
	*out = v;
	return 0;
}

int rotor_resolve(const char *host, int port, const struct rotor_resolve_hints *hints,
                  struct rotor_addr *out, size_t cap, int64_t deadline)
{
	int err;
	struct rotor_task *t = rotor__wait_begin(&err);
	if (!t)
		return err;
	int family = hints ? hints->family : AF_UNSPEC;
	bool use_cache = !(hints && (hints->flags & ROTOR_RESOLVE_NO_CACHE));
	char name[ROTOR__NAME_LEN_MAX + 1];
	int n = rotor__resolve_quick(host, port, family, out, cap, name);
	if (n != 0)
		return n;
	struct rotor__worker *w = rotor__worker_self();
	struct resolver *r;
	if ((err = resolver_get(w, &r)) < 0)
		return err;
	uint32_t h = name_hash(name, family);
	struct entry *e = use_cache ? cache_find(r, name, family, h) : NULL;
	if (e && e->state != PENDING && e->expires <= rotor_now()) {
		cache_remove(r, e);
		entry_free(e);
		e = NULL;
	}
	if (e && e->state != PENDING) {
		lru_unlink(e);
		lru_front(r, e);
		return entry_answer(e, port, out, cap);
	}
	struct waiter wt = {.task = t, .out = out, .cap = cap, .port = port};
	if (!e) {
		struct rotor_addr tmp[16]; /* all of them for the cache, whatever cap is */
		n = rotor__hosts_find(hosts_current(r), name, family, tmp, 16);
		if (n > 0 || n == -ENOENT) {
			if (use_cache)
				remember(r, name, family, h, tmp, n);
			if (n > (int)cap)
				n = (int)cap;
			for (int i = 0; i < n; i++) {
				out[i] = tmp[i];
				rotor__addr_port(&out[i], port);
			}
			return n;
		}
		if (!(e = entry_new(r, name, family, h)))
			return -ENOMEM;
		if (use_cache)
			cache_insert(r, e);
		wt.e = e;
		wt.pprev = &e->waiters;
		e->waiters = &wt;
		if ((err = dns_start(r, e)) < 0) {
			complete(r, e, err, 0);
			return err;
		}
	} else {
		/* Asked about already: wait for that answer. */
		wt.e = e;
		wt.next = e->waiters;
		if (wt.next)
			wt.next->pprev = &wt.next;
		wt.pprev = &e->waiters;
		e->waiters = &wt;
	}
	if (!wt.pprev)
		return wt.res; /* answered at once, or while dns_start suspended (no c-ares) */
	if (deadline != ROTOR_FOREVER && deadline <= rotor_now()) {
		waiter_unlink(&wt);
		return -ETIMEDOUT;
	}
	wt.waiting = true;
	return rotor__task_wait(w, &wt, waiter_cancel, waiter_timeout, deadline);
}
