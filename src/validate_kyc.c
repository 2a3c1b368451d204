/*
 * validate_kyc.c: the body rules of the KYC routes (products.request,
 * products.documentation, products.submit, individuals.update) and the
 * path parameter checks; see validate_kyc.h for each rule.
 *
 * Built on json_strict.c (json_parse_strict() for the bytes) and on
 * validate.c (vc_text_field(), and so vstr_normalize(), for every text
 * field), so all routes agree on what a string may hold.  Like
 * validate.c, each validator collects every problem with its dotted
 * path, builds a new object of only the known, normalized fields, and
 * never echoes a value in a message.
 *
 * Images are the one large thing: a document upload is about 28 MB of
 * base64.  Each image is checked, decoded and hashed in one pass over
 * the string json-c holds, through a fixed buffer on the stack, and the
 * same json-c string object goes into the output: the decoded bytes are
 * never kept and the text is never copied or re-encoded here.  No
 * mutable state but a digest handle fetched once (pthread_once), so the
 * validators may run on any thread.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "iso3166.h"
#include "json_strict.h"
#include "validate.h"
#include "validate_kyc.h"
#include "validate_int.h"

/* Base64 characters decoded per step (a multiple of 4): 12 KiB out. */
#define B64_CHUNK		16384

static const char *const default_subproducts[] = { "cards_individuals" };

static bool
is_key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* 1..max of [a-z0-9_]. */
static bool
key_ok(const char *k, size_t n, size_t max)
{
	size_t	i;

	if (n < 1 || n > max)
		return false;
	for (i = 0; i < n; i++)
		if (!is_key_char((unsigned char)k[i]))
			return false;
	return true;
}

/* ---- individuals.update ---------------------------------------------- */

enum vresult
validate_individual_update(const char *body, size_t len,
    const struct vopts *opts, struct json_object **out,
    struct verrors *errs)
{
	return validate_individual(body, len, opts, out, errs);
}

/* ---- products.request ------------------------------------------------ */

#define SUBPRODUCT_MAX_CHARS	64

/*
 * "must be one of: a, b" into msg[0..sz).  The list is configuration,
 * not caller data, so it may be named.  Each write is checked: a list
 * too long for msg ends where the next name stops fitting (snprintf
 * cuts it there and terminates msg), and nothing is written past sz.
 */
static void
one_of(char *msg, size_t sz, const char *const *list, size_t n)
{
	size_t	m, i;
	int	r;

	r = snprintf(msg, sz, "must be one of:");
	if (r < 0 || (size_t)r >= sz)
		return;
	m = (size_t)r;
	for (i = 0; i < n; i++) {
		r = snprintf(msg + m, sz - m, "%s %s", i > 0 ? "," : "",
		    list[i]);
		if (r < 0 || (size_t)r >= sz - m)
			return;
		m += (size_t)r;
	}
}

enum vresult
validate_product_request(const char *body, size_t len,
    const struct vopts *opts, const struct kyc_opts *kopts,
    struct json_object **out, struct verrors *errs)
{
	static const char *const	 names[] = { "subproduct" };
	struct vctx			 kc = { opts, errs, 0, false };
	struct json_object		*in, *o = NULL, *slot[1];
	const char *const		*list = default_subproducts;
	size_t				 nlist = NELEM(default_subproducts);
	char				 buf[4 * SUBPRODUCT_MAX_CHARS + 1];
	char				 msg[256];
	size_t				 blen, i;

	*out = NULL;
	if (kopts != NULL && kopts->subproducts != NULL &&
	    kopts->nsubproducts > 0) {
		list = kopts->subproducts;
		nlist = kopts->nsubproducts;
	}
	if ((in = vc_parse(body, len, opts, errs)) == NULL)
		return V_INVALID_JSON;
	vc_collect(&kc, in, names, NELEM(names), slot, "");
	if (vc_text_field(&kc, slot[0], "subproduct", true,
	    SUBPRODUCT_MAX_CHARS, buf, sizeof(buf), &blen) == 1) {
		for (i = 0; i < nlist; i++)
			if (strcmp(buf, list[i]) == 0)
				break;
		if (i == nlist) {
			one_of(msg, sizeof(msg), list, nlist);
			vc_report(&kc, "subproduct", msg);
		}
	}
	if (kc.nerr == 0) {
		if ((o = json_object_new_object()) == NULL)
			kc.oom = true;
		else
			vc_put(&kc, o, "subproduct",
			    json_object_new_string_len(buf, (int)blen));
	}
	return vc_finish(&kc, in, o, out);
}

