/*
 * The HTTP server (include/rotor/http.h): routes, and the task that serves a connection
 * (rotor/server.h runs one per connection, on the worker it chooses). The loop: wait for
 * bytes (after sending what is gathered), parse every complete head at hand in place
 * (lib/service/http_parse.h), call the route's handler, drop what it left of the body,
 * and go on while the connection may carry another request. A connection is shielded from a
 * drain from its request's first byte until nothing of a request is left at hand.
 */
#include "http_conn.h"

#include <rotor/server.h>
#ifdef ROTOR_HAVE_TLS
#include <rotor/tls.h>
#endif

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NS_PER_S 1000000000LL

/* ---- A request --------------------------------------------------------------------------- */

static int status_of(int err)
{
	switch (err) {
	case -EFBIG:
		return 413;
	case -EBADMSG:
	case -ECONNRESET:
		return 400;
	case -ETIMEDOUT:
		return 408;
	case -EMSGSIZE:
		return 431;
	default:
		return 500;
	}
}

/* Target to path and query: origin-form as is; absolute-form without scheme and authority;
 * "*" (OPTIONS) and authority-form (CONNECT) as a path no route has. Returns false for any
 * other form (RFC 9112 section 3.2): a 400. */
static bool split_target(struct rotor_http_request *req)
{
	const char *t = req->target;
	size_t n = req->target_len, i = 0;
	if (n && t[0] != '/') {
		const char *sep = n > 3 ? memchr(t, ':', n) : NULL;
		if (sep && (size_t)(sep - t) + 3 <= n && sep[1] == '/' && sep[2] == '/') {
			i = (size_t)(sep - t) + 3;
			while (i < n && t[i] != '/' && t[i] != '?')
				i++;
		} else if (!(n == 1 && t[0] == '*' && http_method_is(req, "OPTIONS", 7)) &&
		           !http_method_is(req, "CONNECT", 7)) {
			return false;
		} else {
			i = n; /* no path */
		}
	}
	/* A request-target has no fragment (RFC 9112 section 3.2): the path ends at '?'. */
	const char *qm = memchr(t + i, '?', n - i);
	size_t p = qm ? (size_t)(qm - t) : n;
	req->path = t + i;
	req->path_len = p - i;
	req->query = qm ? qm + 1 : NULL;
	req->query_len = qm ? n - p - 1 : 0;
	return true;
}

/* Serve the request whose head takes the first n bytes at hand. */
static void serve_request_full(struct rotor_http_conn *c, size_t n, const struct http_path *hp);

/* Whether a[0, n) and b[0, n) are equal, n <= 16, both with 8 bytes readable from the start
 * (a target is followed by " HTTP/1.1", a route's path is padded): two loads each. */
static inline bool short_eq(const char *a, const char *b, size_t n)
{
	uint64_t x, y;
	if (n < 8) {
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		uint64_t m = 0;
		memset(&m, 0xff, n);
		return ((x ^ y) & m) == 0;
	}
	uint64_t x2, y2;
	memcpy(&x, a, 8);
	memcpy(&y, b, 8);
	memcpy(&x2, a + n - 8, 8);
	memcpy(&y2, b + n - 8, 8);
	return ((x ^ y) | (x2 ^ y2)) == 0;
}

static void serve_request(struct rotor_http_conn *c, size_t n)
{
	struct rotor_http_server *s = c->srv;
	struct rotor__http_head *h = &c->head;
	/* A keep-alive HTTP/1.1 request with no body whose target is exactly a fixed route's
	 * path (no route path holds '?', so neither does the target): the response is copied
	 * whole, and nothing of a request object is needed. */
	size_t tn = h->target_len;
	const struct http_path *hp = NULL;
	if (tn <= 16)
		for (hp = s->exact[http_slot(h->target, tn)]; hp; hp = hp->next)
			if (hp->len == tn && short_eq(hp->path, h->target, tn))
				break;
	if (hp && h->body == ROTOR__HTTP_BODY_NONE && h->keep_alive && h->minor == 1) {
		const struct http_route *r = hp->routes;
		if (r->fixed && r->method_len == h->method_len && r->method_len <= 4 &&
		    c->out_len + r->fixed_len <= HTTP_OUT_CAP) {
			uint32_t w;
			memcpy(&w, h->method, 4);
			if (((w ^ r->method_word) & r->method_mask) == 0) {
				memcpy(c->out + c->out_len, r->fixed, r->fixed_len);
				c->out_len += r->fixed_len;
				c->send_by = c->now + s->cfg.handler_ns;
				http_in_consume(c, n);
				c->keep = true;
				return;
			}
		}
	}
	serve_request_full(c, n, hp);
}

