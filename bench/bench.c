/*
 * Shared plumbing of the benchmark programs (see bench.h). Nothing here touches rotor:
 * the baselines and the peer runners use it too.
 */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void print_usage(const char *bench, const char *usage)
{
	printf("usage: bench_%s [--json] [--quick] [--reps N] [--peers DIR] [--python PATH]\n"
	       "%s\n"
	       "  --json    one JSON object per metric and baseline on stdout\n"
	       "  --quick   a short run (a few seconds)\n"
	       "  --reps N  repetitions of each side (alternated), max %d\n"
	       "  --peers   directory of the peer programs (default: <this program's dir>/peers)\n"
	       "  --python  python interpreter for the asyncio peer\n",
	       bench, usage, BENCH_MAX_REPS);
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
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			b->json = 1;
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

double bench_median(const struct bench_series *s)
{
	double sorted[BENCH_MAX_REPS];

	if (s->n == 0)
		return 0;
	memcpy(sorted, s->v, sizeof(double) * (size_t)s->n);
	qsort(sorted, (size_t)s->n, sizeof(double), compare_doubles);
	if (s->n % 2)
		return sorted[s->n / 2];
	return (sorted[s->n / 2 - 1] + sorted[s->n / 2]) / 2;
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
	fputc('\n', f);
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
		printf("{\"bench\":\"%s\",\"metric\":\"%s\",\"unit\":\"%s\",\"value\":%.3f,"
		       "\"baseline\":\"%s\",",
		       b->bench, metric, unit, rv, base->impl);
		if (have_ratio)
			printf("\"baseline_value\":%.3f,\"ratio\":%.4f}\n", bv, rv / bv);
		else
			printf("\"baseline_value\":null,\"ratio\":null}\n");
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
