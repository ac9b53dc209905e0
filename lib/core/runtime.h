/*
 * The runtime: its workers, its life cycle (RUNNING -> STOPPING -> STOPPED), and the
 * termination detection that ends STOPPING once no task lives and no message travels.
 */
#ifndef ROTOR__RUNTIME_H
#define ROTOR__RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>

#include "worker.h"

struct rotor_runtime {
	struct rotor_config cfg;
	int n;
	struct rotor__worker **w;
	_Atomic int state;
	_Atomic int foreign_active; /* non-worker threads inside a post to this runtime */
	_Atomic int stop_requested;
	_Atomic int64_t drain_deadline; /* rotor_runtime_drain: caps shields; FOREVER: none */
	bool caller_w0;                 /* rotor_run: worker 0 is the caller's thread */
	bool ringless;                  /* IORING_REGISTER_SEND_MSG_RING works */

	pthread_mutex_t lock; /* the start-up gate, and ext */
	pthread_cond_t cond;
	int ready;
	int start_err;
	int gate; /* 0: wait, 1: run, -1: abort */

	/* Stop coordinator state, worker 0 only. */
	bool wave_ok;
	uint64_t wave_sent;
	uint64_t wave_recv;

	pthread_mutex_t doorbell_lock; /* the doorbell ring, when the kernel has no ringless */
	struct io_uring doorbell_ring;
	bool doorbell_ring_ready;

	pthread_mutex_t pool_lock; /* task chunks and the non-worker task cache */
	struct rotor__queue foreign_free;
	struct rotor__item *foreign_spare; /* taken from foreign_remote, not yet in foreign_free */
	/* Non-worker structs freed by workers (a chain a loop turn, one CAS) and by other
	 * threads: no lock on the release side. */
	_Atomic(struct rotor__item *) foreign_remote;
	void *task_chunks;

	struct rotor__ext *ext[ROTOR__EXT_COUNT]; /* the layers' state (api/core.h), under lock */

	pthread_t stall_thread; /* the stall detector's monitor (stall.c) */
	pthread_mutex_t stall_lock;
	pthread_cond_t stall_cond;
	bool stall_running;
	bool stall_stop;

	int *cpus;
	int ncpus;
	_Atomic unsigned rr;
	void *main_result;
	struct rotor_runtime *dbg_next; /* the rotor__runtimes list */
};

/* Every runtime between create and destroy, for debuggers (tools/rotor-gdb.py). */
extern struct rotor_runtime *rotor__runtimes;

/* Begin stopping (idempotent). Thread: any. */
void rotor__runtime_request_stop(struct rotor_runtime *rt);
/* Worker 0, while stopping: 1 when the whole runtime is quiescent. */
int rotor__runtime_terminated(struct rotor_runtime *rt);
/* Worker index for ROTOR_WORKER_ANY: the least loaded. */
int rotor__pick_worker(struct rotor_runtime *rt);
/* Flags from rotor_config plus the ROTOR_DISABLE environment variable. */
unsigned rotor__env_flags(void);

#endif
