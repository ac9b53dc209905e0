/*
 * One worker's keyspace (struct shard): a chained hash table of entries, each a key, its
 * value and its expiry. Touched only by the worker that owns it. Keys with an expiry are
 * also in an array the active sweep samples at random, a bounded number per run, as Redis's
 * activeExpireCycle does; every lookup also expires the key it finds (lazy expiry).
 */
#include "redis.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct shard shards[MAX_WORKERS];

/* 64-bit FNV-1a, then a murmur finaliser: cheap on short keys, the high bits well mixed
 * (the owner takes bits 40 and up, the table the low ones). */
uint64_t key_hash(const char *k, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

int64_t mstime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mem_add(struct shard *s, long long n)
{
	atomic_store_explicit(&s->used, atomic_load_explicit(&s->used, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

bool over_maxmemory(void)
{
	if (!maxmemory)
		return false;
	long long used = 0;
	for (int i = 0; i < nworkers; i++)
		used += atomic_load_explicit(&shards[i].used, memory_order_relaxed);
	return used > maxmemory;
}

static void vol_remove(struct shard *s, struct entry *e)
{
	struct entry *last = s->vol[--s->nvol];
	s->vol[e->vol] = last;
	last->vol = e->vol;
	e->expire_ms = 0;
}

void db_set_expire(struct shard *s, struct entry *e, int64_t ms)
{
	if (!ms) {
		if (e->expire_ms)
			vol_remove(s, e);
		return;
	}
	if (!e->expire_ms) {
		if (s->nvol == s->capvol) {
			size_t cap = s->capvol ? s->capvol * 2 : 64;
			struct entry **v = realloc(s->vol, cap * sizeof(*v));
			if (!v)
				return; /* no active expiry for it: lazy expiry still holds */
			s->vol = v;
			s->capvol = cap;
		}
		e->vol = s->nvol;
		s->vol[s->nvol++] = e;
	}
	e->expire_ms = ms;
}

void value_free(struct shard *s, struct value *v)
{
	switch (v->type) {
	case T_STRING:
		free_bytes(s, v->s.p, v->s.len);
		break;
	case T_LIST:
		list_free(s, v->l);
		break;
	case T_HASH:
	case T_SET:
		odict_free(s, v->h);
		free(v->h);
		break;
	case T_ZSET:
		zset_free(s, v->z);
		break;
	}
}

static void unlink_entry(struct shard *s, struct entry *e)
{
	struct entry **pp = &s->tab[e->hash & s->mask];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	s->count--;
}

void db_delete(struct shard *s, struct entry *e)
{
	unlink_entry(s, e);
	if (e->expire_ms)
		vol_remove(s, e);
	value_free(s, &e->v);
	mem_add(s, -(long long)(sizeof(*e) + e->klen));
	free(e);
}

struct entry *db_find(struct shard *s, const char *k, size_t n, uint64_t h)
{
	if (!s->tab)
		return NULL;
	for (struct entry *e = s->tab[h & s->mask]; e; e = e->next) {
		if (e->hash != h || e->klen != n || memcmp(e->key, k, n))
			continue;
		if (e->expire_ms && e->expire_ms <= mstime()) {
			db_delete(s, e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

static int grow(struct shard *s)
{
	size_t nb = s->tab ? (s->mask + 1) * 2 : 1024;
	struct entry **t = calloc(nb, sizeof(*t));
	if (!t)
		return -1;
	if (s->tab) {
		for (size_t i = 0; i <= s->mask; i++) {
			struct entry *e = s->tab[i];
			while (e) {
				struct entry *next = e->next;
				e->next = t[e->hash & (nb - 1)];
				t[e->hash & (nb - 1)] = e;
				e = next;
			}
		}
		mem_add(s, -(long long)((s->mask + 1) * sizeof(*t)));
		free(s->tab);
	}
	mem_add(s, (long long)(nb * sizeof(*t)));
	s->tab = t;
	s->mask = nb - 1;
	return 0;
}

/* A new key (the caller checked that it is absent), its value zeroed but typed. */
struct entry *db_add(struct shard *s, const char *k, size_t n, uint64_t h, enum vtype t)
{
	if ((!s->tab || s->count > s->mask) && grow(s) < 0 && !s->tab)
		return NULL;
	struct entry *e = malloc(sizeof(*e) + n);
	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->klen = n;
	memcpy(e->key, k, n);
	e->v.type = t;
	e->next = s->tab[h & s->mask];
	s->tab[h & s->mask] = e;
	s->count++;
	mem_add(s, (long long)(sizeof(*e) + n));
	return e;
}

void db_flush(struct shard *s)
{
	if (!s->tab)
		return;
	for (size_t i = 0; i <= s->mask; i++) {
		struct entry *e = s->tab[i];
		while (e) {
			struct entry *next = e->next;
			value_free(s, &e->v);
			mem_add(s, -(long long)(sizeof(*e) + e->klen));
			free(e);
			e = next;
		}
		s->tab[i] = NULL;
	}
	s->count = 0;
	s->nvol = 0;
}

/* Up to budget random samples of keys with an expiry; expired ones are deleted. Stops early
 * when fewer than a quarter of a round of 20 had expired (Redis's rule of thumb). */
void db_sweep(struct shard *s, int budget)
{
	int64_t now = mstime();
	while (budget > 0 && s->nvol) {
		int expired = 0, round = budget < 20 ? budget : 20;
		for (int i = 0; i < round && s->nvol; i++) {
			s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
			struct entry *e = s->vol[(s->rng >> 33) % s->nvol];
			if (e->expire_ms <= now) {
				db_delete(s, e);
				expired++;
			}
		}
		budget -= round;
		if (expired * 4 < round)
			break;
	}
}
