/*
 * String commands and the generic key commands (DEL, EXISTS, TYPE, expiry), each one part
 * on its key's owner; MGET, MSET, DEL and EXISTS run here once per owner of their keys (a
 * part each, with that owner's keys), and conn.c merges the parts' replies.
 */
#include "redis.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef const struct rotor_resp_arg arg_t;

static uint64_t H(arg_t *k)
{
	return key_hash(k->ptr, k->len);
}

static bool string_length_ok(struct rotor_resp_out *o, long long off, long long add)
{
	/* Redis's checkStringLength: off + add past the limit, or past LLONG_MAX (an offset near
	 * it is a valid integer argument), is refused. */
	if (add > max_bulk || off > max_bulk - add) {
		put_err(o, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
		return false;
	}
	return true;
}

/* Replace (or create) key's value with the string v; the expiry goes unless keep_ttl. */
static struct entry *store(struct shard *s, arg_t *key, const char *v, size_t n, bool keep_ttl)
{
	uint64_t h = H(key);
	struct entry *e = db_find(s, key->ptr, key->len, h);
	if (e && e->v.type == T_STRING && e->v.s.len == n && n) {
		/* The same length (a benchmark's -d, a counter's width): no allocation. */
		memcpy(e->v.s.p, v, n);
		if (!keep_ttl)
			db_set_expire(s, e, 0);
		return e;
	}
	char *d = dup_bytes(s, v, n);
	if (!d)
		return NULL;
	if (e) {
		value_free(s, &e->v);
		if (!keep_ttl)
			db_set_expire(s, e, 0);
	} else if (!(e = db_add(s, key->ptr, key->len, h, T_STRING))) {
		free_bytes(s, d, n);
		return NULL;
	}
	e->v.type = T_STRING;
	e->v.s = (struct bytes){d, n};
	return e;
}

static void run_get(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_STRING, o, &wrong);
	if (wrong)
		return;
	if (!e)
		rotor_resp_put_nil(o);
	else
		rotor_resp_put_bulk(o, e->v.s.p, e->v.s.len);
}

/* MGET's part: its owner's keys' values, one after the other (conn.c puts them back in the
 * request's order); a value that is not a string is nil, not an error. */
static void run_mget(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	for (int i = 1; i < argc; i++) {
		struct entry *e = db_find(s, argv[i].ptr, argv[i].len, H(&argv[i]));
		if (!e || e->v.type != T_STRING)
			rotor_resp_put_nil(o);
		else
			rotor_resp_put_bulk(o, e->v.s.p, e->v.s.len);
	}
}

enum {
	SET_NX = 1,
	SET_XX = 2,
	SET_GET = 4,
	SET_KEEPTTL = 8,
	SET_EX = 16,
	SET_PX = 32,
	SET_EXAT = 64,
	SET_PXAT = 128
};

static void run_set(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	unsigned f = 0;
	arg_t *expire = NULL;
	const unsigned ttl = SET_EX | SET_PX | SET_EXAT | SET_PXAT;
	for (int j = 3; j < argc; j++) {
		arg_t *a = &argv[j];
		bool next = j + 1 < argc;
		if (arg_eq(a, "nx") && !(f & SET_XX))
			f |= SET_NX;
		else if (arg_eq(a, "xx") && !(f & SET_NX))
			f |= SET_XX;
		else if (arg_eq(a, "get"))
			f |= SET_GET;
		else if (arg_eq(a, "keepttl") && !(f & ttl))
			f |= SET_KEEPTTL;
		else if (arg_eq(a, "ex") && !(f & (SET_KEEPTTL | (ttl & ~SET_EX))) && next)
			f |= SET_EX, expire = &argv[++j];
		else if (arg_eq(a, "px") && !(f & (SET_KEEPTTL | (ttl & ~SET_PX))) && next)
			f |= SET_PX, expire = &argv[++j];
		else if (arg_eq(a, "exat") && !(f & (SET_KEEPTTL | (ttl & ~SET_EXAT))) && next)
			f |= SET_EXAT, expire = &argv[++j];
		else if (arg_eq(a, "pxat") && !(f & (SET_KEEPTTL | (ttl & ~SET_PXAT))) && next)
			f |= SET_PXAT, expire = &argv[++j];
		else
			return put_err(o, ERR_SYNTAX);
	}
	long long ms = 0;
	if (expire) {
		if (!arg_ll(expire, &ms))
			return put_err(o, ERR_NOTINT);
		bool secs = f & (SET_EX | SET_EXAT);
		if (ms <= 0 || (secs && ms > LLONG_MAX / 1000))
			return put_err(o, "ERR invalid expire time in 'set' command");
		if (secs)
			ms *= 1000;
		if (f & (SET_EX | SET_PX)) {
			int64_t now = mstime();
			if (ms > LLONG_MAX - now)
				return put_err(o, "ERR invalid expire time in 'set' command");
			ms += now;
		}
	}
	struct entry *e = db_find(s, argv[1].ptr, argv[1].len, H(&argv[1]));
	if (f & SET_GET) {
		if (e && e->v.type != T_STRING)
			return put_err(o, ERR_WRONGTYPE);
		if (e)
			rotor_resp_put_bulk(o, e->v.s.p, e->v.s.len);
		else
			rotor_resp_put_nil(o);
	}
	if (((f & SET_NX) && e) || ((f & SET_XX) && !e)) {
		if (!(f & SET_GET))
			rotor_resp_put_nil(o);
		return;
	}
	e = store(s, &argv[1], argv[2].ptr, argv[2].len, f & SET_KEEPTTL);
	if (!e) {
		if (!(f & SET_GET))
			put_err(o, "ERR out of memory");
		return;
	}
	if (expire)
		db_set_expire(s, e, ms);
	if (!(f & SET_GET))
		rotor_resp_put_simple(o, "OK");
}

