/*
 * A small HTTP/1.1 server: one listener per worker on the same port (SO_REUSEPORT), a task
 * per connection reading through a receive stream (one multishot recv per connection, into
 * buffers its worker's connections share, parsed in place), keep-alive and pipelining (every
 * complete request of one read is answered in order, the answers sent together), static files read
 * through the ring, and a graceful stop on SIGINT/SIGTERM as in echo_server.c.
 *
 *   http_server [--port N] [--workers N] [--host ADDR] [--root DIR] [--max-conns N]
 *               [--idle-ms N] [--no-steer] [--stats] [--tls-cert PEM --tls-key PEM]
 *
 *   GET /plaintext, GET /   200 "Hello, World!" (text/plain)
 *   GET /static/<path>      the file <path> under --root (default: the current directory)
 *
 * With several workers, each steers its listener (rotor_sock_steer): a connection goes to the
 * worker on the CPU that handled its handshake, unless that worker serves clearly more than
 * another, and later moves to the worker on the CPU its packets arrive on if its client's
 * thread moves (rotor/server.h); --no-steer leaves the choice to the kernel's hash.
 * Prints "listening on HOST:PORT (N workers)" once it accepts, and at the stop
 * "connections per worker: N0 N1 ...; moved M", then "stopped". Port 0 picks a free port.
 * Responses carry no Date header, so the same request always gets the same bytes. A client
 * that takes longer than --idle-ms (default 10000) to send a whole request is closed.
 * --stats prints each worker's counters (rotor_stats_format) when the stop begins.
 *
 * With --tls-cert and --tls-key (PEM files) it serves HTTPS instead (TLS 1.2 and 1.3, ALPN
 * http/1.1, AES-128-GCM preferred): each connection's TLS handshake and records go through a
 * TLS stream (rotor/tls.h, rotor/stream.h), the same parser and responses; connections do
 * not move between workers. Built without OpenSSL, the options are refused.
 *
 * parse_request() is a pure function over a byte buffer so that it can be fuzzed alone.
 * Paths under /static/ are percent-decoded and then every component is checked: empty, "."
 * and ".." components are refused with 400, so no request names a file outside --root (a
 * symbolic link inside --root is followed: the root's owner decides what it points at).
 */
#include <rotor.h>
#include <rotor/server.h>
#ifdef ROTOR_HAVE_TLS
#include <rotor/stream.h>
#include <rotor/tls.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEAD 8192 /* request line + header fields + the blank line */
#define MAX_BODY 8192 /* a GET may carry a small body: read, then ignored */
#define IN_CAP   (MAX_HEAD + MAX_BODY)
#define OUT_CAP  (16 * 1024)
#define HEAD_MAX 512 /* the longest response head append_head writes */
/* Each worker's receive buffers: shared by its connections, taken only while data waits. */
#define POOL_BUFFERS     512
#define POOL_BUFFER_SIZE 4096
#define NS_PER_MS        1000000LL

/* ---- The parser -------------------------------------------------------------------------- */

enum method { METHOD_GET = 1, METHOD_HEAD = 2 };

struct request {
	int method;         /* METHOD_GET or METHOD_HEAD */
	const char *target; /* origin-form, points into the parsed buffer */
	size_t target_len;
	int minor;       /* HTTP/1.minor: 0 or 1 (1.2 and later are read as 1.1) */
	bool keep_alive; /* the connection stays open after the response */
	size_t body_len; /* Content-Length: the body follows the head and is consumed */
};

/* RFC 9110 tchar (letters, digits and !#$%&'*+-.^_`|~): 1 for each such byte, 0 for every
 * other (bytes from 128 included). One load per byte: a range check and strchr were 7% of the
 * server's instructions, and a 128-bit set tested by shifts still twice the table's. */
static const unsigned char tchar[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
};

static bool is_tchar(unsigned char c)
{
	return tchar[c];
}

/* Whether the 8 bytes at p are all in [lo, 0x7e] (lo <= 0x80), a word at a time: bit 7 of a
 * byte of x - lo*ONES & ~x says that byte is below lo, and of x + ONES | x that it is above
 * 0x7e (a borrow or carry crossing bytes only ever flags a word that holds such a byte
 * already). Printable ASCII, the common case, then costs no per-byte loop. */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static bool word_printable(const char *p, unsigned lo)
{
	uint64_t x;
	memcpy(&x, p, sizeof(x));
	return !((((x - ONES * lo) & ~x) | ((x + ONES) | x)) & HIGHS);
}

