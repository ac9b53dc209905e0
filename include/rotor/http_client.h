/*
 * rotor/http_client.h: an HTTP/1.1 client on rotor's streams: any method, request headers
 * and a body (whole or streamed), the response's status, headers and body (Content-Length,
 * chunked, or to the close; read whole up to a limit or in pieces), over http:// and
 * https:// (verification on by default), with keep-alive connections pooled per worker and
 * per origin (scheme, host, port): a cap per origin beyond which requests wait, an idle
 * timeout, and a pooled connection the server closed while idle retried once on a new
 * connection when the method is idempotent. One absolute deadline per request covers
 * resolution, connection, handshake, sending and receiving the whole response, redirects
 * included. Redirects are off by default (a 3xx is a response like any other) and followed
 * up to max_redirects when that is set.
 *
 * Errors are negative errnos:
 *   -EINVAL        a bad argument, a URL that is not http:// or https:// with a host, a
 *                  header name or value with CR, LF or NUL (or a colon in a name)
 *   -EBADMSG       a malformed response head, a malformed chunk size, line or trailer, a
 *                  head cut short by the end of the connection
 *   -EMSGSIZE      a response head longer than max_head, or with more than 100 fields
 *   -EPROTONOSUPPORT a response in an HTTP version other than 1.0 or 1.1
 *   -EPROTO        the connection ended before the body it declared (Content-Length or
 *                  chunked) was complete, or the server sent bytes after the body it
 *                  declared; over TLS also the TLS layer's protocol errors
 *   -ECONNRESET    the server closed or reset the connection before any byte of its
 *                  response (after the retry, for an idempotent request on a pooled one)
 *   -EFBIG         rotor_http_client_fetch: the body is longer than max_body
 *   -ELOOP         more redirects than max_redirects
 *   -ETIMEDOUT     the request's deadline passed
 *   -ECANCELED     the calling task was cancelled
 *   -EKEYREJECTED  https: the server's certificate was refused (rotor/tls.h)
 *   and rotor_tcp_dial's errors (-ENOENT no such host, -ECONNREFUSED, ...), -ENOMEM, -EPERM
 *   off a task.
 * Present when rotor was built with OpenSSL (https:// needs it; see rotor/tls.h).
 */
#ifndef ROTOR_PUBLIC_HTTP_CLIENT_H
#define ROTOR_PUBLIC_HTTP_CLIENT_H

#include <rotor/base.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rotor_http_client;
struct rotor_tls_ctx;

/* ---- URLs ---------------------------------------------------------------------------- */

/* An absolute http:// or https:// URL taken apart. host has no brackets ("::1" for
 * http://[::1]:8080/); port is the URL's or the scheme's default; target is the path and
 * query sent in the request line ("/" when the URL has none), the fragment dropped. */
struct rotor_http_url {
	int https; /* 1 for https:// */
	int port;
	char host[256];
	char target[2048];
};

/*
 * rotor_http_url_parse - take url apart into *out: the scheme (http or https, any case), an
 * optional userinfo (ignored), the host (a name, an IPv4 literal or a bracketed IPv6 literal),
 * an optional port (1..65535), and the path and query. Returns 0, or -EINVAL (NULL arguments,
 * another scheme, no host, a bad port, a space or control byte, a host over 255 bytes or a
 * target over 2047). Thread: any. Suspends: no.
 */
ROTOR_API int rotor_http_url_parse(const char *url, struct rotor_http_url *out);

/* ---- Clients ------------------------------------------------------------------------- */

