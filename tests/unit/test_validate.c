/*
 * test_validate.c: unit tests of validate.c and iso3166.c (cmocka).
 *
 * Most cases are rows of one table: a body, the expected result, every
 * error path expected (compared as a multiset, so no path may be missing
 * or extra), and for accepted bodies the exact normalized output.  Each
 * body is copied into a buffer of exactly its length, so a read past
 * the end shows up under the sanitizers.  Today is fixed: 2026-11-26.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iso3166.h"
#include "json_strict.h"
#include "validate.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_PATHS	16

static const struct vopts opts_default = {
	.min_age_years = 18,
	.max_depth = 10,
	.max_string_length = 1000,
	.today_y = 2026, .today_m = 11, .today_d = 26,
};
static const struct vopts opts_depth3 = {
	18, 3, 1000, 2026, 11, 26
};
static const struct vopts opts_short = {
	18, 10, 30, 2026, 11, 26
};
/* The day before and after an 18th birthday for someone born 29 Feb. */
static const struct vopts opts_feb28 = {
	18, 10, 1000, 2026, 2, 28
};
static const struct vopts opts_mar01 = {
	18, 10, 1000, 2026, 3, 1
};

struct tcase {
	const char		*name;
	const char		*body;
	size_t			 len;	/* 0: strlen(body) */
	enum vresult		 want;
	const char		*paths[MAX_PATHS];	/* NULL-terminated */
	const char		*out;	/* V_OK: the exact output */
	const char		*msg;	/* some message contains this */
	const struct vopts	*opts;	/* NULL: opts_default */
};

/* A body with raw bytes, NUL included: its length is the literal's. */
#define RAW(s)		.body = (s), .len = sizeof(s) - 1

/*
 * Bodies are spelled field by field, each with its trailing comma, in
 * canonical order; a valid one doubles as its own expected output.
 */
#define FN	"\"first_name\":\"Maria\","
#define SN	"\"second_name\":\"Julia\","
#define LN	"\"last_name\":\"Barber\","
#define EM	"\"email\":\"mjuliabarber@example.com\","
#define BD	"\"birth_date\":\"1984-11-21\","
#define ST1	"\"street_line1\":\"Florida 9860\","
#define CITY	"\"city\":\"Del Viso\","
#define PC	"\"postal_code\":\"1669\","
#define STA	"\"state\":\"ARG-B\","
#define CTRY	"\"country\":\"ARG\""
#define ADDR(f)	"\"address\":{" f "}"
#define AD	ADDR(ST1 CITY PC STA CTRY)
#define MIN	FN LN EM BD AD
#define OBJ(f)	"{" f "}"
#define PHONE	",\"phone_country_code\":54,\"phone_number\":1168860622"

#define S10	"abcdefghij"
#define S50	S10 S10 S10 S10 S10
#define S100	S50 S50
#define E10	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" \
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"	/* 10 x é */
#define E100	E10 E10 E10 E10 E10 E10 E10 E10 E10 E10
#define DEEP12	"[[[[[[[[[[[[1]]]]]]]]]]]]"

#define OK(n, b, o)		{ .name = n, .body = b, .want = V_OK, .out = o }
#define BAD(n, b, ...)		{ .name = n, .body = b, .want = V_INVALID, \
				  .paths = { __VA_ARGS__ } }
#define BADJ(n, b)		{ .name = n, .body = b, \
				  .want = V_INVALID_JSON, .paths = { "" } }
#define BADJR(n, b)		{ .name = n, RAW(b), \
				  .want = V_INVALID_JSON, .paths = { "" } }

