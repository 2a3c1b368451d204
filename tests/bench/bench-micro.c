/*
 * bench-micro: the gateway's per-request CPU path without the network,
 * for scripts/bench.sh (issue 8).
 *
 * usage: bench-micro [-b BODY_FILE] [-s SECONDS | -n ITERATIONS] [-r]
 *
 * One "request" is what cmgate's loop and audit writer do for a valid
 * POST, in the same order and through the same library code
 * (libcmgate.a): a request id, caller auth (SHA-256 of the token,
 * constant-time compare), the strict parse + validation +
 * normalization (validate_individual), serializing the normalized body,
 * the body digest (HMAC under the body key), the "request" audit line
 * (audit_record_line, the writer's own: HMAC + SHA-256 chain), the
 * response digest and the "outcome" audit line, and the access-log
 * line.  Sockets, evhttp,
 * libcurl and the disk are left out: they are measured end to end by
 * the script.
 *
 * Prints one line:
 *   micro: N requests in S s CPU: R req/s per core (U us/request)
 * -r prints the per-stage split as well.  Under callgrind, collect only
 * micro_measure (--toggle-collect=micro_measure) and divide by N.
 */
#include "audit.h"
#include "audit_format.h"
#include "caller.h"
#include "conf.h"
#include "util.h"
#include "validate.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#define MICRO_TOKEN	"bench-micro-token-0123456789abcdef"

/* Canned upstream answer for the outcome digest (about the size of the
 * mock's echo of the seed). */
static const char micro_resp[] =
    "{\"id\":\"Zq3bP0b2yL6kVxR4mN8sT1uW5cE7gH9j\",\"type\":\"individual\","
    "\"status\":\"pending\",\"first_name\":\"Maria\",\"second_name\":"
    "\"Julia\",\"last_name\":\"Barber\",\"email\":\"mjuliabarber@example"
    ".com\",\"birth_date\":\"1984-11-21\",\"address\":{\"street_line1\":"
    "\"Florida 9860\",\"city\":\"Del Viso\",\"postal_code\":\"1669\","
    "\"state\":\"ARG-B\",\"country\":\"ARG\"},\"phone_country_code\":54,"
    "\"phone_number\":\"1168860622\"}";

enum { ST_AUTH, ST_VALIDATE, ST_SERIALIZE, ST_AUDIT, ST_LOG, ST_N };
static const char *const micro_stage_names[ST_N] = {
	"id + caller auth", "parse + validate + normalize", "serialize",
	"audit: body digest + 2 records (HMAC, SHA-256)", "access-log line",
};

struct micro {
	struct config		 cfg;
	struct conf_caller	 caller;
	const char		*body;
	size_t			 body_len;
	struct vopts		 vo;
	struct afmt_key		 key;
	unsigned char		 body_key[AFMT_KEY_LEN];
	unsigned char		 prev[AFMT_HASH_LEN];
	char			 log_id[AFMT_LOGID_HEX + 1];
	uint64_t		 seq;
	char			*line;		/* one record line */
	size_t			 linecap;
	int			 split;		/* time each stage */
	uint64_t		 stage_ns[ST_N];
	unsigned long		 failures;
};

static uint64_t
micro_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
micro_mark(struct micro *m, int stage, uint64_t *t)
{
	uint64_t now;

	if (!m->split)
		return;
	now = micro_cpu_ns();
	m->stage_ns[stage] += now - *t;
	*t = now;
}

/* One audit line, through the writer's own code (audit_record_line,
 * which audit.c's add path calls for every record). */
static int
micro_record(struct micro *m, const char *type, const char *fields)
{
	unsigned char head[AFMT_HASH_LEN];

	if (audit_record_line(m->line, m->linecap, m->log_id, m->seq, &m->key,
	    m->prev, type, fields, strlen(fields), head, NULL, NULL) == 0)
		return -1;
	memcpy(m->prev, head, sizeof(head));
	m->seq++;
	return 0;
}

