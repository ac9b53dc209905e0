/*
 * bench_million: N coroutines (1,000,000; --quick 100,000) that each sleep one second,
 * all started at once across ROTOR_WORKER_ANY with the default configuration and waited
 * for; against N goroutines with time.Sleep (peers/go/million) and N tokio tasks with
 * tokio::time::sleep on its default multi-thread runtime (peers/tokio, if built). Reports the wall
 * time from the first spawn until the last one ended, the CPU time, and resident KiB per coroutine:
 * peak RSS (VmHWM) minus the RSS just before spawning, over N. Every rotor repetition runs
 * in a fresh child process, as every Go one does, so that peaks and heaps start clean.
 * Also reported: how long the spawn calls took, and how many sleepers had started when the
 * first one woke (if starting them all takes over a second, fewer than N sleep at once).
 */
#include "bench.h"

#include <rotor.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLEEP_NS 1000000000LL

struct million_run {
	long n;
	atomic_long left;    /* sleepers not yet ended */
	atomic_long started; /* sleepers that have begun their sleep */
	atomic_long alive_at_first_wake;
	struct rotor_future *all_done;
	double wall_ms;
	double spawn_ms; /* first spawn to the last spawn's return */
	double alive;    /* sleepers started and not ended when the first one woke */
	double cpu_ms;
	double kib_per_task;
	double instr; /* instructions per coroutine, -1: not counted */
	int err;
};

static void *sleep_one_second(void *arg)
{
	struct million_run *r = arg;

	atomic_fetch_add_explicit(&r->started, 1, memory_order_relaxed);
	rotor_sleep(SLEEP_NS);
	long left = atomic_fetch_sub_explicit(&r->left, 1, memory_order_acq_rel);
	if (left == r->n)
		atomic_store(&r->alive_at_first_wake, atomic_load(&r->started));
	/* Pairs with the main task's wait: the last sleeper resolves the future. */
	if (left == 1)
		rotor_future_set(r->all_done, NULL);
	return NULL;
}

static void *spawn_sleepers(void *arg)
{
	struct million_run *r = arg;
	struct rotor_task_attr attr = {.on = ROTOR_ON_ANY};
	long spawned = 0;

	r->err = rotor_future_create(&r->all_done);
	if (r->err < 0)
		return NULL;
	atomic_store(&r->left, r->n);
	long before = bench_status_kib("VmRSS");
	int64_t t0 = bench_now(), c0 = bench_cpu(), i0 = bench_instructions();
	for (; spawned < r->n; spawned++) {
		int rc = rotor_spawn_attr(&attr, sleep_one_second, r, NULL);
		if (rc == -EAGAIN) {
			rotor_yield();
			spawned--;
			continue;
		}
		if (rc < 0) {
			r->err = rc;
			break;
		}
	}
	r->spawn_ms = (double)(bench_now() - t0) / 1e6;
	if (r->err < 0) {
		/* Let the ones that did start end, or the future is never resolved. */
		if (atomic_fetch_sub(&r->left, r->n - spawned) == r->n - spawned)
			rotor_future_set(r->all_done, NULL);
	}
	int rc = rotor_future_wait(r->all_done, ROTOR_FOREVER, NULL);
	int64_t i1 = bench_instructions(), t1 = bench_now(), c1 = bench_cpu();
	long peak = bench_status_kib("VmHWM");
	rotor_future_destroy(r->all_done);
	if (r->err == 0)
		r->err = rc;
	r->wall_ms = (double)(t1 - t0) / 1e6;
	r->cpu_ms = (double)(c1 - c0) / 1e6;
	r->instr = bench_instr_per_op(i0, i1, (double)r->n);
	r->kib_per_task = (double)(peak - before) / (double)r->n;
	r->alive = (double)atomic_load(&r->alive_at_first_wake);
	return NULL;
}

