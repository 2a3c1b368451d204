/*
 * request_idem.c: a request's Idempotency-Key, the branch between its
 * body being ready and its "request" record.
 *
 * The key is read after auth (keys are per caller) and scoped to the
 * route and the client it names.  Once the body is ready, the key is
 * claimed (a duplicate in flight is turned away without I/O) and looked
 * up in the store (idem.c): a first use goes on as usual, holding the
 * claim; a stored answer is replayed with a record of its own and
 * nothing goes upstream; a key reused with another body, or whose
 * outcome is unknown, is refused.  After CryptoMate has decided, the
 * outcome is stored under the key, in parallel with its record.  Every
 * answer leaves through request.c.
 */
#include "request_int.h"
#include "audit.h"
#include "conf.h"
#include "idem.h"
#include "log.h"
#include "loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

static void
on_idem_stored(bool ok, void *arg)
{
	struct gw_req *r = arg;

	/* Not stored: the caller still gets the real answer (hiding a
	 * created client would be worse); idem.c now refuses keys. */
	if (!ok)
		log_error("request %s: idempotency: the outcome was not "
		    "stored", r->id);
	if (--r->idem_wait > 0)
		return;	/* the outcome record is not yet durable */
	req_outcome_reply(r);
}

/*
 * Store a keyed request's outcome when CryptoMate decided it: its 2xx
 * and 4xx (not 429).  A timeout or an answer broken off after sending
 * may have created the client: stored as outcome unknown, so that a
 * retry is stopped (409) instead of risking a duplicate.  Anything
 * else (CryptoMate's 5xx and 429, not sent, the budget's 429) is not
 * stored: a retry goes through.  0 when a store was queued.
 */
int
req_idem_store_outcome(struct gw_req *r)
{
	int st = r->up_status;
	int rc;

	if (r->idem_claim == NULL)
		return -1;
	if (r->code == NULL && st > 0) {
		if (!((st >= 200 && st < 300) ||
		    (st >= 400 && st < 500 && st != 429)))
			return -1;
		rc = idem_store(r->idem_claim, IDEM_COMPLETED, st, r->resp_ct,
		    r->resp, r->resp_len, r->cfg->idempotency.ttl_s,
		    on_idem_stored, r);
	} else if (r->code != NULL && (r->error_class == EC_TIMEOUT ||
	    r->error_class == EC_UPSTREAM_ERROR)) {
		rc = idem_store(r->idem_claim, IDEM_UNKNOWN, r->status, NULL,
		    NULL, 0, r->cfg->idempotency.ttl_s, on_idem_stored, r);
	} else
		return -1;
	if (rc == -1)
		log_error("request %s: idempotency: cannot store the outcome",
		    r->id);
	return rc;
}

static void
on_replay_durable(bool ok, uint64_t seq, void *arg)
{
	struct gw_req *r = arg;

	if (!ok) {
		req_audit_failed(r);
		return;
	}
	req_reply_stored(r);
}

/*
 * Replay a stored response: nothing goes upstream (nor through the
 * budget).  An "outcome" record says so ("replayed":true, with the
 * original request's id) before the answer leaves.
 */
static void
req_idem_replay(struct gw_req *r, const struct idem_record *rec)
{
	char *fields;

	/* A stored answer counts against limits.max_buffered_bytes like
	 * CryptoMate's own. */
	if (!req_hold(r, rec->body_len)) {
		r->retry_after_s = 1;
		req_reply_error(r, 503, "busy", "the gateway holds "
		    "limits.max_buffered_bytes of bodies; retry shortly", NULL);
		return;
	}
	r->status = rec->status;
	r->idem_replayed = true;
	if ((rec->body_len > 0 && (r->resp = malloc(rec->body_len)) == NULL)
	    || (r->resp_ct = strdup(rec->content_type)) == NULL) {
		req_reply_error(r, 500, "internal_error", "out of memory",
		    NULL);
		return;
	}
	if (rec->body_len > 0)
		memcpy(r->resp, rec->body, rec->body_len);
	r->resp_len = rec->body_len;
	fields = req_fields_replay(r, rec->request_id);
	if (fields == NULL || audit_submit(r->loop->aport, "outcome", fields,
	    on_replay_durable, r) == -1)
		req_audit_failed(r);
	free(fields);
}

/* What the store holds under the key: the request goes on, is replayed,
 * or is refused. */
