/*
 * request.c: the life of one caller request, and its forwarding.
 *
 * The front half takes a request from its route match through auth,
 * the route's scope, its path and its body (made ready by prep.c, off
 * the loop when large) to a durable "request" record; the back half
 * waits for the upstream budget, calls CryptoMate, retries what never
 * reached it, and records the outcome before answering.  Each stage
 * hands the next one thing and never calls back up.  Every exit goes
 * through req_reply_*(), which makes the single evhttp_send_* call,
 * writes the access-log line and frees the request: one owner, one
 * place.  The evhttp_request is only borrowed until then; it is never
 * freed here (libevent owns it).  The Idempotency-Key's branch is in
 * request_idem.c, the ownership checks in request_owners.c, the audit
 * records' fields in request_records.c.
 */
#include "request_int.h"
#include "json_strict.h"
#include "loop.h"
#include "reply.h"
#include "audit.h"
#include "budget.h"
#include "caller.h"
#include "conf.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "owners.h"
#include "prep.h"
#include "upstream.h"
#include "util.h"

#include <sys/queue.h>

#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

static void req_free(struct gw_req *);

/*
 * Bytes of request and response bodies held in memory by every request
 * of every loop (limits.max_buffered_bytes).  A body is counted from its
 * head on, before any of it is read (the guard reserves it, guard.c),
 * and its request takes the reservation over when it starts;
 * CryptoMate's answer is counted once the request has it.  All of it is
 * given back when the request is freed.
 */
static _Atomic long long	req_buffered;

long long
request_buffered_bytes(void)
{
	return atomic_load(&req_buffered);
}

bool
request_buffer_reserve(long long cap, size_t n)
{
	if (atomic_fetch_add(&req_buffered, (long long)n) + (long long)n >
	    cap && n > 0) {
		atomic_fetch_sub(&req_buffered, (long long)n);
		return false;
	}
	return true;
}

void
request_buffer_release(size_t n)
{
	if (n > 0)
		atomic_fetch_sub(&req_buffered, (long long)n);
}

/* Count n more bytes held by r; false (nothing counted) when that would
 * pass the cap. */
bool
req_hold(struct gw_req *r, size_t n)
{
	if (!request_buffer_reserve(r->cfg->limits.max_buffered_bytes, n))
		return false;
	r->held += n;
	return true;
}

/* ---- replies: the only exits ------------------------------------- */

/*
 * An access-log line as it is built: bytes past the end are dropped, as
 * snprintf into the same buffer did.  The line is put together by hand:
 * one snprintf with three %.3f was about 9k instructions a request.
 */
struct line {
	char	*s;
	size_t	 len, cap;	/* cap counts the NUL */
};

static void
line_put(struct line *l, const char *p, size_t n)
{
	if (n > l->cap - 1 - l->len)
		n = l->cap - 1 - l->len;
	memcpy(l->s + l->len, p, n);
	l->len += n;
	l->s[l->len] = '\0';
}

static void
line_str(struct line *l, const char *p)
{
	line_put(l, p, strlen(p));
}

static void
line_ulong(struct line *l, unsigned long long v)
{
	char t[FMT_INT_LEN];

	line_put(l, t, fmt_ulong(t, v));
}

static void
line_int(struct line *l, int v)
{
	char t[FMT_INT_LEN];

	line_put(l, t, fmt_long(t, v));
}

static void
line_ms(struct line *l, double v)
{
	char t[FMT_MS3_LEN];
	int n = fmt_ms3(t, v);

	if (n > 0)
		line_put(l, t, (size_t)n < sizeof(t) ? (size_t)n :
		    sizeof(t) - 1);
}

