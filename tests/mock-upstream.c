/*
 * mock-upstream.c: a mock of CryptoMate's individual-client API for the
 * cmgate tests, the quick start and the benchmarks.
 *
 * usage: mock-upstream [-l ADDR:PORT] [-k API_KEY | -K KEYFILE]
 *            [-d DELAY_MS] [-s STATUS] [-t TIMEOUT_S] [-L LOGFILE]
 *            [--tls CERT KEY] [--raw FILE]
 *
 *   -l ADDR:PORT  listen address (default 127.0.0.1:0, any free port;
 *                 IPv6 as [::1]:PORT).  Once bound, one line
 *                 "listening on ADDR:PORT" goes to stdout.
 *   -k API_KEY    require "x-api-key: API_KEY" on the API route (else 401)
 *   -K KEYFILE    same, the key read from a file (whitespace trimmed)
 *   -d DELAY_MS   default delay before each API answer (non-blocking)
 *   -s STATUS     default success status (200)
 *   -t TIMEOUT_S  idle connection timeout, also the cap on "hang" (60)
 *   -L LOGFILE    append one JSON line per API request, flushed at once
 *   --tls CERT KEY  serve HTTPS with these PEM files
 *   --raw FILE    answer every API request with FILE's bytes as they
 *                 are (a status line and headers of any kind, even
 *                 ones no server should send), then close the
 *                 connection; the request is still logged (status 0)
 *
 * Routes:
 *   POST /management/clients/individuals  the API route (see api_cb)
 *   POST /_mock/behave   queue rules for the next API requests, or
 *                        {"default":{...}} to replace the default rule
 *   POST /_mock/reset    drop rules and counters, restore the defaults
 *                        given on the command line
 *   GET  /_mock/stats    {"requests","max_per_second","inflight",
 *                        "max_inflight","connections","queued"}
 *   anything else        404 {"code":"NOT_FOUND",...}
 *
 * Rule keys: count (default 1), delay_ms, status, body (string sent
 * verbatim, or any other JSON value sent serialized), content_type,
 * retry_after (adds Retry-After), close (drop the connection without an
 * answer, after delay_ms), hang (no answer until the client goes away,
 * dropped after TIMEOUT_S at the latest).  A rule may also be sent as an
 * array of rules.  Keys a rule leaves out take the value of the default
 * rule when the request is served; unknown keys get a 400.
 *
 * Each API POST takes one use of the head rule.  The answer is, in order:
 * 401 if the key is wrong; the rule's body with its status (default 200);
 * a canned error body for a non-2xx status without body; 400 if the body
 * is not a JSON object; else the echo with the rule's status (default
 * 200).  "inflight" counts delayed and hung requests still waiting; a
 * client that hangs up is noticed (EV_CLOSED) and its request released.
 * The log's "status" is 0 for close and hang.
 *
 * Single-threaded: everything runs on the one event loop.
 */
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <json-c/json.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define API_PATH	"/management/clients/individuals"
#define MAX_BODY	(1024 * 1024)
#define MAX_HEADERS	(64 * 1024)
#define MAX_RULES	4096
#define MAX_DELAY_MS	3600000
/* Power of two; more arrivals than this within 1 s are not told apart. */
#define RING_SIZE	65536

/* A rule: which keys were given, and their values. */
#define R_DELAY		0x01
#define R_STATUS	0x02
#define R_BODY		0x04
#define R_CTYPE		0x08
#define R_RETRY		0x10
#define R_CLOSE		0x20
#define R_HANG		0x40

struct rule {
	TAILQ_ENTRY(rule)	 r_entry;
	long			 r_count;
	int			 r_has;
	int			 r_delay_ms;
	int			 r_status;
	int			 r_close;
	int			 r_hang;
	char			*r_body;
	size_t			 r_bodylen;
	char			*r_ctype;
	char			*r_retry;
};
TAILQ_HEAD(rulelist, rule);

/*
 * An API request whose answer waits (delay or hang).  The evhttp request
 * is only borrowed: it is handed back with exactly one evhttp_send_reply
 * in pend_finish, which also frees everything here.
 */
struct pending {
	TAILQ_ENTRY(pending)	 p_entry;
	struct evhttp_request	*p_req;
	struct event		*p_timer;
	struct event		*p_closeev;
	struct evbuffer		*p_body;
	int			 p_status;
	int			 p_drop;	/* close instead of answering */
};
TAILQ_HEAD(pendlist, pending);

static struct event_base	*base;
static struct evhttp		*http;
static SSL_CTX			*ssl_ctx;
static FILE			*logfp;
static struct evbuffer		*logbuf;
static char			*api_key;
static int			 conn_timeout = 60;
static int			 early_close;	/* EV_CLOSED is supported */
static char			*raw_answer;	/* --raw: sent as is */
static size_t			 raw_answer_len;

static struct rule		 startup_rule;	/* from -d and -s */
static struct rule		 default_rule;
static struct rulelist		 rules = TAILQ_HEAD_INITIALIZER(rules);
static int			 nrules;
static struct pendlist		 pendings = TAILQ_HEAD_INITIALIZER(pendings);

