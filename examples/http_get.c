/*
 * http_get: a small curl on rotor's HTTP client (rotor/http_client.h). Fetches each URL given
 * (all at once, one task each, on one keep-alive pool: URLs of the same origin share its
 * connections) and writes the bodies to stdout in the order given, or only the status lines
 * and headers with -I. Verification is on unless -k; redirects are not followed (a 3xx is
 * printed like any response).
 *   http_get [-X METHOD] [-H 'Name: value']... [-d DATA] [-i] [-I] [-k] [--cacert FILE]
 *            [--timeout SECONDS] URL...
 * Exit status: 0 when every request got a response, 1 when one failed (the reason on stderr),
 * 2 on bad usage.
 */
#include <rotor.h>
#include <rotor/http_client.h>
#include <rotor/tls.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 32

struct job {
	const char *url;
	char *out; /* what this URL prints, gathered so that outputs do not interleave */
	size_t len, cap;
	int err;
};

static struct rotor_http_client *client;
static const char *method;
static struct rotor_http_client_header headers[MAX_HEADERS];
static size_t nheaders;
static const char *data;
static int show_head, head_only;
static double timeout_s = 30;

static void add(struct job *j, const void *p, size_t n)
{
	if (j->len + n > j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 65536;
		while (cap < j->len + n)
			cap *= 2;
		char *b = realloc(j->out, cap);
		if (!b) {
			j->err = -ENOMEM;
			return;
		}
		j->out = b;
		j->cap = cap;
	}
	memcpy(j->out + j->len, p, n);
	j->len += n;
}

static void addf(struct job *j, const char *a, const char *b, const char *c)
{
	add(j, a, strlen(a));
	add(j, b, strlen(b));
	add(j, c, strlen(c));
}

static void *get(void *arg)
{
	struct job *j = arg;
	struct rotor_http_client_request q = {.method = head_only ? "HEAD" : method,
	                                      .url = j->url,
	                                      .headers = headers,
	                                      .nheaders = nheaders,
	                                      .body = data,
	                                      .body_len = data ? strlen(data) : 0,
	                                      .deadline = rotor_now() + (int64_t)(timeout_s * 1e9)};
	struct rotor_http_response *r;
	j->err = rotor_http_client_send(client, &q, &r);
	if (j->err < 0)
		return NULL;
	if (show_head || head_only) {
		char line[64];
		snprintf(line, sizeof(line), "HTTP/1.%d %d ", r->minor, r->status);
		addf(j, line, r->reason, "\r\n");
		for (size_t i = 0; i < r->nheaders; i++) {
			addf(j, r->headers[i].name, ": ", r->headers[i].value);
			add(j, "\r\n", 2);
		}
		add(j, "\r\n", 2);
	}
	char buf[16384];
	ssize_t n;
	while ((n = rotor_http_response_read(r, buf, sizeof(buf))) > 0)
		add(j, buf, (size_t)n);
	if (n < 0)
		j->err = (int)n;
	rotor_http_response_destroy(r);
	return NULL;
}

static void *main_task(void *arg)
{
	struct job *jobs = arg;
	size_t n = 0;
	while (jobs[n].url)
		n++;
	struct rotor_task **t = calloc(n, sizeof(*t));
	for (size_t i = 0; t && i < n; i++)
		if (rotor_spawn(get, &jobs[i], &t[i]) < 0)
			jobs[i].err = -ENOMEM;
	for (size_t i = 0; t && i < n; i++)
		if (t[i])
			rotor_join(t[i], NULL);
	free(t);
	rotor_http_client_destroy(client);
	return NULL;
}

static int usage(void)
{
	fprintf(stderr,
	        "usage: http_get [-X METHOD] [-H 'Name: value']... [-d DATA] [-i] [-I] [-k]\n"
	        "                [--cacert FILE] [--timeout SECONDS] URL...\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cacert = NULL;
	int insecure = 0;
	struct job *jobs = calloc((size_t)argc, sizeof(*jobs));
	size_t njobs = 0;
	if (!jobs)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "-X") && more) {
			method = argv[++i];
		} else if (!strcmp(a, "-H") && more && nheaders < MAX_HEADERS) {
			char *h = argv[++i], *colon = strchr(h, ':');
			if (!colon)
				return usage();
			*colon = '\0';
			for (colon++; *colon == ' '; colon++)
				;
			headers[nheaders++] = (struct rotor_http_client_header){h, colon};
		} else if (!strcmp(a, "-d") && more) {
			data = argv[++i];
			if (!method)
				method = "POST";
		} else if (!strcmp(a, "-i")) {
			show_head = 1;
		} else if (!strcmp(a, "-I")) {
			head_only = 1;
		} else if (!strcmp(a, "-k")) {
			insecure = 1;
		} else if (!strcmp(a, "--cacert") && more) {
			cacert = argv[++i];
		} else if (!strcmp(a, "--timeout") && more) {
			timeout_s = atof(argv[++i]);
		} else if (a[0] == '-') {
			return usage();
		} else {
			jobs[njobs++].url = a;
		}
	}
	if (!njobs || timeout_s <= 0)
		return usage();
	struct rotor_http_client_config cfg = {.ca_file = cacert};
	struct rotor_tls_ctx *tls = NULL;
#ifdef ROTOR_HAVE_TLS
	if (insecure) {
		struct rotor_tls_config t = {.role = ROTOR_TLS_CLIENT,
		                             .flags = ROTOR_TLS_NO_VERIFY};
		if (rotor_tls_ctx_create(&t, &tls) == 0)
			cfg.tls = tls;
	}
#else
	(void)insecure;
#endif
	int err = rotor_http_client_create(&cfg, &client);
	if (err < 0) {
		fprintf(stderr, "http_get: %s\n", strerror(-err));
		return 1;
	}
	struct rotor_config rc = {.workers = 1};
	err = rotor_run(&rc, main_task, jobs, NULL);
	if (err < 0) {
		fprintf(stderr, "http_get: rotor_run: %s\n", strerror(-err));
		return 1;
	}
	int status = 0;
	for (size_t i = 0; i < njobs; i++) {
		fwrite(jobs[i].out, 1, jobs[i].len, stdout);
		if (jobs[i].err < 0) {
			fprintf(stderr, "http_get: %s: %s\n", jobs[i].url, strerror(-jobs[i].err));
			status = 1;
		}
		free(jobs[i].out);
	}
#ifdef ROTOR_HAVE_TLS
	if (tls)
		rotor_tls_ctx_destroy(tls);
#endif
	free(jobs);
	return status;
}
