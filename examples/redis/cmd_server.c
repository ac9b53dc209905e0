/*
 * The command table, and the commands about the connection and the server rather than keys:
 * PING, ECHO, QUIT, SELECT, CLIENT, HELLO, COMMAND, CONFIG GET, INFO. What redis-cli and
 * redis-benchmark ask for, answered as Redis 7.0.15 answers.
 */
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef const struct rotor_resp_arg arg_t;
typedef struct rotor_resp_out out_t;

extern const struct cmd string_cmds[], list_cmds[], hash_cmds[], set_cmds[], zset_cmds[];
extern int port;

static int c_ping(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	(void)c;
	if (argc > 2)
		rotor_resp_put_error(o, "ERR wrong number of arguments for 'ping' command");
	else if (argc == 2)
		rotor_resp_put_bulk(o, argv[1].ptr, argv[1].len);
	else
		rotor_resp_put_simple(o, "PONG");
	return 0;
}

static int c_echo(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	(void)c;
	(void)argc;
	rotor_resp_put_bulk(o, argv[1].ptr, argv[1].len);
	return 0;
}

static int c_quit(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	(void)argc;
	(void)argv;
	c->quit = true;
	rotor_resp_put_simple(o, "OK");
	return 1;
}

static int c_select(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	(void)c;
	(void)argc;
	long long db;
	if (!arg_ll(&argv[1], &db))
		rotor_resp_put_error(o, ERR_NOTINT);
	else if (db != 0)
		rotor_resp_put_error(o, "ERR DB index is out of range");
	else
		rotor_resp_put_simple(o, "OK");
	return 0;
}

static int c_client(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	char msg[256];
	if (arg_eq(&argv[1], "setname") && argc == 3) {
		for (size_t i = 0; i < argv[2].len; i++)
			if (argv[2].ptr[i] < '!' || argv[2].ptr[i] > '~') {
				rotor_resp_put_error(o, "ERR Client names cannot contain spaces, "
				                        "newlines or special characters.");
				return 0;
			}
		size_t n = argv[2].len < sizeof(c->name) - 1 ? argv[2].len : sizeof(c->name) - 1;
		memcpy(c->name, argv[2].ptr, n);
		c->name[n] = 0;
		rotor_resp_put_simple(o, "OK");
	} else if (arg_eq(&argv[1], "getname") && argc == 2) {
		if (c->name[0])
			rotor_resp_put_bulk(o, c->name, strlen(c->name));
		else
			rotor_resp_put_nil(o);
	} else if (arg_eq(&argv[1], "id") && argc == 2) {
		rotor_resp_put_int(o, c->id);
	} else if (arg_eq(&argv[1], "setinfo") && argc == 4) {
		rotor_resp_put_simple(o, "OK");
	} else {
		snprintf(msg, sizeof(msg), "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
		         (int)(argv[1].len < 128 ? argv[1].len : 128), argv[1].ptr);
		rotor_resp_put_error(o, msg);
	}
	return 0;
}

static int c_hello(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	if (argc >= 2) {
		long long v;
		if (!arg_ll(&argv[1], &v)) {
			rotor_resp_put_error(
			    o, "ERR Protocol version is not an integer or out of range");
			return 0;
		}
		if (v != 2) {
			rotor_resp_put_error(o, "NOPROTO unsupported protocol version");
			return 0;
		}
		if (argc > 2) {
			rotor_resp_put_error(o, ERR_SYNTAX);
			return 0;
		}
	}
	rotor_resp_put_array(o, 14);
	rotor_resp_put_bulk(o, "server", 6);
	rotor_resp_put_bulk(o, "redis", 5);
	rotor_resp_put_bulk(o, "version", 7);
	rotor_resp_put_bulk(o, "7.0.15", 6);
	rotor_resp_put_bulk(o, "proto", 5);
	rotor_resp_put_int(o, 2);
	rotor_resp_put_bulk(o, "id", 2);
	rotor_resp_put_int(o, c->id);
	rotor_resp_put_bulk(o, "mode", 4);
	rotor_resp_put_bulk(o, "standalone", 10);
	rotor_resp_put_bulk(o, "role", 4);
	rotor_resp_put_bulk(o, "master", 6);
	rotor_resp_put_bulk(o, "modules", 7);
	rotor_resp_put_array(o, 0);
	return 0;
}

/* One COMMAND entry, in Redis 7.0's ten fields (flags, ACL categories, tips and key specs
 * left empty). */
static void command_entry(out_t *o, const struct cmd *k)
{
	rotor_resp_put_array(o, 10);
	rotor_resp_put_bulk(o, k->name, strlen(k->name));
	rotor_resp_put_int(o, k->arity);
	rotor_resp_put_array(o, k->write ? 1 : 0);
	if (k->write)
		rotor_resp_put_simple(o, "write");
	bool keyed = k->route == R_KEY || k->route == R_MULTI;
	rotor_resp_put_int(o, keyed ? 1 : 0);
	rotor_resp_put_int(o, k->route == R_MULTI ? -1 : keyed ? 1 : 0);
	rotor_resp_put_int(o, k->route == R_MULTI ? k->step : keyed ? 1 : 0);
	for (int i = 0; i < 4; i++)
		rotor_resp_put_array(o, 0);
}

