/*
 * Shared plumbing of the benchmark programs: option parsing, clocks, repetition series,
 * the human table and the --json lines, and running a peer program as a subprocess.
 * Every program alternates rotor and baseline repetitions so that noise on this shared
 * VM hits both sides alike, and reports medians (human output: min, max and every rep).
 * With --instructions, a measured window also counts retired instructions (perf_event_open,
 * the counter `perf stat -e instructions` reads), reported per operation beside the time.
 */
#ifndef ROTOR_BENCH_H
#define ROTOR_BENCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_REPS 32

struct bench_ctx {
	const char *bench; /* "spawn", "post", ... */
	int json;          /* --json: one JSON object per line on stdout, nothing else there */
	int quick;         /* --quick: a short run */
	int reps;          /* --reps N, else the program's default */
	int instructions;  /* --instructions and the counter could be opened */
	char peer_dir[4096];
	char python[4096];
	char last_metric[64];
};

/* One measured quantity of one implementation, one value per repetition, and (where counted)
 * the instructions per operation of each repetition. */
struct bench_series {
	const char *impl;
	int n;
	double v[BENCH_MAX_REPS];
	int ni;
	double instr[BENCH_MAX_REPS];
};

/* Parse --json, --quick, --reps N, --peers DIR, --python PATH, --instructions, --help.
 * `usage` describes what the program measures (printed by --help). default_reps/quick_reps:
 * repetitions. */
void bench_init(struct bench_ctx *b, const char *bench, const char *usage, int default_reps,
                int quick_reps, int argc, char **argv);

/* CLOCK_MONOTONIC and CLOCK_PROCESS_CPUTIME_ID in nanoseconds. */
int64_t bench_now(void);
int64_t bench_cpu(void);

void bench_add(struct bench_series *s, double v);

/*
 * Instructions retired so far by every thread of this process and by the processes it forked
 * (user and kernel: a system call's work is part of the cost), or -1 when not counted (no
 * --instructions, or no hardware counter: the note printed at start-up says which). The
 * counter is inherited by threads and children made after bench_init, as perf stat's is.
 * BENCH_COUNTER=task-clock in the environment counts CPU nanoseconds instead, to test the
 * plumbing on machines without a PMU.
 */
int64_t bench_instructions(void);
/* (i1 - i0) / ops, or -1 if either reading is -1. */
double bench_instr_per_op(int64_t i0, int64_t i1, double ops);
/* Record one repetition's instructions per operation (ignored when negative). */
void bench_add_instr(struct bench_series *s, double per_op);
double bench_median(const struct bench_series *s);

/* A line of context: printed in the human output, sent to stderr with --json. */
void bench_note(const struct bench_ctx *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Report one metric: rotor's series against one baseline's (base->n == 0: the baseline
 * could not be measured; JSON then carries null values; rotor->n == 0: no JSON line). The
 * JSON line carries the medians, min, max and repetition count of both sides, and their
 * median instructions per operation where counted ("instr", "baseline_instr"). The human
 * table prints each series with median, min, max and every repetition, then the ratio of
 * the medians; with --json it goes to stderr.
 */
void bench_report(struct bench_ctx *b, const char *metric, const char *unit,
                  const struct bench_series *rotor, const struct bench_series *base);

/* Path of a peer executable built by run.sh (peer_dir/name), or NULL if there is none. */
const char *bench_peer_path(const struct bench_ctx *b, const char *name, char *buf, size_t len);

/* Run cmd through the shell and capture its stdout into out (NUL-terminated).
 * Returns 0 if it exited 0, else -1 (with a note naming the command). */
int bench_run_peer(const struct bench_ctx *b, const char *cmd, char *out, size_t len);

/* Find "key": number in a peer's one-line JSON output. Returns 0 or -1. */
int bench_peer_value(const char *out, const char *key, double *v);

/* Resident memory of this process from /proc/self/status ("VmRSS", "VmHWM"), in KiB. */
long bench_status_kib(const char *field);

#endif /* ROTOR_BENCH_H */
