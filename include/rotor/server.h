/*
 * rotor/server.h: a TCP server on every worker. One listener per worker on one port
 * (SO_REUSEPORT), each steered to its worker's CPU (rotor_sock_steer), an accept task per
 * worker, a task per connection running the program's serve function, a cap on open
 * connections, new connections handed to a less loaded worker when steering piles them on
 * one, and connections that follow their packets to another worker's CPU. The program writes
 * what a connection does; this module decides where it runs.
 */
#ifndef ROTOR_PUBLIC_SERVER_H
#define ROTOR_PUBLIC_SERVER_H

#include <rotor.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rotor_server;
struct rotor_server_conn; /* one accepted connection: its socket and the program's state */

#define ROTOR_SERVER_NO_STEER (1u << 0) /* leave the choice of listener to the kernel's hash */

/* All zero but serve means defaults. */
struct rotor_server_config {
	const char *host; /* address to listen on (a literal or a name); NULL or "": every one */
	int port;         /* 0 to 65535; 0: a free port, see rotor_server_port */
	int backlog;      /* listen(2) queue of each listener; 0: 1024 */
	unsigned workers; /* listeners, one per worker: the runtime's worker count; 0: one per
	                     CPU this process may run on (as rotor_config.workers 0) */
	int max_conns;    /* connections open at once; more are closed when accepted; 0: 10000 */
	unsigned flags;   /* ROTOR_SERVER_NO_STEER */
	size_t conn_size; /* bytes of zeroed state given with each connection (conn_data) */
	/* Serves connection c, as a task on the worker chosen for it. When it returns the
	 * connection's socket is closed and its state freed, unless it called rotor_server_move:
	 * then serve runs again, with the same c, on that worker. When the runtime stops, its
	 * waits return -ECANCELED: it cleans up and returns (rotor_server_stop leaves it be). */
	void (*serve)(struct rotor_server_conn *c, void *arg);
	/* Called once for every connection just before its socket is closed and its state
	 * freed, whether serve ever ran or not (a runtime stopping right after an accept or a
	 * move): for state that owns more than its bytes. On the connection's worker; must not
	 * suspend. NULL: nothing. */
	void (*close)(struct rotor_server_conn *c, void *arg);
	void *arg; /* passed to serve and close */
};

/* One worker's counters (rotor_server_stats). */
struct rotor_server_stats {
	uint64_t given;     /* connections given to this worker to serve, moves excluded */
	uint64_t moved_out; /* connections that moved from this worker to another */
	uint64_t refused;   /* connections its listener accepted over max_conns, closed */
	int serving;        /* connections this worker serves now */
	int cpu;            /* the CPU its listener is steered to; -1: not steered */
	int steer_error;    /* why steering failed (rotor_sock_steer's errno), or 0 */
};

/*
 * rotor_server_create - bind cfg->workers listeners to cfg->host:cfg->port (the first picks
 * the port when it is 0, the others join it). Nothing is accepted before rotor_server_start.
 * Returns 0 and sets *out, or -EINVAL (cfg, serve or out NULL, port outside 0..65535,
 * max_conns or backlog negative), -ENOMEM, or the errors of rotor_tcp_listen (-EADDRINUSE,
 * ...). *out is untouched on failure. Thread: any. Suspends: no (a host name is resolved
 * blocking: use literals on a worker).
 */
ROTOR_API int rotor_server_create(const struct rotor_server_config *cfg, struct rotor_server **out);

/*
 * rotor_server_destroy - close the listeners and free the server. Returns 0, -EINVAL (s
 * NULL), or -EBUSY (nothing done) while an accept task runs or a connection is open: stop
 * it and let its connections end first, or call it after the runtime has ended.
 * Thread: any. Suspends: no.
 */
ROTOR_API int rotor_server_destroy(struct rotor_server *s);

/*
 * rotor_server_start - spawn an accept task on every worker of the calling runtime and
 * return once each has steered its listener (steering applies to handshakes after it: a
 * client may connect when this returns). A steering failure is harmless, the kernel's hash
 * then spreads that worker's connections; rotor_server_stats tells. Returns 0, -EINVAL (s
 * NULL, or the runtime has not cfg->workers workers), -EBUSY (already started), -EPERM off
 * a task, -ENOMEM (an accept task or its stack), -ESHUTDOWN (the runtime is stopping; after
 * either nothing is left started), or -ECANCELED (the calling task was cancelled while it
 * waited: the accept tasks run, and rotor_server_stop ends them). Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_server_start(struct rotor_server *s);

/*
 * rotor_server_stop - cancel every accept task and wait for each to end: no connection is
 * accepted afterwards (the listeners stay bound; the kernel queues handshakes until destroy).
 * Connections being served are left to end as serve ends them. Returns 0 (also when not
 * started), -EINVAL (s NULL), -EPERM off a task, -ECANCELED (the calling task was cancelled
 * while it waited; the accept tasks are cancelled all the same). Thread: task on the runtime
 * the server was started on. Suspends: yes.
 */
ROTOR_API int rotor_server_stop(struct rotor_server *s);

/* rotor_server_port - the port the listeners are bound to, or -EINVAL (s NULL).
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_server_port(const struct rotor_server *s);

/*
 * rotor_server_stats - a snapshot of worker w's counters (each read without locks).
 * Returns 0, or -EINVAL (s or out NULL, w outside 0..workers-1). Thread: any. Suspends: no.
 */
ROTOR_API int rotor_server_stats(const struct rotor_server *s, int w,
                                 struct rotor_server_stats *out);

/* rotor_server_conn_fd - the connection's socket (the server closes it after serve).
 * Returns the fd, or -EINVAL (c NULL). Thread: any. Suspends: no. */
ROTOR_API int rotor_server_conn_fd(const struct rotor_server_conn *c);

/* rotor_server_conn_data - the connection's cfg->conn_size bytes of state, zeroed when it
 * was accepted and kept across moves; NULL when conn_size is 0 or c is NULL.
 * Thread: any. Suspends: no. */
ROTOR_API void *rotor_server_conn_data(struct rotor_server_conn *c);

/*
 * rotor_server_follow - call once per read: every 64th call asks the kernel which CPU
 * handled the connection's last packet (SO_INCOMING_CPU). When that is another steered
 * worker's CPU twice in a row, and that worker does not serve many more connections than
 * this one, returns that worker's index: the connection would be cheaper there (give it to
 * rotor_server_move). Otherwise -EAGAIN (stay). Also -EINVAL (c NULL), -EPERM (not on the
 * worker serving c). Thread: the task serving c. Suspends: no.
 */
ROTOR_API int rotor_server_follow(struct rotor_server_conn *c);

/*
 * rotor_server_move - once serve returns, serve c again on worker w, with a new task there,
 * instead of closing it. serve must leave nothing of the connection on this worker (a
 * receive stream detached, a registered descriptor closed, a started send waited for): what
 * is to go along goes in the connection's state. Returns 0, -EINVAL (c NULL, w out of range
 * or the calling worker), -EPERM (not on the worker serving c). If the runtime is stopping
 * the task cannot be spawned, and the connection is closed instead.
 * Thread: the task serving c. Suspends: no.
 */
ROTOR_API int rotor_server_move(struct rotor_server_conn *c, int w);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_SERVER_H */
