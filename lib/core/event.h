/*
 * Events (event.c): a one-shot completion that one coroutine and any number of threads can
 * wait for. A task's end is one, and so is a future's resolution.
 */
#ifndef ROTOR__EVENT_H
#define ROTOR__EVENT_H

#include <stdatomic.h>

#include "internal.h"

/*
 * A one-shot completion that one coroutine and any number of threads can wait for.
 * waiter: 0 (nobody), EVENT_DONE, or the waiting task. fstate is the futex word for
 * threads: 0 pending, 1 done, 2 pending with sleepers.
 */
struct rotor__event {
	_Atomic uintptr_t waiter;
	_Atomic uint32_t fstate;
};
#define ROTOR__EVENT_DONE ((uintptr_t)1)

void rotor__event_init(struct rotor__event *ev);
/* Resolve and wake. Thread: any. Returns -EALREADY if already set. */
int rotor__event_set(struct rotor__event *ev);
/* The same for an event that only tasks wait on (a task's end): owner worker only; no
 * atomic read-modify-write when the waiter is a task of the same worker. */
void rotor__event_set_owner(struct rotor__event *ev);
static inline bool rotor__event_is_set(const struct rotor__event *ev)
{
	return atomic_load_explicit(&((struct rotor__event *)ev)->fstate, memory_order_acquire) ==
	       1;
}
/* On a task: 0, -ETIMEDOUT, -ECANCELED, -EBUSY (another task waits). setter_here: only
 * this worker can set ev (a task's end, joined on its own worker): no locked ops. */
int rotor__event_wait_task(struct rotor__event *ev, int64_t deadline, bool setter_here);
/* On a thread that is no worker: 0 or -ETIMEDOUT. */
int rotor__event_wait_thread(struct rotor__event *ev, int64_t deadline, unsigned spin_us);

#endif
