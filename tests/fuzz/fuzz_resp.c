/*
 * libFuzzer target for the RESP2 request parser (rotor/resp.h): untrusted bytes straight
 * from a socket. It parses every request the input holds (pipelining) and checks what the
 * Redis example relies on: a parse takes at most what it was given, every argument lies in
 * the buffer or the scratch, the request alone parses the same, one byte less is incomplete,
 * and the arguments written back with the reply writers as a multibulk parse to themselves.
 */
#include <rotor/resp.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[ROTOR_RESP_INLINE_MAX], scratch2[ROTOR_RESP_INLINE_MAX];
static struct rotor_resp_arg argv[64], argv2[64];

static ssize_t parse(const char *buf, size_t len, struct rotor_resp_arg *av, char *sc,
                     struct rotor_resp_req *req)
{
	*req = (struct rotor_resp_req){.argv = av, .cap = 64, .scratch = sc, .max_bulk = 4096};
	return rotor_resp_parse(buf, len, req);
}

static int same_args(const struct rotor_resp_req *a, const struct rotor_resp_req *b)
{
	if (a->argc != b->argc)
		return 0;
	for (int i = 0; i < a->argc; i++)
		if (a->argv[i].len != b->argv[i].len ||
		    memcmp(a->argv[i].ptr, b->argv[i].ptr, a->argv[i].len))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;
	while (off < size) {
		struct rotor_resp_req r, again;
		ssize_t n = parse(buf + off, size - off, argv, scratch, &r);
		if (n == -EPROTO && (!r.error || strncmp(r.error, "Protocol error: ", 16)))
			__builtin_trap();
		if (n <= 0)
			break;
		if ((size_t)n > size - off || r.argc < 0 || r.argc > 64)
			__builtin_trap();
		for (int i = 0; i < r.argc; i++) {
			const char *p = r.argv[i].ptr;
			int in_buf = p >= buf + off && p + r.argv[i].len <= buf + off + n;
			int in_scratch =
			    p >= scratch && p + r.argv[i].len <= scratch + sizeof(scratch);
			if (!in_buf && !in_scratch)
				__builtin_trap();
		}
		if (parse(buf + off, (size_t)n, argv2, scratch2, &again) != n ||
		    !same_args(&r, &again))
			__builtin_trap();
		if (parse(buf + off, (size_t)n - 1, argv2, scratch2, &again) != 0)
			__builtin_trap();
		struct rotor_resp_out o = {0};
		int ok = rotor_resp_put_array(&o, r.argc) == 0;
		for (int i = 0; ok && i < r.argc; i++)
			ok = rotor_resp_put_bulk(&o, r.argv[i].ptr, r.argv[i].len) == 0;
		if (!ok)
			__builtin_trap();
		if (r.argc > 0) {
			ssize_t m = parse(o.buf, o.len, argv2, scratch2, &again);
			if (m != (ssize_t)o.len || !same_args(&r, &again))
				__builtin_trap();
		}
		free(o.owned ? o.buf : NULL);
		off += (size_t)n;
	}
	return 0;
}