static void run_setnx(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	if (db_find(s, argv[1].ptr, argv[1].len, H(&argv[1])))
		return (void)rotor_resp_put_int(o, 0);
	rotor_resp_put_int(o, store(s, &argv[1], argv[2].ptr, argv[2].len, false) ? 1 : 0);
}

static void run_getset(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_STRING, o, &wrong);
	if (wrong)
		return;
	if (e)
		rotor_resp_put_bulk(o, e->v.s.p, e->v.s.len);
	else
		rotor_resp_put_nil(o);
	store(s, &argv[1], argv[2].ptr, argv[2].len, false);
}

/* MSET's part: its owner's keys and values. */
static void run_mset(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	for (int i = 1; i + 1 < argc; i += 2)
		store(s, &argv[i], argv[i + 1].ptr, argv[i + 1].len, false);
	rotor_resp_put_simple(o, "OK");
}

static void incr_by(struct shard *s, arg_t *key, long long by, struct rotor_resp_out *o)
{
	bool wrong;
	struct entry *e = lookup_typed(s, key, T_STRING, o, &wrong);
	if (wrong)
		return;
	long long v = 0;
	if (e && !arg_ll(&(struct rotor_resp_arg){e->v.s.p, e->v.s.len}, &v))
		return put_err(o, ERR_NOTINT);
	if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v))
		return put_err(o, ERR_OVERFLOW);
	v += by;
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%lld", v);
	if (e && e->v.s.len == (size_t)n) {
		memcpy(e->v.s.p, buf, (size_t)n); /* as wide as before: in place */
	} else if (e) {
		char *d = dup_bytes(s, buf, (size_t)n);
		if (!d)
			return put_err(o, "ERR out of memory");
		free_bytes(s, e->v.s.p, e->v.s.len);
		e->v.s = (struct bytes){d, (size_t)n};
	} else if (!store(s, key, buf, (size_t)n, false)) {
		return put_err(o, "ERR out of memory");
	}
	rotor_resp_put_int(o, v);
}

static void run_incr(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	incr_by(s, &argv[1], argv[0].ptr[0] == 'd' || argv[0].ptr[0] == 'D' ? -1 : 1, o);
}

static void run_incrby(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	long long by;
	if (!arg_ll(&argv[2], &by))
		return put_err(o, ERR_NOTINT);
	if (argv[0].ptr[0] == 'd' || argv[0].ptr[0] == 'D') {
		if (by == LLONG_MIN)
			return put_err(o, "ERR decrement would overflow");
		by = -by;
	}
	incr_by(s, &argv[1], by, o);
}

static void run_append(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_STRING, o, &wrong);
	if (wrong)
		return;
	if (!e) {
		e = store(s, &argv[1], argv[2].ptr, argv[2].len, false);
		return e ? (void)rotor_resp_put_int(o, (long long)argv[2].len)
		         : put_err(o, "ERR out of memory");
	}
	if (!string_length_ok(o, (long long)e->v.s.len, (long long)argv[2].len))
		return;
	size_t n = e->v.s.len + argv[2].len;
	char *d = realloc(e->v.s.p, n ? n : 1);
	if (!d)
		return put_err(o, "ERR out of memory");
	memcpy(d + e->v.s.len, argv[2].ptr, argv[2].len);
	mem_add(s, (long long)argv[2].len);
	e->v.s = (struct bytes){d, n};
	rotor_resp_put_int(o, (long long)n);
}

