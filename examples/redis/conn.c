/*
 * Connections: a task per connection reads through a receive stream on its worker's shared
 * buffers, parses every complete request of what arrived (pipelines whole), runs what the
 * worker owns inline, has the rest run by its owners (conn.h, forward.c), and sends the
 * round's replies in request order in one send, started before the next read so that the
 * task reads on while the kernel sends.
 */
#include "conn.h"

#include <rotor/server.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ROUND_MAX 1024 /* requests in one round: a longer pipeline takes several */
#define OUT_INIT  (16 * 1024)

long long max_query = 1024LL * 1024 * 1024; /* client-query-buffer-limit */
int64_t idle_ns;                            /* 0: never */
static _Atomic long long next_id = 1;

static int grow(void **p, int *cap, int need, size_t elem)
{
	if (need <= *cap)
		return 0;
	int n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, (size_t)n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static void merge_reply(struct conn *c, const struct dreq *r, struct rotor_resp_out *o);

static struct part *new_part(struct conn *c)
{
	if (grow((void **)&c->parts, &c->capparts, c->nparts + 1, sizeof(*c->parts)) < 0)
		return NULL;
	struct part *p = &c->parts[c->nparts++];
	memset(p, 0, sizeof(*p));
	p->conn = c;
	return p;
}

/* A part run here, now, its reply kept for the merge. */
static void run_local(struct conn *c, struct part *p)
{
	p->off = c->dout.len;
	p->cmd->run(&shards[p->owner], p->argc, p->argv, &c->dout);
	p->len = c->dout.len - p->off;
}

/* No memory for a request's bookkeeping: it cannot be answered in its place, so the
 * connection ends after the replies before it (a close, never replies out of order). */
static void fail(struct conn *c)
{
	c->ctx.quit = true;
}

/* A request answered with a fixed reply (an error), in its place among the deferred. */
static void defer_reply(struct conn *c, const char *err)
{
	struct part *p;
	if (grow((void **)&c->reqs, &c->capreqs, c->nreqs + 1, sizeof(*c->reqs)) < 0 ||
	    !(p = new_part(c)))
		return fail(c);
	c->reqs[c->nreqs++] = (struct dreq){NULL, c->nparts - 1, 1, 0, 0};
	p->owner = rotor_worker_id();
	p->off = c->dout.len;
	rotor_resp_put_error(&c->dout, err);
	p->len = c->dout.len - p->off;
}

static void reply_error(struct conn *c, bool deferring, const char *err)
{
	if (deferring)
		defer_reply(c, err);
	else
		rotor_resp_put_error(&c->out[c->cur], err);
}

/* What Redis says to an unknown command: its name and the start of its arguments. */
static void unknown_command(struct conn *c, bool deferring, int argc,
                            const struct rotor_resp_arg *argv)
{
	char msg[512], args[200] = "";
	size_t al = 0;
	for (int i = 1; i < argc && al < 128; i++) {
		int room = 128 - (int)al;
		int n = snprintf(args + al, sizeof(args) - al, "'%.*s' ",
		                 (int)(argv[i].len < (size_t)room ? argv[i].len : (size_t)room),
		                 argv[i].ptr);
		if (n > 0)
			al += (size_t)n;
		if (al >= sizeof(args))
			al = sizeof(args) - 1;
	}
	snprintf(msg, sizeof(msg), "ERR unknown command '%.*s', with args beginning with: %s",
	         (int)(argv[0].len < 128 ? argv[0].len : 128), argv[0].ptr, args);
	for (char *p = msg; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	reply_error(c, deferring, msg);
}

/* Dispatch one request; *deferring turns true once one has left parts with other workers:
 * from then on every reply of the round waits for the round's end, to keep their order. */
static void dispatch(struct conn *c, int argi, int argc, bool *deferring)
{
	const struct rotor_resp_arg *argv = c->args + argi;
	const struct cmd *cmd = cmd_lookup(argv[0].ptr, argv[0].len);
	int self = rotor_worker_id();
	if (!cmd)
		return unknown_command(c, *deferring, argc, argv);
	if ((cmd->arity > 0 && argc != cmd->arity) || (cmd->arity < 0 && argc < -cmd->arity) ||
	    (cmd->route == R_MULTI && (argc - 1) % cmd->step)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "ERR wrong number of arguments for '%s' command",
		         cmd->name);
		return reply_error(c, *deferring, msg);
	}
	if (cmd->write && over_maxmemory())
		return reply_error(c, *deferring, ERR_OOM);
	struct rotor_resp_out *direct = &c->out[c->cur];
	if (cmd->route == R_CONN) {
		if (!*deferring)
			return (void)cmd->conn(&c->ctx, argc, argv, direct);
		int first = c->nparts;
		struct part *p = new_part(c);
		if (!p || grow((void **)&c->reqs, &c->capreqs, c->nreqs + 1, sizeof(*c->reqs)) < 0)
			return fail(c);
		p->owner = self;
		p->off = c->dout.len;
		cmd->conn(&c->ctx, argc, argv, &c->dout);
		p->len = c->dout.len - p->off;
		c->reqs[c->nreqs++] = (struct dreq){NULL, first, 1, 0, 0};
		return;
	}
	if (cmd->route == R_KEY) {
		int owner = key_owner(key_hash(argv[1].ptr, argv[1].len));
		if (owner == self && !*deferring) {
			shards[self].local_parts++;
			return cmd->run(&shards[self], argc, argv, direct);
		}
	}
	/* Parts: one per owner of the keys (R_MULTI), per worker (R_ALL), or the one (R_KEY).
	 * An R_MULTI part's arguments are the command and that owner's keys (with their
	 * values), in request order, appended to the round's arguments. */
	if (grow((void **)&c->reqs, &c->capreqs, c->nreqs + 1, sizeof(*c->reqs)) < 0)
		return fail(c);
	int first = c->nparts, remote = 0, n = 0;
	int owners[MAX_WORKERS] = {0}; /* R_MULTI: keys per owner */
	if (cmd->route == R_MULTI) {
		if (grow((void **)&c->args, &c->capargs, c->nargs + argc + nworkers,
		         sizeof(*c->args)) < 0 ||
		    grow((void **)&c->kown, &c->capkown, argc, sizeof(*c->kown)) < 0)
			return fail(c);
		argv = c->args + argi; /* it may have moved */
		for (int k = 1; k < argc; k += cmd->step) {
			c->kown[k] = key_owner(key_hash(argv[k].ptr, argv[k].len));
			owners[c->kown[k]]++;
		}
	}
	int nparts = cmd->route == R_KEY ? 1 : nworkers;
	for (int i = 0; i < nparts; i++) {
		if (cmd->route == R_MULTI && !owners[i])
			continue;
		struct part *p = new_part(c);
		if (!p) {
			c->nparts = first;
			return fail(c);
		}
		n++;
		p->cmd = cmd;
		p->argi = argi;
		p->argc = argc;
		if (cmd->route == R_MULTI) {
			p->owner = i;
			p->argi = c->nargs;
			c->args[c->nargs++] = argv[0];
			for (int k = 1; k < argc && owners[i]; k += cmd->step)
				if (c->kown[k] == i)
					for (int j = 0; j < cmd->step; j++)
						c->args[c->nargs++] = argv[k + j];
			p->argc = c->nargs - p->argi;
		} else {
			p->owner =
			    cmd->route == R_ALL ? i : key_owner(key_hash(argv[1].ptr, argv[1].len));
		}
		if (p->owner == self) {
			p->argv = c->args + p->argi;
			shards[self].local_parts++;
			run_local(c, p);
		} else {
			p->argi = -1 - p->argi; /* remote: argv resolved when it leaves */
			remote++;
		}
	}
	c->reqs[c->nreqs++] = (struct dreq){cmd, first, n, argi, argc};
	if (remote)
		*deferring = true;
	else if (!*deferring) {
		/* All here and nothing before it waits: answer now. */
		c->nreqs--;
		merge_reply(c, &c->reqs[c->nreqs], direct);
		c->nparts = first;
		c->dout.len = 0;
	}
}

static long long reply_int(const char *p, size_t n)
{
	long long v = 0;
	bool neg = n > 1 && p[1] == '-';
	for (size_t i = neg ? 2 : 1; i < n && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (p[i] - '0');
	return neg ? -v : v;
}

/* The length of the reply at p: a bulk string, nil, an integer, a simple string or an
 * error (what an MGET part's elements are). */
static size_t elem_len(const char *p, size_t n)
{
	const char *cr = memchr(p, '\r', n);
	if (!cr)
		return n;
	size_t head = (size_t)(cr - p) + 2;
	if (p[0] != '$' || p[1] == '-')
		return head;
	size_t len = (size_t)reply_int(p, head);
	return head + len + 2 <= n ? head + len + 2 : n;
}

static void merge_reply(struct conn *c, const struct dreq *r, struct rotor_resp_out *o)
{
	const struct part *p = &c->parts[r->first];
	enum merge m = r->cmd ? r->cmd->merge : M_NONE;
	for (int i = 0; i < r->n; i++)
		if (p[i].len == 0 || c->dout.buf[p[i].off] == '-') {
			if (p[i].len == 0)
				rotor_resp_put_error(o, "ERR out of memory");
			else
				rotor_resp_put_raw(o, c->dout.buf + p[i].off, p[i].len);
			return;
		}
	switch (m) {
	case M_NONE:
		rotor_resp_put_raw(o, c->dout.buf + p->off, p->len);
		break;
	case M_ARRAY: {
		/* Each owner's part holds its keys' values in request order: take them back
		 * in the order of the request's keys. */
		size_t at[MAX_WORKERS], end[MAX_WORKERS];
		for (int i = 0; i < r->n; i++) {
			at[p[i].owner] = p[i].off;
			end[p[i].owner] = p[i].off + p[i].len;
		}
		const struct rotor_resp_arg *argv = c->args + r->argi;
		rotor_resp_put_array(o, r->argc - 1);
		for (int k = 1; k < r->argc; k++) {
			int w = key_owner(key_hash(argv[k].ptr, argv[k].len));
			size_t n = elem_len(c->dout.buf + at[w], end[w] - at[w]);
			rotor_resp_put_raw(o, c->dout.buf + at[w], n);
			at[w] += n;
		}
		break;
	}
	case M_SUM: {
		long long sum = 0;
		for (int i = 0; i < r->n; i++)
			sum += reply_int(c->dout.buf + p[i].off, p[i].len);
		rotor_resp_put_int(o, sum);
		break;
	}
	case M_OK:
		rotor_resp_put_simple(o, "OK");
		break;
	}
}

/* Whether every remote part not back yet is in a batch its owner could not post back. */
static bool parts_lost(const struct conn *c)
{
	for (int i = 0; i < c->nparts; i++) {
		const struct part *p = &c->parts[i];
		if (p->batch && !p->back &&
		    !atomic_load_explicit(&p->batch->lost, memory_order_acquire))
			return false;
	}
	return true;
}

/* Send the parts away, wait for all of them, and write every deferred reply in order.
 * Returns false when some never came back (the runtime stops): the connection ends. */
static bool finish_round(struct conn *c)
{
	bool whole = true;
	for (int i = 0; i < c->nparts; i++) {
		struct part *p = &c->parts[i];
		if (p->argi >= 0)
			continue;
		p->argv = c->args + (-1 - p->argi); /* it may have moved while parsing */
		c->pending++;
		fwd_add(p);
	}
	if (c->pending) {
		/* The parts point into this connection: it must outlive them, even when the
		 * runtime stops (the owners answer within a loop turn or two). */
		bool shielded = rotor_shield_begin(rotor_now() + 60 * 1000000000LL) == 0;
		while (c->pending) {
			rotor_event_clear(&c->done);
			/* A wait cut short (the stop's deadline): the task cannot wait any more,
			 * and leaves once every part still away is in a batch that will never come
			 * back (else a reply on its way would land in a connection gone). */
			if (c->pending && rotor_event_wait(&c->done) < 0 && parts_lost(c)) {
				whole = false;
				break;
			}
		}
		if (shielded)
			rotor_shield_end();
	}
	for (int i = 0; i < c->nreqs; i++)
		merge_reply(c, &c->reqs[i], &c->out[c->cur]);
	return whole;
}

/* Parse and answer every complete request at the front of buf (up to ROUND_MAX); returns
 * the bytes taken. *close: a protocol error or QUIT, close once the replies are out.
 * The round is parsed first, then the buckets of its local keys are prefetched, then their
 * entries, then the requests run: with a pipeline the cache misses of a random keyspace
 * overlap instead of coming one after the other (db_find was 28% of the server's CPU at
 * -P 16 before, perf). */
static size_t do_round(struct conn *c, const char *buf, size_t len, bool *close)
{
	size_t off = 0;
	bool deferring = false;
	const char *err = NULL;
	char msg[128];
	int n = 0;
	c->nargs = c->nparts = c->nreqs = 0;
	c->dout.len = 0;
	while (off < len && n < ROUND_MAX) {
		if (grow((void **)&c->args, &c->capargs, c->nargs + 16, sizeof(*c->args)) < 0 ||
		    grow((void **)&c->pre, &c->cappre, n + 1, sizeof(*c->pre)) < 0) {
			*close = true;
			break;
		}
		bool inl = buf[off] != '*';
		if (inl && !c->scratch && !(c->scratch = malloc(ROTOR_RESP_INLINE_MAX))) {
			*close = true;
			break;
		}
		struct rotor_resp_req rq = {.argv = c->args + c->nargs,
		                            .cap = c->capargs - c->nargs,
		                            .scratch = c->scratch,
		                            .max_bulk = max_bulk};
		ssize_t r = rotor_resp_parse(buf + off, len - off, &rq);
		if (r == -ENOSPC) {
			if (grow((void **)&c->args, &c->capargs, c->nargs + rq.argc,
			         sizeof(*c->args)) < 0) {
				*close = true;
				break;
			}
			continue;
		}
		if (r == 0)
			break;
		if (r < 0) {
			snprintf(msg, sizeof(msg), "ERR %s",
			         rq.error ? rq.error : "Protocol error");
			err = msg;
			break;
		}
		off += (size_t)r;
		if (rq.argc == 0)
			continue;
		c->pre[n++] = (struct preq){c->nargs, rq.argc, 0};
		c->nargs += rq.argc;
		if (inl)
			break; /* the next inline request reuses scratch: this round ends first */
	}
	int self = rotor_worker_id();
	struct shard *sh = &shards[self];
	if (n > 1 && sh->tab) {
		for (int i = 0; i < n; i++) {
			struct preq *q = &c->pre[i];
			if (q->argc < 2)
				continue;
			const struct rotor_resp_arg *k = &c->args[q->argi + 1];
			q->h = key_hash(k->ptr, k->len);
			if (key_owner(q->h) == self)
				__builtin_prefetch(&sh->tab[q->h & sh->mask]);
		}
		for (int i = 0; i < n; i++) {
			struct preq *q = &c->pre[i];
			if (q->argc >= 2 && key_owner(q->h) == self && sh->tab[q->h & sh->mask])
				__builtin_prefetch(sh->tab[q->h & sh->mask]);
		}
	}
	for (int i = 0; i < n && !*close; i++) {
		dispatch(c, c->pre[i].argi, c->pre[i].argc, &deferring);
		if (c->ctx.quit)
			*close = true; /* Redis reads nothing after QUIT either */
	}
	if (err && !*close) {
		reply_error(c, deferring, err);
		*close = true;
	}
	if (deferring && !finish_round(c))
		*close = true;
	return off;
}

static int send_done(struct conn *c)
{
	if (!c->sending)
		return 0;
	ssize_t w = rotor_op_wait(c->send_op, ROTOR_FOREVER);
	size_t want = c->sending;
	c->sending = 0;
	return w < 0 ? (int)w : (size_t)w == want ? 0 : -EPIPE;
}

static int flush_out(struct conn *c)
{
	int r = send_done(c);
	struct rotor_resp_out *o = &c->out[c->cur];
	if (r < 0 || !o->len)
		return r;
	r = rotor_send_start(c->send_op, c->fd, o->buf, o->len, MSG_WAITALL);
	if (r < 0)
		return r;
	c->sending = o->len;
	c->cur ^= 1;
	c->out[c->cur].len = 0;
	return 0;
}

/* Keep the unparsed tail of what arrived. */
static int carry(struct conn *c, const char *p, size_t n)
{
	if (c->in_len + n > (size_t)max_query)
		return -EMSGSIZE;
	if (c->in_len + n > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap : 4096;
		while (cap < c->in_len + n)
			cap *= 2;
		char *q = realloc(c->in, cap);
		if (!q)
			return -ENOMEM;
		c->in = q;
		c->in_cap = cap;
	}
	memmove(c->in + c->in_len, p, n);
	c->in_len += n;
	return 0;
}

static int pool_key = -1;

static void *pool_create(void *arg)
{
	(void)arg;
	struct rotor_bufring *br;
	return rotor_bufring_create(512, 16384, &br) < 0 ? NULL : br;
}

static void pool_destroy(void *br)
{
	rotor_bufring_destroy(br);
}

void conn_init(void)
{
	pool_key = rotor_key_create(pool_destroy);
}

void conn_serve(struct rotor_server_conn *sc, void *arg);
void conn_serve(struct rotor_server_conn *sc, void *arg)
{
	(void)arg;
	struct conn *c = rotor_server_conn_data(sc);
	struct rotor_bufring *pool;
	struct rotor_recv_stream *rs = NULL;
	c->ctx.id = atomic_fetch_add(&next_id, 1);
	c->sock = rotor_server_conn_fd(sc);
	int one = 1;
	setsockopt(c->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rotor_event_init(&c->done);
	int fixed = rotor_fd_register(c->sock);
	c->fd = fixed >= 0 ? fixed : c->sock;
	if (rotor_op_create(&c->send_op) < 0 ||
	    rotor_worker_local(pool_key, pool_create, NULL, (void **)&pool) < 0 ||
	    rotor_recv_stream_create(c->fd, pool, &rs) < 0)
		goto out;
	bool close = false;
	while (!close) {
		const void *data;
		ssize_t n = rotor_recv_stream_next(rs, &data,
		                                   idle_ns ? rotor_now() + idle_ns : ROTOR_FOREVER);
		if (n <= 0)
			break;
		const char *src = data;
		size_t left = (size_t)n;
		if (c->in_len) {
			if (carry(c, src, left) < 0)
				break; /* over the query buffer limit: Redis closes too */
			left = 0;
			/* A large request arriving piece by piece is parsed again from its start
			 * each time: past 1 MiB, only when what is carried has doubled or ends a
			 * line, so the parsing stays linear in what a hostile client sends. */
			if (c->in_len > (1u << 20) && c->in_len < 2 * c->tried &&
			    c->in[c->in_len - 1] != '\n')
				goto flush;
			size_t used;
			while (!close && c->in_len &&
			       (used = do_round(c, c->in, c->in_len, &close))) {
				memmove(c->in, c->in + used, c->in_len - used);
				c->in_len -= used;
			}
			c->tried = c->in_len;
		} else {
			size_t used;
			while (!close && left && (used = do_round(c, src, left, &close))) {
				src += used;
				left -= used;
			}
			if (!close && left && carry(c, src, left) < 0)
				break;
		}
	flush:
		if (flush_out(c) < 0)
			break;
	}
	if (c->sending && rotor_shield_begin(rotor_now() + 2000 * 1000000LL) == 0) {
		send_done(c); /* a stop: the last replies go out whole */
		rotor_shield_end();
	}
out:
	if (c->send_op)
		rotor_op_destroy(c->send_op);
	if (rs)
		rotor_recv_stream_destroy(rs);
	if (c->fd != c->sock)
		rotor_close(c->fd, ROTOR_FOREVER);
}

void conn_close(struct rotor_server_conn *sc, void *arg);
void conn_close(struct rotor_server_conn *sc, void *arg)
{
	(void)arg;
	struct conn *c = rotor_server_conn_data(sc);
	for (int i = 0; i < 2; i++)
		if (c->out[i].owned)
			free(c->out[i].buf);
	if (c->dout.owned)
		free(c->dout.buf);
	free(c->args);
	free(c->parts);
	free(c->reqs);
	free(c->pre);
	free(c->kown);
	free(c->scratch);
	free(c->in);
}