/* A field value may hold visible ASCII, SP, HTAB and obs-text; never CR, LF, NUL or CTLs. */
static bool is_vchar_or_ws(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

static bool token_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(s, lit, n);
}

/* Connection: a comma-separated list of options; only close and keep-alive matter here. */
static void parse_connection(const char *v, size_t n, bool *close, bool *keep)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (token_eq(v + s, e - s, "close"))
			*close = true;
		else if (token_eq(v + s, e - s, "keep-alive"))
			*keep = true;
	}
}

static int parse_method(const char *m, size_t n)
{
	static const char *const known[] = {"POST",    "PUT",   "DELETE", "CONNECT",
	                                    "OPTIONS", "TRACE", "PATCH"};
	if (n == 3 && !memcmp(m, "GET", 3))
		return METHOD_GET;
	if (n == 4 && !memcmp(m, "HEAD", 4))
		return METHOD_HEAD;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == n && !memcmp(m, known[i], n))
			return -405;
	return -400;
}

/* method SP request-target SP HTTP-version, CR already stripped. */
static int parse_request_line(const char *l, size_t n, struct request *out)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)l[i]))
		i++;
	if (i == 0 || i == n || l[i] != ' ')
		return -400;
	size_t mlen = i++;
	size_t t = i;
	while (i + 8 <= n && word_printable(l + i, '!'))
		i += 8;
	while (i < n && (unsigned char)l[i] > ' ' && (unsigned char)l[i] < 0x7f)
		i++;
	if (i == t || i == n || l[i] != ' ' || l[t] != '/')
		return -400;
	out->target = l + t;
	out->target_len = i - t;
	const char *v = l + i + 1;
	if (n - i - 1 != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
	    v[7] < '0' || v[7] > '9')
		return -400;
	if (v[5] != '1')
		return -505;
	out->minor = v[7] == '0' ? 0 : 1;
	int m = parse_method(l, mlen);
	if (m < 0)
		return m;
	out->method = m;
	return 0;
}

/*
 * parse_request - parse one request at the start of buf[0..len). Returns the bytes it takes
 * (head and body; the caller answers it and parses again from there), 0 when the request is
 * not complete yet, or minus an HTTP status for a request that must be refused (the
 * connection is then closed): -400 malformed, -405 a known method other than GET and HEAD,
 * -413 body over MAX_BODY, -414 request line over MAX_HEAD, -431 head over MAX_HEAD, -501
 * Transfer-Encoding, -505 HTTP major version other than 1. *out is set only on success.
 * The result depends on the bytes alone, never on how they were split between reads.
 */
