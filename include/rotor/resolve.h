/*
 * rotor/resolve.h: name resolution that suspends only the calling task: address literals,
 * localhost and /etc/hosts answered at once, DNS through a per-worker c-ares channel driven
 * by the worker's ring, and a small per-worker cache that keeps each answer for its TTL.
 */
#ifndef ROTOR_PUBLIC_RESOLVE_H
#define ROTOR_PUBLIC_RESOLVE_H

#include <sys/socket.h>

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Name resolution ----------------------------------------------------------------- */

/* One address: a sockaddr_in or sockaddr_in6 in addr (port set), its length in len. Pass
 * (const struct sockaddr *)&a.addr and a.len to connect or bind. */
struct rotor_addr {
	struct sockaddr_storage addr;
	socklen_t len;
};

/* What to ask for. A NULL hints is {AF_UNSPEC, 0}. */
struct rotor_resolve_hints {
	int family;     /* AF_UNSPEC (0: IPv6 and IPv4), AF_INET or AF_INET6 */
	unsigned flags; /* ROTOR_RESOLVE_* */
};
#define ROTOR_RESOLVE_NO_CACHE (1u << 0) /* neither answer from the worker's cache nor fill it */

/*
 * rotor_resolve - the addresses of host (a name, or an IPv4 or IPv6 literal, "fe80::1%eth0"
 * with a scope) with port set in each, written to out[0..cap-1] in the order to try them
 * (c-ares sorts them as RFC 6724 says). Literals, "localhost" and names under ".localhost"
 * (::1, 127.0.0.1) and names in /etc/hosts (parsed once per worker, again when it changes)
 * are answered without a query and without suspending; other names are asked of the servers
 * of /etc/resolv.conf through the calling worker's c-ares channel, whose sockets the worker's
 * ring watches: only the calling task waits. Each worker keeps what it learnt for the
 * answer's TTL (at most 300 s; /etc/hosts answers 5 s; "no such name" 5 s), at most 1024 names, and
 * asks once for a name that many tasks want at the same time. Returns the number of addresses
 * written (1..cap); or -ENOENT (no such name, or it has no address of the family asked: NXDOMAIN,
 * NODATA, not in /etc/hosts), -EAGAIN (temporary failure: SERVFAIL, refused, a malformed answer, or
 * every server failed to answer within c-ares' own timeouts and tries (resolv.conf's options
 * timeout: and attempts:) before deadline), -ETIMEDOUT (deadline passed first), -ECANCELED (the
 * task was cancelled), -EINVAL (host NULL, empty or not a valid name, port outside 0..65535, out
 * NULL, cap 0, a family other than the three), -ENOMEM, -EPERM off a task. A task that stops
 * waiting (deadline, cancel) leaves the query running: its answer still fills the cache. Thread:
 * task (a worker's). Suspends: yes, only while a DNS query is outstanding.
 */
ROTOR_API int rotor_resolve(const char *host, int port, const struct rotor_resolve_hints *hints,
                            struct rotor_addr *out, size_t cap, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_RESOLVE_H */
