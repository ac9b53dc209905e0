/*
 * redis_server's shared declarations: the keyspace of one worker (a shard: every key whose
 * hash names that worker, touched only by that worker's thread), the values, the command
 * table, and how a connection's requests are split into parts that run on their keys' owners.
 *
 * Ownership: owner(key) = hash(key) % workers. A part runs on its owner's thread, on that
 * owner's shard, and nowhere else: no lock guards a shard. Parts for other workers are
 * gathered per owner during one loop turn and posted as one callback (forward.c).
 */
#ifndef REDIS_SERVER_H
#define REDIS_SERVER_H

#include <rotor.h>
#include <rotor/resp.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_WORKERS 64

/* ---- Values ------------------------------------------------------------------------------ */

enum vtype { T_STRING, T_LIST, T_HASH, T_SET, T_ZSET };

struct bytes {
	char *p;
	size_t len;
};

/* An ordered dictionary: entries in insertion order (deleted ones left as holes until a
 * compaction), an open-addressing index of positions. Hashes and sets use it, so that
 * HGETALL answers in insertion order as Redis's listpack does. */
struct odict_ent {
	char *key; /* NULL: a hole */
	size_t klen;
	uint64_t hash;
	char *val; /* hashes: the value; zsets: unused */
	size_t vlen;
	double score; /* zsets */
};
struct odict {
	struct odict_ent *ents;
	size_t n, cap; /* used slots (holes included) */
	size_t live;
	int32_t *index; /* -1 empty, -2 deleted */
	size_t icap;    /* power of two */
};

/* A list: a ring of strings. */
struct list {
	struct bytes *v;
	size_t head, len, cap; /* cap a power of two */
};

/* A sorted set: members in an odict (member -> score), order in a skiplist. */
#define ZSKIP_MAX 32
struct znode {
	double score;
	char *m; /* the member: the odict entry's key, shared */
	size_t mlen;
	struct znode *back;
	struct znode *fwd[]; /* level entries */
};
struct zset {
	struct odict d;
	struct znode *head;
	struct znode *tail;
	int level;
	size_t len;
};

struct value {
	enum vtype type;
	union {
		struct bytes s;
		struct list *l;
		struct odict *h; /* hashes and sets */
		struct zset *z;
	};
};

struct entry {
	struct entry *next;
	uint64_t hash;
	int64_t expire_ms; /* unix ms; 0: none */
	size_t vol;        /* index in the shard's volatile array, when expire_ms */
	struct value v;
	size_t klen;
	char key[];
};

/* One worker's keyspace. */
struct shard {
	struct entry **tab;
	size_t mask; /* buckets - 1 */
	size_t count;
	struct entry **vol; /* keys with an expiry, for the active sweep */
	size_t nvol, capvol;
	_Atomic int64_t used; /* bytes held, approximately: read by every worker for maxmemory */
	uint64_t rng;
	/* Forwarding counters, of the parts this worker sent: read by --stats at the end. */
	uint64_t fwd_parts, fwd_msgs, local_parts;
};

extern struct shard shards[MAX_WORKERS];
extern int nworkers;
extern int nowners;         /* workers that own keys (--owners): the first nowners */
extern long long maxmemory; /* bytes; 0: none */
extern long long max_bulk;  /* proto-max-bulk-len */
extern struct rotor_runtime *runtime;

uint64_t key_hash(const char *k, size_t n);
static inline int key_owner(uint64_t h)
{
	return (int)((h >> 40) % (uint64_t)nowners);
}
int64_t mstime(void);

/* db.c: the shard of the calling worker; lookups expire lazily. */
struct entry *db_find(struct shard *s, const char *k, size_t n, uint64_t h);
struct entry *db_add(struct shard *s, const char *k, size_t n, uint64_t h, enum vtype t);
void db_delete(struct shard *s, struct entry *e);
void db_set_expire(struct shard *s, struct entry *e, int64_t ms);
void db_flush(struct shard *s);
void db_sweep(struct shard *s, int budget);
void value_free(struct shard *s, struct value *v);
bool over_maxmemory(void);
void mem_add(struct shard *s, long long n);

