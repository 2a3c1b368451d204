/*
 * validate.c: the rules and normalization for POST
 * /management/clients/individuals (and PUT, which is the same body),
 * and the helpers every body rule shares (validate_int.h): the error
 * context, member sorting, the one text-field check.
 *
 * The bytes are first made a tree by json_parse_strict()
 * (json_strict.c).  validate_individual() then checks every field,
 * collects every problem with its dotted path, and builds a new object
 * holding only the normalized, known fields in the API's canonical
 * order, so nothing the caller sent is forwarded as is.
 *
 * Pure: no I/O, no clock, no mutable globals.  Nothing here ever puts an
 * offending value into a message; paths name known fields, or unknown
 * keys that passed a conservative character check.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "iso3166.h"
#include "json_strict.h"
#include "validate.h"
#include "validate_int.h"

/* Field limits, in characters (code points), before opts' own cap. */
#define NAME_MAX_CHARS		100
#define EMAIL_MAX_CHARS		254
#define EMAIL_LOCAL_MAX		64
#define EMAIL_LABEL_MAX		63
#define STREET_MAX_CHARS	200
#define CITY_MAX_CHARS		100
#define POSTAL_MAX_CHARS	20
#define STATE_MAX_CHARS		20
#define NUMCODE_MAX_DIGITS	6	/* state_code, country_code */
#define COUNTRY_MAX_CHARS	8	/* anything longer is no code */
#define DATE_MAX_CHARS		16	/* room to say "bad format" */
#define PHONE_MAX_CHARS		40	/* digits and grouping marks */

/* Scratch for any one normalized string: 4 bytes a character at most. */
#define TEXT_BUF		(4 * EMAIL_MAX_CHARS + 1)
_Static_assert(4 * NAME_MAX_CHARS < TEXT_BUF && 4 * STREET_MAX_CHARS <
    TEXT_BUF && 4 * CITY_MAX_CHARS < TEXT_BUF && 4 * POSTAL_MAX_CHARS <
    TEXT_BUF && 4 * DATE_MAX_CHARS < TEXT_BUF, "TEXT_BUF too small");

/* E.164: country code and subscriber number, 15 digits together. */
#define E164_MAX_DIGITS		15

/*
 * Unknown keys are the only unbounded source of errors; past this many
 * errors one last entry says the list was cut, so a hostile body cannot
 * make the error response arbitrarily large.
 */
#define MAX_ERRORS		32

/* Unknown keys longer than this are not echoed in a path. */
#define KEY_ECHO_MAX		64

/* ---- shared by the rules (validate_int.h) ---------------------------- */

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

void
vc_report(struct vctx *vc, const char *path, const char *message)
{
	vc->nerr++;
	if (vc->nerr > MAX_ERRORS + 1)
		return;
	if (vc->nerr == MAX_ERRORS + 1) {
		path = "";
		message = "too many errors; the rest are not listed";
	}
	if (verrors_add(vc->errs, path, message) == -1)
		vc->oom = true;
}

/* limits.max_string_length caps every text field (not images). */
static size_t
cap_chars(const struct vctx *vc, size_t field_max)
{
	int	m = vc->opts != NULL ? vc->opts->max_string_length : 0;

	if (m > 0 && (size_t)m < field_max)
		return (size_t)m;
	return field_max;
}

/*
 * Unicode White_Space (PropList.txt) outside ASCII, less U+0085 (a C1
 * control, refused as one) and U+2028/U+2029 (refused: see below).
 */
static bool
is_uspace(uint32_t c)
{
	return c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
	    c == 0x202f || c == 0x205f || c == 0x3000;
}

/*
 * Invisible characters: the default-ignorable format characters (Cf)
 * that render as nothing, and the fillers and selectors that are not
 * Cf but look just as blank (Hangul fillers, the combining grapheme
 * joiner, variation selectors, the blank Braille pattern).  They may
 * appear inside a value (U+200C/U+200D join letters in some scripts),
 * but a value made only of these and white space is empty.  The
 * visible Cf characters (Arabic number signs U+0600..U+0605 and the
 * like) are not here: they show.
 */
