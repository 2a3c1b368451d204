/*
 * metrics.c: the registry behind GET /metrics.
 *
 * Each event loop owns one struct metrics and is the only thread that
 * writes it; every figure is a relaxed atomic, so the request path
 * takes no lock and a scrape on any loop can read every registry.  The
 * list of registries is the one thing under a mutex (add, remove,
 * render).
 *
 * Cardinality is capped where it is decided, not at scrape time:
 * routes come from the route table, callers from the config (at most
 * M_MAX_CALLERS names; further ones count as "_other"), status codes
 * are 100..599, validation fields are the validator's paths (unknown
 * field names, which a caller chooses, all count as "_unknown"), and
 * the request series table has a fixed number of slots.
 */
#include "config.h"
#include "conf.h"
#include "metrics.h"
#include "audit.h"
#include "idem.h"
#include "log.h"
#include "routes.h"
#include "validate.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#define M_MAX_CALLERS	64
#define M_NAME_MAX	(CONF_CALLER_NAME_MAX + 1)	/* a caller name and its NUL */
#define M_MAX_FIELDS	64
#define M_FIELD_MAX	48
#define M_SLOTS		2048		/* request series; a power of two */
#define M_NB		15		/* histogram buckets, +Inf last */
#define M_CODES		600		/* status codes 0..599 */

/* Label indexes past the named callers and fields. */
#define C_UNKNOWN	M_MAX_CALLERS		/* not authenticated */
#define C_OTHER		(M_MAX_CALLERS + 1)	/* over the cap */
#define F_UNKNOWN	M_MAX_FIELDS		/* a field we do not know */
#define F_OTHER		(M_MAX_FIELDS + 1)	/* over the cap */

/* The reasons of cmgate_forbidden_total, in label order. */
static const char *const m_reasons[] = { "forbidden_route", "not_owner" };
#define M_NREASONS	(sizeof(m_reasons) / sizeof(m_reasons[0]))
#define FORBIDDEN(m, c, r, why) \
	((m)->forbidden[((c) * nroutes + (r)) * M_NREASONS + (why)])
#define F_NIDX		(M_MAX_FIELDS + 2)

/* Seconds; the same bounds for request, upstream and queue times. */
static const double m_bounds[M_NB] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
	5, 10, 30, INFINITY,
};

struct m_hist {
	uint64_t	 b[M_NB];	/* per bucket, not cumulative */
	uint64_t	 sum_ns;
};

struct metrics {
	struct metrics	*next;
	metrics_sample_fn sample;
	void		*sample_arg;
	struct event	*tick;

	unsigned	 ncallers;	/* published with release */
	char		 callers[M_MAX_CALLERS][M_NAME_MAX];
	unsigned	 nfields;
	char		 fields[M_MAX_FIELDS][M_FIELD_MAX];
	uint64_t	 field_n[F_NIDX];

	/* cmgate_requests_total: key = (route + 1) << 20 | caller << 10 |
	 * code, 0 = free slot. */
	uint32_t	 skey[M_SLOTS];
	uint64_t	 sval[M_SLOTS];
	uint64_t	 dropped;

	/* cmgate_forbidden_total: [caller][route][reason], caller as for
	 * requests (C_UNKNOWN never occurs: a refusal names its caller). */
	uint64_t	*forbidden;

	struct m_hist	*req_dur;	/* per route, nroutes + 1 ("other") */
	struct m_hist	*up_dur;
	struct m_hist	 queue;
	uint64_t	 up_codes[M_CODES];

	/* The loop's gauges, sampled on its own thread. */
	int		 g_conns, g_active, g_inflight, g_draining;
};

static pthread_mutex_t	 m_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics	*m_all;
static int64_t		 m_queue_depth;
static uint64_t		 m_reload_ok, m_reload_fail;
static int64_t		 m_reload_last_ok_s;	/* also the start time */
static int		 m_reload_last_good = 1;
static int64_t		 m_start_s;

#define LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ADD(p, v)	__atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
/* A string constant into an evbuffer. */
#define PUTS(o, s)	evbuffer_add((o), (s), sizeof(s) - 1)

/* ---- writing (the loop's own thread) ------------------------------ */

