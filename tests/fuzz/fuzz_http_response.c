/*
 * libFuzzer target for response framing (lib/service/http_parse.c): the bytes a client
 * reads from a server it does not trust. The first byte says whether the request was HEAD
 * (bit 0); the rest is parsed as responses one after another, each body followed as its
 * head frames it (a close-delimited one takes the rest), with the checks of
 * fuzz_http_common.h.
 */
#include "fuzz_http_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_response(const char *buf, size_t len, struct rotor__http_field *fields,
                          struct rotor__http_head *out, void *arg)
{
	return rotor__http_parse_response(buf, len, *(bool *)arg, fields, FUZZ_FIELDS, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool head = data[0] & 1;
	const char *buf = (const char *)data + 1;
	size--;
	size_t off = 0;
	while (off < size) {
		struct rotor__http_field fields[FUZZ_FIELDS];
		struct rotor__http_head h;
		int n = fuzz_head(parse_response, &head, buf + off, size - off, &h, fields);
		if (n <= 0)
			break;
		CHECK(h.status >= 100 && h.status <= 999);
		CHECK(!head || h.body == ROTOR__HTTP_BODY_NONE);
		CHECK(h.body != ROTOR__HTTP_BODY_CLOSE || !h.keep_alive);
		off = fuzz_body(&h, buf, size, off + (size_t)n);
	}
	return 0;
}
