/*
 * mock-upstream.c: a mock of CryptoMate's individual-client API for the
 * cmgate tests, the quick start and the benchmarks.
 *
 * usage: mock-upstream [-l ADDR:PORT] [-k API_KEY | -K KEYFILE]
 *            [-d DELAY_MS] [-s STATUS] [-t TIMEOUT_S] [-L LOGFILE]
 *            [--tls CERT KEY] [--raw FILE] [-u]
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
 *   -u            (--unique-clients) refuse a create whose email is
 *                 already a client's: 400 VAL, as CryptoMate
 *
 * Routes:
 *   POST /management/clients/individuals  the API route (see api_cb)
 *   the other ten KYC routes under it, and /__test/: stateful, see
 *                        "KYC routes" below (kyc_dispatch)
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
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define API_PATH	"/management/clients/individuals"
/* Two 10 MiB images in base64 make about 28 MB: take 30 MiB and more. */
#define MAX_BODY	(32 * 1024 * 1024)
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
static int			 unique_clients;	/* -u */

/* The KYC routes (below, after api_cb). */
static void	kyc_reset(void);
static int	kyc_duplicate(const char *, size_t);
static void	kyc_store_client(struct evbuffer *);
static int	kyc_dispatch(struct evhttp_request *, const char *);
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
	    "[--raw FILE] [-u]\n");
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
	kyc_reset();
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
	} else if (kyc_duplicate(body, len)) {
		status = 400;
		evbuffer_add_printf(out, "{\"code\":\"VAL\",\"message\":"
		    "\"Company client already exists for this company\"}");
	} else {
		status = echo_body(out, body, len,
		    (eff.r_has & R_STATUS) ? eff.r_status : 200);
		if (status >= 200 && status <= 299)
			kyc_store_client(out);
	}

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

/* ---- KYC routes: stateful clients and product requests ---------------- */

/*
 * Everything under API_PATH besides POST (create, api_cb above) is served
 * here from in-memory state, with CryptoMate's documented shapes and
 * errors (see ../shared/reference/cryptomate-kyc-api.md, sections 2-4):
 *
 *   GET    .../individuals                        list (a bare array)
 *   GET    .../individuals/countries              {count, data}
 *   GET    .../individuals/identifications/{cc}   [{type, description}]
 *   GET|PUT|DELETE .../individuals/{id}           get, replace, delete
 *   POST|GET .../individuals/{id}/products        request, list
 *   POST   .../{id}/products/{pid}/documentation  upload one document
 *   POST   .../{id}/products/{pid}/submit         to in_kyc
 *
 * A product request starts pending_documentation, missing one identity
 * document (a national_id: front, back and metadata.number; or a
 * passport: front and metadata.number) and, while the client has no
 * phone_number, the "phone" data (set with PUT).  An upload with a
 * usable image (a JPEG or PNG signature after base64) and the required
 * parts clears the document; anything else comes back in
 * rejected_items.  Each upload is recorded with the SHA-256 and size of
 * each decoded image, for the tests:
 *
 *   GET  /__test/uploads                   every upload, oldest first
 *   POST /__test/list                      {"status":N,"body":"..."}: the
 *        next list answer is that status and that body, sent verbatim
 *        (a CryptoMate error, or numbers json-c cannot hold)
 *   POST /__test/products/{pid}/state      {"status":"enabled"|"rejected"|
 *        "in_kyc"|"pending_documentation", "rejection_code"?,
 *        "rejection_description"?}: move a request (CryptoMate's review)
 *
 * With -u (--unique-clients), a create whose email is already a
 * client's is refused with 400 VAL "Company client already exists for
 * this company"; without it create behaves as before (benchmarks post
 * the same body over and over).  At most MAX_CLIENTS clients are kept;
 * past that, creates still answer but are not stored.  The rule queue
 * (/_mock/behave) applies to create only; the API key to every route.
 * POST /_mock/reset drops all of this state.
 */

#define MAX_CLIENTS	100000
#define LOG_BODY_MAX	65536	/* larger bodies are logged as a digest */

struct kclient {
	TAILQ_ENTRY(kclient)	 c_entry;
	char			 c_id[33];
	struct json_object	*c_obj;		/* the client as answered */
};
TAILQ_HEAD(kclientlist, kclient);

struct kpreq {
	TAILQ_ENTRY(kpreq)	 q_entry;
	char			 q_id[33];
	char			 q_client[33];
	char			 q_status[32];
	int			 q_docs_done;	/* identity document given */
	char			*q_rej_code, *q_rej_desc;
	char			 q_created[32], q_updated[32];
};
TAILQ_HEAD(kpreqlist, kpreq);

