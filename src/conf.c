/*
 * conf.c: reading and checking the JSON config.
 *
 * One table of known keys (path, type, range, default) drives parsing,
 * checking and the key list of `cmgate --help`; the redis idea, in JSON.  Any
 * key not in the table is an error that names it, so a typo never
 * silently falls back to a default.
 */
#include "conf.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#define CONF_MAX_FILE	(1024 * 1024)
#define API_KEY_MAX	4096

enum ctype {
	C_SECTION,	/* an object holding further keys */
	C_STR,		/* string (NULL allowed when nullable) */
	C_PATH,		/* string resolved against the config's folder */
	C_ENUM,		/* string from a fixed set */
	C_INT,		/* integer in [min, max], stored as int */
	C_LONG,		/* integer in [min, max], stored as long */
	C_DBL,		/* number in [min, max] */
	C_BOOL,
	C_CALLERS,	/* the callers array */
	C_STRLIST,	/* an array of 1..CONF_STRLIST_MAX strings (struct
			   conf_strlist); the default is comma-separated */
};

struct ckey {
	const char	*path;
	enum ctype	 type;
	size_t		 off;
	double		 min, max;
	const char	*def;		/* default, as text; NULL = none */
	const char	*choices;	/* C_ENUM: "a|b|c" */
	int		 nullable;
	const char	*help;
};

