/*
 * prof_demo: a small rotor program to try the profiler on (tools/rotor perf, see
 * bench/PROFILING.md): named tasks with different appetites for CPU on two workers, for
 * about a second (or argv[1] milliseconds).
 *
 *   "hasher"   (worker 0)  FNV-1a over a 64 KiB buffer, yielding after each pass
 *   "primes-1" (worker 1)  trial-division prime counting, yielding every 256 numbers
 *   "primes-2" (worker 1)  the same, so two tasks share one body function
 *   "spawner"  (worker 0)  spawns batches of 64 short tasks with default names, joins them
 */
#include <rotor.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define BUF_SIZE (64 * 1024)

static int64_t deadline;

static void *hash_loop(void *arg)
{
	static unsigned char buf[BUF_SIZE];
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)i;
	while (rotor_now() < deadline) {
		for (size_t i = 0; i < sizeof(buf); i++)
			h = (h ^ buf[i]) * 1099511628211ull;
		if (rotor_yield() < 0)
			break;
	}
	*(uint64_t *)arg = h;
	return NULL;
}

static int is_prime(unsigned n)
{
	if (n < 2)
		return 0;
	for (unsigned d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

static void *count_primes(void *arg)
{
	unsigned n = 2, found = 0;

	while (rotor_now() < deadline) {
		for (unsigned end = n + 256; n < end; n++)
			found += (unsigned)is_prime(n);
		if (rotor_yield() < 0)
			break;
	}
	*(unsigned *)arg = found;
	return NULL;
}

static void *tiny_job(void *arg)
{
	unsigned x = (unsigned)(uintptr_t)arg;

	for (int i = 0; i < 2000; i++)
		x = x * 1103515245u + 12345u;
	return (void *)(uintptr_t)x;
}

static void *spawn_jobs(void *arg)
{
	struct rotor_task *t[64];
	unsigned long *jobs = arg;

	while (rotor_now() < deadline) {
		int n = 0;
		for (; n < 64; n++)
			if (rotor_spawn(tiny_job, (void *)(uintptr_t)n, &t[n]) < 0)
				break;
		for (int i = 0; i < n; i++)
			rotor_join(t[i], NULL);
		*jobs += (unsigned long)n;
	}
	return NULL;
}

static void *run_demo(void *arg)
{
	uint64_t hash = 0;
	unsigned primes[2] = {0, 0};
	unsigned long jobs = 0;
	struct rotor_task *t[4];
	struct rotor_task_attr a[4] = {
	    {.on = ROTOR_ON_WORKER(0), .name = "hasher"},
	    {.on = ROTOR_ON_WORKER(1 % rotor_runtime_workers(rotor_runtime_current())),
	     .name = "primes-1"},
	    {.on = ROTOR_ON_WORKER(1 % rotor_runtime_workers(rotor_runtime_current())),
	     .name = "primes-2"},
	    {.on = ROTOR_ON_WORKER(0), .name = "spawner"},
	};
	int ms = *(int *)arg;

	deadline = rotor_now() + (int64_t)ms * 1000000;
	if (rotor_spawn_attr(&a[0], hash_loop, &hash, &t[0]) < 0 ||
	    rotor_spawn_attr(&a[1], count_primes, &primes[0], &t[1]) < 0 ||
	    rotor_spawn_attr(&a[2], count_primes, &primes[1], &t[2]) < 0 ||
	    rotor_spawn_attr(&a[3], spawn_jobs, &jobs, &t[3]) < 0)
		return (void *)1;
	for (int i = 0; i < 4; i++)
		rotor_join(t[i], NULL);
	printf("prof_demo: %d ms: hash %016llx, primes %u + %u, %lu short tasks\n", ms,
	       (unsigned long long)hash, primes[0], primes[1], jobs);
	return NULL;
}

int main(int argc, char **argv)
{
	struct rotor_config cfg = {.workers = 2};
	int ms = argc > 1 ? atoi(argv[1]) : 1000;
	void *res = NULL;

	int rc = rotor_run(&cfg, run_demo, &ms, &res);
	if (rc < 0 || res) {
		fprintf(stderr, "prof_demo: failed (%d)\n", rc);
		return 1;
	}
	return 0;
}
