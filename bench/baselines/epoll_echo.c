/*
 * epoll_echo: bench_echo's in-tree baseline, a TCP echo server written the way a careful C
 * programmer writes one for speed. One thread per worker, each with its own SO_REUSEPORT
 * listener and epoll instance (level-triggered); non-blocking sockets; one read per
 * readiness and the bytes written straight back; a partial write keeps the rest in the
 * connection and waits for EPOLLOUT (reading stops meanwhile: back-pressure). Workers are
 * pinned one per allowed CPU when there are several, as rotor pins its workers.
 *
 *   epoll_echo [--port N] [--workers N] [--host ADDR]
 *
 * Prints "listening on HOST:PORT (N workers)" once it accepts, like examples/echo_server;
 * SIGINT or SIGTERM stops it (connections closed, "stopped", exit 0). Port 0 picks one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_WORKERS 256
#define BUF_SIZE    16384

struct conn {
	int fd;
	size_t off, len; /* unsent bytes: pending[off..len); len > 0 while EPOLLOUT is armed */
	char *pending;   /* BUF_SIZE bytes, allocated at the first partial write */
};

struct worker {
	pthread_t thread;
	int cpu;
	int listener;
	int ep;
};

static struct worker workers[MAX_WORKERS];
static unsigned nworkers;
static int stop_fd; /* an eventfd made readable once, seen by every worker's epoll */
static char listener_tag, stop_tag;

static void drop(struct worker *w, struct conn *c)
{
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pending);
	free(c);
}

static void accept_all(struct worker *w)
{
	for (;;) {
		int fd = accept4(w->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN: drained; EMFILE and friends: retried on the next event */
		struct conn *c = malloc(sizeof(*c));
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (!c ||
		    (*c = (struct conn){.fd = fd}, epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0)) {
			close(fd);
			free(c);
		}
	}
}

/* Write buf; what the kernel does not take goes to c->pending. Returns -1 to drop. */
static int echo(struct worker *w, struct conn *c, const char *buf, size_t n)
{
	ssize_t sent = send(c->fd, buf, n, MSG_NOSIGNAL);
	if (sent < 0 && errno != EAGAIN)
		return -1;
	if (sent < 0)
		sent = 0;
	if ((size_t)sent == n)
		return 0;
	if (!c->pending && !(c->pending = malloc(BUF_SIZE)))
		return -1;
	memcpy(c->pending, buf + sent, n - (size_t)sent);
	c->off = 0;
	c->len = n - (size_t)sent;
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
	return epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int on_writable(struct worker *w, struct conn *c)
{
	size_t n = c->len - c->off;
	ssize_t sent = send(c->fd, c->pending + c->off, n, MSG_NOSIGNAL);
	if (sent < 0)
		return errno == EAGAIN ? 0 : -1;
	c->off += (size_t)sent;
	if (c->off < c->len)
		return 0;
	c->off = c->len = 0;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	return epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	static _Thread_local char buf[BUF_SIZE];
	struct epoll_event evs[256];
	if (nworkers > 1) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	for (;;) {
		int n = epoll_wait(w->ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &stop_tag)
				goto out;
			if (p == &listener_tag) {
				accept_all(w);
				continue;
			}
			struct conn *c = p;
			if (c->len) {
				/* Writable, or an error, which the send then reports. */
				if (on_writable(w, c) < 0)
					drop(w, c);
				continue;
			}
			/* Readable, or EOF or an error: the read tells which. Data before a FIN
			 * is echoed first; the FIN itself then reads as 0. */
			ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
			if (r > 0 && echo(w, c, buf, (size_t)r) == 0)
				continue;
			if (r < 0 && errno == EAGAIN)
				continue;
			drop(w, c);
		}
	}
out:
	/* Connections still open are closed with the process; the listener is closed here. */
	close(w->listener);
	close(w->ep);
	return NULL;
}

static int listen_on(const char *host, int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
	socklen_t len = sizeof(sa);
	int one = 1;
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 7000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			nworkers = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--port N] [--workers N] [--host ADDR]\n",
			        argv[0]);
			return 2;
		}
	}
	int cpus[CPU_SETSIZE], ncpus = 0;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &allowed))
				cpus[ncpus++] = i;
	if (!ncpus)
		cpus[ncpus++] = 0;
	if (!nworkers)
		nworkers = (unsigned)ncpus;
	if (nworkers > MAX_WORKERS)
		nworkers = MAX_WORKERS;
	/* The main thread takes the signals in sigwait: block them in every thread. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stop_fd < 0) {
		perror("epoll_echo: eventfd");
		return 1;
	}
	for (unsigned i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];
		w->cpu = cpus[i % (unsigned)ncpus];
		w->listener = listen_on(host, &port); /* port 0: every worker on the one picked */
		if (w->listener < 0) {
			fprintf(stderr, "epoll_echo: listen on %s:%d: %s\n", host, port,
			        strerror(-w->listener));
			return 1;
		}
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listener_tag};
		struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stop_tag};
		if (w->ep < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->listener, &lev) < 0 ||
		    epoll_ctl(w->ep, EPOLL_CTL_ADD, stop_fd, &sev) < 0) {
			perror("epoll_echo: epoll");
			return 1;
		}
	}
	printf("listening on %s:%d (%u workers)\n", host, port, nworkers);
	fflush(stdout);
	for (unsigned i = 0; i < nworkers; i++)
		if (pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]) != 0) {
			fprintf(stderr, "epoll_echo: pthread_create failed\n");
			return 1;
		}
	int sig = 0;
	sigwait(&set, &sig);
	fprintf(stderr, "epoll_echo: signal %d, stopping\n", sig);
	uint64_t one = 1;
	if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
		return 1;
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
	printf("stopped\n");
	return 0;
}