static int parse_request(const char *buf, size_t len, struct request *out)
{
	size_t lim = len < MAX_HEAD ? len : MAX_HEAD;
	size_t pos = 0;
	struct request req = {0};
	bool have_line = false, conn_close = false, conn_keep = false, chunked = false;
	bool have_length = false;
	int hosts = 0;
	unsigned long long length = 0;

	/* RFC 9112 2.2: ignore empty lines before the request line. */
	while (pos < lim && (buf[pos] == '\n' || buf[pos] == '\r')) {
		if (buf[pos] == '\n')
			pos++;
		else if (pos + 1 == lim)
			break;
		else if (buf[pos + 1] == '\n')
			pos += 2;
		else
			return -400;
	}
	for (;;) {
		const char *nl = memchr(buf + pos, '\n', lim - pos);
		if (!nl) {
			if (len < MAX_HEAD)
				return 0;
			return have_line ? -431 : -414;
		}
		size_t end = (size_t)(nl - buf);
		size_t cend = end > pos && buf[end - 1] == '\r' ? end - 1 : end;
		const char *l = buf + pos;
		size_t n = cend - pos;
		pos = end + 1;
		if (!have_line) {
			int r = parse_request_line(l, n, &req);
			if (r < 0)
				return r;
			have_line = true;
			continue;
		}
		if (n == 0)
			break; /* the blank line ends the head */
		size_t i = 0;
		while (i < n && is_tchar((unsigned char)l[i]))
			i++;
		if (i == 0 || i == n || l[i] != ':')
			return -400; /* also obs-fold (a line starting with SP/HTAB) */
		size_t name_len = i++;
		while (i < n && (l[i] == ' ' || l[i] == '\t'))
			i++;
		size_t e = n;
		while (e > i && (l[e - 1] == ' ' || l[e - 1] == '\t'))
			e--;
		size_t c = i;
		while (c + 8 <= e && word_printable(l + c, ' '))
			c += 8;
		/* The rest, as one word ending at e when the value is that long. */
		if (c < e && e - i >= 8 && word_printable(l + e - 8, ' '))
			c = e;
		for (; c < e; c++)
			if (!is_vchar_or_ws((unsigned char)l[c]))
				return -400;
		const char *v = l + i;
		size_t vlen = e - i;
		if (token_eq(l, name_len, "host")) {
			hosts++;
		} else if (token_eq(l, name_len, "connection")) {
			parse_connection(v, vlen, &conn_close, &conn_keep);
		} else if (token_eq(l, name_len, "transfer-encoding")) {
			chunked = true;
		} else if (token_eq(l, name_len, "content-length")) {
			unsigned long long x = 0;
			if (vlen == 0 || vlen > 18)
				return -400;
			for (size_t k = 0; k < vlen; k++) {
				if (v[k] < '0' || v[k] > '9')
					return -400;
				x = x * 10 + (unsigned)(v[k] - '0');
			}
			if (have_length && x != length)
				return -400;
			have_length = true;
			length = x;
		}
	}
	if (hosts > 1 || (req.minor == 1 && hosts == 0))
		return -400; /* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
	if (chunked)
		return have_length ? -400 : -501;
	if (length > MAX_BODY)
		return -413;
	if (pos + length > len)
		return 0;
	req.body_len = (size_t)length;
	req.keep_alive = !conn_close && (req.minor == 1 || conn_keep);
	*out = req;
	return (int)(pos + length);
}

/* ---- Connections -------------------------------------------------------------------------- */

/* A connection's state (rotor_server_conn_data), zeroed at the accept; the server module
 * frees it, and closes the socket, after serve. */
struct conn {
	int fd;     /* what its I/O calls take: registered with the worker's ring, or sock */
	int sock;   /* the socket itself (rotor_server_conn_fd), kept so the connection can move */
	bool moved; /* in holds what the worker it left had received */
	size_t in_len;
	size_t out_len;  /* gathered in out, not yet started */
	size_t sending;  /* bytes of the other buffer the kernel is sending (send_op) */
	int64_t send_by; /* responses to what arrived last must be sent by then */
	struct rotor_op *send_op;
	struct rotor_stream *tls; /* HTTPS: responses go through this stream, not send_op */
	char *out;                /* one of bufs: the other is the kernel's while sending */
	char in[IN_CAP];
	char bufs[2][OUT_CAP];
};

static struct rotor_server *server;
static bool print_stats; /* --stats */
static int sigfd = -1;
static int64_t idle_ns = 10000 * NS_PER_MS;
/* On SIGTERM a request being answered gets this long to finish (rotor_runtime_drain). */
static int64_t drain_ns = 5000 * NS_PER_MS;
static const char *root = ".";

enum { KEEP = 1, CLOSE = 0 }; /* after a response; a negative errno aborts */

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

/* Wait for the send in flight, if any: 0 once all of it went out. */
static int send_done(struct conn *c)
{
	if (!c->sending)
		return 0;
	ssize_t w = rotor_op_wait(c->send_op, c->send_by);
	size_t want = c->sending;
	c->sending = 0;
	return w < 0 ? (int)w : (size_t)w == want ? 0 : -EPIPE;
}

/* Start sending what out holds, and gather what follows in the other buffer: the task goes
 * back to reading while the kernel sends, and switches only if the send is still going when
 * the next one is due (a task switch per request fewer than waiting for each send). */
/* Out of line, so that the plain path's flush stays small enough to be inlined. */
__attribute__((noinline)) static int flush_tls(struct conn *c);
#ifdef ROTOR_HAVE_TLS
static struct rotor_tls_ctx *tls_ctx; /* --tls-cert, --tls-key */
static void serve_tls(struct rotor_server_conn *sc, struct conn *c);
#endif

static int flush(struct conn *c)
{
	if (__builtin_expect(c->tls != NULL, 0))
		return flush_tls(c);
	int r = send_done(c);
	if (r < 0 || !c->out_len)
		return r;
	r = rotor_send_start(c->send_op, c->fd, c->out, c->out_len, MSG_WAITALL);
	if (r < 0)
		return r;
	c->sending = c->out_len;
	c->out = c->out == c->bufs[0] ? c->bufs[1] : c->bufs[0];
	c->out_len = 0;
	return 0;
}

static int append(struct conn *c, const void *p, size_t n)
{
	if (c->out_len + n > OUT_CAP) {
		int r = flush(c);
		if (r < 0)
			return r;
	}
	memcpy(c->out + c->out_len, p, n); /* n <= OUT_CAP: headers and short bodies only */
	c->out_len += n;
	return 0;
}

static char *put(char *d, const char *s)
{
	size_t n = strlen(s);
	memcpy(d, s, n);
	return d + n;
}

/* put for a string literal: its length is known at compile time. */
#define PUT_LIT(d, lit) (memcpy((d), (lit), sizeof(lit) - 1), (d) + sizeof(lit) - 1)

static char *put_uint(char *d, size_t v)
{
	char tmp[24];
	int i = sizeof(tmp);
	do
		tmp[--i] = (char)('0' + v % 10);
	while ((v /= 10));
	memcpy(d, tmp + i, sizeof(tmp) - (size_t)i);
	return d + sizeof(tmp) - i;
}

/* The status line and the fixed header set; HTTP/1.0 keep-alive is said out loud. Built with
 * plain copies: snprintf was 3% of a keep-alive request's CPU in perf. */
static int append_head(struct conn *c, const struct request *req, int status, const char *type,
                       size_t length, bool keep)
{
	/* Built in place: type is one of content_type()'s short names, so HEAD_MAX holds it. */
	if (c->out_len + HEAD_MAX > OUT_CAP) {
		int r = flush(c);
		if (r < 0)
			return r;
	}
	char *h = c->out + c->out_len;
	char *d = PUT_LIT(h, "HTTP/1.1 ");
	*d++ = (char)('0' + status / 100); /* 100 to 599 */
	*d++ = (char)('0' + status / 10 % 10);
	*d++ = (char)('0' + status % 10);
	*d++ = ' ';
	d = put(d, reason(status));
	d = PUT_LIT(d, "\r\nServer: rotor\r\nContent-Type: ");
	d = put(d, type);
	d = PUT_LIT(d, "\r\nContent-Length: ");
	d = put_uint(d, length);
	d = PUT_LIT(d, "\r\n");
	if (!keep)
		d = PUT_LIT(d, "Connection: close\r\n");
	else if (req->minor == 0)
		d = PUT_LIT(d, "Connection: keep-alive\r\n");
	if (status == 405)
		d = PUT_LIT(d, "Allow: GET, HEAD\r\n");
	d = PUT_LIT(d, "\r\n");
	c->out_len += (size_t)(d - h);
	return 0;
}

/* A response with a short text body (HEAD gets the head only). */
static int respond(struct conn *c, const struct request *req, int status, const char *type,
                   const char *body, bool keep)
{
	size_t n = strlen(body);
	int r = append_head(c, req, status, type, n, keep);
	if (r == 0 && req->method != METHOD_HEAD)
		r = append(c, body, n);
	return r < 0 ? r : keep ? KEEP : CLOSE;
}

static int respond_error(struct conn *c, const struct request *req, int status, bool keep)
{
	char body[64];
	snprintf(body, sizeof(body), "%s\n", reason(status));
	return respond(c, req, status, "text/plain", body, keep);
}

static const char *content_type(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".txt"))
		return "text/plain";
	if (!strcmp(dot, ".html") || !strcmp(dot, ".htm"))
		return "text/html";
	if (!strcmp(dot, ".json"))
		return "application/json";
	return "application/octet-stream";
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

