/*
 * Private futexes on 32-bit words (futex.c): how a thread that is no worker sleeps.
 */
#ifndef ROTOR__FUTEX_H
#define ROTOR__FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleep while *addr == val, until the absolute deadline: 0, -EAGAIN, -EINTR, -ETIMEDOUT. */
int rotor__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline);
void rotor__futex_wake(_Atomic uint32_t *addr, int n);

#endif
