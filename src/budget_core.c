/*
 * budget_core.c: the upstream budget's arithmetic and queues, pure:
 * no clock read, no event loop, no log (see budget_core.h).
 *
 * The bucket is kept as GCRA, the "virtual scheduling" form of a token
 * bucket: one theoretical arrival time (tat) instead of a token count,
 * in integer nanoseconds, so it neither drifts nor needs a refill tick.
 * With interval T and tolerance tau = (burst - 1) * T, a send at time t
 * is allowed when tat - tau <= t, and then tat = max(tat, t) + T.  With
 * burst 1 any two sends are at least T apart.  T = 1/rate alone would
 * put rate + 1 sends exactly 1 s apart, so that the smallest delay on
 * the way (a busy loop, the network) lands rate + 1 arrivals in one
 * second at CryptoMate: T is (1 s + BCORE_JITTER_MS) / rate, which
 * keeps any 1 s window at <= rate arrivals under that much jitter, for
 * about 5% of the rate.  (The default, 14/s, keeps one more request of
 * margin under CryptoMate's 15/s for larger jitter.)  A caller's
 * ceiling is a second GCRA of its own with burst 1.
 *
 * Time only moves the state through max(tat, now): a clock that jumps
 * forward gives no more than burst sends at once (a long idle is the
 * same), and one that steps back only delays sends (tat stays ahead);
 * every difference of two instants is taken only when it is positive.
 *
 * Waiting requests sit in one FIFO per caller; the callers with
 * someone waiting form a ring served round-robin, one request per
 * turn, so a caller flooding the gateway only lengthens its own queue.
 * Every waiter is also in one list ordered by its first ask, whose
 * head is the next to run out of time (max_queue_wait_ms).
 *
 * Cost: queueing, serving and expiring are O(1); a caller ceiling adds
 * a walk over the callers waiting (few) to find one whose own bucket
 * allows a send.  Nothing is allocated per request or per token; a
 * caller's queue is allocated once per config.
 */
#include "budget_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t
interval_ns(double rate)
{
	double t;

	if (!(rate > 0))
		return 0;
	t = (double)(BCORE_NS_PER_S + BCORE_JITTER_MS * BCORE_NS_PER_MS) /
	    rate;
	/* A rate of a few per century is as good as none at all. */
	if (t > 1e18)
		t = 1e18;
	return t < 1 ? 1 : (uint64_t)t;
}

