/*
 * HTTP/1.1 framing (lib/service/http_parse.h): every rule of RFC 9112 the parser enforces,
 * each with the errno it gives, the request-smuggling classics, response framing for each
 * status class, and the chunked decoder. Every message is parsed whole and also as each of
 * its prefixes, each copied to a buffer of exactly its length (so an over-read is an ASan
 * error): a prefix must give 0 or the whole's result, and 0 before a head is complete.
 */
#include <criterion/criterion.h>

#include "http_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define NF     32
#define S(lit) lit, sizeof(lit) - 1

static struct rotor__http_field fields[NF];

/* Parses buf[0, n) as a request (or response) and checks every prefix against the result. */
static int parse(bool response, bool head_req, const char *s, size_t n, unsigned cap,
                 struct rotor__http_head *h)
{
	char *b = malloc(n ? n : 1);
	memcpy(b, s, n);
	int whole = response ? rotor__http_parse_response(b, n, head_req, fields, cap, h)
	                     : rotor__http_parse_request(b, n, fields, cap, h);
	cr_assert(whole <= (int)n);
	for (size_t k = 0; k < n; k++) {
		char *p = malloc(k ? k : 1);
		memcpy(p, s, k);
		struct rotor__http_field f2[NF];
		struct rotor__http_head h2;
		int r = response ? rotor__http_parse_response(p, k, head_req, f2, cap, &h2)
		                 : rotor__http_parse_request(p, k, f2, cap, &h2);
		free(p);
		if (whole > 0 && k < (size_t)whole)
			cr_assert_eq(r, 0, "prefix %zu of a %d-byte head gave %d", k, whole, r);
		else
			cr_assert(r == 0 || r == whole, "prefix %zu gave %d, the whole %d", k, r,
			          whole);
	}
	/* The pointers point into the buffer parsed: rebase them onto s. */
	if (whole > 0) {
		ptrdiff_t d = s - b;
		if (!response) {
			h->method += d;
			h->target += d;
		} else {
			h->reason += d;
		}
		for (unsigned i = 0; i < h->nfields; i++) {
			cr_assert(fields[i].name >= b &&
			          fields[i].value + fields[i].value_len <= b + whole);
			fields[i].name += d;
			fields[i].value += d;
		}
	}
	free(b);
	return whole;
}

static int req_n(const char *s, size_t n, struct rotor__http_head *h)
{
	return parse(false, false, s, n, NF, h);
}

static int resp_n(const char *s, size_t n, bool head_req, struct rotor__http_head *h)
{
	return parse(true, head_req, s, n, NF, h);
}

#define REQ(lit, h)        req_n(S(lit), h)
#define RESP(lit, head, h) resp_n(S(lit), head, h)
/* A request's verdict alone. */
#define REQ_ERR(lit)                                                                               \
	({                                                                                         \
		struct rotor__http_head h_;                                                        \
		REQ(lit, &h_);                                                                     \
	})

static bool eq(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && !memcmp(p, lit, n);
}

#define WRK_GET "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"

Test(http_parse, a_wrk_get_gives_its_line_fields_and_keep_alive)
{
	struct rotor__http_head h;
	cr_assert_eq(REQ(WRK_GET, &h), (int)strlen(WRK_GET));
	cr_assert(eq(h.method, h.method_len, "GET"));
	cr_assert(eq(h.target, h.target_len, "/plaintext"));
	cr_assert_eq(h.minor, 1);
	cr_assert_eq(h.nfields, 1);
	cr_assert(eq(h.fields[0].name, h.fields[0].name_len, "Host"));
	cr_assert(eq(h.fields[0].value, h.fields[0].value_len, "127.0.0.1:8080"));
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_NONE);
	cr_assert(h.keep_alive && h.has_host && !h.expect_continue);
	cr_assert_eq(h.fields, fields);
}

