/*
 * The stall detector: asyncio debug mode's slow-callback warning, done for a runtime of
 * threads. Each worker bumps run_seq when a task or callback starts running and again when
 * it stops (odd: something runs): two relaxed stores, no clock read on the hot path. A
 * monitor thread per runtime looks every stall_ms / 4 and remembers when it first saw each
 * odd value; one still there stall_ms later is a stall. It then signals the worker thread,
 * whose handler walks the frame pointers of the interrupted code into a buffer of the
 * worker's (nothing else: async-signal context), and prints task, worker, how long (at
 * least) and the symbolized backtrace itself, outside the handler. The stalled task keeps
 * running. At most one report per run, ROTOR__STALL_REPORTS_PER_SEC in all.
 */
#include "stall.h"
#include "log.h"
#include "runtime.h"
#include "task.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#define ROTOR__STALL_REPORTS_PER_SEC 5

static int stall_signal(void)
{
	return SIGRTMIN + 7;
}

/* The interrupted code's pc and frame pointer, and where its return address is if the pc
 * is the first instruction of a function (x86-64: on top of the stack; aarch64: in the
 * link register), 0 if that cannot be read. */
static void regs_of(const ucontext_t *uc, uintptr_t lo, uintptr_t hi, uintptr_t *pc, uintptr_t *fp,
                    uintptr_t *entry_ret)
{
	*entry_ret = 0;
#if defined(__x86_64__)
	*pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	*fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
	uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
	if (sp >= lo && sp + 8 <= hi && (sp & 7) == 0)
		*entry_ret = *(uintptr_t *)sp;
#elif defined(__aarch64__)
	*pc = (uintptr_t)uc->uc_mcontext.pc;
	*fp = (uintptr_t)uc->uc_mcontext.regs[29];
	*entry_ret = (uintptr_t)uc->uc_mcontext.regs[30];
#else
	(void)uc, (void)lo, (void)hi;
	*pc = *fp = 0;
#endif
}

/* frames[0] = pc, then the return addresses of the frame-pointer chain from fp, walking only
 * within [lo, hi) so that a foreign chain (code built without frame pointers) ends the walk
 * instead of faulting. Returns how many frames it stored (at most max, at least 1).
 * Async-signal-safe; reads a suspended stack as it is (not through ASan's shadow). */
__attribute__((no_sanitize_address)) static int
walk_frames(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi, void **frames, int max)
{
	int n = 0;
	frames[n++] = (void *)pc;
	while (n < max && fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
		uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
		if (!ret)
			break;
		frames[n++] = (void *)ret;
		if (next <= fp)
			break;
		fp = next;
	}
	return n;
}

static void on_stall_signal(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	struct rotor__worker *w = rotor__worker_self();
	if (!w)
		return;
	/* Pairs with the monitor's store of 0 before it sent the signal: its reads of the last
	 * report's frames happen before the writes below (TSan does not take the signal's
	 * delivery as that order). */
	if (atomic_load_explicit(&w->stall_captured, memory_order_acquire))
		return;
	/* The stack the code runs on bounds the walk. */
	uintptr_t lo = w->stall_stack_lo, hi = w->stall_stack_hi;
	uintptr_t pc, fp;
	regs_of(ctx, lo, hi, &pc, &fp, &w->stall_entry_ret);
	w->stall_nframes = walk_frames(pc, fp, lo, hi, w->stall_frames, ROTOR__STALL_FRAMES);
	atomic_store_explicit(&w->stall_captured, 1, memory_order_release);
}

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static void install_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_stall_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(stall_signal(), &sa, NULL);
}

void rotor__stall_run_begin(struct rotor__worker *w, struct rotor_task *t, void *lo, void *hi)
{
	atomic_store_explicit(&w->stall_task, t, memory_order_relaxed);
	w->stall_stack_lo = (uintptr_t)lo;
	w->stall_stack_hi = (uintptr_t)hi;
	atomic_store_explicit(&w->run_seq, ++w->run_seq_local, memory_order_release);
}

void rotor__stall_run_end(struct rotor__worker *w)
{
	atomic_store_explicit(&w->run_seq, ++w->run_seq_local, memory_order_relaxed);
}

/*
 * A signal that lands on the first instruction of a function (before it has pushed its frame
 * pointer) leaves the frame pointer at the caller's frame, so the walk skips the caller: a
 * backtrace of a loop that calls rotor_now would lose the loop itself whenever the signal
 * came at rotor_now's entry. The handler kept the return address such a function would
 * have; here, outside the handler, dladdr tells whether the pc was an entry.
 */