static uint64_t			 st_requests;
static uint64_t			 st_max_per_sec;
static uint64_t			 st_inflight;
static uint64_t			 st_max_inflight;
static uint64_t			 st_connections;

/* Arrival times (monotonic, µs) of the last RING_SIZE API requests. */
static int64_t			 ring[RING_SIZE];
static uint64_t			 ring_n;	/* arrivals since reset */
static uint64_t			 ring_w;	/* oldest one in the window */

static uint64_t			 rng_state;

static void
fatalx(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mock-upstream: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void
usage(void)
{
	fprintf(stderr, "usage: mock-upstream [-l ADDR:PORT] "
	    "[-k API_KEY | -K KEYFILE] [-d DELAY_MS] [-s STATUS]\n"
	    "           [-t TIMEOUT_S] [-L LOGFILE] [--tls CERT KEY] "
	    "[--raw FILE]\n");
	exit(2);
}

/* xorshift64*: ids and trace ids need to be unique, not secret. */
static uint64_t
rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static void
rng_init(void)
{
	struct timespec ts;

	if (getrandom(&rng_state, sizeof(rng_state), 0) !=
	    (ssize_t)sizeof(rng_state)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		rng_state = (uint64_t)ts.tv_nsec ^
		    ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	}
	if (rng_state == 0)
		rng_state = 0x9E3779B97F4A7C15ULL;
}

static void
rand_string(char *out, size_t n, const char *alphabet, size_t alen)
{
	uint64_t r = 0;
	size_t i;
	int left = 0;

	for (i = 0; i < n; i++) {
		if (left == 0) {
			r = rng_next();
			left = 8;
		}
		out[i] = alphabet[(r & 0xff) % alen];
		r >>= 8;
		left--;
	}
	out[n] = '\0';
}

static int64_t
mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Count one arrival and update the peak number of arrivals in any 1 s
 * window ending at an arrival, which is the peak over all windows.
 */
static void
stats_arrival(void)
{
	int64_t now = mono_usec();
	uint64_t n;

	ring[ring_n & (RING_SIZE - 1)] = now;
	ring_n++;
	if (ring_n - ring_w > RING_SIZE)
		ring_w = ring_n - RING_SIZE;
	while (ring_w < ring_n &&
	    ring[ring_w & (RING_SIZE - 1)] <= now - 1000000)
		ring_w++;
	n = ring_n - ring_w;
	if (n > st_max_per_sec)
		st_max_per_sec = n;
	st_requests++;
}

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Status";
}

/* The body a rule's non-2xx status gets when the rule has no body. */
static void
canned_error(struct evbuffer *out, int status)
{
	const char *code, *msg;

	switch (status) {
	case 400: code = "BAD_REQUEST"; msg = "Invalid request"; break;
	case 401:
		code = "API_ERROR";
		msg = "Access denied. The API Key is not authorized to do "
		    "this operation.";
		break;
	case 404: code = "NOT_FOUND"; msg = "Resource not found"; break;
	case 412:
		code = "PRECONDITION_FAILED";
		msg = "Internal validation failure";
		break;
	case 429:
		/* CryptoMate's 429 uses error_code, not code. */
		evbuffer_add_printf(out, "{\"error_code\":"
		    "\"TOO_MANY_REQUESTS\",\"message\":\"Too many requests\"}");
		return;
	default:
		if (status >= 500) {
			code = "INTERNAL_ERROR";
			msg = "Internal server error";
		} else {
			code = "API_ERROR";
			msg = "Request failed";
		}
		break;
	}
	evbuffer_add_printf(out, "{\"code\":\"%s\",\"message\":\"%s\"}",
	    code, msg);
}

/*
 * Append s as the inside of a JSON string.  Invalid UTF-8 bytes become
 * \u00XX so the log stays parseable; a reader can undo that via Latin-1.
 */
static void
json_escape(struct evbuffer *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run, n, k;
	char esc[8];

	while (i < len) {
		for (run = i; run < len && p[run] >= 0x20 && p[run] < 0x80 &&
		    p[run] != '"' && p[run] != '\\'; run++)
			;
		if (run > i)
			evbuffer_add(out, p + i, run - i);
		i = run;
		if (i >= len)
			break;
		if (p[i] >= 0x80) {
			n = 0;
			if (p[i] >= 0xc2 && p[i] <= 0xdf)
				n = 1;
			else if (p[i] >= 0xe0 && p[i] <= 0xef)
				n = 2;
			else if (p[i] >= 0xf0 && p[i] <= 0xf4)
				n = 3;
			for (k = 1; n && k <= n; k++)
				if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
					n = 0;
			/* Overlongs and surrogates are not valid either. */
			if (n == 2 && ((p[i] == 0xe0 && p[i + 1] < 0xa0) ||
			    (p[i] == 0xed && p[i + 1] >= 0xa0)))
				n = 0;
			if (n == 3 && ((p[i] == 0xf0 && p[i + 1] < 0x90) ||
			    (p[i] == 0xf4 && p[i + 1] >= 0x90)))
				n = 0;
			if (n) {
				evbuffer_add(out, p + i, n + 1);
				i += n + 1;
				continue;
			}
		}
		switch (p[i]) {
		case '"': evbuffer_add(out, "\\\"", 2); break;
		case '\\': evbuffer_add(out, "\\\\", 2); break;
		case '\n': evbuffer_add(out, "\\n", 2); break;
		case '\r': evbuffer_add(out, "\\r", 2); break;
		case '\t': evbuffer_add(out, "\\t", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			evbuffer_add(out, esc, 6);
			break;
		}
		i++;
	}
}

static const char *
method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "UNKNOWN";
}