static struct tcase cases[] = {
	/* ---- accepted, normalized -------------------------------------- */
	OK("api_page_example",
	    "{\n  \"first_name\": \"Maria\",\n  \"second_name\": \"Julia\",\n"
	    "  \"last_name\": \"Barber\",\n"
	    "  \"email\": \"mjuliabarber@example.com\",\n"
	    "  \"birth_date\": \"1984-11-21\",\n  \"address\": {\n"
	    "    \"street_line1\": \"Florida 9860\",\n"
	    "    \"city\": \"Del Viso\",\n    \"postal_code\": \"1669\",\n"
	    "    \"state\": \"ARG-B\",\n    \"country\": \"ARG\"\n  },\n"
	    "  \"phone_country_code\": 54,\n"
	    "  \"phone_number\": 1168860622\n}\n",
	    OBJ(FN SN LN EM BD ADDR(ST1 CITY "\"postal_code\":\"1669\","
	    "\"state\":\"ARG-B\"," CTRY) PHONE)),
	OK("minimal_required_only", OBJ(MIN), OBJ(MIN)),
	OK("output_in_canonical_order",
	    "{\"phone_number\":1168860622,\"address\":{\"country\":\"ARG\","
	    "\"state\":\"ARG-B\",\"city\":\"Del Viso\",\"street_line2\":\"2B\","
	    "\"street_line1\":\"Florida 9860\",\"postal_code\":\"1669\"},"
	    "\"birth_date\":\"1984-11-21\","
	    "\"email\":\"mjuliabarber@example.com\","
	    "\"last_name\":\"Barber\",\"second_name\":\"Julia\","
	    "\"first_name\":\"Maria\",\"phone_country_code\":54}",
	    OBJ(FN SN LN EM BD ADDR(ST1 "\"street_line2\":\"2B\"," CITY
	    "\"postal_code\":\"1669\",\"state\":\"ARG-B\"," CTRY) PHONE)),
	OK("whitespace_trimmed_and_collapsed",
	    OBJ("\"first_name\":\"  Maria \\t\\n  Julia  \","
	    "\"last_name\":\"\\r\\nBarber\\t\"," EM BD
	    ADDR("\"street_line1\":\"Florida\\r\\n\\r\\n9860\","
	    "\"city\":\" Del   Viso \"," PC STA CTRY)),
	    OBJ("\"first_name\":\"Maria Julia\"," LN EM BD AD)),
	OK("utf8_names_kept",
	    OBJ("\"first_name\":\"Jos\xc3\xa9\","
	    "\"last_name\":\"\xc3\x91\xc3\xba\xc3\xb1" "ez\"," EM BD AD),
	    OBJ("\"first_name\":\"Jos\xc3\xa9\","
	    "\"last_name\":\"\xc3\x91\xc3\xba\xc3\xb1" "ez\"," EM BD AD)),
	OK("utf8_escapes_decoded",
	    OBJ("\"first_name\":\"Jos\\u00e9\",\"last_name\":\"\\u00d1\\u00fa"
	    "\\u00f1" "ez \\ud83d\\ude00\"," EM BD AD),
	    OBJ("\"first_name\":\"Jos\xc3\xa9\","
	    "\"last_name\":\"\xc3\x91\xc3\xba\xc3\xb1" "ez \xf0\x9f\x98\x80\","
	    EM BD AD)),
	OK("name_of_100_chars", OBJ("\"first_name\":\"" S100 "\"," LN EM BD AD),
	    OBJ("\"first_name\":\"" S100 "\"," LN EM BD AD)),
	OK("name_of_100_two_byte_chars",
	    OBJ("\"first_name\":\"" E100 "\"," LN EM BD AD),
	    OBJ("\"first_name\":\"" E100 "\"," LN EM BD AD)),
	OK("email_trimmed_lowercased",
	    OBJ(FN LN "\"email\":\"  M.Julia+Tag@Example.COM \"," BD AD),
	    OBJ(FN LN "\"email\":\"m.julia+tag@example.com\"," BD AD)),
	OK("email_subdomain_hyphen_digits",
	    OBJ(FN LN "\"email\":\"a_b-c@mail-1.x2.example.co\"," BD AD),
	    OBJ(FN LN "\"email\":\"a_b-c@mail-1.x2.example.co\"," BD AD)),
	OK("leap_day_2000", OBJ(FN LN EM "\"birth_date\":\"2000-02-29\"," AD),
	    OBJ(FN LN EM "\"birth_date\":\"2000-02-29\"," AD)),
	OK("exactly_18_today",
	    OBJ(FN LN EM "\"birth_date\":\"2008-11-26\"," AD),
	    OBJ(FN LN EM "\"birth_date\":\"2008-11-26\"," AD)),
	OK("birth_year_1900", OBJ(FN LN EM "\"birth_date\":\"1900-01-01\"," AD),
	    OBJ(FN LN EM "\"birth_date\":\"1900-01-01\"," AD)),
	OK("birth_date_trimmed",
	    OBJ(FN LN EM "\"birth_date\":\" 1984-11-21 \"," AD), OBJ(MIN)),
	{ .name = "feb29_born_turns_18_on_mar01",
	  .body = OBJ(FN LN EM "\"birth_date\":\"2008-02-29\"," AD),
	  .want = V_OK, .opts = &opts_mar01,
	  .out = OBJ(FN LN EM "\"birth_date\":\"2008-02-29\"," AD) },
	OK("country_alpha2_upper", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC STA "\"country\":\"AR\"")), OBJ(MIN)),
	OK("country_alpha2_lower", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC STA "\"country\":\"ar\"")), OBJ(MIN)),
	OK("country_alpha3_lower_padded", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC STA "\"country\":\" arg \"")), OBJ(MIN)),
	OK("state_alpha3_prefix", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC "\"state\":\"ARG-B\"," CTRY)),
	    OBJ(FN LN EM BD ADDR(ST1 CITY PC "\"state\":\"ARG-B\"," CTRY))),
	OK("state_alpha2_prefix_to_alpha3", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC "\"state\":\"ar-b\",\"country\":\"ar\"")),
	    OBJ(FN LN EM BD ADDR(ST1 CITY PC "\"state\":\"ARG-B\"," CTRY))),
	OK("state_bare_suffix_with_country", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC "\"state\":\" b \"," CTRY)), OBJ(MIN)),
	OK("state_bare_suffix_country_alpha2", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC "\"state\":\"B\",\"country\":\"ar\"")),
	    OBJ(MIN)),
	OK("state_iso_form_other_country", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC "\"state\":\"BR-SP\",\"country\":\"BR\"")),
	    OBJ(FN LN EM BD ADDR(ST1 CITY PC "\"state\":\"BRA-SP\","
	    "\"country\":\"BRA\""))),
	OK("state_digit_suffix", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC "\"state\":\"fr-75\",\"country\":\"FRA\"")),
	    OBJ(FN LN EM BD ADDR(ST1 CITY PC "\"state\":\"FRA-75\","
	    "\"country\":\"FRA\""))),
	OK("state_code_and_country_code", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC STA "\"state_code\":\" 06 \"," CTRY
	    ",\"country_code\":\"032\"")),
	    OBJ(FN LN EM BD ADDR(ST1 CITY PC STA "\"state_code\":\"06\","
	    CTRY ",\"country_code\":\"032\""))),
	OK("numeric_codes_of_6_digits", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC STA "\"state_code\":\"123456\"," CTRY
	    ",\"country_code\":\"000001\"")),
	    OBJ(FN LN EM BD ADDR(ST1 CITY PC STA "\"state_code\":\"123456\","
	    CTRY ",\"country_code\":\"000001\""))),
	OK("phone_as_integers", OBJ(MIN PHONE), OBJ(MIN PHONE)),
	OK("phone_as_strings", OBJ(MIN ",\"phone_country_code\":\"+54\","
	    "\"phone_number\":\"11 6886-0622\""), OBJ(MIN PHONE)),
	OK("phone_strings_grouped", OBJ(MIN ",\"phone_country_code\":\" 54\","
	    "\"phone_number\":\"(11) 6886.0622 \""), OBJ(MIN PHONE)),
	OK("phone_e164_exactly_15_digits", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":1234567890123"),
	    OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":1234567890123")),
	OK("optional_nulls_omitted", OBJ(FN "\"second_name\":null," LN EM BD
	    ADDR(ST1 "\"street_line2\":null," CITY PC STA
	    "\"state_code\":null," CTRY ",\"country_code\":null")
	    ",\"phone_country_code\":null,\"phone_number\":null"), OBJ(MIN)),
	OK("optional_blank_omitted", OBJ(FN "\"second_name\":\" \\t \"," LN EM
	    BD ADDR(ST1 "\"street_line2\":\"\"," CITY PC STA CTRY)), OBJ(MIN)),
	OK("escaped_key_is_the_field", OBJ("\"first\\u005fname\":\"Maria\","
	    LN EM BD AD), OBJ(MIN)),
	OK("slash_not_escaped", OBJ(FN LN EM BD
	    ADDR("\"street_line1\":\"Florida 9860 4\\/B\"," CITY PC STA CTRY)),
	    OBJ(FN LN EM BD ADDR("\"street_line1\":\"Florida 9860 4/B\","
	    CITY PC STA CTRY))),
	OK("trailing_whitespace_ok", OBJ(MIN) " \r\n\t", OBJ(MIN)),
	{ .name = "depth_3_allows_address", .body = OBJ(MIN), .want = V_OK,
	  .opts = &opts_depth3, .out = OBJ(MIN) },

	/* ---- each required field missing ------------------------------- */
	BAD("missing_first_name", OBJ(LN EM BD AD), "first_name"),
	BAD("missing_last_name", OBJ(FN EM BD AD), "last_name"),
	BAD("missing_email", OBJ(FN LN BD AD), "email"),
	BAD("missing_birth_date", OBJ(FN LN EM AD), "birth_date"),
	BAD("missing_address", "{" FN LN EM "\"birth_date\":\"1984-11-21\"}",
	    "address"),
	BAD("missing_street_line1", OBJ(FN LN EM BD ADDR(CITY PC STA CTRY)),
	    "address.street_line1"),
	BAD("missing_city", OBJ(FN LN EM BD ADDR(ST1 PC STA CTRY)), "address.city"),
	BAD("missing_country", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC "\"state\":\"ARG-B\"")), "address.country"),
	BAD("missing_postal_code", OBJ(FN LN EM BD ADDR(ST1 CITY STA CTRY)),
	    "address.postal_code"),
	BAD("missing_state", OBJ(FN LN EM BD ADDR(ST1 CITY PC CTRY)),
	    "address.state"),
	BAD("postal_code_null_is_missing", OBJ(FN LN EM BD ADDR(ST1 CITY
	    "\"postal_code\":null," STA CTRY)), "address.postal_code"),
	BAD("state_blank_is_missing", OBJ(FN LN EM BD ADDR(ST1 CITY PC
	    "\"state\":\"  \"," CTRY)), "address.state"),
	BAD("empty_object", "{}", "first_name", "last_name", "email",
	    "birth_date", "address"),
	BAD("empty_address", OBJ(FN LN EM BD "\"address\":{}"),
	    "address.street_line1", "address.city", "address.postal_code",
	    "address.state", "address.country"),
	BAD("required_null", OBJ("\"first_name\":null," LN EM BD
	    ADDR(ST1 "\"city\":null," PC STA CTRY)), "first_name", "address.city"),

	/* ---- all problems at once -------------------------------------- */
	BAD("five_problems", OBJ("\"first_name\":5," LN
	    "\"email\":\"not-an-email\",\"birth_date\":\"2030-01-01\","
	    ADDR(ST1 CITY PC STA "\"country\":\"XX\"") ",\"phone_number\":1"),
	    "first_name", "email", "birth_date", "address.country",
	    "phone_country_code"),
	BAD("problems_everywhere", OBJ("\"first_name\":\"\",\"second_name\":1,"
	    "\"last_name\":[],\"email\":true,\"birth_date\":19841121,"
	    "\"address\":{\"street_line1\":{},\"street_line2\":2,"
	    "\"city\":\" \","
	    "\"postal_code\":false,\"state\":3,\"country\":4,\"x\":1},"
	    "\"phone_country_code\":1.5,\"phone_number\":true,\"y\":2"),
	    "y", "first_name", "second_name", "last_name", "email",
	    "birth_date", "address.x", "address.street_line1",
	    "address.street_line2", "address.city", "address.postal_code",
	    "address.state", "address.country", "phone_country_code",
	    "phone_number"),

	/* ---- unknown fields -------------------------------------------- */
	{ .name = "unknown_top_level", .body = OBJ(MIN ",\"nickname\":\"x\""),
	  .want = V_INVALID, .paths = { "nickname" }, .msg = "unknown field" },
	BAD("unknown_nested", OBJ(FN LN EM BD ADDR(ST1 CITY "\"floor\":3,"
	    PC STA CTRY)), "address.floor"),
	BAD("unknown_top_and_nested", OBJ(FN LN EM BD ADDR(ST1 CITY
	    "\"id\":\"x\"," PC STA CTRY) ",\"status\":\"active\",\"id\":\"x\""),
	    "status", "id", "address.id"),
	BAD("unknown_null_still_unknown", OBJ(MIN ",\"role\":null"), "role"),
	BAD("unknown_near_miss_names", OBJ(MIN ",\"First_name\":\"a\","
	    "\"street_line_1\":\"b\""), "First_name", "street_line_1"),
	BAD("unknown_key_not_echoed", OBJ(MIN ",\"a b\":1,\"\":2"), "", ""),
	BAD("unknown_nested_key_not_echoed", OBJ(FN LN EM BD ADDR(ST1 CITY
	    "\"x.y\":1," PC STA CTRY)), "address"),
	BAD("unknown_long_key_not_echoed", OBJ(MIN ",\"" S100 "\":1"), ""),

	/* ---- types ----------------------------------------------------- */
	{ .name = "name_not_string", .body = OBJ("\"first_name\":5," LN EM BD
	  AD), .want = V_INVALID, .paths = { "first_name" },
	  .msg = "must be a string" },
	{ .name = "address_not_object", .body = OBJ(FN LN EM BD
	  "\"address\":\"Florida 9860\""), .want = V_INVALID,
	  .paths = { "address" }, .msg = "must be an object" },
	BAD("address_array", OBJ(FN LN EM BD "\"address\":[]"), "address"),
	BAD("email_number", OBJ(FN LN "\"email\":1," BD AD), "email"),
	BAD("country_number", OBJ(FN LN EM BD ADDR(ST1 CITY PC STA "\"country\":32")),
	    "address.country"),

	/* ---- strings --------------------------------------------------- */
	{ .name = "blank_required", .body = OBJ(FN "\"last_name\":\"  \\t \","
	  EM BD AD), .want = V_INVALID, .paths = { "last_name" },
	  .msg = "must not be empty" },
	BAD("empty_required", OBJ(FN LN EM BD ADDR(ST1 "\"city\":\"\"," PC STA CTRY)),
	    "address.city"),
	{ .name = "control_char_escaped", .body = OBJ("\"first_name\":"
	  "\"Ma\\u0001ria\"," LN EM BD AD), .want = V_INVALID,
	  .paths = { "first_name" }, .msg = "control characters" },
	BAD("control_char_del", OBJ(FN "\"last_name\":\"Bar\x7f" "ber\"," EM BD
	    AD), "last_name"),
	BAD("control_char_escape_sequence", OBJ(FN LN EM BD
	    ADDR("\"street_line1\":\"Florida\\u001b[2J\"," CITY PC STA CTRY)),
	    "address.street_line1"),
	BAD("control_char_c1", OBJ(FN LN EM BD ADDR(ST1
	    "\"city\":\"Del\\u0085Viso\"," PC STA CTRY)), "address.city"),
	BAD("control_char_form_feed", OBJ("\"first_name\":\"a\\fb\"," LN EM
	    BD AD), "first_name"),
	BAD("control_char_in_optional", OBJ(FN "\"second_name\":\"\\u0007\","
	    LN EM BD AD), "second_name"),
	/* ---- Unicode white space, invisibles, separators, bidi --------- */
	{ .name = "nbsp_name_is_blank", .body = OBJ("\"first_name\":"
	  "\"\\u00a0\"," LN EM BD AD), .want = V_INVALID,
	  .paths = { "first_name" }, .msg = "must not be empty" },
	BAD("zwsp_name_is_blank", OBJ("\"first_name\":\"\\u200b\"," LN EM BD
	    AD), "first_name"),
	BAD("raw_zwsp_name_is_blank", OBJ("\"first_name\":\"\xe2\x80\x8b\","
	    LN EM BD AD), "first_name"),
	BAD("spaces_and_invisibles_blank", OBJ(FN "\"last_name\":\"\\u3000"
	    "\\u2060\\ufeff\\u200e\\u200f\\u00ad\\u3164 \\u2003\"," EM BD AD),
	    "last_name"),
	BAD("zwj_alone_is_blank", OBJ("\"first_name\":\"\\u200d\\u200c\","
	    LN EM BD AD), "first_name"),
	BAD("blank_city", OBJ(FN LN EM BD ADDR(ST1 "\"city\":\"\\u2000\\u200a"
	    "\\u205f\\u1680\\u202f\"," PC STA CTRY)), "address.city"),
	BAD("blank_email", OBJ(FN LN "\"email\":\"\\u00a0\\u200b\"," BD AD),
	    "email"),
	BAD("blank_birth_date", OBJ(FN LN EM "\"birth_date\":\"\\ufeff\","
	    AD), "birth_date"),
	BAD("blank_country", OBJ(FN LN EM BD ADDR(ST1 CITY PC STA
	    "\"country\":\"\\u00a0\"")), "address.country"),
	OK("blank_optional_omitted", OBJ(FN "\"second_name\":\"\\u200b "
	    "\\u00a0\"," LN EM BD ADDR(ST1 "\"street_line2\":\"\\u2060"
	    "\\u3000\"," CITY PC STA CTRY)), OBJ(FN LN EM BD AD)),
	OK("unicode_space_trimmed_collapsed", OBJ("\"first_name\":\"\\u00a0"
	    "Maria\\u3000\\u2003 Julia\\u202f\"," LN EM BD AD),
	    OBJ("\"first_name\":\"Maria Julia\"," LN EM BD AD)),
	OK("nbsp_inside_street_collapsed", OBJ(FN LN EM BD
	    ADDR("\"street_line1\":\"Florida\\u00a0\\u00a09860\"," CITY PC STA
	    CTRY)),
	    OBJ(FN LN EM BD AD)),
	OK("zwj_inside_name_kept", OBJ("\"first_name\":\"\\u0915\\u094d"
	    "\\u200d\\u0937\"," LN EM BD AD), OBJ("\"first_name\":"
	    "\"\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d\xe0\xa4\xb7\"," LN EM BD
	    AD)),
	OK("zwnj_inside_name_kept", OBJ("\"first_name\":\"\\u0645\\u200c"
	    "\\u06cc\"," LN EM BD AD), OBJ("\"first_name\":"
	    "\"\xd9\x85\xe2\x80\x8c\xdb\x8c\"," LN EM BD AD)),
	{ .name = "line_separator", .body = OBJ("\"first_name\":\"Ma"
	  "\\u2028ria\"," LN EM BD AD), .want = V_INVALID,
	  .paths = { "first_name" }, .msg = "separators" },
	BAD("paragraph_separator", OBJ(FN LN EM BD ADDR("\"street_line1\":"
	    "\"Florida\xe2\x80\xa9" "9860\"," CITY PC STA CTRY)),
	    "address.street_line1"),
	BAD("line_separator_trailing", OBJ(FN "\"last_name\":\"Barber"
	    "\\u2028\"," EM BD AD), "last_name"),
	BAD("line_separator_alone_optional", OBJ(FN "\"second_name\":"
	    "\"\\u2029\"," LN EM BD AD), "second_name"),
	{ .name = "bidi_rlo", .body = OBJ("\"first_name\":\"\\u202eairaM\","
	  LN EM BD AD), .want = V_INVALID, .paths = { "first_name" },
	  .msg = "bidirectional" },
	BAD("bidi_lre", OBJ("\"first_name\":\"a\\u202ab\"," LN EM BD AD),
	    "first_name"),
	BAD("bidi_rle", OBJ("\"first_name\":\"a\\u202bb\"," LN EM BD AD),
	    "first_name"),
	BAD("bidi_pdf", OBJ("\"first_name\":\"a\\u202cb\"," LN EM BD AD),
	    "first_name"),
	BAD("bidi_lro", OBJ("\"first_name\":\"a\\u202db\"," LN EM BD AD),
	    "first_name"),
	BAD("bidi_lri", OBJ(FN LN EM BD ADDR(ST1 "\"city\":\"a\\u2066b\","
	    PC STA CTRY)), "address.city"),
	BAD("bidi_rli", OBJ(FN LN EM BD ADDR(ST1 CITY PC "\"state\":"
	    "\"\\u2067B\"," CTRY)), "address.state"),
	BAD("bidi_fsi", OBJ(FN LN EM BD ADDR(ST1 CITY "\"postal_code\":"
	    "\"1\\u2068\"," STA CTRY)), "address.postal_code"),
	BAD("bidi_pdi_raw", OBJ(FN LN "\"email\":\"a@example.com\xe2\x81\xa9\","
	    BD AD), "email"),
	{ .name = "bidi_in_country", .body = OBJ(FN LN EM BD ADDR(ST1 CITY
	  PC STA "\"country\":\"AR\\u202eG\"")), .want = V_INVALID,
	  .paths = { "address.country" }, .msg = "bidirectional" },
	BAD("bidi_in_birth_date", OBJ(FN LN EM "\"birth_date\":"
	    "\"1984-11-21\\u2069\"," AD), "birth_date"),
	{ .name = "bidi_in_phone_string", .body = OBJ(MIN
	  ",\"phone_country_code\":\"54\",\"phone_number\":\"\\u202e1168860622\""),
	  .want = V_INVALID, .paths = { "phone_number" },
	  .msg = "bidirectional" },
	BAD("separator_in_cc_string", OBJ(MIN ",\"phone_country_code\":"
	    "\"5\\u20284\",\"phone_number\":1168860622"), "phone_country_code"),
	OK("phone_strings_unicode_spaces", OBJ(MIN ",\"phone_country_code\":"
	    "\"\\u00a0+54\\u3000\",\"phone_number\":\"11\\u2009" "6886\\u00a0"
	    "0622\""), OBJ(MIN PHONE)),
	BAD("blank_phone_string", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":\"\\u200b\""), "phone_number"),
	BAD("vertical_tab_refused", OBJ("\"first_name\":\"a\\u000bb\"," LN EM
	    BD AD), "first_name"),
	{ .name = "name_of_101_chars", .body = OBJ("\"first_name\":\"" S100
	  "x\"," LN EM BD AD), .want = V_INVALID, .paths = { "first_name" },
	  .msg = "at most 100 characters" },
	BAD("name_of_101_two_byte_chars", OBJ("\"first_name\":\"" E100
	    "\xc3\xa9\"," LN EM BD AD), "first_name"),
	BAD("collapsed_space_counts", OBJ(FN LN EM BD ADDR(ST1 CITY
	    "\"postal_code\":\"" S10 "  " S10 "\"," STA CTRY)),
	    "address.postal_code"),
	OK("postal_code_of_20_chars", OBJ(FN LN EM BD ADDR(ST1 CITY
	    "\"postal_code\":\"  " S10 S10 "  \"," STA CTRY)),
	    OBJ(FN LN EM BD ADDR(ST1 CITY "\"postal_code\":\"" S10 S10 "\","
	    STA CTRY))),
	BAD("state_of_21_chars", OBJ(FN LN EM BD ADDR(ST1 CITY
	    PC "\"state\":\"" S10 S10 "x\"," CTRY)), "address.state"),
	BAD("street_of_201_chars", OBJ(FN LN EM BD ADDR("\"street_line1\":\""
	    S100 S100 "x\"," CITY PC STA CTRY)), "address.street_line1"),
	{ .name = "opts_max_string_length_caps", .body = OBJ("\"first_name\":"
	  "\"" S10 S10 S10 "x\"," LN EM BD AD), .want = V_INVALID,
	  .paths = { "first_name" }, .opts = &opts_short,
	  .msg = "at most 30 characters" },
	{ .name = "opts_max_string_length_at_cap", .body = OBJ("\"first_name\":"
	  "\"" S10 S10 S10 "\"," LN EM BD AD), .want = V_OK,
	  .opts = &opts_short,
	  .out = OBJ("\"first_name\":\"" S10 S10 S10 "\"," LN EM BD AD) },

	/* ---- email ----------------------------------------------------- */
	{ .name = "email_no_at", .body = OBJ(FN LN
	  "\"email\":\"mjulia.example.com\"," BD AD), .want = V_INVALID,
	  .paths = { "email" }, .msg = "valid email" },
	BAD("email_two_ats", OBJ(FN LN "\"email\":\"a@b@example.com\"," BD AD),
	    "email"),
	BAD("email_empty_local", OBJ(FN LN "\"email\":\"@example.com\"," BD AD),
	    "email"),
	BAD("email_no_dot_in_domain", OBJ(FN LN "\"email\":\"a@localhost\","
	    BD AD), "email"),
	BAD("email_inner_space", OBJ(FN LN "\"email\":\"a b@example.com\","
	    BD AD), "email"),
	BAD("email_label_leading_hyphen", OBJ(FN LN
	    "\"email\":\"a@-example.com\"," BD AD), "email"),
	BAD("email_label_trailing_hyphen", OBJ(FN LN
	    "\"email\":\"a@example-.com\"," BD AD), "email"),
	BAD("email_empty_label", OBJ(FN LN "\"email\":\"a@example..com\","
	    BD AD), "email"),
	BAD("email_trailing_dot", OBJ(FN LN "\"email\":\"a@example.com.\","
	    BD AD), "email"),
	BAD("email_local_leading_dot", OBJ(FN LN "\"email\":\".a@example.com\","
	    BD AD), "email"),
	BAD("email_local_double_dot", OBJ(FN LN
	    "\"email\":\"a..b@example.com\","
	    BD AD), "email"),
	BAD("email_local_65_chars", OBJ(FN LN "\"email\":\"" S10 S10 S10 S10
	    S10 S10 "abcde@example.com\"," BD AD), "email"),
	OK("email_local_64_chars", OBJ(FN LN "\"email\":\"" S10 S10 S10 S10
	    S10 S10 "abcd@example.com\"," BD AD), OBJ(FN LN "\"email\":\""
	    S10 S10 S10 S10 S10 S10 "abcd@example.com\"," BD AD)),
	BAD("email_underscore_in_domain", OBJ(FN LN
	    "\"email\":\"a@ex_ample.com\"," BD AD), "email"),
	BAD("email_numeric_tld", OBJ(FN LN "\"email\":\"a@10.0.0.1\"," BD AD),
	    "email"),
	BAD("email_non_ascii", OBJ(FN LN
	    "\"email\":\"jos\xc3\xa9@example.com\","
	    BD AD), "email"),
	BAD("email_blank", OBJ(FN LN "\"email\":\"   \"," BD AD), "email"),
	{ .name = "email_too_long", .body = OBJ(FN LN "\"email\":\"a@" S50 "."
	  S50 "." S50 "." S50 "." S50 ".com\"," BD AD), .want = V_INVALID,
	  .paths = { "email" }, .msg = "at most 254" },

	/* ---- birth_date ------------------------------------------------ */
	{ .name = "feb_30", .body = OBJ(FN LN EM
	  "\"birth_date\":\"1984-02-30\","
	  AD), .want = V_INVALID, .paths = { "birth_date" },
	  .msg = "valid calendar date" },
	BAD("feb_29_1900_not_leap", OBJ(FN LN EM
	    "\"birth_date\":\"1900-02-29\"," AD), "birth_date"),
	BAD("feb_29_common_year", OBJ(FN LN EM "\"birth_date\":\"1985-02-29\","
	    AD), "birth_date"),
	BAD("april_31", OBJ(FN LN EM "\"birth_date\":\"1984-04-31\"," AD),
	    "birth_date"),
	BAD("month_13", OBJ(FN LN EM "\"birth_date\":\"1984-13-01\"," AD),
	    "birth_date"),
	BAD("month_00", OBJ(FN LN EM "\"birth_date\":\"1984-00-10\"," AD),
	    "birth_date"),
	BAD("day_00", OBJ(FN LN EM "\"birth_date\":\"1984-01-00\"," AD),
	    "birth_date"),
	{ .name = "single_digit_month", .body = OBJ(FN LN EM
	  "\"birth_date\":\"1984-1-21\"," AD), .want = V_INVALID,
	  .paths = { "birth_date" }, .msg = "YYYY-MM-DD" },
	BAD("slashes", OBJ(FN LN EM "\"birth_date\":\"1984/11/21\"," AD),
	    "birth_date"),
	BAD("dd_mm_yyyy", OBJ(FN LN EM "\"birth_date\":\"21-11-1984\"," AD),
	    "birth_date"),
	BAD("datetime", OBJ(FN LN EM "\"birth_date\":\"1984-11-21T00:00:00Z\","
	    AD), "birth_date"),
	BAD("date_number", OBJ(FN LN EM "\"birth_date\":19841121," AD),
	    "birth_date"),
	BAD("date_non_ascii_digit", OBJ(FN LN EM
	    "\"birth_date\":\"1984-11-2\xd9\xa1\"," AD), "birth_date"),
	{ .name = "future_tomorrow", .body = OBJ(FN LN EM
	  "\"birth_date\":\"2026-11-27\"," AD), .want = V_INVALID,
	  .paths = { "birth_date" }, .msg = "future" },
	BAD("future_year", OBJ(FN LN EM "\"birth_date\":\"2031-01-01\"," AD),
	    "birth_date"),
	{ .name = "under_age_by_one_day", .body = OBJ(FN LN EM
	  "\"birth_date\":\"2008-11-27\"," AD), .want = V_INVALID,
	  .paths = { "birth_date" }, .msg = "at least 18 years" },
	BAD("born_today", OBJ(FN LN EM "\"birth_date\":\"2026-11-26\"," AD),
	    "birth_date"),
	{ .name = "feb29_born_not_18_on_feb28",
	  .body = OBJ(FN LN EM "\"birth_date\":\"2008-02-29\"," AD),
	  .want = V_INVALID, .paths = { "birth_date" },
	  .opts = &opts_feb28 },
	BAD("before_1900", OBJ(FN LN EM "\"birth_date\":\"1899-12-31\"," AD),
	    "birth_date"),

	/* ---- country and state ----------------------------------------- */
	{ .name = "unknown_country", .body = OBJ(FN LN EM BD ADDR(ST1 CITY
	  PC STA "\"country\":\"XXX\"")), .want = V_INVALID,
	  .paths = { "address.country" }, .msg = "ISO 3166-1" },
	BAD("unknown_country_alpha2", OBJ(FN LN EM BD ADDR(ST1 CITY
	    PC STA "\"country\":\"UK\"")), "address.country"),
	BAD("country_name", OBJ(FN LN EM BD ADDR(ST1 CITY
	    PC STA "\"country\":\"Argentina\"")), "address.country"),
	BAD("country_numeric_code", OBJ(FN LN EM BD ADDR(ST1 CITY
	    PC STA "\"country\":\"032\"")), "address.country"),
	BAD("country_blank", OBJ(FN LN EM BD ADDR(ST1 CITY
	    PC STA "\"country\":\" \"")), "address.country"),
	BAD("country_inner_space", OBJ(FN LN EM BD ADDR(ST1 CITY
	    PC STA "\"country\":\"A R\"")), "address.country"),
	{ .name = "state_prefix_mismatch", .body = OBJ(FN LN EM BD ADDR(ST1
	  CITY PC "\"state\":\"BRA-B\"," CTRY)), .want = V_INVALID,
	  .paths = { "address.state" }, .msg = "address.country" },
	BAD("state_alpha2_prefix_mismatch", OBJ(FN LN EM BD ADDR(ST1 CITY
	    PC "\"state\":\"br-b\"," CTRY)), "address.state"),
	BAD("state_unknown_prefix", OBJ(FN LN EM BD ADDR(ST1 CITY
	    PC "\"state\":\"QQQ-B\"," CTRY)), "address.state"),
	BAD("state_prefix_bad_country_only_country", OBJ(FN LN EM BD
	    ADDR(ST1 CITY PC "\"state\":\"BRA-B\",\"country\":\"QQ\"")),
	    "address.country"),
	{ .name = "state_free_form_name", .body = OBJ(FN LN EM BD ADDR(ST1
	  CITY PC "\"state\":\"Buenos Aires\"," CTRY)), .want = V_INVALID,
	  .paths = { "address.state" }, .msg = "ISO 3166-2" },
	BAD("state_unknown_suffix", OBJ(FN LN EM BD ADDR(ST1 CITY PC
	    "\"state\":\"ARG-I\"," CTRY)), "address.state"),
	BAD("state_other_countrys_suffix", OBJ(FN LN EM BD ADDR(ST1 CITY PC
	    "\"state\":\"SP\"," CTRY)), "address.state"),
	BAD("state_four_char_suffix", OBJ(FN LN EM BD ADDR(ST1 CITY PC
	    "\"state\":\"ARG-BBBB\"," CTRY)), "address.state"),
	BAD("state_double_dash", OBJ(FN LN EM BD ADDR(ST1 CITY PC
	    "\"state\":\"AR--B\"," CTRY)), "address.state"),
	{ .name = "state_country_without_subdivisions", .body = OBJ(FN LN EM
	  BD ADDR(ST1 CITY PC "\"state\":\"X\",\"country\":\"HKG\"")),
	  .want = V_INVALID, .paths = { "address.state" },
	  .msg = "no ISO 3166-2 subdivisions" },
	BAD("state_code_letters", OBJ(FN LN EM BD ADDR(ST1 CITY PC STA
	    "\"state_code\":\"B\"," CTRY)), "address.state_code"),
	{ .name = "state_code_7_digits", .body = OBJ(FN LN EM BD ADDR(ST1 CITY
	  PC STA "\"state_code\":\"1234567\"," CTRY)), .want = V_INVALID,
	  .paths = { "address.state_code" }, .msg = "1 to 6 digits" },
	BAD("state_code_number", OBJ(FN LN EM BD ADDR(ST1 CITY PC STA
	    "\"state_code\":6," CTRY)), "address.state_code"),
	BAD("country_code_signed", OBJ(FN LN EM BD ADDR(ST1 CITY PC STA CTRY
	    ",\"country_code\":\"+54\"")), "address.country_code"),
	BAD("country_code_inner_space", OBJ(FN LN EM BD ADDR(ST1 CITY PC STA
	    CTRY ",\"country_code\":\"0 32\"")), "address.country_code"),
	BAD("country_code_number", OBJ(FN LN EM BD ADDR(ST1 CITY PC STA CTRY
	    ",\"country_code\":32")), "address.country_code"),
	BAD("state_not_string", OBJ(FN LN EM BD ADDR(ST1 CITY PC "\"state\":1,"
	    CTRY)), "address.state"),

	/* ---- phone ----------------------------------------------------- */
	{ .name = "cc_without_number", .body = OBJ(MIN
	  ",\"phone_country_code\":54"), .want = V_INVALID,
	  .paths = { "phone_number" }, .msg = "required" },
	BAD("number_without_cc", OBJ(MIN ",\"phone_number\":1168860622"),
	    "phone_country_code"),
	BAD("number_with_null_cc", OBJ(MIN ",\"phone_country_code\":null,"
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("bad_cc_and_no_number", OBJ(MIN ",\"phone_country_code\":\"x\""),
	    "phone_country_code", "phone_number"),
	BAD("cc_float_whole", OBJ(MIN ",\"phone_country_code\":54.0,"
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_float", OBJ(MIN ",\"phone_country_code\":1.5,"
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_exponent", OBJ(MIN ",\"phone_country_code\":5e1,"
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_bool", OBJ(MIN ",\"phone_country_code\":true,"
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_zero", OBJ(MIN ",\"phone_country_code\":0,"
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_1000", OBJ(MIN ",\"phone_country_code\":1000,"
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_negative", OBJ(MIN ",\"phone_country_code\":-54,"
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_string_leading_zero", OBJ(MIN ",\"phone_country_code\":\"054\","
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_string_four_digits", OBJ(MIN ",\"phone_country_code\":\"5400\","
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_string_double_plus", OBJ(MIN ",\"phone_country_code\":\"++54\","
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("cc_string_plus_only", OBJ(MIN ",\"phone_country_code\":\"+\","
	    "\"phone_number\":1168860622"), "phone_country_code"),
	BAD("number_float", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":1168860622.5"), "phone_number"),
	BAD("number_float_whole", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":1168860622.0"), "phone_number"),
	BAD("number_bool", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":false"), "phone_number"),
	BAD("number_zero", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":0"), "phone_number"),
	BAD("number_negative", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":-1168860622"), "phone_number"),
	{ .name = "number_letters",
	  .body = OBJ(MIN ",\"phone_country_code\":54,"
	  "\"phone_number\":\"11 6886-ABCD\""), .want = V_INVALID,
	  .paths = { "phone_number" }, .msg = "only digits" },
	BAD("number_with_plus", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":\"+54 11 6886-0622\""), "phone_number"),
	BAD("number_with_slash", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":\"11/6886\""), "phone_number"),
	BAD("number_leading_zero", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":\"011 6886-0622\""), "phone_number"),
	BAD("number_no_digits", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":\" - \""), "phone_number"),
	BAD("number_empty_string", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":\"\""), "phone_number"),
	{ .name = "e164_16_digits",
	  .body = OBJ(MIN ",\"phone_country_code\":54,"
	  "\"phone_number\":12345678901234"), .want = V_INVALID,
	  .paths = { "phone_number" }, .msg = "15 digits" },
	BAD("e164_16_digits_string", OBJ(MIN ",\"phone_country_code\":\"+549\","
	    "\"phone_number\":\"1234 5678 90123\""), "phone_number"),
	OK("e164_15_digits_string", OBJ(MIN ",\"phone_country_code\":\"+549\","
	    "\"phone_number\":\"1234 5678 9012\""), OBJ(MIN
	    ",\"phone_country_code\":549,\"phone_number\":123456789012")),
	BAD("number_15_digits_alone", OBJ(MIN ",\"phone_country_code\":1,"
	    "\"phone_number\":123456789012345"), "phone_number"),
	BAD("number_too_long_without_cc", OBJ(MIN
	    ",\"phone_number\":1234567890123456"), "phone_country_code",
	    "phone_number"),
	BAD("number_int64_max", OBJ(MIN ",\"phone_country_code\":1,"
	    "\"phone_number\":9223372036854775807"), "phone_number"),
	BAD("number_40_digit_string", OBJ(MIN ",\"phone_country_code\":1,"
	    "\"phone_number\":\"" "1234567890123456789012345678901234567890"
	    "\""), "phone_number"),
	BAD("number_huge_double", OBJ(MIN ",\"phone_country_code\":1,"
	    "\"phone_number\":1e300"), "phone_number"),

	/* ---- strict JSON ----------------------------------------------- */
	{ .name = "duplicate_key_top", .body = OBJ(FN "\"first_name\":\"Eve\","
	  LN EM BD AD), .want = V_INVALID_JSON, .paths = { "" },
	  .msg = "duplicate" },
	BADJ("duplicate_key_nested", OBJ(FN LN EM BD ADDR(ST1 CITY
	    "\"country\":\"BRA\"," PC STA CTRY))),
	BADJ("duplicate_key_escaped", OBJ(FN "\"first\\u005fname\":\"Eve\","
	    LN EM BD AD)),
	BADJ("duplicate_key_in_unknown", OBJ(MIN ",\"x\":{\"a\":1,\"a\":1}")),
	BADJ("duplicate_key_in_array",
	    OBJ(MIN ",\"x\":[{},{\"a\":1,\"a\":1}]")),
	BADJ("duplicate_object_replaced", OBJ(MIN ",\"x\":{\"a\":{\"b\":1},"
	    "\"a\":2}")),
	BADJ("trailing_garbage", OBJ(MIN) " x"),
	BADJ("trailing_second_object", OBJ(MIN) "{}"),
	BADJR("trailing_nul", OBJ(MIN) "\0"),
	BADJ("trailing_comma", "{" FN LN EM BD AD ",}"),
	BADJ("comment", "/* hi */" OBJ(MIN)),
	BADJ("single_quoted_key", OBJ(MIN ",'x':1")),
	BADJ("single_quoted_value", OBJ(MIN ",\"x\":'1'")),
	BADJ("truncated_literal", OBJ(MIN ",\"x\":tru")),
	BADJ("literal_cut_at_end", "{\"x\":fals"),
	BADJ("literal_with_suffix", OBJ(MIN ",\"x\":nullx")),
	BADJ("bom", "\xef\xbb\xbf" OBJ(MIN)),
	{ .name = "invalid_utf8_ff", .body = OBJ("\"first_name\":\"Ma\xff"
	  "ria\"," LN EM BD AD), .want = V_INVALID_JSON, .paths = { "" },
	  .msg = "UTF-8" },
	BADJ("overlong_nul_c0_80", OBJ("\"first_name\":\"Ma\xc0\x80" "ria\","
	    LN EM BD AD)),
	BADJ("overlong_slash_e0_80_af", OBJ("\"first_name\":\"\xe0\x80\xaf\","
	    LN EM BD AD)),
	BADJ("surrogate_ed_a0_80", OBJ("\"first_name\":\"Ma\xed\xa0\x80"
	    "ria\"," LN EM BD AD)),
	BADJ("above_10ffff", OBJ("\"first_name\":\"\xf4\x90\x80\x80\","
	    LN EM BD AD)),
	BADJ("truncated_sequence", OBJ("\"first_name\":\"Mari\xc3\"," LN EM BD
	    AD)),
	BADJ("lone_continuation", OBJ("\"first_name\":\"\x80\"," LN EM BD AD)),
	BADJ("utf8_outside_string", OBJ(MIN ",\"x\":\xc3\xa9")),
	BADJ("invalid_utf8_in_key", OBJ(MIN ",\"\xff\":1")),
	{ .name = "nul_byte_in_string", RAW(OBJ("\"first_name\":\"Ma\0ria\","
	  LN EM BD AD)), .want = V_INVALID_JSON, .paths = { "" },
	  .msg = "NUL" },
	BADJR("nul_byte_between_tokens", "{\0" FN LN EM BD AD "}"),
	BADJ("nul_escape_in_key", OBJ(MIN ",\"first_name\\u0000x\":\"Eve\"")),
	BADJ("nul_escape_in_value", OBJ("\"first_name\":\"Ma\\u0000ria\","
	    LN EM BD AD)),
	BADJ("lone_high_surrogate_escape", OBJ("\"first_name\":\"\\ud800\","
	    LN EM BD AD)),
	BADJ("lone_low_surrogate_escape", OBJ("\"first_name\":\"\\udc00x\","
	    LN EM BD AD)),
	BADJ("high_then_non_low_escape", OBJ("\"first_name\":\"\\ud800"
	    "\\u0041\"," LN EM BD AD)),
	BADJ("bad_escape", OBJ("\"first_name\":\"Ma\\xria\"," LN EM BD AD)),
	BADJ("bad_unicode_escape", OBJ("\"first_name\":\"\\u00g1\"," LN EM BD
	    AD)),
	BADJ("raw_tab_in_string", OBJ("\"first_name\":\"Ma\tria\"," LN EM BD
	    AD)),
	BADJ("raw_newline_in_string", OBJ("\"first_name\":\"Ma\nria\"," LN EM
	    BD AD)),
	{ .name = "too_deep", .body = OBJ(MIN ",\"x\":" DEEP12),
	  .want = V_INVALID_JSON, .paths = { "" }, .msg = "too deep" },
	{ .name = "too_deep_for_address", .body = OBJ(FN LN EM BD
	  ADDR(ST1 CITY PC STA "\"country\":[\"ARG\"]")), .want = V_INVALID_JSON,
	  .paths = { "" }, .opts = &opts_depth3 },
	BADJ("nan", OBJ(MIN ",\"phone_country_code\":NaN,"
	    "\"phone_number\":1")),
	BADJ("infinity", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":Infinity")),
	BADJ("minus_infinity", OBJ(MIN ",\"x\":-Infinity")),
	{ .name = "1e999", .body = OBJ(MIN ",\"phone_country_code\":54,"
	  "\"phone_number\":1e999"), .want = V_INVALID_JSON,
	  .paths = { "" }, .msg = "finite" },
	BADJ("minus_1e999", OBJ(MIN ",\"x\":-1e999")),
	/* Numbers too large for a field are valid JSON: the field's error. */
	{ .name = "integer_over_uint64", .body = OBJ(MIN
	  ",\"phone_country_code\":54,\"phone_number\":99999999999999999999"),
	  .want = V_INVALID, .paths = { "phone_number" }, .msg = "15 digits" },
	BAD("integer_int64_max_plus_1", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":9223372036854775808"), "phone_number"),
	BAD("integer_30_digits", OBJ(MIN ",\"phone_country_code\":54,"
	    "\"phone_number\":123456789012345678901234567890"), "phone_number"),
	{ .name = "integer_under_int64_min_phone", .body = OBJ(MIN
	  ",\"phone_country_code\":54,\"phone_number\":-9223372036854775809"),
	  .want = V_INVALID, .paths = { "phone_number" }, .msg = "positive" },
	BAD("cc_over_uint64", OBJ(MIN ",\"phone_country_code\":"
	    "184467440737095516160,\"phone_number\":1168860622"),
	    "phone_country_code"),
	BAD("cc_uint64_range", OBJ(MIN ",\"phone_country_code\":"
	    "18446744073709551615,\"phone_number\":1168860622"),
	    "phone_country_code"),
	BAD("cc_under_int64_min", OBJ(MIN ",\"phone_country_code\":"
	    "-99999999999999999999,\"phone_number\":1168860622"),
	    "phone_country_code"),
	BAD("both_huge", OBJ(MIN ",\"phone_country_code\":123456789012345678901"
	    ",\"phone_number\":-123456789012345678901"), "phone_country_code",
	    "phone_number"),
	BAD("integer_under_int64_min", OBJ(MIN ",\"x\":-9223372036854775809"),
	    "x"),
	BAD("integer_int64_min_parses", OBJ(MIN ",\"x\":-9223372036854775808"),
	    "x"),
	BAD("depth_at_limit_parses", OBJ(MIN ",\"x\":[[[[[[[[1]]]]]]]]"), "x"),
	BADJ("number_trailing_dot", OBJ(MIN ",\"x\":1.")),
	BADJ("number_leading_zero", OBJ(MIN ",\"x\":01")),
	BADJ("number_leading_plus", OBJ(MIN ",\"x\":+1")),
	BADJ("number_lone_minus", OBJ(MIN ",\"x\":-")),
	BADJ("number_bare_exponent", OBJ(MIN ",\"x\":1e")),
	BADJ("number_hex", OBJ(MIN ",\"x\":0x10")),
	{ .name = "top_level_array", .body = "[" OBJ(MIN) "]",
	  .want = V_INVALID_JSON, .paths = { "" }, .msg = "JSON object" },
	BADJ("top_level_string", "\"hello\""),
	BADJ("top_level_number", "42"),
	BADJ("top_level_number_space", " 42 "),
	BADJ("top_level_null", "null"),
	BADJ("top_level_true", "true"),
	{ .name = "empty_body", .body = "", .want = V_INVALID_JSON,
	  .paths = { "" }, .msg = "empty" },
	BADJ("whitespace_body", " \r\n\t "),
	BADJ("truncated_in_string", "{\"first_name\":\"Ma"),
	BADJ("truncated_after_colon", "{\"first_name\":"),
	BADJ("truncated_in_escape", "{\"first_name\":\"Ma\\u00"),
	BADJ("truncated_nested", "{" FN LN EM BD "\"address\":{" ST1),
	BADJ("truncated_number", "{\"x\":12"),
	BADJ("unquoted_key", "{first_name:\"Maria\"}"),
	BADJ("missing_colon", "{\"first_name\" \"Maria\"}"),
	BADJ("upper_case_true", OBJ(MIN ",\"x\":TRUE")),
	BADJ("form_feed_whitespace", "\f" OBJ(MIN)),
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
print_paths(const char *what, const char **p, size_t n)
{
	size_t	i;

	print_error("%s (%zu):", what, n);
	for (i = 0; i < n; i++)
		print_error(" \"%s\"", p[i]);
	print_error("\n");
}

