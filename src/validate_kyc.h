/*
 * validate_kyc.h: rules for the KYC routes of issue #14 (individual
 * clients' update, product requests, document uploads, submit) and for
 * their path parameters.
 *
 * Same contract as validate.h: pure (no I/O, no clock, no globals but
 * constant tables and a once-initialized digest handle), thread-safe, so
 * a caller may run them off the event loop thread; every problem is
 * reported at once in errs, with dotted paths ("document.image_front",
 * "path.client_id"); a message never holds the offending value.  errs
 * starts zeroed (or holds earlier errors); release it with
 * verrors_free().
 */
#ifndef CMGATE_VALIDATE_KYC_H
#define CMGATE_VALIDATE_KYC_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "validate.h"

/* CryptoMate's own limit per image, in decoded bytes. */
#define KYC_MAX_IMAGE_BYTES_DEFAULT	(10u * 1024 * 1024)
/* Path parameters (client_id, product_request_id): 1..64 of this set. */
#define KYC_PATH_ID_MAX			64
/* document.metadata: at most this many keys, each 1..64 characters. */
#define KYC_META_MAX_KEYS		32
#define KYC_META_KEY_MAX		64
#define KYC_META_VALUE_MAX		256	/* characters of a string */
#define KYC_DOCTYPE_MAX			64

/*
 * Options of the KYC validators (validation.subproducts and
 * validation.max_image_bytes); a NULL kyc_opts, a NULL list or a zero
 * size means the default.  The strings stay the caller's.
 */
struct kyc_opts {
	const char *const	*subproducts;	/* default {"cards_individuals"} */
	size_t			 nsubproducts;
	size_t			 max_image_bytes; /* default 10 MiB */
};

/*
 * individuals.update: PUT is a full replacement in CryptoMate, so the
 * rules and the normalization are validate_individual()'s, address
 * included.  Same contract.
 */
enum vresult	validate_individual_update(const char *body, size_t len,
		    const struct vopts *, struct json_object **out,
		    struct verrors *errs);

/*
 * products.request: {"subproduct": S}, S one of kopts' subproducts
 * (trimmed, compared exactly), nothing else.  *out on V_OK.
 */
enum vresult	validate_product_request(const char *body, size_t len,
		    const struct vopts *, const struct kyc_opts *,
		    struct json_object **out, struct verrors *errs);

/*
 * products.submit: CryptoMate takes no body.  An empty body (len 0, or
 * only JSON whitespace) or {} is V_OK with *out NULL: forward no body.
 * Broken JSON or a non-object is V_INVALID_JSON as on every route; an
 * object with members is V_INVALID, each member an unknown field.
 */
enum vresult	validate_product_submit(const char *body, size_t len,
		    const struct vopts *, struct json_object **out,
		    struct verrors *errs);

/* What an uploaded image is; for the audit record. */
enum kyc_img_type {
	KYC_IMG_NONE = 0,	/* no such image (image_back absent) */
	KYC_IMG_JPEG,
	KYC_IMG_PNG,
};

struct kyc_image_info {
	enum kyc_img_type	 type;		/* verified from the bytes */
	const char		*declared;	/* "image/jpeg", "image/png",
						   or "" for bare base64 */
	size_t			 decoded_bytes;
	unsigned char		 sha256[32];	/* of the decoded bytes */
};

struct kyc_doc_info {
	char			document_type[KYC_DOCTYPE_MAX + 1];
	struct kyc_image_info	front, back;
};

/*
 * products.documentation: {"document": {document_type, image_front,
 * image_back?, replace?, metadata?}}.
 *
 * - document_type: trimmed, ASCII lower-cased, 1..64 of [a-z0-9_].
 * - replace: a boolean.
 * - metadata: an object of at most 32 keys of 1..64 [a-z0-9_], whose
 *   values are strings (normalized like every text field, 1..256
 *   characters), numbers or booleans.
 * - image_front (required), image_back (optional): "data:image/jpeg;
 *   base64,", "data:image/png;base64," (media type case-insensitive) or
 *   bare base64; strict RFC 4648 base64 (standard alphabet, length a
 *   multiple of 4, '=' only as final padding, zero pad bits, no
 *   whitespace); at most max_image_bytes decoded; the bytes start with
 *   the JPEG (FF D8 FF) or PNG signature, agreeing with a declared type.
 *
 * On V_OK, *out is the normalized body with each image string the very
 * json-c string object parsed from the body (shared, not copied, never
 * re-encoded), and *info (when not NULL) holds the document type and
 * per image its type, decoded size and SHA-256.  Each image is decoded
 * and hashed in one pass through a fixed stack buffer: no decoded copy.
 */
enum vresult	validate_product_documentation(const char *body,
		    size_t len, const struct vopts *,
		    const struct kyc_opts *, struct json_object **out,
		    struct kyc_doc_info *info, struct verrors *errs);

/*
 * Path parameters, on the raw (never percent-decoded) segment s[0..len).
 * validate_path_id: 1..64 of [A-Za-z0-9_-]; field names the parameter
 * in errors ("path.client_id").  validate_path_country: an assigned ISO
 * 3166-1 alpha-2 or alpha-3 code, any case, written to out as alpha-2
 * upper-case; errors name "path.country_code".  0, or -1 after adding
 * one error to errs.
 */
/* Is s[0..len) an id: 1..64 of [A-Za-z0-9_-]?  (Also for ids that
 * come from CryptoMate's answers or an operator.) */
bool		kyc_id_ok(const char *s, size_t len);
int		validate_path_id(const char *s, size_t len,
		    const char *field, struct verrors *errs);
int		validate_path_country(const char *s, size_t len, char out[3],
		    struct verrors *errs);

#endif
