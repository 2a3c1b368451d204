/*
 * test_validate_kyc.c: unit tests of validate_kyc.c and iso3166.c
 * (cmocka): products.request, products.documentation (field rules,
 * image signatures on real small JPEG/PNG/HEIC/PDF/GIF/WebP files,
 * base64 edge cases, sizes, digests), products.submit, the path
 * parameters, and the ISO 3166 lookups.
 *
 * Most cases are rows of tables, as in test_validate.c: a body, the
 * expected result, every error path expected (as a multiset), and for
 * accepted bodies the exact normalized output.  Bodies are copied into
 * buffers of exactly their length, so an overread shows under ASan.
 * The image literals below are real files' bytes in base64, with their
 * SHA-256 (made with Python's base64 and hashlib).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "iso3166.h"
#include "validate.h"
#include "validate_kyc.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_PATHS	8

/* 150 bytes */
#define B64_JPEG "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQH/wAALCAABAAEBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/9oACAEBAAA/ANLPIP/Z"
#define SHA_JPEG "07b6f48a903c71685ec709470da5441bda084780ba7cb148a45f826e159ee137"
#define LEN_JPEG 150
/* 69 bytes */
#define B64_PNG "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4//8/AAX+Av6n1qTnAAAAAElFTkSuQmCC"
#define SHA_PNG "883c62fd6e2188025de480d46a22e004a89cba72cfe260370aaef84fe9e93241"
#define LEN_PNG 69
/* 36 bytes */
#define B64_HEIC "AAAAGGZ0eXBoZWljAAAAAG1pZjFoZWljAAAADG1ldGEAAAAA"
#define SHA_HEIC "4782d93ab6bcb869379438837bbd41311f642366442b7cc493d793a124c29075"
#define LEN_HEIC 36
/* 35 bytes */
#define B64_PDF "JVBERi0xLjQKJeLjz9MKMSAwIG9iago8PD4+CmVuZG9iago="
#define SHA_PDF "aa159efb3488421fe3429c7a4619cae5840eed12bafa58da6f2a4d474768e896"
#define LEN_PDF 35
/* 43 bytes */
#define B64_GIF "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
#define SHA_GIF "693d949d8c3fdc7fd4ace7c340b5f177a9f0c5be7bafee8bc93a7d88b7523d75"
#define LEN_GIF 43
/* 34 bytes */
#define B64_WEBP "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="
#define SHA_WEBP "86be52bdb7547413cafb3ed175a806a798c65de98b40849e0b974c47d187de65"
#define LEN_WEBP 34
/* 3 bytes */
#define B64_JPEG3 "/9j/"
#define SHA_JPEG3 "6e568e1f67fba258184c78181539e5e8fdee447e49bb706fc0ea34fbf12336a5"
#define LEN_JPEG3 3
/* 5 bytes */
#define B64_JPEG5 "/9j/4AA="
#define SHA_JPEG5 "f55517e918c9f1ac538778a7d787f93b66102886b93464e5bf61b48527913dfd"
#define LEN_JPEG5 5
/* 4 bytes */
#define B64_JPEG4 "/9j/4A=="
#define SHA_JPEG4 "ba4f25bf16ba4be6bc7d3276fafeb67f9eb3c5df042bc3a405e1af15b921eed7"
#define LEN_JPEG4 4

static const struct vopts vo = {
	.min_age_years = 18, .max_depth = 10, .max_string_length = 1000,
	.today_y = 2026, .today_m = 11, .today_d = 26,
};
static const struct kyc_opts ko_small = { .max_image_bytes = 4 };
static const char *const two_products[] = { "cards_individuals",
    "ramps_pix" };
static const struct kyc_opts ko_two = { .subproducts = two_products,
    .nsubproducts = 2 };

enum which { W_DOC, W_REQ, W_SUBMIT };

struct tcase {
	const char		*name;
	enum which		 w;
	const char		*body;
	enum vresult		 want;
	const char		*paths[MAX_PATHS];	/* NULL-terminated */
	const char		*out;	/* V_OK: exact output; NULL: none */
	const char		*msg;	/* some message contains this */
	const struct kyc_opts	*ko;
};

#define DOC(f)		"{\"document\":{" f "}}"
#define DT		"\"document_type\":\"national_id\","
#define FRONT(s)	"\"image_front\":\"" s "\""
#define BACK(s)		",\"image_back\":\"" s "\""
#define JURI		"data:image/jpeg;base64,"
#define PURI		"data:image/png;base64,"
#define FJ		FRONT(JURI B64_JPEG)
#define S10		"abcdefghij"
#define S64		S10 S10 S10 S10 S10 S10 "abcd"
#define S256		S64 S64 S64 S64
#define K8(p)		"\"" p "1\":1,\"" p "2\":1,\"" p "3\":1,\"" p "4\":1," \
			"\"" p "5\":1,\"" p "6\":1,\"" p "7\":1,\"" p "8\":1"

#define OKD(n, b, o)	{ .name = n, .w = W_DOC, .body = b, .want = V_OK, \
			  .out = o }
#define BADD(n, b, ...)	{ .name = n, .w = W_DOC, .body = b, \
			  .want = V_INVALID, .paths = { __VA_ARGS__ } }
#define BADM(n, b, p, m) { .name = n, .w = W_DOC, .body = b, \
			  .want = V_INVALID, .paths = { p }, .msg = m }

