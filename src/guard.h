/*
 * guard.h: request framing limits, enforced before evhttp buffers
 * anything.
 *
 * libevent 2.1's evhttp answers its own limit errors (413, 400) with an
 * HTML page, has no header-count limit, no total request deadline (one
 * byte a second keeps a connection alive), and no connection cap.  The
 * guard is a bufferevent filter under each evhttp connection: it reads
 * each request head, checks it, and either passes the request through
 * untouched or refuses it: then nothing more of the connection reaches
 * evhttp, and once evhttp has answered the requests before it, the
 * front end's answer (guard_answer_fn) goes out and the connection
 * closes.
 */
#ifndef CMGATE_GUARD_H
#define CMGATE_GUARD_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct bufferevent;
struct evhttp_bound_socket;
struct evbuffer;
struct evhttp_request;
struct config;
struct gw_loop;

/* A request the guard refused at the door. */
struct guard_refusal {
	int	status;		/* 400, 405, 411, 413, 431 or 503 */
	bool	busy;		/* the 503 is limits.max_buffered_bytes' */
	bool	head;		/* a HEAD: its answer is the head alone */
	bool	metrics_port;	/* on the metrics.listen port */
};

/*
 * The front end's answer to a refusal: a whole HTTP answer with
 * Connection: close, added to out (it also counts the refusal in the
 * loop's metrics).  -1 when it could not be made: the connection then
 * closes unanswered.
 */
typedef int guard_answer_fn(struct gw_loop *, const struct guard_refusal *,
    struct evbuffer *out);

/* evhttp_set_bevcb callback; arg is the struct gw_loop. */
struct bufferevent *guard_bevcb(struct event_base *, void *arg);

/* The same for the metrics.listen port, whose connections are counted
 * apart: at most GUARD_METRICS_MAX_CONNS per loop, so neither port can
 * take the other's connections.  libevent 2.1.12's evhttp has no cap
 * of its own. */
#define GUARD_METRICS_MAX_CONNS	64

/*
 * The largest body the metrics port takes (it serves GET and HEAD
 * only): the guard refuses a larger one itself, and its evhttp is set
 * to the same cap, so that evhttp never has to answer a request on
 * its own (guard.c: its own answers are HTML, and under a filter in
 * libevent 2.1.12 they freed the connection twice, a crash).
 */
#define GUARD_METRICS_MAX_BODY	1024
struct bufferevent *guard_metrics_bevcb(struct event_base *, void *arg);

/* Called once per process, before any loop runs: who answers the
 * refusals. */
void	guard_init(guard_answer_fn *);

/*
 * Every request evhttp hands the front end is shown to the guard first
 * (both ports): the guard counts it answered when evhttp has written
 * its answer, and a refusal waits until every request before it is
 * answered, so that answers leave in the order their requests came.
 * On the loop of ev only.
 */
void	guard_track(struct evhttp_request *ev);

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