static void
access_log(struct gw_req *r, size_t bytes_out)
{
	char buf[1024], ts[32], caller[80];
	struct line l = { buf, 0, sizeof(buf) };
	const char *line = buf;
	double total = (double)(now_mono_ns() - r->t_start_ns) / 1e6;

	buf[0] = '\0';
	now_iso8601(ts, sizeof(ts));
	if (r->caller == NULL || json_quote(r->caller->name, caller,
	    sizeof(caller)) == -1)
		strcpy(caller, "null");
	line_str(&l, "{\"time\":\"");
	line_str(&l, ts);
	line_str(&l, "\",\"level\":\"info\",\"msg\":\"request\","
	    "\"request_id\":\"");
	line_str(&l, r->id);
	line_str(&l, "\",\"caller\":");
	line_str(&l, caller);
	line_str(&l, ",\"route\":\"");
	line_str(&l, r->route->name);
	line_str(&l, "\",\"status\":");
	line_int(&l, r->status);
	line_str(&l, ",\"upstream_status\":");
	line_int(&l, r->up_status);
	line_str(&l, ",\"upstream_latency_ms\":");
	line_ms(&l, r->up_latency_ms);
	line_str(&l, ",\"total_ms\":");
	line_ms(&l, total);
	line_str(&l, ",\"bytes_in\":");
	line_ulong(&l, r->bytes_in);
	line_str(&l, ",\"bytes_out\":");
	line_ulong(&l, bytes_out);
	line_str(&l, ",\"queue_ms\":");
	line_ms(&l, r->queue_ms);
	if (r->code) {
		line_str(&l, ",\"code\":\"");
		line_str(&l, r->code);
		line_str(&l, "\"");
	}
	if (r->reason) {
		line_str(&l, ",\"reason\":\"");
		line_str(&l, r->reason);
		line_str(&l, "\"");
	}
	line_str(&l, "}");
	if (r->caller != NULL)
		reply_access_log(r->loop, line);
	else
		reply_access_log_unauth(r->loop, line);
	metrics_request(r->loop->metrics, r->route, r->caller ?
	    r->caller->name : NULL, r->status, r->up_status, r->up_latency_ms,
	    r->queue_ms, total);
}

void
req_reply_error(struct gw_req *r, int status, const char *code,
    const char *message, struct json_object *details)
{
	char ra[24];
	size_t sent;

	r->status = status;
	r->code = code;
	if (r->retry_after_s >= 0)
		snprintf(ra, sizeof(ra), "%ld", r->retry_after_s);
	sent = reply_error(r->ev, status, code, message, details, r->id,
	    r->retry_after_s >= 0 ? "Retry-After" : NULL, ra);
	access_log(r, sent);
	req_free(r);
}

/*
 * The audit log cannot record (poisoned, or a record failed): fail
 * closed.  Nothing is forwarded, and no answer implies a record that
 * does not exist.
 */
void
req_audit_failed(struct gw_req *r)
{
	req_reply_error(r, 503, "audit_unavailable",
	    "the audit log cannot record this request; nothing is forwarded",
	    NULL);
}

/*
 * Send the bytes held in r (r->resp, r->resp_ct) with status, after the
 * caller has added its own headers; then log and free.  The one exit
 * for answers the gateway relays or replays rather than makes.
 */
static void
req_reply_bytes(struct gw_req *r, int status)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	struct evbuffer *b = evbuffer_new();

	r->status = status;
	evhttp_add_header(h, "X-Request-Id", r->id);
	if (r->resp_ct && r->resp_ct[0])
		evhttp_add_header(h, "Content-Type", r->resp_ct);
	if (b != NULL)
		evbuffer_add(b, r->resp, r->resp_len);
	reply_send(r->ev, status, b);
	if (b != NULL)
		evbuffer_free(b);
	access_log(r, r->resp_len);
	req_free(r);
}

/* Relay the upstream's answer unchanged: status, body, Content-Type. */
static void
req_reply_upstream(struct gw_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	char ra[24];

	if (r->trace_id)
		evhttp_add_header(h, "X-Trace-Id", r->trace_id);
	if (r->retry_after_s >= 0) {
		snprintf(ra, sizeof(ra), "%ld", r->retry_after_s);
		evhttp_add_header(h, "Retry-After", ra);
	}
	req_reply_bytes(r, r->up_status);
}

/*
 * Answer with bytes held in r (a replay): r->status, r->resp_ct,
 * r->resp.  A replay is the stored response unchanged, marked
 * Idempotent-Replayed.  (A store written by an earlier cmgate may hold
 * the gateway's own validation 422s; they replay the same way.)
 */
void
req_reply_stored(struct gw_req *r)
{
	if (r->idem_replayed)
		evhttp_add_header(evhttp_request_get_output_headers(r->ev),
		    "Idempotent-Replayed", "true");
	req_reply_bytes(r, r->status);
}