/*
 * One JSON line per API request, written at arrival and flushed so the
 * tests can read it while we run.  Repeated headers are joined with ", ".
 */
static void
log_request(struct evhttp_request *req, const char *body, size_t bodylen,
    int status)
{
	struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
	struct evkeyval *kv, *kv2;
	struct timeval tv;
	const char *name;
	size_t len;
	int first = 1;

	if (logfp == NULL)
		return;
	gettimeofday(&tv, NULL);
	evbuffer_add_printf(logbuf, "{\"t\":%lld.%06ld,\"method\":\"%s\","
	    "\"path\":\"", (long long)tv.tv_sec, (long)tv.tv_usec,
	    method_name(evhttp_request_get_command(req)));
	name = evhttp_request_get_uri(req);
	json_escape(logbuf, name, strlen(name));
	evbuffer_add_printf(logbuf, "\",\"headers\":{");
	TAILQ_FOREACH(kv, hdrs, next) {
		for (kv2 = TAILQ_FIRST(hdrs); kv2 != kv;
		    kv2 = TAILQ_NEXT(kv2, next))
			if (strcasecmp(kv2->key, kv->key) == 0)
				break;
		if (kv2 != kv)
			continue;	/* already joined into the first one */
		if (!first)
			evbuffer_add(logbuf, ",", 1);
		first = 0;
		evbuffer_add(logbuf, "\"", 1);
		for (name = kv->key; *name != '\0'; name++) {
			char c = (char)tolower((unsigned char)*name);

			if (c == '"' || c == '\\' || (unsigned char)c < 0x20 ||
			    (unsigned char)c >= 0x80)
				json_escape(logbuf, &c, 1);
			else
				evbuffer_add(logbuf, &c, 1);
		}
		evbuffer_add(logbuf, "\":\"", 3);
		json_escape(logbuf, kv->value, strlen(kv->value));
		for (kv2 = TAILQ_NEXT(kv, next); kv2 != NULL;
		    kv2 = TAILQ_NEXT(kv2, next)) {
			if (strcasecmp(kv2->key, kv->key) != 0)
				continue;
			evbuffer_add(logbuf, ", ", 2);
			json_escape(logbuf, kv2->value, strlen(kv2->value));
		}
		evbuffer_add(logbuf, "\"", 1);
	}
	evbuffer_add(logbuf, "},\"body\":\"", 10);
	json_escape(logbuf, body, bodylen);
	evbuffer_add_printf(logbuf, "\",\"status\":%d}\n", status);

	len = evbuffer_get_length(logbuf);
	if (fwrite(evbuffer_pullup(logbuf, -1), 1, len, logfp) != len ||
	    fflush(logfp) != 0)
		fprintf(stderr, "mock-upstream: log write: %s\n",
		    strerror(errno));
	evbuffer_drain(logbuf, len);
}

/* Headers every answer carries; the tests check the allowlist with them. */
static void
add_common_headers(struct evhttp_request *req, const char *ctype)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char trace[33];

	rand_string(trace, 32, "0123456789abcdef", 16);
	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "X-Trace-Id", trace);
	evhttp_add_header(out, "Set-Cookie", "mock=1");
	evhttp_add_header(out, "Server", "mock-cryptomate/1.0");
}

static void
send_json(struct evhttp_request *req, int status, const char *json)
{
	struct evbuffer *b = evbuffer_new();

	add_common_headers(req, "application/json");
	if (b != NULL)
		evbuffer_add(b, json, strlen(json));
	evhttp_send_reply(req, status, reason(status), b);
	if (b != NULL)
		evbuffer_free(b);
}

static void
send_error(struct evhttp_request *req, int status, const char *code,
    const char *msg)
{
	struct evbuffer *b = evbuffer_new();

	add_common_headers(req, "application/json");
	if (b != NULL) {
		evbuffer_add_printf(b, "{\"code\":\"%s\",\"message\":\"", code);
		json_escape(b, msg, strlen(msg));
		evbuffer_add(b, "\"}", 2);
	}
	evhttp_send_reply(req, status, reason(status), b);
	if (b != NULL)
		evbuffer_free(b);
}

static void
rule_clear(struct rule *r)
{
	free(r->r_body);
	free(r->r_ctype);
	free(r->r_retry);
	memset(r, 0, sizeof(*r));
}

static void
rules_flush(void)
{
	struct rule *r;

	while ((r = TAILQ_FIRST(&rules)) != NULL) {
		TAILQ_REMOVE(&rules, r, r_entry);
		rule_clear(r);
		free(r);
	}
	nrules = 0;
}

