/*
 * Name resolution as the service modules share it: hosts.c (addresses, literals, names,
 * /etc/hosts: what needs no query) for resolve.c (rotor_resolve) and tcp.c (the TCP
 * helpers), and getaddrinfo's EAI_* codes as rotor_resolve's errnos, for the callers that
 * fall back on getaddrinfo (rotor_tcp_listen off a task).
 */
#ifndef ROTOR__RESOLVE_H
#define ROTOR__RESOLVE_H

#include <netdb.h>
#include <stdbool.h>
#include <sys/stat.h>

#include <rotor/resolve.h>

#define ROTOR__NAME_LEN_MAX 253
#define ROTOR__HOSTS_PATH   "/etc/hosts"

/* a's port (a sockaddr_in or sockaddr_in6). */
void rotor__addr_port(struct rotor_addr *a, int port);
/* *a = the IPv4 address in (4 bytes), or the IPv6 address in6 (16 bytes) with its scope;
 * port 0. */
void rotor__addr_v4(struct rotor_addr *a, const void *in);
void rotor__addr_v6(struct rotor_addr *a, const void *in6, uint32_t scope);

/* The checks, literals and localhost: what needs neither a file nor a query. Returns the
 * count written (port set), 0 with name[ROTOR__NAME_LEN_MAX + 1] set to host lower-cased
 * and without its final dot (look further), or -EINVAL, -ENOENT (a literal of the other
 * family). */
int rotor__resolve_quick(const char *host, int port, int family, struct rotor_addr *out, size_t cap,
                         char *name);

/* /etc/hosts parsed: every (address, name) pair in file order, names lower-cased and
 * without a final dot, in one arena. Zeroed is empty. */
struct rotor__hosts_pair {
	size_t name; /* offset in names */
	struct rotor_addr a;
};
struct rotor__hosts {
	struct rotor__hosts_pair *v;
	size_t n, cap;
	char *names;
	size_t nlen, ncap;
	struct stat st;  /* of the file as parsed (st_ino 0: none) */
	int64_t checked; /* when the file was last compared with st (the caller's) */
	bool loaded;     /* parsed (an absent file: empty) */
};
/* Parse ROTOR__HOSTS_PATH into h (emptied first). 0 or -ENOMEM (h then empty). */
int rotor__hosts_load(struct rotor__hosts *h);
void rotor__hosts_fini(struct rotor__hosts *h);
/* name's addresses in h (every line that names it, in file order), port 0: the count, 0
 * (not there), -ENOENT (there, with addresses of another family only). */
int rotor__hosts_find(const struct rotor__hosts *h, const char *name, int family,
                      struct rotor_addr *out, size_t cap);

/* What host resolves to without a query, from any thread, never suspending: a literal,
 * localhost, a name in /etc/hosts. Returns the count written (1..cap), 0 when only DNS can
 * tell, -ENOENT (a literal or a hosts entry of another family only), -EINVAL (not a valid
 * name or literal, port out of range). */
int rotor__resolve_local(const char *host, int port, int family, struct rotor_addr *out,
                         size_t cap);

/* getaddrinfo's result (EAI_*) as the errno rotor_resolve would have returned. */
int rotor__eai_errno(int eai);

/* Copy the addresses of a getaddrinfo list into out[0..cap-1], duplicates dropped, port 0;
 * the count. */
size_t rotor__addrinfo_copy(const struct addrinfo *ai, struct rotor_addr *out, size_t cap);

#endif
