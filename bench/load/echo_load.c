/*
 * echo_load: the load generator of bench_echo. C connections to a TCP echo server, each
 * with one message of B bytes in flight: send it, read back exactly B bytes, check every
 * byte, send the next (a different pattern each time). Connections are split over T
 * threads, each driving its share with one epoll instance, so the client costs little.
 *
 *   echo_load --port N [--host 127.0.0.1] [--conns 100] [--size 64] [--seconds 3]
 *             [--threads 1]
 *
 * Prints "roundtrips N seconds S rate R all A": N round trips completed inside the timed
 * window of S seconds, which starts 50 ms after every connection is open (a warm-up), and
 * A completed in all, warm-up included (what a server's CPU time over the whole client run
 * is divided by). Exits 1 on any connection error, early EOF or mismatched byte, 2 on bad
 * usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	uint32_t seq;  /* message number: seeds the byte pattern */
	size_t sent;   /* bytes of the current message written */
	size_t got;    /* bytes of its echo read back */
	bool want_out; /* EPOLLOUT armed: the kernel took only part of the message */
	unsigned char *msg, *echo;
};

struct loader {
	pthread_t thread;
	struct conn *c;
	int n;
	int ep;
	uint64_t roundtrips; /* inside the timed window */
	uint64_t all;        /* warm-up included */
	int failed;
	const struct sockaddr_in *sa;
};

static size_t size = 64;
static atomic_bool started, stopping;
static pthread_barrier_t ready;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(struct conn *c)
{
	uint32_t x = c->seq * 2654435761u + (uint32_t)c->fd;
	for (size_t i = 0; i < size; i++)
		c->msg[i] = (unsigned char)(x + i * 7);
	c->sent = 0;
	c->got = 0;
}

static int arm(struct loader *l, struct conn *c, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
	c->want_out = out;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		return 0;
	fprintf(stderr, "echo_load: epoll_ctl: %s\n", strerror(errno));
	return -1;
}

/* Write what is left of the message; arms EPOLLOUT while the kernel takes only part. */
static int push(struct loader *l, struct conn *c)
{
	while (c->sent < size) {
		ssize_t w = send(c->fd, c->msg + c->sent, size - c->sent, MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN)
			return c->want_out ? 0 : arm(l, c, true);
		if (w < 0) {
			fprintf(stderr, "echo_load: send: %s\n", strerror(errno));
			return -1;
		}
		c->sent += (size_t)w;
	}
	return c->want_out ? arm(l, c, false) : 0;
}

/* Read the echo; on a whole one, check it, count it and send the next message. */
static int pull(struct loader *l, struct conn *c)
{
	ssize_t r = recv(c->fd, c->echo + c->got, size - c->got, 0);
	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0) {
		fprintf(stderr, "echo_load: recv: %s\n", r ? strerror(errno) : "connection closed");
		return -1;
	}
	if (c->got + (size_t)r > c->sent) {
		fprintf(stderr, "echo_load: %zu bytes echoed of %zu sent\n", c->got + (size_t)r,
		        c->sent);
		return -1;
	}
	c->got += (size_t)r;
	if (c->got < size)
		return 0;
	if (memcmp(c->msg, c->echo, size) != 0) {
		fprintf(stderr, "echo_load: mismatched byte in the echo of message %u\n", c->seq);
		return -1;
	}
	if (atomic_load_explicit(&stopping, memory_order_relaxed))
		return 0;
	l->all++;
	if (atomic_load_explicit(&started, memory_order_relaxed))
		l->roundtrips++;
	c->seq++;
	fill(c);
	return push(l, c);
}

static int open_conn(const struct sockaddr_in *sa, struct loader *l, struct conn *c);

static void *drive(void *arg)
{
	struct loader *l = arg;
	struct epoll_event evs[256];
	/* Each thread opens its own connections, as a client's threads would (and as wrk's do):
	 * a server that steers connections by the CPU that handles them sees this thread's. */
	for (int i = 0; i < l->n && !l->failed; i++)
		if (open_conn(l->sa, l, &l->c[i]) < 0)
			l->failed = 1;
	pthread_barrier_wait(&ready);
	for (int i = 0; i < l->n && !l->failed; i++)
		if (push(l, &l->c[i]) < 0)
			l->failed = 1;
	while (!l->failed && !atomic_load_explicit(&stopping, memory_order_relaxed)) {
		int n = epoll_wait(l->ep, evs, 256, 100);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "echo_load: epoll_wait: %s\n", strerror(errno));
			l->failed = 1;
		}
		for (int i = 0; i < n && !l->failed; i++) {
			struct conn *c = evs[i].data.ptr;
			if ((evs[i].events & EPOLLOUT) && push(l, c) < 0)
				l->failed = 1;
			else if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
			         pull(l, c) < 0)
				l->failed = 1;
		}
	}
	if (l->failed)
		atomic_store(&stopping, true); /* the others stop too, and main wakes */
	return NULL;
}

