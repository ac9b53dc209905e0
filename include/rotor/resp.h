/*
 * rotor/resp.h: the Redis serialization protocol (RESP2), both halves a server needs. A
 * request parser for the two forms Redis accepts (multibulk arrays of bulk strings, what
 * clients send, and inline lines, what a person types into nc), with Redis 7.0's limits and
 * error texts, and reply writers that append to a growable buffer. Pure functions over
 * bytes: no I/O, no runtime, usable (and fuzzed) anywhere.
 */
#ifndef ROTOR_PUBLIC_RESP_H
#define ROTOR_PUBLIC_RESP_H

#include <rotor/base.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Requests ------------------------------------------------------------------------ */

#define ROTOR_RESP_INLINE_MAX   (64 * 1024)           /* an inline line, a count line */
#define ROTOR_RESP_MAX_ARGS     2147483647            /* Redis 7.0: INT_MAX arguments */
#define ROTOR_RESP_MAX_BULK_DEF (512LL * 1024 * 1024) /* proto-max-bulk-len's default */

/* One argument: len bytes at ptr (into the parsed buffer, or into scratch for inline). */
struct rotor_resp_arg {
	const char *ptr;
	size_t len;
};

/* What rotor_resp_parse fills in, and the room and limits it is given. */
struct rotor_resp_req {
	struct rotor_resp_arg *argv; /* in: room for cap arguments */
	int cap;
	int argc;           /* out: the arguments of the request (0: an empty one, skip it) */
	char *scratch;      /* in: ROTOR_RESP_INLINE_MAX bytes, where inline arguments are
	                       decoded (quotes and escapes); NULL: inline requests refused */
	long long max_bulk; /* in: the longest bulk string; 0: ROTOR_RESP_MAX_BULK_DEF */
	const char *error;  /* out on -EPROTO: Redis's text, "Protocol error: ..." */
};

/*
 * rotor_resp_parse - parse the request at the start of buf[0, len). Returns the bytes it
 * takes (> 0; req->argc arguments in req->argv, pointing into buf or req->scratch, valid as
 * long as they are), 0 when the request is not complete yet, -EPROTO when the bytes are no
 * request (req->error is the reply text Redis 7.0 sends before it closes), -ENOSPC when the
 * request has more than req->cap arguments (req->argc is how many: grow argv and parse again),
 * -EINVAL (buf or req NULL, req->argv NULL with cap > 0, an inline request with no scratch).
 * The result depends on the bytes alone, never on how they were split between reads.
 * Thread: any. Suspends: no.
 */
ROTOR_API ssize_t rotor_resp_parse(const char *buf, size_t len, struct rotor_resp_req *req);

/* ---- Replies ------------------------------------------------------------------------- */

/* A growable reply buffer: zero it, or point buf at cap bytes of the caller's own (a buffer
 * that outgrows them is then copied to the heap, and owned set). */
struct rotor_resp_out {
	char *buf;
	size_t len;
	size_t cap;
	int owned; /* buf is the heap's: the caller frees it */
};

/*
 * rotor_resp_put_simple - append "+s\r\n"; rotor_resp_put_error - "-s\r\n" (s holds the
 * code: "ERR syntax error"); rotor_resp_put_int - ":v\r\n"; rotor_resp_put_bulk - "$n\r\n"
 * then the n bytes and "\r\n"; rotor_resp_put_nil - "$-1\r\n"; rotor_resp_put_array -
 * "*n\r\n" (n < 0: "*-1\r\n", the nil array); rotor_resp_put_raw - n bytes as they are.
 * s must hold no CR or LF. Each returns 0, -EINVAL (o NULL, s or p NULL with bytes), or
 * -ENOMEM (nothing appended). Thread: any. Suspends: no.
 */
ROTOR_API int rotor_resp_put_simple(struct rotor_resp_out *o, const char *s);
ROTOR_API int rotor_resp_put_error(struct rotor_resp_out *o, const char *s);
ROTOR_API int rotor_resp_put_int(struct rotor_resp_out *o, long long v);
ROTOR_API int rotor_resp_put_bulk(struct rotor_resp_out *o, const void *p, size_t n);
ROTOR_API int rotor_resp_put_nil(struct rotor_resp_out *o);
ROTOR_API int rotor_resp_put_array(struct rotor_resp_out *o, long long n);
ROTOR_API int rotor_resp_put_raw(struct rotor_resp_out *o, const void *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_RESP_H */
