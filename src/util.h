/*
 * util.h: small helpers shared by the daemon, the audit tool and tests.
 */
#ifndef CMGATE_UTIL_H
#define CMGATE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SHA256_LEN 32

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void		 hex_encode(const unsigned char *in, size_t n, char *out);
/* Decode exactly n bytes from 2n hex chars; -1 on bad input. */
int		 hex_decode(const char *hex, unsigned char *out, size_t n);

/* SHA-256 of buf into out[SHA256_LEN]; 0 or -1. */
int		 sha256(const void *buf, size_t len, unsigned char *out);

/*
 * Read a whole file (at most cap bytes; larger is an error) into a
 * NUL-terminated malloc'd buffer.  -1 with a message in err.
 */
int		 read_file(const char *path, size_t cap, char **out,
		    size_t *outlen, char *err, size_t errlen);

/* Checks read_file_ex makes on the open descriptor (fstat). */
#define RF_SECRET	0x1	/* regular, no group/other bits, owned by
				   the effective user */
#define RF_CONFIG	0x2	/* regular, not group/other-writable, owned
				   by root or the effective user (OpenSSH's
				   StrictModes) */
#define RF_NOFOLLOW	0x4	/* refuse a symbolic link (O_NOFOLLOW) */
int		 read_file_ex(const char *path, size_t cap, int flags,
		    char **out, size_t *outlen, char *err, size_t errlen);

/*
 * Read a secret file: refuses it when group- or world-accessible or
 * owned by another user (as OpenSSH does for private keys), checked on
 * the open descriptor; trims surrounding whitespace.  The _ex form adds
 * RF_* flags (RF_NOFOLLOW).
 */
int		 read_secret_file(const char *path, size_t cap, char **out,
		    size_t *outlen, char *err, size_t errlen);
int		 read_secret_file_ex(const char *path, size_t cap, int flags,
		    char **out, size_t *outlen, char *err, size_t errlen);

/* PATH when absolute, else DIR/PATH; malloc'd. */
char		*path_resolve(const char *dir, const char *path);

/* Monotonic milliseconds / nanoseconds. */
uint64_t	 now_mono_ms(void);
uint64_t	 now_mono_ns(void);
/* UTC wall clock as "2026-11-26T19:09:26.123Z" into out[32]. */
void		 now_iso8601(char *out, size_t outlen);
/* v with three decimals, byte for byte as printf's "%.3f" writes it,
 * into out (FMT_MS3_LEN bytes); returns the length. */
/* v in decimal into out (FMT_INT_LEN bytes, no NUL), as %llu and %lld
 * write it; returns the length.  For the hot path (issue 17). */
#define FMT_INT_LEN	24
size_t		 fmt_ulong(char out[FMT_INT_LEN], unsigned long long v);
size_t		 fmt_long(char out[FMT_INT_LEN], long long v);
#define FMT_MS3_LEN	32
int		 fmt_ms3(char out[FMT_MS3_LEN], double v);

/* A request id or a random id: 32 hex digits and the NUL. */
#define ID_BUF	33

/* A random 32-char lower-case hex id (16 bytes from the CSPRNG). */
int		 random_id(char out[ID_BUF]);
/* A request id (32 hex digits): unique, cheap, not from the DRBG per
 * call, not a secret; see util.c. */
int		 request_id(char out[ID_BUF]);

/* Wipe and free a secret. */
void		 secret_free(void *p, size_t len);

/* Append s to a JSON string literal (with quotes) into buf; returns
 * the length written or -1 if it does not fit.  For fixed fields. */
int		 json_quote(const char *s, char *buf, size_t buflen);

#endif