static void run_strlen(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_STRING, o, &wrong);
	if (!wrong)
		rotor_resp_put_int(o, e ? (long long)e->v.s.len : 0);
}

static void run_getrange(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	long long start, end;
	if (!arg_ll(&argv[2], &start) || !arg_ll(&argv[3], &end))
		return put_err(o, ERR_NOTINT);
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_STRING, o, &wrong);
	if (wrong)
		return;
	if (!e)
		return (void)rotor_resp_put_bulk(o, "", 0);
	long long len = (long long)e->v.s.len;
	if (start < 0 && end < 0 && start > end)
		return (void)rotor_resp_put_bulk(o, "", 0);
	if (start < 0)
		start += len;
	if (end < 0)
		end += len;
	if (start < 0)
		start = 0;
	if (end < 0)
		end = 0;
	if (end >= len)
		end = len - 1;
	if (start > end || len == 0)
		return (void)rotor_resp_put_bulk(o, "", 0);
	rotor_resp_put_bulk(o, e->v.s.p + start, (size_t)(end - start + 1));
}

static void run_setrange(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	long long off;
	if (!arg_ll(&argv[2], &off))
		return put_err(o, ERR_NOTINT);
	if (off < 0)
		return put_err(o, "ERR offset is out of range");
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_STRING, o, &wrong);
	if (wrong)
		return;
	size_t vlen = argv[3].len;
	if (!e && vlen == 0)
		return (void)rotor_resp_put_int(o, 0);
	if (e && vlen == 0)
		return (void)rotor_resp_put_int(o, (long long)e->v.s.len);
	if (!string_length_ok(o, off, (long long)vlen))
		return;
	if (!e && !(e = store(s, &argv[1], "", 0, false)))
		return put_err(o, "ERR out of memory");
	size_t need = (size_t)off + vlen;
	if (need > e->v.s.len) {
		char *d = realloc(e->v.s.p, need);
		if (!d)
			return put_err(o, "ERR out of memory");
		memset(d + e->v.s.len, 0, need - e->v.s.len);
		mem_add(s, (long long)(need - e->v.s.len));
		e->v.s = (struct bytes){d, need};
	}
	memcpy(e->v.s.p + off, argv[3].ptr, vlen);
	rotor_resp_put_int(o, (long long)e->v.s.len);
}

/* DEL's and EXISTS's part: its owner's keys, how many there were (conn.c sums them). */
static void run_del(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	long long n = 0;
	for (int i = 1; i < argc; i++) {
		struct entry *e = db_find(s, argv[i].ptr, argv[i].len, H(&argv[i]));
		if (e) {
			db_delete(s, e);
			n++;
		}
	}
	rotor_resp_put_int(o, n);
}

static void run_exists(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	long long n = 0;
	for (int i = 1; i < argc; i++)
		n += db_find(s, argv[i].ptr, argv[i].len, H(&argv[i])) != NULL;
	rotor_resp_put_int(o, n);
}

static void run_type(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	static const char *const names[] = {"string", "list", "hash", "set", "zset"};
	struct entry *e = db_find(s, argv[1].ptr, argv[1].len, H(&argv[1]));
	rotor_resp_put_simple(o, e ? names[e->v.type] : "none");
}

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