/* a * b, saturating: no wrap for absurdly low rates. */
static uint64_t
u64mul(uint64_t a, uint64_t b)
{
	return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t
u64add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t
u64max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Whole seconds for Retry-After, rounded up, at least 1. */
static long
ceil_s(uint64_t ns)
{
	uint64_t s = (ns + BCORE_NS_PER_S - 1) / BCORE_NS_PER_S;

	return s < 1 ? 1 : (long)s;
}

/* ---- queues ------------------------------------------------------ */

static struct budget_queue *
queue_new(struct bcore *c, const char *name, double ceiling)
{
	struct budget_queue *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->ceiling = ceiling;
	q->t_ns = interval_ns(ceiling);
	TAILQ_INIT(&q->waiters);
	TAILQ_INSERT_TAIL(&c->all, q, all);
	return q;
}

static struct budget_queue *
queue_find(struct bcore *c, const char *name)
{
	struct budget_queue *q;

	TAILQ_FOREACH(q, &c->all, all)
		if (strcmp(q->name, name) == 0)
			return q;
	return NULL;
}

struct budget_queue *
bcore_queue(struct bcore *c, const char *name, double ceiling)
{
	struct budget_queue *q;

	if ((q = queue_find(c, name)) != NULL)
		return q;
	return queue_new(c, name, ceiling);
}

void
bcore_queue_gc(struct bcore *c, struct budget_queue *q)
{
	if (q->configured || q->n > 0)
		return;
	TAILQ_REMOVE(&c->all, q, all);
	free(q);
}

static void
waiter_unlink(struct bcore *c, struct budget_wait *w, uint64_t now)
{
	struct budget_queue *q = w->q;

	TAILQ_REMOVE(&q->waiters, w, qlink);
	TAILQ_REMOVE(&c->fifo, w, flink);
	q->n--;
	c->queued--;
	w->waited_ns += now > w->t_enq ? now - w->t_enq : 0;
	w->q = NULL;
	if (q->n == 0 && q->in_ring) {
		TAILQ_REMOVE(&c->ring, q, ring);
		q->in_ring = false;
		c->nring--;
	}
}

static void
waiter_link(struct bcore *c, struct budget_queue *q, struct budget_wait *w,
    bool head, uint64_t now)
{
	struct budget_wait *o;

	w->q = q;
	w->t_enq = now;
	if (head) {
		TAILQ_INSERT_HEAD(&q->waiters, w, qlink);
		/* Keep the deadline list ordered: a request coming back is
		 * older than most waiters, so its place is near the head. */
		TAILQ_FOREACH(o, &c->fifo, flink)
			if (o->t_first > w->t_first)
				break;
		if (o != NULL)
			TAILQ_INSERT_BEFORE(o, w, flink);
		else
			TAILQ_INSERT_TAIL(&c->fifo, w, flink);
	} else {
		TAILQ_INSERT_TAIL(&q->waiters, w, qlink);
		TAILQ_INSERT_TAIL(&c->fifo, w, flink);
	}
	q->n++;
	c->queued++;
	if (!q->in_ring) {
		TAILQ_INSERT_TAIL(&c->ring, q, ring);
		q->in_ring = true;
		c->nring++;
	}
}

/* ---- the bucket --------------------------------------------------- */

bool
bcore_paused(const struct bcore *c, uint64_t now)
{
	return c->on && now < c->paused_until;
}

/* When the global bucket next allows a send (may be in the past). */
static uint64_t
global_next(const struct bcore *c)
{
	uint64_t t;

	if (!c->on)
		return 0;
	t = c->tat > c->tau_ns ? c->tat - c->tau_ns : 0;
	return u64max(t, c->paused_until);
}

static uint64_t
own_next(const struct budget_queue *q)
{
	return q->t_ns ? q->tat : 0;
}

static void
take_token(struct bcore *c, struct budget_queue *q, uint64_t now)
{
	if (c->on)
		c->tat = u64max(c->tat, now) + c->t_ns;
	if (q->t_ns)
		q->tat = u64max(q->tat, now) + q->t_ns;
}

/*
 * How long a new request of q would wait.  Round-robin serves one
 * request of each waiting caller per turn, so ahead of it are q's own
 * n and at most n + 1 of each of the other callers waiting, and never
 * more than everyone waiting.  A caller's ceiling may make it longer.
 */
static uint64_t
estimate_wait(const struct bcore *c, const struct budget_queue *q,
    uint64_t now)
{
	uint64_t k, ahead, start, g = 0, own = 0;

	if (c->on) {
		k = (uint64_t)c->nring + (q->in_ring ? 0 : 1);
		ahead = (uint64_t)q->n * k + (k - 1);
		if (ahead > (uint64_t)c->queued)
			ahead = (uint64_t)c->queued;
		start = u64max(global_next(c), now);
		g = u64add(start - now, u64mul(ahead, c->t_ns));
	}
	if (q->t_ns) {
		start = u64max(q->tat, now);
		own = u64add(start - now, u64mul((uint64_t)q->n, q->t_ns));
	}
	return g > own ? g : own;
}

/*
 * Retry-After for a request of q turned away now: when a new one would
 * be let in again, that is when its wait would be within
 * max_queue_wait_ms, or (full) when the queue has sent one more.
 */
static long
retry_after(const struct bcore *c, const struct budget_queue *q,
    uint64_t now, bool full)
{
	uint64_t est, next;

	if (full) {
		next = u64max(global_next(c), own_next(q));
		return ceil_s(next > now ? next - now : 0);
	}
	est = estimate_wait(c, q, now);
	return ceil_s(est > c->max_wait_ns ? est - c->max_wait_ns : 0);
}

/* The first caller in turn whose own ceiling allows a send now. */
static struct budget_queue *
next_in_turn(struct bcore *c, uint64_t now)
{
	struct budget_queue *q;

	if (!c->any_ceiling)
		return TAILQ_FIRST(&c->ring);
	TAILQ_FOREACH(q, &c->ring, ring)
		if (own_next(q) <= now)
			return q;
	return NULL;
}

/* ---- the interface -------------------------------------------------- */

void
bcore_init(struct bcore *c)
{
	memset(c, 0, sizeof(*c));
	TAILQ_INIT(&c->fifo);
	TAILQ_INIT(&c->ring);
	TAILQ_INIT(&c->all);
}

void
bcore_clear(struct bcore *c)
{
	struct budget_queue *q;
	struct budget_wait *w;

	while ((w = TAILQ_FIRST(&c->fifo)) != NULL) {
		TAILQ_REMOVE(&c->fifo, w, flink);
		w->q = NULL;
	}
	while ((q = TAILQ_FIRST(&c->all)) != NULL) {
		TAILQ_REMOVE(&c->all, q, all);
		free(q);
	}
	bcore_init(c);
}

int
bcore_configure(struct bcore *c, const struct bcore_limits *lim,
    const struct bcore_caller *callers, size_t n, struct budget_queue **map,
    uint64_t now)
{
	struct budget_queue *q, *tmp;
	size_t i;

	for (i = 0; i < n; i++) {
		if ((q = queue_find(c, callers[i].name)) == NULL &&
		    (q = queue_new(c, callers[i].name, 0)) == NULL)
			goto fail;
		map[i] = q;
	}
	/* Nothing can fail from here on. */
	TAILQ_FOREACH(q, &c->all, all)
		q->configured = false;
	c->any_ceiling = false;
	for (i = 0; i < n; i++) {
		q = map[i];
		q->configured = true;
		q->ceiling = callers[i].ceiling;
		q->t_ns = interval_ns(q->ceiling);
		if (q->tat > now + q->t_ns)
			q->tat = now + q->t_ns;
		if (q->t_ns)
			c->any_ceiling = true;
	}
	for (q = TAILQ_FIRST(&c->all); q != NULL; q = tmp) {
		tmp = TAILQ_NEXT(q, all);
		if (!q->configured && q->t_ns)
			c->any_ceiling = true;
		bcore_queue_gc(c, q);
	}

	c->rate = lim->rate;
	c->burst = lim->burst;
	c->on = c->rate > 0;
	c->t_ns = interval_ns(c->rate);
	c->tau_ns = c->on ? u64mul((uint64_t)(c->burst - 1), c->t_ns) : 0;
	/* A lower rate must not leave the bucket owing more than one
	 * interval; a budget turned off forgets its pause. */
	if (c->tat > now + c->t_ns)
		c->tat = now + c->t_ns;
	if (!c->on) {
		c->paused_until = 0;
		c->pause_open = false;
	}
	c->max_wait_ns = (uint64_t)lim->max_queue_wait_ms * BCORE_NS_PER_MS;
	c->max_queued = lim->max_queued;
	return 0;
fail:
	for (q = TAILQ_FIRST(&c->all); q != NULL; q = tmp) {
		tmp = TAILQ_NEXT(q, all);
		bcore_queue_gc(c, q);
	}
	return -1;
}

bool
bcore_bypass(const struct bcore *c, double ceiling)
{
	return !c->on && !c->any_ceiling && ceiling <= 0;
}

enum budget_verdict
bcore_acquire(struct bcore *c, struct budget_queue *q, struct budget_wait *w,
    uint64_t now, long *retry_after_s)
{
	w->q = NULL;
	w->t_first = now;
	w->t_enq = now;
	w->waited_ns = 0;
	*retry_after_s = -1;
	/* Straight through only when nobody it competes with is waiting:
	 * a token that just came due belongs to the queue. */
	if (q->n == 0 && (!c->on || c->queued == 0) &&
	    !bcore_paused(c, now) && global_next(c) <= now &&
	    own_next(q) <= now) {
		take_token(c, q, now);
		return BUDGET_GO;
	}
	if (c->queued >= c->max_queued) {
		*retry_after_s = retry_after(c, q, now, true);
		bcore_queue_gc(c, q);
		return BUDGET_REJECT;
	}
	if (estimate_wait(c, q, now) > c->max_wait_ns) {
		*retry_after_s = retry_after(c, q, now, false);
		bcore_queue_gc(c, q);
		return BUDGET_REJECT;
	}
	waiter_link(c, q, w, false, now);
	return BUDGET_QUEUED;
}

bool
bcore_can_requeue(const struct bcore *c, const struct budget_wait *w,
    long delay_ms, uint64_t now)
{
	return c->on && w->q == NULL && delay_ms >= 0 &&
	    now + (uint64_t)delay_ms * BCORE_NS_PER_MS <=
	    w->t_first + c->max_wait_ns;
}

void
bcore_requeue(struct bcore *c, struct budget_queue *q, struct budget_wait *w,
    uint64_t now)
{
	/* It was admitted once: max_queued does not turn it away now. */
	waiter_link(c, q, w, true, now);
}

bool
bcore_pause(struct bcore *c, long *ms, uint64_t now)
{
	uint64_t until;

	if (!c->on || *ms <= 0)
		return false;
	if (*ms > BCORE_MAX_PAUSE_MS)
		*ms = BCORE_MAX_PAUSE_MS;
	until = now + (uint64_t)*ms * BCORE_NS_PER_MS;
	if (until <= c->paused_until)
		return false;
	c->paused_until = until;
	c->pause_open = true;
	return true;
}

void
bcore_cancel(struct bcore *c, struct budget_wait *w, uint64_t now)
{
	struct budget_queue *q = w->q;

	if (q == NULL)
		return;
	waiter_unlink(c, w, now);
	bcore_queue_gc(c, q);
}

/*
 * Expire the waiter out of time first, then hand out a token in turn
 * if the bucket allows.  The caller runs the waiter's callback between
 * steps; a callback may call back into the budget, so nothing is kept
 * from one step to the next.
 */
struct budget_wait *
bcore_next(struct bcore *c, uint64_t now, bool *go, long *retry_after_s,
    bool *pause_over)
{
	struct budget_queue *q;
	struct budget_wait *w;

	w = TAILQ_FIRST(&c->fifo);
	if (w != NULL && now >= w->t_first + c->max_wait_ns) {
		q = w->q;
		waiter_unlink(c, w, now);
		*retry_after_s = retry_after(c, q, now, false);
		bcore_queue_gc(c, q);
		*go = false;
		return w;
	}
	if (bcore_paused(c, now))
		return NULL;
	if (c->pause_open) {
		c->pause_open = false;
		*pause_over = true;
	}
	if (w == NULL)
		return NULL;
	if (c->on && global_next(c) > now)
		return NULL;
	if ((q = next_in_turn(c, now)) == NULL)
		return NULL;
	w = TAILQ_FIRST(&q->waiters);
	take_token(c, q, now);
	waiter_unlink(c, w, now);
	/* Its turn is over: to the back of the ring. */
	if (q->in_ring) {
		TAILQ_REMOVE(&c->ring, q, ring);
		TAILQ_INSERT_TAIL(&c->ring, q, ring);
	}
	bcore_queue_gc(c, q);
	*go = true;
	*retry_after_s = -1;
	return w;
}

/* The next of: a token, the end of a pause, a waiter's deadline. */
bool
bcore_wake(const struct bcore *c, uint64_t *at)
{
	const struct budget_queue *q;
	uint64_t next, g, t;

	if (c->queued == 0) {
		/* Nobody waits: wake only to tell the end of a pause. */
		if (!c->pause_open)
			return false;
		*at = c->paused_until;
		return true;
	}
	next = TAILQ_FIRST(&c->fifo)->t_first + c->max_wait_ns;
	g = global_next(c);
	if (!c->any_ceiling)
		t = g;
	else {
		t = UINT64_MAX;
		TAILQ_FOREACH(q, &c->ring, ring)
			if (u64max(g, own_next(q)) < t)
				t = u64max(g, own_next(q));
	}
	*at = t < next ? t : next;
	return true;
}

uint64_t
bcore_waited_ns(const struct budget_wait *w, uint64_t now)
{
	uint64_t ns = w->waited_ns;

	if (w->q != NULL)
		ns += now > w->t_enq ? now - w->t_enq : 0;
	return ns;
}
