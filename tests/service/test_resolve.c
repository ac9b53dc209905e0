/*
 * Name resolution (rotor/resolve.h) and the TCP helpers on it: literals, localhost and
 * /etc/hosts answered without a query, DNS from a small server of the test's own
 * (tests/dnsd.h) that /etc/resolv.conf names, the cache, the distinct errors, a resolver that
 * never answers (the worker keeps running, the deadline holds), cancellation, many lookups
 * at once; dial racing the addresses of a name, listen on names. Each test runs in private
 * mount and network namespaces (its own /etc/hosts and /etc/resolv.conf bound over the real
 * ones, its own loopback): nothing on the machine is touched. Needs root (or CAP_SYS_ADMIN).
 */
#include <criterion/criterion.h>
#include <rotor.h>

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "dnsd.h"

#define NS_IP "127.0.0.53" /* the test's DNS server, port 53, inside its network namespace */

static struct dnsd dns;

static const struct dnsd_name names[] = {
    {"dual.test", "10.0.0.1", "fd00::1", 0, 60}, {"v4.test", "10.0.0.4", NULL, 0, 60},
    {"short.test", "10.0.0.5", NULL, 0, 1},      {"fail.test", NULL, NULL, 2, 0},
    {"refused.test", NULL, NULL, 5, 0},          {"silent.test", NULL, NULL, DNSD_DROP, 0},
    {"loop.test", "127.0.0.1", "::1", 0, 60},    {"loop6.test", NULL, "::1", 0, 60},
};

static void bind_file(const char *target, const char *content)
{
	char path[] = "/tmp/rotor-resolve-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	int r = mount(path, target, NULL, MS_BIND, NULL);
	int err = errno;
	unlink(path); /* the mount keeps the file */
	cr_assert_eq(r, 0, "bind %s: %s", target, strerror(err));
}

/* Private namespaces with these files, loopback up, the DNS server on NS_IP:53. Call first
 * (before any thread: unshare refuses a threaded process). */