Test(http_parse, empty_lines_before_the_request_line_are_skipped_but_bare_ones_refused)
{
	struct rotor__http_head h;
	cr_assert_eq(REQ("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &h), 31);
	cr_assert(eq(h.method, h.method_len, "GET"));
	cr_assert_eq(REQ_ERR("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("\r\n"), 0);
	cr_assert_eq(REQ_ERR(""), 0);
}

Test(http_parse, a_request_line_is_token_sp_target_sp_version_crlf)
{
	cr_assert_eq(REQ_ERR("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET /\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / http/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTPS/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1\r\nHost: a\r\n\r\n"), -EBADMSG);
	/* The target: no control byte, DEL or obs-text. */
	cr_assert_eq(REQ_ERR("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET /a\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET /long/path/with\x00nul HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET /long/path/with\rcr HTTP/1.1\r\nHost: a\r\n\r\n"), -EBADMSG);
}

Test(http_parse, versions_other_than_1_0_and_1_1_are_not_supported)
{
	struct rotor__http_head h;
	cr_assert_eq(REQ_ERR("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -EPROTONOSUPPORT);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), -EPROTONOSUPPORT);
	cr_assert_eq(REQ_ERR("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), -EPROTONOSUPPORT);
	cr_assert_gt(REQ("GET / HTTP/1.0\r\n\r\n", &h), 0);
	cr_assert_eq(h.minor, 0);
	cr_assert(!h.keep_alive && !h.has_host);
}

Test(http_parse, every_form_of_request_target_is_taken_as_bytes)
{
	struct rotor__http_head h;
	cr_assert_gt(REQ("GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n", &h),
	             0);
	cr_assert(eq(h.target, h.target_len, "http://example.com/a?b=c"));
	cr_assert_gt(REQ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &h),
	             0);
	cr_assert(eq(h.method, h.method_len, "CONNECT"));
	cr_assert(eq(h.target, h.target_len, "example.com:443"));
	cr_assert_gt(REQ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h), 0);
	cr_assert(eq(h.target, h.target_len, "*"));
	/* A long target crosses the word-at-a-time scan. */
	cr_assert_gt(REQ("GET /0123456789abcdef0123456789abcdef?x=%20&y=~!$ HTTP/1.1\r\nHost: "
	                 "a\r\n\r\n",
	                 &h),
	             0);
	cr_assert(eq(h.target, h.target_len, "/0123456789abcdef0123456789abcdef?x=%20&y=~!$"));
	/* The method is case-sensitive and kept as sent. */
	cr_assert_gt(REQ("get / HTTP/1.1\r\nHost: a\r\n\r\n", &h), 0);
	cr_assert(eq(h.method, h.method_len, "get"));
}

Test(http_parse, field_names_are_tokens_right_before_the_colon)
{
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX\x80: b\r\n\r\n"), -EBADMSG);
}

Test(http_parse, obs_fold_is_refused)
{
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), -EBADMSG);
}

Test(http_parse, values_are_trimmed_of_ows_and_hold_vchar_obs_text_sp_htab)
{
	struct rotor__http_head h;
	cr_assert_gt(
	    REQ("GET / HTTP/1.1\r\nHost:a\r\nX-A: \t  spaced  value \t \r\nX-B:\r\nX-C:   "
	        "\r\nX-D: caf\xc3\xa9\tand\ttabs, a much longer value than one word\r\n\r\n",
	        &h),
	    0);
	cr_assert_eq(h.nfields, 5);
	cr_assert(eq(h.fields[0].value, h.fields[0].value_len, "a"));
	cr_assert(eq(h.fields[1].value, h.fields[1].value_len, "spaced  value"));
	cr_assert_eq(h.fields[2].value_len, 0);
	cr_assert_eq(h.fields[3].value_len, 0);
	cr_assert(eq(h.fields[4].value, h.fields[4].value_len,
	             "caf\xc3\xa9\tand\ttabs, a much longer value than one word"));
	const struct rotor__http_field *f = rotor__http_field_find(&h, "x-d");
	cr_assert_eq(f, &fields[4]);
	cr_assert_null(rotor__http_field_find(&h, "x-e"));
	cr_assert_null(rotor__http_field_find(&h, "x-"));
}

Test(http_parse, nul_cr_lf_and_controls_in_a_value_are_refused)
{
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n"), -EBADMSG);
	cr_assert_eq(
	    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a long value\x00 after eight\r\n\r\n"),
	    -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: abcdefghijk\x7f\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[0m\r\n\r\n"), -EBADMSG);
}

Test(http_parse, a_bare_lf_or_cr_anywhere_in_the_head_is_refused)
{
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\nHost: a\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\n\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: 1\n\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\n\rX: 1\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), -EBADMSG);
}

Test(http_parse, more_fields_than_the_array_holds_is_enobufs)
{
	struct rotor__http_head h;
	const char m[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
	cr_assert_eq(parse(false, false, m, sizeof(m) - 1, 3, &h), (int)sizeof(m) - 1);
	cr_assert_eq(h.nfields, 3);
	cr_assert_eq(parse(false, false, m, sizeof(m) - 1, 2, &h), -ENOBUFS);
	cr_assert_eq(parse(false, false, m, sizeof(m) - 1, 0, &h), -ENOBUFS);
	const char m0[] = "GET / HTTP/1.0\r\n\r\n";
	cr_assert_eq(rotor__http_parse_request(m0, sizeof(m0) - 1, NULL, 0, &h), 18);
}

Test(http_parse, content_length_frames_the_body)
{
	struct rotor__http_head h;
	cr_assert_gt(REQ("POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\n\r\n", &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_LENGTH);
	cr_assert_eq(h.content_length, 4096);
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\ncontent-length:  007 \r\n\r\n", &h), 0);
	cr_assert_eq(h.content_length, 7);
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_LENGTH);
	cr_assert_eq(h.content_length, 0);
	cr_assert_gt(
	    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n", &h),
	    0);
	cr_assert_eq(h.content_length, 9223372036854775807ull);
	/* Repeated, or a list, all equal: one length (RFC 9110 8.6). */
	cr_assert_gt(
	    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h),
	    0);
	cr_assert_eq(h.content_length, 5);
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 ,5,\t5\r\n\r\n", &h), 0);
	cr_assert_eq(h.content_length, 5);
	/* Neither field: no body. */
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\n\r\n", &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_NONE);
}

Test(http_parse, a_bad_or_conflicting_content_length_is_refused)
{
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(
	    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
	    -EBADMSG);
	cr_assert_eq(
	    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\nContent-Length: 5\r\n\r\n"),
	    -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n"
	                     "\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
	                     "99999999999999999999999999\r\n\r\n"),
	             -EBADMSG);
}

Test(http_parse, transfer_encoding_chunked_last_and_once_frames_the_body)
{
	struct rotor__http_head h;
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
	             0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CHUNKED);
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChunKed\r\n\r\n", &h),
	             0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CHUNKED);
	/* OWS is SP or HTAB. */
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\t\r\n\r\n", &h),
	             0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CHUNKED);
	/* Empty list elements are ignored (RFC 9110 5.6.1). */
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", &h),
	             0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CHUNKED);
}

