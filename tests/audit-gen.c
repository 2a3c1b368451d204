/*
 * audit-gen: make audit logs through the gateway's own writer (audit.c
 * in libcmgate.a), for the audit tests, and measure it (bench).
 *
 *   audit-gen gen DIR [--requests N] [--seal-every K] [--open M]
 *       [--concurrency C] [--epoch-s S] [--max-bytes B] [--body MODE]
 *       [--crash] [--rotate-at N] [--body-file FILE]
 *     Writes DIR/audit.log (key DIR/k0, made when missing).  Each
 *     request gets a request record and, once that is durable, an
 *     outcome record; every 5th is a reject instead.  --seal-every
 *     ends an epoch after every K records; --open leaves the last M
 *     requests without outcome; --crash ends the process without
 *     audit_close, as kill -9 would after the records were durable.
 *     --body-file: request records carry audit_body_member() of the
 *     JSON body in FILE (else a made-up digest).
 *     Prints "records=N failed=F log=ID" on stdout.
 *
 *   audit-gen bench DIR --concurrency C [--seconds S] [--records N]
 *     C submitters, each submitting its next record (a request, then
 *     its outcome, and so on) as soon as the last one is durable.  Prints records/s and the latency from
 *     submit to callback (p50/p99/max) as one line.
 */
#include "audit.h"
#include "conf.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

struct gen {
	struct audit		*a;
	struct audit_port	*port;
	struct event_base	*base;
	long			 requests, started, finished;
	long			 open_last, seal_every, rotate_at;
	long			 records, failed;
	int			 concurrency;
	char			*body_member;	/* from --body-file */
	/* bench */
	bool			 bench;
	uint64_t		 t_end_ns;
	long			 max_records;
	uint64_t		*lat;
	size_t			 nlat, caplat;
};

struct slot {
	struct gen	*g;
	long		 n;		/* request number */
	char		 id[33];
	uint64_t	 t0;
	bool		 outcome;	/* bench: next is the outcome */
};

static void gen_next(struct slot *);

static void
gen_count(struct gen *g, bool ok)
{
	if (!ok) {
		g->failed++;
		return;
	}
	g->records++;
	if (g->seal_every > 0 && g->records % g->seal_every == 0)
		audit_request_seal(g->a);
	if (g->rotate_at > 0 && g->records == g->rotate_at)
		audit_request_rotate(g->a);
}

static void
gen_done(struct slot *s)
{
	struct gen *g = s->g;

	if (++g->finished == g->requests || g->failed > 0)
		event_base_loopbreak(g->base);
	else
		gen_next(s);
}

static void
on_outcome(bool ok, uint64_t seq, void *arg)
{
	struct slot *s = arg;

	gen_count(s->g, ok);
	gen_done(s);
}

static void
on_request(bool ok, uint64_t seq, void *arg)
{
	struct slot *s = arg;
	struct gen *g = s->g;
	char f[512];

	gen_count(g, ok);
	if (!ok || s->n >= g->requests - g->open_last) {
		gen_done(s);
		return;
	}
	snprintf(f, sizeof(f), "\"request_id\":\"%s\",\"caller\":\"onboarding\","
	    "\"upstream_status\":201,\"latency_ms\":12.5,\"error_class\":"
	    "\"none\",\"response_digest\":\"%064d\",\"client_status\":201",
	    s->id, 0);
	if (audit_submit(g->port, "outcome", f, on_outcome, s) == -1) {
		g->failed++;
		gen_done(s);
	}
}

static void
gen_next(struct slot *s)
{
	struct gen *g = s->g;
	char f[16384];
	int rc;

	if (g->started >= g->requests)
		return;
	s->n = g->started++;
	if (random_id(s->id) == -1)
		abort();
	if (s->n % 5 == 4) {
		snprintf(f, sizeof(f), "\"request_id\":\"%s\",\"caller\":"
		    "\"onboarding\",\"route\":\"POST /management/clients/"
		    "individuals\",\"client_status\":422,\"code\":"
		    "\"validation_failed\",\"fields\":[\"address.country\","
		    "\"birth_date\"]", s->id);
		rc = audit_submit(g->port, "reject", f, on_outcome, s);
	} else if (g->body_member) {
		snprintf(f, sizeof(f), "\"request_id\":\"%s\",\"caller\":"
		    "\"onboarding\",\"route\":\"POST /management/clients/"
		    "individuals\",%s", s->id, g->body_member);
		rc = audit_submit(g->port, "request", f, on_request, s);
	} else {
		snprintf(f, sizeof(f), "\"request_id\":\"%s\",\"caller\":"
		    "\"onboarding\",\"route\":\"POST /management/clients/"
		    "individuals\",\"body_digest\":\"%064ld\"", s->id, s->n);
		rc = audit_submit(g->port, "request", f, on_request, s);
	}
	if (rc == -1) {
		g->failed++;
		event_base_loopbreak(g->base);
	}
}

