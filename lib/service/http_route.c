/*
 * The HTTP server's routes (include/rotor/http.h): exact paths in a small hash, prefixes
 * longest first, the methods of each path with their handlers, fixed responses kept whole,
 * and the choice of a request's route (or its 404, 405 with Allow, 501).
 */
#include "http_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_path *http_find_exact(const struct rotor_http_server *s, const char *p, size_t n)
{
	if (!n)
		return NULL;
	for (struct http_path *hp = s->exact[http_slot(p, n)]; hp; hp = hp->next)
		if (hp->len == n && !memcmp(hp->path, p, n))
			return hp;
	return NULL;
}

static struct http_path *find_path(const struct rotor_http_server *s, const char *p, size_t n)
{
	struct http_path *hp = http_find_exact(s, p, n);
	if (hp)
		return hp;
	for (size_t i = 0; i < s->nprefixes; i++) {
		hp = s->prefixes[i];
		if (hp->len <= n && !memcmp(hp->path, p, hp->len))
			return hp;
	}
	return NULL;
}

static char *dup_str(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (d)
		memcpy(d, s, n + 1);
	if (len)
		*len = n;
	return d;
}

static int add_method(struct rotor_http_server *s, const char *m)
{
	for (size_t i = 0; i < s->nmethods; i++)
		if (!strcmp(s->methods[i], m))
			return 0;
	char **v = realloc(s->methods, (s->nmethods + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->methods = v;
	if (!(v[s->nmethods] = dup_str(m, NULL)))
		return -ENOMEM;
	s->nmethods++;
	return 0;
}

int rotor_http_route(struct rotor_http_server *s, const char *method, const char *path,
                     unsigned flags, rotor_http_handler_fn fn, void *arg)
{
	if (!s || !path || path[0] != '/' || strchr(path, '?') || !fn ||
	    (flags & ~ROTOR_HTTP_PREFIX) || (method && !*method))
		return -EINVAL;
	if (s->started)
		return -EBUSY;
	bool prefix = flags & ROTOR_HTTP_PREFIX;
	size_t n = strlen(path);
	struct http_path *hp = NULL;
	if (prefix) {
		for (size_t i = 0; i < s->nprefixes; i++)
			if (s->prefixes[i]->len == n && !memcmp(s->prefixes[i]->path, path, n))
				hp = s->prefixes[i];
	} else {
		hp = http_find_exact(s, path, n);
	}
	if (hp)
		for (struct http_route *r = hp->routes; r; r = r->next)
			if ((!r->method && !method) ||
			    (r->method && method && !strcmp(r->method, method)))
				return -EEXIST;
	if (method && add_method(s, method) < 0)
		return -ENOMEM;
	struct http_route *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (method && !(r->method = dup_str(method, &r->method_len))) {
		free(r);
		return -ENOMEM;
	}
	if (method) {
		memcpy(&r->method_word, r->method, r->method_len < 4 ? r->method_len : 4);
		memset(&r->method_mask, 0xff, r->method_len < 4 ? r->method_len : 4);
	}
	r->fn = fn;
	r->arg = arg;
	if (!hp) {
		hp = calloc(1, sizeof(*hp));
		struct http_path **v =
		    prefix ? realloc(s->prefixes, (s->nprefixes + 1) * sizeof(*v)) : NULL;
		if (prefix && v)
			s->prefixes = v;
		if (hp) { /* padded: short_eq reads 8 bytes of it whatever its length */
			hp->len = n;
			if ((hp->path = calloc(1, n + 9)))
				memcpy(hp->path, path, n);
		}
		if (!hp || !hp->path || (prefix && !v)) {
			if (hp)
				free(hp->path);
			free(hp);
			free(r->method);
			free(r);
			return -ENOMEM;
		}
		hp->prefix = prefix;
		if (prefix) {
			/* Longest first: the most specific prefix wins. */
			size_t i = s->nprefixes++;
			while (i > 0 && s->prefixes[i - 1]->len < n) {
				s->prefixes[i] = s->prefixes[i - 1];
				i--;
			}
			s->prefixes[i] = hp;
		} else {
			unsigned k = http_slot(path, n);
			hp->next = s->exact[k];
			s->exact[k] = hp;
		}
	}
	/* Appended: the first registered answers first among equals. */
	struct http_route **tail = &hp->routes;
	while (*tail)
		tail = &(*tail)->next;
	*tail = r;
	return 0;
}

static int fixed_respond(struct rotor_http_request *req, struct rotor_http_response *res, void *arg)
{
	(void)req;
	const struct http_route *r = arg;
	return rotor_http_respond(res, r->status, r->type, r->body, r->body_len);
}

int rotor_http_route_fixed(struct rotor_http_server *s, const char *method, const char *path,
                           unsigned flags, int status, const char *type, const void *body,
                           size_t len)
{
	if (!s || status < 200 || status > 599 || status == 204 || status == 304 ||
	    (!body && len) || (type && (strlen(type) > 128 || strpbrk(type, "\r\n"))))
		return -EINVAL;
	struct http_route *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->status = status;
	r->body_len = len;
	r->type = type ? dup_str(type, NULL) : NULL;
	r->body = malloc(len ? len : 1);
	/* The bytes rotor_http_respond would write for a keep-alive HTTP/1.1 request. */
	char head[512];
	int hn =
	    snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%.*s%s%s%sContent-Length: %zu\r\n\r\n",
	             status, rotor__http_reason(status), (int)s->server_len, s->server_field,
	             type ? "Content-Type: " : "", type ? type : "", type ? "\r\n" : "", len);
	r->fixed_len = (size_t)hn + len;
	r->fixed = malloc(r->fixed_len);
	if ((type && !r->type) || !r->body || !r->fixed) {
		free(r->type);
		free(r->body);
		free(r->fixed);
		free(r);
		return -ENOMEM;
	}
	if (len)
		memcpy(r->body, body, len);
	memcpy(r->fixed, head, (size_t)hn);
	if (len)
		memcpy(r->fixed + hn, body, len);
	int e = rotor_http_route(s, method, path, flags, fixed_respond, r);
	if (e < 0) {
		free(r->type);
		free(r->body);
		free(r->fixed);
		free(r);
		return e;
	}
	/* The route just added is the last of its path's: it carries the parts itself. */
	struct http_path *hp = NULL;
	size_t n = strlen(path);
	if (flags & ROTOR_HTTP_PREFIX) {
		for (size_t i = 0; i < s->nprefixes; i++)
			if (s->prefixes[i]->len == n && !memcmp(s->prefixes[i]->path, path, n))
				hp = s->prefixes[i];
	} else {
		hp = http_find_exact(s, path, n);
	}
	struct http_route *last = hp->routes;
	while (last->next)
		last = last->next;
	last->status = r->status;
	last->type = r->type;
	last->body = r->body;
	last->body_len = r->body_len;
	last->fixed = r->fixed;
	last->fixed_len = r->fixed_len;
	last->arg = last;
	free(r);
	return 0;
}

/* Whether a 405 rather than a 501 answers this method: HTTP's own, or one a route names. */
static bool method_known(const struct rotor_http_server *s, const struct rotor_http_request *req)
{
	static const char *const std[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
	                                  "CONNECT", "OPTIONS", "TRACE", "PATCH"};
	for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++)
		if (http_method_is(req, std[i], strlen(std[i])))
			return true;
	for (size_t i = 0; i < s->nmethods; i++)
		if (http_method_is(req, s->methods[i], strlen(s->methods[i])))
			return true;
	return false;
}

