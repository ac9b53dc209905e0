/*
 * bench_resolve: name resolution. rotor: N lookups at once, one task each, on one worker
 * (rotor_resolve); baseline: the same N lookups by getaddrinfo on a pool of T threads
 * (glibc's files-then-DNS, as nsswitch.conf says). Four jobs: /etc/hosts names from the
 * worker's cache and without it (ROTOR_RESOLVE_NO_CACHE), DNS names from a local server
 * without the cache (every lookup a query) and from the cache. The program runs in private
 * mount and network namespaces (root): its own /etc/hosts and /etc/resolv.conf, and the DNS
 * server (tests/dnsd.h) in a child process on 127.0.0.53:53, whose CPU neither side is
 * charged. Reports lookups per second and process CPU per lookup.
 */
#include "bench.h"

#include <rotor.h>

#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "dnsd.h"

#define HOSTS_NAMES 64   /* names in the bench's /etc/hosts */
#define DNS_CACHED  1000 /* DNS names looked up again (the cache keeps 1024) */
#define THREADS     16   /* the getaddrinfo pool */

enum kind { HOSTS, DNS };

/* One job: n lookups of names of kind, the i-th named by number base + i % modulo. */
struct job {
	enum kind kind;
	int n, base, modulo;
	bool cache;
	atomic_int next;   /* the pool's next lookup */
	atomic_int errors; /* lookups that failed */
	double ns, cpu_ns; /* the measurement */
};

static void name_of(const struct job *j, int i, char *buf, size_t len)
{
	int k = j->base + i % j->modulo;
	if (j->kind == HOSTS)
		snprintf(buf, len, "h%d.bench", k % HOSTS_NAMES);
	else
		snprintf(buf, len, "%d.w.bench", k);
}

/* ---- the sandbox --------------------------------------------------------------------------- */

static pid_t server_pid = -1;

static int bind_file(const char *target, const char *content)
{
	char path[] = "/tmp/rotor-bench-resolve-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	ssize_t len = (ssize_t)strlen(content);
	int r = write(fd, content, (size_t)len) == len ? 0 : -EIO;
	close(fd);
	if (!r && mount(path, target, NULL, MS_BIND, NULL) < 0)
		r = -errno;
	unlink(path);
	return r;
}

