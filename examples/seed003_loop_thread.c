/*
 * Seed 003, "Create a thread that runs asyncio event loop forever": an AsyncioEventLoopThread
 * object that code without an event loop (a synchronous web framework) uses to run
 * coroutines, and its FetcherThread variant that keeps one shared "session" per loop, set up
 * by a coroutine at start and closed by one at stop (the seed uses contextvars and an
 * aiohttp.ClientSession).
 *
 * In rotor the loop thread is a background runtime (rotor_runtime_create), run_coro is
 * rotor_call() (run_coroutine_threadsafe(...).result()), and stop posts a callback that
 * stops the runtime (call_soon_threadsafe(loop.stop)) and then joins its threads. A runtime
 * has one loop per worker, so the fetcher keeps one session per worker, reachable from every
 * task on that worker through rotor_worker_id(); only that worker's tasks touch it, so it
 * needs no lock. make_request() coroutines use their worker's session and return a value to
 * the main thread.
 *
 * Checks: run_coro returns each coroutine's value; every request was served by the session
 * of the worker it ran on; the sessions' request counts add up to the requests made; every
 * session was created once and closed once; a stopped loop refuses new work (-ESHUTDOWN).
 *
 *   seed003_loop_thread [--requests N] [--scale F] [--workers N]
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

#define MAX_WORKERS 1024

/* The per-loop shared object: stands in for the seed's aiohttp.ClientSession. */
struct session {
	int id;
	int worker;
	long requests;
	bool closed;
};

struct fetcher {
	struct loop_thread base;
	int workers;
	/* One session per worker, indexed by rotor_worker_id(): what a contextvar gives each
	 * coroutine of one loop in the seed. Each slot is written by one coroutine on its worker
	 * and handed over through a future, so no lock. */
	struct session *sessions[MAX_WORKERS];
	atomic_int created, closed;
};

static struct fetcher *the_fetcher;

/* var_session.get() */
static struct session *current_session(void)
{
	int w = rotor_worker_id();

	return w >= 0 && w < the_fetcher->workers ? the_fetcher->sessions[w] : NULL;
}

/* async def _create_session(self): self.session = aiohttp.ClientSession() */
static void *create_session(void *arg)
{
	struct fetcher *f = arg;
	int w = rotor_worker_id();
	struct session *s = calloc(1, sizeof(*s));

	if (!s || w < 0)
		return NULL;
	s->id = 100 + w;
	s->worker = w;
	f->sessions[w] = s;
	atomic_fetch_add(&f->created, 1);
	return s;
}

/* async def _close_session(self): await self.session.close() */
static void *close_session(void *arg)
{
	struct fetcher *f = arg;
	struct session *s = current_session();
	long requests;

	if (!s || s->closed)
		return (void *)(intptr_t)-1;
	rotor_sleep(ex_seconds(0.01)); /* closing a connection pool takes a moment */
	s->closed = true;
	requests = s->requests;
	f->sessions[s->worker] = NULL;
	free(s);
	atomic_fetch_add(&f->closed, 1);
	return (void *)(intptr_t)requests;
}

static void fetcher_start(struct fetcher *f, const struct rotor_config *cfg)
{
	struct rotor_future *futs[MAX_WORKERS];

	loop_thread_start(&f->base, cfg);
	f->workers = rotor_runtime_workers(f->base.rt);
	if (f->workers > MAX_WORKERS) {
		fprintf(stderr, "more than %d workers\n", MAX_WORKERS);
		exit(EX_FAILED);
	}
	/* The seed submits _create_session at start and sets an Event when it is done; here
	 * one per worker, and waiting on the futures is the Event. */
	for (int w = 0; w < f->workers; w++)
		EX_CHECK(rotor_submit(f->base.rt, w, create_session, f, &futs[w]));
	for (int w = 0; w < f->workers; w++) {
		void *s = NULL;

		EX_CHECK(rotor_future_wait(futs[w], ROTOR_FOREVER, &s));
		rotor_future_destroy(futs[w]);
		if (!s)
			ex_fail("worker %d: no session", w);
	}
}

