/*
 * test_audit_verify.c: the verifier against every kind of damage, on a
 * log of a few hundred records made by the gateway's own writer.
 *
 * Each case mutates a copy of the log in memory (flip, delete,
 * duplicate, swap, insert, truncate, re-MAC) and checks that the
 * verifier finds it, and names the right record with one finding.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit_testlib.h"

#define MAXL 2048

static struct ta_env env;
static char *logbuf;
static size_t loglen;
static size_t off[MAXL + 1];
static size_t nlines;
static struct afmt_rec recs[MAXL];
static char *work;

static int
gen_setup(void **state)
{
	struct audit *a;
	struct audit_port *p;
	char err[512];
	size_t i;

	ta_env_init(&env);
	if ((a = audit_open(&env.cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "audit_open: %s\n", err);
		return -1;
	}
	if ((p = audit_port_new(a, env.base)) == NULL ||
	    ta_traffic(&env, a, p, 150, 10) == -1)
		return -1;
	audit_port_free(p);
	audit_close(a);
	if ((logbuf = ta_slurp(env.path, &loglen)) == NULL)
		return -1;
	nlines = ta_lines(logbuf, loglen, off, MAXL);
	for (i = 0; i < nlines; i++)
		if (afmt_parse(logbuf + off[i], off[i + 1] - off[i],
		    &recs[i]) == -1)
			return -1;
	work = malloc(loglen * 2 + 4096);
	return work ? 0 : -1;
}

static int
gen_teardown(void **state)
{
	free(logbuf);
	free(work);
	ta_env_free(&env);
	return 0;
}

static size_t
line_len(size_t i)
{
	return off[i + 1] - off[i];
}

/* Concatenate line ranges into work. */
static size_t
put(size_t at, const char *src, size_t n)
{
	memcpy(work + at, src, n);
	return at + n;
}

static void
head_of(size_t i, unsigned char h[AFMT_HASH_LEN])
{
	assert_int_equal(afmt_sha256(logbuf + off[i], line_len(i), h), 0);
}

/* A new line like line i, with other fields/epoch, MAC'd with key. */
static size_t
rebuild(char *out, size_t cap, size_t i, const char *fields, uint64_t seq,
    const unsigned char prev[AFMT_HASH_LEN], struct afmt_key *key)
{
	struct afmt_head h;
	char type[AFMT_MAX_TYPE + 1];

	memcpy(type, recs[i].type, sizeof(type));
	h.log_id = recs[i].log_id;
	h.seq = seq;
	h.epoch = key->epoch;
	h.ts = recs[i].ts;
	h.type = type;
	if (fields == NULL)
		return afmt_build(out, cap, &h, recs[i].fields, recs[i].flen,
		    prev, key, NULL, NULL);
	return afmt_build(out, cap, &h, fields, strlen(fields), prev, key,
	    NULL, NULL);
}

static void
key_at(struct afmt_key *k, uint64_t epoch)
{
	memset(k, 0, sizeof(*k));
	assert_int_equal(afmt_key_set(k, env.k0, 0), 0);
	assert_int_equal(afmt_key_seek(k, recs[0].log_id, epoch, epoch), 0);
}

/* ------------------------------------------------------------------ */

static void
test_clean_log_verifies(void **state)
{
	struct ta_result r;

	assert_true(nlines > 300);
	ta_verify1(env.k0, logbuf, loglen, NULL, &r);
	assert_int_equal(r.failures, 0);
	assert_int_equal(r.sum.records, nlines);
	assert_int_equal(r.sum.unsealed, 0);
	assert_true(r.sum.chain_from_start);
	assert_true(r.sum.seals >= 15);
	/* every request has its outcome */
	assert_int_equal(r.count[AFMT_OPEN], 0);
	assert_string_equal(recs[0].type, "start");
	assert_string_equal(recs[nlines - 1].type, "seal");
	assert_string_equal(recs[nlines - 2].type, "stop");
}

/*
 * Every byte of every line, three ways (bit 0, the ASCII case bit, the
 * top bit).  The window is the line and the two after it, verified
 * as the continuation of the chain before it: the same code as a whole
 * file, in a fraction of the time.
 */
