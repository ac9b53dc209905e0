/*
 * The user's seed scenarios, end to end: runs each program of examples/ with short durations
 * (--scale) and checks its exit status and the lines it prints (counts, orders, timing gaps).
 * Each example also checks its own invariants; these tests re-check the key ones from the
 * outside, so that a program that silently did less would still fail here.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis_peer.h"

#define MAX_ARGS 24

struct run {
	int status; /* exit code, or 128 + signal */
	char *out;  /* stdout and stderr, interleaved, NUL-terminated */
	size_t len;
};

/* Run examples/<name> with the NULL-terminated arguments; capture its output. */
static struct run run_example(const char *name, ...)
{
	char path[4096];
	char *argv[MAX_ARGS + 2];
	struct run r = {0};
	size_t cap = 1 << 16;
	int argc = 0, fds[2], ws;
	va_list ap;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", ROTOR_EXAMPLES_DIR, name);
	if (access(path, X_OK) != 0)
		cr_skip_test("%s is not built (configure with -DROTOR_EXAMPLES=ON)", path);
	argv[argc++] = path;
	va_start(ap, name);
	for (char *a; (a = va_arg(ap, char *)) != NULL && argc <= MAX_ARGS;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* Do not outlive a test killed by its timeout. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv(path, argv);
		_exit(127);
	}
	close(fds[1]);
	r.out = malloc(cap);
	cr_assert_not_null(r.out);
	for (;;) {
		ssize_t n;

		if (cap - r.len < 4096) {
			cap *= 2;
			r.out = realloc(r.out, cap);
			cr_assert_not_null(r.out);
		}
		n = read(fds[0], r.out + r.len, cap - r.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		r.len += (size_t)n;
	}
	r.out[r.len] = '\0';
	close(fds[0]);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	return r;
}

/* The last few KiB of the output, for failure messages. */
static const char *tail(const struct run *r)
{
	return r->len > 3000 ? r->out + r->len - 3000 : r->out;
}

/* Exit 77 means the example could not start a runtime: io_uring is off on this machine. */
static void expect_success(const struct run *r)
{
	if (r->status == 77)
		cr_skip_test("needs io_uring (kernel.io_uring_disabled = 0)");
	cr_assert_eq(r->status, 0, "exit status %d; output ends with:\n%s", r->status, tail(r));
	cr_assert_null(strstr(r->out, "INVARIANT FAILED"), "%s", tail(r));
}

static int count_lines(const char *out, const char *prefix)
{
	size_t plen = strlen(prefix);
	int n = 0;

	for (const char *l = out; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
		n += strncmp(l, prefix, plen) == 0;
	return n;
}

/* Offset of the first line starting with prefix (after `from`), or -1. */
static long line_at(const char *out, const char *prefix, long from)
{
	size_t plen = strlen(prefix);

	for (const char *l = out + from; *l;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
		if (strncmp(l, prefix, plen) == 0)
			return l - out;
	return -1;
}

/* Offset of the last line starting with prefix, or -1. */
static long last_line_at(const char *out, const char *prefix)
{
	long at = -1, next;

	while ((next = line_at(out, prefix, at + 1)) >= 0)
		at = next;
	return at;
}

/* The number after `key` (e.g. "max_alive_gap=") on the first line that has it. */
static double number_after(const struct run *r, const char *key)
{
	const char *p = strstr(r->out, key);

	cr_assert_not_null(p, "no '%s' in the output:\n%s", key, tail(r));
	return strtod(p + strlen(key), NULL);
}

/* ---- seed 000: run_coroutine_threadsafe from a thread without a loop --------------------- */

Test(examples, coroutines_submitted_from_the_main_thread_each_finish_exactly_once, .timeout = 60)
{
	enum { BATCHES = 3, PER_BATCH = 1000, TOTAL = BATCHES * PER_BATCH };
	struct run r =
	    run_example("seed000_submit_at_runtime", "--batches", "3", "--scale", "0.05", NULL);
	static int finished[TOTAL];

	expect_success(&r);
	cr_expect_eq(count_lines(r.out, "Add Coro "), TOTAL);
	cr_expect_eq(count_lines(r.out, "Adding 1000 more coros"), BATCHES - 1);
	for (const char *l = r.out; (l = strstr(l, "Coro ")) != NULL; l++) {
		long n;

		if (l != r.out && l[-1] != '\n')
			continue; /* the "Add Coro" lines */
		if (sscanf(l, "Coro %ld has finished", &n) == 1) {
			cr_assert(n >= 0 && n < TOTAL, "Coro %ld was never submitted", n);
			finished[n]++;
		}
	}
	for (int i = 0; i < TOTAL; i++)
		cr_assert_eq(finished[i], 1, "Coro %d finished %d times", i, finished[i]);
	cr_expect_neq(strstr(r.out, "started=3000 finished=3000"), NULL, "%s", tail(&r));
	free(r.out);
}

Test(examples, tens_of_thousands_of_foreign_submissions_all_complete, .timeout = 60)
{
	struct run r = run_example("seed000_submit_at_runtime", "--batches", "2", "--batch-size",
	                           "20000", "--scale", "0.02", "--quiet", NULL);

	expect_success(&r);
	cr_expect_neq(strstr(r.out, "started=40000 finished=40000"), NULL, "%s", tail(&r));
	cr_expect_eq(count_lines(r.out, "Coro "), 0, "--quiet still printed per-coroutine lines");
	free(r.out);
}

/* ---- seed 001: ways to run a loop, callbacks, a blocked loop ---------------------------- */

Test(examples, asyncio_run_shape_returns_after_the_main_coroutine, .timeout = 60)
{
	struct run r = run_example("seed001_event_loop", "run", "--scale", "0.02", NULL);

	expect_success(&r);
	/* do_something_important sleeps 10 s, scaled: 0.2 s. */
	cr_expect_geq(number_after(&r, "Program ran for "), 0.2, "%s", r.out);
	cr_expect_lt(number_after(&r, "Program ran for "), 5.0, "%s", r.out);
	free(r.out);
}

Test(examples, run_until_complete_on_a_background_runtime_returns_the_result, .timeout = 60)
{
	struct run r =
	    run_example("seed001_event_loop", "run_until_complete", "--scale", "0.02", NULL);

	expect_success(&r);
	cr_expect_geq(number_after(&r, "Program ran for "), 0.2, "%s", r.out);
	cr_expect_geq(number_after(&r, "the coroutine slept "), 0.2, "%s", r.out);
	free(r.out);
}

Test(examples, each_thread_runs_its_own_loop, .timeout = 60)
{
	struct run r =
	    run_example("seed001_event_loop", "loop_per_thread", "--scale", "0.05", NULL);

	expect_success(&r);
	cr_expect_eq(count_lines(r.out, "Thread-1: thread "), 1, "%s", r.out);
	cr_expect_eq(count_lines(r.out, "Thread-2: thread "), 1, "%s", r.out);
	cr_expect_eq(count_lines(r.out, "MainThread: thread MainThread"), 1, "%s", r.out);
	cr_expect_neq(strstr(r.out, "no running loop here"), NULL, "%s", r.out);
	cr_expect_eq(number_after(&r, "distinct_loops="), 1.0, "%s", r.out);
	/* Two loop identities, different from each other. */
	char a[32] = "", b[32] = "";
	const char *p1 = strstr(r.out, "Thread-1: thread"), *p2 = strstr(r.out, "Thread-2: thread");
	cr_assert(p1 && p2);
	cr_assert_eq(sscanf(strstr(p1, "loop "), "loop %31[^,]", a), 1, "%s", r.out);
	cr_assert_eq(sscanf(strstr(p2, "loop "), "loop %31[^,]", b), 1, "%s", r.out);
	cr_expect_str_neq(a, b);
	free(r.out);
}

Test(examples, call_later_callback_resolves_the_future_a_coroutine_awaits, .timeout = 60)
{
	struct run r = run_example("seed001_event_loop", "callbacks", "--scale", "0.05", NULL);
	long soon, resolver, exiting, main_exit;

	expect_success(&r);
	soon = line_at(r.out, "call_soon callback ran", 0);
	resolver = line_at(r.out, "resolver (call_later callback)", 0);
	exiting = line_at(r.out, "coro exiting", 0);
	main_exit = line_at(r.out, "main exiting", 0);
	cr_assert(soon >= 0 && resolver >= 0 && exiting >= 0 && main_exit >= 0, "%s", r.out);
	cr_expect(soon < resolver && resolver < exiting && exiting < main_exit,
	          "callbacks out of order:\n%s", r.out);
	/* call_later(5) + time.sleep(2) in the resolver, scaled by 0.05: >= 0.35 s. */
	cr_expect_geq(number_after(&r, "coro exiting at "), 0.35, "%s", r.out);
	cr_expect_eq(number_after(&r, "callbacks_ok="), 1.0, "%s", r.out);
	free(r.out);
}

/* A callback that sleeps synchronously for 1 s (10 s scaled by 0.1) freezes its loop: the
 * monitor's 0.1 s "Alive" messages stop for the whole second. */
Test(examples, blocking_callback_silences_the_loop_for_the_whole_block, .timeout = 60)
{
	struct run r = run_example("seed001_event_loop", "blocking", "--scale", "0.1", NULL);

	expect_success(&r);
	cr_expect_geq(number_after(&r, "resolver_time="), 1.0, "%s", r.out);
	cr_expect_geq(number_after(&r, "max_alive_gap="), 1.0, "the loop was not blocked:\n%s",
	              r.out);
	cr_expect_geq(count_lines(r.out, "Alive at "), 5, "%s", r.out);
	/* asyncio debug mode's slow-callback warning: the stall detector names the callback. */
	cr_expect(strstr(r.out, "stall: a callback has held worker"), "no stall report:\n%s",
	          r.out);
	free(r.out);
}

/* The fix: the resolver is a coroutine that sleeps 1 s with rotor_sleep; "Alive" keeps its
 * 0.1 s period (allowing scheduling noise, well under the 1 s the blocking version shows). */
Test(examples, sleeping_resolver_keeps_the_monitor_on_its_period, .timeout = 60)
{
	struct run r = run_example("seed001_event_loop", "blocking_fixed", "--scale", "0.1", NULL);

	expect_success(&r);
	cr_expect_geq(number_after(&r, "resolver_time="), 1.0, "%s", r.out);
	cr_expect_lt(number_after(&r, "max_alive_gap="), 0.4, "the loop stalled:\n%s", r.out);
	/* 1 s of resolver + 0.2 s after it, at 0.1 s a message. */
	cr_expect_geq(count_lines(r.out, "Alive at "), 10, "%s", r.out);
	cr_expect(!strstr(r.out, "stall:"), "the fixed version stalled:\n%s", r.out);
	free(r.out);
}

/* ---- seed 002: many loops, many coroutines ---------------------------------------------- */

static void expect_loops_interleaved(const struct run *r, int n)
{
	char running[32], done[32];

	for (int i = 0; i < n; i++) {
		snprintf(running, sizeof(running), "Loop%d: running...", i);
		snprintf(done, sizeof(done), "Loop%d done", i);
		cr_expect_eq(count_lines(r->out, running), 6, "%s", r->out);
		cr_expect_eq(count_lines(r->out, done), 1, "%s", r->out);
	}
	/* Concurrent loops: each loop's first round is printed before every loop's last. */
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++) {
			char first[32], last[32];

			snprintf(first, sizeof(first), "Loop%d: running...", i);
			snprintf(last, sizeof(last), "Loop%d: running...", j);
			cr_expect_lt(line_at(r->out, first, 0), last_line_at(r->out, last),
			             "Loop%d started after Loop%d ended:\n%s", i, j, r->out);
		}
}

Test(examples, five_loops_in_five_threads_run_concurrently, .timeout = 60)
{
	struct run r = run_example("seed002_many_loops", "--loops", "5", "--scale", "0.2", NULL);

	expect_success(&r);
	expect_loops_interleaved(&r, 5);
	cr_expect_neq(strstr(r.out, "loops=5 done=5"), NULL, "%s", r.out);
	/* 6 rounds of 0.1 s: one loop's time, far from the 3 s of five in a row. */
	cr_expect_lt(number_after(&r, "elapsed="), 2.0, "%s", r.out);
	free(r.out);
}

Test(examples, a_loop_in_a_thread_and_one_in_the_main_thread_run_together, .timeout = 60)
{
	struct run r =
	    run_example("seed002_many_loops", "--loops", "2", "--main-too", "--scale", "0.2", NULL);

	expect_success(&r);
	expect_loops_interleaved(&r, 2);
	cr_expect_neq(strstr(r.out, "loops=2 done=2"), NULL, "%s", r.out);
	free(r.out);
}

/* ThreadSanitizer counts every coroutine as a thread and dies past 8128 of them. */
#if defined(__SANITIZE_THREAD__)
#define MANY_COROUTINES 4000
#else
#define MANY_COROUTINES 50000
#endif

Test(examples, one_runtime_runs_tens_of_thousands_of_sleeping_coroutines, .timeout = 60)
{
	char count[32], expected[64];

	snprintf(count, sizeof(count), "%d", MANY_COROUTINES);
	snprintf(expected, sizeof(expected), "coroutines=%d finished=%d", MANY_COROUTINES,
	         MANY_COROUTINES);
	struct run r = run_example("seed002_many_loops", "--coroutines", count, "--sleep", "1",
	                           "--scale", "0.5", "--stack-size", "16384", NULL);

	expect_success(&r);
	cr_expect_neq(strstr(r.out, expected), NULL, "%s", tail(&r));
	/* Spawned faster than they sleep: a fifth of them at least asleep at once. */
	cr_expect_geq(number_after(&r, "max_concurrent="), MANY_COROUTINES / 5.0, "%s", tail(&r));
	/* Each sleeps 0.5 s: all of them in a few seconds, not thousands. */
	cr_expect_lt(number_after(&r, "elapsed="), 20.0, "%s", tail(&r));
	free(r.out);
}

/* ---- seed 003: a loop thread object and per-loop sessions -------------------------------- */

#if ROTOR_HAVE_REDIS && ROTOR_HAVE_TLS
/* nginx for seed 003's HTTPS half: one worker in the foreground on a free loopback port with
 * TLS (a self-signed certificate for 127.0.0.1, which the fetcher trusts as its CA), serving
 * dir/www, logging "$connection $status" per request; stopped by its PID. */
struct https_peer {
	char dir[64];
	pid_t pid;
	int port;
};

#define SEED003_PAGE_LEN 20000

static char seed003_byte(size_t i)
{
	return (char)('a' + (i * 7 + i / 26) % 26);
}

static int https_peer_start(struct https_peer *p)
{
	char cmd[512], path[128];
	FILE *f;

	strcpy(p->dir, "/tmp/rotor-seed003-XXXXXX");
	if (!mkdtemp(p->dir))
		return -1;
	snprintf(cmd, sizeof(cmd),
	         "cd %s && mkdir www tmp && openssl req -x509 -newkey ec -pkeyopt "
	         "ec_paramgen_curve:P-256 -nodes -keyout key.pem -subj /CN=127.0.0.1 -addext "
	         "subjectAltName=IP:127.0.0.1 -days 2 -out cert.pem 2>/dev/null",
	         p->dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/www/page.html", p->dir);
	if (!(f = fopen(path, "w")))
		return -1;
	for (size_t i = 0; i < SEED003_PAGE_LEN; i++)
		fputc(seed003_byte(i), f);
	fclose(f);
	for (int attempt = 0; attempt < 3; attempt++) {
		p->port = redis_peer_free_port();
		snprintf(path, sizeof(path), "%s/nginx.conf", p->dir);
		if (!(f = fopen(path, "w")))
			return -1;
		fprintf(
		    f,
		    "daemon off; master_process off; worker_processes 1;\n"
		    "pid %s/nginx.pid; error_log %s/error.log;\n"
		    "events { worker_connections 1024; }\n"
		    "http {\n"
		    " log_format c '$connection $status';\n"
		    " access_log %s/access.log c;\n"
		    " client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n"
		    " fastcgi_temp_path %s/tmp; uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;\n"
		    " keepalive_requests 100000;\n"
		    " server { listen 127.0.0.1:%d ssl; root %s/www;\n"
		    "  ssl_certificate %s/cert.pem; ssl_certificate_key %s/key.pem; }\n"
		    "}\n",
		    p->dir, p->dir, p->dir, p->dir, p->dir, p->dir, p->dir, p->dir, p->port, p->dir,
		    p->dir, p->dir);
		fclose(f);
		p->pid = fork();
		if (p->pid < 0)
			return -1;
		if (p->pid == 0) {
			char *argv[] = {"nginx", "-p", p->dir, "-c", path, NULL};
			int null = open("/dev/null", O_WRONLY);

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			execvp("nginx", argv);
			_exit(127);
		}
		for (int i = 0; i < 300; i++) {
			if (redis_peer_accepts(p->port))
				return 0;
			if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
				break;
			usleep(10000);
		}
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	p->pid = 0;
	return -1;
}

static void https_peer_stop(struct https_peer *p)
{
	char cmd[128];

	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
	if (p->dir[0] && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", p->dir);
}

/* Requests nginx logged, those with status 200, and the distinct connections they came on. */
static void https_peer_log(struct https_peer *p, long *requests, long *ok, long *conns)
{
	char path[128], line[128];
	long seen[4096];
	FILE *f;

	*requests = *ok = *conns = 0;
	snprintf(path, sizeof(path), "%s/access.log", p->dir);
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		long c = 0;
		int status = 0;
		bool dup = false;

		if (sscanf(line, "%ld %d", &c, &status) != 2)
			continue;
		++*requests;
		*ok += status == 200;
		for (long i = 0; i < *conns; i++)
			dup |= seen[i] == c;
		if (!dup && *conns < 4096)
			seen[(*conns)++] = c;
	}
	fclose(f);
}
#endif

Test(examples, loop_thread_runs_coroutines_and_per_worker_sessions_serve_every_request,
     .timeout = 60)
{
#if !ROTOR_HAVE_REDIS
	cr_skip_test("needs the Redis client (libhiredis-dev)");
#else
	struct redis_peer peer;
	char port[16];

	if (!redis_peer_available())
		cr_skip_test(
		    "needs redis-server and redis-cli (Debian: redis-server, redis-tools)");
	cr_assert_eq(redis_peer_start(&peer), 0);
	snprintf(port, sizeof(port), "%d", peer.port);
	/* The seed's HTTPS half, session.get(url): one request in 10 also fetches a known page
	 * from a local nginx over TLS, verified against its self-signed certificate. */
	bool https = false;
	char url[64] = "", cacert[128] = "";
#if ROTOR_HAVE_TLS
	struct https_peer web = {0};

	if (system("command -v nginx >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1") != 0)
		fprintf(stderr, "seed003: the HTTPS part is skipped: needs nginx (Debian: "
		                "nginx-light) and openssl\n");
	else if (https_peer_start(&web) != 0)
		cr_assert_fail("nginx did not start (see %s/error.log)", web.dir);
	else {
		https = true;
		snprintf(url, sizeof(url), "https://127.0.0.1:%d/page.html", web.port);
		snprintf(cacert, sizeof(cacert), "%s/cert.pem", web.dir);
	}
#else
	fprintf(stderr, "seed003: the HTTPS part is skipped: rotor was built without TLS\n");
#endif
	/* redis-cli's own connection is one of these, and one of the count after. */
	long long before = redis_peer_info(&peer, "stats", "total_connections_received");
	struct run r =
	    https ? run_example("seed003_loop_thread", "--requests", "10000", "--threads", "4",
	                        "--batch", "50", "--scale", "0.05", "--workers", "2",
	                        "--redis-port", port, "--https-url", url, "--cacert", cacert,
	                        "--fetch-every", "10", NULL)
	          : run_example("seed003_loop_thread", "--requests", "10000", "--threads", "4",
	                        "--scale", "0.05", "--workers", "2", "--redis-port", port, NULL);
	long long after = redis_peer_info(&peer, "stats", "total_connections_received");
	long long clients = redis_peer_info(&peer, "clients", "connected_clients");
	redis_peer_stop(&peer);
	long requests = 0, ok = 0, conns = 0;
#if ROTOR_HAVE_TLS
	if (https) {
		https_peer_log(&web, &requests, &ok, &conns);
		https_peer_stop(&web);
	}
#endif

	expect_success(&r);
	cr_expect_eq(count_lines(r.out, "hello world"), 1, "%s", r.out);
	cr_expect_neq(strstr(r.out, "loop thread: running=0"), NULL, "%s", r.out);
	cr_expect_neq(strstr(r.out, "fetcher: 2 sessions opened"), NULL, "%s", r.out);
	cr_expect_neq(strstr(r.out, "thread 0 request 0: value-0-0"), NULL, "%s", r.out);
	cr_expect_neq(strstr(r.out, "fetcher: requests=10000 threads=4 answered=10000 "
	                            "counter=10000 opened=2 closed=2 connects=2"),
	              NULL, "%s", r.out);
	/* The server saw one connection per worker (and redis-cli's), and none is left. */
	cr_expect_eq(after - before, 2 + 1, "connections before %lld, after %lld", before, after);
	cr_expect_eq(clients, 1, "%lld clients still connected", clients);
	/* The stop closed every connection it made, before the process exited. */
	cr_expect_eq(number_after(&r, "after stop="), number_after(&r, "sockets open before="),
	             "%s", tail(&r));
	if (https) {
		/* Every 10th request number fetched the page; each body is the file (length and
		 * FNV-1a of what the test wrote: the example checks every body against the first).
		 */
		uint64_t h = 0xcbf29ce484222325ull;
		char expected[96];

		for (size_t i = 0; i < SEED003_PAGE_LEN; i++)
			h = (h ^ (unsigned char)seed003_byte(i)) * 0x100000001b3ull;
		snprintf(expected, sizeof(expected),
		         "https: fetched=1000 of 1000 bytes=%d fnv1a=%016llx", SEED003_PAGE_LEN,
		         (unsigned long long)h);
		cr_expect_neq(strstr(r.out, expected), NULL, "expected %s in:\n%s", expected,
		              tail(&r));
		cr_expect_neq(strstr(r.out, "https: opened=2 closed=2 "), NULL, "%s", tail(&r));
		cr_expect_eq(requests, 1000, "nginx logged %ld requests", requests);
		cr_expect_eq(ok, 1000, "nginx answered %ld of them with 200", ok);
		/* Pooled. nginx saw exactly the connections the clients opened, and no more than
		 * the fetches in flight at once, summed over the workers' peaks: a fetch opens a
		 * connection only when every pooled one of its worker is busy. Those peaks are
		 * bounded by the load: 4 threads, each with a batch of 50 request numbers in
		 * flight, 5 of them fetches, so at most 20 fetches at once on a worker, 40 on
		 * two; a client that did not pool would have opened 1000. */
		double connects = number_after(&r, "https: opened=2 closed=2 connects=");
		double peak = number_after(&r, "peak_in_flight=");

		cr_expect_eq(conns, (long)connects,
		             "nginx saw %ld connections, the clients opened %.0f", conns, connects);
		cr_expect_geq(connects, 1.0, "%s", tail(&r));
		cr_expect_leq(connects, peak, "%s", tail(&r));
		cr_expect_leq(peak, 2 * 4 * 5, "%s", tail(&r));
	}
	free(r.out);
#endif
}

/* ---- seed 004: the loop API tour -------------------------------------------------------- */

Test(examples, loop_api_states_running_loop_and_gather_behave_like_asyncio, .timeout = 60)
{
	struct run r = run_example("seed004_loop_api", "--scale", "0.1", NULL);
	long gather;

	expect_success(&r);
	/* asyncio.run(main()) awaiting both in turn: two blocks. */
	cr_expect_neq(strstr(r.out, "printed=12345abcde"), NULL, "%s", r.out);
	cr_expect_neq(strstr(r.out, "is_running=True is_closed=False"), NULL, "%s", r.out);
	cr_expect_neq(strstr(r.out, "is_running=False is_closed=True"), NULL, "%s", r.out);
	cr_expect_eq(number_after(&r, "same="), 1.0, "%s", r.out);
	/* create_task + gather: interleaved, in about one coroutine's time, results in order. */
	gather = line_at(r.out, "== create_task + gather", 0);
	cr_assert_geq(gather, 0, "%s", r.out);
	struct run g = {.out = r.out + gather, .len = r.len - (size_t)gather};
	cr_expect_eq(number_after(&g, "interleaved="), 1.0, "%s", r.out);
	cr_expect_lt(number_after(&g, "took="), 1.75 * number_after(&g, "one_coroutine="), "%s",
	             r.out);
	cr_expect_neq(strstr(g.out, "gather=[nums, letters]"), NULL, "%s", r.out);
	cr_expect_eq(number_after(&r, "loop_api_ok="), 1.0, "%s", r.out);
	free(r.out);
}
