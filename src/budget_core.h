/*
 * budget_core.h: the upstream budget's arithmetic and queues, with no
 * clock and no event loop: every function that depends on the time
 * takes it, `now`, as an argument (CLOCK_MONOTONIC nanoseconds, or any
 * other count of nanoseconds: the unit tests drive it with a fake
 * clock).  budget.c reads the clock once per event, runs this, and
 * turns its answers into callbacks, a timer and log lines.
 *
 * Below the budget: budget.c and tests/unit/test_budget.c call it; the
 * rest of the gateway sees it only through budget.h, which includes it
 * for the types both share (a request embeds its struct budget_wait).
 */
#ifndef CMGATE_BUDGET_CORE_H
#define CMGATE_BUDGET_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "conf.h"

struct budget_queue;

/*
 * The budget's answer to a waiting request: go (a token is taken; send
 * now), or not (it waited max_queue_wait_ms; retry_after_s says when
 * the queue should have room again).
 */
typedef void (*budget_cb)(void *arg, bool go, long retry_after_s);

/* One request's place in the budget; embed it, zeroed, in the request. */
struct budget_wait {
	TAILQ_ENTRY(budget_wait) qlink;		/* in its caller's queue */
	TAILQ_ENTRY(budget_wait) flink;		/* all waiters, by t_first */
	struct budget_queue	*q;		/* non-NULL while queued */
	uint64_t		 t_first;	/* first asked (mono ns) */
	uint64_t		 t_enq;		/* queued this time */
	uint64_t		 waited_ns;	/* time spent queued */
	budget_cb		 cb;
	void			*arg;
};

enum budget_verdict {
	BUDGET_GO,		/* a token is taken: send now */
	BUDGET_QUEUED,		/* cb runs later, exactly once */
	BUDGET_REJECT,		/* over max_queued or max_queue_wait_ms */
};

#define BCORE_NS_PER_MS		1000000ull
#define BCORE_NS_PER_S		1000000000ull
/* A Retry-After beyond this is taken as this: CryptoMate's longest
 * block is 5 minutes, and a broken header must not stop us for days. */
#define BCORE_MAX_PAUSE_MS	600000L
/* A caller's name in its queue, bytes without the NUL. */
#define BCORE_NAME_MAX		CONF_CALLER_NAME_MAX
/* Delivery jitter the spacing absorbs (see budget_core.c). */
#define BCORE_JITTER_MS		50

/* One caller's FIFO of waiting requests, and its own ceiling. */
struct budget_queue {
	char			 name[BCORE_NAME_MAX + 1];
	double			 ceiling;	/* callers[].rate_limit_per_sec */
	uint64_t		 t_ns;		/* its interval; 0 = none */
	uint64_t		 tat;		/* ceiling GCRA state */
	TAILQ_HEAD(, budget_wait) waiters;
	int			 n;
	bool			 in_ring;
	bool			 configured;	/* in the current config */
	TAILQ_ENTRY(budget_queue) ring;
	TAILQ_ENTRY(budget_queue) all;
};

TAILQ_HEAD(budget_qlist, budget_queue);
TAILQ_HEAD(budget_wlist, budget_wait);

/* The whole state of one budget; set up with bcore_init. */
struct bcore {
	/* Settings. */
	bool			 on;		/* rate > 0 */
	double			 rate;
	int			 burst;
	uint64_t		 t_ns;		/* (1 s + jitter) / rate */
	uint64_t		 tau_ns;	/* (burst - 1) * t_ns */
	uint64_t		 max_wait_ns;
	int			 max_queued;
	bool			 any_ceiling;
	/* State. */
	uint64_t		 tat;
	uint64_t		 paused_until;	/* ns; 0 = never */
	bool			 pause_open;	/* a pause whose end is unsaid */
	int			 queued;
	int			 nring;		/* callers waiting */
	struct budget_wlist	 fifo;		/* every waiter, by t_first */
	struct budget_qlist	 ring;		/* callers with waiters */
	struct budget_qlist	 all;
};

/* The global settings (the config's upstream.*). */
struct bcore_limits {
	double		 rate;			/* per s; <= 0: off */
	int		 burst;			/* >= 1 */
	long		 max_queue_wait_ms;
	int		 max_queued;
};

/* One configured caller: its name and ceiling (<= 0: none). */
struct bcore_caller {
	const char	*name;
	double		 ceiling;
};

void		 bcore_init(struct bcore *);
/* Forget the waiters (no callback) and free every queue. */
void		 bcore_clear(struct bcore *);

/*
 * Take new settings and callers; map[i] is set to callers[i]'s queue
 * (map has n slots).  Waiters stay queued.  -1 when out of memory,
 * with nothing changed.
 */
int		 bcore_configure(struct bcore *, const struct bcore_limits *,
		    const struct bcore_caller *callers, size_t n,
		    struct budget_queue **map, uint64_t now);

/* The queue named name, made (with ceiling) if there is none; NULL
 * when out of memory.  Free it with bcore_queue_gc when not used. */
struct budget_queue *bcore_queue(struct bcore *, const char *name,
		    double ceiling);
/* Free q if no config names it and nobody waits in it. */
void		 bcore_queue_gc(struct bcore *, struct budget_queue *);

/* The budget costs nothing for a caller with this ceiling: go. */
bool		 bcore_bypass(const struct bcore *, double ceiling);

/*
 * A new request w of q (w->cb, w->arg set; the rest is set here):
 * BUDGET_GO (a token is taken), BUDGET_QUEUED, or BUDGET_REJECT with
 * *retry_after_s.
 */
enum budget_verdict bcore_acquire(struct bcore *, struct budget_queue *q,
		    struct budget_wait *w, uint64_t now, long *retry_after_s);

/* Can w, sent and come back, wait delay_ms more within its time? */
bool		 bcore_can_requeue(const struct bcore *,
		    const struct budget_wait *w, long delay_ms, uint64_t now);
/* Put w back at the head of q (after bcore_can_requeue said yes). */
void		 bcore_requeue(struct bcore *, struct budget_queue *q,
		    struct budget_wait *w, uint64_t now);

/*
 * Stop all sending for *ms (capped at BCORE_MAX_PAUSE_MS, the cap left
 * in *ms).  true when that set a new end; false when the budget is off,
 * ms <= 0, or a longer pause is already set.
 */
bool		 bcore_pause(struct bcore *, long *ms, uint64_t now);
bool		 bcore_paused(const struct bcore *, uint64_t now);

/* Take w out of its queue (no callback); a no-op when not queued. */
void		 bcore_cancel(struct bcore *, struct budget_wait *w,
		    uint64_t now);

/*
 * One step of serving the queues at now: the next waiter to answer,
 * taken out of its queue, with *go true (a token is taken for it) or
 * false (out of time; *retry_after_s set), or NULL when nothing more
 * can happen before a later now.  *pause_over is set true on the step
 * that first finds a pause ended (log it), else left alone.
 */
struct budget_wait *bcore_next(struct bcore *, uint64_t now, bool *go,
		    long *retry_after_s, bool *pause_over);

/* When to call bcore_next again: false when nothing is due (nobody
 * waits and no pause end to tell), else the instant in *at. */
bool		 bcore_wake(const struct bcore *, uint64_t *at);

/* Nanoseconds w has spent queued up to now. */
uint64_t	 bcore_waited_ns(const struct budget_wait *, uint64_t now);

#endif
