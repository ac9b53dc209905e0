/*
 * Addresses, literals, host names and /etc/hosts (resolve.h): what resolution answers with
 * no query, from any thread, never suspending. The file is parsed into (address, name)
 * pairs in file order, names lower-cased without their final dot.
 */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- addresses, literals, names ---------------------------------------------------------- */

void rotor__addr_port(struct rotor_addr *a, int port)
{
	if (a->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&a->addr)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&a->addr)->sin6_port = htons((uint16_t)port);
}

void rotor__addr_v4(struct rotor_addr *a, const void *in)
{
	memset(a, 0, sizeof(*a));
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->addr;
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, in, sizeof(sin->sin_addr));
	a->len = sizeof(*sin);
}

void rotor__addr_v6(struct rotor_addr *a, const void *in6, uint32_t scope)
{
	memset(a, 0, sizeof(*a));
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->addr;
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, in6, sizeof(sin6->sin6_addr));
	sin6->sin6_scope_id = scope;
	a->len = sizeof(*sin6);
}

static bool addr_same(const struct rotor_addr *a, const struct rotor_addr *b)
{
	return a->len == b->len && memcmp(&a->addr, &b->addr, a->len) == 0;
}

static bool family_ok(int want, int got)
{
	return want == AF_UNSPEC || want == got;
}

/* host as an address literal into *a: 1, 0 (no literal), -EINVAL (a bad scope). */
static int literal(const char *host, struct rotor_addr *a)
{
	unsigned char buf[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, host, buf) == 1) {
		rotor__addr_v4(a, buf);
		return 1;
	}
	if (!strchr(host, ':'))
		return 0;
	char tmp[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	size_t n = strlen(host);
	if (n >= sizeof(tmp))
		return 0;
	memcpy(tmp, host, n + 1);
	uint32_t scope = 0;
	char *pct = strchr(tmp, '%');
	if (pct) {
		*pct++ = 0;
		char *end;
		unsigned long v = strtoul(pct, &end, 10);
		if (*pct && !*end && v <= UINT32_MAX)
			scope = (uint32_t)v;
		else if (!(scope = if_nametoindex(pct)))
			return -EINVAL;
	}
	if (inet_pton(AF_INET6, tmp, buf) != 1)
		return pct ? -EINVAL : 0;
	rotor__addr_v6(a, buf, scope);
	return 1;
}

/* host lower-cased, without a trailing dot, into name[ROTOR__NAME_LEN_MAX + 1]: 0 or -EINVAL when
 * it is no host name (RFC 1123 letters, digits, '-', and '_' for the names services use; labels
 * of 1..63, the last not all digits). */
static int normalise(const char *host, char *name)
{
	size_t n = strlen(host);
	if (n && host[n - 1] == '.')
		n--;
	if (n == 0 || n > ROTOR__NAME_LEN_MAX)
		return -EINVAL;
	size_t label = 0;
	bool digits = true; /* the label so far is all digits */
	for (size_t i = 0; i < n; i++) {
		char c = host[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
			digits = true;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		           c == '_') {
			if (++label > 63)
				return -EINVAL;
			digits = digits && c >= '0' && c <= '9';
		} else {
			return -EINVAL;
		}
		name[i] = c;
	}
	name[n] = 0;
	/* No top-level domain is numeric (RFC 3696): "256.1.2.3" is a bad address, no name. */
	return digits ? -EINVAL : 0;
}

static bool is_localhost(const char *name)
{
	size_t n = strlen(name);
	return strcmp(name, "localhost") == 0 ||
	       (n > 10 && strcmp(name + n - 10, ".localhost") == 0);
}

static int localhost(int family, struct rotor_addr *out, size_t cap)
{
	size_t n = 0;
	if (family_ok(family, AF_INET6))
		rotor__addr_v6(&out[n++], &in6addr_loopback, 0);
	if (family_ok(family, AF_INET) && n < cap) {
		struct in_addr lo = {htonl(INADDR_LOOPBACK)};
		rotor__addr_v4(&out[n++], &lo);
	}
	return (int)n;
}

/* The checks, literals and localhost: what needs neither a file nor a query. Returns the
 * count, 0 with name set (look further), or a negative errno. */
int rotor__resolve_quick(const char *host, int port, int family, struct rotor_addr *out, size_t cap,
                         char *name)
{
	if (!host || !out || cap == 0 || port < 0 || port > 65535 ||
	    (family != AF_UNSPEC && family != AF_INET && family != AF_INET6))
		return -EINVAL;
	struct rotor_addr a;
	int r = literal(host, &a);
	if (r < 0)
		return r;
	if (r > 0) {
		if (!family_ok(family, a.addr.ss_family))
			return -ENOENT;
		out[0] = a;
		rotor__addr_port(&out[0], port);
		return 1;
	}
	if (normalise(host, name) < 0)
		return -EINVAL;
	if (!is_localhost(name))
		return 0;
	int n = localhost(family, out, cap);
	for (int i = 0; i < n; i++)
		rotor__addr_port(&out[i], port);
	return n;
}

