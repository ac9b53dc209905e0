/*
 * The HTTP/1.1 client's requests and responses (include/rotor/http_client.h), on a stream
 * from the pool (http_pool.c) and the framing of http_parse.c. A request is written whole
 * into the stream's output buffer and sent with one flush (a streamed body through the same
 * buffer, flushed at its end); the response head is read with one read_until and copied, so
 * that its fields outlive the stream's buffers; the body is read from the stream as its
 * framing says. A response owns its connection until the body ends (back to the pool if
 * keep-alive allows) or an error breaks it (closed). Redirects, when asked for, loop over
 * single exchanges.
 */
#include "http_parse.h"
#include "http_pool.h"

#include <rotor/http_client.h>
#include <rotor/stream.h>
#include <rotor/task.h>
#include <rotor/tls.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FIELDS       100
#define DEFAULT_PER_ORIG 64
#define DEFAULT_IDLE     (60LL * 1000000000)
#define DEFAULT_HEAD     (64 * 1024)
#define DEFAULT_BODY     (64 * 1024 * 1024)
#define HEAD_STACK       2048
#define STREAM_PIECE     (16 * 1024)

struct response {
	struct rotor_http_response pub;
	struct rotor__http_conn *k; /* NULL once given back */
	int worker;
	int64_t deadline;
	enum rotor__http_body kind;
	uint64_t left; /* BODY_LENGTH: bytes to come */
	struct rotor__http_chunked ch;
	bool keep_alive;
	bool done;
	int err;    /* sticky */
	char *head; /* the head's copy, in the same allocation as hdrs, after it */
	struct rotor_http_client_header *hdrs;
	char *body;
};

/* ---- Clients -------------------------------------------------------------------------- */

int rotor_http_client_create(const struct rotor_http_client_config *cfg,
                             struct rotor_http_client **out)
{
	if (!out)
		return -EINVAL;
	static const struct rotor_http_client_config none;
	if (!cfg)
		cfg = &none;
	struct rotor_http_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max_per_origin = cfg->max_per_origin ? cfg->max_per_origin : DEFAULT_PER_ORIG;
	c->idle_timeout = cfg->idle_timeout ? cfg->idle_timeout : DEFAULT_IDLE;
	c->max_head = cfg->max_head ? cfg->max_head : DEFAULT_HEAD;
	c->max_body = cfg->max_body ? cfg->max_body : DEFAULT_BODY;
	c->max_redirects = cfg->max_redirects;
	atomic_init(&c->refs, 1);
	atomic_init(&c->dead, false);
	atomic_init(&c->tls, cfg->tls);
	rotor_mutex_init(&c->tls_lock);
	c->own_tls = !cfg->tls;
	if (c->own_tls && cfg->ca_file) {
		/* Checked now, so that a wrong path is the create's error, not the first request's.
		 */
		if (access(cfg->ca_file, R_OK) != 0) {
			int err = -errno;
			free(c);
			return err;
		}
		c->ca_file = strdup(cfg->ca_file);
		if (!c->ca_file) {
			free(c);
			return -ENOMEM;
		}
	}
	*out = c;
	return 0;
}

int rotor_http_client_destroy(struct rotor_http_client *c)
{
	if (!c)
		return -EINVAL;
	atomic_store(&c->dead, true);
	if (rotor_current())
		rotor__http_pool_close(c);
	rotor__http_client_unref(c);
	return 0;
}

/* ---- Requests ------------------------------------------------------------------------- */

static bool idempotent(const char *m)
{
	static const char *const list[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
		if (!strcmp(m, list[i]))
			return true;
	return false;
}

/* A token (RFC 9110 section 5.6.2): method and field names. */
static bool token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f ||
		    strchr("\"(),/:;<=>?@[\\]{}", *s))
			return false;
	return true;
}

static bool field_value_ok(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return true;
}

/* Append to the head being built; -EMSGSIZE when it does not fit. */
struct head {
	char *buf;
	size_t len, cap;
};

static int put(struct head *h, const char *s, size_t n)
{
	if (h->len + n > h->cap) {
		size_t cap = h->cap * 2 > h->len + n ? h->cap * 2 : h->len + n + 256;
		char *b = malloc(cap);
		if (!b)
			return -ENOMEM;
		memcpy(b, h->buf, h->len);
		if (h->cap > HEAD_STACK)
			free(h->buf);
		h->buf = b;
		h->cap = cap;
	}
	memcpy(h->buf + h->len, s, n);
	h->len += n;
	return 0;
}

