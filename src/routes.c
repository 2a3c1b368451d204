/*
 * routes.c: the route table and the matcher (see routes.h).
 *
 * Matching works on the raw path, split at '/', segment by segment
 * against each template; a "{name}" segment takes any non-empty
 * segment, a literal one only itself.  Of the templates that fit, the
 * one with the most literal segments wins, so "countries" and
 * "identifications" are never taken for a client id.  The parameters
 * are checked only once the method is known to be served on that path:
 * a wrong method is a 405 whatever the ids look like.
 */
#include "routes.h"
#include "conf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The validators as route_validator: each takes what its rules need. */
static enum vresult
v_individual(const char *b, size_t n, struct route_vctx *c, struct json_object **o,
    struct verrors *e)
{
	return validate_individual(b, n, &c->vo, o, e);
}

static enum vresult
v_update(const char *b, size_t n, struct route_vctx *c, struct json_object **o,
    struct verrors *e)
{
	return validate_individual_update(b, n, &c->vo, o, e);
}

static enum vresult
v_product(const char *b, size_t n, struct route_vctx *c, struct json_object **o,
    struct verrors *e)
{
	return validate_product_request(b, n, &c->vo, &c->ko, o, e);
}

static enum vresult
v_document(const char *b, size_t n, struct route_vctx *c, struct json_object **o,
    struct verrors *e)
{
	return validate_product_documentation(b, n, &c->vo, &c->ko, o,
	    &c->doc, e);
}

static enum vresult
v_submit(const char *b, size_t n, struct route_vctx *c, struct json_object **o,
    struct verrors *e)
{
	return validate_product_submit(b, n, &c->vo, o, e);
}

#define IND	"/management/clients/individuals"
#define PRODS	IND "/{client_id}/products"

const struct route routes[] = {
	{ "individuals.create", "POST", IND, RB_JSON, v_individual,
	  RC_BODY, false, true, false },
	{ "individuals.list", "GET", IND, RB_NONE, NULL,
	  RC_BODY, true, false, false },
	{ "individuals.get", "GET", IND "/{client_id}", RB_NONE, NULL,
	  RC_BODY, false, false, true },
	{ "individuals.update", "PUT", IND "/{client_id}", RB_JSON,
	  v_update, RC_BODY, false, true, true },
	{ "individuals.delete", "DELETE", IND "/{client_id}", RB_NONE, NULL,
	  RC_BODY, false, true, true },
	{ "individuals.countries", "GET", IND "/countries", RB_NONE, NULL,
	  RC_BODY, true, false, false },
	{ "individuals.identifications", "GET",
	  IND "/identifications/{country_code}", RB_NONE, NULL,
	  RC_BODY, true, false, false },
	{ "products.request", "POST", PRODS, RB_JSON, v_product,
	  RC_BODY, false, true, true },
	{ "products.list", "GET", PRODS, RB_NONE, NULL,
	  RC_BODY, true, false, true },
	{ "products.documentation", "POST",
	  PRODS "/{product_request_id}/documentation", RB_JSON,
	  v_document, RC_DOCUMENT, false, true, true },
	{ "products.submit", "POST", PRODS "/{product_request_id}/submit",
	  RB_EMPTY_OK, v_submit, RC_BODY, false, true, true },
};
const size_t nroutes = sizeof(routes) / sizeof(routes[0]);

#define MAX_SEGS	12	/* segments in a path we look at */

struct seg {
	const char	*p;
	size_t		 len;
};

/* Split path ("/a/b") into segments; -1 when it is not one we serve:
 * no leading '/', an empty segment ("//", a trailing '/'), or too many. */
static int
split(const char *path, struct seg *s, size_t *n)
{
	const char *p = path;

	*n = 0;
	if (*p != '/')
		return -1;
	while (*p == '/') {
		const char *e = ++p;

		while (*e != '\0' && *e != '/')
			e++;
		if (e == p || *n == MAX_SEGS)
			return -1;
		s[*n].p = p;
		s[(*n)++].len = (size_t)(e - p);
		p = e;
	}
	return *p == '\0' ? 0 : -1;
}

/* "." or "..", literal or percent-encoded in any case ("%2e", "%2E."). */
static int
dot_segment(const struct seg *s)
{
	size_t i = 0, dots = 0;

	while (i < s->len) {
		if (s->p[i] == '.')
			i++;
		else if (s->len - i >= 3 && s->p[i] == '%' &&
		    s->p[i + 1] == '2' && (s->p[i + 2] == 'e' ||
		    s->p[i + 2] == 'E'))
			i += 3;
		else
			return 0;
		dots++;
	}
	return dots == 1 || dots == 2;
}

