/*
 * The HTTP server's input (include/rotor/http.h): the connection's view of the bytes
 * received and not yet taken, grown by one read at a time; request bodies by Content-Length
 * or chunked (through the framing module's decoder), handed out in place or gathered
 * whole; the header lookup; and rotor_http_safe_path.
 *
 * Bytes are parsed where the kernel (or the TLS stream) put them; only a head that spans
 * reads is gathered in the connection's in[] buffer. A head parsed in place lives in a
 * receive buffer that the next read gives back, so a handler that reads past what is at
 * hand has the head copied ("pinned") into in[] first, every pointer moved with it.
 */
#include "http_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_in_consume(struct rotor_http_conn *c, size_t n)
{
	c->view += n;
	c->view_len -= n;
	if (c->tls)
		rotor_stream_consume(c->tls, n);
}

/*
 * Wait for more bytes, after sending what is gathered: the view grows by at least one byte
 * and stays contiguous. Returns the new bytes, 0 at the end of the stream, or a negative
 * errno (-ETIMEDOUT at deadline, -ECANCELED, the receive's error).
 */
int http_in_more(struct rotor_http_conn *c, int64_t deadline)
{
	if (c->out_len) {
		int r = http_flush(c);
		if (r < 0)
			return r;
	}
	const void *data;
	if (c->tls) {
		ssize_t n = rotor_stream_peek(c->tls, c->view_len + 1, &data, deadline);
		if (n <= 0)
			return n == -ENODATA ? 0 : (int)n;
		c->now = rotor_now();
		size_t old = c->view_len;
		c->view = data;
		c->view_len = (size_t)n;
		return (int)(n - (ssize_t)old);
	}
	/* What is at hand moves to in[] before its buffer goes back with the next read. */
	if (c->view_len && c->view != c->in) {
		memmove(c->in, c->view, c->view_len);
		c->view = c->in;
	}
	ssize_t n = rotor_recv_stream_next(c->rs, &data, deadline);
	if (n <= 0)
		return (int)n;
	c->now = rotor_now();
	if (!c->view_len) {
		c->view = data;
		c->view_len = (size_t)n;
		return (int)n;
	}
	if (c->view_len + (size_t)n > c->srv->in_cap)
		return -EMSGSIZE; /* not for a head: in_cap holds max_head and a buffer */
	memcpy(c->in + c->view_len, data, (size_t)n);
	c->view_len += (size_t)n;
	return (int)n;
}

static void rebase(const char **p, const char *from, const char *to)
{
	if (*p)
		*p = to + (*p - from);
}

/* Copy the head into in[] (where nothing else lives while a body is read), with every
 * pointer into it, so that the next read cannot take it away. */
static void pin_head(struct rotor_http_conn *c)
{
	c->head_pinned = true;
	const char *from = c->head_at;
	if (from >= c->in && from < c->in + c->srv->in_cap)
		return; /* gathered in in[] already: nothing reads into in[] during a body */
	char *to = c->in;
	memcpy(to, from, c->head_len);
	c->head_at = to;
	rebase(&c->req.method, from, to);
	rebase(&c->req.target, from, to);
	rebase(&c->req.path, from, to);
	rebase(&c->req.query, from, to);
	for (unsigned i = 0; i < c->head.nfields; i++) {
		rebase(&c->fields[i].name, from, to);
		rebase(&c->fields[i].value, from, to);
	}
}

/* The body's state, once the head is taken: c->head parsed, c->now the time of its read. */
void http_body_setup(struct rotor_http_conn *c)
{
	c->body_kind = c->head.body;
	c->body_err = 0;
	c->body_seen = 0;
	c->body_all = NULL;
	c->body_all_len = 0;
	c->body_left = 0;
	c->body_by = c->now + c->srv->cfg.body_ns;
	if (c->body_kind == ROTOR__HTTP_BODY_LENGTH) {
		c->body_left = c->head.content_length;
		c->body_done = c->body_left == 0;
		c->req.content_length = c->head.content_length;
	} else if (c->body_kind == ROTOR__HTTP_BODY_CHUNKED) {
		rotor__http_chunked_init(&c->chunked, 0, c->srv->cfg.max_head);
		c->body_done = false;
		c->req.content_length = UINT64_MAX;
	} else {
		c->body_done = true;
		c->req.content_length = 0;
	}
	c->continue_due = c->head.expect_continue && !c->body_done && c->head.minor == 1;
}

static ssize_t body_fail(struct rotor_http_conn *c, int err)
{
	c->body_err = err;
	c->keep = false;
	return err;
}

ssize_t rotor_http_body_read(struct rotor_http_request *req, const void **data)
{
	if (!req || !data || !req->conn)
		return -EINVAL;
	struct rotor_http_conn *c = req->conn;
	if (c->body_err)
		return c->body_err;
	if (c->body_done)
		return 0;
	if (c->continue_due) {
		c->continue_due = false;
		/* Only before the final response, and only while the client waits for it. */
		if (c->res.state == RES_NONE && !c->view_len) {
			int r = http_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
			if (r < 0)
				return body_fail(c, r);
		}
	}
	for (;;) {
		if (c->view_len) {
			if (c->body_kind == ROTOR__HTTP_BODY_LENGTH) {
				size_t k = c->view_len;
				if (k > c->body_left)
					k = (size_t)c->body_left;
				*data = c->view;
				http_in_consume(c, k);
				c->body_left -= k;
				c->body_seen += k;
				c->body_done = c->body_left == 0;
				return (ssize_t)k;
			}
			const char *p = NULL;
			size_t dl = 0;
			ssize_t r =
			    rotor__http_chunked_feed(&c->chunked, c->view, c->view_len, &p, &dl);
			if (r < 0)
				return body_fail(c, -EBADMSG);
			http_in_consume(c, (size_t)r);
			if (c->chunked.done)
				c->body_done = true;
			if (dl) {
				c->body_seen += dl;
				if (c->body_seen > c->srv->cfg.max_body)
					return body_fail(c, -EFBIG);
				*data = p;
				return (ssize_t)dl;
			}
			if (c->body_done)
				return 0;
			if (r > 0)
				continue;
			return body_fail(c, -EBADMSG); /* the decoder took nothing: never so */
		}
		if (!c->head_pinned)
			pin_head(c);
		int r = http_in_more(c, c->body_by);
		if (r == 0)
			return body_fail(c, -ECONNRESET); /* the client ended the stream mid-body */
		if (r < 0)
			return body_fail(c, r);
	}
}

