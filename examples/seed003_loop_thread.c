/*
 * Seed 003, "Create a thread that runs asyncio event loop forever": an AsyncioEventLoopThread
 * object that code without an event loop (a synchronous web framework) uses to run
 * coroutines, and its FetcherThread variant that keeps one shared session per loop, opened
 * by a coroutine at start and closed by one at stop, "connecting Redis, making a lot of
 * requests" (the seed uses contextvars and an aiohttp.ClientSession).
 *
 * In rotor the loop thread is a background runtime (rotor_runtime_create), run_coro is
 * rotor_call() (run_coroutine_threadsafe(...).result()), and stop posts a callback that
 * stops the runtime (call_soon_threadsafe(loop.stop)) and then joins its threads. A runtime
 * has one loop per worker, so the fetcher keeps one session per worker: a rotor_session whose
 * object is a Redis client (rotor/redis.h), opened by a coroutine on each worker at start
 * (fetcher_start submits one per worker, and waiting for them is the seed's Event), shared
 * by every make_request coroutine on that worker (their commands of one loop turn go out in
 * one write), and closed by a coroutine on each worker when the runtime stops, before its
 * workers exit (the session's keeper task: the seed's _close_session). make_request
 * coroutines write and read Redis through it and return a value to the plain thread that
 * called run_coro; several plain threads call it at once.
 *
 * The seed's second half, session.get("https://github.com"): with --https-url, one request in
 * --fetch-every is a "fetch" that also gets that page over HTTPS through a second session of
 * the same kind whose object is a rotor_http_client (rotor/http_client.h), verifying the
 * server's certificate against --cacert (or the system's store). A client is made per worker
 * by the session's open and destroyed per worker by its close, rather than one client made
 * at start and shared, although the client keeps a pool per worker by itself: that is what
 * the seed's FetcherThread does (aiohttp.ClientSession() in _create_session on the loop,
 * await session.close() in _close_session on the loop at stop), and a shared client would
 * need the same tasks anyway: it may be destroyed off a task only if it never connected,
 * and its counters (rotor_http_client_stats) are the calling worker's, so closing it and
 * reading what each worker did takes a task on each worker at stop, which is the session's
 * close. (The connections themselves are closed at stop either way: the client's own pool
 * reaper is cancelled by the stop and closes what is idle.) make_request checks the status
 * (resp.raise_for_status(): not 200 is a failure) and returns the body's length and FNV-1a
 * checksum (resp.text()) to the calling thread, which checks every one against the first.
 * Each worker counts its fetches in flight at once: a pooled client needs at most that many
 * connections on the worker, so connects <= the sum of the peaks; and after the stop the
 * process has as many sockets open as before the fetcher started (the stop closed every
 * Redis and HTTPS connection, not the exit).
 *
 * Checks: run_coro returns each coroutine's value; every value read back is the one written;
 * the requests counter in Redis adds up to the requests made; the sessions were opened once
 * per worker and closed once per worker, each making one connection; a stopped loop refuses
 * new work (-ESHUTDOWN). With no --redis-port the fetcher is skipped (exit 77 after the loop
 * thread's demo): its test (tests/test_examples.c) starts a redis-server for it.
 *
 *   seed003_loop_thread [--requests N] [--threads N] [--batch N] [--scale F] [--workers N]
 *                       [--redis-host H] [--redis-port P]
 *                       [--https-url URL] [--cacert FILE] [--fetch-every N]
 */
#include "example.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdatomic.h>

/* ---- AsyncioEventLoopThread ------------------------------------------------------------- */

struct loop_thread {
	struct rotor_runtime *rt;
	bool running;
};

static void loop_thread_start(struct loop_thread *lt, const struct rotor_config *cfg)
{
	EX_CHECK(rotor_runtime_create(cfg, &lt->rt));
	lt->running = true;
}

/* return asyncio.run_coroutine_threadsafe(coro, loop=self.loop).result() */
static void *loop_thread_run_coro(struct loop_thread *lt, rotor_fn fn, void *arg)
{
	void *result = NULL;

	EX_CHECK(rotor_call(lt->rt, ROTOR_WORKER_ANY, fn, arg, &result));
	return result;
}

static void *nothing(void *arg)
{
	return arg;
}

static void stop_runtime(void *arg)
{
	rotor_runtime_stop(arg);
}

