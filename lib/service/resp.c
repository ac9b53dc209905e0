/*
 * RESP2 (rotor/resp.h): the request parser and the reply writers. The parser follows Redis
 * 7.0's networking.c (processMultibulkBuffer, processInlineBuffer, sdssplitargs) rule for
 * rule, so that a stream Redis refuses is refused here with the same text, and one it takes
 * is taken the same way; it parses a whole request or nothing, so the caller keeps the bytes
 * of an incomplete one and calls again when more arrive.
 */
#include <rotor/resp.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Redis's string2ll: optional '-', digits, no leading zero (but "0"), no '+', no space,
 * within long long. */
static bool str2ll(const char *s, size_t n, long long *out)
{
	if (n == 0 || n > 20)
		return false;
	if (n == 1 && s[0] == '0') {
		*out = 0;
		return true;
	}
	bool neg = false;
	size_t i = 0;
	if (s[0] == '-') {
		neg = true;
		if (++i == n)
			return false;
	}
	if (s[i] < '1' || s[i] > '9')
		return false;
	unsigned long long v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return false;
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return false;
		*out = (long long)v;
	}
	return true;
}

static ssize_t protocol_error(struct rotor_resp_req *req, const char *text)
{
	req->error = text;
	return -EPROTO;
}

/* Where the count line starting at p ends: the first '\r' with a byte after it (Redis
 * skips that byte unread), or NULL. *big: none within ROTOR_RESP_INLINE_MAX. */
static const char *line_end(const char *p, const char *end, bool *big)
{
	const char *cr = memchr(p, '\r', (size_t)(end - p));
	*big = false;
	if (!cr) {
		*big = end - p > ROTOR_RESP_INLINE_MAX;
		return NULL;
	}
	if (cr + 1 >= end)
		return NULL;
	return cr;
}

static ssize_t parse_multibulk(const char *buf, size_t len, struct rotor_resp_req *req)
{
	const char *end = buf + len, *p = buf;
	bool big;
	const char *cr = line_end(p, end, &big);
	if (!cr)
		return big ? protocol_error(req, "Protocol error: too big mbulk count string") : 0;
	long long n;
	if (!str2ll(p + 1, (size_t)(cr - p - 1), &n) || n > ROTOR_RESP_MAX_ARGS)
		return protocol_error(req, "Protocol error: invalid multibulk length");
	p = cr + 2;
	if (n <= 0) {
		req->argc = 0;
		return p - buf;
	}
	long long max_bulk = req->max_bulk > 0 ? req->max_bulk : ROTOR_RESP_MAX_BULK_DEF;
	for (long long i = 0; i < n; i++) {
		if (p >= end)
			return 0;
		cr = line_end(p, end, &big);
		if (!cr)
			return big ? protocol_error(req,
			                            "Protocol error: too big bulk count string")
			           : 0;
		if (*p != '$') {
			/* Redis: "expected '$', got '%c'", the byte as it is. */
			static __thread char text[40];
			memcpy(text, "Protocol error: expected '$', got ' '", 38);
			text[35] = *p;
			return protocol_error(req, text);
		}
		long long bl;
		if (!str2ll(p + 1, (size_t)(cr - p - 1), &bl) || bl < 0 || bl > max_bulk)
			return protocol_error(req, "Protocol error: invalid bulk length");
		p = cr + 2;
		if ((unsigned long long)(end - p) < (unsigned long long)bl + 2)
			return 0;
		if (i < req->cap) {
			req->argv[i].ptr = p;
			req->argv[i].len = (size_t)bl;
		}
		p += bl + 2; /* Redis does not look at the two bytes after the string either */
	}
	if (n > req->cap) {
		req->argc = (int)n;
		return -ENOSPC;
	}
	req->argc = (int)n;
	return p - buf;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* sdssplitargs over line[0, n) (a NUL ends it, as it ends Redis's C string): arguments
 * decoded into scratch. Returns the count, -EPROTO for unbalanced quotes, -ENOSPC past cap
 * (counting on, into req->argc). */
static int split_inline(const char *line, size_t n, struct rotor_resp_req *req)
{
	const char *nul = memchr(line, 0, n);
	const char *p = line, *end = nul ? nul : line + n;
	char *d = req->scratch;
	int argc = 0;
#define AT(q) ((q) < end ? *(q) : '\0')
	for (;;) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p >= end)
			break;
		bool inq = false, insq = false, done = false;
		char *start = d;
		while (!done) {
			char c = AT(p);
			if (inq) {
				if (c == '\\' && AT(p + 1) == 'x' && hexval(AT(p + 2)) >= 0 &&
				    hexval(AT(p + 3)) >= 0) {
					*d++ = (char)(hexval(AT(p + 2)) * 16 + hexval(AT(p + 3)));
					p += 3;
				} else if (c == '\\' && AT(p + 1)) {
					p++;
					switch (*p) {
					case 'n':
						*d++ = '\n';
						break;
					case 'r':
						*d++ = '\r';
						break;
					case 't':
						*d++ = '\t';
						break;
					case 'b':
						*d++ = '\b';
						break;
					case 'a':
						*d++ = '\a';
						break;
					default:
						*d++ = *p;
						break;
					}
				} else if (c == '"') {
					if (AT(p + 1) && !isspace((unsigned char)AT(p + 1)))
						return -EPROTO;
					done = true;
				} else if (!c) {
					return -EPROTO;
				} else {
					*d++ = c;
				}
			} else if (insq) {
				if (c == '\\' && AT(p + 1) == '\'') {
					p++;
					*d++ = '\'';
				} else if (c == '\'') {
					if (AT(p + 1) && !isspace((unsigned char)AT(p + 1)))
						return -EPROTO;
					done = true;
				} else if (!c) {
					return -EPROTO;
				} else {
					*d++ = c;
				}
			} else {
				switch (c) {
				case ' ':
				case '\n':
				case '\r':
				case '\t':
				case '\0':
					done = true;
					break;
				case '"':
					inq = true;
					break;
				case '\'':
					insq = true;
					break;
				default:
					*d++ = c;
					break;
				}
			}
			if (p < end)
				p++;
		}
		if (argc < req->cap) {
			req->argv[argc].ptr = start;
			req->argv[argc].len = (size_t)(d - start);
		}
		argc++;
	}
#undef AT
	req->argc = argc;
	return argc > req->cap ? -ENOSPC : argc;
}