/* ---- bench ---- */

static void bench_submit(struct slot *);

static void
on_bench(bool ok, uint64_t seq, void *arg)
{
	struct slot *s = arg;
	struct gen *g = s->g;
	uint64_t now = now_mono_ns();

	if (!ok) {
		g->failed++;
		event_base_loopbreak(g->base);
		return;
	}
	g->records++;
	if (g->nlat == g->caplat) {
		size_t cap = g->caplat ? g->caplat * 2 : 65536;
		uint64_t *n = realloc(g->lat, cap * sizeof(*n));
		if (n == NULL)
			abort();
		g->lat = n;
		g->caplat = cap;
	}
	g->lat[g->nlat++] = now - s->t0;
	if (now >= g->t_end_ns || (g->max_records > 0 &&
	    g->started >= g->max_records)) {
		if (--g->concurrency == 0)
			event_base_loopbreak(g->base);
		return;
	}
	bench_submit(s);
}

/* Each submitter alternates a request record and its outcome, as a
 * call does (about 460 and 490 bytes in digest mode). */
static void
bench_submit(struct slot *s)
{
	struct gen *g = s->g;
	const char *type;
	char f[512];

	g->started++;
	if (!s->outcome) {
		if (random_id(s->id) == -1)
			abort();
		snprintf(f, sizeof(f), "\"request_id\":\"%s\",\"caller\":"
		    "\"onboarding\",\"route\":\"POST /management/clients/"
		    "individuals\",\"body_digest\":\"%064ld\"", s->id,
		    g->started);
		type = "request";
	} else {
		snprintf(f, sizeof(f), "\"request_id\":\"%s\",\"caller\":"
		    "\"onboarding\",\"upstream_status\":201,\"latency_ms\":"
		    "12.345,\"error_class\":\"none\",\"response_digest\":"
		    "\"%064ld\",\"client_status\":201", s->id, g->started);
		type = "outcome";
	}
	s->outcome = !s->outcome;
	s->t0 = now_mono_ns();
	if (audit_submit(g->port, type, f, on_bench, s) == -1) {
		g->failed++;
		event_base_loopbreak(g->base);
	}
}

static int
u64cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* ---- main ---- */

