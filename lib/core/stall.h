/*
 * The stall detector (stall.c): a monitor thread that reports a task or callback running
 * too long without yielding, with a backtrace taken in the stalled worker by a signal.
 */
#ifndef ROTOR__STALL_H
#define ROTOR__STALL_H

#include "worker.h"

void rotor__stall_run_begin(struct rotor__worker *w, struct rotor_task *t, void *lo, void *hi);
void rotor__stall_run_end(struct rotor__worker *w);
int rotor__stall_start(struct rotor_runtime *rt);
void rotor__stall_stop(struct rotor_runtime *rt);
/* While stopping, on the worker itself: report every task of w still alive (name, state,
 * where a suspended one waits), as one message. */
void rotor__stall_report_stop(struct rotor__worker *w);

#endif