/*
 * Is segment s, at position pos, a literal of some template there
 * ("countries", "identifications")?  Such a word is never taken as a
 * parameter, whatever follows it.
 */
static int
reserved(const struct seg *s, size_t pos)
{
	struct seg ts[MAX_SEGS];
	size_t i, tn;

	for (i = 0; i < nroutes; i++)
		if (split(routes[i].path, ts, &tn) == 0 && pos < tn &&
		    ts[pos].p[0] != '{' && ts[pos].len == s->len &&
		    memcmp(ts[pos].p, s->p, s->len) == 0)
			return 1;
	return 0;
}

/*
 * Does template t fit the path's segments?  Returns the number of
 * literal segments (its specificity), or -1.
 */
static int
fits(const char *t, const struct seg *s, size_t n)
{
	struct seg ts[MAX_SEGS];
	size_t tn, i;
	int lit = 0;

	if (split(t, ts, &tn) == -1 || tn != n)
		return -1;
	for (i = 0; i < n; i++) {
		if (ts[i].p[0] == '{') {
			if (reserved(&s[i], i))
				return -1;
			continue;
		}
		if (ts[i].len != s[i].len ||
		    memcmp(ts[i].p, s[i].p, s[i].len) != 0)
			return -1;
		lit++;
	}
	return lit;
}

/*
 * s (n bytes) at o, cut to what left bytes hold as snprintf would cut
 * it; returns n, the length it wanted.  The matcher runs on every
 * request, and these copies were half its cost through snprintf.
 */
static size_t
put(char *o, size_t left, const char *s, size_t n)
{
	size_t k;

	if (left == 0)
		return n;
	k = n < left ? n : left - 1;
	memcpy(o, s, k);
	o[k] = '\0';
	return n;
}

/* "/" and a segment into the upstream path; -1 when it does not fit. */
static int
put_seg(char **o, size_t *left, const char *s, size_t n)
{
	if (n + 1 >= *left)
		return -1;
	*(*o)++ = '/';
	memcpy(*o, s, n);
	*o += n;
	**o = '\0';
	*left -= n + 1;
	return 0;
}

/*
 * Check and normalize the parameters of m->route from the segments,
 * and build the upstream path.  0, or -1 with errors in errs.
 */
static int
bind_args(struct route_match *m, const struct seg *s, size_t n,
    struct verrors *errs)
{
	struct seg ts[MAX_SEGS];
	char field[80], *o = m->upstream_path;
	size_t tn, i, left = sizeof(m->upstream_path);
	int bad = 0;

	split(m->route->path, ts, &tn);
	m->nargs = 0;
	for (i = 0; i < n && i < tn; i++) {
		struct route_arg *a;

		if (ts[i].p[0] != '{') {
			if (put_seg(&o, &left, s[i].p, s[i].len) == -1)
				return -1;
			continue;
		}
		a = &m->args[m->nargs++];
		/* "{client_id}": the name without its braces. */
		put(a->name, sizeof(a->name), ts[i].p + 1, ts[i].len - 2);
		snprintf(field, sizeof(field), "path.%s", a->name);
		a->value[0] = '\0';
		if (strcmp(a->name, "country_code") == 0) {
			char cc[3];

			if (validate_path_country(s[i].p, s[i].len, cc,
			    errs) == -1)
				bad = 1;
			else
				snprintf(a->value, sizeof(a->value), "%s", cc);
		} else if (validate_path_id(s[i].p, s[i].len, field,
		    errs) == -1)
			bad = 1;
		else {
			memcpy(a->value, s[i].p, s[i].len);
			a->value[s[i].len] = '\0';
		}
		if (put_seg(&o, &left, a->value, strlen(a->value)) == -1)
			return -1;
	}
	return bad ? -1 : 0;
}

