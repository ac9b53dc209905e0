/*
 * The server module (rotor/server.h): connections accepted on every worker's listener and
 * served by the program's function, the connection cap, moves between workers, steering on
 * and off, stop and destroy leaving no task or descriptor, the errors of misuse; and
 * examples/hello.c, the smallest program built on it.
 */
#include <criterion/criterion.h>
#include <rotor/server.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static atomic_int closed; /* the close hook's calls */

/* Says which worker serves the connection, then waits for the peer to close. */
static void say_worker(struct rotor_server_conn *c, void *arg)
{
	char b = (char)('0' + rotor_worker_id()), sink[16];
	int fd = rotor_server_conn_fd(c);
	(void)arg;
	if (rotor_send(fd, &b, 1, MSG_NOSIGNAL, rotor_now() + 5 * SEC) == 1)
		while (rotor_recv(fd, sink, sizeof(sink), 0, rotor_now() + 5 * SEC) > 0)
			;
}

static void count_close(struct rotor_server_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	atomic_fetch_add(&closed, 1);
}

/* A connection to the server, and the worker serving it ('0' + index), or -1 if the server
 * closed it without a word (or said nothing by the deadline). */
static int dial(struct rotor_server *s, int *fd)
{
	char b;
	*fd = rotor_tcp_dial("127.0.0.1", rotor_server_port(s), rotor_now() + 5 * SEC);
	CHECK(*fd >= 0);
	return rotor_recv(*fd, &b, 1, 0, rotor_now() + SEC) == 1 ? b - '0' : -1;
}

/* Destroy s once its connections have ended (their tasks see the peers' closes). */
static void destroy_when_idle(struct rotor_server *s)
{
	int r;
	for (int i = 0; (r = rotor_server_destroy(s)) == -EBUSY && i < 5000; i++)
		rotor_sleep(MS);
	CHECK_EQ(r, 0);
}

static uint64_t given(struct rotor_server *s, int w)
{
	struct rotor_server_stats st;
	CHECK_EQ(rotor_server_stats(s, w, &st), 0);
	return st.given;
}

static void *serves_main(void *arg)
{
	struct rotor_server_config cfg = {.host = "127.0.0.1", .workers = 2, .serve = say_worker};
	cfg.close = count_close;
	cfg.flags = U(arg);
	struct rotor_server *s;
	CHECK_EQ(rotor_server_create(&cfg, &s), 0);
	CHECK(rotor_server_port(s) > 0);
	CHECK_EQ(rotor_server_start(s), 0);
	enum { N = 20 };
	int fd[N], on[2] = {0, 0};
	for (int i = 0; i < N; i++) {
		int w = dial(s, &fd[i]);
		CHECK(w == 0 || w == 1);
		if (w == 0 || w == 1)
			on[w]++;
	}
	CHECK_EQ(given(s, 0) + given(s, 1), N);
	CHECK_EQ(given(s, 0), on[0]);
	for (int i = 0; i < N; i++)
		close(fd[i]);
	CHECK_EQ(rotor_server_stop(s), 0);
	destroy_when_idle(s);
	CHECK_EQ(atomic_load(&closed), N);
	return NULL;
}

Test(server, serves_every_connection_on_its_port_and_closes_each_once, .timeout = 30)
{
	atomic_store(&closed, 0);
	run_checked(2, serves_main, P(0));
}

Test(server, serves_with_steering_off, .timeout = 30)
{
	atomic_store(&closed, 0);
	run_checked(2, serves_main, P(ROTOR_SERVER_NO_STEER));
}

