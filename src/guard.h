/*
 * guard.h: request framing limits, enforced before evhttp buffers
 * anything.
 *
 * libevent 2.1's evhttp answers its own limit errors (413, 400) with an
 * HTML page, has no header-count limit, no total request deadline (one
 * byte a second keeps a connection alive), and no connection cap.  The
 * guard is a bufferevent filter under each evhttp connection: it reads
 * each request head, checks it, and either passes the request through
 * untouched or replaces it by an internal "reject" request that the
 * front end answers with the gateway's JSON error and Connection: close.
 */
#ifndef CMGATE_GUARD_H
#define CMGATE_GUARD_H

#include <stddef.h>

struct event_base;
struct bufferevent;
struct evhttp_bound_socket;
struct config;
struct gw_loop;

/* evhttp_set_bevcb callback; arg is the struct gw_loop. */
struct bufferevent *guard_bevcb(struct event_base *, void *arg);

/* The same for the metrics.listen port, whose connections are counted
 * apart: at most GUARD_METRICS_MAX_CONNS per loop, so neither port can
 * take the other's connections.  libevent 2.1.12's evhttp has no cap
 * of its own. */
#define GUARD_METRICS_MAX_CONNS	64
struct bufferevent *guard_metrics_bevcb(struct event_base *, void *arg);

/* Called once per process: makes the unguessable internal path. */
int	guard_init(void);

/* If path is an internal reject path, its HTTP status; else 0. */
int	guard_reject_status(const char *path);

/*
 * Guard a listening socket: running out of file descriptors closes new
 * connections instead of spinning the loop, and the open files limit
 * is raised toward what limits.max_connections needs (a warning when
 * it cannot be).  -1 when the limit cannot be read.
 */
int	guard_listen(struct evhttp_bound_socket *, const struct config *);

#endif
