/*
 * owners.h: which caller owns which CryptoMate client (least privilege,
 * README "Least privilege").
 *
 * The gateway learns owners from its own traffic: a 2xx answer to
 * individuals.create makes the new client id the creating caller's.
 * Owners live in the idempotency store's LMDB environment (two
 * databases: client id -> caller, and caller NUL client id for listing
 * one caller's clients), written on the store thread and durable before
 * the answer that depends on them is sent.  Operator changes made with
 * cmgate-idem are queued in a third database and become "admin" audit
 * records when the gateway next starts.
 *
 * Loop side: each question or change is a struct owners_q made by one
 * of the calls below; cb runs on the loop with the answer, and owners.c
 * frees q after cb returns.  A request that ends before the answer
 * calls owners_forget(q): cb is then never called.
 */
#ifndef CMGATE_OWNERS_H
#define CMGATE_OWNERS_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "validate_kyc.h"

#define OWNERS_ID_MAX		KYC_PATH_ID_MAX	/* client ids (kyc_id_ok) */
#define OWNERS_CALLER_MAX	CONF_CALLER_NAME_MAX

struct idem;
struct idem_db;
struct idem_port;
struct owners_q;

typedef void	(*owners_cb)(struct owners_q *, void *arg);

struct owners_q {
	/* Answers, valid during cb. */
	int		 rc;		/* 0; -1 the store failed */
	bool		 found;		/* owners_get: an owner is known */
	char		 owner[OWNERS_CALLER_MAX + 1];
	char		*out;		/* owners_filter: the kept entries;
					   cb may take it (set it NULL) */
	size_t		 out_len;
	size_t		 kept, withheld;
	/* The question. */
	char		 client_id[OWNERS_ID_MAX + 1];
	char		 caller[OWNERS_CALLER_MAX + 1];
	char		*body;		/* owners_filter: taken from the
					   caller, freed with q */
	size_t		 len;
	int		 max_depth;
	owners_cb	 cb;		/* NULL once forgotten */
	void		*arg;
};

/* Who owns client_id?  (q->found, q->owner) */
struct owners_q	*owners_get(struct idem_port *, const char *client_id,
		    owners_cb, void *arg);
/* client_id is caller's from now on (durable before cb). */
struct owners_q	*owners_put(struct idem_port *, const char *client_id,
		    const char *caller, owners_cb, void *arg);
/* client_id has no owner any more (durable before cb). */
struct owners_q	*owners_del(struct idem_port *, const char *client_id,
		    owners_cb, void *arg);
/*
 * Keep, of a JSON array of objects (CryptoMate's list of clients), the
 * entries whose "id" caller owns.  *body (malloc'd, len bytes) is taken,
 * not copied: a list may be 16 MiB; *body is NULL after a call that
 * returns the query, and still the caller's after one that returns NULL.
 * q->out is the kept array re-serialized, q->withheld how many were left
 * out.  rc -1 also when the body is not such an array (nothing is passed
 * on unfiltered).  The parse runs on the store thread, off the loop.
 */
struct owners_q	*owners_filter(struct idem_port *, const char *caller,
		    char **body, size_t len, int max_depth, owners_cb,
		    void *arg);
void		 owners_forget(struct owners_q *);

/* ---- operators (cmgate-idem owners) and startup -------------------- */

typedef void	(*owners_list_fn)(const char *client_id, const char *caller,
		    void *arg);
/* Every owner entry, or one caller's (caller NULL: all).  0 or -1. */
int	owners_db_list(struct idem_db *, const char *caller,
	    owners_list_fn, void *arg);
/*
 * Set (caller not NULL) or remove an owner, and queue an admin event
 * naming who did it (by) for the audit log.  1 done, 0 nothing to
 * forget, -1 error.
 */
int	owners_db_set(struct idem_db *, const char *client_id,
	    const char *caller, const char *by);

/* Hand every queued admin event (a JSON object's members, without the
 * braces) to fn and remove them; at startup.  The count, or -1. */
typedef int	(*owners_admin_fn)(const char *members, void *arg);
int	owners_admin_drain(struct idem *, owners_admin_fn, void *arg);

/* Is id a well-formed client id (1..64 of [A-Za-z0-9_-])? */
bool	owners_id_ok(const char *id, size_t len);

#endif
