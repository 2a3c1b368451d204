/*
 * workers.h: more event loops serving callers (config key "workers").
 *
 * The main thread runs loop 0 (and the signals); workers - 1 more
 * threads each run their own event_base with its own evhttp, guard,
 * upstream (curl multi), budget, audit and idempotency ports, on their
 * own SO_REUSEPORT listening socket bound to the same address, so the
 * kernel spreads connections across the loops.  They share the audit
 * writer, the idempotency store and the (refcounted) config.  The main
 * loop forwards SIGHUP reloads and SIGTERM drains to them through an
 * eventfd each; nothing else crosses threads.
 */
#ifndef CMGATE_WORKERS_H
#define CMGATE_WORKERS_H

#include <stddef.h>

struct audit;
struct config;
struct event_base;
struct idem;
struct workers;

/* An event_base as every loop of cmgate uses it (epoll's changelist:
 * fewer epoll_ctl calls).  NULL on failure. */
struct event_base *workers_base_new(void);

/*
 * Check that cfg can run on `loops` event loops (cfg->workers at
 * startup; the running count on a reload): the upstream budget is kept
 * per loop, so more than one loop needs it off
 * (upstream.rate_limit_per_sec 0), or N loops would send N times the
 * rate.  0, or -1 with a message in err.
 */
int	workers_check(const struct config *, int loops, char *err,
	    size_t errlen);

/*
 * Start cfg->workers - 1 worker loops listening where listen_fd (loop
 * 0's socket) is bound.  *out is NULL when there are none (workers 1);
 * every other call accepts NULL.  -1 with a message in err.
 */
struct offload;
int	workers_start(struct workers **out, struct config *, struct audit *,
	    struct idem *, struct offload *, int listen_fd, char *err,
	    size_t errlen);

/* How many event loops serve callers: 1 + the workers. */
int	workers_loops(const struct workers *);

/* SIGHUP: every worker loop swaps in cfg (a reference is taken).  The
 * number of loops stays (a change of "workers" needs a restart). */
void	workers_reload(struct workers *, struct config *);

/* SIGTERM: every worker loop stops accepting and drains; a worker's
 * thread ends when its last request is answered. */
void	workers_drain(struct workers *);

/* Requests not yet answered on the worker loops (for the drain); a
 * loop that has ended counts 0. */
int	workers_active(const struct workers *);

/* End every worker loop now, join the threads, free everything (what
 * is still in flight is dropped, as on loop 0).  Before audit_close. */
void	workers_free(struct workers *);

#endif
