/*
 * rotor/redis.h: a Redis client for tasks. A client belongs to the worker whose task
 * connected it and is shared by every task of that worker: the commands they issue during
 * one loop turn go out in one write per connection (automatic pipelining), and each task
 * gets its own reply, in order. A pool of connections spreads commands where one connection
 * is not enough (a blocking command holds its connection). Replies are parsed by hiredis's
 * reader (libhiredis-dev); a build without hiredis leaves these calls out (the library
 * exports none of them; CMake says so when it configures).
 */
#ifndef ROTOR_PUBLIC_REDIS_H
#define ROTOR_PUBLIC_REDIS_H

#include <rotor/base.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rotor_redis;

/* ---- Replies ----------------------------------------------------------------------------
 * Every RESP2 reply type. The numbers are hiredis's REDIS_REPLY_*.
 */
enum rotor_redis_type {
	ROTOR_REDIS_STRING = 1,  /* a bulk string: str, len (binary-safe) */
	ROTOR_REDIS_ARRAY = 2,   /* elements, element[0..elements) (an empty array: 0) */
	ROTOR_REDIS_INTEGER = 3, /* integer */
	ROTOR_REDIS_NIL = 4,     /* a nil bulk string or nil array */
	ROTOR_REDIS_STATUS = 5,  /* a status line ("OK", "PONG"): str, len */
	ROTOR_REDIS_ERROR = 6,   /* an error line ("ERR unknown command ..."): str, len */
};

/* A reply, owned by the caller once a command returns it: free it with
 * rotor_redis_reply_free (which frees its elements too). str is NUL-terminated past len. */
struct rotor_redis_reply {
	int type; /* enum rotor_redis_type */
	long long integer;
	size_t len;
	char *str;
	size_t elements;
	struct rotor_redis_reply **element;
};

/* rotor_redis_reply_free - free reply and everything under it; NULL does nothing.
 * Thread: any. Suspends: no. */
ROTOR_API void rotor_redis_reply_free(struct rotor_redis_reply *reply);

/* ---- Clients ---------------------------------------------------------------------------- */

/* All zero means defaults, but host and port. */
struct rotor_redis_config {
	const char *host;   /* a name or a literal; NULL or "": localhost */
	int port;           /* 1..65535 */
	int connections;    /* the pool's size; 0: 1 */
	size_t max_reply;   /* bytes of one reply the reader holds at most (-EMSGSIZE beyond,
	                       the connection is dropped); 0: 512 MiB, Redis's own bound */
	int64_t connect_ns; /* a reconnect's own bound, within the command's deadline;
	                       0: 5 s */
};

/* A client's counters (rotor_redis_stats). */
struct rotor_redis_stats {
	uint64_t commands; /* commands sent */
	uint64_t replies;  /* replies received (those dropped included) */
	uint64_t writes;   /* sends: the commands of one loop turn share one per connection */
	uint64_t dropped;  /* replies read and dropped: their task's deadline had passed */
	uint64_t connects; /* connections made, reconnections included */
	uint64_t resets;   /* connections lost (reset, end of stream, protocol error) */
	int pending;       /* commands sent and not yet answered, now */
};

/*
 * rotor_redis_connect - a client of the Redis server at cfg->host:cfg->port, with
 * cfg->connections connections made before it returns (through rotor_tcp_dial), all within
 * the absolute deadline. The client belongs to the calling worker: every task of that worker
 * may use it at once. Returns 0 and sets *out, or -EINVAL (cfg or out NULL, port out of
 * range, connections < 0), -ENOMEM, -EPERM (off a task), the errors of rotor_tcp_dial
 * (-ECONNREFUSED, -ETIMEDOUT, -ECANCELED, ...). Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_redis_connect(const struct rotor_redis_config *cfg, int64_t deadline,
                                  struct rotor_redis **out);

/*
 * rotor_redis_command - send the command of argc (> 0) arguments, argv[i] being lens[i]
 * bytes (binary-safe; lens NULL: each argv[i] is a C string), and wait for its reply until
 * the absolute deadline. The command goes out with the other commands this worker's tasks
 * issue in the same loop turn, in one write on the connection with the fewest commands
 * waiting; a connection lost earlier is made again first (within cfg->connect_ns and the
 * deadline). Returns 0 and sets *reply (also for an ERROR reply: the server answered), or
 * -EINVAL (r, argv or reply NULL, argc < 1), -EPERM (off a task of r's worker), -ESHUTDOWN
 * (r is being closed), -ENOMEM, -ETIMEDOUT (the deadline passed: the reply, when it comes,
 * is read and dropped, so the connection stays in step), -ECANCELED (the same, the task was
 * cancelled), -ECONNRESET (the connection was lost before the reply came: every task waiting
 * on it gets this; the next command reconnects), -EPROTO (the server sent what is not RESP),
 * -EMSGSIZE (a reply over cfg->max_reply), the errors of rotor_tcp_dial for a reconnect that
 * fails (every task waiting for it gets the same). Thread: task on r's worker. Suspends: yes.
 */
ROTOR_API int rotor_redis_command(struct rotor_redis *r, int argc, const char *const *argv,
                                  const size_t *lens, int64_t deadline,
                                  struct rotor_redis_reply **reply);

/* One command of a pipeline: argc arguments, argv[i] being lens[i] bytes (lens NULL: C
 * strings). */
struct rotor_redis_cmd {
	int argc;
	const char *const *argv;
	const size_t *lens;
};

#define ROTOR_REDIS_PIPELINE_MAX 65536 /* commands in one rotor_redis_pipeline */

/*
 * rotor_redis_pipeline - send the n (1 to ROTOR_REDIS_PIPELINE_MAX) commands of cmds at once,
 * on one connection, in order, in the write of this loop turn, and wait for all their replies
 * until the absolute deadline: replies[i] is the reply to cmds[i] (every one the caller's).
 * All or nothing: on an error no reply is left in replies (every entry NULL), and the replies
 * still to come are read and dropped. Returns 0, or the errors of rotor_redis_command (-EINVAL
 * also for a command with argc < 1 or argv NULL, n out of range). Thread: task on r's worker.
 * Suspends: yes.
 */
ROTOR_API int rotor_redis_pipeline(struct rotor_redis *r, int n, const struct rotor_redis_cmd *cmds,
                                   int64_t deadline, struct rotor_redis_reply **replies);

/*
 * rotor_redis_stats - r's counters into *out. Returns 0, -EINVAL (r or out NULL).
 * Thread: any task of r's worker (another thread reads them unlocked: a snapshot, maybe
 * torn). Suspends: no.
 */
ROTOR_API int rotor_redis_stats(const struct rotor_redis *r, struct rotor_redis_stats *out);

/*
 * rotor_redis_close - close r: new commands get -ESHUTDOWN, commands in flight get their
 * replies until the absolute deadline (then -ECONNABORTED), every connection is closed and
 * r is freed. r must not be used once this returns. Returns 0, -EINVAL (r NULL), -EPERM
 * (off a task of r's worker), -EALREADY (another task is closing r). Thread: task on r's
 * worker. Suspends: yes (not cancellable: a cancel during the close makes it stop waiting
 * for replies).
 */
ROTOR_API int rotor_redis_close(struct rotor_redis *r, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_REDIS_H */
