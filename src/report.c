/*
 * report.c: the figures of the compliance report, gathered from the
 * verifier's callbacks, and the two writers (HTML and JSON).
 *
 * What is counted: only records that verified and linked, that no
 * finding names, and whose ts lies in the period asked for.  The
 * verifier hands each record over as it accepts it; a record can still
 * be named by the next one (MODIFIED: its hash does not match the next
 * prev), so the last record is held in `pending` (one line, at most
 * AFMT_MAX_RECORD bytes) and counted only when the next record arrives
 * clean, or at the end.  A failure finding whose seq range covers the
 * held record, or a record arriving suspect or inside the range of the
 * last failure, is excluded and counted as such.
 *
 * Memory is bounded whatever the log's size: every table has a cap
 * (stated where it is declared) and an "other" bucket beyond it, the
 * latency of a row is a fixed log-scale histogram, the requests in
 * flight (request seen, outcome not yet) are a fixed-size hash table,
 * and the lists (findings, needs reconciliation, lifecycle events)
 * keep their first entries and count the rest.
 */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#define RP_MAX_CALLERS	1024	/* distinct callers; then "other" */
#define RP_MAX_ROUTES	64	/* distinct routes; then "other" */
#define RP_MAX_ROWS	4096	/* caller x route rows; then "other" */
#define RP_MAX_PATHS	2048	/* distinct refused field paths */
#define RP_MAX_CODES	64	/* distinct refusal codes */
#define RP_MAX_REFS	4096	/* path x caller x code rows */
#define RP_MAX_DAYS	3660	/* ten years of days */
#define RP_MAX_FINDINGS	500	/* findings listed; the rest counted */
#define RP_MAX_RECON	1000	/* needs-reconciliation entries listed */
#define RP_MAX_EVENTS	500	/* lifecycle events listed */
#define RP_MAX_SMALL	8	/* versions, body modes */
#define RP_OPEN_MIN	1024	/* in-flight table slots at first */
#define RP_OPEN_LIVE	65536	/* in flight at most (table <= 2x, ~6 MiB);
				   beyond, a request's route is unknown */
#define RP_STR_MAX	512	/* a caller, route, path or code kept */
#define RP_ID_MAX	64	/* a request id kept */
#define RP_IDEM_MAX	600	/* an idempotency key kept, as JSON */

/* Latency histogram: 10 buckets a decade from 10 us to 1000 s, then
 * one beyond.  A percentile is the upper bound of its bucket: at most
 * 26% (10^0.1) above the true value. */
#define RP_HBUCKETS	81
#define RP_HMIN_MS	0.01

static const char *const class_names[RC_NCLASS] = {
	"fwd_2xx", "cm_4xx", "cm_5xx", "refused", "gw_error", "abandoned",
};
static const char *const class_titles[RC_NCLASS] = {
	"forwarded, CryptoMate 2xx", "CryptoMate 4xx", "CryptoMate 5xx",
	"refused by the gateway", "gateway error (502/503/504)",
	"abandoned (crash)",
};
static const char *const class_colors[RC_NCLASS] = {
	"#2e7d32", "#f9a825", "#c62828", "#1565c0", "#6a1b9a", "#424242",
};

const char *
report_class_name(enum report_class c)
{
	return c < RC_NCLASS ? class_names[c] : "?";
}

/* ------------------------------------------------------------------ */
/* Interned strings: a capped table with an open-addressed index. */

struct itab {
	char		**s;
	size_t		  n, max;
	int32_t		 *slot;		/* 2 * max slots, -1 empty */
	size_t		  nslot;
};

static uint64_t
rp_hash(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;

	while (n--)
		h = (h ^ *c++) * 1099511628211ULL;
	return h;
}

static int
itab_init(struct itab *t, size_t max)
{
	size_t i;

	t->max = max;
	t->nslot = 1;
	while (t->nslot < 2 * max)
		t->nslot <<= 1;
	if ((t->s = calloc(max, sizeof(*t->s))) == NULL ||
	    (t->slot = malloc(t->nslot * sizeof(*t->slot))) == NULL)
		return -1;
	for (i = 0; i < t->nslot; i++)
		t->slot[i] = -1;
	return 0;
}

static void
itab_free(struct itab *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	free(t->slot);
}

/* The index of s, added when new; -1 when the table is full. */
static int
itab_get(struct itab *t, const char *s)
{
	size_t i = (size_t)rp_hash(s, strlen(s), 14695981039346656037ULL) &
	    (t->nslot - 1);

	while (t->slot[i] != -1) {
		if (strcmp(t->s[t->slot[i]], s) == 0)
			return t->slot[i];
		i = (i + 1) & (t->nslot - 1);
	}
	if (t->n == t->max || (t->s[t->n] = strdup(s)) == NULL)
		return -1;
	t->slot[i] = (int32_t)t->n;
	return (int)t->n++;
}

/* Tuples of small indexes (a key of up to 3 x 21 bits) to a row. */
struct ktab {
	uint64_t	*key;		/* per slot; 0 empty */
	int32_t		*row;
	size_t		 nslot, n, max;
};

static int
ktab_init(struct ktab *t, size_t max)
{
	t->max = max;
	t->nslot = 1;
	while (t->nslot < 2 * max)
		t->nslot <<= 1;
	t->key = calloc(t->nslot, sizeof(*t->key));
	t->row = calloc(t->nslot, sizeof(*t->row));
	return t->key && t->row ? 0 : -1;
}

static uint64_t
ktab_key(int a, int b, int c)
{
	return ((uint64_t)(a + 1) << 42) | ((uint64_t)(b + 1) << 21) |
	    (uint64_t)(c + 1);
}

/* The row of key; *isnew when just made; -1 when full. */
static int
ktab_get(struct ktab *t, uint64_t k, bool *isnew)
{
	size_t i = (size_t)rp_hash(&k, sizeof(k), 14695981039346656037ULL) &
	    (t->nslot - 1);

	*isnew = false;
	while (t->key[i] != 0) {
		if (t->key[i] == k)
			return t->row[i];
		i = (i + 1) & (t->nslot - 1);
	}
	if (t->n == t->max)
		return -1;
	t->key[i] = k;
	t->row[i] = (int32_t)t->n;
	*isnew = true;
	return (int)t->n++;
}

/* ------------------------------------------------------------------ */

struct row {
	int		 caller, route;		/* -1: other */
	uint64_t	 cls[RC_NCLASS];
	uint64_t	 calls, refusals, uperr, lat_n;
	uint32_t	 hist[RP_HBUCKETS];
};

struct refrow {
	int		 path, caller, code;
	int		 msg;		/* the first message seen; -1 none */
	uint64_t	 n;
};

struct day {
	char		 d[11];
	uint64_t	 cls[RC_NCLASS];
};

struct recon {
	char		 id[RP_ID_MAX + 1];
	char		 idem[RP_IDEM_MAX];	/* raw JSON value, or "" */
	int		 caller, route;
	char		 ts[32];
	const char	*why;
};

struct event {
	char		 ts[32];
	uint64_t	 seq;
	char		 what[16];
	char		 detail[160];
};

struct found {
	struct afmt_finding f;
};

struct inflight {
	char		 id[RP_ID_MAX + 1];	/* "" free */
	int16_t		 route;
	char		 ts[25];		/* ts is 24 characters */
};

/* The members a record's fields are split into (fnames). */
enum rp_field {
	F_REQUEST_ID, F_CALLER, F_ROUTE, F_ERROR_CLASS, F_UPSTREAM_STATUS, F_LATENCY_MS,
	F_CLIENT_STATUS, F_REPLAYED, F_CODE, F_FIELDS, F_IDEMPOTENCY_KEY, F_COUNT, F_REASON, F_GATEWAY,
	F_BODY, F_EPOCH_S, F_BYTES, F_OFFSET, F_MESSAGES, F_QUEUE_MS,
	F_PAUSE_MS,
	RP_NF
};

struct report {
	struct report_opts opts;
	double		 pause_end;	/* the open pause interval's end (ms) */
	int		 verdict;
	struct afmt_summary sum;

	/* the fields of the record being counted (afmt_fields_split) */
	const char	*fv[RP_NF];
	size_t		 fl[RP_NF];

	/* the held record */
	struct afmt_rec	 pend_rec;
	char		*pending;
	size_t		 pend_len;
	uint64_t	 pend_seq;
	bool		 have_pending;
	uint64_t	 fail_a, fail_b;	/* last failure's seq range */

	struct report_totals t;
	char		 first_ts[32], last_ts[32];

	struct itab	 callers, routes, paths, codes, versions, bodies;
	struct itab	 messages;	/* the validator's, one per path */
	struct ktab	 rowkeys, refkeys;
	struct row	*rows;
	struct row	 other_row;
	uint64_t	 rows_over;
	struct refrow	*refs;
	uint64_t	 refs_over;

	struct day	*days;
	size_t		 ndays;
	uint64_t	 days_over;

	struct recon	*recon;
	size_t		 nrecon;

	struct event	*events;
	size_t		 nevents;
	uint64_t	 events_over;

	struct found	*found;
	size_t		 nfound;
	uint64_t	 found_over, failures;

	struct inflight	*open;
	size_t		 open_live, open_slots;
	uint64_t	 open_over;

	uint64_t	 epoch_s;
	double		 last_seal_ms;
	bool		 restart_since_seal;
	uint64_t	 paused_unrecorded;
};

/* ------------------------------------------------------------------ */
/* Small helpers */

/* Milliseconds since 1970 of a record's ts (2026-11-26T19:09:26.123Z);
 * -1 when it does not read. */
static double
ts_ms(const char *ts)
{
	struct tm tm;
	int ms = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (double)timegm(&tm) * 1000.0 + ms;
}