/* Steered, each worker's listener takes its CPU's handshakes; not steered, none does. */
static void *steer_main(void *arg)
{
	unsigned flags = (unsigned)U(arg);
	struct rotor_server_config cfg = {.workers = 2, .serve = say_worker, .flags = flags};
	cfg.host = "127.0.0.1";
	struct rotor_server *s;
	struct rotor_server_stats st[2];
	CHECK_EQ(rotor_server_create(&cfg, &s), 0);
	CHECK_EQ(rotor_server_start(s), 0);
	for (int w = 0; w < 2; w++) {
		CHECK_EQ(rotor_server_stats(s, w, &st[w]), 0);
		CHECK_EQ(st[w].steer_error, 0);
		CHECK(flags ? st[w].cpu == -1 : st[w].cpu >= 0);
	}
	CHECK(flags || st[0].cpu != st[1].cpu);
	CHECK_EQ(rotor_server_stop(s), 0);
	CHECK_EQ(rotor_server_destroy(s), 0);
	return NULL;
}

Test(server, steers_each_listener_to_its_workers_cpu_unless_told_not_to, .timeout = 30)
{
	cpu_set_t all;
	cpus_to_steer_between(&all);
	run_checked(2, steer_main, P(0));
	run_checked(2, steer_main, P(ROTOR_SERVER_NO_STEER));
}

static void *cap_main(void *arg)
{
	(void)arg;
	struct rotor_server_config cfg = {.host = "127.0.0.1", .workers = 1, .max_conns = 2};
	cfg.serve = say_worker;
	struct rotor_server *s;
	struct rotor_server_stats st;
	CHECK_EQ(rotor_server_create(&cfg, &s), 0);
	CHECK_EQ(rotor_server_start(s), 0);
	int a, b, extra;
	CHECK_EQ(dial(s, &a), 0);
	CHECK_EQ(dial(s, &b), 0);
	CHECK_EQ(dial(s, &extra), -1); /* closed at once: end of stream, no byte */
	close(extra);
	CHECK_EQ(rotor_server_stats(s, 0, &st), 0);
	CHECK_EQ(st.refused, 1);
	CHECK_EQ(st.serving, 2);
	close(a); /* one ends: a new one is served again, once the server has seen it end */
	int served = -1, c = -1;
	for (int i = 0; i < 100 && served < 0; i++) {
		if (c >= 0)
			close(c);
		served = dial(s, &c);
	}
	CHECK_EQ(served, 0);
	close(b);
	close(c);
	CHECK_EQ(rotor_server_stop(s), 0);
	destroy_when_idle(s);
	return NULL;
}

Test(server, closes_connections_over_the_cap_and_serves_again_below_it, .timeout = 30)
{
	run_checked(1, cap_main, NULL);
}

static uint64_t tasks_alive(void)
{
	struct rotor_runtime *rt = rotor_runtime_current();
	uint64_t n = 0;
	for (int w = 0; w < rotor_runtime_workers(rt); w++) {
		struct rotor_worker_stats st;
		CHECK_EQ(rotor_worker_stats(rt, w, &st), 0);
		n += st.tasks_alive;
	}
	return n;
}

static void *stop_main(void *arg)
{
	(void)arg;
	int fds = count_dir("/proc/self/fd");
	uint64_t tasks = tasks_alive();
	struct rotor_server_config cfg = {.host = "127.0.0.1", .workers = 2, .serve = say_worker};
	struct rotor_server *s;
	CHECK_EQ(rotor_server_create(&cfg, &s), 0);
	CHECK_EQ(count_dir("/proc/self/fd"), fds + 2); /* a listener per worker */
	CHECK_EQ(rotor_server_start(s), 0);
	CHECK_EQ(rotor_server_destroy(s), -EBUSY); /* accept tasks run */
	CHECK_EQ(tasks_alive(), tasks + 2);
	int fd;
	CHECK(dial(s, &fd) >= 0);
	close(fd);
	CHECK_EQ(rotor_server_stop(s), 0);
	CHECK_EQ(rotor_server_stop(s), 0); /* stopped already: nothing to do */
	/* The handshake still completes in the kernel's queue, but nobody accepts it. */
	CHECK_EQ(dial(s, &fd), -1);
	close(fd);
	destroy_when_idle(s);
	for (int i = 0; i < 1000 && tasks_alive() != tasks; i++)
		rotor_sleep(MS); /* the connection's task ends a moment after its stats say so */
	CHECK_EQ(tasks_alive(), tasks);
	CHECK_EQ(count_dir("/proc/self/fd"), fds);
	return NULL;
}