/* self.loop.call_soon_threadsafe(self.loop.stop); self.join() */
static void loop_thread_stop(struct loop_thread *lt)
{
	int64_t give_up = rotor_now() + 10 * NS_PER_SEC;
	int rc;

	EX_CHECK(rotor_call_soon_threadsafe(lt->rt, 0, stop_runtime, lt->rt));
	while (rotor_runtime_state(lt->rt) == ROTOR_RUNNING && rotor_now() < give_up)
		ex_block(NS_PER_MS);
	if (rotor_runtime_state(lt->rt) == ROTOR_RUNNING)
		ex_fail("the loop still runs 10 s after its stop callback was posted");
	/* A stopping loop takes no more work. */
	struct rotor_future *late = NULL;
	rc = rotor_submit(lt->rt, ROTOR_WORKER_ANY, nothing, NULL, &late);
	if (rc != -ESHUTDOWN)
		ex_fail("run_coro on a stopped loop returned %d, not -ESHUTDOWN", rc);
	if (rc == 0)
		rotor_future_destroy(late);
	EX_CHECK(rotor_runtime_destroy(lt->rt));
	lt->rt = NULL;
	lt->running = false;
}

static void *hello_world(void *arg)
{
	(void)arg;
	printf("hello world (worker %d)\n", rotor_worker_id());
	return (void *)"hello";
}

static void *sleepy_request(void *arg)
{
	(void)arg;
	rotor_sleep(ex_seconds(1.0));
	return (void *)"slept";
}

static void demo_loop_thread(const struct rotor_config *cfg)
{
	struct loop_thread thr;
	const char *r;

	loop_thread_start(&thr, cfg);
	r = loop_thread_run_coro(&thr, hello_world, NULL);
	if (!r || strcmp(r, "hello") != 0)
		ex_fail("hello_world returned %s", r ? r : "NULL");
	int64_t start = rotor_now();
	r = loop_thread_run_coro(&thr, sleepy_request, NULL);
	if (!r || strcmp(r, "slept") != 0 || rotor_now() - start < ex_seconds(1.0))
		ex_fail("make_request returned %s after %.3f s", r ? r : "NULL",
		        ex_ns_to_s(rotor_now() - start));
	loop_thread_stop(&thr);
	printf("loop thread: running=%d\n", thr.running);
}

/* ---- FetcherThread ---------------------------------------------------------------------- */

#if ROTOR_HAVE_REDIS
#include <dirent.h>
#include <pthread.h>
#include <unistd.h>
#include <rotor/redis.h>
#include <rotor/session.h>
#if ROTOR_HAVE_TLS
#include <rotor/http_client.h>
#endif

#define MAX_WORKERS 1024
#define DEADLINE    (5 * NS_PER_SEC) /* each request's budget */

struct fetcher {
	struct loop_thread base;
	int workers;
	struct rotor_redis_config redis;
	/* One Redis client per worker: what a contextvar gives each coroutine of one loop in
	 * the seed. */
	struct rotor_session *session;
	atomic_int opened, closed;
	atomic_llong connects, commands, writes;
	/* The HTTPS half: one rotor_http_client per worker (var_session's aiohttp session). */
	const char *https_url, *cacert;
	long fetch_every;
	struct rotor_session *http;
	atomic_int http_opened, http_closed;
	atomic_llong http_connects, http_reused, http_requests;
	int in_flight[MAX_WORKERS], peak[MAX_WORKERS]; /* each touched by its own worker only */
};

static struct fetcher the_fetcher;

/* async def _create_session(self): self.session = aiohttp.ClientSession(), as the session's
 * open: on the task that needs this worker's client first, and it may suspend. */
static int open_client(void *arg, int64_t deadline, void **obj)
{
	struct fetcher *f = arg;
	int err = rotor_redis_connect(&f->redis, deadline, (struct rotor_redis **)obj);

	if (err == 0)
		atomic_fetch_add(&f->opened, 1);
	return err;
}

/* async def _close_session(self): await self.session.close(), as the session's close: on a
 * task of the client's worker when the runtime stops. */