struct kupload {
	TAILQ_ENTRY(kupload)	 u_entry;
	struct json_object	*u_obj;		/* what /__test/uploads shows */
};
TAILQ_HEAD(kuploadlist, kupload);

static struct kclientlist	 kclients = TAILQ_HEAD_INITIALIZER(kclients);
static struct kpreqlist		 kpreqs = TAILQ_HEAD_INITIALIZER(kpreqs);
static struct kuploadlist	 kuploads = TAILQ_HEAD_INITIALIZER(kuploads);
static size_t			 nkclients;

static void
kyc_reset(void)
{
	struct kclient *c;
	struct kpreq *q;
	struct kupload *u;

	while ((c = TAILQ_FIRST(&kclients)) != NULL) {
		TAILQ_REMOVE(&kclients, c, c_entry);
		json_object_put(c->c_obj);
		free(c);
	}
	nkclients = 0;
	while ((q = TAILQ_FIRST(&kpreqs)) != NULL) {
		TAILQ_REMOVE(&kpreqs, q, q_entry);
		free(q->q_rej_code);
		free(q->q_rej_desc);
		free(q);
	}
	while ((u = TAILQ_FIRST(&kuploads)) != NULL) {
		TAILQ_REMOVE(&kuploads, u, u_entry);
		json_object_put(u->u_obj);
		free(u);
	}
}

static void
now_stamp(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The request kyc_dispatch serves, logged once with its status. */
static const char	*kyc_body;
static size_t		 kyc_len;
static int		 kyc_unlogged;

static void kyc_log(struct evhttp_request *, const char *, size_t, int);

/* Answer o (NULL: no body) with status; the one reply of a KYC request. */
static void
send_obj(struct evhttp_request *req, int status, struct json_object *o)
{
	const char *s;
	size_t len;
	struct evbuffer *out = evbuffer_new();

	if (kyc_unlogged) {
		kyc_unlogged = 0;
		kyc_log(req, kyc_body, kyc_len, status);
	}
	add_common_headers(req, "application/json");
	if (out != NULL && o != NULL && status != 204) {
		s = json_object_to_json_string_length(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		    &len);
		evbuffer_add(out, s, len);
	}
	evhttp_send_reply(req, status, reason(status), out);
	if (out != NULL)
		evbuffer_free(out);
}

/* CryptoMate's error shape: {"code","message"}. */
static void
send_cm_error(struct evhttp_request *req, int status, const char *code,
    const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "code", json_object_new_string(code));
	json_object_object_add(o, "message", json_object_new_string(msg));
	send_obj(req, status, o);
	json_object_put(o);
}

static struct kclient *
kclient_find(const char *id)
{
	struct kclient *c;

	TAILQ_FOREACH(c, &kclients, c_entry)
		if (strcmp(c->c_id, id) == 0)
			return c;
	return NULL;
}

static const char *
obj_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Is email some stored client's?  For -u. */
static int
kyc_duplicate(const char *body, size_t len)
{
	struct json_object *in;
	const char *email, *e;
	struct kclient *c;
	int dup = 0;

	if (!unique_clients)
		return 0;
	in = parse_json(body, len);
	if ((email = obj_str(in, "email")) != NULL)
		TAILQ_FOREACH(c, &kclients, c_entry)
			if ((e = obj_str(c->c_obj, "email")) != NULL &&
			    strcasecmp(e, email) == 0)
				dup = 1;
	json_object_put(in);
	return dup;
}

/* Keep the client create answered (echo_body's output in out). */
static void
kyc_store_client(struct evbuffer *out)
{
	size_t len = evbuffer_get_length(out);
	struct json_object *o;
	struct kclient *c;
	const char *id;

	if (nkclients >= MAX_CLIENTS)
		return;
	o = parse_json((const char *)evbuffer_pullup(out, -1), len);
	if ((id = obj_str(o, "id")) == NULL || strlen(id) > 32 ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		json_object_put(o);
		return;
	}
	strcpy(c->c_id, id);
	c->c_obj = o;
	TAILQ_INSERT_TAIL(&kclients, c, c_entry);
	nkclients++;
}

static int
client_has_phone(const struct kclient *c)
{
	struct json_object *v;

	return json_object_object_get_ex(c->c_obj, "phone_number", &v) &&
	    !json_object_is_type(v, json_type_null);
}

static struct json_object *
jmeta(const char *id, const char *name, const char *type)
{
	struct json_object *m = json_object_new_object();

	json_object_object_add(m, "id", json_object_new_string(id));
	json_object_object_add(m, "name", json_object_new_string(name));
	json_object_object_add(m, "data_type", json_object_new_string(type));
	json_object_object_add(m, "required", json_object_new_boolean(1));
	return m;
}

