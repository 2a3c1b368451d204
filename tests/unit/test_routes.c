/*
 * test_routes.c: unit tests of the route table and matcher (routes.c).
 *
 * Each row is a method and a raw path, the result expected, and for a
 * match the route's name, the upstream path and the parameters; for a
 * 405 the Allow list; for a 422 the field paths named.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "routes.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define IND		"/management/clients/individuals"

struct rcase {
	const char		*method;
	const char		*path;
	enum route_result	 want;
	const char		*name;	/* ROUTE_OK, ROUTE_BAD_PARAM */
	const char		*up;	/* upstream path (ROUTE_OK) */
	const char		*extra;	/* Allow (405) or error fields (422) */
};

static const struct rcase cases[] = {
	/* Every route of the table, on its own path. */
	{ "POST", IND, ROUTE_OK, "individuals.create", IND, NULL },
	{ "GET", IND, ROUTE_OK, "individuals.list", IND, NULL },
	{ "GET", IND "/abc_DEF-123", ROUTE_OK, "individuals.get",
	  IND "/abc_DEF-123", NULL },
	{ "PUT", IND "/c1", ROUTE_OK, "individuals.update", IND "/c1", NULL },
	{ "DELETE", IND "/c1", ROUTE_OK, "individuals.delete", IND "/c1",
	  NULL },
	{ "GET", IND "/countries", ROUTE_OK, "individuals.countries",
	  IND "/countries", NULL },
	{ "GET", IND "/identifications/US", ROUTE_OK,
	  "individuals.identifications", IND "/identifications/US", NULL },
	{ "GET", IND "/identifications/arg", ROUTE_OK,
	  "individuals.identifications", IND "/identifications/AR", NULL },
	{ "GET", IND "/identifications/mx", ROUTE_OK,
	  "individuals.identifications", IND "/identifications/MX", NULL },
	{ "POST", IND "/c1/products", ROUTE_OK, "products.request",
	  IND "/c1/products", NULL },
	{ "GET", IND "/c1/products", ROUTE_OK, "products.list",
	  IND "/c1/products", NULL },
	{ "POST", IND "/c1/products/p9/documentation", ROUTE_OK,
	  "products.documentation", IND "/c1/products/p9/documentation",
	  NULL },
	{ "POST", IND "/c1/products/p9/submit", ROUTE_OK, "products.submit",
	  IND "/c1/products/p9/submit", NULL },

	/* Literal segments win over parameters. */
	{ "PUT", IND "/countries", ROUTE_BAD_METHOD, NULL, NULL, "GET" },
	{ "DELETE", IND "/countries", ROUTE_BAD_METHOD, NULL, NULL, "GET" },
	{ "GET", IND "/identifications", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "PUT", IND "/identifications", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "/countries/products", ROUTE_NOT_FOUND, NULL, NULL,
	  NULL },
	{ "GET", IND "/identifications/products", ROUTE_NOT_FOUND, NULL,
	  NULL, NULL },

	/* 405 lists the path's methods. */
	{ "PATCH", IND, ROUTE_BAD_METHOD, NULL, NULL, "POST, GET" },
	{ "POST", IND "/c1", ROUTE_BAD_METHOD, NULL, NULL,
	  "GET, PUT, DELETE" },
	{ "DELETE", IND "/c1/products", ROUTE_BAD_METHOD, NULL, NULL,
	  "POST, GET" },
	{ "GET", IND "/c1/products/p9/submit", ROUTE_BAD_METHOD, NULL, NULL,
	  "POST" },

	/* Parameters that do not fit: 422, named by path. */
	{ "GET", IND "/abc%24", ROUTE_BAD_PARAM, "individuals.get", NULL,
	  "path.client_id" },
	{ "GET", IND "/"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  ROUTE_BAD_PARAM, "individuals.get", NULL, "path.client_id" },
	{ "GET", IND "/identifications/ZZ", ROUTE_BAD_PARAM,
	  "individuals.identifications", NULL, "path.country_code" },
	{ "GET", IND "/identifications/USAA", ROUTE_BAD_PARAM,
	  "individuals.identifications", NULL, "path.country_code" },
	{ "POST", IND "/c%201/products/p.9/submit", ROUTE_BAD_PARAM,
	  "products.submit", NULL, "path.client_id path.product_request_id" },

	/* Never a route: dot segments (literal or encoded), empty
	 * segments, a trailing slash, unknown paths. */
	{ "GET", IND "/..", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "/.", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "/%2e%2E", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "/%2e", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "/.%2e/c1/products", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "/c1/../c2", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "//c1", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "/", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", IND "/c1/", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", "/management/clients", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", "", ROUTE_NOT_FOUND, NULL, NULL, NULL },
	{ "GET", "management/clients/individuals", ROUTE_NOT_FOUND, NULL,
	  NULL, NULL },
	{ "GET", IND "/c1/products/p9/documentation/x", ROUTE_NOT_FOUND,
	  NULL, NULL, NULL },
	{ "GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o", ROUTE_NOT_FOUND, NULL,
	  NULL, NULL },
};

static void
test_table(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		const struct rcase *c = &cases[i];
		struct route_match m;
		struct verrors errs = { 0 };
		char allow[64], fields[256] = "";
		enum route_result got;

		got = routes_match(c->method, c->path, &m, allow,
		    sizeof(allow), &errs);
		if (got != c->want)
			fail_msg("%s %s: result %d, want %d", c->method,
			    c->path, got, c->want);
		if (c->name != NULL) {
			assert_non_null(m.route);
			if (strcmp(m.route->name, c->name) != 0)
				fail_msg("%s %s: route %s, want %s", c->method,
				    c->path, m.route->name, c->name);
		}
		if (c->want == ROUTE_OK)
			assert_string_equal(m.upstream_path, c->up);
		if (c->want == ROUTE_BAD_METHOD)
			assert_string_equal(allow, c->extra);
		for (j = 0; j < errs.n; j++) {
			if (j > 0)
				strcat(fields, " ");
			strcat(fields, errs.v[j].field);
		}
		if (c->want == ROUTE_BAD_PARAM)
			assert_string_equal(fields, c->extra);
		else
			assert_int_equal(errs.n, 0);
		verrors_free(&errs);
	}
}

/* The table itself: names unique, and the flags the rest relies on. */
static void
test_rows(void **state)
{
	size_t i, j;

	(void)state;
	assert_int_equal(nroutes, 11);
	for (i = 0; i < nroutes; i++) {
		const struct route *r = &routes[i];

		for (j = i + 1; j < nroutes; j++)
			assert_true(strcmp(r->name, routes[j].name) != 0);
		assert_ptr_equal(route_by_name(r->name), r);
		/* Writes take an Idempotency-Key, reads do not. */
		assert_int_equal(r->idempotent, strcmp(r->method, "GET") != 0);
		/* A body needs a validator; none without a body. */
		assert_int_equal(r->validate == NULL, r->body == RB_NONE);
		assert_int_equal(r->names_client,
		    strstr(r->path, "{client_id}") != NULL);
	}
	assert_null(route_by_name("individuals.nope"));
}

static void
test_args(void **state)
{
	struct route_match m;
	struct verrors errs = { 0 };
	char allow[64];

	(void)state;
	assert_int_equal(routes_match("POST", IND "/c-1/products/pr_2/submit",
	    &m, allow, sizeof(allow), &errs), ROUTE_OK);
	assert_string_equal(route_arg(&m, "client_id"), "c-1");
	assert_string_equal(route_arg(&m, "product_request_id"), "pr_2");
	assert_null(route_arg(&m, "country_code"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