/* Every other request: the request object, the route, the handler, the body's end. hp: the
 * exact path the whole target is, when serve_request found one. */
__attribute__((noinline)) static void serve_request_full(struct rotor_http_conn *c, size_t n,
                                                         const struct http_path *hp)
{
	struct rotor_http_server *s = c->srv;
	struct rotor__http_head *h = &c->head;
	struct rotor_http_request *req = &c->req;
	req->method = h->method;
	req->method_len = h->method_len;
	req->target = h->target;
	req->target_len = h->target_len;
	req->minor = h->minor;
	req->conn = c;
	bool target_ok = true;
	if (hp) { /* the target is a route's path: no '?' */
		req->path = req->target;
		req->path_len = req->target_len;
		req->query = NULL;
		req->query_len = 0;
	} else {
		target_ok = split_target(req);
	}
	req->deadline = c->now + s->cfg.handler_ns;
	c->send_by = req->deadline;
	c->head_at = c->view;
	c->head_len = n;
	c->head_pinned = false;
	http_in_consume(c, n);
	c->keep = h->keep_alive;
	if (h->body == ROTOR__HTTP_BODY_NONE) { /* most requests: nothing to set up */
		c->body_kind = ROTOR__HTTP_BODY_NONE;
		c->body_done = true;
		c->continue_due = false;
		c->body_err = 0;
		c->body_left = c->body_seen = 0;
		c->body_all = NULL;
		req->content_length = 0;
	} else {
		http_body_setup(c);
	}
	int status = 400;
	char allow[256];
	const struct http_route *r =
	    target_ok ? http_route_of(c, hp, &status, allow, sizeof(allow)) : NULL;
	bool head = h->method_len == 4 && !memcmp(h->method, "HEAD", 4);
	if (r && r->fixed && c->keep && c->body_done && h->minor == 1 && !head &&
	    c->out_len + r->fixed_len <= HTTP_OUT_CAP) {
		memcpy(c->out + c->out_len, r->fixed, r->fixed_len); /* a fixed response */
		c->out_len += r->fixed_len;
		return;
	}
	http_res_reset(c, head);
	if (h->body == ROTOR__HTTP_BODY_LENGTH && h->content_length > s->cfg.max_body) {
		http_error(c, 413, NULL);
		return;
	}
	if (!r) {
		http_error(c, status, status == 405 ? allow : NULL);
	} else {
		int rc = r->fn(req, &c->res, r->arg);
		if (rc < 0 && c->res.state != RES_DONE) {
			http_error(c, status_of(rc), NULL);
			c->keep = false;
		} else if (rc < 0) {
			c->keep = false;
		} else if (c->res.state == RES_NONE) {
			http_error(c, 500, NULL);
		} else if (c->res.state == RES_STREAM && rotor_http_stream_end(&c->res) < 0) {
			c->keep = false;
		}
	}
	if (c->keep && !http_body_drain(c))
		c->keep = false;
}

/* A head longer than max_head: 414 when the request line alone is, 431 otherwise. */
static void too_long(struct rotor_http_conn *c)
{
	size_t i = 0;
	while (i < c->view_len && (c->view[i] == '\r' || c->view[i] == '\n'))
		i++;
	bool line = memchr(c->view + i, '\n', c->view_len - i) != NULL;
	http_error(c, line ? 431 : 414, NULL);
}

/* A framing error (before a handler): the status, then the close. */
static void refuse(struct rotor_http_conn *c, int status)
{
	c->req.minor = 1;
	c->keep = false;
	c->body_done = true;
	c->continue_due = false;
	c->body_err = 0;
	http_res_reset(c, false);
	if (status == 0)
		too_long(c);
	else
		http_error(c, status, NULL);
}

/* ---- A connection ------------------------------------------------------------------------ */

/* Each worker's pool of receive buffers, shared by its connections (taken only while data
 * waits). */
static int pool_key = -1;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_destroy(void *br)
{
	rotor_bufring_destroy(br);
}

static void pool_key_make(void)
{
	pool_key = rotor_key_create(pool_destroy);
}

static void *pool_create(void *arg)
{
	(void)arg;
	struct rotor_bufring *br;
	return rotor_bufring_create(HTTP_POOL_BUFS, HTTP_POOL_BUFSZ, &br) < 0 ? NULL : br;
}

/*
 * Move the connection to the worker its packets arrive on (rotor_server_follow), between
 * requests with nothing at hand: the receive stream is detached (what it had received goes to
 * in[]), this worker's registration and send record given up. Returns true when serve must
 * return (moved, or the stream gone).
 */
