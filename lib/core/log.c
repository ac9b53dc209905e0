/*
 * rotor's own messages: formatted here once, then handed whole to the runtime's log hook or
 * written as one line on stderr. A message that does not fit the buffer is cut, not lost.
 */
#include "log.h"
#include "runtime.h"

#include <stdarg.h>
#include <stdio.h>

#define ROTOR__LOG_MAX 8192 /* a stall report: a header and 32 symbolized frames */

void rotor__log(const struct rotor_runtime *rt, int level, const char *fmt, ...)
{
	int max = rt && rt->cfg.log_level ? rt->cfg.log_level : ROTOR_LOG_WARNING;
	if (level > max)
		return;
	char msg[ROTOR__LOG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rt && rt->cfg.log)
		rt->cfg.log(rt->cfg.log_arg, level, msg);
	else
		fprintf(stderr, "%s\n", msg);
}
