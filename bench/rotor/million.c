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
 *
 * The floor (million_overhead): each coroutine's stack costs at least one fresh page, which
 * the kernel must allocate, zero and charge. A fresh child with one pinned thread per CPU
 * faults in N pages, one per 68 KiB slot of rotor's default stack as rotor does (top page,
 * MADV_POPULATE_WRITE in batches of 64), and its time is set against rotor's wall time less
 * the one second every coroutine sleeps: what is left above it is rotor's own.
 */
#include "bench.h"
#include "mq.h"

#include <rotor.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

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

/* body(arg, res) in a fresh child process (a clean heap and peaks), which writes res (len
 * bytes) back through a pipe. Returns 0, or -errno / -EIO if no result came back. */
static int in_child(void (*body)(void *arg, void *res), void *arg, void *res, size_t len)
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
		close(fds[0]);
		body(arg, res);
		ssize_t w = write(fds[1], res, len);
		_exit(w == (ssize_t)len ? 0 : 1);
	}
	close(fds[1]);
	ssize_t got = read(fds[0], res, len);
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	if (got != (ssize_t)len) {
		if (WIFSIGNALED(status))
			fprintf(stderr, "bench_million: child killed by signal %d\n",
			        WTERMSIG(status));
		return -EIO;
	}
	return 0;
}

static void rotor_rep(void *arg, void *res)
{
	struct million_run *r = res;
	*r = (struct million_run){.n = *(long *)arg};
	/* The spawn loop holds worker 0 for ~180 ms by design: no stall reports for it. */
	struct rotor_config cfg = {.flags = ROTOR_NO_STALL_CHECK};
	int rc = rotor_run(&cfg, spawn_sleepers, r, NULL);
	if (rc < 0)
		r->err = rc;
}

/* One repetition in a child process. */
static int run_rotor_child(long n, struct million_run *out)
{
	int rc = in_child(rotor_rep, &n, out, sizeof(*out));
	return rc < 0 ? rc : out->err;
}

/* ---- the page floor --------------------------------------------------------------------- */

#define FLOOR_SLOT  ((64 + 4) * 1024) /* rotor's default stack and its guard page */
#define FLOOR_BATCH 64

struct floor_part {
	int cpu;
	long pages;
	int err;
};

static void *fault_pages(void *arg)
{
	struct floor_part *p = arg;
	mq_pin_self(p->cpu);
	char *base = mmap(NULL, (size_t)p->pages * FLOOR_SLOT, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (base == MAP_FAILED || pidfd < 0) {
		p->err = -errno;
		return NULL;
	}
	struct iovec iov[FLOOR_BATCH];
	for (long i = 0; i < p->pages; i += FLOOR_BATCH) {
		int k = 0;
		for (; k < FLOOR_BATCH && i + k < p->pages; k++) {
			iov[k].iov_base = base + (size_t)(i + k + 1) * FLOOR_SLOT - 4096;
			iov[k].iov_len = 4096;
		}
		if (syscall(SYS_process_madvise, pidfd, iov, k, MADV_POPULATE_WRITE, 0) < 0) {
			/* Older kernels: touch each page instead. */
			for (int j = 0; j < k; j++)
				*(volatile char *)iov[j].iov_base = 1;
		}
	}
	close(pidfd);
	return NULL;
}

static void floor_rep(void *arg, void *res)
{
	long n = *(long *)arg;
	double *ms = res;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1 || ncpu > 256)
		ncpu = 1;
	struct floor_part parts[256];
	pthread_t th[256];
	int64_t t0 = bench_now();
	for (long i = 0; i < ncpu; i++) {
		parts[i] = (struct floor_part){.cpu = (int)i, .pages = n / ncpu};
		pthread_create(&th[i], NULL, fault_pages, &parts[i]);
	}
	for (long i = 0; i < ncpu; i++)
		pthread_join(th[i], NULL);
	*ms = (double)(bench_now() - t0) / 1e6;
	for (long i = 0; i < ncpu; i++)
		if (parts[i].err)
			*ms = -1;
}

/* n pages over one pinned thread per online CPU, in a fresh child: milliseconds, or < 0. */
static double page_floor_ms(long n)
{
	double ms = -1;
	return in_child(floor_rep, &n, &ms, sizeof(ms)) == 0 ? ms : -1;
}

/* The peers' figures, in this order in every array below. */
static const char *const peer_keys[5] = {"wall_ms", "kib_per_task", "cpu_ms", "spawn_ms", "alive"};

/* One run of a peer printing peer_keys into s[0..4]. */
static void run_peer(const struct bench_ctx *b, const char *exe, long n, struct bench_series *s)
{
	char cmd[8192], out[4096];

	snprintf(cmd, sizeof(cmd), "'%s' -n %ld", exe, n);
	if (bench_run_peer(b, cmd, out, sizeof(out)) != 0)
		return;
	for (int i = 0; i < 5; i++) {
		double v;
		if (bench_peer_value(out, peer_keys[i], &v) == 0)
			bench_add(&s[i], v);
	}
}

int main(int argc, char **argv)
{
	static const char *const metrics[5] = {"million_wall", "million_rss", "million_cpu",
	                                       "million_spawn", "million_alive"};
	static const char *const units[5] = {"ms", "KiB/task", "ms", "ms", "tasks"};
	struct bench_ctx b;
	/* rotor's, Go's and tokio's series, each in peer_keys' order. */
	struct bench_series rot[5], g[5], t[5];
	struct bench_series over = {.impl = "rotor"}, floor = {.impl = "page-floor"};
	char peer[4096], tpeer[4096];
	int failed = 0;

	for (int i = 0; i < 5; i++) {
		rot[i] = (struct bench_series){.impl = "rotor"};
		g[i] = (struct bench_series){.impl = "go-goroutine"};
		t[i] = (struct bench_series){.impl = "tokio"};
	}
	bench_init(&b, "million",
	           "A million coroutines sleeping 1 s at once (--quick: 100,000), all waited for, "
	           "default workers, against as many goroutines.",
	           3, 1, argc, argv);
	long n = b.quick ? 100000 : 1000000;
	const char *go = bench_peer_path(&b, "million", peer, sizeof(peer));
	const char *tokio = bench_peer_path(&b, "tokio-million", tpeer, sizeof(tpeer));

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
			bench_add(&rot[0], r.wall_ms);
			bench_add_instr(&rot[0], r.instr);
			bench_add(&rot[1], r.kib_per_task);
			bench_add(&rot[2], r.cpu_ms);
			bench_add_instr(&rot[2], r.instr);
			bench_add(&rot[3], r.spawn_ms);
			bench_add(&rot[4], r.alive);
			bench_add(&over, r.wall_ms - (double)SLEEP_NS / 1e6);
		}
		double fl = page_floor_ms(n);
		if (fl >= 0)
			bench_add(&floor, fl);
		if (tokio)
			run_peer(&b, tokio, n, t);
		if (go)
			run_peer(&b, go, n, g);
	}
	for (int i = 0; i < 5; i++)
		bench_report(&b, metrics[i], units[i], &rot[i], &g[i]);
	for (int i = 0; tokio && i < 5; i++)
		bench_report(&b, metrics[i], units[i], &rot[i], &t[i]);
	/* Wall time less the sleep, against faulting in one fresh page per coroutine. */
	bench_report(&b, "million_overhead", "ms", &over, &floor);
	return failed;
}