static void close_client(void *arg, void *obj)
{
	struct fetcher *f = arg;
	struct rotor_redis_stats st;

	rotor_redis_stats(obj, &st);
	atomic_fetch_add(&f->connects, (long long)st.connects);
	atomic_fetch_add(&f->commands, (long long)st.commands);
	atomic_fetch_add(&f->writes, (long long)st.writes);
	if (rotor_redis_close(obj, rotor_now() + NS_PER_SEC) == 0)
		atomic_fetch_add(&f->closed, 1);
}

static const struct rotor_session_ops client_ops = {
    .open = open_client, .close = close_client, .close_ns = 2 * NS_PER_SEC};

#if ROTOR_HAVE_TLS
/* aiohttp.ClientSession(), on the worker that needs it first. */
static int open_http(void *arg, int64_t deadline, void **obj)
{
	struct fetcher *f = arg;
	struct rotor_http_client_config cfg = {.ca_file = f->cacert};
	int err;

	(void)deadline;
	err = rotor_http_client_create(&cfg, (struct rotor_http_client **)obj);
	if (err == 0)
		atomic_fetch_add(&f->http_opened, 1);
	return err;
}

/* await session.close(), on a task of the client's worker at stop: its pooled connections
 * are closed now (or were, by the pool's own reaper, which the stop cancels too). None may
 * be busy: every request is done. */
static void close_http(void *arg, void *obj)
{
	struct fetcher *f = arg;
	struct rotor_http_client_stats st;

	if (rotor_http_client_stats(obj, &st) == 0) {
		atomic_fetch_add(&f->http_connects, (long long)st.connects);
		atomic_fetch_add(&f->http_reused, (long long)st.reused);
		atomic_fetch_add(&f->http_requests, (long long)st.requests);
		if (st.busy)
			ex_fail("worker %d: %u HTTPS connections still busy at stop",
			        rotor_worker_id(), st.busy);
	}
	if (rotor_http_client_destroy(obj) == 0)
		atomic_fetch_add(&f->http_closed, 1);
}

static const struct rotor_session_ops http_ops = {
    .open = open_http, .close = close_http, .close_ns = 2 * NS_PER_SEC};
#endif

/* fut = run_coroutine_threadsafe(self._create_session(), loop=self.loop): this worker's
 * client, opened now rather than by the first request. */
static void *create_session(void *arg)
{
	struct fetcher *f = arg;
	void *r = NULL;
	int err = rotor_session_get(f->session, rotor_now() + DEADLINE, &r);

	if (err < 0)
		return (void *)(intptr_t)err;
	rotor_session_put(f->session, r);
	if (f->http) {
		if ((err = rotor_session_get(f->http, rotor_now() + DEADLINE, &r)) < 0)
			return (void *)(intptr_t)err;
		rotor_session_put(f->http, r);
	}
	return NULL;
}

static void fetcher_start(struct fetcher *f, const struct rotor_config *cfg)
{
	struct rotor_future *futs[MAX_WORKERS];

	EX_CHECK(rotor_session_create(&client_ops, f, &f->session));
#if ROTOR_HAVE_TLS
	if (f->https_url)
		EX_CHECK(rotor_session_create(&http_ops, f, &f->http));
#endif
	loop_thread_start(&f->base, cfg);
	f->workers = rotor_runtime_workers(f->base.rt);
	if (f->workers > MAX_WORKERS) {
		fprintf(stderr, "more than %d workers\n", MAX_WORKERS);
		exit(EX_FAILED);
	}
	/* The seed sets an Event when _create_session is done; here one coroutine per worker,
	 * and waiting on their futures is the Event. */
	for (int w = 0; w < f->workers; w++)
		EX_CHECK(rotor_submit(f->base.rt, w, create_session, f, &futs[w]));
	for (int w = 0; w < f->workers; w++) {
		void *err = NULL;

		EX_CHECK(rotor_future_wait(futs[w], ROTOR_FOREVER, &err));
		rotor_future_destroy(futs[w]);
		EX_CHECK((int)(intptr_t)err);
	}
}

/* def stop(self): self.run_coro(self._close_session()); super().stop(). The close runs in
 * the session's keeper task on each worker, which the stop cancels: shielded, it closes the
 * client once the requests still holding it are done, and the workers exit after it. */
static void fetcher_stop(struct fetcher *f)
{
	loop_thread_stop(&f->base);
	EX_CHECK(rotor_session_destroy(f->session));
	if (f->http)
		EX_CHECK(rotor_session_destroy(f->http));
}

