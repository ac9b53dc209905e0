/*
 * Fault injection, SQLite's way: in a build configured with ROTOR_FAULT_INJECTION, every call
 * the library makes that can fail for want of a resource (an allocation, a mapping, a ring,
 * an io_uring_enter, a MSG_RING post, a thread, a descriptor) is a named site in the list
 * below, and a test can make the Nth hooked call fail, one at a time, to check that each
 * failure either comes back from the public call as a clear errno or is absorbed (retried, or
 * a fallback taken), with nothing leaked. Without the option every hook is the constant 0 and
 * every wrapper is the libc call it wraps: it costs nothing. docs/testing.md tells the story.
 */
#ifndef ROTOR__FAULT_H
#define ROTOR__FAULT_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* What a site calls, which decides the errno it fails with. */
enum rotor__fault_kind {
	ROTOR__FK_ALLOC,  /* malloc and friends: NULL (-ENOMEM) */
	ROTOR__FK_MMAP,   /* mmap: MAP_FAILED (-ENOMEM) */
	ROTOR__FK_MADV,   /* madvise, process_madvise, mprotect: -ENOMEM, a fallback follows */
	ROTOR__FK_RING,   /* io_uring_setup and ring probes: -ENOMEM */
	ROTOR__FK_ENTER,  /* io_uring_enter: -EINTR, -EAGAIN, -EBUSY in turn */
	ROTOR__FK_POST,   /* a MSG_RING the kernel refuses: -EOVERFLOW */
	ROTOR__FK_THREAD, /* pthread_create: EAGAIN */
	ROTOR__FK_FD,     /* pidfd_open, signalfd: -EMFILE */
};

/*
 * Every site: X(NAME, kind, "file: the call; what its failure does"). A site is one call in
 * the source (or one resource, when several frees name it); tests/test_fault.c fails when
 * no scenario reaches or fails one, unless it is listed there as unreachable, with the reason.
 */
