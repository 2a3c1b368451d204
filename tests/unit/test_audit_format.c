/*
 * test_audit_format.c: the record format and key schedule against
 * their specification in docs/audit.md, computed independently with
 * OpenSSL's HMAC(); the strict parser; members of the fields; the set
 * of open requests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit_format.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char logid[] = "00112233445566778899aabbccddeeff";

static void
ref_hmac(const unsigned char *k, size_t kl, const void *m, size_t ml,
    unsigned char out[32])
{
	unsigned int n = 0;

	assert_non_null(HMAC(EVP_sha256(), k, (int)kl, m, ml, out, &n));
	assert_int_equal(n, 32);
}

/* RFC 4231 test case 2 through the fetched EVP_MAC. */
static void
test_hmac_rfc4231(void **state)
{
	unsigned char out[32];
	char hex[65];

	assert_int_equal(afmt_hmac((const unsigned char *)"Jefe", 4,
	    "what do ya want ", 16, "for nothing?", 12, out), 0);
	hex_encode(out, 32, hex);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2"
	    "739839dec58b964ec3843");
}

/* K_(e+1) = HMAC(K_e, "evolve" || log_id || be64(e+1)). */
static void
test_key_schedule(void **state)
{
	unsigned char k0[32], k[32], msg[6 + 32 + 8];
	struct afmt_key key;
	uint64_t e;
	int i;

	for (i = 0; i < 32; i++)
		k0[i] = (unsigned char)i;
	memset(&key, 0, sizeof(key));
	assert_int_equal(afmt_key_set(&key, k0, 0), 0);
	memcpy(k, k0, 32);
	for (e = 0; e < 5; e++) {
		memcpy(msg, "evolve", 6);
		memcpy(msg + 6, logid, 32);
		for (i = 0; i < 8; i++)
			msg[38 + i] = (unsigned char)((e + 1) >> (56 - 8 * i));
		ref_hmac(k, 32, msg, sizeof(msg), k);
		assert_int_equal(afmt_key_evolve(&key, logid), 0);
		assert_int_equal(key.epoch, e + 1);
		assert_memory_equal(key.k, k, 32);
	}
	/* seeking is the same walk; never backwards */
	{
		struct afmt_key s;
		memset(&s, 0, sizeof(s));
		afmt_key_set(&s, k0, 0);
		assert_int_equal(afmt_key_seek(&s, logid, 5, 5), 0);
		assert_memory_equal(s.k, key.k, 32);
		assert_int_equal(afmt_key_seek(&s, logid, 4, 5), -1);
		assert_int_equal(afmt_key_seek(&s, logid, 100, 10), -1);
		afmt_key_wipe(&s);
	}
	/* body key = HMAC(K0, "body-digest" || log_id) */
	{
		unsigned char bk[32], ref[32], m[11 + 32];
		memcpy(m, "body-digest", 11);
		memcpy(m + 11, logid, 32);
		ref_hmac(k0, 32, m, sizeof(m), ref);
		assert_int_equal(afmt_body_key(k0, logid, bk), 0);
		assert_memory_equal(bk, ref, 32);
	}
	afmt_key_wipe(&key);
	assert_false(key.set);
}

/* The line, its MAC (M_e = HMAC(K_e,"mac"); mac = HMAC(M_e, "CMAUDIT1"
 * || line up to the mac member)) and its head (SHA-256 of the line). */
