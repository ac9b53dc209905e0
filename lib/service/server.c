/*
 * The TCP server (include/rotor/server.h): which worker serves a connection, and when it
 * moves. Uses the layers below through <rotor.h> only. Invariants: a connection is counted in
 * `open` and in exactly one worker's `load` from its admission until its record is freed, and
 * its record is freed exactly once, by end_conn: after serve returns without a move, in the
 * discard of a task that never ran, or when its task cannot be spawned. `accepting` counts
 * accept tasks not yet ended; destroy waits for both counts to reach zero.
 */
#include "core.h"

#include <rotor/server.h>

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

/* A worker keeps what it accepts while it serves at most twice as many connections as the
 * least loaded worker, plus this many. Two workers that accept bursts of steered connections
 * at slightly different moments stay within it (a tighter bound moved 9 of 100 connections
 * wrk -t2 had spread evenly, and cost steering's gain on them); clients that all connected
 * from one CPU end up about two to one. */
#define BALANCE_SLACK 8
/* Reads between two looks at a connection's CPU (rotor_server_follow): the look is a
 * getsockopt, cheap but not free. */
#define FOLLOW_EVERY      64
#define DEFAULT_BACKLOG   1024
#define DEFAULT_MAX_CONNS 10000
/* -EMFILE, -ENFILE, -ENOBUFS from accept: wait for connections to end, do not spin. */
#define ACCEPT_BACKOFF_NS (20 * 1000 * 1000)

enum { IDLE, STARTED, STOPPING };

/* One worker's listener and counters. load is raised by the worker that admits or moves a
 * connection, for the one that will serve it, lowered by that one when it ends; it and cpu
 * are read by every worker (admit, follow). Relaxed throughout: they steer a choice, and a
 * stale value costs a connection its best place, nothing more. */
struct slot {
	int listener;
	struct rotor_task *accept; /* its accept task: start sets it, stop joins it */
	atomic_int load;           /* connections this worker serves */
	atomic_int cpu;            /* the CPU its listener is steered to, -1 */
	atomic_int steer_error;
	atomic_ulong given, moved_out, refused;
};

struct rotor_server {
	struct rotor_server_config cfg; /* host cleared: used by create only */
	int workers, port;
	atomic_int state;     /* IDLE, STARTED, STOPPING */
	atomic_int open;      /* connections admitted and not yet ended (max_conns) */
	atomic_int accepting; /* accept tasks spawned and not yet ended */
	atomic_int lost;      /* accept tasks of this start that never ran (accept_discard) */
	struct rotor_waitgroup steering; /* accept tasks that have not yet steered */
	struct slot w[];
};

struct rotor_server_conn {
	struct rotor_server *s;
	int fd;
	int worker;   /* the worker that serves it, which counts it in its load */
	int move_to;  /* rotor_server_move's worker, -1 */
	int reads;    /* rotor_server_follow calls since the last look */
	int seen_cpu; /* the CPU of the last look, -1 */
	max_align_t data[];
};

/* ---- connections ---- */

/* A connection admitted for worker w has ended, or never started. */
/* rotor_worker_id without the call into the library: on every follow check. */
static inline int self_id(void)
{
	struct rotor__worker *w = rotor__worker_self();
	return w ? rotor__worker_id(w) : -EPERM;
}

static void conn_done(struct rotor_server *s, int w)
{
	atomic_fetch_sub_explicit(&s->w[w].load, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&s->open, 1, memory_order_relaxed); /* the last touch of s */
}

static void end_conn(struct rotor_server_conn *c)
{
	struct rotor_server *s = c->s;
	int w = c->worker;
	if (s->cfg.close)
		s->cfg.close(c, s->cfg.arg);
	close(c->fd);
	rotor__free(ROTOR__FAULT_SERVER_CONN, c);
	conn_done(s, w);
}

/* A connection whose task never ran (discard, on the task's worker). */
static void conn_discard(void *arg)
{
	end_conn(arg);
}

static void *conn_task(void *arg);

/* Serve c with a task on c->worker. When the task cannot be spawned (the runtime is
 * stopping) or never runs (a stop right after), the connection still ends. */
static void hand(struct rotor_server_conn *c)
{
	struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(c->worker), .discard = conn_discard};
	if (rotor_spawn_attr(&a, conn_task, c, NULL) < 0)
		end_conn(c);
}

