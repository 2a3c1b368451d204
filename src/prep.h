/*
 * prep.h: a request body made ready to forward and to record: validated
 * and normalized by the route's validator, serialized, the audit
 * record's body member made, and digested for an Idempotency-Key.
 *
 * Pure CPU work on memory the struct owns or borrows: prep_run() may
 * run on the loop thread (small bodies) or on an offload thread (large
 * ones; offload.h), never on both at once.  It reads the audit handle
 * only for its body mode and body key, which never change after open
 * (it is closed after the offload pool).  ctx points into the config
 * (the subproduct list): an offloaded prep holds a reference of its own
 * in cfg, since its request, and the request's reference, can go first
 * (abandoned at exit, after a reload replaced that config).
 */
#ifndef CMGATE_PREP_H
#define CMGATE_PREP_H

#include <stdbool.h>
#include <stddef.h>

#include "offload.h"
#include "routes.h"
#include "util.h"
#include "validate.h"

struct audit;
struct config;
struct evbuffer;
struct json_object;
struct route;

struct prep {
	struct offload_job	 job;		/* offload.h */
	void			*owner;		/* the request; NULL once it
						   is gone (loop thread) */
	/* In. */
	const struct route	*route;
	struct route_vctx		 ctx;		/* routes.h */
	struct config		*cfg;		/* offloaded: a reference to
						   what ctx points into */
	const struct audit	*audit;
	bool			 want_digest;	/* an Idempotency-Key */
	struct evbuffer		*in;		/* offloaded: the raw body,
						   moved here, owned */
	const char		*raw;		/* inline: borrowed */
	size_t			 raw_len;
	/* Out. */
	enum vresult		 vr;
	struct verrors		 errs;		/* V_INVALID, V_INVALID_JSON */
	struct json_object	*norm;		/* V_OK: the normalized tree,
						   which owns body's bytes */
	const char		*body;		/* V_OK: what goes upstream */
	size_t			 body_len;
	char			*bodym;		/* V_OK: the record's member */
	unsigned char		 digest[SHA256_LEN]; /* V_OK, want_digest:
						   of body */
	bool			 failed;	/* out of memory */
};

/* Validate, normalize, serialize and digest p->raw (or p->in). */
void	prep_run(struct prep *);
/* Free what prep_run made (and p->in), release p->cfg; p itself stays
 * the caller's.  Every prep ends here, run or not. */
void	prep_clear(struct prep *);

#endif