/*
 * vstr_normalize() on its own, the helper every route's string fields
 * use: input bytes, max_chars, the result, and the output for VSTR_OK.
 */
struct vstr_case {
	const char		*in;
	size_t			 max;
	enum vstr_result	 want;
	const char		*out;
};

static const struct vstr_case vstr_cases[] = {
	{ "Maria", 10, VSTR_OK, "Maria" },
	{ "  Maria \t Julia\r\n", 20, VSTR_OK, "Maria Julia" },
	{ "\xc2\xa0Maria\xc2\xa0", 10, VSTR_OK, "Maria" },		/* NBSP */
	{ "a\xe1\x9a\x80" "b", 10, VSTR_OK, "a b" },			/* 1680 */
	{ "a\xe2\x80\x80\xe2\x80\x8a" "b", 10, VSTR_OK, "a b" },	/* 2000 200A */
	{ "a\xe2\x80\xaf" "b", 10, VSTR_OK, "a b" },			/* 202F */
	{ "a\xe2\x81\x9f" "b", 10, VSTR_OK, "a b" },			/* 205F */
	{ "\xe3\x80\x80" "a\xe3\x80\x80", 10, VSTR_OK, "a" },		/* 3000 */
	{ "", 10, VSTR_EMPTY, NULL },
	{ " \t\r\n", 10, VSTR_EMPTY, NULL },
	{ "\xc2\xa0", 10, VSTR_EMPTY, NULL },
	{ "\xe2\x80\x8b", 10, VSTR_EMPTY, NULL },			/* ZWSP */
	{ "\xe2\x81\xa0", 10, VSTR_EMPTY, NULL },			/* WJ */
	{ "\xef\xbb\xbf", 10, VSTR_EMPTY, NULL },			/* BOM */
	{ "\xe2\x80\x8e\xe2\x80\x8f", 10, VSTR_EMPTY, NULL },		/* LRM RLM */
	{ "\xc2\xad", 10, VSTR_EMPTY, NULL },				/* SHY */
	{ "\xe3\x85\xa4", 10, VSTR_EMPTY, NULL },			/* 3164 */
	{ "\xe2\x80\x8d", 10, VSTR_EMPTY, NULL },			/* ZWJ */
	{ "\xf3\xa0\x80\x81\xf3\xa0\x81\xa1", 10, VSTR_EMPTY, NULL },	/* tags */
	{ " \xe2\x80\x8b \xc2\xa0\xe2\x81\xa0 ", 10, VSTR_EMPTY, NULL },
	{ "a\xe2\x80\x8d" "b", 10, VSTR_OK, "a\xe2\x80\x8d" "b" },	/* ZWJ */
	{ "a\xe2\x80\x8c" "b", 10, VSTR_OK, "a\xe2\x80\x8c" "b" },	/* ZWNJ */
	{ "a\xe2\x80\xa8" "b", 10, VSTR_SEPARATOR, NULL },
	{ "\xe2\x80\xa9", 10, VSTR_SEPARATOR, NULL },
	{ "a\xe2\x80\xaa", 10, VSTR_BIDI, NULL },			/* 202A */
	{ "a\xe2\x80\xab", 10, VSTR_BIDI, NULL },
	{ "a\xe2\x80\xac", 10, VSTR_BIDI, NULL },
	{ "a\xe2\x80\xad", 10, VSTR_BIDI, NULL },
	{ "a\xe2\x80\xae", 10, VSTR_BIDI, NULL },			/* 202E */
	{ "a\xe2\x81\xa6", 10, VSTR_BIDI, NULL },			/* 2066 */
	{ "a\xe2\x81\xa7", 10, VSTR_BIDI, NULL },
	{ "a\xe2\x81\xa8", 10, VSTR_BIDI, NULL },
	{ "a\xe2\x81\xa9", 10, VSTR_BIDI, NULL },			/* 2069 */
	{ "\xe2\x80\xae", 10, VSTR_BIDI, NULL },	/* not just blank */
	{ "a\x01" "b", 10, VSTR_CONTROL, NULL },
	{ "a\x0b" "b", 10, VSTR_CONTROL, NULL },			/* VT */
	{ "a\x0c" "b", 10, VSTR_CONTROL, NULL },			/* FF */
	{ "a\x7f", 10, VSTR_CONTROL, NULL },
	{ "a\xc2\x85" "b", 10, VSTR_CONTROL, NULL },			/* NEL */
	{ "a\xc2\x9f", 10, VSTR_CONTROL, NULL },
	{ "a\xff", 10, VSTR_CONTROL, NULL },		/* not UTF-8 */
	{ "a\xc0\x80", 10, VSTR_CONTROL, NULL },	/* overlong */
	{ "a\xed\xa0\x80", 10, VSTR_CONTROL, NULL },	/* surrogate */
	{ "a\xe2\x80", 10, VSTR_CONTROL, NULL },	/* cut short */
	{ "abcde", 5, VSTR_OK, "abcde" },
	{ "abcdef", 5, VSTR_TOOLONG, NULL },
	{ "ab cd", 5, VSTR_OK, "ab cd" },
	{ "ab  \xc2\xa0 cde", 5, VSTR_TOOLONG, NULL },	/* space counts */
	{ "\xc3\xa9\xc3\xa9\xc3\xa9", 3, VSTR_OK, "\xc3\xa9\xc3\xa9\xc3\xa9" },
	{ "   abc   ", 3, VSTR_OK, "abc" },		/* ends are free */
};

