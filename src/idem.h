/*
 * idem.h: Idempotency-Key support (the IETF httpapi draft "The
 * Idempotency-Key HTTP Header Field", with Stripe's behaviour).
 *
 * A key is scoped per caller: the store's key is the caller's name, a
 * NUL, and the Idempotency-Key.  Two kinds of state:
 *
 *  - in flight: memory only, one claim per key, shared by all loops
 *    under a mutex.  Claiming is synchronous and never touches the
 *    disk, so a duplicate that arrives while the first is in flight is
 *    turned away at once (409), race-free, however many arrive.
 *  - stored (completed / outcome unknown): an LMDB environment (a
 *    folder holding data.mdb and lock.mdb, both 0600).  Every LMDB
 *    transaction runs on one store thread; jobs go to it and their
 *    results come back on the submitting loop through a port.h port
 *    (struct idem_port), a loop pass's jobs in one hand-off.  A
 *    store is durable (LMDB commit: fdatasync) before its callback
 *    runs.  Writes queued together share one commit.
 *
 * A claim is held from the first sight of a key until the request ends.
 * When the outcome is stored, the claim leaves the in-flight set right
 * after the commit, so a later lookup always finds the stored record.
 * Expired records are purged on the store thread in bounded batches.
 */
#ifndef CMGATE_IDEM_H
#define CMGATE_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct config;
struct event_base;
struct idem;
struct idem_port;
struct idem_claim;

#define IDEM_KEY_MAX	255	/* characters of an Idempotency-Key */
/* A key as the store holds it: the caller's key, or for routes other
 * than individuals.create "<route>/<id>[/<id>]" 0x1f key (request.c);
 * with the caller (64) it stays under LMDB's 511-byte key limit. */
#define IDEM_SCOPED_KEY_MAX	(IDEM_KEY_MAX + 160)
#define IDEM_DIGEST_LEN	32	/* SHA-256 of the normalized body */

/* Stored states (in flight is never stored). */
enum idem_state {
	IDEM_COMPLETED = 1,	/* the response is replayed */
	IDEM_UNKNOWN = 2,	/* sent, no answer: a retry gets 409 */
};

/* What idem_begin() found in the in-flight set. */
enum idem_begin_result {
	IDEM_NEW,		/* claimed: go on with idem_lookup() */
	IDEM_IN_FLIGHT,		/* same key, same body, still running */
	IDEM_IN_FLIGHT_OTHER,	/* same key, another body, still running */
	IDEM_DOWN,		/* the store has failed: fail closed */
};

/* A stored record as a lookup returns it (valid during the callback). */
struct idem_record {
	enum idem_state	 state;
	int		 status;
	uint64_t	 created_ms, expires_ms;	/* Unix epoch ms */
	unsigned char	 digest[IDEM_DIGEST_LEN];
	char		 request_id[ID_BUF];	/* the original request */
	const char	*content_type;		/* "" when none */
	const char	*body;
	size_t		 body_len;
};

/* found: 1 with rec, 0 (none, or expired), -1 the store failed,
 * IDEM_OVER_QUOTA: none, and the caller already holds its cap of keys. */
#define IDEM_OVER_QUOTA	(-2)
typedef void (*idem_lookup_cb)(int found, const struct idem_record *rec,
		    void *arg);
/* ok: the record is durable (false: not stored; the store is failed). */
typedef void (*idem_store_cb)(bool ok, void *arg);

/*
 * Parse an Idempotency-Key header value: 1..255 printable ASCII
 * (0x20..0x7e; the draft's quoted sf-string form "..." is unwrapped, with
 * \" and \\ escapes).  Writes the key (NUL-terminated) into out, which
 * must hold IDEM_KEY_MAX + 1 bytes.  Returns its length or -1.
 */
int	idem_parse_key(const char *value, char *out);

/*
 * Open (or create: a folder 0700, files 0600) the store at
 * cfg->idempotency.path and start the store thread.  Refuses a second
 * process on the same folder and a data file that others may read.
 * NULL with a message in err.
 */
struct idem	*idem_open(const struct config *, char *err, size_t errlen);
/*
 * Check the store at path before anything maps it: the data file's
 * header against its size (in this process), then a full read of every
 * page, record and index in a forked child, whose death by a signal or
 * failure means the store is damaged.  A missing or empty data file is
 * fine (a new store).  0, or -1 with a message in err that names the
 * file and says what to do.  idem_open() and idem_db_open() call it.
 */
