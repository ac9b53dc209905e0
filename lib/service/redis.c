/*
 * The Redis client (include/rotor/redis.h). A client belongs to one worker; it holds a pool
 * of connections, and each connection, while it is up, one link: a socket, its stream, a
 * reply reader, the FIFO of commands sent and not yet answered, and two tasks. A command's
 * task formats it into the link's output buffer, queues its slot and waits; the link's
 * writer task, woken by the first command of a loop turn, runs after the tasks already
 * ready (the run queue is FIFO), so it sends everything they queued in one write. The
 * reader task feeds what arrives to the reader and hands each reply to the oldest slot; a
 * slot whose task gave up (deadline, cancel) drops its reply, so the FIFO stays in step.
 * A link that fails gives its error to every slot, and the next command makes a new link.
 * Everything belongs to the client's worker: no locks, no atomics.
 */
#include "core.h"
#include "redis_reply.h"

#include <rotor.h>
#include <rotor/redis.h>
#include <rotor/stream.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_CONNECT_NS (5 * 1000000000LL)
/* What a link's teardown may take (a send in flight ending, the stream's receive
 * cancelled): it runs shielded, during a stop too. */
#define TEARDOWN_NS (1000000000LL)
#define OUT_FIRST   4096

struct result {
	struct rotor_redis_reply *reply;
};

/* The commands of one rotor_redis_pipeline call: their task waits until left is 0, or is
 * NULL once it gave up (the last slot frees the batch then). */
struct batch {
	struct rotor_task *task;
	struct rotor_redis_reply **replies;
	int left;
	int err; /* the first error a command got */
};

/* A command sent and not yet answered: task waits for its reply into res, or is NULL when
 * the task gave up, and the reply is dropped. A command of a pipeline has batch instead. */
struct slot {
	struct slot *next;
	struct rotor_task *task;
	struct result *res;
	struct batch *batch;
	int idx; /* its place in the batch */
};

struct conn;

struct link {
	struct conn *c;
	int fd;
	struct rotor_stream *s;
	struct rotor__redis_reader *rd;
	struct slot *head, *tail;
	int pending;
	/* Commands of this turn gather in out; the writer sends from send (they swap). */
	char *out, *send;
	size_t out_len, out_cap, send_cap;
	struct rotor_task *writer;      /* its handle, for the reader's join */
	struct rotor_task *writer_self; /* the task itself, while it waits */
	bool writer_idle;               /* the writer waits for out to fill */
	bool broken;                    /* the writer stops; the reader tears the link down */
	int down_err;                   /* the error its slots get when it is shut on purpose */
};

struct conn {
	struct rotor_redis *r;
	struct link *link; /* NULL: down */
	bool connecting;   /* a task dials; others wait on done */
	uint64_t attempts; /* connects finished, for those waiting */
	int err;           /* the last connect's error */
	struct rotor_event done;
};

struct rotor_redis {
	struct rotor__worker *w;
	char *host;
	int port;
	size_t max_reply;
	int64_t connect_ns;
	int nconn;
	struct conn *conns;
	struct slot *free_slots;
	struct rotor_redis_stats st;
	bool closing;
	int users;               /* tasks inside rotor_redis_command */
	int links;               /* links alive, and connects under way */
	struct rotor_event idle; /* closing: set when the last user or link goes */
};

/* ---- slots ---- */

static struct slot *slot_get(struct rotor_redis *r)
{
	struct slot *s = r->free_slots;
	if (s) {
		r->free_slots = s->next;
		return s;
	}
	return malloc(sizeof(*s));
}

static void slot_put(struct rotor_redis *r, struct slot *s)
{
	s->next = r->free_slots;
	r->free_slots = s;
}

/* The waiting task's hooks: give up on the slot; the reply is dropped when it comes. */
static void slot_abort(struct rotor_task *t, int res)
{
	struct slot *s = rotor__task_wait_obj(t);
	if (s->task != t) /* the reader or a teardown ended the wait already */
		return;
	s->task = NULL;
	s->res = NULL;
	rotor__task_end_wait(rotor__worker_self(), t, res);
}

static void slot_timeout(struct rotor_task *t)
{
	slot_abort(t, -ETIMEDOUT);
}

static void slot_cancel(struct rotor_task *t)
{
	slot_abort(t, -ECANCELED);
}

static void batch_abort(struct rotor_task *t, int res)
{
	struct batch *b = rotor__task_wait_obj(t);
	if (b->task != t)
		return;
	b->task = NULL;
	rotor__task_end_wait(rotor__worker_self(), t, res);
}

