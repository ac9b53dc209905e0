/*
 * The mutex + eventfd doorbell queue used as the baseline of cross-thread posting (mq.h).
 */
#include "mq.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

int mq_init(struct mq *q)
{
	q->head = NULL;
	q->tail = &q->head;
	q->sleeping = 0;
	q->doorbells = 0;
	q->efd = eventfd(0, EFD_CLOEXEC);
	if (q->efd < 0)
		return -errno;
	pthread_mutex_init(&q->lock, NULL);
	return 0;
}

void mq_fini(struct mq *q)
{
	pthread_mutex_destroy(&q->lock);
	close(q->efd);
}

void mq_push_chain(struct mq *q, struct mq_node *first, struct mq_node *last)
{
	int wake;

	pthread_mutex_lock(&q->lock);
	*q->tail = first;
	q->tail = &last->next;
	wake = q->sleeping;
	q->sleeping = 0;
	pthread_mutex_unlock(&q->lock);
	if (wake) {
		uint64_t one = 1;
		q->doorbells++;
		if (write(q->efd, &one, sizeof(one)) != sizeof(one)) {
			perror("mq: eventfd write");
			abort();
		}
	}
}

struct mq_node *mq_take_all(struct mq *q)
{
	for (;;) {
		struct mq_node *h;
		uint64_t v;

		pthread_mutex_lock(&q->lock);
		h = q->head;
		if (h) {
			q->head = NULL;
			q->tail = &q->head;
		} else {
			q->sleeping = 1;
		}
		pthread_mutex_unlock(&q->lock);
		if (h)
			return h;
		/* The producer that sees sleeping clears it and writes exactly once. */
		while (read(q->efd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
	}
}

int mq_pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}