/* Whether req's method is r's: a method of up to 4 bytes in one compare (a request line
 * holds at least 4 bytes from its method on: " / HTTP/1.1" follows it). */
static inline bool route_method_is(const struct rotor_http_request *req, const struct http_route *r)
{
	if (req->method_len != r->method_len)
		return false;
	if (r->method_len > 4)
		return !memcmp(req->method, r->method, r->method_len);
	uint32_t w;
	memcpy(&w, req->method, 4);
	return ((w ^ r->method_word) & r->method_mask) == 0;
}

/* The route of req, or NULL with the status to answer in *status (and Allow in allow). */
const struct http_route *http_route_of(struct rotor_http_conn *c, const struct http_path *hp,
                                       int *status, char *allow, size_t cap)
{
	struct rotor_http_request *req = &c->req;
	if (!hp)
		hp = find_path(c->srv, req->path, req->path_len);
	if (!hp) {
		*status = 404;
		return NULL;
	}
	const struct http_route *get = NULL;
	for (const struct http_route *r = hp->routes; r; r = r->next) {
		if (!r->method || route_method_is(req, r))
			return r;
		if (r->method_len == 3 && !memcmp(r->method, "GET", 3))
			get = r;
	}
	if (get && http_method_is(req, "HEAD", 4))
		return get;
	if (!method_known(c->srv, req)) {
		*status = 501;
		return NULL;
	}
	*status = 405;
	size_t o = 0;
	bool head = false;
	for (const struct http_route *r = hp->routes; r; r = r->next)
		head |= r->method_len == 4 && !memcmp(r->method, "HEAD", 4);
	for (const struct http_route *r = hp->routes; r; r = r->next) {
		for (int k = 0; k < 2; k++) {
			const char *m = k ? "HEAD" : r->method;
			size_t n = k ? 4 : r->method_len;
			if (k && (head || r->method_len != 3 || memcmp(r->method, "GET", 3)))
				continue;
			if (o + n + 3 > cap)
				break;
			if (o) {
				allow[o++] = ',';
				allow[o++] = ' ';
			}
			memcpy(allow + o, m, n);
			o += n;
		}
	}
	allow[o] = 0;
	return NULL;
}

static void free_path(struct http_path *hp)
{
	for (struct http_route *r = hp->routes, *next; r; r = next) {
		next = r->next;
		free(r->method);
		free(r->type);
		free(r->body);
		free(r->fixed);
		free(r);
	}
	free(hp->path);
	free(hp);
}

void http_routes_free(struct rotor_http_server *s)
{
	for (size_t i = 0; i < HTTP_EXACT_SLOTS; i++)
		for (struct http_path *hp = s->exact[i], *next; hp; hp = next) {
			next = hp->next;
			free_path(hp);
		}
	for (size_t i = 0; i < s->nprefixes; i++)
		free_path(s->prefixes[i]);
	free(s->prefixes);
	for (size_t i = 0; i < s->nmethods; i++)
		free(s->methods[i]);
	free(s->methods);
}