static void add_entry_caller(struct rotor__worker *w)
{
	Dl_info info;
	int n = w->stall_nframes;
	if (!w->stall_entry_ret || n < 1 || n >= ROTOR__STALL_FRAMES ||
	    !dladdr(w->stall_frames[0], &info) || info.dli_saddr != w->stall_frames[0])
		return;
	memmove(&w->stall_frames[2], &w->stall_frames[1], sizeof(void *) * (size_t)(n - 1));
	w->stall_frames[1] = (void *)w->stall_entry_ret;
	w->stall_nframes = n + 1;
}

static void report(struct rotor_runtime *rt, struct rotor__worker *w, int64_t held_ns)
{
	ROTOR__STAT_INC(w->stats.stalls);
	/* Ask the worker thread where it is; give it a moment to answer. */
	atomic_store(&w->stall_captured, 0);
	int have_bt = 0;
	if (pthread_kill(w->thread, stall_signal()) == 0) {
		for (int i = 0; i < 2000 && !atomic_load(&w->stall_captured); i++) {
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL);
		}
		have_bt = atomic_load_explicit(&w->stall_captured, memory_order_acquire);
	}
	/* Task memory is type-stable: if the task ended meanwhile this still reads a name. */
	struct rotor_task *t = atomic_load_explicit(&w->stall_task, memory_order_relaxed);
	char name[64];
	if (t) {
		/* The only read of another thread's task here: it races with the worker reusing
		 * the struct, as said above, and is kept out of TSan's view for that. */
		ROTOR__TSAN_IGNORE_BEGIN();
		snprintf(name, sizeof(name), "task %s", rotor__task_name(t));
		ROTOR__TSAN_IGNORE_END();
	} else
		snprintf(name, sizeof(name), "a callback");
	/* One message, the backtrace's lines included, so that a log sink keeps them together. */
	char bt[6144];
	size_t len = 0;
	bt[0] = 0;
	if (have_bt) {
		add_entry_caller(w);
		char **sym = backtrace_symbols(w->stall_frames, w->stall_nframes);
		for (int i = 0; i < w->stall_nframes && len < sizeof(bt); i++) {
			int k = snprintf(bt + len, sizeof(bt) - len, "\n%s",
			                 sym ? sym[i] : "(no symbols: out of memory)");
			if (k < 0)
				break;
			len += (size_t)k;
		}
		free(sym);
	}
	rotor__log(rt, ROTOR_LOG_WARNING,
	           "rotor: w%d: stall: %s has held worker %d for at least %lld ms without "
	           "yielding (threshold %u ms)%s%s",
	           w->id, name, w->id, (long long)(held_ns / 1000000), rt->cfg.stall_ms,
	           have_bt ? "; backtrace:" : "", bt);
}

static void *monitor_main(void *arg)
{
	struct rotor_runtime *rt = arg;
	int64_t threshold = (int64_t)rt->cfg.stall_ms * 1000000;
	int64_t period = threshold / 4 > 1000000 ? threshold / 4 : 1000000;
	int64_t window = 0;
	int in_window = 0;
	pthread_mutex_lock(&rt->stall_lock);
	while (!rt->stall_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t wake = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + period;
		ts.tv_sec = wake / 1000000000;
		ts.tv_nsec = wake % 1000000000;
		pthread_cond_timedwait(&rt->stall_cond, &rt->stall_lock, &ts);
		if (rt->stall_stop)
			break;
		int64_t now = rotor_now();
		for (int i = 0; i < rt->n; i++) {
			struct rotor__worker *w = rt->w[i];
			uint64_t seq = atomic_load_explicit(&w->run_seq, memory_order_acquire);
			if (!(seq & 1) || seq != w->stall_seen_seq) {
				/* Idle, or a new run since the last look: start its clock. */
				w->stall_seen_seq = seq;
				w->stall_seen_at = now;
				continue;
			}
			if (now - w->stall_seen_at < threshold || w->stall_reported_seq == seq)
				continue;
			w->stall_reported_seq = seq;
			if (now - window > 1000000000) {
				window = now;
				in_window = 0;
			}
			if (in_window++ >= ROTOR__STALL_REPORTS_PER_SEC)
				continue;
			pthread_mutex_unlock(&rt->stall_lock);
			report(rt, w, now - w->stall_seen_at);
			pthread_mutex_lock(&rt->stall_lock);
		}
	}
	pthread_mutex_unlock(&rt->stall_lock);
	return NULL;
}

int rotor__stall_start(struct rotor_runtime *rt)
{
	if (rt->cfg.flags & ROTOR_NO_STALL_CHECK)
		return 0;
	pthread_once(&handler_once, install_handler);
	pthread_mutex_init(&rt->stall_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->stall_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rotor__pthread_create(ROTOR__FAULT_STALL_THREAD, &rt->stall_thread, monitor_main, rt)) {
		pthread_mutex_destroy(&rt->stall_lock);
		pthread_cond_destroy(&rt->stall_cond);
		return 0; /* no detector; not fatal */
	}
	pthread_setname_np(rt->stall_thread, "rotor/stall");
	rt->stall_running = true;
	return 0;
}