Test(http_parse, transfer_codings_other_than_chunked_last_and_once_are_refused)
{
	/* The last coding must be chunked: 400 (RFC 9112 6.3). */
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(
	    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"),
	    -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	                     "Transfer-Encoding: gzip\r\n\r\n"),
	             -EBADMSG);
	/* Chunked twice: 400 (RFC 9112 7). */
	cr_assert_eq(
	    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
	    -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	                     "Transfer-Encoding: chunked\r\n\r\n"),
	             -EBADMSG);
	/* A coding not understood, chunked last: 501 (RFC 9112 6.1). */
	cr_assert_eq(
	    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
	    -ENOTSUP);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
	                     "Transfer-Encoding: chunked\r\n\r\n"),
	             -ENOTSUP);
	/* HTTP/1.0 has no transfer codings (RFC 9112 6.1). */
	cr_assert_eq(REQ_ERR("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -EBADMSG);
}

Test(http_parse, request_smuggling_classics_are_refused)
{
	/* CL.TE and TE.CL: both fields, in either order. */
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n"
	                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	                     "Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"),
	             -EBADMSG);
	/* TE.TE: a coding list one parser reads as chunked and another not. */
	cr_assert_eq(
	    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
	    -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	                     " identity\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0b"
	                     "chunked\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(
	    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\x00: chunked\r\n\r\n"),
	    -EBADMSG);
	cr_assert_eq(
	    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n"),
	    -EBADMSG);
	/* Lengths two parsers could read differently. */
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n 6\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\x00\r\n\r\n"),
	             -EBADMSG);
	cr_assert_eq(REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\x0c"
	                     "5\r\n\r\n"),
	             -EBADMSG);
}

