/*
 * rotor/offload.h: running a blocking function on the runtime's pool of plain threads
 * while the calling task suspends and its worker goes on with other tasks.
 */
#ifndef ROTOR_PUBLIC_OFFLOAD_H
#define ROTOR_PUBLIC_OFFLOAD_H

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Offload pool -------------------------------------------------------------------- */

/*
 * rotor_offload - asyncio's run_in_executor: run fn(arg), which may block, on the runtime's
 * pool of plain threads; the calling task suspends (its worker keeps running other tasks)
 * and resumes, through its worker's ring, with *result (may be NULL) = fn's return. The
 * pool starts on first use with cfg.offload_threads threads (0: 2) and a queue of
 * 64 x threads jobs; a task that finds it full waits for room. A blocking call cannot be
 * interrupted: a task cancelled meanwhile still waits for fn to return, then gets
 * -ECANCELED (with *result set). Returns 0, -ECANCELED, -ENOMEM, -EAGAIN (threads could not
 * start), -EPERM off a task, -ESHUTDOWN (runtime stopping). Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_offload(rotor_fn fn, void *arg, void **result);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_OFFLOAD_H */
