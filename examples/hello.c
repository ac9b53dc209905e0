/*
 * The smallest useful rotor program: a TCP server that answers "hello" to every connection,
 * on every core. rotor/server.h runs a listener and an accept task per worker, and serve()
 * as a task per connection; Ctrl-C (or SIGTERM) returns from the main task, which stops
 * the runtime.
 *
 *   hello [PORT]       (default 7070; 0 picks a free port)   then: nc 127.0.0.1 7070
 */
#include <rotor.h>
#include <rotor/server.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve(struct rotor_server_conn *c, void *arg)
{
	(void)arg; /* the server closes the connection when serve returns */
	rotor_send(rotor_server_conn_fd(c), "hello\n", 6, 0, rotor_now() + 1000000000);
}

static void *run(void *server)
{
	static const int signals[] = {SIGINT, SIGTERM};
	if (rotor_server_start(server) < 0)
		return NULL;
	printf("listening on port %d\n", rotor_server_port(server));
	fflush(stdout);
	rotor_signal_wait(signals, 2, ROTOR_FOREVER);
	return server; /* returning stops the runtime: every task is cancelled */
}

int main(int argc, char **argv)
{
	struct rotor_server_config cfg = {.host = "127.0.0.1", .port = 7070, .serve = serve};
	struct rotor_server *server;
	void *ok = NULL;
	sigset_t set; /* rotor_signal_wait takes them: block them in every thread */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (argc > 1)
		cfg.port = atoi(argv[1]);
	int r = rotor_server_create(&cfg, &server);
	if (r < 0) {
		fprintf(stderr, "hello: port %d: %s\n", cfg.port, strerror(-r));
		return 1;
	}
	r = rotor_run(NULL, run, server, &ok);
	rotor_server_destroy(server);
	return r < 0 || !ok;
}