static bool
in_period(const struct report *rp, const char *ts)
{
	if (rp->opts.since && strcmp(ts, rp->opts.since) < 0)
		return false;
	if (rp->opts.until && strncmp(ts, rp->opts.until,
	    strlen(rp->opts.until)) > 0)
		return false;
	return true;
}

/* The members a record's fields are split into, once per record. */
static const char *const fnames[RP_NF] = {
	"request_id", "caller", "route", "error_class", "upstream_status",
	"latency_ms", "client_status", "replayed", "code", "fields",
	"idempotency_key", "count", "reason", "gateway", "body", "epoch_s",
	"bytes", "offset", "messages", "queue_ms", "pause_ms",
};

static bool
fspan(const struct report *rp, enum rp_field f, const char **v, size_t *l)
{
	*v = rp->fv[f];
	*l = rp->fl[f];
	return *v != NULL;
}

/* A member's raw value, "" when absent or longer than len. */
static void
fraw(const struct report *rp, enum rp_field name, char *out, size_t len)
{
	const char *v;
	size_t l;

	if (!fspan(rp, name, &v, &l) || l >= len)
		l = 0;
	else
		memcpy(out, v, l);
	out[l] = '\0';
}

/* A string member without its quotes, when it has no escapes. */
static int
fstr(const struct report *rp, enum rp_field name, char *out, size_t len)
{
	const char *v;
	size_t l;

	if (!fspan(rp, name, &v, &l) || l < 2 || *v != '"' ||
	    l - 2 >= len || memchr(v + 1, '\\', l - 2) != NULL)
		return -1;
	memcpy(out, v + 1, l - 2);
	out[l - 2] = '\0';
	return 0;
}

static int
fu64(const struct report *rp, enum rp_field name, uint64_t *out)
{
	char buf[32], *end;
	unsigned long long v;

	fraw(rp, name, buf, sizeof(buf));
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	v = strtoull(buf, &end, 10);
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

static long
fint(const struct report *rp, enum rp_field name, long dflt)
{
	char buf[32], *end;
	long v;

	fraw(rp, name, buf, sizeof(buf));
	v = strtol(buf, &end, 10);
	return end == buf ? dflt : v;
}

static int
hist_bucket(double ms)
{
	int b;

	if (!(ms > RP_HMIN_MS))
		return 0;
	b = (int)ceil(log10(ms / RP_HMIN_MS) * 10.0);
	return b < 0 ? 0 : b >= RP_HBUCKETS ? RP_HBUCKETS - 1 : b;
}

/* The upper bound of the bucket holding the p-th quantile; -1 none. */
static double
hist_quantile(const struct row *w, double p)
{
	uint64_t want, acc = 0;
	int b;

	if (w->lat_n == 0)
		return -1;
	want = (uint64_t)ceil(p * (double)w->lat_n);
	if (want == 0)
		want = 1;
	for (b = 0; b < RP_HBUCKETS; b++) {
		acc += w->hist[b];
		if (acc >= want)
			return b == RP_HBUCKETS - 1 ? INFINITY :
			    RP_HMIN_MS * pow(10.0, b / 10.0);
	}
	return INFINITY;
}

/* ------------------------------------------------------------------ */
/* Requests in flight: request id -> route, ts.  Linear probing with
 * backward-shift deletion (no tombstones: every request is added and
 * taken again, and tombstones would lengthen every probe). */

static size_t
open_home(const struct report *rp, const char *id)
{
	return (size_t)rp_hash(id, strlen(id), 14695981039346656037ULL) &
	    (rp->open_slots - 1);
}

/* The slot holding id, or the empty slot where it would go. */
static struct inflight *
open_find(struct report *rp, const char *id)
{
	size_t i = open_home(rp, id);

	while (rp->open[i].id[0] != '\0' && strcmp(rp->open[i].id, id) != 0)
		i = (i + 1) & (rp->open_slots - 1);
	return &rp->open[i];
}

/* Double the table (kept small while few requests are in flight, so
 * that it stays in the cache). */
static int
open_grow(struct report *rp)
{
	struct inflight *old = rp->open, *n;
	size_t i, oslots = rp->open_slots;

	if ((n = calloc(2 * oslots, sizeof(*n))) == NULL)
		return -1;
	rp->open = n;
	rp->open_slots = 2 * oslots;
	for (i = 0; i < oslots; i++)
		if (old[i].id[0] != '\0')
			*open_find(rp, old[i].id) = old[i];
	free(old);
	return 0;
}

static void
open_add(struct report *rp, const char *id, int route, const char *ts)
{
	struct inflight *e;
	size_t n;

	if (strlen(id) > RP_ID_MAX || rp->open_live >= RP_OPEN_LIVE ||
	    (2 * (rp->open_live + 1) > rp->open_slots && open_grow(rp) == -1)) {
		rp->open_over++;
		return;
	}
	e = open_find(rp, id);
	if (e->id[0] != '\0')
		return;			/* already there */
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->route = (int16_t)route;
	n = strnlen(ts, sizeof(e->ts) - 1);
	memcpy(e->ts, ts, n);
	e->ts[n] = '\0';
	rp->open_live++;
}

/* Remove id; its route (or -1) and request ts go to *route, ts. */
static bool
open_take(struct report *rp, const char *id, int *route, char *ts,
    size_t tslen)
{
	const size_t mask = rp->open_slots - 1;
	struct inflight *e;
	size_t i, j, k;

	if (strlen(id) > RP_ID_MAX || (e = open_find(rp, id))->id[0] == '\0')
		return false;
	*route = e->route;
	if (ts)
		snprintf(ts, tslen, "%s", e->ts);
	rp->open_live--;
	/* Shift back the entries of the run after i that may not sit
	 * behind an empty slot. */
	i = (size_t)(e - rp->open);
	for (j = i;;) {
		j = (j + 1) & mask;
		if (rp->open[j].id[0] == '\0')
			break;
		k = open_home(rp, rp->open[j].id);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		rp->open[i] = rp->open[j];
		i = j;
	}
	rp->open[i].id[0] = '\0';
	return true;
}

/* ------------------------------------------------------------------ */

struct report *
report_new(const struct report_opts *o)
{
	struct report *rp;

	if ((rp = calloc(1, sizeof(*rp))) == NULL)
		return NULL;
	rp->opts = *o;
	rp->other_row.caller = rp->other_row.route = -1;
	rp->last_seal_ms = -1;
	rp->open_slots = RP_OPEN_MIN;
	if ((rp->pending = malloc(AFMT_MAX_RECORD)) == NULL ||
	    itab_init(&rp->callers, RP_MAX_CALLERS) == -1 ||
	    itab_init(&rp->routes, RP_MAX_ROUTES) == -1 ||
	    itab_init(&rp->paths, RP_MAX_PATHS) == -1 ||
	    itab_init(&rp->messages, RP_MAX_PATHS) == -1 ||
	    itab_init(&rp->codes, RP_MAX_CODES) == -1 ||
	    itab_init(&rp->versions, RP_MAX_SMALL) == -1 ||
	    itab_init(&rp->bodies, RP_MAX_SMALL) == -1 ||
	    ktab_init(&rp->rowkeys, RP_MAX_ROWS) == -1 ||
	    ktab_init(&rp->refkeys, RP_MAX_REFS) == -1 ||
	    (rp->rows = calloc(RP_MAX_ROWS, sizeof(*rp->rows))) == NULL ||
	    (rp->refs = calloc(RP_MAX_REFS, sizeof(*rp->refs))) == NULL ||
	    (rp->days = calloc(RP_MAX_DAYS, sizeof(*rp->days))) == NULL ||
	    (rp->recon = calloc(RP_MAX_RECON, sizeof(*rp->recon))) == NULL ||
	    (rp->events = calloc(RP_MAX_EVENTS, sizeof(*rp->events))) == NULL ||
	    (rp->found = calloc(RP_MAX_FINDINGS, sizeof(*rp->found))) == NULL ||
	    (rp->open = calloc(RP_OPEN_MIN, sizeof(*rp->open))) == NULL) {
		report_free(rp);
		return NULL;
	}
	return rp;
}

void
report_free(struct report *rp)
{
	if (rp == NULL)
		return;
	free(rp->pending);
	itab_free(&rp->callers);
	itab_free(&rp->routes);
	itab_free(&rp->paths);
	itab_free(&rp->messages);
	itab_free(&rp->codes);
	itab_free(&rp->versions);
	itab_free(&rp->bodies);
	free(rp->rowkeys.key);
	free(rp->rowkeys.row);
	free(rp->refkeys.key);
	free(rp->refkeys.row);
	free(rp->rows);
	free(rp->refs);
	free(rp->days);
	free(rp->recon);
	free(rp->events);
	free(rp->found);
	free(rp->open);
	free(rp);
}

/* ------------------------------------------------------------------ */
/* Counting */

static struct row *
row_get(struct report *rp, int caller, int route)
{
	bool isnew;
	int i;

	if (caller < 0 || route < 0 ||
	    (i = ktab_get(&rp->rowkeys, ktab_key(caller, route, 0),
	    &isnew)) == -1) {
		rp->rows_over++;
		return &rp->other_row;
	}
	if (isnew) {
		rp->rows[i].caller = caller;
		rp->rows[i].route = route;
	}
	return &rp->rows[i];
}

static void
day_add(struct report *rp, const char *ts, enum report_class c, uint64_t n)
{
	size_t i;

	for (i = rp->ndays; i-- > 0;)
		if (strncmp(rp->days[i].d, ts, 10) == 0) {
			rp->days[i].cls[c] += n;
			return;
		}
	if (rp->ndays == RP_MAX_DAYS) {
		rp->days_over += n;
		return;
	}
	/* Keep the days in order: records are in seq order, and ts
	 * nearly so; insert where it belongs. */
	for (i = rp->ndays; i > 0 && strncmp(rp->days[i - 1].d, ts, 10) > 0;
	    i--)
		rp->days[i] = rp->days[i - 1];
	memset(&rp->days[i], 0, sizeof(rp->days[i]));
	memcpy(rp->days[i].d, ts, 10);
	rp->days[i].cls[c] = n;
	rp->ndays++;
}

static void
count_answer(struct report *rp, const char *ts, struct row *w,
    enum report_class c, uint64_t n)
{
	rp->t.cls[c] += n;
	rp->t.answered += n;
	w->cls[c] += n;
	w->calls += n;
	if (c == RC_REFUSED)
		w->refusals += n;
	day_add(rp, ts, c, n);
}

static void
recon_add(struct report *rp, const char *id, const struct afmt_rec *r,
    int caller, int route, const char *ts, const char *why)
{
	struct recon *e;

	rp->t.reconcile++;
	if (rp->nrecon == RP_MAX_RECON)
		return;
	e = &rp->recon[rp->nrecon++];
	snprintf(e->id, sizeof(e->id), "%s", id);
	if (r)
		fraw(rp, F_IDEMPOTENCY_KEY, e->idem, sizeof(e->idem));
	e->caller = caller;
	e->route = route;
	snprintf(e->ts, sizeof(e->ts), "%s", ts);
	e->why = why;
}

static void
event_add(struct report *rp, const struct afmt_rec *r, const char *what,
    const char *detail)
{
	struct event *e;

	if (rp->nevents == RP_MAX_EVENTS) {
		rp->events_over++;
		return;
	}
	e = &rp->events[rp->nevents++];
	snprintf(e->ts, sizeof(e->ts), "%s", r->ts);
	e->seq = r->seq;
	snprintf(e->what, sizeof(e->what), "%s", what);
	snprintf(e->detail, sizeof(e->detail), "%s", detail);
}

/* A caller's index from the raw JSON value ("null": none). */
static int
caller_idx(struct report *rp, const struct afmt_rec *r)
{
	char raw[RP_STR_MAX];

	fraw(rp, F_CALLER, raw, sizeof(raw));
	if (raw[0] == '\0')
		strcpy(raw, "null");
	return itab_get(&rp->callers, raw);
}

static void
count_reject(struct report *rp, const struct afmt_rec *r, bool counted)
{
	char raw[RP_STR_MAX], code[RP_STR_MAX];
	struct json_object *arr = NULL, *msgs = NULL;
	struct row *w;
	int caller, route, codei;
	long cs;
	size_t i, n, flen;
	const char *fields;

	if (!counted)
		return;
	caller = caller_idx(rp, r);
	fraw(rp, F_ROUTE, raw, sizeof(raw));
	route = itab_get(&rp->routes, raw[0] ? raw : "\"?\"");
	fraw(rp, F_CODE, code, sizeof(code));
	codei = itab_get(&rp->codes, code[0] ? code : "\"?\"");
	cs = fint(rp, F_CLIENT_STATUS, 400);
	w = row_get(rp, caller, route);
	if (caller >= 0 && strcmp(rp->callers.s[caller], "null") == 0)
		rp->t.unauth++;
	if (strstr(code, "idempotency_in_progress") ||
	    strstr(code, "idempotency_outcome_unknown") ||
	    strstr(code, "idempotency_key_reused"))
		rp->t.conflicts++;
	count_answer(rp, r->ts, w, cs >= 500 ? RC_GW_ERROR : RC_REFUSED, 1);

	/* The field paths: a JSON array of strings (never values), and
	 * the validator's messages for them, in the same order (fixed
	 * texts that never hold a value). */
	if (fspan(rp, F_FIELDS, &fields, &flen) && flen < INT32_MAX) {
		struct json_tokener *tok = json_tokener_new();
		if (tok) {
			arr = json_tokener_parse_ex(tok, fields, (int)flen);
			json_tokener_free(tok);
		}
	}
	if (fspan(rp, F_MESSAGES, &fields, &flen) && flen < INT32_MAX) {
		struct json_tokener *tok = json_tokener_new();
		if (tok) {
			msgs = json_tokener_parse_ex(tok, fields, (int)flen);
			json_tokener_free(tok);
		}
		if (msgs != NULL && !json_object_is_type(msgs,
		    json_type_array)) {
			json_object_put(msgs);
			msgs = NULL;
		}
	}
	n = arr && json_object_is_type(arr, json_type_array) ?
	    json_object_array_length(arr) : 0;
	for (i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(arr, i);
		const char *ps;
		bool isnew;
		int pi, k;

		if (!json_object_is_type(p, json_type_string))
			continue;
		/* Interned as a JSON value, like callers and routes. */
		ps = json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE);
		rp->t.refusal_paths++;
		if (strlen(ps) >= RP_STR_MAX || (pi = itab_get(&rp->paths,
		    ps)) == -1 || (k = ktab_get(&rp->refkeys, ktab_key(pi,
		    caller, codei), &isnew)) == -1) {
			rp->refs_over++;
			continue;
		}
		if (isnew) {
			struct json_object *m = msgs ?
			    json_object_array_get_idx(msgs, i) : NULL;
			const char *ms;

			rp->refs[k].path = pi;
			rp->refs[k].caller = caller;
			rp->refs[k].code = codei;
			rp->refs[k].msg = -1;
			if (m != NULL && json_object_is_type(m,
			    json_type_string)) {
				ms = json_object_to_json_string_ext(m,
				    JSON_C_TO_STRING_PLAIN |
				    JSON_C_TO_STRING_NOSLASHESCAPE);
				if (strlen(ms) < RP_STR_MAX)
					rp->refs[k].msg = itab_get(
					    &rp->messages, ms);
			}
		}
		rp->refs[k].n++;
	}
	json_object_put(arr);
	json_object_put(msgs);
}

