/*
 * validate_int.h: what the body validators share (validate.c and
 * validate_kyc.c), not part of their interface: the context every rule
 * reports into, and the helpers that walk and build objects.  Pure, as
 * the validators are.
 */
#ifndef CMGATE_VALIDATE_INT_H
#define CMGATE_VALIDATE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "validate.h"

/* One validation call: its options and the errors it found. */
struct vctx {
	const struct vopts	*opts;	/* may be NULL (defaults) */
	struct verrors		*errs;
	size_t			 nerr;	/* errors this call found */
	bool			 oom;
};

/* Add an error (at most 32 are listed, then one "too many"). */
void	vc_report(struct vctx *, const char *path, const char *message);

/*
 * Sort obj's members into slots by name (names[0..n)); report every
 * other member as unknown, by its path (prefix is "" or "parent."), or
 * by the parent's path when its name is not plainly spelled.  A JSON
 * null leaves its slot NULL, like a missing key.
 */
void	vc_collect(struct vctx *, struct json_object *obj,
	    const char *const *names, size_t n, struct json_object **slots,
	    const char *prefix);

/* Add val to obj under a constant key (steals val; obj NULL drops it);
 * a NULL val or a failed add is out of memory. */
void	vc_put(struct vctx *, struct json_object *obj, const char *key,
	    struct json_object *val);

#endif