static int puts_(struct head *h, const char *s)
{
	return put(h, s, strlen(s));
}

static int build_head(const struct rotor_http_client_request *req, const struct rotor_http_url *u,
                      const char *method, struct head *h)
{
	bool has_host = false;
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct rotor_http_client_header *f = &req->headers[i];
		if (!f->name || !f->value || !token(f->name) || !field_value_ok(f->value))
			return -EINVAL;
		if (!strcasecmp(f->name, "host"))
			has_host = true;
	}
	int err = 0;
	err |= puts_(h, method);
	err |= put(h, " ", 1);
	err |= puts_(h, u->target);
	err |= put(h, " HTTP/1.1\r\n", 11);
	if (!has_host) {
		bool v6 = strchr(u->host, ':') != NULL;
		err |= put(h, v6 ? "Host: [" : "Host: ", v6 ? 7 : 6);
		err |= puts_(h, u->host);
		if (v6)
			err |= put(h, "]", 1);
		if (u->port != (u->https ? 443 : 80)) {
			char port[8];
			int n = 7;
			port[n] = '\0';
			for (int p = u->port; p; p /= 10)
				port[--n] = (char)('0' + p % 10);
			port[--n] = ':';
			err |= puts_(h, port + n);
		}
		err |= put(h, "\r\n", 2);
	}
	for (size_t i = 0; i < req->nheaders; i++) {
		err |= puts_(h, req->headers[i].name);
		err |= put(h, ": ", 2);
		err |= puts_(h, req->headers[i].value);
		err |= put(h, "\r\n", 2);
	}
	if (req->body_fn && !req->body_len) {
		err |= puts_(h, "Transfer-Encoding: chunked\r\n");
	} else if (req->body_len || req->body_fn || !strcmp(method, "POST") ||
	           !strcmp(method, "PUT")) {
		char cl[48];
		int n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", req->body_len);
		err |= put(h, cl, (size_t)n);
	}
	err |= put(h, "\r\n", 2);
	return err ? -ENOMEM : 0;
}

/* The streamed body: chunked, or exactly body_len bytes. */
static int send_streamed(struct rotor_stream *s, const struct rotor_http_client_request *req,
                         int64_t deadline)
{
	char *buf = malloc(STREAM_PIECE + 32);
	if (!buf)
		return -ENOMEM;
	bool chunked = !req->body_len;
	size_t sent = 0;
	int err = 0;
	for (;;) {
		/* Room before the data for the chunk's size line, after it for its CRLF. */
		char *data = buf + 24;
		ssize_t n = req->body_fn(req->body_arg, data, STREAM_PIECE);
		if (n < 0) {
			err = (int)n;
			break;
		}
		if ((size_t)n > STREAM_PIECE) {
			err = -EINVAL;
			break;
		}
		if (!chunked) {
			if (sent + (size_t)n > req->body_len || (n == 0 && sent != req->body_len)) {
				err = -EINVAL;
				break;
			}
			if (n == 0)
				break;
			sent += (size_t)n;
			ssize_t w = rotor_stream_write(s, data, (size_t)n, deadline);
			if (w < 0) {
				err = (int)w;
				break;
			}
			continue;
		}
		if (n == 0) {
			ssize_t w = rotor_stream_write(s, "0\r\n\r\n", 5, deadline);
			err = w < 0 ? (int)w : 0;
			break;
		}
		char line[24];
		int l = snprintf(line, sizeof(line), "%zx\r\n", (size_t)n);
		memcpy(data - l, line, (size_t)l);
		memcpy(data + n, "\r\n", 2);
		ssize_t w = rotor_stream_write(s, data - l, (size_t)(l + n + 2), deadline);
		if (w < 0) {
			err = (int)w;
			break;
		}
	}
	free(buf);
	return err ? err : rotor_stream_flush(s, deadline);
}

static int send_request(struct rotor_stream *s, const struct head *h,
                        const struct rotor_http_client_request *req, int64_t deadline)
{
	if (req->body_fn) {
		ssize_t w = rotor_stream_write(s, h->buf, h->len, deadline);
		return w < 0 ? (int)w : send_streamed(s, req, deadline);
	}
	struct iovec iov[2] = {{h->buf, h->len}, {(void *)req->body, req->body_len}};
	ssize_t w = rotor_stream_writev(s, iov, req->body_len ? 2 : 1, deadline);
	if (w < 0)
		return (int)w;
	return rotor_stream_flush(s, deadline);
}

/* The response head: skips 1xx but 101; fills r's status, headers and framing. Returns 0,
 * 1 when the connection ended or was reset before any byte, or a negative errno. */
