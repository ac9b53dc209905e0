/*
 * Messages between workers and into a worker (msg.c): batches gathered per target during a
 * loop turn and posted as one MSG_RING each, and the inbox that threads which are no worker
 * push on. rotor__post, the entry for the layers above, is declared in api/core.h.
 */
#ifndef ROTOR__MSG_H
#define ROTOR__MSG_H

#include "worker.h"

/* Hand an item that reached its owner (locally or by message) to the right place. */
void rotor__deliver(struct rotor__worker *w, struct rotor__item *it);
/* Post every gathered batch (one MSG_RING SQE per target worker). */
void rotor__flush_outboxes(struct rotor__worker *w);
/* A completion of this ring that is a message or a failed post. */
void rotor__msg_complete(struct rotor__worker *w, struct io_uring_cqe *cqe);
/* Worker 0: tell every other worker to leave its loop. */
void rotor__post_exit(struct rotor__worker *w);
/* Deliver what non-workers pushed on the inbox. Returns how many items. */
size_t rotor__inbox_drain(struct rotor__worker *w);
/* Before a blocking wait: announce it; false if the inbox filled meanwhile (don't sleep). */
bool rotor__inbox_may_sleep(struct rotor__worker *w);
/* After a blocking wait: threads that post to us may skip the doorbell again. */
static inline void rotor__inbox_awake(struct rotor__worker *w)
{
	atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
}

#endif