#define O(f) offsetof(struct config, f)
static const struct ckey conf_keys[] = {
	{ "listen", C_STR, O(listen), 0, 0, "127.0.0.1:8080", NULL, 0,
	  "address:port to listen on (port 0 = any free port)" },
	{ "workers", C_INT, O(workers), 1, 64, "1", NULL, 0,
	  "event loops (threads) serving callers" },
	{ "shutdown_timeout_ms", C_LONG, O(shutdown_timeout_ms), 0, 600000,
	  "10000", NULL, 0, "how long SIGTERM waits for requests in flight" },
	{ "core_dumps", C_BOOL, O(core_dumps), 0, 0, "false", NULL, 0,
	  "allow core dumps (they would hold the API key)" },

	{ "upstream", C_SECTION, 0, 0, 0, NULL, NULL, 0, NULL },
	{ "upstream.base_url", C_STR, O(upstream.base_url), 0, 0,
	  "https://api.cryptomate.me", NULL, 0, "CryptoMate's base URL" },
	{ "upstream.api_key_file", C_PATH, O(upstream.api_key_file), 0, 0,
	  NULL, NULL, 1, "file holding the API key (else $CRYPTOMATE_API_KEY)" },
	{ "upstream.ca_file", C_PATH, O(upstream.ca_file), 0, 0, NULL, NULL,
	  1, "CA bundle to verify the upstream (default: system store)" },
	{ "upstream.connect_timeout_ms", C_LONG,
	  O(upstream.connect_timeout_ms), 1, 600000, "3000", NULL, 0,
	  "upstream connect timeout" },
	{ "upstream.timeout_ms", C_LONG, O(upstream.timeout_ms), 1, 600000,
	  "15000", NULL, 0, "upstream total timeout per request" },
	{ "upstream.rate_limit_per_sec", C_DBL,
	  O(upstream.rate_limit_per_sec), 0, 100000, "14", NULL, 0,
	  "requests/s sent upstream (0 = budget off)" },
	{ "upstream.burst", C_INT, O(upstream.burst), 1, 100000, "1", NULL,
	  0, "token bucket size" },
	{ "upstream.max_queue_wait_ms", C_LONG, O(upstream.max_queue_wait_ms),
	  0, 600000, "10000", NULL, 0, "longest a request may wait for budget" },
	{ "upstream.max_queued", C_INT, O(upstream.max_queued), 0, 1000000,
	  "1000", NULL, 0, "requests waiting for budget, all callers" },
	{ "upstream.max_inflight", C_INT, O(upstream.max_inflight), 1,
	  1000000, "4096", NULL, 0, "upstream requests in flight at once" },
	{ "upstream.max_response_bytes", C_LONG,
	  O(upstream.max_response_bytes), 1, 64L * 1024 * 1024, "1048576",
	  NULL, 0, "largest upstream response body accepted" },
	{ "upstream.max_list_response_bytes", C_LONG,
	  O(upstream.max_list_response_bytes), 1, 256L * 1024 * 1024,
	  "16777216", NULL, 0, "largest answer of a list route (10,000 "
	  "clients are about 4 MB)" },
	{ "upstream.max_connections", C_INT, O(upstream.max_connections), 1,
	  100000, "512", NULL, 0, "upstream connection cache size" },
	{ "upstream.retry_unsent_ms", C_LONG, O(upstream.retry_unsent_ms), 0,
	  600000, "1000", NULL, 0,
	  "how long a request that never reached upstream is retried" },

	{ "audit", C_SECTION, 0, 0, 0, NULL, NULL, 0, NULL },
	{ "audit.path", C_PATH, O(audit.path), 0, 0, "audit.log", NULL, 0,
	  "the audit log" },
	{ "audit.key_file", C_PATH, O(audit.key_file), 0, 0, "audit.key",
	  NULL, 0, "initial key K0 (cmgate-audit keygen)" },
	{ "audit.state_file", C_PATH, O(audit.state_file), 0, 0, NULL, NULL,
	  1, "evolving key state (default: <path>.state)" },
	{ "audit.epoch_s", C_INT, O(audit.epoch_s), 1, 86400, "60", NULL, 0,
	  "key epoch length; a seal closes each epoch" },
	{ "audit.body", C_ENUM, O(audit.body), 0, 0, "digest",
	  "digest|redacted|full", 0, "what of the body is recorded" },
	{ "audit.max_bytes", C_LONG, O(audit.max_bytes), 4096,
	  (double)LONG_MAX, "268435456", NULL, 0, "rotate at this size" },
	{ "audit.seal_command", C_STR, O(audit.seal_command), 0, 0, NULL,
	  NULL, 1, "command given each seal on stdin" },
	{ "audit.seal_syslog", C_BOOL, O(audit.seal_syslog), 0, 0, "false",
	  NULL, 0, "send each seal to syslog" },

	{ "callers", C_CALLERS, 0, 0, 0, NULL, NULL, 0,
	  "[{name, token_sha256, rate_limit_per_sec?, allow?, clients?}]" },

	{ "limits", C_SECTION, 0, 0, 0, NULL, NULL, 0, NULL },
	{ "limits.max_body_bytes", C_LONG, O(limits.max_body_bytes), 2,
	  64L * 1024 * 1024, "65536", NULL, 0, "largest request body" },
	{ "limits.max_document_body_bytes", C_LONG,
	  O(limits.max_document_body_bytes), 2, 256L * 1024 * 1024,
	  "31457280", NULL, 0, "largest products.documentation body (two "
	  "10 MiB images in base64 are about 28 MB)" },
	{ "limits.max_buffered_bytes", C_LONG, O(limits.max_buffered_bytes),
	  65536, (double)LONG_MAX, "268435456", NULL, 0, "request and "
	  "response bodies held in memory, all requests together" },
	{ "limits.max_header_bytes", C_LONG, O(limits.max_header_bytes), 256,
	  1024 * 1024, "16384", NULL, 0, "request line + headers" },
	{ "limits.max_headers", C_INT, O(limits.max_headers), 4, 10000, "64",
	  NULL, 0, "header count" },
	{ "limits.max_json_depth", C_INT, O(limits.max_json_depth), 2, 1000,
	  "16", NULL, 0, "JSON nesting depth" },
	{ "limits.max_string_length", C_INT, O(limits.max_string_length), 1,
	  1000000, "1024", NULL, 0, "longest string field (characters)" },
	{ "limits.max_connections", C_INT, O(limits.max_connections), 1,
	  1000000, "20000", NULL, 0, "open caller connections" },
	{ "limits.request_timeout_ms", C_LONG, O(limits.request_timeout_ms),
	  100, 600000, "10000", NULL, 0, "time to send a whole request" },
	{ "limits.idle_timeout_ms", C_LONG, O(limits.idle_timeout_ms), 100,
	  3600000, "60000", NULL, 0, "idle keep-alive connection timeout" },

	{ "validation", C_SECTION, 0, 0, 0, NULL, NULL, 0, NULL },
	{ "validation.min_age_years", C_INT, O(validation.min_age_years), 0,
	  150, "18", NULL, 0, "minimum age of a client" },
	{ "validation.subproducts", C_STRLIST, O(validation.subproducts), 0,
	  0, "cards_individuals", NULL, 0, "what products.request may ask "
	  "for (CryptoMate's pages disagree on the list)" },
	{ "validation.max_image_bytes", C_LONG, O(validation.max_image_bytes),
	  1, 64L * 1024 * 1024, "10485760", NULL, 0, "largest document "
	  "image, decoded (CryptoMate's limit: 10 MiB)" },

	{ "idempotency", C_SECTION, 0, 0, 0, NULL, NULL, 0, NULL },
	{ "idempotency.enabled", C_BOOL, O(idempotency.enabled), 0, 0,
	  "true", NULL, 0, "honour Idempotency-Key" },
	{ "idempotency.path", C_PATH, O(idempotency.path), 0, 0,
	  "idempotency.db", NULL, 0, "LMDB store (folder), 0600" },
	{ "idempotency.ttl_s", C_LONG, O(idempotency.ttl_s), 1, 31536000,
	  "86400", NULL, 0, "how long a key is remembered" },
	{ "idempotency.required", C_BOOL, O(idempotency.required), 0, 0,
	  "false", NULL, 0, "refuse creates without a key" },
	{ "idempotency.max_keys_per_caller", C_LONG,
	  O(idempotency.max_keys_per_caller), 1, 1000000000, "100000", NULL,
	  0, "stored keys one caller may hold (then 429)" },

	{ "log", C_SECTION, 0, 0, 0, NULL, NULL, 0, NULL },
	{ "log.level", C_ENUM, O(log.level), 0, 0, "info",
	  "debug|info|warn|error", 0, "lowest level logged" },
	{ "log.target", C_ENUM, O(log.target), 0, 0, "stderr",
	  "stderr|syslog", 0, "where log lines go" },

	{ "metrics", C_SECTION, 0, 0, 0, NULL, NULL, 0, NULL },
	{ "metrics.listen", C_STR, O(metrics.listen), 0, 0, NULL, NULL, 1,
	  "separate address for /metrics (default: the main listener)" },
};
#undef O

