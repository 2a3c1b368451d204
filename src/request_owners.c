/*
 * request_owners.c: least privilege for a request, over the owners
 * store (owners.c).
 *
 * A caller that reaches only its own clients has three checks: a route
 * that names a client waits for that client's owner before anything
 * else (a client it does not own looks like one that does not exist);
 * a list is filtered, off the loop, to the entries it owns before
 * anything is recorded or sent; and what CryptoMate's answer changes
 * (a client created is its creator's, one deleted is nobody's) is
 * written down, in parallel with the outcome record.  Every answer
 * leaves through request.c.
 */
#include "request_int.h"
#include "conf.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "owners.h"

#include <stdlib.h>
#include <string.h>

/*
 * The owner of the client the path names is known.  A caller that does
 * not own it gets the very answer a client that does not exist gives
 * (404, the same message, no id echoed), so that ids cannot be probed;
 * the reject record says why (reason not_owner).
 */
static void
on_owner(struct owners_q *q, void *arg)
{
	struct gw_req *r = arg;

	r->oq = NULL;
	if (q->rc != 0) {
		req_reply_error(r, 503, "ownership_unavailable",
		    "the ownership store is unavailable; nothing is "
		    "forwarded", NULL);
		return;
	}
	if (!q->found || strcmp(q->owner, r->caller->name) != 0) {
		r->reason = "not_owner";
		metrics_forbidden(r->loop->metrics, r->caller->name, r->route,
		    "not_owner");
		req_reject(r, 404, "not_found", "client not found", NULL);
		return;
	}
	req_continue(r);
}

/* Ask who owns the client r's path names; the rest of r waits for the
 * answer (store thread). */
void
req_check_owner(struct gw_req *r)
{
	if (r->loop->iport == NULL ||
	    (r->oq = owners_get(r->loop->iport, route_arg(&r->m,
	    "client_id"), on_owner, r)) == NULL)
		req_reply_error(r, 503, "ownership_unavailable",
		    "the ownership store is unavailable; nothing is "
		    "forwarded", NULL);
}

static void
on_owner_changed(struct owners_q *q, void *arg)
{
	struct gw_req *r = arg;

	r->oq = NULL;
	/* Not durable: the caller still gets CryptoMate's answer (hiding a
	 * created client would be worse); an operator can assign it. */
	if (q->rc != 0)
		log_error("request %s: the owner of client %s was not "
		    "recorded; assign it with cmgate-idem owners assign",
		    r->id, q->client_id);
	if (--r->idem_wait > 0)
		return;
	req_outcome_reply(r);
}

/*
 * What CryptoMate's answer changes in ownership: a created client
 * (client_id, the id it assigned, or NULL) is its creator's, a deleted
 * one is nobody's.  0 when a change was queued (the answer waits for
 * it).
 */
int
req_owner_change(struct gw_req *r, const char *client_id)
{
	const char *id;

	if (r->code != NULL || r->up_status < 200 || r->up_status > 299)
		return -1;
	if (client_id != NULL) {
		if (r->loop->iport == NULL) {
			log_warn("request %s: no store (idempotency.enabled is "
			    "false): the owner of client %s is not recorded",
			    r->id, client_id);
			return -1;
		}
		r->oq = owners_put(r->loop->iport, client_id, r->caller->name,
		    on_owner_changed, r);
	} else if (strcmp(r->route->name, "individuals.delete") == 0 &&
	    (id = route_arg(&r->m, "client_id")) != NULL &&
	    r->loop->iport != NULL)
		r->oq = owners_del(r->loop->iport, id, on_owner_changed, r);
	else
		return -1;
	if (r->oq == NULL) {
		log_error("request %s: cannot queue the owner change", r->id);
		return -1;
	}
	return 0;
}

static void
on_list_filtered(struct owners_q *q, void *arg)
{
	struct gw_req *r = arg;

	r->oq = NULL;
	if (q->rc != 0) {
		/* Never pass on a list that could not be filtered. */
		free(r->resp);
		r->resp = NULL;
		r->resp_len = 0;
		r->error_class = EC_UPSTREAM_ERROR;
		r->status = 502;
		r->code = "upstream_unavailable";
		r->message = "CryptoMate's list could not be read";
	} else {
		free(r->resp);
		r->resp = q->out;
		r->resp_len = q->out_len;
		q->out = NULL;
		r->withheld = q->withheld;
		r->filtered = true;
	}
	req_record_outcome(r);
}

/*
 * individuals.list for a caller that reaches only its own clients: the
 * answer is filtered (off the loop) to the entries it owns before
 * anything is recorded or sent.  0 when filtering was started.
 */
int
req_filter_list(struct gw_req *r)
{
	if (strcmp(r->route->name, "individuals.list") != 0 ||
	    r->caller->clients_all || r->code != NULL)
		return -1;
	if (r->up_status < 200 || r->up_status > 299) {
		/* Not a list, so nothing can be filtered out of it: its
		 * status goes on, its body (anything CryptoMate put in it)
		 * does not. */
		if (r->resp_len > 0) {
			free(r->resp);
			r->resp = NULL;
			r->resp_len = 0;
			r->status = r->up_status;
			r->code = "upstream_answer_withheld";
			r->message = "CryptoMate refused the list; its answer "
			    "is withheld from a caller that reaches only its "
			    "own clients";
		}
		return -1;
	}
	/* The answer moves to the filter (no copy); the kept entries come
	 * back in its place. */
	if (r->loop->iport != NULL && (r->oq = owners_filter(r->loop->iport,
	    r->caller->name, &r->resp, r->resp_len,
	    r->cfg->limits.max_json_depth, on_list_filtered, r)) != NULL)
		r->resp_len = 0;
	if (r->oq == NULL) {
		struct owners_q none = { .rc = -1 };
		on_list_filtered(&none, r);
	}
	return 0;
}
