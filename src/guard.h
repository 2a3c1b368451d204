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

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct bufferevent;
struct evhttp_bound_socket;
struct evhttp_request;
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

/* If path is an internal reject path, its HTTP status; else 0.  *busy
 * (may be NULL) tells a 503 for limits.max_buffered_bytes from one for
 * the connection cap. */
int	guard_reject_status(const char *path, bool *busy);

/*
 * limits.max_buffered_bytes from the head on: on the callers' port the
 * guard reserves REQUEST_BODY_HOLD(Content-Length) (request.h) for each
 * request when it accepts its head, before any byte of the body is
 * read, and refuses the request (503 busy) when the cap cannot take
 * it.  What a connection reserved and evhttp has not yet handed on is
 * given back when the connection goes.
 *
 * guard_claim: ev has been read whole; its connection's guard gives up
 * up to n bytes of what it reserved (n: REQUEST_BODY_HOLD of the body
 * read), which the caller now owns: request_start() takes them, or
 * they go back with request_buffer_release().  Returns that count (0
 * when nothing was reserved).  On the loop of ev only.
 */
size_t	guard_claim(struct evhttp_request *ev, size_t n);

/*
 * Guard a listening socket: running out of file descriptors closes new
 * connections instead of spinning the loop, and the open files limit
 * is raised toward what limits.max_connections needs (a warning when
 * it cannot be).  -1 when the limit cannot be read.
 */
int	guard_listen(struct evhttp_bound_socket *, const struct config *);

#endif