static void batch_timeout(struct rotor_task *t)
{
	batch_abort(t, -ETIMEDOUT);
}

static void batch_cancel(struct rotor_task *t)
{
	batch_abort(t, -ECANCELED);
}

static void maybe_idle(struct rotor_redis *r)
{
	if (r->closing && (r->st.pending == 0 || (r->users == 0 && r->links == 0)))
		rotor_event_set(&r->idle);
}

/* End the oldest slot's wait with reply (or err when reply is NULL). */
static void slot_done(struct link *l, struct rotor_redis_reply *reply, int err)
{
	struct rotor_redis *r = l->c->r;
	struct slot *s = l->head;
	l->head = s->next;
	if (!l->head)
		l->tail = NULL;
	l->pending--;
	r->st.pending--;
	struct rotor_task *t = s->task;
	struct batch *b = s->batch;
	if (b) {
		if (b->task && reply)
			b->replies[s->idx] = reply;
		else if (b->task && !b->err)
			b->err = err;
		else if (reply) {
			r->st.dropped++;
			rotor_redis_reply_free(reply);
		}
		if (--b->left == 0) {
			if (b->task)
				rotor__task_end_wait(r->w, b->task, b->err);
			else
				free(b);
		}
	} else if (t) {
		s->task = NULL;
		if (reply)
			s->res->reply = reply;
		rotor__task_end_wait(r->w, t, reply ? 0 : err);
	} else if (reply) {
		r->st.dropped++;
		rotor_redis_reply_free(reply);
	}
	slot_put(r, s);
	maybe_idle(r);
}

/* ---- the writer ---- */

static void writer_cancel(struct rotor_task *t)
{
	struct link *l = rotor__task_wait_obj(t);
	if (!l->writer_idle)
		return;
	l->writer_idle = false;
	rotor__task_end_wait(rotor__worker_self(), t, -ECANCELED);
}

static void writer_wake(struct link *l)
{
	if (!l->writer_idle)
		return;
	l->writer_idle = false;
	rotor__task_end_wait(l->c->r->w, l->writer_self, 0);
}

/* Breaking the socket's both sides ends the reader's receive (and a send in flight): the
 * reader then tears the link down. */
static void link_break(struct link *l)
{
	if (l->broken)
		return;
	l->broken = true;
	shutdown(l->fd, SHUT_RDWR);
	writer_wake(l);
}

static void *writer_main(void *arg)
{
	struct link *l = arg;
	struct rotor_redis *r = l->c->r;
	while (!l->broken) {
		if (!l->out_len) {
			int err;
			if (!rotor__wait_begin(&err))
				break;
			l->writer_idle = true;
			l->writer_self = rotor__task_self();
			if (rotor__task_wait(r->w, l, writer_cancel, NULL, ROTOR_FOREVER) < 0)
				break;
			continue;
		}
		/* What was gathered goes out; commands issued meanwhile gather in the other
		 * buffer. */
		char *buf = l->out;
		size_t len = l->out_len, cap = l->out_cap;
		l->out = l->send;
		l->out_cap = l->send_cap;
		l->out_len = 0;
		l->send = buf;
		l->send_cap = cap;
		r->st.writes++;
		if (rotor_stream_write_all(l->s, buf, len, ROTOR_FOREVER) < 0)
			break;
	}
	link_break(l);
	return NULL;
}

/* ---- links ---- */

static void link_free(struct link *l)
{
	rotor__redis_reader_destroy(l->rd);
	free(l->out);
	free(l->send);
	free(l);
}

/* The reader, when the link ends (err: why): every slot gets the error, the connection is
 * down at once (the next command reconnects), then the link is taken apart, shielded so that
 * a stop's cancel does not cut it short. */
static void link_down(struct link *l, int err)
{
	struct conn *c = l->c;
	struct rotor_redis *r = c->r;
	if (l->down_err)
		err = l->down_err;
	else
		r->st.resets++;
	if (c->link == l)
		c->link = NULL;
	while (l->head)
		slot_done(l, NULL, err);
	link_break(l);
	rotor_shield_begin(rotor_now() + TEARDOWN_NS);
	rotor_join(l->writer, NULL);
	rotor_stream_destroy(l->s);
	rotor_shield_end();
	close(l->fd);
	link_free(l);
	r->links--;
	maybe_idle(r);
}

