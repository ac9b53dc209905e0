/*
 * libFuzzer target for the HTTP example's request parser and static-path check: untrusted
 * bytes straight from a socket. It parses every request the input holds (pipelining), and
 * checks what the server relies on: a parse consumes at most what it was given, the target
 * lies inside the buffer, the parse does not depend on more bytes than the request's, and a
 * static path never climbs out of the root.
 */
#define main http_server_main
#include "../../examples/http_server.c"
#undef main

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;
	while (off < size) {
		struct request r;
		int n = parse_request(buf + off, size - off, &r);
		if (n <= 0)
			break;
		if ((size_t)n > size - off)
			__builtin_trap();
		if (r.target < buf + off || r.target + r.target_len > buf + off + (size_t)n)
			__builtin_trap();
		/* The same request alone parses to the same length. */
		struct request again;
		if (parse_request(buf + off, (size_t)n, &again) != n)
			__builtin_trap();
		if (r.target_len > 8 && !memcmp(r.target, "/static/", 8)) {
			char path[4096];
			if (static_path(r.target + 8, r.target_len - 8, path, sizeof(path)) >= 0 &&
			    (strstr(path, "/../") || !strncmp(path, "../", 3) || path[0] == '/'))
				__builtin_trap();
		}
		off += (size_t)n;
	}
	return 0;
}
