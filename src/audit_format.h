/*
 * audit_format.h: the audit record format, the HMAC chain, the key
 * schedule (audit_format.c), the set of open requests (audit_idset.c)
 * and the verifier (audit_verify.c).  Shared by the gateway (audit*.c),
 * which writes records with it, and by cmgate-audit, which reads them
 * back through the same code.  See docs/audit.md for the format.
 *
 * A record is one line:
 *
 *   {"v":1,"log":"<32 hex>","seq":N,"epoch":E,"ts":"<ISO8601 ms Z>",
 *    "type":"<type>"[,<fields>],"prev":"<64 hex>","mac":"<64 hex>"}\n
 *
 * mac = HMAC-SHA256(M_e, "CMAUDIT1" || line[0 .. len-75]), where the
 * last 75 bytes are always ,"mac":"<64 hex>"}\n and M_e is the MAC key
 * of epoch e.  prev = SHA-256 of the whole previous line (with its
 * newline); the first record of a log has 64 zeros.
 */
#ifndef CMGATE_AUDIT_FORMAT_H
#define CMGATE_AUDIT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AFMT_VERSION	1
#define AFMT_KEY_LEN	32
#define AFMT_HASH_LEN	32
#define AFMT_LOGID_HEX	32		/* 16 random bytes as hex */
#define AFMT_SUFFIX_LEN	75		/* ,"mac":"<64>"}\n */
#define AFMT_PREV_LEN	74		/* ,"prev":"<64>" */
#define AFMT_MAX_RECORD	(64 * 1024)	/* a longer line is refused */
#define AFMT_MAX_TYPE	16
/* Bytes of a line other than the type and the fields, with room for
 * the widest numbers; used to size buffers. */
#define AFMT_OVERHEAD	320

/* ------------------------------------------------------------------ */
/* Keys */

/*
 * The key of one epoch.  K_e is kept only to derive K_(e+1); records
 * are MAC'd with M_e = HMAC(K_e, "mac"), held in a reusable EVP_MAC_CTX.
 *   K_(e+1) = HMAC(K_e, "evolve" || log_id (32 ASCII hex) || be64(e+1))
 */
struct afmt_key {
	uint64_t	 epoch;
	unsigned char	 k[AFMT_KEY_LEN];
	void		*ctx;		/* EVP_MAC_CTX keyed with M_e */
	bool		 set;
};

/* Fetch HMAC/SHA-256 once per process; safe to call repeatedly. */
int	afmt_init(void);

/* Set key to K = k at epoch (k is copied).  0 or -1. */
int	afmt_key_set(struct afmt_key *, const unsigned char *k,
	    uint64_t epoch);
/* Step to the next epoch; the old K is wiped. */
int	afmt_key_evolve(struct afmt_key *, const char *log_id);
/* Step forward to a later epoch (at most max_steps steps). */
int	afmt_key_seek(struct afmt_key *, const char *log_id, uint64_t epoch,
	    uint64_t max_steps);
int	afmt_key_copy(struct afmt_key *dst, const struct afmt_key *src);
void	afmt_key_wipe(struct afmt_key *);

/* HMAC-SHA256 one-shot through the fetched EVP_MAC (no reuse). */
int	afmt_hmac(const unsigned char *key, size_t keylen, const void *a,
	    size_t alen, const void *b, size_t blen,
	    unsigned char out[AFMT_HASH_LEN]);
/* The body-digest key: HMAC(K0, "body-digest" || log_id). */
int	afmt_body_key(const unsigned char k0[AFMT_KEY_LEN], const char *log_id,
	    unsigned char out[AFMT_KEY_LEN]);
/* SHA-256 with the pre-fetched digest. */
int	afmt_sha256(const void *, size_t, unsigned char out[AFMT_HASH_LEN]);
/*
 * K0 from its file, as cmgate-audit keygen makes it: 64 hex digits.
 * The gateway (a new log, cmgate -t) and cmgate-audit read it here
 * alike.  0, or -1 with the reason (naming path) in err.
 */