/* Namespaces, files, loopback, and the DNS server's child. 0, or a reason to skip. */
static const char *sandbox(void)
{
	if (unshare(CLONE_NEWNS | CLONE_NEWNET) < 0)
		return "needs private mount and network namespaces (root)";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return "mount --make-rprivate / failed";
	static char hosts[HOSTS_NAMES * 32 + 64];
	size_t o = (size_t)snprintf(hosts, sizeof(hosts), "127.0.0.1 localhost\n");
	for (int i = 0; i < HOSTS_NAMES; i++)
		o += (size_t)snprintf(hosts + o, sizeof(hosts) - o, "10.1.0.%d h%d.bench\n", i, i);
	if (bind_file("/etc/hosts", hosts) < 0 ||
	    bind_file("/etc/resolv.conf", "nameserver 127.0.0.53\n") < 0)
		return "could not bind /etc/hosts and /etc/resolv.conf";
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	bool up = ioctl(s, SIOCGIFFLAGS, &ifr) == 0 &&
	          (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
	close(s);
	if (!up)
		return "could not bring lo up";
	static struct dnsd d = {.wild = "w.bench", .wild_ttl = 300};
	if (dnsd_bind(&d, "127.0.0.53", 53) < 0)
		return "could not bind 127.0.0.53:53";
	int big = 8 << 20;
	setsockopt(d.fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(d.fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	fflush(NULL);
	server_pid = fork();
	if (server_pid < 0)
		return "fork failed";
	if (server_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dnsd_serve(&d);
		_exit(0);
	}
	close(d.fd);
	return NULL;
}

/* ---- rotor ----------------------------------------------------------------------------------- */

static struct job *cur;

static void *lookup_task(void *arg)
{
	int i = (int)(intptr_t)arg;
	char name[32];
	struct rotor_addr a[4];
	name_of(cur, i, name, sizeof(name));
	struct rotor_resolve_hints h = {.family = AF_INET,
	                                .flags = cur->cache ? 0 : ROTOR_RESOLVE_NO_CACHE};
	if (rotor_resolve(name, 80, &h, a, 4, rotor_now() + 30 * 1000000000LL) < 1)
		atomic_fetch_add(&cur->errors, 1);
	return NULL;
}

static void *rotor_main(void *arg)
{
	struct job *j = arg;
	struct rotor_task **t = malloc(sizeof(*t) * (size_t)j->n);
	if (!t)
		return NULL;
	int64_t t0 = bench_now(), c0 = bench_cpu();
	for (int i = 0; i < j->n; i++)
		if (rotor_spawn(lookup_task, (void *)(intptr_t)i, &t[i]) < 0)
			t[i] = NULL;
	for (int i = 0; i < j->n; i++)
		if (t[i])
			rotor_join(t[i], NULL);
	j->ns = (double)(bench_now() - t0);
	j->cpu_ns = (double)(bench_cpu() - c0);
	free(t);
	return NULL;
}

/* A fresh runtime of one worker; first fills the cache when the job uses it. */
static int rotor_measure(struct job *j)
{
	struct rotor_config cfg = {.workers = 1};
	cur = j;
	atomic_store(&j->errors, 0);
	return rotor_run(&cfg, rotor_main, j, NULL);
}

static void *warm_then_measure(void *arg)
{
	rotor_main(arg);
	atomic_store(&((struct job *)arg)->errors, 0);
	return rotor_main(arg);
}

static int rotor_measure_cached(struct job *j)
{
	struct rotor_config cfg = {.workers = 1};
	cur = j;
	atomic_store(&j->errors, 0);
	return rotor_run(&cfg, warm_then_measure, j, NULL);
}

/* ---- getaddrinfo on threads ---------------------------------------------------------------- */

static void *gai_thread(void *arg)
{
	struct job *j = arg;
	struct addrinfo hints, *ai;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	char name[32];
	for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
		name_of(j, i, name, sizeof(name));
		if (getaddrinfo(name, "80", &hints, &ai) == 0)
			freeaddrinfo(ai);
		else
			atomic_fetch_add(&j->errors, 1);
	}
	return NULL;
}

static void gai_measure(struct job *j)
{
	pthread_t th[THREADS];
	atomic_store(&j->next, 0);
	atomic_store(&j->errors, 0);
	int64_t t0 = bench_now(), c0 = bench_cpu();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, gai_thread, j);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	j->ns = (double)(bench_now() - t0);
	j->cpu_ns = (double)(bench_cpu() - c0);
}

/* ---- main ------------------------------------------------------------------------------------ */

struct figure {
	const char *metric;
	struct job job;
	struct bench_series rate, base_rate, cpu, base_cpu;
};

static void record(const struct bench_ctx *b, struct figure *f, bool rotor_side)
{
	struct job *j = &f->job;
	int errors = atomic_load(&j->errors);
	if (errors)
		bench_note(b, "  %s (%s): %d of %d lookups failed", f->metric,
		           rotor_side ? "rotor" : "getaddrinfo", errors, j->n);
	bench_add(rotor_side ? &f->rate : &f->base_rate, j->n / (j->ns / 1e9));
	bench_add(rotor_side ? &f->cpu : &f->base_cpu, j->cpu_ns / j->n);
}

int main(int argc, char **argv)
{
	struct bench_ctx b;
	bench_init(&b, "resolve",
	           "Name resolution: N concurrent rotor_resolve on one worker against getaddrinfo "
	           "on 16 threads, for /etc/hosts names and names of a local DNS server, with "
	           "and without rotor's cache.",
	           5, 3, argc, argv);
	int n = b.quick ? 2000 : 10000;
	const char *skip = sandbox();
	if (skip) {
		bench_note(&b, "resolve: %s: skipped", skip);
		return 0;
	}
	bench_note(&b,
	           "resolve: %d lookups at once (rotor: tasks on 1 worker; getaddrinfo: %d "
	           "threads), IPv4, %d reps; DNS server on 127.0.0.53:53 in a child process "
	           "(private namespaces); /etc/hosts of %d names",
	           n, THREADS, b.reps, HOSTS_NAMES);
	struct figure f[4] = {
	    {.metric = "resolve_hosts_cached", .job = {.kind = HOSTS, .cache = true}},
	    {.metric = "resolve_hosts_uncached", .job = {.kind = HOSTS}},
	    {.metric = "resolve_dns_uncached", .job = {.kind = DNS}},
	    {.metric = "resolve_dns_cached", .job = {.kind = DNS, .cache = true}},
	};
	for (int i = 0; i < 4; i++) {
		f[i].job.n = n;
		f[i].job.modulo = f[i].job.kind == DNS && f[i].job.cache ? DNS_CACHED : n;
		f[i].rate.impl = f[i].cpu.impl = "rotor";
		f[i].base_rate.impl = f[i].base_cpu.impl = "getaddrinfo-16-threads";
	}
	int base = 0; /* fresh DNS names for every run, so no side finds them anywhere */
	for (int rep = 0; rep < b.reps; rep++) {
		for (int i = 0; i < 4; i++) {
			struct job *j = &f[i].job;
			j->base = base;
			base += n;
			int r = j->cache ? rotor_measure_cached(j) : rotor_measure(j);
			if (r < 0) {
				bench_note(&b, "  rotor_run: %d", r);
				return 1;
			}
			record(&b, &f[i], true);
			gai_measure(j);
			record(&b, &f[i], false);
		}
	}
	for (int i = 0; i < 4; i++) {
		char m[64];
		bench_report(&b, f[i].metric, "lookups/s", &f[i].rate, &f[i].base_rate);
		snprintf(m, sizeof(m), "%s_cpu", f[i].metric);
		bench_report(&b, m, "ns/lookup", &f[i].cpu, &f[i].base_cpu);
	}
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
	}
	return 0;
}