static void sandbox(const char *hosts, const char *resolv)
{
	if (unshare(CLONE_NEWNS | CLONE_NEWNET) < 0)
		cr_skip_test("needs private mount and network namespaces (root): unshare: %s",
		             strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	bind_file("/etc/hosts", hosts);
	bind_file("/etc/resolv.conf", resolv);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	cr_assert_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	cr_assert_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
	dns.names = names;
	dns.n = sizeof(names) / sizeof(names[0]);
	dns.wild = "w.test";
	dns.wild_ttl = 60;
	int r = dnsd_start(&dns, NS_IP, 53);
	cr_assert_eq(r, 0, "dns server: %s", strerror(-r));
}

static void sandbox_end(void)
{
	dnsd_stop(&dns);
}

static const char *const RESOLV = "nameserver " NS_IP "\n";
static const char *const HOSTS = "127.0.0.1 localhost\n"
                                 "10.1.2.3 redis.internal redis # a comment\n"
                                 "fd00::5  Redis.Internal\n"
                                 "10.9.9.9 v4only.internal\n"
                                 "127.0.0.1 me.internal\n";

static int port_of(const struct rotor_addr *a)
{
	return ntohs(a->addr.ss_family == AF_INET
	                 ? ((const struct sockaddr_in *)&a->addr)->sin_port
	                 : ((const struct sockaddr_in6 *)&a->addr)->sin6_port);
}

/* The address as text. */
static const char *text(const struct rotor_addr *a, char *buf)
{
	const void *p = a->addr.ss_family == AF_INET
	                    ? (const void *)&((const struct sockaddr_in *)&a->addr)->sin_addr
	                    : (const void *)&((const struct sockaddr_in6 *)&a->addr)->sin6_addr;
	return inet_ntop(a->addr.ss_family, p, buf, INET6_ADDRSTRLEN) ? buf : "?";
}

#define CHECK_ADDR(a, s)                                                                           \
	do {                                                                                       \
		char b_[INET6_ADDRSTRLEN];                                                         \
		CHECK(strcmp(text(a, b_), s) == 0);                                                \
	} while (0)

static int resolve(const char *host, int family, struct rotor_addr *out, size_t cap)
{
	struct rotor_resolve_hints h = {.family = family};
	return rotor_resolve(host, 80, &h, out, cap, rotor_now() + 5 * SEC);
}

/* ---- no query: literals, localhost, /etc/hosts ---- */

static void *literals_main(void *arg)
{
	struct rotor_addr a[4];
	struct rotor_resolve_hints v6 = {.family = AF_INET6}, v4 = {.family = AF_INET};
	CHECK_EQ(rotor_resolve("192.0.2.7", 8080, NULL, a, 4, ROTOR_FOREVER), 1);
	CHECK_ADDR(&a[0], "192.0.2.7");
	CHECK_EQ(port_of(&a[0]), 8080);
	CHECK_EQ(a[0].len, sizeof(struct sockaddr_in));
	CHECK_EQ(rotor_resolve("2001:db8::1", 443, NULL, a, 4, ROTOR_FOREVER), 1);
	CHECK_ADDR(&a[0], "2001:db8::1");
	CHECK_EQ(port_of(&a[0]), 443);
	CHECK_EQ(a[0].len, sizeof(struct sockaddr_in6));
	CHECK_EQ(rotor_resolve("fe80::1%1", 1, NULL, a, 4, ROTOR_FOREVER), 1);
	CHECK_EQ(((struct sockaddr_in6 *)&a[0].addr)->sin6_scope_id, 1);
	CHECK_EQ(rotor_resolve("fe80::1%lo", 1, NULL, a, 4, ROTOR_FOREVER), 1);
	CHECK_EQ(((struct sockaddr_in6 *)&a[0].addr)->sin6_scope_id, if_nametoindex("lo"));
	CHECK_EQ(rotor_resolve("fe80::1%nosuchif0", 1, NULL, a, 4, ROTOR_FOREVER), -EINVAL);
	/* A literal of the other family: no address of the family asked. */
	CHECK_EQ(rotor_resolve("192.0.2.7", 1, &v6, a, 4, ROTOR_FOREVER), -ENOENT);
	CHECK_EQ(rotor_resolve("::1", 1, &v4, a, 4, ROTOR_FOREVER), -ENOENT);
	/* Misuse. */
	struct rotor_resolve_hints unix_ = {.family = AF_UNIX};
	CHECK_EQ(rotor_resolve(NULL, 1, NULL, a, 4, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("", 1, NULL, a, 4, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("not a name", 1, NULL, a, 4, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("a..b", 1, NULL, a, 4, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("256.1.2.3", 1, NULL, a, 4, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("127.0.0.1", 65536, NULL, a, 4, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("127.0.0.1", -1, NULL, a, 4, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("127.0.0.1", 1, NULL, NULL, 4, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("127.0.0.1", 1, NULL, a, 0, ROTOR_FOREVER), -EINVAL);
	CHECK_EQ(rotor_resolve("127.0.0.1", 1, &unix_, a, 4, ROTOR_FOREVER), -EINVAL);
	/* localhost and names under it, by RFC 6761, whatever /etc/hosts says. */
	CHECK_EQ(rotor_resolve("localhost", 7, NULL, a, 4, ROTOR_FOREVER), 2);
	CHECK_ADDR(&a[0], "::1");
	CHECK_ADDR(&a[1], "127.0.0.1");
	CHECK_EQ(port_of(&a[1]), 7);
	CHECK_EQ(rotor_resolve("db.LOCALHOST.", 7, &v4, a, 4, ROTOR_FOREVER), 1);
	CHECK_ADDR(&a[0], "127.0.0.1");
	CHECK_EQ(rotor_resolve("localhost", 7, NULL, a, 1, ROTOR_FOREVER), 1); /* cap holds */
	/* Each was answered at once: no query, no suspension, even with a past deadline. */
	CHECK_EQ(rotor_resolve("10.0.0.1", 1, NULL, a, 4, rotor_now() - SEC), 1);
	CHECK_EQ(atomic_load(&dns.queries), 0);
	return arg;
}

/* What c-ares on the ring gives (the TTL cache, the deadline and cancellation of a DNS query,
 * SERVFAIL told from NXDOMAIN) is not there in a build without libc-ares-dev, where DNS names
 * go to getaddrinfo on the offload pool (docs/architecture.md). */
#ifdef ROTOR_HAVE_CARES
#define NEEDS_CARES() ((void)0)
#else
#define NEEDS_CARES() cr_skip_test("built without c-ares (libc-ares-dev): DNS goes to getaddrinfo")
#endif

Test(resolve, literals_and_localhost_answer_at_once_without_a_query, .timeout = 20)
{
	sandbox(HOSTS, RESOLV);
	struct rotor_addr a;
	cr_assert_eq(rotor_resolve("127.0.0.1", 1, NULL, &a, 1, ROTOR_FOREVER), -EPERM);
	run_checked(1, literals_main, NULL);
	sandbox_end();
}

static void *hosts_main(void *arg)
{
	struct rotor_addr a[4];
	/* Every line that names it, in file order, case and a final dot aside. */
	CHECK_EQ(resolve("REDIS.internal.", AF_UNSPEC, a, 4), 2);
	CHECK_ADDR(&a[0], "10.1.2.3");
	CHECK_ADDR(&a[1], "fd00::5");
	CHECK_EQ(resolve("redis", AF_INET, a, 4), 1);
	CHECK_ADDR(&a[0], "10.1.2.3");
	CHECK_EQ(resolve("redis.internal", AF_INET6, a, 4), 1);
	CHECK_ADDR(&a[0], "fd00::5");
	/* In the file with an IPv4 address only: no IPv6 address, and DNS is not asked. */
	CHECK_EQ(resolve("v4only.internal", AF_INET6, a, 4), -ENOENT);
	/* Without the cache: the file read again, the same answer. */
	struct rotor_resolve_hints nc = {.flags = ROTOR_RESOLVE_NO_CACHE};
	CHECK_EQ(rotor_resolve("redis.internal", 6379, &nc, a, 4, ROTOR_FOREVER), 2);
	CHECK_EQ(port_of(&a[1]), 6379);
	/* An edit of the file shows (without the cache: within the 1 s between looks). */
	FILE *f = fopen("/etc/hosts", "a");
	CHECK(f != NULL);
	if (f) {
		fputs("10.7.7.7 new.internal\n", f);
		fclose(f);
	}
	rotor_sleep(1100 * MS);
	CHECK_EQ(rotor_resolve("new.internal", 1, &nc, a, 4, ROTOR_FOREVER), 1);
	CHECK_ADDR(&a[0], "10.7.7.7");
	/* rotor_tcp_listen on a hosts name, on a task. */
	int l = rotor_tcp_listen("me.internal", 0, 4, 0);
	CHECK(l >= 0);
	close(l);
	CHECK_EQ(atomic_load(&dns.queries), 0);
	return arg;
}

Test(resolve, hosts_names_answer_without_a_query, .timeout = 20)
{
	sandbox(HOSTS, RESOLV);
	run_checked(1, hosts_main, NULL);
	/* Off a task too: rotor_tcp_listen never suspends, and reads the file itself. */
	int l = rotor_tcp_listen("me.internal", 0, 4, 0);
	cr_assert(l >= 0, "listen: %d", l);
	close(l);
	cr_assert_eq(atomic_load(&dns.queries), 0);
	sandbox_end();
}

/* ---- DNS ---- */

static void *dns_main(void *arg)
{
	struct rotor_addr a[8];
	int n = resolve("dual.test", AF_UNSPEC, a, 8);
	CHECK_EQ(n, 2);
	bool v4 = false, v6 = false;
	for (int i = 0; i < n && i < 8; i++) {
		char b[INET6_ADDRSTRLEN];
		v4 = v4 || strcmp(text(&a[i], b), "10.0.0.1") == 0;
		v6 = v6 || strcmp(text(&a[i], b), "fd00::1") == 0;
		CHECK_EQ(port_of(&a[i]), 80);
	}
	CHECK(v4 && v6);
	CHECK_EQ(atomic_load(&dns.queries), 2); /* A and AAAA */
	/* Cached for its TTL: no query the second time, for any port. */
	struct rotor_resolve_hints any = {0};
	CHECK_EQ(rotor_resolve("Dual.Test", 9, &any, a, 8, rotor_now() + SEC), 2);
	CHECK_EQ(port_of(&a[0]), 9);
	CHECK_EQ(atomic_load(&dns.queries), 2);
	/* Unless asked not to. */
	struct rotor_resolve_hints nc = {.flags = ROTOR_RESOLVE_NO_CACHE};
	CHECK_EQ(rotor_resolve("dual.test", 9, &nc, a, 8, rotor_now() + 5 * SEC), 2);
	CHECK_EQ(atomic_load(&dns.queries), 4);
	/* A family is a name of its own in the cache. */
	CHECK_EQ(resolve("dual.test", AF_INET6, a, 8), 1);
	CHECK_ADDR(&a[0], "fd00::1");
	CHECK_EQ(atomic_load(&dns.queries), 5);
	/* A TTL of 1 s: asked again once it has passed. */
	CHECK_EQ(resolve("short.test", AF_INET, a, 8), 1);
	CHECK_EQ(resolve("short.test", AF_INET, a, 8), 1);
	CHECK_EQ(atomic_load(&dns.queries), 6);
	rotor_sleep(1100 * MS);
	CHECK_EQ(resolve("short.test", AF_INET, a, 8), 1);
	CHECK_EQ(atomic_load(&dns.queries), 7);
	return arg;
}

Test(resolve, dns_answers_are_kept_for_their_ttl, .timeout = 30)
{
	NEEDS_CARES();
	sandbox(HOSTS, RESOLV);
	run_checked(1, dns_main, NULL);
	sandbox_end();
}

static void *errors_main(void *arg)
{
	struct rotor_addr a[4];
	/* No such name (NXDOMAIN), remembered for a while. */
	CHECK_EQ(resolve("nx.test", AF_INET, a, 4), -ENOENT);
	int q = atomic_load(&dns.queries);
	CHECK(q >= 1);
	CHECK_EQ(resolve("nx.test", AF_INET, a, 4), -ENOENT);
	CHECK_EQ(atomic_load(&dns.queries), q);
	/* The name exists, without an address of the family asked (NODATA). */
	CHECK_EQ(resolve("v4.test", AF_INET6, a, 4), -ENOENT);
	CHECK_EQ(resolve("v4.test", AF_INET, a, 4), 1);
	/* Temporary failures, not remembered: SERVFAIL, REFUSED. */
	q = atomic_load(&dns.queries);
	CHECK_EQ(resolve("fail.test", AF_INET, a, 4), -EAGAIN);
	CHECK_EQ(resolve("refused.test", AF_INET, a, 4), -EAGAIN);
	CHECK_EQ(resolve("fail.test", AF_INET, a, 4), -EAGAIN);
	CHECK(atomic_load(&dns.queries) >= q + 3);
	/* A server that never answers, given up by c-ares' own policy (one try of 1 s, from
	 * resolv.conf) before our deadline: temporary failure, not our timeout. */
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_resolve("silent.test", 1, NULL, a, 4, t0 + 10 * SEC), -EAGAIN);
	CHECK(rotor_now() - t0 >= 900 * MS);
	CHECK(rotor_now() - t0 < 5 * SEC);
	/* Past deadline, a name needing DNS: the deadline. */
	CHECK_EQ(rotor_resolve("other.test", 1, NULL, a, 4, rotor_now() - 1), -ETIMEDOUT);
	/* The same through dial. */
	CHECK_EQ(rotor_tcp_dial("nx.test", 80, rotor_now() + 5 * SEC), -ENOENT);
	CHECK_EQ(rotor_tcp_dial("fail.test", 80, rotor_now() + 5 * SEC), -EAGAIN);
	CHECK_EQ(rotor_tcp_dial("bad name", 80, rotor_now() + 5 * SEC), -EINVAL);
	return arg;
}

Test(resolve, errors_tell_no_such_name_from_temporary_failure_and_timeout, .timeout = 30)
{
	NEEDS_CARES();
	/* One try of 1 s: glibc's words, then c-ares 1.18's (retrans: ms, retry: tries). */
	sandbox(HOSTS, "nameserver " NS_IP "\noptions timeout:1 attempts:1 retrans:1000 retry:1\n");
	run_checked(1, errors_main, NULL);
	/* rotor_tcp_listen off a task asks getaddrinfo (blocking), with the same errors. */
	cr_assert_eq(rotor_tcp_listen("nx.test", 0, 4, 0), -ENOENT);
	cr_assert_eq(rotor_tcp_listen("fail.test", 0, 4, 0), -EAGAIN);
	int l = rotor_tcp_listen("loop.test", 0, 4, 0);
	cr_assert(l >= 0, "listen: %d", l);
	close(l);
	sandbox_end();
}

/* ---- a resolver that never answers ---- */

static atomic_int ticks;
static atomic_bool dialing;

static void *ticker(void *arg)
{
	while (atomic_load(&dialing)) {
		if (rotor_sleep(10 * MS) < 0)
			break;
		atomic_fetch_add(&ticks, 1);
	}
	return arg;
}

static void *silent_main(void *arg)
{
	atomic_store(&dialing, true);
	struct rotor_task *t;
	CHECK(rotor_spawn(ticker, NULL, &t) == 0);
	rotor_yield();
	int64_t t0 = rotor_now();
	CHECK_EQ(rotor_tcp_dial("redis.test", 6379, t0 + 300 * MS), -ETIMEDOUT);
	int64_t took = rotor_now() - t0;
	int n = atomic_load(&ticks);
	atomic_store(&dialing, false);
	CHECK(rotor_join(t, NULL) == 0);
	CHECK(took >= 300 * MS);
	CHECK(took < 450 * MS);
	CHECK(n >= 15); /* about 30: the worker went on with its other task meanwhile */
	CHECK(atomic_load(&dns.queries) >= 1);
	return arg;
}

Test(resolve, a_silent_resolver_holds_only_the_dialing_task_until_its_deadline, .timeout = 20)
{
	NEEDS_CARES();
	sandbox(HOSTS, RESOLV);
	atomic_store(&dns.drop_all, true);
	run_checked(1, silent_main, NULL);
	sandbox_end();
}

static void *resolve_forever(void *arg)
{
	struct rotor_addr a[2];
	task_begins();
	return P(rotor_resolve(arg, 1, NULL, a, 2, ROTOR_FOREVER));
}

static void *cancel_main(void *arg)
{
	struct rotor_task *t[3];
	CHECK(rotor_spawn(resolve_forever, "silent.test", &t[0]) == 0);
	CHECK(rotor_spawn(resolve_forever, "silent.test", &t[1]) == 0); /* waits for the same */
	CHECK(rotor_spawn(resolve_forever, "other.test", &t[2]) == 0);
	settle(3);
	int64_t t0 = rotor_now();
	CHECK(rotor_cancel(t[1]) == 0);
	void *res;
	rotor_join(t[1], &res); /* -ECANCELED: it was cancelled; its result is kept */
	CHECK_EQ((int)(intptr_t)res, -ECANCELED);
	CHECK(rotor_now() - t0 < 100 * MS);
	/* The other waiter of that name still waits; cancel it and the third. */
	rotor_sleep(20 * MS);
	CHECK(rotor_cancel(t[0]) == 0);
	CHECK(rotor_cancel(t[2]) == 0);
	for (int i = 0; i < 3; i += 2) {
		rotor_join(t[i], &res);
		CHECK_EQ((int)(intptr_t)res, -ECANCELED);
	}
	/* The queries are still c-ares': the runtime's stop frees them (ASan checks). */
	return arg;
}

Test(resolve, a_cancelled_resolve_returns_at_once_and_leaks_nothing, .timeout = 20)
{
	NEEDS_CARES();
	sandbox(HOSTS, RESOLV);
	atomic_store(&dns.drop_all, true);
	int fds = count_dir("/proc/self/fd");
	run_checked(1, cancel_main, NULL);
	cr_assert_eq(count_dir("/proc/self/fd"), fds);
	sandbox_end();
}

/* ---- many at once ---- */

#define MANY 1000

static void *resolve_numbered(void *arg)
{
	int i = (int)(intptr_t)arg;
	char name[32], want[16];
	struct rotor_addr a[2];
	snprintf(name, sizeof(name), "%d.w.test", i);
	snprintf(want, sizeof(want), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
	CHECK_EQ(resolve(name, AF_INET, a, 2), 1);
	CHECK_ADDR(&a[0], want);
	return NULL;
}

static void *resolve_same(void *arg)
{
	struct rotor_addr a[2];
	CHECK_EQ(resolve("v4.test", AF_INET, a, 2), 1);
	return arg;
}

static void *many_main(void *arg)
{
	static struct rotor_task *t[MANY];
	for (int i = 0; i < MANY; i++)
		CHECK(rotor_spawn(resolve_numbered, P(i), &t[i]) == 0);
	for (int i = 0; i < MANY; i++)
		CHECK(rotor_join(t[i], NULL) == 0);
	CHECK_EQ(atomic_load(&dns.queries), MANY);
	/* Many tasks wanting one name at once: one query. */
	for (int i = 0; i < 100; i++)
		CHECK(rotor_spawn(resolve_same, NULL, &t[i]) == 0);
	for (int i = 0; i < 100; i++)
		CHECK(rotor_join(t[i], NULL) == 0);
	CHECK_EQ(atomic_load(&dns.queries), MANY + 1);
	return arg;
}

Test(resolve, a_thousand_concurrent_resolves_on_one_worker, .timeout = 30)
{
	sandbox(HOSTS, RESOLV);
	run_checked(1, many_main, NULL);
	sandbox_end();
}

/* ---- dial and listen on names ---- */

static void *dial_main(void *arg)
{
	/* loop.test: ::1 and 127.0.0.1; only the IPv4 listener is up. */
	int l4 = rotor_tcp_listen("127.0.0.1", 0, 4, 0);
	CHECK(l4 >= 0);
	int port = rotor_sock_port(l4);
	int fd = rotor_tcp_dial("loop.test", port, rotor_now() + 2 * SEC);
	CHECK(fd >= 0);
	int c = rotor_accept(l4, NULL, NULL, 0, rotor_now() + SEC);
	CHECK(c >= 0);
	close(c);
	close(fd);
	/* Only IPv6 up. */
	int l6 = rotor_tcp_listen("::1", 0, 4, 0);
	CHECK(l6 >= 0);
	fd = rotor_tcp_dial("loop.test", rotor_sock_port(l6), rotor_now() + 2 * SEC);
	CHECK(fd >= 0);
	close(fd);
	/* Nobody listens on that port: the last attempt's error. */
	close(l4);
	CHECK_EQ(rotor_tcp_dial("loop.test", port, rotor_now() + 2 * SEC), -ECONNREFUSED);
	close(l6);
	/* listen on a DNS name, on a task: rotor_resolve. */
	int l = rotor_tcp_listen("loop6.test", 0, 4, 0);
	CHECK(l >= 0);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	CHECK(getsockname(l, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6);
	close(l);
	return arg;
}

Test(resolve, dial_tries_each_address_of_a_name, .timeout = 20)
{
	sandbox(HOSTS, RESOLV);
	int fds = count_dir("/proc/self/fd");
	run_checked(1, dial_main, NULL);
	cr_assert_eq(count_dir("/proc/self/fd"), fds);
	sandbox_end();
}

static int race_port;

static void *race_main(void *arg)
{
	struct rotor_addr first;
	CHECK(rotor_resolve("loop.test", race_port, NULL, &first, 1, rotor_now() + SEC) == 1);
	int64_t t0 = rotor_now();
	int fd = rotor_tcp_dial("loop.test", race_port, t0 + 5 * SEC);
	int64_t took = rotor_now() - t0;
	CHECK(fd >= 0);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	CHECK(getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET);
	/* Won by the IPv4 attempt started 250 ms after the silent IPv6 one (if IPv6 came
	 * first), long before the deadline; the loser was cancelled and closed. */
	CHECK(took < 1500 * MS);
	if (first.addr.ss_family == AF_INET6) /* RFC 6724 puts ::1 first: it was tried first */
		CHECK(took >= 250 * MS);
	close(fd);
	return arg;
}

Test(resolve, dial_races_a_silent_address_and_takes_the_next, .timeout = 20)
{
	sandbox(HOSTS, RESOLV);
	/* [::1]:port never completes a handshake: its accept queue (backlog 0) is full, so the
	 * kernel drops further SYNs. 127.0.0.1:port accepts. */
	int l6 = rotor_tcp_listen("::1", 0, 1, 0);
	cr_assert(l6 >= 0);
	cr_assert_eq(listen(l6, 0), 0); /* rotor_tcp_listen takes 0 for its default */
	race_port = rotor_sock_port(l6);
	int l4 = rotor_tcp_listen("127.0.0.1", race_port, 4, 0);
	cr_assert(l4 >= 0, "listen: %d", l4);
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
	                          .sin6_port = htons((uint16_t)race_port),
	                          .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int filler = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(filler, (struct sockaddr *)&a6, sizeof(a6)), 0);
	int fds = count_dir("/proc/self/fd");
	run_checked(1, race_main, NULL);
	cr_assert_eq(count_dir("/proc/self/fd"), fds);
	close(filler);
	close(l4);
	close(l6);
	sandbox_end();
}
