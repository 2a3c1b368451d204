/*
 * budget.c: the upstream budget (see budget.h for why it exists).
 *
 * The bucket is kept as GCRA, the "virtual scheduling" form of a token
 * bucket: one theoretical arrival time (tat) instead of a token count,
 * in integer nanoseconds, so it neither drifts nor needs a refill tick.
 * With interval T and tolerance tau = (burst - 1) * T, a send at time t
 * is allowed when tat - tau <= t, and then tat = max(tat, t) + T.  With
 * burst 1 any two sends are at least T apart.  T = 1/rate alone would
 * put rate + 1 sends exactly 1 s apart, so that the smallest delay on
 * the way (a busy loop, the network) lands rate + 1 arrivals in one
 * second at CryptoMate: T is (1 s + BUDGET_JITTER_MS) / rate, which
 * keeps any 1 s window at <= rate arrivals under that much jitter, for
 * about 5% of the rate.  (The default, 14/s, keeps one more request of
 * margin under CryptoMate's 15/s for larger jitter.)  A caller's
 * ceiling is a second GCRA of its own with burst 1.
 *
 * Waiting requests sit in one FIFO per caller; the callers with
 * someone waiting form a ring served round-robin, one request per
 * turn, so a caller flooding the gateway only lengthens its own queue.
 * Every waiter is also in one list ordered by its first ask, whose
 * head is the next to run out of time (max_queue_wait_ms).  One timer
 * on the loop wakes the budget at the next of: a token, the end of a
 * pause, a waiter's deadline.
 *
 * Cost: queueing, serving and expiring are O(1); a caller ceiling adds
 * a walk over the callers waiting (few) to find one whose own bucket
 * allows a send.  Nothing is allocated per request or per token; a
 * caller's queue is allocated once per config.
 *
 * One budget per event loop.  With several worker loops (workers > 1)
 * each loop would hold its own bucket and the loops together would
 * send workers times the rate: the rate, burst, max_queued and the
 * callers' ceilings must then be split across the loops (rate /
 * workers), or the bucket shared.  Until then workers.c refuses
 * workers > 1 with the budget on.
 */
#include "budget.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <json-c/json.h>

#define NS_PER_MS	1000000ull
#define NS_PER_S	1000000000ull
/* A Retry-After beyond this is taken as this: CryptoMate's longest
 * block is 5 minutes, and a broken header must not stop us for days. */
#define BUDGET_MAX_PAUSE_MS	600000L
#define BUDGET_NAME_MAX		64
/* Delivery jitter the spacing absorbs (see the top of the file). */
#define BUDGET_JITTER_MS	50

