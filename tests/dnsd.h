/*
 * A tiny DNS server over UDP for the resolver's tests and benchmark (tests/service/
 * test_resolve.c, bench/rotor/resolve.c): A and AAAA answers, NXDOMAIN, SERVFAIL, REFUSED or
 * silence for the names it is given, a numbered address for every name under a wildcard
 * suffix, and a count of the queries it saw. One thread (dnsd_start) or the caller's own loop
 * (dnsd_serve, for a child process). Plain C and POSIX; no rotor.
 */
#ifndef ROTOR_TESTS_DNSD_H
#define ROTOR_TESTS_DNSD_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNSD_DROP (-1) /* rcode: never answer */

struct dnsd_name {
	const char *name; /* lower case, no trailing dot */
	const char *a;    /* dotted quad, or NULL */
	const char *aaaa; /* IPv6 literal, or NULL */
	int rcode;        /* 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED, DNSD_DROP */
	uint32_t ttl;
};

struct dnsd {
	const struct dnsd_name *names;
	size_t n;
	const char *wild; /* "x.test": n.x.test gets A 10.n/65536.n/256.n%256, else NULL */
	uint32_t wild_ttl;
	atomic_bool drop_all; /* answer nothing */
	atomic_int queries;   /* queries seen (answered or not) */
	atomic_bool stop;
	int fd;
	pthread_t thread;
};

/* The question's name (dotted, lower case) into name; the offset after the question, or 0. */
static inline size_t dnsd_question(const unsigned char *b, size_t n, char *name, size_t cap,
                                   unsigned *qtype)
{
	size_t p = 12, o = 0;
	while (p < n && b[p]) {
		size_t len = b[p++];
		if (len > 63 || p + len > n || o + len + 2 > cap)
			return 0;
		if (o)
			name[o++] = '.';
		for (size_t i = 0; i < len; i++) {
			char c = (char)b[p + i];
			name[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		}
		p += len;
	}
	name[o] = 0;
	if (p + 5 > n)
		return 0;
	*qtype = (unsigned)(b[p + 1] << 8 | b[p + 2]);
	return p + 5;
}

static inline size_t dnsd_put_rr(unsigned char *b, size_t o, unsigned type, uint32_t ttl,
                                 const void *rdata, unsigned len)
{
	unsigned char rr[12] = {0xc0,
	                        12,
	                        (unsigned char)(type >> 8),
	                        (unsigned char)type,
	                        0,
	                        1,
	                        (unsigned char)(ttl >> 24),
	                        (unsigned char)(ttl >> 16),
	                        (unsigned char)(ttl >> 8),
	                        (unsigned char)ttl,
	                        0,
	                        (unsigned char)len};
	memcpy(b + o, rr, sizeof(rr));
	memcpy(b + o + sizeof(rr), rdata, len);
	return o + sizeof(rr) + len;
}

/* The reply to query q[0..n-1] into r (512 bytes); its length, or 0 for silence. */
static inline size_t dnsd_reply(struct dnsd *d, const unsigned char *q, size_t n, unsigned char *r)
{
	char name[256];
	unsigned qtype;
	size_t qend =
	    n >= 12 && q[5] == 1 && q[4] == 0 ? dnsd_question(q, n, name, sizeof(name), &qtype) : 0;
	if (!qend || qend > 300 || atomic_load(&d->drop_all))
		return 0;
	const struct dnsd_name *e = NULL;
	struct dnsd_name wild = {0};
	char wa[16];
	for (size_t i = 0; i < d->n && !e; i++)
		if (strcmp(d->names[i].name, name) == 0)
			e = &d->names[i];
	size_t nl = strlen(name), wl = d->wild ? strlen(d->wild) : 0;
	if (!e && wl && nl > wl + 1 && name[nl - wl - 1] == '.' &&
	    strcmp(name + nl - wl, d->wild) == 0) {
		unsigned long k = strtoul(name, NULL, 10);
		snprintf(wa, sizeof(wa), "10.%lu.%lu.%lu", (k >> 16) & 255, (k >> 8) & 255,
		         k & 255);
		wild.a = wa;
		wild.ttl = d->wild_ttl;
		e = &wild;
	}
	int rcode = e ? e->rcode : 3;
	if (rcode == DNSD_DROP)
		return 0;
	memcpy(r, q, qend);
	r[2] = (unsigned char)(0x84 | (q[2] & 0x79)); /* QR, AA, the opcode and RD asked */
	r[3] = (unsigned char)(0x80 | rcode);         /* RA */
	memset(r + 6, 0, 6);                          /* AN, NS, AR counts */
	size_t o = qend;
	unsigned an = 0;
	unsigned char addr[16];
	if (rcode == 0 && qtype == 1 && e->a && inet_pton(AF_INET, e->a, addr) == 1) {
		o = dnsd_put_rr(r, o, 1, e->ttl, addr, 4);
		an++;
	}
	if (rcode == 0 && qtype == 28 && e->aaaa && inet_pton(AF_INET6, e->aaaa, addr) == 1) {
		o = dnsd_put_rr(r, o, 28, e->ttl, addr, 16);
		an++;
	}
	r[7] = (unsigned char)an;
	return o;
}

/* Serve on d->fd until d->stop. */
static inline void dnsd_serve(struct dnsd *d)
{
	unsigned char q[512], r[512];
	while (!atomic_load(&d->stop)) {
		struct pollfd p = {.fd = d->fd, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		for (;;) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(d->fd, q, sizeof(q), MSG_DONTWAIT,
			                     (struct sockaddr *)&from, &fl);
			if (n < 0)
				break;
			atomic_fetch_add(&d->queries, 1);
			size_t len = dnsd_reply(d, q, (size_t)n, r);
			if (len)
				sendto(d->fd, r, len, 0, (struct sockaddr *)&from, fl);
		}
	}
}

static inline void *dnsd_thread(void *arg)
{
	dnsd_serve(arg);
	return NULL;
}

/* Bind UDP ip:port (IPv4). 0 or -errno. */
static inline int dnsd_bind(struct dnsd *d, const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return -EINVAL;
	d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (d->fd < 0)
		return -errno;
	int big = 4 << 20;
	setsockopt(d->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(d->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int err = -errno;
		close(d->fd);
		d->fd = -1;
		return err;
	}
	return 0;
}

/* Bind and serve on a thread. 0 or -errno. */
static inline int dnsd_start(struct dnsd *d, const char *ip, int port)
{
	int r = dnsd_bind(d, ip, port);
	if (r < 0)
		return r;
	atomic_store(&d->stop, false);
	if ((r = pthread_create(&d->thread, NULL, dnsd_thread, d)) != 0) {
		close(d->fd);
		return -r;
	}
	return 0;
}

static inline void dnsd_stop(struct dnsd *d)
{
	atomic_store(&d->stop, true);
	pthread_join(d->thread, NULL);
	close(d->fd);
}

#endif