static void
test_vstr_normalize(void **state)
{
	char	out[4 * 20 + 1];
	size_t	i, len, n;

	(void)state;
	for (i = 0; i < NELEM(vstr_cases); i++) {
		const struct vstr_case *c = &vstr_cases[i];
		enum vstr_result r;
		char *in;

		/* Exactly n bytes, no terminator: ASan sees overreads. */
		n = strlen(c->in);
		in = malloc(n != 0 ? n : 1);
		assert_non_null(in);
		memcpy(in, c->in, n);
		r = vstr_normalize(in, n, c->max, out, 4 * c->max + 1, &len);
		free(in);
		if (r != c->want)
			print_error("vstr case %zu: got %d, want %d\n", i,
			    (int)r, (int)c->want);
		assert_int_equal(r, c->want);
		if (c->out != NULL) {
			assert_int_equal(len, strlen(c->out));
			assert_string_equal(out, c->out);
		}
		assert_non_null(vstr_message(r));
	}
}

/* vjson_int(): type, range, and the values json-c clamps. */
static void
test_vjson_int(void **state)
{
	static const struct {
		const char		*json;
		int64_t			 min, max;
		enum vint_result	 want;
		int64_t			 val;
	} c[] = {
		{ "54", 1, 999, VINT_OK, 54 },
		{ "0", 1, 999, VINT_RANGE, 0 },
		{ "1000", 1, 999, VINT_RANGE, 0 },
		{ "-5", -10, 10, VINT_OK, -5 },
		{ "9223372036854775807", 0, INT64_MAX, VINT_OK, INT64_MAX },
		{ "9223372036854775808", 0, INT64_MAX, VINT_RANGE, 0 },
		{ "18446744073709551615", 0, INT64_MAX, VINT_RANGE, 0 },
		{ "99999999999999999999", 0, INT64_MAX, VINT_RANGE, 0 },
		{ "-9223372036854775807", INT64_MIN, 0, VINT_OK,
		  -INT64_MAX },
		{ "-9223372036854775808", INT64_MIN, 0, VINT_RANGE, 0 },
		{ "-99999999999999999999", INT64_MIN, 0, VINT_RANGE, 0 },
		{ "1.0", 0, 10, VINT_TYPE, 0 },
		{ "\"5\"", 0, 10, VINT_TYPE, 0 },
		{ "null", 0, 10, VINT_TYPE, 0 },
	};
	struct json_object *o;
	int64_t v;
	size_t i;

	(void)state;
	assert_int_equal(vjson_int(NULL, 0, 1, &v), VINT_TYPE);
	for (i = 0; i < NELEM(c); i++) {
		o = json_tokener_parse(c[i].json);
		v = 12345;
		if (vjson_int(o, c[i].min, c[i].max, &v) != c[i].want)
			print_error("vjson_int case %s\n", c[i].json);
		assert_int_equal(vjson_int(o, c[i].min, c[i].max, &v),
		    c[i].want);
		if (c[i].want == VINT_OK)
			assert_true(v == c[i].val);
		json_object_put(o);
	}
}