static int
json_int(struct json_object *v, long lo, long hi, long *out)
{
	int64_t i;

	if (!json_object_is_type(v, json_type_int))
		return -1;
	i = json_object_get_int64(v);
	if (i < lo || i > hi)
		return -1;
	*out = (long)i;
	return 0;
}

/*
 * Fill r from a behave object.  Unknown keys are an error so that a typo
 * in a test fails loudly instead of silently testing the default.
 */
static int
rule_parse(struct json_object *o, struct rule *r, int allow_count,
    char *err, size_t errlen)
{
	const char *s;
	size_t len;
	long n;

	memset(r, 0, sizeof(*r));
	r->r_count = 1;
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "a rule must be a JSON object");
		return -1;
	}
	json_object_object_foreach(o, key, v) {
		if (strcmp(key, "count") == 0 && allow_count) {
			if (json_int(v, 1, LONG_MAX, &n) == -1)
				goto bad;
			r->r_count = n;
		} else if (strcmp(key, "delay_ms") == 0) {
			if (json_int(v, 0, MAX_DELAY_MS, &n) == -1)
				goto bad;
			r->r_delay_ms = (int)n;
			r->r_has |= R_DELAY;
		} else if (strcmp(key, "status") == 0) {
			if (json_int(v, 100, 599, &n) == -1)
				goto bad;
			r->r_status = (int)n;
			r->r_has |= R_STATUS;
		} else if (strcmp(key, "body") == 0) {
			if (json_object_is_type(v, json_type_string)) {
				s = json_object_get_string(v);
				len = (size_t)json_object_get_string_len(v);
			} else
				s = json_object_to_json_string_length(v,
				    JSON_C_TO_STRING_PLAIN |
				    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
			free(r->r_body);
			if ((r->r_body = malloc(len + 1)) == NULL)
				goto nomem;
			memcpy(r->r_body, s, len);
			r->r_body[len] = '\0';
			r->r_bodylen = len;
			r->r_has |= R_BODY;
		} else if (strcmp(key, "content_type") == 0) {
			if (!json_object_is_type(v, json_type_string) ||
			    strpbrk(json_object_get_string(v), "\r\n"))
				goto bad;
			free(r->r_ctype);
			if ((r->r_ctype = strdup(json_object_get_string(v))) ==
			    NULL)
				goto nomem;
			r->r_has |= R_CTYPE;
		} else if (strcmp(key, "retry_after") == 0) {
			char buf[32];

			if (json_object_is_type(v, json_type_string)) {
				s = json_object_get_string(v);
				if (strpbrk(s, "\r\n"))
					goto bad;
			} else if (json_int(v, 0, INT_MAX, &n) == 0) {
				snprintf(buf, sizeof(buf), "%ld", n);
				s = buf;
			} else
				goto bad;
			free(r->r_retry);
			if ((r->r_retry = strdup(s)) == NULL)
				goto nomem;
			r->r_has |= R_RETRY;
		} else if (strcmp(key, "close") == 0 ||
		    strcmp(key, "hang") == 0) {
			if (!json_object_is_type(v, json_type_boolean))
				goto bad;
			if (key[0] == 'c') {
				r->r_close = json_object_get_boolean(v);
				r->r_has |= R_CLOSE;
			} else {
				r->r_hang = json_object_get_boolean(v);
				r->r_has |= R_HANG;
			}
		} else {
			snprintf(err, errlen, "unknown key \"%s\"", key);
			rule_clear(r);
			return -1;
		}
		continue;
 bad:
		snprintf(err, errlen, "bad value for \"%s\"", key);
		rule_clear(r);
		return -1;
 nomem:
		snprintf(err, errlen, "out of memory");
		rule_clear(r);
		return -1;
	}
	return 0;
}

static int
rule_copy(struct rule *dst, const struct rule *src)
{
	*dst = *src;
	dst->r_body = NULL;
	dst->r_ctype = NULL;
	dst->r_retry = NULL;
	if (src->r_body != NULL) {
		if ((dst->r_body = malloc(src->r_bodylen + 1)) == NULL)
			goto fail;
		memcpy(dst->r_body, src->r_body, src->r_bodylen + 1);
	}
	if (src->r_ctype != NULL &&
	    (dst->r_ctype = strdup(src->r_ctype)) == NULL)
		goto fail;
	if (src->r_retry != NULL &&
	    (dst->r_retry = strdup(src->r_retry)) == NULL)
		goto fail;
	return 0;
 fail:
	rule_clear(dst);
	return -1;
}