/*
 * reject_summary (written for floods of unauthenticated requests, one
 * record for many): its count is counted as that many unauthenticated
 * refusals, on the route it names or "(various)".
 */
static void
count_reject_summary(struct report *rp, const struct afmt_rec *r)
{
	char raw[RP_STR_MAX];
	uint64_t n = 0;
	int route;

	if (fu64(rp, F_COUNT, &n) == -1 || n == 0)
		return;
	fraw(rp, F_ROUTE, raw, sizeof(raw));
	route = itab_get(&rp->routes, raw[0] ? raw : "\"(various)\"");
	rp->t.unauth += n;
	rp->t.reject_summary += n;
	count_answer(rp, r->ts, row_get(rp, itab_get(&rp->callers, "null"),
	    route), RC_REFUSED, n);
}

/*
 * A pause of all forwarding (CryptoMate's 429, or CryptoMate out of
 * reach): from the record's time for pause_ms.  Pauses overlap (one per
 * request that met the 429), so the time covered is their union, kept
 * as it streams by: records come in time order, so one open interval is
 * enough.
 */
static void
count_pause(struct report *rp, const struct afmt_rec *r)
{
	char pm[32];
	double start = ts_ms(r->ts), len;

	fraw(rp, F_PAUSE_MS, pm, sizeof(pm));
	if (!pm[0] || (len = strtod(pm, NULL)) <= 0 || len > 3.6e6 ||
	    start <= 0)
		return;
	rp->t.pauses++;
	if (rp->pause_end > 0 && start <= rp->pause_end) {
		if (start + len > rp->pause_end) {
			rp->t.paused_ms += (uint64_t)(start + len -
			    rp->pause_end);
			rp->pause_end = start + len;
		}
		return;
	}
	rp->t.paused_ms += (uint64_t)len;
	rp->pause_end = start + len;
}

static void
count_outcome(struct report *rp, const struct afmt_rec *r, bool counted)
{
	char id[RP_ID_MAX + 1], ec[64], us_raw[32], rts[32], rep[16];
	enum report_class c;
	struct row *w;
	int caller, route = -1;
	long us, cs;
	bool found, replay;

	if (fstr(rp, F_REQUEST_ID, id,
	    sizeof(id)) == -1)
		id[0] = '\0';
	found = id[0] && open_take(rp, id, &route, rts, sizeof(rts));
	if (!counted)
		return;
	if (!found)
		route = itab_get(&rp->routes, "\"(no request record)\"");
	caller = caller_idx(rp, r);
	if (fstr(rp, F_ERROR_CLASS, ec,
	    sizeof(ec)) == -1)
		ec[0] = '\0';
	fraw(rp, F_UPSTREAM_STATUS, us_raw, sizeof(us_raw));
	us = strcmp(us_raw, "null") == 0 || us_raw[0] == '\0' ? 0 :
	    strtol(us_raw, NULL, 10);
	cs = fint(rp, F_CLIENT_STATUS, 0);
	fraw(rp, F_REPLAYED, rep, sizeof(rep));
	replay = strcmp(rep, "true") == 0;
	if (strcmp(ec, "abandoned") == 0)
		c = RC_ABANDONED;
	else if (us >= 500)
		c = RC_UP_5XX;
	else if (us >= 400)
		c = RC_UP_4XX;
	else if (us > 0)
		c = RC_FWD_2XX;
	else if (replay)
		c = cs >= 500 ? RC_UP_5XX : cs >= 400 ? RC_UP_4XX : RC_FWD_2XX;
	else if (cs >= 400 && cs < 500)
		c = RC_REFUSED;		/* the budget's 429: never sent */
	else
		c = RC_GW_ERROR;
	w = row_get(rp, caller, route);
	count_answer(rp, r->ts, w, c, 1);
	if (replay)
		rp->t.replays++;
	if (us == 429)
		rp->t.up_429++;
	if (us == 0 && !replay && strcmp(ec, "rate_limited") == 0)
		rp->t.budget_refused++;
	if (strcmp(ec, "timeout") == 0)
		rp->t.timeouts++;
	if (strcmp(ec, "not_sent") == 0)
		rp->t.not_sent++;
	if (strcmp(ec, "upstream_error") == 0)
		rp->t.upstream_errors++;
	if (c == RC_UP_5XX || (us == 0 && (strcmp(ec, "timeout") == 0 ||
	    strcmp(ec, "not_sent") == 0 || strcmp(ec, "upstream_error") == 0)))
		w->uperr++;
	{
		char qm[32];
		double q;

		fraw(rp, F_QUEUE_MS, qm, sizeof(qm));
		if (qm[0] && strcmp(qm, "null") != 0 &&
		    (q = strtod(qm, NULL)) >= 1.0 && q < 1e12) {
			rp->t.waited++;
			rp->t.waited_ms += (uint64_t)q;
			if ((uint64_t)q > rp->t.waited_max_ms)
				rp->t.waited_max_ms = (uint64_t)q;
		}
	}
	if (us > 0 && !replay) {
		char lat[32];
		fraw(rp, F_LATENCY_MS, lat, sizeof(lat));
		if (lat[0] && strcmp(lat, "null") != 0) {
			w->hist[hist_bucket(strtod(lat, NULL))]++;
			w->lat_n++;
		}
	}
	/* Outcome unknown: a person must ask CryptoMate. */
	if (c == RC_ABANDONED)
		recon_add(rp, id, r, caller, route, r->ts, "abandoned (crash)");
	else if (us == 0 && strcmp(ec, "timeout") == 0)
		recon_add(rp, id, r, caller, route, r->ts, "timeout after "
		    "sending");
	else if (us == 0 && strcmp(ec, "upstream_error") == 0)
		recon_add(rp, id, r, caller, route, r->ts, "answer broken off");
}

