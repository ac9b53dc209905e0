/*
 * rotor: a C11 runtime for Linux services. One worker thread per core, each owning one
 * io_uring ring; coroutines on their own stacks; tasks and wake-ups posted between cores
 * with IORING_OP_MSG_RING.
 *
 * Every call returns 0 (or a count) on success and a negative errno on failure; errno is
 * neither read nor set. Times are int64_t nanoseconds on CLOCK_MONOTONIC; deadlines are
 * absolute (ROTOR_FOREVER for none). Each call says which threads may make it ("Thread:")
 * and whether it may suspend the calling coroutine ("Suspends:").
 *
 * This header includes every module; each also compiles on its own:
 *   rotor/base.h     export macro, version, rotor_fn, worker selectors, ROTOR_FOREVER, rotor_now
 *   rotor/runtime.h  configuration, rotor_run, runtime create/stop/destroy, worker stats
 *   rotor/task.h     tasks (spawn, join, wait_any, gather, cancel, shields, sleep), callbacks,
 *                    timers
 *   rotor/group.h    task groups: structured concurrency
 *   rotor/future.h   rotor_submit, rotor_call, futures
 *   rotor/sync.h     mutex, condition variable, semaphore, event, wait group
 *   rotor/chan.h     channels and rotor_chan_select
 *   rotor/offload.h  rotor_offload: blocking calls on a thread pool
 *   rotor/local.h    task-local and worker-local storage
 *   rotor/session.h  per-worker sessions opened and closed by tasks
 *   rotor/io.h       files, sockets, TCP helpers, poll, splice, signals, registered
 *                    descriptors, multishot accept, receive streams, started sends
 *   rotor/resolve.h  name resolution on the worker's ring, rotor_tcp_dial/listen
 *
 * The service modules are included one by one, as a program needs them: rotor/server.h (a
 * listener per worker), stream.h (buffered streams), tls.h (OpenSSL), http.h (HTTP/1.1
 * server), http_client.h, resp.h (RESP2 parser and writers), redis.h (Redis client).
 */
#ifndef ROTOR_H
#define ROTOR_H

#include <rotor/base.h>
#include <rotor/runtime.h>
#include <rotor/task.h>
#include <rotor/group.h>
#include <rotor/future.h>
#include <rotor/sync.h>
#include <rotor/chan.h>
#include <rotor/offload.h>
#include <rotor/local.h>
#include <rotor/session.h>
#include <rotor/io.h>
#include <rotor/resolve.h>

#endif /* ROTOR_H */
