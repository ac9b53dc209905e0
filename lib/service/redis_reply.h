/*
 * Redis replies (redis_reply.c): hiredis's reader building rotor_redis_reply objects
 * directly, with no copy into hiredis's own reply objects, and bounded by what one reply may
 * take. The client (redis.c) feeds it what the connection received; tests/fuzz feed it
 * anything.
 */
#ifndef ROTOR__REDIS_REPLY_H
#define ROTOR__REDIS_REPLY_H

#include <stddef.h>

#include <rotor/redis.h>

struct rotor__redis_reader;

/* A reader that holds at most max bytes of a reply not yet complete (0: 512 MiB); NULL when
 * out of memory. Thread: any. */
struct rotor__redis_reader *rotor__redis_reader_create(size_t max);
void rotor__redis_reader_destroy(struct rotor__redis_reader *rd);
/* Give the reader len received bytes (copied). 0, -ENOMEM, or -EMSGSIZE (more than max
 * bytes of unparsed input). */
int rotor__redis_reader_feed(struct rotor__redis_reader *rd, const void *buf, size_t len);
/* The next complete reply: 1 and *out (the caller's), 0 when more bytes are needed, or
 * -EPROTO (not RESP), -ENOMEM, -EMSGSIZE (a reply over max). After an error the reader is
 * of no more use. */
int rotor__redis_reader_next(struct rotor__redis_reader *rd, struct rotor_redis_reply **out);

#endif
