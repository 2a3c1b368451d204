/*
 * test_budget.c: the upstream budget's arithmetic (src/budget_core.c)
 * on a fake clock: a burst and the spacing after it, a long idle, the
 * clock stepping back and jumping forward, round-robin fairness among
 * three callers, a caller's own ceiling, a full queue, the pause on a
 * 429 and a request put back at the head of its queue.  No event loop
 * and no sleep: the clock is a variable each test moves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "budget_core.h"

#include <stdbool.h>
#include <string.h>

#define MS	BCORE_NS_PER_MS
#define S	BCORE_NS_PER_S
/* The spacing at 10/s: (1 s + 50 ms jitter) / 10. */
#define T10	(105 * MS)
/* A start far from 0, so that a step back stays a valid instant. */
#define T0	(1000 * S)

/* A request: its place in the budget and who sent it. */
struct req {
	struct budget_wait	 w;	/* first */
	char			 who;
	int			 answered;	/* 0, or 1 go / -1 turned away */
	long			 retry_after_s;
};

struct fixture {
	struct bcore		 c;
	struct budget_queue	*q[3];	/* callers a, b, c */
	struct req		 r[64];
	int			 nr;
	char			 order[64];	/* who got a token, in turn */
	int			 norder;
	uint64_t		 sent[64];	/* when */
	int			 expired;
	bool			 pause_over;
};

static struct fixture F;

static void
setup_ceil(double rate, int burst, long max_wait_ms, int max_queued,
    const double ceiling[3])
{
	struct bcore_caller cs[3] = {
		{ "a", ceiling ? ceiling[0] : 0 },
		{ "b", ceiling ? ceiling[1] : 0 },
		{ "c", ceiling ? ceiling[2] : 0 },
	};
	struct bcore_limits lim = { rate, burst, max_wait_ms, max_queued };

	bcore_clear(&F.c);
	memset(&F, 0, sizeof(F));
	bcore_init(&F.c);
	assert_int_equal(bcore_configure(&F.c, &lim, cs, 3, F.q, T0), 0);
}

static void
setup(double rate, int burst, long max_wait_ms, int max_queued)
{
	setup_ceil(rate, burst, max_wait_ms, max_queued, NULL);
}

/* A new request of caller who ('a'..'c') at now. */
static enum budget_verdict
ask(char who, uint64_t now)
{
	struct req *r = &F.r[F.nr++];
	enum budget_verdict v;

	assert_true(F.nr <= 64);
	r->who = who;
	v = bcore_acquire(&F.c, F.q[who - 'a'], &r->w, now,
	    &r->retry_after_s);
	if (v == BUDGET_GO) {
		r->answered = 1;
		F.order[F.norder] = who;
		F.sent[F.norder++] = now;
	} else if (v == BUDGET_REJECT)
		r->answered = -1;
	return v;
}

/* What the timer does at now: answer all that can be answered. */
static int
run(uint64_t now)
{
	struct budget_wait *w;
	struct req *r;
	bool go, over = false;
	long ra;
	int n = 0;

	while ((w = bcore_next(&F.c, now, &go, &ra, &over)) != NULL) {
		r = (struct req *)w;
		assert_int_equal(r->answered, 0);
		r->retry_after_s = ra;
		if (go) {
			r->answered = 1;
			F.order[F.norder] = r->who;
			F.sent[F.norder++] = now;
		} else {
			r->answered = -1;
			F.expired++;
		}
		n++;
	}
	if (over)
		F.pause_over = true;
	return n;
}

/* Follow the budget's own timer until nobody waits; returns the end. */
static uint64_t
drain(uint64_t now)
{
	uint64_t at;
	int guard = 0;

	while (bcore_wake(&F.c, &at) && F.c.queued > 0) {
		assert_true(++guard < 1000);
		if (at > now)
			now = at;
		run(now);
	}
	return now;
}

static int
teardown(void **state)
{
	bcore_clear(&F.c);
	return 0;
}

/* burst sends go at once, the next waits one interval, and the ones
 * after it are spaced by the interval, never closer. */
static void
test_burst_then_spacing(void **state)
{
	uint64_t at;
	int i;

	setup(10, 3, 10000, 100);
	for (i = 0; i < 3; i++)
		assert_int_equal(ask('a', T0), BUDGET_GO);
	assert_int_equal(ask('a', T0), BUDGET_QUEUED);
	assert_int_equal(ask('a', T0), BUDGET_QUEUED);
	assert_int_equal(run(T0), 0);
	assert_true(bcore_wake(&F.c, &at));
	assert_int_equal(at, T0 + T10);
	assert_int_equal(run(at - 1), 0);
	assert_int_equal(run(at), 1);
	assert_true(bcore_wake(&F.c, &at));
	assert_int_equal(at, T0 + 2 * T10);
	drain(at);
	assert_int_equal(F.norder, 5);
	for (i = 3; i < 5; i++)
		assert_true(F.sent[i] - F.sent[i - 1] >= T10);
	assert_false(bcore_wake(&F.c, &at));
}