struct request {
	long n;
	int thread;
	int err;
	bool fetch;        /* also get the page over HTTPS */
	int status;        /* its status */
	size_t body_len;   /* its body's length */
	uint64_t body_fnv; /* and FNV-1a 64 checksum */
	char value[64];    /* what make_request wrote */
	char answer[64];   /* what it read back */
	long long served;  /* the requests counter after this one */
};

#if ROTOR_HAVE_TLS
static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h;
}

/* async with session.get(url) as resp: resp.raise_for_status(); return await resp.text() */
static int fetch_page(struct fetcher *f, struct request *req)
{
	struct rotor_http_client *c;
	struct rotor_http_response *resp = NULL;
	struct rotor_http_client_request hreq = {.url = f->https_url,
	                                         .deadline = rotor_now() + DEADLINE};
	int w = rotor_worker_id(), err;

	err = rotor_session_get(f->http, hreq.deadline, (void **)&c);
	if (err < 0)
		return err;
	if (++f->in_flight[w] > f->peak[w])
		f->peak[w] = f->in_flight[w];
	err = rotor_http_client_fetch(c, &hreq, 0, &resp);
	f->in_flight[w]--;
	if (err == 0) {
		req->status = resp->status;
		if (resp->status != 200)
			err = -EPROTO; /* raise_for_status */
		req->body_len = resp->body_len;
		req->body_fnv = fnv1a(resp->body, resp->body_len);
		rotor_http_response_destroy(resp);
	}
	rotor_session_put(f->http, c);
	return err;
}
#endif

/* One command through this worker's client; -errno, or 0 and *reply. A client that lost its
 * connection reconnects on the next command; a session whose client is broken for good would
 * be replaced with rotor_session_replace. */
static int redis_do(struct rotor_redis *r, int argc, const char **argv, const size_t *lens,
                    struct rotor_redis_reply **reply)
{
	return rotor_redis_command(r, argc, argv, lens, rotor_now() + DEADLINE, reply);
}

/* async def make_request(): session = var_session.get(); ... return await resp.text() */
static void *make_request(void *arg)
{
	struct request *req = arg;
	struct rotor_redis *r;
	struct rotor_redis_reply *reply = NULL;
	char key[48];

	req->err = rotor_session_get(the_fetcher.session, rotor_now() + DEADLINE, (void **)&r);
	if (req->err < 0)
		return req;
	snprintf(key, sizeof(key), "seed003:%d:%ld", req->thread, req->n);
	const char *set[] = {"SET", key, req->value};
	const char *get[] = {"GET", key};
	const char *incr[] = {"INCR", "seed003:requests"};

	if ((req->err = redis_do(r, 3, set, NULL, &reply)) == 0 &&
	    reply->type != ROTOR_REDIS_STATUS)
		req->err = -EPROTO;
	rotor_redis_reply_free(reply);
	reply = NULL;
	if (req->err == 0 && (req->err = redis_do(r, 2, get, NULL, &reply)) == 0) {
		if (reply->type == ROTOR_REDIS_STRING && reply->len < sizeof(req->answer))
			memcpy(req->answer, reply->str, reply->len + 1);
		else
			req->err = -EPROTO;
	}
	rotor_redis_reply_free(reply);
	reply = NULL;
	if (req->err == 0 && (req->err = redis_do(r, 2, incr, NULL, &reply)) == 0)
		req->served = reply->type == ROTOR_REDIS_INTEGER ? reply->integer : -1;
	rotor_redis_reply_free(reply);
	rotor_session_put(the_fetcher.session, r);
#if ROTOR_HAVE_TLS
	/* session.get("https://...") through this worker's HTTP session. */
	if (req->err == 0 && req->fetch)
		req->err = fetch_page(&the_fetcher, req);
#endif
	return req;
}

struct caller {
	pthread_t thread;
	int id;
	long first, count, batch;
	struct request *reqs;
	struct rotor_future **futs;
	long answered, fetched;
	size_t body_len; /* the first fetch's, which every other must match */
	uint64_t body_fnv;
};

