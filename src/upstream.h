/*
 * upstream.h: libcurl multi_socket on the loop, talking to CryptoMate.
 *
 * The only module that sends the API key: it is copied from the config
 * (conf.c reads it and wipes it when the config goes) into one header
 * per profile, by upstream_new and upstream_set_config.
 */
#ifndef CMGATE_UPSTREAM_H
#define CMGATE_UPSTREAM_H

#include <stddef.h>

struct config;
struct event_base;
struct upstream;
struct up_xfer;

enum up_error {
	UP_OK = 0,		/* an HTTP answer (any status) */
	UP_NOT_SENT,		/* connect/DNS failure: never reached upstream */
	UP_TIMEOUT,		/* timed out after the request may have left */
	UP_FAILED,		/* other transport error after sending */
	UP_TOO_LARGE,		/* response over upstream.max_response_bytes */
	UP_BAD_STATUS,		/* no final status in 200..599 (a 1xx, 0, 600+) */
};

/* The longest Retry-After taken from CryptoMate (seconds); more is cut
 * to it, and the budget never pauses longer (budget.c). */
#define UP_RETRY_AFTER_MAX_S	600L

struct up_result {
	enum up_error	 error;
	long		 status;	/* HTTP status when error == UP_OK */
	char		*content_type;	/* borrowed until the callback returns */
	const char	*body;		/* borrowed until the callback returns */
	size_t		 body_len;
	long		 retry_after_s;	/* 0..UP_RETRY_AFTER_MAX_S, else -1 */
	const char	*trace_id;	/* CryptoMate's X-Trace-Id, or NULL */
	double		 latency_ms;
	const char	*error_text;	/* curl's message, no secrets */
};

typedef void (*upstream_cb)(const struct up_result *, void *arg);

struct upstream	*upstream_new(struct event_base *, const struct config *,
		    char *err, size_t errlen);
void		 upstream_free(struct upstream *);

/* Replace the API key (SIGHUP); transfers in flight keep the old one. */
int		 upstream_set_config(struct upstream *, const struct config *);

/* One call to CryptoMate, as the route table describes it. */
struct up_call {
	const char	*method;	/* "GET", "POST", "PUT", "DELETE" */
	const char	*path;		/* built from the route's template */
	const char	*body;		/* POST/PUT only; borrowed */
	size_t		 len;
	const char	*request_id;
	size_t		 max_response;	/* 0: upstream.max_response_bytes */
};

/*
 * Start c->method base_url+c->path.  The body is borrowed: it must stay
 * unchanged until the callback runs or upstream_cancel() returns (the
 * request owns it; no copy per call).  request_id becomes the
 * X-Request-Id header; the caller's Idempotency-Key is not forwarded
 * (README, "Idempotency keys").  cb runs exactly once on the loop,
 * unless upstream_cancel() is called first.  NULL when nothing was
 * started: errno EBUSY when upstream.max_inflight transfers are already
 * in flight (answer 503 upstream_busy), ENOMEM otherwise.
 */
struct up_xfer	*upstream_send(struct upstream *, const struct up_call *,
		    upstream_cb, void *arg);
void		 upstream_cancel(struct up_xfer *);
int		 upstream_inflight(const struct upstream *);

#endif