static void
count_lifecycle(struct report *rp, const struct afmt_rec *r, bool counted)
{
	char buf[RP_STR_MAX], d[160];
	double now = ts_ms(r->ts);

	if (strcmp(r->type, "start") == 0) {
		uint64_t e = 0;
		char reason[32];
		if (fu64(rp, F_EPOCH_S, &e) == 0)
			rp->epoch_s = e;
		rp->restart_since_seal = true;
		if (!counted)
			return;
		rp->t.starts++;
		if (fstr(rp, F_REASON, reason,
		    sizeof(reason)) == -1)
			strcpy(reason, "?");
		if (strcmp(reason, "rotate") == 0)
			rp->t.rotations++;
		fraw(rp, F_GATEWAY, buf, sizeof(buf));
		if (buf[0])
			(void)itab_get(&rp->versions, buf);
		fraw(rp, F_BODY, buf, sizeof(buf));
		if (buf[0])
			(void)itab_get(&rp->bodies, buf);
		snprintf(d, sizeof(d), "start (%s), epoch %llu s", reason,
		    (unsigned long long)rp->epoch_s);
		event_add(rp, r, strcmp(reason, "rotate") == 0 ? "rotation" :
		    "start", d);
	} else if (strcmp(r->type, "stop") == 0) {
		if (!counted)
			return;
		rp->t.stops++;
		event_add(rp, r, "stop", "clean stop");
	} else if (strcmp(r->type, "recover") == 0) {
		uint64_t bytes = 0, off = 0;
		if (!counted)
			return;
		(void)fu64(rp, F_BYTES, &bytes);
		(void)fu64(rp, F_OFFSET, &off);
		rp->t.recoveries++;
		rp->t.recovered_bytes += bytes;
		snprintf(d, sizeof(d), "torn tail cut: %llu bytes at offset "
		    "%llu", (unsigned long long)bytes,
		    (unsigned long long)off);
		event_add(rp, r, "recovery", d);
	} else if (strcmp(r->type, "seal") == 0) {
		bool restart = rp->restart_since_seal;
		double prev = rp->last_seal_ms;
		rp->last_seal_ms = now;
		rp->restart_since_seal = false;
		if (!counted)
			return;
		rp->t.seals++;
		/* An epoch is run time: a gap across a restart is the
		 * downtime, said as such. */
		if (prev >= 0 && now >= 0 && rp->epoch_s > 0 &&
		    now - prev > (double)rp->epoch_s * 1000.0 * 1.5 + 1000.0) {
			rp->t.seal_gaps++;
			snprintf(d, sizeof(d), "%.1f s since the previous seal "
			    "(epoch %llu s)%s", (now - prev) / 1000.0,
			    (unsigned long long)rp->epoch_s, restart ?
			    "; the gateway restarted in between" : "");
			event_add(rp, r, "seal gap", d);
		}
	}
}

/* Count one record that verified, linked and was named by nothing. */
static void
commit(struct report *rp, const struct afmt_rec *r)
{
	bool counted = in_period(rp, r->ts);

	(void)afmt_fields_split(r->fields, r->flen, fnames, RP_NF, rp->fv,
	    rp->fl);
	if (counted) {
		rp->t.counted++;
		if (rp->first_ts[0] == '\0')
			memcpy(rp->first_ts, r->ts, sizeof(r->ts));
		memcpy(rp->last_ts, r->ts, sizeof(r->ts));
	} else
		rp->t.outside++;
	if (strcmp(r->type, "request") == 0) {
		char id[RP_ID_MAX + 1], raw[RP_STR_MAX];
		if (fstr(rp, F_REQUEST_ID, id,
		    sizeof(id)) == 0) {
			fraw(rp, F_ROUTE, raw, sizeof(raw));
			open_add(rp, id, itab_get(&rp->routes, raw[0] ? raw :
			    "\"?\""), r->ts);
		}
		if (counted)
			rp->t.requests++;
	} else if (strcmp(r->type, "outcome") == 0)
		count_outcome(rp, r, counted);
	else if (strcmp(r->type, "reject") == 0)
		count_reject(rp, r, counted);
	else if (strcmp(r->type, "reject_summary") == 0) {
		if (counted)
			count_reject_summary(rp, r);
	} else if (strcmp(r->type, "pause") == 0) {
		if (counted)
			count_pause(rp, r);
	} else
		count_lifecycle(rp, r, counted);
}

static void
commit_pending(struct report *rp)
{
	struct afmt_rec r;

	if (!rp->have_pending)
		return;
	rp->have_pending = false;
	r = rp->pend_rec;
	commit(rp, &r);
}

void
report_finding(const struct afmt_finding *f, void *arg)
{
	struct report *rp = arg;

	if (afmt_kind_is_failure(f->kind)) {
		rp->failures++;
		rp->fail_a = f->seq;
		rp->fail_b = f->seq_end > f->seq ? f->seq_end : f->seq;
		if (rp->have_pending && f->seq != 0 &&
		    rp->pend_seq >= rp->fail_a && rp->pend_seq <= rp->fail_b) {
			rp->have_pending = false;
			rp->t.excluded++;
		}
	}
	if (f->kind == AFMT_OPEN) {
		/* No outcome at all (yet): the request may be in flight
		 * or the log cut; route and time from its record. */
		int route = -1;
		char ts[32] = "";
		commit_pending(rp);
		if (!open_take(rp, f->id, &route, ts, sizeof(ts)))
			route = itab_get(&rp->routes, "\"?\"");
		if (ts[0] == '\0' || in_period(rp, ts)) {
			char raw[RP_STR_MAX];
			int caller;
			/* detail: "request X (caller <raw>) has no ..." */
			const char *p = strstr(f->detail, "(caller ");
			const char *q = p ? strrchr(p, ')') : NULL;
			if (p && q && (size_t)(q - p - 8) < sizeof(raw)) {
				memcpy(raw, p + 8, (size_t)(q - p - 8));
				raw[q - p - 8] = '\0';
			} else
				strcpy(raw, "null");
			caller = itab_get(&rp->callers, raw);
			recon_add(rp, f->id, NULL, caller, route, ts[0] ? ts : "?",
			    "no outcome recorded");
		}
	}
	if (rp->nfound < RP_MAX_FINDINGS)
		rp->found[rp->nfound++].f = *f;
	else
		rp->found_over++;
}

void
report_record(const struct afmt_rec *r, bool suspect, void *arg)
{
	struct report *rp = arg;

	if (suspect || (rp->failures > 0 && r->seq >= rp->fail_a &&
	    r->seq <= rp->fail_b && rp->fail_a != 0)) {
		rp->t.excluded++;
		return;
	}
	commit_pending(rp);
	if (r->len > AFMT_MAX_RECORD) {
		rp->t.excluded++;
		return;
	}
	memcpy(rp->pending, r->line, r->len);
	rp->pend_len = r->len;
	rp->pend_rec = *r;
	rp->pend_rec.line = rp->pending;
	rp->pend_rec.fields = rp->pending + (r->fields - r->line);
	rp->pend_seq = r->seq;
	rp->have_pending = true;
}

void
report_finish(struct report *rp, const struct afmt_summary *s, int verdict)
{
	commit_pending(rp);
	rp->sum = *s;
	rp->verdict = verdict;
}

void
report_totals(const struct report *rp, struct report_totals *t)
{
	*t = rp->t;
}

int
report_row(const struct report *rp, const char *caller, const char *route,
    uint64_t *calls, uint64_t *refusals)
{
	size_t i;
	bool any = false;

	*calls = *refusals = 0;
	for (i = 0; i < rp->rowkeys.n; i++) {
		const struct row *w = &rp->rows[i];
		if (strcmp(rp->callers.s[w->caller], caller) != 0)
			continue;
		if (route[0] && strcmp(rp->routes.s[w->route], route) != 0)
			continue;
		*calls += w->calls;
		*refusals += w->refusals;
		any = true;
	}
	return any ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Writers */

/* Text as HTML: markup characters as entities, control characters as
 * U+FFFD.  Everything from the log goes through here. */
static void
h_esc(FILE *o, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': fputs("&amp;", o); break;
		case '<': fputs("&lt;", o); break;
		case '>': fputs("&gt;", o); break;
		case '"': fputs("&quot;", o); break;
		case '\'': fputs("&#39;", o); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fputs("\xef\xbf\xbd", o);
			else
				fputc(c, o);
		}
	}
}

