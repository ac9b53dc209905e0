/*
 * http_client_load: bench_http_client's rotor client. --conns tasks on one worker, each
 * sending GET url again and again on rotor_http_client's keep-alive pool (the cap per origin
 * is --conns, so each task keeps one connection) for --seconds, reading every body whole
 * with rotor_http_response_read. Prints "requests N seconds S errors E slowest_ms M
 * over_100ms K", then the pool's counters (connects, reused, retries). The script measures
 * this process's CPU; nothing here times itself beyond the wall clock of the run.
 *   http_client_load --url URL [--conns N] [--seconds S] [--ca FILE]
 */
#include <rotor.h>
#include <rotor/http_client.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *url;
static int conns = 100;
static double seconds = 3;
static const char *ca;
static struct rotor_http_client *client;
static int64_t end;
static long requests, errors;
static int first_error;
static int64_t worst; /* the slowest request, ns */
static long slow;     /* requests over 100 ms */

static void *load(void *arg)
{
	(void)arg;
	char buf[16384];
	struct rotor_http_client_request q = {.url = url};
	while (rotor_now() < end) {
		int64_t t0 = rotor_now();
		q.deadline = t0 + 10LL * 1000000000;
		struct rotor_http_response *r;
		int err = rotor_http_client_send(client, &q, &r);
		ssize_t n = 0;
		if (err == 0) {
			while ((n = rotor_http_response_read(r, buf, sizeof(buf))) > 0)
				;
			if (r->status != 200 && n == 0)
				n = -EBADMSG;
			rotor_http_response_destroy(r);
		}
		if (err < 0 || n < 0) {
			if (!first_error)
				first_error = err < 0 ? err : (int)n;
			errors++;
			rotor_sleep(1000000);
			continue;
		}
		requests++;
		int64_t took = rotor_now() - t0;
		if (took > worst)
			worst = took;
		slow += took > 100000000;
	}
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	struct rotor_http_client_config cfg = {.max_per_origin = (unsigned)conns, .ca_file = ca};
	int err = rotor_http_client_create(&cfg, &client);
	if (err < 0) {
		fprintf(stderr, "http_client_load: rotor_http_client_create: %s\n", strerror(-err));
		return NULL;
	}
	struct rotor_task **t = calloc((size_t)conns, sizeof(*t));
	int64_t t0 = rotor_now();
	end = t0 + (int64_t)(seconds * 1e9);
	for (int i = 0; i < conns; i++)
		if (rotor_spawn(load, NULL, &t[i]) < 0)
			t[i] = NULL;
	for (int i = 0; i < conns; i++)
		if (t[i])
			rotor_join(t[i], NULL);
	double took = (double)(rotor_now() - t0) / 1e9;
	printf("requests %ld seconds %.3f errors %ld slowest_ms %.1f over_100ms %ld\n", requests,
	       took, errors, (double)worst / 1e6, slow);
	struct rotor_http_client_stats st;
	if (rotor_http_client_stats(client, &st) == 0)
		printf("connects %llu reused %llu retries %llu\n", (unsigned long long)st.connects,
		       (unsigned long long)st.reused, (unsigned long long)st.retries);
	if (first_error)
		fprintf(stderr, "http_client_load: first error: %s\n", strerror(-first_error));
	free(t);
	rotor_http_client_destroy(client);
	return NULL;
}

int main(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--url"))
			url = argv[i + 1];
		else if (!strcmp(argv[i], "--conns"))
			conns = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--ca"))
			ca = argv[i + 1];
	}
	if (!url || conns < 1 || seconds <= 0) {
		fprintf(stderr, "usage: http_client_load --url URL [--conns N] [--seconds S] "
		                "[--ca FILE]\n");
		return 2;
	}
	struct rotor_config cfg = {.workers = 1};
	int err = rotor_run(&cfg, main_task, NULL, NULL);
	if (err < 0) {
		fprintf(stderr, "http_client_load: rotor_run: %s\n", strerror(-err));
		return 1;
	}
	return errors && !requests ? 1 : 0;
}