static bool
is_invisible(uint32_t c)
{
	return c == 0xad || c == 0x34f || c == 0x61c || c == 0x115f ||
	    c == 0x1160 || c == 0x17b4 || c == 0x17b5 ||
	    (c >= 0x180b && c <= 0x180f) || (c >= 0x200b && c <= 0x200f) ||
	    (c >= 0x2060 && c <= 0x2064) || (c >= 0x206a && c <= 0x206f) ||
	    c == 0x2800 || c == 0x3164 || (c >= 0xfe00 && c <= 0xfe0f) ||
	    c == 0xfeff || c == 0xffa0 || (c >= 0xfff0 && c <= 0xfffb) ||
	    (c >= 0x1bca0 && c <= 0x1bca3) ||
	    (c >= 0x1d173 && c <= 0x1d17a) || c == 0xe0001 ||
	    (c >= 0xe0020 && c <= 0xe007f) || (c >= 0xe0100 && c <= 0xe01ef);
}

/* The explicit bidirectional embeddings, overrides and isolates. */
static bool
is_bidi_control(uint32_t c)
{
	return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/*
 * The one normalization every string field goes through (see
 * validate.h).  White space is ASCII space, tab, CR and LF (what the
 * gateway always collapsed) plus Unicode's White_Space characters;
 * other C0 controls, DEL and every C1 control (U+0085 included, though
 * it is White_Space: it is a line break in disguise) are refused, as
 * are U+2028/U+2029 (line breaks to anything that honours them) and
 * the bidirectional controls (they reorder what a reviewer sees, the
 * "Trojan Source" trick).  Errors win over emptiness: a value holding
 * only a bidi override is refused, not dropped as blank.  Input that
 * is not well-formed UTF-8 is refused as a control would be.
 */
enum vstr_result
vstr_normalize(const char *in, size_t n, size_t max_chars, char *out,
    size_t outsz, size_t *outlen)
{
	const unsigned char	*s = (const unsigned char *)in;
	size_t			 i, k, o = 0, chars = 0;
	bool			 gap = false, visible = false;
	uint32_t		 c;

	*outlen = 0;
	if (outsz == 0)
		return VSTR_TOOLONG;
	out[0] = '\0';
	for (i = 0; i < n; i += k) {
		if ((k = json_utf8_len(s + i, n - i)) == 0)
			return VSTR_CONTROL;
		c = s[i];
		if (k == 2)
			c = (c & 0x1fu) << 6 | (s[i + 1] & 0x3fu);
		else if (k == 3)
			c = (c & 0x0fu) << 12 | (s[i + 1] & 0x3fu) << 6 |
			    (s[i + 2] & 0x3fu);
		else if (k == 4)
			c = (c & 0x07u) << 18 | (s[i + 1] & 0x3fu) << 12 |
			    (s[i + 2] & 0x3fu) << 6 | (s[i + 3] & 0x3fu);
		if (c == 0x2028 || c == 0x2029)
			return VSTR_SEPARATOR;
		if (is_bidi_control(c))
			return VSTR_BIDI;
		if (c < 0x80 && json_is_ws((unsigned char)c)) {
			gap = o > 0;
			continue;
		}
		if (is_uspace(c)) {
			gap = o > 0;
			continue;
		}
		if (c < 0x20 || (c >= 0x7f && c < 0xa0))
			return VSTR_CONTROL;
		if (!is_invisible(c))
			visible = true;
		chars += 1 + gap;
		if (chars > max_chars)
			return VSTR_TOOLONG;
		/* Unreachable for a caller sizing out as documented. */
		if (o + gap + k >= outsz)
			return VSTR_TOOLONG;
		if (gap) {
			out[o++] = ' ';
			gap = false;
		}
		memcpy(out + o, s + i, k);
		o += k;
	}
	out[o] = '\0';
	*outlen = o;
	return visible ? VSTR_OK : VSTR_EMPTY;
}

const char *
vstr_message(enum vstr_result r)
{
	switch (r) {
	case VSTR_OK:
		return "is valid";
	case VSTR_EMPTY:
		return "must not be empty";
	case VSTR_CONTROL:
		return "must not contain control characters";
	case VSTR_SEPARATOR:
		return "must not contain line or paragraph separators "
		    "(U+2028, U+2029)";
	case VSTR_BIDI:
		return "must not contain bidirectional control characters";
	case VSTR_TOOLONG:
	default:
		return "is too long";
	}
}

/*
 * The one text-field check of every route (validate_int.h): one copy,
 * so that a string field means the same on each.
 */
int
vc_text_field(struct vctx *vc, struct json_object *v, const char *path,
    bool required, size_t max_chars, char *buf, size_t bufsz, size_t *len)
{
	enum vstr_result	r;
	char			msg[64];

	if (v == NULL) {
		if (!required)
			return 0;
		vc_report(vc, path, "is required");
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		vc_report(vc, path, "must be a string");
		return -1;
	}
	max_chars = cap_chars(vc, max_chars);
	switch ((r = vstr_normalize(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), max_chars, buf, bufsz,
	    len))) {
	case VSTR_OK:
		return 1;
	case VSTR_EMPTY:
		if (!required)
			return 0;
		vc_report(vc, path, vstr_message(r));
		return -1;
	case VSTR_TOOLONG:
		(void)snprintf(msg, sizeof(msg),
		    "must be at most %zu characters", max_chars);
		vc_report(vc, path, msg);
		return -1;
	default:
		vc_report(vc, path, vstr_message(r));
		return -1;
	}
}