static const char only_jpeg_png[] = "CryptoMate accepts only JPEG and PNG "
    "photos";

static struct tcase cases[] = {
	/* ---- documentation: accepted ----------------------------------- */
	OKD("doc_jpeg_uri_front", DOC(DT FJ), DOC(DT FJ)),
	OKD("doc_png_bare_front_and_back", DOC(DT FRONT(B64_PNG)
	    BACK(B64_PNG)), DOC(DT FRONT(B64_PNG) BACK(B64_PNG))),
	OKD("doc_png_uri_and_jpeg_bare", DOC(DT FRONT(PURI B64_PNG)
	    BACK(B64_JPEG)), DOC(DT FRONT(PURI B64_PNG) BACK(B64_JPEG))),
	OKD("doc_uri_media_type_any_case", DOC(DT
	    FRONT("DATA:Image/JPEG;Base64," B64_JPEG)),
	    DOC(DT FRONT("DATA:Image/JPEG;Base64," B64_JPEG))),
	OKD("doc_all_fields_canonical_order", DOC("\"metadata\":{\"number\":"
	    "\" 30111222 \",\"issuing_country\":\"ARG\",\"year\":2030,"
	    "\"ratio\":1.50,\"valid\":true},\"replace\":true,"
	    "\"image_back\":\"" B64_PNG "\"," FJ ",\"document_type\":\" National_ID \""),
	    DOC(DT FJ BACK(B64_PNG) ",\"replace\":true,\"metadata\":{"
	    "\"number\":\"30111222\",\"issuing_country\":\"ARG\","
	    "\"year\":2030,\"ratio\":1.50,\"valid\":true}")),
	OKD("doc_nulls_are_absent", DOC(DT FJ ",\"image_back\":null,"
	    "\"replace\":null,\"metadata\":null"), DOC(DT FJ)),
	OKD("doc_replace_false_kept", DOC(DT FJ ",\"replace\":false"),
	    DOC(DT FJ ",\"replace\":false")),
	OKD("doc_type_64_chars", DOC("\"document_type\":\"" S64 "\"," FJ),
	    DOC("\"document_type\":\"" S64 "\"," FJ)),
	OKD("doc_metadata_empty", DOC(DT FJ ",\"metadata\":{}"),
	    DOC(DT FJ ",\"metadata\":{}")),
	OKD("doc_metadata_32_keys", DOC(DT FJ ",\"metadata\":{" K8("a") ","
	    K8("b") "," K8("c") "," K8("d") "}"), DOC(DT FJ ",\"metadata\":{"
	    K8("a") "," K8("b") "," K8("c") "," K8("d") "}")),
	OKD("doc_metadata_256_char_value", DOC(DT FJ ",\"metadata\":{\"n\":\""
	    S256 "\"}"), DOC(DT FJ ",\"metadata\":{\"n\":\"" S256 "\"}")),
	OKD("doc_metadata_key_64", DOC(DT FJ ",\"metadata\":{\"" S64 "\":1}"),
	    DOC(DT FJ ",\"metadata\":{\"" S64 "\":1}")),
	OKD("doc_image_3_bytes_no_padding", DOC(DT FRONT(B64_JPEG3)),
	    DOC(DT FRONT(B64_JPEG3))),
	OKD("doc_image_one_pad", DOC(DT FRONT(B64_JPEG5)),
	    DOC(DT FRONT(B64_JPEG5))),
	OKD("doc_image_two_pads", DOC(DT FRONT(B64_JPEG4)),
	    DOC(DT FRONT(B64_JPEG4))),
	{ .name = "doc_image_at_max_bytes", .w = W_DOC,
	  .body = DOC(DT FRONT(B64_JPEG4)), .want = V_OK, .ko = &ko_small,
	  .out = DOC(DT FRONT(B64_JPEG4)) },

