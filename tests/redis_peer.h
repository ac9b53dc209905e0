/*
 * A real redis-server for tests (the client's, seed 003's): started on a free loopback port
 * with no persistence, waited for until it accepts, stopped by its PID. Its counters are read
 * with redis-cli. Every call runs on the test's own thread, never on a worker.
 */
#ifndef ROTOR_TESTS_REDIS_PEER_H
#define ROTOR_TESTS_REDIS_PEER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct redis_peer {
	pid_t pid;
	int port;
};

/* Whether redis-server (and redis-cli) can be run here. */
__attribute__((unused)) static int redis_peer_available(void)
{
	return system("command -v redis-server >/dev/null 2>&1 && "
	              "command -v redis-cli >/dev/null 2>&1") == 0;
}

static int redis_peer_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int redis_peer_accepts(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Start one; 0, or -1 when none would start (the reason is on stderr). */
__attribute__((unused)) static int redis_peer_start(struct redis_peer *p)
{
	extern char **environ;
	for (int attempt = 0; attempt < 5; attempt++) {
		char port[16];
		p->port = redis_peer_free_port();
		snprintf(port, sizeof(port), "%d", p->port);
		/* `timeout` bounds a server a crashed test leaves behind. */
		char *argv[] = {"timeout",      "300",        "redis-server",
		                "--port",       port,         "--bind",
		                "127.0.0.1",    "--save",     "",
		                "--appendonly", "no",         "--dir",
		                "/tmp",         "--loglevel", "warning",
		                "--maxclients", "10000",      NULL};
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		int rc = posix_spawnp(&p->pid, "timeout", &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		if (rc != 0)
			return -1;
		for (int i = 0; i < 500; i++) {
			if (redis_peer_accepts(p->port))
				return 0;
			if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
				break;
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	fprintf(stderr, "redis-server would not start\n");
	return -1;
}

/* The redis-server under `timeout` (its one child): signals for it (SIGSTOP, SIGCONT) go
 * there. */
__attribute__((unused)) static void redis_peer_signal(struct redis_peer *p, int sig)
{
	char path[64];
	int child = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)p->pid, (int)p->pid);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &child) != 1)
			child = 0;
		fclose(f);
	}
	if (child > 0)
		kill(child, sig);
	else
		fprintf(stderr, "no redis-server under pid %d\n", (int)p->pid);
}

__attribute__((unused)) static void redis_peer_stop(struct redis_peer *p)
{
	if (p->pid <= 0)
		return;
	redis_peer_signal(p, SIGCONT);
	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}

/* The number after "field:" in `redis-cli INFO section`, or -1. */
__attribute__((unused)) static long long redis_peer_info(struct redis_peer *p, const char *section,
                                                         const char *field)
{
	char cmd[128], line[512];
	long long v = -1;
	size_t n = strlen(field);
	snprintf(cmd, sizeof(cmd), "redis-cli -p %d INFO %s", p->port, section);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = atoll(line + n + 1);
	pclose(f);
	return v;
}

#endif