static void
run_case(void **state)
{
	const struct tcase	*tc = *state;
	const struct vopts	*o = tc->opts ? tc->opts : &opts_default;
	struct verrors		 errs = { 0 };
	struct json_object	*out = (struct json_object *)&errs; /* poison */
	const char		*want[MAX_PATHS], *got[64];
	size_t			 len, nwant, ngot, i;
	enum vresult		 r;
	char			*body;
	bool			 same, found;

	len = tc->len != 0 ? tc->len : strlen(tc->body);
	/* Exactly len bytes, no terminator: overreads are caught by ASan. */
	body = malloc(len != 0 ? len : 1);
	assert_non_null(body);
	memcpy(body, tc->body, len);
	r = validate_individual(body, len, o, &out, &errs);
	free(body);

	for (i = 0; i < errs.n; i++) {
		assert_non_null(errs.v[i].field);
		assert_non_null(errs.v[i].message);
		assert_true(errs.v[i].message[0] != '\0');
	}
	if (r != tc->want || (r == V_OK) != (out != NULL)) {
		for (i = 0; i < errs.n; i++)
			print_error("  [%s] %s\n", errs.v[i].field,
			    errs.v[i].message);
	}
	assert_int_equal(r, tc->want);

	for (nwant = 0; nwant < MAX_PATHS && tc->paths[nwant] != NULL; nwant++)
		want[nwant] = tc->paths[nwant];
	assert_true(errs.n <= NELEM(got));
	ngot = errs.n;
	for (i = 0; i < ngot; i++)
		got[i] = errs.v[i].field;
	qsort(want, nwant, sizeof(want[0]), cmp_str);
	qsort(got, ngot, sizeof(got[0]), cmp_str);
	same = nwant == ngot;
	for (i = 0; same && i < ngot; i++)
		same = strcmp(want[i], got[i]) == 0;
	if (!same) {
		print_paths("want", want, nwant);
		print_paths("got", got, ngot);
		for (i = 0; i < errs.n; i++)
			print_error("  [%s] %s\n", errs.v[i].field,
			    errs.v[i].message);
	}
	assert_true(same);

	if (tc->msg != NULL) {
		for (found = false, i = 0; !found && i < errs.n; i++)
			found = strstr(errs.v[i].message, tc->msg) != NULL;
		if (!found)
			print_error("no message contains \"%s\"\n", tc->msg);
		assert_true(found);
	}

	if (r == V_OK) {
		assert_non_null(out);
		assert_int_equal(errs.n, 0);
		if (tc->out != NULL)
			assert_string_equal(json_object_to_json_string_ext(out,
			    JSON_C_TO_STRING_PLAIN |
			    JSON_C_TO_STRING_NOSLASHESCAPE), tc->out);
	} else {
		assert_null(out);
		assert_true(errs.n > 0);
	}
	if (r == V_INVALID_JSON)
		assert_int_equal(errs.n, 1);
	json_object_put(out);
	verrors_free(&errs);
	assert_null(errs.v);
	assert_int_equal(errs.n, 0);
}