static int read_head(struct response *r, struct rotor_http_client *c, bool head_req)
{
	struct rotor_stream *s = r->k->s;
	struct rotor__http_field fields[MAX_FIELDS];
	bool first = true;
	for (;;) {
		const void *line;
		ssize_t n =
		    rotor_stream_read_until(s, "\r\n\r\n", 4, c->max_head, &line, r->deadline);
		if (n == 0 || ((n == -ECONNRESET || n == -EPIPE) && first))
			return 1;
		if (n == -ENODATA)
			return -EBADMSG;
		if (n < 0)
			return (int)n;
		first = false;
		struct rotor__http_head h;
		int p =
		    rotor__http_parse_response(line, (size_t)n, head_req, fields, MAX_FIELDS, &h);
		if (p == -ENOBUFS)
			return -EMSGSIZE;
		if (p < 0)
			return p;
		if (p != n)
			return -EBADMSG;
		if (h.status >= 100 && h.status < 200 && h.status != 101)
			continue;
		/* Copy the head and turn its fields into NUL-terminated strings in the copy. */
		r->hdrs = malloc(sizeof(*r->hdrs) * h.nfields + (size_t)n + 1);
		if (!r->hdrs)
			return -ENOMEM;
		r->head = (char *)(r->hdrs + h.nfields);
		memcpy(r->head, line, (size_t)n);
		r->head[n] = '\0';
		const char *base = line;
		for (unsigned i = 0; i < h.nfields; i++) {
			char *name = r->head + (fields[i].name - base);
			char *value = r->head + (fields[i].value - base);
			name[fields[i].name_len] = '\0';
			value[fields[i].value_len] = '\0';
			r->hdrs[i].name = name;
			r->hdrs[i].value = value;
		}
		char *reason = r->head + (h.reason - base);
		reason[h.reason_len] = '\0';
		r->pub.status = h.status;
		r->pub.minor = h.minor;
		r->pub.reason = reason;
		r->pub.headers = r->hdrs;
		r->pub.nheaders = h.nfields;
		r->kind = h.body;
		/* After a 101 the connection speaks another protocol: never pooled. */
		r->keep_alive = h.keep_alive && h.status != 101;
		r->pub.content_length = h.body == ROTOR__HTTP_BODY_LENGTH
		                            ? (int64_t)h.content_length
		                        : h.body == ROTOR__HTTP_BODY_NONE ? 0
		                                                          : -1;
		r->left = h.content_length;
		r->done = h.body == ROTOR__HTTP_BODY_NONE ||
		          (h.body == ROTOR__HTTP_BODY_LENGTH && h.content_length == 0);
		if (h.body == ROTOR__HTTP_BODY_CHUNKED)
			rotor__http_chunked_init(&r->ch, 0, 0);
		return 0;
	}
}

static void release(struct response *r, bool reusable)
{
	if (r->k) {
		rotor__http_conn_put(r->k, reusable);
		r->k = NULL;
	}
}

static ssize_t fail(struct response *r, ssize_t err)
{
	r->err = (int)err;
	release(r, false);
	return err;
}

/* The body has ended: the connection goes back, unless the server sent more than it
 * declared (bytes already received behind the body). */
static ssize_t finish(struct response *r, ssize_t n)
{
	r->done = true;
	if (!r->k)
		return n;
	const void *d;
	if (r->kind != ROTOR__HTTP_BODY_CLOSE && rotor_stream_peek(r->k->s, 0, &d, 0) > 0)
		return fail(r, -EPROTO);
	release(r, r->keep_alive && r->kind != ROTOR__HTTP_BODY_CLOSE);
	return n;
}

