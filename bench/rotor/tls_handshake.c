/*
 * bench_tls_handshake: what a full TLS handshake costs the server's worker, and how long a
 * burst of them holds that worker from its other tasks: the measurement behind running
 * handshakes inline on the worker (docs/architecture.md, "TLS"). A runtime of two workers:
 * worker 0 accepts and runs every server handshake (lib/service/tls.c, TLS 1.3, no
 * resumption) beside a heartbeat task that sleeps 1 ms at a time and records how late it
 * wakes; worker 1 runs the clients. Certificates: ECDSA P-256 (rotor's series) against
 * RSA-2048 (the baseline column), made by the openssl command.
 *   handshake_cpu         server worker CPU per handshake, one handshake at a time (us)
 *   handshakes_per_cpu_s  handshakes per second of server worker CPU, in the burst
 *   burst_longest_wait    the heartbeat's longest lateness while 200 clients connect at
 *                         once (ms): the longest the worker's other tasks waited, to set
 *                         against the stall threshold (100 ms); each line also says the
 *                         longest lateness of the same heartbeat idle (the machine's floor)
 * ROTOR_TLS_NO_SLICE=1 in the environment turns off the handshake slices (tls.c), for the
 * comparison that chose them.
 */
#include "bench.h"

#include <rotor.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"

struct run {
	struct rotor_tls_ctx *sctx, *cctx;
	int listen_fd, port, n, burst;
	atomic_int served, failed, clients_done;
	atomic_int stop;
	int64_t max_late, idle_late; /* during the run; over 200 ms before it, idle */
	int64_t cpu_ns, wall_ns;
};

static int64_t thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *heartbeat(void *arg)
{
	struct run *r = arg;
	while (!atomic_load(&r->stop)) {
		int64_t t0 = rotor_now();
		rotor_sleep(1000000);
		int64_t late = rotor_now() - t0 - 1000000;
		if (late > r->max_late)
			r->max_late = late;
	}
	return NULL;
}

struct conn {
	struct run *r;
	int fd;
};

static void *serve(void *arg)
{
	struct conn *c = arg;
	struct rotor__tls *t;
	if (rotor__tls_handshake(c->fd, c->r->sctx, NULL, rotor_now() + 30000000000LL, &t) == 0) {
		rotor__tls_destroy(t);
		atomic_fetch_add(&c->r->served, 1);
	} else {
		atomic_fetch_add(&c->r->failed, 1);
	}
	rotor_close(c->fd, ROTOR_FOREVER);
	free(c);
	return NULL;
}

static void *acceptor(void *arg)
{
	struct run *r = arg;
	for (int i = 0; i < r->n; i++) {
		int fd = rotor_accept(r->listen_fd, NULL, NULL, SOCK_CLOEXEC,
		                      rotor_now() + 30000000000LL);
		if (fd < 0)
			break;
		struct conn *c = malloc(sizeof(*c));
		c->r = r;
		c->fd = fd;
		rotor_spawn(serve, c, NULL);
	}
	return NULL;
}

static void *client(void *arg)
{
	struct run *r = arg;
	struct rotor__tls *t;
	int fd = rotor_tcp_dial("127.0.0.1", r->port, rotor_now() + 30000000000LL);
	if (fd >= 0 &&
	    rotor__tls_handshake(fd, r->cctx, "localhost", rotor_now() + 30000000000LL, &t) == 0) {
		/* The server's handshake ends with its tickets, after our Finished. */
		char b;
		rotor__tls_read(t, &b, 1, rotor_now() + 50000000LL);
		rotor__tls_destroy(t);
	}
	if (fd >= 0)
		rotor_close(fd, ROTOR_FOREVER);
	atomic_fetch_add(&r->clients_done, 1);
	return NULL;
}

static void *clients(void *arg)
{
	struct run *r = arg;
	struct rotor_task_attr a = {0};
	for (int i = 0; i < r->n; i += r->burst) {
		int k = r->n - i < r->burst ? r->n - i : r->burst;
		int target = atomic_load(&r->clients_done) + k;
		for (int j = 0; j < k; j++)
			rotor_spawn_attr(&a, client, r, NULL);
		while (atomic_load(&r->clients_done) < target)
			rotor_sleep(200000);
	}
	return NULL;
}

