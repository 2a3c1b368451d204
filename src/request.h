/*
 * request.h: one caller request's life, from the route match to the
 * one reply.  struct gw_req owns everything a request allocates; it is
 * freed in exactly one place, req_finish(), right after the single
 * evhttp_send_* call.
 *
 * The way through (see README.md):
 *   auth -> content type -> strict parse + validate/normalize ->
 *   audit "request" (durable) -> upstream (key injected) ->
 *   audit "outcome" (durable) -> reply.
 */
#ifndef CMGATE_REQUEST_H
#define CMGATE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "validate.h"

struct gw_loop;
struct evhttp_request;
struct json_object;

typedef enum vresult (*route_validator)(const char *body, size_t len,
		    const struct vopts *, struct json_object **out,
		    struct verrors *errs);

/* A route is one row: a second CryptoMate endpoint is a new row and a
 * new validator, with nothing else touched. */
struct route {
	const char	*method;	/* "POST" */
	const char	*path;		/* as the caller sends it */
	const char	*upstream_path;	/* as CryptoMate expects it */
	route_validator	 validate;
};

extern const struct route	routes[];
extern const size_t		nroutes;

/* Handle one request already matched to a route. */
void	request_start(struct gw_loop *, struct evhttp_request *,
	    const struct route *);

/*
 * Free every request of the loop still unanswered, with no reply (the
 * exit after shutdown_timeout_ms; evhttp_free closes their connections
 * and the audit log's recovery records them as abandoned).  Only once
 * the loop has stopped: no callback of theirs may run afterwards.
 */
void	request_abort_all(struct gw_loop *);

#endif
