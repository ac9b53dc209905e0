/*
 * The Redis client (rotor/redis.h) against a real redis-server started on a free loopback
 * port: every RESP2 reply type (status, error, integer, bulk, empty bulk, nil, array, nested
 * and empty arrays, a nil array), binary-safe keys and values, replies in order to 100 tasks
 * and their commands in one write, a pool spreading commands (a blocking command does not
 * hold the others), reconnection after CLIENT KILL with -ECONNRESET to every task that waited,
 * a server that stops answering (SIGSTOP; a socket that never reads) cut by the deadline
 * without losing step, a server gone (every task gets the reconnection's refusal), pipelines
 * of one task in one write, close waiting for replies in flight or cutting them, and misuse.
 */
#include <criterion/criterion.h>
#include <rotor/redis.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "redis_peer.h"

#define F ROTOR_FOREVER

static struct redis_peer peer;

static void start_peer(void)
{
	if (!redis_peer_available())
		cr_skip_test(
		    "needs redis-server and redis-cli (Debian: redis-server, redis-tools)");
	cr_assert_eq(redis_peer_start(&peer), 0, "redis-server did not start");
}

static void stop_peer(void)
{
	redis_peer_stop(&peer);
}

static struct rotor_redis *connect_n(int n)
{
	struct rotor_redis_config cfg = {.host = "127.0.0.1", .port = peer.port, .connections = n};
	struct rotor_redis *r = NULL;
	CHECK_EQ(rotor_redis_connect(&cfg, rotor_now() + 5 * SEC, &r), 0);
	return r;
}

/* A command of C strings, its reply (NULL on error: err set). */
static struct rotor_redis_reply *cmd(struct rotor_redis *r, int *err, int argc, ...)
{
	const char *argv[16];
	va_list ap;
	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, const char *);
	va_end(ap);
	struct rotor_redis_reply *reply = NULL;
	int rc = rotor_redis_command(r, argc, argv, NULL, rotor_now() + 5 * SEC, &reply);
	if (err)
		*err = rc;
	else
		CHECK_EQ(rc, 0);
	return rc == 0 ? reply : NULL;
}

static void check_str(struct rotor_redis_reply *x, int type, const char *want)
{
	CHECK(x != NULL);
	if (!x)
		return;
	CHECK_EQ(x->type, type);
	CHECK_EQ(x->len, strlen(want));
	CHECK(x->str && memcmp(x->str, want, strlen(want)) == 0 && x->str[x->len] == 0);
}

/* ---- replies ---------------------------------------------------------------------------- */

