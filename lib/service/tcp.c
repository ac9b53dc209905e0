/*
 * The TCP helpers that take a host name (declared in include/rotor/io.h): rotor_tcp_listen
 * and rotor_tcp_dial, on rotor_resolve (resolve.c). Dial races the addresses as RFC 8305
 * (Happy Eyeballs v2) says: families interleaved, the next attempt started 250 ms after the
 * last or at once when it fails, the first connection wins; every attempt is a task of the
 * dialing task's worker, and the dial returns only when each has ended and closed its socket.
 */
#include "core.h"
#include "resolve.h"

#include <rotor/io.h>
#include <rotor/sync.h>
#include <rotor/task.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ADDRS_MAX         16
#define ATTEMPT_DELAY_NS  (250 * 1000 * 1000LL)  /* RFC 8305's Connection Attempt Delay */
#define LISTEN_RESOLVE_NS (10 * 1000000000LL)    /* a listener's name, resolved on a task */
#define CLEANUP_SHIELD_NS (1000 * 1000 * 1000LL) /* cancelled attempts end well within it */

/* ---- listen ---- */

/* A listening socket of family af on addr, or -errno. v6only: 0 to take IPv4 too. */
static int listen_on(const struct sockaddr *addr, socklen_t len, int v6only, int backlog,
                     unsigned flags)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (((flags & ROTOR_TCP_REUSEPORT) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    (addr->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) ||
	    bind(fd, addr, len) < 0 || listen(fd, backlog > 0 ? backlog : 511) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Off a task: getaddrinfo, blocking the thread, its errors as rotor_resolve's. */
static int resolve_blocking(const char *host, int port, struct rotor_addr *out, size_t cap)
{
	struct addrinfo hints, *ai;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	errno = 0;
	int rc = getaddrinfo(host, NULL, &hints, &ai);
	if (rc)
		return rotor__eai_errno(rc);
	size_t n = rotor__addrinfo_copy(ai, out, cap);
	freeaddrinfo(ai);
	for (size_t i = 0; i < n; i++)
		rotor__addr_port(&out[i], port);
	return n ? (int)n : -ENOENT;
}

int rotor_tcp_listen(const char *host, int port, int backlog, unsigned flags)
{
	if (port < 0 || port > 65535)
		return -EINVAL;
	if (!host || !*host) {
		/* Every address: one IPv6 socket that takes IPv4 too (IPV6_V6ONLY off, whatever
		 * net.ipv6.bindv6only says), or IPv4 alone where the machine has no IPv6. */
		struct sockaddr_in6 any6 = {.sin6_family = AF_INET6,
		                            .sin6_port = htons((uint16_t)port),
		                            .sin6_addr = IN6ADDR_ANY_INIT};
		int fd = listen_on((struct sockaddr *)&any6, sizeof(any6), 0, backlog, flags);
		if (fd >= 0 || (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL))
			return fd;
		struct sockaddr_in any4 = {.sin_family = AF_INET,
		                           .sin_port = htons((uint16_t)port),
		                           .sin_addr = {htonl(INADDR_ANY)}};
		return listen_on((struct sockaddr *)&any4, sizeof(any4), 1, backlog, flags);
	}
	struct rotor_addr a[ADDRS_MAX];
	int n = rotor__resolve_local(host, port, AF_UNSPEC, a, ADDRS_MAX);
	if (n == 0)
		n = rotor_current() ? rotor_resolve(host, port, NULL, a, ADDRS_MAX,
		                                    rotor_now() + LISTEN_RESOLVE_NS)
		                    : resolve_blocking(host, port, a, ADDRS_MAX);
	if (n < 0)
		return n;
	int r = -EADDRNOTAVAIL;
	for (int i = 0; i < n; i++) {
		r = listen_on((const struct sockaddr *)&a[i].addr, a[i].len, 1, backlog, flags);
		if (r >= 0)
			break;
	}
	return r;
}

/* ---- dial ---- */

struct dial {
	struct rotor_event ev; /* set by an attempt that ended */
	int64_t deadline;
	int winner;       /* the connected socket, or -1 */
	int err;          /* the error of the last attempt that failed */
	unsigned running; /* attempts not ended */
};

struct attempt {
	struct dial *d;
	const struct rotor_addr *a;
	struct rotor_task *task;
};

static void attempt_end(struct dial *d, int err)
{
	if (err < 0)
		d->err = err;
	d->running--;
	rotor_event_set(&d->ev);
}

static void *attempt_run(void *arg)
{
	struct attempt *at = arg;
	struct dial *d = at->d;
	int fd = rotor_socket(at->a->addr.ss_family, SOCK_STREAM, 0, d->deadline);
	int r = fd;
	if (fd >= 0) {
		r = rotor_connect(fd, (const struct sockaddr *)&at->a->addr, at->a->len,
		                  d->deadline);
		if (r == 0 && d->winner < 0)
			d->winner = fd;
		else
			close(fd); /* failed, or another attempt won first */
	}
	attempt_end(d, r);
	return NULL;
}

/* Cancelled before it ran: it never made a socket. */
static void attempt_discard(void *arg)
{
	struct attempt *at = arg;
	attempt_end(at->d, 0);
}

/* RFC 8305 section 4: alternate the families, starting with the first address's. */
static void interleave(struct rotor_addr *a, int n)
{
	struct rotor_addr tmp[ADDRS_MAX];
	int first = a[0].addr.ss_family, k = 0;
	int i = 0, j = 0; /* the next address of the first family, of the other */
	while (k < n) {
		while (i < n && a[i].addr.ss_family != first)
			i++;
		while (j < n && a[j].addr.ss_family == first)
			j++;
		if (i < n)
			tmp[k++] = a[i++];
		if (j < n)
			tmp[k++] = a[j++];
	}
	memcpy(a, tmp, sizeof(*a) * (size_t)n);
}

static int connect_one(const struct rotor_addr *a, int64_t deadline)
{
	int fd = rotor_socket(a->addr.ss_family, SOCK_STREAM, 0, deadline);
	if (fd < 0)
		return fd;
	int r = rotor_connect(fd, (const struct sockaddr *)&a->addr, a->len, deadline);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static int race(const struct rotor_addr *a, int n, int64_t deadline)
{
	struct dial d = {.deadline = deadline, .winner = -1, .err = -EHOSTUNREACH};
	struct attempt at[ADDRS_MAX];
	rotor_event_init(&d.ev);
	int started = 0, res = 0;
	int64_t next_at = 0;
	while (d.winner < 0) {
		if (started < n && (d.running == 0 || rotor_now() >= next_at)) {
			struct rotor_task_attr attr = {.name = "rotor/dial",
			                               .discard = attempt_discard};
			at[started] = (struct attempt){.d = &d, .a = &a[started]};
			int r =
			    rotor_spawn_attr(&attr, attempt_run, &at[started], &at[started].task);
			if (r < 0) {
				at[started].task = NULL;
				d.err = r;
			} else {
				d.running++;
			}
			started++;
			next_at = rotor_now() + ATTEMPT_DELAY_NS;
			continue;
		}
		if (d.running == 0)
			break; /* every address failed */
		rotor_event_clear(&d.ev);
		int64_t until = started < n && next_at < deadline ? next_at : deadline;
		int r = rotor_event_wait_until(&d.ev, until);
		if (r == -ECANCELED || (r == -ETIMEDOUT && until == deadline)) {
			res = r;
			break;
		}
	}
	/* Stop the others and wait for each to close its socket, even when cancelled. */
	rotor_shield_begin(rotor_now() + CLEANUP_SHIELD_NS);
	for (int i = 0; i < started; i++)
		if (at[i].task)
			rotor_cancel(at[i].task);
	for (int i = 0; i < started; i++)
		if (at[i].task)
			rotor_join(at[i].task, NULL);
	rotor_shield_end();
	if (d.winner >= 0)
		return d.winner;
	return res ? res : d.err;
}

int rotor_tcp_dial(const char *host, int port, int64_t deadline)
{
	if (!rotor_current())
		return -EPERM;
	struct rotor_addr a[ADDRS_MAX];
	int n =
	    rotor_resolve(host && *host ? host : "localhost", port, NULL, a, ADDRS_MAX, deadline);
	if (n < 0)
		return n;
	if (n == 1)
		return connect_one(&a[0], deadline);
	interleave(a, n);
	return race(a, n, deadline);
}
