/*
 * Lists and hashes, each command one part on its key's owner. A container left empty is
 * deleted, as Redis deletes it. Hashes answer HGETALL in insertion order (Redis's listpack
 * order for the small hashes it keeps as listpacks).
 */
#include "redis.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef const struct rotor_resp_arg arg_t;
typedef struct rotor_resp_out out_t;

static bool is(arg_t *a, char c)
{
	return (a->ptr[0] | 32) == c;
}

/* ---- Lists ------------------------------------------------------------------------------- */

static void run_push(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	struct entry *e = create_typed(s, &argv[1], T_LIST, o);
	if (!e)
		return;
	bool left = is(&argv[0], 'l');
	for (int i = 2; i < argc; i++)
		if (list_push(s, e->v.l, argv[i].ptr, argv[i].len, left) < 0)
			return put_err(o, "ERR out of memory");
	rotor_resp_put_int(o, (long long)e->v.l->len);
}

static void run_pop(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	long long count = 1;
	if (argc > 3)
		return put_err(o, argv[0].ptr[0] == 'l' || argv[0].ptr[0] == 'L'
		                      ? "ERR wrong number of arguments for 'lpop' command"
		                      : "ERR wrong number of arguments for 'rpop' command");
	if (argc == 3 && (!arg_ll(&argv[2], &count) || count < 0))
		return put_err(o, ERR_POSITIVE);
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_LIST, o, &wrong);
	if (wrong)
		return;
	if (!e)
		return (void)(argc == 3 ? rotor_resp_put_array(o, -1) : rotor_resp_put_nil(o));
	bool left = is(&argv[0], 'l');
	if (argc == 3) {
		if ((size_t)count > e->v.l->len)
			count = (long long)e->v.l->len;
		rotor_resp_put_array(o, count);
	}
	for (long long i = 0; i < count; i++) {
		struct bytes b = list_pop(e->v.l, left);
		rotor_resp_put_bulk(o, b.p, b.len);
		free_bytes(s, b.p, b.len);
	}
	if (e->v.l->len == 0)
		db_delete(s, e);
}

static void run_llen(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_LIST, o, &wrong);
	if (!wrong)
		rotor_resp_put_int(o, e ? (long long)e->v.l->len : 0);
}

static void run_lrange(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	long long start, end;
	if (!arg_ll(&argv[2], &start) || !arg_ll(&argv[3], &end))
		return put_err(o, ERR_NOTINT);
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_LIST, o, &wrong);
	if (wrong)
		return;
	long long len = e ? (long long)e->v.l->len : 0;
	if (start < 0)
		start += len;
	if (end < 0)
		end += len;
	if (start < 0)
		start = 0;
	if (start > end || start >= len)
		return (void)rotor_resp_put_array(o, 0);
	if (end >= len)
		end = len - 1;
	rotor_resp_put_array(o, end - start + 1);
	for (long long i = start; i <= end; i++) {
		struct bytes *b = list_at(e->v.l, (size_t)i);
		rotor_resp_put_bulk(o, b->p, b->len);
	}
}

static void run_lindex(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_LIST, o, &wrong);
	if (wrong)
		return;
	if (!e)
		return (void)rotor_resp_put_nil(o);
	long long i;
	if (!arg_ll(&argv[2], &i))
		return put_err(o, ERR_NOTINT);
	long long len = (long long)e->v.l->len;
	if (i < 0)
		i += len;
	if (i < 0 || i >= len)
		return (void)rotor_resp_put_nil(o);
	struct bytes *b = list_at(e->v.l, (size_t)i);
	rotor_resp_put_bulk(o, b->p, b->len);
}

/* ---- Hashes ------------------------------------------------------------------------------ */

static int hash_set(struct shard *s, struct odict *d, arg_t *f, const char *v, size_t n)
{
	struct odict_ent *x = odict_find(d, f->ptr, f->len);
	int added = 0;
	if (!x) {
		if (!(x = odict_add(s, d, f->ptr, f->len)))
			return -1;
		added = 1;
	}
	char *nv = dup_bytes(s, v, n);
	if (!nv)
		return -1;
	free_bytes(s, x->val, x->vlen);
	x->val = nv;
	x->vlen = n;
	return added;
}

static void run_hset(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	if (argc % 2)
		return put_err(o, argv[0].len == 4
		                      ? "ERR wrong number of arguments for 'hset' command"
		                      : "ERR wrong number of arguments for 'hmset' command");
	struct entry *e = create_typed(s, &argv[1], T_HASH, o);
	if (!e)
		return;
	long long added = 0;
	for (int i = 2; i < argc; i += 2) {
		int r = hash_set(s, e->v.h, &argv[i], argv[i + 1].ptr, argv[i + 1].len);
		if (r < 0)
			return put_err(o, "ERR out of memory");
		added += r;
	}
	if (argv[0].len == 5)
		rotor_resp_put_simple(o, "OK"); /* HMSET */
	else
		rotor_resp_put_int(o, added);
}

static void run_hget(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_HASH, o, &wrong);
	if (wrong)
		return;
	struct odict_ent *x = e ? odict_find(e->v.h, argv[2].ptr, argv[2].len) : NULL;
	if (x)
		rotor_resp_put_bulk(o, x->val, x->vlen);
	else
		rotor_resp_put_nil(o);
}

static void run_hdel(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	odict_del_args(s, T_HASH, argc, argv, o);
}

static void run_hgetall(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	odict_members_reply(s, T_HASH, &argv[1], true, o);
}

static void run_hincrby(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	long long by, v = 0;
	if (!arg_ll(&argv[3], &by))
		return put_err(o, ERR_NOTINT);
	struct entry *e = create_typed(s, &argv[1], T_HASH, o);
	if (!e)
		return;
	struct odict_ent *x = odict_find(e->v.h, argv[2].ptr, argv[2].len);
	if (x && !arg_ll(&(struct rotor_resp_arg){x->val, x->vlen}, &v))
		return put_err(o, "ERR hash value is not an integer");
	if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v))
		return put_err(o, ERR_OVERFLOW);
	v += by;
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%lld", v);
	if (hash_set(s, e->v.h, &argv[2], buf, (size_t)n) < 0)
		return put_err(o, "ERR out of memory");
	rotor_resp_put_int(o, v);
}

static void run_hlen(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	odict_len_reply(s, T_HASH, &argv[1], o);
}

#define KEY(n, a, w, fn)                                                                           \
	{                                                                                          \
		n, a, R_KEY, w, 0, M_NONE, fn, NULL                                                \
	}
const struct cmd list_cmds[] = {
    KEY("lpush", -3, true, run_push),    KEY("rpush", -3, true, run_push),
    KEY("lpop", -2, false, run_pop),     KEY("rpop", -2, false, run_pop),
    KEY("llen", 2, false, run_llen),     KEY("lrange", 4, false, run_lrange),
    KEY("lindex", 3, false, run_lindex), {NULL, 0, 0, false, 0, 0, NULL, NULL},
};

const struct cmd hash_cmds[] = {
    KEY("hset", -4, true, run_hset),       KEY("hmset", -4, true, run_hset),
    KEY("hget", 3, false, run_hget),       KEY("hdel", -3, false, run_hdel),
    KEY("hgetall", 2, false, run_hgetall), KEY("hincrby", 4, true, run_hincrby),
    KEY("hlen", 2, false, run_hlen),       {NULL, 0, 0, false, 0, 0, NULL, NULL},
};
