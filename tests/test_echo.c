/*
 * The echo server example end to end: it prints its port, echoes for many concurrent
 * clients on its workers, and stops cleanly (exit 0) on SIGTERM with connections open;
 * with connections steered to the worker on their CPU (the default) and without.
 */
#include <criterion/criterion.h>

#include <sched.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static pid_t start_server(int *port, FILE **out, const char *opt)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(ROTOR_EXAMPLES_DIR "/echo_server", "echo_server", "--port", "0", "--workers",
		      "2", opt, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	char line[256] = {0};
	cr_assert_not_null(fgets(line, sizeof(line), f), "no output from echo_server");
	cr_assert_eq(sscanf(line, "listening on 127.0.0.1:%d", port), 1, "%s", line);
	*out = f; /* kept open: the server prints again when it stops */
	return pid;
}

struct report {
	int n0, n1; /* connections accepted for each worker */
	long moved; /* moves that followed */
	int stats;  /* --stats: worker lines printed, each with some completions reaped */
	char line[512];
};

/* SIGTERM: the server must exit 0 and print how it spread connections, then "stopped". */
static void stop_server(pid_t pid, FILE *out, struct report *r)
{
	cr_assert_eq(kill(pid, SIGTERM), 0);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	r->stats = 0;
	int w;
	unsigned long long cqes;
	while (fgets(r->line, sizeof(r->line), out) && r->line[0] == 'w') {
		const char *c = strstr(r->line, " cqes=");
		cr_assert(sscanf(r->line, "w%d ", &w) == 1 && w == r->stats && c &&
		              sscanf(c, " cqes=%llu", &cqes) == 1 && cqes > 0 &&
		              strstr(r->line, " sleeps="),
		          "%s", r->line);
		r->stats++;
	}
	cr_assert(sscanf(r->line, "connections per worker: %d %d; moved %ld", &r->n0, &r->n1,
	                 &r->moved) == 3,
	          "%s", r->line);
	char line[64] = {0};
	cr_assert(fgets(line, sizeof(line), out) && !strcmp(line, "stopped\n"), "%s", line);
	fclose(out);
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void echo_and_stop(const char *opt)
{
	int port = 0;
	FILE *out;
	pid_t pid = start_server(&port, &out, opt);
	enum { N = 50 };
	int fd[N];
	/* Every connection made from one CPU: steering alone would give them all to the worker
	 * on that CPU (Linux 6.2+); the server hands some to the other worker. */
	cpu_set_t saved;
	cr_assert_eq(sched_getaffinity(0, sizeof(saved), &saved), 0);
	pin_to_nth_cpu(&saved, 0);
	for (int i = 0; i < N; i++)
		fd[i] = dial(port);
	cr_assert_eq(sched_setaffinity(0, sizeof(saved), &saved), 0);
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < N; i++) {
			char msg[64];
			int len = snprintf(msg, sizeof(msg), "client %d round %d", i, round);
			cr_assert_eq(send(fd[i], msg, (size_t)len, 0), len);
		}
		for (int i = 0; i < N; i++) {
			char want[64], got[64];
			int len = snprintf(want, sizeof(want), "client %d round %d", i, round);
			int have = 0;
			while (have < len) {
				ssize_t n = recv(fd[i], got + have, (size_t)(len - have), 0);
				cr_assert_gt(n, 0, "connection %d closed early", i);
				have += (int)n;
			}
			cr_assert(!memcmp(got, want, (size_t)len));
		}
	}
	/* Stop with every connection still open. */
	struct report r;
	stop_server(pid, out, &r);
	cr_assert_eq(r.n0 + r.n1, N, "%s", r.line);
	cr_assert_eq(r.stats, opt && !strcmp(opt, "--stats") ? 2 : 0);
	/* Steered: one worker serves at most twice the other's share plus 9 (lib/service/server.c),
	 * so 14 or more each; 10 leaves room for two workers accepting at once on a kernel that
	 * spreads by hash. Unsteered: all 50 on one worker has odds 2^-49. */
	bool steered = !opt || strcmp(opt, "--no-steer");
	cr_assert(steered ? r.n0 >= 10 && r.n1 >= 10 : r.n0 > 0 && r.n1 > 0, "%s", r.line);
	/* The server closed its side of each connection. */
	char c;
	for (int i = 0; i < N; i++) {
		cr_assert_leq(recv(fd[i], &c, 1, 0), 0);
		close(fd[i]);
	}
}

Test(echo, echoes_for_many_clients_and_stops_on_sigterm, .timeout = 30)
{
	echo_and_stop(NULL); /* steered: all made on one CPU, spread by the hand-over */
}

Test(echo, echoes_with_steering_off, .timeout = 30)
{
	echo_and_stop("--no-steer"); /* the kernel's hash spreads them over both workers */
}

Test(echo, prints_each_workers_counters_with_stats, .timeout = 30)
{
	echo_and_stop("--stats");
}

/* A client that sends from the other CPU makes its connection's packets arrive there (on
 * loopback the sender's CPU processes them): the server moves the connection to the worker
 * on that CPU between two reads, and not a byte is lost or reordered. */
Test(echo, a_connection_follows_its_client_to_the_other_cpu, .timeout = 30)
{
	cpu_set_t all;
	cpus_to_steer_between(&all);
	int port = 0;
	FILE *out;
	pid_t pid = start_server(&port, &out, NULL);
	pin_to_nth_cpu(&all, 0);
	int fd = dial(port);
	unsigned seq = 0;
	/* Two phases on each CPU: wherever the connection started, it has to move. */
	for (int phase = 0; phase < 4; phase++) {
		pin_to_nth_cpu(&all, phase % 2);
		for (int i = 0; i < 300; i++, seq++) {
			char want[64], got[64];
			int len = snprintf(want, sizeof(want), "message %u", seq);
			cr_assert_eq(send(fd, want, (size_t)len, 0), len);
			for (int have = 0; have < len;) {
				ssize_t n = recv(fd, got + have, (size_t)(len - have), 0);
				cr_assert_gt(n, 0, "connection closed early");
				have += (int)n;
			}
			cr_assert(!memcmp(got, want, (size_t)len), "%.*s", len, got);
		}
	}
	cr_assert_eq(sched_setaffinity(0, sizeof(all), &all), 0);
	close(fd);
	struct report r;
	stop_server(pid, out, &r);
	cr_assert_geq(r.moved, 1, "the connection never followed its client: %s", r.line);
}
