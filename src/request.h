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

#include <stdbool.h>

#include "routes.h"

struct gw_loop;
struct evhttp_request;
struct json_object;

/*
 * Handle one request matched to a route (m->route).  path_errs, when
 * not NULL, holds the path parameters that do not fit (ROUTE_BAD_PARAM):
 * the request is refused with 422 once the caller is known.  has_query:
 * the URI carried a query string, which no route takes (400).
 */
void	request_start(struct gw_loop *, struct evhttp_request *,
	    const struct route_match *m, const struct verrors *path_errs,
	    bool has_query);

/* Bytes of bodies held by all requests now (limits.max_buffered_bytes). */
long long	request_buffered_bytes(void);

/*
 * Free every request of the loop still unanswered, with no reply (the
 * exit after shutdown_timeout_ms; evhttp_free closes their connections
 * and the audit log's recovery records them as abandoned).  Only once
 * the loop has stopped: no callback of theirs may run afterwards.
 */
void	request_abort_all(struct gw_loop *);

#endif