/* One repetition in a child process; the child writes its results into a pipe. */
static int run_rotor_child(long n, struct million_run *out)
{
	int fds[2];

	if (pipe(fds) < 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		int err = -errno;
		close(fds[0]);
		close(fds[1]);
		return err;
	}
	if (pid == 0) {
		struct million_run r = {.n = n};
		/* The spawn loop holds worker 0 for ~180 ms by design: no stall reports for it. */
		struct rotor_config cfg = {.flags = ROTOR_NO_STALL_CHECK};
		close(fds[0]);
		int rc = rotor_run(&cfg, spawn_sleepers, &r, NULL);
		if (rc < 0)
			r.err = rc;
		ssize_t w = write(fds[1], &r, sizeof(r));
		_exit(w == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(fds[1]);
	ssize_t got = read(fds[0], out, sizeof(*out));
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	if (got != (ssize_t)sizeof(*out)) {
		if (WIFSIGNALED(status))
			fprintf(stderr, "bench_million: child killed by signal %d\n",
			        WTERMSIG(status));
		return -EIO;
	}
	return out->err;
}

int main(int argc, char **argv)
{
	struct bench_ctx b;
	struct bench_series wall = {.impl = "rotor"}, cpu = {.impl = "rotor"},
	                    kib = {.impl = "rotor"};
	struct bench_series gwall = {.impl = "go-goroutine"}, gcpu = {.impl = "go-goroutine"};
	struct bench_series gkib = {.impl = "go-goroutine"};
	struct bench_series spawn = {.impl = "rotor"}, alive = {.impl = "rotor"};
	struct bench_series gspawn = {.impl = "go-goroutine"}, galive = {.impl = "go-goroutine"};
	/* tokio's series: wall, rss, cpu, spawn, alive (the order of keys below). */
	struct bench_series t[5];
	char peer[4096], tpeer[4096], cmd[8192], out[4096];
	int failed = 0;

	bench_init(&b, "million",
	           "A million coroutines sleeping 1 s at once (--quick: 100,000), all waited for, "
	           "default workers, against as many goroutines.",
	           3, 1, argc, argv);
	long n = b.quick ? 100000 : 1000000;
	const char *go = bench_peer_path(&b, "million", peer, sizeof(peer));
	const char *tokio = bench_peer_path(&b, "tokio-million", tpeer, sizeof(tpeer));

	for (int i = 0; i < 5; i++)
		t[i] = (struct bench_series){.impl = "tokio"};

	bench_note(&b, "million: %ld sleepers of 1 s per rep, %d reps, default workers", n, b.reps);
	if (!go)
		bench_note(&b, "  go peer not found in %s (run.sh builds it): baseline skipped",
		           b.peer_dir);
	if (!tokio)
		bench_note(
		    &b,
		    "  tokio peer not found in %s (run.sh builds it with cargo): baseline skipped",
		    b.peer_dir);
	for (int rep = 0; rep < b.reps; rep++) {
		struct million_run r;
		int rc = run_rotor_child(n, &r);
		if (rc < 0) {
			bench_note(&b, "  rotor failed: %s", strerror(-rc));
			failed = 1;
		} else {
			bench_add(&wall, r.wall_ms);
			bench_add(&cpu, r.cpu_ms);
			bench_add_instr(&wall, r.instr);
			bench_add_instr(&cpu, r.instr);
			bench_add(&kib, r.kib_per_task);
			bench_add(&spawn, r.spawn_ms);
			bench_add(&alive, r.alive);
		}
		if (tokio) {
			static const char *const keys[] = {"wall_ms", "kib_per_task", "cpu_ms",
			                                   "spawn_ms", "alive"};
			snprintf(cmd, sizeof(cmd), "'%s' -n %ld", tokio, n);
			if (bench_run_peer(&b, cmd, out, sizeof(out)) == 0)
				for (int i = 0; i < 5; i++) {
					double v;
					if (bench_peer_value(out, keys[i], &v) == 0)
						bench_add(&t[i], v);
				}
		}
		if (!go)
			continue;
		snprintf(cmd, sizeof(cmd), "'%s' -n %ld", go, n);
		if (bench_run_peer(&b, cmd, out, sizeof(out)) == 0) {
			double v;
			if (bench_peer_value(out, "wall_ms", &v) == 0)
				bench_add(&gwall, v);
			if (bench_peer_value(out, "cpu_ms", &v) == 0)
				bench_add(&gcpu, v);
			if (bench_peer_value(out, "kib_per_task", &v) == 0)
				bench_add(&gkib, v);
			if (bench_peer_value(out, "spawn_ms", &v) == 0)
				bench_add(&gspawn, v);
			if (bench_peer_value(out, "alive", &v) == 0)
				bench_add(&galive, v);
		}
	}
	bench_report(&b, "million_wall", "ms", &wall, &gwall);
	bench_report(&b, "million_rss", "KiB/task", &kib, &gkib);
	bench_report(&b, "million_cpu", "ms", &cpu, &gcpu);
	bench_report(&b, "million_spawn", "ms", &spawn, &gspawn);
	bench_report(&b, "million_alive", "tasks", &alive, &galive);
	if (tokio) {
		bench_report(&b, "million_wall", "ms", &wall, &t[0]);
		bench_report(&b, "million_rss", "KiB/task", &kib, &t[1]);
		bench_report(&b, "million_cpu", "ms", &cpu, &t[2]);
		bench_report(&b, "million_spawn", "ms", &spawn, &t[3]);
		bench_report(&b, "million_alive", "tasks", &alive, &t[4]);
	}
	return failed;
}