static void *conn_task(void *arg)
{
	struct rotor_server_conn *c = arg;
	struct rotor_server *s = c->s;
	c->move_to = -1;
	s->cfg.serve(c, s->cfg.arg);
	int to = c->move_to;
	if (to < 0) {
		end_conn(c);
		return NULL;
	}
	struct slot *here = &s->w[c->worker];
	atomic_fetch_sub_explicit(&here->load, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->w[to].load, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&here->moved_out, 1, memory_order_relaxed);
	c->worker = to;
	hand(c);
	return NULL;
}

/* ---- accepting ---- */

/* Admit a connection accepted on worker self, or -1 when max_conns are open already (the
 * caller closes it). Returns the worker that is to serve it, its counts raised (conn_done
 * lowers them): this one unless steering made it serve too many (unsteered, the kernel's
 * hash spreads). */
static int admit(struct rotor_server *s, int self)
{
	if (atomic_fetch_add_explicit(&s->open, 1, memory_order_relaxed) >= s->cfg.max_conns) {
		atomic_fetch_sub_explicit(&s->open, 1, memory_order_relaxed);
		return -1;
	}
	int mine = atomic_load_explicit(&s->w[self].load, memory_order_relaxed);
	int best = self, least = mine;
	for (int i = 0; i < s->workers; i++) {
		int l = atomic_load_explicit(&s->w[i].load, memory_order_relaxed);
		if (l < least) {
			least = l;
			best = i;
		}
	}
	bool steered = !(s->cfg.flags & ROTOR_SERVER_NO_STEER);
	int to = steered && mine > 2 * least + BALANCE_SLACK ? best : self;
	atomic_fetch_add_explicit(&s->w[to].load, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->w[to].given, 1, memory_order_relaxed);
	return to;
}

/* Before its first accept: steer this worker's listener when steering is on and there are
 * several workers. A failure is recorded and harmless: the kernel's hash then spreads. */
static void steer(struct rotor_server *s, struct slot *w)
{
	if (!(s->cfg.flags & ROTOR_SERVER_NO_STEER) && s->workers > 1) {
		int r = rotor_sock_steer(w->listener);
		if (r < 0)
			atomic_store_explicit(&w->steer_error, r, memory_order_relaxed);
		else
			atomic_store_explicit(&w->cpu, r, memory_order_relaxed);
	}
	rotor_waitgroup_done(&s->steering);
}

static void accept_ended(struct rotor_server *s)
{
	atomic_fetch_sub_explicit(&s->accepting, 1, memory_order_release); /* last touch of s */
}

/* An accept task cancelled before it ran (a runtime stopping right after start). */
static void accept_discard(void *arg)
{
	struct rotor_server *s = arg;
	atomic_fetch_add_explicit(&s->lost, 1, memory_order_relaxed);
	rotor_waitgroup_done(&s->steering);
	accept_ended(s);
}

