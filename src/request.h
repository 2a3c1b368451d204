/*
 * request.h: one caller request's life, from the route match to the
 * one reply.  struct gw_req owns everything a request allocates; it is
 * freed in exactly one place, req_free() in request.c, right after the
 * single evhttp_send_* call.
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
 * the URI carried a query string, which no route takes (400).  held:
 * bytes already counted for its body (request_buffer_reserve, by the
 * guard at its head), which the request now owns and gives back.
 */
void	request_start(struct gw_loop *, struct evhttp_request *,
	    const struct route_match *m, const struct verrors *path_errs,
	    bool has_query, size_t held);

/* Bytes of bodies held by all requests now (limits.max_buffered_bytes). */
long long	request_buffered_bytes(void);

/* What a body of n bytes counts while it is made ready: twice (the raw
 * bytes and their normalized form). */
#define REQUEST_BODY_HOLD(n)	(2 * (size_t)(n))

/*
 * Count n more bytes of bodies held (limits.max_buffered_bytes, cap);
 * false, and nothing counted, when that would pass cap.  Every byte
 * counted is given back once with request_buffer_release().
 */
bool	request_buffer_reserve(long long cap, size_t n);
void	request_buffer_release(size_t n);

/*
 * Free every request of the loop still unanswered, with no reply (the
 * exit after shutdown_timeout_ms; evhttp_free closes their connections
 * and the audit log's recovery records them as abandoned).  Only once
 * the loop has stopped: no callback of theirs may run afterwards.
 */
void	request_abort_all(struct gw_loop *);

#endif
