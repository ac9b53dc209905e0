/*
 * A connection's round (conn.c) and the parts it sends to other workers (forward.c).
 *
 * A round is what one read brought: every complete request in it is parsed, each split into
 * parts, one per owner worker; local parts run at once, the others are gathered, per owner,
 * with the parts of every other connection of this worker in the same loop turn, and posted
 * as one batch. The connection waits until every part has come back, writes the replies in
 * request order, sends them, and only then reads on. Nothing a part points at (the request's
 * bytes, the part arrays) moves while it is away: they are only grown while parsing, before
 * any part leaves.
 */
#ifndef REDIS_CONN_H
#define REDIS_CONN_H

#include "redis.h"

#include <stdatomic.h>

struct conn;

struct part {
	struct part *next; /* in its batch */
	struct conn *conn;
	const struct cmd *cmd;
	const struct rotor_resp_arg *argv; /* in conn->args: the request's, or built for it */
	int argc;
	int owner;
	int argi;            /* while parsing: its first argument in conn->args (-1 - it: remote) */
	size_t off, len;     /* its reply, in conn->dout */
	size_t roff, rlen;   /* a remote part's reply, in its batch's out */
	struct batch *batch; /* a remote part's, once it has left */
	bool back;           /* a remote part's reply is in conn->dout */
};

/* A request whose reply waits for the round's end: its parts are first..first+n-1, its
 * arguments argc from argi in conn->args. */
struct dreq {
	const struct cmd *cmd;
	int first, n;
	int argi, argc;
};

/* A request of the round, parsed, not yet run: its arguments in conn->args, its key's hash. */
struct preq {
	int argi, argc;
	uint64_t h;
};

struct batch {
	struct batch *next; /* in the worker's free list */
	int from, to;
	int n;
	struct part *head, **tail;
	struct rotor_resp_out out; /* the owner writes the parts' replies here */
	/* Set by the owner, its last touch, when the batch cannot be posted back (the runtime
	 * stops): its parts never come back, and their connections stop waiting for them. */
	atomic_bool lost;
};

struct conn {
	struct ctx ctx;
	int fd, sock;
	struct rotor_op *send_op;
	size_t sending; /* bytes of the other buffer the kernel is sending */
	struct rotor_resp_out out[2];
	int cur; /* out[cur] gathers; out[!cur] is the kernel's while sending */
	/* The round. */
	struct rotor_resp_arg *args;
	int nargs, capargs;
	struct part *parts;
	int nparts, capparts;
	struct dreq *reqs;
	int nreqs, capreqs;
	struct preq *pre;
	int cappre;
	int *kown; /* an R_MULTI request's owner of each key, by argument index */
	int capkown;
	struct rotor_resp_out dout; /* replies of deferred requests' parts */
	int pending;                /* parts away on other workers */
	struct rotor_event done;    /* set when pending reaches 0 */
	char *scratch;              /* inline requests, allocated at the first */
	char *in;                   /* the bytes of an incomplete request, carried over */
	size_t in_len, in_cap;
	size_t tried; /* in_len when it was last parsed and incomplete */
};

/* forward.c */
void fwd_add(struct part *p); /* queue a remote part in this worker's batch for p->owner */
void fwd_init(void);

#endif /* REDIS_CONN_H */