/* values.c */
void odict_init(struct odict *d);
void odict_free(struct shard *s, struct odict *d);
struct odict_ent *odict_find(struct odict *d, const char *k, size_t n);
struct odict_ent *odict_add(struct shard *s, struct odict *d, const char *k, size_t n);
void odict_del(struct shard *s, struct odict *d, struct odict_ent *e);
struct odict_ent *odict_random(struct odict *d, uint64_t *rng);
struct list *list_new(void);
void list_free(struct shard *s, struct list *l);
int list_push(struct shard *s, struct list *l, const char *p, size_t n, bool left);
struct bytes list_pop(struct list *l, bool left);
struct bytes *list_at(struct list *l, size_t i);
struct zset *zset_new(void);
void zset_free(struct shard *s, struct zset *z);
/* 1 added, 0 updated, -ENOMEM */
int zset_put(struct shard *s, struct zset *z, const char *m, size_t n, double score);
bool zset_del(struct shard *s, struct zset *z, const char *m, size_t n);

/* ---- Commands ---------------------------------------------------------------------------- */

struct part;
/* A connection as its R_CONN commands see it. */
struct ctx {
	long long id;
	char name[64];
	bool quit; /* close once this round's replies are sent */
};

/* How a command's keys map to owners. */
enum route {
	R_CONN,  /* no key: runs on the connection's worker (PING, INFO, ...) */
	R_KEY,   /* one key, argv[1]: runs whole on its owner */
	R_MULTI, /* MGET, MSET, DEL, EXISTS: a part per key, on each key's owner */
	R_ALL,   /* DBSIZE, FLUSHALL: a part on every worker */
};

/* How the replies of a R_MULTI or R_ALL command's parts become one. */
enum merge { M_NONE, M_SUM, M_ARRAY, M_OK };

struct cmd {
	const char *name; /* lower case, as Redis names it in errors */
	int arity;        /* Redis's: n exact, -n at least n */
	enum route route;
	bool write; /* refused over maxmemory */
	int step;   /* R_MULTI: argv per key */
	enum merge merge;
	/* Runs one part (argv[0] is the command; for R_MULTI the key and its step-1 arguments)
	 * on shard s, appending its reply to o. */
	void (*run)(struct shard *s, int argc, const struct rotor_resp_arg *argv,
	            struct rotor_resp_out *o);
	/* R_CONN commands: with the connection (returns 1 to close after the reply). */
	int (*conn)(struct ctx *c, int argc, const struct rotor_resp_arg *argv,
	            struct rotor_resp_out *o);
};

const struct cmd *cmd_lookup(const char *name, size_t n);
int cmd_count(void);
const struct cmd *cmd_at(int i);

/* Helpers the command files share (cmd_util.c). */
extern const char *const ERR_WRONGTYPE,
    *const ERR_NOTINT, *const ERR_SYNTAX, *const ERR_OOM, *const ERR_NOTFLOAT,
                                                              *const ERR_OVERFLOW,
                                                                  *const ERR_POSITIVE;
bool arg_eq(const struct rotor_resp_arg *a, const char *lit);
bool arg_ll(const struct rotor_resp_arg *a, long long *v);
bool arg_double(const struct rotor_resp_arg *a, double *v);
void put_double(struct rotor_resp_out *o, double d);
void put_err(struct rotor_resp_out *o, const char *text);
struct entry *lookup_typed(struct shard *s, const struct rotor_resp_arg *key, enum vtype t,
                           struct rotor_resp_out *o, bool *wrong);
struct entry *create_typed(struct shard *s, const struct rotor_resp_arg *key, enum vtype t,
                           struct rotor_resp_out *o);
void odict_del_args(struct shard *s, enum vtype t, int argc, const struct rotor_resp_arg *argv,
                    struct rotor_resp_out *o);
void odict_len_reply(struct shard *s, enum vtype t, const struct rotor_resp_arg *key,
                     struct rotor_resp_out *o);
void odict_members_reply(struct shard *s, enum vtype t, const struct rotor_resp_arg *key,
                         bool values, struct rotor_resp_out *o);
char *dup_bytes(struct shard *s, const char *p, size_t n);
void free_bytes(struct shard *s, char *p, size_t n);

#endif /* REDIS_SERVER_H */
