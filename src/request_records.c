/*
 * request_records.c: the fields of a request's audit records, one
 * builder per type (request, reject, outcome, replay, pause).
 *
 * A record is built in a buffer that grows to fit, member by member;
 * every string goes through json_quote(), so an identifier, a caller
 * name and an Idempotency-Key are quoted one way.  A record is whole
 * or it is not at all: a member that cannot be written (out of memory,
 * a string json_quote() refuses) makes the builder return NULL, which
 * its caller handles as it would a submit the log refused.  No builder
 * submits or answers: request.c and request_idem.c decide that.
 */
#include "request_int.h"
#include "conf.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static const char *const error_class_name[] = {
	[EC_NONE] = "none",
	[EC_NOT_SENT] = "not_sent",
	[EC_TIMEOUT] = "timeout",
	[EC_UPSTREAM_ERROR] = "upstream_error",
	[EC_RATE_LIMITED] = "rate_limited",
};

/* A record's fields as they are built; failed once anything did not
 * fit, and then every later call does nothing. */
struct rec {
	char	*s;
	size_t	 len;
	size_t	 cap;
	bool	 failed;
};

/* Room for n more bytes and the NUL. */
static bool
rec_room(struct rec *b, size_t n)
{
	size_t cap;
	char *s;

	if (b->failed)
		return false;
	if (n < b->cap - b->len)
		return true;
	cap = b->cap * 2 > b->len + n + 1 ? b->cap * 2 : b->len + n + 1;
	if ((s = realloc(b->s, cap)) == NULL) {
		b->failed = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

/*
 * n bytes as they are: punctuation, literals and JSON made elsewhere
 * (never a bare string: those go through rec_str).  Records are built
 * with these few appenders rather than printf: two vsnprintf calls a
 * member (one to measure, one to write) were a tenth of the loop
 * thread's instructions per request (docs/benchmarks.md, issue 17).
 */
static void
rec_raw(struct rec *b, const char *s, size_t n)
{
	if (!rec_room(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
rec_lit(struct rec *b, const char *s)
{
	rec_raw(b, s, strlen(s));
}

/* v in decimal, as %llu writes it. */
static void
rec_ulong(struct rec *b, unsigned long long v)
{
	char t[FMT_INT_LEN];

	rec_raw(b, t, fmt_ulong(t, v));
}

/* v in decimal, as %lld writes it (LLONG_MIN included). */
static void
rec_long(struct rec *b, long long v)
{
	char t[FMT_INT_LEN];

	rec_raw(b, t, fmt_long(t, v));
}

/* A member's name, after a comma unless it opens the record or an
 * object.  Names are the gateway's own identifiers (as before, not
 * quoted). */
static void
rec_name(struct rec *b, const char *name)
{
	bool first = b->len == 0 || b->s[b->len - 1] == '{';

	if (!first)
		rec_raw(b, ",", 1);
	rec_raw(b, "\"", 1);
	rec_lit(b, name);
	rec_raw(b, "\":", 2);
}

/* "name":"v", v quoted (json_quote writes at most six bytes a byte). */
static void
rec_str(struct rec *b, const char *name, const char *v)
{
	size_t n = strlen(v);
	int w;

	rec_name(b, name);
	if (!rec_room(b, 6 * n + 2))
		return;
	if ((w = json_quote(v, b->s + b->len, b->cap - b->len)) == -1) {
		b->failed = true;
		return;
	}
	b->len += (size_t)w;
}

/* "name":<a literal or JSON made elsewhere>. */
static void
rec_json(struct rec *b, const char *name, const char *v)
{
	rec_name(b, name);
	rec_lit(b, v);
}

/* "name":<integer>. */
static void
rec_int(struct rec *b, const char *name, long long v)
{
	rec_name(b, name);
	rec_long(b, v);
}

/* "name":<milliseconds, three decimals>, as printf's %.3f writes them
 * (fmt_ms3). */
static void
rec_ms(struct rec *b, const char *name, double v)
{
	char t[FMT_MS3_LEN];
	int n;

	rec_name(b, name);
	n = fmt_ms3(t, v);
	if (n < 0 || (size_t)n >= sizeof(t)) {
		b->failed = true;
		return;
	}
	rec_raw(b, t, (size_t)n);
}

static bool
rec_open(struct rec *b)
{
	memset(b, 0, sizeof(*b));
	/* Room for a whole outcome (about 450 bytes with its digest) and
	 * rec_str's worst-case reserve for that digest (6n + 2): at 512,
	 * nearly every outcome record was built in two allocations. */
	if ((b->s = malloc(b->cap = 1024)) == NULL)
		return false;
	b->s[0] = '\0';
	return true;
}

/* The fields, or NULL (and nothing held) when any member failed. */
static char *
rec_close(struct rec *b)
{
	if (b->failed) {
		free(b->s);
		return NULL;
	}
	return b->s;
}

/*
 * The members every record of r opens with: its id, its caller (null
 * before auth) when with_caller, the route's name and the path
 * parameters that passed their check.  A parameter that failed is left
 * out: its bytes are the caller's, not an identifier.
 */
static void
rec_head(struct rec *b, const struct gw_req *r, bool with_caller)
{
	size_t i;

	rec_str(b, "request_id", r->id);
	if (with_caller && r->caller != NULL)
		rec_str(b, "caller", r->caller->name);
	else if (with_caller)
		rec_json(b, "caller", "null");
	rec_str(b, "route", r->route->name);
	rec_json(b, "params", "{");
	for (i = 0; i < r->m.nargs; i++)
		if (r->m.args[i].value[0] != '\0')
			rec_str(b, r->m.args[i].name, r->m.args[i].value);
	rec_raw(b, "}", 1);
}

/* The Idempotency-Key of a keyed request, or nothing. */
static void
rec_key(struct rec *b, const struct gw_req *r)
{
	if (r->idem_key != NULL)
		rec_str(b, "idempotency_key", r->idem_key);
}

/* "request": what is about to be forwarded; bodym is the body's
 * member(s), made by audit_body.c. */
char *
req_fields_request(const struct gw_req *r, const char *bodym)
{
	struct rec b;

	if (!rec_open(&b))
		return NULL;
	rec_head(&b, r, true);
	rec_key(&b, r);
	rec_raw(&b, ",", 1);
	rec_lit(&b, bodym);
	return rec_close(&b);
}

/*
 * "reject": a request turned down before it was sent (r->status,
 * r->code, r->reason).  The field paths of details, and the validator's
 * messages in the same order: fixed texts that never hold the value
 * sent (validate.h); never the values.  original_id: the request that
 * holds the key (a keyed refusal), or NULL; peer: the address of an
 * unauthenticated caller, or NULL.
 */
char *
req_fields_reject(const struct gw_req *r, struct json_object *details,
    const char *original_id, const char *peer)
{
	struct json_object *paths, *msgs;
	struct rec b;
	size_t i, n = details ? json_object_array_length(details) : 0;
	int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

	if (!rec_open(&b))
		return NULL;
	paths = json_object_new_array();
	msgs = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *f = NULL, *m = NULL;
		struct json_object *d = json_object_array_get_idx(details, i);

		json_object_object_get_ex(d, "field", &f);
		json_object_object_get_ex(d, "message", &m);
		json_object_array_add(paths, json_object_get(f));
		json_object_array_add(msgs, json_object_get(m));
	}
	rec_head(&b, r, true);
	rec_int(&b, "client_status", r->status);
	rec_str(&b, "code", r->code);
	rec_json(&b, "fields", json_object_to_json_string_ext(paths,
	    flags));
	if (n > 0)
		rec_json(&b, "messages",
		    json_object_to_json_string_ext(msgs, flags));
	rec_key(&b, r);
	if (r->idem_key != NULL && original_id != NULL)
		rec_str(&b, "original_request_id", original_id);
	if (peer != NULL)
		rec_str(&b, "remote_addr", peer);
	if (r->reason != NULL)
		rec_str(&b, "reason", r->reason);
	json_object_put(paths);
	json_object_put(msgs);
	return rec_close(&b);
}

/* The digest of the answer r holds (r->resp), in hex. */
static void
rec_digest(struct rec *b, const struct gw_req *r)
{
	char digest[2 * SHA256_LEN + 1];
	unsigned char h[SHA256_LEN];

	if (sha256(r->resp ? r->resp : "", r->resp_len, h) == -1)
		memset(h, 0, sizeof(h));
	hex_encode(h, sizeof(h), digest);
	rec_str(b, "response_digest", digest);
}

/*
 * "outcome": what became of the call to CryptoMate (or why it was not
 * made), and what the caller is told.  assigned_name/assigned: the id
 * CryptoMate assigned to what it created ("client_id" ...), or NULL.
 */
char *
req_fields_outcome(const struct gw_req *r, const char *assigned_name,
    const char *assigned)
{
	struct rec b;

	if (!rec_open(&b))
		return NULL;
	rec_head(&b, r, true);
	rec_int(&b, "upstream_status", r->up_status);
	rec_ms(&b, "latency_ms", r->up_latency_ms);
	rec_str(&b, "error_class", error_class_name[r->error_class]);
	rec_digest(&b, r);
	rec_int(&b, "client_status", r->code ? r->status :
	    r->up_status);
	rec_ms(&b, "queue_ms", r->queue_ms);
	if (assigned != NULL)
		rec_str(&b, assigned_name, assigned);
	if (r->filtered) {
		rec_name(&b, "withheld");
		rec_ulong(&b, r->withheld);
	}
	if (r->idem_key != NULL) {
		rec_key(&b, r);
		rec_json(&b, "replayed", "false");
	}
	return rec_close(&b);
}

/*
 * "outcome" of a replay: nothing went upstream; the stored answer r now
 * holds goes back, as the request original_id was answered.
 */
char *
req_fields_replay(const struct gw_req *r, const char *original_id)
{
	struct rec b;

	if (!rec_open(&b))
		return NULL;
	rec_head(&b, r, true);
	rec_json(&b, "upstream_status", "0");
	rec_json(&b, "latency_ms", "0.000");
	rec_str(&b, "error_class", error_class_name[EC_NONE]);
	rec_digest(&b, r);
	rec_int(&b, "client_status", r->status);
	if (r->idem_key != NULL) {
		rec_key(&b, r);
		rec_json(&b, "replayed", "true");
		rec_str(&b, "original_request_id", original_id);
	}
	return rec_close(&b);
}

/* "pause": all forwarding stops for delay_ms, after r's try. */
char *
req_fields_pause(const struct gw_req *r, long delay_ms)
{
	struct rec b;

	if (!rec_open(&b))
		return NULL;
	rec_head(&b, r, false);
	rec_str(&b, "cause", r->not_sent ? "not_reached" : "rate_limited");
	rec_int(&b, "pause_ms", delay_ms);
	return rec_close(&b);
}
