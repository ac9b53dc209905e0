/*
 * Sets and sorted sets, each command one part on its key's owner. SMEMBERS answers in
 * insertion order, which Redis does not promise (its hashtable order is its own): the
 * differential test compares set replies as sets. Sorted sets answer in (score, member)
 * order, as Redis does, and print scores as Redis 7.0 prints doubles.
 */
#include "redis.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef const struct rotor_resp_arg arg_t;
typedef struct rotor_resp_out out_t;

/* ---- Sets -------------------------------------------------------------------------------- */

static void run_sadd(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	struct entry *e = create_typed(s, &argv[1], T_SET, o);
	if (!e)
		return;
	long long n = 0;
	for (int i = 2; i < argc; i++)
		if (!odict_find(e->v.h, argv[i].ptr, argv[i].len)) {
			if (!odict_add(s, e->v.h, argv[i].ptr, argv[i].len))
				return put_err(o, "ERR out of memory");
			n++;
		}
	rotor_resp_put_int(o, n);
}

static void run_srem(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	odict_del_args(s, T_SET, argc, argv, o);
}

static void run_smembers(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	odict_members_reply(s, T_SET, &argv[1], false, o);
}

static void run_sismember(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_SET, o, &wrong);
	if (!wrong)
		rotor_resp_put_int(o, e && odict_find(e->v.h, argv[2].ptr, argv[2].len));
}

static void run_scard(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	odict_len_reply(s, T_SET, &argv[1], o);
}

/* SPOP's and ZPOPMIN's optional count, argv[2]: false with the error written when it is
 * not a whole number from 0 or more arguments follow it. */
static bool count_arg(int argc, arg_t *argv, long long *count, out_t *o)
{
	const char *err = NULL;
	if (argc > 3)
		err = ERR_SYNTAX;
	else if (argc == 3 && (!arg_ll(&argv[2], count) || *count < 0))
		err = ERR_POSITIVE;
	if (err)
		put_err(o, err);
	return !err;
}

static void run_spop(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	long long count = 1;
	if (!count_arg(argc, argv, &count, o))
		return;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_SET, o, &wrong);
	if (wrong)
		return;
	if (!e)
		return (void)(argc == 3 ? rotor_resp_put_array(o, 0) : rotor_resp_put_nil(o));
	struct odict *d = e->v.h;
	if (argc == 3) {
		if ((size_t)count > d->live)
			count = (long long)d->live;
		rotor_resp_put_array(o, count);
	}
	for (long long i = 0; i < count; i++) {
		struct odict_ent *x = odict_random(d, &s->rng);
		rotor_resp_put_bulk(o, x->key, x->klen);
		odict_del(s, d, x);
	}
	if (!d->live)
		db_delete(s, e);
}

/* ---- Sorted sets ------------------------------------------------------------------------- */

enum { Z_NX = 1, Z_XX = 2, Z_GT = 4, Z_LT = 8, Z_INCR = 16 };