	/* ---- documentation: structure ---------------------------------- */
	BADD("doc_missing", "{}", "document"),
	BADD("doc_not_object", "{\"document\":[]}", "document"),
	BADD("doc_unknown_top", "{\"document\":{" DT FJ "},\"x\":1}", "x"),
	BADD("doc_unknown_inner", DOC(DT FJ ",\"selfie\":\"x\""),
	    "document.selfie"),
	BADD("doc_unknown_inner_not_echoed", DOC(DT FJ ",\"a b\":1"),
	    "document"),
	BADD("doc_empty", DOC(""), "document.document_type",
	    "document.image_front"),
	BADD("doc_missing_front", DOC(DT "\"image_back\":\"" B64_PNG "\""),
	    "document.image_front"),
	BADM("doc_type_dash", DOC("\"document_type\":\"national-id\"," FJ),
	    "document.document_type", "a-z, 0-9 and _"),
	BADD("doc_type_65", DOC("\"document_type\":\"" S64 "x\"," FJ),
	    "document.document_type"),
	BADD("doc_type_blank", DOC("\"document_type\":\" \"," FJ),
	    "document.document_type"),
	BADD("doc_type_number", DOC("\"document_type\":1," FJ),
	    "document.document_type"),
	BADD("doc_type_unicode", DOC("\"document_type\":\"c\xc3\xa9" "dula\","
	    FJ), "document.document_type"),
	BADM("doc_replace_string", DOC(DT FJ ",\"replace\":\"true\""),
	    "document.replace", "boolean"),
	BADD("doc_replace_number", DOC(DT FJ ",\"replace\":1"),
	    "document.replace"),
	BADD("doc_metadata_array", DOC(DT FJ ",\"metadata\":[]"),
	    "document.metadata"),
	BADM("doc_metadata_33_keys", DOC(DT FJ ",\"metadata\":{" K8("a") ","
	    K8("b") "," K8("c") "," K8("d") ",\"e\":1}"), "document.metadata",
	    "at most 32"),
	BADD("doc_metadata_key_upper", DOC(DT FJ ",\"metadata\":{\"Number\":"
	    "\"1\"}"), "document.metadata"),
	BADD("doc_metadata_key_65", DOC(DT FJ ",\"metadata\":{\"" S64
	    "x\":1}"), "document.metadata"),
	BADD("doc_metadata_key_empty", DOC(DT FJ ",\"metadata\":{\"\":1}"),
	    "document.metadata"),
	BADM("doc_metadata_null_value", DOC(DT FJ ",\"metadata\":{\"number\":"
	    "null}"), "document.metadata.number", "string, a number or"),
	BADD("doc_metadata_object_value", DOC(DT FJ ",\"metadata\":{\"a\":{}}"),
	    "document.metadata.a"),
	BADD("doc_metadata_array_value", DOC(DT FJ ",\"metadata\":{\"a\":[]}"),
	    "document.metadata.a"),
	BADM("doc_metadata_257_chars", DOC(DT FJ ",\"metadata\":{\"n\":\""
	    S256 "x\"}"), "document.metadata.n", "at most 256"),
	BADD("doc_metadata_blank_value", DOC(DT FJ ",\"metadata\":{\"n\":"
	    "\"  \"}"), "document.metadata.n"),
	BADD("doc_metadata_control_char", DOC(DT FJ ",\"metadata\":{\"n\":"
	    "\"a\\u0007\"}"), "document.metadata.n"),
	BADD("doc_image_number", DOC(DT "\"image_front\":1"),
	    "document.image_front"),
	BADD("doc_everything_wrong", DOC("\"document_type\":\"A B\","
	    FRONT(B64_HEIC) BACK("abc") ",\"replace\":\"no\","
	    "\"metadata\":{\"a\":null},\"z\":1"), "document.z",
	    "document.document_type", "document.image_front",
	    "document.image_back", "document.replace", "document.metadata.a"),

	/* ---- documentation: image formats ------------------------------ */
	BADM("doc_heic_bare", DOC(DT FRONT(B64_HEIC)), "document.image_front",
	    "HEIC"),
	BADM("doc_heic_claimed_jpeg", DOC(DT FRONT(JURI B64_HEIC)),
	    "document.image_front", only_jpeg_png),
	BADM("doc_pdf", DOC(DT FRONT(B64_PDF)), "document.image_front",
	    "PDF: CryptoMate accepts only JPEG and PNG photos"),
	BADM("doc_gif", DOC(DT FRONT(B64_GIF)), "document.image_front",
	    "GIF"),
	BADM("doc_webp_back", DOC(DT FJ BACK(B64_WEBP)), "document.image_back",
	    "WebP"),
	BADM("doc_zero_bytes_not_image", DOC(DT FRONT("AAAAAAAA")),
	    "document.image_front", only_jpeg_png),
	BADM("doc_uri_heic", DOC(DT FRONT("data:image/heic;base64," B64_HEIC)),
	    "document.image_front", only_jpeg_png),
	BADM("doc_uri_pdf", DOC(DT FRONT("data:application/pdf;base64,"
	    B64_PDF)), "document.image_front", only_jpeg_png),
	BADD("doc_uri_jpg_alias", DOC(DT FRONT("data:image/jpg;base64,"
	    B64_JPEG)), "document.image_front"),
	BADD("doc_uri_not_base64", DOC(DT FRONT("data:image/png," B64_PNG)),
	    "document.image_front"),
	BADM("doc_declared_png_holds_jpeg", DOC(DT FRONT(PURI B64_JPEG)),
	    "document.image_front", "declared image/png"),
	BADM("doc_declared_jpeg_holds_png", DOC(DT FRONT(JURI B64_PNG)),
	    "document.image_front", "declared image/jpeg"),
	{ .name = "doc_too_large", .w = W_DOC, .ko = &ko_small,
	  .body = DOC(DT FRONT(B64_JPEG5)), .want = V_INVALID,
	  .paths = { "document.image_front" }, .msg = "at most 4 bytes" },