static void
req_free(struct gw_req *r)
{
	r->loop->active--;
	TAILQ_REMOVE(&r->loop->reqs, r, entry);
	request_buffer_release(r->held);
	if (r->xfer)
		upstream_cancel(r->xfer);
	budget_cancel(r->loop->budget, &r->bw);
	owners_forget(r->oq);
	if (r->prep != NULL)
		r->prep->owner = NULL;	/* freed when it comes back */
	conf_unref(r->cfg);
	json_object_put(r->details);
	idem_release(r->idem_claim);	/* an unstored key is free again */
	free(r->idem_key);
	free(r->idem_scoped);
	free(r->idem_fields);
	json_object_put(r->body_obj);
	free(r->resp);
	free(r->resp_ct);
	free(r->trace_id);
	free(r);
}

void
request_abort_all(struct gw_loop *loop)
{
	struct gw_req *r;

	while ((r = TAILQ_FIRST(&loop->reqs)) != NULL) {
		log_warn("request %s: abandoned at exit, unanswered", r->id);
		req_free(r);
	}
}

/* ---- refusals ---------------------------------------------------- */

static void
on_reject_durable(bool ok, uint64_t seq, void *arg)
{
	struct gw_req *r = arg;
	struct json_object *details = r->details;

	r->details = NULL;
	if (!ok) {
		json_object_put(details);
		req_audit_failed(r);
		return;
	}
	req_reply_error(r, r->status, r->code, r->message, details);
}

/* The caller's address as evhttp saw it at accept (never a header). */
static void
req_peer(const struct gw_req *r, char *out, size_t outlen)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(out, outlen, "%s", addr != NULL && addr[0] ? addr :
	    "unknown");
}

/*
 * A request the gateway turns down (auth, media type, JSON, fields, a
 * keyed request's refusals): record the reject (field paths, never
 * values), then answer.  original_id: the request that holds its key.
 *
 * A refusal of an unauthenticated request is a record of its own only
 * within a small allowance for the whole process (audit_reject_admit);
 * past it, it is counted into a "reject_summary" record and answered
 * at once, so a stranger cannot grow the log faster than a few KiB a
 * second however fast it sends.  Refusals of a known caller stay
 * records of their own: the caller is accountable for them (and its
 * token can be revoked).
 */
static void
req_refuse(struct gw_req *r, int status, const char *code,
    const char *message, struct json_object *details,
    const char *original_id)
{
	char peer[64], *fields;

	r->status = status;
	r->code = code;
	r->message = message;
	if (r->caller == NULL) {
		req_peer(r, peer, sizeof(peer));
		if (!audit_reject_admit(r->loop->audit, peer, code)) {
			req_reply_error(r, status, code, message, details);
			return;
		}
	}
	/* A keyed request refused before sending keeps its key in the
	 * record; nothing is stored under it. */
	fields = req_fields_reject(r, details, original_id,
	    r->caller == NULL ? peer : NULL);
	/* The details wait until the record is durable. */
	r->details = details;
	if (fields == NULL || audit_submit(r->loop->aport, "reject", fields,
	    on_reject_durable, r) == -1) {
		free(fields);
		r->details = NULL;
		json_object_put(details);
		req_audit_failed(r);
		return;
	}
	free(fields);
}

void
req_reject(struct gw_req *r, int status, const char *code,
    const char *message, struct json_object *details)
{
	req_refuse(r, status, code, message, details, NULL);
}

/* Turn a keyed request down (409, 422, 429, 503): recorded, then
 * answered.  The original request's id goes into the record when
 * known. */
void
req_reject_keyed(struct gw_req *r, int status, const char *code,
    const char *message, const char *original_id)
{
	/* A validation failure's details are not this answer's. */
	json_object_put(r->details);
	r->details = NULL;
	req_refuse(r, status, code, message, NULL, original_id);
}

/* ---- the outcome ------------------------------------------------- */

/* Both the outcome record and the key's store are done: answer. */
void
req_outcome_reply(struct gw_req *r)
{
	if (!r->idem_audit_ok && r->up_status > 0) {
		/* No durable outcome, no answer that implies one; but the
		 * request did reach CryptoMate. */
		req_reply_error(r, 503, "audit_unavailable",
		    "the audit log cannot record CryptoMate's answer; the "
		    "request may have been processed", NULL);
		return;
	}
	if (!r->idem_audit_ok) {
		req_audit_failed(r);
		return;
	}
	if (r->up_status > 0 && r->code == NULL)
		req_reply_upstream(r);
	else
		req_reply_error(r, r->status, r->code, r->message, NULL);
}

static void
on_outcome_durable(bool ok, uint64_t seq, void *arg)
{
	struct gw_req *r = arg;

	r->idem_audit_ok = ok;
	if (--r->idem_wait > 0)
		return;		/* the key's store is not durable yet */
	req_outcome_reply(r);
}