static void
test_flip_every_byte(void **state)
{
	static const unsigned char masks[] = { 0x01, 0x20, 0x80 };
	unsigned long total = 0, single = 0;
	unsigned char (*keys)[AFMT_KEY_LEN];
	uint64_t e, maxe = recs[nlines - 1].epoch;
	struct afmt_key k;
	size_t i, b, m;

	/* K_e of every epoch, so each window starts keyed. */
	keys = calloc(maxe + 1, sizeof(*keys));
	assert_non_null(keys);
	memset(&k, 0, sizeof(k));
	assert_int_equal(afmt_key_set(&k, env.k0, 0), 0);
	for (e = 0; e <= maxe; e++) {
		memcpy(keys[e], k.k, AFMT_KEY_LEN);
		afmt_key_evolve(&k, recs[0].log_id);
	}
	afmt_key_wipe(&k);

	for (i = 0; i < nlines; i++) {
		/* a flipped newline merges line i with i+1: two more */
		size_t end = i + 3 < nlines ? i + 3 : nlines;
		size_t wlen = off[end] - off[i];
		unsigned char prev[AFMT_HASH_LEN];

		if (i == 0)
			memset(prev, 0, sizeof(prev));
		else
			head_of(i - 1, prev);
		for (b = 0; b < line_len(i); b++) {
			for (m = 0; m < sizeof(masks); m++) {
				struct ta_result r;
				struct afmt_vfy *v;

				memcpy(work, logbuf + off[i], wlen);
				work[b] ^= (char)masks[m];
				memset(&r, 0, sizeof(r));
				v = afmt_vfy_new(keys[recs[i].epoch],
				    recs[i].epoch, ta_collect, &r);
				afmt_vfy_expect(v, recs[i].seq, prev,
				    recs[i].epoch, recs[i].log_id);
				afmt_vfy_buffer(v, work, wlen);
				afmt_vfy_finish(v);
				afmt_vfy_free(v);
				total++;
				if (r.failures == 0 ||
				    !ta_names(&r, recs[i].seq))
					fail_msg("flip 0x%02x of byte %zu of "
					    "seq %llu: %d failure(s), first "
					    "%s seq=%llu", masks[m], b,
					    (unsigned long long)recs[i].seq,
					    r.failures,
					    r.failures ? afmt_kind_name(
					    r.first.kind) : "-",
					    (unsigned long long)r.first.seq);
				if (r.failures == 1)
					single++;
			}
		}
	}
	free(keys);
	print_message("flips: %lu, all detected and named; %lu with exactly "
	    "one finding\n", total, single);
	assert_int_equal(single, total);
}

/* The same on whole files, for the first two lines, a seal and the
 * last line. */
static void
test_flip_whole_file(void **state)
{
	size_t pick[6], np = 0, k, b, i;

	pick[np++] = 0;
	pick[np++] = 1;
	for (i = 10; i < nlines; i++)
		if (strcmp(recs[i].type, "seal") == 0) {
			pick[np++] = i;
			break;
		}
	pick[np++] = nlines - 1;
	for (k = 0; k < np; k++) {
		i = pick[k];
		for (b = 0; b < line_len(i); b++) {
			struct ta_result r;
			memcpy(work, logbuf, loglen);
			work[off[i] + b] ^= 0x01;
			ta_verify1(env.k0, work, loglen, NULL, &r);
			if (r.failures != 1 || !ta_names(&r, recs[i].seq))
				fail_msg("byte %zu of seq %llu: %d failures, "
				    "first %s seq=%llu", b,
				    (unsigned long long)recs[i].seq,
				    r.failures, afmt_kind_name(r.first.kind),
				    (unsigned long long)r.first.seq);
		}
	}
}

static void
test_delete_each_line(void **state)
{
	size_t i;

	for (i = 0; i < nlines; i++) {
		struct ta_result r;
		size_t n = put(0, logbuf, off[i]);
		n = put(n, logbuf + off[i + 1], loglen - off[i + 1]);
		ta_verify1(env.k0, work, n, NULL, &r);
		if (i == nlines - 1) {
			/* A shorter chain still verifies: only an anchor
			 * tells (below). */
			struct ta_anchor an;
			assert_int_equal(r.failures, 0);
			an.seq = recs[i].seq;
			head_of(i, an.head);
			ta_verify1(env.k0, work, n, &an, &r);
			assert_int_equal(r.failures, 1);
			assert_int_equal(r.count[AFMT_TRUNCATED], 1);
			continue;
		}
		if (r.failures != 1 || r.count[AFMT_MISSING] != 1 ||
		    r.seq[AFMT_MISSING] != recs[i].seq)
			fail_msg("delete seq %llu: %d failures, first %s "
			    "seq=%llu", (unsigned long long)recs[i].seq,
			    r.failures, afmt_kind_name(r.first.kind),
			    (unsigned long long)r.first.seq);
	}
}

