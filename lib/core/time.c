/*
 * The one clock: CLOCK_MONOTONIC in nanoseconds, what every deadline is measured against.
 */
#include "internal.h"

#include <time.h>

int64_t rotor_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