static void
m_sample(struct metrics *m)
{
	struct metrics_gauges g = { 0, 0, 0, 0 };

	m->sample(m->sample_arg, &g);
	STORE(&m->g_conns, g.conns);
	STORE(&m->g_active, g.active);
	STORE(&m->g_inflight, g.inflight);
	STORE(&m->g_draining, g.draining);
}

static void
m_on_tick(evutil_socket_t fd, short what, void *arg)
{
	m_sample(arg);
}

struct metrics *
metrics_new(struct event_base *base, metrics_sample_fn sample, void *arg)
{
	struct metrics *m;
	struct timeval tv = { 1, 0 };

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->sample = sample;
	m->sample_arg = arg;
	m->req_dur = calloc(nroutes + 1, sizeof(*m->req_dur));
	m->up_dur = calloc(nroutes + 1, sizeof(*m->up_dur));
	m->forbidden = calloc((M_MAX_CALLERS + 2) * nroutes * M_NREASONS,
	    sizeof(*m->forbidden));
	if (m->req_dur == NULL || m->up_dur == NULL || m->forbidden == NULL)
		goto fail;
	/* Other loops' gauges are read from their last sample, so each
	 * loop refreshes its own once a second. */
	m->tick = event_new(base, -1, EV_PERSIST, m_on_tick, m);
	if (m->tick == NULL || event_add(m->tick, &tv) == -1)
		goto fail;
	m_sample(m);
	pthread_mutex_lock(&m_lock);
	if (m_start_s == 0)
		m_start_s = m_reload_last_ok_s = (int64_t)time(NULL);
	m->next = m_all;
	m_all = m;
	pthread_mutex_unlock(&m_lock);
	return m;
fail:
	if (m->tick)
		event_free(m->tick);
	free(m->req_dur);
	free(m->forbidden);
	free(m->up_dur);
	free(m);
	return NULL;
}

void
metrics_free(struct metrics *m)
{
	struct metrics **pp;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m_lock);
	for (pp = &m_all; *pp != NULL; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	pthread_mutex_unlock(&m_lock);
	event_free(m->tick);
	free(m->req_dur);
	free(m->forbidden);
	free(m->up_dur);
	free(m);
}

static size_t
m_route_idx(const struct route *r)
{
	if (r == NULL || r < routes || r >= routes + nroutes)
		return nroutes;
	return (size_t)(r - routes);
}

static unsigned
m_caller_idx(struct metrics *m, const char *name)
{
	unsigned i, n = m->ncallers;	/* only this thread writes it */

	if (name == NULL)
		return C_UNKNOWN;
	for (i = 0; i < n; i++)
		if (strcmp(m->callers[i], name) == 0)
			return i;
	if (n == M_MAX_CALLERS || strlen(name) >= M_NAME_MAX)
		return C_OTHER;
	strcpy(m->callers[n], name);
	/* The name is written before a reader can see it counted. */
	__atomic_store_n(&m->ncallers, n + 1, __ATOMIC_RELEASE);
	return n;
}

static void
m_hist_add(struct m_hist *h, double ms)
{
	double s = ms / 1e3;
	size_t i;

	if (!(s >= 0))
		s = 0;
	for (i = 0; i < M_NB - 1 && s > m_bounds[i]; i++)
		;
	ADD(&h->b[i], 1);
	ADD(&h->sum_ns, (uint64_t)(ms * 1e6));
}

static void
m_series_add(struct metrics *m, uint32_t key)
{
	uint32_t i = (key * 2654435761u) & (M_SLOTS - 1);
	size_t probes;

	for (probes = 0; probes < M_SLOTS; probes++) {
		uint32_t k = m->skey[i];
		if (k == key) {
			ADD(&m->sval[i], 1);
			return;
		}
		if (k == 0) {
			__atomic_store_n(&m->skey[i], key, __ATOMIC_RELEASE);
			ADD(&m->sval[i], 1);
			return;
		}
		i = (i + 1) & (M_SLOTS - 1);
	}
	ADD(&m->dropped, 1);
}

