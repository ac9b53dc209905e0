/*
 * bench_fileread: 4 KiB random reads from a file held in the page cache. rotor: one worker,
 * D coroutines each looping on rotor_read at random 4 KiB-aligned offsets (queue depth D);
 * fio's io_uring engine at iodepth D on the same file is the baseline. Both are pinned to
 * the same CPU. Reports reads per second and process CPU time per read at each depth.
 * The data file is created once (real data, not sparse) and kept for later runs.
 */
#include "bench.h"

#include <rotor.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK      4096
#define MAX_DEPTHS 8
#define MAX_DEPTH  4096
#define CHUNK      (1 << 20)

#define DEFAULT_FILE "/var/tmp/rotor-bench-fileread.dat"
#define QUICK_FILE   "/var/tmp/rotor-bench-fileread-quick.dat"

/* The options bench_init does not know; taken out of argv before it sees them. */
struct fr_opts {
	const char *file;
	long size_mb; /* 0: default */
	double seconds;
	int depths[MAX_DEPTHS];
	int ndepths;
	int cpu;              /* -1: CPU 1 when allowed, else the last allowed one */
	const char *fio_args; /* appended to fio's command line, or NULL */
};

/* One measured rotor run: D readers until `end`, sharing one fd. */
struct fr_run {
	int fd;
	uint64_t nblocks;
	int depth;
	int64_t window; /* measured nanoseconds */
	int64_t end;    /* when the readers stop */
	long reads;
	double iops;
	double cpu_us_read;
	double instr_read; /* -1: not counted */
	int err;
};

struct fr_reader {
	struct fr_run *run;
	uint64_t rng;
	char *buf;
	long reads;
	int err;
};

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* ---- the data file --------------------------------------------------------------------- */

/* Write `size` bytes of pseudo-random data to a temporary name, sync, rename over path. */
static int create_file(const char *path, off_t size)
{
	char tmp[4200];
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	uint64_t *chunk = malloc(CHUNK);
	int rc = 0;

	if (!chunk)
		return -ENOMEM;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(chunk);
		return -errno;
	}
	for (off_t done = 0; done < size && rc == 0;) {
		for (size_t i = 0; i < CHUNK / sizeof(uint64_t); i++)
			chunk[i] = xorshift64(&rng);
		size_t want = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
		ssize_t n = pwrite(fd, chunk, want, done);
		if (n <= 0)
			rc = n < 0 ? -errno : -EIO;
		else
			done += n;
	}
	/* Written back now, so that no writeback runs during the measurements. */
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	free(chunk);
	return rc;
}

/* Percentage of the file's pages in the page cache (mincore), or -1. */
static double resident_pct(int fd, off_t size)
{
	size_t pages = (size_t)((size + BLOCK - 1) / BLOCK);
	void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	unsigned char *vec = malloc(pages);
	double pct = -1;

	if (map != MAP_FAILED && vec && mincore(map, (size_t)size, vec) == 0) {
		size_t in = 0;
		for (size_t i = 0; i < pages; i++)
			in += vec[i] & 1;
		pct = 100.0 * (double)in / (double)pages;
	}
	free(vec);
	if (map != MAP_FAILED)
		munmap(map, (size_t)size);
	return pct;
}

/* Read the whole file once so that every page is cached. Returns 0 or -errno. */
static int warm_file(int fd, off_t size)
{
	char *buf = malloc(CHUNK);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	posix_fadvise(fd, 0, size, POSIX_FADV_WILLNEED);
	for (off_t off = 0; off < size && rc == 0;) {
		ssize_t n = pread(fd, buf, CHUNK, off);
		if (n <= 0)
			rc = n < 0 ? -errno : -EIO;
		else
			off += n;
	}
	free(buf);
	return rc;
}

