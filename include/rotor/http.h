/*
 * rotor/http.h: an HTTP/1.1 server. Routes (a method and a path, exact or a prefix) name a
 * handler each; every connection is a task (rotor/server.h: a listener per worker, steering,
 * a connection cap) that frames requests as RFC 9112 says (the framing module shared with
 * the client), and calls the handler of each request with a request and a response object.
 * A handler runs on the connection's task and may suspend: read the body, call another
 * service, stream its answer. Requests pipelined on a connection are answered in order, and
 * the answers to the requests of one read leave together.
 *
 * Framing: Content-Length or chunked bodies (trailers read and dropped), a head over
 * max_head answered 431 (414 when the request line alone is), a body over max_body 413,
 * Content-Length with Transfer-Encoding and every other framing error answered with
 * the framing module's status and a close; HEAD answered with the headers a GET gets and no
 * body; "Expect: 100-continue" answered "100 Continue" only when the handler reads the
 * body; a body the handler leaves unread is read and dropped (up to 64 KiB) or the
 * connection closed, so that the next request is framed where it starts. 404 when no route
 * has the path, 405 with Allow when routes have it for other methods, 501 for a method no
 * route names and HTTP does not define.
 *
 * Deadlines, each absolute once it starts: idle_ns between requests, header_ns from a
 * request's first byte to the end of its head, body_ns from there to the end of its body,
 * handler_ns for the handler and its response (rotor_http_request.deadline). A drain
 * (rotor_runtime_drain) lets a request already begun get its response, then closes its
 * connection; idle connections close at once.
 *
 * The request's strings point into the connection's buffers and are not NUL-terminated:
 * they are valid until the handler returns.
 */
#ifndef ROTOR_PUBLIC_HTTP_H
#define ROTOR_PUBLIC_HTTP_H

#include <rotor.h>
#include <rotor/server.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rotor_http_server;
struct rotor_http_response; /* what a handler answers through (opaque) */
struct rotor_http_conn;     /* the connection a request came on (opaque) */
struct rotor_tls_ctx;

/* One request, as the handler sees it. */
struct rotor_http_request {
	const char *method; /* "GET", case-sensitive as sent */
	const char *target; /* the request-target as sent: "/a/b?x=1" */
	const char *path;   /* the target up to '?': "/a/b" (absolute-form: without scheme and
	                       authority) */
	const char *query;  /* after '?': "x=1"; NULL when the target has no '?' */
	size_t method_len;
	size_t target_len;
	size_t path_len;
	size_t query_len;
	int minor;               /* HTTP/1.minor: 0 or 1 */
	int64_t deadline;        /* the handler's: its response must be out by then (handler_ns) */
	uint64_t content_length; /* the body's length; UINT64_MAX: chunked (unknown) */
	struct rotor_http_conn *conn; /* internal */
};

/* A handler: answer req through res. Returns 0, or a negative errno: then if nothing was
 * sent the server answers with a status for it (-EFBIG 413, -EBADMSG 400, -ETIMEDOUT 408,
 * others 500), and the connection is closed. A handler that returns 0 without answering
 * gets a 500. */
typedef int (*rotor_http_handler_fn)(struct rotor_http_request *req,
                                     struct rotor_http_response *res, void *arg);

#define ROTOR_HTTP_PREFIX (1u << 0) /* rotor_http_route: path is a prefix ("/static/") */

/* All zero but what is said means defaults. */
struct rotor_http_config {
	const char *host; /* as rotor_server_config: address to listen on; NULL: every one */
	int port;         /* 0: a free port (rotor_http_server_port) */
	int backlog;
	unsigned workers;          /* 0: one per CPU (as rotor_config.workers 0) */
	int max_conns;             /* connections open at once; 0: 10000 */
	unsigned flags;            /* ROTOR_SERVER_NO_STEER */
	struct rotor_tls_ctx *tls; /* HTTPS: a server context (rotor_tls_ctx_create); NULL:
	                              plain HTTP. The caller keeps it alive. */
	size_t max_head;           /* request line and fields; 0: 8192 */
	size_t max_body;           /* a request body; 0: 1 MiB */
	unsigned max_fields;       /* header fields of a request; 0: 64 (more: 431) */
	int64_t idle_ns;           /* keep-alive idle; 0: 10 s */
	int64_t header_ns;         /* 0: 10 s */
	int64_t body_ns;           /* 0: 30 s */
	int64_t handler_ns;        /* 0: 30 s */
	const char *server_name;   /* the Server field; NULL: "rotor"; "": none */
};