static void
test_duplicate_each_line(void **state)
{
	size_t i;

	for (i = 0; i < nlines; i++) {
		struct ta_result r;
		size_t n = put(0, logbuf, off[i + 1]);
		n = put(n, logbuf + off[i], line_len(i));
		n = put(n, logbuf + off[i + 1], loglen - off[i + 1]);
		ta_verify1(env.k0, work, n, NULL, &r);
		if (r.failures != 1 || r.count[AFMT_DUPLICATE] != 1 ||
		    r.seq[AFMT_DUPLICATE] != recs[i].seq)
			fail_msg("duplicate seq %llu: %d failures, first %s "
			    "seq=%llu", (unsigned long long)recs[i].seq,
			    r.failures, afmt_kind_name(r.first.kind),
			    (unsigned long long)r.first.seq);
	}
	/* A copy far from its place is a duplicate as well. */
	{
		struct ta_result r;
		size_t n = put(0, logbuf, loglen);
		n = put(n, logbuf + off[5], line_len(5));
		ta_verify1(env.k0, work, n, NULL, &r);
		assert_int_equal(r.failures, 1);
		assert_int_equal(r.count[AFMT_DUPLICATE], 1);
		assert_int_equal(r.seq[AFMT_DUPLICATE], recs[5].seq);
	}
}

static void
test_swap_each_pair(void **state)
{
	size_t i;

	for (i = 0; i + 1 < nlines; i++) {
		struct ta_result r;
		size_t n = put(0, logbuf, off[i]);
		n = put(n, logbuf + off[i + 1], line_len(i + 1));
		n = put(n, logbuf + off[i], line_len(i));
		n = put(n, logbuf + off[i + 2], loglen - off[i + 2]);
		ta_verify1(env.k0, work, n, NULL, &r);
		if (r.failures != 1 || r.count[AFMT_REORDERED] != 1 ||
		    r.seq[AFMT_REORDERED] != recs[i].seq)
			fail_msg("swap seq %llu/%llu: %d failures, first %s "
			    "seq=%llu", (unsigned long long)recs[i].seq,
			    (unsigned long long)recs[i + 1].seq, r.failures,
			    afmt_kind_name(r.first.kind),
			    (unsigned long long)r.first.seq);
	}
}

/* Forged lines: a random MAC, another K0, another log id. */
static void
test_insert_forged_line(void **state)
{
	static const unsigned char other_k0[AFMT_KEY_LEN] = { 9, 9, 9 };
	size_t i, kind;
	char line[4096];

	for (i = 0; i < nlines; i++) {
		for (kind = 0; kind < 3; kind++) {
			struct ta_result r;
			struct afmt_key k;
			unsigned char prev[AFMT_HASH_LEN];
			size_t ll, n;

			head_of(i, prev);
			memset(&k, 0, sizeof(k));
			if (kind == 0) {
				/* line i+1 (or i) with a random MAC */
				size_t src = i + 1 < nlines ? i + 1 : i;
				char rnd[33];
				ll = line_len(src);
				memcpy(line, logbuf + off[src], ll);
				random_id(rnd);
				memcpy(line + ll - 67, rnd, 32);
			} else {
				afmt_key_set(&k, kind == 1 ? other_k0 : env.k0,
				    0);
				afmt_key_seek(&k, recs[0].log_id,
				    recs[i].epoch, recs[i].epoch);
				ll = rebuild(line, sizeof(line), i,
				    "\"request_id\":\"forged\",\"caller\":"
				    "\"mallory\"", recs[i].seq + 1, prev, &k);
				if (kind == 2)	/* another log's id */
					memcpy(line + 14, "ffff", 4);
				afmt_key_wipe(&k);
			}
			assert_true(ll > 0);
			n = put(0, logbuf, off[i + 1]);
			n = put(n, line, ll);
			n = put(n, logbuf + off[i + 1], loglen - off[i + 1]);
			ta_verify1(env.k0, work, n, NULL, &r);
			if (i + 1 == nlines) {
				/* at the end: a bad last line */
				assert_true(r.failures >= 1);
				continue;
			}
			if (r.failures != 1 || r.count[AFMT_FORGED] != 1)
				fail_msg("forged (%zu) after seq %llu: %d "
				    "failures, first %s seq=%llu", kind,
				    (unsigned long long)recs[i].seq,
				    r.failures, afmt_kind_name(r.first.kind),
				    (unsigned long long)r.first.seq);
		}
	}
}

/* Verify the lines from `from` on, cut at absolute offset o, as the
 * continuation of the chain before them. */
static void
verify_from(size_t from, size_t o, const struct ta_anchor *an,
    struct ta_result *r)
{
	unsigned char prev[AFMT_HASH_LEN];
	struct afmt_vfy *v;

