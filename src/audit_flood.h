/*
 * audit_flood.h: a bound on what unauthenticated traffic writes to the
 * audit log.
 *
 * A refusal of an unauthenticated request (no or unknown token) is a
 * "reject" record of its own only while a process-wide token bucket
 * has a token (AUDIT_FLOOD_RATE per second, AUDIT_FLOOD_BURST at once).
 * Past it, refusals are counted instead, and the writer thread turns
 * the counts into one "reject_summary" record per interval: at most
 * one a second while a flood lasts, and always before the next seal
 * and before the stop record.  A summary holds the interval, the
 * count, the reasons and the top AUDIT_FLOOD_TOP source addresses with
 * an "others" count, so its size is bounded whatever the flood.
 *
 * Every refusal is in the log exactly once: as its own "reject" record
 * or inside the count of one summary.
 *
 * Thread-safe: refusals are noted on the loop threads, summaries taken
 * on the audit writer thread.
 */
#ifndef CMGATE_AUDIT_FLOOD_H
#define CMGATE_AUDIT_FLOOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_FLOOD_RATE	4	/* individual records per second */
#define AUDIT_FLOOD_BURST	8	/* ... and at once */
#define AUDIT_FLOOD_PERIOD_NS	1000000000ull	/* one summary a second */
#define AUDIT_FLOOD_SLOTS	64	/* source addresses tracked */
#define AUDIT_FLOOD_TOP		8	/* ... and listed in a summary */
#define AUDIT_FLOOD_REASONS	8	/* distinct codes; more: "other" */
#define AUDIT_FLOOD_ADDR_MAX	63	/* characters of an address kept */
#define AUDIT_FLOOD_CODE_MAX	47	/* characters of a code kept */
/* The fields of a summary always fit in this many bytes. */
#define AUDIT_FLOOD_FIELDS_MAX	4096

struct audit_flood;

struct audit_flood *audit_flood_new(void);
void		 audit_flood_free(struct audit_flood *);

/*
 * One unauthenticated refusal from addr (the peer address; NULL or ""
 * is "unknown") for reason (its error code).  true: record it on its
 * own (a token was taken); false: it was counted for the next summary.
 * *opened is set when this refusal opened a new summary interval (the
 * writer must learn its deadline).  now_ns is the monotonic clock.
 */
bool		 audit_flood_admit(struct audit_flood *, const char *addr,
		    const char *reason, uint64_t now_ns, bool *opened);

/* When the pending summary is due (monotonic ns), or 0 when none. */
uint64_t	 audit_flood_due(struct audit_flood *);

/*
 * When a summary is pending and due at now_ns (or at once with force),
 * write its fields into out (AUDIT_FLOOD_FIELDS_MAX bytes) and start a
 * new interval.  The length written, or 0 when there is nothing to
 * write yet.
 */
size_t		 audit_flood_take(struct audit_flood *, bool force,
		    uint64_t now_ns, char *out, size_t outlen);

/* Refusals counted into summaries instead of own records, ever. */
uint64_t	 audit_flood_summarized(struct audit_flood *);

#endif
