/*
 * rotor's own messages (log.c): through the runtime's log hook (rotor_config.log) when it
 * has one, else a line each on stderr, filtered by the configured level.
 */
#ifndef ROTOR__LOG_H
#define ROTOR__LOG_H

#include "internal.h"

/* One message of runtime rt (NULL: none known, stderr) at level ROTOR_LOG_*. Not for a
 * signal handler. Thread: any. */
__attribute__((format(printf, 3, 4))) void rotor__log(const struct rotor_runtime *rt, int level,
                                                      const char *fmt, ...);

#endif