static void check_request(struct caller *c, struct request *req, void *result)
{
	static atomic_int reported;

	if ((result != req || req->err != 0 || strcmp(req->answer, req->value) != 0 ||
	     req->served < 1) &&
	    atomic_fetch_add(&reported, 1) >= 5)
		return; /* the first five failures say enough */
	if (result != req || req->err != 0)
		ex_fail("thread %d request %ld: %s (HTTPS status %d)", c->id, req->n,
		        result != req ? "wrong result" : strerror(-req->err), req->status);
	else if (strcmp(req->answer, req->value) != 0)
		ex_fail("thread %d request %ld: wrote %s, read %s", c->id, req->n, req->value,
		        req->answer);
	else if (req->served < 1)
		ex_fail("thread %d request %ld: counter %lld", c->id, req->n, req->served);
	else if (req->fetch && c->fetched &&
	         (req->body_len != c->body_len || req->body_fnv != c->body_fnv))
		ex_fail(
		    "thread %d request %ld: a body of %zu bytes (fnv1a %016llx), not %zu (%016llx)",
		    c->id, req->n, req->body_len, (unsigned long long)req->body_fnv, c->body_len,
		    (unsigned long long)c->body_fnv);
	else {
		c->answered++;
		if (req->fetch && c->fetched++ == 0) {
			c->body_len = req->body_len;
			c->body_fnv = req->body_fnv;
		}
	}
}

/* A plain thread of the web framework: text = thr.run_coro(make_request()), one at a time
 * first, then batch at a time in flight together. */
static void *caller_main(void *arg)
{
	struct caller *c = arg;

	for (long i = 0; i < c->count;) {
		long n = i == 0 ? 1 : (c->count - i < c->batch ? c->count - i : c->batch);

		for (long j = i; j < i + n; j++) {
			struct request *req = &c->reqs[j];

			req->n = c->first + j;
			req->thread = c->id;
			req->fetch = the_fetcher.https_url && req->n % the_fetcher.fetch_every == 0;
			snprintf(req->value, sizeof(req->value), "value-%d-%ld", c->id, req->n);
		}
		if (n == 1) {
			check_request(
			    c, &c->reqs[i],
			    loop_thread_run_coro(&the_fetcher.base, make_request, &c->reqs[i]));
		} else {
			for (long j = i; j < i + n; j++)
				EX_CHECK(rotor_submit(the_fetcher.base.rt, ROTOR_WORKER_ANY,
				                      make_request, &c->reqs[j], &c->futs[j]));
			for (long j = i; j < i + n; j++) {
				void *result = NULL;

				EX_CHECK(rotor_future_wait(c->futs[j], ROTOR_FOREVER, &result));
				rotor_future_destroy(c->futs[j]);
				check_request(c, &c->reqs[j], result);
			}
		}
		i += n;
	}
	return NULL;
}

static void *read_counter(void *arg)
{
	struct rotor_redis *r;
	struct rotor_redis_reply *reply = NULL;
	const char *get[] = {"GET", "seed003:requests"};
	long long *v = arg;

	if (rotor_session_get(the_fetcher.session, rotor_now() + DEADLINE, (void **)&r) < 0)
		return NULL;
	if (redis_do(r, 2, get, NULL, &reply) == 0 && reply->type == ROTOR_REDIS_STRING)
		*v = atoll(reply->str);
	rotor_redis_reply_free(reply);
	rotor_session_put(the_fetcher.session, r);
	return NULL;
}

static void *reset_counter(void *arg)
{
	struct rotor_redis *r;
	struct rotor_redis_reply *reply = NULL;
	const char *del[] = {"DEL", "seed003:requests"};

	(void)arg;
	if (rotor_session_get(the_fetcher.session, rotor_now() + DEADLINE, (void **)&r) < 0)
		return NULL;
	redis_do(r, 2, del, NULL, &reply);
	rotor_redis_reply_free(reply);
	rotor_session_put(the_fetcher.session, r);
	return NULL;
}

/* Sockets this process has open: the stop must close every connection the sessions made
 * (Redis and HTTPS), not the process's exit. */
static int open_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], link[64];
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		n += len > 7 && strncmp(link, "socket:", 7) == 0;
	}
	closedir(d);
	return n;
}

