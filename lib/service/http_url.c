/*
 * URLs for the HTTP client (include/rotor/http_client.h): rotor_http_url_parse, and for
 * redirects a Location resolved against the request's URL and the test whether two URLs
 * share an origin. Pure functions over strings.
 */
#include "http_pool.h"

#include <rotor/http_client.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- URLs ----------------------------------------------------------------------------- */

int rotor_http_url_parse(const char *url, struct rotor_http_url *out)
{
	if (!url || !out)
		return -EINVAL;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return -EINVAL;
	int https;
	const char *p;
	if (!strncasecmp(url, "http://", 7)) {
		https = 0;
		p = url + 7;
	} else if (!strncasecmp(url, "https://", 8)) {
		https = 1;
		p = url + 8;
	} else {
		return -EINVAL;
	}
	size_t auth = strcspn(p, "/?#");
	const char *end = p + auth;
	const char *at = memchr(p, '@', auth);
	if (at) /* userinfo: not sent (no Authorization from a URL) */
		p = at + 1;
	const char *host = p, *host_end, *colon = NULL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));
		if (!rb)
			return -EINVAL;
		host = p + 1;
		host_end = rb;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -EINVAL;
			colon = rb + 1;
		}
		for (const char *q = host; q < host_end; q++)
			if (!strchr("0123456789abcdefABCDEF:.%", *q) && !(q > host && q[-1] == '%'))
				if (!memchr(host, '%', (size_t)(q - host)))
					return -EINVAL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		host_end = colon ? colon : end;
		for (const char *q = host; q < host_end; q++)
			if (strchr("[]<>\"\\^`{|}", *q))
				return -EINVAL;
	}
	size_t hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen >= sizeof(out->host))
		return -EINVAL;
	int port = https ? 443 : 80;
	if (colon && colon + 1 < end) {
		port = 0;
		for (const char *q = colon + 1; q < end; q++) {
			if (*q < '0' || *q > '9' || port > 65535)
				return -EINVAL;
			port = port * 10 + (*q - '0');
		}
		if (port < 1 || port > 65535)
			return -EINVAL;
	}
	size_t tlen = strcspn(end, "#");
	if (tlen + 2 > sizeof(out->target))
		return -EINVAL;
	out->https = https;
	out->port = port;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	size_t off = 0;
	if (tlen == 0 || end[0] == '?')
		out->target[off++] = '/';
	memcpy(out->target + off, end, tlen);
	out->target[off + tlen] = '\0';
	return 0;
}

/* Location resolved against base (RFC 3986 section 5.2, for the forms servers send: an
 * absolute URL, "//authority/path", "/path", or a path relative to base's directory), in
 * new memory; NULL for no memory or a base that is no URL. */
char *rotor__http_resolve_location(const char *base, const char *loc)
{
	const char *auth = strstr(base, "://");
	if (!auth)
		return NULL;
	auth += 3;
	const char *path = auth + strcspn(auth, "/?#");
	size_t keep;
	if (!strncasecmp(loc, "http://", 7) || !strncasecmp(loc, "https://", 8))
		keep = 0;
	else if (loc[0] == '/' && loc[1] == '/')
		keep = (size_t)(auth - 2 - base); /* "http:" */
	else if (loc[0] == '/')
		keep = (size_t)(path - base);
	else {
		const char *end = path + strcspn(path, "?#");
		const char *slash = end;
		while (slash > path && slash[-1] != '/')
			slash--;
		keep = (size_t)(slash - base);
		if (slash == path) { /* no path: "/" before the reference */
			char *u = malloc(keep + 1 + strlen(loc) + 1);
			if (u) {
				memcpy(u, base, keep);
				u[keep] = '/';
				strcpy(u + keep + 1, loc);
			}
			return u;
		}
	}
	char *u = malloc(keep + strlen(loc) + 1);
	if (u) {
		memcpy(u, base, keep);
		strcpy(u + keep, loc);
	}
	return u;
}

bool rotor__http_same_origin(const char *a, const char *b)
{
	struct rotor_http_url x, y;
	return rotor_http_url_parse(a, &x) == 0 && rotor_http_url_parse(b, &y) == 0 &&
	       x.https == y.https && x.port == y.port && !strcasecmp(x.host, y.host);
}
