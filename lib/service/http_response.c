/*
 * The HTTP server's responses (include/rotor/http.h): heads built with plain copies into
 * the connection's output buffer, bodies from memory, from a file read through the ring, or
 * streamed in chunks. Responses gather in one buffer while the kernel sends the other, and
 * go out when the connection is about to wait (http_flush), so the answers to the requests
 * of one read leave in one send.
 */
#include "http_conn.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Wait for the send in flight, if any: 0 once all of it went out. */
int http_send_done(struct rotor_http_conn *c)
{
	if (!c->sending)
		return 0;
	ssize_t w = rotor_op_wait(c->send_op, c->send_by);
	size_t want = c->sending;
	c->sending = 0;
	return w < 0 ? (int)w : (size_t)w == want ? 0 : -EPIPE;
}

__attribute__((noinline)) static int flush_tls(struct rotor_http_conn *c)
{
	ssize_t w = c->out_len ? rotor_stream_write(c->tls, c->out, c->out_len, c->send_by) : 0;
	c->out_len = 0;
	if (w < 0)
		return (int)w;
	return rotor_stream_flush(c->tls, c->send_by);
}

/* Start sending what out holds and gather what follows in the other buffer: the task goes
 * on while the kernel sends, and waits only if the send is still going at the next flush. */
int http_flush(struct rotor_http_conn *c)
{
	if (__builtin_expect(c->tls != NULL, 0))
		return flush_tls(c);
	if (!c->out_len)
		return 0; /* a send in flight is waited for by the next flush, or at the end */
	int r = http_send_done(c);
	if (r < 0)
		return r;
	r = rotor_send_start(c->send_op, c->fd, c->out, c->out_len, MSG_WAITALL);
	if (r < 0)
		return r;
	c->sending = c->out_len;
	c->out = c->out == c->bufs[0] ? c->bufs[1] : c->bufs[0];
	c->out_len = 0;
	return 0;
}

int http_append(struct rotor_http_conn *c, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		if (c->out_len == HTTP_OUT_CAP) {
			int r = http_flush(c);
			if (r < 0)
				return r;
		}
		size_t k = HTTP_OUT_CAP - c->out_len;
		if (k > n)
			k = n;
		memcpy(c->out + c->out_len, s, k);
		c->out_len += k;
		s += k;
		n -= k;
	}
	return 0;
}

const char *rotor__http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return status < 300   ? "OK"
		       : status < 400 ? "Redirect"
		       : status < 500 ? "Client Error"
		                      : "Server Error";
	}
}

#define PUT_LIT(d, lit) (memcpy((d), (lit), sizeof(lit) - 1), (d) + sizeof(lit) - 1)

static char *put(char *d, const char *s, size_t n)
{
	memcpy(d, s, n);
	return d + n;
}

static char *put_uint(char *d, uint64_t v)
{
	char tmp[24];
	int i = sizeof(tmp);
	do
		tmp[--i] = (char)('0' + v % 10);
	while ((v /= 10));
	memcpy(d, tmp + i, sizeof(tmp) - (size_t)i);
	return d + sizeof(tmp) - i;
}

/* Whether the connection must close after this response: the request said so, or a body
 * left unread cannot be dropped (a 100-continue never answered, more than HTTP_DRAIN_MAX). */
static bool must_close(struct rotor_http_conn *c)
{
	if (!c->keep)
		return true;
	if (c->body_done)
		return false;
	if (c->continue_due || c->body_err) {
		c->keep = false;
		return true;
	}
	if (c->body_kind == ROTOR__HTTP_BODY_LENGTH && c->body_left > HTTP_DRAIN_MAX) {
		c->keep = false;
		return true;
	}
	return false;
}

/* The status line, Server, Content-Type, Content-Length or Transfer-Encoding (length < 0:
 * chunked; -2: neither, the body ends at the close), the added fields, Connection. */
