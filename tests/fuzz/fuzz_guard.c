/*
 * fuzz_guard.c: libFuzzer target for the guard's head parser
 * (src/guard_head.c).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Isrc tests/fuzz/fuzz_guard.c src/guard_head.c -o fuzz_guard
 *   ./fuzz_guard -max_total_time=30 tests/fuzz/corpus/guard
 *
 * The input is a connection's byte stream.  It is cut into requests
 * the way the guard (src/guard.c) cuts it: blank lines skipped, the
 * head found within max_header_bytes, checked, then the body it
 * announces passed over.  Besides the sanitizers, it checks:
 *
 *  - finding the end of a head a few bytes at a time (as reads come)
 *    gives the same answer as finding it in one go;
 *  - every verdict is one of the statuses the front end knows (417
 *    included), and
 *    every head let through keeps the limits;
 *  - the smuggling property: for every head the guard lets through,
 *    evhttp (libevent 2.1.12, modelled below from http.c independently
 *    of the guard's code: evhttp_parse_headers_, evhttp_get_body,
 *    evhttp_get_body_length, evhttp_method_may_have_body) would read
 *    exactly the body the guard passes, so the next request starts at
 *    the same byte for both and the guard has checked it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "guard_head.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Small limits, so that the fuzzer reaches them. */
#define MAX_HEAD	2048
static const struct ghead_limits lim = {
	.max_header_bytes = MAX_HEAD,
	.max_headers = 8,
	.max_body_bytes = 256,
};

static void
check(int cond)
{
	if (!cond)
		abort();
}

/*
 * evhttp 2.1.12's body for a request head (head..end, its empty line
 * included): the bytes it reads after the head, or -1 when it would
 * read a chunked body or until the end (never for a request), -2 when
 * it would fail the request.  Headers are read as evhttp reads them:
 * lines end in "\n" (a "\r" before it dropped), a line starting with
 * SP or HTAB continues the header before, the key is what precedes
 * the first ':', and the first header of a name counts.
 */
static long long
evhttp_body(const char *h, size_t n)
{
	const char *p = h, *e = h + n, *nl, *sp, *cl = NULL, *te = NULL;
	size_t cllen = 0, len;
	char method[16], v[MAX_HEAD + 1];
	int body;
	long long x;
	char *endp;

	/* The request line: the guard checked it has a method and a
	 * space. */
	nl = memchr(p, '\n', n);
	check(nl != NULL);
	sp = memchr(p, ' ', (size_t)(nl - p));
	check(sp != NULL);
	len = (size_t)(sp - p);
	check(len < sizeof(method));
	memcpy(method, p, len);
	method[len] = '\0';
	/* evhttp_method_may_have_body() of 2.1.12, from its source. */
	body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0 || strcmp(method, "GET") == 0 ||
	    strcmp(method, "DELETE") == 0 ||
	    strcmp(method, "OPTIONS") == 0 ||
	    strcmp(method, "CONNECT") == 0;
	for (p = nl + 1; p < e; p = nl + 1) {
		const char *colon;

		nl = memchr(p, '\n', (size_t)(e - p));
		len = (size_t)(nl - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		if (*p == ' ' || *p == '\t')
			return -2;	/* folded: the guard refuses it */
		if ((colon = memchr(p, ':', len)) == NULL)
			return -2;
		if ((size_t)(colon - p) == 14 &&
		    strncasecmp(p, "Content-Length", 14) == 0 && cl == NULL) {
			cl = colon + 1;
			cllen = len - (size_t)(colon + 1 - p);
		} else if ((size_t)(colon - p) == 17 &&
		    strncasecmp(p, "Transfer-Encoding", 17) == 0 && te == NULL)
			te = colon + 1;
	}
	if (!body)
		return 0;
	if (te != NULL)
		return -1;	/* chunked, or a length evhttp takes */
	if (cl == NULL)
		return 0;	/* no length: a request has no body (whatever
				 * Connection says, evhttp_get_body) */
	/* The value, as evhttp keeps it: leading spaces skipped, trailing
	 * spaces and tabs trimmed; then strtoll must take all of it (it
	 * skips leading tabs itself).  The value may be as long as the
	 * head, so v holds a whole head: a shorter buffer made this model,
	 * not the guard, refuse a value padded with tabs. */
	while (cllen > 0 && *cl == ' ')
		cl++, cllen--;
	while (cllen > 0 && (cl[cllen - 1] == ' ' || cl[cllen - 1] == '\t'))
		cllen--;
	if (cllen == 0 || cllen >= sizeof(v))
		return -2;
	memcpy(v, cl, cllen);
	v[cllen] = '\0';
	x = strtoll(v, &endp, 10);
	if (*endp != '\0' || x < 0)
		return -2;
	return x;
}

/* Invariants of one verdict on the head h (n bytes). */
static void
check_verdict(const char *h, size_t n, const struct ghead *v)
{
	struct ghead again;
	long long eb;

	check(v->status == 0 || v->status == 400 || v->status == 405 ||
	    v->status == 411 || v->status == 413 || v->status == 417 ||
	    v->status == 431);
	check(n <= lim.max_header_bytes);
	ghead_check(h, n, &lim, &again);
	check(again.status == v->status && again.method == v->method &&
	    again.body_len == v->body_len);
	if (v->method != GH_UNKNOWN)
		check(ghead_method_of(h, n) == v->method);
	if (v->status == 405)
		check(v->method == GH_TRACE || v->method == GH_CONNECT);
	if (v->status == 413)
		check(v->body_len > lim.max_body_bytes);
	if (v->status != 0 && v->status != 413)
		check(v->body_len == 0);
	if (v->status != 0)
		return;
	check(v->method != GH_UNKNOWN && v->method != GH_TRACE &&
	    v->method != GH_CONNECT);
	check(v->body_len <= lim.max_body_bytes);
	if (!ghead_method_reads_body(v->method))
		check(v->body_len == 0);
	/* The guard and evhttp agree on where the next request starts. */
	eb = evhttp_body(h, n);
	check(eb >= 0 && (size_t)eb == v->body_len);
}

/*
 * Find the end of the head at p (avail bytes, searched up to the
 * limit) in pieces of 1..8 bytes, sized by the input itself, and in
 * one go; both must agree.
 */
static size_t
find_end(const char *p, size_t avail)
{
	struct ghead_scan a, b;
	size_t n = avail < lim.max_header_bytes ? avail :
	    lim.max_header_bytes, end = 0, whole, k;

	ghead_scan_reset(&a);
	while (a.scanned < n && end == 0) {
		k = 1 + (unsigned char)p[a.scanned] % 8;
		if (k > n - a.scanned)
			k = n - a.scanned;
		end = ghead_scan(&a, p + a.scanned, k);
	}
	ghead_scan_reset(&b);
	whole = ghead_scan(&b, p, n);
	check(end == whole);
	check(end <= n);
	return end;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t pos = 0, end;
	struct ghead v;

	while (pos < size) {
		/* The guard skips blank lines between requests. */
		if (s[pos] == '\r' || s[pos] == '\n') {
			pos++;
			continue;
		}
		if ((end = find_end(s + pos, size - pos)) == 0)
			break;	/* 431 past the limit, or more to come */
		ghead_check(s + pos, end, &lim, &v);
		check_verdict(s + pos, end, &v);
		if (v.status != 0 && (v.status != 413 || v.body_len == 0))
			break;	/* the connection closes */
		pos += end;
		if (v.body_len > size - pos)
			break;
		pos += v.body_len;
	}
	return 0;
}