ssize_t rotor_http_body(struct rotor_http_request *req, size_t max, const void **data)
{
	if (!req || !data || !req->conn)
		return -EINVAL;
	struct rotor_http_conn *c = req->conn;
	if (c->body_all) {
		*data = c->body_all;
		return c->body_all_len;
	}
	if (!max || max > c->srv->cfg.max_body)
		max = c->srv->cfg.max_body;
	if (c->body_seen)
		return -EALREADY; /* read in pieces already */
	if (c->body_kind == ROTOR__HTTP_BODY_LENGTH && c->body_left > max)
		return -EFBIG; /* unread: dropped or the connection closed, as said */
	/* All of it at hand: in place, no copy (valid until the handler returns). */
	if (c->body_kind != ROTOR__HTTP_BODY_CHUNKED && c->view_len >= c->body_left) {
		const void *p = c->view;
		ssize_t n = rotor_http_body_read(req, &p);
		if (n < 0)
			return n;
		c->body_all = *data = n ? p : "";
		c->body_all_len = n;
		return n;
	}
	size_t len = 0;
	for (;;) {
		const void *p;
		ssize_t n = rotor_http_body_read(req, &p);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		if (len + (size_t)n > max)
			return body_fail(c, -EFBIG);
		if (len + (size_t)n > c->body_cap) {
			size_t cap = c->body_cap ? c->body_cap : 4096;
			if (c->body_kind == ROTOR__HTTP_BODY_LENGTH && cap < c->head.content_length)
				cap = (size_t)c->head.content_length;
			while (cap < len + (size_t)n)
				cap *= 2;
			if (cap > max)
				cap = max;
			char *b = realloc(c->body_buf, cap);
			if (!b)
				return body_fail(c, -ENOMEM);
			c->body_buf = b;
			c->body_cap = cap;
		}
		memcpy(c->body_buf + len, p, (size_t)n);
		len += (size_t)n;
	}
	c->body_all = *data = len ? (const void *)c->body_buf : "";
	c->body_all_len = (ssize_t)len;
	return (ssize_t)len;
}

/* After the handler: drop what it left of the body, so that the next request is framed
 * where it starts. Returns whether the connection can go on. */
bool http_body_drain(struct rotor_http_conn *c)
{
	if (c->body_done)
		return true;
	if (!c->keep || c->continue_due)
		return false;
	uint64_t start = c->body_seen;
	uint64_t left = c->body_left;
	for (;;) {
		const void *p;
		ssize_t n = rotor_http_body_read(&c->req, &p);
		if (n == 0)
			return c->keep;
		if (n < 0)
			return false;
		if (c->body_kind == ROTOR__HTTP_BODY_LENGTH) {
			if (left - c->body_left > HTTP_DRAIN_MAX)
				return false;
		} else if (c->body_seen - start > HTTP_DRAIN_MAX) {
			return false;
		}
	}
}

const char *rotor_http_header(const struct rotor_http_request *req, const char *name, size_t *len)
{
	if (!req || !name || !req->conn)
		return NULL;
	const struct rotor_http_conn *c = req->conn;
	size_t n = strlen(name);
	for (unsigned i = 0; i < c->head.nfields; i++) {
		const struct rotor__http_field *f = &c->fields[i];
		if (f->name_len == n && !strncasecmp(f->name, name, n)) {
			if (len)
				*len = f->value_len;
			return f->value;
		}
	}
	return NULL;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int rotor_http_safe_path(const char *root, const char *rel, size_t n, char *dst, size_t cap)
{
	if (!root || (!rel && n) || !dst)
		return -EINVAL;
	size_t rlen = strlen(root);
	if (rlen + n + 2 > cap)
		return -ENAMETOOLONG;
	memcpy(dst, root, rlen);
	size_t o = rlen;
	dst[o++] = '/';
	size_t comp = o;
	for (size_t i = 0; i <= n; i++) {
		char ch = i < n ? rel[i] : '/';
		if (ch == 0)
			return -EINVAL;
		if (ch == '%') {
			int hi = i + 2 < n ? hexval(rel[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(rel[i + 2]) : -1;
			if (lo < 0)
				return -EINVAL;
			ch = (char)(hi * 16 + lo);
			i += 2;
			if (ch == 0)
				return -EINVAL;
		}
		if (ch != '/') {
			dst[o++] = ch;
			continue;
		}
		size_t cl = o - comp;
		if (cl == 0 || (cl == 1 && dst[comp] == '.') ||
		    (cl == 2 && dst[comp] == '.' && dst[comp + 1] == '.'))
			return -EINVAL;
		if (i < n)
			dst[o++] = '/';
		comp = o;
	}
	dst[o] = 0;
	return 0;
}