void
metrics_request(struct metrics *m, const struct route *route,
    const char *caller, int status, int up_status, double up_latency_ms,
    double queue_ms, double total_ms)
{
	size_t r;
	unsigned c;

	if (m == NULL)
		return;
	r = m_route_idx(route);
	c = m_caller_idx(m, caller);
	if (status < 100 || status >= M_CODES)
		status = 0;
	m_series_add(m, (uint32_t)((r + 1) << 20 | c << 10 | (unsigned)status));
	if (total_ms >= 0)
		m_hist_add(&m->req_dur[r], total_ms);
	if (up_status > 0 || up_latency_ms > 0) {
		m_hist_add(&m->up_dur[r], up_latency_ms);
		if (up_status > 0 && up_status < M_CODES)
			ADD(&m->up_codes[up_status], 1);
	}
	if (queue_ms > 0 || up_status > 0 || up_latency_ms > 0)
		m_hist_add(&m->queue, queue_ms);
}

void
metrics_forbidden(struct metrics *m, const char *caller,
    const struct route *route, const char *reason)
{
	size_t r, why;
	unsigned c;

	if (m == NULL || (r = m_route_idx(route)) >= nroutes)
		return;
	for (why = 0; why < M_NREASONS; why++)
		if (strcmp(m_reasons[why], reason) == 0)
			break;
	if (why == M_NREASONS)
		return;
	c = m_caller_idx(m, caller);
	ADD(&FORBIDDEN(m, c, r, why), 1);
}

static unsigned
m_field_idx(struct metrics *m, const struct verror *e)
{
	unsigned i, n = m->nfields;

	/* Unknown fields are named by the caller: never a label. */
	if (e->field == NULL || e->message == NULL ||
	    strncmp(e->message, "unknown field", 13) == 0)
		return F_UNKNOWN;
	for (i = 0; i < n; i++)
		if (strcmp(m->fields[i], e->field) == 0)
			return i;
	if (n == M_MAX_FIELDS || strlen(e->field) >= M_FIELD_MAX)
		return F_OTHER;
	strcpy(m->fields[n], e->field);
	__atomic_store_n(&m->nfields, n + 1, __ATOMIC_RELEASE);
	return n;
}

void
metrics_validation_failed(struct metrics *m, const struct verrors *errs)
{
	size_t i;

	if (m == NULL || errs == NULL)
		return;
	for (i = 0; i < errs->n; i++)
		ADD(&m->field_n[m_field_idx(m, &errs->v[i])], 1);
}

void
metrics_queue_depth_add(int delta)
{
	ADD(&m_queue_depth, (int64_t)delta);
}

void
metrics_reload_result(bool ok)
{
	if (ok) {
		ADD(&m_reload_ok, 1);
		STORE(&m_reload_last_ok_s, (int64_t)time(NULL));
	} else
		ADD(&m_reload_fail, 1);
	STORE(&m_reload_last_good, ok ? 1 : 0);
}

/* ---- rendering (any loop, under m_lock) ---------------------------- */

struct m_row {
	size_t		 route;
	const char	*caller;
	unsigned	 code;
	uint64_t	 n;
};

static int
m_row_cmp(const void *a, const void *b)
{
	const struct m_row *x = a, *y = b;
	int c;

	if (x->route != y->route)
		return x->route < y->route ? -1 : 1;
	if ((c = strcmp(x->caller, y->caller)) != 0)
		return c;
	return x->code < y->code ? -1 : x->code > y->code;
}

/* A label value: \ " and newline escaped; anything odd replaced. */
static void
m_label(struct evbuffer *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(o, "\\%c", *s);
		else if (*s == '\n')
			PUTS(o, "\\n");
		else if ((unsigned char)*s < 0x20)
			PUTS(o, "?");
		else
			evbuffer_add(o, s, 1);
	}
}

static void
m_route_label(struct evbuffer *o, size_t r)
{
	PUTS(o, "route=\"");
	if (r < nroutes)
		m_label(o, routes[r].name);
	else
		PUTS(o, "other");
	PUTS(o, "\"");
}

