/*
 * audit.h: the tamper-evident, durable audit log (gateway side).
 *
 * The loop thread hands records to a dedicated writer thread, which
 * assigns seq, chains (prev), MACs, batches them into one write + one
 * fdatasync (group commit), and reports back on the submitting loop
 * when each record is durable.  The loop thread never touches the disk.
 *
 * audit knows nothing of HTTP: a record is a type and a fragment of
 * JSON members, e.g. "\"request_id\":\"abc\",\"caller\":\"onboarding\"".
 */
#ifndef CMGATE_AUDIT_H
#define CMGATE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;
struct json_object;
struct audit;
struct audit_port;
struct afmt_key;

/* Called on the port's event loop once the record is durable (ok=true)
 * or the log has failed (ok=false: the caller must answer 503). */
typedef void (*audit_cb)(bool ok, uint64_t seq, void *arg);

/*
 * Open the log named by cfg->audit: load K0 / the evolving key state,
 * verify the tail from the last seal, repair a torn tail (copy to
 * <log>.broken-<time>, truncate, "recover" record), write "outcome"
 * records of class "abandoned" for requests cut off by a crash, write a
 * "start" record, and start the writer thread.  Refuses (NULL, message
 * in err) when the tail cannot be verified or shows tampering.
 */
/* The checks audit_open makes before writing anything (cmgate -t). */
int		 audit_check(const struct config *, char *err, size_t errlen);
struct audit	*audit_open(const struct config *, char *err, size_t errlen);

/* One port per event loop (port.h); callbacks for records submitted
 * through a port run on that port's loop.  Create and free a port on its
 * loop's thread (or before/after the loop runs), never inside a callback.
 * Records a freed port had queued are still written; their callbacks
 * are not called. */
struct audit_port *audit_port_new(struct audit *, struct event_base *);
void		 audit_port_free(struct audit_port *);

/*
 * Queue a record; it goes to the writer with the rest of this loop
 * pass's records.  type is "request", "outcome", "reject", ...; fields
 * is copied.  Returns 0, or -1 when the log is poisoned (cb is then not
 * called; a log poisoned after the call fails the record through cb).  A record over 64 KiB, with a newline in fields, or of a
 * type the log keeps for itself (start, seal, recover, stop, carry) is
 * refused whole with -1 as well; nothing is ever truncated.
 */
int		 audit_submit(struct audit_port *, const char *type,
		    const char *fields, audit_cb cb, void *arg);

/*
 * A refusal of an unauthenticated request (no or unknown token), from
 * peer address addr, for reason (its error code): true when it is to
 * be recorded as a "reject" record of its own, false when it has been
 * counted for a "reject_summary" record instead (audit_flood.h: a
 * token bucket of 4 a second, burst 8, for the whole process).  A
 * summary is written within about a second, before the next seal and
 * at shutdown; the refusal needs no record of its own then.
 */
bool		 audit_reject_admit(struct audit *, const char *addr,
		    const char *reason);

/* False once any write/fsync error has poisoned the log (fail closed). */
bool		 audit_healthy(const struct audit *);

/*
 * The body member for a request record according to audit.body:
 * "\"body_digest\":\"<hex HMAC under the body key>\"" (digest),
 * "\"body\":{...masked...}" (redacted) or "\"body\":{...}" (full).
 * Returns a malloc'd string.  Thread-safe; no I/O.
 */
char		*audit_body_member(const struct audit *,
		    struct json_object *normalized);
/* The same, given normalized already serialized (JSON_C_TO_STRING_PLAIN
 * | JSON_C_TO_STRING_NOSLASHESCAPE) as s, len: the digest is taken over
 * those bytes instead of serializing again. */
char		*audit_body_member_str(const struct audit *,
		    struct json_object *normalized, const char *s, size_t len);

/* Ask the writer to rotate the file (SIGUSR1); returns at once. */
void		 audit_request_rotate(struct audit *);

/* Ask the writer to end the current epoch now (seal, evolve the key);
 * returns at once.  For tests and tools; the timer does it otherwise. */
void		 audit_request_seal(struct audit *);

/* The log id (32 hex), fixed for the log's life. */
const char	*audit_log_id(const struct audit *);

/*
 * Test hook: how many write(2) and fdatasync(2) calls the log has made
 * (failed ones included), so a test can see that a failed fdatasync is
 * never retried.
 */
void		 audit_io_counts(const struct audit *, uint64_t *writes,
		    uint64_t *fsyncs);

/* Write the "stop" record, flush, join the writer, wipe keys, free. */
void		 audit_close(struct audit *);

/* Figures for /metrics; any pointer may be NULL. */
struct audit_stats {
	uint64_t records;	/* records made durable */
	uint64_t batches;	/* write+fdatasync rounds */
	uint64_t bytes;
	uint64_t write_ns_sum, fsync_ns_sum;
	/* cumulative histogram buckets, see audit_stats_buckets() */
	uint64_t fsync_le[12];
	uint64_t write_le[12];
	uint64_t rejects_summarized;	/* refusals counted, not recorded */
	uint64_t reject_summaries;	/* reject_summary records written */
};
void		 audit_get_stats(const struct audit *, struct audit_stats *);
/* Upper bounds in seconds of the 12 histogram buckets (last = +Inf). */
const double	*audit_stats_buckets(void);

/*
 * One record line, as the writer makes each: stamped with the time
 * now, record seq of log log_id chained after prev (AFMT_HASH_LEN
 * bytes) under key, into out (cap bytes).  head receives the line's
 * chain head (AFMT_HASH_LEN); mac (AFMT_HASH_LEN) and ts (32 bytes,
 * the stamp) may be NULL.  The line's length, 0 when it does not fit.
 * The writer's add path calls it; so does tests/bench/bench-micro, so
 * the benchmark measures this very code.
 */
size_t		 audit_record_line(char *out, size_t cap, const char *log_id,
		    uint64_t seq, struct afmt_key *key,
		    const unsigned char *prev, const char *type,
		    const char *fields, size_t flen, unsigned char *head,
		    unsigned char *mac, char *ts);

#endif
