/*
 * What every Criterion test file of rotor shares: time units, pointer/integer casts, and
 * checks for code that runs on tasks or workers. A Criterion assertion must not unwind a
 * coroutine or a worker thread, so checks made there are counted, and the test's own
 * thread asserts afterwards that none failed (ASSERT_CHECKS). Also: counting entries of a
 * /proc directory, for the tests that check no fd or thread is left behind; a shell command
 * made like printf, for the tests that set up peers (openssl, nginx).
 */
#ifndef ROTOR_TESTS_CHECK_H
#define ROTOR_TESTS_CHECK_H

#include <criterion/criterion.h>
#include <rotor.h>

#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS   (1000 * 1000LL)
#define SEC  (1000 * MS)
#define P(x) ((void *)(uintptr_t)(x))
#define U(p) ((uintptr_t)(p))

/* A Criterion assertion must not unwind a coroutine or a worker thread: checks made there
 * are counted here, and the test's thread asserts that none failed. */
static atomic_int check_failures;
static char check_first[256];

__attribute__((unused)) static void check_failed(int line, const char *expr, long long got,
                                                 long long want)
{
	if (atomic_fetch_add(&check_failures, 1) == 0)
		snprintf(check_first, sizeof(check_first), "line %d: %s: got %lld, want %lld", line,
		         expr, got, want);
}

#define CHECK_EQ(got, want)                                                                        \
	do {                                                                                       \
		long long got_ = (long long)(got), want_ = (long long)(want);                      \
		if (got_ != want_)                                                                 \
			check_failed(__LINE__, #got " == " #want, got_, want_);                    \
	} while (0)
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			check_failed(__LINE__, #cond, 0, 1);                                       \
	} while (0)
#define ASSERT_CHECKS()                                                                            \
	cr_assert_eq(atomic_load(&check_failures), 0, "%d failed check(s), first: %s",             \
	             atomic_load(&check_failures), check_first)

__attribute__((unused)) static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Polls (from a non-worker thread) until *v >= target; 0, or -ETIMEDOUT after timeout_ns. */
__attribute__((unused)) static int wait_at_least(atomic_int *v, int target, int64_t timeout_ns)
{
	int64_t deadline = rotor_now() + timeout_ns;
	while (atomic_load(v) < target) {
		if (rotor_now() > deadline)
			return -ETIMEDOUT;
		pause_ms(1);
	}
	return 0;
}

/* Whether ROTOR_DISABLE (comma-separated words) names `word`: a test of what a forced
 * fallback turns off says it skipped instead of failing. */
__attribute__((unused)) static int rotor_disabled(const char *word)
{
	const char *off = getenv("ROTOR_DISABLE");
	size_t n = strlen(word);
	for (const char *p = off; p && (p = strstr(p, word)); p += n)
		if ((p == off || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
			return 1;
	return 0;
}

/* Pins the calling thread to the k-th CPU of `all` (the CPUs it may use). */
__attribute__((unused)) static void pin_to_nth_cpu(const cpu_set_t *all, int k)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	for (int c = 0, seen = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, all) && seen++ == k)
			CPU_SET(c, &one);
	cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
}

/* For tests of connections steered and followed across workers: the CPUs this thread may
 * use, after skipping (with the reason) where there is nothing to steer between. */
__attribute__((unused)) static void cpus_to_steer_between(cpu_set_t *all)
{
	cr_assert_eq(sched_getaffinity(0, sizeof(*all), all), 0);
	if (CPU_COUNT(all) < 2)
		cr_skip_test("needs two CPUs");
	if (rotor_disabled("pin"))
		cr_skip_test("ROTOR_DISABLE=pin: workers unpinned, nothing to steer or follow");
}

/* Entries of a directory, "." and ".." aside (/proc/self/fd, /proc/self/task); -1 if it
 * cannot be read. */
__attribute__((unused)) static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* system() of a command made like printf: its wait status. */
__attribute__((unused, format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Run fn as the main task of a fresh runtime of `workers` workers and assert that it
 * started, ended, and that no CHECK failed on any task meanwhile. */
__attribute__((unused)) static void run_checked(unsigned workers, rotor_fn fn, void *arg)
{
	atomic_store(&check_failures, 0);
	check_first[0] = 0;
	struct rotor_config cfg = {.workers = workers};
	int rc = rotor_run(&cfg, fn, arg, NULL);
	cr_assert_eq(rc, 0, "rotor_run: %d", rc);
	ASSERT_CHECKS();
}

/* Spawn fn(arg) on worker `worker` and return its handle (a failure counts as a CHECK). */
__attribute__((unused)) static struct rotor_task *spawn_on(int worker, rotor_fn fn, void *arg)
{
	struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(worker)};
	struct rotor_task *t = NULL;
	CHECK(rotor_spawn_attr(&a, fn, arg, &t) == 0);
	return t;
}

/* Tests that cancel a task while it waits must first know it is waiting: a task cancelled
 * before it ever ran does not run at all. The waiter calls task_begins(); the test calls
 * settle(n) until n tasks have begun, then gives them a moment to block. */
static atomic_int tasks_begun;

__attribute__((unused)) static void task_begins(void)
{
	atomic_fetch_add(&tasks_begun, 1);
}

__attribute__((unused)) static void settle(int n)
{
	int64_t give_up = rotor_now() + 5 * SEC;
	while (atomic_load(&tasks_begun) < n && rotor_now() < give_up)
		rotor_sleep(MS);
	rotor_sleep(2 * MS);
}

/*
 * The stale-handle tests: the last STALE_KEEP handles of one kind that were destroyed, and
 * which of them names the slot a live handle now uses (a handle is the object's address in
 * its low 48 bits and the slot's generation above: docs/architecture.md, section 5).
 */
#define STALE_KEEP 256
struct stale_ring {
	void *h[STALE_KEEP];
	unsigned n;
	unsigned hits; /* cycles whose live object reused the slot of a stale handle */
};
#define STALE_ADDR(p) (U(p) & (((uintptr_t)1 << 48) - 1))

__attribute__((unused)) static void stale_put(struct stale_ring *r, void *h)
{
	r->h[r->n++ % STALE_KEEP] = h;
}

/* The handle destroyed last (NULL before the first). */
__attribute__((unused)) static void *stale_last(const struct stale_ring *r)
{
	return r->n ? r->h[(r->n - 1) % STALE_KEEP] : NULL;
}

/* A kept stale handle whose slot holds the live object now, or NULL (counted in hits). */
__attribute__((unused)) static void *stale_alias(struct stale_ring *r, const void *live)
{
	for (unsigned i = 0; i < STALE_KEEP && i < r->n; i++)
		if (STALE_ADDR(r->h[i]) == STALE_ADDR(live)) {
			r->hits++;
			return r->h[i];
		}
	return NULL;
}

#endif