static bool try_move(struct rotor_http_conn *c)
{
	int to = rotor_server_follow(c->sc);
	if (to < 0 || c->out_len || http_send_done(c) < 0)
		return false;
	ssize_t n = rotor_recv_stream_detach(c->rs, c->in, c->srv->in_cap);
	if (n < 0)
		return false;
	c->rs = NULL;
	c->in_len = (size_t)n;
	c->moved = true;
	rotor_op_destroy(c->send_op);
	c->send_op = NULL;
	if (c->fd != c->sock)
		rotor_close(c->fd, ROTOR_FOREVER); /* the ring's reference; sock stays open */
	c->fd = c->sock;
	if (rotor_server_move(c->sc, to) < 0)
		c->moved = false;
	return true;
}

static void conn_loop(struct rotor_http_conn *c)
{
	struct rotor_http_server *s = c->srv;
	int64_t idle_by = c->now + s->cfg.idle_ns;
	int64_t head_by = c->now + s->cfg.header_ns;
	for (;;) {
		if (!c->view_len) {
			/* Between requests: what was gathered goes out while still shielded, then
			 * a drain may close the connection. */
			if (c->out_len && http_flush(c) < 0)
				return;
			if (c->shielded) {
				rotor_shield_end();
				c->shielded = false;
			}
			if (!c->tls && try_move(c))
				return;
			int r = http_in_more(c, idle_by);
			if (r <= 0)
				return; /* end of stream, idle, cancelled (stopping), error */
			head_by = c->now + s->cfg.header_ns;
			if (!c->shielded)
				c->shielded = rotor_shield_begin(head_by + s->cfg.handler_ns) == 0;
		}
		int n = rotor__http_parse_request(c->view, c->view_len, c->fields,
		                                  s->cfg.max_fields, &c->head);
		if (n == 0) {
			if (c->view_len >= s->cfg.max_head) {
				refuse(c, 0);
				break;
			}
			int r = http_in_more(c, head_by);
			if (r <= 0)
				return;
			continue;
		}
		if (n < 0 || (size_t)n > s->cfg.max_head) {
			refuse(c, n < 0 ? rotor__http_error_status(n) : 0);
			break;
		}
		serve_request(c, (size_t)n);
		if (!c->keep)
			break;
		if (!c->view_len)
			idle_by = c->now + s->cfg.idle_ns;
		else
			head_by = c->now + s->cfg.header_ns; /* pipelined: the next one is here */
	}
	/* The last response goes out, then what the client still sends is dropped a while. */
	if (http_flush(c) == 0 && http_send_done(c) == 0)
		http_linger(c);
}