	/* ---- documentation: base64 ------------------------------------- */
	BADM("b64_empty", DOC(DT FRONT("")), "document.image_front",
	    "must not be empty"),
	BADM("b64_uri_prefix_only", DOC(DT FRONT(JURI)),
	    "document.image_front", "must not be empty"),
	BADM("b64_space_inside", DOC(DT FRONT("/9j/ 4AA=")),
	    "document.image_front", "whitespace"),
	BADM("b64_newline_inside", DOC(DT FRONT("/9j/\\n4AA=")),
	    "document.image_front", "whitespace"),
	BADM("b64_line_wrapped_76", DOC(DT FRONT("/9j/4AAQ\\r\\nSkZJ")),
	    "document.image_front", "whitespace"),
	BADM("b64_trailing_newline", DOC(DT FRONT(B64_JPEG "\\n")),
	    "document.image_front", "whitespace"),
	BADM("b64_url_safe_underscore", DOC(DT FRONT("_9j_4AA=")),
	    "document.image_front", "URL-safe"),
	BADM("b64_url_safe_dash", DOC(DT FRONT("/9j/4AA-")),
	    "document.image_front", "URL-safe"),
	BADM("b64_missing_padding", DOC(DT FRONT("/9j/4AA")),
	    "document.image_front", "multiple of 4"),
	BADM("b64_truncated_last_quantum", DOC(DT FRONT("/9j/4")),
	    "document.image_front", "multiple of 4"),
	BADM("b64_truncated_two_chars", DOC(DT FRONT(B64_JPEG3 "4A")),
	    "document.image_front", "multiple of 4"),
	BADM("b64_padding_inside", DOC(DT FRONT("/9j=4AA=")),
	    "document.image_front", "padding before"),
	BADM("b64_three_pads", DOC(DT FRONT("/9j/4===")),
	    "document.image_front", "padding before"),
	BADM("b64_all_pads", DOC(DT FRONT("====")), "document.image_front",
	    "padding before"),
	BADM("b64_nonzero_pad_bits_one", DOC(DT FRONT("/9j/4AB=")),
	    "document.image_front", "padding bits"),
	BADM("b64_nonzero_pad_bits_two", DOC(DT FRONT("/9j/4B==")),
	    "document.image_front", "padding bits"),
	BADM("b64_bad_char", DOC(DT FRONT("/9j/4A*=")),
	    "document.image_front", "not valid base64"),
	BADM("b64_non_ascii", DOC(DT FRONT("/9j/4A\xc3\xa9")),
	    "document.image_front", "not valid base64"),

	/* ---- products.request ------------------------------------------ */
	{ .name = "req_ok", .w = W_REQ, .body = "{\"subproduct\":"
	  "\"cards_individuals\"}", .want = V_OK,
	  .out = "{\"subproduct\":\"cards_individuals\"}" },
	{ .name = "req_trimmed", .w = W_REQ, .body = "{\"subproduct\":"
	  "\" cards_individuals\\n\"}", .want = V_OK,
	  .out = "{\"subproduct\":\"cards_individuals\"}" },
	{ .name = "req_not_in_default_list", .w = W_REQ,
	  .body = "{\"subproduct\":\"ramps_pix\"}", .want = V_INVALID,
	  .paths = { "subproduct" }, .msg = "one of: cards_individuals" },
	{ .name = "req_configured_list", .w = W_REQ, .ko = &ko_two,
	  .body = "{\"subproduct\":\"ramps_pix\"}", .want = V_OK,
	  .out = "{\"subproduct\":\"ramps_pix\"}" },
	{ .name = "req_configured_list_message", .w = W_REQ, .ko = &ko_two,
	  .body = "{\"subproduct\":\"ramps_cards\"}", .want = V_INVALID,
	  .paths = { "subproduct" },
	  .msg = "one of: cards_individuals, ramps_pix" },
	{ .name = "req_case_matters", .w = W_REQ,
	  .body = "{\"subproduct\":\"Cards_Individuals\"}", .want = V_INVALID,
	  .paths = { "subproduct" } },
	{ .name = "req_missing", .w = W_REQ, .body = "{}", .want = V_INVALID,
	  .paths = { "subproduct" }, .msg = "is required" },
	{ .name = "req_null", .w = W_REQ, .body = "{\"subproduct\":null}",
	  .want = V_INVALID, .paths = { "subproduct" } },
	{ .name = "req_number", .w = W_REQ, .body = "{\"subproduct\":1}",
	  .want = V_INVALID, .paths = { "subproduct" } },
	{ .name = "req_extra_field", .w = W_REQ, .body = "{\"subproduct\":"
	  "\"cards_individuals\",\"product\":\"x\"}", .want = V_INVALID,
	  .paths = { "product" }, .msg = "unknown field" },
	{ .name = "req_array", .w = W_REQ, .body = "[\"cards_individuals\"]",
	  .want = V_INVALID_JSON, .paths = { "" } },
	{ .name = "req_empty", .w = W_REQ, .body = "", .want = V_INVALID_JSON,
	  .paths = { "" } },

	/* ---- products.submit ------------------------------------------- */
	{ .name = "submit_empty", .w = W_SUBMIT, .body = "", .want = V_OK },
	{ .name = "submit_whitespace", .w = W_SUBMIT, .body = " \r\n\t",
	  .want = V_OK },
	{ .name = "submit_empty_object", .w = W_SUBMIT, .body = "{}",
	  .want = V_OK },
	{ .name = "submit_empty_object_spaced", .w = W_SUBMIT,
	  .body = " { }\n", .want = V_OK },
	{ .name = "submit_member", .w = W_SUBMIT, .body = "{\"force\":true}",
	  .want = V_INVALID, .paths = { "force" } },
	{ .name = "submit_members", .w = W_SUBMIT,
	  .body = "{\"a\":1,\"b\":null}", .want = V_INVALID,
	  .paths = { "a", "b" } },
	{ .name = "submit_array", .w = W_SUBMIT, .body = "[]",
	  .want = V_INVALID_JSON, .paths = { "" } },
	{ .name = "submit_null", .w = W_SUBMIT, .body = "null",
	  .want = V_INVALID_JSON, .paths = { "" } },
	{ .name = "submit_garbage", .w = W_SUBMIT, .body = "{}x",
	  .want = V_INVALID_JSON, .paths = { "" } },
};

