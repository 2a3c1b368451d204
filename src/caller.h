/*
 * caller.h: who is calling.  Bearer tokens are never stored: the config
 * holds their SHA-256, and a presented token is hashed and compared in
 * constant time against every caller.
 */
#ifndef CMGATE_CALLER_H
#define CMGATE_CALLER_H

struct config;
struct conf_caller;

/* The caller whose token is in the Authorization header, or NULL. */
const struct conf_caller *caller_auth(const struct config *,
		    const char *authorization);

#endif
