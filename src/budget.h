/*
 * budget.h: the upstream budget, everything sent to CryptoMate from one
 * event loop.
 *
 * CryptoMate allows 15 requests/s per source IP and per API key, and
 * answers a violation with an escalating company-wide block (1 s, 2 s,
 * ... 5 min).  All callers share cmgate's IP and key, so the budget is
 * one token bucket (upstream.rate_limit_per_sec, upstream.burst) in
 * front of the upstream, with one FIFO queue per caller served
 * round-robin (a flooding caller delays only itself), an optional
 * per-caller ceiling (callers[].rate_limit_per_sec), bounded waiting
 * (upstream.max_queue_wait_ms, upstream.max_queued) and a pause when
 * CryptoMate says 429.
 *
 * A waiting request is a struct budget_wait embedded in the request:
 * queueing allocates nothing per request or per token.
 */
#ifndef CMGATE_BUDGET_H
#define CMGATE_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "budget_core.h"

struct budget;
struct budget_queue;
struct config;
struct conf_caller;
struct event_base;
struct json_object;

/* NULL with a message in err. */
struct budget	*budget_new(struct event_base *, const struct config *,
		    char *err, size_t errlen);
/* Waiting requests are dropped without their callback (exit only). */
void		 budget_free(struct budget *);

/* Take the settings of a new config (SIGHUP); waiters stay queued. */
int		 budget_configure(struct budget *, const struct config *);

/*
 * Ask for a token for a request of caller (a member of cfg, the
 * request's config).  On BUDGET_REJECT *retry_after_s is set.
 */
enum budget_verdict budget_acquire(struct budget *, struct budget_wait *,
		    const struct config *cfg, const struct conf_caller *caller,
		    budget_cb, void *arg, long *retry_after_s);

/*
 * A request sent with a token came back unprocessed (CryptoMate's 429,
 * or not sent at all): put it back at the head of its caller's queue,
 * if it can still be served within max_queue_wait_ms of its first ask
 * after waiting at least delay_ms.  0 when queued (cb runs later), -1
 * when not (the budget is off, or its time is up).
 */
int		 budget_requeue(struct budget *, struct budget_wait *,
		    const struct config *cfg, const struct conf_caller *caller,
		    long delay_ms);

/* Stop all sending for ms milliseconds (CryptoMate blocks the whole
 * company, not one caller).  A longer pause already set stays. */
void		 budget_pause(struct budget *, long ms);

/* Take a waiting request out of its queue (no callback); a no-op when
 * it is not queued. */
void		 budget_cancel(struct budget *, struct budget_wait *);

/* Is the global budget on (rate_limit_per_sec > 0)? */
bool		 budget_enabled(const struct budget *);

/* Milliseconds w has spent queued so far. */
double		 budget_waited_ms(const struct budget_wait *);

/* {"enabled","rate_limit_per_sec","burst","queued","max_queued",
 *  "paused","paused_until","callers":{"name":{"queued",...}}} */
struct json_object *budget_status(const struct budget *);

#endif