static void *run_main(void *arg)
{
	struct run *r = arg;
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *hb, *ac, *cl;
	rotor_spawn(heartbeat, r, &hb);
	rotor_spawn(acceptor, r, &ac);
	rotor_sleep(5000000); /* the heartbeat's first lateness is its start-up */
	r->max_late = 0;
	rotor_sleep(200000000); /* the floor: what this machine does to a 1 ms sleep, idle */
	r->idle_late = r->max_late;
	r->max_late = 0;
	int64_t c0 = thread_cpu(), t0 = rotor_now();
	rotor_spawn_attr(&on1, clients, r, &cl);
	rotor_join(cl, NULL);
	while (atomic_load(&r->served) + atomic_load(&r->failed) < r->n)
		rotor_sleep(1000000);
	r->cpu_ns = thread_cpu() - c0;
	r->wall_ns = rotor_now() - t0;
	atomic_store(&r->stop, 1);
	rotor_join(ac, NULL);
	rotor_join(hb, NULL);
	return NULL;
}

static int measure(const char *dir, const char *kind, int n, int burst, struct run *out)
{
	char cert[512], key[512];
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, kind);
	snprintf(key, sizeof(key), "%s/%s.key", dir, kind);
	struct rotor_tls_config sc = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	struct rotor_tls_config cc = {.role = ROTOR_TLS_CLIENT};
	sc.flags = ROTOR_TLS_NO_RESUME;
	cc.flags = ROTOR_TLS_NO_RESUME | ROTOR_TLS_NO_VERIFY;
	memset(out, 0, sizeof(*out));
	if (rotor_tls_ctx_create(&sc, &out->sctx) < 0 || rotor_tls_ctx_create(&cc, &out->cctx) < 0)
		return -1;
	out->listen_fd = rotor_tcp_listen("127.0.0.1", 0, 1024, 0);
	out->port = rotor_sock_port(out->listen_fd);
	out->n = n;
	out->burst = burst;
	struct rotor_config cfg = {.workers = 2};
	int rc = rotor_run(&cfg, run_main, out, NULL);
	close(out->listen_fd);
	rotor_tls_ctx_destroy(out->sctx);
	rotor_tls_ctx_destroy(out->cctx);
	return rc < 0 || atomic_load(&out->failed) ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct bench_ctx b;
	bench_init(&b, "tls_handshake",
	           "server CPU per full TLS 1.3 handshake (ECDSA P-256 vs RSA-2048), and the "
	           "longest wait of the worker's other tasks during a burst of 200",
	           5, 2, argc, argv);
	char dir[] = "/tmp/rotor-bench-tls-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout p256.key -out p256.pem -subj /CN=localhost -days 2 2>/dev/null && "
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem "
	         "-subj /CN=localhost -days 2 2>/dev/null",
	         dir);
	if (system(cmd) != 0) {
		bench_note(
		    &b, "tls_handshake: skipped: the openssl command could not make certificates");
		return 0;
	}
	int seq_n = b.quick ? 50 : 300, burst_n = 200;
	struct bench_series cpu_e = {.impl = "p256"}, cpu_r = {.impl = "rsa2048"},
	                    hps_e = {.impl = "p256"}, hps_r = {.impl = "rsa2048"},
	                    late_e = {.impl = "p256"}, late_r = {.impl = "rsa2048"};
	for (int rep = 0; rep < b.reps; rep++) {
		for (int k = 0; k < 2; k++) {
			const char *kind = k ? "rsa" : "p256";
			struct run r1, r2;
			if (measure(dir, kind, seq_n, 1, &r1) < 0 ||
			    measure(dir, kind, burst_n, burst_n, &r2) < 0) {
				bench_note(&b, "tls_handshake: %s: a handshake failed", kind);
				return 1;
			}
			bench_add(k ? &cpu_r : &cpu_e, r1.cpu_ns / 1e3 / seq_n);
			bench_add(k ? &hps_r : &hps_e, burst_n / (r2.cpu_ns / 1e9));
			bench_add(k ? &late_r : &late_e, r2.max_late / 1e6);
			bench_note(
			    &b,
			    "  rep %d %s: %.0f us CPU/handshake alone; burst of %d: %.0f "
			    "handshakes/CPU-s, %.1f ms wall, longest wait %.2f ms (idle %.2f)",
			    rep + 1, kind, r1.cpu_ns / 1e3 / seq_n, burst_n,
			    burst_n / (r2.cpu_ns / 1e9), r2.wall_ns / 1e6, r2.max_late / 1e6,
			    r2.idle_late / 1e6);
		}
	}
	bench_report(&b, "handshake_cpu", "us", &cpu_e, &cpu_r);
	bench_report(&b, "handshakes_per_cpu_s", "1/s", &hps_e, &hps_r);
	bench_report(&b, "burst_longest_wait", "ms", &late_e, &late_r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) != 0;
}