static struct json_object *
jvalid_doc(const char *id, const char *name, int back)
{
	struct json_object *d = json_object_new_object(), *md;

	json_object_object_add(d, "id", json_object_new_string(id));
	json_object_object_add(d, "name", json_object_new_string(name));
	json_object_object_add(d, "description",
	    json_object_new_string("A photo of the physical document"));
	json_object_object_add(d, "required", json_object_new_boolean(1));
	json_object_object_add(d, "require_image", json_object_new_boolean(1));
	json_object_object_add(d, "require_back_image",
	    json_object_new_boolean(back));
	md = json_object_new_array();
	json_object_array_add(md, jmeta("number", "Document number",
	    "STRING"));
	json_object_object_add(d, "metadata", md);
	return d;
}

/* missing_requirements for q: {documents: [...], data: [...]}. */
static struct json_object *
kyc_missing(const struct kpreq *q)
{
	struct json_object *m = json_object_new_object(), *docs, *data, *d;
	struct json_object *vd, *fields, *f;
	struct kclient *c = kclient_find(q->q_client);

	docs = json_object_new_array();
	if (!q->q_docs_done) {
		d = json_object_new_object();
		json_object_object_add(d, "id",
		    json_object_new_string("identity"));
		json_object_object_add(d, "name",
		    json_object_new_string("Identity document"));
		json_object_object_add(d, "description",
		    json_object_new_string("One government-issued ID"));
		json_object_object_add(d, "required",
		    json_object_new_boolean(1));
		vd = json_object_new_array();
		json_object_array_add(vd, jvalid_doc("national_id",
		    "National ID", 1));
		json_object_array_add(vd, jvalid_doc("passport", "Passport",
		    0));
		json_object_object_add(d, "valid_documents", vd);
		json_object_array_add(docs, d);
	}
	data = json_object_new_array();
	if (c != NULL && !client_has_phone(c)) {
		d = json_object_new_object();
		json_object_object_add(d, "id", json_object_new_string("phone"));
		json_object_object_add(d, "name",
		    json_object_new_string("Phone"));
		json_object_object_add(d, "description",
		    json_object_new_string("The client's phone number"));
		json_object_object_add(d, "required",
		    json_object_new_boolean(1));
		fields = json_object_new_array();
		f = json_object_new_object();
		json_object_object_add(f, "key",
		    json_object_new_string("phone"));
		json_object_object_add(f, "data_type",
		    json_object_new_string("PHONE"));
		json_object_object_add(f, "required",
		    json_object_new_boolean(1));
		json_object_array_add(fields, f);
		json_object_object_add(d, "fields", fields);
		json_object_array_add(data, d);
	}
	json_object_object_add(m, "documents", docs);
	json_object_object_add(m, "data", data);
	return m;
}

static int
kyc_incomplete(const struct kpreq *q)
{
	struct kclient *c = kclient_find(q->q_client);

	return !q->q_docs_done || (c != NULL && !client_has_phone(c));
}

/* A ProductRequest as CryptoMate shows it. */
static struct json_object *
kpreq_json(const struct kpreq *q)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(q->q_id));
	json_object_object_add(o, "client_id",
	    json_object_new_string(q->q_client));
	json_object_object_add(o, "product",
	    json_object_new_string("cards_individuals"));
	json_object_object_add(o, "status",
	    json_object_new_string(q->q_status));
	if (strcmp(q->q_status, "pending_documentation") == 0)
		json_object_object_add(o, "missing_requirements",
		    kyc_missing(q));
	if (strcmp(q->q_status, "rejected") == 0) {
		json_object_object_add(o, "rejection_code",
		    json_object_new_string(q->q_rej_code ? q->q_rej_code :
		    "REJECTED_BY_PROVIDER"));
		json_object_object_add(o, "rejection_description",
		    json_object_new_string(q->q_rej_desc ? q->q_rej_desc :
		    "Rejected in review"));
	}
	json_object_object_add(o, "created_at",
	    json_object_new_string(q->q_created));
	json_object_object_add(o, "updated_at",
	    json_object_new_string(q->q_updated));
	return o;
}

static struct kpreq *
kpreq_find(const char *client, const char *id)
{
	struct kpreq *q;

	TAILQ_FOREACH(q, &kpreqs, q_entry)
		if (strcmp(q->q_id, id) == 0 && (client == NULL ||
		    strcmp(q->q_client, client) == 0))
			return q;
	return NULL;
}