int		 idem_check_store(const char *path, char *err, size_t errlen);
/* The checks idem_open makes before it opens anything (cmgate -t). */
int		 idem_check(const struct config *, char *err, size_t errlen);
/* Finish queued work, join the store thread, close; claims must be
 * gone (requests finished). */
void		 idem_close(struct idem *);
bool		 idem_healthy(const struct idem *);

/* One port per event loop: callbacks run on that loop. */
struct idem_port *idem_port_new(struct idem *, struct event_base *);
void		 idem_port_free(struct idem_port *);

/*
 * Claim CALLER/KEY for request_id, synchronously (no I/O).  On
 * IDEM_NEW *out is the claim, owned by the caller until idem_release().
 */
enum idem_begin_result idem_begin(struct idem_port *, const char *caller,
		    const char *key,
		    const unsigned char digest[IDEM_DIGEST_LEN],
		    const char *request_id, struct idem_claim **out);

/* Read the stored record of a claimed key (store thread); cb runs on
 * the claim's loop unless the claim was released first.  A key new to
 * its caller takes a place among the caller's max_keys (given back if
 * its outcome is not stored), or is IDEM_OVER_QUOTA.  0 or -1. */
int		 idem_lookup(struct idem_claim *, uint64_t max_keys,
		    idem_lookup_cb, void *arg);

/*
 * Store the claimed key's outcome, kept for ttl_s seconds.  body and
 * content_type are copied.  cb runs on the claim's loop once the commit
 * is durable (or failed), unless the claim was released first; the
 * commit happens either way.  At most one store per claim.  0 or -1.
 */
int		 idem_store(struct idem_claim *, enum idem_state, int status,
		    const char *content_type, const void *body, size_t len,
		    long ttl_s, idem_store_cb, void *arg);

/* The request is done with its claim (any path; NULL is fine).  A key
 * whose outcome was not stored becomes free at once. */
void		 idem_release(struct idem_claim *);

/* ---- work of other modules in the store (owners.c) --------------- */

/*
 * Work run on the store thread inside a transaction (struct idem_txn,
 * idem_txn.h).  It returns >= 0 (its own result), -1 (it failed on its
 * own terms), or -MDB_error to abort a write round (the round's
 * commit then fails every job in it).  A write round that finds the map
 * full grows it and runs the work again: work must be safe to repeat.
 */
struct idem_txn;
typedef int	(*idem_txn_fn)(struct idem_txn *, void *arg);
/* rc is work's result, or -1 when a write was not durable (or the
 * store has failed). */
typedef void	(*idem_done_fn)(int rc, void *arg);

/*
 * Queue work for the store thread (in a read transaction, or in the
 * next write round's transaction, durable before done runs).  done
 * runs exactly once: on p's loop; or, when the loop went away first,
 * with rc -1 on the store thread (its requests are gone then, so done
 * must only free arg).  -1 when the store has failed or memory ran out
 * (done is not called).
 */
int		 idem_call(struct idem_port *, bool write, idem_txn_fn,
		    idem_done_fn, void *arg);

/* Run work at once on the calling thread: for startup, before the
 * loops run.  work's result, or -1. */
int		 idem_run_now(struct idem *, bool write, idem_txn_fn,
		    void *arg);

/* ---- for cmgate-idem and the tests: direct access (no thread) ------ */

struct idem_db;
/* Open the store at path for an operator tool (no process lock). */
struct idem_db	*idem_db_open(const char *path, bool write, char *err,
		    size_t errlen);
void		 idem_db_close(struct idem_db *);
/* Call fn for every record (expired ones too); caller is the scope. */
typedef void	(*idem_db_fn)(const char *caller, const char *key,
		    const struct idem_record *, void *arg);
int		 idem_db_list(struct idem_db *, idem_db_fn, void *arg);
/* 1 found (fn called), 0 none, -1 error. */
int		 idem_db_get(struct idem_db *, const char *caller,
		    const char *key, idem_db_fn, void *arg);
/* Run work in a transaction of the tool's own (committed when write and
 * work returned >= 0): work's result, or -1. */
int		 idem_db_txn(struct idem_db *, bool write, idem_txn_fn,
		    void *arg);
/* Delete a record: 1 deleted, 0 none, -1 error. */
int		 idem_db_forget(struct idem_db *, const char *caller,
		    const char *key);

#endif
