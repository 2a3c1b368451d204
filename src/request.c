/*
 * request.c: the life of one caller request.
 *
 * Each stage hands the next one thing and never calls back up.  Every
 * exit goes through req_reply_*(), which makes the single evhttp_send_*
 * call, writes the access-log line and frees the request: one owner,
 * one place.  The evhttp_request is only borrowed until then; it is
 * never freed here (libevent owns it).
 */
#include "request.h"
#include "audit.h"
#include "caller.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "upstream.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

const struct route routes[] = {
	{ "POST", "/management/clients/individuals",
	  "/management/clients/individuals", validate_individual },
};
const size_t nroutes = sizeof(routes) / sizeof(routes[0]);

struct gw_req {
	struct gw_loop		*loop;
	struct config		*cfg;		/* reference held */
	struct evhttp_request	*ev;		/* borrowed until the reply */
	const struct route	*route;
	const struct conf_caller *caller;	/* points into cfg */
	char			 id[33];
	char			*body;		/* normalized JSON */
	size_t			 body_len;
	size_t			 bytes_in;
	struct up_xfer		*xfer;
	uint64_t		 t_start_ns;
	double			 queue_ms;
	/* The upstream answer, held until its outcome record is durable. */
	int			 up_status;	/* 0 = none */
	double			 up_latency_ms;
	char			*resp;
	size_t			 resp_len;
	char			*resp_ct;
	char			*trace_id;
	/* Our answer when the gateway itself decides it. */
	int			 status;
	const char		*code;
	const char		*message;
	const char		*error_class;
	long			 retry_after_s;
	struct json_object	*details;	/* field errors, until sent */
};

static void req_free(struct gw_req *);

/* ---- replies: the only exits ------------------------------------- */

static void
access_log(struct gw_req *r, size_t bytes_out)
{
	char line[1024], ts[32], caller[80];
	double total = (double)(now_mono_ns() - r->t_start_ns) / 1e6;

	now_iso8601(ts, sizeof(ts));
	if (r->caller == NULL || json_quote(r->caller->name, caller,
	    sizeof(caller)) == -1)
		strcpy(caller, "null");
	snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"info\","
	    "\"msg\":\"request\",\"request_id\":\"%s\",\"caller\":%s,"
	    "\"route\":\"%s %s\",\"status\":%d,\"upstream_status\":%d,"
	    "\"upstream_latency_ms\":%.3f,\"total_ms\":%.3f,"
	    "\"bytes_in\":%zu,\"bytes_out\":%zu,\"queue_ms\":%.3f%s%s%s}",
	    ts, r->id, caller, r->route->method, r->route->path, r->status,
	    r->up_status, r->up_latency_ms, total, r->bytes_in, bytes_out,
	    r->queue_ms, r->code ? ",\"code\":\"" : "",
	    r->code ? r->code : "", r->code ? "\"" : "");
	log_json(line);
	metrics_request(r->loop->metrics, r->route, r->caller ?
	    r->caller->name : NULL, r->status, r->up_status, r->up_latency_ms,
	    r->queue_ms, total);
}

static void
req_reply_error(struct gw_req *r, int status, const char *code,
    const char *message, struct json_object *details)
{
	char ra[24];

	r->status = status;
	r->code = code;
	if (r->retry_after_s >= 0)
		snprintf(ra, sizeof(ra), "%ld", r->retry_after_s);
	server_send_error(r->ev, status, code, message, details, r->id,
	    r->retry_after_s >= 0 ? "Retry-After" : NULL, ra);
	access_log(r, 0);
	req_free(r);
}

/* Relay the upstream's answer unchanged: status, body, Content-Type. */
static void
req_reply_upstream(struct gw_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	struct evbuffer *b = evbuffer_new();
	char ra[24];

	r->status = r->up_status;
	evhttp_add_header(h, "X-Request-Id", r->id);
	if (r->resp_ct)
		evhttp_add_header(h, "Content-Type", r->resp_ct);
	if (r->trace_id)
		evhttp_add_header(h, "X-Trace-Id", r->trace_id);
	if (r->retry_after_s >= 0) {
		snprintf(ra, sizeof(ra), "%ld", r->retry_after_s);
		evhttp_add_header(h, "Retry-After", ra);
	}
	if (b != NULL)
		evbuffer_add(b, r->resp, r->resp_len);
	server_send(r->ev, r->up_status, b);
	if (b != NULL)
		evbuffer_free(b);
	access_log(r, r->resp_len);
	req_free(r);
}

static void
req_free(struct gw_req *r)
{
	r->loop->active--;
	if (r->xfer)
		upstream_cancel(r->xfer);
	conf_unref(r->cfg);
	json_object_put(r->details);
	free(r->body);
	free(r->resp);
	free(r->resp_ct);
	free(r->trace_id);
	free(r);
}

/* ---- audit glue ------------------------------------------------- */