#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

static int
fail(char *err, size_t errlen, const char *file, const char *path,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path && *path)
		snprintf(err, errlen, "%s: %s: %s", file, path, msg);
	else
		snprintf(err, errlen, "%s: %s", file, msg);
	return -1;
}

static const struct ckey *
find_key(const char *path)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(conf_keys[i].path, path) == 0)
			return &conf_keys[i];
	return NULL;
}

static const char *
type_name(enum ctype t)
{
	switch (t) {
	case C_SECTION: return "an object";
	case C_STR: case C_PATH: case C_ENUM: return "a string";
	case C_INT: case C_LONG: return "an integer";
	case C_DBL: return "a number";
	case C_BOOL: return "true or false";
	case C_CALLERS: return "an array";
	case C_STRLIST: return "an array of strings";
	}
	return "?";
}

static int
enum_ok(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *p = choices;

	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, v, n) == 0)
			return 1;
		p = bar ? bar + 1 : NULL;
	}
	return 0;
}

/* The error for a value of the wrong JSON type: "must be a string". */
static int
wrong_type(const struct config *c, const struct ckey *k, char *err,
    size_t errlen)
{
	return fail(err, errlen, c->path, k->path, "must be %s",
	    type_name(k->type));
}

/*
 * C_STR, C_PATH, C_ENUM.  A JSON null clears the value where the key is
 * nullable; an enum is checked against its choices; only a C_STR may be
 * empty; a C_PATH is resolved against the config's folder.
 */
static int
set_str(struct config *c, const struct ckey *k, struct json_object *j,
    const char *text, char *err, size_t errlen)
{
	char **v = (char **)((char *)c + k->off);
	const char *s;

	if (j != NULL && json_object_get_type(j) == json_type_null) {
		if (!k->nullable)
			return wrong_type(c, k, err, errlen);
		s = NULL;
	} else if (j != NULL) {
		if (!json_object_is_type(j, json_type_string))
			return wrong_type(c, k, err, errlen);
		s = json_object_get_string(j);
	} else
		s = text;
	free(*v);
	*v = NULL;
	if (s == NULL)
		return 0;
	if (k->type == C_ENUM && !enum_ok(k->choices, s))
		return fail(err, errlen, c->path, k->path,
		    "must be one of %s", k->choices);
	if (*s == '\0' && k->type != C_STR)
		return fail(err, errlen, c->path, k->path,
		    "must not be empty");
	*v = k->type == C_PATH ? path_resolve(c->dir, s) : strdup(s);
	if (*v == NULL)
		return fail(err, errlen, c->path, k->path, "out of memory");
	return 0;
}

/* C_INT and C_LONG: a JSON integer (a default through strtod) in
 * [min, max]; the range is checked as a double, before the cast. */
static int
set_int(struct config *c, const struct ckey *k, struct json_object *j,
    const char *text, char *err, size_t errlen)
{
	char *base = (char *)c + k->off;
	double d;

	if (j != NULL) {
		if (!json_object_is_type(j, json_type_int))
			return wrong_type(c, k, err, errlen);
		d = (double)json_object_get_int64(j);
	} else
		d = strtod(text, NULL);
	if (d < k->min || d > k->max)
		return fail(err, errlen, c->path, k->path,
		    "must be %.0f..%.0f", k->min, k->max);
	if (k->type == C_INT)
		*(int *)base = (int)d;
	else
		*(long *)base = (long)d;
	return 0;
}

/* C_DBL: an integer or a real in [min, max]; written so that a NaN
 * fails the range check. */