static void demo_fetcher(const struct rotor_config *cfg, long nrequests, int nthreads, long batch)
{
	struct fetcher *f = &the_fetcher;
	struct caller *callers = calloc((size_t)nthreads, sizeof(*callers));
	long answered = 0, fetched = 0, expect_fetched = 0, per = nrequests / nthreads;
	size_t body_len = 0;
	uint64_t body_fnv = 0;
	long long counter = -1;

	if (!callers) {
		fprintf(stderr, "out of memory\n");
		exit(EX_FAILED);
	}
	int sockets_before = open_sockets();

	fetcher_start(f, cfg);
	printf("fetcher: %d sessions opened\n", atomic_load(&f->opened));
	loop_thread_run_coro(&f->base, reset_counter, NULL);
	for (int t = 0; t < nthreads; t++) {
		struct caller *c = &callers[t];

		c->id = t;
		c->first = t * per;
		c->count = t == nthreads - 1 ? nrequests - c->first : per;
		c->batch = batch;
		c->reqs = calloc((size_t)c->count, sizeof(*c->reqs));
		c->futs = calloc((size_t)c->count, sizeof(*c->futs));
		if (!c->reqs || !c->futs || pthread_create(&c->thread, NULL, caller_main, c) != 0) {
			fprintf(stderr, "out of memory or threads\n");
			exit(EX_FAILED);
		}
	}
	for (int t = 0; t < nthreads; t++) {
		pthread_join(callers[t].thread, NULL);
		answered += callers[t].answered;
		for (long j = 0; j < callers[t].count; j++)
			expect_fetched += callers[t].reqs[j].fetch;
		if (callers[t].fetched && fetched == 0) {
			body_len = callers[t].body_len;
			body_fnv = callers[t].body_fnv;
		} else if (callers[t].fetched &&
		           (callers[t].body_len != body_len || callers[t].body_fnv != body_fnv))
			ex_fail("thread %d fetched a body of %zu bytes (%016llx), thread 0's %zu "
			        "(%016llx)",
			        t, callers[t].body_len, (unsigned long long)callers[t].body_fnv,
			        body_len, (unsigned long long)body_fnv);
		fetched += callers[t].fetched;
		if (t == 0 && callers[t].count)
			printf("thread 0 request 0: %s\n", callers[t].reqs[0].answer);
		free(callers[t].reqs);
		free(callers[t].futs);
	}
	free(callers);
	loop_thread_run_coro(&f->base, read_counter, &counter);
	fetcher_stop(f);
	int sockets_after = open_sockets();

	printf("fetcher: sockets open before=%d after stop=%d\n", sockets_before, sockets_after);
	if (sockets_after != sockets_before)
		ex_fail("%d sockets open before the fetcher started, %d after it stopped",
		        sockets_before, sockets_after);
	printf("fetcher: requests=%ld threads=%d answered=%ld counter=%lld opened=%d closed=%d "
	       "connects=%lld\n",
	       nrequests, nthreads, answered, counter, atomic_load(&f->opened),
	       atomic_load(&f->closed), atomic_load(&f->connects));
	printf("fetcher: commands=%lld writes=%lld (%.1f commands per write)\n",
	       atomic_load(&f->commands), atomic_load(&f->writes),
	       atomic_load(&f->writes)
	           ? (double)atomic_load(&f->commands) / (double)atomic_load(&f->writes)
	           : 0.0);
	if (answered != nrequests || counter != nrequests)
		ex_fail("%ld requests, %ld answered, the counter says %lld", nrequests, answered,
		        counter);
	if (atomic_load(&f->opened) != f->workers || atomic_load(&f->closed) != f->workers ||
	    atomic_load(&f->connects) != f->workers)
		ex_fail("%d workers, %d sessions opened, %d closed, %lld connections", f->workers,
		        atomic_load(&f->opened), atomic_load(&f->closed),
		        atomic_load(&f->connects));
	if (!f->http)
		return;
	long long peaks = 0, connects = atomic_load(&f->http_connects);

	for (int w = 0; w < f->workers; w++)
		peaks += f->peak[w];
	printf("https: fetched=%ld of %ld bytes=%zu fnv1a=%016llx\n", fetched, expect_fetched,
	       body_len, (unsigned long long)body_fnv);
	printf("https: opened=%d closed=%d connects=%lld reused=%lld requests=%lld "
	       "peak_in_flight=%lld\n",
	       atomic_load(&f->http_opened), atomic_load(&f->http_closed), connects,
	       atomic_load(&f->http_reused), atomic_load(&f->http_requests), peaks);
	if (fetched != expect_fetched || atomic_load(&f->http_requests) != fetched)
		ex_fail("%ld fetches made, %ld answered, the clients counted %lld", expect_fetched,
		        fetched, atomic_load(&f->http_requests));
	if (atomic_load(&f->http_opened) != f->workers ||
	    atomic_load(&f->http_closed) != f->workers)
		ex_fail("%d workers, %d HTTP sessions opened, %d closed", f->workers,
		        atomic_load(&f->http_opened), atomic_load(&f->http_closed));
	/* Pooled: never more connections on a worker than its fetches in flight at once. */
	if (connects < 1 || connects > peaks)
		ex_fail("%lld HTTPS connections for at most %lld fetches in flight", connects,
		        peaks);
}
#endif

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s [--requests N] [--threads N] [--batch N] [--scale F] [--workers N]\n"
	        "          [--redis-host H] [--redis-port P] [--https-url URL] [--cacert FILE]\n"
	        "          [--fetch-every N]\n"
	        "  --requests N    make_request calls through the fetcher (default 10000)\n"
	        "  --threads N     plain threads calling run_coro at once (default 4)\n"
	        "  --batch N       requests a thread has in flight together (default 50)\n"
	        "  --scale F       multiply every duration by F (default 1)\n"
	        "  --workers N     workers (default: one per CPU)\n"
	        "  --redis-host H  the Redis server (default 127.0.0.1)\n"
	        "  --redis-port P  its port; without it the fetcher is skipped (exit 77)\n"
	        "  --https-url URL also fetch this https:// page in some requests\n"
	        "  --cacert FILE   PEM CAs that verify its server (default: the system's)\n"
	        "  --fetch-every N one request in N fetches the page (default 10)\n",
	        prog);
	exit(EX_USAGE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"requests", required_argument, NULL, 'n'},
	    {"threads", required_argument, NULL, 't'},
	    {"batch", required_argument, NULL, 'b'},
	    {"scale", required_argument, NULL, 's'},
	    {"workers", required_argument, NULL, 'w'},
	    {"redis-host", required_argument, NULL, 'H'},
	    {"redis-port", required_argument, NULL, 'p'},
	    {"https-url", required_argument, NULL, 'u'},
	    {"cacert", required_argument, NULL, 'c'},
	    {"fetch-every", required_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct rotor_config cfg = {0};
	long requests = 10000, threads = 4, batch = 50, port = 0;
	const char *host = "127.0.0.1", *https_url = NULL, *cacert = NULL;
	long fetch_every = 10;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			requests = ex_parse_long("--requests", optarg, 1);
			break;
		case 't':
			threads = ex_parse_long("--threads", optarg, 1);
			break;
		case 'b':
			batch = ex_parse_long("--batch", optarg, 1);
			break;
		case 's':
			ex_scale = ex_parse_double("--scale", optarg, 0.0);
			break;
		case 'w':
			cfg.workers = (unsigned)ex_parse_long("--workers", optarg, 0);
			break;
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = ex_parse_long("--redis-port", optarg, 1);
			break;
		case 'u':
			https_url = optarg;
			break;
		case 'c':
			cacert = optarg;
			break;
		case 'e':
			fetch_every = ex_parse_long("--fetch-every", optarg, 1);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc || threads > requests)
		usage(argv[0]);
	ex_init();
	demo_loop_thread(&cfg);
	if (!port) {
		printf("fetcher: skipped (no --redis-port)\n");
		return ex_failures ? EX_FAILED : EX_NO_URING;
	}
#if ROTOR_HAVE_REDIS
	the_fetcher.redis = (struct rotor_redis_config){.host = host, .port = (int)port};
#if ROTOR_HAVE_TLS
	the_fetcher.https_url = https_url;
	the_fetcher.cacert = cacert;
	the_fetcher.fetch_every = fetch_every;
#else
	if (https_url) {
		printf("https: skipped (rotor was built without TLS: libssl-dev)\n");
		https_url = NULL;
	}
	(void)cacert;
	(void)fetch_every;
#endif
	demo_fetcher(&cfg, requests, (int)threads, batch);
	return ex_exit_code();
#else
	(void)host;
	(void)https_url;
	(void)cacert;
	(void)fetch_every;
	(void)requests;
	(void)threads;
	(void)batch;
	printf("fetcher: skipped (rotor was built without the Redis client: libhiredis-dev)\n");
	return ex_failures ? EX_FAILED : EX_NO_URING;
#endif
}
