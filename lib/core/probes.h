/*
 * USDT probes, provider "rotor", for perf, bpftrace, SystemTap and gdb. Each is one nop in
 * the code and a note in .note.stapsdt; a tracer that attaches turns it into a breakpoint.
 * Built where <sys/sdt.h> exists (Debian: systemtap-sdt-dev) and the CMake option
 * ROTOR_USDT is on (the default); elsewhere ROTOR__PROBE expands to nothing.
 *
 *   task_spawn (worker, task, id, fn, name)  a task was created for `worker`; name is NULL
 *                                            for a default "task-<id>" (formatted later)
 *   switch_in  (worker, task, id)            the scheduler resumes the task
 *   switch_out (worker, task, id)            the task yields, waits or has ended
 *   task_exit  (worker, task, id)            the task's function has returned
 *   msg_post   (sender, target, items)       one MSG_RING batch of items leaves a worker
 *   msg_recv   (receiver, sender, items)     a batch from another worker arrives
 *   inbox_recv (receiver, items)             items posted by threads that are no worker
 *                                            are taken from the inbox
 *
 * The arguments are values at hand (no string is formatted), so an unattached probe costs a
 * nop and a load or two. List them with `readelf -n librotor.so`; bench/PROFILING.md shows
 * them used from perf.
 */
#ifndef ROTOR__PROBES_H
#define ROTOR__PROBES_H

#if defined(ROTOR_USDT) && ROTOR_USDT && defined(__has_include)
#if __has_include(<sys/sdt.h>)
#define SDT_USE_VARIADIC 1 /* STAP_PROBEV */
#include <sys/sdt.h>
#define ROTOR__HAVE_USDT 1
#endif
#endif

#ifdef ROTOR__HAVE_USDT
#define ROTOR__PROBE(name, ...) STAP_PROBEV(rotor, name, __VA_ARGS__)
#else
#define ROTOR__PROBE(name, ...) ((void)0)
#endif

#endif