/* An hour of nothing saves no more than burst tokens. */
static void
test_long_idle(void **state)
{
	uint64_t later = T0 + 3600 * S;
	int i;

	setup(10, 3, 10000, 100);
	assert_int_equal(ask('a', T0), BUDGET_GO);
	for (i = 0; i < 3; i++)
		assert_int_equal(ask('a', later), BUDGET_GO);
	assert_int_equal(ask('a', later), BUDGET_QUEUED);
	assert_int_equal(drain(later), later + T10);
}

/* A clock stepping back only delays: no extra token, no wrapped
 * difference (a wait or a Retry-After of centuries). */
static void
test_clock_steps_back(void **state)
{
	uint64_t back = T0 - 5 * S, at;

	setup(10, 1, 10000, 100);
	assert_int_equal(ask('a', T0), BUDGET_GO);
	assert_int_equal(ask('a', back), BUDGET_QUEUED);
	assert_int_equal(run(back), 0);
	assert_int_equal(run(T0), 0);
	assert_true(bcore_wake(&F.c, &at));
	assert_int_equal(at, T0 + T10);
	assert_int_equal(bcore_waited_ns(&F.r[1].w, back - S), 0);
	assert_int_equal(run(T0 + T10), 1);
	assert_int_equal(F.r[1].answered, 1);
	/* Served at T0 + T10 though it asked at "back": it waited the
	 * difference, and no more than max_queue_wait_ms was promised. */
	assert_int_equal(F.r[1].w.waited_ns, T0 + T10 - back);
	/* Waiting requests whose first ask is after now are not expired
	 * by a step back either. */
	assert_int_equal(ask('a', T0 + T10), BUDGET_QUEUED);
	assert_int_equal(run(back), 0);
	assert_int_equal(F.expired, 0);
}

/* A jump forward expires who was waiting (each told a Retry-After of at
 * least 1 s) and then gives no more than burst sends at once. */
