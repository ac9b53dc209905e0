/*
 * The raw mechanism under rotor's cross-worker posts (ring_post.c): two pinned threads, each
 * with an io_uring ring set up as rotor's workers set theirs up, the producer posting chains
 * of K preallocated closures with one IORING_OP_MSG_RING each (user_data = the chain's head,
 * success CQEs skipped) and the consumer reaping them and calling each closure. No runtime,
 * no allocation, no scheduler: the most closures per second MSG_RING carries here.
 */
#ifndef ROTOR_BENCH_RING_POST_H
#define ROTOR_BENCH_RING_POST_H

/* n closures (after `warm` unmeasured ones), k per message. Fills closures/s and CPU ns per
 * closure (both threads). Returns 0 or -errno. */
int ring_post_run(long n, long warm, int k, double *per_s, double *cpu_ns);

#endif
