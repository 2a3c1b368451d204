/*
 * conf.h: the gateway's configuration, read from one JSON file.
 *
 * Every key lives in one table in conf.c (type, range, default); this
 * struct is what the table fills in.  Paths are already resolved against
 * the config file's folder.  Secrets (the API key) are loaded here too,
 * because a config that names a missing or unsafe key file must fail
 * `cmgate -t`.
 */
#ifndef CMGATE_CONF_H
#define CMGATE_CONF_H

#include <stdbool.h>
#include <stddef.h>

#define CONF_TOKEN_HASH_LEN 32

/* Longest caller name; names are [A-Za-z0-9._-]. */
#define CONF_CALLER_NAME_MAX	64
/* Route patterns in one caller's "allow". */
#define CONF_ALLOW_MAX		64

/* A list of strings from the config (validation.subproducts). */
#define CONF_STRLIST_MAX	16
struct conf_strlist {
	char		*v[CONF_STRLIST_MAX];
	size_t		 n;
};

struct conf_caller {
	char		*name;
	unsigned char	 token_sha256[CONF_TOKEN_HASH_LEN];
	double		 rate_limit_per_sec;	/* 0 = no per-caller ceiling */
	/* Least privilege (README "Least privilege"): the route patterns
	 * as written (default: "individuals.create"), the routes they
	 * allow as a bit per row of the route table (filled in by
	 * routes_bind_callers(), which knows the table), and whether the
	 * caller reaches every client or only those it created. */
	char		*allow[CONF_ALLOW_MAX];
	size_t		 nallow;
	unsigned long	 routes_allowed;
	bool		 clients_all;
};

struct config {
	int		 refs;		/* atomic: requests hold a reference
					   so SIGHUP can swap the config */
	char		*path;		/* the file as given */
	char		*dir;		/* its folder, for relative paths */

	char		*listen;	/* "host:port" */
	int		 workers;	/* event loops (threads); 1 = one loop */
	long		 shutdown_timeout_ms;
	bool		 core_dumps;	/* allow core dumps (default false) */

	struct {
		char	*base_url;	/* no trailing slash */
		char	*api_key_file;	/* NULL: env CRYPTOMATE_API_KEY */
		char	*ca_file;
		long	 connect_timeout_ms;
		long	 timeout_ms;
		double	 rate_limit_per_sec;	/* 0 = budget off */
		int	 burst;
		long	 max_queue_wait_ms;
		int	 max_queued;
		int	 max_inflight;
		long	 max_response_bytes;
		long	 max_list_response_bytes;	/* list routes */
		int	 max_connections;	/* curl connection cache */
		long	 retry_unsent_ms;	/* retry window, never sent */
	} upstream;

	struct {
		char	*path;
		char	*key_file;	/* K0, made by cmgate-audit keygen */
		char	*state_file;	/* evolving key state; default path.state */
		int	 epoch_s;
		char	*body;		/* "digest", "redacted", "full" */
		long	 max_bytes;
		char	*seal_command;	/* run with the seal line on stdin */
		bool	 seal_syslog;
	} audit;

	struct conf_caller *callers;
	size_t		 ncallers;

	struct {
		long	 max_body_bytes;
		long	 max_document_body_bytes;	/* products.documentation */
		long	 max_buffered_bytes;	/* bodies held, all requests */
		long	 max_header_bytes;
		int	 max_headers;
		int	 max_json_depth;
		int	 max_string_length;
		int	 max_connections;
		long	 request_timeout_ms;
		long	 idle_timeout_ms;
	} limits;

	struct {
		int	 min_age_years;
		struct conf_strlist subproducts;	/* products.request */
		long	 max_image_bytes;	/* decoded, per image */
	} validation;

	struct {
		bool	 enabled;
		char	*path;		/* LMDB folder */
		long	 ttl_s;
		bool	 required;
		long	 max_keys_per_caller;
	} idempotency;

	struct {
		char	*level;		/* "debug", "info", "warn", "error" */
		char	*target;	/* "stderr" or "syslog" */
	} log;

	struct {
		char	*listen;	/* NULL: /metrics on the main listener */
	} metrics;

	/* Loaded secret: the CryptoMate API key.  Wiped in conf_free(). */
	char		*api_key;
	size_t		 api_key_len;
};

/*
 * Load and check FILE.  On error returns NULL and writes one message
 * naming the file and the key path into err (e.g.
 * "cmgate.json: upstream.timeout_ms: must be 1..600000").
 */
struct config	*conf_load(const char *file, char *err, size_t errlen);
void		 conf_free(struct config *);

/* Reference counting (thread-safe); conf_load returns refs = 1. */
struct config	*conf_ref(struct config *);
void		 conf_unref(struct config *);

/* Print the table of keys with types and defaults (for docs/--help). */
void		 conf_print_keys(void);
/* Is s a caller name: 1..CONF_CALLER_NAME_MAX of [A-Za-z0-9._-]?  The
 * one rule, for the config and for every tool that takes a name. */
bool		 conf_caller_name_ok(const char *s);

#endif