static void
test_clock_jumps_forward(void **state)
{
	uint64_t jump = T0 + 86400 * S;
	int i;

	setup(10, 2, 2000, 100);
	for (i = 0; i < 2; i++)
		assert_int_equal(ask('a', T0), BUDGET_GO);
	for (i = 0; i < 5; i++)
		assert_int_equal(ask('b', T0), BUDGET_QUEUED);
	assert_int_equal(run(jump), 5);
	assert_int_equal(F.expired, 5);
	for (i = 2; i < 7; i++) {
		assert_int_equal(F.r[i].answered, -1);
		assert_true(F.r[i].retry_after_s >= 1);
	}
	assert_int_equal(F.c.queued, 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(ask('c', jump), BUDGET_GO);
	assert_int_equal(ask('c', jump), BUDGET_QUEUED);
}

/* Three callers, one flooding: tokens go round-robin, one each turn,
 * so the flood delays only its own sender. */
static void
test_fairness_three_callers(void **state)
{
	int i;

	setup(10, 1, 60000, 100);
	assert_int_equal(ask('a', T0), BUDGET_GO);
	for (i = 0; i < 6; i++)
		assert_int_equal(ask('a', T0), BUDGET_QUEUED);
	for (i = 0; i < 3; i++)
		assert_int_equal(ask('b', T0 + 1), BUDGET_QUEUED);
	for (i = 0; i < 3; i++)
		assert_int_equal(ask('c', T0 + 2), BUDGET_QUEUED);
	drain(T0 + 2);
	F.order[F.norder] = '\0';
	assert_string_equal(F.order, "aabcabcabcaaa");
	for (i = 1; i < F.norder; i++)
		assert_true(F.sent[i] - F.sent[i - 1] >= T10);
	assert_int_equal(F.expired, 0);
}

/* A caller's own ceiling spaces its sends while the others go at the
 * global rate past it. */
static void
test_caller_ceiling(void **state)
{
	const double ceil[3] = { 1, 0, 0 };
	int i;

	setup_ceil(10, 1, 60000, 100, ceil);
	assert_int_equal(ask('a', T0), BUDGET_GO);
	assert_int_equal(ask('a', T0), BUDGET_QUEUED);
	for (i = 0; i < 3; i++)
		assert_int_equal(ask('b', T0), BUDGET_QUEUED);
	drain(T0);
	F.order[F.norder] = '\0';
	assert_string_equal(F.order, "abbba");
	/* a's second send waited its own interval, 1.05 s. */
	assert_int_equal(F.sent[4], T0 + 1050 * MS);
}

/* Over max_queued: turned away at once with a Retry-After; over
 * max_queue_wait_ms (by the estimate): the same. */
static void
test_full_and_too_long(void **state)
{
	setup(10, 1, 10000, 2);
	assert_int_equal(ask('a', T0), BUDGET_GO);
	assert_int_equal(ask('a', T0), BUDGET_QUEUED);
	assert_int_equal(ask('b', T0), BUDGET_QUEUED);
	assert_int_equal(ask('c', T0), BUDGET_REJECT);
	assert_int_equal(F.r[3].retry_after_s, 1);

	setup(10, 1, 300, 100);
	assert_int_equal(ask('a', T0), BUDGET_GO);
	assert_int_equal(ask('a', T0), BUDGET_QUEUED);	/* 105 ms */
	assert_int_equal(ask('a', T0), BUDGET_QUEUED);	/* 210 ms */
	assert_int_equal(ask('a', T0), BUDGET_REJECT);	/* 315 ms */
	assert_int_equal(F.r[3].retry_after_s, 1);
	assert_int_equal(F.c.queued, 2);
}

/* A 429's pause stops every send until its end, a shorter pause does
 * not cut it, the length is capped, and its end is told once. */
static void
test_pause(void **state)
{
	uint64_t at;
	long ms;

	setup(10, 5, 10000, 100);
	ms = 1000;
	assert_true(bcore_pause(&F.c, &ms, T0));
	ms = 200;
	assert_false(bcore_pause(&F.c, &ms, T0 + 100 * MS));
	assert_true(bcore_paused(&F.c, T0 + 999 * MS));
	assert_int_equal(ask('a', T0 + 10 * MS), BUDGET_QUEUED);
	assert_int_equal(ask('b', T0 + 10 * MS), BUDGET_QUEUED);
	assert_int_equal(run(T0 + 999 * MS), 0);
	assert_false(F.pause_over);
	assert_true(bcore_wake(&F.c, &at));
	assert_int_equal(at, T0 + 1000 * MS);
	assert_int_equal(run(at), 2);	/* the burst is there after it */
	assert_true(F.pause_over);
	F.pause_over = false;
	assert_int_equal(run(at + S), 0);
	assert_false(F.pause_over);
	assert_false(bcore_wake(&F.c, &at));

	ms = 24L * 3600 * 1000;
	assert_true(bcore_pause(&F.c, &ms, T0 + 2 * S));
	assert_int_equal(ms, BCORE_MAX_PAUSE_MS);
	/* Nobody waits: the budget still wakes once, to tell the end. */
	assert_true(bcore_wake(&F.c, &at));
	assert_int_equal(at, T0 + 2 * S + BCORE_MAX_PAUSE_MS * MS);

	/* A budget that is off has no pause. */
	setup(0, 1, 10000, 100);
	ms = 1000;
	assert_false(bcore_pause(&F.c, &ms, T0));
	assert_true(bcore_bypass(&F.c, 0));
}

/* A request that came back (a 429) goes to the head of its queue, only
 * while it can still be served within its time from the first ask. */
static void
test_requeue(void **state)
{
	setup(10, 1, 1000, 100);
	assert_int_equal(ask('a', T0), BUDGET_GO);
	assert_int_equal(ask('a', T0), BUDGET_QUEUED);
	assert_true(bcore_can_requeue(&F.c, &F.r[0].w, 500, T0 + 100 * MS));
	assert_false(bcore_can_requeue(&F.c, &F.r[0].w, 950,
	    T0 + 100 * MS));
	assert_false(bcore_can_requeue(&F.c, &F.r[1].w, 0, T0));
	F.r[0].answered = 0;
	bcore_requeue(&F.c, F.q[0], &F.r[0].w, T0 + 100 * MS);
	F.norder = 0;
	drain(T0 + 100 * MS);
	assert_int_equal(F.norder, 2);
	assert_ptr_equal(F.c.fifo.tqh_first, NULL);
	assert_int_equal(F.r[0].answered, 1);
	assert_true(F.sent[0] < F.sent[1]);
	/* r[0] went first: the one put back is at the head. */
	assert_int_equal(F.r[0].w.waited_ns, 5 * MS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_burst_then_spacing, teardown),
		cmocka_unit_test_teardown(test_long_idle, teardown),
		cmocka_unit_test_teardown(test_clock_steps_back, teardown),
		cmocka_unit_test_teardown(test_clock_jumps_forward, teardown),
		cmocka_unit_test_teardown(test_fairness_three_callers,
		    teardown),
		cmocka_unit_test_teardown(test_caller_ceiling, teardown),
		cmocka_unit_test_teardown(test_full_and_too_long, teardown),
		cmocka_unit_test_teardown(test_pause, teardown),
		cmocka_unit_test_teardown(test_requeue, teardown),
	};

	bcore_init(&F.c);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
