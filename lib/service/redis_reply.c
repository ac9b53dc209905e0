/*
 * Replies: hiredis's RESP2 reader with object functions of our own, so that each reply is
 * built once, as a rotor_redis_reply, in one allocation per object (a string's bytes follow
 * its header), and handed to the task as it is. The reader also bounds a reply: unparsed
 * input over max, or an array that claims more elements than max bytes could carry, ends
 * the reader with -EMSGSIZE rather than an allocation the peer chose.
 */
#include "redis_reply.h"

#include <errno.h>
#include <hiredis/read.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX ((size_t)512 * 1024 * 1024)

struct rotor__redis_reader {
	redisReader *r;
	size_t max;
	bool too_big; /* an object function refused a reply over max */
};

/* Every type this file makes must be one of ours, with hiredis's numbers. */
_Static_assert(ROTOR_REDIS_STRING == REDIS_REPLY_STRING && ROTOR_REDIS_ARRAY == REDIS_REPLY_ARRAY &&
                   ROTOR_REDIS_INTEGER == REDIS_REPLY_INTEGER &&
                   ROTOR_REDIS_NIL == REDIS_REPLY_NIL && ROTOR_REDIS_STATUS == REDIS_REPLY_STATUS &&
                   ROTOR_REDIS_ERROR == REDIS_REPLY_ERROR,
               "reply types are hiredis's");

void rotor_redis_reply_free(struct rotor_redis_reply *reply)
{
	if (!reply)
		return;
	if (reply->type == ROTOR_REDIS_ARRAY)
		for (size_t i = 0; i < reply->elements; i++)
			rotor_redis_reply_free(reply->element[i]);
	free(reply);
}

/* Hang o in its parent array, if it has one. */
static void *place(const redisReadTask *task, struct rotor_redis_reply *o)
{
	if (task->parent) {
		struct rotor_redis_reply *parent = task->parent->obj;
		parent->element[task->idx] = o;
	}
	return o;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
	struct rotor_redis_reply *o = malloc(sizeof(*o) + len + 1);
	if (!o)
		return NULL;
	*o = (struct rotor_redis_reply){.type = task->type, .len = len};
	o->str = (char *)(o + 1);
	memcpy(o->str, str, len);
	o->str[len] = '\0';
	return place(task, o);
}

static void *create_array(const redisReadTask *task, int elements)
{
	struct rotor__redis_reader *rd = task->privdata;
	/* Each element takes 3 bytes on the wire at least (":0\r\n" is 4, "*0\r\n" 4). */
	if (elements < 0 || (size_t)elements > rd->max / 3) {
		rd->too_big = true;
		return NULL;
	}
	struct rotor_redis_reply *o =
	    calloc(1, sizeof(*o) + (size_t)elements * sizeof(struct rotor_redis_reply *));
	if (!o)
		return NULL;
	o->type = ROTOR_REDIS_ARRAY;
	o->elements = (size_t)elements;
	o->element = (struct rotor_redis_reply **)(o + 1);
	return place(task, o);
}

static void *create_integer(const redisReadTask *task, long long value)
{
	struct rotor_redis_reply *o = malloc(sizeof(*o));
	if (!o)
		return NULL;
	*o = (struct rotor_redis_reply){.type = ROTOR_REDIS_INTEGER, .integer = value};
	return place(task, o);
}

static void *create_nil(const redisReadTask *task)
{
	struct rotor_redis_reply *o = malloc(sizeof(*o));
	if (!o)
		return NULL;
	*o = (struct rotor_redis_reply){.type = ROTOR_REDIS_NIL};
	return place(task, o);
}

/* hiredis frees a reply it could not finish through this: the root, whose elements not
 * made yet are NULL (calloc). */
static void free_object(void *o)
{
	rotor_redis_reply_free(o);
}

static redisReplyObjectFunctions functions = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
    .createNil = create_nil,
    .freeObject = free_object,
};

struct rotor__redis_reader *rotor__redis_reader_create(size_t max)
{
	struct rotor__redis_reader *rd = calloc(1, sizeof(*rd));
	if (!rd)
		return NULL;
	rd->r = redisReaderCreateWithFunctions(&functions);
	if (!rd->r) {
		free(rd);
		return NULL;
	}
	rd->max = max ? max : DEFAULT_MAX;
	rd->r->privdata = rd;
	return rd;
}

void rotor__redis_reader_destroy(struct rotor__redis_reader *rd)
{
	if (!rd)
		return;
	redisReaderFree(rd->r);
	free(rd);
}

int rotor__redis_reader_feed(struct rotor__redis_reader *rd, const void *buf, size_t len)
{
	if (rd->r->len - rd->r->pos + len > rd->max) {
		rd->too_big = true;
		return -EMSGSIZE;
	}
	return redisReaderFeed(rd->r, buf, len) == REDIS_OK ? 0 : -ENOMEM;
}

int rotor__redis_reader_next(struct rotor__redis_reader *rd, struct rotor_redis_reply **out)
{
	void *reply = NULL;
	if (rd->too_big)
		return -EMSGSIZE;
	if (redisReaderGetReply(rd->r, &reply) != REDIS_OK) {
		if (rd->too_big)
			return -EMSGSIZE;
		return rd->r->err == REDIS_ERR_OOM ? -ENOMEM : -EPROTO;
	}
	if (!reply)
		return 0;
	*out = reply;
	return 1;
}