static struct json_object *
parse_json(const char *s, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if ((tok = json_tokener_new()) == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	/* A bare top-level number stays incomplete; we only want objects. */
	o = json_tokener_parse_ex(tok, s, (int)len);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (o == NULL)
		return NULL;
	for (; end < len; end++)
		if (!isspace((unsigned char)s[end])) {
			json_object_put(o);
			return NULL;
		}
	return o;
}

static void
behave_cb(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = (const char *)evbuffer_pullup(in, -1);
	struct json_object *o, *d, *one;
	struct rule tmp, *r[64];
	size_t i, n = 0, total;
	char err[160], out[64];

	if ((o = parse_json(body ? body : "", len)) == NULL) {
		send_error(req, 400, "BAD_REQUEST", "behave: invalid JSON");
		return;
	}
	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "default", &d)) {
		if (json_object_object_length(o) != 1) {
			send_error(req, 400, "BAD_REQUEST",
			    "behave: \"default\" must be the only key");
			goto done;
		}
		if (rule_parse(d, &tmp, 0, err, sizeof(err)) == -1) {
			send_error(req, 400, "BAD_REQUEST", err);
			goto done;
		}
		rule_clear(&default_rule);
		default_rule = tmp;
		goto ok;
	}

	/* One rule, or an array of up to 64 of them queued in order. */
	total = json_object_is_type(o, json_type_array) ?
	    json_object_array_length(o) : 1;
	if (total == 0 || total > 64 || nrules + total > MAX_RULES) {
		send_error(req, 400, "BAD_REQUEST",
		    "behave: 1..64 rules at a time, 4096 queued at most");
		goto done;
	}
	for (n = 0; n < total; n++) {
		one = json_object_is_type(o, json_type_array) ?
		    json_object_array_get_idx(o, n) : o;
		if ((r[n] = calloc(1, sizeof(*r[n]))) == NULL ||
		    rule_parse(one, r[n], 1, err, sizeof(err)) == -1) {
			if (r[n] == NULL)
				snprintf(err, sizeof(err), "out of memory");
			free(r[n]);
			for (i = 0; i < n; i++) {
				rule_clear(r[i]);
				free(r[i]);
			}
			send_error(req, 400, "BAD_REQUEST", err);
			goto done;
		}
	}
	for (i = 0; i < n; i++) {
		TAILQ_INSERT_TAIL(&rules, r[i], r_entry);
		nrules++;
	}
 ok:
	snprintf(out, sizeof(out), "{\"ok\":true,\"queued\":%d}", nrules);
	send_json(req, 200, out);
 done:
	json_object_put(o);
}

static void
stats_reset(void)
{
	rules_flush();
	rule_clear(&default_rule);
	if (rule_copy(&default_rule, &startup_rule) == -1)
		fatalx("out of memory");
	st_requests = 0;
	st_max_per_sec = 0;
	/* Requests still waiting stay counted: they are real. */
	st_max_inflight = st_inflight;
	st_connections = 0;
	ring_n = ring_w = 0;
}

static void
stats_cb(struct evhttp_request *req)
{
	char out[256];

	snprintf(out, sizeof(out), "{\"requests\":%llu,\"max_per_second\":%llu,"
	    "\"inflight\":%llu,\"max_inflight\":%llu,\"connections\":%llu,"
	    "\"queued\":%d}",
	    (unsigned long long)st_requests, (unsigned long long)st_max_per_sec,
	    (unsigned long long)st_inflight,
	    (unsigned long long)st_max_inflight,
	    (unsigned long long)st_connections, nrules);
	send_json(req, 200, out);
}

/*
 * Hand the request back to libevent with its one and only reply, and free
 * our side.  If the client is gone libevent either fails the write and
 * frees the connection, or (connection already failed) frees the request
 * in evhttp_send_reply; we never free evhttp objects ourselves.
 */
static void
pend_finish(struct pending *p)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	evutil_socket_t fd;

	if (p->p_timer != NULL)
		event_free(p->p_timer);
	if (p->p_closeev != NULL)
		event_free(p->p_closeev);
	TAILQ_REMOVE(&pendings, p, p_entry);
	st_inflight--;
	if (p->p_drop &&
	    (evcon = evhttp_request_get_connection(p->p_req)) != NULL &&
	    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL &&
	    (fd = bufferevent_getfd(bev)) != -1)
		shutdown(fd, SHUT_RDWR);
	evhttp_send_reply(p->p_req, p->p_status, reason(p->p_status),
	    p->p_body);
	evbuffer_free(p->p_body);
	free(p);
}

static void
pend_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pend_finish(arg);
}

/* The client hung up while we were delaying: answer now, into the void. */
static void
pend_close_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pend_finish(arg);
}

/*
 * Park a request until its delay ends (or forever, for hang, capped at
 * the connection timeout so that no test can wait forever).
 */
static int
pend_add(struct evhttp_request *req, struct evbuffer *body, int status,
    int delay_ms, int drop, int hang)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct pending *p;
	struct timeval tv;
	evutil_socket_t fd = -1;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	p->p_req = req;
	p->p_body = body;
	p->p_status = status;
	p->p_drop = drop || hang;
	if (hang)
		delay_ms = conn_timeout * 1000;
	if ((p->p_timer = evtimer_new(base, pend_timer_cb, p)) == NULL)
		goto fail;
	if (early_close &&
	    (evcon = evhttp_request_get_connection(req)) != NULL &&
	    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		fd = bufferevent_getfd(bev);
	if (fd != -1 && ((p->p_closeev = event_new(base, fd, EV_CLOSED,
	    pend_close_cb, p)) == NULL || event_add(p->p_closeev, NULL) == -1))
		goto fail;
	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (delay_ms % 1000) * 1000;
	if (evtimer_add(p->p_timer, &tv) == -1)
		goto fail;
	TAILQ_INSERT_TAIL(&pendings, p, p_entry);
	if (++st_inflight > st_max_inflight)
		st_max_inflight = st_inflight;
	return 0;
 fail:
	if (p->p_timer != NULL)
		event_free(p->p_timer);
	if (p->p_closeev != NULL)
		event_free(p->p_closeev);
	free(p);
	return -1;
}

