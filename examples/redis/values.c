/*
 * The container values: ordered dictionaries (hashes, sets, a sorted set's members), lists
 * (a ring of strings), and sorted sets' order (a skiplist by score, then member, as Redis's
 * zskiplist; no spans: ranks are walked, which the commands served here can afford). Each
 * belongs to one shard and counts its bytes there.
 */
#include "redis.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *dup_bytes(struct shard *s, const char *p, size_t n)
{
	char *d = malloc(n ? n : 1);
	if (d) {
		memcpy(d, p, n);
		mem_add(s, (long long)n + 16);
	}
	return d;
}

void free_bytes(struct shard *s, char *p, size_t n)
{
	if (p) {
		free(p);
		mem_add(s, -(long long)n - 16);
	}
}

/* ---- Ordered dictionaries ---------------------------------------------------------------- */

void odict_init(struct odict *d)
{
	memset(d, 0, sizeof(*d));
}

void odict_free(struct shard *s, struct odict *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->ents[i].key) {
			free_bytes(s, d->ents[i].key, d->ents[i].klen);
			free_bytes(s, d->ents[i].val, d->ents[i].vlen);
		}
	mem_add(s, -(long long)(d->cap * sizeof(*d->ents) + d->icap * sizeof(*d->index)));
	free(d->ents);
	free(d->index);
	odict_init(d);
}

static void reindex(struct odict *d)
{
	memset(d->index, 0xff, d->icap * sizeof(*d->index)); /* -1: empty */
	for (size_t i = 0; i < d->n; i++) {
		if (!d->ents[i].key)
			continue;
		size_t j = d->ents[i].hash & (d->icap - 1);
		while (d->index[j] != -1)
			j = (j + 1) & (d->icap - 1);
		d->index[j] = (int32_t)i;
	}
}

struct odict_ent *odict_find(struct odict *d, const char *k, size_t n)
{
	if (!d->icap)
		return NULL;
	uint64_t h = key_hash(k, n);
	for (size_t j = h & (d->icap - 1);; j = (j + 1) & (d->icap - 1)) {
		int32_t x = d->index[j];
		if (x == -1)
			return NULL;
		if (x < 0)
			continue;
		struct odict_ent *e = &d->ents[x];
		if (e->hash == h && e->klen == n && !memcmp(e->key, k, n))
			return e;
	}
}

/* Drop the holes (order kept) and size the index for what is live. */
static int compact(struct shard *s, struct odict *d, size_t need)
{
	size_t o = 0;
	for (size_t i = 0; i < d->n; i++)
		if (d->ents[i].key)
			d->ents[o++] = d->ents[i];
	d->n = o;
	if (need > d->cap) {
		size_t cap = d->cap ? d->cap : 4;
		while (cap < need)
			cap *= 2;
		struct odict_ent *e = realloc(d->ents, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		mem_add(s, (long long)((cap - d->cap) * sizeof(*e)));
		d->ents = e;
		d->cap = cap;
	}
	size_t icap = d->icap ? d->icap : 8;
	while (icap < d->cap * 2)
		icap *= 2;
	if (icap != d->icap) {
		int32_t *ix = realloc(d->index, icap * sizeof(*ix));
		if (!ix)
			return -ENOMEM;
		mem_add(s, (long long)((icap - d->icap) * sizeof(*ix)));
		d->index = ix;
		d->icap = icap;
	}
	reindex(d);
	return 0;
}

/* A new entry for k (absent: the caller looked), its value empty. */
struct odict_ent *odict_add(struct shard *s, struct odict *d, const char *k, size_t n)
{
	if (d->n == d->cap && compact(s, d, d->live + 1 > d->cap / 2 ? d->cap * 2 + 4 : d->cap) < 0)
		return NULL;
	char *key = dup_bytes(s, k, n);
	if (!key)
		return NULL;
	struct odict_ent *e = &d->ents[d->n];
	*e = (struct odict_ent){.key = key, .klen = n, .hash = key_hash(k, n)};
	size_t j = e->hash & (d->icap - 1);
	while (d->index[j] >= 0)
		j = (j + 1) & (d->icap - 1);
	d->index[j] = (int32_t)d->n++;
	d->live++;
	return e;
}

void odict_del(struct shard *s, struct odict *d, struct odict_ent *e)
{
	int32_t x = (int32_t)(e - d->ents);
	for (size_t j = e->hash & (d->icap - 1);; j = (j + 1) & (d->icap - 1))
		if (d->index[j] == x) {
			d->index[j] = -2;
			break;
		}
	free_bytes(s, e->key, e->klen);
	free_bytes(s, e->val, e->vlen);
	e->key = e->val = NULL;
	d->live--;
	if (d->live == 0) {
		d->n = 0;
		reindex(d);
	}
}

struct odict_ent *odict_random(struct odict *d, uint64_t *rng)
{
	if (!d->live)
		return NULL;
	for (;;) {
		*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
		struct odict_ent *e = &d->ents[(*rng >> 33) % d->n];
		if (e->key)
			return e;
		if (d->live * 8 < d->n) { /* mostly holes: take the first live one */
			for (size_t i = 0; i < d->n; i++)
				if (d->ents[i].key)
					return &d->ents[i];
		}
	}
}

/* ---- Lists ------------------------------------------------------------------------------- */

struct list *list_new(void)
{
	return calloc(1, sizeof(struct list));
}

void list_free(struct shard *s, struct list *l)
{
	for (size_t i = 0; i < l->len; i++) {
		struct bytes *b = list_at(l, i);
		free_bytes(s, b->p, b->len);
	}
	mem_add(s, -(long long)(l->cap * sizeof(*l->v)));
	free(l->v);
	free(l);
}

struct bytes *list_at(struct list *l, size_t i)
{
	return &l->v[(l->head + i) & (l->cap - 1)];
}

int list_push(struct shard *s, struct list *l, const char *p, size_t n, bool left)
{
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct bytes *v = malloc(cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < l->len; i++)
			v[i] = *list_at(l, i);
		free(l->v);
		mem_add(s, (long long)((cap - l->cap) * sizeof(*v)));
		l->v = v;
		l->cap = cap;
		l->head = 0;
	}
	char *d = dup_bytes(s, p, n);
	if (!d)
		return -ENOMEM;
	if (left) {
		l->head = (l->head - 1) & (l->cap - 1);
		l->v[l->head] = (struct bytes){d, n};
	} else {
		*list_at(l, l->len) = (struct bytes){d, n};
	}
	l->len++;
	return 0;
}

