/*
 * bench_timers: N coroutines each sleeping once, two ways: rotor_sleep (a user-space heap;
 * the kernel only holds the earliest deadline as the wait's timeout) against one
 * IORING_OP_TIMEOUT per sleeper. Reports CPU ns per sleep (arm + fire + resume) and the
 * unreclaimable kernel slab held per pending sleeper (SUnreclaim from /proc/meminfo).
 */
#include "bench.h"
#include "io.h"

#include <rotor.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLEEP_NS (100 * 1000 * 1000LL)

struct run {
	long n;
	int kernel;
	double cpu_ns;
	double slab_bytes;
	double instr; /* instructions per sleep, -1: not counted */
	long woke;
};

static long sunreclaim_kib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "SUnreclaim: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static long woke;

static void *heap_sleeper(void *arg)
{
	(void)arg;
	if (rotor_sleep(SLEEP_NS) == 0)
		woke++;
	return NULL;
}

static void *kernel_sleeper(void *arg)
{
	(void)arg;
	struct rotor__worker *w = rotor__worker_self();
	struct __kernel_timespec ts = {.tv_sec = SLEEP_NS / 1000000000,
	                               .tv_nsec = SLEEP_NS % 1000000000};
	struct io_uring_sqe *sqe = rotor__sqe(w);
	io_uring_prep_timeout(sqe, &ts, 0, 0);
	if (rotor__io_run(w, sqe, ROTOR_FOREVER) == -ETIME)
		woke++;
	return NULL;
}

/* One round: n sleepers armed at once, all woken; returns CPU ns and slab delta. */
static void round_of(struct run *r, double *cpu_ns, double *slab)
{
	woke = 0;
	long slab0 = sunreclaim_kib();
	int64_t c0 = bench_cpu(), i0 = bench_instructions();
	for (long i = 0; i < r->n; i++)
		rotor_spawn(r->kernel ? kernel_sleeper : heap_sleeper, NULL, NULL);
	/* Two yields: the sleepers run (and arm) during the first turn. */
	rotor_yield();
	rotor_yield();
	long slab1 = sunreclaim_kib();
	while (woke < r->n)
		rotor_sleep(1000000);
	int64_t i1 = bench_instructions(), c1 = bench_cpu();
	r->instr = bench_instr_per_op(i0, i1, (double)r->n);
	*slab = (double)(slab1 - slab0) * 1024.0 / (double)r->n;
	/* The main task's 1 ms polling sleeps are noise next to n sleeps. */
	*cpu_ns = (double)(c1 - c0) / (double)r->n;
}

static void *measure(void *arg)
{
	struct run *r = arg;
	double cpu, slab;
	/* The first round carves and faults in the stacks, so CPU is measured on the
	 * second; kernel slab on the first (freed timeouts stay cached in their slab, so
	 * the second round would reuse them without growing SUnreclaim). */
	round_of(r, &cpu, &r->slab_bytes);
	round_of(r, &r->cpu_ns, &slab);
	r->woke = woke;
	return NULL;
}

static int one(long n, int kernel, struct run *out)
{
	struct rotor_config cfg = {.workers = 1};
	out->n = n;
	out->kernel = kernel;
	/* Let the previous run's kernel objects drain (RCU-freed slab) before sampling. */
	usleep(300000);
	int rc = rotor_run(&cfg, measure, out, NULL);
	if (rc < 0 || out->woke != n) {
		fprintf(stderr, "bench_timers: run failed (%d, %ld of %ld woke)\n", rc, out->woke,
		        n);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_ctx b;
	bench_init(&b, "timers",
	           "N sleeping coroutines: user-space timer heap vs one kernel TIMEOUT each", 5, 3,
	           argc, argv);
	long n = b.quick ? 20000 : 100000;
	struct bench_series hc = {.impl = "rotor-heap"}, kc = {.impl = "kernel-timeout"};
	struct bench_series hs = {.impl = "rotor-heap"}, ks = {.impl = "kernel-timeout"};
	for (int i = 0; i < b.reps; i++) {
		struct run h, k;
		if (one(n, 0, &h) < 0 || one(n, 1, &k) < 0)
			return 1;
		bench_add(&hc, h.cpu_ns);
		bench_add(&kc, k.cpu_ns);
		bench_add_instr(&hc, h.instr);
		bench_add_instr(&kc, k.instr);
		bench_add(&hs, h.slab_bytes);
		bench_add(&ks, k.slab_bytes);
	}
	bench_note(&b, "%ld sleepers of %lld ms per run, one worker", n, SLEEP_NS / 1000000);
	bench_report(&b, "sleep_cpu", "ns/sleep", &hc, &kc);
	bench_report(&b, "kernel_slab", "bytes/sleeper", &hs, &ks);
	return 0;
}
