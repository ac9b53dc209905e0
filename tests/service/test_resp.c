/*
 * RESP2 (rotor/resp.h): multibulk and inline requests, byte by byte and pipelined, empty
 * requests, argument vectors that must grow, inline quoting as redis-cli and sdssplitargs
 * define it, every protocol error with Redis 7.0's text, the bulk limit, and the reply
 * writers into the caller's buffer and onto the heap.
 */
#include <criterion/criterion.h>
#include <rotor/resp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char scratch[ROTOR_RESP_INLINE_MAX];
static struct rotor_resp_arg av[16];

static ssize_t parse(const char *buf, size_t len, struct rotor_resp_req *r)
{
	*r = (struct rotor_resp_req){.argv = av, .cap = 16, .scratch = scratch};
	return rotor_resp_parse(buf, len, r);
}

static void expect_args(const struct rotor_resp_req *r, int n, const char *const *want)
{
	cr_assert_eq(r->argc, n, "argc %d, want %d", r->argc, n);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(r->argv[i].len, strlen(want[i]), "arg %d length", i);
		cr_assert(!memcmp(r->argv[i].ptr, want[i], r->argv[i].len), "arg %d", i);
	}
}

static void expect_error(const char *in, const char *text)
{
	struct rotor_resp_req r;
	cr_assert_eq(parse(in, strlen(in), &r), -EPROTO, "%s", in);
	cr_assert_str_eq(r.error, text);
}

Test(resp, multibulk_parses_whole_and_is_incomplete_at_every_shorter_prefix)
{
	const char *in = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\ne\r\n";
	size_t n = strlen(in);
	struct rotor_resp_req r;
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(parse(in, i, &r), 0, "prefix %zu", i);
	cr_assert_eq(parse(in, n, &r), (ssize_t)n);
	expect_args(&r, 3, (const char *[]){"SET", "key", "va\r\ne"});
}

Test(resp, pipelined_requests_parse_one_after_another)
{
	const char *in = "*1\r\n$4\r\nPING\r\nECHO hi\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
	size_t off = 0, n = strlen(in);
	struct rotor_resp_req r;
	ssize_t k = parse(in, n, &r);
	cr_assert_eq(k, 14);
	expect_args(&r, 1, (const char *[]){"PING"});
	off += (size_t)k;
	k = parse(in + off, n - off, &r);
	cr_assert_eq(k, 9);
	expect_args(&r, 2, (const char *[]){"ECHO", "hi"});
	off += (size_t)k;
	k = parse(in + off, n - off, &r);
	cr_assert_eq((size_t)k, n - off);
	expect_args(&r, 2, (const char *[]){"GET", ""});
}

Test(resp, empty_requests_are_taken_with_no_arguments)
{
	struct rotor_resp_req r;
	cr_assert_eq(parse("*0\r\n", 4, &r), 4);
	cr_assert_eq(r.argc, 0);
	cr_assert_eq(parse("*-1\r\n", 5, &r), 5);
	cr_assert_eq(r.argc, 0);
	cr_assert_eq(parse("\r\n", 2, &r), 2);
	cr_assert_eq(r.argc, 0);
	cr_assert_eq(parse("   \n", 4, &r), 4);
	cr_assert_eq(r.argc, 0);
}

Test(resp, more_arguments_than_room_says_how_many)
{
	struct rotor_resp_arg small[2];
	struct rotor_resp_req r = {.argv = small, .cap = 2, .scratch = scratch};
	const char *in = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
	cr_assert_eq(rotor_resp_parse(in, strlen(in), &r), -ENOSPC);
	cr_assert_eq(r.argc, 3);
	r = (struct rotor_resp_req){.argv = small, .cap = 2, .scratch = scratch};
	cr_assert_eq(rotor_resp_parse("a b c\n", 6, &r), -ENOSPC);
	cr_assert_eq(r.argc, 3);
	/* Incomplete stays incomplete, whatever the room. */
	r = (struct rotor_resp_req){.argv = small, .cap = 2, .scratch = scratch};
	cr_assert_eq(rotor_resp_parse(in, strlen(in) - 1, &r), 0);
}

Test(resp, inline_quotes_and_escapes_decode_as_sdssplitargs)
{
	struct rotor_resp_req r;
	const char *in = "set \"a b\\x41\\n\\\"\" 'it\\'s' plain\t\"\"\r\n";
	cr_assert_eq(parse(in, strlen(in), &r), (ssize_t)strlen(in));
	expect_args(&r, 5, (const char *[]){"set", "a bA\n\"", "it's", "plain", ""});
	cr_assert_eq(parse("PING", 4, &r), 0, "no newline: incomplete");
	cr_assert_eq(parse("PING\n", 5, &r), 5);
	expect_args(&r, 1, (const char *[]){"PING"});
}

