/*
 * test_util.c: fmt_ms3 (src/util.c) writes what printf's "%.3f" writes,
 * on exact ties (x.xxx5 representable in binary), on values a hair
 * either side of a tie, on the ns / 1e6 figures the gateway formats,
 * and on what it leaves to snprintf (negative, -0, huge, NaN, inf);
 * fmt_ulong and fmt_long write what %llu and %lld write, at the ends of
 * their ranges too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void
same(double v)
{
	char got[FMT_MS3_LEN], want[64];
	int n = fmt_ms3(got, v);

	snprintf(want, sizeof(want), "%.3f", v);
	if (strcmp(got, want) != 0)
		fail_msg("%.17g: fmt_ms3 wrote %s, printf %s", v, got, want);
	assert_int_equal(n, (int)strlen(want));
}

static void
test_fixed(void **state)
{
	static const double v[] = { 0, 0.0005, 0.0015, 0.0625, 0.1875,
	    1.0625, 2.5625, 0.001, 0.999, 0.9995, 0.99949999999999994,
	    1e-320, 123456.7895, 1099511627.775, 1099511627.776, 5e12,
	    -0.0, -1.5 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		same(v[i]);
	same(NAN);
	same(INFINITY);
}

static void
test_random(void **state)
{
	uint64_t s = 88172645463325252ull, r;
	long i;

	(void)state;
	for (i = 0; i < 600000; i++) {
		double v;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		r = s;
		switch (i % 5) {
		case 0:		/* durations: ns / 1e6 */
			v = (double)(r % 100000000000ull) / 1e6;
			break;
		case 1:		/* halves of a thousandth */
			v = (double)(r % 2000000001ull) / 2000.0;
			break;
		case 2:		/* exact ties */
			v = (double)(r % 100000000ull) * 0.0625;
			break;
		case 3:		/* a hair either side of a tie */
			v = nextafter((double)(r % 10000000ull) / 1000.0 +
			    0.0005, (r & 1) ? 0 : 1e10);
			break;
		default:
			v = ldexp((double)(r >> 11), -53) * 1000;
			break;
		}
		same(v);
	}
}

static void
test_integers(void **state)
{
	static const long long sv[] = { 0, 1, -1, 9, 10, -10, 99, 100,
	    1234567890123LL, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1 };
	static const unsigned long long uv[] = { 0, 1, 10, 18446744073709551ULL,
	    ULLONG_MAX, ULLONG_MAX - 1 };
	char got[FMT_INT_LEN + 1], want[32];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(sv) / sizeof(sv[0]); i++) {
		n = fmt_long(got, sv[i]);
		got[n] = '\0';
		snprintf(want, sizeof(want), "%lld", sv[i]);
		assert_string_equal(got, want);
	}
	for (i = 0; i < sizeof(uv) / sizeof(uv[0]); i++) {
		n = fmt_ulong(got, uv[i]);
		got[n] = '\0';
		snprintf(want, sizeof(want), "%llu", uv[i]);
		assert_string_equal(got, want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_integers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
