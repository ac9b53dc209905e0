/*
 * uring_floor: the least CPU an io_uring server can spend per request on this machine, to
 * measure rotor's servers against. One thread, one ring (SINGLE_ISSUER, DEFER_TASKRUN), a
 * multishot accept, a multishot recv per connection on a provided buffer ring, a send per
 * read, no runtime, no coroutines, no deadlines and no parser: it is a floor, not a server.
 *
 *   uring_floor [--port N] [--workers 1] [--echo]
 *
 * HTTP (the default): every "\r\n\r\n" received ends a request, answered with the response
 * baselines/epoll_http and examples/http_server send for GET /plaintext (same length, "Server:
 * floor"); the answers to one read go out in one send. --echo: what a read brought is sent
 * back from the provided buffer itself, which returns to the ring when the send completes.
 * Prints "listening on 127.0.0.1:PORT (1 workers)" and stops on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define NBUF      4096 /* provided buffers, one group */
#define BUF_SIZE  2048
#define MAX_CONNS 65536
#define MAX_BATCH 64 /* answers gathered in one send; more requests in one read: more sends */

static const char plaintext_200[] = "HTTP/1.1 200 OK\r\n"
                                    "Server: floor\r\n"
                                    "Content-Type: text/plain\r\n"
                                    "Content-Length: 13\r\n"
                                    "\r\n"
                                    "Hello, World!";
#define RESP_LEN (sizeof(plaintext_200) - 1)

/* user_data: the kind in the low byte, a connection's fd and a buffer id above it. */
enum { UD_ACCEPT = 1, UD_RECV, UD_SEND };
#define UD(kind, fd, bid) ((uint64_t)(kind) | (uint64_t)(fd) << 8 | (uint64_t)(bid) << 40)

struct conn {
	unsigned tail; /* the last bytes received, packed: a "\r\n\r\n" split across reads */
	bool open;
	unsigned sends; /* in flight: the fd is closed after the last */
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static char answers[MAX_BATCH * RESP_LEN];
static struct conn conns[MAX_CONNS];
static bool echo;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "uring_floor: %s: %s\n", what, strerror(err));
	exit(1);
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&ring);
	if (!s) {
		io_uring_submit(&ring);
		s = io_uring_get_sqe(&ring);
	}
	return s;
}

static void buf_return(int bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
	                      io_uring_buf_ring_mask(NBUF), 0);
	io_uring_buf_ring_advance(br, 1);
}

static void arm_recv(int fd)
{
	struct io_uring_sqe *s = sqe_get();
	io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
	s->flags |= IOSQE_BUFFER_SELECT;
	s->buf_group = 0;
	io_uring_sqe_set_data64(s, UD(UD_RECV, fd, 0));
}

static void send_bytes(int fd, const void *p, size_t n, int bid)
{
	struct io_uring_sqe *s = sqe_get();
	io_uring_prep_send(s, fd, p, n, MSG_WAITALL);
	io_uring_sqe_set_data64(s, UD(UD_SEND, fd, bid + 1));
	conns[fd].sends++;
}

static void conn_close(int fd)
{
	conns[fd].open = false;
	if (!conns[fd].sends)
		close(fd);
}

/* Requests ended in data[0..n), with the tail of the previous read. */
static size_t count_requests(struct conn *c, const char *data, size_t n)
{
	size_t k = 0;
	unsigned t = c->tail;
	for (size_t i = 0; i < n; i++) {
		t = t << 8 | (unsigned char)data[i];
		k += t == 0x0d0a0d0a;
	}
	c->tail = t;
	return k;
}