static void *accept_loop(void *arg)
{
	struct rotor_server *s = arg;
	int self = self_id();
	struct slot *w = &s->w[self];
	steer(s, w);
	for (;;) {
		int fd = rotor_accept(w->listener, NULL, NULL, SOCK_CLOEXEC, ROTOR_FOREVER);
		if (fd == -ECANCELED)
			break;
		if (fd == -ECONNABORTED)
			continue;
		if (fd < 0) {
			if (rotor_sleep(ACCEPT_BACKOFF_NS) == -ECANCELED)
				break;
			continue;
		}
		int to = admit(s, self);
		if (to < 0) {
			atomic_fetch_add_explicit(&w->refused, 1, memory_order_relaxed);
			close(fd);
			continue;
		}
		struct rotor_server_conn *c =
		    rotor__calloc(ROTOR__FAULT_SERVER_CONN, 1, sizeof(*c) + s->cfg.conn_size);
		if (!c) {
			conn_done(s, to);
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		c->worker = to;
		c->move_to = -1;
		c->seen_cpu = -1;
		hand(c);
	}
	accept_ended(s);
	return NULL;
}

/* ---- the server ---- */

int rotor_server_create(const struct rotor_server_config *cfg, struct rotor_server **out)
{
	if (!cfg || !cfg->serve || !out || cfg->port < 0 || cfg->port > 65535 ||
	    cfg->max_conns < 0 || cfg->backlog < 0 || cfg->workers > 1024)
		return -EINVAL;
	int n = (int)cfg->workers;
	if (!n) {
		cpu_set_t set;
		n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	}
	struct rotor_server *s =
	    rotor__calloc(ROTOR__FAULT_SERVER, 1, sizeof(*s) + (size_t)n * sizeof(s->w[0]));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->cfg.host = NULL;
	if (!s->cfg.backlog)
		s->cfg.backlog = DEFAULT_BACKLOG;
	if (!s->cfg.max_conns)
		s->cfg.max_conns = DEFAULT_MAX_CONNS;
	s->workers = n;
	for (int i = 0; i < n; i++) {
		s->w[i].listener = -1;
		atomic_init(&s->w[i].cpu, -1);
	}
	int port = cfg->port, r = 0;
	for (int i = 0; i < n && r >= 0; i++) {
		r = s->w[i].listener =
		    rotor_tcp_listen(cfg->host, port, s->cfg.backlog, ROTOR_TCP_REUSEPORT);
		if (r >= 0 && i == 0)
			r = port =
			    rotor_sock_port(r); /* port 0: every listener on the one picked */
	}
	if (r < 0) {
		for (int i = 0; i < n && s->w[i].listener >= 0; i++)
			close(s->w[i].listener);
		rotor__free(ROTOR__FAULT_SERVER, s);
		return r;
	}
	s->port = port;
	*out = s;
	return 0;
}

int rotor_server_destroy(struct rotor_server *s)
{
	if (!s)
		return -EINVAL;
	/* Acquire: pairs with accept_ended's release, so the accept tasks' last reads of s
	 * happen before the free. */
	if (atomic_load_explicit(&s->accepting, memory_order_acquire) ||
	    atomic_load_explicit(&s->open, memory_order_relaxed))
		return -EBUSY;
	for (int i = 0; i < s->workers; i++)
		close(s->w[i].listener);
	rotor__free(ROTOR__FAULT_SERVER, s);
	return 0;
}

/* Cancel and join the accept tasks of workers [0, n): 0, or -ECANCELED when the calling task
 * itself is cancelled (the handles left are the runtime's to free when it ends). */
static int end_accepting(struct rotor_server *s, int n)
{
	for (int i = 0; i < n; i++)
		rotor_cancel(s->w[i].accept);
	for (int i = 0; i < n; i++) {
		if (rotor_join(s->w[i].accept, NULL) == -ECANCELED && rotor_task_cancelled() == 1)
			return -ECANCELED;
		s->w[i].accept = NULL;
	}
	return 0;
}

int rotor_server_start(struct rotor_server *s)
{
	if (!s)
		return -EINVAL;
	if (!rotor_current())
		return -EPERM;
	if (rotor_runtime_workers(rotor_runtime_current()) != s->workers)
		return -EINVAL;
	int idle = IDLE;
	if (!atomic_compare_exchange_strong(&s->state, &idle, STARTED))
		return -EBUSY;
	for (int i = 0; i < s->workers; i++) {
		atomic_store_explicit(&s->w[i].cpu, -1, memory_order_relaxed);
		atomic_store_explicit(&s->w[i].steer_error, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&s->lost, 0, memory_order_relaxed);
	rotor_waitgroup_init(&s->steering);
	rotor_waitgroup_add(&s->steering, s->workers);
	atomic_fetch_add_explicit(&s->accepting, s->workers, memory_order_relaxed);
	for (int i = 0; i < s->workers; i++) {
		struct rotor_task_attr a = {
		    .on = ROTOR_ON_WORKER(i), .name = "accept", .discard = accept_discard};
		int r = rotor_spawn_attr(&a, accept_loop, s, &s->w[i].accept);
		if (r < 0) {
			atomic_fetch_sub_explicit(&s->accepting, s->workers - i,
			                          memory_order_relaxed);
			if (end_accepting(s, i) == 0)
				atomic_store(&s->state, IDLE);
			return r;
		}
	}
	int r = rotor_waitgroup_wait(&s->steering);
	/* Relaxed: the waitgroup's wake orders the discards' stores before this load. */
	if (r == 0 && atomic_exchange_explicit(&s->lost, 0, memory_order_relaxed)) {
		/* A worker without its accept task (no stack for it, or the runtime stopping)
		 * would leave the connections its listener takes unanswered. */
		if (end_accepting(s, s->workers) == 0)
			atomic_store(&s->state, IDLE);
		return rotor_runtime_state(rotor_runtime_current()) == ROTOR_RUNNING ? -ENOMEM
		                                                                     : -ESHUTDOWN;
	}
	return r;
}

int rotor_server_stop(struct rotor_server *s)
{
	if (!s)
		return -EINVAL;
	if (!rotor_current())
		return -EPERM;
	int started = STARTED;
	if (!atomic_compare_exchange_strong(&s->state, &started, STOPPING))
		return 0; /* not started, or another task is stopping it */
	int r = end_accepting(s, s->workers);
	if (r == 0)
		atomic_store(&s->state, IDLE);
	return r;
}

int rotor_server_port(const struct rotor_server *s)
{
	return s ? s->port : -EINVAL;
}

int rotor_server_stats(const struct rotor_server *s, int w, struct rotor_server_stats *out)
{
	if (!s || !out || w < 0 || w >= s->workers)
		return -EINVAL;
	const struct slot *sl = &s->w[w];
	out->given = atomic_load_explicit(&sl->given, memory_order_relaxed);
	out->moved_out = atomic_load_explicit(&sl->moved_out, memory_order_relaxed);
	out->refused = atomic_load_explicit(&sl->refused, memory_order_relaxed);
	out->serving = atomic_load_explicit(&sl->load, memory_order_relaxed);
	out->cpu = atomic_load_explicit(&sl->cpu, memory_order_relaxed);
	out->steer_error = atomic_load_explicit(&sl->steer_error, memory_order_relaxed);
	return 0;
}

/* ---- a connection ---- */

int rotor_server_conn_fd(const struct rotor_server_conn *c)
{
	return c ? c->fd : -EINVAL;
}

void *rotor_server_conn_data(struct rotor_server_conn *c)
{
	return c && c->s->cfg.conn_size ? c->data : NULL;
}

/*
 * Steering places a connection by the CPU of its handshake, but a client's thread may move
 * to another CPU afterwards (wrk -t2 often starts both threads on one CPU, and the scheduler
 * spreads them a moment later), and then every packet of the connection is processed there
 * while its task runs here. Every FOLLOW_EVERY reads a connection asks the kernel which CPU
 * handled its last packet; when that is another steering worker's CPU twice in a row, and
 * that worker serves no more than twice this one's connections plus BALANCE_SLACK, the
 * connection should move there. follow_look is that look, apart from rotor_server_follow so
 * that the 63 calls in 64 that stop at the counter save no registers.
 */
static __attribute__((noinline)) int follow_look(struct rotor_server_conn *c, int self)
{
	struct rotor_server *s = c->s;
	int here = atomic_load_explicit(&s->w[self].cpu, memory_order_relaxed);
	if (here < 0)
		return -EAGAIN;
	int cpu = -1;
	socklen_t len = sizeof(cpu);
	if (getsockopt(c->fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) < 0 || cpu < 0 ||
	    cpu == here) {
		c->seen_cpu = -1;
		return -EAGAIN;
	}
	int prev = c->seen_cpu;
	c->seen_cpu = cpu;
	if (prev != cpu)
		return -EAGAIN;
	for (int i = 0; i < s->workers; i++)
		if (atomic_load_explicit(&s->w[i].cpu, memory_order_relaxed) == cpu) {
			int theirs = atomic_load_explicit(&s->w[i].load, memory_order_relaxed);
			int mine = atomic_load_explicit(&s->w[self].load, memory_order_relaxed);
			return theirs <= 2 * mine + BALANCE_SLACK ? i : -EAGAIN;
		}
	return -EAGAIN;
}

int rotor_server_follow(struct rotor_server_conn *c)
{
	if (!c)
		return -EINVAL;
	int self = self_id();
	if (self != c->worker)
		return -EPERM;
	if (++c->reads < FOLLOW_EVERY)
		return -EAGAIN;
	c->reads = 0;
	return follow_look(c, self);
}

int rotor_server_move(struct rotor_server_conn *c, int w)
{
	if (!c || w < 0 || w >= c->s->workers)
		return -EINVAL;
	int self = self_id();
	if (self != c->worker)
		return -EPERM;
	if (w == self)
		return -EINVAL;
	c->move_to = w;
	return 0;
}