/* ---- products.submit ------------------------------------------------- */

enum vresult
validate_product_submit(const char *body, size_t len,
    const struct vopts *opts, struct json_object **out,
    struct verrors *errs)
{
	struct vctx		 kc = { opts, errs, 0, false };
	struct json_object	*in;
	size_t			 i;

	*out = NULL;
	for (i = 0; body != NULL && i < len; i++)
		if (!json_is_ws((unsigned char)body[i]))
			break;
	if (body == NULL || i == len)
		return V_OK;
	if ((in = vc_parse(body, len, opts, errs)) == NULL)
		return V_INVALID_JSON;
	/* No known names: every member is reported as unknown. */
	vc_collect(&kc, in, NULL, 0, NULL, "");
	return vc_finish(&kc, in, NULL, out);
}

/* ---- images ---------------------------------------------------------- */

/* Base64 value + 1 of each character of the standard alphabet; 0 = not. */
static const unsigned char b64tab[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
	['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27,
	['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
	['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
	['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47,
	['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52,
	['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62,
	['+'] = 63, ['/'] = 64,
};

static pthread_once_t	 md_once = PTHREAD_ONCE_INIT;
static EVP_MD		*md_sha256;

static void
md_fetch(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Why a character cannot be in strict base64. */
static const char *
b64_bad_char(unsigned char c)
{
	if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v')
		return "must not contain whitespace (strict base64)";
	if (c == '-' || c == '_')
		return "must use the standard base64 alphabet, not the "
		    "URL-safe one ('-', '_')";
	if (c == '=')
		return "has base64 '=' padding before its end";
	return "is not valid base64";
}

/* The first byte of s[0..n) that is not in the alphabet or '=', or n. */
static size_t
b64_scan(const unsigned char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (b64tab[s[i]] == 0 && s[i] != '=')
			break;
	return i;
}

/*
 * Decode n characters (n % 4 == 0, no padding) of s into out.  Returns
 * the index of the first bad character, or n.
 */
static size_t
b64_decode_run(const unsigned char *s, size_t n, unsigned char *out)
{
	size_t		i;
	unsigned int	a, b, c, d;

	for (i = 0; i < n; i += 4) {
		a = b64tab[s[i]];
		b = b64tab[s[i + 1]];
		c = b64tab[s[i + 2]];
		d = b64tab[s[i + 3]];
		if (a == 0 || b == 0 || c == 0 || d == 0)
			break;
		a--, b--, c--, d--;
		*out++ = (unsigned char)(a << 2 | b >> 4);
		*out++ = (unsigned char)(b << 4 | c >> 2);
		*out++ = (unsigned char)(c << 6 | d);
	}
	if (i < n)
		while (b64tab[s[i]] != 0)
			i++;
	return i;
}

/*
 * The magic bytes: JPEG (FF D8 FF) or PNG; anything else is refused by
 * name where it is a well-known photo or document format, since the
 * usual mistake is an iPhone's HEIC or a scanned PDF.
 */
static const char *
image_kind(const unsigned char *p, size_t n, enum kyc_img_type *t)
{
	static const unsigned char	png[8] = {
		0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a
	};

	*t = KYC_IMG_NONE;
	if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) {
		*t = KYC_IMG_JPEG;
		return NULL;
	}
	if (n >= 8 && memcmp(p, png, 8) == 0) {
		*t = KYC_IMG_PNG;
		return NULL;
	}
	if (n >= 12 && memcmp(p + 4, "ftyp", 4) == 0)
		return "is a HEIC/HEIF (ISO media) file: CryptoMate accepts "
		    "only JPEG and PNG photos";
	if (n >= 5 && memcmp(p, "%PDF-", 5) == 0)
		return "is a PDF: CryptoMate accepts only JPEG and PNG photos";
	if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 ||
	    memcmp(p, "GIF89a", 6) == 0))
		return "is a GIF image: CryptoMate accepts only JPEG and PNG "
		    "photos";
	if (n >= 12 && memcmp(p, "RIFF", 4) == 0 &&
	    memcmp(p + 8, "WEBP", 4) == 0)
		return "is a WebP image: CryptoMate accepts only JPEG and PNG "
		    "photos";
	if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 ||
	    memcmp(p, "MM\0*", 4) == 0))
		return "is a TIFF image: CryptoMate accepts only JPEG and PNG "
		    "photos";
	return "is not a JPEG or PNG image: CryptoMate accepts only JPEG "
	    "and PNG photos";
}

/* Bytes the signature check looks at. */
#define HEAD_LEN	16

/*
 * Keep the first HEAD_LEN decoded bytes; once there are that many,
 * judge the signature (once: *t stays set after).
 */
static const char *
head_feed(unsigned char *head, size_t *hlen, const unsigned char *p,
    size_t n, enum kyc_img_type *t)
{
	size_t	k;

	if (*t != KYC_IMG_NONE || *hlen == HEAD_LEN)
		return NULL;
	k = HEAD_LEN - *hlen < n ? HEAD_LEN - *hlen : n;
	memcpy(head + *hlen, p, k);
	*hlen += k;
	if (*hlen < HEAD_LEN)
		return NULL;
	return image_kind(head, *hlen, t);
}

static bool
prefix_ci(const char *s, size_t n, const char *pre)
{
	size_t	m = strlen(pre);

	return n >= m && strncasecmp(s, pre, m) == 0;
}

/*
 * A data URI prefix, if the image has one: *str and *n step past it,
 * *decl and *declared say the type it declares.  NULL, or the error
 * for any other data: URI (bare base64 passes unchanged).
 */
static const char *
image_prefix(const char **str, size_t *n, enum kyc_img_type *decl,
    const char **declared)
{
	static const struct {
		const char		*prefix, *type;
		enum kyc_img_type	 t;
	} uris[] = {
		{ "data:image/jpeg;base64,", "image/jpeg", KYC_IMG_JPEG },
		{ "data:image/png;base64,", "image/png", KYC_IMG_PNG },
	};
	size_t	i;

	for (i = 0; i < NELEM(uris); i++)
		if (prefix_ci(*str, *n, uris[i].prefix)) {
			*decl = uris[i].t;
			*declared = uris[i].type;
			*str += strlen(uris[i].prefix);
			*n -= strlen(uris[i].prefix);
			return NULL;
		}
	if (prefix_ci(*str, *n, "data:"))
		return "must be a data:image/jpeg;base64, or "
		    "data:image/png;base64, URI or bare base64: CryptoMate "
		    "accepts only JPEG and PNG photos";
	return NULL;
}

/*
 * The last quantum s[0..4), which ends in pad '=' (0..2), decoded into
 * out[0..3 - pad).  Its pad bits must be zero (canonical base64: one
 * image, one spelling).  NULL, or the error.
 */
static const char *
b64_last(const unsigned char *s, size_t pad, unsigned char out[3])
{
	unsigned int	a, b, c, d;
	size_t		k;

	for (k = 0; k < 4 - pad; k++)
		if (b64tab[s[k]] == 0)
			return b64_bad_char(s[k]);
	a = b64tab[s[0]] - 1u;
	b = b64tab[s[1]] - 1u;
	c = pad < 2 ? b64tab[s[2]] - 1u : 0;
	d = pad < 1 ? b64tab[s[3]] - 1u : 0;
	if ((pad == 2 && (b & 0x0f) != 0) || (pad == 1 && (c & 0x03) != 0))
		return "has non-zero base64 padding bits (not canonical "
		    "base64)";
	out[0] = (unsigned char)(a << 2 | b >> 4);
	out[1] = (unsigned char)(b << 4 | c >> 2);
	out[2] = (unsigned char)(c << 6 | d);
	return NULL;
}

/*
 * One image: the data URI prefix, then strict base64 decoded and
 * hashed chunk by chunk (B64_CHUNK characters at a time, into a stack
 * buffer), the signature checked on the first chunk.  The decoded size
 * is known from the length before anything is decoded, so an oversized
 * image is refused without decoding it.  Returns NULL or the error.
 */
static const char *
image_check(const char *str, size_t n, size_t maxb,
    struct kyc_image_info *ii, char *msg, size_t msgsz)
{
	unsigned char		 buf[B64_CHUNK / 4 * 3], head[HEAD_LEN];
	const unsigned char	*s;
	const char		*why = NULL;
	enum kyc_img_type	 decl = KYC_IMG_NONE;
	EVP_MD_CTX		*ctx = NULL;
	size_t			 pad = 0, dsize, off, step, k, full, hlen = 0;
	unsigned int		 hl;

	memset(ii, 0, sizeof(*ii));
	ii->declared = "";
	if ((why = image_prefix(&str, &n, &decl, &ii->declared)) != NULL)
		return why;
	s = (const unsigned char *)str;
	if (n == 0)
		return "must not be empty";
	if (n % 4 != 0) {
		if ((k = b64_scan(s, n)) < n)
			return b64_bad_char(s[k]);
		return "base64 length must be a multiple of 4 (the last "
		    "quantum is cut short or unpadded)";
	}
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	dsize = n / 4 * 3 - pad;
	if (dsize > maxb) {
		(void)snprintf(msg, msgsz, "image must be at most %zu bytes "
		    "decoded (CryptoMate's limit)", maxb);
		return msg;
	}

	if (pthread_once(&md_once, md_fetch) != 0 || md_sha256 == NULL ||
	    (ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, md_sha256, NULL)) {
		why = "internal error: no SHA-256";
		goto done;
	}
	/*
	 * Every quantum but the last, a chunk at a time; the first 16
	 * decoded bytes are kept aside for the signature check.
	 */
	full = n - 4;
	for (off = 0; off < full; off += step) {
		step = full - off < B64_CHUNK ? full - off : B64_CHUNK;
		if ((k = b64_decode_run(s + off, step, buf)) < step) {
			why = b64_bad_char(s[off + k]);
			goto done;
		}
		if ((why = head_feed(head, &hlen, buf, step / 4 * 3,
		    &ii->type)) != NULL)
			goto done;
		if (!EVP_DigestUpdate(ctx, buf, step / 4 * 3)) {
			why = "internal error: SHA-256";
			goto done;
		}
	}
	/* The last quantum: padding, and zero pad bits (canonical form). */
	if ((why = b64_last(s + full, pad, buf)) != NULL)
		goto done;
	if ((why = head_feed(head, &hlen, buf, 3 - pad, &ii->type)) != NULL)
		goto done;
	/* An image under 16 bytes is judged on what there is. */
	if (ii->type == KYC_IMG_NONE &&
	    (why = image_kind(head, hlen, &ii->type)) != NULL)
		goto done;
	if (!EVP_DigestUpdate(ctx, buf, 3 - pad) ||
	    !EVP_DigestFinal_ex(ctx, ii->sha256, &hl)) {
		why = "internal error: SHA-256";
		goto done;
	}
	if (decl != KYC_IMG_NONE && decl != ii->type) {
		why = decl == KYC_IMG_JPEG ? "is declared image/jpeg but "
		    "holds a PNG image" : "is declared image/png but holds a "
		    "JPEG image";
		goto done;
	}
	ii->decoded_bytes = dsize;
done:
	EVP_MD_CTX_free(ctx);
	if (why != NULL) {
		memset(ii, 0, sizeof(*ii));
		ii->declared = "";
	}
	return why;
}

/* ---- products.documentation ------------------------------------------ */

enum {
	D_TYPE, D_FRONT, D_BACK, D_REPLACE, D_METADATA, D_N
};
static const char *const doc_names[D_N] = {
	"document_type", "image_front", "image_back", "replace", "metadata",
};
static const char *const doc_paths[D_N] = {
	"document.document_type", "document.image_front",
	"document.image_back", "document.replace", "document.metadata",
};

/*
 * An image member: checked, and on success the very string object put
 * into doc (a reference taken, nothing copied).
 */
static void
image_member(struct vctx *kc, struct json_object *doc, const char *key,
    struct json_object *v, const char *path, bool required, size_t maxb,
    struct kyc_image_info *ii)
{
	const char	*why;
	char		 msg[96];

	if (v == NULL) {
		if (required)
			vc_report(kc, path, "is required");
		return;
	}
	if (!json_object_is_type(v, json_type_string)) {
		vc_report(kc, path, "must be a string");
		return;
	}
	why = image_check(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), maxb, ii, msg, sizeof(msg));
	if (why != NULL) {
		vc_report(kc, path, why);
		return;
	}
	vc_put(kc, doc, key, json_object_get(v));
}

/*
 * metadata: at most KYC_META_MAX_KEYS keys of [a-z0-9_]; string values
 * normalized, numbers and booleans kept as parsed (the same objects,
 * so a number is re-serialized as written).
 */
static void
metadata_member(struct vctx *kc, struct json_object *doc,
    struct json_object *v)
{
	static const char		 path[] = "document.metadata";
	struct json_object_iterator	 it, end;
	struct json_object		*m = NULL, *val;
	const char			*k;
	char				 vpath[sizeof(path) + 1 +
					    KYC_META_KEY_MAX];
	char				 buf[4 * KYC_META_VALUE_MAX + 1];
	size_t				 blen;

	if (v == NULL)
		return;
	if (!json_object_is_type(v, json_type_object)) {
		vc_report(kc, path, "must be an object");
		return;
	}
	if (json_object_object_length(v) > KYC_META_MAX_KEYS) {
		vc_report(kc, path, "must have at most 32 keys");
		return;
	}
	if (doc != NULL && (m = json_object_new_object()) == NULL)
		kc->oom = true;
	it = json_object_iter_begin(v);
	end = json_object_iter_end(v);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		k = json_object_iter_peek_name(&it);
		val = json_object_iter_peek_value(&it);
		if (!key_ok(k, strlen(k), KYC_META_KEY_MAX)) {
			vc_report(kc, path, "keys must be 1 to 64 characters of "
			    "a-z, 0-9 and _ (name not shown)");
			continue;
		}
		(void)snprintf(vpath, sizeof(vpath), "%s.%s", path, k);
		switch (json_object_get_type(val)) {
		case json_type_string:
			if (vc_text_field(kc, val, vpath, true,
			    KYC_META_VALUE_MAX, buf, sizeof(buf), &blen) == 1 &&
			    m != NULL)
				/* Keys are not constant: no CONSTANT_KEY. */
				if (json_object_object_add(m, k,
				    json_object_new_string_len(buf,
				    (int)blen)) != 0)
					kc->oom = true;
			break;
		case json_type_int:
		case json_type_double:
		case json_type_boolean:
			if (m != NULL && json_object_object_add(m, k,
			    json_object_get(val)) != 0)
				kc->oom = true;
			break;
		default:
			vc_report(kc, vpath, "must be a string, a number or a "
			    "boolean");
			break;
		}
	}
	vc_put(kc, doc, "metadata", m);
}