/* The element taken off one end; the caller frees its bytes. */
struct bytes list_pop(struct list *l, bool left)
{
	struct bytes b;
	if (left) {
		b = l->v[l->head];
		l->head = (l->head + 1) & (l->cap - 1);
	} else {
		b = *list_at(l, l->len - 1);
	}
	l->len--;
	return b;
}

/* ---- Sorted sets ------------------------------------------------------------------------- */

static struct znode *znode_new(int level, double score, char *m, size_t n)
{
	struct znode *z = calloc(1, sizeof(*z) + (size_t)level * sizeof(z->fwd[0]));
	if (z) {
		z->score = score;
		z->m = m;
		z->mlen = n;
	}
	return z;
}

struct zset *zset_new(void)
{
	struct zset *z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->head = znode_new(ZSKIP_MAX, 0, NULL, 0);
	if (!z->head) {
		free(z);
		return NULL;
	}
	z->level = 1;
	return z;
}

void zset_free(struct shard *s, struct zset *z)
{
	struct znode *n = z->head;
	while (n) {
		struct znode *next = n->fwd[0];
		free(n);
		n = next;
	}
	mem_add(s, -(long long)(z->len * 48));
	odict_free(s, &z->d);
	free(z);
}

/* (score, member) order, as Redis's: by score, then bytewise by member. */
static int zcmp(double sa, const char *ma, size_t na, double sb, const char *mb, size_t nb)
{
	if (sa != sb)
		return sa < sb ? -1 : 1;
	size_t n = na < nb ? na : nb;
	int c = memcmp(ma, mb, n);
	if (c)
		return c;
	return na < nb ? -1 : na > nb;
}

static int random_level(struct shard *s)
{
	int l = 1;
	for (;;) {
		s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
		if (((s->rng >> 33) & 3) != 0 || l == ZSKIP_MAX)
			return l;
		l++;
	}
}

/* The search path to (score, m): update[i] is the last node of level i before it; returns
 * the node at level 0 before it (the head when none is). */
static struct znode *zsl_path(struct zset *z, double score, const char *m, size_t n,
                              struct znode **update)
{
	struct znode *x = z->head;
	for (int i = z->level - 1; i >= 0; i--) {
		while (x->fwd[i] &&
		       zcmp(x->fwd[i]->score, x->fwd[i]->m, x->fwd[i]->mlen, score, m, n) < 0)
			x = x->fwd[i];
		update[i] = x;
	}
	return x;
}

static void zsl_insert(struct shard *s, struct zset *z, double score, char *m, size_t n)
{
	struct znode *update[ZSKIP_MAX];
	zsl_path(z, score, m, n, update);
	int level = random_level(s);
	if (level > z->level) {
		for (int i = z->level; i < level; i++)
			update[i] = z->head;
		z->level = level;
	}
	struct znode *nn = znode_new(level, score, m, n);
	if (!nn)
		abort(); /* a few bytes: nothing sensible to do half-way through an insert */
	for (int i = 0; i < level; i++) {
		nn->fwd[i] = update[i]->fwd[i];
		update[i]->fwd[i] = nn;
	}
	nn->back = update[0] == z->head ? NULL : update[0];
	if (nn->fwd[0])
		nn->fwd[0]->back = nn;
	else
		z->tail = nn;
	z->len++;
	mem_add(s, 48);
}

static void zsl_delete(struct shard *s, struct zset *z, double score, const char *m, size_t n)
{
	struct znode *update[ZSKIP_MAX];
	struct znode *x = zsl_path(z, score, m, n, update);
	x = x->fwd[0];
	if (!x || x->score != score || x->mlen != n || memcmp(x->m, m, n))
		return;
	for (int i = 0; i < z->level; i++)
		if (update[i]->fwd[i] == x)
			update[i]->fwd[i] = x->fwd[i];
	if (x->fwd[0])
		x->fwd[0]->back = x->back;
	else
		z->tail = x->back;
	while (z->level > 1 && !z->head->fwd[z->level - 1])
		z->level--;
	free(x);
	z->len--;
	mem_add(s, -48);
}

int zset_put(struct shard *s, struct zset *z, const char *m, size_t n, double score)
{
	struct odict_ent *e = odict_find(&z->d, m, n);
	if (e) {
		if (e->score != score) {
			zsl_delete(s, z, e->score, e->key, e->klen);
			e->score = score;
			zsl_insert(s, z, score, e->key, e->klen);
		}
		return 0;
	}
	e = odict_add(s, &z->d, m, n);
	if (!e)
		return -ENOMEM;
	e->score = score;
	zsl_insert(s, z, score, e->key, e->klen);
	return 1;
}

bool zset_del(struct shard *s, struct zset *z, const char *m, size_t n)
{
	struct odict_ent *e = odict_find(&z->d, m, n);
	if (!e)
		return false;
	zsl_delete(s, z, e->score, e->key, e->klen);
	odict_del(s, &z->d, e);
	return true;
}