int	afmt_read_k0(const char *path, unsigned char k0[AFMT_KEY_LEN],
	    char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Writing */

struct afmt_head {
	const char	*log_id;	/* 32 hex */
	uint64_t	 seq;
	uint64_t	 epoch;
	const char	*ts;		/* now_iso8601() */
	const char	*type;
};

/*
 * Write one complete line (with mac and newline) into buf.  fields is
 * a fragment of JSON members without surrounding commas, or "" (flen 0).
 * key must be at h->epoch.  Returns the line length, or 0 when it does
 * not fit in cap or exceeds AFMT_MAX_RECORD.  head (may be NULL)
 * receives SHA-256 of the line, mac (may be NULL) its MAC.
 */
size_t	afmt_build(char *buf, size_t cap, const struct afmt_head *,
	    const char *fields, size_t flen,
	    const unsigned char prev[AFMT_HASH_LEN], struct afmt_key *,
	    unsigned char head[AFMT_HASH_LEN], unsigned char mac[AFMT_HASH_LEN]);

/* ------------------------------------------------------------------ */
/* Lines */

/*
 * The lines of a buffer, one at a time.  Every reader of a log (the
 * gateway's recovery, the verifier, cmgate-audit) cuts it here, so a
 * line is the same thing to all of them: its bytes up to and with a
 * newline, or the rest of the buffer when no newline follows (a torn
 * tail, or a window that ends inside a line).
 */
struct afmt_lines {
	const char	*buf;
	size_t		 len;
	size_t		 off;		/* of the next line */
};

void	afmt_lines_init(struct afmt_lines *, const char *buf, size_t len);
/* The next line: true with line, n (its newline included when there
 * is one) and off (its offset in the buffer); false at the end. */
bool	afmt_lines_next(struct afmt_lines *, const char **line, size_t *n,
	    size_t *off);

/* ------------------------------------------------------------------ */
/* Reading */

struct afmt_rec {
	const char	*line;
	size_t		 len;		/* with the newline */
	char		 log_id[AFMT_LOGID_HEX + 1];
	uint64_t	 seq;
	uint64_t	 epoch;
	char		 ts[32];
	char		 type[AFMT_MAX_TYPE + 1];
	const char	*fields;	/* inside line; not NUL-terminated */
	size_t		 flen;
	unsigned char	 prev[AFMT_HASH_LEN];
	unsigned char	 mac[AFMT_HASH_LEN];
};

/*
 * Parse the fixed parts of a line (len includes the newline, which
 * must be there).  Strict: exact key order, lower-case hex, no
 * leading zeros.  0 or -1; no MAC check.
 */
int	afmt_parse(const char *line, size_t len, struct afmt_rec *);
/* 0 when the MAC of rec verifies under key (at rec->epoch). */
int	afmt_check_mac(struct afmt_key *, const struct afmt_rec *);

/*
 * Copy the raw JSON value of member name from the fields into out
 * (a string keeps its quotes and escapes).  0 found, -1 not found or
 * too long.  Only top-level members are seen.
 */
int	afmt_field_raw(const char *fields, size_t flen, const char *name,
	    char *out, size_t outlen);
/* The value of a string member without quotes, if it has no escapes. */
int	afmt_field_str(const char *fields, size_t flen, const char *name,
	    char *out, size_t outlen);
int	afmt_field_u64(const char *fields, size_t flen, const char *name,
	    uint64_t *out);
/*
 * All members of interest in one pass (for readers of many records):
 * vs[i]/vl[i] get the raw value span of names[i] inside fields, or NULL
 * and 0 when absent.  0, or -1 when the fields do not scan (spans found
 * before the fault are kept).
 */
int	afmt_fields_split(const char *fields, size_t flen,
	    const char *const *names, size_t n, const char **vs, size_t *vl);

/* ------------------------------------------------------------------ */
/* A set of request ids (open requests): audit_idset.c */

struct afmt_open {
	char		 id[65];	/* "" = free slot */
	char		 caller[72];	/* raw JSON value, "null" if unknown */
	uint64_t	 seq;		/* of the request record */
	bool		 tomb;
};

struct afmt_idset {
	struct afmt_open *v;
	size_t		  cap, n, used;
};

int	afmt_idset_add(struct afmt_idset *, const char *id,
	    const char *caller, uint64_t seq);
int	afmt_idset_del(struct afmt_idset *, const char *id);
/* Visit live entries in no particular order; idx starts at 0. */
const struct afmt_open *afmt_idset_next(const struct afmt_idset *,
	    size_t *idx);
void	afmt_idset_free(struct afmt_idset *);
/*
 * Track a record of type with its fields, number seq: request adds,
 * outcome removes, the "open" list of a start or carry record adds.
 * The one tracker of open requests: the writer follows what it
 * writes, recovery what it reads back, the verifier what verified.
 */
void	afmt_idset_track(struct afmt_idset *, const char *type,
	    const char *fields, size_t flen, uint64_t seq);

/* ------------------------------------------------------------------ */
/* Verifying: audit_verify.c */

enum afmt_kind {
	AFMT_MODIFIED, AFMT_MISSING, AFMT_REORDERED, AFMT_DUPLICATE,
	AFMT_FORGED, AFMT_SEAL_MISSING, AFMT_EPOCH_VIOLATION,
	AFMT_TORN_TAIL, AFMT_TRUNCATED, AFMT_FORK,
	/* information, not failures */
	AFMT_OPEN, AFMT_RECOVER,
};
const char *afmt_kind_name(enum afmt_kind);
bool	afmt_kind_is_failure(enum afmt_kind);

struct afmt_finding {
	enum afmt_kind	 kind;
	uint64_t	 seq, seq_end;	/* 0 when unknown; end == seq for one */
	const char	*file;		/* as given to afmt_vfy_file() */
	uint64_t	 line;		/* 1-based, 0 when not tied to a line */
	uint64_t	 offset;
	char		 id[65];	/* request id for OPEN */
	char		 detail[200];
};

typedef void (*afmt_finding_cb)(const struct afmt_finding *, void *arg);
/*
 * Called for each record that verified (MAC under its epoch's key) and
 * took its place in the chain, after the findings it raised so far.
 * suspect is true when a finding names it already or may still name it
 * (an epoch that went back or jumped); a consumer that counts activity
 * skips those.  A record may still be named after this call by the
 * next one (its hash does not match the next prev: MODIFIED seq=N), so
 * a careful consumer holds each record until the next one arrives.
 * rec and its line are valid only during the call.
 */
typedef void (*afmt_record_cb)(const struct afmt_rec *, bool suspect,
    void *arg);

struct afmt_vfy;

/*
 * A verifier fed line by line.  key is the key of epoch key_epoch
 * (K0 at 0 for an auditor); later epochs are derived from it.
 */
struct afmt_vfy	*afmt_vfy_new(const unsigned char key[AFMT_KEY_LEN],
		    uint64_t key_epoch, afmt_finding_cb, void *arg);
/* Continue a known chain: the next record is seq, linked to head, in
 * epoch, of log log_id (the gateway's tail check). */
void		 afmt_vfy_expect(struct afmt_vfy *, uint64_t seq,
		    const unsigned char head[AFMT_HASH_LEN], uint64_t epoch,
		    const char *log_id);
/* An externally kept head: the record seq must hash to head. */
int		 afmt_vfy_anchor(struct afmt_vfy *, uint64_t seq,
		    const unsigned char head[AFMT_HASH_LEN]);
/* In repair mode a bad run at the very end is not reported: it is
 * left for the caller (afmt_vfy_torn_offset) to cut. */
void		 afmt_vfy_repair_mode(struct afmt_vfy *, bool);
/* See each verified record as it is accepted (NULL: none). */
void		 afmt_vfy_on_record(struct afmt_vfy *, afmt_record_cb,
		    void *arg);
void		 afmt_vfy_file(struct afmt_vfy *, const char *name);
/* One line as read, len with its newline when there is one. */
void		 afmt_vfy_line(struct afmt_vfy *, const char *line, size_t len,
		    uint64_t offset);
/* Feed a whole buffer (one file) line by line. */
void		 afmt_vfy_buffer(struct afmt_vfy *, const char *buf, size_t len);
/* End of input: flushes pending findings, checks anchors, OPEN. */
void		 afmt_vfy_finish(struct afmt_vfy *);

struct afmt_summary {
	uint64_t	 records;	/* lines that verified and linked */
	uint64_t	 lines;
	uint64_t	 first_seq, last_seq;
	char		 first_ts[32], last_ts[32];
	char		 log_id[AFMT_LOGID_HEX + 1];
	unsigned char	 head[AFMT_HASH_LEN];	/* of last_seq */
	uint64_t	 epoch;		/* current epoch after the last record */
	uint64_t	 seals;
	uint64_t	 last_seal_seq;	/* 0: none */
	char		 last_seal_ts[32];
	uint64_t	 unsealed;	/* records after the last seal */
	char		 unsealed_from_ts[32];
	uint64_t	 epoch_records;	/* records in the current epoch */
	uint64_t	 failures, infos;
	uint64_t	 mac_fail_lines; /* lines whose MAC did not verify */
	bool		 chain_from_start;	/* began at seq 1 */
	bool		 torn;		/* repair mode: bad run at the end */
	uint64_t	 torn_offset;	/* file offset where it begins */
	uint64_t	 torn_seq;
	uint64_t	 anchors_unchecked;
	bool		 last_is_seal;
};
void		 afmt_vfy_summary(const struct afmt_vfy *, struct afmt_summary *);
/* Open requests after finish (borrowed). */
const struct afmt_idset *afmt_vfy_open(const struct afmt_vfy *);
void		 afmt_vfy_free(struct afmt_vfy *);

#endif