/*
 * rotor_http_server_create - a server bound to cfg->host:cfg->port, with no routes yet;
 * nothing is accepted before rotor_http_server_start. Returns 0 and sets *out, or -EINVAL
 * (cfg or out NULL, a negative field, a server_name with CR or LF or over 80 bytes),
 * -ENOTSUP (cfg->tls in a build without TLS), -ENOMEM, or the errors of rotor_server_create.
 * Thread: any. Suspends: no (as rotor_server_create).
 */
ROTOR_API int rotor_http_server_create(const struct rotor_http_config *cfg,
                                       struct rotor_http_server **out);

/*
 * rotor_http_route - call fn(req, res, arg) for requests with method (NULL: any) and path
 * (exact, or with ROTOR_HTTP_PREFIX every path starting with it; the longest prefix wins,
 * an exact route before any prefix). A GET route answers HEAD too unless a HEAD route has
 * the path. method and path are copied. Returns 0, -EINVAL (s, path or fn NULL, path not
 * starting with '/' or holding '?', flags unknown), -EEXIST (that method and path have a route),
 * -EBUSY (the server is started), -ENOMEM. Thread: any, before rotor_http_server_start. Suspends:
 * no.
 */
ROTOR_API int rotor_http_route(struct rotor_http_server *s, const char *method, const char *path,
                               unsigned flags, rotor_http_handler_fn fn, void *arg);

/*
 * rotor_http_route_fixed - a route (as rotor_http_route) whose response is always the same:
 * status (200 to 599 but 204 and 304), Content-Type type (NULL: none) and len bytes of body,
 * copied now. The server keeps the whole response and sends it as it is to a keep-alive
 * HTTP/1.1 request, with no handler call (HEAD, HTTP/1.0 and a closing request get it built
 * as rotor_http_respond would). Returns 0, the errors of rotor_http_route, or -EINVAL
 * (status, type with CR or LF or over 128 bytes, body NULL with len). Thread: any, before
 * rotor_http_server_start. Suspends: no.
 */
ROTOR_API int rotor_http_route_fixed(struct rotor_http_server *s, const char *method,
                                     const char *path, unsigned flags, int status, const char *type,
                                     const void *body, size_t len);

/*
 * rotor_http_server_start - start accepting on every worker of the calling runtime (as
 * rotor_server_start, whose errors it returns). Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_http_server_start(struct rotor_http_server *s);

/*
 * rotor_http_server_stop - accept no more connections (rotor_server_stop); connections
 * open go on until they end or the runtime stops or drains. Returns 0, -EINVAL, -EPERM,
 * -ECANCELED as rotor_server_stop. Thread: task on the runtime it was started on.
 * Suspends: yes.
 */
ROTOR_API int rotor_http_server_stop(struct rotor_http_server *s);

/*
 * rotor_http_server_destroy - free the server and its routes. Returns 0, -EINVAL (s NULL),
 * -EBUSY (nothing done) as rotor_server_destroy. Thread: any. Suspends: no.
 */
ROTOR_API int rotor_http_server_destroy(struct rotor_http_server *s);

/* rotor_http_server_port - the port it listens on, or -EINVAL. Thread: any. Suspends: no. */
ROTOR_API int rotor_http_server_port(const struct rotor_http_server *s);

/* rotor_http_server_base - the TCP server under it (rotor_server_stats), or NULL when s is
 * NULL. Thread: any. Suspends: no. */
ROTOR_API struct rotor_server *rotor_http_server_base(struct rotor_http_server *s);

/*
 * rotor_http_header - the value of req's first field named name (case-insensitive), with
 * its length in *len (len may be NULL), or NULL when it has none. The value is not
 * NUL-terminated. Thread: the handler's task. Suspends: no.
 */
ROTOR_API const char *rotor_http_header(const struct rotor_http_request *req, const char *name,
                                        size_t *len);

/*
 * rotor_http_body_read - the next piece of req's body, in place: *data points at it until
 * the next call on req. The first call sends "100 Continue" if the client asked for it.
 * Returns the piece's length, 0 at the end of the body (and after), or -EFBIG (the body
 * passed max_body), -EBADMSG (a malformed chunk: the connection then closes), -ETIMEDOUT
 * (the body deadline), -ECANCELED, -ECONNRESET (the client went), -EINVAL.
 * Thread: the handler's task. Suspends: yes.
 */