/* All zero means defaults. Strings are copied. */
struct rotor_http_client_config {
	struct rotor_tls_ctx *tls; /* client context for https (the caller's: it must outlive
	                              the client); NULL: one of the client's own, verifying
	                              against ca_file or the system's store */
	const char *ca_file;       /* with tls NULL: PEM CAs to trust instead of the system's */
	unsigned max_per_origin;   /* connections per origin and worker, busy or idle; a request
	                              past the cap waits for one (FIFO); 0: 64 */
	int64_t idle_timeout;      /* ns an idle pooled connection is kept; 0: 60 s; < 0: none
	                              is pooled */
	size_t max_head;           /* bytes of a response head at most (-EMSGSIZE); 0: 64 KiB */
	size_t max_body;           /* rotor_http_client_fetch's limit on a body (-EFBIG);
	                              0: 64 MiB */
	unsigned max_redirects;    /* 301, 302, 303, 307 and 308 with a Location followed at
	                              most this many times (-ELOOP past it); 0: none, a 3xx is
	                              the response */
};

/*
 * rotor_http_client_create - a client configured as cfg (NULL: defaults), used by any task
 * on any worker: each worker keeps its own pool of the client's connections, so that no
 * lock is taken. Returns 0 and sets *out, or -EINVAL (out NULL), -ENOMEM, or the errors of
 * rotor_tls_ctx_create for the client's own TLS context (-ENOENT: no ca_file; -EINVAL: it
 * holds no certificate). *out is untouched on failure. Thread: any. Suspends: no.
 */
ROTOR_API int rotor_http_client_create(const struct rotor_http_client_config *cfg,
                                       struct rotor_http_client **out);

/*
 * rotor_http_client_destroy - drop the caller's hold on c: the calling worker's idle
 * connections of c are closed now, the other workers' when their idle timeout passes or
 * their runtime stops; c is freed once the last is. Responses still held stay usable and
 * their connections are closed, not pooled, when destroyed. Returns 0, or -EINVAL (c NULL).
 * Thread: task (any thread when c never made a connection on it). Suspends: yes (briefly,
 * closing connections), not off a task.
 */
ROTOR_API int rotor_http_client_destroy(struct rotor_http_client *c);

/* Counters of c's pool on the calling worker. */
struct rotor_http_client_stats {
	uint64_t requests; /* requests whose response head arrived */
	uint64_t connects; /* connections opened (and, for https, handshaken) */
	uint64_t reused;   /* requests sent on a pooled connection */
	uint64_t retries;  /* requests sent again after a pooled connection turned out stale */
	unsigned idle;     /* connections idle in the pool now */
	unsigned busy;     /* connections carrying a request now */
};

/* rotor_http_client_stats - c's counters on the calling worker into *out. Returns 0, or
 * -EINVAL (NULL arguments), -EPERM (off a task). Thread: task. Suspends: no. */
ROTOR_API int rotor_http_client_stats(struct rotor_http_client *c,
                                      struct rotor_http_client_stats *out);

/* ---- Requests ------------------------------------------------------------------------ */

/* One header field: NUL-terminated name and value. */
struct rotor_http_client_header {
	const char *name;
	const char *value;
};

/*
 * A request. rotor adds Host (unless headers hold one), Content-Length or
 * "Transfer-Encoding: chunked" for a body, and nothing else: no User-Agent, no
 * Accept-Encoding. A body is either body[0, body_len) (Content-Length: body_len, also 0 for
 * POST and PUT), or streamed by body_fn: called with body_arg and a buffer of cap bytes, it
 * returns the bytes it wrote there (> 0), 0 at the end, or a negative errno that abandons
 * the request (returned as is); the body goes out chunked, or with Content-Length: body_len
 * when body_len > 0 (body_fn must then give exactly that many bytes: -EINVAL otherwise). A
 * streamed body is never sent twice, so such a request is not retried on a stale connection.
 */
struct rotor_http_client_request {
	const char *method; /* "GET", "POST", ... (case-sensitive); NULL: "GET" */
	const char *url;    /* absolute http:// or https:// URL */
	const struct rotor_http_client_header *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
	ssize_t (*body_fn)(void *body_arg, void *buf, size_t cap);
	void *body_arg;
	int64_t deadline; /* absolute, CLOCK_MONOTONIC ns, for the whole exchange;
	                     0 or ROTOR_FOREVER: none */
};

