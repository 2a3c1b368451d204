/*
 * test_guard_head.c: unit tests of guard_head.c (cmocka), the guard's
 * reading of a request head.
 *
 * One table of heads, each with the verdict and framing it must get;
 * each head is copied into a buffer of exactly its length, so a read
 * past the end shows up under the sanitizers.  Then the head scanner:
 * fed a byte at a time it finds the same end as in one go.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard_head.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const struct ghead_limits lim = {
	.max_header_bytes = 16384,
	.max_headers = 4,
	.max_body_bytes = 100,
};

static const struct {
	const char		*head;
	int			 status;
	enum ghead_method	 method;
	size_t			 body_len;
} rows[] = {
	{ "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 0, GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 0, GH_GET, 5 },
	{ "POST /x HTTP/1.0\r\nContent-Length:  7 \r\n\r\n", 0, GH_POST, 7 },
	{ "DELETE /x HTTP/1.1\r\nContent-Length: 1\r\n\r\n", 0, GH_DELETE,
	  1 },
	{ "OPTIONS * HTTP/1.1\r\nContent-Length: 2\r\n\r\n", 0, GH_OPTIONS,
	  2 },
	{ "PUT /x HTTP/1.1\ncontent-length: 3\n\n", 0, GH_PUT, 3 },
	{ "PATCH /x HTTP/1.1\r\nContent-Length: 4\r\n"
	  "Content-Length: 4\r\n\r\n", 0, GH_PATCH, 4 },
	/* evhttp reads no body for HEAD and TRACE. */
	{ "HEAD / HTTP/1.1\r\n\r\n", 0, GH_HEAD, 0 },
	{ "HEAD / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, GH_HEAD, 0 },
	{ "HEAD / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", 400, GH_HEAD, 0 },
	{ "HEAD / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
	  GH_HEAD, 0 },
	{ "HEAD / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 400,
	  GH_HEAD, 0 },
	{ "HEAD / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n", 400, GH_HEAD,
	  0 },
	{ "TRACE / HTTP/1.1\r\n\r\n", 405, GH_TRACE, 0 },
	{ "TRACE / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", 405, GH_TRACE,
	  0 },
	{ "CONNECT h:443 HTTP/1.1\r\n\r\n", 405, GH_CONNECT, 0 },
	/* Refused whatever the method. */
	{ "FOO / HTTP/1.1\r\n\r\n", 400, GH_UNKNOWN, 0 },
	{ "get / HTTP/1.1\r\n\r\n", 400, GH_UNKNOWN, 0 },
	{ "GET / HTTP/2\r\n\r\n", 400, GH_GET, 0 },
	{ "GET  / HTTP/1.1\r\n\r\n", 400, GH_GET, 0 },
	{ "GET /\r\n\r\n", 400, GH_GET, 0 },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411,
	  GH_POST, 0 },
	{ "POST / HTTP/1.1\r\nContent-Length: 2\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n", 400, GH_POST, 0 },
	{ "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
	  400, GH_POST, 0 },
	{ "POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n", 400, GH_POST, 0 },
	{ "POST / HTTP/1.1\r\nContent-Length: 12345678901234567\r\n\r\n",
	  400, GH_POST, 0 },
	{ "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413, GH_POST,
	  101 },
	/* evhttp answers any other expectation itself (417): the guard
	 * does, so that evhttp never has to. */
	{ "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2"
	  "\r\n\r\n", 0, GH_POST, 2 },
	{ "POST / HTTP/1.1\r\nexpect:  100-Continue \t\r\n\r\n", 0,
	  GH_POST, 0 },
	/* evhttp strips spaces alone before a value. */
	{ "POST / HTTP/1.1\r\nExpect:\t100-continue\r\n"
	  "Content-Length: 1\r\n\r\n", 417, GH_POST, 0 },
	{ "POST / HTTP/1.1\r\nExpect:  \t100-continue\r\n\r\n", 417,
	  GH_POST, 0 },
	{ "POST / HTTP/1.1\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n",
	  417, GH_POST, 0 },
	{ "GET / HTTP/1.0\r\nExpect: 100-continue, foo\r\n\r\n", 417,
	  GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nExpect: 100-continue\r\nExpect: x\r\n\r\n",
	  417, GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nExpect:\r\n\r\n", 417, GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400, GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nX-A : a\r\n\r\n", 400, GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400, GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nnocolon\r\n\r\n", 400, GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 0,
	  GH_GET, 0 },
	{ "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
	  431, GH_GET, 0 },
};

static void
test_rows(void **state)
{
	size_t i, n;
	struct ghead v;
	char *buf;

	(void)state;
	for (i = 0; i < NELEM(rows); i++) {
		n = strlen(rows[i].head);
		buf = malloc(n);
		assert_non_null(buf);
		memcpy(buf, rows[i].head, n);
		ghead_check(buf, n, &lim, &v);
		if (v.status != rows[i].status || v.method != rows[i].method ||
		    v.body_len != rows[i].body_len)
			fail_msg("row %zu: got %d %d %zu, want %d %d %zu", i,
			    v.status, (int)v.method, v.body_len, rows[i].status,
			    (int)rows[i].method, rows[i].body_len);
		free(buf);
	}
}

/* evhttp 2.1.12's evhttp_method_may_have_body(), method by method. */
static void
test_methods(void **state)
{
	(void)state;
	assert_true(ghead_method_reads_body(GH_GET));
	assert_true(ghead_method_reads_body(GH_POST));
	assert_true(ghead_method_reads_body(GH_PUT));
	assert_true(ghead_method_reads_body(GH_DELETE));
	assert_true(ghead_method_reads_body(GH_OPTIONS));
	assert_true(ghead_method_reads_body(GH_PATCH));
	assert_true(ghead_method_reads_body(GH_CONNECT));
	assert_false(ghead_method_reads_body(GH_HEAD));
	assert_false(ghead_method_reads_body(GH_TRACE));
	assert_false(ghead_method_reads_body(GH_UNKNOWN));
	assert_int_equal(ghead_method_of("HEAD /", 6), GH_HEAD);
	assert_int_equal(ghead_method_of("HEAD", 4), GH_UNKNOWN);
	assert_int_equal(ghead_method_of("HEADX /", 7), GH_UNKNOWN);
	assert_string_equal(ghead_method_name(GH_OPTIONS), "OPTIONS");
}

static void
test_scan(void **state)
{
	static const char *const heads[] = {
		"GET / HTTP/1.1\r\nHost: t\r\n\r\nnext",
		"GET / HTTP/1.1\nHost: t\n\nnext",
		"GET / HTTP/1.1\r\nHost: t\n\r\nnext",
		"GET / HTTP/1.1\r\nX: \r\r\n\r\nnext",
	};
	struct ghead_scan a, b;
	size_t i, j, n, end;

	(void)state;
	for (i = 0; i < NELEM(heads); i++) {
		n = strlen(heads[i]);
		ghead_scan_reset(&a);
		end = 0;
		for (j = 0; j < n && end == 0; j++)
			end = ghead_scan(&a, heads[i] + j, 1);
		ghead_scan_reset(&b);
		assert_int_equal(end, ghead_scan(&b, heads[i], n));
		assert_int_equal(end, n - 4);
	}
	ghead_scan_reset(&a);
	assert_int_equal(ghead_scan(&a, "GET / HTTP/1.1\r\n", 16), 0);
	assert_int_equal(a.scanned, 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
