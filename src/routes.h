/*
 * routes.h: the route table, one row per CryptoMate endpoint cmgate
 * serves, and the matcher that turns a caller's method and raw path
 * into a row and its path parameters.
 *
 * A route is data: its name (what scopes, metrics, logs and audit
 * records call it), method, path template with named parameters,
 * validator, body and response caps, whether Idempotency-Key applies
 * and whether the path names a client.  A new CryptoMate endpoint is a
 * new row and, if it has a body, a new validator; nothing else changes.
 *
 * Pure: no I/O, no allocation; the fuzzer and the unit tests call
 * routes_match() directly.
 */
#ifndef CMGATE_ROUTES_H
#define CMGATE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "validate.h"
#include "validate_kyc.h"

struct json_object;

/*
 * What a route's validator is given besides the body: the options of
 * every validator, those of the KYC ones, and where a document upload's
 * facts go for its audit record (doc->document_type[0] stays '\0' on
 * other routes).
 */
struct route_vctx {
	struct vopts		 vo;
	struct kyc_opts		 ko;
	struct kyc_doc_info	 doc;
};

typedef enum vresult (*route_validator)(const char *body, size_t len,
		    struct route_vctx *, struct json_object **out,
		    struct verrors *errs);

/* What a route takes as a body. */
enum route_body {
	RB_NONE,	/* GET, DELETE: a body (Content-Length > 0) is 400 */
	RB_JSON,	/* application/json, checked by the validator */
	RB_EMPTY_OK,	/* empty (no Content-Type needed) or a JSON body
			   the validator accepts */
};

/* Which configured cap bounds the request body. */
enum route_cap {
	RC_BODY,	/* limits.max_body_bytes */
	RC_DOCUMENT,	/* limits.max_document_body_bytes */
};

#define ROUTE_ID_MAX		KYC_PATH_ID_MAX	/* longest id in a path */
#define ROUTE_MAX_PARAMS	2	/* parameters in one template */
#define ROUTE_PATH_MAX		512	/* longest upstream path built */

struct route {
	const char	*name;		/* "individuals.get" */
	const char	*method;	/* "GET" */
	const char	*path;		/* ".../individuals/{client_id}" */
	enum route_body	 body;
	route_validator	 validate;	/* NULL when body == RB_NONE */
	enum route_cap	 body_cap;
	bool		 list;		/* a list answer: larger response cap */
	bool		 idempotent;	/* Idempotency-Key applies */
	bool		 names_client;	/* the path has {client_id} */
};

extern const struct route	routes[];
extern const size_t		nroutes;

/* One path parameter as matched, checked and normalized. */
struct route_arg {
	char		 name[24];		/* "client_id" */
	char		 value[ROUTE_ID_MAX + 1];
};

struct route_match {
	const struct route	*route;
	size_t			 nargs;
	struct route_arg	 args[ROUTE_MAX_PARAMS];
	char			 upstream_path[ROUTE_PATH_MAX];
};

enum route_result {
	ROUTE_OK,		/* m is filled in */
	ROUTE_NOT_FOUND,	/* 404: no template has this path */
	ROUTE_BAD_METHOD,	/* 405: allow lists the path's methods */
	ROUTE_BAD_PARAM,	/* 422: errs names path.<param> */
};

/*
 * Match method and path (raw, as sent: never percent-decoded; no query
 * string) against the table.  Literal segments win over parameters.
 * On ROUTE_BAD_METHOD, allow holds the methods of the path
 * ("GET, PUT, DELETE").  On ROUTE_BAD_PARAM, errs holds one error per
 * parameter that does not fit (field "path.client_id", ...), and
 * m->route is the route the path would have reached.
 */
enum route_result routes_match(const char *method, const char *path,
		    struct route_match *m, char *allow, size_t allowlen,
		    struct verrors *errs);

/* The value of the named argument, or NULL. */
const char	*route_arg(const struct route_match *, const char *name);

/*
 * Does pattern ("individuals.get", "products.*", "*") name route?  A
 * trailing '*' matches any rest, including none.
 */
bool		 route_pattern_match(const char *pattern, const char *name);

/*
 * Resolve every caller's "allow" patterns against the table into its
 * routes_allowed bits.  -1 with a message in err naming the caller and
 * the pattern that names no route (cmgate -t, the start and a reload
 * all refuse such a config).
 */
struct config;
int		 routes_bind_callers(struct config *, char *err,
		    size_t errlen);

/* May caller use route?  (The bit routes_bind_callers() set.) */
struct conf_caller;
bool		 route_allowed(const struct conf_caller *,
		    const struct route *);

/* The body cap of the route method and path (raw, no query) would
 * reach, without checking its parameters; RC_BODY when none. */
enum route_cap	 routes_body_cap(const char *method, const char *path);

/* The row called name, or NULL. */
const struct route *route_by_name(const char *name);

#endif
