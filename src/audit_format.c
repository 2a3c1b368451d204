/*
 * audit_format.c: the audit record format, the HMAC chain, the key
 * schedule and the verifier, shared by the gateway and cmgate-audit.
 *
 * Everything here works on the exact bytes of a line: the MAC and the
 * chain hash are computed over what is on disk, and nothing is ever
 * re-serialized.  See docs/audit.md.
 */
#include "audit_format.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define AFMT_DOMAIN	"CMAUDIT1"
#define AFMT_DOMAIN_LEN	8

static EVP_MAC		*afmt_mac_alg;
static pthread_once_t	 afmt_once = PTHREAD_ONCE_INIT;
static int		 afmt_init_ok;

static const unsigned char afmt_zero_hash[AFMT_HASH_LEN];

/* ------------------------------------------------------------------ */
/* Algorithms, fetched once per process */

static pthread_key_t	 afmt_tls;	/* a per-thread one-shot context */
static EVP_MAC_CTX	*afmt_tmpl;	/* digest set, no key: to dup */

static void
afmt_tls_free(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

static void
afmt_do_init(void)
{
	afmt_mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (afmt_mac_alg != NULL && (afmt_tmpl = EVP_MAC_CTX_new(
	    afmt_mac_alg)) != NULL) {
		OSSL_PARAM p[2];
		p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
		    (char *)"SHA256", 0);
		p[1] = OSSL_PARAM_construct_end();
		if (!EVP_MAC_CTX_set_params(afmt_tmpl, p)) {
			EVP_MAC_CTX_free(afmt_tmpl);
			afmt_tmpl = NULL;
		}
	}
	afmt_init_ok = afmt_tmpl != NULL &&
	    pthread_key_create(&afmt_tls, afmt_tls_free) == 0;
}

int
afmt_init(void)
{
	pthread_once(&afmt_once, afmt_do_init);
	return afmt_init_ok ? 0 : -1;
}

/* A new HMAC-SHA256 context: a copy of the template, whose digest was
 * fetched once; EVP_MAC_init() then only changes the key. */
static EVP_MAC_CTX *
afmt_ctx_new(void)
{
	return EVP_MAC_CTX_dup(afmt_tmpl);
}

static int
afmt_ctx_key(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen)
{
	return EVP_MAC_init(ctx, key, keylen, NULL) == 1 ? 0 : -1;
}

int
afmt_hmac(const unsigned char *key, size_t keylen, const void *a, size_t alen,
    const void *b, size_t blen, unsigned char out[AFMT_HASH_LEN])
{
	EVP_MAC_CTX *ctx;
	size_t n = 0;

	if (afmt_init() == -1)
		return -1;
	if ((ctx = pthread_getspecific(afmt_tls)) == NULL) {
		if ((ctx = afmt_ctx_new()) == NULL)
			return -1;
		if (pthread_setspecific(afmt_tls, ctx) != 0) {
			EVP_MAC_CTX_free(ctx);
			return -1;
		}
	}
	if (afmt_ctx_key(ctx, key, keylen) == -1 ||
	    (alen && !EVP_MAC_update(ctx, a, alen)) ||
	    (blen && !EVP_MAC_update(ctx, b, blen)) ||
	    !EVP_MAC_final(ctx, out, &n, AFMT_HASH_LEN) || n != AFMT_HASH_LEN)
		return -1;
	return 0;
}

/* The chain's hash is util.c's SHA-256 (fetched once per process). */
int
afmt_sha256(const void *buf, size_t len, unsigned char out[AFMT_HASH_LEN])
{
	return sha256(buf, len, out);
}

int
afmt_body_key(const unsigned char k0[AFMT_KEY_LEN], const char *log_id,
    unsigned char out[AFMT_KEY_LEN])
{
	return afmt_hmac(k0, AFMT_KEY_LEN, "body-digest", 11, log_id,
	    strlen(log_id), out);
}

