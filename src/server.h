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

struct gw_loop {
	struct event_base	*base;
	struct evhttp		*http;
	struct config		*cfg;		/* current config (a reference) */
	struct upstream		*up;
	struct audit		*audit;		/* shared by all loops */
	struct audit_port	*aport;
	struct idem		*idem;		/* or NULL */
	struct idem_port	*iport;
	struct offload_port	*oport;		/* large bodies (offload.h) */
	struct budget		*budget;	/* upstream budget (budget.c) */
	struct evhttp_bound_socket *bound;
	struct metrics		*metrics;	/* this loop's registry */
	struct evhttp		*mhttp;		/* metrics.listen, or NULL */
	struct event		*log_flush;	/* end of pass: access log */
	TAILQ_HEAD(gw_req_list, gw_req) reqs;	/* requests not yet answered */
	int			 active;	/* requests not yet answered */
	int			 conns;		/* open caller connections */
	int			 mconns;	/* open metrics.listen ones */
	bool			 draining;	/* SIGTERM: refuse new requests */
};

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

/* One access-log line; written with the rest of this loop pass's. */
void	server_access_log(struct gw_loop *, const char *line);

/* Send a reply (the one call every path uses; see server.c). */
struct evbuffer;
void	server_send(struct evhttp_request *, int status, struct evbuffer *);

/*
 * Send the gateway's own error: {"code","message","details"?,
 * "request_id"} with X-Request-Id.  details (may be NULL) is an array
 * of {"field","message"} and is consumed.  extra_header may be NULL
 * ("Retry-After: 2" style pairs are given as name and value).  Returns
 * the size of the body sent, for the access log.
 */
size_t	server_send_error(struct evhttp_request *, int status,
	    const char *code, const char *message,
	    struct json_object *details, const char *request_id,
	    const char *hname, const char *hvalue);

/*
 * The value of the header name (any case) when the request has exactly
 * one; NULL when it has none or more than one.  For headers whose
 * duplicates are ambiguous: which Authorization counts, when a proxy
 * appended its own to the caller's?
 */
struct evkeyvalq;
const char *server_sole_header(const struct evkeyvalq *, const char *name);

#endif
