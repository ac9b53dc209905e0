/*
 * Stack arenas and pools. A chunk is one MAP_NORESERVE mapping of chunk_slots slots; only
 * pages a coroutine touches become resident. Guard pages are installed for a whole chunk
 * at once with MADV_GUARD_INSTALL (one process_madvise call per 1024 guards) where the
 * kernel has it, else by mprotect while the process's map budget (vm.max_map_count) lasts.
 */
#include "stack.h"
#include "log.h"
#include "compat.h"
#include "sanitize.h"
#include "task.h"
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ROTOR_HAVE_VALGRIND 1
#endif
#endif

#ifdef ROTOR__TSAN
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
#endif

#define PAGE 4096u

struct rotor__stack_chunk {
	struct rotor__stack_chunk *next;
	char *base;
	size_t len;
	size_t nslots;
	size_t carved;
	size_t mprotected;
};

/* Top pages faulted in per process_madvise call when slots are carved. */
#define POPULATE_BATCH 64

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool have_guard_madvise;
static long map_budget; /* mprotect guards we allow ourselves, process-wide */
static _Atomic long mprotect_guards;

static void probe(void)
{
	void *m = rotor__mmap(ROTOR__FAULT_STACK_PROBE_MMAP, 2 * PAGE, PROT_READ | PROT_WRITE,
	                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	if (m != MAP_FAILED) {
		have_guard_madvise =
		    ROTOR__FAULT_SYS(STACK_PROBE_GUARD, madvise(m, PAGE, MADV_GUARD_INSTALL)) == 0;
		rotor__munmap(ROTOR__FAULT_STACK_PROBE_MMAP, m, 2 * PAGE);
	}
	long max_maps = 65530;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	if (f) {
		if (fscanf(f, "%ld", &max_maps) != 1)
			max_maps = 65530;
		fclose(f);
	}
	/* Each mprotect guard splits a mapping in two; leave half for the program. */
	map_budget = max_maps / 4;
}

int rotor__stack_size(size_t requested, size_t *out)
{
	size_t s = requested ? requested : 64 * 1024;
	if (s < ROTOR_STACK_MIN || s > ((size_t)1 << 32))
		return -EINVAL;
	*out = (s + PAGE - 1) & ~(size_t)(PAGE - 1);
	return 0;
}

int rotor__stack_pool_init(struct rotor__stack_pool *p, size_t stack_size, unsigned cfg_flags,
                           void (*entry)(void))
{
	pthread_once(&probe_once, probe);
	memset(p, 0, sizeof(*p));
	int r = rotor__stack_size(stack_size, &p->stack_size);
	if (r < 0)
		return r;
	p->slot_size = p->stack_size + PAGE;
	/* Chunks of about 64 MiB of address space, at least 16 slots. */
	p->chunk_slots = ((size_t)64 << 20) / p->slot_size;
	if (p->chunk_slots < 16)
		p->chunk_slots = 16;
	if (p->chunk_slots > 1024)
		p->chunk_slots = 1024;
	p->guard_mode = (have_guard_madvise && !(cfg_flags & ROTOR_NO_GUARD_MADVISE))
	                    ? ROTOR__GUARD_MADVISE
	                    : ROTOR__GUARD_MPROTECT;
	p->entry = entry;
	p->pidfd = -1;
	return 0;
}

/* Install every guard page of a chunk: one process_madvise for the lot, else one madvise
 * per guard. Returns 0 or -errno. */
static int guard_chunk_madvise(struct rotor__stack_chunk *c, size_t slot_size)
{
	static const size_t max_iov = 1024;
	struct iovec iov[1024];
	int pidfd = (int)ROTOR__FAULT_SYS(STACK_GUARD_PIDFD, syscall(SYS_pidfd_open, getpid(), 0));
	size_t i = 0;
	while (pidfd >= 0 && i < c->nslots) {
		size_t k = c->nslots - i < max_iov ? c->nslots - i : max_iov;
		for (size_t j = 0; j < k; j++) {
			iov[j].iov_base = c->base + (i + j) * slot_size;
			iov[j].iov_len = PAGE;
		}
		long r =
		    ROTOR__FAULT_SYS(STACK_GUARD_BATCH, syscall(SYS_process_madvise, pidfd, iov, k,
		                                                MADV_GUARD_INSTALL, 0));
		if (r != (long)(k * PAGE))
			break;
		i += k;
	}
	if (pidfd >= 0)
		close(pidfd);
	for (; i < c->nslots; i++)
		if (ROTOR__FAULT_SYS(STACK_GUARD_PAGE, madvise(c->base + i * slot_size, PAGE,
		                                               MADV_GUARD_INSTALL)) != 0)
			return -errno;
	return 0;
}

static struct rotor__stack_chunk *chunk_new(struct rotor__stack_pool *p)
{
	struct rotor__stack_chunk *c = rotor__calloc(ROTOR__FAULT_STACK_CHUNK, 1, sizeof(*c));
	if (!c)
		return NULL;
	c->nslots = p->chunk_slots;
	c->len = c->nslots * p->slot_size;
	void *m = rotor__mmap(ROTOR__FAULT_STACK_MMAP, c->len, PROT_READ | PROT_WRITE,
	                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK);
	if (m == MAP_FAILED) {
		rotor__free(ROTOR__FAULT_STACK_CHUNK, c);
		return NULL;
	}
	c->base = m;
	if (p->guard_mode == ROTOR__GUARD_MADVISE && guard_chunk_madvise(c, p->slot_size) < 0)
		p->guard_mode = ROTOR__GUARD_MPROTECT;
	c->next = p->chunks;
	p->chunks = c;
	return c;
}

static void guard_slot_mprotect(struct rotor__stack_chunk *c, char *guard)
{
	static _Atomic int warned;
	if (atomic_fetch_add(&mprotect_guards, 1) >= map_budget) {
		atomic_fetch_sub(&mprotect_guards, 1);
		if (!atomic_exchange(&warned, 1))
			rotor__log(rotor__worker_self() ? rotor__worker_self()->rt : NULL,
			           ROTOR_LOG_WARNING,
			           "rotor: stack guard budget (vm.max_map_count) used up; "
			           "further stacks have no guard page (Linux 6.13 lifts "
			           "this with MADV_GUARD_INSTALL)");
		return;
	}
	if (ROTOR__FAULT_SYS(STACK_GUARD_MPROTECT, mprotect(guard, PAGE, PROT_NONE)) == 0)
		c->mprotected++;
	else
		atomic_fetch_sub(&mprotect_guards, 1);
}

/*
 * Fault in the top page of the next slots in one process_madvise(MADV_POPULATE_WRITE): a
 * fresh stack's first page costs a page fault when the slot is set up, and on a VM a trap
 * per page costs more than the kernel's own loop (measured here: 2.4 us per touched page
 * against 1.6 us populated 1024 at a time). Best effort: any failure just leaves the
 * pages to fault in on first touch.
 */
static void populate_ahead(struct rotor__stack_pool *p, struct rotor__stack_chunk *c)
{
	if (p->pidfd == -2)
		return;
	if (p->pidfd < 0) {
		p->pidfd = (int)ROTOR__FAULT_SYS(STACK_POPULATE_PIDFD,
		                                 syscall(SYS_pidfd_open, getpid(), 0));
		if (p->pidfd < 0) {
			p->pidfd = -2;
			return;
		}
	}
	struct iovec iov[POPULATE_BATCH];
	size_t k = c->nslots - c->carved < POPULATE_BATCH ? c->nslots - c->carved : POPULATE_BATCH;
	for (size_t j = 0; j < k; j++) {
		iov[j].iov_base = c->base + (c->carved + j + 1) * p->slot_size - PAGE;
		iov[j].iov_len = PAGE;
	}
	if (ROTOR__FAULT_SYS(STACK_POPULATE, syscall(SYS_process_madvise, p->pidfd, iov, k,
	                                             MADV_POPULATE_WRITE, 0)) < 0) {
		close(p->pidfd);
		p->pidfd = -2;
	}
}

static struct rotor__slot *slot_carve(struct rotor__stack_pool *p)
{
	struct rotor__stack_chunk *c = p->chunks;
	if (!c || c->carved == c->nslots) {
		c = chunk_new(p);
		if (!c)
			return NULL;
	}
	/* Batches start once a pool has outgrown its first few stacks: a program with a
	 * handful of tasks does not pay 64 pages for them. */
	if (c->carved % POPULATE_BATCH == 0 && p->total >= POPULATE_BATCH)
		populate_ahead(p, c);
	char *guard = c->base + c->carved * p->slot_size;
	c->carved++;
	if (p->guard_mode == ROTOR__GUARD_MPROTECT)
		guard_slot_mprotect(c, guard);
	char *lo = guard + PAGE;
	char *end = lo + p->stack_size;
	struct rotor__slot *s = (struct rotor__slot *)(end - sizeof(struct rotor__slot));
	s = (struct rotor__slot *)((uintptr_t)s & ~(uintptr_t)63);
	memset(s, 0, sizeof(*s));
	s->index = p->next_index++;
	/* Colour: vary the top by multiples of 64 bytes (0..960) so that the hot frames of
	 * different stacks fall in different cache sets. */
	size_t colour = ((size_t)(s->index * 7u) % 16u) * 64u;
	s->lo = lo;
	s->top = (char *)s - colour;
	rotor__ctx_init(&s->ctx, lo, s->top, p->entry);
#ifdef ROTOR__TSAN
	s->tsan_fiber = __tsan_create_fiber(0);
#endif
#ifdef ROTOR_HAVE_VALGRIND
	s->vg_id = VALGRIND_STACK_REGISTER(lo, end);
#endif
	p->total++;
	return s;
}

struct rotor__slot *rotor__stack_get(struct rotor__stack_pool *p)
{
	struct rotor__slot *s = p->free;
	if (s)
		p->free = s->next_free;
	else if (!(s = slot_carve(p)))
		return NULL;
	p->in_use++;
	return s;
}

void rotor__stack_put(struct rotor__stack_pool *p, struct rotor__slot *s)
{
	s->next_free = p->free;
	p->free = s;
	p->in_use--;
}

void rotor__stack_pool_fini(struct rotor__stack_pool *p)
{
	struct rotor__stack_chunk *c = p->chunks;
	while (c) {
		struct rotor__stack_chunk *next = c->next;
		for (size_t i = 0; i < c->carved; i++) {
			char *end = c->base + i * p->slot_size + p->slot_size;
			struct rotor__slot *s =
			    (struct rotor__slot *)((uintptr_t)(end - sizeof(struct rotor__slot)) &
			                           ~(uintptr_t)63);
#ifdef ROTOR__TSAN
			__tsan_destroy_fiber(s->tsan_fiber);
#endif
#ifdef ROTOR_HAVE_VALGRIND
			VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
			(void)s;
		}
		atomic_fetch_sub(&mprotect_guards, (long)c->mprotected);
		rotor__munmap(ROTOR__FAULT_STACK_MMAP, c->base, c->len);
		rotor__free(ROTOR__FAULT_STACK_CHUNK, c);
		c = next;
	}
	p->chunks = NULL;
	p->free = NULL;
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}

int rotor__stack_guard_hit(const struct rotor__stack_pool *p, const void *addr)
{
	const char *a = addr;
	for (const struct rotor__stack_chunk *c = p->chunks; c; c = c->next) {
		if (a < c->base || a >= c->base + c->len)
			continue;
		size_t off = (size_t)(a - c->base) % p->slot_size;
		return off < PAGE;
	}
	return 0;
}

/* ---- Stack overflow reporting ---- */

static struct sigaction old_segv;
static pthread_once_t segv_once = PTHREAD_ONCE_INIT;

static void put_str(char *buf, size_t *n, size_t cap, const char *s)
{
	while (*s && *n + 1 < cap)
		buf[(*n)++] = *s++;
}

static void put_num(char *buf, size_t *n, size_t cap, unsigned long v)
{
	char tmp[24];
	int k = 0;
	do
		tmp[k++] = (char)('0' + v % 10);
	while ((v /= 10) && k < 24);
	while (k && *n + 1 < cap)
		buf[(*n)++] = tmp[--k];
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
	struct rotor__worker *w = rotor__worker_self();
	if (w && rotor__stack_guard_hit(&w->stacks, si->si_addr)) {
		char msg[256];
		size_t n = 0;
		put_str(msg, &n, sizeof(msg), "rotor: stack overflow in task ");
		put_str(msg, &n, sizeof(msg), w->current ? rotor__task_name(w->current) : "?");
		put_str(msg, &n, sizeof(msg), " (stack ");
		put_num(msg, &n, sizeof(msg), (unsigned long)w->stacks.stack_size);
		put_str(msg, &n, sizeof(msg), " bytes) on worker ");
		put_num(msg, &n, sizeof(msg), (unsigned long)w->id);
		put_str(msg, &n, sizeof(msg), "\n");
		ssize_t wr = write(2, msg, n);
		(void)wr;
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	/* Not ours: hand over to whoever was there before, or die the default way. */
	if (old_segv.sa_flags & SA_SIGINFO && old_segv.sa_sigaction) {
		old_segv.sa_sigaction(sig, si, uctx);
		return;
	}
	if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN &&
	    old_segv.sa_handler) {
		old_segv.sa_handler(sig);
		return;
	}
	signal(SIGSEGV, SIG_DFL);
}

static void install_segv(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
}

int rotor__overflow_thread_init(void **altstack)
{
	pthread_once(&segv_once, install_segv);
	size_t sz = 64 * 1024;
	void *m = rotor__mmap(ROTOR__FAULT_ALTSTACK_MMAP, sz, PROT_READ | PROT_WRITE,
	                      MAP_PRIVATE | MAP_ANONYMOUS);
	if (m == MAP_FAILED)
		return -ENOMEM;
	stack_t ss = {.ss_sp = m, .ss_size = sz, .ss_flags = 0};
	if (sigaltstack(&ss, NULL) != 0) {
		int err = -errno;
		rotor__munmap(ROTOR__FAULT_ALTSTACK_MMAP, m, sz);
		return err;
	}
	*altstack = m;
	return 0;
}

void rotor__overflow_thread_fini(void *altstack)
{
	if (!altstack)
		return;
	stack_t ss = {.ss_flags = SS_DISABLE};
	sigaltstack(&ss, NULL);
	rotor__munmap(ROTOR__FAULT_ALTSTACK_MMAP, altstack, 64 * 1024);
}