/* def stop(self): self.run_coro(self._close_session()); super().stop() */
static long fetcher_stop(struct fetcher *f)
{
	long requests = 0;

	for (int w = 0; w < f->workers; w++) {
		void *r = NULL;

		EX_CHECK(rotor_call(f->base.rt, w, close_session, f, &r));
		if ((intptr_t)r < 0)
			ex_fail("worker %d: its session was missing or already closed", w);
		else
			requests += (long)(intptr_t)r;
	}
	loop_thread_stop(&f->base);
	return requests;
}

struct request {
	long n;
	char response[96];
};

/* async def make_request(): session = var_session.get(); ... return await resp.text() */
static void *make_request(void *arg)
{
	struct request *req = arg;
	struct session *s = current_session();

	if (!s || s->closed || s->worker != rotor_worker_id())
		return NULL;
	rotor_sleep(ex_seconds(0.05)); /* the round trip */
	s->requests++;
	snprintf(req->response, sizeof(req->response),
	         "<html>response %ld from session %d on worker %d</html>", req->n, s->id,
	         s->worker);
	return req->response;
}

static void demo_fetcher(const struct rotor_config *cfg, long nrequests)
{
	static struct fetcher f;
	struct request *reqs = calloc((size_t)nrequests, sizeof(*reqs));
	struct rotor_future **futs = calloc((size_t)nrequests, sizeof(*futs));
	long answered = 0, served_by_closed;

	if (!reqs || !futs) {
		fprintf(stderr, "out of memory\n");
		exit(EX_FAILED);
	}
	the_fetcher = &f;
	fetcher_start(&f, cfg);
	printf("fetcher: %d sessions created\n", atomic_load(&f.created));

	/* text = thr.run_coro(make_request()); print(text), one at a time ... */
	long half = nrequests / 2;
	for (long i = 0; i < half; i++) {
		reqs[i].n = i;
		const char *text = loop_thread_run_coro(&f.base, make_request, &reqs[i]);

		if (text)
			answered++;
		else
			ex_fail("request %ld: no session on its worker", i);
		if (i == 0)
			printf("%s\n", text ? text : "(none)");
	}
	/* ... and the rest in flight together, from the same thread. */
	for (long i = half; i < nrequests; i++) {
		reqs[i].n = i;
		EX_CHECK(
		    rotor_submit(f.base.rt, ROTOR_WORKER_ANY, make_request, &reqs[i], &futs[i]));
	}
	for (long i = half; i < nrequests; i++) {
		void *text = NULL;

		EX_CHECK(rotor_future_wait(futs[i], ROTOR_FOREVER, &text));
		rotor_future_destroy(futs[i]);
		if (text == reqs[i].response)
			answered++;
		else
			ex_fail("request %ld: no session on its worker", i);
	}
	served_by_closed = fetcher_stop(&f);
	printf("fetcher: requests=%ld answered=%ld counted_by_sessions=%ld created=%d closed=%d\n",
	       nrequests, answered, served_by_closed, atomic_load(&f.created),
	       atomic_load(&f.closed));
	if (answered != nrequests || served_by_closed != nrequests)
		ex_fail("%ld requests, %ld answered, %ld counted by the sessions", nrequests,
		        answered, served_by_closed);
	if (atomic_load(&f.created) != f.workers || atomic_load(&f.closed) != f.workers)
		ex_fail("%d workers, %d sessions created, %d closed", f.workers,
		        atomic_load(&f.created), atomic_load(&f.closed));
	free(reqs);
	free(futs);
}

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s [--requests N] [--scale F] [--workers N]\n"
	        "  --requests N  make_request calls through the fetcher (default 20)\n"
	        "  --scale F     multiply every duration by F (default 1)\n"
	        "  --workers N   workers (default: one per CPU)\n",
	        prog);
	exit(EX_USAGE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"requests", required_argument, NULL, 'n'},
	    {"scale", required_argument, NULL, 's'},
	    {"workers", required_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct rotor_config cfg = {0};
	long requests = 20;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			requests = ex_parse_long("--requests", optarg, 1);
			break;
		case 's':
			ex_scale = ex_parse_double("--scale", optarg, 0.0);
			break;
		case 'w':
			cfg.workers = (unsigned)ex_parse_long("--workers", optarg, 0);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	ex_init();
	demo_loop_thread(&cfg);
	demo_fetcher(&cfg, requests);
	return ex_exit_code();
}
