/*
 * offload.c: a pool of worker threads for long CPU work (see offload.h).
 *
 * One queue under one mutex; a loop pass's jobs arrive in one hand-off
 * (port.h batches them) and wake one thread each at most.  Jobs go back
 * to their loops through their ports.  Signals are blocked in the
 * workers: they belong to the main loop.
 */
#include "offload.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFFLOAD_MAX_THREADS	16

struct offload {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct offload_job	*qh, *qt;	/* under mu */
	bool			 stopping;	/* under mu */
	int			 nthreads;
	pthread_t		 threads[OFFLOAD_MAX_THREADS];
};

struct offload_port {
	struct offload		*pool;
	struct port		*port;
};

#define OJOB(pi)	((struct offload_job *)(void *)(pi))

static void *
offload_main(void *arg)
{
	struct offload *o = arg;
	struct offload_job *j;
	struct port_item *pi;

	for (;;) {
		pthread_mutex_lock(&o->mu);
		while (o->qh == NULL && !o->stopping)
			pthread_cond_wait(&o->cv, &o->mu);
		if ((j = o->qh) == NULL) {
			pthread_mutex_unlock(&o->mu);
			break;		/* stopping, and nothing left */
		}
		if ((o->qh = j->next) == NULL)
			o->qt = NULL;
		pthread_mutex_unlock(&o->mu);
		j->next = NULL;
		j->work(j);
		pi = &j->link;
		port_post(&pi, 1);
	}
	return NULL;
}

struct offload *
offload_new(int n, char *err, size_t errlen)
{
	struct offload *o;
	sigset_t all, old;
	int i;

	if (n < 1 || n > OFFLOAD_MAX_THREADS || (o = calloc(1,
	    sizeof(*o))) == NULL) {
		snprintf(err, errlen, "offload: cannot make %d threads", n);
		return NULL;
	}
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < n; i++) {
		if ((errno = pthread_create(&o->threads[i], NULL,
		    offload_main, o)) != 0) {
			snprintf(err, errlen, "offload: thread: %s",
			    strerror(errno));
			break;
		}
		o->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (o->nthreads < n) {
		offload_free(o);
		return NULL;
	}
	return o;
}

void
offload_free(struct offload *o)
{
	struct offload_job *q, *j;
	struct port_item *pi;
	size_t n = 0;
	int i;

	if (o == NULL)
		return;
	/* The queue goes with the stop: no worker starts another job (at
	 * exit their requests are gone: the work would be for nothing). */
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	q = o->qh;
	o->qh = o->qt = NULL;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (i = 0; i < o->nthreads; i++)
		pthread_join(o->threads[i], NULL);
	/* Back the way a finished job goes, so that its port counts it
	 * back: a dead port's drop frees it here and now; a live port's
	 * loop gets it dropped, on its next pass or at its port_free. */
	while ((j = q) != NULL) {
		q = j->next;
		j->next = NULL;
		j->unrun = true;
		pi = &j->link;
		port_post(&pi, 1);
		n++;
	}
	if (n > 0)
		log_info("shutdown: %zu offloaded jobs dropped unrun", n);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

/* ---- ports ---------------------------------------------------------- */

static void
offload_flush(void *ctx, struct port_item *head, struct port_item *tail,
    size_t n)
{
	struct offload *o = ctx;
	struct port_item *pi;

	for (pi = head; pi != NULL; pi = pi->next)
		OJOB(pi)->next = pi->next ? OJOB(pi->next) : NULL;
	pthread_mutex_lock(&o->mu);
	if (o->qt != NULL)
		o->qt->next = OJOB(head);
	else
		o->qh = OJOB(head);
	o->qt = OJOB(tail);
	pthread_mutex_unlock(&o->mu);
	if (n == 1)
		pthread_cond_signal(&o->cv);
	else
		pthread_cond_broadcast(&o->cv);
}

static void
offload_deliver(void *ctx, struct port_item *pi)
{
	(void)ctx;
	OJOB(pi)->done(OJOB(pi), OJOB(pi)->unrun);
}

static void
offload_drop(void *ctx, struct port_item *pi)
{
	(void)ctx;
	OJOB(pi)->done(OJOB(pi), true);
}

static const struct port_ops offload_ops = {
	.flush = offload_flush,
	.deliver = offload_deliver,
	.drop = offload_drop,
};

struct offload_port *
offload_port_new(struct offload *o, struct event_base *base)
{
	struct offload_port *p;

	if (o == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->pool = o;
	if ((p->port = port_new(base, &offload_ops, o)) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void
offload_port_free(struct offload_port *p)
{
	if (p == NULL)
		return;
	port_free(p->port);
	free(p);
}

void
offload_send(struct offload_port *p, struct offload_job *j)
{
	j->unrun = false;
	port_send(p->port, &j->link);
}