Test(resp, protocol_errors_carry_redis_texts)
{
	expect_error("*x\r\n", "Protocol error: invalid multibulk length");
	expect_error("*2147483648\r\n", "Protocol error: invalid multibulk length");
	expect_error("*1\r\n$-1\r\n", "Protocol error: invalid bulk length");
	expect_error("*1\r\n$01\r\n", "Protocol error: invalid bulk length");
	expect_error("*2\r\n+OK\r\n", "Protocol error: expected '$', got '+'");
	expect_error("set \"a\n", "Protocol error: unbalanced quotes in request");
	expect_error("set \"a\"b\n", "Protocol error: unbalanced quotes in request");
	expect_error("set 'a\n", "Protocol error: unbalanced quotes in request");
}

Test(resp, lines_past_the_inline_limit_are_refused)
{
	size_t n = ROTOR_RESP_INLINE_MAX + 8;
	char *big = malloc(n);
	memset(big, 'a', n);
	struct rotor_resp_req r;
	cr_assert_eq(parse(big, n, &r), -EPROTO);
	cr_assert_str_eq(r.error, "Protocol error: too big inline request");
	big[0] = '*';
	cr_assert_eq(parse(big, n, &r), -EPROTO);
	cr_assert_str_eq(r.error, "Protocol error: too big mbulk count string");
	memcpy(big, "*1\r\n$", 5);
	cr_assert_eq(parse(big, n, &r), -EPROTO);
	cr_assert_str_eq(r.error, "Protocol error: too big bulk count string");
	free(big);
}

Test(resp, bulk_longer_than_the_limit_is_refused_before_it_arrives)
{
	struct rotor_resp_req r = {.argv = av, .cap = 16, .max_bulk = 10};
	cr_assert_eq(rotor_resp_parse("*1\r\n$11\r\n", 9, &r), -EPROTO);
	cr_assert_str_eq(r.error, "Protocol error: invalid bulk length");
	r = (struct rotor_resp_req){.argv = av, .cap = 16, .max_bulk = 10};
	cr_assert_eq(rotor_resp_parse("*1\r\n$10\r\n", 9, &r), 0);
}

Test(resp, misuse_is_refused)
{
	struct rotor_resp_req r = {0};
	cr_assert_eq(rotor_resp_parse(NULL, 1, &r), -EINVAL);
	cr_assert_eq(rotor_resp_parse("x", 1, NULL), -EINVAL);
	r = (struct rotor_resp_req){.cap = 1};
	cr_assert_eq(rotor_resp_parse("x", 1, &r), -EINVAL);
	r = (struct rotor_resp_req){.argv = av, .cap = 16};
	cr_assert_eq(rotor_resp_parse("PING\n", 5, &r), -EINVAL, "inline needs scratch");
	cr_assert_eq(rotor_resp_put_int(NULL, 1), -EINVAL);
	struct rotor_resp_out o = {0};
	cr_assert_eq(rotor_resp_put_bulk(&o, NULL, 1), -EINVAL);
	cr_assert_eq(rotor_resp_put_simple(&o, NULL), -EINVAL);
}

Test(resp, writers_fill_the_callers_buffer_then_move_to_the_heap)
{
	char mine[16];
	struct rotor_resp_out o = {.buf = mine, .cap = sizeof(mine)};
	cr_assert_eq(rotor_resp_put_simple(&o, "OK"), 0);
	cr_assert_eq(rotor_resp_put_int(&o, -42), 0);
	cr_assert_eq(o.owned, 0);
	cr_assert(o.buf == mine);
	cr_assert_eq(rotor_resp_put_bulk(&o, "hello", 5), 0);
	cr_assert_eq(rotor_resp_put_nil(&o), 0);
	cr_assert_eq(rotor_resp_put_array(&o, -1), 0);
	cr_assert_eq(rotor_resp_put_array(&o, 2), 0);
	cr_assert_eq(rotor_resp_put_error(&o, "ERR syntax error"), 0);
	cr_assert_eq(rotor_resp_put_int(&o, -9223372036854775807LL - 1), 0);
	cr_assert_eq(rotor_resp_put_raw(&o, "+x\r\n", 4), 0);
	cr_assert_eq(o.owned, 1);
	const char *want = "+OK\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n*2\r\n-ERR syntax error\r\n"
	                   ":-9223372036854775808\r\n+x\r\n";
	cr_assert_eq(o.len, strlen(want));
	cr_assert(!memcmp(o.buf, want, o.len));
	free(o.buf);
}