/* root "/" rel, percent-decoded, into dst; every component must be a plain name. Returns 0
 * or minus a status (400: empty, ".", ".." or NUL; 414: too long). */
static int static_path(const char *rel, size_t n, char *dst, size_t cap)
{
	size_t rlen = strlen(root);
	if (rlen + n + 2 > cap)
		return -414;
	memcpy(dst, root, rlen);
	size_t o = rlen;
	dst[o++] = '/';
	size_t comp = o;
	for (size_t i = 0; i <= n; i++) {
		char ch = i < n ? rel[i] : '/';
		if (ch == '%') {
			int hi = i + 2 < n ? hexval(rel[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(rel[i + 2]) : -1;
			if (lo < 0)
				return -400;
			ch = (char)(hi * 16 + lo);
			i += 2;
			if (ch == 0)
				return -400;
		}
		if (ch != '/') {
			dst[o++] = ch;
			continue;
		}
		size_t cl = o - comp;
		if (cl == 0 || (cl == 1 && dst[comp] == '.') ||
		    (cl == 2 && dst[comp] == '.' && dst[comp + 1] == '.'))
			return -400;
		if (i < n)
			dst[o++] = '/';
		comp = o;
	}
	dst[o] = 0;
	return 0;
}

/* Header, then the file read through the ring into the output buffer, sent as it fills. */
static int serve_static(struct conn *c, const struct request *req, const char *rel, size_t n)
{
	char path[PATH_MAX];
	int r = static_path(rel, n, path, sizeof(path));
	if (r < 0)
		return respond_error(c, req, -r, false);
	int fd = rotor_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0,
	                    rotor_now() + idle_ns);
	if (fd == -ECANCELED)
		return fd;
	if (fd == -EACCES || fd == -EPERM)
		return respond_error(c, req, 403, req->keep_alive);
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP || fd == -ENAMETOOLONG)
		return respond_error(c, req, 404, req->keep_alive);
	if (fd < 0)
		return respond_error(c, req, 500, false);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rotor_close(fd, ROTOR_FOREVER);
		return respond_error(c, req, 404, req->keep_alive);
	}
	size_t left = (size_t)st.st_size;
	r = append_head(c, req, 200, content_type(path), left, req->keep_alive);
	int64_t off = 0;
	while (r == 0 && req->method == METHOD_GET && left > 0) {
		if (c->out_len == OUT_CAP && (r = flush(c)) < 0)
			break;
		size_t room = OUT_CAP - c->out_len;
		ssize_t got = rotor_read(fd, c->out + c->out_len, room < left ? room : left, off,
		                         rotor_now() + idle_ns);
		if (got <= 0)
			r = got < 0 ? (int)got : -EIO; /* the promised length cannot be kept */
		else {
			c->out_len += (size_t)got;
			left -= (size_t)got;
			off += got;
		}
	}
	rotor_close(fd, ROTOR_FOREVER);
	return r < 0 ? r : req->keep_alive ? KEEP : CLOSE;
}