void rotor__hosts_fini(struct rotor__hosts *h)
{
	free(h->v);
	free(h->names);
	memset(h, 0, sizeof(*h));
}

static int hosts_add(struct rotor__hosts *h, const struct rotor_addr *a, const char *name)
{
	size_t len = strlen(name);
	if (len && name[len - 1] == '.')
		len--;
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		struct rotor__hosts_pair *v = realloc(h->v, sizeof(*v) * cap);
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	if (h->nlen + len + 1 > h->ncap) {
		size_t cap = h->ncap ? 2 * h->ncap : 1024;
		while (cap < h->nlen + len + 1)
			cap *= 2;
		char *names = realloc(h->names, cap);
		if (!names)
			return -ENOMEM;
		h->names = names;
		h->ncap = cap;
	}
	char *dst = h->names + h->nlen;
	for (size_t i = 0; i < len; i++)
		dst[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	dst[len] = 0;
	h->v[h->n++] = (struct rotor__hosts_pair){.name = h->nlen, .a = *a};
	h->nlen += len + 1;
	return 0;
}

/* Parse the file into h (empty where there is none). 0 or -ENOMEM (h then empty). */
int rotor__hosts_load(struct rotor__hosts *h)
{
	rotor__hosts_fini(h);
	FILE *f = fopen(ROTOR__HOSTS_PATH, "re");
	h->loaded = !f;
	if (!f)
		return 0;
	fstat(fileno(f), &h->st);
	char line[1024];
	int err = 0;
	while (!err && fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *save, *addr = strtok_r(line, " \t\r\n", &save), *tok;
		struct rotor_addr a;
		if (!addr || literal(addr, &a) != 1)
			continue;
		while (!err && (tok = strtok_r(NULL, " \t\r\n", &save)))
			err = hosts_add(h, &a, tok);
	}
	fclose(f);
	if (err)
		rotor__hosts_fini(h);
	h->loaded = !err;
	return err;
}

/* name's addresses in h (every line that names it, in file order), port 0: the count, 0
 * (not there), -ENOENT (there, with addresses of another family only). */
int rotor__hosts_find(const struct rotor__hosts *h, const char *name, int family,
                      struct rotor_addr *out, size_t cap)
{
	size_t n = 0;
	bool other = false;
	for (size_t i = 0; i < h->n && n < cap; i++) {
		const struct rotor__hosts_pair *p = &h->v[i];
		if (strcmp(h->names + p->name, name) != 0)
			continue;
		if (!family_ok(family, p->a.addr.ss_family)) {
			other = true;
			continue;
		}
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = addr_same(&out[k], &p->a);
		if (!dup)
			out[n++] = p->a;
	}
	return n ? (int)n : other ? -ENOENT : 0;
}

int rotor__resolve_local(const char *host, int port, int family, struct rotor_addr *out, size_t cap)
{
	char name[ROTOR__NAME_LEN_MAX + 1];
	int n = rotor__resolve_quick(host, port, family, out, cap, name);
	if (n != 0)
		return n;
	struct rotor__hosts h = {0};
	if ((n = rotor__hosts_load(&h)) == 0)
		n = rotor__hosts_find(&h, name, family, out, cap);
	rotor__hosts_fini(&h);
	for (int i = 0; i < n; i++)
		rotor__addr_port(&out[i], port);
	return n;
}

int rotor__eai_errno(int eai)
{
	switch (eai) {
	case 0:
		return 0;
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return -ENOENT;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EAGAIN;
	case EAI_FAMILY:
	case EAI_SOCKTYPE:
	case EAI_SERVICE:
	case EAI_BADFLAGS:
		return -EINVAL;
	default: /* EAI_AGAIN, EAI_FAIL */
		return -EAGAIN;
	}
}

size_t rotor__addrinfo_copy(const struct addrinfo *ai, struct rotor_addr *out, size_t cap)
{
	size_t n = 0;
	for (; ai && n < cap; ai = ai->ai_next) {
		struct rotor_addr a;
		if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
			rotor__addr_v4(&a, &((const struct sockaddr_in *)ai->ai_addr)->sin_addr);
		else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6))
			rotor__addr_v6(&a, &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
			               ((const struct sockaddr_in6 *)ai->ai_addr)->sin6_scope_id);
		else
			continue;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = addr_same(&out[i], &a);
		if (!dup)
			out[n++] = a;
	}
	return n;
}