static int send_once(struct rotor_http_client *c, const struct rotor_http_client_request *req,
                     struct rotor_http_response **out)
{
	if (!c || !req || !req->url || !out || (req->body_len && !req->body && !req->body_fn))
		return -EINVAL;
	struct rotor_task *self = rotor_current();
	if (!self)
		return -EPERM;
	const char *method = req->method ? req->method : "GET";
	if (!token(method))
		return -EINVAL;
	struct rotor_http_url url, *u = &url;
	int err = rotor_http_url_parse(req->url, u);
	char stack[HEAD_STACK];
	struct head h = {stack, 0, sizeof(stack)};
	if (err == 0)
		err = build_head(req, u, method, &h);
	struct response *r = err ? NULL : calloc(1, sizeof(*r));
	if (err == 0 && !r)
		err = -ENOMEM;
	if (err < 0)
		goto out;
	r->deadline = req->deadline > 0 ? req->deadline : ROTOR_FOREVER;
	r->worker = rotor_task_worker(self);
	bool retry = idempotent(method) && !req->body_fn;
	bool fresh = false;
	for (;;) {
		err = rotor__http_conn_get(c, u, fresh, r->deadline, &r->k);
		if (err < 0)
			break;
		bool reused = r->k->reused;
		if (reused)
			rotor__http_count(r->k, ROTOR__HTTP_REUSED);
		err = send_request(r->k->s, &h, req, r->deadline);
		int stale = err == -EPIPE || err == -ECONNRESET;
		if (err == 0) {
			err = read_head(r, c, !strcmp(method, "HEAD"));
			stale = err == 1;
		}
		if (err == 0)
			break;
		release(r, false);
		free(r->hdrs);
		r->hdrs = NULL;
		if (stale && reused && retry) {
			retry = false;
			fresh = true;
			continue; /* counted once the new connection carries it */
		}
		if (stale)
			err = -ECONNRESET;
		break;
	}
	if (err == 0) {
		rotor__http_count(r->k, ROTOR__HTTP_REQUESTS);
		if (fresh)
			rotor__http_count(r->k, ROTOR__HTTP_RETRIES);
		if (r->done)
			finish(r, 0);
		if (r->err) {
			err = r->err;
		} else {
			*out = &r->pub;
			r = NULL;
		}
	}
out:
	if (r) {
		release(r, false);
		free(r->hdrs);
		free(r);
	}
	if (h.cap > HEAD_STACK)
		free(h.buf);
	return err;
}

/* ---- Redirects ------------------------------------------------------------------------ */

/* Read and drop what is left of a redirect's body, up to 64 KiB, so that its connection may
 * carry the next request; a longer one is closed instead. */