static char *
exact_copy(const char *s, size_t n)
{
	char	*p = malloc(n != 0 ? n : 1);

	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

static const char *
plain(struct json_object *o, size_t *len)
{
	return json_object_to_json_string_length(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

static void
run_case(void **state)
{
	const struct tcase	*tc = *state;
	struct verrors		 errs = { 0 };
	struct json_object	*out = NULL;
	struct kyc_doc_info	 info;
	size_t			 len = strlen(tc->body), i, j, np, olen;
	bool			 used[MAX_PATHS] = { false }, found = false;
	enum vresult		 r;
	char			*body = exact_copy(tc->body, len);

	switch (tc->w) {
	case W_DOC:
		r = validate_product_documentation(body, len, &vo, tc->ko, &out,
		    &info, &errs);
		break;
	case W_REQ:
		r = validate_product_request(body, len, &vo, tc->ko, &out,
		    &errs);
		break;
	case W_SUBMIT:
	default:
		r = validate_product_submit(body, len, &vo, &out, &errs);
		break;
	}
	for (i = 0; i < errs.n; i++)
		print_message("  [%s] %s\n", errs.v[i].field,
		    errs.v[i].message);
	assert_int_equal(r, tc->want);
	for (np = 0; np < MAX_PATHS && tc->paths[np] != NULL; np++)
		;
	assert_int_equal(errs.n, np);
	for (i = 0; i < errs.n; i++) {
		for (j = 0; j < np; j++)
			if (!used[j] && strcmp(errs.v[i].field,
			    tc->paths[j]) == 0)
				break;
		assert_true(j < np);
		used[j] = true;
		if (tc->msg != NULL && strstr(errs.v[i].message, tc->msg))
			found = true;
	}
	if (tc->msg != NULL)
		assert_true(found);
	if (r == V_OK && tc->out != NULL) {
		assert_non_null(out);
		assert_string_equal(plain(out, &olen), tc->out);
	} else if (r == V_OK)
		assert_null(out);
	else
		assert_null(out);
	json_object_put(out);
	verrors_free(&errs);
	free(body);
}

/* A SHA-256 in hex into out[0..65). */
static void
hex(const unsigned char *d, char out[65])
{
	size_t	i;

	for (i = 0; i < 32; i++)
		assert_int_equal(snprintf(out + 2 * i, 65 - 2 * i, "%02x",
		    d[i]), 2);
}

/* The audit facts: declared type, verified type, size, SHA-256. */
static void
test_doc_info(void **state)
{
	static const char	 body[] = DOC("\"document_type\":\" Passport\","
	    FRONT(PURI B64_PNG) BACK(B64_JPEG));
	struct verrors		 errs = { 0 };
	struct json_object	*out;
	struct kyc_doc_info	 info;
	char			 h[65];

	(void)state;
	assert_int_equal(validate_product_documentation(body,
	    sizeof(body) - 1, &vo, NULL, &out, &info, &errs), V_OK);
	assert_string_equal(info.document_type, "passport");
	assert_int_equal(info.front.type, KYC_IMG_PNG);
	assert_string_equal(info.front.declared, "image/png");
	assert_int_equal(info.front.decoded_bytes, LEN_PNG);
	hex(info.front.sha256, h);
	assert_string_equal(h, SHA_PNG);
	assert_int_equal(info.back.type, KYC_IMG_JPEG);
	assert_string_equal(info.back.declared, "");
	assert_int_equal(info.back.decoded_bytes, LEN_JPEG);
	hex(info.back.sha256, h);
	assert_string_equal(h, SHA_JPEG);
	json_object_put(out);

	/* No back image: type NONE; a failed body leaves info empty. */
	assert_int_equal(validate_product_documentation(DOC(DT FJ),
	    strlen(DOC(DT FJ)), &vo, NULL, &out, &info, &errs), V_OK);
	assert_int_equal(info.back.type, KYC_IMG_NONE);
	assert_int_equal(info.front.decoded_bytes, LEN_JPEG);
	json_object_put(out);
	assert_int_equal(validate_product_documentation(DOC(FJ),
	    strlen(DOC(FJ)), &vo, NULL, &out, &info, &errs), V_INVALID);
	assert_int_equal(info.front.type, KYC_IMG_NONE);
	verrors_free(&errs);
}

/* Test-local encoder, for the large images. */
static char *
b64enc(const unsigned char *p, size_t n, const char *pre, const char *post,
    size_t *outlen)
{
	static const char	 a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno"
	    "pqrstuvwxyz0123456789+/";
	size_t			 i, o, pl = strlen(pre), ql = strlen(post);
	char			*s = malloc(pl + (n + 2) / 3 * 4 + ql + 1);
	unsigned int		 v;

	assert_non_null(s);
	memcpy(s, pre, pl);
	o = pl;
	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		s[o++] = a[v >> 18];
		s[o++] = a[(v >> 12) & 63];
		s[o++] = a[(v >> 6) & 63];
		s[o++] = a[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned)p[i] << 16;
		s[o++] = a[v >> 18];
		s[o++] = a[(v >> 12) & 63];
		s[o++] = '=';
		s[o++] = '=';
	} else if (n - i == 2) {
		v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		s[o++] = a[v >> 18];
		s[o++] = a[(v >> 12) & 63];
		s[o++] = a[(v >> 6) & 63];
		s[o++] = '=';
	}
	memcpy(s + o, post, ql + 1);
	*outlen = o + ql;
	return s;
}

/* n pseudo-random bytes after a JPEG signature (a fixed LCG: no seed). */
static unsigned char *
fake_jpeg(size_t n)
{
	unsigned char	*p = malloc(n);
	uint32_t	 x = 12345;
	size_t		 i;

	assert_non_null(p);
	for (i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (unsigned char)(x >> 16);
	}
	p[0] = 0xff, p[1] = 0xd8, p[2] = 0xff;
	return p;
}

/*
 * Images spanning many decode chunks, of every length mod 3 around the
 * chunk size: the digest must equal a one-shot SHA-256 of the bytes; a
 * bad character deep in a later chunk is found; the size limit is
 * exact at 10 MiB.
 */
static void
test_doc_large_images(void **state)
{
	static const size_t	 sizes[] = { 12287, 12288, 12289, 12290,
	    24576, 1000001, 1000002, 1000003 };
	struct verrors		 errs = { 0 };
	struct json_object	*out;
	struct kyc_doc_info	 info;
	unsigned char		*img, want[32];
	unsigned int		 wl;
	size_t			 i, blen;
	char			*body;

	(void)state;
	for (i = 0; i < NELEM(sizes); i++) {
		img = fake_jpeg(sizes[i]);
		body = b64enc(img, sizes[i], "{\"document\":{\"document_type\":"
		    "\"passport\",\"image_front\":\"" JURI, "\"}}", &blen);
		assert_int_equal(validate_product_documentation(body, blen,
		    &vo, NULL, &out, &info, &errs), V_OK);
		assert_int_equal(info.front.decoded_bytes, sizes[i]);
		assert_true(EVP_Digest(img, sizes[i], want, &wl, EVP_sha256(),
		    NULL));
		assert_memory_equal(info.front.sha256, want, 32);
		json_object_put(out);
		/* A URL-safe character deep inside. */
		body[blen - 100] = '_';
		assert_int_equal(validate_product_documentation(body, blen,
		    &vo, NULL, &out, &info, &errs), V_INVALID);
		assert_int_equal(errs.n, 1);
		assert_non_null(strstr(errs.v[0].message, "URL-safe"));
		verrors_free(&errs);
		free(body);
		free(img);
	}

	img = fake_jpeg(KYC_MAX_IMAGE_BYTES_DEFAULT + 1);
	body = b64enc(img, KYC_MAX_IMAGE_BYTES_DEFAULT, "{\"document\":{"
	    "\"document_type\":\"passport\",\"image_front\":\"", "\"}}", &blen);
	assert_int_equal(validate_product_documentation(body, blen, &vo, NULL,
	    &out, &info, &errs), V_OK);
	json_object_put(out);
	free(body);
	body = b64enc(img, KYC_MAX_IMAGE_BYTES_DEFAULT + 1, "{\"document\":{"
	    "\"document_type\":\"passport\",\"image_front\":\"", "\"}}", &blen);
	assert_int_equal(validate_product_documentation(body, blen, &vo, NULL,
	    &out, &info, &errs), V_INVALID);
	assert_non_null(strstr(errs.v[0].message, "at most 10485760 bytes"));
	verrors_free(&errs);
	free(body);
	free(img);
}

/*
 * The output shares the image string objects with nothing but itself
 * and serializes them byte for byte; time a two-image ~28 MB body
 * (printed for the report, not asserted: machines differ).
 */
static void
test_doc_28mb_timing(void **state)
{
	struct verrors		 errs = { 0 };
	struct json_object	*out;
	struct kyc_doc_info	 info;
	struct timespec		 t0, t1;
	unsigned char		*img;
	char			*front, *body, *p;
	size_t			 flen, blen, olen, bsz;
	const char		*s;
	double			 ms;
	int			 r;

	(void)state;
	img = fake_jpeg(KYC_MAX_IMAGE_BYTES_DEFAULT);
	front = b64enc(img, KYC_MAX_IMAGE_BYTES_DEFAULT, JURI, "", &flen);
	bsz = 2 * flen + 128;
	body = malloc(bsz);
	assert_non_null(body);
	r = snprintf(body, bsz, "{\"document\":{\"document_type\":"
	    "\"national_id\",\"image_front\":\"%s\",\"image_back\":\"%s\","
	    "\"metadata\":{\"number\":\"30111222\"}}}", front, front);
	assert_true(r > 0 && (size_t)r < bsz);
	blen = (size_t)r;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(validate_product_documentation(body, blen, &vo, NULL,
	    &out, &info, &errs), V_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("documentation: %.1f MB body validated in %.1f ms "
	    "(%.2f ms/MB)\n", (double)blen / 1e6, ms, ms / ((double)blen / 1e6));
	/* Forwarded byte for byte: the output is the input, normalized. */
	s = plain(out, &olen);
	assert_int_equal(olen, blen);
	assert_memory_equal(s, body, blen);
	p = strstr(body, "\"image_back\"");
	assert_non_null(p);
	json_object_put(out);
	free(body);
	free(front);
	free(img);
}

/* ---- path parameters ------------------------------------------------- */

static void
test_path_id(void **state)
{
	static const char *const	 good[] = { "a", "nyaxDgxsp7vTxJVZFdHZ"
	    "V3RQAVNHlkK3", "abc_DEF-123", "-", "_", S64 };
	static const char *const	 bad[] = { "", "abc%24", "a.b", ".",
	    "..", "a/b", "a b", "a+b", "caf\xc3\xa9", S64 "x", "%2e%2e",
	    "a\nb" };
	struct verrors			 errs = { 0 };
	size_t				 i;

	(void)state;
	for (i = 0; i < NELEM(good); i++)
		assert_int_equal(validate_path_id(good[i], strlen(good[i]),
		    "path.client_id", &errs), 0);
	assert_int_equal(errs.n, 0);
	for (i = 0; i < NELEM(bad); i++) {
		assert_int_equal(validate_path_id(bad[i], strlen(bad[i]),
		    "path.product_request_id", &errs), -1);
		assert_int_equal(errs.n, i + 1);
		assert_string_equal(errs.v[i].field, "path.product_request_id");
	}
	/* Only len bytes are read: "ab" of "ab?x". */
	assert_int_equal(validate_path_id("ab?x", 2, "path.client_id", &errs),
	    0);
	assert_int_equal(validate_path_id(NULL, 0, "path.client_id", &errs),
	    -1);
	verrors_free(&errs);
}

static void
test_path_country(void **state)
{
	static const char *const	 pairs[][2] = {
		{ "AR", "AR" }, { "ar", "AR" }, { "ARG", "AR" },
		{ "arg", "AR" }, { "usa", "US" }, { "Mx", "MX" },
		{ "BRA", "BR" }, { "AX", "AX" }, { "ALA", "AX" },
	};
	static const char *const	 bad[] = { "ZZ", "XK", "XKX", "UK",
	    "EU", "A", "ARGE", "A1", "", "AR ", "0AR", "%41R" };
	struct verrors			 errs = { 0 };
	char				 out[3];
	size_t				 i;

	(void)state;
	for (i = 0; i < NELEM(pairs); i++) {
		assert_int_equal(validate_path_country(pairs[i][0],
		    strlen(pairs[i][0]), out, &errs), 0);
		assert_string_equal(out, pairs[i][1]);
	}
	assert_int_equal(errs.n, 0);
	for (i = 0; i < NELEM(bad); i++) {
		assert_int_equal(validate_path_country(bad[i], strlen(bad[i]),
		    out, &errs), -1);
		assert_string_equal(errs.v[i].field, "path.country_code");
	}
	verrors_free(&errs);
}

/* ---- ISO 3166 tables ------------------------------------------------- */

static void
test_iso_tables(void **state)
{
	const struct iso_country	*c;
	size_t				 i, k;

	(void)state;
	assert_true(iso_ncountries >= 249);
	assert_true(iso_nsubdivisions > 4000);
	for (i = 0; i < iso_ncountries; i++) {
		c = &iso_countries[i];
		if (i > 0)
			assert_true(strcmp(iso_countries[i - 1].a3, c->a3) < 0);
		assert_ptr_equal(iso_country_by_alpha3(c->a3), c);
		assert_ptr_equal(iso_country_by_alpha2(c->a2), c);
		assert_int_equal(strlen(c->numeric), 3);
		for (k = 1; k < c->sub_n; k++)
			assert_true(strcmp(iso_subdivisions[c->sub_first + k -
			    1], iso_subdivisions[c->sub_first + k]) < 0);
	}
	c = iso_country_lookup("ar");
	assert_non_null(c);
	assert_string_equal(c->a3, "ARG");
	assert_string_equal(c->numeric, "032");
	assert_string_equal(c->name, "Argentina");
	assert_int_equal(c->sub_n, 24);
	assert_null(iso_country_lookup("XK"));
	assert_null(iso_country_lookup("UK"));
	assert_null(iso_country_by_alpha2("ar"));	/* exact form only */
}

static void
test_iso_subdivisions(void **state)
{
	static const struct { const char *c, *in, *out; } good[] = {
		{ "ARG", "ARG-B", "ARG-B" }, { "ARG", "AR-B", "ARG-B" },
		{ "ARG", "B", "ARG-B" }, { "ARG", "arg-b", "ARG-B" },
		{ "ARG", "ar-b", "ARG-B" }, { "ARG", "b", "ARG-B" },
		{ "ARG", "C", "ARG-C" }, { "USA", "US-NY", "USA-NY" },
		{ "USA", "NY", "USA-NY" }, { "BRA", "BRA-SP", "BRA-SP" },
		{ "FRA", "75", "FRA-75" }, { "GBR", "GB-LND", "GBR-LND" },
	};
	static const struct {
		const char *c, *in;
		enum iso_sub_why why;
	} bad[] = {
		{ "ARG", "BRA-B", ISO_SUB_PREFIX },
		{ "ARG", "BR-B", ISO_SUB_PREFIX },
		{ "ARG", "ZZ-B", ISO_SUB_PREFIX },
		{ "ARG", "ARGE-B", ISO_SUB_UNKNOWN },
		{ "ARG", "I", ISO_SUB_UNKNOWN },
		{ "ARG", "SP", ISO_SUB_UNKNOWN },
		{ "ARG", "ARG-", ISO_SUB_UNKNOWN },
		{ "ARG", "-B", ISO_SUB_UNKNOWN },
		{ "ARG", "ARG-BB-B", ISO_SUB_UNKNOWN },
		{ "ARG", "BBBB", ISO_SUB_UNKNOWN },
		{ "ARG", "B ", ISO_SUB_UNKNOWN },
		{ "ARG", "", ISO_SUB_UNKNOWN },
		{ "HKG", "HK-X", ISO_SUB_NONE },
		{ "HKG", "X", ISO_SUB_NONE },
	};
	const struct iso_country	*c;
	enum iso_sub_why		 why;
	char				 out[ISO_SUBDIV_BUF];
	size_t				 i;

	(void)state;
	for (i = 0; i < NELEM(good); i++) {
		c = iso_country_by_alpha3(good[i].c);
		assert_non_null(c);
		assert_int_equal(iso_subdivision_norm(c, good[i].in,
		    strlen(good[i].in), out, &why), 0);
		assert_string_equal(out, good[i].out);
	}
	for (i = 0; i < NELEM(bad); i++) {
		c = iso_country_by_alpha3(bad[i].c);
		print_message("  %s %s\n", bad[i].c, bad[i].in);
		assert_int_equal(iso_subdivision_norm(c, bad[i].in,
		    strlen(bad[i].in), out, &why), -1);
		assert_int_equal(why, bad[i].why);
	}
}

/*
 * An unknown subproduct is answered with the configured list; a list
 * longer than the message ends where a name stops fitting, and the
 * message is never written past.
 */
static void
test_subproduct_list(void **state)
{
	static const char		 body[] = "{\"subproduct\":\"x\"}";
	static const char *const	 two[] = { "cards_individuals", "b" };
	static const char		 name[] = "a_long_subproduct_name";
	const char			*many[40];
	struct kyc_opts			 ko = { two, 2, 0 };
	struct verrors			 errs = { 0 };
	struct json_object		*out;
	size_t				 i;

	(void)state;
	assert_int_equal(validate_product_request(body, sizeof(body) - 1,
	    &vo, &ko, &out, &errs), V_INVALID);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].field, "subproduct");
	assert_string_equal(errs.v[0].message,
	    "must be one of: cards_individuals, b");
	verrors_free(&errs);

	for (i = 0; i < 40; i++)
		many[i] = name;
	ko.subproducts = many;
	ko.nsubproducts = 40;
	assert_int_equal(validate_product_request(body, sizeof(body) - 1,
	    &vo, &ko, &out, &errs), V_INVALID);
	assert_int_equal(errs.n, 1);
	assert_true(strlen(errs.v[0].message) == 255);
	assert_true(strncmp(errs.v[0].message, "must be one of: a_long",
	    22) == 0);
	verrors_free(&errs);
}

/* limits.max_string_length caps the KYC text fields too, not images. */
static void
test_max_string_length(void **state)
{
	static const struct vopts	 vshort = { 18, 10, 5, 2026, 11, 26 };
	static const char		 body[] = DOC("\"document_type\":"
	    "\"id\"," FJ ",\"metadata\":{\"a\":\"abcde\",\"b\":\"abcdef\"}");
	struct verrors			 errs = { 0 };
	struct json_object		*out;

	(void)state;
	assert_int_equal(validate_product_documentation(body, sizeof(body) -
	    1, &vshort, NULL, &out, NULL, &errs), V_INVALID);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].field, "document.metadata.b");
	assert_non_null(strstr(errs.v[0].message, "at most 5"));
	verrors_free(&errs);
}

