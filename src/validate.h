/*
 * validate.h: rules for request bodies, and their normalization.
 *
 * Pure: no I/O, no globals, no clock (today's date is passed in).  It
 * allocates only what it returns.  This is what the fuzzer and the unit
 * tests call directly.
 */
#ifndef CMGATE_VALIDATE_H
#define CMGATE_VALIDATE_H

#include <stddef.h>
#include <json-c/json.h>

/* Outcome classes: which HTTP error a failure maps to. */
enum vresult {
	V_OK = 0,
	V_INVALID_JSON,		/* 400 invalid_json: syntax, UTF-8, trailing
				   garbage, depth, duplicate keys, not an
				   object */
	V_INVALID,		/* 422 validation_failed: field errors */
};

struct verror {
	char	*field;		/* dotted path, "address.country"; "" = body */
	char	*message;	/* never contains the offending value */
};

struct verrors {
	struct verror	*v;
	size_t		 n, cap;
};

struct vopts {
	int	min_age_years;	/* validation.min_age_years */
	int	max_depth;	/* limits.max_json_depth (json-c depth) */
	int	max_string_length; /* upper bound for any string field */
	int	today_y, today_m, today_d;	/* UTC date, passed in */
};

/*
 * Strict JSON parse of body[0..len): STRICT + VALIDATE_UTF8, explicit
 * depth, rejects trailing garbage, duplicate keys, overlong/surrogate
 * UTF-8, non-finite numbers.  On success returns the object (caller owns
 * it); on failure NULL and one error in errs (field "").
 */
struct json_object *json_parse_strict(const char *body, size_t len,
		    int max_depth, struct verrors *errs);

/*
 * Validate and normalize a create-individual-client body.  On V_OK,
 * *out is the normalized object (caller owns it).  On V_INVALID, errs
 * holds EVERY problem found, each with a dotted path.
 */
enum vresult	validate_individual(const char *body, size_t len,
		    const struct vopts *, struct json_object **out,
		    struct verrors *errs);

void		verrors_free(struct verrors *);

/*
 * Append a copy of (field, message) to errs, which starts zeroed; 0, or
 * -1 when out of memory.  For callers that report their own errors in
 * the same list; verrors_free() releases them.
 */
int		verrors_add(struct verrors *errs, const char *field,
		    const char *message);

/*
 * The text rule of every string field: trim, collapse inner whitespace
 * runs to one space, refuse control characters, at most max_chars code
 * points.  in is valid UTF-8 (from json_parse_strict); out must hold
 * 4 * max_chars + 1 bytes and gets a NUL-terminated result.
 */
enum vtext { VT_OK, VT_EMPTY, VT_CONTROL, VT_TOOLONG };
enum vtext	vtext_normalize(const char *in, size_t n, size_t max_chars,
		    char *out, size_t outsz, size_t *outlen);

/* ISO 3166-1: alpha-2 or alpha-3 (any case) to alpha-3, or NULL. */
const char	*country_alpha3(const char *code);

#endif