	head_of(from - 1, prev);
	memset(r, 0, sizeof(*r));
	v = afmt_vfy_new(env.k0, 0, ta_collect, r);
	afmt_vfy_expect(v, recs[from].seq, prev, recs[from].epoch,
	    recs[from].log_id);
	if (an)
		afmt_vfy_anchor(v, an->seq, an->head);
	afmt_vfy_buffer(v, logbuf + off[from], o - off[from]);
	afmt_vfy_finish(v);
	afmt_vfy_summary(v, &r->sum);
	afmt_vfy_free(v);
}

/*
 * Truncate at every offset of the last records: mid-line is TORN_TAIL,
 * a clean cut is an unsealed tail (not a failure) unless an anchored
 * head lies past it (TRUNCATED).  Every offset is checked on the tail
 * (continuing the verified chain), the line boundaries and some cuts
 * inside lines on the whole file as well.
 */
static void
test_truncate_every_offset(void **state)
{
	struct ta_anchor an;
	size_t o, k = nlines - 6, from = nlines - 20;

	an.seq = recs[nlines - 1].seq;
	head_of(nlines - 1, an.head);
	for (o = off[k]; o <= loglen; o++) {
		struct ta_result r, ra;
		size_t line = k;
		bool boundary = false, whole;

		while (line < nlines && off[line + 1] <= o)
			line++;
		boundary = o == off[line] || o == loglen;
		whole = boundary || o % 37 == 0;
		if (whole) {
			ta_verify1(env.k0, logbuf, o, NULL, &r);
			ta_verify1(env.k0, logbuf, o, &an, &ra);
		} else {
			verify_from(from, o, NULL, &r);
			verify_from(from, o, &an, &ra);
		}
		if (o == loglen) {
			assert_int_equal(r.failures, 0);
			assert_int_equal(ra.failures, 0);
			assert_int_equal(r.sum.unsealed, 0);
			continue;
		}
		if (boundary) {
			assert_int_equal(r.failures, 0);
			/* the cut removed the final seal */
			assert_true(r.sum.unsealed > 0 ||
			    strcmp(recs[line - 1].type, "seal") == 0);
			assert_int_equal(ra.failures, 1);
			assert_int_equal(ra.count[AFMT_TRUNCATED], 1);
		} else {
			if (r.failures != 1 || r.count[AFMT_TORN_TAIL] != 1 ||
			    r.seq[AFMT_TORN_TAIL] != recs[line].seq)
				fail_msg("cut at %zu (seq %llu): %d failures, "
				    "first %s seq=%llu", o,
				    (unsigned long long)recs[line].seq,
				    r.failures, afmt_kind_name(r.first.kind),
				    (unsigned long long)r.first.seq);
			assert_int_equal(ra.count[AFMT_TORN_TAIL], 1);
			assert_int_equal(ra.count[AFMT_TRUNCATED], 1);
		}
	}
}

/*
 * A thief of the live key K_c: re-MACs an older record (keeping or
 * changing its epoch), or truncates and carries on.  All detected.
 */
