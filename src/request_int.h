/*
 * request_int.h: the private half of the request module, shared by its
 * files and by nothing else.  struct gw_req is one request's state;
 * request.c owns its life (start, forwarding, the one exit that
 * replies and frees), request_idem.c its Idempotency-Key,
 * request_owners.c the checks of who owns which client, and
 * request_records.c the fields of its audit records.  Each file calls
 * the others only through the functions below; the rest stays static.
 */
#ifndef CMGATE_REQUEST_INT_H
#define CMGATE_REQUEST_INT_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "budget.h"
#include "util.h"

struct evkeyvalq;
struct idem_claim;
struct owners_q;
struct prep;
struct up_xfer;

/*
 * What became of the call to CryptoMate, for the outcome record (its
 * "error_class"): the reply's status says what the caller got, this says
 * why.  Names in request_records.c.
 */
enum req_error_class {
	EC_NONE = 0,		/* an answer, 2xx or 4xx */
	EC_NOT_SENT,		/* never left: connect refused, DNS, budget */
	EC_TIMEOUT,		/* sent, no answer in time: may be processed */
	EC_UPSTREAM_ERROR,	/* 5xx, broken or too large: may be processed */
	EC_RATE_LIMITED,	/* CryptoMate's 429 or the budget's */
};

struct gw_req {
	TAILQ_ENTRY(gw_req)	 entry;		/* in loop->reqs */
	struct gw_loop		*loop;
	struct config		*cfg;		/* reference held */
	struct evhttp_request	*ev;		/* borrowed until the reply */
	const struct route	*route;		/* m.route */
	struct route_match	 m;		/* path parameters, upstream path */
	const struct conf_caller *caller;	/* points into cfg */
	char			 id[ID_BUF];
	const char		*body;		/* normalized JSON, in body_obj */
	struct json_object	*body_obj;	/* owns body's bytes */
	size_t			 body_len;
	size_t			 bytes_in;
	struct up_xfer		*xfer;
	uint64_t		 t_start_ns;
	double			 queue_ms;
	struct budget_wait	 bw;		/* its place in the budget */
	bool			 not_sent;	/* last try never left */
	uint64_t		 t_sent_ns;	/* first try (mono), 0 = none */
	/* The upstream answer, held until its outcome record is durable. */
	int			 up_status;	/* 0 = none */
	double			 up_latency_ms;
	char			*resp;
	size_t			 resp_len;
	char			*resp_ct;
	char			*trace_id;
	/* Our answer when the gateway itself decides it. */
	int			 status;
	const char		*code;
	const char		*message;
	enum req_error_class	 error_class;
	long			 retry_after_s;
	struct json_object	*details;	/* field errors, until sent */
	/* Idempotency-Key (request_idem.c): the key, the digest of the
	 * body it covers, the claim on it, the request record waiting for
	 * the lookup, and what a stored outcome's reply waits for (its
	 * audit record and its store commit, in parallel). */
	char			*idem_key;	/* NULL: none; as sent */
	char			*idem_scoped;	/* the store's key */
	unsigned char		 idem_digest[SHA256_LEN];
	struct idem_claim	*idem_claim;
	char			*idem_fields;
	int			 idem_wait;
	bool			 idem_audit_ok;
	bool			 idem_replayed;
	char			 idem_msg[160];
	char			 msgbuf[160];	/* a message made for r */
	const char		*reason;	/* a refusal's reason code */
	/* Least privilege: the owners question or change in flight, and
	 * how many entries of a list were withheld from the caller. */
	struct owners_q		*oq;
	size_t			 withheld;
	bool			 filtered;
	struct prep		*prep;		/* its body, off the loop */
	size_t			 held;		/* counted in req_buffered */
};

/* request.c: the exits (each replies, logs and frees r) and the stages
 * the other files hand r back to. */
bool	req_hold(struct gw_req *, size_t n);
void	req_reply_error(struct gw_req *, int status, const char *code,
	    const char *message, struct json_object *details);
void	req_audit_failed(struct gw_req *);
void	req_reply_stored(struct gw_req *);
void	req_reject(struct gw_req *, int status, const char *code,
	    const char *message, struct json_object *details);
void	req_reject_keyed(struct gw_req *, int status, const char *code,
	    const char *message, const char *original_id);
void	req_continue(struct gw_req *);
void	req_audit_request(struct gw_req *, char *fields);
void	req_record_outcome(struct gw_req *);
void	req_outcome_reply(struct gw_req *);

/* request_idem.c: the Idempotency-Key. */
int	req_idem_key(struct gw_req *, struct evkeyvalq *);
void	req_idem_begin(struct gw_req *, const unsigned char[SHA256_LEN]);
int	req_idem_store_outcome(struct gw_req *);

/* request_owners.c: who may reach which client. */
void	req_check_owner(struct gw_req *);
int	req_owner_change(struct gw_req *, const char *client_id);
int	req_filter_list(struct gw_req *);

/*
 * request_records.c: the fields of r's audit records, one builder per
 * type, each a string to free or NULL (out of memory, or a member that
 * does not fit): the caller handles NULL as it would a failed submit.
 * assigned: the id CryptoMate assigned (req_assigned_id), or NULL.
 */
char	*req_fields_request(const struct gw_req *, const char *bodym);
char	*req_fields_reject(const struct gw_req *, struct json_object *details,
	    const char *original_id, const char *peer);
char	*req_fields_outcome(const struct gw_req *, const char *assigned_name,
	    const char *assigned);
char	*req_fields_replay(const struct gw_req *, const char *original_id);
char	*req_fields_pause(const struct gw_req *, long delay_ms);

#endif
