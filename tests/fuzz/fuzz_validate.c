/*
 * fuzz_validate.c: libFuzzer target for the body and path validators
 * (validate.c, validate_kyc.c, and json_strict.c under both).  The
 * first byte picks the validator, the rest is its input:
 *
 *   0 validate_individual (create; update is the same rules)
 *   1 validate_product_request    2 validate_product_documentation
 *   3 validate_product_submit     4 validate_path_id
 *   5 validate_path_country
 *
 * Built by scripts/fuzz.sh (which also generates the ISO tables):
 *   scripts/fuzz.sh 30 validate
 *
 * Besides the sanitizers, it checks the contract the callers rely on:
 * an object out exactly on V_OK (submit: never), errors exactly
 * otherwise, a single body-level error for V_INVALID_JSON, and an
 * output that re-parses and validates to itself (normalization is
 * idempotent).  The selector is the first byte modulo 6, so the
 * seeds in tests/fuzz/corpus/validate begin with an ASCII digit ('0'
 * is 48, selecting 0) and stay readable.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "validate.h"
#include "validate_kyc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct vopts fuzz_opts = {
	.min_age_years = 18,
	.max_depth = 16,
	.max_string_length = 1000,
	.today_y = 2026, .today_m = 11, .today_d = 26,
};
/* Small images, so the size limit is reached too. */
static const struct kyc_opts fuzz_kopts = { .max_image_bytes = 4096 };

static void
check(int cond)
{
	if (!cond)
		abort();
}

static enum vresult
run(int which, const char *s, size_t len, struct json_object **out,
    struct verrors *errs)
{
	struct kyc_doc_info	info;

	switch (which) {
	case 0:
		return validate_individual(s, len, &fuzz_opts, out, errs);
	case 1:
		return validate_product_request(s, len, &fuzz_opts, NULL, out,
		    errs);
	case 2:
		return validate_product_documentation(s, len, &fuzz_opts,
		    &fuzz_kopts, out, &info, errs);
	default:
		return validate_product_submit(s, len, &fuzz_opts, out, errs);
	}
}

static void
paths(int which, const char *s, size_t len)
{
	struct verrors	errs = { 0 };
	char		a2[3];
	size_t		i;
	int		r;

	if (which == 4) {
		r = validate_path_id(s, len, "path.client_id", &errs);
		if (r == 0)
			for (i = 0; i < len; i++)
				check(s[i] != '%' && s[i] != '.' &&
				    s[i] != '/');
	} else {
		r = validate_path_country(s, len, a2, &errs);
		if (r == 0)
			check(a2[0] >= 'A' && a2[0] <= 'Z' &&
			    a2[1] >= 'A' && a2[1] <= 'Z' && a2[2] == '\0');
	}
	check((r == 0) == (errs.n == 0));
	check(r == 0 || errs.n == 1);
	verrors_free(&errs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verrors		 errs = { 0 }, errs2 = { 0 };
	struct json_object	*out = NULL, *out2 = NULL;
	enum vresult		 r;
	const char		*s, *s2, *in;
	size_t			 len, len2, i, n;
	int			 which;

	if (size == 0)
		return 0;
	which = data[0] % 6;
	in = (const char *)data + 1;
	n = size - 1;
	if (which >= 4) {
		paths(which, in, n);
		return 0;
	}
	r = run(which, in, n, &out, &errs);
	check(r == V_OK || r == V_INVALID || r == V_INVALID_JSON);
	if (which == 3)
		check(out == NULL);
	else
		check((r == V_OK) == (out != NULL));
	check((r == V_OK) == (errs.n == 0));
	if (r == V_INVALID_JSON)
		check(errs.n == 1 && errs.v[0].field[0] == '\0');
	for (i = 0; i < errs.n; i++)
		check(errs.v[i].field != NULL && errs.v[i].message != NULL &&
		    errs.v[i].message[0] != '\0');

	if (out != NULL) {
		s = json_object_to_json_string_length(out,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		    &len);
		check(s != NULL);
		check(run(which, s, len, &out2, &errs2) == V_OK);
		s2 = json_object_to_json_string_length(out2,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		    &len2);
		check(len == len2 && memcmp(s, s2, len) == 0);
	}
	json_object_put(out);
	json_object_put(out2);
	verrors_free(&errs);
	verrors_free(&errs2);
	return 0;
}
