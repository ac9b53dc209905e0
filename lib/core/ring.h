/*
 * The worker's ring (ring.c): set up with the best flags this kernel takes, entered once per
 * loop turn to submit and reap, each CQE dispatched by the tag in its user_data. SQEs and
 * cancels for the layers above are declared in api/core.h.
 */
#ifndef ROTOR__RING_H
#define ROTOR__RING_H

#include <errno.h>

#include "worker.h"

int rotor__ring_init(struct rotor__worker *w);
void rotor__ring_fini(struct rotor__worker *w);
/* The errors after which an io_uring_enter is simply made again: nothing was lost. */
static inline bool rotor__enter_transient(int r)
{
	return r == -EINTR || r == -EAGAIN || r == -EBUSY || r == -ENOMEM;
}
/* Before a blocking enter: poll the ring and the inbox for a while without a system call
 * (how long: the comment above spin_for_work). True when work turned up. */
bool rotor__ring_poll(struct rotor__worker *w, int64_t deadline);
/* Submit every pending SQE; if block, wait for one completion, bounded by the absolute
 * deadline. Always fetches completions (GETEVENTS) when it enters. Never reaps. */
void rotor__ring_enter(struct rotor__worker *w, bool block, int64_t deadline);

#endif
