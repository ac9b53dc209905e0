/*
 * Soak: for a while, a random mix of everything a service does — local and cross-worker
 * spawns, sleeps, cancellations, futures from foreign threads, channel traffic between
 * workers and TCP echo over loopback — checking as it goes that every task spawned ends
 * exactly once, every channel message and every echoed byte arrives exactly once, the
 * runtime's counters come back to zero, and resident memory stays flat.
 *
 *   soak [--seconds N | --minutes N] [--workers N]      (default 60 s, 2 workers)
 *
 * Prints one line per 10 s and a verdict; exit status 0 when every invariant held.
 */
#include <rotor.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL

static atomic_long spawned, ended, ran, discarded, cancelled_seen, msgs_sent, msgs_recv,
    bytes_echoed;
static atomic_long sum_sent, sum_recv;
static atomic_int failures;
static atomic_int stopping;
static int64_t end_at;
static struct rotor_chan *chan;
static int echo_port;

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "soak: " __VA_ARGS__);                                             \
		fputc('\n', stderr);                                                               \
		atomic_fetch_add(&failures, 1);                                                    \
	} while (0)

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void *leaf(void *arg)
{
	uintptr_t kind = (uintptr_t)arg;
	int r = 0;
	if (kind % 3 == 0)
		r = rotor_sleep((int64_t)(kind % 5) * MS);
	else if (kind % 3 == 1)
		r = rotor_yield();
	if (r == -ECANCELED)
		atomic_fetch_add(&cancelled_seen, 1);
	atomic_fetch_add(&ran, 1);
	return arg;
}

/* A leaf cancelled before it ran: discard runs instead, exactly once. */
static void leaf_discarded(void *arg)
{
	(void)arg;
	atomic_fetch_add(&discarded, 1);
}

static void *chan_consumer(void *arg)
{
	void *v;
	while (rotor_chan_recv(chan, &v) == 0) {
		atomic_fetch_add(&msgs_recv, 1);
		atomic_fetch_add(&sum_recv, (long)(uintptr_t)v);
	}
	return arg;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;
	while ((n = rotor_recv(fd, buf, sizeof(buf), 0, ROTOR_FOREVER)) > 0)
		if (rotor_send(fd, buf, (size_t)n, 0, ROTOR_FOREVER) != n)
			break;
	close(fd);
	return NULL;
}

static void discard_fd(void *arg)
{
	close((int)(intptr_t)arg);
}

static void *echo_server(void *arg)
{
	int l = (int)(intptr_t)arg;
	for (;;) {
		int fd = rotor_accept(l, NULL, NULL, 0, ROTOR_FOREVER);
		if (fd < 0)
			break;
		struct rotor_task_attr a = {.on = ROTOR_ON_SELF, .discard = discard_fd};
		if (rotor_spawn_attr(&a, echo_conn, (void *)(intptr_t)fd, NULL) < 0)
			close(fd);
	}
	close(l);
	return NULL;
}