/*
 * The body through json_parse_strict() at the options' depth (NULL
 * options: json-c's default), for every validator alike.
 */
struct json_object *
vc_parse(const char *body, size_t len, const struct vopts *opts,
    struct verrors *errs)
{
	return json_parse_strict(body, len, opts != NULL ? opts->max_depth :
	    0, errs);
}

/* ASCII A-Z to a-z in place; other bytes (UTF-8 included) stay. */
void
vc_lower_ascii(char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
}

/*
 * The end of every body validator: in (the parsed body) is released;
 * an out-of-memory with no other error becomes one; on any error o is
 * dropped and the answer is V_INVALID, else *out takes o.
 */
enum vresult
vc_finish(struct vctx *vc, struct json_object *in, struct json_object *o,
    struct json_object **out)
{
	json_object_put(in);
	if (vc->nerr == 0 && vc->oom)
		vc_report(vc, "", "out of memory");
	if (vc->nerr != 0) {
		json_object_put(o);
		return V_INVALID;
	}
	*out = o;
	return V_OK;
}

static bool
is_alnum_lc(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z');
}

/* RFC 5322 atext, the dot-atom form only: no quoted local parts. */
static bool
is_atext(unsigned char c)
{
	return is_alnum_lc(c) || (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-",
	    c) != NULL);
}

/*
 * A pragmatic address check on lower-cased ASCII: one '@'; a dot-atom
 * local part of at most 64; a domain of at least two labels, each 1..63
 * of letters, digits and inner hyphens, the last not all digits (no
 * bare IP addresses).  Non-ASCII (SMTPUTF8) addresses are refused.
 */
static bool
email_ok(const char *e, size_t n)
{
	const unsigned char	*s = (const unsigned char *)e;
	const char		*at;
	size_t			 i, local, lab = 0, labels = 0;
	bool			 alldig = true;

	if ((at = memchr(e, '@', n)) == NULL)
		return false;
	local = (size_t)(at - e);
	if (local == 0 || local > EMAIL_LOCAL_MAX || s[0] == '.' ||
	    s[local - 1] == '.')
		return false;
	for (i = 0; i < local; i++)
		if (!(is_atext(s[i]) || (s[i] == '.' && s[i + 1] != '.')))
			return false;
	for (i = local + 1; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return false;
			labels++;
			if (i == n)
				break;
			lab = 0;
			alldig = true;
			continue;
		}
		if (!is_alnum_lc(s[i]) && !(s[i] == '-' && lab > 0))
			return false;
		if (!is_digit(s[i]))
			alldig = false;
		if (++lab > EMAIL_LABEL_MAX)
			return false;
	}
	return labels >= 2 && !alldig;
}