static void *reader_main(void *arg)
{
	struct link *l = arg;
	int err;
	for (;;) {
		const void *data;
		ssize_t n = rotor_stream_peek(l->s, 1, &data, ROTOR_FOREVER);
		if (n <= 0) {
			err = n == 0 || n == -ENODATA ? -ECONNRESET : (int)n;
			break;
		}
		err = rotor__redis_reader_feed(l->rd, data, (size_t)n);
		rotor_stream_consume(l->s, (size_t)n);
		if (err < 0)
			break;
		struct rotor_redis_reply *reply;
		while ((err = rotor__redis_reader_next(l->rd, &reply)) == 1) {
			if (!l->head) { /* a reply nobody asked for */
				rotor_redis_reply_free(reply);
				err = -EPROTO;
				break;
			}
			l->c->r->st.replies++;
			slot_done(l, reply, 0);
		}
		if (err < 0)
			break;
	}
	link_down(l, err);
	return NULL;
}

/* A new link for c over fd: its stream, reader and two tasks. */
static int link_start(struct conn *c, int fd)
{
	struct rotor_redis *r = c->r;
	struct link *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->c = c;
	l->fd = fd;
	l->rd = rotor__redis_reader_create(r->max_reply);
	l->out = malloc(OUT_FIRST);
	l->send = malloc(OUT_FIRST);
	l->out_cap = l->send_cap = OUT_FIRST;
	int err = -ENOMEM;
	if (!l->rd || !l->out || !l->send)
		goto fail;
	/* A small output buffer: the writer hands the stream one gathered buffer per write,
	 * which then goes out from where it is, uncopied. */
	struct rotor_stream_config scfg = {.output_size = 64};
	if ((err = rotor_stream_create(fd, &scfg, &l->s)) < 0)
		goto fail;
	struct rotor_task_attr wa = {.name = "redis writer"};
	if ((err = rotor_spawn_attr(&wa, writer_main, l, &l->writer)) < 0)
		goto fail_stream;
	struct rotor_task_attr ra = {.name = "redis reader"};
	if ((err = rotor_spawn_attr(&ra, reader_main, l, NULL)) < 0) {
		link_break(l);
		rotor_join(l->writer, NULL);
		goto fail_stream;
	}
	c->link = l;
	return 0;
fail_stream:
	rotor_stream_destroy(l->s);
fail:
	link_free(l);
	return err;
}

/* Make c's link (the caller's task dials), or wait for the task that is making it. Returns
 * 0 when c is up, or the connect's error, -ESHUTDOWN, -ETIMEDOUT, -ECANCELED. */
static int conn_up(struct conn *c, int64_t deadline)
{
	struct rotor_redis *r = c->r;
	if (c->connecting) {
		uint64_t seen = c->attempts;
		while (c->attempts == seen) {
			int err = rotor_event_wait_until(&c->done, deadline);
			if (err < 0)
				return err;
		}
		return c->link ? 0 : c->err ? c->err : -ECONNRESET;
	}
	c->connecting = true;
	rotor_event_clear(&c->done);
	r->links++;
	int64_t dl = rotor_now() + r->connect_ns;
	int fd = rotor_tcp_dial(r->host, r->port, dl < deadline ? dl : deadline);
	int err = fd < 0 ? fd : 0;
	if (!err && r->closing)
		err = -ESHUTDOWN;
	if (!err && (err = link_start(c, fd)) == 0)
		r->st.connects++;
	else
		r->links--;
	if (err && fd >= 0)
		close(fd);
	c->err = err;
	c->connecting = false;
	c->attempts++;
	rotor_event_set(&c->done);
	maybe_idle(r);
	return err;
}

/* ---- commands ---- */

/* Room for n more bytes at the end of l->out. */
static int out_reserve(struct link *l, size_t n)
{
	if (l->out_cap - l->out_len >= n)
		return 0;
	size_t cap = l->out_cap * 2;
	while (cap - l->out_len < n)
		cap *= 2;
	char *p = realloc(l->out, cap);
	if (!p)
		return -ENOMEM;
	l->out = p;
	l->out_cap = cap;
	return 0;
}

/* "<c><n>\r\n" at p (a RESP header); the end. By hand: sprintf was 10% of a pipelining
 * client's CPU in perf. */
