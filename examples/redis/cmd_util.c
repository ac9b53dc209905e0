/*
 * What the command files share: Redis 7.0's error texts, argument parsing with Redis's
 * rules (string2ll's strictness, strtod's for floats), the double format of its replies, and
 * typed lookups that answer WRONGTYPE.
 */
#include "redis.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const ERR_WRONGTYPE =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
const char *const ERR_NOTINT = "ERR value is not an integer or out of range";
const char *const ERR_SYNTAX = "ERR syntax error";
const char *const ERR_OOM = "OOM command not allowed when used memory > 'maxmemory'.";
const char *const ERR_NOTFLOAT = "ERR value is not a valid float";
const char *const ERR_OVERFLOW = "ERR increment or decrement would overflow";
const char *const ERR_POSITIVE = "ERR value is out of range, must be positive";

bool arg_eq(const struct rotor_resp_arg *a, const char *lit)
{
	size_t n = strlen(lit);
	return a->len == n && !strncasecmp(a->ptr, lit, n);
}

bool arg_ll(const struct rotor_resp_arg *a, long long *v)
{
	const char *s = a->ptr;
	size_t n = a->len;
	if (n == 0 || n > 20)
		return false;
	if (n == 1 && s[0] == '0') {
		*v = 0;
		return true;
	}
	size_t i = s[0] == '-';
	if (i == n || s[i] < '1' || s[i] > '9')
		return false;
	unsigned long long u = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (u > (ULLONG_MAX - d) / 10)
			return false;
		u = u * 10 + d;
	}
	if (s[0] == '-') {
		if (u > (unsigned long long)LLONG_MAX + 1)
			return false;
		*v = (long long)(0 - u);
	} else {
		if (u > LLONG_MAX)
			return false;
		*v = (long long)u;
	}
	return true;
}

/* Redis's getDoubleFromObject: strtold over the whole string, no leading space, not NaN. */
bool arg_double(const struct rotor_resp_arg *a, double *v)
{
	char buf[256];
	if (a->len == 0 || a->len >= sizeof(buf) || isspace((unsigned char)a->ptr[0]))
		return false;
	memcpy(buf, a->ptr, a->len);
	buf[a->len] = 0;
	if (strlen(buf) != a->len)
		return false;
	char *end;
	errno = 0;
	double d = strtod(buf, &end);
	if (*end || (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL || d == 0)) || isnan(d))
		return false;
	*v = d;
	return true;
}

/* Redis 7.0's addReplyDouble in RESP2: "inf"/"-inf", else %.17g (d2string without the
 * integer shortcut: addReplyDouble prints with "%.17g"). */
void put_double(struct rotor_resp_out *o, double d)
{
	char buf[64];
	int n;
	if (isinf(d))
		n = snprintf(buf, sizeof(buf), "%s", d > 0 ? "inf" : "-inf");
	else
		n = snprintf(buf, sizeof(buf), "%.17g", d);
	rotor_resp_put_bulk(o, buf, (size_t)n);
}

void put_err(struct rotor_resp_out *o, const char *text)
{
	rotor_resp_put_error(o, text);
}

struct entry *lookup_typed(struct shard *s, const struct rotor_resp_arg *key, enum vtype t,
                           struct rotor_resp_out *o, bool *wrong)
{
	struct entry *e = db_find(s, key->ptr, key->len, key_hash(key->ptr, key->len));
	*wrong = false;
	if (e && e->v.type != t) {
		put_err(o, ERR_WRONGTYPE);
		*wrong = true;
		return NULL;
	}
	return e;
}

/* The key's value of type t, created empty if absent; NULL with the reply written when it
 * holds another type or memory ran out. */
struct entry *create_typed(struct shard *s, const struct rotor_resp_arg *key, enum vtype t,
                           struct rotor_resp_out *o)
{
	uint64_t h = key_hash(key->ptr, key->len);
	struct entry *e = db_find(s, key->ptr, key->len, h);
	if (e) {
		if (e->v.type != t) {
			put_err(o, ERR_WRONGTYPE);
			return NULL;
		}
		return e;
	}
	e = db_add(s, key->ptr, key->len, h, t);
	if (!e)
		goto oom;
	switch (t) {
	case T_STRING:
		break;
	case T_LIST:
		e->v.l = list_new();
		break;
	case T_HASH:
	case T_SET:
		e->v.h = calloc(1, sizeof(struct odict));
		break;
	case T_ZSET:
		e->v.z = zset_new();
		break;
	}
	if (t != T_STRING && !e->v.l) {
		e->v.type = T_STRING; /* nothing to free */
		db_delete(s, e);
		goto oom;
	}
	return e;
oom:
	put_err(o, "ERR out of memory");
	return NULL;
}

/* HDEL and SREM: removes the fields or members argv[2..] from the odict of the key's value of
 * type t (a hash or a set; the key goes with its last one) and answers how many there were. */
void odict_del_args(struct shard *s, enum vtype t, int argc, const struct rotor_resp_arg *argv,
                    struct rotor_resp_out *o)
{
	bool wrong;
	struct entry *e = lookup_typed(s, &argv[1], t, o, &wrong);
	if (wrong)
		return;
	long long n = 0;
	for (int i = 2; e && i < argc; i++) {
		struct odict_ent *x = odict_find(e->v.h, argv[i].ptr, argv[i].len);
		if (x) {
			odict_del(s, e->v.h, x);
			n++;
			if (!e->v.h->live) {
				db_delete(s, e);
				break;
			}
		}
	}
	rotor_resp_put_int(o, n);
}

/* HLEN and SCARD: the number of entries in the odict of the key's value of type t. */
void odict_len_reply(struct shard *s, enum vtype t, const struct rotor_resp_arg *key,
                     struct rotor_resp_out *o)
{
	bool wrong;
	struct entry *e = lookup_typed(s, key, t, o, &wrong);
	if (!wrong)
		rotor_resp_put_int(o, e ? (long long)e->v.h->live : 0);
}

/* HGETALL and SMEMBERS: the entries of the odict of the key's value of type t in insertion
 * order, each key followed by its value when values is set. */
void odict_members_reply(struct shard *s, enum vtype t, const struct rotor_resp_arg *key,
                         bool values, struct rotor_resp_out *o)
{
	bool wrong;
	struct entry *e = lookup_typed(s, key, t, o, &wrong);
	if (wrong)
		return;
	if (!e)
		return (void)rotor_resp_put_array(o, 0);
	struct odict *d = e->v.h;
	rotor_resp_put_array(o, (long long)d->live * (values ? 2 : 1));
	for (size_t i = 0; i < d->n; i++)
		if (d->ents[i].key) {
			rotor_resp_put_bulk(o, d->ents[i].key, d->ents[i].klen);
			if (values)
				rotor_resp_put_bulk(o, d->ents[i].val, d->ents[i].vlen);
		}
}