#define ROTOR__FAULT_SITES(X)                                                                      \
	X(RT_ALLOC, ROTOR__FK_ALLOC, "runtime.c: the runtime; create fails -ENOMEM")               \
	X(RT_CPUS, ROTOR__FK_ALLOC, "runtime.c: the CPU list; create fails -ENOMEM")               \
	X(RT_WORKERS, ROTOR__FK_ALLOC, "runtime.c: the worker array; create fails -ENOMEM")        \
	X(WORKER_ALLOC, ROTOR__FK_ALLOC, "runtime.c: a worker; create fails -ENOMEM")              \
	X(WORKER_OUTBOX, ROTOR__FK_ALLOC, "runtime.c: a worker's outboxes; create fails -ENOMEM")  \
	X(WORKER_CONSUMED, ROTOR__FK_ALLOC, "runtime.c: a worker's read counters; -ENOMEM")        \
	X(WORKER_GIVEBACK, ROTOR__FK_ALLOC, "runtime.c: a worker's give-back queues; -ENOMEM")     \
	X(WORKER_THREAD, ROTOR__FK_THREAD, "runtime.c: a worker thread; create fails -EAGAIN")     \
	X(RING_SETUP, ROTOR__FK_RING, "ring.c: a worker's ring; create fails -ENOMEM")             \
	X(RING_PROBE, ROTOR__FK_ALLOC, "ring.c: the opcode probe; create fails -ENOMEM")           \
	X(RING_FD_REG, ROTOR__FK_RING, "ring.c: registering the ring fd; enters use the fd")       \
	X(ALTSTACK_MMAP, ROTOR__FK_MMAP, "stack.c: a worker's signal stack; create fails -ENOMEM") \
	X(ENTER_SQ_FULL, ROTOR__FK_ENTER, "ring.c: submit of a full SQ; retried")                  \
	X(ENTER_PRESPIN, ROTOR__FK_ENTER, "ring.c: submit before polling; the wait submits")       \
	X(ENTER_PEEK, ROTOR__FK_ENTER, "ring.c: the busy loop's enter; the next turn enters")      \
	X(ENTER_WAIT, ROTOR__FK_ENTER, "ring.c: the idle wait; the next turn enters")              \
	X(ENTER_TIMEOUT, ROTOR__FK_ENTER, "ring.c: the wait for a timer; the next turn enters")    \
	X(MSG_POST, ROTOR__FK_POST, "msg.c: a batch to another worker; refused, resent")           \
	X(MSG_EXIT, ROTOR__FK_POST, "msg.c: worker 0's exit message; refused, resent")             \
	X(MSG_RINGLESS, ROTOR__FK_POST, "msg.c: a ringless doorbell or probe; retried/fallback")   \
	X(DOORBELL_RING, ROTOR__FK_RING, "msg.c: the runtime's doorbell ring; retried")            \
	X(DOORBELL_ENTER, ROTOR__FK_ENTER, "msg.c: the doorbell ring's enter; retried")            \
	X(STACK_PROBE_MMAP, ROTOR__FK_MMAP, "stack.c: the guard probe's page; mprotect guards")    \
	X(STACK_PROBE_GUARD, ROTOR__FK_MADV, "stack.c: the guard probe; mprotect guards")          \
	X(STACK_CHUNK, ROTOR__FK_ALLOC, "stack.c: a chunk record; the task ends -ENOMEM")          \
	X(STACK_MMAP, ROTOR__FK_MMAP, "stack.c: a stack chunk; the task ends -ENOMEM")             \
	X(STACK_GUARD_PIDFD, ROTOR__FK_FD, "stack.c: pidfd for guards; one madvise per guard")     \
	X(STACK_GUARD_BATCH, ROTOR__FK_MADV, "stack.c: guards in a batch; one madvise per guard")  \
	X(STACK_GUARD_PAGE, ROTOR__FK_MADV, "stack.c: one guard; mprotect guards from then on")    \
	X(STACK_GUARD_MPROTECT, ROTOR__FK_MADV, "stack.c: an mprotect guard; that stack has none") \
	X(STACK_POPULATE_PIDFD, ROTOR__FK_FD, "stack.c: pidfd for populating; pages fault in")     \
	X(STACK_POPULATE, ROTOR__FK_MADV, "stack.c: populate stack tops; pages fault in")          \
	X(TIMER_GROW, ROTOR__FK_ALLOC, "timer.c: the timer heap; a sorted list insert instead")    \
	X(TASK_CHUNK, ROTOR__FK_ALLOC, "task.c: task structs; spawn and submit fail -ENOMEM")      \
	X(SPAWN_BLOCK, ROTOR__FK_ALLOC, "spawnreq.c: a block of spawn requests; the usual way")    \
	X(FUTURE, ROTOR__FK_ALLOC, "future.c: a future; create and submit fail -ENOMEM")           \
	X(WAIT_ANY, ROTOR__FK_ALLOC, "future.c: a wait-any token; rotor_wait_any -ENOMEM")         \
	X(CALLBACK, ROTOR__FK_ALLOC, "callback.c: a callback; call_soon/later fail -ENOMEM")       \
	X(TASK_LOCALS, ROTOR__FK_ALLOC, "local.c: task-local values; rotor_task_set -ENOMEM")      \
	X(WORKER_LOCALS, ROTOR__FK_ALLOC, "local.c: worker-local values; -ENOMEM")                 \
	X(CHAN, ROTOR__FK_ALLOC, "channel.c: a channel; rotor_chan_create -ENOMEM")                \
	X(OFFLOAD_POOL, ROTOR__FK_ALLOC, "offload.c: the pool; rotor_offload -ENOMEM")             \
	X(OFFLOAD_THREADS, ROTOR__FK_ALLOC, "offload.c: the thread array; rotor_offload -ENOMEM")  \
	X(OFFLOAD_THREAD, ROTOR__FK_THREAD, "offload.c: a pool thread; fewer, or -EAGAIN")         \
	X(STALL_THREAD, ROTOR__FK_THREAD, "stall.c: the stall monitor; runs without one")          \
	X(ACCEPTOR, ROTOR__FK_ALLOC, "io.c: an acceptor; rotor_acceptor_create -ENOMEM")           \
	X(ACCEPTOR_READY, ROTOR__FK_ALLOC, "io.c: an acceptor's fd ring; -ENOMEM")                 \
	X(SIGNALFD, ROTOR__FK_FD, "io.c: rotor_signal_wait's signalfd; -EMFILE")                   \
	X(FILES_TABLE, ROTOR__FK_RING, "io.c: a worker's registered-file table; -ENOMEM")          \
	X(BUFRING, ROTOR__FK_ALLOC, "bufring.c: a buffer ring; rotor_bufring_create -ENOMEM")      \
	X(BUFRING_LENS, ROTOR__FK_ALLOC, "bufring.c: its length array; -ENOMEM")                   \
	X(BUFRING_NEXT, ROTOR__FK_ALLOC, "bufring.c: its link array; -ENOMEM")                     \
	X(BUFRING_BASE, ROTOR__FK_MMAP, "bufring.c: its buffers; -ENOMEM")                         \
	X(BUFRING_RING, ROTOR__FK_MMAP, "bufring.c: its ring; -ENOMEM")                            \
	X(BUFRING_REGISTER, ROTOR__FK_RING, "bufring.c: registering it; -ENOMEM")                  \
	X(RECV_STREAM, ROTOR__FK_ALLOC, "bufring.c: a receive stream; -ENOMEM")                    \
	X(RECV_STREAM_BUF, ROTOR__FK_ALLOC, "bufring.c: a stream's own buffer; -ENOMEM")           \
	X(OP, ROTOR__FK_ALLOC, "op.c: a started operation; rotor_op_create -ENOMEM")               \
	X(STREAM, ROTOR__FK_ALLOC, "stream.c: a buffered stream; rotor_stream_create -ENOMEM")     \
	X(SERVER, ROTOR__FK_ALLOC, "server.c: a server; rotor_server_create -ENOMEM")              \
	X(SERVER_CONN, ROTOR__FK_ALLOC, "server.c: a connection's record; it is closed")           \
	X(GROUP, ROTOR__FK_ALLOC, "group.c: a task group; rotor_group_create -ENOMEM")             \
	X(GROUP_TASKS, ROTOR__FK_ALLOC, "group.c: its array of handles; rotor_group_spawn -ENOMEM")

