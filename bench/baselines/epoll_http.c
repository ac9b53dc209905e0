/*
 * epoll_http: the in-tree baseline of bench_http, a plain epoll HTTP/1.1 server without rotor,
 * written for speed the way a careful C programmer would: one thread per worker, each with its
 * own SO_REUSEPORT listener and its own epoll instance, non-blocking sockets, edge-triggered.
 * Every complete request in a connection's buffer is answered and the answers go out in one
 * send (pipelining); keep-alive; the connection is closed on EOF or error, and after a last
 * response (Connection: close, HTTP/1.0, a refused request) once the client has closed.
 *
 *   epoll_http [--port N] [--workers N] [--host ADDR]
 *
 *   GET /plaintext          200 "Hello, World!" (text/plain); HEAD gets the head alone
 *   POST /post              reads the whole body (Content-Length, up to what the input buffer
 *                           holds beside the head), 200 "received N bytes" as the HTTP example
 *   any other path          404; another method 405; a malformed request 400 and a close
 *
 * The responses carry the header set of examples/http_server (no Date), byte for byte but for
 * the Server value, which has the same length: both servers send the same bytes per request.
 * Prints "listening on HOST:PORT (N workers)" once it accepts, and stops on SIGINT/SIGTERM.
 * With more than one worker, worker i is pinned to the i-th CPU allowed, as rotor pins.
 *
 * Edge-triggered over level-triggered: a level-triggered socket that was reported is polled
 * again on the next epoll_wait even when nothing arrived (one more tcp_poll per connection per
 * wait), while an edge-triggered one is registered once (EPOLLIN | EPOLLOUT) and needs no
 * epoll_ctl afterwards. A read shorter than the room offered drained the socket (TCP), so
 * reading until EAGAIN costs no extra call. In alternated runs of the bench_http loads here,
 * edge-triggered used as little or slightly less CPU per request; the gap is within this VM's
 * noise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_WORKERS 256
#define IN_CAP      16384 /* one connection's unanswered bytes: a head and its body */
#define MIN_REQUEST 16    /* "X / HTTP/1.1\r\n\r\n": no parsed request is shorter */
#define RESP_MAX    256   /* no response is longer */
/* Every request a full input buffer can hold is answered into the output at once. */
#define OUT_CAP   ((IN_CAP / MIN_REQUEST + 1) * RESP_MAX)
#define MAX_EVENT 256

/* The response to nearly every request of the benchmark, sent as it stands. */
static const char plaintext_200[] = "HTTP/1.1 200 OK\r\n"
                                    "Server: epoll\r\n"
                                    "Content-Type: text/plain\r\n"
                                    "Content-Length: 13\r\n"
                                    "\r\n"
                                    "Hello, World!";

struct request {
	bool head; /* HEAD: the response without its body */
	bool post; /* POST: its body is body_len bytes after the head */
	size_t body_len;
	bool keep; /* the connection stays open after the response */
	int minor; /* HTTP/1.minor */
	const char *target;
	size_t target_len;
};

/* A connection belongs to one worker and is touched by that worker's thread alone. */
struct conn {
	struct conn *prev, *next; /* the worker's live connections, freed when it stops */
	int fd;
	bool closing;    /* the last response is out or in pend: then drain */
	bool draining;   /* the response is sent: reading and dropping until the client closes */
	char *pend;      /* what send() did not take; reading waits until it is gone */
	size_t pend_off; /* pend[pend_off..pend_len) is still to send */
	size_t pend_len;
	size_t in_len;
	char in[IN_CAP];
};

struct worker {
	pthread_t thread;
	int cpu; /* pinned there, or -1 */
	int lfd;
	int epfd;
	struct conn *live;
	char *out; /* OUT_CAP bytes: the answers of one read */
};

static struct worker workers[MAX_WORKERS];
static int stopfd = -1; /* an eventfd in every epoll set, level-triggered: written once to stop */
static char listen_tag, stop_tag; /* epoll data of the listener and of stopfd */

/* ---- The parser --------------------------------------------------------------------------- */

static bool value_is(const char *v, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(v, lit, n);
}

/*
 * parse_request - parse the request at the start of buf[0..len). Returns its length (head and
 * body), 0 when it is not complete yet, or minus the status of a refusal: -400 malformed, -405
 * a method other than GET, HEAD and POST, -413 a body that does not fit, -431 a head that does not
 * fit, -501 a Transfer-Encoding. The Connection value is read as one option (close or
 * keep-alive), not as a list.
 */