/*
 * The id CryptoMate assigned in a 2xx answer to individuals.create
 * ("client_id") or products.request ("product_request_id"), into out,
 * so that one client's history can be followed through the log; its
 * member's name in *name.  Only an id that passes the path rules is
 * taken: it is an identifier, never free text.  NULL otherwise.
 */
static const char *
req_assigned_id(const struct gw_req *r, const char **name, char *out,
    size_t outlen)
{
	struct json_object *o = NULL, *id;
	struct verrors errs = { 0 };
	const char *v, *got = NULL;

	if (strcmp(r->route->name, "individuals.create") == 0)
		*name = "client_id";
	else if (strcmp(r->route->name, "products.request") == 0)
		*name = "product_request_id";
	else
		return NULL;
	if (r->code != NULL || r->up_status < 200 || r->up_status > 299 ||
	    r->resp == NULL)
		return NULL;
	o = json_parse_strict(r->resp, r->resp_len,
	    r->cfg->limits.max_json_depth, &errs);
	verrors_free(&errs);
	if (o != NULL && json_object_object_get_ex(o, "id", &id) &&
	    json_object_is_type(id, json_type_string)) {
		v = json_object_get_string(id);
		if (kyc_id_ok(v, strlen(v)) && strlen(v) < outlen) {
			memcpy(out, v, strlen(v) + 1);
			got = out;
		}
	}
	json_object_put(o);
	return got;
}

/*
 * Record what became of r, then answer.  The key's store, the owner
 * change and the record run in parallel; the answer waits for all
 * (durable before it is sent).
 */
void
req_record_outcome(struct gw_req *r)
{
	char idbuf[ROUTE_ID_MAX + 1], *fields;
	const char *name = NULL, *aid;

	aid = req_assigned_id(r, &name, idbuf, sizeof(idbuf));
	fields = req_fields_outcome(r, name, aid);
	r->idem_wait = 1;
	r->idem_audit_ok = false;
	if (req_idem_store_outcome(r) == 0)
		r->idem_wait++;
	if (req_owner_change(r, aid != NULL && strcmp(name, "client_id") ==
	    0 ? aid : NULL) == 0)
		r->idem_wait++;
	/* A log that refuses the record (or a record that could not be
	 * made) counts as its (failed) callback: the answer still waits
	 * for the store and the owner change, which hold r. */
	if (fields == NULL || audit_submit(r->loop->aport, "outcome", fields,
	    on_outcome_durable, r) == -1)
		on_outcome_durable(false, 0, r);
	free(fields);
}

/* ---- upstream --------------------------------------------------- */

/* How long the budget stops after a request that never left (connect
 * refused, DNS): CryptoMate is unreachable for everyone, so nobody
 * gains by trying again at once.  The retries of one request stop when
 * upstream.retry_unsent_ms has passed since its first try. */
#define REQ_NOT_SENT_PAUSE_MS	250L

/*
 * All forwarding pauses: say so in the log ("pause": its length and
 * cause), for the compliance report's upstream health.  No answer
 * waits for it, so it is written with the pass's other records and no
 * callback; a log that cannot take it (or a record that could not be
 * made) fails the request's outcome record anyway.
 */
static void
req_record_pause(struct gw_req *r, long delay_ms)
{
	char *fields = req_fields_pause(r, delay_ms);

	if (fields != NULL)
		(void)audit_submit(r->loop->aport, "pause", fields, NULL,
		    NULL);
	free(fields);
}

/*
 * CryptoMate's 429 and a request that never left were not processed
 * upstream.  With the budget on, a 429 pauses all sending for its
 * Retry-After (the block is company-wide, not per caller), and the
 * request goes back to the head of its caller's queue if its
 * max_queue_wait_ms allows; a request that never left does the same
 * after a short pause, but only within upstream.retry_unsent_ms of its
 * first try (then it is a 502 at once: a closed port must not hold the
 * caller for the whole queue wait).  true when it was queued again.
 * A request that may have reached CryptoMate (a timeout or a broken
 * answer after sending) is never sent again: it comes back as 504 or
 * 502.
 */
