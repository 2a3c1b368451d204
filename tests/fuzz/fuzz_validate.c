/*
 * fuzz_validate.c: libFuzzer target for validate_individual().
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *       tests/fuzz/fuzz_validate.c src/validate.c src/countries.c \
 *       $(pkg-config --cflags --libs json-c) -o fuzz_validate
 *   ./fuzz_validate -max_total_time=30 tests/fuzz/corpus/validate
 *
 * Besides the sanitizers, it checks the contract the callers rely on:
 * an object out exactly on V_OK, errors exactly otherwise, a single
 * body-level error for V_INVALID_JSON, and an output that re-parses
 * and validates to itself (normalization is idempotent).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "validate.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct vopts fuzz_opts = {
	.min_age_years = 18,
	.max_depth = 16,
	.max_string_length = 1000,
	.today_y = 2026, .today_m = 11, .today_d = 26,
};

static void
check(int cond)
{
	if (!cond)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verrors		 errs = { 0 }, errs2 = { 0 };
	struct json_object	*out = NULL, *out2 = NULL;
	enum vresult		 r;
	const char		*s, *s2;
	size_t			 len, len2, i;

	r = validate_individual((const char *)data, size, &fuzz_opts, &out,
	    &errs);
	check(r == V_OK || r == V_INVALID || r == V_INVALID_JSON);
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
		check(validate_individual(s, len, &fuzz_opts, &out2,
		    &errs2) == V_OK);
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
