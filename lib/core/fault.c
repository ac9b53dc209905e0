/*
 * Fault injection (built with ROTOR_FAULT_INJECTION only): the countdown that picks which
 * hooked call fails, the per-site counters, and the allocation and mapping wrappers that
 * count what is live so that a test can check nothing leaked. Every counter is an atomic:
 * hooked calls come from workers, pool threads and the caller's threads at once.
 */
#include "internal.h"

#include <stdatomic.h>

static const struct {
	const char *name;
	enum rotor__fault_kind kind;
	const char *what;
} sites[] = {
#define ROTOR__FAULT_ROW(name, kind, what) {#name, kind, what},
    ROTOR__FAULT_SITES(ROTOR__FAULT_ROW)
#undef ROTOR__FAULT_ROW
};
_Static_assert(ROTOR__FAULT_NSITES <= 64, "the arming mask has one bit per site");

static struct {
	_Atomic uint64_t calls;
	_Atomic uint64_t failures;
	_Atomic int64_t live;
} counts[ROTOR__FAULT_NSITES];

/* Armed state. The arming thread stores everything, then `armed` with release; a hook that
 * sees `armed` set (acquire) sees the rest. */
static _Atomic int armed;
static _Atomic uint64_t mask;
static _Atomic long countdown; /* matching calls until the first failure, this one included */
static _Atomic long remaining; /* failures still to inject */
static _Atomic int forced_err;
static _Atomic long injected;
static _Atomic int last_site = -1;
static _Atomic unsigned rotation;

_Thread_local int rotor__fault_err;

static int site_errno(enum rotor__fault_site s)
{
	/* The transient errors io_uring_enter really returns, in turn: a signal, no memory for
	 * a request, and (before 5.19) a CQ overflow backlog. */
	static const int enter[] = {-EINTR, -EAGAIN, -EBUSY};
	switch (sites[s].kind) {
	case ROTOR__FK_ENTER:
		return enter[atomic_fetch_add(&rotation, 1) % 3];
	case ROTOR__FK_POST:
		return -EOVERFLOW;
	case ROTOR__FK_THREAD:
		return -EAGAIN;
	case ROTOR__FK_FD:
		return -EMFILE;
	default:
		return -ENOMEM;
	}
}

int rotor__fault(enum rotor__fault_site s)
{
	atomic_fetch_add_explicit(&counts[s].calls, 1, memory_order_relaxed);
	if (!atomic_load_explicit(&armed, memory_order_acquire))
		return 0;
	if (!((atomic_load_explicit(&mask, memory_order_relaxed) >> s) & 1))
		return 0;
	if (atomic_fetch_sub(&countdown, 1) > 1)
		return 0;
	if (atomic_fetch_sub(&remaining, 1) <= 0)
		return 0;
	atomic_fetch_add(&counts[s].failures, 1);
	atomic_store(&last_site, (int)s);
	atomic_fetch_add(&injected, 1);
	int err = atomic_load_explicit(&forced_err, memory_order_relaxed);
	return err ? err : site_errno(s);
}

void rotor__fault_arm(long nth, uint64_t m, long count, int err)
{
	atomic_store(&armed, 0);
	atomic_store(&mask, m);
	atomic_store(&countdown, nth);
	atomic_store(&remaining, count);
	atomic_store(&forced_err, err);
	atomic_store(&injected, 0);
	atomic_store(&last_site, -1);
	atomic_store_explicit(&armed, 1, memory_order_release);
}

void rotor__fault_disarm(void)
{
	atomic_store(&armed, 0);
}

long rotor__fault_injected(void)
{
	return atomic_load(&injected);
}

int rotor__fault_last_site(void)
{
	return atomic_load(&last_site);
}

void rotor__fault_count(enum rotor__fault_site s, struct rotor__fault_count *out)
{
	out->calls = atomic_load(&counts[s].calls);
	out->failures = atomic_load(&counts[s].failures);
	out->live = atomic_load(&counts[s].live);
}

const char *rotor__fault_site_name(enum rotor__fault_site s)
{
	return s < ROTOR__FAULT_NSITES ? sites[s].name : "?";
}

const char *rotor__fault_site_what(enum rotor__fault_site s)
{
	return s < ROTOR__FAULT_NSITES ? sites[s].what : "?";
}

/* ---- wrappers: the call, unless the site fails; what succeeds is counted live ---- */

static void *counted(enum rotor__fault_site s, void *p)
{
	if (p)
		atomic_fetch_add_explicit(&counts[s].live, 1, memory_order_relaxed);
	return p;
}

void *rotor__malloc(enum rotor__fault_site s, size_t size)
{
	return rotor__fault(s) ? NULL : counted(s, malloc(size));
}

void *rotor__calloc(enum rotor__fault_site s, size_t n, size_t size)
{
	return rotor__fault(s) ? NULL : counted(s, calloc(n, size));
}

void *rotor__aligned_alloc(enum rotor__fault_site s, size_t align, size_t size)
{
	return rotor__fault(s) ? NULL : counted(s, aligned_alloc(align, size));
}

void *rotor__realloc(enum rotor__fault_site s, void *p, size_t size)
{
	if (rotor__fault(s))
		return NULL;
	void *q = realloc(p, size);
	return p ? q : counted(s, q);
}

void rotor__free(enum rotor__fault_site s, void *p)
{
	if (p)
		atomic_fetch_sub_explicit(&counts[s].live, 1, memory_order_relaxed);
	free(p);
}

void *rotor__mmap(enum rotor__fault_site s, size_t len, int prot, int flags)
{
	if (rotor__fault(s)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = mmap(NULL, len, prot, flags, -1, 0);
	if (p != MAP_FAILED)
		atomic_fetch_add_explicit(&counts[s].live, 1, memory_order_relaxed);
	return p;
}

int rotor__munmap(enum rotor__fault_site s, void *p, size_t len)
{
	atomic_fetch_sub_explicit(&counts[s].live, 1, memory_order_relaxed);
	return munmap(p, len);
}

int rotor__pthread_create(enum rotor__fault_site s, pthread_t *th, void *(*fn)(void *), void *arg)
{
	int err = rotor__fault(s);
	return err ? -err : pthread_create(th, NULL, fn, arg);
}
