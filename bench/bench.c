/*
 * Shared plumbing of the benchmark programs (see bench.h). Nothing here touches rotor:
 * the baselines and the peer runners use it too.
 */
#include "bench.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The inherited instruction counter (--instructions), or -1. */
static int counter_fd = -1;

static void print_usage(const char *bench, const char *usage)
{
	printf("usage: bench_%s [--json] [--quick] [--reps N] [--peers DIR] [--python PATH]\n"
	       "       [--instructions]\n"
	       "%s\n"
	       "  --json    one JSON object per metric and baseline on stdout\n"
	       "  --quick   a short run (a few seconds)\n"
	       "  --reps N  repetitions of each side (alternated), max %d\n"
	       "  --peers   directory of the peer programs (default: <this program's dir>/peers)\n"
	       "  --python  python interpreter for the asyncio peer\n"
	       "  --instructions  count retired instructions per operation where the machine\n"
	       "            has a hardware counter (perf_event_open)\n",
	       bench, usage, BENCH_MAX_REPS);
}

/* Open the process-wide counter before any thread or child exists, so that all inherit it.
 * Returns 0, or -errno with *scope unset. */
static int open_counter(const char **scope)
{
	struct perf_event_attr a;
	const char *env = getenv("BENCH_COUNTER");

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	if (env && strcmp(env, "task-clock") == 0) {
		a.type = PERF_TYPE_SOFTWARE;
		a.config = PERF_COUNT_SW_TASK_CLOCK;
	} else {
		a.type = PERF_TYPE_HARDWARE;
		a.config = PERF_COUNT_HW_INSTRUCTIONS;
	}
	a.inherit = 1;
	a.exclude_hv = 1;
	a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	*scope = "user+kernel";
	long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		/* perf_event_paranoid 2 (the default) lets a user count only user space. */
		a.exclude_kernel = 1;
		*scope = "user only (perf_event_paranoid)";
		fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	counter_fd = (int)fd;
	return 0;
}

int64_t bench_instructions(void)
{
	uint64_t v[3]; /* value, time enabled, time running */

	if (counter_fd < 0 || read(counter_fd, v, sizeof(v)) != (ssize_t)sizeof(v) || v[2] == 0)
		return -1;
	/* Scaled as perf stat scales a counter that was multiplexed with others. */
	if (v[2] < v[1])
		return (int64_t)((double)v[0] * (double)v[1] / (double)v[2]);
	return (int64_t)v[0];
}

double bench_instr_per_op(int64_t i0, int64_t i1, double ops)
{
	if (i0 < 0 || i1 < 0 || ops <= 0)
		return -1;
	return (double)(i1 - i0) / ops;
}

void bench_add_instr(struct bench_series *s, double per_op)
{
	if (per_op >= 0 && s->ni < BENCH_MAX_REPS)
		s->instr[s->ni++] = per_op;
}

static void set_default_peer_dir(struct bench_ctx *b)
{
	static const char suffix[] = "/peers";
	ssize_t n = readlink("/proc/self/exe", b->peer_dir, sizeof(b->peer_dir) - sizeof(suffix));

	if (n <= 0) {
		snprintf(b->peer_dir, sizeof(b->peer_dir), "peers");
		return;
	}
	b->peer_dir[n] = '\0';
	char *slash = strrchr(b->peer_dir, '/');
	if (slash)
		*slash = '\0';
	strcat(b->peer_dir, suffix);
}