/* Copy one path segment (up to '/' or the end) into out[cap]; its end. */
static const char *
segment(const char *p, char *out, size_t cap)
{
	size_t n = strcspn(p, "/");

	if (n == 0 || n >= cap)
		n = 0;
	memcpy(out, p, n);
	out[n] = '\0';
	return p + strcspn(p, "/");
}

/* The next list answer, when a test set one (POST /__test/list). */
static int	 list_next_status;
static char	*list_next_body;

static void
kyc_test_list(struct evhttp_request *req, const char *body, size_t len)
{
	struct json_object *in = parse_json(body, len), *st;
	const char *b = obj_str(in, "body");

	if (b == NULL || !json_object_object_get_ex(in, "status", &st) ||
	    json_object_get_int(st) < 100 || json_object_get_int(st) > 599) {
		json_object_put(in);
		send_cm_error(req, 400, "BAD_REQUEST", "need a status and a "
		    "body (a string)");
		return;
	}
	free(list_next_body);
	list_next_body = strdup(b);
	list_next_status = json_object_get_int(st);
	json_object_put(in);
	send_json(req, 200, "{}");
}

static void
kyc_list(struct evhttp_request *req)
{
	struct json_object *a;
	struct kclient *c;

	if (list_next_body != NULL) {
		send_json(req, list_next_status, list_next_body);
		free(list_next_body);
		list_next_body = NULL;
		return;
	}
	a = json_object_new_array();
	TAILQ_FOREACH(c, &kclients, c_entry)
		json_object_array_add(a, json_object_get(c->c_obj));
	send_obj(req, 200, a);
	json_object_put(a);
}

static void
kyc_countries(struct evhttp_request *req)
{
	static const struct {
		const char *name, *a3, *fmt, *subs[8][2];
	} cs[] = {
		{ "Argentina", "ARG", "^[A-Z]?\\d{4}[A-Z]{0,3}$",
		  { { "Buenos Aires", "ARG-B" }, { "Ciudad de Buenos Aires",
		  "ARG-C" }, { "Cordoba", "ARG-X" }, { "Santa Fe",
		  "ARG-S" }, { "Mendoza", "ARG-M" } } },
		{ "Brazil", "BRA", "^\\d{5}-?\\d{3}$",
		  { { "Sao Paulo", "BRA-SP" }, { "Rio de Janeiro",
		  "BRA-RJ" } } },
		{ "Mexico", "MEX", "^\\d{5}$",
		  { { "Ciudad de Mexico", "MEX-CMX" }, { "Jalisco",
		  "MEX-JAL" } } },
		{ "United States", "USA", "^\\d{5}(-\\d{4})?$",
		  { { "California", "USA-CA" }, { "New York", "USA-NY" } } },
	};
	struct json_object *o = json_object_new_object(), *data, *c, *subs, *s;
	size_t i, k;

	data = json_object_new_array();
	for (i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		c = json_object_new_object();
		json_object_object_add(c, "name",
		    json_object_new_string(cs[i].name));
		json_object_object_add(c, "alpha3",
		    json_object_new_string(cs[i].a3));
		json_object_object_add(c, "postal_code_format",
		    json_object_new_string(cs[i].fmt));
		subs = json_object_new_array();
		for (k = 0; k < 8 && cs[i].subs[k][0] != NULL; k++) {
			s = json_object_new_object();
			json_object_object_add(s, "name",
			    json_object_new_string(cs[i].subs[k][0]));
			json_object_object_add(s, "code",
			    json_object_new_string(cs[i].subs[k][1]));
			json_object_array_add(subs, s);
		}
		json_object_object_add(c, "subdivisions", subs);
		json_object_array_add(data, c);
	}
	json_object_object_add(o, "count", json_object_new_int((int)i));
	json_object_object_add(o, "data", data);
	send_obj(req, 200, o);
	json_object_put(o);
}

static void
kyc_identifications(struct evhttp_request *req, const char *cc)
{
	static const char *const ids[][3] = {
		{ "AR", "DNI", "Documento Nacional de Identidad" },
		{ "AR", "CUIT", "Clave Unica de Identificacion Tributaria" },
		{ "BR", "CPF", "Cadastro de Pessoas Fisicas" },
		{ "MX", "CURP", "Clave Unica de Registro de Poblacion" },
		{ "US", "SSN", "Social Security Number" },
	};
	struct json_object *a = json_object_new_array(), *e;
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		if (strcmp(ids[i][0], cc) != 0)
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "type",
		    json_object_new_string(ids[i][1]));
		json_object_object_add(e, "description",
		    json_object_new_string(ids[i][2]));
		json_object_array_add(a, e);
	}
	if (json_object_array_length(a) == 0)
		send_cm_error(req, 404, "NOT_FOUND", "Country not found or no "
		    "identification types available");
	else
		send_obj(req, 200, a);
	json_object_put(a);
}

