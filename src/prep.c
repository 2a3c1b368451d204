/*
 * prep.c: a request body made ready (see prep.h).
 *
 * The only copies of a body: the raw bytes as read (made contiguous
 * here, once), the validator's tree, and the serialized normalized
 * body that is forwarded.  The tree and the raw bytes are freed as soon
 * as the serialized body and its digests exist, so a 28 MB upload holds
 * about twice its size at the peak and once its size afterwards.
 */
#include "prep.h"
#include "audit.h"
#include "routes.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

void
prep_run(struct prep *p)
{
	struct json_object *norm = NULL;
	const char *raw = p->raw, *s;
	size_t len = p->raw_len;

	if (p->in != NULL) {
		len = evbuffer_get_length(p->in);
		raw = (const char *)evbuffer_pullup(p->in, -1);
	}
	if (raw == NULL)
		raw = "";
	p->vr = p->route->validate(raw, len, &p->vo, &norm, &p->errs);
	if (p->vr != V_OK) {
		if (p->vr == V_INVALID && p->want_digest &&
		    sha256(raw, len, p->digest) == -1)
			p->failed = true;
		goto out;
	}
	/* No body at all (products.submit's empty one): nothing to send. */
	if (norm != NULL) {
		s = json_object_to_json_string_length(norm,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		    &p->body_len);
		if (s == NULL || (p->body = malloc(p->body_len + 1)) == NULL) {
			p->failed = true;
			goto out;
		}
		memcpy(p->body, s, p->body_len + 1);
	}
	if ((p->bodym = audit_body_member_str(p->audit, norm, p->body,
	    p->body_len)) == NULL ||
	    (p->want_digest && sha256(p->body ? p->body : "", p->body_len,
	    p->digest) == -1))
		p->failed = true;
out:
	json_object_put(norm);
	if (p->in != NULL)
		evbuffer_drain(p->in, evbuffer_get_length(p->in));
}

void
prep_clear(struct prep *p)
{
	verrors_free(&p->errs);
	free(p->body);
	free(p->bodym);
	p->body = p->bodym = NULL;
	if (p->in != NULL)
		evbuffer_free(p->in);
	p->in = NULL;
}