static char *header(char *p, char c, size_t n)
{
	char digits[24];
	int k = 0;
	*p++ = c;
	do
		digits[k++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	while (k > 0)
		*p++ = digits[--k];
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

/* The command in RESP (an array of bulk strings) at the end of l->out; nothing on -ENOMEM. */
static int format_command(struct link *l, int argc, const char *const *argv, const size_t *lens)
{
	size_t need = 16;
	for (int i = 0; i < argc; i++)
		need += 24 + (lens ? lens[i] : strlen(argv[i]));
	if (out_reserve(l, need) < 0)
		return -ENOMEM;
	char *p = header(l->out + l->out_len, '*', (size_t)argc);
	for (int i = 0; i < argc; i++) {
		size_t n = lens ? lens[i] : strlen(argv[i]);
		p = header(p, '$', n);
		memcpy(p, argv[i], n);
		p += n;
		*p++ = '\r';
		*p++ = '\n';
	}
	l->out_len = (size_t)(p - l->out);
	return 0;
}

/* Queue s behind the commands sent before it. */
static void queue(struct link *l, struct slot *s)
{
	struct rotor_redis *r = l->c->r;
	if (l->tail)
		l->tail->next = s;
	else
		l->head = s;
	l->tail = s;
	l->pending++;
	r->st.pending++;
	r->st.commands++;
}

/* The connection with the fewest commands waiting (a down one counts none). */
static struct conn *pick(struct rotor_redis *r)
{
	struct conn *best = &r->conns[0];
	int least = best->link ? best->link->pending : 0;
	for (int i = 1; i < r->nconn && least > 0; i++) {
		struct conn *c = &r->conns[i];
		int n = c->link ? c->link->pending : 0;
		if (n < least) {
			best = c;
			least = n;
		}
	}
	return best;
}

static int command(struct rotor_redis *r, int argc, const char *const *argv, const size_t *lens,
                   int64_t deadline, struct rotor_redis_reply **reply)
{
	struct conn *c = pick(r);
	int err;
	if (!c->link && (err = conn_up(c, deadline)) < 0)
		return err;
	struct link *l = c->link;
	if (!l) /* lost again before this task ran */
		return -ECONNRESET;
	if (r->closing)
		return -ESHUTDOWN;
	struct rotor_task *t = rotor__wait_begin(&err);
	if (!t)
		return err;
	struct slot *s = slot_get(r);
	if (!s)
		return -ENOMEM;
	if (format_command(l, argc, argv, lens) < 0) {
		slot_put(r, s);
		return -ENOMEM;
	}
	struct result res = {NULL};
	*s = (struct slot){.task = t, .res = &res};
	queue(l, s);
	writer_wake(l);
	err = rotor__task_wait(r->w, s, slot_cancel, slot_timeout, deadline);
	if (err < 0)
		return err;
	*reply = res.reply;
	return 0;
}

int rotor_redis_command(struct rotor_redis *r, int argc, const char *const *argv,
                        const size_t *lens, int64_t deadline, struct rotor_redis_reply **reply)
{
	if (!r || !argv || !reply || argc < 1)
		return -EINVAL;
	if (rotor__worker_self() != r->w || !rotor__task_self())
		return -EPERM;
	if (r->closing)
		return -ESHUTDOWN;
	r->users++;
	int err = command(r, argc, argv, lens, deadline, reply);
	r->users--;
	maybe_idle(r);
	return err;
}

static int pipeline(struct rotor_redis *r, int n, const struct rotor_redis_cmd *cmds,
                    int64_t deadline, struct rotor_redis_reply **replies)
{
	struct conn *c = pick(r);
	int err;
	if (!c->link && (err = conn_up(c, deadline)) < 0)
		return err;
	struct link *l = c->link;
	if (!l)
		return -ECONNRESET;
	if (r->closing)
		return -ESHUTDOWN;
	struct rotor_task *t = rotor__wait_begin(&err);
	if (!t)
		return err;
	struct batch *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	*b = (struct batch){.task = t, .replies = replies, .left = n};
	/* Every slot first, then every command: nothing is queued unless all of it is. */
	struct slot *first = NULL, **tail = &first;
	size_t mark = l->out_len;
	for (int i = 0; i < n; i++) {
		struct slot *s = slot_get(r);
		if (!s || format_command(l, cmds[i].argc, cmds[i].argv, cmds[i].lens) < 0) {
			if (s)
				slot_put(r, s);
			while (first) {
				struct slot *x = first;
				first = x->next;
				slot_put(r, x);
			}
			l->out_len = mark;
			free(b);
			return -ENOMEM;
		}
		*s = (struct slot){.batch = b, .idx = i};
		*tail = s;
		tail = &s->next;
	}
	while (first) {
		struct slot *s = first;
		first = s->next;
		s->next = NULL;
		queue(l, s);
	}
	writer_wake(l);
	err = rotor__task_wait(r->w, b, batch_cancel, batch_timeout, deadline);
	if (err < 0) {
		for (int i = 0; i < n; i++) {
			rotor_redis_reply_free(replies[i]);
			replies[i] = NULL;
		}
	}
	if (b->task) /* every reply came (or the link failed them all): the batch is ours */
		free(b);
	return err;
}

int rotor_redis_pipeline(struct rotor_redis *r, int n, const struct rotor_redis_cmd *cmds,
                         int64_t deadline, struct rotor_redis_reply **replies)
{
	if (!r || !cmds || !replies || n < 1 || n > ROTOR_REDIS_PIPELINE_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		if (!cmds[i].argv || cmds[i].argc < 1)
			return -EINVAL;
		replies[i] = NULL;
	}
	if (rotor__worker_self() != r->w || !rotor__task_self())
		return -EPERM;
	if (r->closing)
		return -ESHUTDOWN;
	r->users++;
	int err = pipeline(r, n, cmds, deadline, replies);
	r->users--;
	maybe_idle(r);
	return err;
}

/* ---- clients ---- */

int rotor_redis_stats(const struct rotor_redis *r, struct rotor_redis_stats *out)
{
	if (!r || !out)
		return -EINVAL;
	*out = r->st;
	return 0;
}

static void client_free(struct rotor_redis *r)
{
	while (r->free_slots) {
		struct slot *s = r->free_slots;
		r->free_slots = s->next;
		free(s);
	}
	free(r->conns);
	free(r->host);
	free(r);
}

int rotor_redis_connect(const struct rotor_redis_config *cfg, int64_t deadline,
                        struct rotor_redis **out)
{
	if (!cfg || !out || cfg->port < 1 || cfg->port > 65535 || cfg->connections < 0)
		return -EINVAL;
	struct rotor__worker *w = rotor__worker_self();
	if (!w || !rotor__task_self())
		return -EPERM;
	struct rotor_redis *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->w = w;
	r->port = cfg->port;
	r->max_reply = cfg->max_reply;
	r->connect_ns = cfg->connect_ns > 0 ? cfg->connect_ns : DEFAULT_CONNECT_NS;
	r->nconn = cfg->connections ? cfg->connections : 1;
	r->host = strdup(cfg->host && *cfg->host ? cfg->host : "localhost");
	r->conns = calloc((size_t)r->nconn, sizeof(*r->conns));
	if (!r->host || !r->conns) {
		client_free(r);
		return -ENOMEM;
	}
	rotor_event_init(&r->idle);
	for (int i = 0; i < r->nconn; i++) {
		r->conns[i].r = r;
		rotor_event_init(&r->conns[i].done);
	}
	for (int i = 0; i < r->nconn; i++) {
		int err = conn_up(&r->conns[i], deadline);
		if (err < 0) {
			rotor_redis_close(r, rotor_now());
			return err;
		}
	}
	*out = r;
	return 0;
}

int rotor_redis_close(struct rotor_redis *r, int64_t deadline)
{
	if (!r)
		return -EINVAL;
	if (rotor__worker_self() != r->w || !rotor__task_self())
		return -EPERM;
	if (r->closing)
		return -EALREADY;
	r->closing = true;
	/* Replies in flight until the deadline (a cancel ends this wait early). */
	while (r->st.pending > 0) {
		rotor_event_clear(&r->idle);
		if (r->st.pending == 0 || rotor_event_wait_until(&r->idle, deadline) < 0)
			break;
	}
	rotor_shield_begin(rotor_now() + r->connect_ns + TEARDOWN_NS);
	for (int i = 0; i < r->nconn; i++) {
		struct link *l = r->conns[i].link;
		if (l) {
			l->down_err = -ECONNABORTED;
			link_break(l);
		}
	}
	while (r->users > 0 || r->links > 0) {
		rotor_event_clear(&r->idle);
		if (r->users == 0 && r->links == 0)
			break;
		if (rotor_event_wait_until(&r->idle, rotor_now() + TEARDOWN_NS) < 0 &&
		    rotor_task_cancelled() == 1)
			break;
	}
	rotor_shield_end();
	if (r->users > 0 || r->links > 0) {
		/* Only a stop whose shield ran out gets here: leave r to the tasks still on it. */
		return 0;
	}
	client_free(r);
	return 0;
}