static int put_head(struct rotor_http_response *res, int status, const char *type, int64_t length)
{
	struct rotor_http_conn *c = res->c;
	struct rotor_http_server *s = c->srv;
	size_t tlen = type ? strlen(type) : 0;
	if (tlen > 128)
		return -EINVAL;
	if (c->out_len + HTTP_HEAD_MAX + res->extra_len > HTTP_OUT_CAP) {
		int r = http_flush(c);
		if (r < 0)
			return r;
	}
	bool close = must_close(c);
	char *h = c->out + c->out_len;
	bool cacheable = !close && !res->extra_len && length >= 0 && c->req.minor == 1;
	if (cacheable && c->hc.n && c->hc.status == status && c->hc.len == (uint64_t)length &&
	    c->hc.type == type && c->hc.tlen == tlen &&
	    (!tlen || !memcmp(type, c->hc.type_copy, tlen))) {
		memcpy(h, c->hc.bytes, c->hc.n);
		c->out_len += c->hc.n;
		return 0;
	}
	char *d = PUT_LIT(h, "HTTP/1.1 ");
	*d++ = (char)('0' + status / 100);
	*d++ = (char)('0' + status / 10 % 10);
	*d++ = (char)('0' + status % 10);
	*d++ = ' ';
	const char *why = rotor__http_reason(status);
	d = put(d, why, strlen(why));
	d = PUT_LIT(d, "\r\n");
	d = put(d, s->server_field, s->server_len);
	if (type) {
		d = PUT_LIT(d, "Content-Type: ");
		d = put(d, type, tlen);
		d = PUT_LIT(d, "\r\n");
	}
	if (length >= 0) {
		if (status != 204 && status != 304) {
			d = PUT_LIT(d, "Content-Length: ");
			d = put_uint(d, (uint64_t)length);
			d = PUT_LIT(d, "\r\n");
		}
	} else if (length == -1) {
		d = PUT_LIT(d, "Transfer-Encoding: chunked\r\n");
	} else {
		close = true;
		c->keep = false;
	}
	if (res->extra_len)
		d = put(d, res->extra, res->extra_len);
	if (close)
		d = PUT_LIT(d, "Connection: close\r\n");
	else if (c->req.minor == 0)
		d = PUT_LIT(d, "Connection: keep-alive\r\n");
	d = PUT_LIT(d, "\r\n");
	size_t n = (size_t)(d - h);
	c->out_len += n;
	if (cacheable && n <= sizeof(c->hc.bytes) && tlen <= sizeof(c->hc.type_copy)) {
		memcpy(c->hc.bytes, h, n);
		memcpy(c->hc.type_copy, type ? type : "", tlen);
		c->hc.type = type;
		c->hc.tlen = (unsigned)tlen;
		c->hc.len = (uint64_t)length;
		c->hc.status = status;
		c->hc.n = (unsigned)n;
	}
	return 0;
}

/* A type is refused before anything is begun: over 128 bytes (put_head's room), or holding
 * CR or LF, which would end the field and let the rest be a field (or a body) of its own. */
static int check_begin(struct rotor_http_response *res, int status, const char *type)
{
	if (!res || status < 200 || status > 599 ||
	    (type && (strlen(type) > 128 || strpbrk(type, "\r\n"))))
		return -EINVAL;
	if (res->state != RES_NONE)
		return -EALREADY;
	if (status == 204 || status == 304)
		res->head_only = true;
	return 0;
}

int rotor_http_respond(struct rotor_http_response *res, int status, const char *type,
                       const void *body, size_t len)
{
	int r = check_begin(res, status, type);
	if (r < 0)
		return r;
	if (!body && len)
		return -EINVAL;
	res->state = RES_DONE;
	struct rotor_http_conn *c = res->c;
	r = put_head(res, status, type, (int64_t)len);
	if (r < 0 || res->head_only || !len)
		return r;
	if (c->out_len + len <= HTTP_OUT_CAP) { /* a short body: the common case */
		memcpy(c->out + c->out_len, body, len);
		c->out_len += len;
		return 0;
	}
	return http_append(c, body, len);
}

int rotor_http_respond_file(struct rotor_http_response *res, int status, const char *type, int fd,
                            int64_t offset, size_t len)
{
	int r = check_begin(res, status, type);
	if (r < 0)
		return r;
	if (fd < 0 || offset < 0)
		return -EINVAL;
	struct rotor_http_conn *c = res->c;
	res->state = RES_DONE;
	r = put_head(res, status, type, (int64_t)len);
	while (r == 0 && !res->head_only && len > 0) {
		if (c->out_len == HTTP_OUT_CAP && (r = http_flush(c)) < 0)
			break;
		size_t room = HTTP_OUT_CAP - c->out_len;
		ssize_t got = rotor_read(fd, c->out + c->out_len, room < len ? room : len, offset,
		                         c->req.deadline);
		if (got <= 0) {
			r = got < 0 ? (int)got : -EIO; /* the promised length cannot be kept */
			c->keep = false;
		} else {
			c->out_len += (size_t)got;
			len -= (size_t)got;
			offset += got;
		}
	}
	return r;
}

int rotor_http_stream_begin(struct rotor_http_response *res, int status, const char *type)
{
	int r = check_begin(res, status, type);
	if (r < 0)
		return r;
	struct rotor_http_conn *c = res->c;
	res->state = RES_STREAM;
	res->chunked = c->req.minor == 1 && !res->head_only;
	/* HEAD gets the head a GET would: chunked for HTTP/1.1, with no body. */
	return put_head(res, status, type, c->req.minor == 1 ? -1 : -2);
}