/* A JSON string value (as interned) decoded, then HTML-escaped; null
 * prints alt. */
static void
h_val(FILE *o, const char *raw, const char *alt)
{
	struct json_object *j;

	if (raw == NULL || strcmp(raw, "null") == 0) {
		fputs(alt, o);
		return;
	}
	if ((j = json_tokener_parse(raw)) != NULL &&
	    json_object_is_type(j, json_type_string))
		h_esc(o, json_object_get_string(j));
	else
		h_esc(o, raw);
	json_object_put(j);
}

/* A JSON string for the JSON writer. */
static void
j_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(o, "\\u%04x", c);
		else if (c == '<' || c == '>' || c == '&')
			fprintf(o, "\\u%04x", c);	/* safe in any page */
		else
			fputc(c, o);
	}
	fputc('"', o);
}

/* An interned JSON value as JSON (re-encoded through j_str so that a
 * stored value never reaches the output unchecked). */
static void
j_val(FILE *o, const char *raw)
{
	struct json_object *j;

	if (raw == NULL || strcmp(raw, "null") == 0) {
		fputs("null", o);
		return;
	}
	if ((j = json_tokener_parse(raw)) != NULL &&
	    json_object_is_type(j, json_type_string))
		j_str(o, json_object_get_string(j));
	else
		j_str(o, raw);
	json_object_put(j);
}

static const char *
str_of(const struct itab *t, int i)
{
	return i >= 0 && (size_t)i < t->n ? t->s[i] : NULL;
}

static const char *
verdict_word(int v)
{
	return v == 0 ? "valid" : v == 1 ? "integrity failure" :
	    "unverifiable";
}

static const char *
verdict_key(int v)
{
	return v == 0 ? "pass" : v == 1 ? "fail" : "unverifiable";
}

static void
h_ms(FILE *o, double ms)
{
	if (ms < 0)
		fputs("&ndash;", o);
	else if (isinf(ms))
		fputs("&gt; 1000 s", o);
	else if (ms < 1)
		fprintf(o, "&le; %.2f ms", ms);
	else if (ms < 1000)
		fprintf(o, "&le; %.0f ms", ms);
	else
		fprintf(o, "&le; %.1f s", ms / 1000);
}

static int
row_cmp(const void *x, const void *y)
{
	const struct row *a = x, *b = y;

	return a->calls < b->calls ? 1 : a->calls > b->calls ? -1 : 0;
}

static int
ref_cmp(const void *x, const void *y)
{
	const struct refrow *a = x, *b = y;

	return a->n < b->n ? 1 : a->n > b->n ? -1 : 0;
}

static const char css[] =
"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
"color:#111;max-width:1100px;margin:0 auto;padding:16px}"
"h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;border-bottom:2px solid"
" #333;padding-bottom:2px;margin-top:28px}"
"table{border-collapse:collapse;margin:8px 0;width:100%}"
"th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;"
"vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:"
"tabular-nums}th{background:#eee}"
"code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;"
"font-size:12px;word-break:break-all}"
".verdict{border:3px solid;padding:10px 14px;margin:10px 0;font-size:18px;"
"font-weight:bold}.v-pass{border-color:#2e7d32;background:#e8f5e9}"
".v-fail{border-color:#c62828;background:#ffebee}"
".v-unverifiable{border-color:#ef6c00;background:#fff3e0}"
".note{color:#444;font-size:13px}.warn{color:#b71c1c;font-weight:bold}"
".legend span{display:inline-block;margin-right:12px}"
".sw{display:inline-block;width:10px;height:10px;margin-right:4px}"
".sign td{height:40px}"
"@page{size:A4;margin:14mm}"
"@media print{body{max-width:none;padding:0;font-size:11px}"
"section{break-before:page}section.first{break-before:auto}"
"table{page-break-inside:auto}tr{break-inside:avoid}"
"h2{break-after:avoid}}";

static void
h_section(FILE *o, const char *id, const char *title, bool first)
{
	fprintf(o, "<section id=\"%s\"%s><h2>%s</h2>\n", id,
	    first ? " class=\"first\"" : "", title);
}

static void
html_header(const struct report *rp, FILE *o)
{
	size_t i;

	fputs("<table class=\"head\">\n<tr><th>Log id</th><td class=\"mono\" "
	    "id=\"log-id\">", o);
	h_esc(o, rp->sum.log_id[0] ? rp->sum.log_id : "(none verified)");
	fputs("</td></tr>\n<tr><th>Files</th><td class=\"mono\">", o);
	for (i = 0; i < rp->opts.nfiles; i++) {
		if (i)
			fputs("<br>", o);
		h_esc(o, rp->opts.files[i]);
	}
	fputs("</td></tr>\n<tr><th>Period asked for</th><td id=\"period-"
	    "asked\">", o);
	h_esc(o, rp->opts.since ? rp->opts.since : "the beginning");
	fputs(" .. ", o);
	h_esc(o, rp->opts.until ? rp->opts.until : "the end");
	fputs("</td></tr>\n<tr><th>Period found</th><td id=\"period-found\">",
	    o);
	if (rp->first_ts[0]) {
		h_esc(o, rp->first_ts);
		fputs(" .. ", o);
		h_esc(o, rp->last_ts);
	} else
		fputs("no verified record in the period", o);
	fputs("</td></tr>\n<tr><th>Gateway version(s)</th><td>", o);
	for (i = 0; i < rp->versions.n; i++) {
		if (i)
			fputs(", ", o);
		h_val(o, rp->versions.s[i], "?");
	}
	if (rp->versions.n == 0)
		fputs("no start record in the period", o);
	fputs("</td></tr>\n<tr><th>Body mode(s)</th><td>", o);
	for (i = 0; i < rp->bodies.n; i++) {
		if (i)
			fputs(", ", o);
		h_val(o, rp->bodies.s[i], "?");
	}
	if (rp->bodies.n == 0)
		fputs("no start record in the period", o);
	fputs(" <span class=\"note\">(whatever the mode, this report shows no "
	    "body value)</span></td></tr>\n<tr><th>Report made</th><td>", o);
	h_esc(o, rp->opts.generated ? rp->opts.generated : "?");
	fputs("</td></tr>\n<tr><th>K0 fingerprint</th><td class=\"mono\" "
	    "id=\"key-fpr\">", o);
	h_esc(o, rp->opts.key_fpr ? rp->opts.key_fpr : "?");
	fputs(" <span class=\"note\">(SHA-256 of HMAC(K0, "
	    "&quot;cmgate-audit key fingerprint&quot;), first 16 hex: names "
	    "the key, does not reveal it)</span></td></tr>\n</table>\n", o);
}

static void
html_integrity(const struct report *rp, FILE *o)
{
	const struct afmt_summary *s = &rp->sum;
	size_t i;

	h_section(o, "integrity", "1. Integrity", true);
	fprintf(o, "<div id=\"verdict\" class=\"verdict v-%s\" "
	    "data-verdict=\"%s\">Verdict: %s", verdict_key(rp->verdict),
	    verdict_key(rp->verdict), verdict_word(rp->verdict));
	if (rp->verdict == 1)
		fprintf(o, " &mdash; %llu finding(s)",
		    (unsigned long long)s->failures);
	fputs("</div>\n", o);
	if (rp->verdict == 1)
		fputs("<p class=\"warn\">The log failed verification: the "
		    "figures below count only records that verified and that "
		    "no finding names; read the findings first.</p>\n", o);
	else if (rp->verdict == 2)
		fputs("<p class=\"warn\">The log could not be verified (wrong "
		    "key, no record, or an anchor outside these files): the "
		    "figures below prove nothing.</p>\n", o);
	fprintf(o, "<table>\n<tr><th>Records verified</th><td class=\"n\" "
	    "id=\"records-verified\">%llu</td></tr>\n"
	    "<tr><th>Lines read</th><td class=\"n\">%llu</td></tr>\n",
	    (unsigned long long)s->records, (unsigned long long)s->lines);
	fputs("<tr><th>Seq range</th><td>", o);
	if (s->records)
		fprintf(o, "%llu .. %llu%s", (unsigned long long)s->first_seq,
		    (unsigned long long)s->last_seq, s->chain_from_start ?
		    " (from the log's first record)" :
		    " (earlier files not given)");
	fputs("</td></tr>\n<tr><th>Time range</th><td>", o);
	if (s->records) {
		h_esc(o, s->first_ts);
		fputs(" .. ", o);
		h_esc(o, s->last_ts);
	}
	fprintf(o, "</td></tr>\n<tr><th>Seals</th><td>%llu",
	    (unsigned long long)s->seals);
	if (s->last_seal_seq) {
		fprintf(o, "; last at seq %llu, ",
		    (unsigned long long)s->last_seal_seq);
		h_esc(o, s->last_seal_ts);
	}
	fprintf(o, "</td></tr>\n<tr><th>Unsealed tail</th><td id=\"unsealed\">"
	    "%llu record(s)", (unsigned long long)s->unsealed);
	if (s->unsealed) {
		fputs(" since ", o);
		h_esc(o, s->unsealed_from_ts);
		fputs(" <span class=\"note\">(not yet covered by a seal: a "
		    "holder of the live key could still rewrite them)</span>",
		    o);
	}
	fprintf(o, "</td></tr>\n<tr><th>Anchors checked</th><td>%zu given, "
	    "%llu outside these files</td></tr>\n<tr><th>Verified records "
	    "excluded from the figures</th><td class=\"n\" id=\"excluded\">"
	    "%llu</td></tr>\n</table>\n", rp->opts.nanchors,
	    (unsigned long long)s->anchors_unchecked,
	    (unsigned long long)rp->t.excluded);
	fprintf(o, "<h3>Findings (%llu)</h3>\n",
	    (unsigned long long)(rp->nfound + rp->found_over));
	if (rp->nfound == 0)
		fputs("<p>None.</p>\n", o);
	else
		fputs("<table id=\"findings\"><tr><th>finding</th><th>seq</th>"
		    "<th>file</th><th class=\"n\">line</th><th class=\"n\">"
		    "offset</th><th>detail</th></tr>\n", o);
	for (i = 0; i < rp->nfound; i++) {
		const struct afmt_finding *f = &rp->found[i].f;
		fprintf(o, "<tr class=\"%s\"><td><b>%s</b></td><td>",
		    afmt_kind_is_failure(f->kind) ? "failure" : "info",
		    afmt_kind_name(f->kind));
		if (f->seq && f->seq_end > f->seq)
			fprintf(o, "seq=%llu..%llu", (unsigned long long)f->seq,
			    (unsigned long long)f->seq_end);
		else if (f->seq)
			fprintf(o, "seq=%llu", (unsigned long long)f->seq);
		fputs("</td><td class=\"mono\">", o);
		h_esc(o, f->file ? f->file : "");
		fprintf(o, "</td><td class=\"n\">%llu</td><td class=\"n\">%llu"
		    "</td><td>", (unsigned long long)f->line,
		    (unsigned long long)f->offset);
		h_esc(o, f->detail);
		fputs("</td></tr>\n", o);
	}
	if (rp->nfound)
		fputs("</table>\n", o);
	if (rp->found_over)
		fprintf(o, "<p>&hellip; and %llu more finding(s) (run "
		    "<code>cmgate-audit verify</code> for all).</p>\n",
		    (unsigned long long)rp->found_over);
	fputs("</section>\n", o);
}

