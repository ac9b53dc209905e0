/*
 * libFuzzer target for the Redis client's reply path (lib/service/redis_reply.c: hiredis's
 * reader building rotor_redis_reply objects): untrusted bytes from a server. The input is fed
 * whole to one reader and in pieces (cut where its first byte says, then byte by byte) to
 * another; both must give the same replies, each well-formed (strings NUL-terminated at their
 * length, no missing element, types from the RESP2 set), and the same error at the same
 * point. A small bound (4 KiB) makes the -EMSGSIZE path reachable.
 */
#include "../../lib/service/redis_reply.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX 4096

/* A digest of a reply tree that also checks its shape. */
static uint64_t digest(const struct rotor_redis_reply *x, int depth)
{
	if (!x || depth > 16)
		__builtin_trap();
	uint64_t h = (uint64_t)x->type * 0x9e3779b97f4a7c15ull;
	switch (x->type) {
	case ROTOR_REDIS_STRING:
	case ROTOR_REDIS_STATUS:
	case ROTOR_REDIS_ERROR:
		if (!x->str || x->str[x->len] != '\0')
			__builtin_trap();
		for (size_t i = 0; i < x->len; i++)
			h = (h ^ (uint8_t)x->str[i]) * 0x100000001b3ull;
		return h ^ x->len;
	case ROTOR_REDIS_INTEGER:
		return h ^ (uint64_t)x->integer;
	case ROTOR_REDIS_NIL:
		return h;
	case ROTOR_REDIS_ARRAY:
		if (x->elements && !x->element)
			__builtin_trap();
		for (size_t i = 0; i < x->elements; i++)
			h = (h ^ digest(x->element[i], depth + 1)) * 31;
		return h ^ x->elements;
	default:
		__builtin_trap();
	}
}

/* Every reply the reader has now into d[*n]; the error that ended it (or 0). */
static int drain(struct rotor__redis_reader *rd, uint64_t *d, size_t *n, size_t cap)
{
	struct rotor_redis_reply *x;
	int err;
	while ((err = rotor__redis_reader_next(rd, &x)) == 1) {
		if (*n < cap)
			d[(*n)++] = digest(x, 0);
		rotor_redis_reply_free(x);
	}
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t whole[4096], parts[4096];
	size_t nw = 0, np = 0;
	struct rotor__redis_reader *a = rotor__redis_reader_create(MAX);
	struct rotor__redis_reader *b = rotor__redis_reader_create(MAX);
	if (!a || !b)
		__builtin_trap();
	int ea = rotor__redis_reader_feed(a, data, size);
	if (ea == 0)
		ea = drain(a, whole, &nw, 4096);
	/* In pieces: a cut, then a byte at a time. */
	size_t cut = size ? data[0] % (size + 1) : 0, off = 0;
	int eb = 0;
	while (off < size && eb == 0) {
		size_t n = off == 0 ? cut : 1;
		if (n == 0)
			n = 1;
		if (n > size - off)
			n = size - off;
		eb = rotor__redis_reader_feed(b, data + off, n);
		off += n;
		if (eb == 0)
			eb = drain(b, parts, &np, 4096);
	}
	/* The bound on buffered input may trip in one and not the other (a whole feed holds
	 * more at once); otherwise both must agree. */
	if (ea != -EMSGSIZE && eb != -EMSGSIZE) {
		if (ea != eb || nw != np)
			__builtin_trap();
		for (size_t i = 0; i < nw; i++)
			if (whole[i] != parts[i])
				__builtin_trap();
	} else {
		size_t n = nw < np ? nw : np;
		for (size_t i = 0; i < n; i++)
			if (whole[i] != parts[i])
				__builtin_trap();
	}
	rotor__redis_reader_destroy(a);
	rotor__redis_reader_destroy(b);
	return 0;
}