/* What respond() builds for GET /plaintext over a keep-alive HTTP/1.1 connection, nearly every
 * request of a benchmark: copied whole, it costs a tenth of building it (cachegrind). */
static const char plaintext_200[] = "HTTP/1.1 200 OK\r\n"
                                    "Server: rotor\r\n"
                                    "Content-Type: text/plain\r\n"
                                    "Content-Length: 13\r\n"
                                    "\r\n"
                                    "Hello, World!";

static int handle(struct conn *c, const struct request *req)
{
	const char *p = req->target;
	size_t n = req->target_len;
	/* The path ends at a query or a fragment; the exact /plaintext has neither. */
	if (n != 10 || memcmp(p, "/plaintext", 10)) {
		n = 0;
		while (n < req->target_len && p[n] != '?' && p[n] != '#')
			n++;
	}
	if ((n == 1 && p[0] == '/') || (n == 10 && !memcmp(p, "/plaintext", 10))) {
		if (req->method == METHOD_GET && req->keep_alive && req->minor == 1) {
			int r = append(c, plaintext_200, sizeof(plaintext_200) - 1);
			return r < 0 ? r : KEEP;
		}
		return respond(c, req, 200, "text/plain", "Hello, World!", req->keep_alive);
	}
	if (n > 8 && !memcmp(p, "/static/", 8))
		return serve_static(c, req, p + 8, n - 8);
	return respond_error(c, req, 404, req->keep_alive);
}

/* After the last response: stop sending, then read and drop what the client still sends for
 * a moment, so that the kernel does not answer unread data with a reset that would destroy
 * the response before the client reads it. */
static void linger(struct conn *c, struct rotor_recv_stream *rs)
{
	int64_t limit = idle_ns < 2000 * NS_PER_MS ? idle_ns : 2000 * NS_PER_MS;
	int64_t deadline = rotor_now() + limit;
	const void *data;
	if (rotor_shutdown(c->fd, SHUT_WR, deadline) < 0)
		return;
	while (rotor_recv_stream_next(rs, &data, deadline) > 0)
		;
}

/* Answer every complete request at the front of p[0, len); returns the bytes they took. */
static size_t handle_all(struct conn *c, const char *p, size_t len, int *state)
{
	size_t off = 0;
	while (*state == KEEP && off < len) {
		struct request req;
		int r = parse_request(p + off, len - off, &req);
		if (r == 0)
			break;
		if (r < 0) {
			struct request bad = {.method = METHOD_GET, .minor = 1};
			*state = respond_error(c, &bad, -r, false);
			break;
		}
		off += (size_t)r;
		*state = handle(c, &req);
	}
	return off;
}

/* The per-worker pool every connection's receive stream takes its buffers from. */
static int pool_key = -1;

