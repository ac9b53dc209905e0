/*
 * rotor/chan.h: bounded channels of pointers between tasks on any worker (and, with the
 * try-forms, any thread), and rotor_chan_select over several of them.
 */
#ifndef ROTOR_PUBLIC_CHAN_H
#define ROTOR_PUBLIC_CHAN_H

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Channels ------------------------------------------------------------------------ */

/*
 * A bounded multi-producer multi-consumer channel of pointers, usable from tasks on any
 * worker (and, with the try-forms, from any thread). capacity 0 makes a rendezvous channel
 * (a send completes when a receiver takes the value). FIFO for values and for waiters.
 * After rotor_chan_close, senders get -EPIPE; receivers drain what is buffered, then get
 * -EPIPE (end of channel).
 */
struct rotor_chan;

/* rotor_chan_create - Returns 0 or -ENOMEM, -EINVAL (capacity > 2^31). Thread: any. */
ROTOR_API int rotor_chan_create(size_t capacity, struct rotor_chan **out);
/* rotor_chan_destroy - free it. Returns 0, or -EBUSY while a task waits on it.
 * Thread: any. */
ROTOR_API int rotor_chan_destroy(struct rotor_chan *ch);
/* rotor_chan_send - send v, waiting while the channel is full. Returns 0, -EPIPE (closed,
 * v not delivered), -ECANCELED, -ETIMEDOUT (_until), -EPERM off a task.
 * Thread: task. Suspends: yes. */
ROTOR_API int rotor_chan_send(struct rotor_chan *ch, void *v);
ROTOR_API int rotor_chan_send_until(struct rotor_chan *ch, void *v, int64_t deadline);
/* rotor_chan_try_send - 0, -EAGAIN (full), -EPIPE. Thread: any. Suspends: no. */
ROTOR_API int rotor_chan_try_send(struct rotor_chan *ch, void *v);
/* rotor_chan_recv - receive into *v, waiting while empty. Returns 0, -EPIPE (closed and
 * drained), -ECANCELED, -ETIMEDOUT (_until), -EPERM off a task. Thread: task. Suspends: yes. */
ROTOR_API int rotor_chan_recv(struct rotor_chan *ch, void **v);
ROTOR_API int rotor_chan_recv_until(struct rotor_chan *ch, void **v, int64_t deadline);
/* rotor_chan_try_recv - 0, -EAGAIN (empty), -EPIPE (closed and drained).
 * Thread: any. Suspends: no. */
ROTOR_API int rotor_chan_try_recv(struct rotor_chan *ch, void **v);
/* rotor_chan_close - close: waiting senders and receivers get -EPIPE. Returns 0, or
 * -EALREADY if it was closed. Thread: any. Suspends: no. */
ROTOR_API int rotor_chan_close(struct rotor_chan *ch);

enum rotor_select_op {
	ROTOR_SELECT_RECV = 1,
	ROTOR_SELECT_SEND = 2,
};

struct rotor_select_case {
	struct rotor_chan *ch;
	int op;      /* ROTOR_SELECT_RECV or ROTOR_SELECT_SEND */
	void *value; /* SEND: the value; RECV: receives it */
	int result;  /* out, for the case that completed: 0, or -EPIPE (closed) */
};

/*
 * rotor_chan_select - wait until one of n channel operations can complete, complete exactly
 * that one, and return its index; cases[i].result says 0 or -EPIPE (a receive from a
 * closed, drained channel, or a send to a closed one, completes with -EPIPE). When several
 * are ready the lowest index wins. Returns the index, -ETIMEDOUT (deadline; ROTOR_FOREVER
 * for none, a past deadline polls), -ECANCELED, -EINVAL (n == 0, bad case), -EPERM off a
 * task. Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_chan_select(struct rotor_select_case *cases, size_t n, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_CHAN_H */
