/*
 * json_strict.h: strict JSON (RFC 8259) from untrusted bytes, and the
 * error list every body check reports into.
 *
 * json-c 0.16 takes a good deal that is not JSON even in STRICT mode
 * (overlong UTF-8, lone surrogates, "1.", NaN, raw control bytes, and
 * duplicate keys, of which it keeps the last).  json_parse_strict() is
 * the one way bytes from a client or from CryptoMate become a tree, so
 * that every route and the answers agree on what is JSON.  The field
 * rules built on it are in validate.h.
 *
 * The error list lives here, not in validate.h, because the parser is
 * the lowest layer that reports into it: the validators include this
 * header, never the other way round.
 *
 * Pure: no I/O, no globals, no clock; thread-safe.  It allocates only
 * what it returns.
 */
#ifndef CMGATE_JSON_STRICT_H
#define CMGATE_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

struct verror {
	char	*field;		/* dotted path, "address.country"; "" = body */
	char	*message;	/* never contains the offending value */
};

struct verrors {
	struct verror	*v;
	size_t		 n, cap;
};

/*
 * Append a copy of (field, message) to errs, which starts zeroed; 0, or
 * -1 when out of memory.  For callers that report their own errors in
 * the same list; verrors_free() releases them.
 */
int		verrors_add(struct verrors *errs, const char *field,
		    const char *message);
void		verrors_free(struct verrors *);

/*
 * Strict JSON parse of body[0..len): STRICT + VALIDATE_UTF8, explicit
 * depth, rejects trailing garbage, duplicate keys, overlong/surrogate
 * UTF-8, non-finite numbers.  On success returns the object (caller owns
 * it); on failure NULL and one error in errs (field "").
 */
struct json_object *json_parse_strict(const char *body, size_t len,
		    int max_depth, struct verrors *errs);

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (n > 0), or 0:
 * Unicode's table 3-7, no overlong forms, no surrogates, nothing above
 * U+10FFFF.  Exported so that the string rules (vstr_normalize) judge
 * UTF-8 exactly as the parser does.
 */
size_t		json_utf8_len(const unsigned char *s, size_t n);

/* JSON white space (RFC 8259 section 2): space, tab, LF, CR; not \f. */
static inline bool
json_is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

#endif
