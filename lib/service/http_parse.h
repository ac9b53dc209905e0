/*
 * http_parse.h: HTTP/1.1 message framing (RFC 9112) as pure functions over bytes, shared by
 * the HTTP server and client. A head is parsed in place (every pointer points into the
 * caller's buffer); the body's framing is decided by the rules of RFC 9112 section 6 so that
 * rotor never frames a message differently from a strict peer; a chunked body is decoded
 * by a small state machine that hands out its data in place. Nothing here allocates,
 * suspends or keeps a pointer past the call.
 */
#ifndef ROTOR_SERVICE_HTTP_PARSE_H
#define ROTOR_SERVICE_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One header field: name and value point into the parsed buffer; the value has no leading
 * or trailing whitespace. Names keep their case (compare with strncasecmp). */
struct rotor__http_field {
	const char *name;
	const char *value;
	uint32_t name_len;
	uint32_t value_len;
};

/* How the body of a message is delimited (RFC 9112 section 6.3). */
enum rotor__http_body {
	ROTOR__HTTP_BODY_NONE = 0, /* no body: a request with neither field, a response to
	                             HEAD, a 1xx, 204 or 304 */
	ROTOR__HTTP_BODY_LENGTH,   /* content_length bytes follow the head */
	ROTOR__HTTP_BODY_CHUNKED,  /* the chunked coding, trailers included */
	ROTOR__HTTP_BODY_CLOSE,    /* responses only: the body ends when the connection closes */
};

struct rotor__http_head {
	/* A request's line: method and target as sent (the method is case-sensitive). */
	const char *method;
	const char *target;
	uint32_t method_len;
	uint32_t target_len;
	/* A response's line: status 100..999 and the reason phrase (may be empty). */
	int status;
	const char *reason;
	uint32_t reason_len;
	int minor;                        /* HTTP/1.minor: 0 or 1 */
	struct rotor__http_field *fields; /* the caller's array ... */
	unsigned nfields;                 /* ... and the count filled in */
	enum rotor__http_body body;
	uint64_t content_length; /* with ROTOR__HTTP_BODY_LENGTH */
	bool keep_alive;         /* the connection may carry another message after this one:
	                            the version's default, then Connection close/keep-alive;
	                            false whenever the framing forbids reuse */
	bool expect_continue;    /* a request with "Expect: 100-continue" */
	bool has_host;           /* a request with exactly one Host field */
};

/*
 * Errors, as negative errno, each mapped to the status a server answers with by
 * rotor__http_error_status (after which the server closes: the framing cannot be trusted):
 *   -EBADMSG         malformed line or field, bare CR or LF, obs-fold, whitespace before a
 *                    field's colon, a bad or conflicting Content-Length, Content-Length
 *                    with Transfer-Encoding (requests), a Transfer-Encoding whose last
 *                    coding is not chunked (requests), Transfer-Encoding in HTTP/1.0, a
 *                    missing or repeated Host in HTTP/1.1                          -> 400
 *   -ENOBUFS         more fields than the caller's array holds                     -> 431
 *   -ENOTSUP         a transfer coding other than chunked (requests)               -> 501
 *   -EPROTONOSUPPORT an HTTP version other than 1.0 or 1.1                         -> 505
 *   -EMSGSIZE        (from the caller: the head is longer than its limit)          -> 431
 *   -EFBIG           (from the caller: the body is longer than its limit)          -> 413
 */
int rotor__http_error_status(int err);

/*
 * rotor__http_parse_request - parse a request head at the start of buf[0, len): the
 * request line, up to cap fields into fields[], and the blank line. Empty lines (CRLF)
 * before the request line are skipped, as RFC 9112 section 2.2 allows. Returns the bytes
 * the head took (empty lines and the final CRLF included), 0 when buf holds no whole head
 * yet (the caller applies its own limit on len), or a negative errno above. Decides
 * out->body, content_length, keep_alive, expect_continue and has_host.
 */
int rotor__http_parse_request(const char *buf, size_t len, struct rotor__http_field *fields,
                              unsigned cap, struct rotor__http_head *out);

/*
 * rotor__http_parse_response - the same for a response head; head_request says the
 * request was HEAD (its response has no body whatever its fields say). Framing: no body
 * for HEAD, 1xx, 204 and 304; chunked when Transfer-Encoding's last coding is chunked
 * (Content-Length then ignored and the connection not reused); to the close when
 * Transfer-Encoding is present otherwise, or when neither field is; Content-Length
 * otherwise (-EBADMSG when invalid or conflicting).
 */
int rotor__http_parse_response(const char *buf, size_t len, bool head_request,
                               struct rotor__http_field *fields, unsigned cap,
                               struct rotor__http_head *out);

/* rotor__http_field_find - the first field named name (case-insensitive), or NULL. */
const struct rotor__http_field *rotor__http_field_find(const struct rotor__http_head *h,
                                                       const char *name);

/* rotor__http_has_token - whether a comma-separated field value holds token
 * (case-insensitive, optional whitespace around the commas): "close" in Connection. */
bool rotor__http_has_token(const char *value, size_t len, const char *token);

/*
 * The chunked decoder: chunk sizes (hex, at most 16 digits, no overflow), chunk
 * extensions (skipped), the data, the CRLF after each chunk, the last chunk, and the
 * trailer section (fields checked like a head's and skipped; at most max_trailer bytes).
 * Bytes are fed in any pieces; data is handed out in place.
 */
struct rotor__http_chunked {
	uint64_t left;      /* data bytes left in the current chunk */
	size_t line;        /* bytes of the current size or trailer line seen */
	size_t trailer;     /* trailer bytes seen */
	size_t max_line;    /* limit on a chunk-size line with its extensions */
	size_t max_trailer; /* limit on the trailer section */
	int state;          /* internal */
	bool done;          /* the body and its trailers are complete */
};

/* rotor__http_chunked_init - a decoder at the start of a body (0 limits: 4096 bytes). */
void rotor__http_chunked_init(struct rotor__http_chunked *c, size_t max_line, size_t max_trailer);

/*
 * rotor__http_chunked_feed - decode from in[0, len). Returns the bytes consumed (0..len)
 * or -EBADMSG (a malformed size, line or trailer; -EMSGSIZE past a limit). When the bytes
 * consumed hold body data, *data and *data_len name the first run of it (in place, inside
 * in[]) and the call stops right after that run, so the caller takes one run per call;
 * otherwise *data_len is 0. Once c->done, the call consumes nothing: the bytes after the
 * body belong to the next message.
 */
ssize_t rotor__http_chunked_feed(struct rotor__http_chunked *c, const char *in, size_t len,
                                 const char **data, size_t *data_len);

#endif /* ROTOR_SERVICE_HTTP_PARSE_H */
