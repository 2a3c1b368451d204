/*
 * server.h: the evhttp front end of one event loop: routes, limits,
 * /healthz, and the JSON error body.  One struct gw_loop per loop
 * owns that loop's evhttp, upstream and audit port.
 */
#ifndef CMGATE_SERVER_H
#define CMGATE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include "loop.h"

struct config;
struct event_base;
struct evhttp;
struct evhttp_request;
struct evhttp_bound_socket;
struct upstream;
struct audit;
struct audit_port;
struct idem;
struct idem_port;
struct budget;
struct json_object;
struct metrics;
struct gw_req;
struct event;
struct evbuffer;
struct guard_refusal;

/* The answer to the guard's refusals (guard.h: guard_answer_fn), which
 * main hands to guard_init(). */
int	server_answer_refusal(struct gw_loop *, const struct guard_refusal *,
	    struct evbuffer *out);

/* Create the loop's front end and bind cfg->listen (fd >= 0: use an
 * already bound listening socket).  -1 with a message in err. */
int	server_init(struct gw_loop *, struct event_base *, struct config *,
	    struct audit *, int listen_fd, char *err, size_t errlen);
void	server_free(struct gw_loop *);

/* Attach the process's idempotency store (NULL: keys are ignored) and
 * offload pool (offload.h); after server_init, once per loop.  -1 when
 * the loop cannot get a port. */
struct offload;
int	server_attach(struct gw_loop *, struct idem *, struct offload *);

/* Swap in a new config (SIGHUP); requests in flight keep theirs. */
int	server_reload(struct gw_loop *, struct config *);

/* Bind and listen on "host:port" (SO_REUSEPORT, so each worker loop
 * can bind the same address); returns the fd or -1. */
int	server_listen(const char *addr, char *err, size_t errlen);

/* SIGTERM: close the listener; requests in flight go on. */
void	server_stop_accepting(struct gw_loop *);

#endif
