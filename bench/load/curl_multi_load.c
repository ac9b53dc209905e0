/*
 * curl_multi_load: the alternative rotor's HTTP client was measured against (issue #17: "or
 * drive libcurl's multi-socket interface from the ring if that measures better"). libcurl's
 * multi-socket API driven by the cheapest loop there is, one epoll set and its timer: --conns
 * easy handles, each re-added as soon as its transfer ends, on the multi's keep-alive
 * connection cache (at most --conns per host), bodies discarded. Driving the same API from
 * rotor's ring would add to this, not take away: what libcurl itself spends per request is
 * the floor of that design. Prints "requests N seconds S errors E".
 *   curl_multi_load --url URL [--conns N] [--seconds S] [--ca FILE]
 */
#define _GNU_SOURCE
#include <curl/curl.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

static int ep;
static long timeout_ms = -1;
static long requests, errors;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
	(void)e;
	(void)arg;
	struct epoll_event ev = {0};
	ev.data.fd = s;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) != 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	(void)sockp;
	return 0;
}

static int on_timer(CURLM *m, long ms, void *arg)
{
	(void)m;
	(void)arg;
	timeout_ms = ms;
	return 0;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *ca = NULL;
	int conns = 100;
	double seconds = 3;
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
	if (!url || conns < 1) {
		fprintf(stderr,
		        "usage: curl_multi_load --url URL [--conns N] [--seconds S] [--ca F]\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ep = epoll_create1(0);
	CURLM *m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conns);
	for (int i = 0; i < conns; i++) {
		CURL *e = curl_easy_init();
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
		if (ca)
			curl_easy_setopt(e, CURLOPT_CAINFO, ca);
		curl_multi_add_handle(m, e);
	}
	double t0 = now(), end = t0 + seconds;
	int running = 0;
	curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
	struct epoll_event evs[64];
	while (running) {
		int n = epoll_wait(ep, evs, 64, timeout_ms < 0 ? 100 : (int)timeout_ms);
		if (n == 0)
			curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
		for (int i = 0; i < n; i++) {
			int mask = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			           (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			           (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
			curl_multi_socket_action(m, evs[i].data.fd, mask, &running);
		}
		if (n > 0 && timeout_ms == 0) /* a timer due now: events must not starve it */
			curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
		CURLMsg *msg;
		int left;
		bool more = now() < end;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			long status = 0;
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result == CURLE_OK && status == 200) {
				requests++;
			} else if (errors++ == 0) {
				fprintf(stderr, "curl_multi_load: first error: %s (status %ld)\n",
				        curl_easy_strerror(msg->data.result), status);
			}
			curl_multi_remove_handle(m, e);
			if (more) {
				curl_multi_add_handle(m, e);
				running++; /* re-added: the loop goes on */
			} else {
				curl_easy_cleanup(e);
			}
		}
	}
	printf("requests %ld seconds %.3f errors %ld\n", requests, now() - t0, errors);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return errors && !requests ? 1 : 0;
}
