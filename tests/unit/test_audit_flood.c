/*
 * test_audit_flood.c: the bound on unauthenticated refusals
 * (src/audit_flood.c) with a clock the test drives (from now on): the token bucket's
 * burst and rate, a summary's due time and contents, the Space-Saving
 * count of source addresses past its slots, the cap on reasons, and the
 * size of a summary in the worst case.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit_flood.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC	1000000000ull

/* Sum of the "count" members of the objects in the named array. */
static unsigned long long
sum_counts(const char *s, const char *array)
{
	char key[64];
	const char *p, *end;
	unsigned long long sum = 0;

	snprintf(key, sizeof(key), "\"%s\":[", array);
	assert_non_null(p = strstr(s, key));
	assert_non_null(end = strchr(p, ']'));
	while ((p = strstr(p, "\"count\":")) != NULL && p < end) {
		sum += strtoull(p + 8, NULL, 10);
		p += 8;
	}
	return sum;
}

static unsigned long long
member(const char *s, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\"%s\":", name);
	assert_non_null(p = strstr(s, key));
	return strtoull(p + strlen(key), NULL, 10);
}

static void
test_bucket(void **state)
{
	struct audit_flood *f = audit_flood_new();
	uint64_t t = now_mono_ns() + SEC;
	bool opened;
	int own = 0, i;

	(void)state;
	/* The first call refills from creation time: cap at the burst. */
	for (i = 0; i < 100; i++)
		own += audit_flood_admit(f, "10.0.0.1", "unauthenticated", t,
		    &opened);
	assert_int_equal(own, AUDIT_FLOOD_BURST);
	assert_int_equal(audit_flood_summarized(f), 100 - AUDIT_FLOOD_BURST);
	/* Ten seconds of flood: AUDIT_FLOOD_RATE own records a second. */
	own = 0;
	for (i = 0; i < 10000; i++)
		own += audit_flood_admit(f, "10.0.0.1", "unauthenticated",
		    t + (uint64_t)i * (10 * SEC / 10000), &opened);
	assert_in_range(own, 10 * AUDIT_FLOOD_RATE - 1,
	    10 * AUDIT_FLOOD_RATE + 1);
	audit_flood_free(f);
}

static void
test_summary_due_and_contents(void **state)
{
	struct audit_flood *f = audit_flood_new();
	char out[AUDIT_FLOOD_FIELDS_MAX];
	uint64_t t = now_mono_ns() + SEC;
	bool opened;
	size_t n;
	int i;

	(void)state;
	assert_int_equal(audit_flood_due(f), 0);
	for (i = 0; i < AUDIT_FLOOD_BURST; i++)
		assert_true(audit_flood_admit(f, "10.0.0.1", "unauthenticated",
		    t, &opened));
	assert_int_equal(audit_flood_due(f), 0);	/* nothing counted */
	assert_false(audit_flood_admit(f, "10.0.0.1", "unauthenticated", t,
	    &opened));
	assert_true(opened);
	assert_int_equal(audit_flood_due(f), t + AUDIT_FLOOD_PERIOD_NS);
	assert_false(audit_flood_admit(f, "10.0.0.2", "unauthenticated", t,
	    &opened));
	assert_false(opened);
	assert_false(audit_flood_admit(f, "10.0.0.1", "bad\"code\n", t,
	    &opened));
	/* Not due yet, unless forced (a seal, the stop). */
	assert_int_equal(audit_flood_take(f, false, t + SEC / 2, out,
	    sizeof(out)), 0);
	n = audit_flood_take(f, false, t + SEC, out, sizeof(out));
	assert_true(n > 0 && n == strlen(out));
	assert_int_equal(member(out, "count"), 3);
	assert_int_equal(sum_counts(out, "reasons"), 3);
	assert_int_equal(sum_counts(out, "sources"), 3);
	assert_non_null(strstr(out, "{\"addr\":\"10.0.0.1\",\"count\":2}"));
	assert_non_null(strstr(out, "\"others\":0,\"sources_exact\":true"));
	/* The odd code is cleaned, never escaped or cut into the JSON. */
	assert_non_null(strstr(out, "{\"code\":\"bad?code?\",\"count\":1}"));
	/* Taken: nothing pending. */
	assert_int_equal(audit_flood_due(f), 0);
	assert_int_equal(audit_flood_take(f, true, t + SEC, out,
	    sizeof(out)), 0);
	audit_flood_free(f);
}

/* Many addresses and codes: the summary stays bounded, its counts still
 * add up, and a heavy hitter among them is listed. */
static void
test_many_sources(void **state)
{
	struct audit_flood *f = audit_flood_new();
	char out[AUDIT_FLOOD_FIELDS_MAX], addr[64], code[64];
	uint64_t t = now_mono_ns() + SEC, total = 0;
	bool opened;
	size_t n;
	int i;

	(void)state;
	for (i = 0; i < AUDIT_FLOOD_BURST; i++)
		(void)audit_flood_admit(f, "x", "y", t, &opened);
	for (i = 0; i < 20000; i++) {
		/* Long IPv6-looking addresses, one heavy hitter. */
		if (i % 3 == 0)
			snprintf(addr, sizeof(addr), "2001:db8::1");
		else
			snprintf(addr, sizeof(addr),
			    "2001:0db8:85a3:0000:0000:8a2e:%04x:%04x%%eth0",
			    i & 0xffff, (i * 7) & 0xffff);
		snprintf(code, sizeof(code), "reason_%d_with_a_long_name_%d",
		    i % 20, i % 20);
		if (!audit_flood_admit(f, addr, code, t, &opened))
			total++;
	}
	n = audit_flood_take(f, true, t, out, sizeof(out));
	assert_true(n > 0 && n < AUDIT_FLOOD_FIELDS_MAX);
	/* Under 1.5 KiB: with the record's own members, well inside the
	 * 4 KiB a second the README promises. */
	assert_true(n < 1536);
	assert_int_equal(member(out, "count"), total);
	assert_int_equal(sum_counts(out, "reasons"), total);
	assert_int_equal(sum_counts(out, "sources") +
	    member(out, "others"), total);
	assert_non_null(strstr(out, "\"sources_exact\":false"));
	assert_non_null(strstr(out, "{\"code\":\"other\""));
	assert_non_null(strstr(out, "\"sources\":[{\"addr\":\"2001:db8::1\""));
	audit_flood_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_summary_due_and_contents),
		cmocka_unit_test(test_many_sources),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