/* The work of one valid request; returns 0 when every step passed. */
static __attribute__((noinline)) int
micro_request(struct micro *m)
{
	const struct conf_caller *who;
	struct json_object *norm = NULL;
	struct verrors errs = { 0 };
	unsigned char mac[AFMT_HASH_LEN], dg[SHA256_LEN];
	char id[33], hex[2 * AFMT_HASH_LEN + 1], fields[1024], logline[1024];
	char ts[32], *body = NULL;
	const char *s;
	size_t len;
	uint64_t t = m->split ? micro_cpu_ns() : 0;
	int rc = -1;

	if (request_id(id) == -1)
		goto out;
	who = caller_auth(&m->cfg, "Bearer " MICRO_TOKEN);
	if (who == NULL)
		goto out;
	micro_mark(m, ST_AUTH, &t);

	if (validate_individual(m->body, m->body_len, &m->vo, &norm,
	    &errs) != V_OK)
		goto out;
	micro_mark(m, ST_VALIDATE, &t);

	s = json_object_to_json_string_length(norm, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (s == NULL || (body = strndup(s, len)) == NULL)
		goto out;
	micro_mark(m, ST_SERIALIZE, &t);

	/* The body digest over the bytes serialized for upstream (as
	 * audit_body_member_str does), then the request record, the
	 * response digest and the outcome record. */
	if (afmt_hmac(m->body_key, AFMT_KEY_LEN, body, len, NULL, 0,
	    mac) == -1)
		goto out;
	hex_encode(mac, sizeof(mac), hex);
	snprintf(fields, sizeof(fields), "\"request_id\":\"%s\",\"caller\":"
	    "\"%s\",\"route\":\"POST /management/clients/individuals\","
	    "\"body_digest\":\"%s\"", id, who->name, hex);
	if (micro_record(m, "request", fields) == -1)
		goto out;
	if (sha256(micro_resp, sizeof(micro_resp) - 1, dg) == -1)
		goto out;
	hex_encode(dg, sizeof(dg), hex);
	snprintf(fields, sizeof(fields), "\"request_id\":\"%s\",\"caller\":"
	    "\"%s\",\"upstream_status\":200,\"latency_ms\":0.500,"
	    "\"error_class\":\"none\",\"response_digest\":\"%s\","
	    "\"client_status\":200", id, who->name, hex);
	if (micro_record(m, "outcome", fields) == -1)
		goto out;
	micro_mark(m, ST_AUDIT, &t);

	now_iso8601(ts, sizeof(ts));
	snprintf(logline, sizeof(logline), "{\"time\":\"%s\",\"level\":"
	    "\"info\",\"msg\":\"request\",\"request_id\":\"%s\",\"caller\":"
	    "\"%s\",\"route\":\"POST /management/clients/individuals\","
	    "\"status\":200,\"upstream_status\":200,\"upstream_latency_ms\":"
	    "%.3f,\"total_ms\":%.3f,\"bytes_in\":%zu,\"bytes_out\":%zu,"
	    "\"queue_ms\":%.3f}", ts, id, who->name, 0.5, 1.0, m->body_len,
	    sizeof(micro_resp) - 1, 0.0);
	micro_mark(m, ST_LOG, &t);
	rc = 0;
out:
	verrors_free(&errs);
	json_object_put(norm);
	free(body);
	if (rc != 0)
		m->failures++;
	return rc;
}

/* The measured loop: callgrind collects only in here. */
static __attribute__((noinline)) unsigned long
micro_measure(struct micro *m, unsigned long n, uint64_t budget_ns)
{
	uint64_t t0 = micro_cpu_ns();
	unsigned long i;

	for (i = 0; n == 0 || i < n; i++) {
		micro_request(m);
		if (n == 0 && (i & 255) == 255 &&
		    micro_cpu_ns() - t0 >= budget_ns) {
			i++;
			break;
		}
	}
	return i;
}

static int
micro_setup(struct micro *m, const char *body_file)
{
	unsigned char k0[AFMT_KEY_LEN];
	char *body, err[256];
	size_t len;
	struct tm tm;
	time_t now = time(NULL);

	if (read_file(body_file, 1024 * 1024, &body, &len, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "bench-micro: %s\n", err);
		return -1;
	}
	m->body = body;
	m->body_len = len;
	m->caller.name = (char *)"bench";
	if (sha256(MICRO_TOKEN, strlen(MICRO_TOKEN),
	    m->caller.token_sha256) == -1)
		return -1;
	m->cfg.callers = &m->caller;
	m->cfg.ncallers = 1;
	gmtime_r(&now, &tm);
	m->vo.min_age_years = 18;
	m->vo.max_depth = 16;
	m->vo.max_string_length = 1024;
	m->vo.today_y = tm.tm_year + 1900;
	m->vo.today_m = tm.tm_mon + 1;
	m->vo.today_d = tm.tm_mday;
	if (afmt_init() == -1 || random_id(m->log_id) == -1)
		return -1;
	memset(k0, 0x5a, sizeof(k0));
	if (afmt_key_set(&m->key, k0, 0) == -1 ||
	    afmt_body_key(k0, m->log_id, m->body_key) == -1)
		return -1;
	m->linecap = AFMT_MAX_RECORD;
	if ((m->line = malloc(m->linecap)) == NULL)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct micro m;
	const char *body_file = NULL;
	double seconds = 2.0, cpu_s;
	unsigned long n = 0, done, warm;
	uint64_t t0, t1;
	int ch, split = 0, i;

	while ((ch = getopt(argc, argv, "b:s:n:r")) != -1) {
		switch (ch) {
		case 'b':
			body_file = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'n':
			n = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			split = 1;
			break;
		default:
			fprintf(stderr, "usage: bench-micro [-b BODY_FILE] "
			    "[-s SECONDS | -n ITERATIONS] [-r]\n");
			return 2;
		}
	}
	if (body_file == NULL) {
		fprintf(stderr, "bench-micro: -b BODY_FILE is required\n");
		return 2;
	}
	memset(&m, 0, sizeof(m));
	if (micro_setup(&m, body_file) == -1) {
		fprintf(stderr, "bench-micro: setup failed\n");
		return 1;
	}
	/* Warm up outside micro_measure: first-use costs (OpenSSL's lazy
	 * init, json-c's tables) are not per request. */
	for (warm = 0; warm < 50; warm++)
		micro_request(&m);
	if (m.failures > 0) {
		fprintf(stderr, "bench-micro: the body does not pass "
		    "validation\n");
		return 1;
	}
	t0 = micro_cpu_ns();
	done = micro_measure(&m, n, (uint64_t)(seconds * 1e9));
	t1 = micro_cpu_ns();
	cpu_s = (double)(t1 - t0) / 1e9;
	printf("micro: %lu requests in %.3f s CPU: %.0f req/s per core "
	    "(%.2f us/request), %lu failed\n", done, cpu_s,
	    cpu_s > 0 ? (double)done / cpu_s : 0.0,
	    done ? cpu_s * 1e6 / (double)done : 0.0, m.failures);
	if (split) {
		m.split = 1;
		memset(m.stage_ns, 0, sizeof(m.stage_ns));
		for (warm = 0; warm < done; warm++)
			micro_request(&m);
		for (i = 0; i < ST_N; i++)
			printf("stage: %s: %.2f us\n", micro_stage_names[i],
			    done ? (double)m.stage_ns[i] / 1e3 /
			    (double)done : 0.0);
	}
	afmt_key_wipe(&m.key);
	free(m.line);
	free((char *)m.body);
	return m.failures ? 1 : 0;
}