static void
m_head(struct evbuffer *o, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static void
m_le(char *buf, size_t len, double b)
{
	if (isinf(b))
		snprintf(buf, len, "+Inf");
	else
		snprintf(buf, len, "%g", b);
}

/* One histogram's samples; labels is "" or "route=\"...\"" text. */
static void
m_hist_emit(struct evbuffer *o, const char *name, const char *labels,
    const uint64_t *le_cum, const double *bounds, size_t nb,
    uint64_t sum_ns)
{
	char le[32];
	size_t i;

	for (i = 0; i < nb; i++) {
		m_le(le, sizeof(le), bounds[i]);
		evbuffer_add_printf(o, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n",
		    name, labels, labels[0] ? "," : "", le, le_cum[i]);
	}
	evbuffer_add_printf(o, "%s_sum%s%s%s %.9f\n", name,
	    labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
	    (double)sum_ns / 1e9);
	evbuffer_add_printf(o, "%s_count%s%s%s %" PRIu64 "\n", name,
	    labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
	    le_cum[nb - 1]);
}

/* Sum one histogram over every registry (sel picks it) and print it. */
static void
m_hist_total(struct evbuffer *o, const char *name, size_t r,
    struct m_hist *(*sel)(struct metrics *, size_t))
{
	uint64_t cum[M_NB] = { 0 }, sum = 0;
	struct metrics *m;
	char labels[600];
	size_t i;

	for (m = m_all; m != NULL; m = m->next) {
		struct m_hist *h = sel(m, r);
		for (i = 0; i < M_NB; i++)
			cum[i] += LOAD(&h->b[i]);
		sum += LOAD(&h->sum_ns);
	}
	for (i = 1; i < M_NB; i++)
		cum[i] += cum[i - 1];
	labels[0] = '\0';
	if (r != (size_t)-1) {
		/* Route names are constants without quotes or escapes. */
		if (r < nroutes)
			snprintf(labels, sizeof(labels), "route=\"%s\"",
			    routes[r].name);
		else
			snprintf(labels, sizeof(labels), "route=\"other\"");
	}
	m_hist_emit(o, name, labels, cum, m_bounds, M_NB, sum);
}

static struct m_hist *
sel_req(struct metrics *m, size_t r)
{
	return &m->req_dur[r];
}

static struct m_hist *
sel_up(struct metrics *m, size_t r)
{
	return &m->up_dur[r];
}

static struct m_hist *
sel_queue(struct metrics *m, size_t r)
{
	return &m->queue;
}

static const char *
m_caller_name(const struct metrics *m, unsigned c)
{
	if (c == C_UNKNOWN)
		return "unknown";
	if (c == C_OTHER)
		return "_other";
	return m->callers[c];
}

static int
m_render_requests(struct evbuffer *o)
{
	struct m_row *rows;
	struct metrics *m;
	size_t n = 0, cap = 0, i, j;

	for (m = m_all; m != NULL; m = m->next)
		cap += M_SLOTS;
	if ((rows = calloc(cap ? cap : 1, sizeof(*rows))) == NULL)
		return -1;
	for (m = m_all; m != NULL; m = m->next) {
		unsigned nc = __atomic_load_n(&m->ncallers, __ATOMIC_ACQUIRE);
		for (i = 0; i < M_SLOTS; i++) {
			uint32_t k = __atomic_load_n(&m->skey[i],
			    __ATOMIC_ACQUIRE);
			unsigned c = (k >> 10) & 1023;
			if (k == 0 || (c < M_MAX_CALLERS && c >= nc))
				continue;
			rows[n].route = (k >> 20) - 1;
			rows[n].caller = m_caller_name(m, c);
			rows[n].code = k & 1023;
			rows[n].n = LOAD(&m->sval[i]);
			n++;
		}
	}
	qsort(rows, n, sizeof(*rows), m_row_cmp);
	m_head(o, "cmgate_requests_total", "counter",
	    "Requests answered, by route, caller and HTTP status code.");
	for (i = 0; i < n; i = j) {
		uint64_t sum = rows[i].n;
		for (j = i + 1; j < n && m_row_cmp(&rows[i], &rows[j]) == 0;
		    j++)
			sum += rows[j].n;
		PUTS(o, "cmgate_requests_total{");
		m_route_label(o, rows[i].route);
		PUTS(o, ",caller=\"");
		m_label(o, rows[i].caller);
		evbuffer_add_printf(o, "\",code=\"%u\"} %" PRIu64 "\n",
		    rows[i].code, sum);
	}
	free(rows);
	return 0;
}

/*
 * cmgate_forbidden_total{caller,route,reason}: each registry numbers
 * its callers itself, so the rows are summed by name, like the request
 * counters.  Rows reuse struct m_row with code = the reason's index.
 */
static int
m_render_forbidden(struct evbuffer *o)
{
	struct m_row *rows;
	struct metrics *m;
	size_t n = 0, cap = 0, i, j, r, why;
	unsigned c, nc;

	for (m = m_all; m != NULL; m = m->next)
		cap += (M_MAX_CALLERS + 2) * nroutes * M_NREASONS;
	if ((rows = calloc(cap ? cap : 1, sizeof(*rows))) == NULL)
		return -1;
	for (m = m_all; m != NULL; m = m->next) {
		nc = __atomic_load_n(&m->ncallers, __ATOMIC_ACQUIRE);
		for (c = 0; c < M_MAX_CALLERS + 2; c++) {
			if (c < M_MAX_CALLERS && c >= nc)
				continue;
			for (r = 0; r < nroutes; r++)
				for (why = 0; why < M_NREASONS; why++) {
					uint64_t v = LOAD(&FORBIDDEN(m, c, r,
					    why));
					if (v == 0)
						continue;
					rows[n].route = r;
					rows[n].caller = m_caller_name(m, c);
					rows[n].code = (unsigned)why;
					rows[n++].n = v;
				}
		}
	}
	qsort(rows, n, sizeof(*rows), m_row_cmp);
	m_head(o, "cmgate_forbidden_total", "counter",
	    "Requests refused by least privilege, by caller, route and "
	    "reason (forbidden_route: not in the caller's allow; not_owner: "
	    "a client the caller does not own).");
	for (i = 0; i < n; i = j) {
		uint64_t sum = rows[i].n;
		for (j = i + 1; j < n && m_row_cmp(&rows[i], &rows[j]) == 0;
		    j++)
			sum += rows[j].n;
		PUTS(o, "cmgate_forbidden_total{caller=\"");
		m_label(o, rows[i].caller);
		PUTS(o, "\",");
		m_route_label(o, rows[i].route);
		evbuffer_add_printf(o, ",reason=\"%s\"} %" PRIu64 "\n",
		    m_reasons[rows[i].code], sum);
	}
	free(rows);
	return 0;
}

static void
m_render_fields(struct evbuffer *o)
{
	struct metrics *m, *k;
	unsigned i, nf, j, nk;

	m_head(o, "cmgate_validation_failures_total", "counter",
	    "Field errors in bodies answered 422, by field path "
	    "(_unknown: a field not in the schema).");
	/* Print each name once: at the first registry that holds it. */
	for (m = m_all; m != NULL; m = m->next) {
		nf = __atomic_load_n(&m->nfields, __ATOMIC_ACQUIRE);
		for (i = 0; i < nf; i++) {
			uint64_t sum = 0;
			int seen = 0;
			for (k = m_all; k != m && !seen; k = k->next) {
				nk = __atomic_load_n(&k->nfields,
				    __ATOMIC_ACQUIRE);
				for (j = 0; j < nk; j++)
					if (strcmp(k->fields[j],
					    m->fields[i]) == 0)
						seen = 1;
			}
			if (seen)
				continue;
			for (k = m; k != NULL; k = k->next) {
				nk = __atomic_load_n(&k->nfields,
				    __ATOMIC_ACQUIRE);
				for (j = 0; j < nk; j++)
					if (strcmp(k->fields[j],
					    m->fields[i]) == 0)
						sum += LOAD(&k->field_n[j]);
			}
			PUTS(o, "cmgate_validation_failures_total"
			    "{field=\"");
			m_label(o, m->fields[i]);
			evbuffer_add_printf(o, "\"} %" PRIu64 "\n", sum);
		}
	}
	for (i = F_UNKNOWN; i < F_NIDX; i++) {
		uint64_t sum = 0;
		for (m = m_all; m != NULL; m = m->next)
			sum += LOAD(&m->field_n[i]);
		evbuffer_add_printf(o, "cmgate_validation_failures_total"
		    "{field=\"%s\"} %" PRIu64 "\n",
		    i == F_UNKNOWN ? "_unknown" : "_other", sum);
	}
}

static void
m_render_upstream(struct evbuffer *o)
{
	struct metrics *m;
	size_t r;
	int64_t qd;
	long inflight = 0;
	unsigned c;

	m_head(o, "cmgate_upstream_request_duration_seconds", "histogram",
	    "Time from sending a request to CryptoMate to its answer "
	    "(or error), by route.");
	for (r = 0; r < nroutes; r++)
		m_hist_total(o, "cmgate_upstream_request_duration_seconds", r,
		    sel_up);
	m_head(o, "cmgate_upstream_responses_total", "counter",
	    "Answers from CryptoMate, by HTTP status code.");
	for (c = 100; c < M_CODES; c++) {
		uint64_t sum = 0;
		for (m = m_all; m != NULL; m = m->next)
			sum += LOAD(&m->up_codes[c]);
		if (sum > 0)
			evbuffer_add_printf(o, "cmgate_upstream_responses_total"
			    "{code=\"%u\"} %" PRIu64 "\n", c, sum);
	}
	m_head(o, "cmgate_upstream_queue_wait_seconds", "histogram",
	    "Time a request waited for upstream budget before it was sent "
	    "or refused.");
	m_hist_total(o, "cmgate_upstream_queue_wait_seconds", (size_t)-1,
	    sel_queue);
	qd = LOAD(&m_queue_depth);
	m_head(o, "cmgate_upstream_queue_depth", "gauge",
	    "Requests waiting for upstream budget now.");
	evbuffer_add_printf(o, "cmgate_upstream_queue_depth %" PRId64 "\n",
	    qd < 0 ? 0 : qd);
	for (m = m_all; m != NULL; m = m->next)
		inflight += LOAD(&m->g_inflight);
	m_head(o, "cmgate_upstream_inflight_requests", "gauge",
	    "Requests sent to CryptoMate and not yet answered.");
	evbuffer_add_printf(o, "cmgate_upstream_inflight_requests %ld\n",
	    inflight);
}

static void
m_render_audit(struct evbuffer *o, const struct audit *a)
{
	struct audit_stats st;
	const double *b = audit_stats_buckets();

	audit_get_stats(a, &st);
	m_head(o, "cmgate_audit_write_duration_seconds", "histogram",
	    "Time of each write(2) of a batch of audit records.");
	m_hist_emit(o, "cmgate_audit_write_duration_seconds", "",
	    st.write_le, b, 12, st.write_ns_sum);
	m_head(o, "cmgate_audit_fsync_duration_seconds", "histogram",
	    "Time of each fdatasync(2) of the audit log (one per batch).");
	m_hist_emit(o, "cmgate_audit_fsync_duration_seconds", "",
	    st.fsync_le, b, 12, st.fsync_ns_sum);
	m_head(o, "cmgate_audit_records_total", "counter",
	    "Audit records made durable.");
	evbuffer_add_printf(o, "cmgate_audit_records_total %" PRIu64 "\n",
	    st.records);
	m_head(o, "cmgate_audit_batches_total", "counter",
	    "Group commits (one write and one fdatasync each).");
	evbuffer_add_printf(o, "cmgate_audit_batches_total %" PRIu64 "\n",
	    st.batches);
	m_head(o, "cmgate_audit_written_bytes_total", "counter",
	    "Bytes written to the audit log.");
	evbuffer_add_printf(o, "cmgate_audit_written_bytes_total %" PRIu64
	    "\n", st.bytes);
	m_head(o, "cmgate_audit_rejects_summarized_total", "counter",
	    "Refusals of unauthenticated requests past their allowance of "
	    "own records, counted in reject_summary records instead.");
	evbuffer_add_printf(o, "cmgate_audit_rejects_summarized_total %"
	    PRIu64 "\n", st.rejects_summarized);
	m_head(o, "cmgate_audit_reject_summaries_total", "counter",
	    "reject_summary records written.");
	evbuffer_add_printf(o, "cmgate_audit_reject_summaries_total %" PRIu64
	    "\n", st.reject_summaries);
	m_head(o, "cmgate_audit_healthy", "gauge",
	    "1 while the audit log can record; 0 once it failed (every "
	    "request then gets 503).");
	evbuffer_add_printf(o, "cmgate_audit_healthy %d\n",
	    audit_healthy(a) ? 1 : 0);
}

static void
m_render_process(struct evbuffer *o)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	m_head(o, "cmgate_build_info", "gauge",
	    "Always 1; the labels tell the version and the libraries.");
	PUTS(o, "cmgate_build_info{version=\"");
	m_label(o, PACKAGE_VERSION);
	PUTS(o, "\",libevent=\"");
	m_label(o, event_get_version());
	PUTS(o, "\",libcurl=\"");
	m_label(o, cv->version);
	PUTS(o, "\",json_c=\"");
	m_label(o, json_c_version());
	PUTS(o, "\",openssl=\"");
	m_label(o, OpenSSL_version(OPENSSL_VERSION_STRING));
	PUTS(o, "\"} 1\n");
	m_head(o, "cmgate_start_time_seconds", "gauge",
	    "When the process started, in seconds since the Unix epoch.");
	evbuffer_add_printf(o, "cmgate_start_time_seconds %" PRId64 "\n",
	    m_start_s);
	m_head(o, "cmgate_config_reloads_total", "counter",
	    "SIGHUP reloads, by result.");
	evbuffer_add_printf(o, "cmgate_config_reloads_total{result=\"success\"}"
	    " %" PRIu64 "\ncmgate_config_reloads_total{result=\"failure\"} %"
	    PRIu64 "\n", LOAD(&m_reload_ok), LOAD(&m_reload_fail));
	m_head(o, "cmgate_config_last_reload_successful", "gauge",
	    "1 if the last reload succeeded (or none was tried); 0 if the "
	    "running config is older than the file.");
	evbuffer_add_printf(o, "cmgate_config_last_reload_successful %d\n",
	    LOAD(&m_reload_last_good));
	m_head(o, "cmgate_config_last_reload_success_timestamp_seconds",
	    "gauge", "When the running config was loaded, in seconds since "
	    "the Unix epoch.");
	evbuffer_add_printf(o,
	    "cmgate_config_last_reload_success_timestamp_seconds %" PRId64
	    "\n", LOAD(&m_reload_last_ok_s));
}