static void
on_reject_durable(bool ok, uint64_t seq, void *arg)
{
	struct gw_req *r = arg;
	struct json_object *details = r->details;

	r->details = NULL;
	if (!ok) {
		json_object_put(details);
		req_reply_error(r, 503, "audit_unavailable",
		    "the audit log cannot record this request", NULL);
		return;
	}
	req_reply_error(r, r->status, r->code, r->message, details);
}

/*
 * A request the gateway turns down (auth, media type, JSON, fields):
 * record the reject (field paths, never values), then answer.
 */
static void
req_reject(struct gw_req *r, int status, const char *code,
    const char *message, struct json_object *details)
{
	struct json_object *paths = json_object_new_array();
	char caller[80], *fields = NULL;
	const char *pj;
	size_t i, n, flen;

	r->status = status;
	r->code = code;
	r->message = message;
	n = details ? json_object_array_length(details) : 0;
	for (i = 0; i < n; i++) {
		struct json_object *f = NULL;
		json_object_object_get_ex(json_object_array_get_idx(details,
		    i), "field", &f);
		json_object_array_add(paths, json_object_get(f));
	}
	pj = json_object_to_json_string_ext(paths, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (r->caller == NULL || json_quote(r->caller->name, caller,
	    sizeof(caller)) == -1)
		strcpy(caller, "null");
	flen = strlen(pj) + 512;
	if ((fields = malloc(flen)) != NULL)
		snprintf(fields, flen, "\"request_id\":\"%s\",\"caller\":%s,"
		    "\"route\":\"%s %s\",\"client_status\":%d,\"code\":\"%s\","
		    "\"fields\":%s", r->id, caller, r->route->method,
		    r->route->path, status, code, pj);
	json_object_put(paths);
	/* The details wait until the record is durable. */
	r->details = details;
	if (fields == NULL || audit_submit(r->loop->aport, "reject", fields,
	    on_reject_durable, r) == -1) {
		free(fields);
		r->details = NULL;
		json_object_put(details);
		req_reply_error(r, 503, "audit_unavailable",
		    "the audit log cannot record this request", NULL);
		return;
	}
	free(fields);
}

static void
on_outcome_durable(bool ok, uint64_t seq, void *arg)
{
	struct gw_req *r = arg;

	if (!ok) {
		/* No durable outcome, no answer that implies one. */
		req_reply_error(r, 503, "audit_unavailable",
		    "the audit log cannot record the outcome", NULL);
		return;
	}
	if (r->up_status > 0 && r->code == NULL)
		req_reply_upstream(r);
	else
		req_reply_error(r, r->status, r->code, r->message, NULL);
}

static void
record_outcome(struct gw_req *r)
{
	char fields[768], caller[80], digest[2 * SHA256_LEN + 1];
	unsigned char h[SHA256_LEN];
	int client_status = r->code ? r->status : r->up_status;

	if (sha256(r->resp ? r->resp : "", r->resp_len, h) == -1)
		memset(h, 0, sizeof(h));
	hex_encode(h, sizeof(h), digest);
	if (json_quote(r->caller->name, caller, sizeof(caller)) == -1)
		strcpy(caller, "null");
	snprintf(fields, sizeof(fields), "\"request_id\":\"%s\",\"caller\":%s,"
	    "\"upstream_status\":%d,\"latency_ms\":%.3f,\"error_class\":\"%s\","
	    "\"response_digest\":\"%s\",\"client_status\":%d", r->id, caller,
	    r->up_status, r->up_latency_ms, r->error_class, digest,
	    client_status);
	if (audit_submit(r->loop->aport, "outcome", fields,
	    on_outcome_durable, r) == -1)
		req_reply_error(r, 503, "audit_unavailable",
		    "the audit log cannot record the outcome", NULL);
}

/* ---- upstream --------------------------------------------------- */

static void
on_upstream_done(const struct up_result *res, void *arg)
{
	struct gw_req *r = arg;

	r->xfer = NULL;
	r->up_latency_ms = res->latency_ms;
	switch (res->error) {
	case UP_OK:
		r->up_status = (int)res->status;
		r->error_class = res->status >= 500 ? "upstream_error" :
		    res->status == 429 ? "rate_limited" : "none";
		r->retry_after_s = res->retry_after_s;
		if (res->body_len > 0 &&
		    (r->resp = malloc(res->body_len)) != NULL) {
			memcpy(r->resp, res->body, res->body_len);
			r->resp_len = res->body_len;
		}
		r->resp_ct = strdup(res->content_type ? res->content_type :
		    "application/json");
		break;
	case UP_NOT_SENT:
		r->error_class = "not_sent";
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = "CryptoMate could not be reached";
		break;
	case UP_TIMEOUT:
		r->error_class = "timeout";
		r->status = 504;
		r->code = "upstream_timeout";
		r->message = "CryptoMate did not answer in time; the request "
		    "may have been processed";
		break;
	case UP_TOO_LARGE:
	case UP_FAILED:
		r->error_class = "upstream_error";
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = res->error == UP_TOO_LARGE ?
		    "CryptoMate's answer was too large" :
		    "CryptoMate's answer was broken off";
		break;
	}
	if (res->error != UP_OK)
		log_warn("request %s: upstream: %s", r->id, res->error_text);
	record_outcome(r);
}

static void
req_forward(struct gw_req *r)
{
	r->xfer = upstream_post(r->loop->up, r->route->upstream_path,
	    r->body, r->body_len, r->id, NULL, on_upstream_done, r);
	if (r->xfer == NULL) {
		r->error_class = "not_sent";
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = "the gateway could not start the upstream call";
		record_outcome(r);
	}
}

static void
on_request_durable(bool ok, uint64_t seq, void *arg)
{
	struct gw_req *r = arg;

	if (!ok) {
		req_reply_error(r, 503, "audit_unavailable",
		    "the audit log cannot record this request", NULL);
		return;
	}
	req_forward(r);
}

/* ---- the front half ---------------------------------------------- */

static int
content_type_is_json(const char *ct)
{
	size_t n;

	if (ct == NULL)
		return 0;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, "; \t");
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0 &&
	    (ct[n] == '\0' || ct[n + strspn(ct + n, " \t")] == ';' ||
	    ct[n + strspn(ct + n, " \t")] == '\0');
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

void
request_start(struct gw_loop *loop, struct evhttp_request *ev,
    const struct route *route)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
	struct evbuffer *buf = evhttp_request_get_input_buffer(ev);
	struct json_object *norm = NULL;
	struct verrors errs = { 0 };
	struct vopts vo;
	struct gw_req *r;
	enum vresult vr;
	const char *s, *raw;
	char *fields = NULL, *bodym = NULL;
	struct tm tm;
	time_t now;
	size_t flen;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		server_send_error(ev, 500, "internal_error", "out of memory",
		    NULL, "", NULL, NULL);
		return;
	}
	loop->active++;
	r->loop = loop;
	r->cfg = conf_ref(loop->cfg);
	r->ev = ev;
	r->route = route;
	r->t_start_ns = now_mono_ns();
	r->retry_after_s = -1;
	r->bytes_in = evbuffer_get_length(buf);
	if (random_id(r->id) == -1) {
		req_reply_error(r, 500, "internal_error",
		    "no randomness for a request id", NULL);
		return;
	}
	if (!audit_healthy(loop->audit)) {
		req_reply_error(r, 503, "audit_unavailable",
		    "the audit log is unavailable; nothing is forwarded", NULL);
		return;
	}
	if ((r->caller = caller_auth(r->cfg,
	    evhttp_find_header(in, "Authorization"))) == NULL) {
		req_reject(r, 401, "unauthenticated",
		    "a valid 'Authorization: Bearer <token>' is required", NULL);
		return;
	}
	if (!content_type_is_json(evhttp_find_header(in, "Content-Type"))) {
		req_reject(r, 415, "unsupported_media_type",
		    "Content-Type must be application/json", NULL);
		return;
	}

	now = time(NULL);
	gmtime_r(&now, &tm);
	vo.min_age_years = r->cfg->validation.min_age_years;
	vo.max_depth = r->cfg->limits.max_json_depth;
	vo.max_string_length = r->cfg->limits.max_string_length;
	vo.today_y = tm.tm_year + 1900;
	vo.today_m = tm.tm_mon + 1;
	vo.today_d = tm.tm_mday;
	raw = (const char *)evbuffer_pullup(buf, -1);
	vr = route->validate(raw ? raw : "", r->bytes_in, &vo, &norm, &errs);
	if (vr == V_INVALID_JSON) {
		struct json_object *d = details_from(&errs);
		verrors_free(&errs);
		req_reject(r, 400, "invalid_json",
		    "the body is not a valid JSON object", d);
		return;
	}
	if (vr == V_INVALID) {
		struct json_object *d = details_from(&errs);
		metrics_validation_failed(loop->metrics, &errs);
		verrors_free(&errs);
		req_reject(r, 422, "validation_failed",
		    "the body has invalid fields", d);
		return;
	}
	verrors_free(&errs);

	s = json_object_to_json_string_length(norm, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &r->body_len);
	r->body = s ? strndup(s, r->body_len) : NULL;
	bodym = audit_body_member(loop->audit, norm);
	json_object_put(norm);
	if (r->body == NULL || bodym == NULL) {
		free(bodym);
		req_reply_error(r, 500, "internal_error", "out of memory",
		    NULL);
		return;
	}
	flen = strlen(bodym) + 512;
	if ((fields = malloc(flen)) != NULL)
		snprintf(fields, flen, "\"request_id\":\"%s\",\"caller\":\"%s\","
		    "\"route\":\"%s %s\",%s", r->id, r->caller->name,
		    route->method, route->path, bodym);
	free(bodym);
	if (fields == NULL || audit_submit(loop->aport, "request", fields,
	    on_request_durable, r) == -1) {
		free(fields);
		req_reply_error(r, 503, "audit_unavailable",
		    "the audit log cannot record this request", NULL);
		return;
	}
	free(fields);
}