static int
set_dbl(struct config *c, const struct ckey *k, struct json_object *j,
    const char *text, char *err, size_t errlen)
{
	double d;

	if (j != NULL) {
		if (!json_object_is_type(j, json_type_int) &&
		    !json_object_is_type(j, json_type_double))
			return wrong_type(c, k, err, errlen);
		d = json_object_get_double(j);
	} else
		d = strtod(text, NULL);
	if (!(d >= k->min && d <= k->max))
		return fail(err, errlen, c->path, k->path,
		    "must be %g..%g", k->min, k->max);
	*(double *)((char *)c + k->off) = d;
	return 0;
}

static int
set_bool(struct config *c, const struct ckey *k, struct json_object *j,
    const char *text, char *err, size_t errlen)
{
	bool *v = (bool *)((char *)c + k->off);

	if (j != NULL) {
		if (!json_object_is_type(j, json_type_boolean))
			return wrong_type(c, k, err, errlen);
		*v = json_object_get_boolean(j);
	} else
		*v = strcmp(text, "true") == 0;
	return 0;
}

/* A C_STRLIST default, given as text "a,b"; at most CONF_STRLIST_MAX
 * items are kept. */
static int
set_strlist_text(struct config *c, const struct ckey *k,
    struct conf_strlist *l, const char *s, char *err, size_t errlen)
{
	size_t n;

	while (*s != '\0' && l->n < CONF_STRLIST_MAX) {
		n = strcspn(s, ",");
		if ((l->v[l->n++] = strndup(s, n)) == NULL)
			return fail(err, errlen, c->path, k->path,
			    "out of memory");
		s += n + (s[n] == ',');
	}
	return 0;
}

/* C_STRLIST: the old items are freed first; from JSON, an array of
 * 1..CONF_STRLIST_MAX strings of 1..64 characters each. */
static int
set_strlist(struct config *c, const struct ckey *k, struct json_object *j,
    const char *text, char *err, size_t errlen)
{
	struct conf_strlist *l = (struct conf_strlist *)((char *)c + k->off);
	size_t i, n;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
	if (j == NULL)
		return set_strlist_text(c, k, l, text, err, errlen);
	if (!json_object_is_type(j, json_type_array) ||
	    (n = json_object_array_length(j)) == 0 || n > CONF_STRLIST_MAX)
		return fail(err, errlen, c->path, k->path,
		    "must be an array of 1..%d strings", CONF_STRLIST_MAX);
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(j, i);
		if (!json_object_is_type(e, json_type_string) ||
		    json_object_get_string_len(e) < 1 ||
		    json_object_get_string_len(e) > 64)
			return fail(err, errlen, c->path, k->path,
			    "[%zu] must be a string of 1..64 characters", i);
		if ((l->v[l->n++] = strdup(json_object_get_string(e))) == NULL)
			return fail(err, errlen, c->path, k->path,
			    "out of memory");
	}
	return 0;
}

/* Store a value (from JSON, or a default as text when j is NULL). */
static int
set_value(struct config *c, const struct ckey *k, struct json_object *j,
    const char *text, char *err, size_t errlen)
{
	char **v = (char **)((char *)c + k->off);

	/* json-c reads a JSON null as a NULL object, so "no object and no
	 * default text" is a null from the file: allowed only where the
	 * key is nullable (found by fuzz_config: a null integer crashed). */
	if (j == NULL && text == NULL) {
		if (!k->nullable)
			return wrong_type(c, k, err, errlen);
		free(*v);
		*v = NULL;
		return 0;
	}
	switch (k->type) {
	case C_STR:
	case C_PATH:
	case C_ENUM:
		return set_str(c, k, j, text, err, errlen);
	case C_INT:
	case C_LONG:
		return set_int(c, k, j, text, err, errlen);
	case C_DBL:
		return set_dbl(c, k, j, text, err, errlen);
	case C_BOOL:
		return set_bool(c, k, j, text, err, errlen);
	case C_STRLIST:
		return set_strlist(c, k, j, text, err, errlen);
	case C_SECTION:
	case C_CALLERS:
		break;
	}
	return 0;
}

/*
 * callers[].allow: route names, each possibly ending in one '*'
 * ("products.*", "*").  Only the spelling is checked here; whether a
 * pattern names a route is checked against the table by
 * routes_bind_callers() (conf.c sits below the route table).
 */
