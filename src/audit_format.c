/*
 * audit_format.c: the audit record format, the HMAC chain and the key
 * schedule, shared by the gateway and cmgate-audit: the keys, building
 * a line, cutting a buffer into lines, parsing a line and reading the
 * members of its fields.
 *
 * Everything here works on the exact bytes of a line: the MAC and the
 * chain hash are computed over what is on disk, and nothing is ever
 * re-serialized.  See docs/audit.md.  The verifier (audit_verify.c)
 * and the set of open requests (audit_idset.c) are built on this.
 */
#include "audit_format.h"
#include "audit_format_int.h"
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

const char *
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

const char *
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
int
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