/* individuals.update: the create rules, the same normalized output. */
static void
test_update_is_create(void **state)
{
	static const char	 body[] = "{\"first_name\":\" Maria\","
	    "\"last_name\":\"Barber\",\"email\":\"M@Example.com\","
	    "\"birth_date\":\"1984-11-21\",\"address\":{\"street_line1\":"
	    "\"Florida 9860\",\"city\":\"Del Viso\",\"postal_code\":\"1669\","
	    "\"state\":\"b\",\"country\":\"ar\",\"state_code\":\"06\"}}";
	struct verrors		 errs = { 0 };
	struct json_object	*a, *b;
	size_t			 la, lb;
	const char		*sa, *sb;

	(void)state;
	assert_int_equal(validate_individual(body, sizeof(body) - 1, &vo, &a,
	    &errs), V_OK);
	assert_int_equal(validate_individual_update(body, sizeof(body) - 1,
	    &vo, &b, &errs), V_OK);
	sa = plain(a, &la);
	sb = plain(b, &lb);
	assert_string_equal(sa, sb);
	assert_non_null(strstr(sa, "\"postal_code\":\"1669\",\"state\":"
	    "\"ARG-B\",\"state_code\":\"06\",\"country\":\"ARG\""));
	json_object_put(a);
	json_object_put(b);
	assert_int_equal(validate_individual_update("{}", 2, &vo, &a, &errs),
	    V_INVALID);
	assert_int_equal(errs.n, 5);
	verrors_free(&errs);
}

int
main(void)
{
	static const struct CMUnitTest	 fixed[] = {
		cmocka_unit_test(test_doc_info),
		cmocka_unit_test(test_doc_large_images),
		cmocka_unit_test(test_doc_28mb_timing),
		cmocka_unit_test(test_path_id),
		cmocka_unit_test(test_path_country),
		cmocka_unit_test(test_iso_tables),
		cmocka_unit_test(test_iso_subdivisions),
		cmocka_unit_test(test_update_is_create),
		cmocka_unit_test(test_max_string_length),
		cmocka_unit_test(test_subproduct_list),
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
	failed = cmocka_run_group_tests_name("validate_kyc table", table, NULL,
	    NULL);
	failed += cmocka_run_group_tests_name("validate_kyc", fixed, NULL,
	    NULL);
	return failed != 0;
}
