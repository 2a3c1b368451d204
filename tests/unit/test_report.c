/*
 * test_report: the report's counting (src/report.c) on logs made by the
 * gateway's own writer with known contents: every outcome class, refusals
 * with field paths (one a hostile string), a caller-less refusal, a
 * reject_summary, unknown outcomes (a timeout, an abandoned request), a
 * rotation and a recovery of a torn tail.  The log is verified with the
 * verifier's own code, the report fed by its callbacks; then one record is
 * modified and must drop out of the figures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/wait.h>

#include "audit_testlib.h"
#include "report.h"

static struct ta_env env;

#define ROUTE	"POST /management/clients/individuals"
#define HOSTILE	"<img src=x onerror=alert(1)>"

static void
sub(struct audit_port *p, struct ta_wait *w, const char *type,
    const char *fmt, ...)
{
	char f[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f, sizeof(f), fmt, ap);
	va_end(ap);
	assert_int_equal(ta_submit(p, w, type, f), 0);
}

static void
req(struct audit_port *p, struct ta_wait *w, const char *id,
    const char *caller)
{
	sub(p, w, "request", "\"request_id\":\"%s\",\"caller\":\"%s\","
	    "\"route\":\"" ROUTE "\",\"body_digest\":\"%064d\"", id, caller, 0);
}

static void
outc(struct audit_port *p, struct ta_wait *w, const char *id,
    const char *caller, int up, const char *ec, int cs)
{
	sub(p, w, "outcome", "\"request_id\":\"%s\",\"caller\":\"%s\","
	    "\"upstream_status\":%d,\"latency_ms\":%s,\"error_class\":\"%s\","
	    "\"response_digest\":\"%064d\",\"client_status\":%d", id, caller,
	    up, up ? "20.0" : "5000.0", ec, 0, cs);
}

static int
count_rotated(void)
{
	DIR *d = opendir(env.dir);
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "audit.log.0", 11) == 0)
			n++;
	closedir(d);
	return n;
}

/*
 * Phase 1 (a child that ends as kill -9 would): forwarded 2xx x3,
 * CryptoMate 4xx x2, 5xx x1, a timeout, the budget's 429, refusals, and
 * one request left without outcome.  Phase 2: a torn tail appended, a
 * restart (recover + abandoned), a rotation, a reject_summary, a stop.
 */
static void
make_log(void)
{
	struct audit *a;
	struct audit_port *p;
	struct ta_wait w;
	char err[1024];
	pid_t pid;
	int status, i;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ta_env child = env;
		child.base = event_base_new();
		if ((a = audit_open(&child.cfg, err, sizeof(err))) == NULL)
			_exit(2);
		p = audit_port_new(a, child.base);
		memset(&w, 0, sizeof(w));
		for (i = 0; i < 3; i++) {
			char id[16];
			snprintf(id, sizeof(id), "ok%d", i);
			req(p, &w, id, "alpha");
		}
		req(p, &w, "c4a", "alpha");
		req(p, &w, "c4b", "alpha");
		req(p, &w, "c5", "beta");
		req(p, &w, "tmo", "alpha");
		req(p, &w, "lost", "beta");
		if (ta_wait(&child, &w) == -1 || w.failed)
			_exit(3);
		outc(p, &w, "ok0", "alpha", 201, "none", 201);
		/* One that waited 250 ms for the budget. */
		sub(p, &w, "outcome", "\"request_id\":\"ok1\",\"caller\":"
		    "\"alpha\",\"upstream_status\":200,\"latency_ms\":20.0,"
		    "\"error_class\":\"none\",\"response_digest\":\"%064d\","
		    "\"client_status\":200,\"queue_ms\":250.000", 0);
		/* Two pauses after CryptoMate's 429s, overlapping: their
		 * union is about 1.5 s, not 2.5 s. */
		sub(p, &w, "pause", "\"request_id\":\"c4b\",\"route\":\""
		    ROUTE "\",\"cause\":\"rate_limited\",\"pause_ms\":1000");
		sub(p, &w, "pause", "\"request_id\":\"c4c\",\"route\":\""
		    ROUTE "\",\"cause\":\"rate_limited\",\"pause_ms\":1500");
		outc(p, &w, "ok2", "alpha", 201, "none", 201);
		outc(p, &w, "c4a", "alpha", 422, "none", 422);
		outc(p, &w, "c4b", "alpha", 429, "rate_limited", 429);
		outc(p, &w, "c5", "beta", 503, "upstream_error", 503);
		outc(p, &w, "tmo", "alpha", 0, "timeout", 504);
		/* the budget's own 429: never sent, no request record */
		outc(p, &w, "bud", "beta", 0, "rate_limited", 429);
		for (i = 0; i < 2; i++)
			sub(p, &w, "reject", "\"request_id\":\"rj%d\",\"caller\":"
			    "\"beta\",\"route\":\"" ROUTE "\",\"client_status\":"
			    "422,\"code\":\"validation_failed\",\"fields\":"
			    "[\"address.country\",\"" HOSTILE "\"]", i);
		sub(p, &w, "reject", "\"request_id\":\"un1\",\"caller\":null,"
		    "\"route\":\"" ROUTE "\",\"client_status\":401,\"code\":"
		    "\"unauthenticated\",\"fields\":[]");
		if (ta_wait(&child, &w) == -1 || w.failed)
			_exit(4);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* A torn tail: the restart cuts it and records a recovery. */
	assert_int_equal(ta_append(env.path, "{\"v\":1,\"log\":\"ab", 16), 0);
	a = audit_open(&env.cfg, err, sizeof(err));
	if (a == NULL)
		fail_msg("audit_open: %s", err);
	p = audit_port_new(a, env.base);
	audit_request_rotate(a);
	for (i = 0; i < 5000 && count_rotated() == 0; i++)
		usleep(2000);
	assert_int_equal(count_rotated(), 1);
	/* A flood of unauthenticated requests: past the allowance (whose
	 * refusals would be records of their own; none is written here),
	 * five are only counted, and the writer sums them in one
	 * reject_summary, at the latest before the stop record. */
	while (audit_reject_admit(a, "192.0.2.1", "unauthenticated"))
		;
	for (i = 1; i < 5; i++)
		assert_false(audit_reject_admit(a, "192.0.2.1",
		    "unauthenticated"));
	audit_port_free(p);
	audit_close(a);
}