void bench_init(struct bench_ctx *b, const char *bench, const char *usage, int default_reps,
                int quick_reps, int argc, char **argv)
{
	memset(b, 0, sizeof(*b));
	b->bench = bench;
	set_default_peer_dir(b);
	snprintf(b->python, sizeof(b->python), "%s",
	         access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3");
	int instructions = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			b->json = 1;
		} else if (strcmp(a, "--instructions") == 0) {
			instructions = 1;
		} else if (strcmp(a, "--quick") == 0) {
			b->quick = 1;
		} else if (strcmp(a, "--reps") == 0 && i + 1 < argc) {
			b->reps = atoi(argv[++i]);
		} else if (strcmp(a, "--peers") == 0 && i + 1 < argc) {
			snprintf(b->peer_dir, sizeof(b->peer_dir), "%s", argv[++i]);
		} else if (strcmp(a, "--python") == 0 && i + 1 < argc) {
			snprintf(b->python, sizeof(b->python), "%s", argv[++i]);
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			print_usage(bench, usage);
			exit(0);
		} else {
			fprintf(stderr, "bench_%s: unknown option %s\n", bench, a);
			print_usage(bench, usage);
			exit(2);
		}
	}
	if (b->reps <= 0)
		b->reps = b->quick ? quick_reps : default_reps;
	if (b->reps > BENCH_MAX_REPS)
		b->reps = BENCH_MAX_REPS;
	/* Keep the human table in order with the peers' output when piped. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (instructions) {
		const char *scope = NULL;
		int rc = open_counter(&scope);
		b->instructions = rc == 0;
		if (rc == 0)
			bench_note(b, "instruction counts: %s%s, all threads", scope,
			           getenv("BENCH_COUNTER") ? " (BENCH_COUNTER: a software clock)"
			                                   : "");
		else
			bench_note(b,
			           "instruction counts: not supported on this machine "
			           "(perf_event_open: %s)",
			           strerror(-rc));
	}
}

int64_t bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_add(struct bench_series *s, double v)
{
	if (s->n < BENCH_MAX_REPS)
		s->v[s->n++] = v;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median_of(const double *v, int n)
{
	double sorted[BENCH_MAX_REPS];

	if (n == 0)
		return 0;
	memcpy(sorted, v, sizeof(double) * (size_t)n);
	qsort(sorted, (size_t)n, sizeof(double), compare_doubles);
	if (n % 2)
		return sorted[n / 2];
	return (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

double bench_median(const struct bench_series *s)
{
	return median_of(s->v, s->n);
}

static double series_min(const struct bench_series *s)
{
	double m = s->v[0];
	for (int i = 1; i < s->n; i++)
		m = s->v[i] < m ? s->v[i] : m;
	return m;
}

static double series_max(const struct bench_series *s)
{
	double m = s->v[0];
	for (int i = 1; i < s->n; i++)
		m = s->v[i] > m ? s->v[i] : m;
	return m;
}

void bench_note(const struct bench_ctx *b, const char *fmt, ...)
{
	va_list ap;
	FILE *f = b->json ? stderr : stdout;

	va_start(ap, fmt);
	if (b->json)
		fprintf(f, "bench_%s: ", b->bench);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	va_end(ap);
}

static void print_series(FILE *f, const struct bench_series *s)
{
	if (s->n == 0) {
		fprintf(f, "    %-30s (not measured)\n", s->impl);
		return;
	}
	fprintf(f, "    %-30s median %12.2f  min %12.2f  max %12.2f  reps:", s->impl,
	        bench_median(s), series_min(s), series_max(s));
	for (int i = 0; i < s->n; i++)
		fprintf(f, " %.2f", s->v[i]);
	if (s->ni > 0)
		fprintf(f, "  instructions/op: median %.1f", median_of(s->instr, s->ni));
	fputc('\n', f);
}

/* "min":x,"max":y,"reps":n[,"instr":i] of one side, keys prefixed by `pre`. */
static void json_spread(const char *pre, const struct bench_series *s)
{
	if (s->n == 0) {
		printf("\"%smin\":null,\"%smax\":null,\"%sreps\":0,", pre, pre, pre);
		return;
	}
	printf("\"%smin\":%.3f,\"%smax\":%.3f,\"%sreps\":%d,", pre, series_min(s), pre,
	       series_max(s), pre, s->n);
	if (s->ni > 0)
		printf("\"%sinstr\":%.1f,", pre, median_of(s->instr, s->ni));
}

void bench_report(struct bench_ctx *b, const char *metric, const char *unit,
                  const struct bench_series *rotor, const struct bench_series *base)
{
	double rv = bench_median(rotor);
	double bv = bench_median(base);
	int have_ratio = rotor->n > 0 && base->n > 0 && bv != 0;
	/* With --json the table still goes out, to stderr: run.sh keeps it in the log. */
	FILE *f = b->json ? stderr : stdout;

	if (b->json && rotor->n > 0) {
		printf("{\"bench\":\"%s\",\"metric\":\"%s\",\"unit\":\"%s\",\"value\":%.3f,",
		       b->bench, metric, unit, rv);
		json_spread("", rotor);
		printf("\"baseline\":\"%s\",", base->impl);
		if (base->n > 0)
			printf("\"baseline_value\":%.3f,", bv);
		else
			printf("\"baseline_value\":null,");
		json_spread("baseline_", base);
		if (have_ratio)
			printf("\"ratio\":%.4f}\n", rv / bv);
		else
			printf("\"ratio\":null}\n");
	}
	if (strcmp(b->last_metric, metric) != 0) {
		fprintf(f, "  %s [%s]\n", metric, unit);
		print_series(f, rotor);
		snprintf(b->last_metric, sizeof(b->last_metric), "%s", metric);
	}
	print_series(f, base);
	if (have_ratio)
		fprintf(f, "    %-30s %.3f\n", "ratio rotor/baseline", rv / bv);
}

const char *bench_peer_path(const struct bench_ctx *b, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", b->peer_dir, name);
	if (access(buf, X_OK) != 0)
		return NULL;
	return buf;
}

int bench_run_peer(const struct bench_ctx *b, const char *cmd, char *out, size_t len)
{
	FILE *p;
	size_t used = 0;

	fflush(stdout);
	fflush(stderr);
	p = popen(cmd, "r");
	if (!p) {
		bench_note(b, "  cannot run %s: %s", cmd, strerror(errno));
		return -1;
	}
	while (used + 1 < len) {
		size_t got = fread(out + used, 1, len - 1 - used, p);
		if (got == 0)
			break;
		used += got;
	}
	out[used] = '\0';
	/* Drain anything past our buffer so that the peer is not killed by SIGPIPE. */
	char sink[256];
	while (fread(sink, 1, sizeof(sink), p) > 0)
		;
	int status = pclose(p);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		bench_note(b, "  peer failed (status 0x%x): %s", status, cmd);
		return -1;
	}
	return 0;
}

int bench_peer_value(const char *out, const char *key, double *v)
{
	char pattern[128];
	const char *at;
	char *end;

	snprintf(pattern, sizeof(pattern), "\"%s\":", key);
	at = strstr(out, pattern);
	if (!at)
		return -1;
	at += strlen(pattern);
	*v = strtod(at, &end);
	return end == at ? -1 : 0;
}

long bench_status_kib(const char *field)
{
	char line[256];
	size_t flen = strlen(field);
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			kib = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}
