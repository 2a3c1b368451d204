/*
 * port.c: hand-offs between an event loop and a worker thread (see
 * port.h).
 *
 * Why batches: a loop pass that starts 10 requests used to take the
 * worker's mutex and signal its condition variable 10 times, and the
 * worker, woken while the loop still held the mutex, blocked on it at
 * once: three or four futex calls and two context switches per record.
 * Now the pass ends with one flush: one lock, one signal made after
 * the unlock (by the module's flush), and the worker finds the whole
 * batch waiting.
 *
 * Locking: the outbox and, while the port is alive, the sent count
 * belong to the loop thread.  The way back (done list, dead flag, and
 * the count once dead) is under the port's own mutex, which the worker
 * holds only to link a batch and write the eventfd; the eventfd is
 * written under it so that port_free() can never close it under a
 * worker's feet.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "port.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

struct port {
	const struct port_ops	*ops;
	void			*ctx;
	int			 efd;
	struct event		*wake;		/* efd readable: items back */
	struct event		*pass_end;	/* send the outbox */

	/* Loop thread only. */
	struct port_item	*out_h, *out_t;
	size_t			 out_n;

	/* Sent and not yet back: the loop's while the port is alive, under
	 * mu once it is dead (the loop no longer touches it then). */
	size_t			 refs;

	pthread_mutex_t		 mu;
	struct port_item	*done_h, *done_t;	/* under mu */
	size_t			 done_n;		/* under mu */
	bool			 dead;			/* under mu */
};

static void
port_destroy(struct port *p)
{
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* The loop: items are back. */
static void
port_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct port *p = arg;
	struct port_item *it, *next;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) == -1) {
		/* EAGAIN: a spurious wakeup */
	}
	pthread_mutex_lock(&p->mu);
	it = p->done_h;
	p->refs -= p->done_n;
	p->done_h = p->done_t = NULL;
	p->done_n = 0;
	pthread_mutex_unlock(&p->mu);
	for (; it != NULL; it = next) {
		next = it->next;
		it->next = NULL;
		p->ops->deliver(p->ctx, it);
	}
}

void
port_flush(struct port *p)
{
	struct port_item *h = p->out_h, *t = p->out_t;
	size_t n = p->out_n;

	if (n == 0)
		return;
	p->out_h = p->out_t = NULL;
	p->out_n = 0;
	p->ops->flush(p->ctx, h, t, n);
}

/* The loop, at the end of a pass in which something was sent. */
static void
port_pass_end_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	port_flush(arg);
}

struct port *
port_new(struct event_base *base, const struct port_ops *ops, void *ctx)
{
	struct port *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->ops = ops;
	p->ctx = ctx;
	pthread_mutex_init(&p->mu, NULL);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		goto fail;
	if ((p->wake = event_new(base, p->efd, EV_READ | EV_PERSIST,
	    port_wake_cb, p)) == NULL || event_add(p->wake, NULL) == -1)
		goto fail;
	/* Never added, only activated: it runs after the callbacks
	 * already queued in the pass that activates it. */
	if ((p->pass_end = event_new(base, -1, 0, port_pass_end_cb,
	    p)) == NULL)
		goto fail;
	return p;
fail:
	if (p->wake)
		event_free(p->wake);
	if (p->efd != -1)
		close(p->efd);
	port_destroy(p);
	return NULL;
}

void
port_send(struct port *p, struct port_item *it)
{
	it->next = NULL;
	it->port = p;
	if (p->out_t)
		p->out_t->next = it;
	else
		p->out_h = it;
	p->out_t = it;
	p->refs++;
	if (p->out_n++ == 0)
		event_active(p->pass_end, EV_TIMEOUT, 1);
}

void
port_post(struct port_item **items, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		struct port *p = items[i]->port;
		bool last;

		pthread_mutex_lock(&p->mu);
		if (p->dead) {
			for (j = i; j < n && items[j]->port == p; j++) {
				items[j]->next = NULL;
				p->ops->drop(p->ctx, items[j]);
				p->refs--;
			}
			last = p->refs == 0;
			pthread_mutex_unlock(&p->mu);
			if (last)
				port_destroy(p);
			i = j;
			continue;
		}
		if (p->done_h == NULL) {
			uint64_t one = 1;
			if (write(p->efd, &one, sizeof(one)) == -1) {
				/* EAGAIN: the counter is non-zero */
			}
		}
		for (j = i; j < n && items[j]->port == p; j++) {
			items[j]->next = NULL;
			if (p->done_t)
				p->done_t->next = items[j];
			else
				p->done_h = items[j];
			p->done_t = items[j];
			p->done_n++;
		}
		pthread_mutex_unlock(&p->mu);
		i = j;
	}
}

void
port_free(struct port *p)
{
	struct port_item *it, *next;
	bool last;

	if (p == NULL)
		return;
	/* Work already asked for is still done; only its answer is
	 * dropped. */
	port_flush(p);
	event_free(p->pass_end);
	event_free(p->wake);
	pthread_mutex_lock(&p->mu);
	p->dead = true;
	close(p->efd);
	p->efd = -1;
	it = p->done_h;
	p->refs -= p->done_n;
	p->done_h = p->done_t = NULL;
	p->done_n = 0;
	last = p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	for (; it != NULL; it = next) {
		next = it->next;
		it->next = NULL;
		p->ops->drop(p->ctx, it);
	}
	if (last)
		port_destroy(p);
}
