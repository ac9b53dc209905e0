/*
 * libFuzzer target for request framing (lib/service/http_parse.c): untrusted bytes straight
 * from a socket. It parses every request the input holds (pipelining), follows each body as
 * the head frames it (a length skipped, a chunked body decoded whole and byte by byte), and
 * checks what a server relies on (fuzz_http_common.h): a parse takes at most what it was
 * given, its pointers lie inside the head, the head alone and its prefixes give the same
 * verdict, and the chunked decoder's result does not depend on how its input was split.
 */
#include "fuzz_http_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_request(const char *buf, size_t len, struct rotor__http_field *fields,
                         struct rotor__http_head *out, void *arg)
{
	(void)arg;
	return rotor__http_parse_request(buf, len, fields, FUZZ_FIELDS, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;
	while (off < size) {
		struct rotor__http_field fields[FUZZ_FIELDS];
		struct rotor__http_head h;
		int n = fuzz_head(parse_request, NULL, buf + off, size - off, &h, fields);
		if (n <= 0)
			break;
		CHECK(h.body != ROTOR__HTTP_BODY_CLOSE && h.method_len > 0 && h.target_len > 0);
		CHECK(h.minor == 0 || h.has_host);
		off = fuzz_body(&h, buf, size, off + (size_t)n);
	}
	return 0;
}