static void
doctype_member(struct vctx *kc, struct json_object *doc,
    struct json_object *v, char *dt)
{
	char	buf[4 * KYC_DOCTYPE_MAX + 1];
	size_t	blen;

	if (vc_text_field(kc, v, doc_paths[D_TYPE], true, KYC_DOCTYPE_MAX,
	    buf, sizeof(buf), &blen) != 1)
		return;
	vc_lower_ascii(buf, blen);
	if (!key_ok(buf, blen, KYC_DOCTYPE_MAX)) {
		vc_report(kc, doc_paths[D_TYPE], "must be 1 to 64 characters of "
		    "a-z, 0-9 and _");
		return;
	}
	memcpy(dt, buf, blen + 1);
	vc_put(kc, doc, "document_type", json_object_new_string_len(buf,
	    (int)blen));
}

/*
 * Decisions where the API page is silent: document_type is lower-cased
 * (CryptoMate's ids are); a metadata string must not be empty; null for
 * an optional member means "not given"; the images are judged even when
 * other fields fail, so one answer lists every problem.
 */
enum vresult
validate_product_documentation(const char *body, size_t len,
    const struct vopts *opts, const struct kyc_opts *kopts,
    struct json_object **out, struct kyc_doc_info *info,
    struct verrors *errs)
{
	static const char *const	 top[] = { "document" };
	struct vctx			 kc = { opts, errs, 0, false };
	struct json_object		*in, *o = NULL, *doc = NULL;
	struct json_object		*slot[D_N], *tslot[1];
	struct kyc_doc_info		 di;
	size_t				 maxb = KYC_MAX_IMAGE_BYTES_DEFAULT;