enum rotor__fault_site {
#define ROTOR__FAULT_ENUM(name, kind, what) ROTOR__FAULT_##name,
	ROTOR__FAULT_SITES(ROTOR__FAULT_ENUM)
#undef ROTOR__FAULT_ENUM
	    ROTOR__FAULT_NSITES
};

/*
 * Forced failures, in every build: cold paths only (ring set-up, heap growth), for the tests
 * of the default build that check one error's message or fallback. Ring set-up fails with
 * rotor__fault_ring_setup (a negative errno) when it is non-zero; the timer heap does not grow
 * while rotor__fault_timer_grow is set; rotor__fault_no_msg_ring pretends the kernel lacks
 * IORING_OP_MSG_RING.
 */
extern _Atomic int rotor__fault_ring_setup;
extern _Atomic int rotor__fault_timer_grow;
extern _Atomic int rotor__fault_no_msg_ring;

#ifdef ROTOR_FAULT_INJECTION

/* The hook: 0, or the negative errno this call must fail with. Thread: any. */
int rotor__fault(enum rotor__fault_site site);
#define ROTOR__FAULT(name)  rotor__fault(ROTOR__FAULT_##name)
#define ROTOR__FAULT_AT(id) rotor__fault(id)
/* A call that returns 0 or -errno, at site `name`: its result, or the injected errno. */
extern _Thread_local int rotor__fault_err;
#define ROTOR__FAULT_ERR(name, call)                                                               \
	((rotor__fault_err = ROTOR__FAULT(name)) ? rotor__fault_err : (call))