static void *types_main(void *arg)
{
	(void)arg;
	struct rotor_redis *r = connect_n(1);
	struct rotor_redis_reply *x;

	check_str(x = cmd(r, NULL, 3, "SET", "k", "v"), ROTOR_REDIS_STATUS, "OK");
	rotor_redis_reply_free(x);
	x = cmd(r, NULL, 1, "NOSUCHCOMMAND");
	CHECK(x && x->type == ROTOR_REDIS_ERROR && strncmp(x->str, "ERR unknown command", 19) == 0);
	rotor_redis_reply_free(x);
	x = cmd(r, NULL, 3, "INCRBY", "n", "-42");
	CHECK(x && x->type == ROTOR_REDIS_INTEGER && x->integer == -42);
	rotor_redis_reply_free(x);
	check_str(x = cmd(r, NULL, 2, "GET", "k"), ROTOR_REDIS_STRING, "v");
	rotor_redis_reply_free(x);
	rotor_redis_reply_free(cmd(r, NULL, 3, "SET", "empty", ""));
	check_str(x = cmd(r, NULL, 2, "GET", "empty"), ROTOR_REDIS_STRING, "");
	rotor_redis_reply_free(x);
	x = cmd(r, NULL, 2, "GET", "missing");
	CHECK(x && x->type == ROTOR_REDIS_NIL);
	rotor_redis_reply_free(x);
	/* A nil array: BLPOP that times out. */
	x = cmd(r, NULL, 3, "BLPOP", "nolist", "0.01");
	CHECK(x && x->type == ROTOR_REDIS_NIL);
	rotor_redis_reply_free(x);
	rotor_redis_reply_free(cmd(r, NULL, 5, "RPUSH", "l", "a", "bb", "ccc"));
	x = cmd(r, NULL, 4, "LRANGE", "l", "0", "-1");
	CHECK(x && x->type == ROTOR_REDIS_ARRAY && x->elements == 3);
	if (x && x->elements == 3) {
		check_str(x->element[0], ROTOR_REDIS_STRING, "a");
		check_str(x->element[2], ROTOR_REDIS_STRING, "ccc");
	}
	rotor_redis_reply_free(x);
	x = cmd(r, NULL, 4, "LRANGE", "nolist", "0", "-1");
	CHECK(x && x->type == ROTOR_REDIS_ARRAY && x->elements == 0);
	rotor_redis_reply_free(x);
	/* Nested: {1, {2, "x", {}}, status, error}, through Lua. */
	x = cmd(r, NULL, 3, "EVAL",
	        "return {1, {2, 'x', {}}, redis.status_reply('FINE'), redis.error_reply('MINE')}",
	        "0");
	CHECK(x && x->type == ROTOR_REDIS_ARRAY && x->elements == 4);
	if (x && x->elements == 4) {
		CHECK(x->element[0]->type == ROTOR_REDIS_INTEGER && x->element[0]->integer == 1);
		struct rotor_redis_reply *in = x->element[1];
		CHECK(in->type == ROTOR_REDIS_ARRAY && in->elements == 3);
		if (in->elements == 3) {
			CHECK(in->element[0]->integer == 2);
			check_str(in->element[1], ROTOR_REDIS_STRING, "x");
			CHECK(in->element[2]->type == ROTOR_REDIS_ARRAY &&
			      in->element[2]->elements == 0);
		}
		check_str(x->element[2], ROTOR_REDIS_STATUS, "FINE");
		/* Redis 7 puts "ERR " before an error without a code of its own. */
		CHECK(x->element[3]->type == ROTOR_REDIS_ERROR &&
		      strstr(x->element[3]->str, "MINE") != NULL);
	}
	rotor_redis_reply_free(x);
	rotor_redis_reply_free(NULL);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, every_reply_type_reaches_the_task, .init = start_peer, .fini = stop_peer, .timeout = 30)
{
	run_checked(1, types_main, NULL);
}

static void *binary_main(void *arg)
{
	(void)arg;
	struct rotor_redis *r = connect_n(1);
	char key[] = "k\0e\r\ny", val[256 * 3];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (char)(i * 7);
	memcpy(val, "\r\n$3\r\n*-1\r\n", 11); /* what would confuse a parser that is not */
	const char *set[] = {"SET", key, val};
	size_t setl[] = {3, sizeof(key), sizeof(val)};
	struct rotor_redis_reply *x = NULL;
	CHECK_EQ(rotor_redis_command(r, 3, set, setl, rotor_now() + 5 * SEC, &x), 0);
	check_str(x, ROTOR_REDIS_STATUS, "OK");
	rotor_redis_reply_free(x);
	const char *get[] = {"GET", key};
	size_t getl[] = {3, sizeof(key)};
	x = NULL;
	CHECK_EQ(rotor_redis_command(r, 2, get, getl, rotor_now() + 5 * SEC, &x), 0);
	CHECK(x && x->type == ROTOR_REDIS_STRING && x->len == sizeof(val) &&
	      memcmp(x->str, val, sizeof(val)) == 0);
	rotor_redis_reply_free(x);
	/* A value of 1 MiB: bigger than any receive buffer, the reply spans many. */
	size_t big = 1 << 20;
	char *b = malloc(big);
	for (size_t i = 0; i < big; i++)
		b[i] = (char)(i % 251);
	const char *set2[] = {"SET", "big", b};
	size_t set2l[] = {3, 3, big};
	CHECK_EQ(rotor_redis_command(r, 3, set2, set2l, rotor_now() + 5 * SEC, &x), 0);
	rotor_redis_reply_free(x);
	x = cmd(r, NULL, 2, "GET", "big");
	CHECK(x && x->type == ROTOR_REDIS_STRING && x->len == big && memcmp(x->str, b, big) == 0);
	rotor_redis_reply_free(x);
	free(b);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, keys_and_values_are_binary_safe, .init = start_peer, .fini = stop_peer, .timeout = 30)
{
	run_checked(1, binary_main, NULL);
}

