/*
 * http_pool.h: the HTTP client's connections (http_pool.c) as the request code
 * (http_client.c) sees them, and its URL helpers (http_url.c): a client's shared settings, and per
 * worker and per origin a pool that hands out a connection (pooled or new) within a cap and takes
 * it back.
 */
#ifndef ROTOR_SERVICE_HTTP_POOL_H
#define ROTOR_SERVICE_HTTP_POOL_H

#include <rotor/http_client.h>
#include <rotor/sync.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct rotor_stream;
struct rotor__http_origin;

/* Shared by every worker: set at create, then read only, but refs and dead. */
struct rotor_http_client {
	/* The caller's context, or the client's own, made on the first https connection (by
	 * the offload pool: loading the system's CAs takes longer than a worker may stall). */
	struct rotor_tls_ctx *_Atomic tls;
	bool own_tls;
	char *ca_file;
	struct rotor_mutex tls_lock; /* one task makes the context, the others wait for it */
	unsigned max_per_origin;
	int64_t idle_timeout; /* < 0: nothing pooled */
	size_t max_head;
	size_t max_body;
	unsigned max_redirects;
	atomic_int refs;  /* the caller's hold and one per worker pool of the client */
	atomic_bool dead; /* rotor_http_client_destroy was called */
};

/* One connection: owned by the pool while idle, by a request (its response) while busy. */
struct rotor__http_conn {
	struct rotor__http_conn *next; /* the origin's idle list */
	struct rotor__http_origin *origin;
	struct rotor_stream *s;
	int fd;
	bool reused;        /* taken from the idle list for this request */
	int64_t idle_since; /* while idle */
};

/*
 * rotor__http_conn_get - a connection to u's origin in c's pool on the calling worker,
 * waiting (FIFO) by deadline while the origin has max_per_origin of them busy: an idle one
 * (newest first; one idle past the timeout, or with bytes or an end already received, is
 * closed instead), or, when there is none or fresh (a retry), a new one dialed and, for
 * https, handshaken. Returns 0
 * and *out, or the errors of rotor_tcp_dial, rotor_tls_connect, the semaphore's.
 */
int rotor__http_conn_get(struct rotor_http_client *c, const struct rotor_http_url *u, bool fresh,
                         int64_t deadline, struct rotor__http_conn **out);

/* rotor__http_conn_put - give k back: to the idle list when reusable (and the client
 * pools, and lives), else closed; either way its slot under the cap is free again. */
void rotor__http_conn_put(struct rotor__http_conn *k, bool reusable);

/* rotor__http_count - add to the calling worker's counters of k's client. */
enum { ROTOR__HTTP_REQUESTS, ROTOR__HTTP_REUSED, ROTOR__HTTP_RETRIES };
void rotor__http_count(struct rotor__http_conn *k, int which);

/* rotor__http_pool_close - close c's idle connections on the calling worker (destroy). */
void rotor__http_pool_close(struct rotor_http_client *c);

/* rotor__http_client_unref - drop one hold on c, freeing it with the last. */
void rotor__http_client_unref(struct rotor_http_client *c);

/* http_url.c: a redirect's Location resolved against the URL of the request (new memory, or
 * NULL), and whether two URLs have one origin (scheme, host, port). */
char *rotor__http_resolve_location(const char *base, const char *loc);
bool rotor__http_same_origin(const char *a, const char *b);

#endif /* ROTOR_SERVICE_HTTP_POOL_H */