static int
email_field(struct vctx *vc, struct json_object *v, char *buf,
    size_t bufsz, size_t *len)
{
	const char	*path = "email";
	int		 r;

	r = vc_text_field(vc, v, path, true, EMAIL_MAX_CHARS, buf, bufsz,
	    len);
	if (r != 1)
		return r;
	vc_lower_ascii(buf, *len);
	if (!email_ok(buf, *len)) {
		vc_report(vc, path, "must be a valid email address");
		return -1;
	}
	return 1;
}

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int	mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/*
 * YYYY-MM-DD, a real date, from 1900 on, not after today, and old
 * enough on today's date.  Age is whole years with the usual rule
 * (birthday reached or not this year), so a birthday today counts.
 * Someone born on 29 February turns a year older on 1 March in common
 * years: the later of the two readings, the safe side for an age limit.
 */
static int
birth_date_field(struct vctx *vc, struct json_object *v, char *buf,
    size_t bufsz, size_t *len)
{
	const struct vopts	*o = vc->opts;
	const char		*path = "birth_date";
	char			 msg[64];
	int			 r, y, m, d, age;
	size_t			 i;

	r = vc_text_field(vc, v, path, true, DATE_MAX_CHARS, buf, bufsz,
	    len);
	if (r != 1)
		return r;
	if (*len != 10 || buf[4] != '-' || buf[7] != '-')
		goto format;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !is_digit((unsigned char)buf[i]))
			goto format;
	y = (buf[0] - '0') * 1000 + (buf[1] - '0') * 100 +
	    (buf[2] - '0') * 10 + (buf[3] - '0');
	m = (buf[5] - '0') * 10 + (buf[6] - '0');
	d = (buf[8] - '0') * 10 + (buf[9] - '0');
	if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
		vc_report(vc, path, "must be a valid calendar date");
		return -1;
	}
	if (y < 1900) {
		vc_report(vc, path, "must not be before 1900");
		return -1;
	}
	if (y > o->today_y || (y == o->today_y && (m > o->today_m ||
	    (m == o->today_m && d > o->today_d)))) {
		vc_report(vc, path, "must not be in the future");
		return -1;
	}
	age = o->today_y - y;
	if (o->today_m < m || (o->today_m == m && o->today_d < d))
		age--;
	if (age < o->min_age_years) {
		(void)snprintf(msg, sizeof(msg),
		    "client must be at least %d years old", o->min_age_years);
		vc_report(vc, path, msg);
		return -1;
	}
	return 1;
format:
	vc_report(vc, path, "must be a date in YYYY-MM-DD format");
	return -1;
}

/*
 * Normalize a phone string into buf (vstr_normalize: trimmed, inner
 * white space one space).  NULL, or the message for the field.
 */
static const char *
phone_text(struct json_object *v, char *buf, size_t bufsz, size_t *len,
    const char *toolong, const char *empty)
{
	enum vstr_result	r;

	r = vstr_normalize(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), PHONE_MAX_CHARS, buf, bufsz,
	    len);
	if (r == VSTR_OK)
		return NULL;
	if (r == VSTR_TOOLONG)
		return toolong;
	return r == VSTR_EMPTY ? empty : vstr_message(r);
}

/*
 * Phone country code: an integer 1..999, or a string of 1..3 digits
 * with an optional leading '+' ("+54", "54").  *ndig gets its digits.
 */
static const char *
phone_cc(struct json_object *v, int64_t *val, int *ndig)
{
	static const char	 bad[] = "must be an integer from 1 to 999";
	char			 buf[4 * PHONE_MAX_CHARS + 1];
	const char		*s, *e;
	size_t			 n, i;
	int64_t			 x = 0;

	if (json_object_is_type(v, json_type_int)) {
		if (vjson_int(v, 1, 999, &x) != VINT_OK)
			return bad;
	} else if (json_object_is_type(v, json_type_string)) {
		if ((e = phone_text(v, buf, sizeof(buf), &n, bad, bad)) != NULL)
			return e;
		s = buf;
		if (n > 0 && *s == '+') {
			s++;
			n--;
		}
		if (n < 1 || n > 3 || *s == '0')
			return bad;
		for (i = 0; i < n; i++) {
			if (!is_digit((unsigned char)s[i]))
				return bad;
			x = x * 10 + (s[i] - '0');
		}
	} else
		return bad;
	*val = x;
	*ndig = x >= 100 ? 3 : x >= 10 ? 2 : 1;
	return NULL;
}

