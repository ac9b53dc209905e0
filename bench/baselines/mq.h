/*
 * The baseline queue of bench_post and bench_submit: a mutex-protected FIFO of closures
 * with an eventfd doorbell that the producer rings only when the consumer is asleep. The
 * consumer takes everything queued under one lock; when it finds nothing it sets the
 * sleeping flag under the same lock (so a push cannot slip between check and flag) and
 * blocks in read(eventfd).
 */
#ifndef ROTOR_BENCH_MQ_H
#define ROTOR_BENCH_MQ_H

#include <pthread.h>
#include <stdint.h>

struct mq_node {
	struct mq_node *next;
	void (*fn)(void *arg);
	void *arg;
};

struct mq {
	pthread_mutex_t lock;
	struct mq_node *head;
	struct mq_node **tail;
	int sleeping; /* the consumer is in (or about to enter) read(efd) */
	int efd;
	uint64_t doorbells; /* eventfd writes, for the report */
};

int mq_init(struct mq *q);
void mq_fini(struct mq *q);

/* Append the chain first..last (last->next must be NULL); ring if the consumer sleeps. */
void mq_push_chain(struct mq *q, struct mq_node *first, struct mq_node *last);

/* Take every queued node (FIFO chain), blocking while there is none. */
struct mq_node *mq_take_all(struct mq *q);

/* Pin the calling thread to one CPU (as rotor pins its workers). Returns 0 or -errno. */
int mq_pin_self(int cpu);

#endif /* ROTOR_BENCH_MQ_H */