static void
on_idem_lookup(int found, const struct idem_record *rec, void *arg)
{
	struct gw_req *r = arg;

	if (found == IDEM_OVER_QUOTA) {
		/* This caller alone: its stored keys still replay, and it
		 * gets places back as its keys expire. */
		snprintf(r->idem_msg, sizeof(r->idem_msg), "this caller holds "
		    "%ld Idempotency-Keys already (idempotency.max_keys_per_"
		    "caller); a new key is refused until older ones expire",
		    r->cfg->idempotency.max_keys_per_caller);
		req_reject_keyed(r, 429, "idempotency_quota_exceeded",
		    r->idem_msg, NULL);
		return;
	}
	if (found == -1) {
		req_reject_keyed(r, 503, "idempotency_unavailable",
		    "the idempotency store cannot be read; nothing is "
		    "forwarded", NULL);
		return;
	}
	if (found == 0) {
		/* First use: on as usual, holding the claim.  The fields
		 * change hands before the call, which may end r. */
		char *fields = r->idem_fields;

		r->idem_fields = NULL;
		req_audit_request(r, fields);
		return;
	}
	if (memcmp(rec->digest, r->idem_digest, SHA256_LEN) != 0) {
		req_reject_keyed(r, 422, "idempotency_key_reused",
		    "this Idempotency-Key was used with a different body",
		    rec->request_id);
		return;
	}
	if (rec->state == IDEM_UNKNOWN) {
		snprintf(r->idem_msg, sizeof(r->idem_msg), "the outcome of "
		    "request %s with this Idempotency-Key is unknown (it may "
		    "have been processed); not sent again", rec->request_id);
		req_reject_keyed(r, 409, "idempotency_outcome_unknown",
		    r->idem_msg, rec->request_id);
		return;
	}
	json_object_put(r->details);
	r->details = NULL;
	req_idem_replay(r, rec);
}

/*
 * Claim the key for this body (digest: of the normalized body, made
 * with it by prep.c), synchronously: a duplicate in flight is turned
 * away here, without I/O.  Then read what is stored.
 */
void
req_idem_begin(struct gw_req *r, const unsigned char digest[SHA256_LEN])
{
	memcpy(r->idem_digest, digest, SHA256_LEN);
	switch (idem_begin(r->loop->iport, r->caller->name, r->idem_scoped,
	    r->idem_digest, r->id, &r->idem_claim)) {
	case IDEM_NEW:
		break;
	case IDEM_IN_FLIGHT:
		r->retry_after_s = 1;
		req_reject_keyed(r, 409, "idempotency_in_progress",
		    "a request with this Idempotency-Key is in progress; "
		    "retry later", NULL);
		return;
	case IDEM_IN_FLIGHT_OTHER:
		req_reject_keyed(r, 422, "idempotency_key_reused",
		    "this Idempotency-Key is in use with a different body",
		    NULL);
		return;
	case IDEM_DOWN:
		req_reject_keyed(r, 503, "idempotency_unavailable",
		    "the idempotency store is unavailable; nothing is "
		    "forwarded", NULL);
		return;
	}
	if (idem_lookup(r->idem_claim,
	    (uint64_t)r->cfg->idempotency.max_keys_per_caller,
	    on_idem_lookup, r) == -1)
		req_reject_keyed(r, 503, "idempotency_unavailable",
		    "the idempotency store is unavailable; nothing is "
		    "forwarded", NULL);
}

/*
 * The scope of r's Idempotency-Key in the store: the key itself for
 * individuals.create (as before there were other routes, so stored keys
 * keep their meaning), else "<route>/<param>[/<param>]" US key, so
 * that one key names one call on one route and one client.  The caller
 * is the store's own scope.  US (0x1f) cannot occur in a key
 * (idem_parse_key takes printable ASCII only), so no scoped key
 * equals a plain one.
 */
static char *
req_idem_scope(const struct gw_req *r, const char *key)
{
	char *out;
	size_t i, len, cap = strlen(key) + 128 + ROUTE_MAX_PARAMS *
	    (ROUTE_ID_MAX + 1);

	if (strcmp(r->route->name, "individuals.create") == 0)
		return strdup(key);
	if ((out = malloc(cap)) == NULL)
		return NULL;
	len = (size_t)snprintf(out, cap, "%s", r->route->name);
	for (i = 0; i < r->m.nargs; i++)
		len += (size_t)snprintf(out + len, cap - len, "/%s",
		    r->m.args[i].value);
	snprintf(out + len, cap - len, "\x1f%s", key);
	return out;
}

/*
 * Read the Idempotency-Key header, after auth (keys are per caller).
 * -1 when the request was turned down (and is answered).
 */
int
req_idem_key(struct gw_req *r, struct evkeyvalq *in)
{
	struct evkeyval *h;
	const char *v = NULL;
	char key[IDEM_KEY_MAX + 1];
	int n = 0;

	if (r->loop->iport == NULL || !r->cfg->idempotency.enabled ||
	    !r->route->idempotent)
		return 0;	/* reads: a repeat is harmless; no key */
	TAILQ_FOREACH(h, in, next)
		if (strcasecmp(h->key, "Idempotency-Key") == 0) {
			v = h->value;
			n++;
		}
	if (n == 0) {
		if (!r->cfg->idempotency.required)
			return 0;
		req_reject(r, 400, "idempotency_key_required",
		    "an 'Idempotency-Key' header is required", NULL);
		return -1;
	}
	if (n > 1 || idem_parse_key(v, key) == -1) {
		req_reject(r, 400, "invalid_idempotency_key",
		    "Idempotency-Key must be one header of 1..255 printable "
		    "ASCII characters", NULL);
		return -1;
	}
	if ((r->idem_key = strdup(key)) == NULL ||
	    (r->idem_scoped = req_idem_scope(r, key)) == NULL) {
		req_reply_error(r, 500, "internal_error", "out of memory",
		    NULL);
		return -1;
	}
	return 0;
}
