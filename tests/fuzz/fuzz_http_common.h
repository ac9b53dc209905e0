/*
 * What the two HTTP fuzz targets share: the checks on a parsed head (its pointers inside
 * the bytes it took, the head alone and every shorter prefix giving the same verdict) and
 * on a body decoded by the chunked decoder (whole, and byte by byte: the same data, the
 * same bytes consumed, the same error). Any failed check is __builtin_trap().
 */
#ifndef ROTOR_FUZZ_HTTP_COMMON_H
#define ROTOR_FUZZ_HTTP_COMMON_H

#include "http_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_FIELDS 32
#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

typedef int (*fuzz_parse_fn)(const char *buf, size_t len, struct rotor__http_field *fields,
                             struct rotor__http_head *out, void *arg);

static int within(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && p - buf <= (ptrdiff_t)(len - n);
}

/* Parses buf[0, len) with parse and checks the head it gives; returns its verdict. */
static int fuzz_head(fuzz_parse_fn parse, void *arg, const char *buf, size_t len,
                     struct rotor__http_head *h, struct rotor__http_field *fields)
{
	int n = parse(buf, len, fields, h, arg);
	CHECK(n <= (int)len);
	if (n > 0) {
		size_t u = (size_t)n;
		CHECK(h->fields == fields && h->nfields <= FUZZ_FIELDS);
		CHECK(!h->method || within(h->method, h->method_len, buf, u));
		CHECK(!h->target || within(h->target, h->target_len, buf, u));
		CHECK(!h->reason || within(h->reason, h->reason_len, buf, u));
		CHECK(h->minor == 0 || h->minor == 1);
		for (unsigned i = 0; i < h->nfields; i++) {
			CHECK(within(fields[i].name, fields[i].name_len, buf, u));
			CHECK(within(fields[i].value, fields[i].value_len, buf, u));
			CHECK(fields[i].name_len > 0);
		}
		CHECK(h->body != ROTOR__HTTP_BODY_LENGTH || h->content_length <= INT64_MAX);
	}
	/* The head alone, on a copy of exactly its bytes: the same verdict; a prefix of it
	 * gives 0 or that verdict (0 where the head parsed). */
	size_t k = n > 0 ? (size_t)n : len;
	char *copy = malloc(k ? k : 1);
	memcpy(copy, buf, k);
	struct rotor__http_field f2[FUZZ_FIELDS];
	struct rotor__http_head h2;
	int again = parse(copy, k, f2, &h2, arg);
	CHECK(again == n);
	if (n > 0) {
		CHECK(h2.nfields == h->nfields && h2.body == h->body &&
		      h2.content_length == h->content_length && h2.keep_alive == h->keep_alive);
		CHECK(parse(copy, k - 1, f2, &h2, arg) == 0);
	}
	if (k > 1) {
		int r = parse(copy, k / 2, f2, &h2, arg);
		CHECK(r == 0 || (n < 0 && r == n));
	}
	free(copy);
	return n;
}

/* Decodes in[0, len) with limits, feeding piece bytes at a time; the data goes to out. */
struct dechunked {
	ssize_t err; /* 0, or the decoder's error */
	size_t used; /* bytes consumed */
	size_t data; /* data bytes handed out */
	uint64_t sum;
	int done;
};

static struct dechunked dechunk(const char *in, size_t len, size_t piece)
{
	struct rotor__http_chunked c;
	struct dechunked d = {0};
	rotor__http_chunked_init(&c, 64, 256);
	size_t avail = piece < len ? piece : len;
	while (!c.done) {
		const char *p = NULL;
		size_t pl = 0;
		ssize_t r = rotor__http_chunked_feed(&c, in + d.used, avail - d.used, &p, &pl);
		if (r < 0) {
			d.err = r;
			break;
		}
		CHECK((size_t)r <= avail - d.used);
		if (pl) {
			CHECK(p >= in + d.used && p + pl == in + d.used + (size_t)r);
			for (size_t i = 0; i < pl; i++)
				d.sum = d.sum * 31 + (unsigned char)p[i];
			d.data += pl;
		}
		d.used += (size_t)r;
		if (r == 0 && pl == 0 && !c.done) {
			if (avail == len)
				break;
			avail = avail + piece < len ? avail + piece : len;
		}
	}
	d.done = c.done;
	if (c.done) {
		const char *p;
		size_t pl;
		CHECK(rotor__http_chunked_feed(&c, "0\r\n\r\n", 5, &p, &pl) == 0 && pl == 0);
	}
	return d;
}

/* The chunked body at in[0, len): whole and byte by byte the same; the bytes it took. */
static size_t fuzz_chunked(const char *in, size_t len)
{
	struct dechunked a = dechunk(in, len, len ? len : 1), b = dechunk(in, len, 1);
	CHECK(a.err == b.err && a.done == b.done);
	if (!a.err) {
		CHECK(a.used == b.used && a.data == b.data && a.sum == b.sum);
		CHECK(a.used <= len && a.data <= a.used);
	}
	return a.done ? a.used : len;
}

/* After a head of n bytes at buf[off]: the offset past its body, or size when it runs to
 * the end (or its framing cannot be followed). */
static size_t fuzz_body(const struct rotor__http_head *h, const char *buf, size_t size, size_t off)
{
	switch (h->body) {
	case ROTOR__HTTP_BODY_NONE:
		return off;
	case ROTOR__HTTP_BODY_LENGTH:
		return h->content_length <= size - off ? off + (size_t)h->content_length : size;
	case ROTOR__HTTP_BODY_CHUNKED:
		return off + fuzz_chunked(buf + off, size - off);
	default:
		return size;
	}
}

#endif