static bool
req_retry(struct gw_req *r, const struct up_result *res)
{
	struct budget *b = r->loop->budget;
	long delay_ms;

	if (!budget_enabled(b))
		return false;
	if (res->error == UP_OK && res->status == 429) {
		delay_ms = (res->retry_after_s >= 0 ? res->retry_after_s : 1) *
		    1000;
		budget_pause(b, delay_ms);
		r->not_sent = false;
	} else if (res->error == UP_NOT_SENT) {
		uint64_t now = now_mono_ns(), end = r->t_sent_ns +
		    (uint64_t)r->cfg->upstream.retry_unsent_ms * 1000000;

		if (now >= end)
			return false;
		delay_ms = (long)((end - now) / 1000000);
		if (delay_ms > REQ_NOT_SENT_PAUSE_MS)
			delay_ms = REQ_NOT_SENT_PAUSE_MS;
		budget_pause(b, delay_ms);
		r->not_sent = true;
	} else
		return false;
	if (budget_requeue(b, &r->bw, r->cfg, r->caller, delay_ms) == -1)
		return false;
	req_record_pause(r, delay_ms);
	if (r->not_sent)
		log_warn("request %s: upstream not reached (%s); queued again",
		    r->id, res->error_text);
	else
		log_warn("request %s: upstream answered 429 (Retry-After %ld "
		    "s); queued again", r->id, res->retry_after_s);
	return true;
}

static void
on_upstream_done(const struct up_result *res, void *arg)
{
	struct gw_req *r = arg;

	r->xfer = NULL;
	r->up_latency_ms = res->latency_ms;
	if (req_retry(r, res))
		return;
	switch (res->error) {
	case UP_OK:
		r->up_status = (int)res->status;
		r->error_class = res->status >= 500 ? EC_UPSTREAM_ERROR :
		    res->status == 429 ? EC_RATE_LIMITED : EC_NONE;
		r->retry_after_s = res->retry_after_s;
		if (res->body_len > 0 && (!req_hold(r, res->body_len) ||
		    (r->resp = malloc(res->body_len)) == NULL)) {
			/* No room to hold the answer: it came, but cannot
			 * be relayed (an empty 2xx would lie); the request
			 * may have been processed. */
			r->error_class = EC_UPSTREAM_ERROR;
			r->status = 503;
			r->code = "busy";
			r->message = "the gateway holds "
			    "limits.max_buffered_bytes of bodies; the request "
			    "may have been processed";
			break;
		}
		if (res->body_len > 0) {
			memcpy(r->resp, res->body, res->body_len);
			r->resp_len = res->body_len;
		}
		r->resp_ct = strdup(res->content_type ? res->content_type :
		    "application/json");
		if (res->trace_id)
			r->trace_id = strdup(res->trace_id);
		break;
	case UP_NOT_SENT:
		r->error_class = EC_NOT_SENT;
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = "CryptoMate could not be reached";
		break;
	case UP_TIMEOUT:
		r->error_class = EC_TIMEOUT;
		r->status = 504;
		r->code = "upstream_timeout";
		r->message = "CryptoMate did not answer in time; the request "
		    "may have been processed";
		break;
	case UP_BAD_STATUS:
		r->error_class = EC_UPSTREAM_ERROR;
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = "CryptoMate's answer had no final HTTP status";
		break;
	case UP_TOO_LARGE:
	case UP_FAILED:
		r->error_class = EC_UPSTREAM_ERROR;
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = res->error == UP_TOO_LARGE ?
		    "CryptoMate's answer was too large" :
		    "CryptoMate's answer was broken off";
		break;
	}
	if (res->error != UP_OK)
		log_warn("request %s: upstream: %s", r->id, res->error_text);
	if (req_filter_list(r) == 0)
		return;		/* req_record_outcome() once filtered */
	req_record_outcome(r);
}

/* The budget's token is taken: send. */
static void
req_send(struct gw_req *r)
{
	struct up_call c = {
		.method = r->route->method,
		.path = r->m.upstream_path,
		.body = r->body,
		.len = r->body_len,
		.request_id = r->id,
		.max_response = r->route->list ?
		    (size_t)r->cfg->upstream.max_list_response_bytes : 0,
	};

	r->queue_ms = budget_waited_ms(&r->bw);
	if (r->t_sent_ns == 0)
		r->t_sent_ns = now_mono_ns();
	r->xfer = upstream_send(r->loop->up, &c, on_upstream_done, r);
	if (r->xfer == NULL && errno == EBUSY) {
		/* upstream.max_inflight calls are already out: a load limit,
		 * not a broken upstream. */
		r->error_class = EC_NOT_SENT;
		r->status = 503;
		r->code = "upstream_busy";
		r->message = "too many upstream calls in flight; retry shortly";
		r->retry_after_s = 1;
		req_record_outcome(r);
	} else if (r->xfer == NULL) {
		r->error_class = EC_NOT_SENT;
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = "the gateway could not start the upstream call";
		req_record_outcome(r);
	}
}