static void
test_remac_with_live_key(void **state)
{
	struct afmt_key live;
	struct ta_result r;
	unsigned char prev[AFMT_HASH_LEN];
	uint64_t c = recs[nlines - 1].epoch + 1;
	char line[4096];
	size_t i, j, n, ll;

	key_at(&live, c);
	/* a request record in an early epoch */
	for (i = 20; i < nlines; i++)
		if (strcmp(recs[i].type, "request") == 0 && recs[i].epoch >= 2)
			break;
	assert_true(i < nlines);
	head_of(i - 1, prev);

	/* (a) new content, epoch left as it was, MAC'd with K_c */
	{
		struct afmt_head h;
		const char *f = "\"request_id\":\"x\",\"caller\":\"mallory\"";
		h.log_id = recs[i].log_id;
		h.seq = recs[i].seq;
		h.epoch = c;
		h.ts = recs[i].ts;
		h.type = "request";
		ll = afmt_build(line, sizeof(line), &h, f, strlen(f), prev,
		    &live, NULL, NULL);
		assert_true(ll > 0);
		/* put the old epoch number back in the text */
		{
			char e1[32], e2[32], tmp[4096];
			char *pos;
			snprintf(e1, sizeof(e1), "\"epoch\":%llu,",
			    (unsigned long long)c);
			snprintf(e2, sizeof(e2), "\"epoch\":%llu,",
			    (unsigned long long)recs[i].epoch);
			pos = strstr(line, e1);
			assert_non_null(pos);
			n = (size_t)(pos - line);
			memcpy(tmp, line, n);
			memcpy(tmp + n, e2, strlen(e2));
			memcpy(tmp + n + strlen(e2), pos + strlen(e1),
			    ll - n - strlen(e1));
			ll = ll - strlen(e1) + strlen(e2);
			memcpy(line, tmp, ll);
		}
		n = put(0, logbuf, off[i]);
		n = put(n, line, ll);
		n = put(n, logbuf + off[i + 1], loglen - off[i + 1]);
		ta_verify1(env.k0, work, n, NULL, &r);
		assert_int_equal(r.failures, 1);
		assert_true(ta_names(&r, recs[i].seq));
	}
	/* (b) same content, claims epoch c: a valid MAC in the wrong
	 * place */
	ll = rebuild(line, sizeof(line), i, "\"request_id\":\"x\","
	    "\"caller\":\"mallory\"", recs[i].seq, prev, &live);
	n = put(0, logbuf, off[i]);
	n = put(n, line, ll);
	n = put(n, logbuf + off[i + 1], loglen - off[i + 1]);
	ta_verify1(env.k0, work, n, NULL, &r);
	assert_int_equal(r.failures, 1);
	assert_int_equal(r.count[AFMT_EPOCH_VIOLATION], 1);
	assert_int_equal(r.seq[AFMT_EPOCH_VIOLATION], recs[i].seq);

	/* (c) truncate at i and continue with K_c */
	n = put(0, logbuf, off[i]);
	for (j = i; j < i + 5; j++) {
		unsigned char h[AFMT_HASH_LEN];
		ll = rebuild(line, sizeof(line), j, NULL, recs[j].seq, prev,
		    &live);
		assert_true(ll > 0);
		afmt_sha256(line, ll, h);
		memcpy(prev, h, sizeof(h));
		n = put(n, line, ll);
	}
	ta_verify1(env.k0, work, n, NULL, &r);
	assert_true(r.failures >= 1);
	assert_int_equal(r.count[AFMT_SEAL_MISSING], 1);
	assert_int_equal(r.seq[AFMT_SEAL_MISSING], recs[i].seq);

	/* (d) a record of epoch c inside a sealed epoch, seals dropped */
	afmt_key_wipe(&live);
}

/* An anchored head: the same seq with other content is a FORK. */
static void
test_anchor_fork(void **state)
{
	struct ta_anchor an;
	struct ta_result r;
	struct afmt_key k;
	unsigned char prev[AFMT_HASH_LEN];
	char line[4096];
	size_t i = nlines - 5, n, ll;

	an.seq = recs[i].seq;
	head_of(i, an.head);
	ta_verify1(env.k0, logbuf, loglen, &an, &r);
	assert_int_equal(r.failures, 0);

	/* Whoever holds that epoch's key rewrites seq i and everything
	 * after it consistently: only the anchor tells. */
	key_at(&k, recs[i].epoch);
	head_of(i - 1, prev);
	n = put(0, logbuf, off[i]);
	ll = rebuild(line, sizeof(line), i, "\"request_id\":\"y\","
	    "\"caller\":\"mallory\"", recs[i].seq, prev, &k);
	n = put(n, line, ll);
	afmt_key_wipe(&k);
	ta_verify1(env.k0, work, n, NULL, &r);
	assert_int_equal(r.failures, 0);
	ta_verify1(env.k0, work, n, &an, &r);
	assert_int_equal(r.failures, 1);
	assert_int_equal(r.count[AFMT_FORK], 1);
	assert_int_equal(r.seq[AFMT_FORK], recs[i].seq);
}

static void
test_wrong_key(void **state)
{
	unsigned char k[AFMT_KEY_LEN];
	struct ta_result r;

	memcpy(k, env.k0, sizeof(k));
	k[0] ^= 1;
	ta_verify1(k, logbuf, loglen, NULL, &r);
	assert_int_equal(r.sum.records, 0);
	assert_true(r.sum.lines == nlines);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_log_verifies),
		cmocka_unit_test(test_flip_every_byte),
		cmocka_unit_test(test_flip_whole_file),
		cmocka_unit_test(test_delete_each_line),
		cmocka_unit_test(test_duplicate_each_line),
		cmocka_unit_test(test_swap_each_pair),
		cmocka_unit_test(test_insert_forged_line),
		cmocka_unit_test(test_truncate_every_offset),
		cmocka_unit_test(test_remac_with_live_key),
		cmocka_unit_test(test_anchor_fork),
		cmocka_unit_test(test_wrong_key),
	};

	/* TEST_FILTER=name runs one test (cmocka's pattern syntax). */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, gen_setup, gen_teardown);
}