Test(http_parse, http_1_1_needs_exactly_one_host)
{
	struct rotor__http_head h;
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), -EBADMSG);
	cr_assert_eq(REQ_ERR("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), -EBADMSG);
	cr_assert_gt(REQ("GET / HTTP/1.0\r\nHOST: a\r\n\r\n", &h), 0);
	cr_assert(h.has_host);
	cr_assert_gt(REQ("GET / HTTP/1.1\r\nHost:\r\n\r\n", &h), 0);
	cr_assert(h.has_host);
}

Test(http_parse, keep_alive_follows_the_version_and_connection)
{
	struct rotor__http_head h;
	cr_assert_gt(REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &h), 0);
	cr_assert(!h.keep_alive);
	cr_assert_gt(REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", &h), 0);
	cr_assert(!h.keep_alive);
	cr_assert_gt(REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", &h), 0);
	cr_assert(h.keep_alive);
	cr_assert_gt(REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n"
	                 "Connection: close\r\n\r\n",
	                 &h),
	             0);
	cr_assert(!h.keep_alive);
	cr_assert_gt(REQ("GET / HTTP/1.0\r\n\r\n", &h), 0);
	cr_assert(!h.keep_alive);
	cr_assert_gt(REQ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h), 0);
	cr_assert(h.keep_alive);
	cr_assert_gt(REQ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &h), 0);
	cr_assert(!h.keep_alive);
}

