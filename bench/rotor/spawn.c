/*
 * bench_spawn: local spawn + run + join on one worker, against Go goroutines with
 * GOMAXPROCS=1 (peers/go/spawn) and tokio tasks on a current-thread runtime (peers/tokio, if
 * built). Two shapes: one task at a time (spawn, join, repeat) and batches of 100 (spawn
 * 100, then join all 100). Reports wall and CPU nanoseconds per task.
 */
#include "bench.h"

#include <rotor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 100

struct spawn_run {
	long n;
	int batch; /* 1: spawn and join one at a time; else spawn `batch`, join them all */
	double wall_ns_op;
	double cpu_ns_op;
	double instr_op; /* -1: not counted */
	int err;
};

static void *return_at_once(void *arg)
{
	return arg;
}

static int spawn_and_join(long n, int batch)
{
	struct rotor_task *t[BATCH];

	for (long i = 0; i < n; i += batch) {
		for (int j = 0; j < batch; j++) {
			int rc = rotor_spawn(return_at_once, NULL, &t[j]);
			if (rc < 0)
				return rc;
		}
		for (int j = 0; j < batch; j++) {
			int rc = rotor_join(t[j], NULL);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static void *measure_spawn(void *arg)
{
	struct spawn_run *r = arg;

	/* Warm the stack pool and the task allocator. */
	r->err = spawn_and_join(BATCH * 10, r->batch);
	if (r->err < 0)
		return NULL;
	int64_t t0 = bench_now(), c0 = bench_cpu(), i0 = bench_instructions();
	r->err = spawn_and_join(r->n, r->batch);
	int64_t i1 = bench_instructions(), t1 = bench_now(), c1 = bench_cpu();
	r->wall_ns_op = (double)(t1 - t0) / (double)r->n;
	r->cpu_ns_op = (double)(c1 - c0) / (double)r->n;
	r->instr_op = bench_instr_per_op(i0, i1, (double)r->n);
	return NULL;
}

static int run_rotor(long n, int batch, struct spawn_run *r)
{
	struct rotor_config cfg = {.workers = 1};

	memset(r, 0, sizeof(*r));
	r->n = n;
	r->batch = batch;
	int rc = rotor_run(&cfg, measure_spawn, r, NULL);
	return rc < 0 ? rc : r->err;
}

/* One run of a peer printing one_ns, one_cpu_ns, batch_ns and batch_cpu_ns into s[0..3]. */
static void run_peer(const struct bench_ctx *b, const char *cmd, struct bench_series *s)
{
	static const char *const keys[] = {"one_ns", "one_cpu_ns", "batch_ns", "batch_cpu_ns"};
	char out[4096];

	if (bench_run_peer(b, cmd, out, sizeof(out)) != 0)
		return;
	for (int i = 0; i < 4; i++) {
		double v;
		if (bench_peer_value(out, keys[i], &v) == 0)
			bench_add(&s[i], v);
	}
}

int main(int argc, char **argv)
{
	struct bench_ctx b;
	struct bench_series one = {.impl = "rotor"}, one_cpu = {.impl = "rotor"};
	struct bench_series bat = {.impl = "rotor"}, bat_cpu = {.impl = "rotor"};
	/* The peers' series, in run_peer's order: one, one_cpu, batch, batch_cpu. */
	struct bench_series g[4], t[4];
	char peer[4096], tpeer[4096], cmd[8192];

	for (int i = 0; i < 4; i++) {
		g[i] = (struct bench_series){.impl = "go-goroutine"};
		t[i] = (struct bench_series){.impl = "tokio-current-thread"};
	}
	bench_init(&b, "spawn", "Spawn + run + join of tasks that return at once, one worker.", 5,
	           3, argc, argv);
	long n = b.quick ? 100000 : 1000000;
	const char *go = bench_peer_path(&b, "spawn", peer, sizeof(peer));
	const char *tokio = bench_peer_path(&b, "tokio-spawn", tpeer, sizeof(tpeer));

	bench_note(&b,
	           "spawn: %ld tasks per rep, %d reps, rotor workers=1, go GOMAXPROCS=1, tokio "
	           "current-thread runtime",
	           n, b.reps);
	if (!go)
		bench_note(&b, "  go peer not found in %s (run.sh builds it): baseline skipped",
		           b.peer_dir);
	if (!tokio)
		bench_note(
		    &b,
		    "  tokio peer not found in %s (run.sh builds it with cargo): baseline skipped",
		    b.peer_dir);
	for (int rep = 0; rep < b.reps; rep++) {
		struct spawn_run r;
		int rc = run_rotor(n, 1, &r);
		if (rc < 0) {
			bench_note(&b, "  rotor one-at-a-time failed: %s", strerror(-rc));
		} else {
			bench_add(&one, r.wall_ns_op);
			bench_add(&one_cpu, r.cpu_ns_op);
			bench_add_instr(&one, r.instr_op);
			bench_add_instr(&one_cpu, r.instr_op);
		}
		rc = run_rotor(n, BATCH, &r);
		if (rc < 0) {
			bench_note(&b, "  rotor batch failed: %s", strerror(-rc));
		} else {
			bench_add(&bat, r.wall_ns_op);
			bench_add(&bat_cpu, r.cpu_ns_op);
			bench_add_instr(&bat, r.instr_op);
			bench_add_instr(&bat_cpu, r.instr_op);
		}
		if (go) {
			snprintf(cmd, sizeof(cmd), "GOMAXPROCS=1 '%s' -n %ld -batch %d", go, n,
			         BATCH);
			run_peer(&b, cmd, g);
		}
		if (tokio) {
			snprintf(cmd, sizeof(cmd), "'%s' -n %ld -batch %d", tokio, n, BATCH);
			run_peer(&b, cmd, t);
		}
	}
	bench_report(&b, "spawn_join", "ns/op", &one, &g[0]);
	bench_report(&b, "spawn_join_cpu", "ns/op", &one_cpu, &g[1]);
	bench_report(&b, "spawn_batch100", "ns/op", &bat, &g[2]);
	bench_report(&b, "spawn_batch100_cpu", "ns/op", &bat_cpu, &g[3]);
	if (tokio) {
		bench_report(&b, "spawn_join", "ns/op", &one, &t[0]);
		bench_report(&b, "spawn_join_cpu", "ns/op", &one_cpu, &t[1]);
		bench_report(&b, "spawn_batch100", "ns/op", &bat, &t[2]);
		bench_report(&b, "spawn_batch100_cpu", "ns/op", &bat_cpu, &t[3]);
	}
	return one.n == b.reps && bat.n == b.reps ? 0 : 1;
}
