/*
 * util.c: small helpers shared by the daemon, the audit tool and tests.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

void
hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *hex, unsigned char *out, size_t n)
{
	size_t i;

	if (strlen(hex) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		int hi = hexval((unsigned char)hex[2 * i]);
		int lo = hexval((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the
 * algorithm up again (a locked property query) on every digest. */
static pthread_once_t	 sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD		*sha256_md;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int
sha256(const void *buf, size_t len, unsigned char *out)
{
	unsigned int n = 0;

	if (pthread_once(&sha256_once, sha256_fetch) != 0 ||
	    sha256_md == NULL ||
	    !EVP_Digest(buf, len, out, &n, sha256_md, NULL) ||
	    n != SHA256_LEN)
		return -1;
	return 0;
}

/*
 * Check an open file the way its use asks (RF_* flags), on the
 * descriptor itself so that what is checked is what is read: no
 * window between a stat and the open for a rename or a symlink swap.
 */
static int
read_file_check(int fd, const char *path, int flags, char *err,
    size_t errlen)
{
	struct stat st;
	uid_t me = geteuid();

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((flags & (RF_SECRET | RF_CONFIG)) && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if ((flags & RF_SECRET) && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(err, errlen, "%s: permissions %03o are too open; "
		    "a secret must not be group- or world-accessible "
		    "(chmod 600)", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	if ((flags & RF_SECRET) && st.st_uid != me) {
		snprintf(err, errlen, "%s: owned by uid %lu, not by the user "
		    "this runs as (uid %lu): chown it", path,
		    (unsigned long)st.st_uid, (unsigned long)me);
		return -1;
	}
	if ((flags & RF_CONFIG) && (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen, "%s: permissions %03o let others than "
		    "its owner change it (it can run commands as this user): "
		    "chmod go-w", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	if ((flags & RF_CONFIG) && st.st_uid != 0 && st.st_uid != me) {
		snprintf(err, errlen, "%s: owned by uid %lu, neither root nor "
		    "the user this runs as (uid %lu): chown it", path,
		    (unsigned long)st.st_uid, (unsigned long)me);
		return -1;
	}
	return 0;
}

int
read_file(const char *path, size_t cap, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	return read_file_ex(path, cap, 0, out, outlen, err, errlen);
}

int
read_file_ex(const char *path, size_t cap, int flags, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC |
	    (flags & RF_NOFOLLOW ? O_NOFOLLOW : 0))) == -1) {
		if (errno == ELOOP && (flags & RF_NOFOLLOW))
			snprintf(err, errlen, "%s: a symbolic link; refusing to "
			    "follow it", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (read_file_check(fd, path, flags, err, errlen) == -1) {
		close(fd);
		return -1;
	}
	if ((buf = malloc(cap + 2)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	/* Read up to cap+1 bytes so that a file of exactly cap passes and
	 * one byte more is detected. */
	while (len < cap + 1) {
		r = read(fd, buf + len, cap + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > cap) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, cap);
		goto fail;
	}
	buf[len] = '\0';
	close(fd);
	*out = buf;
	if (outlen)
		*outlen = len;
	return 0;
fail:
	if (buf)
		secret_free(buf, cap + 2);
	close(fd);
	return -1;
}

int
read_secret_file(const char *path, size_t cap, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	return read_secret_file_ex(path, cap, 0, out, outlen, err, errlen);
}

int
read_secret_file_ex(const char *path, size_t cap, int flags, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	char *buf;
	size_t len, start = 0;

	if (read_file_ex(path, cap, flags | RF_SECRET, &buf, &len, err,
	    errlen) == -1)
		return -1;
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	while (start < len && isspace((unsigned char)buf[start]))
		start++;
	if (start > 0) {
		memmove(buf, buf + start, len - start + 1);
		OPENSSL_cleanse(buf + len - start + 1, start);
		len -= start;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

char *
path_resolve(const char *dir, const char *path)
{
	char *out;
	size_t n;

	if (path == NULL)
		return NULL;
	if (path[0] == '/' || dir == NULL || dir[0] == '\0')
		return strdup(path);
	n = strlen(dir) + strlen(path) + 2;
	if ((out = malloc(n)) == NULL)
		return NULL;
	snprintf(out, n, "%s/%s", dir, path);
	return out;
}

uint64_t
now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
now_mono_ms(void)
{
	return now_mono_ns() / 1000000ull;
}

void
now_iso8601(char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	/* The formatted second, per thread: gmtime_r and strftime cost
	 * more than the rest of an access-log line. */
	static __thread time_t	last_sec = -1;
	static __thread char	last_base[24];
	long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != last_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(last_base, sizeof(last_base), "%Y-%m-%dT%H:%M:%S",
		    &tm);
		last_sec = ts.tv_sec;
	}
	ms = ts.tv_nsec / 1000000L;
	memcpy(base, last_base, sizeof(base));
	if (outlen >= 25 && strlen(base) == 19) {
		memcpy(out, base, 19);
		out[19] = '.';
		out[20] = (char)('0' + ms / 100);
		out[21] = (char)('0' + ms / 10 % 10);
		out[22] = (char)('0' + ms % 10);
		out[23] = 'Z';
		out[24] = '\0';
	} else
		snprintf(out, outlen, "%s.%03ldZ", base, ms);
}

size_t
fmt_ulong(char out[FMT_INT_LEN], unsigned long long v)
{
	char t[FMT_INT_LEN], *p = t + sizeof(t);
	size_t n;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	n = (size_t)(t + sizeof(t) - p);
	memcpy(out, p, n);
	return n;
}

size_t
fmt_long(char out[FMT_INT_LEN], long long v)
{
	char t[FMT_INT_LEN];
	size_t n;

	if (v >= 0)
		return fmt_ulong(out, (unsigned long long)v);
	n = fmt_ulong(t, 0ULL - (unsigned long long)v);	/* at most 19 */
	out[0] = '-';
	memcpy(out + 1, t, n);
	return n + 1;
}

/*
 * "%.3f" without printf, for the millisecond figures every request
 * writes five times (audit outcome, access log): printf's floating
 * point path cost more than the rest of those lines.  It must be what
 * printf writes: the exact binary value of v rounded to the nearest
 * thousandth, ties to even.  x = v * 1000 is rounded, so the product's
 * exact error e = v * 1000 - x is taken too (Dekker's product; 1000
 * needs no split), and the rounding decided on x + e.  For x < 2^40 an
 * ulp of x is at most 2^-12, so the fraction f of x and 0.5 are whole
 * multiples of it while |e| is at most half of one: f - 0.5 decides
 * unless it is 0, and then e does (e == 0: a true tie).  Negative,
 * huge and non-finite values are left to snprintf.
 */
int
fmt_ms3(char out[FMT_MS3_LEN], double v)
{
	double x, hi, lo, e, f, d;
	unsigned long long n;
	size_t len;
	unsigned frac;

	if (!(v >= 0 && v < 1099511627.776) || signbit(v))	/* 2^40/1000 */
		return snprintf(out, FMT_MS3_LEN, "%.3f", v);
	x = v * 1000.0;
	hi = v * 134217729.0;			/* 2^27 + 1: Veltkamp split */
	hi = hi - (hi - v);
	lo = v - hi;
	e = (hi * 1000.0 - x) + lo * 1000.0;
	n = (unsigned long long)x;		/* floor: x >= 0 */
	f = x - (double)n;			/* exact */
	if (f >= 0.25) {
		d = f - 0.5;			/* exact (Sterbenz) */
		if (d > 0 || (d == 0 && (e > 0 || (e == 0 && (n & 1)))))
			n++;
	}
	frac = (unsigned)(n % 1000);
	len = fmt_ulong(out, n / 1000);		/* at most 10 digits */
	out[len++] = '.';
	out[len++] = (char)('0' + frac / 100);
	out[len++] = (char)('0' + frac / 10 % 10);
	out[len++] = (char)('0' + frac % 10);
	out[len] = '\0';
	return (int)len;
}

int
random_id(char out[ID_BUF])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	hex_encode(b, sizeof(b), out);
	return 0;
}

/*
 * Request ids: 32 hex digits, unique, without asking the DRBG for each
 * (RAND_bytes takes a lock and checks getpid() on every call).  Each
 * thread draws a random 64-bit prefix, key and counter start once; the
 * id is the prefix and a keyed bijective mix of the counter, so ids
 * never repeat within a thread and threads differ by their prefixes.
 * Ids are not secrets (every caller sees its own, logs keep them); the
 * mix only keeps them from reading as a count of the gateway's traffic.
 */
static __thread uint64_t	rid_prefix, rid_key, rid_count;
static __thread int		rid_ready;

static uint64_t
rid_mix(uint64_t x)	/* splitmix64's finalizer: a bijection */
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

int
request_id(char out[ID_BUF])
{
	unsigned char b[16];
	uint64_t v;
	int i;

	if (!rid_ready) {
		uint64_t seed[3];
		if (RAND_bytes((unsigned char *)seed, sizeof(seed)) != 1)
			return -1;
		rid_prefix = seed[0];
		rid_key = seed[1];
		rid_count = seed[2];
		rid_ready = 1;
	}
	v = rid_mix(++rid_count ^ rid_key);
	for (i = 0; i < 8; i++) {
		b[i] = (unsigned char)(rid_prefix >> (56 - 8 * i));
		b[8 + i] = (unsigned char)(v >> (56 - 8 * i));
	}
	hex_encode(b, sizeof(b), out);
	return 0;
}

void
secret_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

int
json_quote(const char *s, char *buf, size_t buflen)
{
	size_t o = 0;
	const unsigned char *p;

#define PUT(c) do { if (o + 1 >= buflen) return -1; buf[o++] = (c); } while (0)
	PUT('"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			PUT('\\');
			PUT((char)*p);
		} else if (*p < 0x20 || *p == 0x7f) {
			if (o + 7 >= buflen)
				return -1;
			o += (size_t)snprintf(buf + o, buflen - o, "\\u%04x",
			    *p);
		} else
			PUT((char)*p);
	}
	PUT('"');
#undef PUT
	buf[o] = '\0';
	return (int)o;
}