static int
parse_allow(struct config *c, struct conf_caller *cc, struct json_object *a,
    const char *kp, char *err, size_t errlen)
{
	size_t i, j, n;

	if (!json_object_is_type(a, json_type_array))
		return fail(err, errlen, c->path, kp,
		    "must be an array of route names");
	n = json_object_array_length(a);
	if (n == 0 || n > CONF_ALLOW_MAX)
		return fail(err, errlen, c->path, kp,
		    "must hold 1..%d route names", CONF_ALLOW_MAX);
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(a, i);
		const char *s;
		size_t len;

		if (!json_object_is_type(v, json_type_string))
			return fail(err, errlen, c->path, kp,
			    "[%zu] must be a string", i);
		s = json_object_get_string(v);
		len = strlen(s);
		if (len == 0 || len > 64)
			return fail(err, errlen, c->path, kp,
			    "[%zu] must be 1..64 characters", i);
		for (j = 0; j < len; j++)
			if (!(islower((unsigned char)s[j]) || s[j] == '.' ||
			    s[j] == '_' || (s[j] == '*' && j == len - 1)))
				return fail(err, errlen, c->path, kp, "[%zu] "
				    "must be a route name (a-z . _), with at "
				    "most one '*' at its end", i);
		if ((cc->allow[cc->nallow++] = strdup(s)) == NULL)
			return fail(err, errlen, c->path, kp, "out of memory");
	}
	return 0;
}

/* One member (key: val) of callers[i] (path) into cc; -1 with err set. */
static int
caller_member(struct config *c, struct conf_caller *cc, const char *path,
    const char *key, struct json_object *val, int *have_name, int *have_hash,
    char *err, size_t errlen)
{
	char kp[128];

	snprintf(kp, sizeof(kp), "%s.%s", path, key);
	if (strcmp(key, "name") == 0) {
		const char *s;
		if (!json_object_is_type(val, json_type_string))
			return fail(err, errlen, c->path, kp,
			    "must be a string");
		s = json_object_get_string(val);
		if (!conf_caller_name_ok(s))
			return fail(err, errlen, c->path, kp,
			    "must be 1..64 of letters, digits, "
			    "- _ .");
		if ((cc->name = strdup(s)) == NULL)
			return fail(err, errlen, c->path, kp,
			    "out of memory");
		*have_name = 1;
	} else if (strcmp(key, "token_sha256") == 0) {
		if (!json_object_is_type(val, json_type_string)
		    || hex_decode(json_object_get_string(val),
		    cc->token_sha256, CONF_TOKEN_HASH_LEN) == -1)
			return fail(err, errlen, c->path, kp,
			    "must be 64 hex characters "
			    "(sha256 of the token)");
		*have_hash = 1;
	} else if (strcmp(key, "rate_limit_per_sec") == 0) {
		double d;
		if (!json_object_is_type(val, json_type_int) &&
		    !json_object_is_type(val, json_type_double))
			return fail(err, errlen, c->path, kp,
			    "must be a number");
		d = json_object_get_double(val);
		if (!(d >= 0 && d <= 100000))
			return fail(err, errlen, c->path, kp,
			    "must be 0..100000");
		cc->rate_limit_per_sec = d;
	} else if (strcmp(key, "allow") == 0) {
		if (parse_allow(c, cc, val, kp, err,
		    errlen) == -1)
			return -1;
	} else if (strcmp(key, "clients") == 0) {
		const char *s = json_object_is_type(val,
		    json_type_string) ?
		    json_object_get_string(val) : "";
		if (strcmp(s, "own") != 0 &&
		    strcmp(s, "all") != 0)
			return fail(err, errlen, c->path, kp,
			    "must be \"own\" or \"all\"");
		cc->clients_all = strcmp(s, "all") == 0;
	} else
		return fail(err, errlen, c->path, kp,
		    "unknown key");
	return 0;
}

static int
parse_callers(struct config *c, struct json_object *arr, char *err,
    size_t errlen)
{
	size_t i, n;
	char path[64];

	if (!json_object_is_type(arr, json_type_array))
		return fail(err, errlen, c->path, "callers", "must be an array");
	n = json_object_array_length(arr);
	if (n > 10000)
		return fail(err, errlen, c->path, "callers", "too many");
	c->callers = calloc(n ? n : 1, sizeof(*c->callers));
	if (c->callers == NULL)
		return fail(err, errlen, c->path, "callers", "out of memory");
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(arr, i);
		struct conf_caller *cc = &c->callers[i];
		int have_name = 0, have_hash = 0;
		size_t j;

		snprintf(path, sizeof(path), "callers[%zu]", i);
		if (!json_object_is_type(o, json_type_object))
			return fail(err, errlen, c->path, path,
			    "must be an object");
		c->ncallers = i + 1;
		json_object_object_foreach(o, key, val) {
			if (caller_member(c, cc, path, key, val, &have_name,
			    &have_hash, err, errlen) == -1)
				return -1;
		}
		if (!have_name)
			return fail(err, errlen, c->path, path,
			    "name is required");
		if (!have_hash)
			return fail(err, errlen, c->path, path,
			    "token_sha256 is required");
		/* No "allow": what every caller could do before routes
		 * had names, so older configs keep their meaning. */
		if (cc->nallow == 0 && (cc->allow[cc->nallow++] =
		    strdup("individuals.create")) == NULL)
			return fail(err, errlen, c->path, path,
			    "out of memory");
		for (j = 0; j < i; j++) {
			if (strcmp(c->callers[j].name, cc->name) == 0)
				return fail(err, errlen, c->path, path,
				    "duplicate caller name");
			if (memcmp(c->callers[j].token_sha256,
			    cc->token_sha256, CONF_TOKEN_HASH_LEN) == 0)
				return fail(err, errlen, c->path, path,
				    "token shared with callers[%zu]", j);
		}
	}
	return 0;
}