/* PUT: a full replacement; id, type and status stay the server's. */
static void
kyc_update(struct evhttp_request *req, struct kclient *c, const char *body,
    size_t len)
{
	struct json_object *in = parse_json(body, len), *o;
	static const char *const keep[] = { "id", "type", "status" };
	struct json_object *v;
	size_t i;

	if (in == NULL || !json_object_is_type(in, json_type_object)) {
		json_object_put(in);
		send_cm_error(req, 400, "BAD_REQUEST", "Request body must be "
		    "a JSON object");
		return;
	}
	o = json_object_new_object();
	for (i = 0; i < 3; i++)
		if (json_object_object_get_ex(c->c_obj, keep[i], &v))
			json_object_object_add(o, keep[i], json_object_get(v));
	json_object_object_foreach(in, key, val) {
		if (strcmp(key, "id") == 0 || strcmp(key, "type") == 0 ||
		    strcmp(key, "status") == 0)
			continue;
		json_object_object_add(o, key, json_object_get(val));
	}
	json_object_put(in);
	json_object_put(c->c_obj);
	c->c_obj = o;
	send_obj(req, 200, o);
}

static void
kyc_delete(struct evhttp_request *req, struct kclient *c)
{
	struct kpreq *q, *tq;

	for (q = TAILQ_FIRST(&kpreqs); q != NULL; q = tq) {
		tq = TAILQ_NEXT(q, q_entry);
		if (strcmp(q->q_client, c->c_id) == 0) {
			TAILQ_REMOVE(&kpreqs, q, q_entry);
			free(q->q_rej_code);
			free(q->q_rej_desc);
			free(q);
		}
	}
	TAILQ_REMOVE(&kclients, c, c_entry);
	nkclients--;
	json_object_put(c->c_obj);
	free(c);
	send_obj(req, 204, NULL);
}

static void
kyc_product_request(struct evhttp_request *req, struct kclient *c,
    const char *body, size_t len)
{
	struct json_object *in = parse_json(body, len), *o;
	const char *sp = obj_str(in, "subproduct");
	struct kpreq *q;

	if (sp == NULL || strcmp(sp, "cards_individuals") != 0) {
		json_object_put(in);
		send_cm_error(req, 412, "VAL", "Invalid product");
		return;
	}
	json_object_put(in);
	TAILQ_FOREACH(q, &kpreqs, q_entry)
		if (strcmp(q->q_client, c->c_id) == 0 &&
		    strcmp(q->q_status, "rejected") != 0) {
			send_cm_error(req, 409, "VAL", "An enablement request "
			    "is already active for this product");
			return;
		}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		send_cm_error(req, 500, "SERVER_ERROR", "out of memory");
		return;
	}
	rand_string(q->q_id, 32, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789", 62);
	strcpy(q->q_client, c->c_id);
	strcpy(q->q_status, "pending_documentation");
	now_stamp(q->q_created);
	strcpy(q->q_updated, q->q_created);
	/* Newest first, as the list is documented. */
	TAILQ_INSERT_HEAD(&kpreqs, q, q_entry);
	o = kpreq_json(q);
	send_obj(req, 201, o);
	json_object_put(o);
}

static void
kyc_product_list(struct evhttp_request *req, struct kclient *c)
{
	struct json_object *a = json_object_new_array();
	struct kpreq *q;

	TAILQ_FOREACH(q, &kpreqs, q_entry)
		if (strcmp(q->q_client, c->c_id) == 0)
			json_object_array_add(a, kpreq_json(q));
	send_obj(req, 200, a);
	json_object_put(a);
}

/*
 * Decode an image field (a data URI or bare base64, leniently: the mock
 * checks what arrived, the gateway does the strict checking) into its
 * SHA-256 and size, and whether it starts as a JPEG or a PNG.  -1 when
 * it does not decode.
 */