enum route_result
routes_match(const char *method, const char *path, struct route_match *m,
    char *allow, size_t allowlen, struct verrors *errs)
{
	struct seg s[MAX_SEGS];
	size_t n, i, alen = 0;
	int best = -1, lit[sizeof(routes) / sizeof(routes[0])];
	const char *tmpl = NULL;

	memset(m, 0, sizeof(*m));
	if (allowlen > 0)
		allow[0] = '\0';
	if (split(path, s, &n) == -1)
		return ROUTE_NOT_FOUND;
	for (i = 0; i < n; i++)
		if (dot_segment(&s[i]))
			return ROUTE_NOT_FOUND;
	for (i = 0; i < nroutes; i++) {
		lit[i] = fits(routes[i].path, s, n);
		if (lit[i] > best)
			best = lit[i];
	}
	if (best < 0)
		return ROUTE_NOT_FOUND;
	/* The winning template; the rows that share it differ by method. */
	for (i = 0; i < nroutes; i++) {
		if (lit[i] != best)
			continue;
		if (tmpl == NULL)
			tmpl = routes[i].path;
		if (strcmp(routes[i].path, tmpl) != 0)
			continue;
		if (strcmp(routes[i].method, method) == 0)
			m->route = &routes[i];
		if (allowlen > 0) {
			char item[16];
			size_t w;

			/* ", GET": at most 2 + 6 bytes (the methods). */
			w = put(item, sizeof(item), ", ", alen ? 2 : 0);
			w += put(item + w, sizeof(item) - w, routes[i].method,
			    strlen(routes[i].method));
			if (w < sizeof(item)) {
				put(allow + alen, allowlen - alen, item, w);
				if (w < allowlen - alen)
					alen += w;
			}
		}
	}
	if (m->route == NULL)
		return ROUTE_BAD_METHOD;
	if (bind_args(m, s, n, errs) == -1)
		return ROUTE_BAD_PARAM;
	return ROUTE_OK;
}

const char *
route_arg(const struct route_match *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nargs; i++)
		if (strcmp(m->args[i].name, name) == 0)
			return m->args[i].value;
	return NULL;
}

const struct route *
route_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < nroutes; i++)
		if (strcmp(routes[i].name, name) == 0)
			return &routes[i];
	return NULL;
}

bool
route_pattern_match(const char *pattern, const char *name)
{
	size_t n = strlen(pattern);

	if (n > 0 && pattern[n - 1] == '*')
		return strncmp(pattern, name, n - 1) == 0;
	return strcmp(pattern, name) == 0;
}

int
routes_bind_callers(struct config *c, char *err, size_t errlen)
{
	size_t i, j, k;

	/* One bit per row. */
	_Static_assert(sizeof(routes) / sizeof(routes[0]) <=
	    sizeof(unsigned long) * 8, "more routes than bits");
	for (i = 0; i < c->ncallers; i++) {
		struct conf_caller *cc = &c->callers[i];

		cc->routes_allowed = 0;
		for (j = 0; j < cc->nallow; j++) {
			unsigned long bits = 0;

			for (k = 0; k < nroutes; k++)
				if (route_pattern_match(cc->allow[j],
				    routes[k].name))
					bits |= 1UL << k;
			if (bits == 0) {
				snprintf(err, errlen, "%s: callers[%zu] "
				    "(\"%s\").allow: \"%s\" names no route "
				    "(routes: individuals.create, "
				    "individuals.list, individuals.get, "
				    "individuals.update, individuals.delete, "
				    "individuals.countries, "
				    "individuals.identifications, "
				    "products.request, products.list, "
				    "products.documentation, products.submit)",
				    c->path, i, cc->name, cc->allow[j]);
				return -1;
			}
			cc->routes_allowed |= bits;
		}
		/* Ownership lives in the store: a caller limited to its
		 * own clients cannot reach any without it. */
		for (k = 0; k < nroutes && !cc->clients_all &&
		    !c->idempotency.enabled; k++)
			if ((cc->routes_allowed & (1UL << k)) &&
			    (routes[k].names_client ||
			    strcmp(routes[k].name, "individuals.list") == 0)) {
				snprintf(err, errlen, "%s: callers[%zu] "
				    "(\"%s\") reaches only its own clients "
				    "(clients \"own\") on %s, which needs the "
				    "store: set idempotency.enabled, or give "
				    "it clients \"all\"", c->path, i,
				    cc->name, routes[k].name);
				return -1;
			}
	}
	return 0;
}

bool
route_allowed(const struct conf_caller *cc, const struct route *r)
{
	size_t k = (size_t)(r - routes);

	return k < nroutes && (cc->routes_allowed & (1UL << k)) != 0;
}

enum route_cap
routes_body_cap(const char *method, const char *path)
{
	struct seg s[MAX_SEGS];
	size_t n, i, best_i = 0;
	int best = -1, lit;

	if (split(path, s, &n) == -1)
		return RC_BODY;
	for (i = 0; i < nroutes; i++) {
		if (strcmp(routes[i].method, method) != 0)
			continue;
		if ((lit = fits(routes[i].path, s, n)) > best) {
			best = lit;
			best_i = i;
		}
	}
	return best >= 0 ? routes[best_i].body_cap : RC_BODY;
}