/* ---- not table-shaped ---------------------------------------------- */

/* Errors come in canonical field order, whatever the body's order. */
static void
test_error_order(void **state)
{
	static const char	*body = OBJ("\"phone_number\":1,"
	    "\"address\":{\"country\":\"XX\",\"state\":1,"
	    "\"street_line1\":\"a\","
	    "\"city\":\"b\"},\"birth_date\":\"x\",\"email\":\"x\","
	    "\"last_name\":\"Barber\",\"first_name\":5,\"zz\":1");
	static const char	*want[] = {
		"zz", "first_name", "email", "birth_date",
		"address.postal_code", "address.state", "address.country",
		"phone_country_code",
	};
	struct verrors		 errs = { 0 };
	struct json_object	*out;
	size_t			 i;

	(void)state;
	assert_int_equal(validate_individual(body, strlen(body), &opts_default,
	    &out, &errs), V_INVALID);
	assert_int_equal(errs.n, NELEM(want));
	for (i = 0; i < NELEM(want); i++)
		assert_string_equal(errs.v[i].field, want[i]);
	verrors_free(&errs);
}

/* No message or path ever carries a submitted value. */
static void
test_messages_omit_values(void **state)
{
	static const char *bodies[] = {
		OBJ("\"first_name\":\"SECRETVALUE\\u0001\","
		    "\"last_name\":\"SECRETVALUE" S100 "\","
		    "\"email\":\"SECRETVALUE@@example.com\","
		    "\"birth_date\":\"SECRETVALUE\","
		    "\"address\":{\"street_line1\":\"SECRETVALUE\\u007f\","
		    "\"city\":\"x\",\"state\":\"SEC-RET\","
		    "\"country\":\"SECRETVALUE\"},"
		    "\"phone_country_code\":\"SECRETVALUE\","
		    "\"phone_number\":\"SECRETVALUE\"}"),
		OBJ(MIN ",\"x\":\"SECRETVALUE\"") "SECRETVALUE",
		OBJ("\"first_name\":\"SECRETVALUE\xff\""),
		"\"SECRETVALUE\"",
		OBJ("\"SECRETVALUE\":1,\"SECRETVALUE\":2"),
		"{\"SECRETVALUE\":\"SECRETVALUE",
	};
	struct verrors		 errs;
	struct json_object	*out;
	size_t			 b, i;

	(void)state;
	for (b = 0; b < NELEM(bodies); b++) {
		memset(&errs, 0, sizeof(errs));
		assert_int_not_equal(validate_individual(bodies[b],
		    strlen(bodies[b]), &opts_default, &out, &errs), V_OK);
		assert_true(errs.n > 0);
		for (i = 0; i < errs.n; i++) {
			assert_null(strstr(errs.v[i].message, "SECRET"));
			assert_null(strstr(errs.v[i].field, "SECRET"));
		}
		verrors_free(&errs);
	}
}