/* Calls per day, stacked by outcome class, as inline SVG. */
static void
html_chart(const struct report *rp, FILE *o)
{
	const double W = 1000, H = 260, L = 50, B = 40, T = 10;
	uint64_t max = 0, tot;
	double bw, x, y, h;
	size_t i;
	int c;

	for (i = 0; i < rp->ndays; i++) {
		for (tot = 0, c = 0; c < RC_NCLASS; c++)
			tot += rp->days[i].cls[c];
		if (tot > max)
			max = tot;
	}
	if (rp->ndays == 0 || max == 0) {
		fputs("<p>No calls in the period.</p>\n", o);
		return;
	}
	bw = (W - L - 10) / (double)rp->ndays;
	if (bw > 60)
		bw = 60;
	fprintf(o, "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
	    "viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" role=\"img\" "
	    "aria-label=\"calls per day by outcome\">\n", W, H);
	fprintf(o, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
	    "stroke=\"#333\"/>\n", L, H - B, W - 10, H - B);
	fprintf(o, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" "
	    "text-anchor=\"end\">%llu</text>\n<text x=\"%.0f\" y=\"%.0f\" "
	    "font-size=\"11\" text-anchor=\"end\">0</text>\n", L - 4, T + 10,
	    (unsigned long long)max, L - 4, H - B);
	for (i = 0; i < rp->ndays; i++) {
		x = L + (double)i * bw;
		y = H - B;
		for (c = 0; c < RC_NCLASS; c++) {
			uint64_t n = rp->days[i].cls[c];
			if (n == 0)
				continue;
			h = (H - B - T) * (double)n / (double)max;
			y -= h;
			fprintf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
			    "height=\"%.2f\" fill=\"%s\"><title>%s %s: %llu"
			    "</title></rect>\n", x + bw * 0.1, y, bw * 0.8, h,
			    class_colors[c], rp->days[i].d, class_titles[c],
			    (unsigned long long)n);
		}
		if (rp->ndays <= 31 || i % (rp->ndays / 15 + 1) == 0)
			fprintf(o, "<text x=\"%.2f\" y=\"%.0f\" font-size=\"10\" "
			    "text-anchor=\"middle\">%s</text>\n", x + bw / 2,
			    H - B + 14, rp->days[i].d + 5);
	}
	fputs("</svg>\n<div class=\"legend\">", o);
	for (c = 0; c < RC_NCLASS; c++)
		fprintf(o, "<span><i class=\"sw\" style=\"background:%s\"></i>"
		    "%s</span>", class_colors[c], class_titles[c]);
	fputs("</div>\n", o);
}

static void
html_activity(const struct report *rp, FILE *o)
{
	struct row *rows;
	size_t i, n = rp->rowkeys.n;
	int c;

	h_section(o, "activity", "2. Activity", false);
	fputs("<p class=\"note\" id=\"rules\"><b>Counting rules.</b> Only "
	    "records that verified, took their place in the chain and are "
	    "named by no finding are counted, and only those whose time lies "
	    "in the period (the end of the period is inclusive at the "
	    "precision given). Every request the gateway answered counts "
	    "once, in exactly one class, by its final record: an "
	    "<i>outcome</i> or a <i>reject</i>. CryptoMate's answer decides "
	    "for a forwarded request: 2xx (and 1xx/3xx) is <i>forwarded</i>, "
	    "4xx (429 included) is <i>CryptoMate 4xx</i>, 5xx is "
	    "<i>CryptoMate 5xx</i>, never a gateway error. A request refused "
	    "before it was sent (validation, authentication, idempotency, the "
	    "budget's 429) is <i>refused by the gateway</i>; one the gateway "
	    "could not complete (502, 503, 504: not reached, timed out, "
	    "answer broken off, audit failure) is a <i>gateway error</i>. An "
	    "idempotent replay counts in the class of the stored answer. "
	    "<i>Abandoned</i> requests were cut off by a crash and recorded at "
	    "the next start. Refusals with no caller (not authenticated) have "
	    "their own row, <i>(unauthenticated)</i>, including the counts of "
	    "<code>reject_summary</code> records.</p>\n", o);
	html_chart(rp, o);
	fputs("<table id=\"classes\"><tr><th>outcome</th><th class=\"n\">"
	    "calls</th></tr>\n", o);
	for (c = 0; c < RC_NCLASS; c++)
		fprintf(o, "<tr><td>%s</td><td class=\"n\" id=\"total-%s\">%llu"
		    "</td></tr>\n", class_titles[c], class_names[c],
		    (unsigned long long)rp->t.cls[c]);
	fprintf(o, "<tr><th>all answered</th><th class=\"n\" id=\"total-all\">"
	    "%llu</th></tr>\n</table>\n", (unsigned long long)rp->t.answered);
	if (rp->days_over)
		fprintf(o, "<p class=\"note\">%llu call(s) beyond %d days are "
		    "in the totals but not in the chart.</p>\n",
		    (unsigned long long)rp->days_over, RP_MAX_DAYS);

	fputs("<h3>Per caller and route</h3>\n<table id=\"rows\"><tr>"
	    "<th>caller</th><th>route</th><th class=\"n\">calls</th>"
	    "<th class=\"n\">refusals</th><th class=\"n\">upstream errors</th>"
	    "<th class=\"n\">p50 latency</th><th class=\"n\">p95 latency</th>"
	    "</tr>\n", o);
	if ((rows = malloc((n + 1) * sizeof(*rows))) == NULL)
		n = 0;
	else {
		memcpy(rows, rp->rows, n * sizeof(*rows));
		qsort(rows, n, sizeof(*rows), row_cmp);
	}
	if (rows && rp->rows_over)
		rows[n++] = rp->other_row;
	for (i = 0; i < n; i++) {
		const struct row *w = &rows[i];
		fputs("<tr><td>", o);
		if (w->caller < 0)
			fputs("(other)", o);
		else
			h_val(o, str_of(&rp->callers, w->caller),
			    "(unauthenticated)");
		fputs("</td><td class=\"mono\">", o);
		if (w->route < 0)
			fputs("(other)", o);
		else
			h_val(o, str_of(&rp->routes, w->route), "?");
		fprintf(o, "</td><td class=\"n\">%llu</td><td class=\"n\">%llu"
		    "</td><td class=\"n\">%llu</td><td class=\"n\">",
		    (unsigned long long)w->calls,
		    (unsigned long long)w->refusals,
		    (unsigned long long)w->uperr);
		h_ms(o, hist_quantile(w, 0.50));
		fputs("</td><td class=\"n\">", o);
		h_ms(o, hist_quantile(w, 0.95));
		fputs("</td></tr>\n", o);
	}
	free(rows);
	fputs("</table>\n<p class=\"note\">Latency is CryptoMate's, for "
	    "forwarded calls with an answer, from a histogram of 10 buckets a "
	    "decade: the figure is the bucket's upper bound, at most 26% above "
	    "the true percentile. Upstream errors: CryptoMate 5xx, not "
	    "reached, timed out, answer broken off.</p>\n</section>\n", o);
}