/* Turned away by the budget: never forwarded; recorded, then a 429. */
static void
req_rate_limited(struct gw_req *r, long retry_after_s)
{
	r->error_class = EC_RATE_LIMITED;
	r->status = 429;
	r->code = "rate_limited";
	r->message = "the upstream budget is spent; the request was not "
	    "sent: retry after Retry-After seconds";
	r->retry_after_s = retry_after_s;
	req_record_outcome(r);
}

static void
on_budget(void *arg, bool go, long retry_after_s)
{
	struct gw_req *r = arg;

	r->queue_ms = budget_waited_ms(&r->bw);
	if (go) {
		req_send(r);
		return;
	}
	if (r->not_sent) {
		/* Its time ran out while CryptoMate was unreachable. */
		r->error_class = EC_NOT_SENT;
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = "CryptoMate could not be reached";
		req_record_outcome(r);
		return;
	}
	req_rate_limited(r, retry_after_s);
}

/*
 * Between the durable "request" record and the upstream call, the
 * request waits for a token of the upstream budget (budget.c): sent at
 * once, queued, or turned away with 429 when the wait would be too long.
 */
static void
req_forward(struct gw_req *r)
{
	long ra = -1;

	switch (budget_acquire(r->loop->budget, &r->bw, r->cfg, r->caller,
	    on_budget, r, &ra)) {
	case BUDGET_GO:
		req_send(r);
		break;
	case BUDGET_QUEUED:
		break;
	case BUDGET_REJECT:
		req_rate_limited(r, ra);
		break;
	}
}

static void
on_request_durable(bool ok, uint64_t seq, void *arg)
{
	struct gw_req *r = arg;

	if (!ok) {
		req_audit_failed(r);
		return;
	}
	req_forward(r);
}

/* Submit r's "request" record (fields: freed here; NULL when it could
 * not be made); r goes on to the budget once the record is durable. */
void
req_audit_request(struct gw_req *r, char *fields)
{
	if (fields == NULL || audit_submit(r->loop->aport, "request", fields,
	    on_request_durable, r) == -1) {
		free(fields);
		req_audit_failed(r);
		return;
	}
	free(fields);
}

/* ---- the front half ---------------------------------------------- */

/*
 * application/json, any case, with parameters; a charset parameter, if
 * any, must name UTF-8 (RFC 8259 JSON is UTF-8, and the body is checked
 * as such: a caller that says latin1 is told, not misread).
 */
static int
content_type_is_json(const char *ct)
{
	const char *p, *v;
	size_t n;

	if (ct == NULL)
		return 0;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, "; \t");
	if (n != 16 || strncasecmp(ct, "application/json", 16) != 0)
		return 0;
	p = ct + n + strspn(ct + n, " \t");
	while (*p == ';') {
		p += 1 + strspn(p + 1, " \t");
		n = strcspn(p, "=; \t");
		if (n != 7 || strncasecmp(p, "charset", 7) != 0) {
			p += strcspn(p, ";");
			continue;
		}
		/* charset=utf-8 or charset="utf-8", nothing else: no
		 * space around "=", quotes in pairs. */
		if (p[n] != '=')
			return 0;
		v = p + n + 1;
		if (*v == '"' && strncasecmp(v + 1, "utf-8", 5) == 0 &&
		    v[6] == '"')
			v += 7;
		else if (*v != '"' && strncasecmp(v, "utf-8", 5) == 0)
			v += 5;
		else
			return 0;
		p = v + strspn(v, " \t");
		if (*p != ';' && *p != '\0')
			return 0;
	}
	return *p == '\0';
}

static struct json_object *
details_from(const struct verrors *e)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < e->n; i++) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "field",
		    json_object_new_string(e->v[i].field));
		json_object_object_add(o, "message",
		    json_object_new_string(e->v[i].message));
		json_object_array_add(a, o);
	}
	return a;
}

/* The Content-Length the caller declared, 0 when none. */
static long long
req_declared_length(struct evkeyvalq *in)
{
	const char *cl = evhttp_find_header(in, "Content-Length");

	return cl != NULL ? strtoll(cl, NULL, 10) : 0;
}