static void run_zadd(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	unsigned f = 0;
	bool ch = false;
	int j = 2;
	for (; j < argc; j++) {
		if (arg_eq(&argv[j], "nx"))
			f |= Z_NX;
		else if (arg_eq(&argv[j], "xx"))
			f |= Z_XX;
		else if (arg_eq(&argv[j], "ch"))
			ch = true;
		else if (arg_eq(&argv[j], "incr"))
			f |= Z_INCR;
		else if (arg_eq(&argv[j], "gt"))
			f |= Z_GT;
		else if (arg_eq(&argv[j], "lt"))
			f |= Z_LT;
		else
			break;
	}
	int elems = argc - j;
	if (elems == 0 || elems % 2)
		return put_err(o, ERR_SYNTAX);
	elems /= 2;
	if ((f & Z_NX) && (f & Z_XX))
		return put_err(o, "ERR XX and NX options at the same time are not compatible");
	if (((f & Z_GT) && (f & Z_NX)) || ((f & Z_LT) && (f & Z_NX)) || ((f & Z_GT) && (f & Z_LT)))
		return put_err(o, "ERR GT, LT, and/or NX options at the same time are not "
		                  "compatible");
	if ((f & Z_INCR) && elems > 1)
		return put_err(o, "ERR INCR option supports a single increment-element pair");
	for (int i = 0; i < elems; i++) {
		double d;
		if (!arg_double(&argv[j + 2 * i], &d))
			return put_err(o, ERR_NOTFLOAT);
	}
	struct entry *e = db_find(s, argv[1].ptr, argv[1].len, key_hash(argv[1].ptr, argv[1].len));
	if (e && e->v.type != T_ZSET)
		return put_err(o, ERR_WRONGTYPE);
	long long added = 0, updated = 0, processed = 0;
	double score = 0;
	if (!e && !(f & Z_XX) && !(e = create_typed(s, &argv[1], T_ZSET, o)))
		return;
	for (int i = 0; e && i < elems; i++) {
		double sc;
		arg_double(&argv[j + 2 * i], &sc);
		arg_t *m = &argv[j + 2 * i + 1];
		struct odict_ent *x = odict_find(&e->v.z->d, m->ptr, m->len);
		if (x) {
			if (f & Z_NX)
				continue;
			if (f & Z_INCR) {
				sc += x->score;
				if (isnan(sc)) {
					put_err(o, "ERR resulting score is not a number (NaN)");
					goto out;
				}
			}
			if (((f & Z_GT) && sc <= x->score) || ((f & Z_LT) && sc >= x->score))
				continue;
			if (sc != x->score) {
				zset_put(s, e->v.z, m->ptr, m->len, sc);
				updated++;
			}
			processed++;
			score = sc;
		} else {
			if (f & Z_XX)
				continue;
			if (zset_put(s, e->v.z, m->ptr, m->len, sc) < 0) {
				put_err(o, "ERR out of memory");
				goto out;
			}
			added++;
			processed++;
			score = sc;
		}
	}
	if (f & Z_INCR) {
		if (processed)
			put_double(o, score);
		else
			rotor_resp_put_nil(o);
	} else {
		rotor_resp_put_int(o, ch ? added + updated : added);
	}
out:
	if (e && e->v.z->len == 0)
		db_delete(s, e);
}

static void run_zrem(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_ZSET, o, &wrong);
	if (wrong)
		return;
	long long n = 0;
	for (int i = 2; e && i < argc; i++)
		if (zset_del(s, e->v.z, argv[i].ptr, argv[i].len)) {
			n++;
			if (!e->v.z->len) {
				db_delete(s, e);
				break;
			}
		}
	rotor_resp_put_int(o, n);
}

static void run_zscore(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_ZSET, o, &wrong);
	if (wrong)
		return;
	struct odict_ent *x = e ? odict_find(&e->v.z->d, argv[2].ptr, argv[2].len) : NULL;
	if (x)
		put_double(o, x->score);
	else
		rotor_resp_put_nil(o);
}

static void run_zcard(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_ZSET, o, &wrong);
	if (!wrong)
		rotor_resp_put_int(o, e ? (long long)e->v.z->len : 0);
}

/* A ZRANGE BYSCORE bound: a float, "(" before it for an exclusive one. */
static bool score_bound(arg_t *a, double *v, bool *excl)
{
	*excl = a->len && a->ptr[0] == '(';
	struct rotor_resp_arg t = {a->ptr + *excl, a->len - *excl};
	return arg_double(&t, v);
}

static bool in_min(double sc, double min, bool ex)
{
	return ex ? sc > min : sc >= min;
}

static bool in_max(double sc, double max, bool ex)
{
	return ex ? sc < max : sc <= max;
}

