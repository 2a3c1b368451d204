/*
 * json_strict.c: the strict JSON layer under every body validator, and
 * the error list they all report into.
 *
 * json_parse_strict() turns bytes into a tree, refusing everything
 * json-c 0.16 lets through although it is not strict JSON (see
 * c-style-and-library-notes.md B3).  It is in two passes because json-c
 * cannot be told to be strict enough: a raw pre-scan of the bytes
 * (strict UTF-8, RFC 8259 numbers and literals, escapes, a count of the
 * members as written) and then json-c's own STRICT parse, whose tree is
 * walked for what only it can show (non-finite doubles, members kept).
 *
 * It was part of validate.c; it is its own module so that the parser,
 * which the answers from CryptoMate go through too (request.c), does
 * not come with the field rules of one route, and so that each file
 * holds one concern.  The field rules are in validate.c and
 * validate_kyc.c.
 *
 * Pure: no I/O, no clock, no mutable globals.  A message never holds
 * any of the input.
 */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_strict.h"

#define NELEM(a)		(sizeof(a) / sizeof((a)[0]))

/* ---- error list ------------------------------------------------------ */

static char *
dupstr(const char *s)
{
	size_t	 n = strlen(s) + 1;
	char	*p;

	if ((p = malloc(n)) != NULL)
		memcpy(p, s, n);
	return p;
}

int
verrors_add(struct verrors *e, const char *field, const char *message)
{
	struct verror	*v;
	char		*f, *m;
	size_t		 ncap;

	if (e == NULL)
		return -1;
	if (e->n == e->cap) {
		ncap = e->cap != 0 ? e->cap * 2 : 8;
		if ((v = realloc(e->v, ncap * sizeof(*v))) == NULL)
			return -1;
		e->v = v;
		e->cap = ncap;
	}
	f = dupstr(field);
	m = dupstr(message);
	if (f == NULL || m == NULL) {
		free(f);
		free(m);
		return -1;
	}
	e->v[e->n].field = f;
	e->v[e->n].message = m;
	e->n++;
	return 0;
}

void
verrors_free(struct verrors *e)
{
	size_t	i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++) {
		free(e->v[i].field);
		free(e->v[i].message);
	}
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

/* ---- strict JSON ----------------------------------------------------- */

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Length of the well-formed UTF-8 sequence at s[0..n), or 0.  This is
 * Unicode's table 3-7, which json-c's VALIDATE_UTF8 does not implement:
 * it checks bit patterns only, so it takes overlong forms (C0 80) and
 * encoded surrogates (ED A0 80), both classic filter bypasses.
 */
size_t
json_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char	c = s[0], lo = 0x80, hi = 0xbf;
	size_t		need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if (n <= need || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i <= need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need + 1;
}