static void *pool_create(void *arg)
{
	(void)arg;
	struct rotor_bufring *br;
	return rotor_bufring_create(POOL_BUFFERS, POOL_BUFFER_SIZE, &br) < 0 ? NULL : br;
}

static void pool_destroy(void *br)
{
	rotor_bufring_destroy(br);
}

/*
 * Move the connection to worker `to` (rotor_server_follow): between requests, with no send
 * in flight, detach the receive stream (what it had received goes to c->in, nothing is lost)
 * and give up this worker's registration and send record; serve carries on there once this
 * one returns. Returns true if the connection is to move; false (nothing changed) if what
 * arrived does not fit in c->in or the stream has ended.
 */
static bool move_connection(struct rotor_server_conn *sc, struct conn *c,
                            struct rotor_recv_stream **rs, int to)
{
	if (send_done(c) < 0 || c->out_len)
		return false;
	ssize_t n = rotor_recv_stream_detach(*rs, c->in + c->in_len, IN_CAP - c->in_len);
	if (n < 0)
		return false;
	*rs = NULL;
	c->in_len += (size_t)n;
	c->moved = true;
	rotor_op_destroy(c->send_op);
	c->send_op = NULL;
	if (c->fd != c->sock)
		rotor_close(c->fd, ROTOR_FOREVER); /* the ring's reference; sock stays open */
	c->fd = c->sock;
	return rotor_server_move(sc, to) == 0;
}