static int
make_key(const char *path)
{
	unsigned char k[32];
	char hex[66];
	int fd;

	if (access(path, F_OK) == 0)
		return 0;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1)
		return -1;
	/* A fixed test key would do as well, but keygen's format is
	 * what matters: 64 hex digits. */
	if (random_id(hex) == -1 || random_id(hex + 32) == -1)
		return -1;
	(void)k;
	hex[64] = '\n';
	if (write(fd, hex, 65) != 65) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: audit-gen gen|bench DIR [--requests N] "
	    "[--seal-every K] [--open M] [--concurrency C] [--epoch-s S] "
	    "[--max-bytes B] [--body MODE] [--crash] [--rotate-at N] "
	    "[--seconds S] [--records N] [--body-file FILE]\n");
	exit(3);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "requests", required_argument, NULL, 'n' },
		{ "seal-every", required_argument, NULL, 'k' },
		{ "open", required_argument, NULL, 'o' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "epoch-s", required_argument, NULL, 'e' },
		{ "max-bytes", required_argument, NULL, 'm' },
		{ "body", required_argument, NULL, 'b' },
		{ "crash", no_argument, NULL, 'x' },
		{ "rotate-at", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 's' },
		{ "records", required_argument, NULL, 'R' },
		{ "body-file", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cfg;
	struct gen g;
	struct slot *slots;
	char path[4096], key[4096], err[1024];
	const char *mode, *dir, *body_file = NULL;
	double seconds = 2;
	bool crash = false;
	int c, i;

	if (argc < 3)
		usage();
	mode = argv[1];
	dir = argv[2];
	memset(&cfg, 0, sizeof(cfg));
	memset(&g, 0, sizeof(g));
	g.requests = 100;
	g.concurrency = 4;
	cfg.audit.epoch_s = 3600;
	cfg.audit.max_bytes = 256L * 1024 * 1024;
	cfg.audit.body = (char *)"digest";
	optind = 3;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': g.requests = atol(optarg); break;
		case 'k': g.seal_every = atol(optarg); break;
		case 'o': g.open_last = atol(optarg); break;
		case 'c': g.concurrency = atoi(optarg); break;
		case 'e': cfg.audit.epoch_s = atoi(optarg); break;
		case 'm': cfg.audit.max_bytes = atol(optarg); break;
		case 'b': cfg.audit.body = optarg; break;
		case 'x': crash = true; break;
		case 'r': g.rotate_at = atol(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'R': g.max_records = atol(optarg); break;
		case 'B': body_file = optarg; break;
		default: usage();
		}
	}
	if (g.concurrency < 1)
		usage();
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		perror(dir);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	snprintf(key, sizeof(key), "%s/k0", dir);
	if (make_key(key) == -1) {
		perror(key);
		return 2;
	}
	cfg.audit.path = path;
	cfg.audit.key_file = key;
	if ((g.a = audit_open(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "audit-gen: %s\n", err);
		return 2;
	}
	if (body_file) {
		struct json_object *o = json_object_from_file(body_file);
		if (o == NULL || (g.body_member = audit_body_member(g.a,
		    o)) == NULL) {
			fprintf(stderr, "audit-gen: %s: not JSON\n", body_file);
			return 2;
		}
		json_object_put(o);
	}
	g.base = event_base_new();
	g.port = audit_port_new(g.a, g.base);
	if (g.base == NULL || g.port == NULL)
		return 2;
	slots = calloc((size_t)g.concurrency, sizeof(*slots));
	if (slots == NULL)
		return 2;
	if (strcmp(mode, "bench") == 0) {
		g.bench = true;
		g.t_end_ns = now_mono_ns() + (uint64_t)(seconds * 1e9);
		for (i = 0; i < g.concurrency; i++) {
			slots[i].g = &g;
			bench_submit(&slots[i]);
		}
	} else if (strcmp(mode, "gen") == 0) {
		for (i = 0; i < g.concurrency && i < g.requests; i++) {
			slots[i].g = &g;
			gen_next(&slots[i]);
		}
	} else
		usage();
	{
		uint64_t t0 = now_mono_ns(), t1;
		event_base_dispatch(g.base);
		t1 = now_mono_ns();
		if (g.bench) {
			double el = (double)(t1 - t0) / 1e9;
			struct audit_stats st;
			audit_get_stats(g.a, &st);
			qsort(g.lat, g.nlat, sizeof(*g.lat), u64cmp);
			printf("concurrency=%d records=%ld seconds=%.2f "
			    "records_per_s=%.0f p50_us=%.0f p99_us=%.0f "
			    "max_us=%.0f per_batch=%.1f fsync_us=%.0f "
			    "failed=%ld\n", i,
			    g.records, el, (double)g.records / el,
			    g.nlat ? (double)g.lat[g.nlat / 2] / 1e3 : 0,
			    g.nlat ? (double)g.lat[g.nlat * 99 / 100] / 1e3 : 0,
			    g.nlat ? (double)g.lat[g.nlat - 1] / 1e3 : 0,
			    st.batches ? (double)st.records / (double)st.batches
			    : 0, st.batches ? (double)st.fsync_ns_sum /
			    (double)st.batches / 1e3 : 0, g.failed);
		} else
			printf("records=%ld failed=%ld log=%s\n", g.records,
			    g.failed, audit_log_id(g.a));
	}
	fflush(stdout);
	if (crash)
		_exit(0);
	audit_port_free(g.port);
	audit_close(g.a);
	event_base_free(g.base);
	free(slots);
	free(g.lat);
	free(g.body_member);
	return g.failed ? 1 : 0;
}