Test(http_parse, expect_100_continue_is_seen_in_http_1_1_only)
{
	struct rotor__http_head h;
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
	                 "Content-Length: 1\r\n\r\n",
	                 &h),
	             0);
	cr_assert(h.expect_continue);
	cr_assert_gt(REQ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuex\r\n\r\n", &h), 0);
	cr_assert(!h.expect_continue);
	cr_assert_gt(REQ("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &h), 0);
	cr_assert(!h.expect_continue);
}

Test(http_parse, pipelined_heads_parse_one_after_another)
{
	const char m[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	                 "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz"
	                 "GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	const char *targets[] = {"/a", "/b", "/c"};
	size_t off = 0, len = sizeof(m) - 1;
	for (int i = 0; i < 3; i++) {
		struct rotor__http_head h;
		int r = req_n(m + off, len - off, &h);
		cr_assert_gt(r, 0);
		cr_assert(eq(h.target, h.target_len, targets[i]));
		/* The head alone parses to the same length. */
		struct rotor__http_head h2;
		cr_assert_eq(rotor__http_parse_request(m + off, (size_t)r, fields, NF, &h2), r);
		off += (size_t)r;
		if (h.body == ROTOR__HTTP_BODY_LENGTH)
			off += h.content_length;
		cr_assert_eq(h.keep_alive, i < 2);
	}
	cr_assert_eq(off, len);
}

Test(http_parse, error_status_maps_each_errno)
{
	cr_assert_eq(rotor__http_error_status(-EBADMSG), 400);
	cr_assert_eq(rotor__http_error_status(-ENOBUFS), 431);
	cr_assert_eq(rotor__http_error_status(-EMSGSIZE), 431);
	cr_assert_eq(rotor__http_error_status(-ENOTSUP), 501);
	cr_assert_eq(rotor__http_error_status(-EPROTONOSUPPORT), 505);
	cr_assert_eq(rotor__http_error_status(-EFBIG), 413);
}

Test(http_parse, has_token_matches_whole_list_elements)
{
	cr_assert(rotor__http_has_token(S("close"), "close"));
	cr_assert(rotor__http_has_token(S(" , Keep-Alive ,\tUpgrade"), "upgrade"));
	cr_assert(rotor__http_has_token(S("a,CLOSE"), "close"));
	cr_assert(!rotor__http_has_token(S("closed"), "close"));
	cr_assert(!rotor__http_has_token(S("clos"), "close"));
	cr_assert(!rotor__http_has_token(S("x close"), "close"));
	cr_assert(!rotor__http_has_token(S(""), "close"));
}

/* ---- Responses ----------------------------------------------------------------------------- */

Test(http_parse, a_response_gives_its_status_reason_and_length)
{
	struct rotor__http_head h;
	cr_assert_gt(RESP("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.status, 200);
	cr_assert(eq(h.reason, h.reason_len, "OK"));
	cr_assert_eq(h.minor, 1);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_LENGTH);
	cr_assert_eq(h.content_length, 13);
	cr_assert(h.keep_alive);
	cr_assert_gt(RESP("HTTP/1.1 404 Not \t Found\r\nContent-Length: 0\r\n\r\n", false, &h), 0);
	cr_assert(eq(h.reason, h.reason_len, "Not \t Found"));
	/* An empty reason, and none at all (RFC 9112 4 lets a recipient be lenient). */
	cr_assert_gt(RESP("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.reason_len, 0);
	cr_assert_gt(RESP("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.status, 200);
	cr_assert_eq(h.reason_len, 0);
	/* A later 1.x is read as 1.1 (RFC 9110 2.5). */
	cr_assert_gt(RESP("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.minor, 1);
}

Test(http_parse, a_malformed_status_line_is_refused)
{
	struct rotor__http_head h;
	cr_assert_eq(RESP("HTTP/2.0 200 OK\r\n\r\n", false, &h), -EPROTONOSUPPORT);
	cr_assert_eq(RESP("HTTP/1.1 20 OK\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1 099 OK\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1 2000 OK\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1  200 OK\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1 200 O\x00K\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1 200\rOK\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("ICY 200 OK\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1 200 OK\r\nX : y\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n", false, &h), -EBADMSG);
}

Test(http_parse, responses_to_head_and_1xx_204_304_have_no_body)
{
	struct rotor__http_head h;
	cr_assert_gt(RESP("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n", true, &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_NONE);
	cr_assert(h.keep_alive);
	cr_assert_gt(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_NONE);
	cr_assert_gt(RESP("HTTP/1.1 100 Continue\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_NONE);
	cr_assert_eq(h.status, 100);
	cr_assert_gt(
	    RESP("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_NONE);
	cr_assert_gt(RESP("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_NONE);
	cr_assert(h.keep_alive);
	cr_assert_gt(RESP("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_NONE);
	/* An invalid length does not matter where there is no body. */
	cr_assert_gt(RESP("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true, &h), 0);
}

Test(http_parse, response_framing_for_each_status_class)
{
	static const int statuses[] = {200, 201, 206, 301, 302, 400, 404, 500, 503, 999};
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		char m[128];
		struct rotor__http_head h;
		int n = snprintf(m, sizeof(m), "HTTP/1.1 %d X\r\nContent-Length: 3\r\n\r\nabc",
		                 statuses[i]);
		cr_assert_eq(resp_n(m, (size_t)n, false, &h), n - 3);
		cr_assert_eq(h.status, statuses[i]);
		cr_assert_eq(h.body, ROTOR__HTTP_BODY_LENGTH);
		cr_assert_eq(h.content_length, 3);
	}
}

Test(http_parse, response_transfer_encoding_and_close_delimited_bodies)
{
	struct rotor__http_head h;
	cr_assert_gt(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, &h),
	             0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CHUNKED);
	cr_assert(h.keep_alive);
	/* Both fields: chunked, and the connection is not reused (RFC 9112 6.3). */
	cr_assert_gt(
	    RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	         false, &h),
	    0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CHUNKED);
	cr_assert(!h.keep_alive);
	/* Chunked not last: to the close. */
	cr_assert_gt(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, &h),
	             0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CLOSE);
	cr_assert(!h.keep_alive);
	/* HTTP/1.0 with Transfer-Encoding: faulty framing, to the close (RFC 9112 6.1). */
	cr_assert_gt(RESP("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"
	                  "Connection: keep-alive\r\n\r\n",
	                  false, &h),
	             0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CLOSE);
	cr_assert(!h.keep_alive);
	/* Neither field. */
	cr_assert_gt(RESP("HTTP/1.1 200 OK\r\n\r\n", false, &h), 0);
	cr_assert_eq(h.body, ROTOR__HTTP_BODY_CLOSE);
	cr_assert(!h.keep_alive);
	/* HTTP/1.0: kept only with keep-alive; Connection: close wins. */
	cr_assert_gt(RESP("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, &h), 0);
	cr_assert(!h.keep_alive);
	cr_assert_gt(RESP("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n",
	                  false, &h),
	             0);
	cr_assert(h.keep_alive);
	cr_assert_gt(
	    RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n", false, &h),
	    0);
	cr_assert(!h.keep_alive);
	/* An invalid or conflicting length where there is a body. */
	cr_assert_eq(RESP("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", false, &h), -EBADMSG);
	cr_assert_eq(RESP("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", false, &h), -EBADMSG);
}

/* ---- The chunked decoder ------------------------------------------------------------------- */

/* Decodes s[0, n) fed piece bytes at a time, each call on a copy of exactly the bytes fed.
 * Returns 0 when done (the body in out, the bytes consumed in *used), 1 when the input
 * ended first, or the decoder's error. */
static int dechunk(const char *s, size_t n, size_t piece, size_t max_line, size_t max_trailer,
                   char *out, size_t *out_len, size_t *used)
{
	struct rotor__http_chunked c;
	rotor__http_chunked_init(&c, max_line, max_trailer);
	size_t off = 0, avail = piece < n ? piece : n;
	*out_len = 0;
	for (;;) {
		size_t k = avail - off;
		char *b = malloc(k ? k : 1);
		memcpy(b, s + off, k);
		const char *d = NULL;
		size_t dl = 99;
		ssize_t r = rotor__http_chunked_feed(&c, b, k, &d, &dl);
		if (r >= 0) {
			cr_assert_leq((size_t)r, k);
			if (dl) {
				cr_assert(d >= b && d + dl <= b + r);
				cr_assert_eq(d + dl, b + r, "the call stops after its run");
				memcpy(out + *out_len, d, dl);
				*out_len += dl;
			}
		}
		free(b);
		if (r < 0)
			return (int)r;
		off += (size_t)r;
		if (c.done) {
			*used = off;
			/* Once done, nothing more is consumed. */
			cr_assert_eq(rotor__http_chunked_feed(&c, "0\r\n", 3, &d, &dl), 0);
			cr_assert_eq(dl, 0);
			return 0;
		}
		if (r == 0 && dl == 0) {
			if (avail == n)
				return 1;
			avail = avail + piece < n ? avail + piece : n;
		}
	}
}

/* The decoded body of s, whole and byte by byte (the same), or the error of both. */
static int dechunk_all(const char *s, size_t n, char *out, size_t *out_len, size_t *used)
{
	char out1[256];
	size_t l1 = 0, u1 = 0;
	int r = dechunk(s, n, n ? n : 1, 0, 0, out, out_len, used);
	int r1 = dechunk(s, n, 1, 0, 0, out1, &l1, &u1);
	cr_assert_eq(r1, r, "byte by byte %d, whole %d", r1, r);
	if (r == 0) {
		cr_assert_eq(u1, *used);
		cr_assert_eq(l1, *out_len);
		cr_assert(!memcmp(out1, out, l1));
	}
	int r7 = dechunk(s, n, 7, 0, 0, out1, &l1, &u1);
	cr_assert_eq(r7, r);
	return r;
}

#define DECHUNK(lit, out, ol, used) dechunk_all(S(lit), out, ol, used)
#define DECHUNK_ERR(lit)                                                                           \
	({                                                                                         \
		char o_[256];                                                                      \
		size_t ol_, u_;                                                                    \
		DECHUNK(lit, o_, &ol_, &u_);                                                       \
	})

Test(http_parse, chunked_bodies_decode_in_any_pieces)
{
	char out[256];
	size_t ol, used;
	const char m[] = "5\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nNEXT";
	cr_assert_eq(dechunk_all(m, sizeof(m) - 1, out, &ol, &used), 0);
	cr_assert_eq(ol, 31);
	cr_assert(!memcmp(out, "helloabcdefghijklmnopqrstuvwxyz", 31));
	cr_assert_eq(used, sizeof(m) - 1 - 4, "the next message's bytes are not consumed");
	cr_assert_eq(DECHUNK("0\r\n\r\n", out, &ol, &used), 0);
	cr_assert_eq(ol, 0);
	cr_assert_eq(DECHUNK("00000000000000A\r\n0123456789\r\n0\r\n\r\n", out, &ol, &used), 0);
	cr_assert_eq(ol, 10);
	cr_assert_eq(DECHUNK("5\r\nhel", out, &ol, &used), 1);
	cr_assert_eq(DECHUNK("5\r\nhello\r\n0\r\n", out, &ol, &used), 1);
}

Test(http_parse, chunk_extensions_are_skipped)
{
	char out[256];
	size_t ol, used;
	cr_assert_eq(DECHUNK("5;name=value;x=\"q s\"\r\nhello\r\n0;last\r\n\r\n", out, &ol, &used),
	             0);
	cr_assert_eq(ol, 5);
	cr_assert_eq(DECHUNK("5 \t;a\r\nhello\r\n0\r\n\r\n", out, &ol, &used), 0);
	cr_assert_eq(DECHUNK_ERR("5;a\x00\r\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5;a\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5 \r\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5 x\r\nhello\r\n0\r\n\r\n"), -EBADMSG);
}

Test(http_parse, a_malformed_chunk_size_or_line_is_refused)
{
	char out[256];
	size_t ol, used;
	cr_assert_eq(DECHUNK_ERR("ffffffffffffffffff\r\nx\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("00000000000000005\r\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("\r\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR(";x\r\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("-5\r\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("0x5\r\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5\nhello\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5\r\rhello\r\n0\r\n\r\n"), -EBADMSG);
	/* Sixteen digits are the most, and every size they spell is taken. */
	struct rotor__http_chunked c;
	rotor__http_chunked_init(&c, 0, 0);
	const char *d;
	size_t dl;
	cr_assert_eq(rotor__http_chunked_feed(&c, S("ffffffffffffffff\r\nab"), &d, &dl), 20);
	cr_assert_eq(dl, 2);
	cr_assert_eq(c.left, UINT64_MAX - 2);
	/* A size line longer than max_line. */
	char line[200];
	memset(line, 'a', sizeof(line));
	memcpy(line, "1;", 2);
	cr_assert_eq(dechunk(line, sizeof(line), 1, 100, 0, out, &ol, &used), -EMSGSIZE);
	cr_assert_eq(dechunk(line, sizeof(line), 200, 100, 0, out, &ol, &used), -EMSGSIZE);
}

Test(http_parse, the_crlf_after_chunk_data_is_required)
{
	cr_assert_eq(DECHUNK_ERR("5\r\nhelloX\r\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5\r\nhello\n0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5\r\nhello\rX0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5\r\nhello0\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5\r\nhello\r\n0\r\n\x01"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5\r\nhello\r\n0\r\n\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("5\r\nhello\r\n0\r\n\r\r"), -EBADMSG);
}

Test(http_parse, trailers_are_checked_like_fields_and_skipped)
{
	char out[256];
	size_t ol, used;
	const char m[] = "3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum:\t1234 \r\n\r\nGET";
	cr_assert_eq(dechunk_all(m, sizeof(m) - 1, out, &ol, &used), 0);
	cr_assert_eq(ol, 3);
	cr_assert_eq(used, sizeof(m) - 1 - 3);
	cr_assert_eq(DECHUNK_ERR("0\r\nX : y\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("0\r\nNoColon\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("0\r\nX: y\r\n z\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("0\r\nX: a\x00\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("0\r\nX: a\nY: b\r\n\r\n"), -EBADMSG);
	cr_assert_eq(DECHUNK_ERR("0\r\n: a\r\n\r\n"), -EBADMSG);
	/* The trailer section is bounded. */
	char t[300];
	size_t n = (size_t)snprintf(t, sizeof(t), "0\r\nX: %0200d\r\n\r\n", 0);
	cr_assert_eq(dechunk(t, n, 1, 0, 100, out, &ol, &used), -EMSGSIZE);
	cr_assert_eq(dechunk(t, n, n, 0, 100, out, &ol, &used), -EMSGSIZE);
	cr_assert_eq(dechunk(t, n, 1, 0, 300, out, &ol, &used), 0);
}