int
metrics_render(struct metrics *self, const struct audit *audit,
    struct idem *idem, struct evbuffer *o)
{
	struct metrics *m;
	long conns = 0, active = 0;
	int draining = 0, rc = 0;
	uint64_t dropped = 0;
	size_t r;

	if (self != NULL)
		m_sample(self);
	pthread_mutex_lock(&m_lock);
	m_render_process(o);
	if (m_render_requests(o) == -1)
		rc = -1;
	m_head(o, "cmgate_request_duration_seconds", "histogram",
	    "Time from a request's arrival to its answer, by route.");
	/* Requests of no route are answered at once: no histogram. */
	for (r = 0; r < nroutes; r++)
		m_hist_total(o, "cmgate_request_duration_seconds", r,
		    sel_req);
	if (m_render_forbidden(o) == -1)
		rc = -1;
	m_render_fields(o);
	m_render_upstream(o);
	for (m = m_all; m != NULL; m = m->next) {
		conns += LOAD(&m->g_conns);
		active += LOAD(&m->g_active);
		draining |= LOAD(&m->g_draining);
		dropped += LOAD(&m->dropped);
	}
	m_head(o, "cmgate_open_connections", "gauge",
	    "Open caller connections.");
	evbuffer_add_printf(o, "cmgate_open_connections %ld\n", conns);
	m_head(o, "cmgate_requests_in_flight", "gauge",
	    "Requests received and not yet answered.");
	evbuffer_add_printf(o, "cmgate_requests_in_flight %ld\n", active);
	m_head(o, "cmgate_draining", "gauge",
	    "1 after SIGTERM/SIGINT: no new requests, the ones in flight "
	    "finish.");
	evbuffer_add_printf(o, "cmgate_draining %d\n", draining);
	m_head(o, "cmgate_metrics_series_dropped_total", "counter",
	    "Requests not counted in cmgate_requests_total because its "
	    "series table was full.");
	evbuffer_add_printf(o, "cmgate_metrics_series_dropped_total %" PRIu64
	    "\n", dropped);
	pthread_mutex_unlock(&m_lock);
	if (audit != NULL)
		m_render_audit(o, audit);
	if (idem != NULL) {
		m_head(o, "cmgate_idempotency_healthy", "gauge",
		    "1 while the idempotency store can record; 0 once it "
		    "failed (keyed requests then get 503).");
		evbuffer_add_printf(o, "cmgate_idempotency_healthy %d\n",
		    idem_healthy(idem) ? 1 : 0);
	}
	return rc;
}