/*
 * Phone number: a positive integer, or a string of digits that may be
 * grouped with spaces, hyphens, dots and parentheses.  A leading 0 is
 * refused rather than dropped: the output is an integer, and silently
 * losing a digit could change which line it is (trunk prefix or not).
 * An integer too large for any phone number, however large (json-c
 * clamps those beyond int64), is the field's error, like any other.
 */
static const char *
phone_number(struct json_object *v, int64_t *val, int *ndig)
{
	static const char	 toolong[] = "must have at most 15 digits "
				    "including the country code";
	char			 buf[4 * PHONE_MAX_CHARS + 1];
	const char		*s, *e;
	size_t			 n, i;
	int64_t			 x = 0;
	int			 nd = 0;

	if (json_object_is_type(v, json_type_int)) {
		if (vjson_int(v, 1, INT64_MAX, &x) != VINT_OK)
			return json_object_get_int64(v) < 1 ?
			    "must be a positive integer" : toolong;
		for (int64_t t = x; t > 0; t /= 10)
			nd++;
	} else if (json_object_is_type(v, json_type_string)) {
		if ((e = phone_text(v, buf, sizeof(buf), &n, toolong,
		    "must contain digits")) != NULL)
			return e;
		s = buf;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			if (is_digit(c)) {
				if (nd == 0 && c == '0')
					return "must not start with 0";
				/* Stop counting into x before it overflows. */
				if (++nd <= E164_MAX_DIGITS)
					x = x * 10 + (c - '0');
			} else if (c != ' ' && c != '-' && c != '.' &&
			    c != '(' && c != ')')
				return "may contain only digits, spaces, "
				    "hyphens, dots and parentheses";
		}
		if (nd == 0)
			return "must contain digits";
	} else
		return "must be an integer";
	if (nd > E164_MAX_DIGITS - 1)
		return toolong;
	*val = x;
	*ndig = nd;
	return NULL;
}

/*
 * json-c 0.16 keeps integers from INT64_MAX + 1 to UINT64_MAX as uint64
 * (json_object_get_int64 then says INT64_MAX), clamps larger ones to
 * UINT64_MAX and smaller than INT64_MIN to INT64_MIN, all silently.
 * The parser lets such numbers through (they are valid JSON), so this
 * is where they become a field's error: anything above INT64_MAX is
 * out of range, and so is INT64_MIN itself, which cannot be told from
 * a clamped value.
 */
enum vint_result
vjson_int(struct json_object *v, int64_t min, int64_t max, int64_t *out)
{
	int64_t	x;

	if (v == NULL || !json_object_is_type(v, json_type_int))
		return VINT_TYPE;
	x = json_object_get_int64(v);
	if ((x == INT64_MAX && json_object_get_uint64(v) >
	    (uint64_t)INT64_MAX) || x == INT64_MIN || x < min || x > max)
		return VINT_RANGE;
	*out = x;
	return VINT_OK;
}

/* ---- the body -------------------------------------------------------- */

enum {
	F_FIRST_NAME, F_SECOND_NAME, F_LAST_NAME, F_EMAIL, F_BIRTH_DATE,
	F_ADDRESS, F_PHONE_CC, F_PHONE_NUMBER, F_NTOP
};
static const char *const top_names[F_NTOP] = {
	"first_name", "second_name", "last_name", "email", "birth_date",
	"address", "phone_country_code", "phone_number",
};

/* CryptoMate's address, in its documented order. */
enum {
	A_STREET_LINE1, A_STREET_LINE2, A_CITY, A_POSTAL_CODE, A_STATE,
	A_STATE_CODE, A_COUNTRY, A_COUNTRY_CODE, A_N
};
static const char *const addr_names[A_N] = {
	"street_line1", "street_line2", "city", "postal_code", "state",
	"state_code", "country", "country_code",
};
static const char *const addr_paths[A_N] = {
	"address.street_line1", "address.street_line2", "address.city",
	"address.postal_code", "address.state", "address.state_code",
	"address.country", "address.country_code",
};