/* What the validators take, with today's UTC date.  The subproducts
 * stay r->cfg's, which r holds a reference to. */
static void
req_vctx(const struct gw_req *r, struct route_vctx *c)
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	memset(c, 0, sizeof(*c));
	c->vo.min_age_years = r->cfg->validation.min_age_years;
	c->vo.max_depth = r->cfg->limits.max_json_depth;
	c->vo.max_string_length = r->cfg->limits.max_string_length;
	c->vo.today_y = tm.tm_year + 1900;
	c->vo.today_m = tm.tm_mon + 1;
	c->vo.today_d = tm.tm_mday;
	c->ko.subproducts = (const char *const *)
	    r->cfg->validation.subproducts.v;
	c->ko.nsubproducts = r->cfg->validation.subproducts.n;
	c->ko.max_image_bytes = (size_t)r->cfg->validation.max_image_bytes;
}

void
request_start(struct gw_loop *loop, struct evhttp_request *ev,
    const struct route_match *m, const struct verrors *path_errs,
    bool has_query, size_t held)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
	struct gw_req *r;
	size_t need;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		request_buffer_release(held);
		reply_error(ev, 500, "internal_error", "out of memory",
		    NULL, "", NULL, NULL);
		return;
	}
	r->held = held;		/* counted already (the guard's reservation) */
	loop->active++;
	TAILQ_INSERT_TAIL(&loop->reqs, r, entry);
	r->loop = loop;
	r->cfg = conf_ref(loop->cfg);
	r->ev = ev;
	r->m = *m;
	r->route = r->m.route;
	r->t_start_ns = now_mono_ns();
	r->retry_after_s = -1;
	r->bytes_in = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
	if (request_id(r->id) == -1) {
		req_reply_error(r, 500, "internal_error",
		    "no randomness for a request id", NULL);
		return;
	}
	if (!audit_healthy(loop->audit)) {
		req_audit_failed(r);
		return;
	}
	/* A body counts twice at most while it is made ready (raw and
	 * normalized); answered 503 rather than risk running out of
	 * memory.  The guard reserved that much at the head (held), so
	 * this counts only what it could not (none, as a rule). */
	need = REQUEST_BODY_HOLD(r->bytes_in);
	if (!req_hold(r, need > r->held ? need - r->held : 0)) {
		r->retry_after_s = 1;
		req_reply_error(r, 503, "busy", "the gateway holds "
		    "limits.max_buffered_bytes of bodies; retry shortly", NULL);
		return;
	}
	/* Refusals come in this order: who is asking (401), may it use
	 * this route (403), the path's parameters (422), then the request
	 * itself and its body.  Two Authorization headers are no
	 * credential: neither wins. */
	if ((r->caller = caller_auth(r->cfg,
	    reply_sole_header(in, "Authorization"))) == NULL) {
		req_reject(r, 401, "unauthenticated",
		    "a valid 'Authorization: Bearer <token>' is required", NULL);
		return;
	}
	if (!route_allowed(r->caller, r->route)) {
		snprintf(r->msgbuf, sizeof(r->msgbuf), "caller '%s' may not "
		    "use route %s", r->caller->name, r->route->name);
		metrics_forbidden(loop->metrics, r->caller->name, r->route,
		    "forbidden_route");
		r->reason = "forbidden_route";
		req_reject(r, 403, "forbidden", r->msgbuf, NULL);
		return;
	}
	if (path_errs != NULL && path_errs->n > 0) {
		req_reject(r, 422, "validation_failed",
		    "the path has invalid parameters", details_from(path_errs));
		return;
	}
	if (has_query) {
		req_reject(r, 400, "bad_request", "this route takes no query "
		    "string", NULL);
		return;
	}
	if (r->route->names_client && !r->caller->clients_all) {
		/* The rest waits for the owner (store thread). */
		req_check_owner(r);
		return;
	}
	req_continue(r);
}

/* Bodies from this size on are made ready off the loop (offload.h). */
#define REQ_OFFLOAD_MIN		(64 * 1024)

/*
 * The body is ready (or there is none): refuse it, or record the
 * request and go on.  Owns p's results (p itself stays the caller's).
 */