static void drain(struct rotor_http_response *r)
{
	char buf[4096];
	for (size_t got = 0; got < 65536;) {
		ssize_t n = rotor_http_response_read(r, buf, sizeof(buf));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	rotor_http_response_destroy(r);
}

int rotor_http_client_send(struct rotor_http_client *c, const struct rotor_http_client_request *req,
                           struct rotor_http_response **out)
{
	struct rotor_http_response *r;
	int err = send_once(c, req, &r);
	if (err < 0 || !c->max_redirects) {
		if (err == 0)
			*out = r;
		return err;
	}
	struct rotor_http_client_request q = *req;
	char *url = NULL;
	struct rotor_http_client_header *hs = NULL;
	for (unsigned n = 0;; n++) {
		int st = r->status;
		const char *loc = rotor_http_response_header(r, "location");
		bool keep = st == 307 || st == 308;
		if ((st != 301 && st != 302 && st != 303 && !keep) || !loc || !*loc ||
		    (keep && q.body_fn))
			break; /* the response itself (a streamed body cannot be sent again) */
		if (n == c->max_redirects) {
			rotor_http_response_destroy(r);
			err = -ELOOP;
			break;
		}
		char *next = rotor__http_resolve_location(q.url, loc);
		drain(r);
		if (!next) {
			err = -ENOMEM;
			break;
		}
		const char *m = q.method ? q.method : "GET";
		if (!keep && (st == 303 ? strcmp(m, "HEAD") != 0 : !strcmp(m, "POST"))) {
			q.method = "GET"; /* RFC 9110 15.4: 303 always, 301 and 302 as agents do */
			q.body = NULL;
			q.body_len = 0;
			q.body_fn = NULL;
		}
		if (!hs && q.nheaders && !rotor__http_same_origin(q.url, next)) {
			/* Credentials meant for one origin are not handed to another. */
			hs = malloc(sizeof(*hs) * q.nheaders);
			if (!hs) {
				free(next);
				err = -ENOMEM;
				break;
			}
			size_t k = 0;
			for (size_t i = 0; i < q.nheaders; i++)
				if (strcasecmp(q.headers[i].name, "authorization") &&
				    strcasecmp(q.headers[i].name, "cookie") &&
				    strcasecmp(q.headers[i].name, "proxy-authorization"))
					hs[k++] = q.headers[i];
			q.headers = hs;
			q.nheaders = k;
		}
		free(url);
		q.url = url = next;
		err = send_once(c, &q, &r);
		if (err < 0)
			break;
	}
	free(url);
	free(hs);
	if (err == 0)
		*out = r;
	return err;
}

static ssize_t read_chunked(struct response *r, char *buf, size_t len)
{
	struct rotor_stream *s = r->k->s;
	size_t want = 1;
	for (;;) {
		const void *d;
		ssize_t avail = rotor_stream_peek(s, want, &d, r->deadline);
		if (avail == 0 || avail == -ENODATA)
			return fail(r, -EPROTO);
		if (avail < 0)
			return fail(r, avail);
		const char *data;
		size_t dlen = 0;
		size_t in = (size_t)avail < len ? (size_t)avail : len;
		ssize_t used = rotor__http_chunked_feed(&r->ch, d, in, &data, &dlen);
		if (used < 0)
			return fail(r, -EBADMSG);
		if (dlen)
			memcpy(buf, data, dlen);
		rotor_stream_consume(s, (size_t)used);
		if (r->ch.done)
			return finish(r, (ssize_t)dlen);
		if (dlen)
			return (ssize_t)dlen;
		want = used ? 1 : (size_t)avail + 1;
	}
}

ssize_t rotor_http_response_read(struct rotor_http_response *pub, void *buf, size_t len)
{
	if (!pub || !buf || !len)
		return -EINVAL;
	struct response *r = (struct response *)pub;
	struct rotor_task *self = rotor_current();
	if (!self || rotor_task_worker(self) != r->worker)
		return -EPERM;
	if (r->err)
		return r->err;
	if (r->done)
		return 0;
	if (!r->k)
		return -EPROTO;
	ssize_t n;
	switch (r->kind) {
	case ROTOR__HTTP_BODY_LENGTH:
		n = rotor_stream_read(r->k->s, buf, len < r->left ? len : r->left, r->deadline);
		if (n == 0)
			return fail(r, -EPROTO);
		if (n < 0)
			return fail(r, n);
		r->left -= (uint64_t)n;
		return r->left ? n : finish(r, n);
	case ROTOR__HTTP_BODY_CHUNKED:
		return read_chunked(r, buf, len);
	case ROTOR__HTTP_BODY_CLOSE:
		n = rotor_stream_read(r->k->s, buf, len, r->deadline);
		if (n == 0)
			return finish(r, 0);
		return n < 0 ? fail(r, n) : n;
	default:
		return finish(r, 0);
	}
}

int rotor_http_client_fetch(struct rotor_http_client *c,
                            const struct rotor_http_client_request *req, size_t max_body,
                            struct rotor_http_response **out)
{
	if (!c || !out)
		return -EINVAL;
	if (!max_body)
		max_body = c->max_body;
	struct rotor_http_response *pub;
	int err = rotor_http_client_send(c, req, &pub);
	if (err < 0)
		return err;
	struct response *r = (struct response *)pub;
	size_t cap = 16 * 1024, len = 0;
	if (pub->content_length >= 0) {
		if ((uint64_t)pub->content_length > max_body) {
			err = -EFBIG;
			goto fail;
		}
		cap = (size_t)pub->content_length + 1;
	}
	r->body = malloc(cap);
	if (!r->body) {
		err = -ENOMEM;
		goto fail;
	}
	while (!r->done) {
		if (len + 1 >= cap) {
			if (cap > max_body) {
				err = -EFBIG;
				goto fail;
			}
			size_t ncap = cap * 2 > max_body + 1 ? max_body + 2 : cap * 2;
			char *b = realloc(r->body, ncap);
			if (!b) {
				err = -ENOMEM;
				goto fail;
			}
			r->body = b;
			cap = ncap;
		}
		ssize_t n = rotor_http_response_read(pub, r->body + len, cap - 1 - len);
		if (n < 0) {
			err = (int)n;
			goto fail;
		}
		len += (size_t)n;
		if (len > max_body) {
			err = -EFBIG;
			goto fail;
		}
	}
	if (r->err) {
		err = r->err;
		goto fail;
	}
	r->body[len] = '\0';
	pub->body = r->body;
	pub->body_len = len;
	*out = pub;
	return 0;
fail:
	rotor_http_response_destroy(pub);
	return err;
}

const char *rotor_http_response_header(const struct rotor_http_response *r, const char *name)
{
	if (!r || !name)
		return NULL;
	for (size_t i = 0; i < r->nheaders; i++)
		if (!strcasecmp(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

int rotor_http_response_destroy(struct rotor_http_response *pub)
{
	if (!pub)
		return -EINVAL;
	struct response *r = (struct response *)pub;
	struct rotor_task *self = rotor_current();
	if (r->k && (!self || rotor_task_worker(self) != r->worker))
		return -EPERM;
	release(r, false);
	free(r->hdrs); /* and the head after it */
	free(r->body);
	free(r);
	return 0;
}