/* A key is echoed in a path only if it is short and plainly spelled. */
static bool
key_echoable(const char *k)
{
	size_t	i;

	for (i = 0; k[i] != '\0'; i++) {
		unsigned char c = (unsigned char)k[i];

		if (i >= KEY_ECHO_MAX || !(is_alnum_lc(c) || c == '_' ||
		    c == '-' || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return i > 0;
}

/*
 * Sort obj's members into slots by name, one pass, no hashing; report
 * every other name as unknown: we forward only what we know (no mass
 * assignment).  A JSON null leaves its slot NULL, like a missing key.
 */
void
vc_collect(struct vctx *vc, struct json_object *obj, const char *const *names,
    size_t n, struct json_object **slots, const char *prefix)
{
	struct json_object_iterator	 it, end;
	const char			*k;
	char				 path[32 + KEY_ECHO_MAX];
	size_t				 i;

	for (i = 0; i < n; i++)
		slots[i] = NULL;
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		k = json_object_iter_peek_name(&it);
		for (i = 0; i < n; i++)
			if (strcmp(k, names[i]) == 0)
				break;
		if (i < n) {
			slots[i] = json_object_iter_peek_value(&it);
			continue;
		}
		if (key_echoable(k)) {
			(void)snprintf(path, sizeof(path), "%s%s", prefix, k);
			vc_report(vc, path, "unknown field");
		} else {
			/* The parent's path: "" or "address". */
			(void)snprintf(path, sizeof(path), "%.*s",
			    (int)(prefix[0] != '\0' ? strlen(prefix) - 1 : 0),
			    prefix);
			vc_report(vc, path, "unknown field (name not shown)");
		}
	}
}

/* Add to obj under a constant key; skipped once the body has failed. */
void
vc_put(struct vctx *vc, struct json_object *obj, const char *key,
    struct json_object *val)
{
	if (obj == NULL) {
		json_object_put(val);
		return;
	}
	if (val == NULL) {
		vc->oom = true;
		return;
	}
	if (json_object_object_add_ex(obj, key, val,
	    JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY)) {
		json_object_put(val);
		vc->oom = true;
	}
}

static bool
building(const struct vctx *vc, const struct json_object *obj)
{
	return obj != NULL && vc->nerr == 0 && !vc->oom;
}

static void
put_text(struct vctx *vc, struct json_object *obj, const char *key,
    const char *buf, size_t len)
{
	if (building(vc, obj))
		vc_put(vc, obj, key, json_object_new_string_len(buf, (int)len));
}

static void
text_member(struct vctx *vc, struct json_object *obj, const char *key,
    struct json_object *v, const char *path, bool required,
    size_t max_chars)
{
	char	buf[TEXT_BUF];
	size_t	len;

	if (vc_text_field(vc, v, path, required, max_chars, buf, sizeof(buf),
	    &len) == 1)
		put_text(vc, obj, key, buf, len);
}

/*
 * state_code and country_code: CryptoMate calls them the numeric codes
 * of the state and the country; strings of 1..6 ASCII digits, leading
 * zeros kept ("032").  Returns like vc_text_field().
 */
static int
numcode_field(struct vctx *vc, struct json_object *v, const char *path,
    char *buf, size_t bufsz, size_t *len)
{
	size_t	i;
	int	r;

	r = vc_text_field(vc, v, path, false, NUMCODE_MAX_DIGITS + 1, buf,
	    bufsz, len);
	if (r != 1)
		return r;
	for (i = 0; i < *len; i++)
		if (!is_digit((unsigned char)buf[i]))
			break;
	if (i < *len || *len > NUMCODE_MAX_DIGITS) {
		vc_report(vc, path, "must be a string of 1 to 6 digits");
		return -1;
	}
	return 1;
}

/*
 * address.country: ISO 3166-1 alpha-2 or alpha-3, any case.  NULL with
 * *country set, or the field's message (*country stays NULL).
 */
static const char *
country_of(struct json_object *v, const struct iso_country **country)
{
	static const char	 bad[] = "must be an ISO 3166-1 alpha-2 or "
				    "alpha-3 country code";
	char			 buf[4 * COUNTRY_MAX_CHARS + 1];
	size_t			 len;

	*country = NULL;
	if (v == NULL)
		return "is required";
	if (!json_object_is_type(v, json_type_string))
		return "must be a string";
	switch (vstr_normalize(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), COUNTRY_MAX_CHARS, buf,
	    sizeof(buf), &len)) {
	case VSTR_OK:
		if ((*country = iso_country_lookup(buf)) == NULL)
			return bad;
		return NULL;
	case VSTR_EMPTY:
		return "must not be empty";
	case VSTR_SEPARATOR:
		return vstr_message(VSTR_SEPARATOR);
	case VSTR_BIDI:
		return vstr_message(VSTR_BIDI);
	default:
		/* Too long or a control: no country code either way. */
		return bad;
	}
}

/*
 * address.state: required text, and, when the country is known, one of
 * its ISO 3166-2 subdivisions, normalized into state (ISO_SUBDIV_BUF).
 * Returns like vc_text_field(); 1 without a country means only the
 * presence and type were judged.
 */
static int
state_field(struct vctx *vc, struct json_object *v,
    const struct iso_country *country, char *state)
{
	char			 buf[4 * STATE_MAX_CHARS + 1];
	const char		*why;
	enum iso_sub_why	 sub;
	size_t			 len;
	int			 r;

	r = vc_text_field(vc, v, addr_paths[A_STATE], true, STATE_MAX_CHARS,
	    buf, sizeof(buf), &len);
	if (r != 1 || country == NULL ||
	    iso_subdivision_norm(country, buf, len, state, &sub) != -1)
		return r;
	if (sub == ISO_SUB_PREFIX)
		why = "code prefix must match address.country";
	else if (sub == ISO_SUB_NONE)
		why = "address.country has no ISO 3166-2 subdivisions to "
		    "choose from";
	else
		why = "must be an ISO 3166-2 subdivision code of "
		    "address.country (ARG-B, AR-B or B)";
	vc_report(vc, addr_paths[A_STATE], why);
	return -1;
}

/*
 * The address, as CryptoMate documents it now: street_line1, city,
 * postal_code, state and country required; street_line2, state_code
 * and country_code optional.  country is ISO 3166-1 (alpha-2 mapped to
 * alpha-3); state must be one of that country's ISO 3166-2
 * subdivisions (iso3166.h), given as "ARG-B", "AR-B" or "B", and is
 * forwarded as "ARG-B".  Without a valid country the state cannot be
 * judged and only its presence and type are checked.
 */
static void
address_member(struct vctx *vc, struct json_object *out,
    struct json_object *v)
{
	struct json_object		*slot[A_N], *addr = NULL;
	char				 state[ISO_SUBDIV_BUF];
	char				 scbuf[4 * (NUMCODE_MAX_DIGITS + 1) + 1];
	char				 ccbuf[sizeof(scbuf)];
	const struct iso_country	*country = NULL;
	const char			*cerr;
	size_t				 sclen, cclen;
	int				 sr, scr, ccr;

	if (v == NULL) {
		vc_report(vc, "address", "is required");
		return;
	}
	if (!json_object_is_type(v, json_type_object)) {
		vc_report(vc, "address", "must be an object");
		return;
	}
	vc_collect(vc, v, addr_names, A_N, slot, "address.");
	if (building(vc, out)) {
		addr = json_object_new_object();
		vc_put(vc, out, "address", addr);
	}

	text_member(vc, addr, "street_line1", slot[A_STREET_LINE1],
	    addr_paths[A_STREET_LINE1], true, STREET_MAX_CHARS);
	text_member(vc, addr, "street_line2", slot[A_STREET_LINE2],
	    addr_paths[A_STREET_LINE2], false, STREET_MAX_CHARS);
	text_member(vc, addr, "city", slot[A_CITY], addr_paths[A_CITY], true,
	    CITY_MAX_CHARS);
	text_member(vc, addr, "postal_code", slot[A_POSTAL_CODE],
	    addr_paths[A_POSTAL_CODE], true, POSTAL_MAX_CHARS);

	/*
	 * The state is checked against the country, which comes after it
	 * in the output: settle the country first, report in canonical
	 * order.
	 */
	cerr = country_of(slot[A_COUNTRY], &country);
	sr = state_field(vc, slot[A_STATE], country, state);
	scr = numcode_field(vc, slot[A_STATE_CODE], addr_paths[A_STATE_CODE],
	    scbuf, sizeof(scbuf), &sclen);
	if (cerr != NULL)
		vc_report(vc, addr_paths[A_COUNTRY], cerr);
	ccr = numcode_field(vc, slot[A_COUNTRY_CODE],
	    addr_paths[A_COUNTRY_CODE], ccbuf, sizeof(ccbuf), &cclen);
	if (sr == 1 && country != NULL)
		put_text(vc, addr, "state", state, strlen(state));
	if (scr == 1)
		put_text(vc, addr, "state_code", scbuf, sclen);
	if (cerr == NULL)
		put_text(vc, addr, "country", country->a3, 3);
	if (ccr == 1)
		put_text(vc, addr, "country_code", ccbuf, cclen);
}

static void
phone_members(struct vctx *vc, struct json_object *out,
    struct json_object *vcc, struct json_object *vnum)
{
	static const char	 path_cc[] = "phone_country_code";
	static const char	 path_num[] = "phone_number";
	const char		*ecc = NULL, *enu = NULL;
	int64_t			 cc = 0, num = 0;
	int			 dcc = 0, dnum = 0;

	if (vcc != NULL)
		ecc = phone_cc(vcc, &cc, &dcc);
	if (vnum != NULL)
		enu = phone_number(vnum, &num, &dnum);
	if (vcc != NULL && vnum == NULL)
		enu = "is required with phone_country_code";
	if (vnum != NULL && vcc == NULL)
		ecc = "is required with phone_number";
	if (ecc == NULL && enu == NULL && dcc + dnum > E164_MAX_DIGITS)
		enu = "must have at most 15 digits including the country code";
	if (ecc != NULL)
		vc_report(vc, path_cc, ecc);
	if (enu != NULL)
		vc_report(vc, path_num, enu);
	if (vcc == NULL || vnum == NULL || !building(vc, out))
		return;
	vc_put(vc, out, path_cc, json_object_new_int64(cc));
	vc_put(vc, out, path_num, json_object_new_int64(num));
}

/*
 * Decisions where the API page is silent:
 * - null for an optional field means "not given" and is omitted from the
 *   output; null for a required one is reported as "is required".
 * - An optional string that is empty after trimming is omitted too.
 * - Errors come in canonical field order, each object's unknown fields
 *   first; one error per field at most.
 * - errs is appended to, so it must start zeroed (or hold earlier ones).
 */
enum vresult
validate_individual(const char *body, size_t len, const struct vopts *opts,
    struct json_object **out, struct verrors *errs)
{
	struct vctx		 vc = { opts, errs, 0, false };
	struct json_object	*in, *o = NULL, *slot[F_NTOP];
	char			 buf[TEXT_BUF];
	size_t			 blen;

	*out = NULL;
	if (opts == NULL) {
		(void)verrors_add(errs, "", "internal error: no options");
		return V_INVALID;
	}
	if ((in = vc_parse(body, len, opts, errs)) == NULL)
		return V_INVALID_JSON;
	vc_collect(&vc, in, top_names, F_NTOP, slot, "");
	if (vc.nerr == 0 && (o = json_object_new_object()) == NULL)
		vc.oom = true;

	text_member(&vc, o, "first_name", slot[F_FIRST_NAME], "first_name",
	    true, NAME_MAX_CHARS);
	text_member(&vc, o, "second_name", slot[F_SECOND_NAME], "second_name",
	    false, NAME_MAX_CHARS);
	text_member(&vc, o, "last_name", slot[F_LAST_NAME], "last_name",
	    true, NAME_MAX_CHARS);
	if (email_field(&vc, slot[F_EMAIL], buf, sizeof(buf), &blen) == 1)
		put_text(&vc, o, "email", buf, blen);
	if (birth_date_field(&vc, slot[F_BIRTH_DATE], buf, sizeof(buf),
	    &blen) == 1)
		put_text(&vc, o, "birth_date", buf, blen);
	address_member(&vc, o, slot[F_ADDRESS]);
	phone_members(&vc, o, slot[F_PHONE_CC], slot[F_PHONE_NUMBER]);

	return vc_finish(&vc, in, o, out);
}