static void
req_prepared(struct gw_req *r, struct prep *p)
{
	char *fields;

	if (p->failed) {
		req_reply_error(r, 500, "internal_error", "out of memory",
		    NULL);
		return;
	}
	if (p->vr == V_INVALID_JSON) {
		req_reject(r, 400, "invalid_json",
		    "the body is not a valid JSON object",
		    details_from(&p->errs));
		return;
	}
	if (p->vr == V_INVALID) {
		struct json_object *d = details_from(&p->errs);
		metrics_validation_failed(r->loop->metrics, &p->errs);
		/* Even under an Idempotency-Key: a request refused before
		 * it was sent stores nothing (Stripe's rule), since a retry
		 * gets the same answer anyway; storing it would let a caller
		 * fill the store with bodies that were never sent. */
		req_reject(r, 422, "validation_failed",
		    "the body has invalid fields", d);
		return;
	}
	r->body = p->body;		/* the tree owns its bytes */
	r->body_len = p->body_len;
	r->body_obj = p->norm;
	p->norm = NULL;
	p->body = NULL;
	fields = req_fields_request(r, p->bodym);
	if (fields != NULL && r->idem_key != NULL) {
		/* The request record waits for the key's lookup: a replay
		 * or a refusal is recorded as such instead. */
		r->idem_fields = fields;
		req_idem_begin(r, p->digest);
		return;
	}
	req_audit_request(r, fields);
}

/* Offload thread. */
static void
prep_work(struct offload_job *j)
{
	prep_run((struct prep *)(void *)j);
}

/* Back on the loop (or dropped at exit): the request may be gone. */
static void
on_prepared(struct offload_job *j, bool dropped)
{
	struct prep *p = (struct prep *)(void *)j;
	struct gw_req *r = p->owner;

	if (r != NULL) {
		r->prep = NULL;
		if (!dropped)
			req_prepared(r, p);
		else	/* offload_free took it unrun, its loop still up */
			req_reply_error(r, 503, "shutting_down",
			    "the gateway is shutting down", NULL);
	}
	prep_clear(p);		/* releases p->cfg */
	free(p);
}

/* The caller may reach this client: on with the request itself. */
void
req_continue(struct gw_req *r)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->ev);
	struct evbuffer *buf = evhttp_request_get_input_buffer(r->ev);
	struct prep inl, *p = &inl;

	if (req_idem_key(r, in) == -1)
		return;
	memset(&inl, 0, sizeof(inl));
	inl.route = r->route;
	inl.audit = r->loop->audit;
	inl.want_digest = r->idem_key != NULL;
	if (r->route->body == RB_NONE) {
		if (r->bytes_in > 0 || req_declared_length(in) != 0) {
			req_reject(r, 400, "bad_request", "this route takes "
			    "no request body", NULL);
			return;
		}
		goto nobody;
	}
	if (r->route->body == RB_EMPTY_OK && r->bytes_in == 0)
		goto nobody;	/* forwarded with an empty body */
	if (!content_type_is_json(evhttp_find_header(in, "Content-Type"))) {
		req_reject(r, 415, "unsupported_media_type",
		    "Content-Type must be application/json", NULL);
		return;
	}
	req_vctx(r, &inl.ctx);
	if (r->bytes_in >= REQ_OFFLOAD_MIN && r->loop->oport != NULL &&
	    (p = malloc(sizeof(*p))) != NULL &&
	    (*p = inl, p->in = evbuffer_new()) != NULL &&
	    evbuffer_add_buffer(p->in, buf) == 0) {
		/* The bytes move to the job (no copy); the loop goes on.
		 * ctx points into r->cfg, and r can go before the job. */
		p->cfg = conf_ref(r->cfg);
		p->owner = r;
		p->job.work = prep_work;
		p->job.done = on_prepared;
		r->prep = p;
		offload_send(r->loop->oport, &p->job);
		return;
	}
	if (p != NULL && p != &inl) {	/* NULL: its malloc failed */
		prep_clear(p);
		free(p);
	}
	p = &inl;
	inl.raw = (const char *)evbuffer_pullup(buf, -1);
	inl.raw_len = r->bytes_in;
	prep_run(&inl);
	req_prepared(r, &inl);
	prep_clear(&inl);
	return;
nobody:
	/* Nothing to validate: the record says so ("body_digest":null),
	 * and a key covers the empty body. */
	inl.vr = V_OK;
	if ((inl.bodym = audit_body_member_str(r->loop->audit, NULL, NULL,
	    0)) == NULL || (inl.want_digest && sha256("", 0,
	    inl.digest) == -1))
		inl.failed = true;
	req_prepared(r, &inl);
	prep_clear(&inl);
}