ROTOR_API ssize_t rotor_http_body_read(struct rotor_http_request *req, const void **data);

/*
 * rotor_http_body - the whole of req's body, at most max bytes (0: max_body): *data points
 * at it until the handler returns (in place when it arrived in one piece, else in a buffer
 * of the connection's). Returns its length, or the errors of rotor_http_body_read (-EFBIG
 * past max), or -EALREADY (part of the body was read in pieces). Thread: the handler's task.
 * Suspends: yes.
 */
ROTOR_API ssize_t rotor_http_body(struct rotor_http_request *req, size_t max, const void **data);

/*
 * rotor_http_header_add - a field for the response not yet begun: "name: value". Content-
 * Length and Transfer-Encoding are the server's; "Connection: close" closes the connection
 * after the response (no other Connection value is taken). Returns 0, -EINVAL (NULL, CR or
 * LF in either, a field the server writes), -EALREADY (the response has begun), -ENOBUFS
 * (over 2 KiB of added fields). Thread: the handler's task. Suspends: no.
 */
ROTOR_API int rotor_http_header_add(struct rotor_http_response *res, const char *name,
                                    const char *value);

/*
 * rotor_http_respond - the whole response: status (100 to 599, not 1xx), Content-Type type
 * (NULL: none), and len bytes of body (none for HEAD, 204 and 304). Gathered with the
 * responses to the other requests of the same read, and sent before the connection waits.
 * Returns 0, -EINVAL (res NULL, status out of range, type over 128 bytes or holding CR or
 * LF, body NULL with len: nothing is begun, the handler may respond again), -EALREADY (a
 * response has begun), or the send's error. Thread: the handler's task. Suspends: yes
 * (when the output buffer is full).
 */
ROTOR_API int rotor_http_respond(struct rotor_http_response *res, int status, const char *type,
                                 const void *body, size_t len);

/*
 * rotor_http_respond_file - a response whose body is len bytes of file fd from offset, read
 * through the ring (rotor_read) into the connection's output as it is sent; fd stays the
 * caller's. Returns 0, the errors of rotor_http_respond, or the read's error (-EIO when the
 * file is shorter than promised: the connection then closes). Thread: the handler's task.
 * Suspends: yes.
 */
ROTOR_API int rotor_http_respond_file(struct rotor_http_response *res, int status, const char *type,
                                      int fd, int64_t offset, size_t len);

/*
 * rotor_http_stream_begin - start a response whose body follows in pieces
 * (rotor_http_stream_write): chunked for HTTP/1.1, to the close for HTTP/1.0. Returns 0 or
 * the errors of rotor_http_respond. Thread: the handler's task. Suspends: yes.
 */
ROTOR_API int rotor_http_stream_begin(struct rotor_http_response *res, int status,
                                      const char *type);

/*
 * rotor_http_stream_write - len bytes more of a streamed body (as one chunk; len 0 does
 * nothing), sent at once: the client sees it before the handler goes on. Returns 0,
 * -EINVAL (no stream begun), -ETIMEDOUT (the handler's deadline), or the send's error.
 * Thread: the handler's task. Suspends: yes.
 */
ROTOR_API int rotor_http_stream_write(struct rotor_http_response *res, const void *data,
                                      size_t len);

/*
 * rotor_http_stream_end - end a streamed body (the last chunk); the server ends one the
 * handler left open when it returns 0. Returns 0, -EINVAL (no stream begun or it ended),
 * or the send's error. Thread: the handler's task. Suspends: yes.
 */
ROTOR_API int rotor_http_stream_end(struct rotor_http_response *res);

/*
 * rotor_http_safe_path - root "/" rel[0, n), percent-decoded, into dst (cap bytes, NUL-
 * terminated), refusing anything that could leave root: every component of rel must be a
 * plain name (not empty, ".", "..", and no NUL). Returns 0, -EINVAL (a bad component or
 * percent sequence), -ENAMETOOLONG (over cap). Thread: any. Suspends: no.
 */
ROTOR_API int rotor_http_safe_path(const char *root, const char *rel, size_t n, char *dst,
                                   size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_HTTP_H */