void *rotor__malloc(enum rotor__fault_site site, size_t size);
void *rotor__calloc(enum rotor__fault_site site, size_t n, size_t size);
void *rotor__realloc(enum rotor__fault_site site, void *p, size_t size);
void *rotor__aligned_alloc(enum rotor__fault_site site, size_t align, size_t size);
void rotor__free(enum rotor__fault_site site, void *p);
void *rotor__mmap(enum rotor__fault_site site, size_t len, int prot, int flags);
int rotor__munmap(enum rotor__fault_site site, void *p, size_t len);
int rotor__pthread_create(enum rotor__fault_site site, pthread_t *th, void *(*fn)(void *),
                          void *arg);

/*
 * For tests (tests/test_fault.c). Arm: of the hooked calls from now on at the sites in mask
 * (bit i: site i), the nth fails, and so do the count - 1 matching calls after it; err is the
 * errno to fail with (negative), 0 for each site's own. Arming resets what
 * rotor__fault_injected() and rotor__fault_last_site() report. Thread: any.
 */
#define ROTOR__FAULT_ALL_SITES (~(uint64_t)0)
void rotor__fault_arm(long nth, uint64_t mask, long count, int err);
void rotor__fault_disarm(void);
/* Failures injected since the last arm, and the site of the latest (-1: none). */
long rotor__fault_injected(void);
int rotor__fault_last_site(void);

struct rotor__fault_count {
	uint64_t calls;    /* hooked calls seen, ever */
	uint64_t failures; /* failures injected, ever */
	int64_t live;      /* allocations or mappings made here and not yet freed */
};
void rotor__fault_count(enum rotor__fault_site site, struct rotor__fault_count *out);
const char *rotor__fault_site_name(enum rotor__fault_site site);
const char *rotor__fault_site_what(enum rotor__fault_site site);

#else /* !ROTOR_FAULT_INJECTION: the hooks are constants and the wrappers are libc */

#define ROTOR__FAULT(name)           0
#define ROTOR__FAULT_AT(id)          ((void)(id), 0)
#define ROTOR__FAULT_ERR(name, call) (call)

static inline void *rotor__malloc(enum rotor__fault_site site, size_t size)
{
	(void)site;
	return malloc(size);
}

static inline void *rotor__calloc(enum rotor__fault_site site, size_t n, size_t size)
{
	(void)site;
	return calloc(n, size);
}

static inline void *rotor__realloc(enum rotor__fault_site site, void *p, size_t size)
{
	(void)site;
	return realloc(p, size);
}

static inline void *rotor__aligned_alloc(enum rotor__fault_site site, size_t align, size_t size)
{
	(void)site;
	return aligned_alloc(align, size);
}

static inline void rotor__free(enum rotor__fault_site site, void *p)
{
	(void)site;
	free(p);
}

static inline void *rotor__mmap(enum rotor__fault_site site, size_t len, int prot, int flags)
{
	(void)site;
	return mmap(NULL, len, prot, flags, -1, 0);
}

static inline int rotor__munmap(enum rotor__fault_site site, void *p, size_t len)
{
	(void)site;
	return munmap(p, len);
}

static inline int rotor__pthread_create(enum rotor__fault_site site, pthread_t *th,
                                        void *(*fn)(void *), void *arg)
{
	(void)site;
	return pthread_create(th, NULL, fn, arg);
}

#endif

/* A system call that returns -1 and sets errno: skipped, as if it had failed, when its site
 * fails. Off, this is just the call. */
static inline bool rotor__fault_sys(int err)
{
	if (!err)
		return false;
	errno = -err;
	return true;
}
#define ROTOR__FAULT_SYS(name, call) (rotor__fault_sys(ROTOR__FAULT(name)) ? -1 : (call))

#endif