static int
image_digest(const char *s, size_t n, char hexout[65], size_t *size,
    int *is_photo)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789+/";
	static const unsigned char png[8] = { 0x89, 'P', 'N', 'G', 0x0d, 0x0a,
	    0x1a, 0x0a };
	unsigned char buf[3 * 4096], head[8], md[32];
	const char *comma;
	EVP_MD_CTX *ctx;
	unsigned int acc = 0, bits = 0, mdlen;
	size_t i, o = 0, total = 0, hl = 0;
	const char *p;

	if (strncmp(s, "data:", 5) == 0) {
		if ((comma = memchr(s, ',', n)) == NULL)
			return -1;
		n -= (size_t)(comma + 1 - s);
		s = comma + 1;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	for (i = 0; i < n && s[i] != '='; i++) {
		if ((p = memchr(a, s[i], 64)) == NULL) {
			EVP_MD_CTX_free(ctx);
			return -1;
		}
		acc = acc << 6 | (unsigned)(p - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
			if (o == sizeof(buf)) {
				if (hl < 8) {
					memcpy(head + hl, buf, 8 - hl);
					hl = 8;
				}
				EVP_DigestUpdate(ctx, buf, o);
				total += o;
				o = 0;
			}
		}
	}
	if (hl < 8) {
		size_t k = o < 8 - hl ? o : 8 - hl;

		memcpy(head + hl, buf, k);
		hl += k;
	}
	EVP_DigestUpdate(ctx, buf, o);
	total += o;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < 32; i++)
		snprintf(hexout + 2 * i, 3, "%02x", md[i]);
	*size = total;
	*is_photo = (hl >= 3 && head[0] == 0xff && head[1] == 0xd8 &&
	    head[2] == 0xff) || (hl == 8 && memcmp(head, png, 8) == 0);
	return 0;
}

static void
rejected(struct json_object *items, const char *type, const char *key,
    const char *why)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "type", json_object_new_string(type));
	json_object_object_add(r, "key", json_object_new_string(key));
	json_object_object_add(r, "reason", json_object_new_string(why));
	json_object_array_add(items, r);
}

/* One side of an upload: digest it, record it, judge it. */
static int
upload_side(struct json_object *doc, const char *key, struct json_object *rec,
    struct json_object *items, const char *dtype)
{
	struct json_object *v;
	char hex[65], field[32];
	size_t size;
	int photo;