Test(server, stop_ends_the_accept_tasks_and_destroy_leaves_no_descriptor, .timeout = 30)
{
	run_checked(2, stop_main, NULL);
}

/* Moves the connection to the other worker on its first call, with a word in its state;
 * there, says which worker serves it and what the state held. */
static void move_once(struct rotor_server_conn *c, void *arg)
{
	char *state = rotor_server_conn_data(c);
	(void)arg;
	if (!state[0]) {
		state[0] = 'm';
		CHECK_EQ(rotor_server_move(c, rotor_worker_id()), -EINVAL); /* not to itself */
		CHECK_EQ(rotor_server_move(c, 2), -EINVAL);
		CHECK_EQ(rotor_server_move(c, 1 - rotor_worker_id()), 0);
		return;
	}
	char msg[2] = {(char)('0' + rotor_worker_id()), state[0]};
	rotor_send(rotor_server_conn_fd(c), msg, 2, MSG_NOSIGNAL, rotor_now() + 5 * SEC);
}

static void *move_main(void *arg)
{
	(void)arg;
	struct rotor_server_config cfg = {.host = "127.0.0.1", .workers = 2, .serve = move_once};
	cfg.conn_size = 1;
	cfg.flags = ROTOR_SERVER_NO_STEER;
	struct rotor_server *s;
	CHECK_EQ(rotor_server_create(&cfg, &s), 0);
	CHECK_EQ(rotor_server_start(s), 0);
	int fd = rotor_tcp_dial("127.0.0.1", rotor_server_port(s), rotor_now() + 5 * SEC);
	char got[2] = {0, 0};
	CHECK_EQ(rotor_recv(fd, got, 2, MSG_WAITALL, rotor_now() + 5 * SEC), 2);
	CHECK_EQ(got[1], 'm');
	struct rotor_server_stats st[2];
	CHECK_EQ(rotor_server_stats(s, 0, &st[0]), 0);
	CHECK_EQ(rotor_server_stats(s, 1, &st[1]), 0);
	int from = got[0] == '0' ? 1 : 0; /* it moved once, to the worker that answered */
	CHECK_EQ(st[from].given, 1);
	CHECK_EQ(st[from].moved_out, 1);
	CHECK_EQ(st[1 - from].given + st[1 - from].moved_out, 0);
	close(fd);
	CHECK_EQ(rotor_server_stop(s), 0);
	destroy_when_idle(s);
	return NULL;
}

Test(server, a_moved_connection_is_served_on_the_other_worker_with_its_state, .timeout = 30)
{
	run_checked(2, move_main, NULL);
}

static void *misuse_main(void *arg)
{
	(void)arg;
	struct rotor_server_config cfg = {.host = "127.0.0.1", .workers = 1, .serve = say_worker};
	struct rotor_server *s, *other;
	CHECK_EQ(rotor_server_create(&cfg, &s), 0);
	CHECK_EQ(rotor_server_start(s), -EINVAL); /* two workers, one listener */
	/* The port is taken by a listener of the same group only if it asks to share it. */
	int taken = rotor_tcp_listen("127.0.0.1", 0, 1, 0);
	cfg.port = rotor_sock_port(taken);
	CHECK_EQ(rotor_server_create(&cfg, &other), -EADDRINUSE);
	close(taken);
	CHECK_EQ(rotor_server_destroy(s), 0);
	cfg.port = 0;
	cfg.workers = 2;
	CHECK_EQ(rotor_server_create(&cfg, &s), 0);
	CHECK_EQ(rotor_server_start(s), 0);
	CHECK_EQ(rotor_server_start(s), -EBUSY);
	CHECK_EQ(rotor_server_stop(s), 0);
	CHECK_EQ(rotor_server_start(s), 0); /* a stopped server starts again */
	CHECK_EQ(rotor_server_stop(s), 0);
	CHECK_EQ(rotor_server_destroy(s), 0);
	return NULL;
}