/* The next rule, merged over the default; consumes one use of it. */
static void
rule_take(struct rule *eff)
{
	struct rule *r = TAILQ_FIRST(&rules);

	*eff = default_rule;
	if (r == NULL)
		return;
	if (r->r_has & R_DELAY)
		eff->r_delay_ms = r->r_delay_ms;
	if (r->r_has & R_STATUS)
		eff->r_status = r->r_status;
	if (r->r_has & R_BODY) {
		eff->r_body = r->r_body;
		eff->r_bodylen = r->r_bodylen;
	}
	if (r->r_has & R_CTYPE)
		eff->r_ctype = r->r_ctype;
	if (r->r_has & R_RETRY)
		eff->r_retry = r->r_retry;
	if (r->r_has & R_CLOSE)
		eff->r_close = r->r_close;
	if (r->r_has & R_HANG)
		eff->r_hang = r->r_hang;
	eff->r_has = default_rule.r_has | r->r_has;
}

/* Release the rule rule_take used, once eff no longer points into it. */
static void
rule_done(void)
{
	struct rule *r = TAILQ_FIRST(&rules);

	if (r != NULL && --r->r_count <= 0) {
		TAILQ_REMOVE(&rules, r, r_entry);
		nrules--;
		rule_clear(r);
		free(r);
	}
}

/*
 * Build the seed-page answer: id, type and status first, then the fields
 * received, in their order.  Returns the status to send.
 */
static int
echo_body(struct evbuffer *out, const char *body, size_t len, int status)
{
	struct json_object *in, *o;
	const char *s;
	size_t slen;
	char id[33];

	if ((in = parse_json(body, len)) == NULL) {
		evbuffer_add_printf(out, "{\"code\":\"BAD_REQUEST\","
		    "\"message\":\"Request body is not valid JSON\"}");
		return 400;
	}
	if (!json_object_is_type(in, json_type_object)) {
		json_object_put(in);
		evbuffer_add_printf(out, "{\"code\":\"BAD_REQUEST\","
		    "\"message\":\"Request body must be a JSON object\"}");
		return 400;
	}
	if ((o = json_object_new_object()) == NULL) {
		json_object_put(in);
		canned_error(out, 500);
		return 500;
	}
	rand_string(id, 32, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789", 62);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "type", json_object_new_string("individual"));
	json_object_object_add(o, "status", json_object_new_string("pending"));
	json_object_object_foreach(in, key, v) {
		/* Ours win, as the real server assigns them. */
		if (strcmp(key, "id") == 0 || strcmp(key, "type") == 0 ||
		    strcmp(key, "status") == 0)
			continue;
		json_object_object_add(o, key, json_object_get(v));
	}
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &slen);
	evbuffer_add(out, s, slen);
	json_object_put(o);
	json_object_put(in);
	return status;
}

/*
 * --raw: write the file's bytes straight to the socket, bypassing
 * evhttp (which would only send well-formed answers), and close.  The
 * reply call after the shutdown fails and lets libevent free the
 * request and the connection, as the "close" rule does.
 */
static void
raw_send(struct evhttp_request *req, const char *body, size_t len)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	evutil_socket_t fd = -1;
	size_t off = 0;
	ssize_t n;

	log_request(req, body, len, 0);
	if ((evcon = evhttp_request_get_connection(req)) != NULL &&
	    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		fd = bufferevent_getfd(bev);
	while (fd != -1 && off < raw_answer_len) {
		n = send(fd, raw_answer + off, raw_answer_len - off,
		    MSG_NOSIGNAL);
		if (n <= 0)
			break;	/* small answers only: no waiting here */
		off += (size_t)n;
	}
	if (fd != -1)
		shutdown(fd, SHUT_RDWR);
	evhttp_send_reply(req, 500, "Internal Server Error", NULL);
}