static int
hex4(const unsigned char *s)
{
	int	v = 0, i;

	for (i = 0; i < 4; i++) {
		unsigned char c = s[i];

		v <<= 4;
		if (is_digit(c))
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * Scan the string whose opening quote is at s[i - 1].  Returns the index
 * after the closing quote, or n when the input ends first (json-c then
 * reports the truncation).  *why is set on a lexical error.
 */
static size_t
scan_string(const unsigned char *s, size_t n, size_t i, const char **why)
{
	size_t	k;
	int	u, lo;

	while (i < n) {
		unsigned char c = s[i];

		if (c == '"')
			return i + 1;
		if (c == '\0') {
			*why = "body contains a NUL byte";
			return n;
		}
		if (c < 0x20) {
			/* json-c takes raw control bytes even when STRICT. */
			*why = "invalid JSON: unescaped control character "
			    "in string";
			return n;
		}
		if (c >= 0x80) {
			if ((k = json_utf8_len(s + i, n - i)) == 0) {
				*why = "body is not valid UTF-8";
				return n;
			}
			i += k;
			continue;
		}
		if (c != '\\') {
			i++;
			continue;
		}
		if (i + 1 >= n)
			return n;
		switch (s[i + 1]) {
		case '"': case '\\': case '/':
		case 'b': case 'f': case 'n': case 'r': case 't':
			i += 2;
			continue;
		case 'u':
			break;
		default:
			*why = "invalid JSON: bad escape in string";
			return n;
		}
		if (i + 6 > n)
			return n;
		if ((u = hex4(s + i + 2)) < 0) {
			*why = "invalid JSON: bad \\u escape in string";
			return n;
		}
		/*
		 * \u0000 is legal JSON, but json-c cuts keys at it ("a\u0000x"
		 * becomes "a"), which would merge distinct keys behind our
		 * back; no field here may hold a NUL anyway.
		 */
		if (u == 0) {
			*why = "strings must not contain \\u0000";
			return n;
		}
		/* json-c turns a lone surrogate into U+FFFD silently. */
		if (u >= 0xdc00 && u <= 0xdfff) {
			*why = "invalid JSON: unpaired surrogate escape";
			return n;
		}
		if (u >= 0xd800 && u <= 0xdbff) {
			if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' ||
			    (lo = hex4(s + i + 8)) < 0xdc00 || lo > 0xdfff) {
				*why = "invalid JSON: unpaired surrogate "
				    "escape";
				return n;
			}
			i += 12;
		} else
			i += 6;
	}
	return n;
}

/*
 * Check the number token at s[i] against RFC 8259's grammar (json-c
 * STRICT still takes "1." and "-Infinity").  An integer of any size is
 * valid JSON and passes: json-c clamps those beyond int64, and
 * vjson_int() turns them into the field's error.  Returns the index
 * after the token.
 */
static size_t
scan_number(const unsigned char *s, size_t n, size_t i, const char **why)
{
	if (s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && is_digit(s[i]))
		while (i < n && is_digit(s[i]))
			i++;
	else
		goto bad;
	if (i < n && s[i] == '.') {
		if (++i >= n || !is_digit(s[i]))
			goto bad;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			goto bad;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (is_digit(s[i]) || s[i] == '.' || s[i] == 'e' ||
	    s[i] == 'E' || s[i] == '+' || s[i] == '-'))
		goto bad;
	return i;
bad:
	*why = "invalid JSON: malformed number";
	return n;
}

/*
 * The literal at s[i] must be true, false or null; json-c would judge
 * too, but its STRICT mode has gaps (it takes 'single' quoted keys), so
 * only RFC 8259 tokens pass here.  A literal cut short by the end of
 * the input is left for json-c to report as truncated.
 */
static size_t
scan_literal(const unsigned char *s, size_t n, size_t i, const char **why)
{
	static const char *const	 lits[] = { "true", "false", "null" };
	size_t				 j, k, m;

	for (j = 0; j < NELEM(lits); j++) {
		m = strlen(lits[j]);
		for (k = 0; k < m && i + k < n && s[i + k] == lits[j][k]; k++)
			;
		if (k == m || i + k == n)
			return i + k;
	}
	*why = "invalid JSON: unexpected character";
	return n;
}

/*
 * One pass over the raw bytes: strict UTF-8, no NUL, only RFC 8259
 * tokens outside strings, RFC numbers, paired surrogate escapes, and a
 * count of the ':' outside strings, which in a document json-c accepted
 * is exactly the number of object members as written.  Returns an
 * error message or NULL.
 */
static const char *
prescan(const unsigned char *s, size_t n, size_t *members)
{
	const char	*why = NULL;
	size_t		 i = 0;

	*members = 0;
	while (i < n && why == NULL) {
		unsigned char c = s[i];

		if (c == '"')
			i = scan_string(s, n, i + 1, &why);
		else if (c == '-' || is_digit(c))
			i = scan_number(s, n, i, &why);
		else if (c >= 'a' && c <= 'z')
			i = scan_literal(s, n, i, &why);
		else if (c == ':') {
			(*members)++;
			i++;
		} else if (json_is_ws(c) || c == '{' || c == '}' || c == '[' ||
		    c == ']' || c == ',')
			i++;
		else if (c == '\0')
			why = "body contains a NUL byte";
		else if (c >= 0x80 && json_utf8_len(s + i, n - i) == 0)
			why = "body is not valid UTF-8";
		else
			why = "invalid JSON: unexpected character";
	}
	return why;
}

/*
 * Count object members in the tree and refuse non-finite doubles
 * (NaN, Infinity, 1e999 all parse).  Depth is bounded by the tokener.
 */
static bool
walk_tree(struct json_object *o, size_t *members)
{
	struct json_object_iterator	it, end;
	size_t				i, n;

	switch (json_object_get_type(o)) {
	case json_type_double:
		return isfinite(json_object_get_double(o));
	case json_type_object:
		*members += (size_t)json_object_object_length(o);
		it = json_object_iter_begin(o);
		end = json_object_iter_end(o);
		for (; !json_object_iter_equal(&it, &end);
		    json_object_iter_next(&it))
			if (!walk_tree(json_object_iter_peek_value(&it),
			    members))
				return false;
		return true;
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (!walk_tree(json_object_array_get_idx(o, i),
			    members))
				return false;
		return true;
	default:
		return true;
	}
}

/*
 * Duplicate keys: json-c keeps the last one silently.  Rather than keep
 * a key set per object while scanning, compare the number of members
 * written (the ':' count from prescan) with the number json-c kept:
 * every duplicate, at any depth, loses at least one member.  Keys are
 * thereby compared after unescaping, so "first\u005fname" and
 * "first_name" are duplicates, as JSON says they are the same name.
 */
struct json_object *
json_parse_strict(const char *body, size_t len, int max_depth,
    struct verrors *errs)
{
	const unsigned char		*s = (const unsigned char *)body;
	struct json_tokener		*tok;
	struct json_object		*o = NULL;
	enum json_tokener_error		 jerr;
	const char			*why;
	char				 msg[96];
	size_t				 i, end, written, kept = 0;

	for (i = 0; body != NULL && i < len && json_is_ws(s[i]); i++)
		;
	if (body == NULL || i == len) {
		why = "body is empty";
		goto fail;
	}
	if (len >= INT_MAX) {
		why = "body too large";
		goto fail;
	}
	if ((why = prescan(s, len, &written)) != NULL)
		goto fail;

	if (max_depth < 1)
		max_depth = JSON_TOKENER_DEFAULT_DEPTH;
	if ((tok = json_tokener_new_ex(max_depth)) == NULL) {
		why = "out of memory";
		goto fail;
	}
	json_tokener_set_flags(tok,
	    JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, body, (int)len);
	if ((jerr = json_tokener_get_error(tok)) == json_tokener_continue) {
		/*
		 * A top-level scalar needs a terminator to end.  Feed the
		 * NUL a C string would have had rather than copy the body.
		 */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	} else
		end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (jerr != json_tokener_success) {
		json_object_put(o);
		o = NULL;
		if (jerr == json_tokener_error_depth)
			why = "JSON nesting too deep";
		else {
			(void)snprintf(msg, sizeof(msg), "invalid JSON: %s",
			    json_tokener_error_desc(jerr));
			why = msg;
		}
		goto fail;
	}
	for (i = end; i < len; i++)
		if (!json_is_ws(s[i])) {
			why = "invalid JSON: trailing data after the value";
			goto fail;
		}
	if (!json_object_is_type(o, json_type_object)) {
		why = "body must be a JSON object";
		goto fail;
	}
	if (!walk_tree(o, &kept)) {
		why = "numbers must be finite";
		goto fail;
	}
	if (kept != written) {
		why = "duplicate key in object";
		goto fail;
	}
	return o;
fail:
	json_object_put(o);
	if (errs != NULL)
		(void)verrors_add(errs, "", why);
	return NULL;
}