struct logs {
	char	*buf[2];
	size_t	 len[2];
};

static void
load(struct logs *l)
{
	DIR *d = opendir(env.dir);
	struct dirent *de;
	char path[600];

	l->buf[0] = NULL;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "audit.log.0", 11) == 0) {
			snprintf(path, sizeof(path), "%s/%s", env.dir,
			    de->d_name);
			l->buf[0] = ta_slurp(path, &l->len[0]);
		}
	closedir(d);
	assert_non_null(l->buf[0]);
	l->buf[1] = ta_slurp(env.path, &l->len[1]);
	assert_non_null(l->buf[1]);
}

/* Verify the two files and feed the report; its verdict is returned. */
static struct report *
run_report(const struct logs *l, struct afmt_summary *sum)
{
	static const char *const files[] = { "rotated", "live" };
	struct report_opts o = { 0 };
	struct report *rp;
	struct afmt_vfy *v;
	int i;

	o.key_fpr = "0123456789abcdef";
	o.generated = "2026-01-01T00:00:00.000Z";
	o.files = files;
	o.nfiles = 2;
	rp = report_new(&o);
	assert_non_null(rp);
	v = afmt_vfy_new(env.k0, 0, report_finding, rp);
	assert_non_null(v);
	afmt_vfy_on_record(v, report_record, rp);
	for (i = 0; i < 2; i++) {
		afmt_vfy_file(v, files[i]);
		afmt_vfy_buffer(v, l->buf[i], l->len[i]);
	}
	afmt_vfy_finish(v);
	afmt_vfy_summary(v, sum);
	report_finish(rp, sum, sum->failures ? 1 : 0);
	afmt_vfy_free(v);
	return rp;
}

static char *
render(struct report *rp, bool json)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	assert_int_equal(json ? report_json(rp, f) : report_html(rp, f), 0);
	fclose(f);
	return s;
}