static void
api_cb(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *key;
	struct evkeyvalq *oh;
	struct evbuffer *out;
	struct rule eff;
	int status, drop;

	stats_arrival();
	if (raw_answer != NULL) {
		raw_send(req, body, len);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		log_request(req, body, len, 404);
		send_error(req, 404, "NOT_FOUND", "Resource not found");
		return;
	}
	if ((out = evbuffer_new()) == NULL) {
		log_request(req, body, len, 500);
		send_error(req, 500, "INTERNAL_ERROR", "out of memory");
		return;
	}
	rule_take(&eff);
	key = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "x-api-key");
	if (api_key != NULL && (key == NULL || strcmp(key, api_key) != 0)) {
		status = 401;
		canned_error(out, 401);
	} else if (eff.r_body != NULL) {
		status = (eff.r_has & R_STATUS) ? eff.r_status : 200;
		evbuffer_add(out, eff.r_body, eff.r_bodylen);
	} else if ((eff.r_has & R_STATUS) &&
	    (eff.r_status < 200 || eff.r_status > 299)) {
		status = eff.r_status;
		canned_error(out, status);
	} else
		status = echo_body(out, body, len,
		    (eff.r_has & R_STATUS) ? eff.r_status : 200);

	drop = eff.r_close || eff.r_hang;
	log_request(req, body, len, drop ? 0 : status);
	add_common_headers(req, eff.r_ctype ? eff.r_ctype : "application/json");
	if (eff.r_retry != NULL) {
		oh = evhttp_request_get_output_headers(req);
		evhttp_add_header(oh, "Retry-After", eff.r_retry);
	}
	if (eff.r_hang || eff.r_delay_ms > 0) {
		if (pend_add(req, out, status, eff.r_delay_ms, eff.r_close,
		    eff.r_hang) == 0) {
			rule_done();
			return;
		}
		fprintf(stderr, "mock-upstream: cannot delay, answering now\n");
	}
	rule_done();
	if (drop) {
		struct evhttp_connection *evcon;
		struct bufferevent *bev;
		evutil_socket_t fd;

		/* The reply below then fails, and libevent frees it all. */
		if ((evcon = evhttp_request_get_connection(req)) != NULL &&
		    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL &&
		    (fd = bufferevent_getfd(bev)) != -1)
			shutdown(fd, SHUT_RDWR);
	}
	evhttp_send_reply(req, status, reason(status), out);
	evbuffer_free(out);
}

static void
gen_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	(void)arg;
	if (path == NULL)
		path = "";
	if (strcmp(path, API_PATH) == 0)
		api_cb(req);
	else if (strcmp(path, "/_mock/behave") == 0 && cmd == EVHTTP_REQ_POST)
		behave_cb(req);
	else if (strcmp(path, "/_mock/reset") == 0 && cmd == EVHTTP_REQ_POST) {
		stats_reset();
		send_json(req, 200, "{\"ok\":true}");
	} else if (strcmp(path, "/_mock/stats") == 0 && cmd == EVHTTP_REQ_GET)
		stats_cb(req);
	else if (strncmp(path, "/_mock/", 7) == 0)
		send_error(req, 405, "METHOD_NOT_ALLOWED",
		    "behave and reset take POST, stats takes GET");
	else
		send_error(req, 404, "NOT_FOUND", "Resource not found");
}

/* Called once per accepted connection; lets us count them and add TLS. */
static struct bufferevent *
bev_cb(struct event_base *b, void *arg)
{
	struct bufferevent *bev;
	SSL *ssl;

	(void)arg;
	st_connections++;
	if (ssl_ctx == NULL)
		return bufferevent_socket_new(b, -1, BEV_OPT_CLOSE_ON_FREE);
	if ((ssl = SSL_new(ssl_ctx)) == NULL)
		return NULL;
	/* On failure the bufferevent has already freed ssl. */
	bev = bufferevent_openssl_socket_new(b, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		/* Clients that just close the socket are not an error. */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

static char *
read_key_file(const char *path)
{
	char buf[4096], *s, *e;
	size_t n;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL)
		fatalx("%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	if (ferror(fp))
		fatalx("%s: read error", path);
	fclose(fp);
	buf[n] = '\0';
	for (s = buf; isspace((unsigned char)*s); s++)
		;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	if (*s == '\0')
		fatalx("%s: empty key", path);
	if ((s = strdup(s)) == NULL)
		fatalx("out of memory");
	return s;
}

static long
parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		fatalx("%s: must be %ld..%ld", what, lo, hi);
	return v;
}

static void
parse_listen(const char *arg, char **host, unsigned short *port)
{
	const char *colon;
	size_t hlen;

	if (arg[0] == '[') {
		if ((colon = strstr(arg, "]:")) == NULL)
			fatalx("-l: expected [ADDR]:PORT");
		hlen = (size_t)(colon - arg - 1);
		arg++;
		colon++;
	} else {
		if ((colon = strrchr(arg, ':')) == NULL)
			fatalx("-l: expected ADDR:PORT");
		hlen = (size_t)(colon - arg);
	}
	if ((*host = strndup(arg, hlen)) == NULL)
		fatalx("out of memory");
	*port = (unsigned short)parse_num(colon + 1, 0, 65535, "-l port");
}

static SSL_CTX *
tls_setup(const char *cert, const char *key)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	return ctx;
 fail:
	ERR_print_errors_fp(stderr);
	SSL_CTX_free(ctx);
	fatalx("--tls %s %s: cannot load certificate or key", cert, key);
	return NULL;
}

