/*
 * http_conn.h: what the HTTP server's files share (include/rotor/http.h): the server, its
 * routes, a connection's state with its input view and output buffers, and the calls one
 * file makes into another. Internal to lib/service/http_*.c.
 */
#ifndef ROTOR_SERVICE_HTTP_CONN_H
#define ROTOR_SERVICE_HTTP_CONN_H

#include <rotor.h>
#include <rotor/http.h>
#include <rotor/stream.h>

#include "http_parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_OUT_CAP     (16 * 1024) /* each of a connection's two output buffers */
#define HTTP_HEAD_MAX    512         /* the longest head put_head writes, added fields apart */
#define HTTP_EXTRA_CAP   2048        /* fields added by rotor_http_header_add */
#define HTTP_DRAIN_MAX   (64 * 1024) /* unread body bytes dropped rather than closing */
#define HTTP_POOL_BUFS   512         /* each worker's receive buffers ... */
#define HTTP_POOL_BUFSZ  4096        /* ... of this size, shared by its connections */
#define HTTP_EXACT_SLOTS 64          /* exact paths hash into these */

/* One method's handler for a path. */
struct http_route {
	char *method; /* NULL: any */
	size_t method_len;
	uint32_t method_word; /* its first 4 bytes (zero-padded), compared at once ... */
	uint32_t method_mask; /* ... under this mask: as many bytes as it has, up to 4 */
	rotor_http_handler_fn fn;
	void *arg;
	struct http_route *next;
	/* rotor_http_route_fixed: the response, and its bytes whole for a keep-alive HTTP/1.1
	 * GET (copied as they are); fn then answers every other case from the parts. */
	int status;
	char *type;
	char *body;
	size_t body_len;
	char *fixed;
	size_t fixed_len;
};

/* A path (exact or a prefix) and the handlers of its methods. */
struct http_path {
	char *path;
	size_t len;
	bool prefix;
	struct http_route *routes;
	struct http_path *next; /* the next in its hash slot */
};

struct rotor_http_server {
	struct rotor_server *base;
	struct rotor_http_config cfg; /* defaults filled in */
	struct http_path *exact[HTTP_EXACT_SLOTS];
	struct http_path **prefixes; /* longest first */
	size_t nprefixes;
	char **methods; /* every method a route names: those are not 501 */
	size_t nmethods;
	char server_field[96]; /* "Server: rotor\r\n" or "" */
	size_t server_len;
	size_t in_cap;                      /* bytes of a connection's input buffer */
	size_t fields_off, in_off, out_off; /* offsets into a connection's state */
	bool started;
};

enum { RES_NONE = 0, RES_DONE, RES_STREAM };

struct rotor_http_response {
	struct rotor_http_conn *c;
	int state;      /* RES_NONE, RES_DONE, RES_STREAM */
	bool head_only; /* HEAD, 204, 304: no body */
	bool chunked;   /* a streamed body in chunks (HTTP/1.1) */
	size_t extra_len;
	char extra[HTTP_EXTRA_CAP];
};

struct rotor_http_conn {
	struct rotor_http_server *srv;
	struct rotor_server_conn *sc;
	int fd;   /* what its I/O calls take: registered with the worker's ring, or sock */
	int sock; /* the socket itself */
	bool moved;
	bool shielded;
	bool keep; /* the connection may carry another request after this one */
	struct rotor_recv_stream *rs;
	struct rotor_stream *tls; /* HTTPS: input and output go through it */
	/* Input: the unconsumed bytes at hand are view[0, view_len): in place in the last
	 * receive buffer (or the TLS stream's), or in in[] when a head spanned reads. */
	const char *view;
	size_t view_len;
	char *in;
	size_t in_len;
	int64_t now; /* the clock at the last read */
	/* Output: gathered in out, one of bufs; the other is the kernel's while sending. */
	char *out;
	size_t out_len;
	size_t sending;
	int64_t send_by;
	struct rotor_op *send_op;
	char *bufs[2];
	/* The request being served. */
	struct rotor_http_request req;
	struct rotor_http_response res;
	struct rotor__http_head head;
	const char *head_at; /* where the head is (pinned: in in[]) */
	size_t head_len;
	bool head_pinned;
	int body_kind;      /* enum rotor__http_body */
	bool body_done;     /* the body has been read to its end */
	bool continue_due;  /* "Expect: 100-continue" not answered yet */
	int body_err;       /* sticky: the body cannot be read further */
	uint64_t body_left; /* Content-Length bytes not read yet */
	uint64_t body_seen; /* body bytes read */
	int64_t body_by;    /* the body deadline */
	struct rotor__http_chunked chunked;
	char *body_buf; /* rotor_http_body's copy, kept for the connection */
	size_t body_cap;
	const void *body_all; /* what rotor_http_body returned */
	ssize_t body_all_len;
	struct rotor__http_field *fields; /* cfg.max_fields of them */
	/* The head of the last keep-alive response built, copied whole when the next one has
	 * the same status, type and length (a tenth of building it). */
	struct {
		const char *type;
		uint64_t len;
		int status;
		unsigned tlen;
		unsigned n; /* bytes of head; 0: nothing cached */
		char type_copy[64];
		char bytes[192];
	} hc;
};

/* http_route.c */
/* Methods are short: a loop beats a call to memcmp. */
static inline bool http_method_is(const struct rotor_http_request *req, const char *m, size_t n)
{
	if (req->method_len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (req->method[i] != m[i])
			return false;
	return true;
}

/* The slot of an exact path: its length and two of its bytes (n > 0). */
static inline unsigned http_slot(const char *p, size_t n)
{
	unsigned h = (unsigned)n * 7u + (unsigned char)p[n - 1] * 3u;
	if (n > 1)
		h += (unsigned char)p[1] * 13u;
	return h & (HTTP_EXACT_SLOTS - 1);
}
struct http_path *http_find_exact(const struct rotor_http_server *s, const char *p, size_t n);
const struct http_route *http_route_of(struct rotor_http_conn *c, const struct http_path *hp,
                                       int *status, char *allow, size_t cap);
void http_routes_free(struct rotor_http_server *s);

/* http_response.c */
const char *rotor__http_reason(int status);
int http_flush(struct rotor_http_conn *c);
int http_send_done(struct rotor_http_conn *c);
int http_append(struct rotor_http_conn *c, const void *p, size_t n);
int http_error(struct rotor_http_conn *c, int status, const char *allow);
void http_res_reset(struct rotor_http_conn *c, bool head);
void http_linger(struct rotor_http_conn *c);

/* http_request.c */
int http_in_more(struct rotor_http_conn *c, int64_t deadline);
void http_in_consume(struct rotor_http_conn *c, size_t n);
void http_body_setup(struct rotor_http_conn *c);
bool http_body_drain(struct rotor_http_conn *c);

#endif /* ROTOR_SERVICE_HTTP_CONN_H */
