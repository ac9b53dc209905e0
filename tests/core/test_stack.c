/*
 * Stacks: guard pages turn an overflow into a report naming the task; deep but legal
 * recursion works; the pool reuses stacks; a stack below the minimum is refused.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rotor.h>

static volatile char sink;

static int recurse(int depth)
{
	volatile char frame[1024];
	frame[0] = (char)depth;
	if (depth == 0)
		return frame[0];
	int r = recurse(depth - 1) + frame[0];
	sink = frame[0];
	return r;
}

static void *deep(void *arg)
{
	return (void *)(intptr_t)recurse((int)(intptr_t)arg);
}

static void *spawn_deep(void *arg)
{
	struct rotor_task_attr a = {.on = ROTOR_ON_SELF, .name = "deep-recursion"};
	struct rotor_task *t;
	void *res;
	if (rotor_spawn_attr(&a, deep, arg, &t) < 0 || rotor_join(t, &res) < 0)
		return (void *)-1;
	return res;
}

/* Run spawn_deep(depth) with the given stack in a child; return its wait status and
 * what it wrote to stderr. */
static int run_child(size_t stack, unsigned flags, int depth, char *err, size_t len)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		struct rotor_config cfg = {.workers = 1, .stack_size = stack, .flags = flags};
		void *res = NULL;
		int r = rotor_run(&cfg, spawn_deep, (void *)(intptr_t)depth, &res);
		_exit(r == 0 && res != (void *)-1 ? 0 : 3);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t k;
	while (n + 1 < len && (k = read(fds[0], err + n, len - 1 - n)) > 0)
		n += (size_t)k;
	err[n] = 0;
	close(fds[0]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

Test(stack, overflow_is_reported_with_the_task_name, .timeout = 30)
{
	char err[1024];
	/* 1 KiB frames, 1000 deep: about 1 MiB, far beyond a 64 KiB stack. */
	int status = run_child(64 * 1024, 0, 1000, err, sizeof(err));
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	          "child should abort, status %#x, stderr: %s", status, err);
	cr_assert(strstr(err, "rotor: stack overflow in task deep-recursion (stack 65536 bytes)"),
	          "stderr: %s", err);
}

Test(stack, no_segv_handler_leaves_an_overflow_to_the_default_action, .timeout = 30)
{
	char err[1024];
	int status = run_child(64 * 1024, ROTOR_NO_SEGV_HANDLER, 1000, err, sizeof(err));
	/* SIGSEGV's default action, or under ASan its own report (ASan handles SIGSEGV). */
	cr_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
	          "child should die, status %#x, stderr: %s", status, err);
	cr_assert_null(strstr(err, "rotor: stack overflow"), "stderr: %s", err);
}

Test(stack, deep_recursion_within_the_stack_works, .timeout = 30)
{
	char err[1024];
	/* About 200 KiB of frames on a 1 MiB stack. */
	int status = run_child(1024 * 1024, 0, 200, err, sizeof(err));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x, stderr: %s", status,
	          err);
}

static void *nop(void *arg)
{
	return arg;
}

static void *spawn_many_in_turn(void *arg)
{
	(void)arg;
	struct rotor_worker_stats s;
	for (int i = 0; i < 1000; i++) {
		struct rotor_task *t;
		if (rotor_spawn(nop, NULL, &t) < 0 || rotor_join(t, NULL) < 0)
			return (void *)1;
	}
	rotor_worker_stats(rotor_runtime_current(), 0, &s);
	/* One after another: the main task's stack and one reused slot. */
	return (void *)(uintptr_t)s.stacks_total;
}

Test(stack, stacks_are_reused_from_the_pool, .timeout = 30)
{
	struct rotor_config cfg = {.workers = 1};
	void *res = NULL;
	cr_assert_eq(rotor_run(&cfg, spawn_many_in_turn, NULL, &res), 0);
	cr_assert_eq((uintptr_t)res, 2, "stacks carved: %lu", (unsigned long)(uintptr_t)res);
}

Test(stack, stack_below_minimum_is_einval, .timeout = 10)
{
	struct rotor_config cfg = {.workers = 1, .stack_size = ROTOR_STACK_MIN - 1};
	struct rotor_runtime *rt = NULL;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), -EINVAL);
	cr_assert_null(rt);
	cfg.stack_size = ROTOR_STACK_MIN;
	cr_assert_eq(rotor_runtime_create(&cfg, &rt), 0);
	cr_assert_eq(rotor_runtime_destroy(rt), 0);
}
