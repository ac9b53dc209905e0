/*
 * The Redis example (examples/redis/) end to end, against the real redis-server 7.0 as the
 * oracle: seeded random command streams (every command served, types mixed on purpose,
 * pipelines, multi-key commands across owners, expiries) go to both, and every reply must be
 * equal byte for byte, but for TTL values (within a tolerance), set members (compared as
 * sets: Redis's hashtable order is its own) and SPOP's choice. Short expiries are absolute
 * (PXAT, PEXPIREAT) and fall on 100 ms boundaries that no pipeline straddles, so both
 * servers always agree whether a key has expired. Also: redis-cli and redis-benchmark
 * against it, multi-key commands of thousands of keys, protocol errors, hostile requests,
 * the limits, the stop, and the forwarding counters.
 *
 * ROTOR_REDIS_DIFF_PIPELINES (default 250 per seed) and ROTOR_REDIS_DIFF_SEED (default: three
 * fixed seeds) make longer runs. Skipped when redis-server is not installed.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct peer {
	pid_t pid;
	int port;
	FILE *out; /* redis_server's stdout */
};

static bool have(const char *prog)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void start_redis(struct peer *p)
{
	if (!have("redis-server"))
		cr_skip_test("needs redis-server (Debian: redis-server)");
	for (int attempt = 0; attempt < 5; attempt++) {
		p->port = free_port();
		char port[16];
		snprintf(port, sizeof(port), "%d", p->port);
		p->pid = fork();
		cr_assert_geq(p->pid, 0);
		if (p->pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			int null = open("/dev/null", 1);
			dup2(null, 1);
			execlp("redis-server", "redis-server", "--port", port, "--bind",
			       "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "/tmp",
			       NULL);
			_exit(127);
		}
		for (int i = 0; i < 200; i++) {
			int fd = dial(p->port);
			if (fd >= 0) {
				close(fd);
				return;
			}
			int st;
			if (waitpid(p->pid, &st, WNOHANG) == p->pid)
				break; /* the port was taken meanwhile: another one */
			usleep(10000);
		}
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	cr_assert_fail("redis-server did not start");
}

static void start_rotor_args(struct peer *p, const char *const *extra)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	const char *argv[32] = {"redis_server", "--port", "0"};
	int argc = 3;
	for (; extra && *extra; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		execv(ROTOR_EXAMPLES_DIR "/redis_server", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	p->out = fdopen(fds[0], "r");
	char line[256] = {0};
	cr_assert_not_null(fgets(line, sizeof(line), p->out), "no output from redis_server");
	cr_assert_eq(sscanf(line, "listening on 127.0.0.1:%d", &p->port), 1, "%s", line);
}

static void start_rotor(struct peer *p, int workers)
{
	char w[8];
	snprintf(w, sizeof(w), "%d", workers);
	const char *extra[] = {"--workers", w, NULL};
	start_rotor_args(p, extra);
}

static void stop(struct peer *p)
{
	kill(p->pid, SIGTERM);
	int st;
	cr_assert_eq(waitpid(p->pid, &st, 0), p->pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %#x", st);
}

/* ---- RESP on the wire --------------------------------------------------------------------- */

/* The length of the complete reply at p[0, n), or 0 if it is not complete. */
static size_t reply_len(const char *p, size_t n)
{
	const char *cr = memchr(p, '\r', n);
	if (!cr || cr + 1 >= p + n)
		return 0;
	size_t head = (size_t)(cr - p) + 2;
	long long v = atoll(p + 1);
	if (p[0] == '$') {
		if (v < 0)
			return head;
		return n >= head + (size_t)v + 2 ? head + (size_t)v + 2 : 0;
	}
	if (p[0] == '*') {
		size_t off = head;
		for (long long i = 0; i < v; i++) {
			size_t k = reply_len(p + off, n - off);
			if (!k)
				return 0;
			off += k;
		}
		return off;
	}
	return head;
}

struct wire {
	int fd;
	char *buf;
	size_t len, cap, off; /* off: where the next reply starts */
};

static void wire_open(struct wire *w, int port)
{
	memset(w, 0, sizeof(*w));
	w->fd = dial(port);
	cr_assert_geq(w->fd, 0, "connect to %d: %s", port, strerror(errno));
	w->cap = 1 << 16;
	w->buf = malloc(w->cap);
}

static void wire_close(struct wire *w)
{
	close(w->fd);
	free(w->buf);
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		cr_assert_gt(k, 0, "send: %s", strerror(errno));
		p += k;
		n -= (size_t)k;
	}
}

/* The next reply (NUL-terminated copy in *out, its length returned); -1 at EOF. */
static ssize_t next_reply(struct wire *w, char **out)
{
	for (;;) {
		size_t k = reply_len(w->buf + w->off, w->len - w->off);
		if (k) {
			*out = malloc(k + 1);
			memcpy(*out, w->buf + w->off, k);
			(*out)[k] = 0;
			w->off += k;
			return (ssize_t)k;
		}
		if (w->off) {
			memmove(w->buf, w->buf + w->off, w->len - w->off);
			w->len -= w->off;
			w->off = 0;
		}
		if (w->len == w->cap)
			w->buf = realloc(w->buf, w->cap *= 2);
		ssize_t r = recv(w->fd, w->buf + w->len, w->cap - w->len, 0);
		if (r <= 0)
			return -1;
		w->len += (size_t)r;
	}
}

/* ---- Commands ----------------------------------------------------------------------------- */

struct cmdbuf {
	char *p;
	size_t len, cap;
};

static void put(struct cmdbuf *b, const void *s, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* argv as a multibulk request. */
static void encode(struct cmdbuf *b, int argc, char **argv)
{
	char head[32];
	put(b, head, (size_t)snprintf(head, sizeof(head), "*%d\r\n", argc));
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);
		put(b, head, (size_t)snprintf(head, sizeof(head), "$%zu\r\n", n));
		put(b, argv[i], n);
		put(b, "\r\n", 2);
	}
}

static uint64_t rng;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define NKEYS 24
static const char *const values[] = {"0", "1",   "-7",  "42", "9223372036854775807", "abc",
                                     "",  "x y", "3.5", "10", "hello world",         "\x01\xff"};
#define NV (sizeof(values) / sizeof(values[0]))

/* One random command: argv filled (strings from a static pool), its kind returned. */
enum kind { EXACT, TTL_S, TTL_MS, SET_REPLY, SPOP_REPLY };

static char pool[64][64];
static int npool;

static char *S(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *S(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = pool[npool++ % 64];
	vsnprintf(p, 64, fmt, ap);
	va_end(ap);
	return p;
}

static char *key(void)
{
	return S("k%u", rnd(NKEYS));
}
static char *val(void)
{
	return S("%s", values[rnd(NV)]);
}
static char *num(int lo, int hi)
{
	return S("%d", lo + (int)rnd((unsigned)(hi - lo + 1)));
}

/* An absolute expiry on one of the next 100 ms boundaries. */
static char *boundary(bool ms)
{
	int64_t t = (now_ms() / 100 + 1 + rnd(3)) * 100;
	return ms ? S("%lld", (long long)t) : S("%lld", (long long)(t / 1000 + 1));
}

static enum kind gen(int *argc, char **argv)
{
	int n = 0;
	enum kind k = EXACT;
#define A(x) (argv[n++] = (x))
	switch (rnd(52)) {
	case 0:
		A("GET"), A(key());
		break;
	case 1:
	case 2: {
		A("SET"), A(key()), A(val());
		static const char *const opt[] = {"NX", "XX", "GET",  "KEEPTTL",
		                                  "EX", "PX", "PXAT", "nx"};
		for (int i = rnd(3); i > 0; i--) {
			const char *o = opt[rnd(8)];
			A((char *)o);
			if (!strcmp(o, "EX"))
				A(rnd(8) ? num(100, 1000) : num(-1, 0));
			else if (!strcmp(o, "PX"))
				A(num(100000, 900000));
			else if (!strcmp(o, "PXAT"))
				A(boundary(true));
		}
		break;
	}
	case 3:
		A("SETNX"), A(key()), A(val());
		break;
	case 4:
		A("GETSET"), A(key()), A(val());
		break;
	case 5:
	case 6:
		A("MGET");
		for (int i = 1 + rnd(6); i > 0; i--)
			A(key());
		break;
	case 7:
		A("MSET");
		for (int i = 1 + rnd(5); i > 0; i--)
			A(key()), A(val());
		if (!rnd(20))
			A(key()); /* odd: an arity error */
		break;
	case 8:
		A(rnd(2) ? "INCR" : "DECR"), A(key());
		break;
	case 9:
		A(rnd(2) ? "INCRBY" : "DECRBY"), A(key()), A(rnd(10) ? num(-100, 100) : val());
		break;
	case 10:
		A("APPEND"), A(key()), A(val());
		break;
	case 11:
		A("STRLEN"), A(key());
		break;
	case 12:
		A("GETRANGE"), A(key()), A(num(-5, 5)), A(num(-5, 5));
		break;
	case 13:
		A("SETRANGE"), A(key()), A(num(-1, 8)), A(val());
		break;
	case 14:
	case 15:
		A(rnd(2) ? "DEL" : "EXISTS");
		for (int i = 1 + rnd(5); i > 0; i--)
			A(key());
		break;
	case 16:
		A("TYPE"), A(key());
		break;
	case 17: {
		static const char *const e[] = {"EXPIRE", "PEXPIRE", "PEXPIREAT", "EXPIREAT"};
		int w = (int)rnd(4);
		A((char *)e[w]), A(key());
		A(w == 0 ? num(-1, 500) : w == 1 ? num(100000, 500000) : boundary(w == 2));
		if (!rnd(4))
			A(rnd(2) ? "NX" : rnd(2) ? "XX" : rnd(2) ? "GT" : "LT");
		break;
	}
	case 18:
		A("TTL"), A(key());
		k = TTL_S;
		break;
	case 19:
		A("PTTL"), A(key());
		k = TTL_MS;
		break;
	case 20:
		A("PERSIST"), A(key());
		break;
	case 21:
	case 22:
		A(rnd(2) ? "LPUSH" : "RPUSH"), A(key());
		for (int i = 1 + rnd(3); i > 0; i--)
			A(val());
		break;
	case 23:
		A(rnd(2) ? "LPOP" : "RPOP"), A(key());
		if (!rnd(3))
			A(num(-1, 3));
		break;
	case 24:
		A("LLEN"), A(key());
		break;
	case 25:
		A("LRANGE"), A(key()), A(num(-4, 3)), A(num(-4, 6));
		break;
	case 26:
		A("LINDEX"), A(key()), A(num(-4, 4));
		break;
	case 27:
	case 28:
		A("HSET"), A(key());
		for (int i = 1 + rnd(3); i > 0; i--)
			A(S("f%u", rnd(6))), A(val());
		break;
	case 29:
		A("HGET"), A(key()), A(S("f%u", rnd(6)));
		break;
	case 30:
		A("HDEL"), A(key()), A(S("f%u", rnd(6)));
		break;
	case 31:
		A("HGETALL"), A(key());
		break;
	case 32:
		A("HINCRBY"), A(key()), A(S("f%u", rnd(6))), A(num(-50, 50));
		break;
	case 33:
		A("HLEN"), A(key());
		break;
	case 34:
	case 35:
		A("SADD"), A(key());
		for (int i = 1 + rnd(3); i > 0; i--)
			A(S("m%u", rnd(8)));
		break;
	case 36:
		A("SREM"), A(key()), A(S("m%u", rnd(8)));
		break;
	case 37:
		A("SMEMBERS"), A(key());
		k = SET_REPLY;
		break;
	case 38:
		A("SISMEMBER"), A(key()), A(S("m%u", rnd(8)));
		break;
	case 39:
		A("SCARD"), A(key());
		break;
	case 40:
		A("SPOP"), A(key());
		if (rnd(2))
			A(num(0, 2));
		k = SPOP_REPLY;
		break;
	case 41:
	case 42: {
		A("ZADD"), A(key());
		static const char *const opt[] = {"NX", "XX", "GT", "LT", "CH", "INCR"};
		if (!rnd(3))
			A((char *)opt[rnd(6)]);
		static const char *const sc[] = {"1", "2", "-3", "1.5", "0", "inf", "2.25", "x"};
		for (int i = 1 + rnd(2); i > 0; i--)
			A(S("%s", sc[rnd(8)])), A(S("m%u", rnd(8)));
		break;
	}
	case 43:
		A("ZREM"), A(key()), A(S("m%u", rnd(8)));
		break;
	case 44:
		A("ZSCORE"), A(key()), A(S("m%u", rnd(8)));
		break;
	case 45:
		A("ZRANGE"), A(key()), A(num(-3, 2)), A(num(-3, 5));
		if (rnd(2))
			A("WITHSCORES");
		break;
	case 46:
		A("ZPOPMIN"), A(key());
		if (rnd(2))
			A(num(0, 2));
		break;
	case 47:
		A("ZCARD"), A(key());
		break;
	case 48:
		A("PING");
		if (rnd(2))
			A(val());
		break;
	case 49:
		A("ECHO"), A(val());
		break;
	case 50:
		A(rnd(2) ? "NOSUCH" : "GET"), A(key()), A(key()); /* errors, word for word */
		break;
	default:
		A("ZRANGE"), A(key()), A("-inf"), A("+inf"), A("BYSCORE");
		break;
	}
#undef A
	*argc = n;
	return k;
}

/* ---- Comparison --------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An array reply's elements, sorted, joined. */
static char *as_set(const char *r)
{
	if (r[0] != '*')
		return strdup(r);
	long long n = atoll(r + 1);
	const char *p = strchr(r, '\n') + 1;
	char **el = calloc((size_t)n + 1, sizeof(*el));
	for (long long i = 0; i < n; i++) {
		size_t k = reply_len(p, strlen(p));
		el[i] = strndup(p, k);
		p += k;
	}
	qsort(el, (size_t)n, sizeof(*el), cmp_str);
	size_t total = 32;
	for (long long i = 0; i < n; i++)
		total += strlen(el[i]);
	char *out = malloc(total);
	int o = sprintf(out, "*%lld\r\n", n);
	for (long long i = 0; i < n; i++) {
		strcpy(out + o, el[i]);
		o += (int)strlen(el[i]);
		free(el[i]);
	}
	free(el);
	return out;
}

static bool same(enum kind k, const char *a, const char *b)
{
	switch (k) {
	case TTL_S:
	case TTL_MS: {
		if (a[0] != ':' || b[0] != ':')
			return !strcmp(a, b);
		long long x = atoll(a + 1), y = atoll(b + 1);
		if (x < 0 || y < 0)
			return x == y;
		return llabs(x - y) <= (k == TTL_S ? 1 : 150);
	}
	case SET_REPLY: {
		char *x = as_set(a), *y = as_set(b);
		bool eq = !strcmp(x, y);
		free(x);
		free(y);
		return eq;
	}
	case SPOP_REPLY:
		return a[0] == b[0] && (a[0] != '*' || atoll(a + 1) == atoll(b + 1));
	default:
		return !strcmp(a, b);
	}
}

/* Wait while the clock is near a 100 ms boundary, where keys with a short expiry die. */
static void avoid_boundary(void)
{
	for (;;) {
		int64_t m = now_ms() % 100;
		if (m >= 15 && m <= 80)
			return;
		usleep(5000);
	}
}

static void differential(uint64_t seed, int pipelines, int workers)
{
	struct peer red, rot;
	start_redis(&red);
	start_rotor(&rot, workers);
	struct wire wr, wo;
	wire_open(&wr, red.port);
	wire_open(&wo, rot.port);
	rng = seed * 0x9e3779b97f4a7c15ull + 1;
	struct cmdbuf b = {0};
	char *argv[24];
	enum kind kinds[130];
	char line[130][160];
	long compared = 0;
	for (int pl = 0; pl < pipelines; pl++) {
		int n = 1 + (int)rnd(rnd(4) ? 8 : 40);
		if (n > 64)
			n = 64;
		b.len = 0;
		int m = 0; /* requests, with the DELs after SPOPs */
		for (int i = 0; i < n; i++, m++) {
			int argc;
			kinds[m] = gen(&argc, argv);
			encode(&b, argc, argv);
			int o = 0;
			for (int j = 0; j < argc && o < 150; j++)
				o += snprintf(line[m] + o, sizeof(line[m]) - (size_t)o, "%s ",
				              argv[j]);
			/* SPOP's choice differs: the key goes, so both stay equal. */
			if (kinds[m] == SPOP_REPLY) {
				char *del[] = {"DEL", argv[1]};
				encode(&b, 2, del);
				kinds[++m] = EXACT;
				snprintf(line[m], sizeof(line[m]), "DEL %s", del[1]);
			}
		}
		n = m;
		avoid_boundary();
		send_all(wr.fd, b.p, b.len);
		send_all(wo.fd, b.p, b.len);
		for (int i = 0; i < n; i++) {
			char *x, *y;
			cr_assert_gt(next_reply(&wr, &x), 0, "redis-server: no reply to %s",
			             line[i]);
			cr_assert_gt(next_reply(&wo, &y), 0, "redis_server: no reply to %s",
			             line[i]);
			if (getenv("ROTOR_REDIS_DIFF_TRACE"))
				fprintf(stderr, "%d.%d %s -> %s | %s\n", pl, i, line[i], x, y);
			cr_assert(same(kinds[i], x, y),
			          "seed %llu pipeline %d command %d: %s\n  redis-server: %s\n"
			          "  redis_server: %s",
			          (unsigned long long)seed, pl, i, line[i], x, y);
			free(x);
			free(y);
			compared++;
		}
	}
	/* Everything there is, key by key, and the count of keys once both have swept. */
	b.len = 0;
	for (int i = 0; i < NKEYS; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%d", i);
		char *t[] = {"TYPE", k};
		encode(&b, 2, t);
	}
	send_all(wr.fd, b.p, b.len);
	send_all(wo.fd, b.p, b.len);
	for (int i = 0; i < NKEYS; i++) {
		char *x, *y;
		cr_assert_gt(next_reply(&wr, &x), 0);
		cr_assert_gt(next_reply(&wo, &y), 0);
		cr_assert_str_eq(x, y, "TYPE k%d", i);
		free(x);
		free(y);
	}
	cr_log_info("seed %llu: %ld replies compared", (unsigned long long)seed, compared);
	free(b.p);
	wire_close(&wr);
	wire_close(&wo);
	kill(red.pid, SIGKILL);
	waitpid(red.pid, NULL, 0);
	stop(&rot);
	fclose(rot.out);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : def;
}

Test(redis_server, replies_equal_redis_servers_on_random_streams_two_workers, .timeout = 300)
{
	int pipelines = env_int("ROTOR_REDIS_DIFF_PIPELINES", 250);
	int seed = env_int("ROTOR_REDIS_DIFF_SEED", 0);
	if (seed)
		differential((uint64_t)seed, pipelines, 2);
	else
		for (uint64_t s = 1; s <= 3; s++)
			differential(s, pipelines, 2);
}

Test(redis_server, replies_equal_redis_servers_on_random_streams_one_worker, .timeout = 300)
{
	differential(7, env_int("ROTOR_REDIS_DIFF_PIPELINES", 250) / 2, 1);
}

/* ---- The rest ----------------------------------------------------------------------------- */

static char *roundtrip(struct wire *w, const char *req)
{
	send_all(w->fd, req, strlen(req));
	char *r = NULL;
	cr_assert_gt(next_reply(w, &r), 0, "no reply to %s", req);
	return r;
}

#define EXPECT(w, req, want)                                                                       \
	do {                                                                                       \
		char *r_ = roundtrip((w), (req));                                                  \
		cr_assert_str_eq(r_, (want), "%s", (req));                                         \
		free(r_);                                                                          \
	} while (0)

Test(redis_server, inline_and_pipelined_requests_are_answered_in_order)
{
	struct peer p;
	start_rotor(&p, 2);
	struct wire w;
	wire_open(&w, p.port);
	/* Keys on both workers, in one write: replies in request order. */
	const char *req =
	    "SET a 1\r\nSET b 2\r\nSET c 3\r\nSET d 4\r\n*5\r\n$4\r\nMGET\r\n$1\r\n"
	    "a\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\nINCR a\r\nDEL a b c d e\r\nDBSIZE\r\n";
	send_all(w.fd, req, strlen(req));
	const char *want[] = {"+OK\r\n",
	                      "+OK\r\n",
	                      "+OK\r\n",
	                      "+OK\r\n",
	                      "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n",
	                      ":2\r\n",
	                      ":4\r\n",
	                      ":0\r\n"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char *r;
		cr_assert_gt(next_reply(&w, &r), 0);
		cr_assert_str_eq(r, want[i], "reply %zu", i);
		free(r);
	}
	EXPECT(&w, "SET \"a b\" 'x y'\r\n", "+OK\r\n");
	EXPECT(&w, "GET \"a b\"\r\n", "$3\r\nx y\r\n");
	wire_close(&w);
	stop(&p);
	fclose(p.out);
}

Test(redis_server, a_malformed_stream_gets_an_error_and_a_close)
{
	struct peer p;
	start_rotor(&p, 2);
	const char *bad[] = {"*1\r\n$-5\r\n", "*x\r\n", "*2\r\n+OK\r\n", "SET \"a\r\n"};
	const char *text[] = {"-ERR Protocol error: invalid bulk length\r\n",
	                      "-ERR Protocol error: invalid multibulk length\r\n",
	                      "-ERR Protocol error: expected '$', got '+'\r\n",
	                      "-ERR Protocol error: unbalanced quotes in request\r\n"};
	for (int i = 0; i < 4; i++) {
		struct wire w;
		wire_open(&w, p.port);
		/* A good request first: its reply comes before the error. */
		char req[64];
		snprintf(req, sizeof(req), "PING\r\n%s", bad[i]);
		send_all(w.fd, req, strlen(req));
		char *r;
		cr_assert_gt(next_reply(&w, &r), 0);
		cr_assert_str_eq(r, "+PONG\r\n");
		free(r);
		cr_assert_gt(next_reply(&w, &r), 0);
		cr_assert_str_eq(r, text[i]);
		free(r);
		cr_assert_eq(next_reply(&w, &r), -1, "the connection is closed");
		wire_close(&w);
	}
	/* An endless line without a newline: refused at 64 KiB, not buffered forever. */
	struct wire w;
	wire_open(&w, p.port);
	char *junk = malloc(70000);
	memset(junk, 'a', 70000);
	send(w.fd, junk, 70000, MSG_NOSIGNAL);
	char *r;
	cr_assert_gt(next_reply(&w, &r), 0);
	cr_assert_str_eq(r, "-ERR Protocol error: too big inline request\r\n");
	free(r);
	free(junk);
	wire_close(&w);
	stop(&p);
	fclose(p.out);
}

Test(redis_server, limits_bulk_memory_clients_and_idle_time)
{
	struct peer p;
	const char *extra[] = {"--workers",    "2", "--max-bulk",   "1000", "--maxmemory", "400000",
	                       "--maxclients", "3", "--timeout-ms", "800",  NULL};
	start_rotor_args(&p, extra);
	struct wire w;
	wire_open(&w, p.port);
	EXPECT(&w, "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1001\r\n",
	       "-ERR Protocol error: invalid bulk length\r\n");
	wire_close(&w);
	/* Fill memory: writes are refused with Redis's words, reads still served. */
	wire_open(&w, p.port);
	char req[1200], v[901];
	memset(v, 'v', 900);
	v[900] = 0;
	bool refused = false;
	for (int i = 0; i < 2000 && !refused; i++) {
		snprintf(req, sizeof(req), "SET key%d %s\r\n", i, v);
		char *r = roundtrip(&w, req);
		if (r[0] == '-') {
			cr_assert_str_eq(
			    r, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
			refused = true;
		} else {
			cr_assert_str_eq(r, "+OK\r\n");
		}
		free(r);
	}
	cr_assert(refused, "maxmemory never reached");
	char want[1000];
	snprintf(want, sizeof(want), "$900\r\n%s\r\n", v);
	EXPECT(&w, "GET key0\r\n", want);
	EXPECT(&w, "FLUSHALL\r\n", "+OK\r\n");
	EXPECT(&w, "SET after flush\r\n", "+OK\r\n");
	/* Three clients at most: a fourth is closed. */
	struct wire more[3];
	wire_open(&more[0], p.port);
	wire_open(&more[1], p.port);
	EXPECT(&more[0], "PING\r\n", "+PONG\r\n");
	EXPECT(&more[1], "PING\r\n", "+PONG\r\n");
	wire_open(&more[2], p.port);
	send(more[2].fd, "PING\r\n", 6, MSG_NOSIGNAL);
	char *r;
	cr_assert_eq(next_reply(&more[2], &r), -1, "a client over --maxclients is closed");
	wire_close(&more[2]);
	/* Idle for longer than --timeout-ms: closed. */
	usleep(1300 * 1000);
	send(w.fd, "PING\r\n", 6, MSG_NOSIGNAL);
	cr_assert_eq(next_reply(&w, &r), -1, "an idle client is closed");
	wire_close(&w);
	wire_close(&more[0]);
	wire_close(&more[1]);
	stop(&p);
	fclose(p.out);
}

/* The forwarding counters: parts for the other worker travel, many per batch under a
 * pipelined load. */
Test(redis_server, stats_count_forwarded_parts_and_batches)
{
	struct peer p;
	const char *extra[] = {"--workers", "2", "--stats", NULL};
	start_rotor_args(&p, extra);
	struct wire w;
	wire_open(&w, p.port);
	struct cmdbuf b = {0};
	for (int i = 0; i < 200; i++) {
		char k[16];
		snprintf(k, sizeof(k), "key%d", i);
		char *set[] = {"SET", k, k};
		encode(&b, 3, set);
	}
	send_all(w.fd, b.p, b.len);
	for (int i = 0; i < 200; i++) {
		char *r;
		cr_assert_gt(next_reply(&w, &r), 0);
		cr_assert_str_eq(r, "+OK\r\n");
		free(r);
	}
	free(b.p);
	wire_close(&w);
	stop(&p);
	char line[512];
	unsigned long long lp = 0, fp = 0, fm = 0;
	bool found = false, stopped = false;
	while (fgets(line, sizeof(line), p.out)) {
		if (sscanf(line, "total: local parts %llu, forwarded parts %llu, batches %llu", &lp,
		           &fp, &fm) == 3)
			found = true;
		if (!strcmp(line, "stopped\n"))
			stopped = true;
	}
	fclose(p.out);
	cr_assert(found && stopped);
	cr_assert_eq(lp + fp, 200, "every SET ran once: %llu + %llu", lp, fp);
	cr_assert_gt(fp, 50, "keys of the other worker are forwarded");
	cr_assert_lt(fm, fp, "several parts per batch: %llu parts in %llu batches", fp, fm);
}

static int run_cmd(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = 0;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(redis_server, redis_cli_and_redis_benchmark_complete_against_it, .timeout = 300)
{
	if (!have("redis-cli") || !have("redis-benchmark"))
		cr_skip_test("needs redis-cli and redis-benchmark (Debian: redis-tools)");
	struct peer p;
	start_rotor(&p, 2);
	static char out[1 << 16];
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
	         "printf 'SET greeting hello\\nGET greeting\\nRPUSH l a b\\nLRANGE l 0 -1\\n' | "
	         "redis-cli -p %d 2>&1",
	         p.port);
	cr_assert_eq(run_cmd(cmd, out, sizeof(out)), 0, "%s", out);
	cr_assert_str_eq(out, "OK\nhello\n2\na\nb\n");
	snprintf(cmd, sizeof(cmd), "redis-cli -p %d INFO server 2>&1", p.port);
	cr_assert_eq(run_cmd(cmd, out, sizeof(out)), 0, "%s", out);
	cr_assert_not_null(strstr(out, "redis_version:"), "%s", out);
	snprintf(cmd, sizeof(cmd), "redis-benchmark -p %d -n 2000 -q 2>&1", p.port);
	cr_assert_eq(run_cmd(cmd, out, sizeof(out)), 0, "%s", out);
	cr_assert_null(strstr(out, "ERR"), "%s", out);
	cr_assert_null(strstr(out, "rror"), "%s", out);
	cr_assert_not_null(strstr(out, "MSET (10 keys)"), "the whole default run: %s", out);
	stop(&p);
	fclose(p.out);
}

/* Multi-key commands with thousands of keys, duplicates among them, across both owners:
 * the same bytes as redis-server's. */
Test(redis_server, many_key_commands_equal_redis_servers)
{
	struct peer red, rot;
	start_redis(&red);
	start_rotor(&rot, 2);
	struct wire wr, wo;
	wire_open(&wr, red.port);
	wire_open(&wo, rot.port);
	struct cmdbuf b = {0};
	static char keys[3000][16];
	char *argv[6001];
	for (int i = 0; i < 3000; i++)
		snprintf(keys[i], sizeof(keys[i]), "key%d", (i * 7) % 2000); /* duplicates */
	int n = 0;
	argv[n++] = "MSET";
	for (int i = 0; i < 3000; i++)
		argv[n++] = keys[i], argv[n++] = keys[(i + 1) % 3000];
	encode(&b, n, argv);
	const char *verbs[] = {"MGET", "EXISTS", "DEL", "MGET", "EXISTS"};
	for (int v = 0; v < 5; v++) {
		n = 0;
		argv[n++] = (char *)verbs[v];
		for (int i = 0; i < 3000; i++)
			argv[n++] = keys[i];
		encode(&b, n, argv);
	}
	send_all(wr.fd, b.p, b.len);
	send_all(wo.fd, b.p, b.len);
	for (int i = 0; i < 6; i++) {
		char *x, *y;
		cr_assert_gt(next_reply(&wr, &x), 0);
		cr_assert_gt(next_reply(&wo, &y), 0);
		cr_assert_str_eq(x, y, "reply %d differs", i);
		free(x);
		free(y);
	}
	free(b.p);
	wire_close(&wr);
	wire_close(&wo);
	kill(red.pid, SIGKILL);
	waitpid(red.pid, NULL, 0);
	stop(&rot);
	fclose(rot.out);
}

/* A request that announces millions of arguments and never sends them, then closes: no
 * reply, no crash, and the server serves others meanwhile. */
Test(redis_server, a_request_announcing_millions_of_arguments_costs_nothing_until_sent)
{
	struct peer p;
	start_rotor(&p, 2);
	struct wire bad, good;
	wire_open(&bad, p.port);
	wire_open(&good, p.port);
	const char *req = "*2000000000\r\n$3\r\nGET\r\n$100000000\r\nabc";
	send_all(bad.fd, req, strlen(req));
	EXPECT(&good, "PING\r\n", "+PONG\r\n");
	wire_close(&bad);
	EXPECT(&good, "SET k v\r\n", "+OK\r\n");
	wire_close(&good);
	stop(&p);
	fclose(p.out);
}

/* Integer arguments at the ends of long long: SETRANGE's offset plus its value's length is
 * checked without overflowing (Redis's checkStringLength), ZRANGE BYSCORE's LIMIT is walked
 * without counting down from LLONG_MIN; the texts are redis-server 7.0's. */
Test(redis_server, offsets_and_counts_at_the_ends_of_long_long_are_refused_not_overflowed)
{
	struct peer p;
	start_rotor(&p, 1);
	struct wire w;
	wire_open(&w, p.port);
	const char *too_big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
	EXPECT(&w, "SETRANGE k 9223372036854775807 x\r\n", too_big);
	EXPECT(&w, "SETRANGE k 9223372036854775000 xyz\r\n", too_big);
	EXPECT(&w, "EXISTS k\r\n", ":0\r\n");
	EXPECT(&w, "SET s hello\r\n", "+OK\r\n");
	EXPECT(&w, "SETRANGE s 9223372036854775807 x\r\n", too_big);
	EXPECT(&w, "GET s\r\n", "$5\r\nhello\r\n");
	EXPECT(&w, "ZADD z 1 a 2 b\r\n", ":2\r\n");
	EXPECT(&w, "ZRANGE z -inf +inf BYSCORE LIMIT -9223372036854775808 1\r\n", "*0\r\n");
	EXPECT(&w, "ZRANGE z -inf +inf BYSCORE LIMIT 0 -9223372036854775808\r\n",
	       "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
	EXPECT(&w, "ZRANGE z -inf +inf BYSCORE LIMIT 1 -1\r\n", "*1\r\n$1\r\nb\r\n");
	EXPECT(&w, "PING\r\n", "+PONG\r\n");
	wire_close(&w);
	stop(&p);
	fclose(p.out);
}

/* A stop while requests' parts travel between the workers: a batch that reached its owner
 * just before cannot be posted back once the drain refuses new posts. The server still
 * exits (at the drain's deadline at the latest), its connections no longer waiting for
 * replies that never come (it spun for ever in finish_round, six runs in six). */
static _Atomic bool load_stop;
static int load_port;

static void *cross_worker_load(void *arg)
{
	(void)arg;
	int fd = dial(load_port);
	if (fd < 0)
		return NULL;
	struct timeval tv = {0, 100 * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	static char req[200 * 40];
	size_t n = 0;
	for (int i = 0; i < 200; i++) /* MGET of two keys: parts on both workers */
		n += (size_t)snprintf(req + n, sizeof(req) - n,
		                      "*3\r\n$4\r\nMGET\r\n$2\r\nk%d\r\n$2\r\nj%d\r\n", i % 10,
		                      i % 10);
	char buf[1 << 16];
	while (!atomic_load(&load_stop)) {
		if (send(fd, req, n, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
			break;
		if (recv(fd, buf, sizeof(buf), 0) == 0)
			break;
	}
	close(fd);
	return NULL;
}

Test(redis_server, stops_while_parts_are_away_on_other_workers, .timeout = 120)
{
	for (int round = 0; round < 3; round++) {
		struct peer p;
		start_rotor(&p, 2);
		load_port = p.port;
		atomic_store(&load_stop, false);
		pthread_t th[8];
		for (int i = 0; i < 8; i++)
			cr_assert_eq(pthread_create(&th[i], NULL, cross_worker_load, NULL), 0);
		usleep(300 * 1000);
		kill(p.pid, SIGTERM);
		int st = 0;
		pid_t r = 0;
		for (int i = 0; i < 200 && (r = waitpid(p.pid, &st, WNOHANG)) == 0; i++)
			usleep(50 * 1000);
		if (r == 0) {
			kill(p.pid, SIGKILL);
			waitpid(p.pid, &st, 0);
		}
		atomic_store(&load_stop, true);
		for (int i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
		fclose(p.out);
		cr_assert_eq(r, p.pid, "round %d: redis_server still running 10 s after SIGTERM",
		             round);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %#x", st);
	}
}
