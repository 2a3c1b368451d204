/*
 * budget.c: the upstream budget (see budget.h for why it exists) on an
 * event loop.
 *
 * The arithmetic (the GCRA bucket, the spacing, each caller's ceiling,
 * the round-robin queues, the deadlines, the pause) is budget_core.c,
 * which reads no clock: this file reads CLOCK_MONOTONIC once per event
 * (a call into the budget, or its timer firing) and passes that `now`
 * to it.  What is left here is the timer, the callbacks, the log lines,
 * turning a config into the core's settings, and the status JSON.  One
 * timer on the loop wakes the budget at the next of: a token, the end
 * of a pause, a waiter's deadline.
 *
 * One budget per event loop.  With several worker loops (workers > 1)
 * each loop would hold its own bucket and the loops together would
 * send workers times the rate: the rate, burst, max_queued and the
 * callers' ceilings must then be split across the loops (rate /
 * workers), or the bucket shared.  Until then workers.c refuses
 * workers > 1 with the budget on.
 */
#include "budget.h"
#include "budget_core.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <json-c/json.h>

#define NS_PER_MS	BCORE_NS_PER_MS
#define NS_PER_S	BCORE_NS_PER_S

struct budget {
	struct event_base	*base;
	struct event		*timer;
	struct bcore		 c;
	int			 running;	/* in budget_run */
	/* Config caller i -> its queue, for the config it was built for
	 * (compared by address only; the loop holds a reference to it). */
	const struct config	*map_cfg;
	struct budget_queue	**map;
	size_t			 nmap;
};

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
	if (cfg == b->map_cfg && caller >= cfg->callers &&
	    (size_t)(caller - cfg->callers) < b->nmap)
		return b->map[caller - cfg->callers];
	return bcore_queue(&b->c, caller->name, caller->rate_limit_per_sec);
}

/* Wake at the next token, pause end or deadline; sleep if none wait. */
static void
budget_schedule(struct budget *b, uint64_t now)
{
	struct timeval tv;
	uint64_t at, t;

	if (b->running)
		return;		/* budget_run schedules when it is done */
	if (!bcore_wake(&b->c, &at)) {
		evtimer_del(b->timer);
		return;
	}
	t = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(t / NS_PER_S);
	tv.tv_usec = (suseconds_t)((t % NS_PER_S) / 1000);
	/* libevent rounds a timeout up to its clock; a timer that fires a
	 * hair early only finds no token and comes back here. */
	evtimer_add(b->timer, &tv);
}

/*
 * Answer every waiter that can be answered at now: the ones out of
 * time, then tokens in turn while the bucket allows.  A callback may
 * call back into the budget (it reads the clock for itself then).
 */
static void
budget_run(struct budget *b, uint64_t now)
{
	struct budget_wait *w;
	bool go, over;
	long ra;

	if (b->running)
		return;
	b->running = 1;
	for (;;) {
		over = false;
		w = bcore_next(&b->c, now, &go, &ra, &over);
		if (over)
			log_info("upstream budget: pause over; sending again "
			    "(%d waiting)", b->c.queued);
		if (w == NULL)
			break;
		w->cb(w->arg, go, ra);
	}
	b->running = 0;
	budget_schedule(b, now);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	budget_run(arg, now_mono_ns());
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
	bcore_init(&b->c);
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
	if (b == NULL)
		return;
	bcore_clear(&b->c);
	if (b->timer)
		event_free(b->timer);
	free(b->map);
	free(b);
}

int
budget_configure(struct budget *b, const struct config *cfg)
{
	struct budget_queue **map;
	struct bcore_caller *callers;
	struct bcore_limits lim;
	uint64_t now = now_mono_ns();
	size_t i, n = cfg->ncallers ? cfg->ncallers : 1;

	map = calloc(n, sizeof(*map));
	callers = calloc(n, sizeof(*callers));
	if (map == NULL || callers == NULL)
		goto fail;
	for (i = 0; i < cfg->ncallers; i++) {
		callers[i].name = cfg->callers[i].name;
		callers[i].ceiling = cfg->callers[i].rate_limit_per_sec;
	}
	lim.rate = cfg->upstream.rate_limit_per_sec;
	lim.burst = cfg->upstream.burst;
	lim.max_queue_wait_ms = cfg->upstream.max_queue_wait_ms;
	lim.max_queued = cfg->upstream.max_queued;
	if (bcore_configure(&b->c, &lim, callers, cfg->ncallers, map,
	    now) == -1)
		goto fail;
	free(callers);
	free(b->map);
	b->map = map;
	b->nmap = cfg->ncallers;
	b->map_cfg = cfg;
	budget_schedule(b, now);
	return 0;
fail:
	free(callers);
	free(map);
	return -1;
}