static void run_expire(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	/* expire, pexpire, expireat, pexpireat */
	bool secs = argv[0].ptr[0] == 'e' || argv[0].ptr[0] == 'E';
	bool at = argv[0].len > 7;
	char bad[64];
	snprintf(bad, sizeof(bad), "ERR invalid expire time in '%s' command",
	         secs ? (at ? "expireat" : "expire") : (at ? "pexpireat" : "pexpire"));
	unsigned f = 0;
	for (int j = 3; j < argc; j++) {
		if (arg_eq(&argv[j], "nx"))
			f |= EXP_NX;
		else if (arg_eq(&argv[j], "xx"))
			f |= EXP_XX;
		else if (arg_eq(&argv[j], "gt"))
			f |= EXP_GT;
		else if (arg_eq(&argv[j], "lt"))
			f |= EXP_LT;
		else {
			char msg[128];
			snprintf(msg, sizeof(msg), "ERR Unsupported option %.*s", (int)argv[j].len,
			         argv[j].ptr);
			return put_err(o, msg);
		}
	}
	if ((f & EXP_NX) && (f & (EXP_XX | EXP_GT | EXP_LT)))
		return put_err(o, "ERR NX and XX, GT or LT options at the same time are not "
		                  "compatible");
	if ((f & EXP_GT) && (f & EXP_LT))
		return put_err(o, "ERR GT and LT options at the same time are not compatible");
	long long when;
	if (!arg_ll(&argv[2], &when))
		return put_err(o, ERR_NOTINT);
	if (secs) {
		if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000)
			return put_err(o, bad);
		when *= 1000;
	}
	int64_t now = mstime();
	if (!at) {
		if (when > LLONG_MAX - now)
			return put_err(o, bad);
		when += now;
	}
	struct entry *e = db_find(s, argv[1].ptr, argv[1].len, H(&argv[1]));
	if (!e)
		return (void)rotor_resp_put_int(o, 0);
	long long cur = e->expire_ms ? e->expire_ms : -1;
	if (((f & EXP_NX) && cur != -1) || ((f & EXP_XX) && cur == -1) ||
	    ((f & EXP_GT) && (when <= cur || cur == -1)) ||
	    ((f & EXP_LT) && cur != -1 && when >= cur))
		return (void)rotor_resp_put_int(o, 0);
	if (when <= now)
		db_delete(s, e);
	else
		db_set_expire(s, e, when);
	rotor_resp_put_int(o, 1);
}

static void run_ttl(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	struct entry *e = db_find(s, argv[1].ptr, argv[1].len, H(&argv[1]));
	if (!e)
		return (void)rotor_resp_put_int(o, -2);
	if (!e->expire_ms)
		return (void)rotor_resp_put_int(o, -1);
	long long ttl = e->expire_ms - mstime();
	if (ttl < 0)
		ttl = 0;
	rotor_resp_put_int(o, argv[0].len == 3 ? (ttl + 500) / 1000 : ttl);
}

static void run_persist(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	struct entry *e = db_find(s, argv[1].ptr, argv[1].len, H(&argv[1]));
	if (!e || !e->expire_ms)
		return (void)rotor_resp_put_int(o, 0);
	db_set_expire(s, e, 0);
	rotor_resp_put_int(o, 1);
}

static void run_dbsize(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argc;
	(void)argv;
	rotor_resp_put_int(o, (long long)s->count);
}

static void run_flushall(struct shard *s, int argc, arg_t *argv, struct rotor_resp_out *o)
{
	(void)argv;
	if (argc > 2 || (argc == 2 && !arg_eq(&argv[1], "async") && !arg_eq(&argv[1], "sync")))
		return put_err(o, ERR_SYNTAX);
	db_flush(s);
	rotor_resp_put_simple(o, "OK");
}

#define KEY(n, a, w, fn)                                                                           \
	{                                                                                          \
		n, a, R_KEY, w, 0, M_NONE, fn, NULL                                                \
	}
const struct cmd string_cmds[] = {
    KEY("get", 2, false, run_get),
    KEY("set", -3, true, run_set),
    KEY("setnx", 3, true, run_setnx),
    KEY("getset", 3, true, run_getset),
    {"mget", -2, R_MULTI, false, 1, M_ARRAY, run_mget, NULL},
    {"mset", -3, R_MULTI, true, 2, M_OK, run_mset, NULL},
    KEY("incr", 2, true, run_incr),
    KEY("decr", 2, true, run_incr),
    KEY("incrby", 3, true, run_incrby),
    KEY("decrby", 3, true, run_incrby),
    KEY("append", 3, true, run_append),
    KEY("strlen", 2, false, run_strlen),
    KEY("getrange", 4, false, run_getrange),
    KEY("setrange", 4, true, run_setrange),
    {"del", -2, R_MULTI, false, 1, M_SUM, run_del, NULL},
    {"exists", -2, R_MULTI, false, 1, M_SUM, run_exists, NULL},
    KEY("type", 2, false, run_type),
    KEY("expire", -3, false, run_expire),
    KEY("pexpire", -3, false, run_expire),
    KEY("expireat", -3, false, run_expire),
    KEY("pexpireat", -3, false, run_expire),
    KEY("ttl", 2, false, run_ttl),
    KEY("pttl", 2, false, run_ttl),
    KEY("persist", 2, false, run_persist),
    {"dbsize", 1, R_ALL, false, 0, M_SUM, run_dbsize, NULL},
    {"flushall", -1, R_ALL, false, 0, M_OK, run_flushall, NULL},
    {NULL, 0, 0, false, 0, 0, NULL, NULL},
};