static int c_command(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	(void)c;
	if (argc == 1) {
		rotor_resp_put_array(o, cmd_count());
		for (int i = 0; i < cmd_count(); i++)
			command_entry(o, cmd_at(i));
	} else if (arg_eq(&argv[1], "count")) {
		rotor_resp_put_int(o, cmd_count());
	} else if (arg_eq(&argv[1], "docs")) {
		rotor_resp_put_array(o, 0);
	} else if (arg_eq(&argv[1], "info")) {
		rotor_resp_put_array(o, argc - 2);
		for (int i = 2; i < argc; i++) {
			const struct cmd *k = cmd_lookup(argv[i].ptr, argv[i].len);
			if (k)
				command_entry(o, k);
			else
				rotor_resp_put_array(o, -1);
		}
	} else {
		char msg[256];
		snprintf(msg, sizeof(msg), "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
		         (int)(argv[1].len < 128 ? argv[1].len : 128), argv[1].ptr);
		rotor_resp_put_error(o, msg);
	}
	return 0;
}

static bool glob_match(const char *p, size_t pn, const char *s)
{
	if (pn == 0)
		return !*s;
	if (*p == '*') {
		for (;;) {
			if (glob_match(p + 1, pn - 1, s))
				return true;
			if (!*s++)
				return false;
		}
	}
	return *s && (*p == '?' || (*p | 32) == (*s | 32)) && glob_match(p + 1, pn - 1, s + 1);
}

static int c_config(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	(void)c;
	if (!arg_eq(&argv[1], "get") || argc < 3) {
		if (arg_eq(&argv[1], "get"))
			rotor_resp_put_error(o, "ERR wrong number of arguments for 'config|get' "
			                        "command");
		else
			rotor_resp_put_error(o, "ERR CONFIG: only GET is served here");
		return 0;
	}
	char mm[32], pt[16], mb[32];
	snprintf(mm, sizeof(mm), "%lld", maxmemory);
	snprintf(pt, sizeof(pt), "%d", port);
	snprintf(mb, sizeof(mb), "%lld", max_bulk);
	const char *kv[][2] = {{"save", ""},       {"appendonly", "no"},
	                       {"maxmemory", mm},  {"port", pt},
	                       {"databases", "1"}, {"proto-max-bulk-len", mb},
	                       {"timeout", "0"},   {"maxmemory-policy", "noeviction"}};
	int n = (int)(sizeof(kv) / sizeof(kv[0])), hits = 0;
	bool hit[sizeof(kv) / sizeof(kv[0])] = {0};
	for (int a = 2; a < argc; a++)
		for (int i = 0; i < n; i++)
			if (!hit[i] && glob_match(argv[a].ptr, argv[a].len, kv[i][0]))
				hit[i] = true, hits++;
	rotor_resp_put_array(o, hits * 2);
	for (int i = 0; i < n; i++)
		if (hit[i]) {
			rotor_resp_put_bulk(o, kv[i][0], strlen(kv[i][0]));
			rotor_resp_put_bulk(o, kv[i][1], strlen(kv[i][1]));
		}
	return 0;
}

static int c_info(struct ctx *c, int argc, arg_t *argv, out_t *o)
{
	(void)c;
	(void)argc;
	(void)argv;
	long long used = 0;
	for (int i = 0; i < nworkers; i++)
		used += atomic_load_explicit(&shards[i].used, memory_order_relaxed);
	char buf[1024];
	int n = snprintf(buf, sizeof(buf),
	                 "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"
	                 "os:Linux\r\narch_bits:64\r\nmultiplexing_api:io_uring (rotor)\r\n"
	                 "tcp_port:%d\r\nio_threads_active:0\r\nworkers:%d\r\n\r\n"
	                 "# Memory\r\nused_memory:%lld\r\nmaxmemory:%lld\r\n"
	                 "maxmemory_policy:noeviction\r\n\r\n"
	                 "# Persistence\r\nloading:0\r\naof_enabled:0\r\n\r\n"
	                 "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
	                 port, nworkers, used, maxmemory);
	rotor_resp_put_bulk(o, buf, (size_t)n);
	return 0;
}

#define CONN(n, a, fn)                                                                             \
	{                                                                                          \
		n, a, R_CONN, false, 0, M_NONE, NULL, fn                                           \
	}
static const struct cmd server_cmds[] = {
    CONN("ping", -1, c_ping),       CONN("echo", 2, c_echo),
    CONN("quit", -1, c_quit),       CONN("select", 2, c_select),
    CONN("client", -2, c_client),   CONN("hello", -1, c_hello),
    CONN("command", -1, c_command), CONN("config", -2, c_config),
    CONN("info", -1, c_info),       {NULL, 0, 0, false, 0, 0, NULL, NULL},
};

/* Every command, and a hash of their names for lookups. */
#define TAB 256
static const struct cmd *all[TAB];
static int nall;
static const struct cmd *htab[TAB];

static unsigned name_hash(const char *p, size_t n)
{
	unsigned h = 5381;
	for (size_t i = 0; i < n; i++)
		h = h * 33 + (unsigned)(p[i] | 32);
	return h & (TAB - 1);
}

static void build(void)
{
	const struct cmd *tabs[] = {server_cmds, string_cmds, list_cmds,
	                            hash_cmds,   set_cmds,    zset_cmds};
	for (size_t t = 0; t < sizeof(tabs) / sizeof(tabs[0]); t++)
		for (const struct cmd *k = tabs[t]; k->name; k++) {
			all[nall++] = k;
			unsigned h = name_hash(k->name, strlen(k->name));
			while (htab[h])
				h = (h + 1) & (TAB - 1);
			htab[h] = k;
		}
}

void cmd_init(void)
{
	if (!nall)
		build();
}

const struct cmd *cmd_lookup(const char *name, size_t n)
{
	for (unsigned h = name_hash(name, n);; h = (h + 1) & (TAB - 1)) {
		const struct cmd *k = htab[h];
		if (!k)
			return NULL;
		if (strlen(k->name) == n && !strncasecmp(k->name, name, n))
			return k;
	}
}

int cmd_count(void)
{
	return nall;
}

const struct cmd *cmd_at(int i)
{
	return all[i];
}
