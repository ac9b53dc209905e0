/*
 * rotor/session.h: per-worker objects that do I/O to be made and to be closed (a client's
 * connections, the seed-003 session). rotor_worker_local's create must not suspend and its
 * destructor runs outside any task; a session's object is opened by a task on first use
 * (the tasks that need it meanwhile wait for that one opening), replaced when a task finds
 * it broken, and closed by a task on its worker when the runtime stops or drains, before the
 * workers exit.
 */
#ifndef ROTOR_PUBLIC_SESSION_H
#define ROTOR_PUBLIC_SESSION_H

#include <rotor/base.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rotor_session;

/* What a session does with its objects; the caller's memory, kept until
 * rotor_session_destroy. */
struct rotor_session_ops {
	/* Make the calling worker's object: runs on the task that needed it first, may suspend,
	 * within deadline. Returns 0 and sets *obj, or a negative errno, which every task
	 * waiting for this opening gets too (the next rotor_session_get tries again). */
	int (*open)(void *arg, int64_t deadline, void **obj);
	/* Close obj: runs on a task of obj's worker, shielded from cancellation for close_ns,
	 * so it may suspend (say goodbye, wait for replies): when the runtime stops or drains,
	 * once every task holding obj put it back (or close_ns passed), and for an object
	 * replaced with rotor_session_replace once its last holder put it back. NULL: nothing. */
	void (*close)(void *arg, void *obj);
	int64_t close_ns; /* the close's bound, and how long a stop waits for holders; 0: 5 s */
};

/*
 * rotor_session_create - a session whose objects ops makes and closes, arg their argument.
 * Any number of runtimes and workers may use it; each worker has its own object. Returns 0
 * and sets *out, or -EINVAL (ops, ops->open or out NULL, close_ns negative), -ENOMEM.
 * Thread: any. Suspends: no.
 */
ROTOR_API int rotor_session_create(const struct rotor_session_ops *ops, void *arg,
                                   struct rotor_session **out);

/*
 * rotor_session_get - the calling worker's object of s in *obj, held by the caller until
 * rotor_session_put (or rotor_session_replace). The first task to need it opens it
 * (ops->open, in this task); tasks that need it during the opening wait for it, until their
 * deadline, and all get its error if it fails. Returns 0, or -EINVAL (s or obj NULL), -EPERM
 * (off a task), -ESHUTDOWN (this worker's objects are being closed: its runtime stops),
 * -ETIMEDOUT, -ECANCELED (waiting for another task's opening), -ENOMEM, or the error of
 * ops->open. Thread: task. Suspends: yes (only while the object is being opened).
 */
ROTOR_API int rotor_session_get(struct rotor_session *s, int64_t deadline, void **obj);

/*
 * rotor_session_put - give back obj, which rotor_session_get gave this worker's caller.
 * Returns 0, -EINVAL (s NULL, or obj not an object of s this worker holds), -EPERM (off a
 * worker). Thread: worker (a task or a callback). Suspends: no.
 */
ROTOR_API int rotor_session_put(struct rotor_session *s, void *obj);

/*
 * rotor_session_replace - put obj back and retire it (it is broken): the next
 * rotor_session_get on this worker opens a new object; obj is closed by a task (ops->close)
 * once no task holds it. A replace of an object already retired only puts it back. Returns
 * 0, or the errors of rotor_session_put. Thread: worker. Suspends: no.
 */
ROTOR_API int rotor_session_replace(struct rotor_session *s, void *obj);

/*
 * rotor_session_destroy - free s. Every runtime that used s must have stopped (its workers
 * closed their objects and exited). Returns 0, -EINVAL (s NULL), -EBUSY (a worker that used s
 * is still running: nothing done). Thread: any thread that is not such a worker.
 * Suspends: no.
 */
ROTOR_API int rotor_session_destroy(struct rotor_session *s);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_SESSION_H */
