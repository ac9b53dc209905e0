/*
 * Callbacks (callback.c): call_soon, call_later and call_soon_threadsafe, run by the worker
 * loop between tasks, on the worker thread's own stack.
 */
#ifndef ROTOR__CALLBACK_H
#define ROTOR__CALLBACK_H

#include "worker.h"

/* Run a callback item taken from the run queue. */
void rotor__callback_run(struct rotor__worker *w, struct rotor__item *it);
/* At the worker's end: free every callback still scheduled, without running it. */
void rotor__callbacks_drop(struct rotor__worker *w);

#endif