static void serve(struct rotor_server_conn *sc, void *arg)
{
	struct conn *c = rotor_server_conn_data(sc);
	struct rotor_bufring *pool;
	struct rotor_recv_stream *rs = NULL;
	/* From a request's first byte to its response, the connection is shielded: a drain
	 * (SIGTERM) lets it finish; between requests it is not, and a drain closes it. */
	bool shielded = false;
	(void)arg;
#ifdef ROTOR_HAVE_TLS
	if (tls_ctx) {
		serve_tls(sc, c);
		return;
	}
#endif
	c->sock = rotor_server_conn_fd(sc);
	if (!c->out) {
		/* A new connection: responses go out as soon as they are gathered. */
		int one = 1;
		setsockopt(c->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->out = c->bufs[0];
	}
	/* A keep-alive connection makes many operations: register it with the ring, which then
	 * skips a file lookup on each (the table holds a reference of its own). */
	int fixed = rotor_fd_register(c->sock);
	c->fd = fixed >= 0 ? fixed : c->sock;
	if (rotor_op_create(&c->send_op) < 0 ||
	    rotor_worker_local(pool_key, pool_create, NULL, (void **)&pool) < 0 ||
	    rotor_recv_stream_create(c->fd, pool, &rs) < 0)
		goto out;
	/* The whole of a request must arrive by the deadline: a slow trickle does not renew it. */
	int64_t deadline = rotor_now() + idle_ns;
	int state = KEEP;
	while (state == KEEP) {
		const char *src = NULL;
		size_t left = 0, served = 0;
		if (c->moved) {
			/* Moved here: answer what is complete of what the last worker received. */
			c->moved = false;
			c->send_by = rotor_now() + idle_ns;
			size_t used = handle_all(c, c->in, c->in_len, &state);
			served += used;
			memmove(c->in, c->in + used, c->in_len - used);
			c->in_len -= used;
		} else {
			const void *data;
			ssize_t n = rotor_recv_stream_next(rs, &data, deadline);
			if (n <= 0)
				break; /* end of stream, idle deadline, cancelled (runtime
				        * stopping), error */
			/* One clock read per read: the send deadline, the next request's, and the
			 * shield's. */
			int64_t now = rotor_now();
			c->send_by = now + idle_ns;
			if (!shielded)
				shielded = rotor_shield_begin(now + drain_ns) == 0;
			/* Requests are parsed where the kernel put them; only a request split
			 * across reads is gathered in c->in (never more than IN_CAP: the parser
			 * refuses more). */
			src = data;
			left = (size_t)n;
		}
		while (state == KEEP && left) {
			if (c->in_len == 0) {
				size_t used = handle_all(c, src, left, &state);
				served += used;
				src += used;
				left -= used;
				if (state != KEEP || !left)
					break;
				memcpy(c->in, src, left);
				c->in_len = left;
				left = 0;
			} else {
				size_t take = left < IN_CAP - c->in_len ? left : IN_CAP - c->in_len;
				memcpy(c->in + c->in_len, src, take);
				c->in_len += take;
				src += take;
				left -= take;
				size_t used = handle_all(c, c->in, c->in_len, &state);
				served += used;
				memmove(c->in, c->in + used, c->in_len - used);
				c->in_len -= used;
			}
		}
		if (served)
			deadline = c->send_by;
		if (state >= 0 && flush(c) < 0)
			break;
		if (state == CLOSE && send_done(c) == 0)
			linger(c, rs);
		if (shielded && c->in_len == 0) {
			rotor_shield_end(); /* no request in flight now */
			shielded = false;
		}
		int to = state == KEEP ? rotor_server_follow(sc) : -1;
		if (to >= 0 && move_connection(sc, c, &rs, to))
			return;
	}
out:
	if (rotor_task_cancelled() == 1 && c->sending &&
	    rotor_shield_begin(rotor_now() + drain_ns) == 0) {
		send_done(c); /* a drain: the last response goes out whole */
		rotor_shield_end();
	}
	if (shielded)
		rotor_shield_end();
	if (c->send_op)
		rotor_op_destroy(c->send_op); /* a send still in flight is cancelled first */
	if (rs)
		rotor_recv_stream_destroy(rs);
	if (c->fd != c->sock)
		rotor_close(c->fd,
		            ROTOR_FOREVER); /* the ring's reference; the server closes sock */
}

#ifdef ROTOR_HAVE_TLS
/* Hand what out gathered to the TLS stream (which encrypts and sends it as it fills). */
static int flush_tls(struct conn *c)
{
	ssize_t w = c->out_len ? rotor_stream_write(c->tls, c->out, c->out_len, c->send_by) : 0;
	c->out_len = 0;
	return w < 0 ? (int)w : 0;
}

/* serve() for HTTPS: requests are parsed where the stream buffered them (a peek), answered
 * into out as over plain sockets, and written to the stream, flushed once per read. */
static void serve_tls(struct rotor_server_conn *sc, struct conn *c)
{
	int one = 1;
	bool shielded = false;
	c->sock = rotor_server_conn_fd(sc);
	c->fd = c->sock;
	c->out = c->bufs[0];
	setsockopt(c->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int64_t deadline = rotor_now() + idle_ns;
	if (rotor_tls_accept(c->sock, tls_ctx, NULL, deadline, &c->tls) < 0)
		return;
	int state = KEEP;
	size_t want = 1; /* bytes to wait for: one more than an incomplete request holds */
	while (state == KEEP) {
		const void *data;
		ssize_t n = rotor_stream_peek(c->tls, want, &data, deadline);
		if (n <= 0)
			break; /* close_notify, idle deadline, cancelled, a TLS error */
		int64_t now = rotor_now();
		c->send_by = now + idle_ns;
		if (!shielded)
			shielded = rotor_shield_begin(now + drain_ns) == 0;
		size_t used = handle_all(c, data, (size_t)n, &state);
		rotor_stream_consume(c->tls, used);
		want = used == (size_t)n ? 1 : (size_t)n - used + 1;
		if (used)
			deadline = c->send_by;
		if (state >= 0 && (flush(c) < 0 || rotor_stream_flush(c->tls, c->send_by) < 0))
			break;
		if (state == CLOSE) {
			/* close_notify, then what the client still sends is read and dropped. */
			int64_t until =
			    now + (idle_ns < 2000 * NS_PER_MS ? idle_ns : 2000 * NS_PER_MS);
			ssize_t k;
			if (rotor_stream_shutdown(c->tls, until) == 0)
				while ((k = rotor_stream_peek(c->tls, 1, &data, until)) > 0)
					rotor_stream_consume(c->tls, (size_t)k);
		}
		if (shielded && want == 1) {
			rotor_shield_end();
			shielded = false;
		}
	}
	if (shielded)
		rotor_shield_end();
	rotor_stream_destroy(c->tls); /* close_notify if nothing sent it */
	c->tls = NULL;
}

static int tls_setup(const char *cert, const char *key)
{
	struct rotor_tls_config tc = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	tc.alpn = "http/1.1";
	/* AES-128-GCM first (the cheaper of the AES suites, as nginx is configured in bench/). */
	tc.ciphersuites =
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
	tc.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	             "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	             "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
	int r = rotor_tls_ctx_create(&tc, &tls_ctx);
	if (r < 0)
		fprintf(stderr, "http_server: TLS: %s: %s\n", strerror(-r), rotor_tls_error(NULL));
	return r;
}
#else
static int flush_tls(struct conn *c)
{
	(void)c;
	return -ENOTSUP;
}
#endif

static void *run(void *host)
{
	struct rotor_runtime *rt = rotor_runtime_current();
	struct rotor_server_stats st;
	struct signalfd_siginfo si;
	int r = rotor_server_start(server);
	if (r < 0) {
		fprintf(stderr, "http_server: %s\n", strerror(-r));
		return host; /* failed */
	}
	for (int i = 0; rotor_server_stats(server, i, &st) == 0; i++)
		if (st.steer_error) /* harmless: the kernel's hash spreads its connections */
			fprintf(stderr, "http_server: worker %d: steering connections: %s\n", i,
			        strerror(-st.steer_error));
	printf("listening on %s:%d (%d workers)\n", (const char *)host, rotor_server_port(server),
	       rotor_runtime_workers(rt));
	fflush(stdout);
	ssize_t n = rotor_read(sigfd, &si, sizeof(si), -1, ROTOR_FOREVER);
	if (n == (ssize_t)sizeof(si))
		fprintf(stderr, "http_server: signal %u, stopping\n", si.ssi_signo);
	/* Requests being answered finish; idle connections and the listeners close now. */
	rotor_runtime_drain(rt, rotor_now() + drain_ns);
	static char buf[1 << 16]; /* --stats: a line per worker */
	if (print_stats && rotor_stats_format(rt, buf, sizeof(buf), 0) > 0)
		fputs(buf, stdout);
	return NULL; /* the runtime stops: every task is cancelled, every connection closed */
}

int main(int argc, char **argv)
{
	struct rotor_server_config sc = {.host = "127.0.0.1", .port = 8080, .serve = serve};
	const char *tls_cert = NULL, *tls_key = NULL;
	sc.conn_size = sizeof(struct conn);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			sc.port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			sc.workers = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			sc.host = argv[++i];
		else if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(argv[i], "--max-conns") && i + 1 < argc)
			sc.max_conns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc)
			idle_ns = atoll(argv[++i]) * NS_PER_MS;
		else if (!strcmp(argv[i], "--no-steer"))
			sc.flags |= ROTOR_SERVER_NO_STEER;
		else if (!strcmp(argv[i], "--stats"))
			print_stats = true;
		else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc)
			tls_cert = argv[++i];
		else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc)
			tls_key = argv[++i];
		else {
			fprintf(stderr,
			        "usage: %s [--port N] [--workers N] [--host ADDR] [--root DIR] "
			        "[--max-conns N] [--idle-ms N] [--no-steer] [--stats] "
			        "[--tls-cert PEM --tls-key PEM]\n",
			        argv[0]);
			return 2;
		}
	}
	struct stat st;
	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "http_server: --root %s: not a directory\n", root);
		return 1;
	}
	if (idle_ns <= 0)
		idle_ns = 10000 * NS_PER_MS;
	if (!tls_cert != !tls_key) {
		fprintf(stderr, "http_server: --tls-cert and --tls-key go together\n");
		return 2;
	}