/* K0 as made by cmgate-audit keygen: 64 hex digits. */
int
afmt_read_k0(const char *path, unsigned char k0[AFMT_KEY_LEN], char *err,
    size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = -1;

	if (read_secret_file(path, 1024, &buf, &len, err, errlen) == -1)
		return -1;
	if (len != 2 * AFMT_KEY_LEN || hex_decode(buf, k0, AFMT_KEY_LEN) == -1)
		snprintf(err, errlen, "%s: not a key: 64 hex digits expected "
		    "(cmgate-audit keygen)", path);
	else
		rc = 0;
	secret_free(buf, len + 1);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Keys */

/* Key the record context with M_e = HMAC(K_e, "mac"). */
static int
afmt_key_rekey(struct afmt_key *key)
{
	unsigned char m[AFMT_HASH_LEN];
	int rc;

	if (key->ctx == NULL && (key->ctx = afmt_ctx_new()) == NULL)
		return -1;
	if (afmt_hmac(key->k, AFMT_KEY_LEN, "mac", 3, NULL, 0, m) == -1)
		return -1;
	rc = afmt_ctx_key(key->ctx, m, sizeof(m));
	OPENSSL_cleanse(m, sizeof(m));
	return rc;
}

int
afmt_key_set(struct afmt_key *key, const unsigned char *k, uint64_t epoch)
{
	if (afmt_init() == -1)
		return -1;
	if (key->k != k)
		memcpy(key->k, k, AFMT_KEY_LEN);
	key->epoch = epoch;
	key->set = true;
	return afmt_key_rekey(key);
}

int
afmt_key_copy(struct afmt_key *dst, const struct afmt_key *src)
{
	return afmt_key_set(dst, src->k, src->epoch);
}

static void
afmt_be64(uint64_t v, unsigned char out[8])
{
	int i;

	for (i = 7; i >= 0; i--) {
		out[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/* One step of the schedule without re-keying the record context. */
static int
afmt_key_step(struct afmt_key *key, const char *log_id)
{
	unsigned char msg[6 + AFMT_LOGID_HEX + 8], next[AFMT_HASH_LEN];
	size_t idlen = strlen(log_id);

	if (idlen != AFMT_LOGID_HEX)
		return -1;
	memcpy(msg, "evolve", 6);
	memcpy(msg + 6, log_id, AFMT_LOGID_HEX);
	afmt_be64(key->epoch + 1, msg + 6 + AFMT_LOGID_HEX);
	if (afmt_hmac(key->k, AFMT_KEY_LEN, msg, sizeof(msg), NULL, 0,
	    next) == -1)
		return -1;
	memcpy(key->k, next, AFMT_KEY_LEN);
	OPENSSL_cleanse(next, sizeof(next));
	key->epoch++;
	return 0;
}

int
afmt_key_evolve(struct afmt_key *key, const char *log_id)
{
	if (afmt_key_step(key, log_id) == -1)
		return -1;
	return afmt_key_rekey(key);
}

int
afmt_key_seek(struct afmt_key *key, const char *log_id, uint64_t epoch,
    uint64_t max_steps)
{
	if (epoch < key->epoch || epoch - key->epoch > max_steps)
		return -1;
	if (epoch == key->epoch)
		return 0;
	while (key->epoch < epoch)
		if (afmt_key_step(key, log_id) == -1)
			return -1;
	return afmt_key_rekey(key);
}

void
afmt_key_wipe(struct afmt_key *key)
{
	OPENSSL_cleanse(key->k, sizeof(key->k));
	EVP_MAC_CTX_free(key->ctx);
	key->ctx = NULL;
	key->set = false;
	key->epoch = 0;
}

static int
afmt_line_mac(struct afmt_key *key, const char *line, size_t maclen,
    unsigned char out[AFMT_HASH_LEN])
{
	size_t n = 0;

	/* A NULL key reuses the one set by afmt_key_rekey(). */
	if (!key->set || EVP_MAC_init(key->ctx, NULL, 0, NULL) != 1 ||
	    !EVP_MAC_update(key->ctx, (const unsigned char *)AFMT_DOMAIN,
	    AFMT_DOMAIN_LEN) ||
	    !EVP_MAC_update(key->ctx, (const unsigned char *)line, maclen) ||
	    !EVP_MAC_final(key->ctx, out, &n, AFMT_HASH_LEN) ||
	    n != AFMT_HASH_LEN)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Writing */

static char *
afmt_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *
afmt_put_u64(char *p, uint64_t v)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

#define PUTS(p, lit) afmt_put((p), (lit), sizeof(lit) - 1)

size_t
afmt_build(char *buf, size_t cap, const struct afmt_head *h,
    const char *fields, size_t flen, const unsigned char prev[AFMT_HASH_LEN],
    struct afmt_key *key, unsigned char head[AFMT_HASH_LEN],
    unsigned char mac[AFMT_HASH_LEN])
{
	unsigned char m[AFMT_HASH_LEN];
	size_t tslen = strlen(h->ts), tlen = strlen(h->type), need, len;
	char *p = buf;

	need = AFMT_OVERHEAD + tslen + tlen + flen;
	if (need > cap || tslen > 31 || tlen > AFMT_MAX_TYPE ||
	    strlen(h->log_id) != AFMT_LOGID_HEX || key->epoch != h->epoch)
		return 0;
	p = PUTS(p, "{\"v\":1,\"log\":\"");
	p = afmt_put(p, h->log_id, AFMT_LOGID_HEX);
	p = PUTS(p, "\",\"seq\":");
	p = afmt_put_u64(p, h->seq);
	p = PUTS(p, ",\"epoch\":");
	p = afmt_put_u64(p, h->epoch);
	p = PUTS(p, ",\"ts\":\"");
	p = afmt_put(p, h->ts, tslen);
	p = PUTS(p, "\",\"type\":\"");
	p = afmt_put(p, h->type, tlen);
	*p++ = '"';
	if (flen) {
		*p++ = ',';
		p = afmt_put(p, fields, flen);
	}
	p = PUTS(p, ",\"prev\":\"");
	hex_encode(prev, AFMT_HASH_LEN, p);
	p += 2 * AFMT_HASH_LEN;
	*p++ = '"';
	if (afmt_line_mac(key, buf, (size_t)(p - buf), m) == -1)
		return 0;
	p = PUTS(p, ",\"mac\":\"");
	hex_encode(m, AFMT_HASH_LEN, p);
	p += 2 * AFMT_HASH_LEN;
	p = PUTS(p, "\"}\n");
	len = (size_t)(p - buf);
	if (len > AFMT_MAX_RECORD)
		return 0;
	if (mac)
		memcpy(mac, m, AFMT_HASH_LEN);
	if (head && afmt_sha256(buf, len, head) == -1)
		return 0;
	return len;
}

/* ------------------------------------------------------------------ */
/* Lines */

void
afmt_lines_init(struct afmt_lines *it, const char *buf, size_t len)
{
	it->buf = buf;
	it->len = len;
	it->off = 0;
}

bool
afmt_lines_next(struct afmt_lines *it, const char **line, size_t *n,
    size_t *off)
{
	const char *p, *nl;
	size_t rest;

	if (it->off >= it->len)
		return false;
	p = it->buf + it->off;
	rest = it->len - it->off;
	nl = memchr(p, '\n', rest);
	*line = p;
	*n = nl ? (size_t)(nl - p) + 1 : rest;
	*off = it->off;
	it->off += *n;
	return true;
}

/* ------------------------------------------------------------------ */
/* Reading */

static bool
afmt_is_lhex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Value of a lower-case hex digit, or -1: upper case is refused, or a
 * case flip would decode to the same bytes and go unnoticed. */
static const signed char afmt_hexval[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6,
	['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12,
	['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

static int
afmt_lhex(const char *p, size_t n, unsigned char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = afmt_hexval[(unsigned char)p[2 * i]];
		int lo = afmt_hexval[(unsigned char)p[2 * i + 1]];
		if (hi == 0 || lo == 0)
			return -1;
		out[i] = (unsigned char)((hi - 1) << 4 | (lo - 1));
	}
	return 0;
}

static int
afmt_lit(const char **pp, const char *end, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *pp) < n || memcmp(*pp, lit, n) != 0)
		return -1;
	*pp += n;
	return 0;
}

/* A decimal u64 without sign or leading zeros. */
static int
afmt_u64(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		p++;
	}
	*pp = p;
	*out = v;
	return 0;
}

int
afmt_parse(const char *line, size_t len, struct afmt_rec *r)
{
	const char *p = line, *end, *q;
	size_t n;

	memset(r, 0, sizeof(*r));
	if (len < 60 + AFMT_SUFFIX_LEN + AFMT_PREV_LEN || len > AFMT_MAX_RECORD ||
	    line[len - 1] != '\n')
		return -1;
	/* The fixed suffix first: it bounds the fields. */
	end = line + len - AFMT_SUFFIX_LEN;
	q = end;
	if (afmt_lit(&q, line + len, ",\"mac\":\"") == -1 ||
	    afmt_lhex(q, AFMT_HASH_LEN, r->mac) == -1)
		return -1;
	q += 2 * AFMT_HASH_LEN;
	if (afmt_lit(&q, line + len, "\"}\n") == -1 || q != line + len)
		return -1;
	end -= AFMT_PREV_LEN;
	q = end;
	if (afmt_lit(&q, line + len, ",\"prev\":\"") == -1 ||
	    afmt_lhex(q, AFMT_HASH_LEN, r->prev) == -1 ||
	    q[2 * AFMT_HASH_LEN] != '"')
		return -1;

	if (afmt_lit(&p, end, "{\"v\":1,\"log\":\"") == -1 ||
	    end - p < AFMT_LOGID_HEX)
		return -1;
	for (n = 0; n < AFMT_LOGID_HEX; n++)
		if (!afmt_is_lhex((unsigned char)p[n]))
			return -1;
	memcpy(r->log_id, p, AFMT_LOGID_HEX);
	p += AFMT_LOGID_HEX;
	if (afmt_lit(&p, end, "\",\"seq\":") == -1 ||
	    afmt_u64(&p, end, &r->seq) == -1 || r->seq == 0 ||
	    afmt_lit(&p, end, ",\"epoch\":") == -1 ||
	    afmt_u64(&p, end, &r->epoch) == -1 ||
	    afmt_lit(&p, end, ",\"ts\":\"") == -1)
		return -1;
	for (n = 0; p + n < end && p[n] != '"'; n++) {
		int c = (unsigned char)p[n];
		if (n >= sizeof(r->ts) - 1 || !((c >= '0' && c <= '9') ||
		    c == '-' || c == ':' || c == 'T' || c == '.' || c == 'Z'))
			return -1;
	}
	memcpy(r->ts, p, n);
	p += n;
	if (afmt_lit(&p, end, "\",\"type\":\"") == -1)
		return -1;
	for (n = 0; p + n < end && p[n] != '"'; n++) {
		int c = (unsigned char)p[n];
		if (n >= AFMT_MAX_TYPE || !((c >= 'a' && c <= 'z') || c == '_'))
			return -1;
	}
	if (n == 0 || p + n >= end)
		return -1;
	memcpy(r->type, p, n);
	p += n + 1;
	if (p == end) {
		r->fields = p;
		r->flen = 0;
	} else {
		if (*p != ',' || end - p < 2)
			return -1;
		r->fields = p + 1;
		r->flen = (size_t)(end - p - 1);
	}
	r->line = line;
	r->len = len;
	return 0;
}

int
afmt_check_mac(struct afmt_key *key, const struct afmt_rec *r)
{
	unsigned char m[AFMT_HASH_LEN];

	if (key->epoch != r->epoch ||
	    afmt_line_mac(key, r->line, r->len - AFMT_SUFFIX_LEN, m) == -1)
		return -1;
	return CRYPTO_memcmp(m, r->mac, AFMT_HASH_LEN) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Reading members of the fields fragment without a JSON library: the
 * writer's hot path and the verifier use these on trusted, MAC-checked
 * bytes, but they must still never read past the end. */

static const char *
afmt_skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

static const char *
afmt_skip_string(const char *p, const char *end)
{
	if (p >= end || *p != '"')
		return NULL;
	for (p++; p < end; p++) {
		if (*p == '\\') {
			if (++p >= end)
				return NULL;
		} else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *
afmt_skip_value(const char *p, const char *end)
{
	int depth = 0;

	p = afmt_skip_ws(p, end);
	if (p >= end)
		return NULL;
	if (*p == '"')
		return afmt_skip_string(p, end);
	if (*p != '{' && *p != '[') {
		const char *s = p;
		while (p < end && *p != ',' && *p != '}' && *p != ']' &&
		    *p != ' ')
			p++;
		return p > s ? p : NULL;
	}
	while (p < end) {
		if (*p == '"') {
			if ((p = afmt_skip_string(p, end)) == NULL)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
		}
		p++;
	}
	return NULL;
}

/*
 * The member that begins at p (whitespace skipped, p < end): its key
 * [*ks, *ke), quotes included, and where its value begins (*v).  The
 * end of the value, or NULL when the member does not scan.  The one
 * member scanner of afmt_member and afmt_fields_split.
 */
static const char *
afmt_scan_member(const char *p, const char *end, const char **ks,
    const char **ke, const char **v)
{
	*ks = p;
	if ((*ke = afmt_skip_string(p, end)) == NULL)
		return NULL;
	p = afmt_skip_ws(*ke, end);
	if (p >= end || *p != ':')
		return NULL;
	*v = afmt_skip_ws(p + 1, end);
	return afmt_skip_value(*v, end);
}

/* Whether the key [ks, ke), with its quotes, is name. */
static bool
afmt_key_is(const char *ks, const char *ke, const char *name)
{
	size_t nlen = strlen(name);

	return (size_t)(ke - ks) == nlen + 2 && memcmp(ks + 1, name, nlen) == 0;
}

/* Find member name among the members in [p, end); value span out. */
static int
afmt_member(const char *p, const char *end, const char *name,
    const char **vs, const char **ve)
{
	for (;;) {
		const char *ks, *ke, *v;

		p = afmt_skip_ws(p, end);
		if (p >= end ||
		    (p = afmt_scan_member(p, end, &ks, &ke, &v)) == NULL)
			return -1;
		if (afmt_key_is(ks, ke, name)) {
			*vs = v;
			*ve = p;
			return 0;
		}
		p = afmt_skip_ws(p, end);
		if (p >= end || *p != ',')
			return -1;
		p++;
	}
}

int
afmt_field_raw(const char *fields, size_t flen, const char *name, char *out,
    size_t outlen)
{
	const char *vs, *ve;

	if (afmt_member(fields, fields + flen, name, &vs, &ve) == -1 ||
	    (size_t)(ve - vs) >= outlen)
		return -1;
	memcpy(out, vs, (size_t)(ve - vs));
	out[ve - vs] = '\0';
	return 0;
}

int
afmt_field_str(const char *fields, size_t flen, const char *name, char *out,
    size_t outlen)
{
	const char *vs, *ve;
	size_t n;

	if (afmt_member(fields, fields + flen, name, &vs, &ve) == -1 ||
	    ve - vs < 2 || *vs != '"')
		return -1;
	n = (size_t)(ve - vs) - 2;
	if (n >= outlen || memchr(vs + 1, '\\', n) != NULL)
		return -1;
	memcpy(out, vs + 1, n);
	out[n] = '\0';
	return 0;
}

int
afmt_field_u64(const char *fields, size_t flen, const char *name,
    uint64_t *out)
{
	const char *vs, *ve;

	if (afmt_member(fields, fields + flen, name, &vs, &ve) == -1 ||
	    afmt_u64(&vs, ve, out) == -1 || vs != ve)
		return -1;
	return 0;
}

int
afmt_fields_split(const char *fields, size_t flen, const char *const *names,
    size_t n, const char **vs, size_t *vl)
{
	const char *p = fields, *end = fields + flen;
	size_t i;

	for (i = 0; i < n; i++) {
		vs[i] = NULL;
		vl[i] = 0;
	}
	while (p < end) {
		const char *ks, *ke, *v;

		p = afmt_skip_ws(p, end);
		if (p >= end)
			return 0;
		if ((p = afmt_scan_member(p, end, &ks, &ke, &v)) == NULL)
			return -1;
		for (i = 0; i < n; i++)
			if (afmt_key_is(ks, ke, names[i])) {
				if (vs[i] == NULL) {
					vs[i] = v;
					vl[i] = (size_t)(p - v);
				}
				break;
			}
		p = afmt_skip_ws(p, end);
		if (p >= end)
			return 0;
		if (*p != ',')
			return -1;
		p++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The set of open requests: open addressing, linear probing */

static uint64_t
afmt_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static struct afmt_open *
afmt_idset_find(const struct afmt_idset *set, const char *id, bool for_insert)
{
	size_t i, mask;
	struct afmt_open *tomb = NULL;

	if (set->cap == 0)
		return NULL;
	mask = set->cap - 1;
	for (i = afmt_hash_str(id) & mask;; i = (i + 1) & mask) {
		struct afmt_open *e = &set->v[i];
		if (e->id[0] == '\0' && !e->tomb)
			return for_insert ? (tomb ? tomb : e) : NULL;
		if (e->tomb) {
			if (tomb == NULL)
				tomb = e;
		} else if (strcmp(e->id, id) == 0)
			return e;
	}
}

static int
afmt_idset_rehash(struct afmt_idset *set)
{
	struct afmt_idset n = { 0 };
	size_t i;

	/*
	 * Tombstones go at every rehash, and the table is sized for the
	 * live entries alone (under 40% full after it): a gateway adds and
	 * deletes one id per request forever, and sizing by live entries
	 * plus tombstones would double the table every 0.7 x cap requests.
	 */
	n.cap = 64;
	while ((set->n + 1) * 10 >= n.cap * 4)
		n.cap *= 2;
	if ((n.v = calloc(n.cap, sizeof(*n.v))) == NULL)
		return -1;
	for (i = 0; i < set->cap; i++) {
		struct afmt_open *e = &set->v[i], *d;
		if (e->id[0] == '\0' || e->tomb)
			continue;
		d = afmt_idset_find(&n, e->id, true);
		*d = *e;
		n.n++;
		n.used++;
	}
	free(set->v);
	*set = n;
	return 0;
}

int
afmt_idset_add(struct afmt_idset *set, const char *id, const char *caller,
    uint64_t seq)
{
	struct afmt_open *e;
	size_t idlen = strlen(id), clen = caller ? strlen(caller) : 0;

	if (idlen == 0 || idlen >= sizeof(e->id))
		return -1;
	if ((set->used + 1) * 10 >= set->cap * 7 && afmt_idset_rehash(set) == -1)
		return -1;
	e = afmt_idset_find(set, id, true);
	if (e->id[0] != '\0' && !e->tomb)
		return 0;		/* already open */
	if (!e->tomb)
		set->used++;
	memcpy(e->id, id, idlen + 1);
	if (caller && clen < sizeof(e->caller))
		memcpy(e->caller, caller, clen + 1);
	else
		strcpy(e->caller, "null");
	e->seq = seq;
	e->tomb = false;
	set->n++;
	return 0;
}

int
afmt_idset_del(struct afmt_idset *set, const char *id)
{
	struct afmt_open *e = afmt_idset_find(set, id, false);

	if (e == NULL)
		return -1;
	e->id[0] = '\0';
	e->tomb = true;
	set->n--;
	return 0;
}

const struct afmt_open *
afmt_idset_next(const struct afmt_idset *set, size_t *idx)
{
	while (*idx < set->cap) {
		const struct afmt_open *e = &set->v[(*idx)++];
		if (e->id[0] != '\0' && !e->tomb)
			return e;
	}
	return NULL;
}

void
afmt_idset_free(struct afmt_idset *set)
{
	free(set->v);
	memset(set, 0, sizeof(*set));
}

/* The "open" member of a start (or carry) record: [{"request_id":..,
 * "caller":..,"seq":N},...] as carried across a rotation. */
static void
afmt_idset_add_list(struct afmt_idset *set, const char *fields, size_t flen)
{
	const char *vs, *ve, *p;

	if (afmt_member(fields, fields + flen, "open", &vs, &ve) == -1 ||
	    *vs != '[')
		return;
	p = vs + 1;
	for (;;) {
		const char *es, *ee;
		char id[65], caller[72];
		uint64_t seq = 0;

		p = afmt_skip_ws(p, ve);
		if (p >= ve || *p == ']' || *p != '{')
			return;
		es = p;
		if ((ee = afmt_skip_value(p, ve)) == NULL)
			return;
		if (afmt_field_str(es + 1, (size_t)(ee - es - 2), "request_id",
		    id, sizeof(id)) == 0) {
			if (afmt_field_raw(es + 1, (size_t)(ee - es - 2),
			    "caller", caller, sizeof(caller)) == -1)
				strcpy(caller, "null");
			(void)afmt_field_u64(es + 1, (size_t)(ee - es - 2),
			    "seq", &seq);
			(void)afmt_idset_add(set, id, caller, seq);
		}
		p = afmt_skip_ws(ee, ve);
		if (p >= ve || *p != ',')
			return;
		p++;
	}
}

void
afmt_idset_track(struct afmt_idset *set, const char *type,
    const char *fields, size_t flen, uint64_t seq)
{
	char id[65], caller[72];

	if (strcmp(type, "request") == 0) {
		if (afmt_field_str(fields, flen, "request_id", id,
		    sizeof(id)) == -1)
			return;
		if (afmt_field_raw(fields, flen, "caller", caller,
		    sizeof(caller)) == -1)
			strcpy(caller, "null");
		(void)afmt_idset_add(set, id, caller, seq);
	} else if (strcmp(type, "outcome") == 0) {
		if (afmt_field_str(fields, flen, "request_id", id,
		    sizeof(id)) == 0)
			(void)afmt_idset_del(set, id);
	} else if (strcmp(type, "start") == 0 || strcmp(type, "carry") == 0)
		afmt_idset_add_list(set, fields, flen);
}

/* ------------------------------------------------------------------ */
/* Verifying */

static const char *const afmt_kind_names[] = {
	"MODIFIED", "MISSING", "REORDERED", "DUPLICATE", "FORGED",
	"SEAL_MISSING", "EPOCH_VIOLATION", "TORN_TAIL", "TRUNCATED", "FORK",
	"OPEN", "RECOVER",
};

const char *
afmt_kind_name(enum afmt_kind k)
{
	return afmt_kind_names[k];
}

bool
afmt_kind_is_failure(enum afmt_kind k)
{
	return k != AFMT_OPEN && k != AFMT_RECOVER;
}

/* A line that did not verify, waiting for the next good record to say
 * what it was (modified, forged, torn). */
struct afmt_bad {
	const char	*file;
	uint64_t	 line, offset, len;
	bool		 complete;	/* parsed as a record */
	uint64_t	 seq;		/* as parsed, when complete */
};

#define AFMT_BAD_KEEP	64
#define AFMT_MAX_STEPS	(1u << 24)	/* key steps for one lookup */
/*
 * Key steps a verifier may spend, in all, on lines that need a key the
 * chain has not reached (an epoch ahead of it, or a key derived afresh
 * from the base): enough to find the first record of a log whose
 * earlier files are not given (a year of 60 s epochs) and to name a
 * re-MAC'd record, bounded against a file of forged lines whatever
 * epochs they claim (0.3 to 0.5 s at 0.3 to 0.45 us a step).
 */
#define AFMT_STEP_BUDGET (1u << 20)
/*
 * How far ahead of the chain's epoch a record may claim to be, on top
 * of the epochs the time since the last verified record allows: epochs
 * that end early (a stop, a rotation) are not bound to the clock.
 */
#define AFMT_EPOCH_SLACK 1024
#define AFMT_MAX_MISSING 65536

struct afmt_range {
	uint64_t	 a, b;
	const char	*file;
	uint64_t	 line, offset;
};

struct afmt_anchor {
	uint64_t	 seq;
	unsigned char	 head[AFMT_HASH_LEN];
	bool		 checked;
};

struct afmt_vfy {
	afmt_finding_cb	 cb;
	void		*cbarg;
	afmt_record_cb	 rcb;
	void		*rcbarg;
	bool		 repair;

	struct afmt_key	 base;		/* as given; never moved */
	struct afmt_key	 cur;		/* at epoch, when set */
	struct afmt_key	 scratch;
	uint64_t	 budget;	/* AFMT_STEP_BUDGET, spent */
	/* Time of the last linked record (0: none yet) and the epoch
	 * length a verified start record gave (0: not known). */
	int64_t		 last_time;
	uint64_t	 epoch_s;

	const char	*file;
	uint64_t	 lineno;

	bool		 started;
	uint64_t	 exp;
	unsigned char	 head[AFMT_HASH_LEN];
	uint64_t	 epoch;
	char		 log_id[AFMT_LOGID_HEX + 1];
	bool		 have_log;
	bool		 suspect;	/* last accepted record is reported */

	/* A linked record whose epoch jumped without a seal: resolved by
	 * the next record (isolated re-MAC, or seals really missing). */
	bool		 jump;
	uint64_t	 jump_seq, jump_from, jump_to, jump_line, jump_off;
	const char	*jump_file;
	bool		 jump_seal;

	struct afmt_bad	 bad[AFMT_BAD_KEEP];
	size_t		 nbad;		/* may exceed AFMT_BAD_KEEP */
	bool		 bad_torn;	/* some bad line is not a record */

	struct afmt_range *miss;
	size_t		 nmiss, capmiss;

	uint64_t	*hashes;	/* first 8 bytes of each line's hash */
	uint64_t	 hbase;
	size_t		 hn, hcap;

	struct afmt_anchor *anchors;
	size_t		 nanchors;

	struct afmt_idset open;
	struct afmt_summary sum;
};

static void
afmt_report(struct afmt_vfy *v, enum afmt_kind kind, uint64_t seq,
    uint64_t seq_end, const char *file, uint64_t line, uint64_t off,
    const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static void afmt_vfy_set_epoch(struct afmt_vfy *, uint64_t);

static void
afmt_report(struct afmt_vfy *v, enum afmt_kind kind, uint64_t seq,
    uint64_t seq_end, const char *file, uint64_t line, uint64_t off,
    const char *fmt, ...)
{
	struct afmt_finding f;
	va_list ap;

	memset(&f, 0, sizeof(f));
	f.kind = kind;
	f.seq = seq;
	f.seq_end = seq_end ? seq_end : seq;
	f.file = file;
	f.line = line;
	f.offset = off;
	va_start(ap, fmt);
	vsnprintf(f.detail, sizeof(f.detail), fmt, ap);
	va_end(ap);
	if (afmt_kind_is_failure(kind))
		v->sum.failures++;
	else
		v->sum.infos++;
	if (v->cb)
		v->cb(&f, v->cbarg);
}

struct afmt_vfy *
afmt_vfy_new(const unsigned char key[AFMT_KEY_LEN], uint64_t key_epoch,
    afmt_finding_cb cb, void *arg)
{
	struct afmt_vfy *v;

	if (afmt_init() == -1 || (v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->cb = cb;
	v->cbarg = arg;
	v->file = "";
	v->budget = AFMT_STEP_BUDGET;
	if (afmt_key_set(&v->base, key, key_epoch) == -1) {
		afmt_vfy_free(v);
		return NULL;
	}
	return v;
}

void
afmt_vfy_free(struct afmt_vfy *v)
{
	if (v == NULL)
		return;
	afmt_key_wipe(&v->base);
	afmt_key_wipe(&v->cur);
	afmt_key_wipe(&v->scratch);
	free(v->miss);
	free(v->hashes);
	free(v->anchors);
	afmt_idset_free(&v->open);
	free(v);
}

void
afmt_vfy_repair_mode(struct afmt_vfy *v, bool on)
{
	v->repair = on;
}

void
afmt_vfy_on_record(struct afmt_vfy *v, afmt_record_cb cb, void *arg)
{
	v->rcb = cb;
	v->rcbarg = arg;
}

void
afmt_vfy_expect(struct afmt_vfy *v, uint64_t seq,
    const unsigned char head[AFMT_HASH_LEN], uint64_t epoch,
    const char *log_id)
{
	v->started = true;
	v->exp = seq;
	memcpy(v->head, head, AFMT_HASH_LEN);
	v->epoch = epoch;
	snprintf(v->log_id, sizeof(v->log_id), "%s", log_id);
	v->have_log = true;
	v->sum.epoch = epoch;
	v->hbase = seq;
	afmt_vfy_set_epoch(v, epoch);
}

int
afmt_vfy_anchor(struct afmt_vfy *v, uint64_t seq,
    const unsigned char head[AFMT_HASH_LEN])
{
	struct afmt_anchor *n;

	n = realloc(v->anchors, (v->nanchors + 1) * sizeof(*n));
	if (n == NULL)
		return -1;
	v->anchors = n;
	n[v->nanchors].seq = seq;
	memcpy(n[v->nanchors].head, head, AFMT_HASH_LEN);
	n[v->nanchors].checked = false;
	v->nanchors++;
	return 0;
}

void
afmt_vfy_file(struct afmt_vfy *v, const char *name)
{
	v->file = name;
	v->lineno = 0;
}

/*
 * The key of epoch e, derived from the current or the base key; NULL
 * when it cannot be: earlier than the base, later than max_epoch (what
 * the chain can justify, see afmt_vfy_reach), or more key steps than
 * the budget has left.  One step from a key already held is free (the
 * chain moving on); any longer derivation is paid from the budget, so
 * however many lines a file holds and whatever epochs they claim, the
 * key work of a whole run stays under AFMT_STEP_BUDGET steps.
 */
static struct afmt_key *
afmt_vfy_key(struct afmt_vfy *v, uint64_t e, const char *log_id,
    uint64_t max_epoch)
{
	struct afmt_key *from;

	if (v->cur.set && v->cur.epoch == e)
		return &v->cur;
	if (v->base.epoch == e)
		return &v->base;
	if (v->scratch.set && v->scratch.epoch == e)
		return &v->scratch;
	if (e < v->base.epoch || e > max_epoch ||
	    e - v->base.epoch > AFMT_MAX_STEPS)
		return NULL;
	/* Step from the nearest key below e. */
	from = &v->base;
	if (v->cur.set && v->cur.epoch < e && v->cur.epoch > from->epoch)
		from = &v->cur;
	if (v->scratch.set && v->scratch.epoch < e &&
	    v->scratch.epoch > from->epoch)
		from = &v->scratch;
	if (e - from->epoch > 1) {
		if (e - from->epoch > v->budget)
			return NULL;
		v->budget -= e - from->epoch;
	}
	if (from != &v->scratch && afmt_key_copy(&v->scratch, from) == -1)
		return NULL;
	if (afmt_key_seek(&v->scratch, log_id, e, e - v->scratch.epoch) == -1) {
		afmt_key_wipe(&v->scratch);
		return NULL;
	}
	return &v->scratch;
}

/* Seconds since the epoch of a record's ts ("YYYY-MM-DDTHH:MM:SS..."),
 * 0 when it does not read as one. */
static int64_t
afmt_ts_time(const char *ts)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1 || t < 0)
		return 0;
	return (int64_t)t;
}

/*
 * The latest epoch the chain can justify for record r, so that a line
 * claiming a far epoch costs no key work.  Every epoch ends with a
 * seal, a record of its own, so an epoch is below its seq.  After a
 * linked record, the epoch can only have moved on by one per seal
 * since: at most one per epoch_s of the time elapsed between that
 * record and now (its seals come from the epoch timer), plus
 * AFMT_EPOCH_SLACK for epochs ended early (stops, rotations).  The
 * seq a line claims is not evidence: the line is not verified yet.
 */
static uint64_t
afmt_vfy_reach(const struct afmt_vfy *v, const struct afmt_rec *r)
{
	uint64_t reach, elapsed = 0;
	int64_t now;

	if (r->seq == 0)
		return 0;
	if (!v->started)
		return r->seq - 1;
	if (v->last_time > 0 && (now = (int64_t)time(NULL)) > v->last_time)
		elapsed = (uint64_t)(now - v->last_time) /
		    (v->epoch_s ? v->epoch_s : 1);
	reach = v->epoch + 1 + AFMT_EPOCH_SLACK;
	reach = elapsed > UINT64_MAX - reach ? UINT64_MAX : reach + elapsed;
	return reach < r->seq - 1 ? reach : r->seq - 1;
}

/* Make the current key the key of epoch e. */
static void
afmt_vfy_set_epoch(struct afmt_vfy *v, uint64_t e)
{
	v->epoch = e;
	if (v->cur.set && v->cur.epoch == e)
		return;
	if (e == v->base.epoch) {
		/* afmt_vfy_key() answers with the base key itself. */
		afmt_key_wipe(&v->cur);
		return;
	}
	if (v->scratch.set && v->scratch.epoch == e) {
		struct afmt_key t = v->cur;
		v->cur = v->scratch;
		v->scratch = t;
		return;
	}
	if (!v->cur.set || v->cur.epoch > e) {
		if (afmt_key_copy(&v->cur, &v->base) == -1)
			return;
	}
	if (afmt_key_seek(&v->cur, v->log_id, e, AFMT_MAX_STEPS) == -1)
		afmt_key_wipe(&v->cur);
}

static void
afmt_vfy_push_hash(struct afmt_vfy *v, uint64_t seq,
    const unsigned char h[AFMT_HASH_LEN])
{
	uint64_t x = 0;
	size_t i, idx;

	if (v->hn == 0 && v->hcap == 0)
		v->hbase = seq;
	if (seq < v->hbase)
		return;
	idx = (size_t)(seq - v->hbase);
	if (idx > (size_t)1 << 30)
		return;
	if (idx >= v->hcap) {
		size_t ncap = v->hcap ? v->hcap : 1024;
		uint64_t *n;
		while (ncap <= idx)
			ncap *= 2;
		if ((n = realloc(v->hashes, ncap * sizeof(*n))) == NULL)
			return;
		memset(n + v->hcap, 0, (ncap - v->hcap) * sizeof(*n));
		v->hashes = n;
		v->hcap = ncap;
	}
	for (i = 0; i < 8; i++)
		x = x << 8 | h[i];
	v->hashes[idx] = x | 1;		/* never 0: 0 means "not seen" */
	if (idx >= v->hn)
		v->hn = idx + 1;
}

static bool
afmt_vfy_seen(const struct afmt_vfy *v, uint64_t seq,
    const unsigned char h[AFMT_HASH_LEN], bool *same)
{
	uint64_t x = 0;
	size_t i;

	if (seq < v->hbase || seq - v->hbase >= v->hn ||
	    v->hashes[seq - v->hbase] == 0)
		return false;
	for (i = 0; i < 8; i++)
		x = x << 8 | h[i];
	*same = v->hashes[seq - v->hbase] == (x | 1);
	return true;
}

static void
afmt_vfy_add_missing(struct afmt_vfy *v, uint64_t a, uint64_t b,
    uint64_t line, uint64_t off)
{
	struct afmt_range *n;

	if (v->nmiss == AFMT_MAX_MISSING) {
		afmt_report(v, AFMT_MISSING, a, b, v->file, line, off,
		    "records absent before this line");
		return;
	}
	if (v->nmiss == v->capmiss) {
		size_t ncap = v->capmiss ? v->capmiss * 2 : 16;
		if ((n = realloc(v->miss, ncap * sizeof(*n))) == NULL) {
			afmt_report(v, AFMT_MISSING, a, b, v->file, line, off,
			    "records absent before this line");
			return;
		}
		v->miss = n;
		v->capmiss = ncap;
	}
	n = &v->miss[v->nmiss++];
	n->a = a;
	n->b = b;
	n->file = v->file;
	n->line = line;
	n->offset = off;
}

/* A record that comes back later than its place was only reordered. */
static bool
afmt_vfy_take_missing(struct afmt_vfy *v, uint64_t s)
{
	size_t i;

	for (i = 0; i < v->nmiss; i++) {
		struct afmt_range *r = &v->miss[i];
		if (s < r->a || s > r->b)
			continue;
		if (r->a == r->b) {
			v->miss[i] = v->miss[--v->nmiss];
		} else if (s == r->a)
			r->a++;
		else if (s == r->b)
			r->b--;
		else {
			struct afmt_range tail = *r;
			tail.a = s + 1;
			r->b = s - 1;
			afmt_vfy_add_missing(v, tail.a, tail.b, tail.line,
			    tail.offset);
		}
		return true;
	}
	return false;
}

static void
afmt_vfy_bad_line(struct afmt_vfy *v, const char *line, size_t len,
    uint64_t off, bool parsed, uint64_t seq)
{
	if (v->nbad < AFMT_BAD_KEEP) {
		struct afmt_bad *b = &v->bad[v->nbad];
		b->file = v->file;
		b->line = v->lineno;
		b->offset = off;
		b->len = len;
		b->complete = parsed;
		b->seq = parsed ? seq : 0;
	}
	if (!parsed || len == 0 || line[len - 1] != '\n' ||
	    memchr(line, '\0', len) != NULL)
		v->bad_torn = true;
	v->nbad++;
	v->sum.mac_fail_lines++;
}

/* A good record arrived after a run of bad lines ending at seq s-1. */
static void
afmt_vfy_resolve_bad(struct afmt_vfy *v, uint64_t s, uint64_t line,
    uint64_t off)
{
	size_t i;

	if (v->nbad == 0) {
		if (s > v->exp)
			afmt_vfy_add_missing(v, v->exp, s - 1, line, off);
		return;
	}
	if (s == v->exp) {
		/* Nothing is absent from the chain: the bad lines were
		 * added to it. */
		for (i = 0; i < v->nbad && i < AFMT_BAD_KEEP; i++)
			afmt_report(v, AFMT_FORGED, 0, 0, v->bad[i].file,
			    v->bad[i].line, v->bad[i].offset,
			    "a line that is not part of the chain "
			    "(bad MAC, foreign key or log)");
	} else {
		afmt_report(v, AFMT_MODIFIED, v->exp, s - 1, v->bad[0].file,
		    v->bad[0].line, v->bad[0].offset,
		    "%zu line(s) in place of seq %llu..%llu fail verification",
		    v->nbad, (unsigned long long)v->exp,
		    (unsigned long long)(s - 1));
	}
	v->nbad = 0;
	v->bad_torn = false;
}

static void
afmt_vfy_resolve_jump(struct afmt_vfy *v, uint64_t next_epoch, bool at_end)
{
	if (!v->jump)
		return;
	v->jump = false;
	if (!at_end && next_epoch == v->jump_from) {
		/* The chain goes on in the old epoch: one record was
		 * re-MAC'd with a later epoch's key. */
		afmt_report(v, AFMT_EPOCH_VIOLATION, v->jump_seq, 0,
		    v->jump_file, v->jump_line, v->jump_off,
		    "record claims epoch %llu inside epoch %llu "
		    "(MAC'd with a later epoch's key)",
		    (unsigned long long)v->jump_to,
		    (unsigned long long)v->jump_from);
		return;
	}
	afmt_report(v, AFMT_SEAL_MISSING, v->jump_seq, 0, v->jump_file,
	    v->jump_line, v->jump_off,
	    "no seal for epoch %llu..%llu before this record (epoch %llu)",
	    (unsigned long long)v->jump_from,
	    (unsigned long long)(v->jump_to - 1),
	    (unsigned long long)v->jump_to);
	afmt_vfy_set_epoch(v, v->jump_to + (v->jump_seal ? 1 : 0));
	if (v->jump_seal) {
		v->sum.seals++;
		v->sum.unsealed = 0;
		v->sum.epoch_records = 0;
	}
}

/* A MAC-valid record whose seq is behind the chain. */
static void
afmt_vfy_old(struct afmt_vfy *v, const struct afmt_rec *r,
    const unsigned char h[AFMT_HASH_LEN], uint64_t off)
{
	bool same = false;

	if (afmt_vfy_take_missing(v, r->seq))
		afmt_report(v, AFMT_REORDERED, r->seq, 0, v->file, v->lineno,
		    off, "seq %llu appears after seq %llu",
		    (unsigned long long)r->seq,
		    (unsigned long long)(v->exp - 1));
	else if (afmt_vfy_seen(v, r->seq, h, &same) && same)
		afmt_report(v, AFMT_DUPLICATE, r->seq, 0, v->file, v->lineno,
		    off, "a second copy of seq %llu",
		    (unsigned long long)r->seq);
	else
		afmt_report(v, AFMT_FORGED, r->seq, 0, v->file, v->lineno, off,
		    "a second, different record for seq %llu with a valid MAC",
		    (unsigned long long)r->seq);
}

static void
afmt_vfy_accept(struct afmt_vfy *v, const struct afmt_rec *r,
    const unsigned char h[AFMT_HASH_LEN], uint64_t off)
{
	size_t i;
	bool seal = strcmp(r->type, "seal") == 0;

	v->exp = r->seq + 1;
	memcpy(v->head, h, AFMT_HASH_LEN);
	afmt_vfy_push_hash(v, r->seq, h);

	if (v->sum.records == 0) {
		v->sum.first_seq = r->seq;
		memcpy(v->sum.first_ts, r->ts, sizeof(r->ts));
		v->sum.chain_from_start = r->seq == 1;
	}
	v->sum.records++;
	v->sum.last_seq = r->seq;
	memcpy(v->sum.last_ts, r->ts, sizeof(r->ts));
	v->last_time = afmt_ts_time(r->ts);
	if (strcmp(r->type, "start") == 0) {
		uint64_t es = 0;
		if (afmt_field_u64(r->fields, r->flen, "epoch_s", &es) == 0 &&
		    es > 0)
			v->epoch_s = es;
	}
	v->sum.last_is_seal = false;

	if (!v->jump) {
		if (seal && r->epoch == v->epoch) {
			v->sum.seals++;
			v->sum.last_seal_seq = r->seq;
			memcpy(v->sum.last_seal_ts, r->ts, sizeof(r->ts));
			v->sum.unsealed = 0;
			v->sum.epoch_records = 0;
			v->sum.last_is_seal = true;
			afmt_vfy_set_epoch(v, v->epoch + 1);
		} else {
			if (v->sum.unsealed == 0)
				memcpy(v->sum.unsealed_from_ts, r->ts,
				    sizeof(r->ts));
			v->sum.unsealed++;
			v->sum.epoch_records++;
		}
	}
	afmt_idset_track(&v->open, r->type, r->fields, r->flen, r->seq);
	if (strcmp(r->type, "recover") == 0) {
		uint64_t bytes = 0;
		(void)afmt_field_u64(r->fields, r->flen, "bytes", &bytes);
		afmt_report(v, AFMT_RECOVER, r->seq, 0, v->file, v->lineno, off,
		    "the gateway cut a torn tail of %llu bytes",
		    (unsigned long long)bytes);
	}
	for (i = 0; i < v->nanchors; i++) {
		struct afmt_anchor *a = &v->anchors[i];
		if (a->seq != r->seq || a->checked)
			continue;
		a->checked = true;
		if (memcmp(a->head, h, AFMT_HASH_LEN) != 0)
			afmt_report(v, AFMT_FORK, r->seq, 0, v->file, v->lineno,
			    off, "seq %llu differs from the anchored head",
			    (unsigned long long)r->seq);
	}
	if (v->rcb)
		v->rcb(r, v->suspect, v->rcbarg);
}

/* First good record: set up the chain it begins. */
static void
afmt_vfy_begin(struct afmt_vfy *v, const struct afmt_rec *r)
{
	uint64_t last = 0;

	v->started = true;
	v->epoch = r->epoch;
	if (v->nbad > 0 && v->bad[0].complete && v->bad[0].seq < r->seq)
		v->exp = v->bad[0].seq;	/* the damaged line still says */
	else if (v->nbad > 0)
		v->exp = r->seq > v->nbad ? r->seq - v->nbad : 1;
	else if (r->seq == 1)
		v->exp = 1;
	else if (strcmp(r->type, "start") == 0 &&
	    afmt_field_u64(r->fields, r->flen, "last_seq", &last) == 0 &&
	    last + 1 == r->seq)
		v->exp = r->seq;	/* earlier files not given */
	else
		v->exp = 1;
	/* Whatever precedes the first record cannot be checked: take its
	 * prev as the head, except at the genesis. */
	if (v->exp == 1 && r->seq == 1)
		memset(v->head, 0, AFMT_HASH_LEN);
	else
		memcpy(v->head, r->prev, AFMT_HASH_LEN);
	v->hbase = v->exp;
}

void
afmt_vfy_line(struct afmt_vfy *v, const char *line, size_t len, uint64_t off)
{
	struct afmt_rec r;
	struct afmt_key *key = NULL;
	unsigned char h[AFMT_HASH_LEN];
	uint64_t gap, reach;
	bool parsed, first = false;

	v->lineno++;
	v->sum.lines++;
	parsed = afmt_parse(line, len, &r) == 0;
	if (parsed && (!v->have_log || strcmp(r.log_id, v->log_id) == 0) &&
	    r.epoch < r.seq) {
		reach = afmt_vfy_reach(v, &r);
		if (r.epoch > reach && v->started) {
			/* Reported now, with no key work: a file of such
			 * lines costs what reading it costs. */
			v->sum.mac_fail_lines++;
			afmt_report(v, AFMT_EPOCH_VIOLATION, 0, 0, v->file,
			    v->lineno, off, "a line claims epoch %llu, past "
			    "the epoch %llu the chain can reach; not part of "
			    "the chain", (unsigned long long)r.epoch,
			    (unsigned long long)reach);
			return;
		}
		key = afmt_vfy_key(v, r.epoch, r.log_id, reach);
	}
	if (key == NULL || afmt_check_mac(key, &r) == -1) {
		afmt_vfy_bad_line(v, line, len, off, parsed, r.seq);
		return;
	}
	if (afmt_sha256(line, len, h) == -1) {
		afmt_vfy_bad_line(v, line, len, off, parsed, r.seq);
		return;
	}
	if (!v->have_log) {
		memcpy(v->log_id, r.log_id, sizeof(v->log_id));
		v->have_log = true;
	}
	if (!v->started) {
		afmt_vfy_begin(v, &r);
		afmt_vfy_set_epoch(v, r.epoch);
		first = true;
	}
	if (r.seq < v->exp) {
		afmt_vfy_old(v, &r, h, off);
		return;
	}
	gap = r.seq - v->exp;
	afmt_vfy_resolve_bad(v, r.seq, v->lineno, off);

	if (v->jump)
		afmt_vfy_resolve_jump(v, r.epoch, false);

	if (gap == 0 && !first && memcmp(r.prev, v->head, AFMT_HASH_LEN) != 0 &&
	    !v->suspect)
		afmt_report(v, AFMT_MODIFIED, r.seq - 1, 0, v->file, v->lineno,
		    off, "the hash of seq %llu does not match the prev of "
		    "seq %llu", (unsigned long long)(r.seq - 1),
		    (unsigned long long)r.seq);
	if (first && r.seq == 1 && memcmp(r.prev, afmt_zero_hash,
	    AFMT_HASH_LEN) != 0)
		afmt_report(v, AFMT_FORGED, r.seq, 0, v->file, v->lineno, off,
		    "seq 1 does not begin a chain");
	v->suspect = false;

	if (r.epoch < v->epoch) {
		afmt_report(v, AFMT_EPOCH_VIOLATION, r.seq, 0, v->file,
		    v->lineno, off, "epoch %llu after epoch %llu%s",
		    (unsigned long long)r.epoch, (unsigned long long)v->epoch,
		    v->sum.last_is_seal ? " was sealed" : "");
		v->suspect = true;
		afmt_vfy_accept(v, &r, h, off);
		return;
	}
	if (r.epoch > v->epoch) {
		if (gap > 0 && r.epoch - v->epoch <= gap) {
			/* The absent records may have held the seals. */
			afmt_vfy_set_epoch(v, r.epoch);
		} else {
			v->jump = true;
			v->jump_seq = r.seq;
			v->jump_from = v->epoch;
			v->jump_to = r.epoch;
			v->jump_file = v->file;
			v->jump_line = v->lineno;
			v->jump_off = off;
			v->jump_seal = strcmp(r.type, "seal") == 0;
			v->suspect = true;
		}
	}
	afmt_vfy_accept(v, &r, h, off);
}

void
afmt_vfy_buffer(struct afmt_vfy *v, const char *buf, size_t len)
{
	struct afmt_lines it;
	const char *line;
	size_t n, off;

	afmt_lines_init(&it, buf, len);
	while (afmt_lines_next(&it, &line, &n, &off))
		afmt_vfy_line(v, line, n, off);
}

void
afmt_vfy_finish(struct afmt_vfy *v)
{
	size_t i;
	size_t idx = 0;
	const struct afmt_open *o;
	uint64_t last = v->started ? v->exp - 1 : 0;

	if (v->nbad > 0) {
		uint64_t s = v->started ? v->exp : 0;
		if (v->repair) {
			v->sum.torn = true;
			v->sum.torn_offset = v->bad[0].offset;
			v->sum.torn_seq = s;
		} else if (v->bad_torn || !v->started) {
			afmt_report(v, AFMT_TORN_TAIL, s, 0, v->bad[0].file,
			    v->bad[0].line, v->bad[0].offset,
			    "the file does not end in a complete record "
			    "(%zu bad line(s) from offset %llu)", v->nbad,
			    (unsigned long long)v->bad[0].offset);
		} else {
			afmt_report(v, AFMT_MODIFIED, s, s + v->nbad - 1,
			    v->bad[0].file, v->bad[0].line, v->bad[0].offset,
			    "%zu last line(s) fail verification", v->nbad);
		}
		v->nbad = 0;
	}
	afmt_vfy_resolve_jump(v, 0, true);
	for (i = 0; i < v->nmiss; i++)
		afmt_report(v, AFMT_MISSING, v->miss[i].a, v->miss[i].b,
		    v->miss[i].file, v->miss[i].line, v->miss[i].offset,
		    "seq %llu..%llu absent from the chain",
		    (unsigned long long)v->miss[i].a,
		    (unsigned long long)v->miss[i].b);
	v->nmiss = 0;
	for (i = 0; i < v->nanchors; i++) {
		struct afmt_anchor *a = &v->anchors[i];
		if (a->checked)
			continue;
		if (a->seq > last)
			afmt_report(v, AFMT_TRUNCATED, a->seq, 0, v->file, 0, 0,
			    "the log ends at seq %llu, before the anchored "
			    "seq %llu", (unsigned long long)last,
			    (unsigned long long)a->seq);
		else
			v->sum.anchors_unchecked++;
	}
	while ((o = afmt_idset_next(&v->open, &idx)) != NULL) {
		struct afmt_finding f;
		memset(&f, 0, sizeof(f));
		f.kind = AFMT_OPEN;
		f.seq = f.seq_end = o->seq;
		f.file = v->file;
		snprintf(f.id, sizeof(f.id), "%s", o->id);
		snprintf(f.detail, sizeof(f.detail),
		    "request %s (caller %s) has no outcome", o->id, o->caller);
		v->sum.infos++;
		if (v->cb)
			v->cb(&f, v->cbarg);
	}
	memcpy(v->sum.head, v->head, AFMT_HASH_LEN);
	memcpy(v->sum.log_id, v->log_id, sizeof(v->log_id));
	v->sum.epoch = v->epoch;
}

void
afmt_vfy_summary(const struct afmt_vfy *v, struct afmt_summary *s)
{
	*s = v->sum;
	memcpy(s->head, v->head, AFMT_HASH_LEN);
	memcpy(s->log_id, v->log_id, sizeof(v->log_id));
	s->epoch = v->epoch;
	if (v->started && s->records == 0)
		s->last_seq = v->exp - 1;
}

const struct afmt_idset *
afmt_vfy_open(const struct afmt_vfy *v)
{
	return &v->open;
}