static void *echo_client(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	int fd = rotor_tcp_dial("127.0.0.1", echo_port, rotor_now() + 1000 * MS);
	if (fd < 0) {
		if (!atomic_load(&stopping))
			FAIL("dial: %s", strerror(-fd));
		return NULL;
	}
	char out[512], in[512];
	size_t len = 1 + rnd(&seed) % sizeof(out);
	for (size_t i = 0; i < len; i++)
		out[i] = (char)rnd(&seed);
	if (rotor_send(fd, out, len, 0, ROTOR_FOREVER) != (ssize_t)len) {
		close(fd);
		return NULL;
	}
	size_t have = 0;
	while (have < len) {
		ssize_t n = rotor_recv(fd, in + have, len - have, 0, rotor_now() + 2000 * MS);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	if (have == len && memcmp(in, out, len))
		FAIL("echo returned other bytes");
	else if (have < len && !atomic_load(&stopping))
		FAIL("echo returned %zu of %zu bytes", have, len);
	atomic_fetch_add(&bytes_echoed, (long)have);
	close(fd);
	return NULL;
}

/* One driver per worker: picks an action at random until the end. */
static void *driver(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	int workers = rotor_runtime_workers(rotor_runtime_current());
	while (rotor_now() < end_at) {
		unsigned what = rnd(&seed) % 100;
		struct rotor_task_attr a = {
		    .on = ROTOR_ON_WORKER((int)(rnd(&seed) % (unsigned)workers)),
		    .discard = leaf_discarded};
		if (what < 45) {
			/* A burst of leaves, some of them cancelled at once. */
			struct rotor_task *t[16];
			int n = 1 + (int)(rnd(&seed) % 16);
			for (int i = 0; i < n; i++) {
				if (rotor_spawn_attr(&a, leaf, (void *)(uintptr_t)rnd(&seed),
				                     &t[i]) < 0)
					FAIL("spawn failed");
				atomic_fetch_add(&spawned, 1);
			}
			for (int i = 0; i < n; i++) {
				if (rnd(&seed) % 4 == 0)
					rotor_cancel(t[i]);
				int r = rotor_join(t[i], NULL);
				if (r < 0 && r != -ECANCELED)
					FAIL("join: %d", r);
				atomic_fetch_add(&ended, 1);
			}
		} else if (what < 75) {
			uintptr_t v = 1 + rnd(&seed) % 1000;
			if (rotor_chan_send(chan, (void *)v) == 0) {
				atomic_fetch_add(&msgs_sent, 1);
				atomic_fetch_add(&sum_sent, (long)v);
			}
		} else if (what < 90) {
			struct rotor_task *t;
			if (rotor_spawn_attr(&a, echo_client, (void *)(uintptr_t)rnd(&seed), &t) ==
			    0)
				rotor_join(t, NULL);
		} else {
			rotor_sleep((int64_t)(rnd(&seed) % 3) * MS);
		}
	}
	return arg;
}

static void *soak_main(void *arg)
{
	int workers = rotor_runtime_workers(rotor_runtime_current());
	struct rotor_task *d[64], *c[64], *srv[64];
	int l0 = rotor_tcp_listen("127.0.0.1", 0, 256, ROTOR_TCP_REUSEPORT);
	if (l0 < 0) {
		FAIL("listen: %s", strerror(-l0));
		return NULL;
	}
	echo_port = rotor_sock_port(l0);
	for (int i = 0; i < workers; i++) {
		struct rotor_task_attr a = {.on = ROTOR_ON_WORKER(i)};
		int l = i == 0 ? l0
		               : rotor_tcp_listen("127.0.0.1", echo_port, 256, ROTOR_TCP_REUSEPORT);
		rotor_spawn_attr(&a, echo_server, (void *)(intptr_t)l, &srv[i]);
		rotor_spawn_attr(&a, chan_consumer, NULL, &c[i]);
		rotor_spawn_attr(&a, driver, (void *)(uintptr_t)(i + 1), &d[i]);
	}
	rotor_gather(d, (size_t)workers, ROTOR_FOREVER, NULL, NULL);
	rotor_chan_close(chan);
	rotor_gather(c, (size_t)workers, ROTOR_FOREVER, NULL, NULL);
	atomic_store(&stopping, 1);
	for (int i = 0; i < workers; i++)
		rotor_cancel(srv[i]);
	rotor_gather(srv, (size_t)workers, ROTOR_FOREVER, NULL, NULL);
	return arg;
}

/* Futures from a foreign thread while the drivers run. */
static void *foreign_thread(void *arg)
{
	struct rotor_runtime *rt = arg;
	unsigned seed = 99;
	while (rotor_now() < end_at) {
		struct rotor_future *f;
		uintptr_t v = rnd(&seed) % 7;
		if (rotor_submit(rt, ROTOR_WORKER_ANY, leaf, (void *)v, &f) < 0)
			break;
		atomic_fetch_add(&spawned, 1);
		if (rnd(&seed) % 5 == 0)
			rotor_future_cancel(f);
		void *res;
		int r = rotor_future_wait(f, ROTOR_FOREVER, &res);
		if (r == 0 && res != (void *)v)
			FAIL("future returned %p, expected %p", res, (void *)v);
		if (r == 0 || r == -ECANCELED)
			atomic_fetch_add(&ended, 1);
		else
			FAIL("future wait: %d", r);
		rotor_future_destroy(f);
	}
	return NULL;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

struct runner {
	struct rotor_runtime *rt;
	int workers;
};

int main(int argc, char **argv)
{
	long seconds = 60;
	unsigned workers = 2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atol(argv[++i]);
		else if (!strcmp(argv[i], "--minutes") && i + 1 < argc)
			seconds = 60 * atol(argv[++i]);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			workers = (unsigned)atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: soak [--seconds N | --minutes N] [--workers N]\n");
			return 2;
		}
	}
	if (rotor_chan_create(64, &chan) < 0)
		return 1;
	struct rotor_config cfg = {.workers = workers};
	struct rotor_runtime *rt;
	if (rotor_runtime_create(&cfg, &rt) < 0)
		return 1;
	int64_t start = rotor_now();
	end_at = start + seconds * 1000 * MS;
	pthread_t ft;
	pthread_create(&ft, NULL, foreign_thread, rt);
	struct rotor_future *main_f;
	rotor_submit(rt, 0, soak_main, NULL, &main_f);
	long rss_first = -1, rss_max = 0;
	while (!rotor_future_done(main_f)) {
		rotor_future_wait(main_f, rotor_now() + 10000 * MS, NULL);
		long r = rss_kib();
		int64_t t = (rotor_now() - start) / (1000 * MS);
		if (rss_first < 0 && t >= 5)
			rss_first = r;
		if (rss_first >= 0 && r > rss_max)
			rss_max = r;
		printf("soak: %3lds tasks %ld/%ld msgs %ld/%ld echoed %ld B rss %ld KiB\n", (long)t,
		       atomic_load(&ended), atomic_load(&spawned), atomic_load(&msgs_recv),
		       atomic_load(&msgs_sent), atomic_load(&bytes_echoed), r);
		fflush(stdout);
	}
	rotor_future_destroy(main_f);
	pthread_join(ft, NULL);
	/* Counters are final once the runtime has stopped (a future resolves a moment before
	 * its task is counted finished). */
	rotor_runtime_stop(rt);
	while (rotor_runtime_state(rt) != ROTOR_STOPPED)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	struct rotor_worker_stats s;
	long alive = 0;
	for (int i = 0; i < rotor_runtime_workers(rt); i++) {
		rotor_worker_stats(rt, i, &s);
		alive += (long)s.tasks_alive;
	}
	rotor_runtime_destroy(rt);
	rotor_chan_destroy(chan);
	/* Invariants. The echo servers and consumers are counted neither way. */
	/* Every task was joined or its future resolved exactly once; each spawned leaf either
	 * ran or was discarded (a cancelled future's task may not have run: no discard). */
	if (atomic_load(&ended) != atomic_load(&spawned))
		FAIL("%ld tasks spawned, %ld ended", atomic_load(&spawned), atomic_load(&ended));
	if (atomic_load(&ran) + atomic_load(&discarded) > atomic_load(&spawned))
		FAIL("%ld ran + %ld discarded > %ld spawned: something ran twice",
		     atomic_load(&ran), atomic_load(&discarded), atomic_load(&spawned));
	if (atomic_load(&msgs_sent) != atomic_load(&msgs_recv) ||
	    atomic_load(&sum_sent) != atomic_load(&sum_recv))
		FAIL("channel: %ld sent, %ld received", atomic_load(&msgs_sent),
		     atomic_load(&msgs_recv));
	if (alive != 0)
		FAIL("%ld tasks alive after the stop", alive);
	/* Flat: after warm-up, resident memory grows by less than a quarter (and 16 MiB). */
	if (rss_first > 0 && rss_max > rss_first + rss_first / 4 + 16384)
		FAIL("resident memory grew from %ld to %ld KiB", rss_first, rss_max);
	int f = atomic_load(&failures);
	printf("soak: %lds, %ld tasks, %ld channel messages, %ld bytes echoed, %ld cancellations "
	       "seen: %s\n",
	       seconds, atomic_load(&spawned), atomic_load(&msgs_recv), atomic_load(&bytes_echoed),
	       atomic_load(&cancelled_seen), f ? "FAILED" : "ok");
	return f ? 1 : 0;
}
