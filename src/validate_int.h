/*
 * validate_int.h: what the body validators share (validate.c and
 * validate_kyc.c), not part of their interface: the context every rule
 * reports into, the helpers that walk and build objects, the one
 * text-field check and the one ending of a validator.  Each exists once,
 * in validate.c, so that the routes cannot drift apart on what a field
 * or an error means.  Pure, as the validators are.
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

/*
 * A string field, fetched and put through vstr_normalize() into buf
 * (4 * max_chars + 1 bytes; max_chars is capped by the options'
 * max_string_length).  Returns 1 with a value, 0 when there is none to
 * output (missing or null, or an optional field that is empty after
 * trimming: both read as "not given"), and -1 after reporting an error
 * at path.
 */
int	vc_text_field(struct vctx *, struct json_object *v, const char *path,
	    bool required, size_t max_chars, char *buf, size_t bufsz,
	    size_t *len);

/* json_parse_strict() at opts' max_depth (NULL opts: the default). */
struct json_object *vc_parse(const char *body, size_t len,
	    const struct vopts *opts, struct verrors *errs);

/* ASCII A-Z to a-z in s[0..n), in place. */
void	vc_lower_ascii(char *s, size_t n);

/*
 * The end of a validator: releases in; on any error (out of memory
 * included) drops o and returns V_INVALID, else sets *out to o, V_OK.
 */
enum vresult vc_finish(struct vctx *, struct json_object *in,
	    struct json_object *o, struct json_object **out);

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#endif