static void
html_refusals(const struct report *rp, FILE *o)
{
	struct refrow *refs;
	size_t i, n = rp->refkeys.n;

	h_section(o, "refusals", "3. Refusals by field path", false);
	fprintf(o, "<p>%llu refused call(s), %llu of them with no caller "
	    "(not authenticated); %llu refused field path(s).</p>\n",
	    (unsigned long long)rp->t.cls[RC_REFUSED],
	    (unsigned long long)rp->t.unauth,
	    (unsigned long long)rp->t.refusal_paths);
	if (n == 0) {
		fputs("<p>No field path was refused.</p>\n</section>\n", o);
		return;
	}
	fputs("<table id=\"refusal-paths\"><tr><th>field path</th>"
	    "<th>caller</th><th>error code</th><th>message</th>"
	    "<th class=\"n\">times</th></tr>\n", o);
	if ((refs = malloc(n * sizeof(*refs))) != NULL) {
		memcpy(refs, rp->refs, n * sizeof(*refs));
		qsort(refs, n, sizeof(*refs), ref_cmp);
		for (i = 0; i < n; i++) {
			fputs("<tr><td class=\"mono path\">", o);
			h_val(o, str_of(&rp->paths, refs[i].path), "?");
			fputs("</td><td>", o);
			h_val(o, str_of(&rp->callers, refs[i].caller),
			    "(unauthenticated)");
			fputs("</td><td class=\"mono\">", o);
			h_val(o, str_of(&rp->codes, refs[i].code), "?");
			fputs("</td><td>", o);
			h_val(o, refs[i].msg >= 0 ? str_of(&rp->messages,
			    refs[i].msg) : NULL, "");
			fprintf(o, "</td><td class=\"n\">%llu</td></tr>\n",
			    (unsigned long long)refs[i].n);
		}
		free(refs);
	}
	fputs("</table>\n", o);
	if (rp->refs_over)
		fprintf(o, "<p class=\"note\">%llu more refused path(s) beyond "
		    "the table's %d rows.</p>\n",
		    (unsigned long long)rp->refs_over, RP_MAX_REFS);
	fputs("<p class=\"note\">The log keeps the path, the error code and "
	    "the validator's message of each refusal, never the value "
	    "sent.</p>\n</section>\n", o);
}

static void
html_recon(const struct report *rp, FILE *o)
{
	size_t i;

	h_section(o, "reconcile", "4. Needs reconciliation", false);
	fprintf(o, "<p><b id=\"reconcile-count\">%llu</b> request(s) whose "
	    "outcome is unknown: CryptoMate may or may not have acted on them. "
	    "Check each against CryptoMate by hand.</p>\n",
	    (unsigned long long)rp->t.reconcile);
	if (rp->nrecon == 0) {
		fputs("</section>\n", o);
		return;
	}
	fputs("<table id=\"reconcile-list\"><tr><th>request id</th>"
	    "<th>caller</th><th>route</th><th>time</th><th>why</th>"
	    "<th>idempotency key</th></tr>\n", o);
	for (i = 0; i < rp->nrecon; i++) {
		const struct recon *e = &rp->recon[i];
		fputs("<tr><td class=\"mono\">", o);
		h_esc(o, e->id);
		fputs("</td><td>", o);
		h_val(o, str_of(&rp->callers, e->caller), "(unknown)");
		fputs("</td><td class=\"mono\">", o);
		h_val(o, str_of(&rp->routes, e->route), "?");
		fputs("</td><td>", o);
		h_esc(o, e->ts);
		fputs("</td><td>", o);
		h_esc(o, e->why);
		fputs("</td><td class=\"mono idem\">", o);
		h_val(o, e->idem[0] ? e->idem : NULL, "");
		fputs("</td></tr>\n", o);
	}
	fputs("</table>\n", o);
	if (rp->t.reconcile > rp->nrecon)
		fprintf(o, "<p class=\"warn\">&hellip; and %llu more not listed "
		    "here: <code>cmgate-audit report --json</code> counts them; "
		    "<code>cmgate-audit show</code> finds them.</p>\n",
		    (unsigned long long)(rp->t.reconcile - rp->nrecon));
	fputs("</section>\n", o);
}

static void
html_upstream(const struct report *rp, FILE *o)
{
	h_section(o, "upstream", "5. Upstream health", false);
	fprintf(o, "<table id=\"upstream-table\">\n"
	    "<tr><th>CryptoMate 429 answers (recorded)</th><td class=\"n\">"
	    "%llu</td></tr>\n"
	    "<tr><th>turned away by the budget (429, never sent)</th>"
	    "<td class=\"n\">%llu</td></tr>\n"
	    "<tr><th>timeouts (504)</th><td class=\"n\">%llu</td></tr>\n"
	    "<tr><th>not reached (502)</th><td class=\"n\">%llu</td></tr>\n"
	    "<tr><th>CryptoMate 5xx or answer broken off</th><td class=\"n\">"
	    "%llu</td></tr>\n"
	    "<tr><th>idempotent replays</th><td class=\"n\">%llu</td></tr>\n"
	    "<tr><th>idempotency conflicts (409/422)</th><td class=\"n\">%llu"
	    "</td></tr>\n"
	    "<tr><th>forwarding paused (after a 429 or CryptoMate out of "
	    "reach): pauses; time covered</th><td class=\"n\">%llu; %.1f s"
	    "</td></tr>\n"
	    "<tr><th>requests that waited for the budget; time waited in "
	    "all; longest</th><td class=\"n\">%llu; %.1f s; %llu ms</td>"
	    "</tr>\n</table>\n<p class=\"note\">A 429 that was retried "
	    "and then succeeded counts with its later answer; its pause is "
	    "counted above.</p>\n</section>\n",
	    (unsigned long long)rp->t.up_429,
	    (unsigned long long)rp->t.budget_refused,
	    (unsigned long long)rp->t.timeouts,
	    (unsigned long long)rp->t.not_sent,
	    (unsigned long long)rp->t.upstream_errors,
	    (unsigned long long)rp->t.replays,
	    (unsigned long long)rp->t.conflicts,
	    (unsigned long long)rp->t.pauses, (double)rp->t.paused_ms / 1e3,
	    (unsigned long long)rp->t.waited, (double)rp->t.waited_ms / 1e3,
	    (unsigned long long)rp->t.waited_max_ms);
}

static void
html_lifecycle(const struct report *rp, FILE *o)
{
	size_t i;

	h_section(o, "lifecycle", "6. Lifecycle", false);
	fprintf(o, "<p>Starts <b id=\"starts\">%llu</b> (rotations <b "
	    "id=\"rotations\">%llu</b>), clean stops <b id=\"stops\">%llu</b>, "
	    "recoveries <b id=\"recoveries\">%llu</b> (%llu bytes cut), seals "
	    "%llu, gaps between seals longer than the epoch <b "
	    "id=\"seal-gaps\">%llu</b>.</p>\n",
	    (unsigned long long)rp->t.starts,
	    (unsigned long long)rp->t.rotations,
	    (unsigned long long)rp->t.stops,
	    (unsigned long long)rp->t.recoveries,
	    (unsigned long long)rp->t.recovered_bytes,
	    (unsigned long long)rp->t.seals,
	    (unsigned long long)rp->t.seal_gaps);
	if (rp->nevents) {
		fputs("<table id=\"events\"><tr><th>time</th><th class=\"n\">"
		    "seq</th><th>event</th><th>detail</th></tr>\n", o);
		for (i = 0; i < rp->nevents; i++) {
			const struct event *e = &rp->events[i];
			fputs("<tr><td>", o);
			h_esc(o, e->ts);
			fprintf(o, "</td><td class=\"n\">%llu</td><td>",
			    (unsigned long long)e->seq);
			h_esc(o, e->what);
			fputs("</td><td>", o);
			h_esc(o, e->detail);
			fputs("</td></tr>\n", o);
		}
		fputs("</table>\n", o);
	}
	if (rp->events_over)
		fprintf(o, "<p class=\"note\">%llu more event(s) not listed."
		    "</p>\n", (unsigned long long)rp->events_over);
	fputs("<p class=\"note\">An epoch is gateway run time, so a gap "
	    "across a restart is the downtime; a gap with no restart means the "
	    "gateway stalled or its clock jumped.</p>\n</section>\n", o);
}

int
report_html(const struct report *rp, FILE *o)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "\n<meta http-equiv=\"Content-Security-Policy\" content=\""
	    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
	    "form-action 'none'; base-uri 'none'\">\n"
	    "<meta name=\"referrer\" content=\"no-referrer\">\n"
	    "<title>cmgate audit report</title>\n<style>", o);
	fputs(css, o);
	fputs("</style></head><body>\n<h1>cmgate compliance report</h1>\n", o);
	html_header(rp, o);
	html_integrity(rp, o);
	html_activity(rp, o);
	html_refusals(rp, o);
	html_recon(rp, o);
	html_upstream(rp, o);
	html_lifecycle(rp, o);
	fputs("<section id=\"signoff\"><h2>7. Sign-off</h2>\n<table "
	    "class=\"sign\"><tr><th style=\"width:25%\">Reviewed by</th><td>"
	    "</td></tr><tr><th>Role</th><td></td></tr><tr><th>Date</th><td>"
	    "</td></tr><tr><th>Signature</th><td></td></tr></table>\n"
	    "<p class=\"note\">Made by <code>cmgate-audit report</code>. The "
	    "verdict holds for the files listed and the key fingerprint "
	    "above; records after the last seal exported off the host are "
	    "only as safe as the host.</p></section>\n</body></html>\n", o);
	return ferror(o) ? -1 : 0;
}

static void
j_kv(FILE *o, const char *k, uint64_t v, bool comma)
{
	fprintf(o, "%s\"%s\":%llu", comma ? "," : "", k, (unsigned long long)v);
}

static void
j_ms(FILE *o, double ms)
{
	if (ms < 0 || isinf(ms))
		fputs("null", o);
	else
		fprintf(o, "%.3f", ms);
}

/* The elements of an interned list as a JSON array. */
static void
j_itab(FILE *o, const struct itab *t)
{
	size_t i;

	fputc('[', o);
	for (i = 0; i < t->n; i++) {
		if (i)
			fputc(',', o);
		j_val(o, t->s[i]);
	}
	fputc(']', o);
}

/* A string option as JSON: null when it was not given. */
static void
j_opt(FILE *o, const char *s)
{
	if (s)
		j_str(o, s);
	else
		fputs("null", o);
}