static void on_recv(int fd, struct io_uring_cqe *cqe)
{
	struct conn *c = &conns[fd];
	if (cqe->res <= 0) {
		if (cqe->flags & IORING_CQE_F_BUFFER)
			buf_return((int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
		if (cqe->res == -ENOBUFS && c->open)
			arm_recv(fd); /* the group ran dry: re-arm, not an end */
		else if (!(cqe->flags & IORING_CQE_F_MORE) && c->open)
			conn_close(fd);
		return;
	}
	int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	const char *data = bufs + (size_t)bid * BUF_SIZE;
	if (echo) {
		send_bytes(fd, data, (size_t)cqe->res, bid); /* the buffer returns after the send */
	} else {
		size_t k = count_requests(c, data, (size_t)cqe->res);
		buf_return(bid);
		while (k) {
			size_t m = k < MAX_BATCH ? k : MAX_BATCH;
			send_bytes(fd, answers, m * RESP_LEN, -1);
			k -= m;
		}
	}
	if (!(cqe->flags & IORING_CQE_F_MORE) && c->open)
		arm_recv(fd);
}

static void on_send(int fd, int bid, struct io_uring_cqe *cqe)
{
	struct conn *c = &conns[fd];
	if (bid >= 0)
		buf_return(bid);
	c->sends--;
	if (cqe->res < 0 && c->open)
		conn_close(fd); /* the client went away; its recv ends too */
	else if (!c->open && !c->sends)
		close(fd);
}

int main(int argc, char **argv)
{
	int port = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			if (atoi(argv[++i]) != 1) {
				fprintf(stderr, "uring_floor: one worker only\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--echo")) {
			echo = true;
		} else {
			fprintf(stderr, "usage: uring_floor [--port N] [--workers 1] [--echo]\n");
			return 2;
		}
	}
	for (int i = 0; i < MAX_BATCH; i++)
		memcpy(answers + (size_t)i * RESP_LEN, plaintext_200, RESP_LEN);

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct io_uring_params p = {
	    .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
	             IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE,
	    .cq_entries = 16384,
	};
	int r = io_uring_queue_init_params(1024, &ring, &p);
	if (r < 0)
		die("io_uring_queue_init_params", -r);

	size_t ring_bytes = NBUF * sizeof(struct io_uring_buf);
	br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufs = mmap(NULL, (size_t)NBUF * BUF_SIZE, PROT_READ | PROT_WRITE,
	            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED || bufs == MAP_FAILED)
		die("mmap", errno);
	io_uring_buf_ring_init(br);
	struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NBUF};
	r = io_uring_register_buf_ring(&ring, &reg, 0);
	if (r < 0)
		die("io_uring_register_buf_ring", -r);
	for (int i = 0; i < NBUF; i++)
		buf_return(i);

	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
		die("listen", errno);
	printf("listening on 127.0.0.1:%d (1 workers)\n", ntohs(a.sin_port));
	fflush(stdout);

	struct io_uring_sqe *s = sqe_get();
	io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(s, UD(UD_ACCEPT, 0, 0));
	while (!stop) {
		r = io_uring_submit_and_wait(&ring, 1);
		if (r < 0 && r != -EINTR)
			die("io_uring_submit_and_wait", -r);
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			uint64_t ud = cqe->user_data;
			int fd = (int)(ud >> 8 & 0xffffffff);
			n++;
			switch (ud & 0xff) {
			case UD_ACCEPT:
				if (cqe->res >= 0 && cqe->res < MAX_CONNS) {
					setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one,
					           sizeof(one));
					conns[cqe->res] = (struct conn){.open = true};
					arm_recv(cqe->res);
				} else if (cqe->res >= 0) {
					close(cqe->res);
				}
				if (!(cqe->flags & IORING_CQE_F_MORE))
					die("multishot accept ended", cqe->res < 0 ? -cqe->res : 0);
				break;
			case UD_RECV:
				on_recv(fd, cqe);
				break;
			case UD_SEND:
				on_send(fd, (int)(ud >> 40) - 1, cqe);
				break;
			}
		}
		io_uring_cq_advance(&ring, n);
	}
	fprintf(stderr, "uring_floor: stopping\n");
	io_uring_queue_exit(&ring);
	return 0;
}