/* ---- many tasks, one write -------------------------------------------------------------- */

#define TASKS 100

struct many {
	struct rotor_redis *r;
	int i;
};

/* The fewest writes any task had seen when its first reply came: the first turn's. */
static uint64_t writes_at_first_reply, writes_before;

static void *echo_task(void *arg)
{
	struct many *m = arg;
	char payload[32], idx[16];
	snprintf(payload, sizeof(payload), "payload-%d", m->i);
	snprintf(idx, sizeof(idx), "%d", m->i);
	/* Both in the same turn: the ECHO and the RPUSH follow each other. */
	int err;
	struct rotor_redis_reply *x = cmd(m->r, &err, 2, "ECHO", payload);
	struct rotor_redis_stats st;
	rotor_redis_stats(m->r, &st);
	if (st.writes - writes_before < writes_at_first_reply)
		writes_at_first_reply = st.writes - writes_before;
	CHECK_EQ(err, 0);
	check_str(x, ROTOR_REDIS_STRING, payload);
	rotor_redis_reply_free(x);
	x = cmd(m->r, &err, 3, "RPUSH", "order", idx);
	CHECK(x && x->type == ROTOR_REDIS_INTEGER && x->integer >= 1 && x->integer <= TASKS);
	rotor_redis_reply_free(x);
	return NULL;
}

static void *many_main(void *arg)
{
	int conns = (int)U(arg);
	struct rotor_redis *r = connect_n(conns);
	struct rotor_redis_stats before, after;
	struct many m[TASKS];
	struct rotor_task *t[TASKS];
	rotor_redis_reply_free(cmd(r, NULL, 2, "DEL", "order"));
	rotor_redis_stats(r, &before);
	writes_before = before.writes;
	writes_at_first_reply = UINT64_MAX;
	for (int i = 0; i < TASKS; i++) {
		m[i] = (struct many){r, i};
		CHECK_EQ(rotor_spawn(echo_task, &m[i], &t[i]), 0);
	}
	for (int i = 0; i < TASKS; i++)
		rotor_join(t[i], NULL);
	rotor_redis_stats(r, &after);
	CHECK_EQ(after.commands - before.commands, 2 * TASKS);
	CHECK_EQ(after.replies - before.replies, 2 * TASKS);
	/* The ECHOs of one turn in one write per connection. The RPUSHes follow in a write
	 * per turn in which replies woke tasks: one, or a few when the replies arrive in
	 * pieces (always so for a pool, whose connections answer in different turns). */
	CHECK_EQ(writes_at_first_reply, conns);
	CHECK(after.writes - before.writes >= (uint64_t)(2 * conns));
	CHECK(after.writes - before.writes <= (uint64_t)(conns + TASKS / 10));
	CHECK_EQ(after.pending, 0);
	if (conns == 1) { /* one connection: the RPUSHes landed in the order they were issued */
		struct rotor_redis_reply *x = cmd(r, NULL, 4, "LRANGE", "order", "0", "-1");
		CHECK(x && x->elements == TASKS);
		for (size_t i = 0; x && i < x->elements; i++)
			CHECK_EQ(atoi(x->element[i]->str), (int)i);
		rotor_redis_reply_free(x);
	}
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, replies_reach_100_tasks_in_order_and_one_turn_is_one_write, .init = start_peer,
     .fini = stop_peer, .timeout = 30)
{
	run_checked(1, many_main, P(1));
}

Test(redis, a_pool_spreads_the_commands_of_a_turn_over_its_connections, .init = start_peer,
     .fini = stop_peer, .timeout = 30)
{
	run_checked(1, many_main, P(4));
}