static void serve(struct rotor_server_conn *sc, void *arg)
{
	struct rotor_http_server *s = arg;
	struct rotor_http_conn *c = rotor_server_conn_data(sc);
	struct rotor_bufring *pool;
	c->sc = sc;
	c->sock = rotor_server_conn_fd(sc);
	if (!c->srv) {
		/* A new connection: responses go out as soon as they are gathered. */
		char *base = (char *)c;
		c->srv = s;
		c->fields = (struct rotor__http_field *)(void *)(base + s->fields_off);
		c->in = base + s->in_off;
		c->bufs[0] = base + s->out_off;
		c->bufs[1] = c->bufs[0] + HTTP_OUT_CAP;
		c->out = c->bufs[0];
		c->fd = c->sock;
		int one = 1;
		setsockopt(c->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c->now = rotor_now();
	if (s->cfg.tls) {
#ifdef ROTOR_HAVE_TLS
		struct rotor_stream_config tc = {.max_input =
		                                     s->in_cap > 65536 ? s->in_cap : 65536};
		if (rotor_tls_accept(c->sock, s->cfg.tls, &tc, c->now + s->cfg.header_ns,
		                     &c->tls) == 0) {
			c->view_len = 0;
			conn_loop(c);
		}
#endif
	} else {
		/* A keep-alive connection makes many operations: register it with the ring,
		 * which then skips a file lookup on each. */
		int fixed = rotor_fd_register(c->sock);
		c->fd = fixed >= 0 ? fixed : c->sock;
		if (rotor_op_create(&c->send_op) == 0 &&
		    rotor_worker_local(pool_key, pool_create, NULL, (void **)&pool) == 0 &&
		    rotor_recv_stream_create(c->fd, pool, &c->rs) == 0) {
			c->view = c->in;
			c->view_len = c->moved ? c->in_len : 0;
			c->moved = false;
			conn_loop(c);
		}
	}
	if (c->moved)
		return; /* serve runs again on the worker it moved to */
	if (rotor_task_cancelled() == 1 && c->sending &&
	    rotor_shield_begin(rotor_now() + 5 * NS_PER_S) == 0) {
		http_send_done(c); /* a drain: the last response goes out whole */
		rotor_shield_end();
	}
	if (c->shielded) {
		rotor_shield_end();
		c->shielded = false;
	}
	if (c->send_op)
		rotor_op_destroy(c->send_op); /* a send still in flight is cancelled first */
	c->send_op = NULL;
	if (c->rs)
		rotor_recv_stream_destroy(c->rs);
	c->rs = NULL;
	if (c->tls)
		rotor_stream_destroy(c->tls); /* close_notify if nothing sent it */
	c->tls = NULL;
	if (c->fd != c->sock)
		rotor_close(c->fd,
		            ROTOR_FOREVER); /* the ring's reference; the server closes sock */
	c->fd = c->sock;
}

static void conn_close(struct rotor_server_conn *sc, void *arg)
{
	(void)arg;
	struct rotor_http_conn *c = rotor_server_conn_data(sc);
	free(c->body_buf);
	c->body_buf = NULL;
}

/* ---- The server -------------------------------------------------------------------------- */

static size_t align_up(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

int rotor_http_server_create(const struct rotor_http_config *cfg, struct rotor_http_server **out)
{
	if (!cfg || !out || cfg->idle_ns < 0 || cfg->header_ns < 0 || cfg->body_ns < 0 ||
	    cfg->handler_ns < 0 || cfg->max_conns < 0 || cfg->backlog < 0)
		return -EINVAL;
	if (cfg->tls) {
#ifndef ROTOR_HAVE_TLS
		return -ENOTSUP;
#endif
	}
	pthread_once(&pool_once, pool_key_make);
	if (pool_key < 0)
		return pool_key;
	struct rotor_http_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	struct rotor_http_config *c = &s->cfg;
	if (!c->max_head)
		c->max_head = 8192;
	if (!c->max_body)
		c->max_body = 1 << 20;
	if (!c->max_fields)
		c->max_fields = 64;
	if (!c->idle_ns)
		c->idle_ns = 10 * NS_PER_S;
	if (!c->header_ns)
		c->header_ns = 10 * NS_PER_S;
	if (!c->body_ns)
		c->body_ns = 30 * NS_PER_S;
	if (!c->handler_ns)
		c->handler_ns = 30 * NS_PER_S;
	const char *name = c->server_name ? c->server_name : "rotor";
	if (*name) {
		size_t n = strlen(name);
		if (n > 80 || strpbrk(name, "\r\n")) {
			free(s);
			return -EINVAL;
		}
		memcpy(s->server_field, "Server: ", 8);
		memcpy(s->server_field + 8, name, n);
		memcpy(s->server_field + 8 + n, "\r\n", 2);
		s->server_len = n + 10;
	}
	c->server_name = NULL; /* not kept: the field above is */
	s->in_cap = c->max_head + HTTP_POOL_BUFSZ;
	s->fields_off = align_up(sizeof(struct rotor_http_conn));
	s->in_off = align_up(s->fields_off + c->max_fields * sizeof(struct rotor__http_field));
	s->out_off = align_up(s->in_off + s->in_cap);
	struct rotor_server_config sc = {
	    .host = c->host,
	    .port = c->port,
	    .backlog = c->backlog,
	    .workers = c->workers,
	    .max_conns = c->max_conns,
	    .flags = c->flags,
	    .conn_size = s->out_off + 2 * HTTP_OUT_CAP,
	    .serve = serve,
	    .close = conn_close,
	    .arg = s,
	};
	c->host = NULL;
	int r = rotor_server_create(&sc, &s->base);
	if (r < 0) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

int rotor_http_server_start(struct rotor_http_server *s)
{
	if (!s)
		return -EINVAL;
	s->started = true;
	int r = rotor_server_start(s->base);
	if (r < 0 && r != -ECANCELED)
		s->started = false;
	return r;
}

int rotor_http_server_stop(struct rotor_http_server *s)
{
	return s ? rotor_server_stop(s->base) : -EINVAL;
}

int rotor_http_server_destroy(struct rotor_http_server *s)
{
	if (!s)
		return -EINVAL;
	int r = rotor_server_destroy(s->base);
	if (r < 0)
		return r;
	http_routes_free(s);
	free(s);
	return 0;
}

int rotor_http_server_port(const struct rotor_http_server *s)
{
	return s ? rotor_server_port(s->base) : -EINVAL;
}

struct rotor_server *rotor_http_server_base(struct rotor_http_server *s)
{
	return s ? s->base : NULL;
}