static int parse_request(const char *buf, size_t len, struct request *req)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return len == IN_CAP ? -431 : 0;
	size_t head = (size_t)(end - buf) + 4;
	const char *hend = end + 2; /* after the CRLF of the last line of the head */
	const char *eol = memchr(buf, '\r', (size_t)(hend - buf));
	if (eol[1] != '\n')
		return -400;
	const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	if (!sp1 || sp1 == buf)
		return -400;
	const char *t = sp1 + 1;
	const char *sp2 = memchr(t, ' ', (size_t)(eol - t));
	if (!sp2 || sp2 == t || *t != '/' || eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
	    sp2[8] < '0' || sp2[8] > '9')
		return -400;
	req->minor = sp2[8] - '0';
	req->target = t;
	req->target_len = (size_t)(sp2 - t);
	req->head = req->post = false;
	if (sp1 - buf == 3 && !memcmp(buf, "GET", 3))
		;
	else if (sp1 - buf == 4 && !memcmp(buf, "HEAD", 4))
		req->head = true;
	else if (sp1 - buf == 4 && !memcmp(buf, "POST", 4))
		req->post = true;
	else
		return -405;

	bool close = false, keep_alive = false;
	size_t length = 0;
	for (const char *p = eol + 2; p < hend;) {
		const char *le = memchr(p, '\r', (size_t)(hend - p));
		if (le[1] != '\n')
			return -400;
		const char *colon = memchr(p, ':', (size_t)(le - p));
		if (!colon || colon == p)
			return -400;
		size_t name_len = (size_t)(colon - p);
		const char *v = colon + 1;
		const char *ve = le;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t vlen = (size_t)(ve - v);
		if (name_len == 10 && !strncasecmp(p, "connection", 10)) {
			close |= value_is(v, vlen, "close");
			keep_alive |= value_is(v, vlen, "keep-alive");
		} else if (name_len == 14 && !strncasecmp(p, "content-length", 14)) {
			if (vlen == 0 || vlen > 9)
				return vlen ? -413 : -400;
			length = 0;
			for (size_t k = 0; k < vlen; k++) {
				if (v[k] < '0' || v[k] > '9')
					return -400;
				length = length * 10 + (size_t)(v[k] - '0');
			}
		} else if (name_len == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
			return -501;
		}
		p = le + 2;
	}
	if (length > IN_CAP - head)
		return -413;
	if (head + length > len)
		return 0;
	req->keep = req->minor ? !close : keep_alive;
	req->body_len = length;
	return (int)(head + length);
}

/* ---- Responses ---------------------------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	default:
		return "Internal Server Error";
	}
}

/* The general form, as examples/http_server writes it; at most RESP_MAX bytes. */
static size_t respond_status(char *o, int status, bool keep, int minor, bool head)
{
	const char *body = status == 200 ? "Hello, World!" : reason(status);
	bool nl = status != 200; /* error bodies end with a newline */
	const char *connection = !keep        ? "Connection: close\r\n"
	                         : minor == 0 ? "Connection: keep-alive\r\n"
	                                      : "";
	int n = snprintf(o, RESP_MAX,
	                 "HTTP/1.1 %d %s\r\nServer: epoll\r\nContent-Type: text/plain\r\n"
	                 "Content-Length: %zu\r\n%s%s\r\n%s%s",
	                 status, reason(status), strlen(body) + nl, connection,
	                 status == 405 ? "Allow: GET, HEAD, POST\r\n" : "", head ? "" : body,
	                 head || !nl ? "" : "\n");
	return n < RESP_MAX ? (size_t)n : RESP_MAX - 1;
}