/* The verdict and what the report covers: log, files, periods, gateway
 * versions, body modes, when it was made and with which key. */
static void
json_header(const struct report *rp, FILE *o)
{
	size_t i;

	fputs("\"verdict\":", o);
	j_str(o, verdict_key(rp->verdict));
	fputs(",\"log\":", o);
	j_str(o, rp->sum.log_id);
	fputs(",\"files\":[", o);
	for (i = 0; i < rp->opts.nfiles; i++) {
		if (i)
			fputc(',', o);
		j_str(o, rp->opts.files[i]);
	}
	fputs("],\"period_asked\":{\"since\":", o);
	j_opt(o, rp->opts.since);
	fputs(",\"until\":", o);
	j_opt(o, rp->opts.until);
	fputs("},\"period_found\":{\"first\":", o);
	j_str(o, rp->first_ts);
	fputs(",\"last\":", o);
	j_str(o, rp->last_ts);
	fputs("},\"gateway_versions\":", o);
	j_itab(o, &rp->versions);
	fputs(",\"body_modes\":", o);
	j_itab(o, &rp->bodies);
	fputs(",\"generated\":", o);
	j_str(o, rp->opts.generated ? rp->opts.generated : "");
	fputs(",\"key_fingerprint\":", o);
	j_str(o, rp->opts.key_fpr ? rp->opts.key_fpr : "");
}

static void
json_findings(const struct report *rp, FILE *o)
{
	size_t i;

	fputs(",\"findings\":[", o);
	for (i = 0; i < rp->nfound; i++) {
		const struct afmt_finding *f = &rp->found[i].f;
		fprintf(o, "%s{\"finding\":\"%s\",\"failure\":%s", i ? "," : "",
		    afmt_kind_name(f->kind), afmt_kind_is_failure(f->kind) ?
		    "true" : "false");
		j_kv(o, "seq", f->seq, true);
		j_kv(o, "seq_end", f->seq_end, true);
		fputs(",\"file\":", o);
		j_str(o, f->file ? f->file : "");
		j_kv(o, "line", f->line, true);
		j_kv(o, "offset", f->offset, true);
		fputs(",\"detail\":", o);
		j_str(o, f->detail);
		fputc('}', o);
	}
	fputc(']', o);
}

static void
json_integrity(const struct report *rp, FILE *o)
{
	const struct afmt_summary *s = &rp->sum;

	fputs(",\"integrity\":{", o);
	j_kv(o, "records_verified", s->records, false);
	j_kv(o, "lines", s->lines, true);
	j_kv(o, "first_seq", s->first_seq, true);
	j_kv(o, "last_seq", s->last_seq, true);
	fputs(",\"first_ts\":", o);
	j_str(o, s->first_ts);
	fputs(",\"last_ts\":", o);
	j_str(o, s->last_ts);
	j_kv(o, "seals", s->seals, true);
	j_kv(o, "last_seal_seq", s->last_seal_seq, true);
	j_kv(o, "unsealed", s->unsealed, true);
	j_kv(o, "anchors", rp->opts.nanchors, true);
	j_kv(o, "anchors_unchecked", s->anchors_unchecked, true);
	j_kv(o, "failures", s->failures, true);
	j_kv(o, "excluded", rp->t.excluded, true);
	j_kv(o, "findings_not_listed", rp->found_over, true);
	json_findings(rp, o);
	fputc('}', o);
}

/* A row's caller or route: "(other)" for the row that sums the rows
 * past the table's limit. */
static void
j_rowkey(FILE *o, const struct itab *t, int i)
{
	if (i < 0)
		j_str(o, "(other)");
	else
		j_val(o, str_of(t, i));
}

/* The caller and route rows, the "(other)" row last when there is one. */
static void
json_rows(const struct report *rp, FILE *o)
{
	size_t i;

	fputs(",\"rows\":[", o);
	for (i = 0; i < rp->rowkeys.n + (rp->rows_over ? 1 : 0); i++) {
		const struct row *w = i < rp->rowkeys.n ? &rp->rows[i] :
		    &rp->other_row;
		fprintf(o, "%s{\"caller\":", i ? "," : "");
		j_rowkey(o, &rp->callers, w->caller);
		fputs(",\"route\":", o);
		j_rowkey(o, &rp->routes, w->route);
		j_kv(o, "calls", w->calls, true);
		j_kv(o, "refusals", w->refusals, true);
		j_kv(o, "upstream_errors", w->uperr, true);
		fputs(",\"p50_ms\":", o);
		j_ms(o, hist_quantile(w, 0.5));
		fputs(",\"p95_ms\":", o);
		j_ms(o, hist_quantile(w, 0.95));
		fputc('}', o);
	}
	fputc(']', o);
}

static void
json_activity(const struct report *rp, FILE *o)
{
	size_t i;
	int c;

	fputs(",\"activity\":{", o);
	j_kv(o, "records_counted", rp->t.counted, false);
	j_kv(o, "records_outside_period", rp->t.outside, true);
	j_kv(o, "answered", rp->t.answered, true);
	j_kv(o, "unauthenticated", rp->t.unauth, true);
	j_kv(o, "requests", rp->t.requests, true);
	fputs(",\"classes\":{", o);
	for (c = 0; c < RC_NCLASS; c++)
		j_kv(o, class_names[c], rp->t.cls[c], c > 0);
	fputs("},\"days\":[", o);
	for (i = 0; i < rp->ndays; i++) {
		fprintf(o, "%s{\"day\":", i ? "," : "");
		j_str(o, rp->days[i].d);
		for (c = 0; c < RC_NCLASS; c++)
			j_kv(o, class_names[c], rp->days[i].cls[c], true);
		fputc('}', o);
	}
	fputc(']', o);
	json_rows(rp, o);
	fputc('}', o);
}

static void
json_refusals(const struct report *rp, FILE *o)
{
	size_t i;

	fputs(",\"refusals\":[", o);
	for (i = 0; i < rp->refkeys.n; i++) {
		fprintf(o, "%s{\"path\":", i ? "," : "");
		j_val(o, str_of(&rp->paths, rp->refs[i].path));
		fputs(",\"caller\":", o);
		j_val(o, str_of(&rp->callers, rp->refs[i].caller));
		fputs(",\"code\":", o);
		j_val(o, str_of(&rp->codes, rp->refs[i].code));
		if (rp->refs[i].msg >= 0) {
			fputs(",\"message\":", o);
			j_val(o, str_of(&rp->messages, rp->refs[i].msg));
		}
		j_kv(o, "count", rp->refs[i].n, true);
		fputc('}', o);
	}
	fputc(']', o);
}

static void
json_recon(const struct report *rp, FILE *o)
{
	size_t i;

	fputs(",\"needs_reconciliation\":{", o);
	j_kv(o, "count", rp->t.reconcile, false);
	fputs(",\"listed\":[", o);
	for (i = 0; i < rp->nrecon; i++) {
		const struct recon *e = &rp->recon[i];
		fprintf(o, "%s{\"request_id\":", i ? "," : "");
		j_str(o, e->id);
		fputs(",\"caller\":", o);
		j_val(o, str_of(&rp->callers, e->caller));
		fputs(",\"route\":", o);
		j_val(o, str_of(&rp->routes, e->route));
		fputs(",\"ts\":", o);
		j_str(o, e->ts);
		fputs(",\"why\":", o);
		j_str(o, e->why);
		fputs(",\"idempotency_key\":", o);
		j_val(o, e->idem[0] ? e->idem : NULL);
		fputc('}', o);
	}
	fputs("]}", o);
}

static void
json_upstream(const struct report *rp, FILE *o)
{
	fputs(",\"upstream\":{", o);
	j_kv(o, "cryptomate_429", rp->t.up_429, false);
	j_kv(o, "budget_refused", rp->t.budget_refused, true);
	j_kv(o, "timeouts", rp->t.timeouts, true);
	j_kv(o, "not_sent", rp->t.not_sent, true);
	j_kv(o, "upstream_errors", rp->t.upstream_errors, true);
	j_kv(o, "replays", rp->t.replays, true);
	j_kv(o, "idempotency_conflicts", rp->t.conflicts, true);
	j_kv(o, "pauses", rp->t.pauses, true);
	j_kv(o, "paused_ms", rp->t.paused_ms, true);
	j_kv(o, "budget_waited", rp->t.waited, true);
	j_kv(o, "budget_waited_ms", rp->t.waited_ms, true);
	j_kv(o, "budget_waited_max_ms", rp->t.waited_max_ms, true);
	fputc('}', o);
}

static void
json_lifecycle(const struct report *rp, FILE *o)
{
	fputs(",\"lifecycle\":{", o);
	j_kv(o, "starts", rp->t.starts, false);
	j_kv(o, "stops", rp->t.stops, true);
	j_kv(o, "rotations", rp->t.rotations, true);
	j_kv(o, "recoveries", rp->t.recoveries, true);
	j_kv(o, "recovered_bytes", rp->t.recovered_bytes, true);
	j_kv(o, "seals", rp->t.seals, true);
	j_kv(o, "seal_gaps", rp->t.seal_gaps, true);
	fputc('}', o);
}

/*
 * The figures of report_html() as one JSON object, in named steps: the
 * header, then one step per member after it.  Each step writes its own
 * leading comma, key and closing bracket, so this is only their order.
 */
int
report_json(const struct report *rp, FILE *o)
{
	fputc('{', o);
	json_header(rp, o);
	json_integrity(rp, o);
	json_activity(rp, o);
	json_refusals(rp, o);
	json_recon(rp, o);
	json_upstream(rp, o);
	json_lifecycle(rp, o);
	fputs("}\n", o);
	return ferror(o) ? -1 : 0;
}