	if (!json_object_object_get_ex(doc, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return 0;
	if (image_digest(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), hex, &size, &photo) == -1) {
		rejected(items, "document", dtype, "The image could not be "
		    "decoded");
		return -1;
	}
	snprintf(field, sizeof(field), "%s_sha256", key);
	json_object_object_add(rec, field, json_object_new_string(hex));
	snprintf(field, sizeof(field), "%s_bytes", key);
	json_object_object_add(rec, field, json_object_new_int64(
	    (int64_t)size));
	if (!photo) {
		rejected(items, "document", dtype, "Only JPG and PNG images "
		    "are accepted");
		return -1;
	}
	return 1;
}

static void
kyc_documentation(struct evhttp_request *req, struct kpreq *q,
    const char *body, size_t len)
{
	struct json_object *in, *doc = NULL, *md, *num, *rec, *items, *o;
	const char *dtype = NULL;
	struct kupload *u;
	int front, back, ok;

	if (strcmp(q->q_status, "pending_documentation") != 0) {
		send_cm_error(req, 409, "VAL", "The enablement request is not "
		    "pending documentation");
		return;
	}
	in = parse_json(body, len);
	if (in == NULL || !json_object_object_get_ex(in, "document", &doc) ||
	    !json_object_is_type(doc, json_type_object) ||
	    (dtype = obj_str(doc, "document_type")) == NULL) {
		json_object_put(in);
		send_cm_error(req, 400, "BAD_REQUEST", "document and "
		    "document.document_type are required");
		return;
	}
	items = json_object_new_array();
	rec = json_object_new_object();
	json_object_object_add(rec, "client_id",
	    json_object_new_string(q->q_client));
	json_object_object_add(rec, "product_request_id",
	    json_object_new_string(q->q_id));
	json_object_object_add(rec, "document_type",
	    json_object_new_string(dtype));
	json_object_object_add(rec, "body_bytes",
	    json_object_new_int64((int64_t)len));
	front = upload_side(doc, "image_front", rec, items, dtype);
	back = upload_side(doc, "image_back", rec, items, dtype);
	ok = front >= 0 && back >= 0;
	if (strcmp(dtype, "national_id") != 0 && strcmp(dtype, "passport")) {
		rejected(items, "document", dtype, "Document type not "
		    "required for this request");
		ok = 0;
	} else {
		if (front == 0) {
			rejected(items, "document", dtype, "image_front is "
			    "required");
			ok = 0;
		}
		if (back == 0 && strcmp(dtype, "national_id") == 0) {
			rejected(items, "document", dtype, "image_back is "
			    "required for national_id");
			ok = 0;
		}
		if (!json_object_object_get_ex(doc, "metadata", &md) ||
		    !json_object_object_get_ex(md, "number", &num) ||
		    json_object_get_string_len(num) == 0) {
			rejected(items, "document", dtype, "metadata.number is "
			    "required");
			ok = 0;
		}
	}
	json_object_object_add(rec, "accepted", json_object_new_boolean(ok));
	if (ok) {
		q->q_docs_done = 1;
		now_stamp(q->q_updated);
	}
	if ((u = calloc(1, sizeof(*u))) != NULL) {
		u->u_obj = rec;
		TAILQ_INSERT_TAIL(&kuploads, u, u_entry);
	} else
		json_object_put(rec);
	json_object_put(in);
	o = json_object_new_object();
	json_object_object_add(o, "product", kpreq_json(q));
	json_object_object_add(o, "rejected_items", items);
	send_obj(req, 200, o);
	json_object_put(o);
}

static void
kyc_submit(struct evhttp_request *req, struct kpreq *q)
{
	struct json_object *o, *items;
	struct kclient *c = kclient_find(q->q_client);

	if (strcmp(q->q_status, "pending_documentation") != 0) {
		send_cm_error(req, 409, "VAL", "The enablement request is not "
		    "pending documentation");
		return;
	}
	items = json_object_new_array();
	if (!q->q_docs_done)
		rejected(items, "document", "identity", "Missing required "
		    "document");
	if (c != NULL && !client_has_phone(c))
		rejected(items, "data", "phone", "Missing required data");
	if (!kyc_incomplete(q)) {
		strcpy(q->q_status, "in_kyc");
		now_stamp(q->q_updated);
	}
	o = json_object_new_object();
	json_object_object_add(o, "product", kpreq_json(q));
	json_object_object_add(o, "rejected_items", items);
	send_obj(req, 200, o);
	json_object_put(o);
}

/* POST /__test/products/{pid}/state: CryptoMate's review, simulated. */
static void
kyc_test_state(struct evhttp_request *req, const char *pid, const char *body,
    size_t len)
{
	static const char *const ok[] = { "pending_documentation", "in_kyc",
	    "enabled", "rejected" };
	struct json_object *in = parse_json(body, len), *o;
	const char *st = obj_str(in, "status"), *s;
	struct kpreq *q = kpreq_find(NULL, pid);
	size_t i;

	for (i = 0; st != NULL && i < 4; i++)
		if (strcmp(st, ok[i]) == 0)
			break;
	if (q == NULL || st == NULL || i == 4) {
		json_object_put(in);
		send_cm_error(req, q == NULL ? 404 : 400, q == NULL ?
		    "NOT_FOUND" : "BAD_REQUEST", "need a known product request "
		    "and a status of pending_documentation, in_kyc, enabled "
		    "or rejected");
		return;
	}
	strcpy(q->q_status, st);
	free(q->q_rej_code);
	free(q->q_rej_desc);
	q->q_rej_code = (s = obj_str(in, "rejection_code")) ? strdup(s) : NULL;
	q->q_rej_desc = (s = obj_str(in, "rejection_description")) ?
	    strdup(s) : NULL;
	now_stamp(q->q_updated);
	json_object_put(in);
	o = kpreq_json(q);
	send_obj(req, 200, o);
	json_object_put(o);
}

static void
kyc_test_uploads(struct evhttp_request *req)
{
	struct json_object *a = json_object_new_array();
	struct kupload *u;

	TAILQ_FOREACH(u, &kuploads, u_entry)
		json_object_array_add(a, json_object_get(u->u_obj));
	send_obj(req, 200, a);
	json_object_put(a);
}

static void
method_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    allow);
	send_cm_error(req, 405, "METHOD_NOT_ALLOWED", "Allowed: %s", allow);
}

/*
 * The log line of a KYC request: a large body (a document upload) is
 * logged as its size and SHA-256 rather than 28 MB of base64.
 */
static void
kyc_log(struct evhttp_request *req, const char *body, size_t len,
    int status)
{
	unsigned char md[32];
	unsigned int mdlen;
	char line[160];
	size_t i, n;

	if (len <= LOG_BODY_MAX) {
		log_request(req, body, len, status);
		return;
	}
	EVP_Digest(body, len, md, &mdlen, EVP_sha256(), NULL);
	n = (size_t)snprintf(line, sizeof(line), "{\"omitted_bytes\":%zu,"
	    "\"sha256\":\"", len);
	for (i = 0; i < 32; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x", md[i]);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\"}");
	log_request(req, line, n, status);
}

/*
 * Route a request under API_PATH (other than POST on API_PATH itself)
 * or /__test/.  Returns 0 when the path is not one of ours.
 */
