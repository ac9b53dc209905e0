/*
 * The process tests/gdb_tasks.sh debugs: a 2-worker runtime with named tasks asleep on both
 * workers (one of them a few calls deep, one with a default name), then a stop at
 * gdb_tasks_ready() for the debugger; with "crash", a task named "crasher" then aborts.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c11 */

#include <rotor.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAP_NS (60LL * 1000000000)

static atomic_int asleep;

static void *nap(void *arg)
{
	atomic_fetch_add(&asleep, 1);
	rotor_sleep(NAP_NS);
	return arg;
}

/* A frame per level: the volatile local is read after the call, so the compiler can turn
 * neither the recursion into a loop nor the last call into a jump. */
__attribute__((noinline)) static int nap_deeper(int depth)
{
	volatile int level = depth;
	int rc;

	if (depth > 0) {
		rc = nap_deeper(depth - 1);
	} else {
		atomic_fetch_add(&asleep, 1);
		rc = rotor_sleep(NAP_NS);
	}
	return rc + level - depth;
}

static void *deep_nap(void *arg)
{
	nap_deeper(3);
	return arg;
}

__attribute__((noinline)) static void crash_now(void)
{
	fprintf(stderr, "gdb_tasks: crasher aborts\n");
	abort();
}

static void *crash(void *arg)
{
	crash_now();
	return arg;
}

static void *launch(void *arg)
{
	static const struct {
		int worker;
		const char *name;
		rotor_fn fn;
	} tasks[] = {
	    {0, "sleeper-0", nap},
	    {1, "sleeper-1", nap},
	    {1, "deep-sleeper", deep_nap},
	    {0, NULL, nap},
	};
	int crash_too = *(int *)arg;

	if (crash_too) {
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(1), .name = "crasher"};
		return (void *)(intptr_t)rotor_spawn_attr(&a, crash, NULL, NULL);
	}
	for (size_t i = 0; i < sizeof(tasks) / sizeof(tasks[0]); i++) {
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(tasks[i].worker),
		                            .name = tasks[i].name};
		int rc = rotor_spawn_attr(&a, tasks[i].fn, NULL, NULL);
		if (rc < 0)
			return (void *)(intptr_t)rc;
	}
	return NULL;
}

/* The debugger's breakpoint: every sleeper is suspended when this is called. */
__attribute__((noinline)) void gdb_tasks_ready(void)
{
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	struct rotor_config cfg = {.workers = 2};
	struct rotor_runtime *rt;
	int crash_too = 0;
	void *res;

	if (rotor_runtime_create(&cfg, &rt) < 0)
		return 1;
	if (rotor_call(rt, 0, launch, &crash_too, &res) < 0 || res)
		return 1;
	while (atomic_load(&asleep) < 4) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	/* Sleepers count themselves just before suspending: give them a moment to do so. */
	struct timespec settle = {0, 50000000};
	nanosleep(&settle, NULL);
	gdb_tasks_ready();
	if (argc > 1 && strcmp(argv[1], "crash") == 0) {
		crash_too = 1;
		rotor_call(rt, 0, launch, &crash_too, &res);
		struct timespec ts = {5, 0};
		nanosleep(&ts, NULL);
	}
	rotor_runtime_destroy(rt);
	return 0;
}