/* Walk one JSON object, checking each member against the table. */
static int
walk(struct config *c, struct json_object *obj, const char *prefix,
    char *err, size_t errlen)
{
	json_object_object_foreach(obj, key, val) {
		char path[256];
		const struct ckey *k;

		if (*prefix)
			snprintf(path, sizeof(path), "%s.%s", prefix, key);
		else
			snprintf(path, sizeof(path), "%s", key);
		if ((k = find_key(path)) == NULL)
			return fail(err, errlen, c->path, path, "unknown key");
		if (k->type == C_SECTION) {
			if (!json_object_is_type(val, json_type_object))
				return fail(err, errlen, c->path, path,
				    "must be an object");
			if (walk(c, val, path, err, errlen) == -1)
				return -1;
		} else if (k->type == C_CALLERS) {
			if (parse_callers(c, val, err, errlen) == -1)
				return -1;
		} else if (set_value(c, k, val, NULL, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/*
 * The host part of base_url, exactly as written, for the loopback rule:
 * the authority after "://" up to the first '/', '?' or '#', without a
 * ":port" (a bracketed IPv6 literal keeps its brackets).  0 when it
 * does not fit in buf (host names are at most 255 characters).
 */
static int
raw_url_host(const char *url, char *buf, size_t buflen)
{
	const char *a = strstr(url, "://"), *e;
	size_t n;

	if (a == NULL)
		return 0;
	a += 3;
	n = strcspn(a, "/?#");
	if (a[0] == '[')
		e = memchr(a, ']', n) ? (const char *)memchr(a, ']', n) + 1 :
		    a + n;
	else
		e = memchr(a, ':', n) ? (const char *)memchr(a, ':', n) :
		    a + n;
	if ((size_t)(e - a) >= buflen)
		return 0;
	memcpy(buf, a, (size_t)(e - a));
	buf[e - a] = '\0';
	return 1;
}

/* "127.d.d.d": four decimal octets, each 0..255 without leading zeros
 * (a leading zero reads as octal to inet_aton), the first 127. */
static int
is_loopback_quad(const char *h)
{
	int part, digits;
	long v;

	if (strncmp(h, "127.", 4) != 0)
		return 0;
	h += 4;
	for (part = 1; part < 4; part++) {
		v = 0;
		for (digits = 0; isdigit((unsigned char)*h); digits++, h++)
			v = v * 10 + (*h - '0');
		if (digits == 0 || digits > 3 || v > 255 ||
		    (digits > 1 && h[-digits] == '0'))
			return 0;
		if (part < 3 && *h++ != '.')
			return 0;
	}
	return *h == '\0';
}

/*
 * Does the path p hold a "." or ".." segment, written plainly or with
 * %2e?  libcurl folds them away, so "https://h/api/../admin" would call
 * a path the operator did not write.
 */
static bool
has_dot_segment(const char *p)
{
	size_t n, i, dots;

	for (; *p != '\0'; p += n) {
		p += strspn(p, "/");
		n = strcspn(p, "/");
		for (i = 0, dots = 0; i < n; dots++)
			if (p[i] == '.')
				i++;
			else if (n - i >= 3 && p[i] == '%' && p[i + 1] == '2' &&
			    (p[i + 2] == 'e' || p[i + 2] == 'E'))
				i += 3;
			else
				break;
		if (n > 0 && i == n && dots <= 2)
			return true;
	}
	return false;
}

/*
 * upstream.base_url, parsed with libcurl's own URL parser (the one the
 * transfers use), so the check and the connection read the same host.
 * Refused: a scheme other than https:// and http://, userinfo
 * ("user@", "user:pass@") whatever the scheme, a query or a fragment
 * (the request path is appended to the URL), and plain http:// unless
 * the host is loopback.  Loopback is only a dotted-quad IPv4 literal in
 * 127.0.0.0/8, "[::1]" and the name "localhost" (any case), as written
 * and as libcurl reads it: "127.0.0.1.example.com", "127.1",
 * "0x7f000001", "0.0.0.0", "localhost.localdomain" and
 * "[::ffff:127.0.0.1]" are not.  A path with "." or ".." segments is
 * refused.  Trailing slashes are dropped.
 */
static int
check_base_url(struct config *c, char *err, size_t errlen)
{
	static const char key[] = "upstream.base_url";
	char *u = c->upstream.base_url, raw[256];
	char *scheme = NULL, *host = NULL, *part = NULL;
	const char *why = NULL;
	CURLU *h;
	int loopback = 0;
	size_t n;

	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
		return fail(err, errlen, c->path, key,
		    "must start with https:// (or http:// for loopback)");
	if ((h = curl_url()) == NULL)
		return fail(err, errlen, c->path, key, "out of memory");
	n = strcspn(u + (u[4] == 's' ? 8 : 7), "/?#");
	if (memchr(u + (u[4] == 's' ? 8 : 7), '@', n) != NULL)
		why = "must not hold a user name or password (user@host)";
	else if (curl_url_set(h, CURLUPART_URL, u, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    !raw_url_host(u, raw, sizeof(raw)))
		why = "is not a valid URL";
	else if (curl_url_get(h, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK ||
	    curl_url_get(h, CURLUPART_OPTIONS, &part, 0) == CURLUE_OK)
		why = "must not hold a user name or password (user@host)";
	else if (curl_url_get(h, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(h, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK)
		why = "must not hold a query or a fragment (?, #)";
	else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		why = "must start with https:// (or http:// for loopback)";
	else if (has_dot_segment(u + (u[4] == 's' ? 8 : 7) + n))
		why = "must not hold . or .. path segments";
	if (why == NULL) {
		/* As written and as curl reads it: curl turns "127.1"
		 * into "127.0.0.1", and that is not a dotted quad. */
		loopback = strcasecmp(raw, host) == 0 &&
		    (is_loopback_quad(raw) || strcmp(raw, "[::1]") == 0 ||
		    strcasecmp(raw, "localhost") == 0);
		if (strcmp(scheme, "http") == 0 && !loopback)
			why = "plain http:// is refused for a non-loopback "
			    "host (the API key would travel in clear text)";
	}
	curl_free(part);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(h);
	if (why != NULL)
		return fail(err, errlen, c->path, key, why);
	n = strlen(u);
	while (n > 0 && u[n - 1] == '/')
		u[--n] = '\0';
	return 0;
}

/* Checks that span keys, once every key is read. */
static int
check_config(struct config *c, char *err, size_t errlen)
{
	size_t n;

	if (check_base_url(c, err, errlen) == -1)
		return -1;
	if (strchr(c->listen, ':') == NULL)
		return fail(err, errlen, c->path, "listen",
		    "must be host:port");
	if (c->ncallers == 0)
		return fail(err, errlen, c->path, "callers",
		    "at least one caller is required");
	/* A body is held twice while it is made ready (raw, normalized). */
	if (c->limits.max_buffered_bytes < 2 * c->limits.max_body_bytes ||
	    c->limits.max_buffered_bytes <
	    2 * c->limits.max_document_body_bytes)
		return fail(err, errlen, c->path, "limits.max_buffered_bytes",
		    "must hold twice the largest body (limits.max_body_bytes "
		    "and limits.max_document_body_bytes)");
	if (c->audit.state_file == NULL) {
		n = strlen(c->audit.path) + sizeof(".state");
		if ((c->audit.state_file = malloc(n)) == NULL)
			return fail(err, errlen, c->path, "audit.state_file",
			    "out of memory");
		snprintf(c->audit.state_file, n, "%s.state", c->audit.path);
	}
	return 0;
}

/*
 * The key from CRYPTOMATE_API_KEY, taken out of the environment the
 * first time it is read: the variable is unset and its bytes (in the
 * initial environment, what /proc/PID/environ shows) wiped, so no
 * child (the seal command) and no reader of environ finds it.  Reloads
 * reuse this copy; it lives as long as the process.
 */
static char	*env_api_key;

static const char *
take_env_api_key(void)
{
	char *env;

	if (env_api_key != NULL)
		return env_api_key;
	if ((env = getenv("CRYPTOMATE_API_KEY")) == NULL)
		return NULL;
	if ((env_api_key = strdup(env)) == NULL)
		return NULL;
	/* getenv points past "NAME=" in the entry: wipe the entry whole
	 * once it is out of environ. */
	env -= sizeof("CRYPTOMATE_API_KEY=") - 1;
	(void)unsetenv("CRYPTOMATE_API_KEY");
	explicit_bzero(env, strlen(env));
	return env_api_key;
}

/* The API key: the file when configured, else the environment. */
static int
load_api_key(struct config *c, char *err, size_t errlen)
{
	char kerr[512];
	const char *env;

	if (c->upstream.api_key_file != NULL) {
		if (read_secret_file(c->upstream.api_key_file, API_KEY_MAX,
		    &c->api_key, &c->api_key_len, kerr, sizeof(kerr)) == -1)
			return fail(err, errlen, c->path,
			    "upstream.api_key_file", "%s", kerr);
	} else if ((env = take_env_api_key()) != NULL) {
		if ((c->api_key = strdup(env)) == NULL)
			return fail(err, errlen, c->path, NULL, "out of memory");
		c->api_key_len = strlen(c->api_key);
	} else
		return fail(err, errlen, c->path, "upstream.api_key_file",
		    "no API key: set upstream.api_key_file or the "
		    "environment variable CRYPTOMATE_API_KEY");
	if (c->api_key_len == 0)
		return fail(err, errlen, c->path, "upstream.api_key_file",
		    "the API key is empty");
	for (size_t i = 0; i < c->api_key_len; i++)
		if ((unsigned char)c->api_key[i] <= 0x20 ||
		    (unsigned char)c->api_key[i] >= 0x7f)
			return fail(err, errlen, c->path,
			    "upstream.api_key_file", "the API key holds "
			    "characters not allowed in a header");
	return 0;
}

struct config *
conf_load(const char *file, char *err, size_t errlen)
{
	struct config *c;
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	char *text = NULL, *slash;
	size_t len, i;
	char rerr[512];

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", file);
		return NULL;
	}
	if ((c->path = strdup(file)) == NULL || (c->dir = strdup(file)) ==
	    NULL) {
		snprintf(err, errlen, "%s: out of memory", file);
		goto fail;
	}
	if ((slash = strrchr(c->dir, '/')) != NULL)
		*slash = '\0';
	else
		strcpy(c->dir, ".");

	for (i = 0; i < NKEYS; i++)
		if (conf_keys[i].def != NULL &&
		    set_value(c, &conf_keys[i], NULL, conf_keys[i].def, err,
		    errlen) == -1)
			goto fail;

	if (read_file_ex(file, CONF_MAX_FILE, RF_CONFIG, &text, &len, rerr,
	    sizeof(rerr)) == -1) {
		snprintf(err, errlen, "%s", rerr);
		goto fail;
	}
	/* json-c's default (non-strict) mode accepts comments, which is
	 * what a hand-edited config wants. */
	if ((tok = json_tokener_new_ex(32)) == NULL)
		goto fail;
	root = json_tokener_parse_ex(tok, text, (int)len + 1);
	if (root == NULL) {
		snprintf(err, errlen, "%s: invalid JSON near byte %zu: %s",
		    file, json_tokener_get_parse_end(tok),
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		goto fail;
	}
	if (!json_object_is_type(root, json_type_object)) {
		fail(err, errlen, file, NULL, "must hold a JSON object");
		goto fail;
	}
	if (walk(c, root, "", err, errlen) == -1 ||
	    check_config(c, err, errlen) == -1 ||
	    load_api_key(c, err, errlen) == -1)
		goto fail;

	json_object_put(root);
	json_tokener_free(tok);
	free(text);
	c->refs = 1;
	return c;
fail:
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	free(text);
	conf_free(c);
	return NULL;
}

void
conf_free(struct config *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		switch (conf_keys[i].type) {
		case C_STR:
		case C_PATH:
		case C_ENUM:
			free(*(char **)((char *)c + conf_keys[i].off));
			break;
		case C_STRLIST: {
			struct conf_strlist *l = (struct conf_strlist *)(void *)
			    ((char *)c + conf_keys[i].off);
			for (j = 0; j < l->n; j++)
				free(l->v[j]);
			break;
		}
		default:
			break;
		}
	}
	for (i = 0; i < c->ncallers; i++) {
		free(c->callers[i].name);
		for (j = 0; j < c->callers[i].nallow; j++)
			free(c->callers[i].allow[j]);
	}
	free(c->callers);
	if (c->api_key)
		secret_free(c->api_key, c->api_key_len + 1);
	free(c->path);
	free(c->dir);
	free(c);
}

struct config *
conf_ref(struct config *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
conf_unref(struct config *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		conf_free(c);
}

static const char *
short_type_name(enum ctype t)
{
	switch (t) {
	case C_STR: return "string";
	case C_PATH: return "path";
	case C_ENUM: return "enum";
	case C_INT: case C_LONG: return "integer";
	case C_DBL: return "number";
	case C_BOOL: return "boolean";
	case C_CALLERS: return "array";
	case C_STRLIST: return "strings";
	case C_SECTION: return "object";
	}
	return "?";
}

bool
conf_caller_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > CONF_CALLER_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
			return false;
	return true;
}

void
conf_print_keys(void)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct ckey *k = &conf_keys[i];
		if (k->type == C_SECTION)
			continue;
		printf("  %-30s %-8s %-18s %s\n", k->path,
		    short_type_name(k->type),
		    k->def ? k->def : (k->nullable ? "null" : "-"), k->help);
	}
}
