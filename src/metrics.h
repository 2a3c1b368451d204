/*
 * metrics.h: counters and histograms for GET /metrics, in Prometheus
 * text exposition format.
 *
 * One registry per event loop, written only by that loop's thread
 * (relaxed atomics, no locks on the request path); a scrape on any
 * loop sums every registry.  Labels come from bounded sets only: the
 * route table, caller names from the config (capped; "unknown" for an
 * unauthenticated request), HTTP status codes and the validator's
 * field paths (capped; unknown field names are never echoed), so no
 * caller can grow the output.
 */
#ifndef CMGATE_METRICS_H
#define CMGATE_METRICS_H

#include <stdbool.h>

struct audit;
struct event_base;
struct evbuffer;
struct idem;
struct route;
struct verrors;

/* A loop's gauges, as its owner reads them (server.c). */
struct metrics_gauges {
	int	conns;		/* open caller connections */
	int	active;		/* requests not yet answered */
	int	inflight;	/* calls out to CryptoMate */
	int	draining;	/* 1 after SIGTERM */
};
typedef void	(*metrics_sample_fn)(void *arg, struct metrics_gauges *);

/* A registry for one loop: calls sample (with arg) on the loop's base
 * every second, so that any loop's scrape can show every loop's gauges.
 * NULL when out of memory. */
struct metrics	*metrics_new(struct event_base *, metrics_sample_fn,
		    void *arg);
void		 metrics_free(struct metrics *);

/*
 * One answered request.  route may be NULL (no route matched), caller
 * NULL (not authenticated).  up_status 0 and up_latency_ms 0 mean no
 * upstream call was made; queue_ms is the time waiting for budget;
 * total_ms < 0 leaves the duration histogram alone (answered before
 * the request was read through).
 */
void	metrics_request(struct metrics *, const struct route *,
	    const char *caller, int status, int up_status,
	    double up_latency_ms, double queue_ms, double total_ms);

/* A request refused by least privilege; reason "forbidden_route" or
 * "not_owner" (others are not counted). */
void	metrics_forbidden(struct metrics *, const char *caller,
	    const struct route *, const char *reason);

/* A 422: one count per field in errs. */
void	metrics_validation_failed(struct metrics *, const struct verrors *);

/* Process-wide: requests waiting for upstream budget (+1 when one
 * queues, -1 when it leaves the queue, whatever the reason). */
void	metrics_queue_depth_add(int delta);

/* Process-wide: the outcome of a SIGHUP reload. */
void	metrics_reload_result(bool ok);

/* Write the whole exposition (every loop's registry, the audit log's
 * figures when audit is not NULL, the store's health when idem is not
 * NULL) into out; -1 when out of memory. */
int	metrics_render(struct metrics *self, const struct audit *,
	    struct idem *, struct evbuffer *out);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
