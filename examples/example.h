/*
 * Small helpers shared by the seed examples: scaled durations, elapsed time, the exit codes
 * the tests read, and a checked-call macro. Header-only so each example stays one
 * executable built from one .c file.
 */
#ifndef ROTOR_EXAMPLE_H
#define ROTOR_EXAMPLE_H

/* Before any system header: pthread_setname_np, random, clock_nanosleep. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rotor.h>

/* Exit codes: 0 every invariant held; 1 an invariant failed; 2 bad usage; 77 io_uring is not
 * available here (the automake "skipped" code, which tests/test_examples.c turns into a
 * skip). */
#define EX_OK       0
#define EX_FAILED   1
#define EX_USAGE    2
#define EX_NO_URING 77

#define NS_PER_SEC 1000000000LL
#define NS_PER_MS  1000000LL

/* Multiplies every duration an example uses, so that a test can run the seeds' multi-second
 * scenarios in a fraction of a second (--scale 0.01). */
static double ex_scale = 1.0;

/* Seconds of the seed's scenario, scaled, in nanoseconds. */
static inline int64_t ex_seconds(double s)
{
	return (int64_t)(s * ex_scale * (double)NS_PER_SEC);
}

static inline double ex_ns_to_s(int64_t ns)
{
	return (double)ns / (double)NS_PER_SEC;
}

static int64_t ex_start_ns;

/* Seconds since the example started (the seeds print time.time(); relative times read
 * better). */
static inline double ex_elapsed(void)
{
	return ex_ns_to_s(rotor_now() - ex_start_ns);
}

static inline void ex_init(void)
{
	/* The seeds print with flush=True: show each line as it happens, even into a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ex_start_ns = rotor_now();
}

static int ex_failures;

/* Report a broken invariant; the example keeps going and exits EX_FAILED at the end. */
__attribute__((format(printf, 1, 2))) static inline void ex_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("INVARIANT FAILED: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	__atomic_add_fetch(&ex_failures, 1, __ATOMIC_RELAXED);
}

static inline int ex_exit_code(void)
{
	return __atomic_load_n(&ex_failures, __ATOMIC_RELAXED) ? EX_FAILED : EX_OK;
}

/* A rotor call that must succeed: on failure say which one and why, and leave. A runtime
 * that cannot start because io_uring is off (-EPERM/-ENOSYS) exits EX_NO_URING. */
#define EX_CHECK(call)                                                                             \
	do {                                                                                       \
		int ex_rc_ = (call);                                                               \
		if (ex_rc_ < 0) {                                                                  \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,              \
			        strerror(-ex_rc_));                                                \
			exit((ex_rc_ == -EPERM || ex_rc_ == -ENOSYS) ? EX_NO_URING : EX_FAILED);   \
		}                                                                                  \
	} while (0)

/* Block the calling thread for ns, even across signals (a stall detector may interrupt a
 * blocked worker to take a backtrace): the seeds' time.sleep(). */
static inline void ex_block(int64_t ns)
{
	struct timespec until;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ns / NS_PER_SEC;
	until.tv_nsec += ns % NS_PER_SEC;
	if (until.tv_nsec >= NS_PER_SEC) {
		until.tv_sec++;
		until.tv_nsec -= NS_PER_SEC;
	}
	do
		rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
	while (rc == EINTR);
}

static inline double ex_parse_double(const char *opt, const char *s, double min)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= min)) {
		fprintf(stderr, "bad value for %s: '%s'\n", opt, s);
		exit(EX_USAGE);
	}
	return v;
}

static inline long ex_parse_long(const char *opt, const char *s, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v < min) {
		fprintf(stderr, "bad value for %s: '%s'\n", opt, s);
		exit(EX_USAGE);
	}
	return v;
}

#endif /* ROTOR_EXAMPLE_H */