/*
 * A response, read-only for the caller until rotor_http_response_destroy. Strings are
 * NUL-terminated; headers are in the order received.
 */
struct rotor_http_response {
	int status;         /* 100..999 (1xx other than 101 are skipped) */
	int minor;          /* HTTP/1.minor */
	const char *reason; /* the reason phrase, maybe "" */
	const struct rotor_http_client_header *headers;
	size_t nheaders;
	int64_t content_length; /* the body's length as declared, 0 when there is none (HEAD,
	                           1xx, 204, 304), -1 when not known (chunked, to the close) */
	const char *body;       /* rotor_http_client_fetch: the whole body (NUL after it);
	                           rotor_http_client_send: NULL */
	size_t body_len;
};

/*
 * rotor_http_client_send - send req on a connection of c's pool on the calling worker (a
 * pooled one for its origin, or a new one; waiting while the origin is at its cap) and
 * read the response's head: *out holds status and headers, and the body is read with
 * rotor_http_response_read. A pooled connection found closed by the server before any
 * byte of the response (end of stream or a reset on sending or on the first read) is
 * replaced by a new one once, for an idempotent method (GET, HEAD, PUT, DELETE, OPTIONS,
 * TRACE) without body_fn; otherwise that is -ECONNRESET. With max_redirects, a 301, 302,
 * 303, 307 or 308 with a Location (absolute, or relative to the request's URL) is followed:
 * its body read and dropped (up to 64 KiB, so that the connection is reused), the same
 * request sent to the new URL, as GET without a body after a 303 or after a 301 or 302 to a
 * POST, and without Authorization, Proxy-Authorization and Cookie headers to another origin;
 * a 307 or 308 to a request with body_fn is the response. Returns 0, or an error of the list
 * at the top of this header; *out is untouched on failure. Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_http_client_send(struct rotor_http_client *c,
                                     const struct rotor_http_client_request *req,
                                     struct rotor_http_response **out);

/*
 * rotor_http_client_fetch - rotor_http_client_send, then the whole body into out's body
 * (at most max_body, 0: the client's max_body; -EFBIG past it), and the connection back
 * to the pool. Returns 0, or the errors of rotor_http_client_send and
 * rotor_http_response_read, -EFBIG; *out is untouched on failure. Thread: task.
 * Suspends: yes.
 */
ROTOR_API int rotor_http_client_fetch(struct rotor_http_client *c,
                                      const struct rotor_http_client_request *req, size_t max_body,
                                      struct rotor_http_response **out);

/*
 * rotor_http_response_read - copy the next 1..len bytes of r's body into buf, by the
 * request's deadline. Returns the count, 0 once the body is complete (its connection then
 * goes back to the pool if keep-alive allows), or a negative errno from the list at the
 * top (-EPROTO, -EBADMSG, -ETIMEDOUT, ...; the connection is then closed and every later
 * call returns the same), -EINVAL (r or buf NULL, len 0), -EPERM (another worker).
 * Thread: task on the worker that sent the request. Suspends: yes (not when bytes are
 * buffered).
 */
ROTOR_API ssize_t rotor_http_response_read(struct rotor_http_response *r, void *buf, size_t len);

/* rotor_http_response_header - the value of r's first header named name (any case), or
 * NULL. Thread: any. Suspends: no. */
ROTOR_API const char *rotor_http_response_header(const struct rotor_http_response *r,
                                                 const char *name);

/*
 * rotor_http_response_destroy - free r. Its connection goes back to the pool when the body
 * was read to its end and the response allows keep-alive; otherwise it is closed (a body
 * not read is not drained). Returns 0, -EINVAL (r NULL), -EPERM (off the worker that sent
 * the request). Thread: task on that worker. Suspends: yes (briefly, closing a connection).
 */
ROTOR_API int rotor_http_response_destroy(struct rotor_http_response *r);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_HTTP_CLIENT_H */
