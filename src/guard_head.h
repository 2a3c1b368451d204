/*
 * guard_head.h: the guard's reading of one HTTP/1.x request head, as
 * pure functions of its bytes (no libevent, no config, no state but
 * what the caller holds), so that the guard (guard.c), the unit tests
 * and the fuzzer (tests/fuzz/fuzz_guard.c) run the very same code.
 *
 * A head is read for two things: whether it is acceptable, and how
 * its request is framed, that is how many body bytes follow it.  The
 * framing must agree with evhttp's own reading of the same bytes
 * (libevent 2.1.12, http.c: evhttp_get_body, which reads no body at
 * all for HEAD and TRACE whatever the headers say): bytes that one of
 * the two takes for a body and the other parses as the next request
 * would be a request the guard never checked (request smuggling).  So
 * a head whose body evhttp would not read is refused when it announces
 * one, and the methods the gateway never serves are refused whole.
 */
#ifndef CMGATE_GUARD_HEAD_H
#define CMGATE_GUARD_HEAD_H

#include <stddef.h>

enum ghead_method {
	GH_UNKNOWN = 0,		/* not a method the guard lets through */
	GH_GET, GH_HEAD, GH_POST, GH_PUT, GH_DELETE, GH_OPTIONS,
	GH_PATCH, GH_TRACE, GH_CONNECT
};

/*
 * Does the request (method, target as sent) take the larger body cap?
 * (products.documentation; the front end asks the route table.)  Must
 * be pure: the fuzzer calls it too.
 */
typedef int (*ghead_large_fn)(enum ghead_method, const char *target,
		    size_t len);

/* The limits a head is held to (limits.* in the config). */
struct ghead_limits {
	size_t	max_header_bytes;	/* the whole head, empty line included */
	size_t	max_headers;		/* header lines */
	size_t	max_body_bytes;		/* Content-Length */
	/* NULL, or: the requests large_body names may carry up to
	 * max_large_body_bytes (limits.max_document_body_bytes). */
	ghead_large_fn	large_body;
	size_t	max_large_body_bytes;
};

/*
 * Where the search for the end of a head stopped, so that a head that
 * arrives a byte at a time is still looked at once per byte.  Zeroed
 * (ghead_scan_reset) at the start of each head.
 */
struct ghead_scan {
	size_t	scanned;	/* bytes of the head seen so far */
	int	nl;		/* 1 after "\n", 2 after "\n\r" */
};

/* The verdict on one complete head. */
struct ghead {
	int			status;	/* 0: let it through; else the HTTP
					 * status to answer (400, 405, 411,
					 * 413, 417, 431) */
	enum ghead_method	method;	/* GH_UNKNOWN: no method read */
	size_t			body_len; /* status 0: the body bytes that
					 * follow the head; 413: the bytes
					 * to skip before the next request;
					 * else 0 */
	size_t			target_off; /* status 0: the request target, */
	size_t			target_len; /* as bytes of the head */
};

void		ghead_scan_reset(struct ghead_scan *);

/*
 * Feed the next n bytes of a head (those after the s->scanned already
 * seen).  Returns the length of the head, the empty line included
 * ("\r\n\r\n" or "\n\n", as evhttp accepts both), when it ends in
 * these bytes; else 0, and the bytes are counted as seen.
 */
size_t		ghead_scan(struct ghead_scan *, const char *p, size_t n);

/*
 * The method a request line starts with ("GET /..."), or GH_UNKNOWN
 * when p (n bytes) does not start with a method and a space.
 */
enum ghead_method ghead_method_of(const char *p, size_t n);

const char	*ghead_method_name(enum ghead_method);

/*
 * Whether evhttp (libevent 2.1.12) reads a body for a request of this
 * method: not for HEAD and TRACE (nor for a method it does not know).
 */
int		ghead_method_reads_body(enum ghead_method);

/*
 * Check one complete head (len bytes, as ghead_scan measured it, the
 * empty line included) against the limits, and fill *out.  The
 * refusals: a malformed request line, an unknown method, HTTP/0.9 or
 * /2, a folded header, a space before a colon, a header name that is
 * not a token, a control character in a value, differing or malformed
 * Content-Lengths, Content-Length with Transfer-Encoding, and a body
 * announced on a method evhttp reads none for: 400; more than
 * max_headers header lines: 431; TRACE and CONNECT: 405;
 * Transfer-Encoding: 411; a Content-Length over max_body_bytes: 413.
 */
void		ghead_check(const char *head, size_t len,
		    const struct ghead_limits *, struct ghead *out);

#endif