static void *blocker(void *arg)
{
	int err;
	struct rotor_redis_reply *x = cmd(arg, &err, 3, "BLPOP", "never", "1");
	CHECK_EQ(err, 0);
	CHECK(x && x->type == ROTOR_REDIS_NIL);
	rotor_redis_reply_free(x);
	return NULL;
}

static void *blocking_main(void *arg)
{
	(void)arg;
	struct rotor_redis *r = connect_n(2);
	struct rotor_task *t;
	CHECK_EQ(rotor_spawn(blocker, r, &t), 0);
	rotor_sleep(50 * MS);
	int64_t start = rotor_now();
	struct rotor_redis_reply *x = cmd(r, NULL, 1, "PING");
	CHECK(rotor_now() - start < 900 * MS); /* not behind the BLPOP's second */
	check_str(x, ROTOR_REDIS_STATUS, "PONG");
	rotor_redis_reply_free(x);
	rotor_join(t, NULL);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, a_blocking_command_holds_one_connection_of_the_pool, .init = start_peer,
     .fini = stop_peer, .timeout = 30)
{
	run_checked(1, blocking_main, NULL);
}

static void *pipeline_main(void *arg)
{
	(void)arg;
	struct rotor_redis *r = connect_n(1);
	struct rotor_redis_cmd cmds[16];
	const char *argv[16][3];
	char keys[16][16], vals[16][16];
	struct rotor_redis_reply *replies[16];
	struct rotor_redis_stats before, after;
	for (int i = 0; i < 16; i++) {
		snprintf(keys[i], sizeof(keys[i]), "p%d", i / 2);
		snprintf(vals[i], sizeof(vals[i]), "v%d", i / 2);
		argv[i][0] = i % 2 ? "GET" : "SET";
		argv[i][1] = keys[i];
		argv[i][2] = vals[i];
		cmds[i] = (struct rotor_redis_cmd){.argc = i % 2 ? 2 : 3, .argv = argv[i]};
	}
	rotor_redis_stats(r, &before);
	CHECK_EQ(rotor_redis_pipeline(r, 16, cmds, rotor_now() + 5 * SEC, replies), 0);
	rotor_redis_stats(r, &after);
	CHECK_EQ(after.writes - before.writes, 1);
	CHECK_EQ(after.commands - before.commands, 16);
	for (int i = 0; i < 16; i++) {
		if (i % 2)
			check_str(replies[i], ROTOR_REDIS_STRING, vals[i]);
		else
			check_str(replies[i], ROTOR_REDIS_STATUS, "OK");
		rotor_redis_reply_free(replies[i]);
	}
	/* All or nothing: a pipeline cut by its deadline leaves no reply, and the connection in
	 * step. */
	redis_peer_signal(&peer, SIGSTOP);
	CHECK_EQ(rotor_redis_pipeline(r, 16, cmds, rotor_now() + 100 * MS, replies), -ETIMEDOUT);
	for (int i = 0; i < 16; i++)
		CHECK(replies[i] == NULL);
	redis_peer_signal(&peer, SIGCONT);
	struct rotor_redis_reply *x = cmd(r, NULL, 2, "ECHO", "in step");
	check_str(x, ROTOR_REDIS_STRING, "in step");
	rotor_redis_reply_free(x);
	rotor_redis_stats(r, &after);
	CHECK_EQ(after.dropped, 16);
	struct rotor_redis_cmd bad = {.argc = 0, .argv = argv[0]};
	CHECK_EQ(rotor_redis_pipeline(r, 1, &bad, F, replies), -EINVAL);
	CHECK_EQ(rotor_redis_pipeline(r, 0, cmds, F, replies), -EINVAL);
	CHECK_EQ(rotor_redis_pipeline(r, 1, cmds, F, NULL), -EINVAL);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, a_pipeline_of_one_task_goes_out_in_one_write_and_is_all_or_nothing, .init = start_peer,
     .fini = stop_peer, .timeout = 30)
{
	run_checked(1, pipeline_main, NULL);
}

