/*
 * audit_body.c: what a request record says of the body.
 *
 * audit.body chooses it: a digest (HMAC under the log's body key, so
 * an auditor holding K0 can check a body shown to them, and nobody
 * else can test guesses), the body with every value masked but the
 * country (redacted), or the body with only secret-looking members
 * masked (full).  It runs on the loop and offload threads, not the
 * writer: it reads only what is fixed for the log's life.
 */
#include "audit_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

static bool
audit_secret_key(const char *k)
{
	static const char *const words[] = { "token", "secret", "password",
	    "api_key", "apikey", "authorization", NULL };
	size_t i;

	for (i = 0; words[i]; i++)
		if (strcasestr(k, words[i]) != NULL)
			return true;
	return false;
}

/* A copy with every value masked but the country, or (full) with only
 * secret-looking members masked. */
static struct json_object *
audit_mask(struct json_object *o, bool full, int depth)
{
	struct json_object *n;
	size_t i, len;

	if (depth > 64)
		return json_object_new_string("***");
	switch (json_object_get_type(o)) {
	case json_type_null:
		return NULL;
	case json_type_object:
		if ((n = json_object_new_object()) == NULL)
			return NULL;
		json_object_object_foreach(o, k, v) {
			struct json_object *c;
			if (audit_secret_key(k))
				c = json_object_new_string("***");
			else if (strcasecmp(k, "country") == 0 &&
			    json_object_is_type(v, json_type_string))
				c = json_object_get(v);
			else
				c = audit_mask(v, full, depth + 1);
			json_object_object_add(n, k, c);
		}
		return n;
	case json_type_array:
		if ((n = json_object_new_array()) == NULL)
			return NULL;
		len = json_object_array_length(o);
		for (i = 0; i < len; i++)
			json_object_array_add(n, audit_mask(
			    json_object_array_get_idx(o, i), full, depth + 1));
		return n;
	default:
		return full ? json_object_get(o) : json_object_new_string("***");
	}
}

char *
audit_body_member(const struct audit *a, struct json_object *normalized)
{
	return audit_body_member_str(a, normalized, NULL, 0);
}

char *
audit_body_member_str(const struct audit *a, struct json_object *normalized,
    const char *s, size_t len)
{
	const int flags = JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE;
	unsigned char mac[AFMT_HASH_LEN];
	char hex[2 * AFMT_HASH_LEN + 1], *out = NULL;
	struct json_object *m;

	if (a == NULL)
		return NULL;
	if (a->body == BODY_DIGEST) {
		if (normalized == NULL)
			return strdup("\"body_digest\":null");
		if (s == NULL)
			s = json_object_to_json_string_length(normalized,
			    flags, &len);
		if (s == NULL || afmt_hmac(a->body_key, AFMT_KEY_LEN, s, len,
		    NULL, 0, mac) == -1)
			return NULL;
		hex_encode(mac, sizeof(mac), hex);
		if ((out = malloc(16 + sizeof(hex))) != NULL)
			snprintf(out, 16 + sizeof(hex), "\"body_digest\":\"%s\"",
			    hex);
		return out;
	}
	m = audit_mask(normalized, a->body == BODY_FULL, 0);
	s = m ? json_object_to_json_string_length(m, flags, &len) : "null";
	if (s != NULL && (out = malloc(len + 16)) != NULL)
		snprintf(out, len + 16, "\"body\":%s", m ? s : "null");
	json_object_put(m);
	return out;
}