static int open_conn(const struct sockaddr_in *sa, struct loader *l, struct conn *c)
{
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		fprintf(stderr, "echo_load: connect: %s\n", strerror(errno));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	c->msg = malloc(size);
	c->echo = malloc(size);
	if (!c->msg || !c->echo) {
		fprintf(stderr, "echo_load: out of memory\n");
		return -1;
	}
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		fprintf(stderr, "echo_load: epoll_ctl: %s\n", strerror(errno));
		return -1;
	}
	fill(c);
	return 0;
}

static long number(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	return v;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	long port = -1, conns = 100, threads = 1;
	double seconds = 3;
	for (int i = 1; i < argc; i += 2) { /* every option takes a value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long x = 0;
		if (!v)
			goto usage;
		if (!strcmp(a, "--host"))
			host = v;
		else if (!strcmp(a, "--port") && (x = number(v, 1, 65535)) > 0)
			port = x;
		else if (!strcmp(a, "--conns") && (x = number(v, 1, 100000)) > 0)
			conns = x;
		else if (!strcmp(a, "--size") && (x = number(v, 1, 1 << 24)) > 0)
			size = (size_t)x;
		else if (!strcmp(a, "--threads") && (x = number(v, 1, 256)) > 0)
			threads = x;
		else if (!strcmp(a, "--seconds") && (seconds = atof(v)) > 0)
			;
		else
			goto usage;
	}
	if (port < 0)
		goto usage;
	if (threads > conns)
		threads = conns;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "echo_load: bad IPv4 address %s\n", host);
		return 2;
	}
	struct loader *ls = calloc((size_t)threads, sizeof(*ls));
	struct conn *cs = calloc((size_t)conns, sizeof(*cs));
	if (!ls || !cs) {
		fprintf(stderr, "echo_load: out of memory\n");
		return 1;
	}
	/* Every connection is open before the clock starts: the window measures echoes alone. */
	for (long t = 0, first = 0; t < threads; t++) {
		struct loader *l = &ls[t];
		l->c = cs + first;
		l->n = (int)((conns * (t + 1)) / threads - first);
		first += l->n;
		l->sa = &sa;
		l->ep = epoll_create1(EPOLL_CLOEXEC);
		if (l->ep < 0) {
			fprintf(stderr, "echo_load: epoll_create1: %s\n", strerror(errno));
			return 1;
		}
	}
	pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
	for (long t = 0; t < threads; t++)
		if (pthread_create(&ls[t].thread, NULL, drive, &ls[t]) != 0) {
			fprintf(stderr, "echo_load: pthread_create failed\n");
			return 1;
		}
	pthread_barrier_wait(&ready);
	/* A short untimed warm-up: the first round trips of each connection are not counted. */
	struct timespec warm = {0, 50 * 1000 * 1000};
	nanosleep(&warm, NULL);
	double t0 = now_s();
	atomic_store(&started, true);
	double end = t0 + seconds;
	for (double t = t0; t < end && !atomic_load(&stopping); t = now_s()) {
		double left = end - t < 0.05 ? end - t : 0.05;
		struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
		nanosleep(&ts, NULL);
	}
	atomic_store(&stopping, true);
	double t1 = now_s();
	int failed = 0;
	uint64_t total = 0, all = 0;
	for (long t = 0; t < threads; t++) {
		pthread_join(ls[t].thread, NULL);
		failed |= ls[t].failed;
		total += ls[t].roundtrips;
		all += ls[t].all;
	}
	for (long i = 0; i < conns; i++)
		if (cs[i].fd > 0) /* 0: a connection a failed thread never opened (calloc) */
			close(cs[i].fd);
	if (failed)
		return 1;
	printf("roundtrips %llu seconds %.3f rate %.1f all %llu\n", (unsigned long long)total,
	       t1 - t0, (double)total / (t1 - t0), (unsigned long long)all);
	return 0;
usage:
	fprintf(stderr,
	        "usage: %s --port N [--host 127.0.0.1] [--conns 100] [--size 64] "
	        "[--seconds 3] [--threads 1]\n",
	        argv[0]);
	return 2;
}