/* --raw FILE: the whole file, kept for the life of the mock. */
static void
read_raw_answer(const char *path)
{
	char buf[65536];
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL)
		fatalx("%s: %s", path, strerror(errno));
	raw_answer_len = fread(buf, 1, sizeof(buf), fp);
	if (ferror(fp) || !feof(fp))
		fatalx("%s: unreadable or over %zu bytes", path, sizeof(buf));
	fclose(fp);
	free(raw_answer);
	if ((raw_answer = malloc(raw_answer_len + 1)) == NULL)
		fatalx("out of memory");
	memcpy(raw_answer, buf, raw_answer_len);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "listen",	required_argument,	NULL, 'l' },
		{ "key",	required_argument,	NULL, 'k' },
		{ "key-file",	required_argument,	NULL, 'K' },
		{ "delay",	required_argument,	NULL, 'd' },
		{ "status",	required_argument,	NULL, 's' },
		{ "timeout",	required_argument,	NULL, 't' },
		{ "log",	required_argument,	NULL, 'L' },
		{ "tls",	required_argument,	NULL, 'T' },
		{ "raw",	required_argument,	NULL, 'R' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	const char *listen_arg = "127.0.0.1:0", *logpath = NULL;
	const char *cert = NULL, *keyfile = NULL;
	struct evhttp_bound_socket *bound;
	struct event *sigterm, *sigint;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct pending *p;
	char *host, addr[INET6_ADDRSTRLEN];
	unsigned short port;
	int ch;

	while ((ch = getopt_long(argc, argv, "l:k:K:d:s:t:L:h", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_arg = optarg;
			break;
		case 'k':
			free(api_key);
			if ((api_key = strdup(optarg)) == NULL)
				fatalx("out of memory");
			break;
		case 'K':
			free(api_key);
			api_key = read_key_file(optarg);
			break;
		case 'd':
			startup_rule.r_delay_ms = (int)parse_num(optarg, 0,
			    MAX_DELAY_MS, "-d");
			startup_rule.r_has |= R_DELAY;
			break;
		case 's':
			startup_rule.r_status = (int)parse_num(optarg, 200, 299,
			    "-s");
			startup_rule.r_has |= R_STATUS;
			break;
		case 't':
			conn_timeout = (int)parse_num(optarg, 1, 86400, "-t");
			break;
		case 'L':
			logpath = optarg;
			break;
		case 'R':
			read_raw_answer(optarg);
			break;
		case 'T':
			/* --tls takes two operands: CERT KEY. */
			if (optind >= argc)
				usage();
			cert = optarg;
			keyfile = argv[optind++];
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	signal(SIGPIPE, SIG_IGN);
	rng_init();
	if (rule_copy(&default_rule, &startup_rule) == -1)
		fatalx("out of memory");
	if (logpath != NULL && (logfp = fopen(logpath, "a")) == NULL)
		fatalx("%s: %s", logpath, strerror(errno));
	if (cert != NULL)
		ssl_ctx = tls_setup(cert, keyfile);

	if ((base = event_base_new()) == NULL ||
	    (http = evhttp_new(base)) == NULL ||
	    (logbuf = evbuffer_new()) == NULL)
		fatalx("libevent setup failed");
	early_close = (event_base_get_features(base) &
	    EV_FEATURE_EARLY_CLOSE) != 0;
	evhttp_set_max_body_size(http, MAX_BODY);
	evhttp_set_max_headers_size(http, MAX_HEADERS);
	evhttp_set_timeout(http, conn_timeout);
	/* Answer any method ourselves (404/405) instead of evhttp's 501. */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(http, gen_cb, NULL);
	evhttp_set_bevcb(http, bev_cb, NULL);

	parse_listen(listen_arg, &host, &port);
	bound = evhttp_bind_socket_with_handle(http, host, port);
	if (bound == NULL)
		fatalx("cannot listen on %s", listen_arg);
	free(host);
	if (getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&ss, &sslen) == -1)
		fatalx("getsockname: %s", strerror(errno));
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		printf("listening on [%s]:%u\n", addr, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		printf("listening on %s:%u\n", addr, ntohs(s4->sin_port));
	}
	fflush(stdout);

	sigterm = evsignal_new(base, SIGTERM, signal_cb, NULL);
	sigint = evsignal_new(base, SIGINT, signal_cb, NULL);
	if (sigterm == NULL || sigint == NULL ||
	    event_add(sigterm, NULL) == -1 || event_add(sigint, NULL) == -1)
		fatalx("cannot set up signals");

	event_base_dispatch(base);

	/*
	 * Answer what still waits so that every request goes back to
	 * libevent, then evhttp_free frees connections and requests.
	 */
	while ((p = TAILQ_FIRST(&pendings)) != NULL) {
		p->p_drop = 1;
		pend_finish(p);
	}
	evhttp_free(http);
	event_free(sigterm);
	event_free(sigint);
	evbuffer_free(logbuf);
	event_base_free(base);
	SSL_CTX_free(ssl_ctx);
	rules_flush();
	rule_clear(&default_rule);
	rule_clear(&startup_rule);
	free(api_key);
	free(raw_answer);
	if (logfp != NULL)
		fclose(logfp);
	libevent_global_shutdown();
	return 0;
}