static int
kyc_dispatch(struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *inb = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(inb);
	const char *body = len ? (const char *)evbuffer_pullup(inb, -1) : "";
	const char *rest, *key;
	char id[65], pid[65], cc[8];
	struct kclient *c;
	struct kpreq *q;
	size_t plen = strlen(API_PATH);

	if (strncmp(path, "/__test/", 8) == 0) {
		rest = path + 8;
		if (strcmp(rest, "uploads") == 0 && cmd == EVHTTP_REQ_GET) {
			kyc_test_uploads(req);
			return 1;
		}
		if (strcmp(rest, "list") == 0 && cmd == EVHTTP_REQ_POST) {
			kyc_test_list(req, body, len);
			return 1;
		}
		if (strncmp(rest, "products/", 9) == 0 &&
		    cmd == EVHTTP_REQ_POST) {
			rest = segment(rest + 9, pid, sizeof(pid));
			if (pid[0] != '\0' && strcmp(rest, "/state") == 0) {
				kyc_test_state(req, pid, body, len);
				return 1;
			}
		}
		send_cm_error(req, 404, "NOT_FOUND", "Resource not found");
		return 1;
	}
	if (strncmp(path, API_PATH, plen) != 0 ||
	    (path[plen] != '\0' && path[plen] != '/') ||
	    (path[plen] == '\0' && cmd == EVHTTP_REQ_POST))
		return 0;

	stats_arrival();
	key = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "x-api-key");
	kyc_body = body;
	kyc_len = len;
	kyc_unlogged = 1;
	if (api_key != NULL && (key == NULL || strcmp(key, api_key) != 0)) {
		send_cm_error(req, 401, "API_ERROR", "Invalid API key");
		return 1;
	}
	rest = path + plen;
	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET)
			kyc_list(req);
		else
			method_not_allowed(req, "GET, POST");
		goto logged;
	}
	rest = segment(rest + 1, id, sizeof(id));
	if (strcmp(id, "countries") == 0 && *rest == '\0') {
		if (cmd == EVHTTP_REQ_GET)
			kyc_countries(req);
		else
			method_not_allowed(req, "GET");
		goto logged;
	}
	if (strcmp(id, "identifications") == 0 && *rest == '/') {
		rest = segment(rest + 1, cc, sizeof(cc));
		if (cc[0] != '\0' && *rest == '\0') {
			if (cmd == EVHTTP_REQ_GET)
				kyc_identifications(req, cc);
			else
				method_not_allowed(req, "GET");
			goto logged;
		}
	}
	if (id[0] == '\0')
		goto notfound;
	if ((c = kclient_find(id)) == NULL) {
		send_cm_error(req, 404, "NOT_FOUND", "Company client not found "
		    "with id: %s", id);
		goto logged;
	}
	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET)
			send_obj(req, 200, c->c_obj);
		else if (cmd == EVHTTP_REQ_PUT)
			kyc_update(req, c, body, len);
		else if (cmd == EVHTTP_REQ_DELETE)
			kyc_delete(req, c);
		else
			method_not_allowed(req, "GET, PUT, DELETE");
		goto logged;
	}
	if (strcmp(rest, "/products") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			kyc_product_request(req, c, body, len);
		else if (cmd == EVHTTP_REQ_GET)
			kyc_product_list(req, c);
		else
			method_not_allowed(req, "GET, POST");
		goto logged;
	}
	if (strncmp(rest, "/products/", 10) != 0)
		goto notfound;
	rest = segment(rest + 10, pid, sizeof(pid));
	if (pid[0] == '\0' || (strcmp(rest, "/documentation") != 0 &&
	    strcmp(rest, "/submit") != 0))
		goto notfound;
	if (cmd != EVHTTP_REQ_POST) {
		method_not_allowed(req, "POST");
		goto logged;
	}
	if ((q = kpreq_find(c->c_id, pid)) == NULL) {
		send_cm_error(req, 404, "NOT_FOUND", "Product request not found "
		    "with id: %s", pid);
		goto logged;
	}
	if (strcmp(rest, "/submit") == 0)
		kyc_submit(req, q);
	else
		kyc_documentation(req, q, body, len);
	goto logged;
notfound:
	send_cm_error(req, 404, "NOT_FOUND", "Resource not found");
logged:
	return 1;
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
	if (kyc_dispatch(req, path))
		return;
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
		{ "unique-clients", no_argument,	NULL, 'u' },
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

	while ((ch = getopt_long(argc, argv, "l:k:K:d:s:t:L:uh", longopts,
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
		case 'u':
			unique_clients = 1;
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
	kyc_reset();
	rule_clear(&default_rule);
	rule_clear(&startup_rule);
	free(api_key);
	free(raw_answer);
	if (logfp != NULL)
		fclose(logfp);
	libevent_global_shutdown();
	return 0;
}
