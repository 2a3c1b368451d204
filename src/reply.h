/*
 * reply.h: the reply path every answer takes (see reply.c).
 */
#ifndef CMGATE_REPLY_H
#define CMGATE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/util.h>

struct evbuffer;
struct evhttp_request;
struct evkeyvalq;
struct gw_loop;
struct json_object;

/* Send a reply: the one call every path uses (see reply.c). */
void	reply_send(struct evhttp_request *, int status, struct evbuffer *);

/*
 * Send the gateway's own error: {"code","message","details"?,
 * "request_id"} with X-Request-Id.  details (may be NULL) is an array
 * of {"field","message"} and is consumed.  hname (may be NULL) and
 * hvalue add one header ("Retry-After", "2").  Returns the size of the
 * body sent, for the access log.
 */
size_t	reply_error(struct evhttp_request *, int status,
	    const char *code, const char *message,
	    struct json_object *details, const char *request_id,
	    const char *hname, const char *hvalue);

/*
 * The same error as a whole HTTP/1.1 answer with Connection: close,
 * added to out: for a connection on which evhttp holds no request to
 * answer (the guard's refusals).  A HEAD (head) gets the head alone,
 * with the Content-Length a GET would get.  -1 when out cannot take it.
 */
int	reply_error_raw(struct evbuffer *out, int status, bool head,
	    const char *code, const char *message, const char *hname,
	    const char *hvalue);

/* One access-log line; written with the rest of this loop pass's. */
void	reply_access_log(struct gw_loop *, const char *line);

/* The same for a request with no known caller: at most this many lines
 * a second per loop, the rest counted in one line (see reply.c). */
#define REPLY_UNAUTH_LINES_PER_S	100
void	reply_access_log_unauth(struct gw_loop *, const char *line);
/* The timer (loop->unauth_note, arg the loop) that writes the count of
 * lines left out when no later request does. */
void	reply_unauth_tick(evutil_socket_t, short, void *);

/*
 * The value of the header name (any case) when the request has exactly
 * one; NULL when it has none or more than one.  For headers whose
 * duplicates are ambiguous: which Authorization counts, when a proxy
 * appended its own to the caller's?
 */
const char *reply_sole_header(const struct evkeyvalq *, const char *name);

#endif