	*out = NULL;
	memset(&di, 0, sizeof(di));
	di.front.declared = di.back.declared = "";
	if (info != NULL)
		*info = di;
	if (kopts != NULL && kopts->max_image_bytes > 0)
		maxb = kopts->max_image_bytes;
	if ((in = vc_parse(body, len, opts, errs)) == NULL)
		return V_INVALID_JSON;
	vc_collect(&kc, in, top, NELEM(top), tslot, "");
	if (tslot[0] == NULL) {
		vc_report(&kc, "document", "is required");
		return vc_finish(&kc, in, NULL, out);
	}
	if (!json_object_is_type(tslot[0], json_type_object)) {
		vc_report(&kc, "document", "must be an object");
		return vc_finish(&kc, in, NULL, out);
	}
	vc_collect(&kc, tslot[0], doc_names, D_N, slot, "document.");
	/*
	 * Build while checking; the output is dropped if anything failed.
	 * Unlike validate.c this keeps building after an error, which
	 * costs nothing here and keeps each member one call.
	 */
	if ((o = json_object_new_object()) == NULL ||
	    (doc = json_object_new_object()) == NULL) {
		json_object_put(o);
		o = NULL;
		kc.oom = true;
	} else
		vc_put(&kc, o, "document", doc);

	doctype_member(&kc, doc, slot[D_TYPE], di.document_type);
	image_member(&kc, doc, "image_front", slot[D_FRONT],
	    doc_paths[D_FRONT], true, maxb, &di.front);
	image_member(&kc, doc, "image_back", slot[D_BACK], doc_paths[D_BACK],
	    false, maxb, &di.back);
	if (slot[D_REPLACE] != NULL) {
		if (!json_object_is_type(slot[D_REPLACE], json_type_boolean))
			vc_report(&kc, doc_paths[D_REPLACE], "must be a boolean");
		else
			vc_put(&kc, doc, "replace", json_object_new_boolean(
			    json_object_get_boolean(slot[D_REPLACE])));
	}
	metadata_member(&kc, doc, slot[D_METADATA]);
	if (vc_finish(&kc, in, o, out) != V_OK)
		return V_INVALID;
	if (info != NULL)
		*info = di;
	return V_OK;
}

/* ---- path parameters ------------------------------------------------- */

bool
kyc_id_ok(const char *s, size_t len)
{
	size_t	i;

	if (s == NULL || len < 1 || len > KYC_PATH_ID_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int
validate_path_id(const char *s, size_t len, const char *field,
    struct verrors *errs)
{
	if (kyc_id_ok(s, len))
		return 0;
	(void)verrors_add(errs, field, "must be 1 to 64 characters of "
	    "A-Z, a-z, 0-9, _ and -");
	return -1;
}

int
validate_path_country(const char *s, size_t len, char out[3],
    struct verrors *errs)
{
	const struct iso_country	*c;
	char				 code[4];

	if (s == NULL || (len != 2 && len != 3))
		goto bad;
	memcpy(code, s, len);
	code[len] = '\0';
	if ((c = iso_country_lookup(code)) == NULL)
		goto bad;
	memcpy(out, c->a2, 3);
	return 0;
bad:
	(void)verrors_add(errs, "path.country_code", "must be an assigned "
	    "ISO 3166-1 alpha-2 or alpha-3 country code");
	return -1;
}