static ssize_t parse_inline(const char *buf, size_t len, struct rotor_resp_req *req)
{
	const char *nl = memchr(buf, '\n', len);
	if (!nl) {
		if (len > ROTOR_RESP_INLINE_MAX)
			return protocol_error(req, "Protocol error: too big inline request");
		return 0;
	}
	size_t n = (size_t)(nl - buf);
	if (n > ROTOR_RESP_INLINE_MAX)
		return protocol_error(req, "Protocol error: too big inline request");
	if (!req->scratch)
		return -EINVAL;
	if (n && buf[n - 1] == '\r')
		n--;
	int r = split_inline(buf, n, req);
	if (r == -EPROTO)
		return protocol_error(req, "Protocol error: unbalanced quotes in request");
	if (r < 0)
		return r;
	return nl + 1 - buf;
}

ssize_t rotor_resp_parse(const char *buf, size_t len, struct rotor_resp_req *req)
{
	if (!buf || !req || (req->cap > 0 && !req->argv) || req->cap < 0)
		return -EINVAL;
	req->argc = 0;
	if (len == 0)
		return 0;
	return buf[0] == '*' ? parse_multibulk(buf, len, req) : parse_inline(buf, len, req);
}

/* ---- Replies ------------------------------------------------------------------------- */

static int reserve(struct rotor_resp_out *o, size_t n)
{
	if (o->cap - o->len >= n)
		return 0;
	if (n > SIZE_MAX / 2 - o->len)
		return -ENOMEM;
	size_t cap = o->cap ? o->cap : 256;
	while (cap - o->len < n)
		cap *= 2;
	char *b;
	if (o->owned) {
		b = realloc(o->buf, cap);
	} else {
		b = malloc(cap);
		if (b && o->len)
			memcpy(b, o->buf, o->len);
	}
	if (!b)
		return -ENOMEM;
	o->buf = b;
	o->cap = cap;
	o->owned = 1;
	return 0;
}

/* The digits of v, backwards from the end of a 24-byte tmp: returns where they start. */
static char *digits(char *end, long long v)
{
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	do
		*--end = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		*--end = '-';
	return end;
}

static int put_line(struct rotor_resp_out *o, char type, const char *s, size_t n)
{
	if (reserve(o, n + 3) < 0)
		return -ENOMEM;
	char *d = o->buf + o->len;
	*d++ = type;
	memcpy(d, s, n);
	d += n;
	*d++ = '\r';
	*d++ = '\n';
	o->len = (size_t)(d - o->buf);
	return 0;
}

static int put_number(struct rotor_resp_out *o, char type, long long v)
{
	char tmp[24];
	char *s = digits(tmp + sizeof(tmp), v);
	return put_line(o, type, s, (size_t)(tmp + sizeof(tmp) - s));
}

int rotor_resp_put_simple(struct rotor_resp_out *o, const char *s)
{
	if (!o || !s)
		return -EINVAL;
	return put_line(o, '+', s, strlen(s));
}

int rotor_resp_put_error(struct rotor_resp_out *o, const char *s)
{
	if (!o || !s)
		return -EINVAL;
	return put_line(o, '-', s, strlen(s));
}

int rotor_resp_put_int(struct rotor_resp_out *o, long long v)
{
	if (!o)
		return -EINVAL;
	return put_number(o, ':', v);
}

int rotor_resp_put_bulk(struct rotor_resp_out *o, const void *p, size_t n)
{
	if (!o || (!p && n))
		return -EINVAL;
	if (n > SIZE_MAX / 4 || reserve(o, n + 32) < 0)
		return -ENOMEM;
	char tmp[24];
	char *s = digits(tmp + sizeof(tmp), (long long)n);
	size_t dl = (size_t)(tmp + sizeof(tmp) - s);
	char *d = o->buf + o->len;
	*d++ = '$';
	memcpy(d, s, dl);
	d += dl;
	*d++ = '\r';
	*d++ = '\n';
	if (n)
		memcpy(d, p, n);
	d += n;
	*d++ = '\r';
	*d++ = '\n';
	o->len = (size_t)(d - o->buf);
	return 0;
}

int rotor_resp_put_nil(struct rotor_resp_out *o)
{
	if (!o)
		return -EINVAL;
	return put_line(o, '$', "-1", 2);
}

int rotor_resp_put_array(struct rotor_resp_out *o, long long n)
{
	if (!o)
		return -EINVAL;
	return n < 0 ? put_line(o, '*', "-1", 2) : put_number(o, '*', n);
}

int rotor_resp_put_raw(struct rotor_resp_out *o, const void *p, size_t n)
{
	if (!o || (!p && n))
		return -EINVAL;
	if (reserve(o, n) < 0)
		return -ENOMEM;
	if (n)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}