struct budget_queue {
	char			 name[BUDGET_NAME_MAX + 1];
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

struct budget {
	struct event_base	*base;
	struct event		*timer;
	/* Settings. */
	bool			 on;		/* rate_limit_per_sec > 0 */
	double			 rate;
	int			 burst;
	uint64_t		 t_ns;		/* (1 s + jitter) / rate */
	uint64_t		 tau_ns;	/* (burst - 1) * t_ns */
	uint64_t		 max_wait_ns;
	int			 max_queued;
	bool			 any_ceiling;
	/* State. */
	uint64_t		 tat;
	uint64_t		 paused_until;	/* mono ns; 0 = never */
	bool			 pause_logged;
	int			 queued;
	int			 running;	/* in budget_run */
	int			 nring;		/* callers waiting */
	struct budget_wlist	 fifo;		/* every waiter, by t_first */
	struct budget_qlist	 ring;		/* callers with waiters */
	struct budget_qlist	 all;
	/* Config caller i -> its queue, for the config it was built for
	 * (compared by address only; the loop holds a reference to it). */
	const struct config	*map_cfg;
	struct budget_queue	**map;
	size_t			 nmap;
};

static void budget_schedule(struct budget *);

static uint64_t
interval_ns(double rate)
{
	double t;

	if (!(rate > 0))
		return 0;
	t = (double)(NS_PER_S + BUDGET_JITTER_MS * NS_PER_MS) / rate;
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
	uint64_t s = (ns + NS_PER_S - 1) / NS_PER_S;

	return s < 1 ? 1 : (long)s;
}

/* ---- queues ------------------------------------------------------ */

static struct budget_queue *
queue_new(struct budget *b, const char *name, double ceiling)
{
	struct budget_queue *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->ceiling = ceiling;
	q->t_ns = interval_ns(ceiling);
	TAILQ_INIT(&q->waiters);
	TAILQ_INSERT_TAIL(&b->all, q, all);
	return q;
}

/* Free a queue no config names once nobody waits in it. */
static void
queue_gc(struct budget *b, struct budget_queue *q)
{
	if (q->configured || q->n > 0)
		return;
	TAILQ_REMOVE(&b->all, q, all);
	free(q);
}

/*
 * The queue of caller, a member of cfg.  A request of the current
 * config finds it by index; one that started under an older config
 * (SIGHUP) by name, and a caller since removed gets a queue of its own
 * until its last request leaves.
 */
static struct budget_queue *
queue_for(struct budget *b, const struct config *cfg,
    const struct conf_caller *caller)
{
	struct budget_queue *q;

	if (cfg == b->map_cfg && caller >= cfg->callers &&
	    (size_t)(caller - cfg->callers) < b->nmap)
		return b->map[caller - cfg->callers];
	TAILQ_FOREACH(q, &b->all, all)
		if (strcmp(q->name, caller->name) == 0)
			return q;
	return queue_new(b, caller->name, caller->rate_limit_per_sec);
}

static void
waiter_unlink(struct budget *b, struct budget_wait *w, uint64_t now)
{
	struct budget_queue *q = w->q;

	TAILQ_REMOVE(&q->waiters, w, qlink);
	TAILQ_REMOVE(&b->fifo, w, flink);
	q->n--;
	b->queued--;
	w->waited_ns += now > w->t_enq ? now - w->t_enq : 0;
	w->q = NULL;
	if (q->n == 0 && q->in_ring) {
		TAILQ_REMOVE(&b->ring, q, ring);
		q->in_ring = false;
		b->nring--;
	}
}

static void
waiter_link(struct budget *b, struct budget_queue *q, struct budget_wait *w,
    bool head, uint64_t now)
{
	struct budget_wait *o;

	w->q = q;
	w->t_enq = now;
	if (head) {
		TAILQ_INSERT_HEAD(&q->waiters, w, qlink);
		/* Keep the deadline list ordered: a request coming back is
		 * older than most waiters, so its place is near the head. */
		TAILQ_FOREACH(o, &b->fifo, flink)
			if (o->t_first > w->t_first)
				break;
		if (o != NULL)
			TAILQ_INSERT_BEFORE(o, w, flink);
		else
			TAILQ_INSERT_TAIL(&b->fifo, w, flink);
	} else {
		TAILQ_INSERT_TAIL(&q->waiters, w, qlink);
		TAILQ_INSERT_TAIL(&b->fifo, w, flink);
	}
	q->n++;
	b->queued++;
	if (!q->in_ring) {
		TAILQ_INSERT_TAIL(&b->ring, q, ring);
		q->in_ring = true;
		b->nring++;
	}
}

/* ---- the bucket --------------------------------------------------- */

static bool
paused(const struct budget *b, uint64_t now)
{
	return b->on && now < b->paused_until;
}

/* When the global bucket next allows a send (may be in the past). */
static uint64_t
global_next(const struct budget *b)
{
	uint64_t t;

	if (!b->on)
		return 0;
	t = b->tat > b->tau_ns ? b->tat - b->tau_ns : 0;
	return u64max(t, b->paused_until);
}

static uint64_t
own_next(const struct budget_queue *q)
{
	return q->t_ns ? q->tat : 0;
}

static void
take_token(struct budget *b, struct budget_queue *q, uint64_t now)
{
	if (b->on)
		b->tat = u64max(b->tat, now) + b->t_ns;
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
estimate_wait(const struct budget *b, const struct budget_queue *q,
    uint64_t now)
{
	uint64_t k, ahead, start, g = 0, own = 0;

	if (b->on) {
		k = (uint64_t)b->nring + (q->in_ring ? 0 : 1);
		ahead = (uint64_t)q->n * k + (k - 1);
		if (ahead > (uint64_t)b->queued)
			ahead = (uint64_t)b->queued;
		start = u64max(global_next(b), now);
		g = u64add(start - now, u64mul(ahead, b->t_ns));
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
retry_after(const struct budget *b, const struct budget_queue *q,
    uint64_t now, bool full)
{
	uint64_t est, next;

	if (full) {
		next = u64max(global_next(b), own_next(q));
		return ceil_s(next > now ? next - now : 0);
	}
	est = estimate_wait(b, q, now);
	return ceil_s(est > b->max_wait_ns ? est - b->max_wait_ns : 0);
}

/* The first caller in turn whose own ceiling allows a send now. */
static struct budget_queue *
next_in_turn(struct budget *b, uint64_t now)
{
	struct budget_queue *q;

	if (!b->any_ceiling)
		return TAILQ_FIRST(&b->ring);
	TAILQ_FOREACH(q, &b->ring, ring)
		if (own_next(q) <= now)
			return q;
	return NULL;
}

/*
 * Expire the waiters out of time, then hand out tokens in turn while
 * the bucket allows.  Callbacks may call back into the budget, so no
 * pointer is kept across one and the state is read afresh each round.
 */
static void
budget_run(struct budget *b)
{
	struct budget_queue *q;
	struct budget_wait *w;
	uint64_t now;
	long ra;

	if (b->running)
		return;
	b->running = 1;
	for (;;) {
		now = now_mono_ns();
		w = TAILQ_FIRST(&b->fifo);
		if (w != NULL && now >= w->t_first + b->max_wait_ns) {
			q = w->q;
			waiter_unlink(b, w, now);
			ra = retry_after(b, q, now, false);
			queue_gc(b, q);
			w->cb(w->arg, false, ra);
			continue;
		}
		if (paused(b, now))
			break;
		if (b->pause_logged) {
			b->pause_logged = false;
			log_info("upstream budget: pause over; sending again "
			    "(%d waiting)", b->queued);
		}
		if (w == NULL)
			break;
		if (b->on && global_next(b) > now)
			break;
		if ((q = next_in_turn(b, now)) == NULL)
			break;
		w = TAILQ_FIRST(&q->waiters);
		take_token(b, q, now);
		waiter_unlink(b, w, now);
		/* Its turn is over: to the back of the ring. */
		if (q->in_ring) {
			TAILQ_REMOVE(&b->ring, q, ring);
			TAILQ_INSERT_TAIL(&b->ring, q, ring);
		}
		queue_gc(b, q);
		w->cb(w->arg, true, -1);
	}
	b->running = 0;
	budget_schedule(b);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	budget_run(arg);
}

/* Wake at the next token, pause end or deadline; sleep if none wait. */
static void
budget_schedule(struct budget *b)
{
	struct budget_queue *q;
	struct timeval tv;
	uint64_t now, next, g, t;

	if (b->running)
		return;		/* budget_run schedules when it is done */
	now = now_mono_ns();
	if (b->queued == 0) {
		/* Nobody waits: wake only to log the end of a pause. */
		if (!b->pause_logged) {
			evtimer_del(b->timer);
			return;
		}
		next = b->paused_until;
	} else {
		next = TAILQ_FIRST(&b->fifo)->t_first + b->max_wait_ns;
		g = global_next(b);
		if (!b->any_ceiling)
			t = g;
		else {
			t = UINT64_MAX;
			TAILQ_FOREACH(q, &b->ring, ring)
				if (u64max(g, own_next(q)) < t)
					t = u64max(g, own_next(q));
		}
		if (t < next)
			next = t;
	}
	t = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(t / NS_PER_S);
	tv.tv_usec = (suseconds_t)((t % NS_PER_S) / 1000);
	/* libevent rounds a timeout up to its clock; a timer that fires a
	 * hair early only finds no token and comes back here. */
	evtimer_add(b->timer, &tv);
}

/* ---- public ------------------------------------------------------ */

struct budget *
budget_new(struct event_base *base, const struct config *cfg, char *err,
    size_t errlen)
{
	struct budget *b;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "upstream budget: out of memory");
		return NULL;
	}
	b->base = base;
	TAILQ_INIT(&b->fifo);
	TAILQ_INIT(&b->ring);
	TAILQ_INIT(&b->all);
	if ((b->timer = evtimer_new(base, on_timer, b)) == NULL ||
	    budget_configure(b, cfg) == -1) {
		snprintf(err, errlen, "upstream budget: out of memory");
		budget_free(b);
		return NULL;
	}
	return b;
}

void
budget_free(struct budget *b)
{
	struct budget_queue *q;
	struct budget_wait *w;

	if (b == NULL)
		return;
	while ((w = TAILQ_FIRST(&b->fifo)) != NULL) {
		TAILQ_REMOVE(&b->fifo, w, flink);
		w->q = NULL;
	}
	while ((q = TAILQ_FIRST(&b->all)) != NULL) {
		TAILQ_REMOVE(&b->all, q, all);
		free(q);
	}
	if (b->timer)
		event_free(b->timer);
	free(b->map);
	free(b);
}

int
budget_configure(struct budget *b, const struct config *cfg)
{
	struct budget_queue **map, *q, *tmp;
	uint64_t now = now_mono_ns();
	size_t i;

	if ((map = calloc(cfg->ncallers ? cfg->ncallers : 1,
	    sizeof(*map))) == NULL)
		return -1;
	for (i = 0; i < cfg->ncallers; i++) {
		TAILQ_FOREACH(q, &b->all, all)
			if (strcmp(q->name, cfg->callers[i].name) == 0)
				break;
		if (q == NULL && (q = queue_new(b, cfg->callers[i].name,
		    0)) == NULL)
			goto fail;
		map[i] = q;
	}
	/* Nothing can fail from here on. */
	TAILQ_FOREACH(q, &b->all, all)
		q->configured = false;
	b->any_ceiling = false;
	for (i = 0; i < cfg->ncallers; i++) {
		q = map[i];
		q->configured = true;
		q->ceiling = cfg->callers[i].rate_limit_per_sec;
		q->t_ns = interval_ns(q->ceiling);
		if (q->tat > now + q->t_ns)
			q->tat = now + q->t_ns;
		if (q->t_ns)
			b->any_ceiling = true;
	}
	for (q = TAILQ_FIRST(&b->all); q != NULL; q = tmp) {
		tmp = TAILQ_NEXT(q, all);
		if (!q->configured && q->t_ns)
			b->any_ceiling = true;
		queue_gc(b, q);
	}
	free(b->map);
	b->map = map;
	b->nmap = cfg->ncallers;
	b->map_cfg = cfg;

	b->rate = cfg->upstream.rate_limit_per_sec;
	b->burst = cfg->upstream.burst;
	b->on = b->rate > 0;
	b->t_ns = interval_ns(b->rate);
	b->tau_ns = b->on ? u64mul((uint64_t)(b->burst - 1), b->t_ns) : 0;
	/* A lower rate must not leave the bucket owing more than one
	 * interval; a budget turned off forgets its pause. */
	if (b->tat > now + b->t_ns)
		b->tat = now + b->t_ns;
	if (!b->on) {
		b->paused_until = 0;
		b->pause_logged = false;
	}
	b->max_wait_ns = (uint64_t)cfg->upstream.max_queue_wait_ms *
	    NS_PER_MS;
	b->max_queued = cfg->upstream.max_queued;
	budget_schedule(b);
	return 0;
fail:
	free(map);
	for (q = TAILQ_FIRST(&b->all); q != NULL; q = tmp) {
		tmp = TAILQ_NEXT(q, all);
		queue_gc(b, q);
	}
	return -1;
}

enum budget_verdict
budget_acquire(struct budget *b, struct budget_wait *w,
    const struct config *cfg, const struct conf_caller *caller,
    budget_cb cb, void *arg, long *retry_after_s)
{
	struct budget_queue *q;
	uint64_t now = now_mono_ns();

	w->q = NULL;
	w->t_first = now;
	w->t_enq = now;
	w->waited_ns = 0;
	w->cb = cb;
	w->arg = arg;
	*retry_after_s = -1;
	if (!b->on && !b->any_ceiling && caller->rate_limit_per_sec <= 0)
		return BUDGET_GO;	/* the budget is off: no cost at all */
	if ((q = queue_for(b, cfg, caller)) == NULL) {
		*retry_after_s = 1;
		return BUDGET_REJECT;
	}
	/* Straight through only when nobody it competes with is waiting:
	 * a token that just came due belongs to the queue. */
	if (q->n == 0 && (!b->on || b->queued == 0) && !paused(b, now) &&
	    global_next(b) <= now && own_next(q) <= now) {
		take_token(b, q, now);
		return BUDGET_GO;
	}
	if (b->queued >= b->max_queued) {
		*retry_after_s = retry_after(b, q, now, true);
		queue_gc(b, q);
		return BUDGET_REJECT;
	}
	if (estimate_wait(b, q, now) > b->max_wait_ns) {
		*retry_after_s = retry_after(b, q, now, false);
		queue_gc(b, q);
		return BUDGET_REJECT;
	}
	waiter_link(b, q, w, false, now);
	budget_schedule(b);
	return BUDGET_QUEUED;
}

int
budget_requeue(struct budget *b, struct budget_wait *w,
    const struct config *cfg, const struct conf_caller *caller,
    long delay_ms)
{
	struct budget_queue *q;
	uint64_t now = now_mono_ns();

	if (!b->on || w->q != NULL || delay_ms < 0 ||
	    now + (uint64_t)delay_ms * NS_PER_MS > w->t_first + b->max_wait_ns)
		return -1;
	if ((q = queue_for(b, cfg, caller)) == NULL)
		return -1;
	/* It was admitted once: max_queued does not turn it away now. */
	waiter_link(b, q, w, true, now);
	budget_schedule(b);
	return 0;
}

void
budget_pause(struct budget *b, long ms)
{
	uint64_t now = now_mono_ns(), until;

	if (!b->on || ms <= 0)
		return;
	if (ms > BUDGET_MAX_PAUSE_MS)
		ms = BUDGET_MAX_PAUSE_MS;
	until = now + (uint64_t)ms * NS_PER_MS;
	if (until <= b->paused_until)
		return;
	b->paused_until = until;
	b->pause_logged = true;
	log_warn("upstream budget: paused for %ld ms; nothing is sent "
	    "upstream until then (%d waiting)", ms, b->queued);
	budget_schedule(b);
}

void
budget_cancel(struct budget *b, struct budget_wait *w)
{
	struct budget_queue *q = w->q;

	if (q == NULL)
		return;
	waiter_unlink(b, w, now_mono_ns());
	queue_gc(b, q);
	budget_schedule(b);
}

bool
budget_enabled(const struct budget *b)
{
	return b->on;
}

double
budget_waited_ms(const struct budget_wait *w)
{
	uint64_t ns = w->waited_ns;

	if (w->q != NULL) {
		uint64_t now = now_mono_ns();
		ns += now > w->t_enq ? now - w->t_enq : 0;
	}
	return (double)ns / 1e6;
}

/* A monotonic instant as UTC wall-clock ISO 8601 (ms), into out[32]. */
static void
mono_to_iso8601(uint64_t mono, uint64_t now, char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	char base[24];
	uint64_t wall;

	clock_gettime(CLOCK_REALTIME, &ts);
	wall = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec +
	    (mono - now);
	ts.tv_sec = (time_t)(wall / NS_PER_S);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03dZ", base,
	    (int)((wall % NS_PER_S) / NS_PER_MS));
}

struct json_object *
budget_status(const struct budget *b)
{
	struct json_object *o = json_object_new_object(), *cs;
	const struct budget_queue *q;
	uint64_t now = now_mono_ns();
	bool p = paused(b, now);
	char ts[32];

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "enabled", json_object_new_boolean(b->on));
	json_object_object_add(o, "rate_limit_per_sec",
	    json_object_new_double(b->rate));
	json_object_object_add(o, "burst", json_object_new_int(b->burst));
	json_object_object_add(o, "queued", json_object_new_int(b->queued));
	json_object_object_add(o, "max_queued",
	    json_object_new_int(b->max_queued));
	json_object_object_add(o, "max_queue_wait_ms", json_object_new_int64(
	    (int64_t)(b->max_wait_ns / NS_PER_MS)));
	json_object_object_add(o, "paused", json_object_new_boolean(p));
	if (p) {
		mono_to_iso8601(b->paused_until, now, ts, sizeof(ts));
		json_object_object_add(o, "paused_until",
		    json_object_new_string(ts));
		json_object_object_add(o, "pause_remaining_ms",
		    json_object_new_int64((int64_t)((b->paused_until - now) /
		    NS_PER_MS)));
	} else {
		json_object_object_add(o, "paused_until", NULL);
		json_object_object_add(o, "pause_remaining_ms",
		    json_object_new_int(0));
	}
	cs = json_object_new_object();
	TAILQ_FOREACH(q, &b->all, all) {
		struct json_object *c = json_object_new_object();
		const struct budget_wait *h = TAILQ_FIRST(&q->waiters);

		json_object_object_add(c, "queued", json_object_new_int(q->n));
		json_object_object_add(c, "oldest_wait_ms",
		    json_object_new_int64(h && now > h->t_enq ?
		    (int64_t)((now - h->t_enq) / NS_PER_MS) : 0));
		json_object_object_add(c, "rate_limit_per_sec",
		    json_object_new_double(q->ceiling));
		json_object_object_add(cs, q->name, c);
	}
	json_object_object_add(o, "callers", cs);
	return o;
}