static size_t respond(char *o, const struct request *req)
{
	size_t n = 0;
	while (n < req->target_len && req->target[n] != '?')
		n++;
	if (req->post) {
		if (n != 5 || memcmp(req->target, "/post", 5))
			return respond_status(o, 404, req->keep, req->minor, false);
		/* The body is in the input buffer, whole: the answer says how long it was. */
		char body[48];
		int b = snprintf(body, sizeof(body), "received %zu bytes\n", req->body_len);
		int k = snprintf(o, RESP_MAX,
		                 "HTTP/1.1 200 OK\r\nServer: epoll\r\nContent-Type: text/plain\r\n"
		                 "Content-Length: %d\r\n%s\r\n%s",
		                 b,
		                 !req->keep        ? "Connection: close\r\n"
		                 : req->minor == 0 ? "Connection: keep-alive\r\n"
		                                   : "",
		                 body);
		return k < RESP_MAX ? (size_t)k : RESP_MAX - 1;
	}
	bool plaintext = n == 10 && !memcmp(req->target, "/plaintext", 10);
	if (plaintext && req->keep && req->minor == 1 && !req->head) {
		memcpy(o, plaintext_200, sizeof(plaintext_200) - 1);
		return sizeof(plaintext_200) - 1;
	}
	return respond_status(o, plaintext ? 200 : 404, req->keep, req->minor, req->head);
}

/* ---- Connections -------------------------------------------------------------------------- */

static void conn_close(struct worker *w, struct conn *c)
{
	if (c->next)
		c->next->prev = c->prev;
	*(c->prev ? &c->prev->next : &w->live) = c->next;
	close(c->fd); /* also leaves the epoll set: the fd was never duplicated */
	free(c->pend);
	free(c);
}

/* After the last response: read and drop until the client closes, so that unread input does
 * not make the kernel answer with a reset that destroys the response before the client reads
 * it. A client that never closes keeps its connection until the server stops. */
static void drain(struct worker *w, struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in, IN_CAP, 0);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		conn_close(w, c);
		return;
	}
}

/* The last response is sent: no more requests are read. Returns -1 (c is done with). */
static int finish(struct worker *w, struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->draining = true;
	drain(w, c);
	return -1;
}

/* Sends o[0..n); keeps what the socket did not take. Returns 0, or -1 when c was closed or is
 * done with. */
static int send_out(struct worker *w, struct conn *c, const char *o, size_t n)
{
	ssize_t s;
	do
		s = send(c->fd, o, n, MSG_NOSIGNAL);
	while (s < 0 && errno == EINTR);
	if (s < 0 && errno != EAGAIN) {
		conn_close(w, c);
		return -1;
	}
	size_t sent = s < 0 ? 0 : (size_t)s;
	if (sent == n)
		return c->closing ? finish(w, c) : 0;
	c->pend = malloc(n - sent);
	if (!c->pend) {
		conn_close(w, c);
		return -1;
	}
	memcpy(c->pend, o + sent, n - sent);
	c->pend_off = 0;
	c->pend_len = n - sent;
	return 0;
}

/* Returns 0 when nothing is left to send, 1 while some is, -1 when c was closed or is done
 * with. */
static int send_pending(struct worker *w, struct conn *c)
{
	while (c->pend_off < c->pend_len) {
		ssize_t s =
		    send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
		if (s < 0 && errno == EAGAIN)
			return 1; /* the next EPOLLOUT edge resumes */
		if (s < 0 && errno == EINTR)
			continue;
		if (s < 0) {
			conn_close(w, c);
			return -1;
		}
		c->pend_off += (size_t)s;
	}
	free(c->pend);
	c->pend = NULL;
	return c->closing ? finish(w, c) : 0;
}

/* Answers every complete request in c->in with one send. Returns 0, or -1 when c was closed
 * or is done with. */
