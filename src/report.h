/*
 * report.h: the compliance report of cmgate-audit (`cmgate-audit
 * report`).  The report is fed by the verifier (audit_format.c): every
 * finding through report_finding() and every record that verified and
 * took its place in the chain through report_record(); it counts only
 * those records, and only once it knows no finding names them.  It
 * keeps bounded state whatever the size of the log: fixed tables with
 * an "other" row beyond their caps and a fixed latency histogram per
 * row.  report_html() writes one self-contained HTML page (inline CSS
 * and SVG, no script, a CSP that forbids every load); report_json()
 * writes the same figures as one JSON object.
 */
#ifndef CMGATE_REPORT_H
#define CMGATE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "audit_format.h"

/* The outcome classes: each answered request counts once, in one. */
enum report_class {
	RC_FWD_2XX,		/* forwarded, CryptoMate 2xx (or a replay) */
	RC_UP_4XX,		/* CryptoMate's 4xx, 429 included */
	RC_UP_5XX,		/* CryptoMate's 5xx */
	RC_REFUSED,		/* refused by the gateway (4xx it made) */
	RC_GW_ERROR,		/* gateway errors: 502/503/504 it made */
	RC_ABANDONED,		/* cut off by a crash: outcome unknown */
	RC_NCLASS
};
const char	*report_class_name(enum report_class);

struct report_opts {
	const char	*since;		/* ISO 8601 prefix, or NULL */
	const char	*until;		/* inclusive at its precision, or NULL */
	const char	*key_fpr;	/* 16 hex: fingerprint of K0 */
	const char	*generated;	/* when the report was made */
	const char	*const *files;	/* as read, chain order */
	size_t		 nfiles;
	size_t		 nanchors;
};

/* Figures the tests read back. */
struct report_totals {
	uint64_t	 counted;	/* records counted (in the period) */
	uint64_t	 excluded;	/* verified but named by a finding */
	uint64_t	 outside;	/* verified, outside the period */
	uint64_t	 cls[RC_NCLASS];
	uint64_t	 answered;	/* sum of cls */
	uint64_t	 unauth;	/* refusals with no caller */
	uint64_t	 reject_summary;  /* of those, from reject_summary */
	uint64_t	 requests;	/* request records */
	uint64_t	 reconcile;	/* needs reconciliation, all */
	uint64_t	 refusal_paths;	/* field paths refused, all */
	uint64_t	 starts, stops, rotations, recoveries, seals;
	uint64_t	 recovered_bytes;
	uint64_t	 up_429, budget_refused, timeouts, not_sent,
			 upstream_errors, replays, conflicts;
	uint64_t	 seal_gaps;
	/* The upstream budget: requests that waited for it (queue_ms of
	 * their outcome records) and how long; pauses of all forwarding
	 * ("pause" records), their number and the time they covered
	 * (overlapping pauses counted once). */
	uint64_t	 waited, waited_ms, waited_max_ms;
	uint64_t	 pauses, paused_ms;
};

struct report;

struct report	*report_new(const struct report_opts *);
void		 report_free(struct report *);
/* The verifier's callbacks (afmt_finding_cb, afmt_record_cb). */
void		 report_finding(const struct afmt_finding *, void *report);
void		 report_record(const struct afmt_rec *, bool suspect,
		    void *report);
/* After afmt_vfy_finish: the summary and the verdict (exit code 0, 1
 * or 2 as verify gives it). */
void		 report_finish(struct report *, const struct afmt_summary *,
		    int verdict);
void		 report_totals(const struct report *, struct report_totals *);
int		 report_html(const struct report *, FILE *);
int		 report_json(const struct report *, FILE *);
/* The counts of one caller (raw JSON value, "null" for none) and
 * route ("" for any): calls answered, refusals; -1 when absent. */
int		 report_row(const struct report *, const char *caller,
		    const char *route, uint64_t *calls, uint64_t *refusals);

#endif