int rotor_http_stream_write(struct rotor_http_response *res, const void *data, size_t len)
{
	if (!res || res->state != RES_STREAM || (!data && len))
		return -EINVAL;
	struct rotor_http_conn *c = res->c;
	if (rotor_now() > c->req.deadline) {
		c->keep = false;
		return -ETIMEDOUT;
	}
	if (!len || res->head_only)
		return 0;
	int r = 0;
	if (res->chunked) {
		char line[24];
		static const char hex[] = "0123456789abcdef";
		int i = (int)sizeof(line);
		line[--i] = '\n';
		line[--i] = '\r';
		size_t v = len;
		do
			line[--i] = hex[v & 15];
		while ((v >>= 4));
		r = http_append(c, line + i, sizeof(line) - (size_t)i);
	}
	if (r == 0)
		r = http_append(c, data, len);
	if (r == 0 && res->chunked)
		r = http_append(c, "\r\n", 2);
	if (r == 0)
		r = http_flush(c);
	if (r < 0)
		c->keep = false;
	return r;
}

int rotor_http_stream_end(struct rotor_http_response *res)
{
	if (!res || res->state != RES_STREAM)
		return -EINVAL;
	res->state = RES_DONE;
	if (!res->chunked)
		return 0; /* HEAD, or HTTP/1.0: the close ends it */
	int r = http_append(res->c, "0\r\n\r\n", 5);
	if (r < 0)
		res->c->keep = false;
	return r;
}

static bool has_crlf(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return true;
	return false;
}

int rotor_http_header_add(struct rotor_http_response *res, const char *name, const char *value)
{
	if (!res || !name || !value || !*name || has_crlf(name) || has_crlf(value) ||
	    strchr(name, ':') || !strcasecmp(name, "Content-Length") ||
	    !strcasecmp(name, "Transfer-Encoding"))
		return -EINVAL;
	if (res->state != RES_NONE)
		return -EALREADY;
	if (!strcasecmp(name, "Connection")) {
		if (strcasecmp(value, "close"))
			return -EINVAL;
		res->c->keep = false; /* put_head says it */
		return 0;
	}
	size_t n = strlen(name), v = strlen(value);
	if (res->extra_len + n + v + 4 > HTTP_EXTRA_CAP)
		return -ENOBUFS;
	char *d = res->extra + res->extra_len;
	d = put(d, name, n);
	d = PUT_LIT(d, ": ");
	d = put(d, value, v);
	d = PUT_LIT(d, "\r\n");
	res->extra_len = (size_t)(d - res->extra);
	return 0;
}

void http_res_reset(struct rotor_http_conn *c, bool head)
{
	c->res.c = c;
	c->res.state = RES_NONE;
	c->res.head_only = head;
	c->res.chunked = false;
	c->res.extra_len = 0;
}

/* A response the server makes itself (an error, 404, 405 with allow): text, then a close
 * unless the status leaves the framing intact (404, 405, 501 keep the connection). */
int http_error(struct rotor_http_conn *c, int status, const char *allow)
{
	struct rotor_http_response *res = &c->res;
	char body[64];
	if (status != 404 && status != 405 && status != 501)
		c->keep = false;
	if (res->state == RES_STREAM) {
		c->keep = false; /* a response has begun: only a close can end it */
		return 0;
	}
	if (res->state != RES_NONE)
		return 0;
	res->extra_len = 0;
	if (allow) {
		int r = rotor_http_header_add(res, "Allow", allow);
		if (r < 0)
			return r;
	}
	const char *why = rotor__http_reason(status);
	size_t n = strlen(why);
	memcpy(body, why, n);
	body[n++] = '\n';
	return rotor_http_respond(res, status, "text/plain", body, n);
}

/* After the last response: stop sending, then read and drop what the client still sends
 * for a moment, so that the kernel does not answer unread data with a reset that would
 * destroy the response before the client reads it. */
void http_linger(struct rotor_http_conn *c)
{
	int64_t idle = c->srv->cfg.idle_ns;
	int64_t deadline = rotor_now() + (idle < 2000000000LL ? idle : 2000000000LL);
	const void *data;
	if (c->tls) {
		ssize_t k;
		if (rotor_stream_shutdown(c->tls, deadline) == 0)
			while ((k = rotor_stream_peek(c->tls, 1, &data, deadline)) > 0)
				rotor_stream_consume(c->tls, (size_t)k);
		return;
	}
	if (http_send_done(c) < 0 || rotor_shutdown(c->fd, SHUT_WR, deadline) < 0)
		return;
	while (rotor_recv_stream_next(c->rs, &data, deadline) > 0)
		;
}