#ifdef ROTOR_HAVE_TLS
	if (tls_cert && tls_setup(tls_cert, tls_key) < 0)
		return 1;
#else
	if (tls_cert) {
		fprintf(stderr, "http_server: built without OpenSSL: no HTTPS\n");
		return 1;
	}
#endif
	/* Signals go to the signalfd only: block them in every thread (inherited). A peer that
	 * closes early must not kill the process: sends also pass MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0) {
		perror("http_server: signalfd");
		return 1;
	}
	int r = rotor_server_create(&sc, &server);
	if (r < 0) {
		fprintf(stderr, "http_server: listen on %s:%d: %s\n", sc.host, sc.port,
		        strerror(-r));
		return 1;
	}
	pool_key = rotor_key_create(pool_destroy);
	struct rotor_config cfg = {.workers = sc.workers};
	void *failed = NULL;
	r = rotor_run(&cfg, run, (void *)sc.host, &failed);
	close(sigfd);
	if (r < 0)
		fprintf(stderr, "http_server: %s\n", strerror(-r));
	if (r < 0 || failed)
		return 1;
	struct rotor_server_stats ss;
	unsigned long long moved = 0;
	printf("connections per worker:");
	for (int i = 0; rotor_server_stats(server, i, &ss) == 0; i++, moved += ss.moved_out)
		printf(" %llu", (unsigned long long)ss.given);
	printf("; moved %llu\nstopped\n", moved);
	return rotor_server_destroy(server) < 0;
}