void rotor__stall_stop(struct rotor_runtime *rt)
{
	if (!rt->stall_running)
		return;
	pthread_mutex_lock(&rt->stall_lock);
	rt->stall_stop = true;
	pthread_cond_signal(&rt->stall_cond);
	pthread_mutex_unlock(&rt->stall_lock);
	pthread_join(rt->stall_thread, NULL);
	pthread_mutex_destroy(&rt->stall_lock);
	pthread_cond_destroy(&rt->stall_cond);
	rt->stall_running = false;
}

/* ---- tasks that outlive a stop ---- */

static const char *state_name(uint32_t s)
{
	switch (s) {
	case ROTOR__T_NEW:
		return "not started";
	case ROTOR__T_READY:
		return "ready";
	case ROTOR__T_RUNNING:
		return "running";
	case ROTOR__T_WAITING:
		return "waiting";
	default:
		return "ending";
	}
}

/* Where a suspended task waits: a frame-pointer walk from the registers the context switch
 * saved on its stack (lib/core/arch: x86-64 r15 r14 r13 r12 rbx rbp and the resume address
 * upward; aarch64 x19..x28, x29, x30), within the stack. Returns the frames found. */
__attribute__((no_sanitize_address)) static int suspended_frames(const struct rotor_task *t,
                                                                 void **frames, int max)
{
	const struct rotor__slot *s = t->slot;
	uintptr_t lo = (uintptr_t)s->lo, hi = (uintptr_t)s + sizeof(*s), fp, pc;
#if ROTOR_ASM_SWITCH && defined(__x86_64__)
	const uintptr_t *saved = s->ctx.sp;
	fp = saved[5];
	pc = saved[6];
#elif ROTOR_ASM_SWITCH && defined(__aarch64__)
	const uintptr_t *saved = s->ctx.sp;
	fp = saved[10];
	pc = saved[11];
#elif !ROTOR_ASM_SWITCH && defined(__x86_64__)
	/* swapcontext saved the frame pointer and the resume address in the context. */
	fp = (uintptr_t)s->ctx.uc.uc_mcontext.gregs[REG_RBP];
	pc = (uintptr_t)s->ctx.uc.uc_mcontext.gregs[REG_RIP];
#elif !ROTOR_ASM_SWITCH && defined(__aarch64__)
	fp = (uintptr_t)s->ctx.uc.uc_mcontext.regs[29];
	pc = (uintptr_t)s->ctx.uc.uc_mcontext.pc;
#else
	(void)lo, (void)hi, (void)frames, (void)max, (void)fp, (void)pc;
	return 0; /* elsewhere: no walk here (tools/rotor-gdb.py shows them) */
#endif
#if defined(__x86_64__) || defined(__aarch64__)
	return walk_frames(pc, fp, lo, hi, frames, max);
#endif
}

/* Append to buf at *len, never past cap. */
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t cap, size_t *len,
                                                      const char *fmt, ...)
{
	if (*len >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (k > 0)
		*len += (size_t)k;
}

#define STOP_REPORT_TASKS  16
#define STOP_REPORT_FRAMES 12

void rotor__stall_report_stop(struct rotor__worker *w)
{
	char msg[7168];
	size_t len = 0;
	put(msg, sizeof(msg), &len,
	    "rotor: w%d: stop: %llu task(s) still alive %u ms after the stop began (they were "
	    "cancelled; each must return):",
	    w->id, (unsigned long long)w->nlive, w->rt->cfg.stop_report_ms);
	int shown = 0;
	for (struct rotor_task *t = w->live; t && shown < STOP_REPORT_TASKS; t = t->live_next) {
		shown++;
		put(msg, sizeof(msg), &len, "\n  task %s: %s", rotor__task_name(t),
		    state_name(t->state));
		void *frames[STOP_REPORT_FRAMES];
		int n = t->state == ROTOR__T_WAITING && t->slot
		            ? suspended_frames(t, frames, STOP_REPORT_FRAMES)
		            : 0;
		char **sym = n ? backtrace_symbols(frames, n) : NULL;
		for (int i = 0; i < n; i++)
			put(msg, sizeof(msg), &len, "\n    %s", sym ? sym[i] : "?");
		free(sym);
	}
	if ((uint64_t)shown < w->nlive)
		put(msg, sizeof(msg), &len, "\n  and %llu more",
		    (unsigned long long)(w->nlive - (uint64_t)shown));
	rotor__log(w->rt, ROTOR_LOG_WARNING, "%s", msg);
}
