/*
 * audit_format_int.h: the fields scanner of audit_format.c, for the
 * other files of the format (audit_idset.c reads the "open" list of a
 * start record with it).  Not for the gateway or the tool: they read
 * members through afmt_field_*() and afmt_fields_split().
 */
#ifndef CMGATE_AUDIT_FORMAT_INT_H
#define CMGATE_AUDIT_FORMAT_INT_H

/* Past whitespace from p (at most end). */
const char	*afmt_skip_ws(const char *p, const char *end);
/* Past the JSON value at p (whitespace first), or NULL when it does
 * not scan inside [p, end). */
const char	*afmt_skip_value(const char *p, const char *end);
/* Find member name among the members in [p, end): 0 with its value
 * span [*vs, *ve), or -1. */
int		 afmt_member(const char *p, const char *end, const char *name,
		    const char **vs, const char **ve);

#endif