Test(server, misuse_gets_an_error)
{
	struct rotor_server_config cfg = {.host = "127.0.0.1", .workers = 1, .serve = say_worker};
	struct rotor_server *s = P(1);
	cr_assert_eq(rotor_server_create(NULL, &s), -EINVAL);
	cr_assert_eq(rotor_server_create(&cfg, NULL), -EINVAL);
	cfg.port = 65536;
	cr_assert_eq(rotor_server_create(&cfg, &s), -EINVAL);
	cfg.port = -1;
	cr_assert_eq(rotor_server_create(&cfg, &s), -EINVAL);
	cfg.port = 0;
	cfg.max_conns = -1;
	cr_assert_eq(rotor_server_create(&cfg, &s), -EINVAL);
	cfg.max_conns = 0;
	cfg.serve = NULL;
	cr_assert_eq(rotor_server_create(&cfg, &s), -EINVAL);
	cfg.serve = say_worker;
	cfg.host = "256.1.2.3"; /* no address, and no name resolvers are asked about */
	cr_assert_eq(rotor_server_create(&cfg, &s), -EINVAL);
	cr_assert(s == P(1), "*out written on failure");
	cfg.host = "127.0.0.1";
	cr_assert_eq(rotor_server_create(&cfg, &s), 0);
	cr_assert_eq(rotor_server_start(s), -EPERM); /* not a task */
	cr_assert_eq(rotor_server_stop(s), -EPERM);
	struct rotor_server_stats st;
	cr_assert_eq(rotor_server_stats(s, 1, &st), -EINVAL);
	cr_assert_eq(rotor_server_stats(s, -1, &st), -EINVAL);
	cr_assert_eq(rotor_server_stats(s, 0, NULL), -EINVAL);
	cr_assert_eq(rotor_server_stats(s, 0, &st), 0);
	cr_assert_eq(st.cpu, -1);
	cr_assert_eq(rotor_server_destroy(s), 0);
	cr_assert_eq(rotor_server_start(NULL), -EINVAL);
	cr_assert_eq(rotor_server_stop(NULL), -EINVAL);
	cr_assert_eq(rotor_server_destroy(NULL), -EINVAL);
	cr_assert_eq(rotor_server_port(NULL), -EINVAL);
	cr_assert_eq(rotor_server_conn_fd(NULL), -EINVAL);
	cr_assert_null(rotor_server_conn_data(NULL));
	cr_assert_eq(rotor_server_follow(NULL), -EINVAL);
	cr_assert_eq(rotor_server_move(NULL, 0), -EINVAL);
	run_checked(2, misuse_main, NULL);
}

/* ---- examples/hello.c ---- */

Test(server, hello_example_answers_hello_and_exits_0_on_sigterm, .timeout = 30)
{
	const char *path = ROTOR_EXAMPLES_DIR "/hello";
	if (access(path, X_OK) != 0)
		cr_skip_test("%s is not built (configure with -DROTOR_EXAMPLES=ON)", path);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		execl(path, "hello", "0", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *out = fdopen(fds[0], "r");
	char line[128] = {0};
	int port;
	cr_assert_not_null(fgets(line, sizeof(line), out), "no output from hello");
	cr_assert_eq(sscanf(line, "listening on port %d", &port), 1, "%s", line);
	for (int i = 0; i < 3; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		char got[16] = {0};
		size_t have = 0;
		for (ssize_t n; (n = recv(fd, got + have, sizeof(got) - 1 - have, 0)) > 0;)
			have += (size_t)n;
		cr_assert_str_eq(got, "hello\n");
		close(fd);
	}
	cr_assert_eq(kill(pid, SIGTERM), 0);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	fclose(out);
}
