/*
 * port.h: hand-offs between an event loop and a worker thread (the
 * audit writer, the idempotency store).
 *
 * A port belongs to one loop.  Work goes out in batches: port_send()
 * only links an item into the port's outbox, and once per loop pass,
 * after the pass's other callbacks, the whole outbox is handed to the
 * worker in one call (ops->flush: one lock and at most one wake-up for
 * everything the pass produced, instead of one per item).  Work comes
 * back with port_post() from the worker: under the port's own lock,
 * with one eventfd write per batch, and the loop delivers the items in
 * order (ops->deliver).
 *
 * Ownership: an item belongs to the module that made it; the port only
 * links it.  A port counts the items it has sent and not yet had back.
 * port_free() on the loop hands any unsent outbox to the worker first
 * (work already asked for is still done), then detaches: items that
 * come back afterwards go to ops->drop, on the worker's thread, and the
 * port's memory goes with the last of them.
 */
#ifndef CMGATE_PORT_H
#define CMGATE_PORT_H

#include <stddef.h>

struct event_base;
struct port;

/* Embedded in each item the port carries (anywhere in the struct). */
struct port_item {
	struct port_item	*next;
	struct port		*port;
};

struct port_ops {
	/* Loop thread, once per pass: the outbox, n items head..tail in
	 * the order sent, linked through next (tail->next is NULL).  The
	 * worker owns them from here and returns each with port_post(). */
	void	(*flush)(void *ctx, struct port_item *head,
		    struct port_item *tail, size_t n);
	/* Loop thread: one item back from the worker. */
	void	(*deliver)(void *ctx, struct port_item *);
	/* Worker thread: an item back for a port that is gone. */
	void	(*drop)(void *ctx, struct port_item *);
};

/* Create and free a port on its loop's thread (or while the loop is not
 * running), never inside one of its own callbacks. */
struct port	*port_new(struct event_base *, const struct port_ops *,
		    void *ctx);
void		 port_free(struct port *);

/* Loop thread: queue an item for the worker; sent at the end of the
 * current loop pass (or at once by port_flush()). */
void		 port_send(struct port *, struct port_item *);
void		 port_flush(struct port *);

/* Worker thread: hand n finished items back, each to its own port. */
void		 port_post(struct port_item **items, size_t n);

#endif