enum budget_verdict
budget_acquire(struct budget *b, struct budget_wait *w,
    const struct config *cfg, const struct conf_caller *caller,
    budget_cb cb, void *arg, long *retry_after_s)
{
	struct budget_queue *q;
	enum budget_verdict v;
	uint64_t now = now_mono_ns();

	w->q = NULL;
	w->t_first = now;
	w->t_enq = now;
	w->waited_ns = 0;
	w->cb = cb;
	w->arg = arg;
	*retry_after_s = -1;
	if (bcore_bypass(&b->c, caller->rate_limit_per_sec))
		return BUDGET_GO;	/* the budget is off: no cost at all */
	if ((q = queue_for(b, cfg, caller)) == NULL) {
		*retry_after_s = 1;
		return BUDGET_REJECT;
	}
	if ((v = bcore_acquire(&b->c, q, w, now, retry_after_s)) ==
	    BUDGET_QUEUED)
		budget_schedule(b, now);
	return v;
}

int
budget_requeue(struct budget *b, struct budget_wait *w,
    const struct config *cfg, const struct conf_caller *caller,
    long delay_ms)
{
	struct budget_queue *q;
	uint64_t now = now_mono_ns();

	if (!bcore_can_requeue(&b->c, w, delay_ms, now))
		return -1;
	if ((q = queue_for(b, cfg, caller)) == NULL)
		return -1;
	bcore_requeue(&b->c, q, w, now);
	budget_schedule(b, now);
	return 0;
}

void
budget_pause(struct budget *b, long ms)
{
	uint64_t now = now_mono_ns();

	if (!bcore_pause(&b->c, &ms, now))
		return;
	log_warn("upstream budget: paused for %ld ms; nothing is sent "
	    "upstream until then (%d waiting)", ms, b->c.queued);
	budget_schedule(b, now);
}

void
budget_cancel(struct budget *b, struct budget_wait *w)
{
	uint64_t now;

	if (w->q == NULL)
		return;
	now = now_mono_ns();
	bcore_cancel(&b->c, w, now);
	budget_schedule(b, now);
}

bool
budget_enabled(const struct budget *b)
{
	return b->c.on;
}

double
budget_waited_ms(const struct budget_wait *w)
{
	return (double)bcore_waited_ns(w, now_mono_ns()) / 1e6;
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
	bool p = bcore_paused(&b->c, now);
	char ts[32];

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "enabled", json_object_new_boolean(b->c.on));
	json_object_object_add(o, "rate_limit_per_sec",
	    json_object_new_double(b->c.rate));
	json_object_object_add(o, "burst", json_object_new_int(b->c.burst));
	json_object_object_add(o, "queued", json_object_new_int(b->c.queued));
	json_object_object_add(o, "max_queued",
	    json_object_new_int(b->c.max_queued));
	json_object_object_add(o, "max_queue_wait_ms", json_object_new_int64(
	    (int64_t)(b->c.max_wait_ns / NS_PER_MS)));
	json_object_object_add(o, "paused", json_object_new_boolean(p));
	if (p) {
		mono_to_iso8601(b->c.paused_until, now, ts, sizeof(ts));
		json_object_object_add(o, "paused_until",
		    json_object_new_string(ts));
		json_object_object_add(o, "pause_remaining_ms",
		    json_object_new_int64((int64_t)((b->c.paused_until - now) /
		    NS_PER_MS)));
	} else {
		json_object_object_add(o, "paused_until", NULL);
		json_object_object_add(o, "pause_remaining_ms",
		    json_object_new_int(0));
	}
	cs = json_object_new_object();
	TAILQ_FOREACH(q, &b->c.all, all) {
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