static void
test_counts(void **state)
{
	struct logs l;
	struct afmt_summary sum;
	struct report_totals t;
	struct report *rp;
	uint64_t calls, refusals;
	char *html, *json;

	(void)state;
	make_log();
	load(&l);
	rp = run_report(&l, &sum);
	report_totals(rp, &t);
	assert_int_equal(sum.failures, 0);
	assert_int_equal(t.excluded, 0);
	assert_int_equal(t.cls[RC_FWD_2XX], 3);
	assert_int_equal(t.cls[RC_UP_4XX], 2);	/* 422 and CryptoMate's 429 */
	assert_int_equal(t.cls[RC_UP_5XX], 1);
	/* 2 validation + 1 unauthenticated + the budget's 429 + 5 summed */
	assert_int_equal(t.cls[RC_REFUSED], 9);
	assert_int_equal(t.cls[RC_GW_ERROR], 1);
	assert_int_equal(t.cls[RC_ABANDONED], 1);
	assert_int_equal(t.answered, 17);
	assert_int_equal(t.unauth, 6);
	assert_int_equal(t.reject_summary, 5);
	assert_int_equal(t.requests, 8);
	assert_int_equal(t.reconcile, 2);	/* timeout + abandoned */
	assert_int_equal(t.refusal_paths, 4);
	assert_int_equal(t.starts, 3);		/* new, restart, rotate */
	assert_int_equal(t.rotations, 1);
	assert_int_equal(t.recoveries, 1);
	assert_int_equal(t.recovered_bytes, 16);
	assert_int_equal(t.stops, 1);
	assert_int_equal(t.up_429, 1);
	assert_int_equal(t.budget_refused, 1);
	assert_int_equal(t.timeouts, 1);
	assert_int_equal(t.waited, 1);
	assert_int_equal(t.waited_ms, 250);
	assert_int_equal(t.waited_max_ms, 250);
	assert_int_equal(t.pauses, 2);
	/* The second began a few ms after the first: their union. */
	assert_true(t.paused_ms >= 1500 && t.paused_ms < 2400);
	assert_int_equal(report_row(rp, "\"beta\"", "", &calls, &refusals), 0);
	assert_int_equal(calls, 5);	/* 5xx, budget 429, 2 rejects, lost */
	assert_int_equal(refusals, 3);
	assert_int_equal(report_row(rp, "\"alpha\"", "\"" ROUTE "\"", &calls,
	    &refusals), 0);
	assert_int_equal(calls, 6);
	assert_int_equal(refusals, 0);
	assert_int_equal(report_row(rp, "null", "", &calls, &refusals), 0);
	assert_int_equal(calls, 6);

	html = render(rp, false);
	assert_null(strstr(html, HOSTILE));
	assert_non_null(strstr(html, "&lt;img src=x onerror=alert(1)&gt;"));
	assert_null(strstr(html, "<script"));
	assert_non_null(strstr(html, "default-src 'none'"));
	assert_non_null(strstr(html, "data-verdict=\"pass\""));
	/* no body value: the digest members never reach the page */
	assert_null(strstr(html, "body_digest"));
	json = render(rp, true);
	assert_null(strstr(json, "<img"));
	assert_non_null(strstr(json, "\"refused\":9"));
	free(html);
	free(json);
	report_free(rp);

	/* Modify the outcome of ok1 (a 2xx): it must drop out. */
	{
		char *p = strstr(l.buf[0], "\"upstream_status\":200");
		assert_non_null(p);
		p[19] = '3';		/* 200 -> 300 */
		rp = run_report(&l, &sum);
		report_totals(rp, &t);
		assert_true(sum.failures > 0);
		assert_int_equal(t.excluded, 0);	/* it never verified */
		assert_int_equal(t.cls[RC_FWD_2XX], 2);
		html = render(rp, false);
		assert_non_null(strstr(html, "data-verdict=\"fail\""));
		assert_non_null(strstr(html, "MODIFIED"));
		free(html);
		report_free(rp);
	}
	free(l.buf[0]);
	free(l.buf[1]);
}

/*
 * A key holder rewrites one record consistently with its MAC but not
 * the next prev: MODIFIED names it after it was accepted; the report,
 * holding it back one record, does not count it.
 */
static void
test_excluded_late(void **state)
{
	struct report_opts o = { 0 };
	struct afmt_finding f;
	struct afmt_rec r;
	struct report_totals t;
	struct afmt_summary sum;
	struct report *rp;
	const char line[] = "{\"v\":1,\"log\":\"00000000000000000000000000000000"
	    "\",\"seq\":5,\"epoch\":1,\"ts\":\"2026-01-01T00:00:00.000Z\","
	    "\"type\":\"reject\",\"caller\":\"x\",\"route\":\"R\","
	    "\"client_status\":400,\"code\":\"c\",\"fields\":[],\"prev\":\""
	    "0000000000000000000000000000000000000000000000000000000000000000\""
	    ",\"mac\":\""
	    "0000000000000000000000000000000000000000000000000000000000000000\""
	    "}\n";

	(void)state;
	rp = report_new(&o);
	assert_non_null(rp);
	assert_int_equal(afmt_parse(line, sizeof(line) - 1, &r), 0);
	report_record(&r, false, rp);
	memset(&f, 0, sizeof(f));
	f.kind = AFMT_MODIFIED;
	f.seq = f.seq_end = 5;
	report_finding(&f, rp);
	memset(&sum, 0, sizeof(sum));
	report_finish(rp, &sum, 1);
	report_totals(rp, &t);
	assert_int_equal(t.excluded, 1);
	assert_int_equal(t.answered, 0);
	report_free(rp);

	/* the same record, unnamed, counts */
	rp = report_new(&o);
	report_record(&r, false, rp);
	report_finish(rp, &sum, 0);
	report_totals(rp, &t);
	assert_int_equal(t.answered, 1);
	assert_int_equal(t.cls[RC_REFUSED], 1);
	/* a suspect record never counts */
	report_free(rp);
	rp = report_new(&o);
	report_record(&r, true, rp);
	report_finish(rp, &sum, 1);
	report_totals(rp, &t);
	assert_int_equal(t.answered, 0);
	assert_int_equal(t.excluded, 1);
	report_free(rp);
}

static int
setup(void **state)
{
	(void)state;
	ta_env_init(&env);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ta_env_free(&env);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test(test_excluded_late),
	};

	if (afmt_init() == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
