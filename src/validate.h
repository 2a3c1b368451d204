/*
 * validate.h: rules for request bodies, and their normalization.
 *
 * Pure: no I/O, no globals, no clock (today's date is passed in).  It
 * allocates only what it returns.  This is what the fuzzer and the unit
 * tests call directly.  The strict JSON parser under every rule, and the
 * error list (struct verrors), are json_strict.h's; it is included here
 * because every validator's interface reports into that list.
 */
#ifndef CMGATE_VALIDATE_H
#define CMGATE_VALIDATE_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "json_strict.h"

/* Outcome classes: which HTTP error a failure maps to. */
enum vresult {
	V_OK = 0,
	V_INVALID_JSON,		/* 400 invalid_json: syntax, UTF-8, trailing
				   garbage, depth, duplicate keys, not an
				   object */
	V_INVALID,		/* 422 validation_failed: field errors */
};

struct vopts {
	int	min_age_years;	/* validation.min_age_years */
	int	max_depth;	/* limits.max_json_depth (json-c depth) */
	int	max_string_length; /* upper bound for any string field */
	int	today_y, today_m, today_d;	/* UTC date, passed in */
};

/*
 * Validate and normalize a create-individual-client body.  On V_OK,
 * *out is the normalized object (caller owns it).  On V_INVALID, errs
 * holds EVERY problem found, each with a dotted path.
 */
enum vresult	validate_individual(const char *body, size_t len,
		    const struct vopts *, struct json_object **out,
		    struct verrors *errs);

/*
 * The one normalization of every string field, for every route:
 *  - Unicode White_Space (ASCII space, tab, CR, LF, U+00A0, U+1680,
 *    U+2000..U+200A, U+202F, U+205F, U+3000) is trimmed at both ends
 *    and each inner run becomes one ASCII space;
 *  - U+2028/U+2029 (VSTR_SEPARATOR), the bidirectional controls
 *    U+202A..U+202E and U+2066..U+2069 (VSTR_BIDI), and C0 controls
 *    other than the white space above, DEL and the C1 controls
 *    U+0080..U+009F (VSTR_CONTROL; U+0085, VT and FF included) are
 *    refused anywhere in the value, as is malformed UTF-8;
 *  - a value made only of white space and invisible characters (the
 *    invisible format characters: U+00AD, U+200B..U+200F, U+2060..
 *    U+2064, U+FEFF, ...; and blank fillers such as U+3164) is
 *    VSTR_EMPTY.  Invisible characters inside a visible value stay:
 *    U+200C/U+200D join letters in some scripts.
 * At most max_chars code points (a collapsed space counts as one) go
 * to out, NUL-terminated, which must hold 4 * max_chars + 1 bytes;
 * past that VSTR_TOOLONG.  *outlen gets the byte length.  The result
 * is never longer than the input.  Pure, like the rest of this file.
 */
enum vstr_result {
	VSTR_OK = 0,
	VSTR_EMPTY,		/* blank: white space and invisibles only */
	VSTR_CONTROL,		/* control character or malformed UTF-8 */
	VSTR_SEPARATOR,		/* U+2028 or U+2029 */
	VSTR_BIDI,		/* bidirectional control */
	VSTR_TOOLONG,		/* more than max_chars */
};
enum vstr_result vstr_normalize(const char *in, size_t n, size_t max_chars,
		    char *out, size_t outsz, size_t *outlen);
/* A field error message for r ("must not ..."), never NULL. */
const char	*vstr_message(enum vstr_result r);

/*
 * An integer field: VINT_OK with *out when v is a JSON integer in
 * [min, max]; VINT_TYPE when it is not an integer (a double, a string,
 * null); VINT_RANGE when it is out of [min, max], including every
 * integer json-c could not hold (above INT64_MAX, below INT64_MIN:
 * json-c clamps them, so INT64_MIN itself counts as out of range).
 * Valid JSON never fails to parse for being a large number: this is
 * where it becomes the field's error.
 */
enum vint_result {
	VINT_OK = 0,
	VINT_TYPE = -1,
	VINT_RANGE = -2,
};
enum vint_result vjson_int(struct json_object *v, int64_t min, int64_t max,
		    int64_t *out);

#endif