/* Open path for reading, creating it first when missing or of another size. */
static int prepare_file(struct bench_ctx *b, const char *path, off_t size)
{
	struct stat st;
	int64_t t0 = bench_now();

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == size &&
	    st.st_blocks * 512 >= size) {
		bench_note(b, "data file %s (%lld MiB): kept from an earlier run", path,
		           (long long)(size >> 20));
	} else {
		int rc = create_file(path, size);
		if (rc < 0) {
			bench_note(b, "cannot create %s: %s", path, strerror(-rc));
			return rc;
		}
		bench_note(b,
		           "data file %s (%lld MiB): created in %.1f s (not sparse); kept for "
		           "later runs (delete it to reclaim the space)",
		           path, (long long)(size >> 20), (double)(bench_now() - t0) / 1e9);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		bench_note(b, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	double before = resident_pct(fd, size);
	t0 = bench_now();
	int rc = warm_file(fd, size);
	if (rc < 0) {
		bench_note(b, "cannot read %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	bench_note(b,
	           "page cache: %.1f%% of the file resident, %.1f%% after reading it all once "
	           "(%.2f s)",
	           before, resident_pct(fd, size), (double)(bench_now() - t0) / 1e9);
	return fd;
}

/* ---- rotor side ------------------------------------------------------------------------ */

static void *reader(void *arg)
{
	struct fr_reader *r = arg;
	struct fr_run *run = r->run;

	for (;;) {
		/* The clock is read once per 16 reads: a vDSO call is not free on a VM. */
		for (int i = 0; i < 16; i++) {
			uint64_t blk = xorshift64(&r->rng) % run->nblocks;
			ssize_t n = rotor_read(run->fd, r->buf, BLOCK, (int64_t)(blk * BLOCK),
			                       ROTOR_FOREVER);
			if (n != BLOCK) {
				r->err = n < 0 ? (int)n : -EIO;
				return NULL;
			}
			r->reads++;
		}
		if (rotor_now() >= run->end)
			return NULL;
	}
}

/* Run run->depth readers until `end`; the total of their reads, or -errno. */
static long read_until(struct fr_run *run, struct fr_reader *rd, struct rotor_task **t, int64_t end)
{
	long total = 0;
	int err = 0;

	run->end = end;
	for (int i = 0; i < run->depth; i++) {
		rd[i].reads = 0;
		rd[i].err = 0;
		int rc = rotor_spawn(reader, &rd[i], &t[i]);
		if (rc < 0) {
			for (int j = 0; j < i; j++)
				rotor_join(t[j], NULL);
			return rc;
		}
	}
	for (int i = 0; i < run->depth; i++) {
		rotor_join(t[i], NULL);
		total += rd[i].reads;
		if (rd[i].err < 0 && err == 0)
			err = rd[i].err;
	}
	return err < 0 ? err : total;
}

static void *measure_rotor(void *arg)
{
	struct fr_run *run = arg;
	struct fr_reader *rd = calloc((size_t)run->depth, sizeof(*rd));
	struct rotor_task **t = calloc((size_t)run->depth, sizeof(*t));
	char *bufs = aligned_alloc(BLOCK, (size_t)run->depth * BLOCK);

	if (!rd || !t || !bufs) {
		run->err = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < run->depth; i++) {
		rd[i].run = run;
		rd[i].rng = 0x2545f4914f6cdd1dull * (uint64_t)(i + 1) ^ (uint64_t)bench_now();
		if (!rd[i].rng)
			rd[i].rng = 1;
		rd[i].buf = bufs + (size_t)i * BLOCK;
	}
	/* Untimed: the stacks, the ring and the cache lines of the loop warm up. */
	long n = read_until(run, rd, t, bench_now() + 100000000);
	if (n < 0) {
		run->err = (int)n;
		goto out;
	}
	int64_t t0 = bench_now(), c0 = bench_cpu(), i0 = bench_instructions();
	n = read_until(run, rd, t, t0 + run->window);
	int64_t i1 = bench_instructions(), t1 = bench_now(), c1 = bench_cpu();
	if (n <= 0) {
		run->err = n < 0 ? (int)n : -EIO;
		goto out;
	}
	run->reads = n;
	run->iops = (double)n * 1e9 / (double)(t1 - t0);
	run->cpu_us_read = (double)(c1 - c0) / 1000.0 / (double)n;
	run->instr_read = bench_instr_per_op(i0, i1, (double)n);
out:
	free(bufs);
	free(t);
	free(rd);
	return NULL;
}

static int run_rotor(int fd, off_t size, int depth, double seconds, struct fr_run *run)
{
	struct rotor_config cfg = {.workers = 1};

	memset(run, 0, sizeof(*run));
	run->fd = fd;
	run->nblocks = (uint64_t)size / BLOCK;
	run->depth = depth;
	run->window = (int64_t)(seconds * 1e9);
	int rc = rotor_run(&cfg, measure_rotor, run, NULL);
	return rc < 0 ? rc : run->err;
}

/* ---- fio ------------------------------------------------------------------------------- */

/* The number after "key" : in fio's JSON, searching from `from`. Returns 0 or -1. */
static int json_number(const char *from, const char *key, double *v)
{
	char pattern[128];
	size_t plen;

	snprintf(pattern, sizeof(pattern), "\"%s\"", key);
	plen = strlen(pattern);
	for (const char *at = strstr(from, pattern); at; at = strstr(at + 1, pattern)) {
		const char *p = at + plen;
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p != ':')
			continue;
		p++;
		char *end;
		*v = strtod(p, &end);
		if (end != p)
			return 0;
	}
	return -1;
}

/* The "read" : { object of fio's first job, or NULL. */
static const char *json_read_section(const char *out)
{
	const char *jobs = strstr(out, "\"jobs\"");

	for (const char *at = jobs ? strstr(jobs, "\"read\"") : NULL; at;
	     at = strstr(at + 1, "\"read\"")) {
		const char *p = at + 6;
		while (*p == ' ' || *p == ':' || *p == '\n')
			p++;
		if (*p == '{')
			return p;
	}
	return NULL;
}

static int find_fio(char *path, size_t len)
{
	const char *env = getenv("PATH");
	char dirs[4096];

	snprintf(dirs, sizeof(dirs), "%s", env ? env : "/usr/bin:/bin");
	for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, len, "%s/fio", d);
		if (access(path, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* One fio run; iops and CPU microseconds per read (fio's job thread, usr + sys). */
static int run_fio(struct bench_ctx *b, const char *fio, const struct fr_opts *o, int depth,
                   double *iops, double *cpu_us)
{
	static char out[1 << 20];
	char cmd[8192];
	double usr, sys, runtime_ms, ios;

	snprintf(cmd, sizeof(cmd),
	         "'%s' --name=r --filename='%s' --ioengine=io_uring --rw=randread --bs=4k "
	         "--iodepth=%d --direct=0 --invalidate=0 --norandommap --randrepeat=0 "
	         "--time_based --runtime=%ldms --numjobs=1 --thread --output-format=json %s",
	         fio, o->file, depth, (long)(o->seconds * 1000 + 0.5),
	         o->fio_args ? o->fio_args : "");
	if (bench_run_peer(b, cmd, out, sizeof(out)) < 0)
		return -1;
	const char *rd = json_read_section(out);
	const char *job = strstr(out, "\"jobs\"");
	if (!rd || !job || json_number(rd, "iops", iops) < 0 ||
	    json_number(rd, "total_ios", &ios) < 0 || json_number(job, "usr_cpu", &usr) < 0 ||
	    json_number(job, "sys_cpu", &sys) < 0 ||
	    json_number(job, "job_runtime", &runtime_ms) < 0 || ios <= 0) {
		bench_note(b, "  cannot parse fio's output: %.200s", out);
		return -1;
	}
	*cpu_us = (usr + sys) / 100.0 * runtime_ms * 1000.0 / ios;
	return 0;
}

/* ---- options and main ------------------------------------------------------------------ */

static int parse_depths(const char *s, struct fr_opts *o)
{
	o->ndepths = 0;
	while (*s) {
		char *end;
		long d = strtol(s, &end, 10);
		if (end == s || d < 1 || d > MAX_DEPTH || o->ndepths == MAX_DEPTHS)
			return -1;
		o->depths[o->ndepths++] = (int)d;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return o->ndepths ? 0 : -1;
}

/* Take this program's own options out of argv; returns the new argc. */
static int take_options(int argc, char **argv, struct fr_opts *o)
{
	int out = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;
		if (strcmp(a, "--file") == 0 && v) {
			o->file = v;
		} else if (strcmp(a, "--size-mb") == 0 && v) {
			o->size_mb = atol(v);
			bad = o->size_mb < 1;
		} else if (strcmp(a, "--seconds") == 0 && v) {
			o->seconds = atof(v);
			bad = !(o->seconds >= 0.1);
		} else if (strcmp(a, "--depths") == 0 && v) {
			bad = parse_depths(v, o) < 0;
		} else if (strcmp(a, "--fio-args") == 0 && v) {
			o->fio_args = v;
		} else if (strcmp(a, "--cpu") == 0 && v) {
			o->cpu = atoi(v);
			bad = o->cpu < 0 || o->cpu >= CPU_SETSIZE;
		} else {
			argv[out++] = argv[i];
			continue;
		}
		if (bad) {
			fprintf(stderr, "bench_fileread: bad value for %s: %s\n", a, v);
			exit(2);
		}
		i++;
	}
	argv[out] = NULL;
	return out;
}

/* Pin this process (rotor's worker, and fio, which inherits the mask) to one CPU. */
static int pin_cpu(int want)
{
	cpu_set_t set;
	int cpu = -1;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -1;
	if (want >= 0) {
		cpu = CPU_ISSET(want, &set) ? want : -1;
	} else if (CPU_ISSET(1, &set)) {
		cpu = 1;
	} else {
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpu = i;
	}
	if (cpu < 0)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -1 : cpu;
}

static const char usage[] =
    "4 KiB random reads from a file in the page cache: rotor (one worker, D coroutines each\n"
    "looping on rotor_read) against fio's io_uring engine at iodepth D, both pinned to one "
    "CPU.\n"
    "  --depths LIST  queue depths (default 1,32,128; --quick: 1,32)\n"
    "  --seconds S    measured seconds per run and side (default 3; --quick: 0.5)\n"
    "  --size-mb N    size of the data file (default 1024; --quick: 64)\n"
    "  --file PATH    the data file, created once and kept (default " DEFAULT_FILE ";\n"
    "                 --quick: " QUICK_FILE ")\n"
    "  --cpu N        the CPU both sides run on (default 1, else the last allowed one)\n"
    "  --fio-args S   appended to fio's command line (e.g. \"--iodepth_batch_submit=32\")";

int main(int argc, char **argv)
{
	struct bench_ctx b;
	struct fr_opts o = {.cpu = -1};
	struct bench_series iops[MAX_DEPTHS], cpu[MAX_DEPTHS], fiops[MAX_DEPTHS], fcpu[MAX_DEPTHS];
	char fio[4096], vers[128] = "";
	int ok = 1;

	argc = take_options(argc, argv, &o);
	bench_init(&b, "fileread", usage, 5, 1, argc, argv);
	if (!o.ndepths) {
		o.depths[o.ndepths++] = 1;
		o.depths[o.ndepths++] = 32;
		if (!b.quick)
			o.depths[o.ndepths++] = 128;
	}
	if (o.seconds == 0)
		o.seconds = b.quick ? 0.5 : 3;
	if (!o.size_mb)
		o.size_mb = b.quick ? 64 : 1024;
	if (!o.file)
		o.file = b.quick ? QUICK_FILE : DEFAULT_FILE;
	off_t size = (off_t)o.size_mb << 20;
	for (int d = 0; d < o.ndepths; d++) {
		iops[d] = (struct bench_series){.impl = "rotor"};
		cpu[d] = (struct bench_series){.impl = "rotor"};
		fiops[d] = (struct bench_series){.impl = "fio-io_uring"};
		fcpu[d] = (struct bench_series){.impl = "fio-io_uring"};
	}

	int have_fio = find_fio(fio, sizeof(fio)) == 0;
	if (have_fio) {
		char cmd[4200];
		snprintf(cmd, sizeof(cmd), "'%s' --version", fio);
		if (bench_run_peer(&b, cmd, vers, sizeof(vers)) == 0)
			vers[strcspn(vers, "\n")] = '\0';
	}
	struct stat st;
	int fresh = stat(o.file, &st) != 0 || st.st_size != size;
	/* Per run: the measured window, plus 0.1 s of warm-up (rotor) or about 0.35 s of
	 * start-up and exit (fio, measured here). */
	double est = o.ndepths * b.reps * (o.seconds + 0.12 + (have_fio ? o.seconds + 0.35 : 0)) +
	             (double)o.size_mb / (fresh ? 500.0 : 5000.0);
	bench_note(&b,
	           "fileread: estimated duration about %.0f s (%d depths x %d reps x %s%.1f s%s)",
	           est + 0.5, o.ndepths, b.reps, have_fio ? "2 sides x " : "", o.seconds,
	           fresh ? ", plus writing the data file once" : "");

	int pinned = pin_cpu(o.cpu);
	if (pinned < 0)
		bench_note(&b, "cannot pin to CPU %d: both sides left to the scheduler", o.cpu);
	else
		bench_note(&b,
		           "pinned: this process (rotor's one worker) and fio both run on CPU %d",
		           pinned);
	int fd = prepare_file(&b, o.file, size);
	if (fd < 0)
		return 1;
	bench_note(&b,
	           "rotor: 1 worker, D coroutines, rotor_read(4096, random aligned offset, "
	           "ROTOR_FOREVER), plain open(2), buffered; %.1f s per run, %d reps",
	           o.seconds, b.reps);
	if (have_fio)
		bench_note(&b,
		           "fio (%s): --ioengine=io_uring --rw=randread --bs=4k --iodepth=D "
		           "--direct=0 --invalidate=0 --norandommap --randrepeat=0 --thread "
		           "--numjobs=1; fixedbufs, registerfiles, sqthread_poll, hipri off "
		           "(fio's defaults); CPU is fio's job thread (usr_cpu + sys_cpu)%s%s",
		           vers[0] ? vers : "version unknown", o.fio_args ? "; added: " : "",
		           o.fio_args ? o.fio_args : "");
	else
		bench_note(&b, "fio not installed (apt-get install fio): its baseline is skipped");

	for (int rep = 0; rep < b.reps; rep++) {
		for (int d = 0; d < o.ndepths; d++) {
			struct fr_run run;
			int rc = run_rotor(fd, size, o.depths[d], o.seconds, &run);
			if (rc < 0) {
				bench_note(&b, "  rotor qd%d failed: %s", o.depths[d],
				           strerror(-rc));
				ok = 0;
			} else {
				bench_add(&iops[d], run.iops);
				bench_add(&cpu[d], run.cpu_us_read);
				bench_add_instr(&iops[d], run.instr_read);
				bench_add_instr(&cpu[d], run.instr_read);
			}
			double fi, fc;
			if (have_fio && run_fio(&b, fio, &o, o.depths[d], &fi, &fc) == 0) {
				bench_add(&fiops[d], fi);
				bench_add(&fcpu[d], fc);
			}
		}
	}

	double after = resident_pct(fd, size);
	if (after >= 0 && after < 99.0)
		bench_note(&b,
		           "warning: only %.1f%% of the file is still in the page cache: some "
		           "reads went to the disk",
		           after);
	close(fd);
	for (int d = 0; d < o.ndepths; d++) {
		char metric[64];
		snprintf(metric, sizeof(metric), "randread4k_qd%d_iops", o.depths[d]);
		bench_report(&b, metric, "IOPS", &iops[d], &fiops[d]);
		snprintf(metric, sizeof(metric), "randread4k_qd%d_cpu_per_read", o.depths[d]);
		bench_report(&b, metric, "us", &cpu[d], &fcpu[d]);
		ok = ok && iops[d].n == b.reps;
	}
	return ok ? 0 : 1;
}