/* ---- failures --------------------------------------------------------------------------- */

static atomic_int reset_seen;

static void *waiter(void *arg)
{
	int err;
	struct rotor_redis_reply *x = cmd(arg, &err, 3, "BLPOP", "never", "10");
	CHECK_EQ(err, -ECONNRESET);
	CHECK(x == NULL);
	atomic_fetch_add(&reset_seen, 1);
	return NULL;
}

static void *kill_main(void *arg)
{
	(void)arg;
	struct rotor_redis *r = connect_n(1), *admin = connect_n(1);
	struct rotor_redis_reply *id = cmd(r, NULL, 2, "CLIENT", "ID");
	char ids[32];
	struct rotor_task *t[10];
	CHECK(id && id->type == ROTOR_REDIS_INTEGER);
	snprintf(ids, sizeof(ids), "%lld", id ? id->integer : 0);
	rotor_redis_reply_free(id);
	atomic_store(&reset_seen, 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(rotor_spawn(waiter, r, &t[i]), 0);
	rotor_sleep(100 * MS);
	struct rotor_redis_reply *k = cmd(admin, NULL, 4, "CLIENT", "KILL", "ID", ids);
	CHECK(k && k->type == ROTOR_REDIS_INTEGER && k->integer == 1);
	rotor_redis_reply_free(k);
	for (int i = 0; i < 10; i++)
		rotor_join(t[i], NULL);
	CHECK_EQ(atomic_load(&reset_seen), 10);
	/* The next command reconnects. */
	struct rotor_redis_reply *x = cmd(r, NULL, 1, "PING");
	check_str(x, ROTOR_REDIS_STATUS, "PONG");
	rotor_redis_reply_free(x);
	struct rotor_redis_stats st;
	rotor_redis_stats(r, &st);
	CHECK_EQ(st.connects, 2);
	CHECK_EQ(st.resets, 1);
	CHECK_EQ(st.pending, 0);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	CHECK_EQ(rotor_redis_close(admin, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, client_kill_fails_every_waiting_task_and_the_next_command_reconnects,
     .init = start_peer, .fini = stop_peer, .timeout = 30)
{
	run_checked(1, kill_main, NULL);
}

static atomic_int refused;

static void *pinger(void *arg)
{
	int err;
	cmd(arg, &err, 1, "PING");
	if (err == -ECONNREFUSED)
		atomic_fetch_add(&refused, 1);
	return NULL;
}

static void *gone_main(void *arg)
{
	(void)arg;
	struct rotor_redis *r = connect_n(1);
	struct rotor_redis_reply *x = cmd(r, NULL, 1, "PING");
	rotor_redis_reply_free(x);
	redis_peer_stop(&peer); /* the server goes away: the link ends */
	struct rotor_redis_stats st;
	for (int i = 0; i < 200; i++) {
		rotor_redis_stats(r, &st);
		if (st.resets == 1)
			break;
		rotor_sleep(5 * MS);
	}
	CHECK_EQ(st.resets, 1);
	/* Ten tasks at once: the first dials, the others of the turn wait for that dial; all get
	 * its refusal, and nothing was sent. */
	struct rotor_task *t[10];
	atomic_store(&refused, 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(rotor_spawn(pinger, r, &t[i]), 0);
	for (int i = 0; i < 10; i++)
		rotor_join(t[i], NULL);
	CHECK_EQ(atomic_load(&refused), 10);
	rotor_redis_stats(r, &st);
	CHECK_EQ(st.connects, 1);
	CHECK_EQ(st.commands, 1);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, once_the_server_is_gone_every_task_gets_the_reconnections_refusal, .init = start_peer,
     .fini = stop_peer, .timeout = 30)
{
	run_checked(1, gone_main, NULL);
}

static void *stopped_main(void *arg)
{
	(void)arg;
	struct rotor_redis *r = connect_n(1);
	struct rotor_redis_reply *x = NULL;
	const char *incr[] = {"INCR", "counter"};
	rotor_redis_reply_free(cmd(r, NULL, 2, "DEL", "counter"));
	redis_peer_signal(&peer, SIGSTOP);
	int64_t start = rotor_now();
	CHECK_EQ(rotor_redis_command(r, 2, incr, NULL, start + 200 * MS, &x), -ETIMEDOUT);
	int64_t took = rotor_now() - start;
	CHECK(took >= 200 * MS && took < 1000 * MS);
	CHECK(x == NULL);
	redis_peer_signal(&peer, SIGCONT);
	/* The INCR's reply is read and dropped: the GET gets its own, "1". */
	check_str(x = cmd(r, NULL, 2, "GET", "counter"), ROTOR_REDIS_STRING, "1");
	rotor_redis_reply_free(x);
	struct rotor_redis_stats st;
	rotor_redis_stats(r, &st);
	CHECK_EQ(st.dropped, 1);
	CHECK_EQ(st.resets, 0);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, a_stopped_server_is_cut_by_the_deadline_and_the_connection_stays_in_step,
     .init = start_peer, .fini = stop_peer, .timeout = 30)
{
	run_checked(1, stopped_main, NULL);
}

static void *silent_main(void *arg)
{
	(void)arg;
	/* A listener nobody accepts from: the kernel completes the handshake, nothing answers. */
	int l = rotor_tcp_listen("127.0.0.1", 0, 16, 0);
	CHECK(l >= 0);
	struct rotor_redis_config cfg = {.host = "127.0.0.1", .port = rotor_sock_port(l)};
	struct rotor_redis *r = NULL;
	CHECK_EQ(rotor_redis_connect(&cfg, rotor_now() + SEC, &r), 0);
	struct rotor_redis_reply *x = NULL;
	const char *ping[] = {"PING"};
	int64_t start = rotor_now();
	CHECK_EQ(rotor_redis_command(r, 1, ping, NULL, start + 100 * MS, &x), -ETIMEDOUT);
	CHECK(rotor_now() - start < 800 * MS);
	/* A close with one reply never coming: cut at its deadline. */
	start = rotor_now();
	CHECK_EQ(rotor_redis_close(r, start + 100 * MS), 0);
	CHECK(rotor_now() - start < 800 * MS);
	close(l);
	return NULL;
}

Test(redis, a_silent_socket_is_cut_by_the_deadline, .timeout = 30)
{
	run_checked(1, silent_main, NULL);
}

static void *late_blocker(void *arg)
{
	int err;
	struct rotor_redis_reply *x = cmd(arg, &err, 3, "BLPOP", "never", "0.3");
	CHECK_EQ(err, 0);
	CHECK(x && x->type == ROTOR_REDIS_NIL);
	rotor_redis_reply_free(x);
	return NULL;
}

static void *cut_blocker(void *arg)
{
	int err;
	cmd(arg, &err, 3, "BLPOP", "never", "5");
	CHECK_EQ(err, -ECONNABORTED);
	return NULL;
}

static void *close_main(void *arg)
{
	(void)arg;
	struct rotor_redis *r = connect_n(1);
	struct rotor_task *t;
	int err;
	/* Close waits for the reply in flight ... */
	CHECK_EQ(rotor_spawn(late_blocker, r, &t), 0);
	rotor_sleep(20 * MS);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + 3 * SEC), 0);
	rotor_join(t, NULL);
	/* ... until its deadline. */
	r = connect_n(1);
	CHECK_EQ(rotor_spawn(cut_blocker, r, &t), 0);
	rotor_sleep(20 * MS);
	int64_t start = rotor_now();
	CHECK_EQ(rotor_redis_close(r, start + 100 * MS), 0);
	CHECK(rotor_now() - start < 1000 * MS);
	rotor_join(t, NULL);
	(void)err;
	return NULL;
}

Test(redis, close_waits_for_replies_in_flight_until_its_deadline, .init = start_peer,
     .fini = stop_peer, .timeout = 30)
{
	run_checked(1, close_main, NULL);
}

/* ---- misuse ----------------------------------------------------------------------------- */

static struct rotor_redis *shared;

static void *other_worker(void *arg)
{
	(void)arg;
	struct rotor_redis_reply *x = NULL;
	const char *ping[] = {"PING"};
	CHECK_EQ(rotor_redis_command(shared, 1, ping, NULL, F, &x), -EPERM);
	CHECK_EQ(rotor_redis_close(shared, F), -EPERM);
	return NULL;
}

static void in_callback(void *arg)
{
	struct rotor_redis_reply *x = NULL;
	const char *ping[] = {"PING"};
	CHECK_EQ(rotor_redis_command(shared, 1, ping, NULL, F, &x), -EPERM);
	rotor_event_set(arg);
}

static void *misuse_main(void *arg)
{
	(void)arg;
	struct rotor_redis_config cfg = {.host = "127.0.0.1", .port = 0};
	struct rotor_redis *r = NULL;
	CHECK_EQ(rotor_redis_connect(&cfg, F, &r), -EINVAL);
	cfg.port = 70000;
	CHECK_EQ(rotor_redis_connect(&cfg, F, &r), -EINVAL);
	CHECK_EQ(rotor_redis_connect(NULL, F, &r), -EINVAL);
	cfg.port = peer.port;
	cfg.connections = -1;
	CHECK_EQ(rotor_redis_connect(&cfg, F, &r), -EINVAL);
	CHECK(r == NULL);
	/* Nobody listens on a port just freed. */
	cfg.connections = 0;
	cfg.port = redis_peer_free_port();
	CHECK_EQ(rotor_redis_connect(&cfg, rotor_now() + SEC, &r), -ECONNREFUSED);
	CHECK(r == NULL);

	shared = r = connect_n(1);
	struct rotor_redis_reply *x = NULL;
	const char *ping[] = {"PING"};
	CHECK_EQ(rotor_redis_command(NULL, 1, ping, NULL, F, &x), -EINVAL);
	CHECK_EQ(rotor_redis_command(r, 0, ping, NULL, F, &x), -EINVAL);
	CHECK_EQ(rotor_redis_command(r, 1, NULL, NULL, F, &x), -EINVAL);
	CHECK_EQ(rotor_redis_command(r, 1, ping, NULL, F, NULL), -EINVAL);
	CHECK(x == NULL);
	/* A deadline already past: -ETIMEDOUT, and the connection stays in step. */
	CHECK_EQ(rotor_redis_command(r, 1, ping, NULL, rotor_now() - 1, &x), -ETIMEDOUT);
	struct rotor_redis_reply *y = cmd(r, NULL, 2, "ECHO", "after");
	check_str(y, ROTOR_REDIS_STRING, "after");
	rotor_redis_reply_free(y);
	struct rotor_task_attr on1 = {.on = ROTOR_ON_WORKER(1)};
	struct rotor_task *t;
	CHECK_EQ(rotor_spawn_attr(&on1, other_worker, NULL, &t), 0);
	rotor_join(t, NULL);
	struct rotor_event ev;
	rotor_event_init(&ev);
	CHECK_EQ(rotor_call_soon(in_callback, &ev), 0);
	rotor_event_wait(&ev);
	struct rotor_redis_stats st;
	CHECK_EQ(rotor_redis_stats(NULL, &st), -EINVAL);
	CHECK_EQ(rotor_redis_stats(r, NULL), -EINVAL);
	CHECK_EQ(rotor_redis_close(NULL, F), -EINVAL);
	CHECK_EQ(rotor_redis_close(r, rotor_now() + SEC), 0);
	return NULL;
}

Test(redis, misuse_gets_clear_errors, .init = start_peer, .fini = stop_peer, .timeout = 30)
{
	run_checked(2, misuse_main, NULL);
	/* Off a worker. */
	struct rotor_redis_config cfg = {.host = "127.0.0.1", .port = peer.port};
	struct rotor_redis *r = NULL;
	cr_expect_eq(rotor_redis_connect(&cfg, F, &r), -EPERM);
}
