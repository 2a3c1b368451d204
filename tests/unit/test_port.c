/*
 * test_port.c: the loop <-> worker hand-off (src/port.c) on a real
 * event loop and a real worker thread: a pass's items go out in one
 * flush, come back in order to their own port, and a freed port still
 * hands its unsent work over and drops what comes back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "port.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

struct item {
	struct port_item	 link;	/* first */
	int			 port_no;
	int			 value;
	int			 answer;
};

/* A worker thread: takes flushed batches, answers each item with
 * value * 2, posts the answers back in one port_post() per batch. */
struct worker {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct item		*q[1024];
	size_t			 n;
	bool			 hold;	/* keep items until released */
	bool			 stop;
	size_t			 posted;	/* items handed back */
	pthread_t		 t;
};

struct ctx {
	struct worker		*w;
	int			 port_no;
	int			 flushes;
	size_t			 flushed;
	int			 delivered;
	int			 order[1024];
	int			 dropped;	/* worker thread: atomic */
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct port_item *out[1024];
	size_t i, n;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while ((w->n == 0 || w->hold) && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->n == 0 && w->stop)
			break;
		n = w->n;
		for (i = 0; i < n; i++) {
			w->q[i]->answer = w->q[i]->value * 2;
			out[i] = &w->q[i]->link;
		}
		w->n = 0;
		pthread_mutex_unlock(&w->mu);
		port_post(out, n);
		pthread_mutex_lock(&w->mu);
		w->posted += n;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void
t_flush(void *arg, struct port_item *head, struct port_item *tail,
    size_t n)
{
	struct ctx *c = arg;
	struct port_item *pi;
	size_t k = 0;

	c->flushes++;
	c->flushed += n;
	pthread_mutex_lock(&c->w->mu);
	for (pi = head; pi != NULL; pi = pi->next) {
		c->w->q[c->w->n++] = (struct item *)(void *)pi;
		k++;
		if (pi->next == NULL)
			assert_ptr_equal(pi, tail);
	}
	pthread_mutex_unlock(&c->w->mu);
	pthread_cond_signal(&c->w->cv);
	assert_int_equal(k, n);
}

static void
t_deliver(void *arg, struct port_item *pi)
{
	struct ctx *c = arg;
	struct item *it = (struct item *)(void *)pi;

	assert_int_equal(it->port_no, c->port_no);
	assert_int_equal(it->answer, it->value * 2);
	c->order[c->delivered++] = it->value;
	free(it);
}

static void
t_drop(void *arg, struct port_item *pi)
{
	struct ctx *c = arg;

	/* Called on the worker with no lock of ours held. */
	__atomic_add_fetch(&c->dropped, 1, __ATOMIC_RELAXED);
	free(pi);
}

static const struct port_ops ops = { t_flush, t_deliver, t_drop };

static struct item *
mk(int port_no, int value)
{
	struct item *it = calloc(1, sizeof(*it));

	assert_non_null(it);
	it->port_no = port_no;
	it->value = value;
	return it;
}

/* hold: keep what it is handed until worker_stop() (set before the
 * thread starts, so it needs no lock). */
static void
worker_start(struct worker *w, bool hold)
{
	memset(w, 0, sizeof(*w));
	w->hold = hold;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	assert_int_equal(pthread_create(&w->t, NULL, worker_main, w), 0);
}

static void
worker_stop(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	w->hold = false;
	pthread_mutex_unlock(&w->mu);
	pthread_cond_signal(&w->cv);
	pthread_join(w->t, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}

/* A worker and one port on base, its context in c. */
static struct port *
one_port(struct event_base *base, struct worker *w, struct ctx *c,
    bool hold)
{
	struct port *p;

	worker_start(w, hold);
	memset(c, 0, sizeof(*c));
	c->w = w;
	p = port_new(base, &ops, c);
	assert_non_null(p);
	return p;
}

struct sender {
	struct port	*p[2];
	int		 n;
};

/* One loop callback that sends n items on each port. */
static void
send_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sender *s = arg;
	int i, k;

	(void)fd;
	(void)what;
	for (i = 0; i < s->n; i++)
		for (k = 0; k < 2; k++)
			if (s->p[k])
				port_send(s->p[k], &mk(k, i)->link);
}

/* 300 items sent in one pass leave in one flush, and come back in the
 * order sent; two ports on one loop each get their own. */
static void
test_one_flush_per_pass(void **state)
{
	struct event_base *base = event_base_new();
	struct worker w;
	struct ctx c0 = { 0 }, c1 = { 0 };
	struct sender s = { { NULL, NULL }, 300 };
	int i;

	(void)state;
	worker_start(&w, false);
	c0.w = c1.w = &w;
	c0.port_no = 0;
	c1.port_no = 1;
	s.p[0] = port_new(base, &ops, &c0);
	s.p[1] = port_new(base, &ops, &c1);
	assert_non_null(s.p[0]);
	assert_non_null(s.p[1]);
	event_base_once(base, -1, EV_TIMEOUT, send_cb, &s, NULL);
	while (c0.delivered < 300 || c1.delivered < 300)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(c0.flushes, 1);
	assert_int_equal(c0.flushed, 300);
	assert_int_equal(c1.flushes, 1);
	assert_int_equal(c1.flushed, 300);
	assert_int_equal(c0.delivered, 300);
	assert_int_equal(c1.delivered, 300);
	for (i = 0; i < 300; i++) {
		assert_int_equal(c0.order[i], i);
		assert_int_equal(c1.order[i], i);
	}
	assert_int_equal(c0.dropped + c1.dropped, 0);
	port_free(s.p[0]);
	port_free(s.p[1]);
	worker_stop(&w);
	event_base_free(base);
}

/* A port freed with items at the worker and items not yet sent: the
 * unsent ones are still handed over, and everything that comes back
 * is dropped (never delivered); the memory goes with the last item
 * (ASan/valgrind check it). */
static void
test_free_in_flight(void **state)
{
	struct event_base *base = event_base_new();
	struct worker w;
	struct ctx c;
	struct port *p;
	int i;

	(void)state;
	p = one_port(base, &w, &c, true);
	for (i = 0; i < 10; i++)
		port_send(p, &mk(0, i)->link);
	port_flush(p);		/* 10 at the worker, held */
	for (i = 10; i < 15; i++)
		port_send(p, &mk(0, i)->link);	/* 5 unsent */
	port_free(p);
	assert_int_equal(c.flushes, 2);
	assert_int_equal(c.flushed, 15);
	worker_stop(&w);	/* releases the held items: dropped */
	assert_int_equal(c.dropped, 15);
	assert_int_equal(c.delivered, 0);
	event_base_free(base);
}

/* Items that came back but were not delivered yet when the port is
 * freed are dropped too. */
static void
test_free_with_answers_waiting(void **state)
{
	struct event_base *base = event_base_new();
	struct worker w;
	struct ctx c;
	struct port *p;
	int i, tries;

	(void)state;
	p = one_port(base, &w, &c, false);
	for (i = 0; i < 4; i++)
		port_send(p, &mk(0, i)->link);
	port_flush(p);
	/* Wait until the worker has posted them; the loop does not run,
	 * so they wait on the port. */
	for (tries = 0; tries < 10000; tries++) {
		pthread_mutex_lock(&w.mu);
		bool posted = w.posted == 4;
		pthread_mutex_unlock(&w.mu);
		if (posted)
			break;
		usleep(1000);
	}
	assert_int_equal(w.posted, 4);
	port_free(p);
	assert_int_equal(c.delivered, 0);
	assert_int_equal(c.dropped, 4);
	worker_stop(&w);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_flush_per_pass),
		cmocka_unit_test(test_free_in_flight),
		cmocka_unit_test(test_free_with_answers_waiting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
