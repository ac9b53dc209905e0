/*
 * Name resolution (resolve.c) as the other service modules use it: the answers that need no
 * query, the check of a name, and getaddrinfo's EAI_* codes as rotor_resolve's errnos, for
 * the callers that must fall back on getaddrinfo (rotor_tcp_listen off a task).
 */
#ifndef ROTOR__RESOLVE_H
#define ROTOR__RESOLVE_H

#include <netdb.h>

#include <rotor/resolve.h>

/* What host resolves to without a query, from any thread, never suspending: a literal,
 * localhost, a name in /etc/hosts. Returns the count written (1..cap), 0 when only DNS can
 * tell, -ENOENT (a literal or a hosts entry of another family only), -EINVAL (not a valid
 * name or literal, port out of range). */
int rotor__resolve_local(const char *host, int port, int family, struct rotor_addr *out,
                         size_t cap);

/* getaddrinfo's result (EAI_*) as the errno rotor_resolve would have returned. */
int rotor__eai_errno(int eai);

/* Copy the addresses of a getaddrinfo list into out[0..cap-1]; the count. */
size_t rotor__addrinfo_copy(const struct addrinfo *ai, struct rotor_addr *out, size_t cap);

#endif