/* ZRANGE by rank or BYSCORE, REV, LIMIT, WITHSCORES (BYLEX is not served). */
static void run_zrange(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	bool withscores = false, rev = false, byscore = false, limit = false;
	long long offset = 0, count = -1;
	for (int j = 4; j < argc; j++) {
		int left = argc - j - 1;
		if (arg_eq(&argv[j], "withscores")) {
			withscores = true;
		} else if (arg_eq(&argv[j], "limit") && left >= 2) {
			if (!arg_ll(&argv[j + 1], &offset) || !arg_ll(&argv[j + 2], &count))
				return put_err(o, ERR_NOTINT);
			limit = true;
			j += 2;
		} else if (!rev && arg_eq(&argv[j], "rev")) {
			rev = true;
		} else if (!byscore && arg_eq(&argv[j], "byscore")) {
			byscore = true;
		} else {
			return put_err(o, ERR_SYNTAX);
		}
	}
	if (limit && !byscore)
		return put_err(o, "ERR syntax error, LIMIT is only supported in combination with "
		                  "either BYSCORE or BYLEX");
	double min = 0, max = 0;
	bool minex = false, maxex = false;
	long long start = 0, end = 0;
	if (byscore) {
		if (!score_bound(&argv[rev ? 3 : 2], &min, &minex) ||
		    !score_bound(&argv[rev ? 2 : 3], &max, &maxex))
			return put_err(o, "ERR min or max is not a float");
	} else if (!arg_ll(&argv[2], &start) || !arg_ll(&argv[3], &end)) {
		return put_err(o, ERR_NOTINT);
	}
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_ZSET, o, &wrong);
	if (wrong)
		return;
	long long len = e ? (long long)e->v.z->len : 0;
	if (byscore) {
		struct rotor_resp_out tmp = {0};
		long long n = 0;
		struct znode *x =
		    rev ? (e ? e->v.z->tail : NULL) : (e ? e->v.z->head->fwd[0] : NULL);
		/* A negative offset walks past the end, as Redis's loop does (empty), and a
		 * negative count is no limit: neither counted down from LLONG_MIN. */
		if ((offset > 0 && offset >= len) || offset < 0)
			x = NULL;
		if (count < 0)
			count = -1;
		while (x && !(rev ? in_max(x->score, max, maxex) : in_min(x->score, min, minex)))
			x = rev ? x->back : x->fwd[0];
		while (x && offset--)
			x = rev ? x->back : x->fwd[0];
		for (; x && count--; x = rev ? x->back : x->fwd[0]) {
			if (!(rev ? in_min(x->score, min, minex) : in_max(x->score, max, maxex)))
				break;
			rotor_resp_put_bulk(&tmp, x->m, x->mlen);
			if (withscores)
				put_double(&tmp, x->score);
			n++;
		}
		rotor_resp_put_array(o, withscores ? n * 2 : n);
		rotor_resp_put_raw(o, tmp.buf, tmp.len);
		free(tmp.buf);
		return;
	}
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
	long long n = end - start + 1;
	rotor_resp_put_array(o, withscores ? n * 2 : n);
	struct znode *x = rev ? e->v.z->tail : e->v.z->head->fwd[0];
	for (long long i = 0; i < start; i++)
		x = rev ? x->back : x->fwd[0];
	for (long long i = 0; i < n; i++, x = rev ? x->back : x->fwd[0]) {
		rotor_resp_put_bulk(o, x->m, x->mlen);
		if (withscores)
			put_double(o, x->score);
	}
}

static void run_zpopmin(struct shard *s, int argc, arg_t *argv, out_t *o)
{
	long long count = 1;
	if (!count_arg(argc, argv, &count, o))
		return;
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], T_ZSET, o, &wrong);
	if (wrong)
		return;
	if (!e || count == 0)
		return (void)rotor_resp_put_array(o, 0);
	if ((size_t)count > e->v.z->len)
		count = (long long)e->v.z->len;
	rotor_resp_put_array(o, count * 2);
	for (long long i = 0; i < count; i++) {
		struct znode *x = e->v.z->head->fwd[0];
		double sc = x->score;
		rotor_resp_put_bulk(o, x->m, x->mlen);
		put_double(o, sc);
		zset_del(s, e->v.z, x->m, x->mlen);
	}
	if (!e->v.z->len)
		db_delete(s, e);
}

#define KEY(n, a, w, fn)                                                                           \
	{                                                                                          \
		n, a, R_KEY, w, 0, M_NONE, fn, NULL                                                \
	}
const struct cmd set_cmds[] = {
    KEY("sadd", -3, true, run_sadd),         KEY("srem", -3, false, run_srem),
    KEY("smembers", 2, false, run_smembers), KEY("sismember", 3, false, run_sismember),
    KEY("scard", 2, false, run_scard),       KEY("spop", -2, false, run_spop),
    {NULL, 0, 0, false, 0, 0, NULL, NULL},
};

const struct cmd zset_cmds[] = {
    KEY("zadd", -4, true, run_zadd),       KEY("zrem", -3, false, run_zrem),
    KEY("zscore", 3, false, run_zscore),   KEY("zcard", 2, false, run_zcard),
    KEY("zrange", -4, false, run_zrange),  KEY("zpopmin", -2, false, run_zpopmin),
    {NULL, 0, 0, false, 0, 0, NULL, NULL},
};