static int answer(struct worker *w, struct conn *c)
{
	size_t off = 0, n = 0;
	bool keep = true;
	while (keep && off < c->in_len) {
		struct request req;
		int r = parse_request(c->in + off, c->in_len - off, &req);
		if (r == 0)
			break;
		if (r < 0) {
			n += respond_status(w->out + n, -r, false, 1, false);
			keep = false;
			break;
		}
		off += (size_t)r;
		keep = req.keep;
		n += respond(w->out + n, &req);
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	if (n == 0)
		return 0;
	c->closing = !keep;
	return send_out(w, c, w->out, n);
}

/* Any edge: finish sending, then read until the socket is drained, answering as it goes. */
static void on_event(struct worker *w, struct conn *c)
{
	if (c->draining) {
		drain(w, c);
		return;
	}
	if (c->pend && send_pending(w, c) != 0)
		return;
	for (;;) {
		size_t room = IN_CAP - c->in_len;
		ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			if (answer(w, c) < 0)
				return;
			if (c->pend || (size_t)n < room)
				return; /* short read: drained, the next byte brings a new edge */
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		conn_close(w, c); /* end of stream or error */
		return;
	}
}

/* Edge-triggered listener: accept until EAGAIN. On EMFILE and the like the backlog waits for
 * the next connection to arrive rather than spinning. */
static void accept_all(struct worker *w)
{
	for (;;) {
		int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->prev = NULL;
		c->next = w->live;
		c->fd = fd;
		c->closing = false;
		c->draining = false;
		c->pend = NULL;
		c->pend_off = c->pend_len = 0;
		c->in_len = 0;
		if (w->live)
			w->live->prev = c;
		w->live = c;
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			conn_close(w, c);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	if (w->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	struct epoll_event ev[MAX_EVENT];
	for (;;) {
		int n = epoll_wait(w->epfd, ev, MAX_EVENT, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("epoll_http: epoll_wait");
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;
			if (p == &stop_tag)
				return NULL;
			if (p == &listen_tag)
				accept_all(w);
			else
				on_event(w, p);
		}
	}
}

/* ---- Set-up ------------------------------------------------------------------------------- */

/* A listener on host:*port (SO_REUSEPORT); port 0 is replaced by the one picked. */
static int listen_on(const char *host, int *port)
{
	char service[16];
	snprintf(service, sizeof(service), "%d", *port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	int r = getaddrinfo(host, service, &hints, &ai);
	if (r != 0) {
		fprintf(stderr, "epoll_http: %s: %s\n", host, gai_strerror(r));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		fprintf(stderr, "epoll_http: listen on %s:%d: %s\n", host, *port, strerror(errno));
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static int worker_init(struct worker *w, int cpu, const char *host, int *port)
{
	w->cpu = cpu;
	w->live = NULL;
	w->epfd = -1;
	w->out = malloc(OUT_CAP);
	w->lfd = listen_on(host, port);
	if (!w->out || w->lfd < 0)
		return -1;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event l = {.events = EPOLLIN | EPOLLET, .data.ptr = &listen_tag};
	struct epoll_event s = {.events = EPOLLIN, .data.ptr = &stop_tag};
	if (w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfd, &l) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, stopfd, &s) < 0) {
		perror("epoll_http: epoll");
		return -1;
	}
	return 0;
}

static void worker_fini(struct worker *w)
{
	while (w->live)
		conn_close(w, w->live);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->lfd >= 0)
		close(w->lfd);
	free(w->out);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 8080;
	int nworkers = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			nworkers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--port N] [--workers N] [--host ADDR]\n",
			        argv[0]);
			return 2;
		}
	}
	if (nworkers < 1 || nworkers > MAX_WORKERS) {
		fprintf(stderr, "epoll_http: --workers: 1 to %d\n", MAX_WORKERS);
		return 2;
	}
	/* SIGINT and SIGTERM are taken by sigwait() in main alone: block them in every thread. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stopfd < 0) {
		perror("epoll_http: eventfd");
		return 1;
	}
	int cpus[CPU_SETSIZE], ncpus = 0;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &allowed))
				cpus[ncpus++] = i;
	int ready = 0, err = 0;
	for (; ready < nworkers && !err; ready++) {
		int cpu = nworkers > 1 && ncpus > 0 ? cpus[ready % ncpus] : -1;
		err = worker_init(&workers[ready], cpu, host, &port);
	}
	int started = 0;
	if (!err) {
		printf("listening on %s:%d (%d workers)\n", host, port, nworkers);
		fflush(stdout);
		for (; started < nworkers; started++) {
			err = pthread_create(&workers[started].thread, NULL, worker_main,
			                     &workers[started]);
			if (err) {
				fprintf(stderr, "epoll_http: pthread_create: %s\n", strerror(err));
				break;
			}
		}
	}
	if (!err) {
		int sig = 0;
		sigwait(&set, &sig);
		fprintf(stderr, "epoll_http: signal %d, stopping\n", sig);
	}
	uint64_t one = 1;
	if (write(stopfd, &one, sizeof(one)) < 0)
		perror("epoll_http: stop");
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	for (int i = 0; i < ready; i++)
		worker_fini(&workers[i]);
	close(stopfd);
	if (err)
		return 1;
	printf("stopped\n");
	return 0;
}