/*
 * Append to buf[0..sz) at *n; the test fails rather than go on with a
 * body cut short.
 */
static void __attribute__((format(printf, 4, 5)))
append(char *buf, size_t sz, size_t *n, const char *fmt, ...)
{
	va_list	ap;
	int	r;

	assert_true(*n < sz);
	va_start(ap, fmt);
	r = vsnprintf(buf + *n, sz - *n, fmt, ap);
	va_end(ap);
	assert_true(r >= 0 && (size_t)r < sz - *n);
	*n += (size_t)r;
}

/* Hostile bodies cannot grow the error list without bound. */
static void
test_error_list_capped(void **state)
{
	char			 body[4096];
	struct verrors		 errs = { 0 };
	struct json_object	*out;
	size_t			 n = 0;
	int			 i;

	(void)state;
	append(body, sizeof(body), &n, "{" MIN);
	for (i = 0; i < 100; i++)
		append(body, sizeof(body), &n, ",\"u%d\":%d", i, i);
	append(body, sizeof(body), &n, "}");
	assert_int_equal(validate_individual(body, n, &opts_default, &out,
	    &errs), V_INVALID);
	assert_int_equal(errs.n, 33);
	assert_string_equal(errs.v[0].field, "u0");
	assert_string_equal(errs.v[31].field, "u31");
	assert_string_equal(errs.v[32].field, "");
	assert_non_null(strstr(errs.v[32].message, "too many"));
	verrors_free(&errs);
}

