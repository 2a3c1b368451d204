/*
 * prep.c: a request body made ready (see prep.h).
 *
 * The copies of a large body: the raw bytes as read (made contiguous
 * here, once, which for a moment holds them twice), the validator's
 * tree (images are shared with it, not copied again), and json-c's
 * serialization of the tree, which is what is forwarded.  The raw
 * bytes are freed as soon as the tree exists, so a body holds about
 * twice its size while it waits for CryptoMate (tree and serialization:
 * what limits.max_buffered_bytes counts).
 */
#include "prep.h"
#include "audit.h"
#include "conf.h"
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

/*
 * An upload's images never reach the log: the record's body member is
 * made from a copy of the normalized body whose image strings are their
 * digests ("sha256:<hex>"; the digest mode keys its HMAC on the body
 * actually sent), followed by the document's facts: type, and per image
 * the declared type, the decoded size and the SHA-256 of the decoded
 * bytes, so an auditor holding the photo can prove it was the one sent.
 */
static char *
prep_body_member(struct prep *p, struct json_object *norm)
{
	const struct kyc_doc_info *d = &p->ctx.doc;
	const struct kyc_image_info *img[2] = { &d->front, &d->back };
	static const char *const side[2] = { "image_front", "image_back" };
	struct json_object *copy = NULL, *doc = NULL, *in;
	char hex[2 * SHA256_LEN + 1], digest[2 * SHA256_LEN + 8];
	char *m, *out;
	size_t i, len, n;

	if (d->document_type[0] == '\0' || norm == NULL)
		return audit_body_member_str(p->audit, norm, p->body,
		    p->body_len);
	/* The copy shares every member but the images (no 28 MB copy). */
	if (json_object_object_get_ex(norm, "document", &in)) {
		copy = json_object_new_object();
		doc = json_object_new_object();
		json_object_object_foreach(in, k, v) {
			for (i = 0; i < 2 && strcmp(k, side[i]) != 0; i++)
				;
			if (i < 2) {
				hex_encode(img[i]->sha256, SHA256_LEN, hex);
				snprintf(digest, sizeof(digest), "sha256:%s",
				    hex);
				json_object_object_add(doc, k,
				    json_object_new_string(digest));
			} else
				json_object_object_add(doc, k,
				    json_object_get(v));
		}
		json_object_object_add(copy, "document", doc);
	}
	m = audit_body_member_str(p->audit, copy, p->body, p->body_len);
	json_object_put(copy);
	if (m == NULL)
		return NULL;
	len = strlen(m) + 512;
	if ((out = malloc(len)) == NULL) {
		free(m);
		return NULL;
	}
	n = (size_t)snprintf(out, len, "%s,\"document\":{\"document_type\":"
	    "\"%s\",\"images\":[", m, d->document_type);
	free(m);
	for (i = 0; i < 2; i++) {
		if (img[i]->type == KYC_IMG_NONE)
			continue;
		hex_encode(img[i]->sha256, SHA256_LEN, hex);
		n += (size_t)snprintf(out + n, len - n, "%s{\"side\":\"%s\","
		    "\"declared\":\"%s\",\"type\":\"%s\",\"bytes\":%zu,"
		    "\"sha256\":\"%s\"}", i > 0 && img[0]->type !=
		    KYC_IMG_NONE ? "," : "", i == 0 ? "front" : "back",
		    img[i]->declared ? img[i]->declared : "",
		    img[i]->type == KYC_IMG_JPEG ? "image/jpeg" : "image/png",
		    img[i]->decoded_bytes, hex);
	}
	snprintf(out + n, len - n, "]}");
	return out;
}

void
prep_run(struct prep *p)
{
	struct json_object *norm = NULL;
	const char *raw = p->raw;
	size_t len = p->raw_len;

	if (p->in != NULL) {
		len = evbuffer_get_length(p->in);
		raw = (const char *)evbuffer_pullup(p->in, -1);
	}
	if (raw == NULL)
		raw = "";
	p->vr = p->route->validate(raw, len, &p->ctx, &norm, &p->errs);
	/* The tree holds what is needed now: the raw bytes can go before
	 * the body is serialized (one copy less at the peak). */
	if (p->in != NULL)
		evbuffer_drain(p->in, evbuffer_get_length(p->in));
	if (p->vr != V_OK) {
		json_object_put(norm);
		return;		/* refused: nothing is stored under a key */
	}
	/* No body at all (products.submit's empty one): nothing to send.
	 * Otherwise the body sent is json-c's own serialization, kept with
	 * its tree (p->norm), not copied again. */
	if (norm != NULL && (p->body = json_object_to_json_string_length(norm,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
	    &p->body_len)) == NULL) {
		json_object_put(norm);
		p->failed = true;
		return;
	}
	p->norm = norm;
	if ((p->bodym = prep_body_member(p, norm)) == NULL ||
	    (p->want_digest && sha256(p->body ? p->body : "", p->body_len,
	    p->digest) == -1))
		p->failed = true;
}

void
prep_clear(struct prep *p)
{
	verrors_free(&p->errs);
	json_object_put(p->norm);
	free(p->bodym);
	p->norm = NULL;
	p->body = NULL;
	p->bodym = NULL;
	if (p->in != NULL)
		evbuffer_free(p->in);
	p->in = NULL;
	conf_unref(p->cfg);	/* maybe the last one: any thread may free */
	p->cfg = NULL;
}
