/*
 * guard_head.c: the guard's reading of a request head (see
 * guard_head.h).  Pure: bytes in, verdict out; guard.c feeds it from
 * the connection, tests/fuzz/fuzz_guard.c from the fuzzer.
 */
#include "guard_head.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/*
 * The methods evhttp knows, and whether it reads a body for each:
 * libevent 2.1.12's evhttp_method_may_have_body() says yes for POST,
 * PUT, PATCH, GET, DELETE, OPTIONS and CONNECT, no for HEAD and TRACE.
 * A newer libevent may change this (2.2 does): the table must follow,
 * and tests/e2e/hostile-framing.sh, which asks the real evhttp method
 * by method, says when it no longer does.
 */
static const struct {
	enum ghead_method	 m;
	const char		*name;
	int			 body;
} methods[] = {
	{ GH_GET,	"GET",		1 },
	{ GH_HEAD,	"HEAD",		0 },
	{ GH_POST,	"POST",		1 },
	{ GH_PUT,	"PUT",		1 },
	{ GH_DELETE,	"DELETE",	1 },
	{ GH_OPTIONS,	"OPTIONS",	1 },
	{ GH_PATCH,	"PATCH",	1 },
	{ GH_TRACE,	"TRACE",	0 },
	{ GH_CONNECT,	"CONNECT",	1 },
};
#define NMETHODS	(sizeof(methods) / sizeof(methods[0]))

void
ghead_scan_reset(struct ghead_scan *s)
{
	s->scanned = 0;
	s->nl = 0;
}

size_t
ghead_scan(struct ghead_scan *s, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (s->nl)
				return s->scanned + i + 1;
			s->nl = 1;
		} else if (p[i] == '\r' && s->nl == 1)
			s->nl = 2;
		else
			s->nl = 0;
	}
	s->scanned += n;
	return 0;
}

/* RFC 9110 5.6.2: the characters of a token (a method, a field name). */
static int
is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z') || (ch != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* The method in the first m bytes of p (case matters, as in evhttp). */
static enum ghead_method
method_lookup(const char *p, size_t m)
{
	size_t i;

	for (i = 0; i < NMETHODS; i++)
		if (strlen(methods[i].name) == m &&
		    memcmp(p, methods[i].name, m) == 0)
			return methods[i].m;
	return GH_UNKNOWN;
}

enum ghead_method
ghead_method_of(const char *p, size_t n)
{
	size_t m;

	for (m = 0; m < n && is_tchar((unsigned char)p[m]); m++)
		;
	if (m == n || p[m] != ' ')
		return GH_UNKNOWN;
	return method_lookup(p, m);
}

const char *
ghead_method_name(enum ghead_method m)
{
	size_t i;

	for (i = 0; i < NMETHODS; i++)
		if (methods[i].m == m)
			return methods[i].name;
	return "?";
}

int
ghead_method_reads_body(enum ghead_method m)
{
	size_t i;

	for (i = 0; i < NMETHODS; i++)
		if (methods[i].m == m)
			return methods[i].body;
	return 0;
}

/*
 * The request line, "METHOD SP target SP HTTP/1.x", strictly: evhttp
 * answers a broken one with an HTML page or not at all, and is lax
 * about what it lets through.  The method must be one evhttp knows
 * (the front end answers a known but wrong one with 405); the target
 * is visible ASCII.  Sets *method when the line starts with a known
 * method, even if the rest is broken.  0 or 400.
 */
static int
check_request_line(const char *l, size_t len, enum ghead_method *method,
    const char **target, size_t *tlen)
{
	size_t m, t;

	for (m = 0; m < len && is_tchar((unsigned char)l[m]); m++)
		;
	if (m >= len || l[m] != ' ')
		return 400;
	if ((*method = method_lookup(l, m)) == GH_UNKNOWN)
		return 400;
	for (t = m + 1; t < len && l[t] > ' ' && l[t] < 0x7f; t++)
		;
	if (t == m + 1 || len - t != 9 || l[t] != ' ' ||
	    (memcmp(l + t + 1, "HTTP/1.0", 8) != 0 &&
	    memcmp(l + t + 1, "HTTP/1.1", 8) != 0))
		return 400;
	*target = l + m + 1;
	*tlen = t - m - 1;
	return 0;
}

/* A field value holds no control characters but HTAB (RFC 9110 5.5):
 * a NUL or a bare CR is read differently by different parsers. */
static int
value_ok(const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return 0;
	}
	return 1;
}