static void
test_build_matches_spec(void **state)
{
	unsigned char k[32] = { 7 }, m[32], mac[32], ref[32], head[32];
	unsigned char prev[32] = { 1, 2, 3 };
	struct afmt_key key;
	struct afmt_head h = { logid, 42, 3, "2026-11-26T19:09:26.123Z",
	    "request" };
	const char *f = "\"request_id\":\"abc\",\"caller\":\"onboarding\"";
	char buf[1024], prevhex[65], machex[65], expect[1024], *in;
	size_t n;

	memset(&key, 0, sizeof(key));
	afmt_key_set(&key, k, 3);
	n = afmt_build(buf, sizeof(buf), &h, f, strlen(f), prev, &key, head,
	    mac);
	assert_true(n > 0);
	hex_encode(prev, 32, prevhex);
	snprintf(expect, sizeof(expect), "{\"v\":1,\"log\":\"%s\",\"seq\":42,"
	    "\"epoch\":3,\"ts\":\"2026-11-26T19:09:26.123Z\",\"type\":"
	    "\"request\",%s,\"prev\":\"%s\"", logid, f, prevhex);
	assert_int_equal(n, strlen(expect) + AFMT_SUFFIX_LEN);
	assert_memory_equal(buf, expect, strlen(expect));

	ref_hmac(k, 32, "mac", 3, m);
	in = malloc(8 + strlen(expect));
	memcpy(in, "CMAUDIT1", 8);
	memcpy(in + 8, expect, strlen(expect));
	ref_hmac(m, 32, in, 8 + strlen(expect), ref);
	free(in);
	assert_memory_equal(mac, ref, 32);
	hex_encode(ref, 32, machex);
	snprintf(expect + strlen(expect), sizeof(expect) - strlen(expect),
	    ",\"mac\":\"%s\"}\n", machex);
	assert_int_equal(n, strlen(expect));
	assert_memory_equal(buf, expect, n);
	sha256(buf, n, ref);
	assert_memory_equal(head, ref, 32);

	/* no fields at all */
	h.type = "seal";
	n = afmt_build(buf, sizeof(buf), &h, "", 0, prev, &key, NULL, NULL);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "\"type\":\"seal\",\"prev\":"));
	/* the key must be at the record's epoch; the buffer must fit */
	h.epoch = 4;
	assert_int_equal(afmt_build(buf, sizeof(buf), &h, "", 0, prev, &key,
	    NULL, NULL), 0);
	h.epoch = 3;
	assert_int_equal(afmt_build(buf, 100, &h, "", 0, prev, &key, NULL,
	    NULL), 0);
	afmt_key_wipe(&key);
}