/* Errors are appended to what the list already holds. */
static void
test_errors_appended(void **state)
{
	struct verrors		 errs = { 0 };
	struct json_object	*out;
	const char		*body = "{}";

	(void)state;
	assert_int_equal(verrors_add(&errs, "x", "earlier"), 0);
	assert_int_equal(validate_individual(body, 2, &opts_default, &out,
	    &errs), V_INVALID);
	assert_int_equal(errs.n, 6);
	assert_string_equal(errs.v[0].field, "x");
	assert_string_equal(errs.v[0].message, "earlier");
	assert_string_equal(errs.v[1].field, "first_name");
	verrors_free(&errs);
	verrors_free(&errs);	/* idempotent */
	verrors_free(NULL);
	assert_int_equal(errs.n, 0);
	assert_int_equal(errs.cap, 0);
}

static void
test_parse_strict_direct(void **state)
{
	struct verrors		 errs = { 0 };
	struct json_object	*o, *v;

	(void)state;
	o = json_parse_strict("{\"a\":[1,{\"b\":null}]} ", 21, 32, &errs);
	assert_non_null(o);
	assert_int_equal(errs.n, 0);
	assert_true(json_object_object_get_ex(o, "a", &v));
	assert_int_equal(json_object_array_length(v), 2);
	json_object_put(o);

	/* Depth d allows d - 1 nested containers. */
	o = json_parse_strict("{\"a\":[[1]]}", 11, 4, &errs);
	assert_non_null(o);
	json_object_put(o);
	assert_null(json_parse_strict("{\"a\":[[1]]}", 11, 3, &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].field, "");

	/* A length shorter than the string is honoured. */
	assert_null(json_parse_strict("{\"a\":1}", 6, 32, &errs));
	assert_int_equal(errs.n, 2);
	o = json_parse_strict("{\"a\":1}garbage", 7, 32, &errs);
	assert_non_null(o);
	json_object_put(o);

	/* errs may be NULL; NULL body is an empty body. */
	assert_null(json_parse_strict("[]", 2, 32, NULL));
	assert_null(json_parse_strict(NULL, 0, 32, &errs));
	assert_int_equal(errs.n, 3);
	verrors_free(&errs);
}

/* The returned tree is independent of the input buffer. */
static void
test_output_owns_its_strings(void **state)
{
	char			 body[] = OBJ(MIN);
	struct verrors		 errs = { 0 };
	struct json_object	*out, *v;

	(void)state;
	assert_int_equal(validate_individual(body, strlen(body), &opts_default,
	    &out, &errs), V_OK);
	memset(body, 'x', sizeof(body) - 1);
	assert_true(json_object_object_get_ex(out, "first_name", &v));
	assert_string_equal(json_object_get_string(v), "Maria");
	assert_true(json_object_is_type(out, json_type_object));
	json_object_put(out);
}

/*
 * The table holds every officially assigned code: 249 alpha-2 and 249
 * alpha-3 codes, each alpha-2 mapping to a distinct valid alpha-3.
 */
static void
test_country_table_complete(void **state)
{
	char		 code[4];
	const char	*a3, *seen[249];
	size_t		 n2 = 0, n3 = 0, i;
	int		 a, b, c;

	(void)state;
	for (a = 'A'; a <= 'Z'; a++)
		for (b = 'A'; b <= 'Z'; b++) {
			code[0] = (char)a;
			code[1] = (char)b;
			code[2] = '\0';
			if ((a3 = country_alpha3(code)) == NULL)
				continue;
			assert_true(n2 < NELEM(seen));
			assert_string_equal(country_alpha3(a3), a3);
			for (i = 0; i < n2; i++)
				assert_string_not_equal(seen[i], a3);
			seen[n2++] = a3;
		}
	for (a = 'A'; a <= 'Z'; a++)
		for (b = 'A'; b <= 'Z'; b++)
			for (c = 'A'; c <= 'Z'; c++) {
				code[0] = (char)a;
				code[1] = (char)b;
				code[2] = (char)c;
				code[3] = '\0';
				if ((a3 = country_alpha3(code)) == NULL)
					continue;
				assert_string_equal(a3, code);
				n3++;
			}
	assert_int_equal(n2, 249);
	assert_int_equal(n3, 249);
}

static void
test_country_lookup(void **state)
{
	static const char *pairs[][2] = {
		{ "AR", "ARG" }, { "ar", "ARG" }, { "aRg", "ARG" },
		{ "US", "USA" }, { "GB", "GBR" }, { "DE", "DEU" },
		{ "BR", "BRA" }, { "CW", "CUW" }, { "SS", "SSD" },
		{ "AD", "AND" }, { "ZW", "ZWE" }, { "AX", "ALA" },
		{ "TL", "TLS" }, { "PS", "PSE" }, { "ABW", "ABW" },
		{ "zwe", "ZWE" }, { "ES", "ESP" }, { "MX", "MEX" },
	};
	static const char *bad[] = {
		"", "A", "ARGE", "A1", "1A", "UK", "EU", "XK", "XKX", "ZZ",
		"ZZZ", "AR ", " AR", "A-R", "\xc3\x81R", "AN", "YU",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(pairs); i++) {
		assert_non_null(country_alpha3(pairs[i][0]));
		assert_string_equal(country_alpha3(pairs[i][0]), pairs[i][1]);
	}
	for (i = 0; i < NELEM(bad); i++)
		assert_null(country_alpha3(bad[i]));
	assert_null(country_alpha3(NULL));
}

int
main(void)
{
	static const struct CMUnitTest	 fixed[] = {
		cmocka_unit_test(test_vstr_normalize),
		cmocka_unit_test(test_vjson_int),
		cmocka_unit_test(test_error_order),
		cmocka_unit_test(test_messages_omit_values),
		cmocka_unit_test(test_error_list_capped),
		cmocka_unit_test(test_errors_appended),
		cmocka_unit_test(test_parse_strict_direct),
		cmocka_unit_test(test_output_owns_its_strings),
		cmocka_unit_test(test_country_table_complete),
		cmocka_unit_test(test_country_lookup),
	};
	struct CMUnitTest		 table[NELEM(cases)];
	size_t				 i;
	int				 failed;

	for (i = 0; i < NELEM(cases); i++) {
		table[i].name = cases[i].name;
		table[i].test_func = run_case;
		table[i].setup_func = NULL;
		table[i].teardown_func = NULL;
		table[i].initial_state = &cases[i];
	}
	failed = cmocka_run_group_tests_name("validate table", table, NULL,
	    NULL);
	failed += cmocka_run_group_tests_name("validate", fixed, NULL, NULL);
	return failed != 0;
}