/*
 * An Expect value evhttp goes along with: "100-continue", any case,
 * trimmed as evhttp trims it (evhttp_parse_headers_: spaces alone
 * before it, spaces and tabs after it; "\t100-continue" is another
 * expectation to evhttp).  Any other expectation evhttp would answer
 * itself (417, an HTML page): the guard answers it instead, in JSON
 * (guard.c).
 */
static int
expect_ok(const char *v, const char *ve)
{
	while (v < ve && *v == ' ')
		v++;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	return ve - v == 12 && strncasecmp(v, "100-continue", 12) == 0;
}

/*
 * A Content-Length value: digits only (at most 16, so no overflow),
 * with optional spaces or tabs around them, as evhttp reads it after
 * trimming (strtoll then agrees).  -1 when malformed.
 */
static int
parse_clen(const char *v, const char *ve, unsigned long long *out)
{
	unsigned long long x = 0;
	int digits = 0;

	while (v < ve && (*v == ' ' || *v == '\t'))
		v++;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	for (; v < ve; v++, digits++) {
		if (*v < '0' || *v > '9' || digits > 15)
			return -1;
		x = x * 10 + (unsigned long long)(*v - '0');
	}
	if (digits == 0)
		return -1;
	*out = x;
	return 0;
}

void
ghead_check(const char *h, size_t n, const struct ghead_limits *lim,
    struct ghead *out)
{
	const char *line = h, *end = h + n, *nl, *colon, *q, *target = NULL;
	int have_cl = 0, have_te = 0, bad_expect = 0;
	unsigned long long cl = 0, x, cap;
	size_t rl, count = 0, tlen = 0;

	out->status = 400;
	out->method = GH_UNKNOWN;
	out->body_len = 0;
	out->target_off = out->target_len = 0;
	if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
		return;
	rl = (size_t)(nl - line);
	if (rl > 0 && line[rl - 1] == '\r')
		rl--;
	if (check_request_line(line, rl, &out->method, &target, &tlen) != 0)
		return;
	/* Methods the gateway never serves are refused whole, whatever
	 * follows: evhttp reads no body for TRACE, and a CONNECT would
	 * ask for a tunnel. */
	if (out->method == GH_TRACE || out->method == GH_CONNECT) {
		out->status = 405;
		return;
	}
	for (line = nl + 1; line < end; line = nl + 1) {
		size_t len;

		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			break;
		len = (size_t)(nl - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0)
			break;		/* the empty line */
		/* Folded lines and spaces before the colon are classic
		 * smuggling material: refuse them. */
		if (line[0] == ' ' || line[0] == '\t')
			return;
		if ((colon = memchr(line, ':', len)) == NULL || colon == line)
			return;
		for (q = line; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				return;
		if (!value_ok(colon + 1, len - (size_t)(colon + 1 - line)))
			return;
		if (++count > lim->max_headers) {
			out->status = 431;
			return;
		}
		if ((size_t)(colon - line) == 14 &&
		    strncasecmp(line, "Content-Length", 14) == 0) {
			if (parse_clen(colon + 1, line + len, &x) == -1 ||
			    (have_cl && x != cl))
				return;
			cl = x;
			have_cl = 1;
		} else if ((size_t)(colon - line) == 17 &&
		    strncasecmp(line, "Transfer-Encoding", 17) == 0)
			have_te = 1;
		else if ((size_t)(colon - line) == 6 &&
		    strncasecmp(line, "Expect", 6) == 0 &&
		    !expect_ok(colon + 1, line + len))
			bad_expect = 1;
	}
	if (have_te && have_cl)
		return;		/* both: which one frames the body? refuse */
	/* evhttp reads no body for this method: whatever a body header
	 * announces would be parsed as the next request.  Refuse it. */
	if (!ghead_method_reads_body(out->method) && (have_te || cl > 0))
		return;
	if (have_te) {
		out->status = 411;	/* chunked: send a Content-Length */
		return;
	}
	if (bad_expect) {
		out->status = 417;
		return;
	}
	cap = lim->max_body_bytes;
	if (lim->large_body != NULL && lim->large_body(out->method, target,
	    tlen))
		cap = lim->max_large_body_bytes;
	if (cl > cap) {
		out->status = 413;
		/* Skipped when it fits a size_t; else the connection
		 * closes (body_len 0). */
		out->body_len = cl <= SIZE_MAX ? (size_t)cl : 0;
		return;
	}
	out->status = 0;
	out->body_len = (size_t)cl;
	out->target_off = (size_t)(target - h);
	out->target_len = tlen;
}