static void
test_parse(void **state)
{
	unsigned char k[32] = { 7 }, prev[32] = { 0 };
	struct afmt_key key;
	struct afmt_head h = { logid, 1234567, 0, "2026-11-26T19:09:26.123Z",
	    "outcome" };
	const char *f = "\"request_id\":\"abc\",\"caller\":\"on\\\"b\","
	    "\"client_status\":201,\"nested\":{\"a\":[1,{\"b\":\"}\"}]}";
	struct afmt_rec r;
	char buf[1024], v[200], bad[1100];
	uint64_t u;
	size_t n, i;

	memset(&key, 0, sizeof(key));
	afmt_key_set(&key, k, 0);
	n = afmt_build(buf, sizeof(buf) - 1, &h, f, strlen(f), prev, &key,
	    NULL, NULL);
	buf[n] = '\0';
	assert_int_equal(afmt_parse(buf, n, &r), 0);
	assert_int_equal(r.seq, 1234567);
	assert_int_equal(r.epoch, 0);
	assert_string_equal(r.type, "outcome");
	assert_string_equal(r.log_id, logid);
	assert_string_equal(r.ts, "2026-11-26T19:09:26.123Z");
	assert_int_equal(r.flen, strlen(f));
	assert_memory_equal(r.fields, f, r.flen);
	assert_int_equal(afmt_check_mac(&key, &r), 0);

	assert_int_equal(afmt_field_str(r.fields, r.flen, "request_id", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "abc");
	/* escaped: raw only */
	assert_int_equal(afmt_field_str(r.fields, r.flen, "caller", v,
	    sizeof(v)), -1);
	assert_int_equal(afmt_field_raw(r.fields, r.flen, "caller", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "\"on\\\"b\"");
	assert_int_equal(afmt_field_u64(r.fields, r.flen, "client_status", &u),
	    0);
	assert_int_equal(u, 201);
	assert_int_equal(afmt_field_raw(r.fields, r.flen, "nested", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "{\"a\":[1,{\"b\":\"}\"}]}");
	assert_int_equal(afmt_field_raw(r.fields, r.flen, "b", v, sizeof(v)),
	    -1);
	assert_int_equal(afmt_field_raw(r.fields, r.flen, "absent", v,
	    sizeof(v)), -1);

	/* strictness: no newline, upper-case hex, leading zero, spaces */
	assert_int_equal(afmt_parse(buf, n - 1, &r), -1);
	memcpy(bad, buf, n);
	for (i = n - 10; i > n - 70; i--)
		if (bad[i] >= 'a' && bad[i] <= 'f')
			break;
	bad[i] = (char)(bad[i] - 32);
	assert_int_equal(afmt_parse(bad, n, &r), -1);
	snprintf(bad, sizeof(bad), "%.*s0%s", 33 + 14 + 8 - 1, buf,
	    buf + 33 + 14 + 8 - 1);
	assert_int_equal(afmt_parse(bad, n + 1, &r), -1);
	snprintf(bad, sizeof(bad), "{ %s", buf + 1);
	assert_int_equal(afmt_parse(bad, n + 1, &r), -1);
	/* a flipped MAC digit parses but does not verify */
	memcpy(bad, buf, n);
	bad[n - 10] = bad[n - 10] == '0' ? '1' : '0';
	assert_int_equal(afmt_parse(bad, n, &r), 0);
	assert_int_equal(afmt_check_mac(&key, &r), -1);
	/* the wrong epoch's key does not verify */
	afmt_parse(buf, n, &r);
	afmt_key_evolve(&key, logid);
	assert_int_equal(afmt_check_mac(&key, &r), -1);
	/* garbage of every length never crashes */
	for (i = 0; i < n; i++)
		(void)afmt_parse(buf + i, n - i, &r);
	afmt_key_wipe(&key);
}

static void
test_idset(void **state)
{
	struct afmt_idset s;
	const struct afmt_open *o;
	char id[65];
	size_t idx = 0, seen = 0;
	int i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		assert_int_equal(afmt_idset_add(&s, id, "\"c\"", (uint64_t)i),
		    0);
	}
	assert_int_equal(s.n, 5000);
	for (i = 0; i < 5000; i += 2) {
		snprintf(id, sizeof(id), "id%d", i);
		assert_int_equal(afmt_idset_del(&s, id), 0);
	}
	assert_int_equal(afmt_idset_del(&s, "id0"), -1);
	assert_int_equal(s.n, 2500);
	/* tombstones are reused without growing forever */
	for (i = 0; i < 20000; i++) {
		snprintf(id, sizeof(id), "x%d", i);
		afmt_idset_add(&s, id, NULL, 0);
		afmt_idset_del(&s, id);
	}
	while ((o = afmt_idset_next(&s, &idx)) != NULL) {
		assert_int_equal(o->seq % 2, 1);
		assert_string_equal(o->caller, "\"c\"");
		seen++;
	}
	assert_int_equal(seen, 2500);
	assert_true(s.cap <= 8192);
	assert_int_equal(afmt_idset_add(&s, "", NULL, 0), -1);
	afmt_idset_free(&s);
}

/* The gateway's pattern: each request adds its id, and its outcome
 * deletes it a few requests later.  The table must stay sized for the
 * ids open at once, not grow with every id it has ever seen. */
static void
test_idset_churn_stays_small(void **state)
{
	struct afmt_idset s;
	char id[65];
	int i;

	(void)state;
	memset(&s, 0, sizeof(s));
	for (i = 0; i < 300000; i++) {
		snprintf(id, sizeof(id), "%032x", (unsigned)i * 2654435761u);
		assert_int_equal(afmt_idset_add(&s, id, "\"c\"", (uint64_t)i),
		    0);
		if (i >= 32) {
			snprintf(id, sizeof(id), "%032x",
			    (unsigned)(i - 32) * 2654435761u);
			assert_int_equal(afmt_idset_del(&s, id), 0);
		}
	}
	assert_int_equal(s.n, 32);
	assert_true(s.cap <= 256);
	afmt_idset_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_key_schedule),
		cmocka_unit_test(test_build_matches_spec),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_idset),
		cmocka_unit_test(test_idset_churn_stays_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
