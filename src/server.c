/*
 * server.c: the evhttp front end of one event loop.
 *
 * Routes are looked up in the table of request.c; everything else is
 * answered here: /healthz, /metrics, 404 and 405, through the reply path
 * of reply.c.
 */
#include "server.h"
#include "audit.h"
#include "budget.h"
#include "conf.h"
#include "guard.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "reply.h"
#include "request.h"
#include "upstream.h"
#include "util.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <json-c/json.h>

static void
send_json(struct evhttp_request *ev, int status, struct json_object *o)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	const char *s = json_object_to_json_string_length(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	evhttp_add_header(evhttp_request_get_output_headers(ev),
	    "Content-Type", "application/json");
	if (b != NULL)
		evbuffer_add(b, s, len);
	reply_send(ev, status, b);
	if (b != NULL)
		evbuffer_free(b);
}

static void
handle_healthz(struct gw_loop *loop, struct evhttp_request *ev)
{
	struct json_object *o = json_object_new_object();
	bool idem_ok = loop->idem == NULL || idem_healthy(loop->idem);
	int ok = audit_healthy(loop->audit) && idem_ok && !loop->draining;

	json_object_object_add(o, "status",
	    json_object_new_string(ok ? "ok" : "unavailable"));
	json_object_object_add(o, "audit", json_object_new_string(
	    audit_healthy(loop->audit) ? "ok" : "failed"));
	/* A failed store refuses keyed requests (fail closed): red. */
	json_object_object_add(o, "idempotency", json_object_new_string(
	    loop->idem == NULL ? "off" : idem_ok ? "ok" : "failed"));
	json_object_object_add(o, "draining",
	    json_object_new_boolean(loop->draining));
	json_object_object_add(o, "upstream_inflight",
	    json_object_new_int(upstream_inflight(loop->up)));
	/* Queue depth per caller and whether CryptoMate's 429 paused us. */
	json_object_object_add(o, "upstream_budget",
	    budget_status(loop->budget));
	send_json(ev, ok ? 200 : 503, o);
	json_object_put(o);
}

/* GET /metrics: the Prometheus text exposition of every loop. */
static void
handle_metrics(struct gw_loop *loop, struct evhttp_request *ev)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL || metrics_render(loop->metrics, loop->audit, loop->idem,
	    b) == -1) {
		if (b != NULL)
			evbuffer_free(b);
		reply_error(ev, 500, "internal_error", "out of memory",
		    NULL, "", NULL, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(ev),
	    "Content-Type", METRICS_CONTENT_TYPE);
	reply_send(ev, 200, b);
	evbuffer_free(b);
}

static const char *
method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "?";
}

#define STRINGIFY_(x)	#x
#define STRINGIFY(x)	STRINGIFY_(x)

/*
 * The answer to a request the guard (guard.c) stopped at the door,
 * written whole to out: the guard sends it around evhttp, which holds
 * no request to answer it by.
 */
int
server_answer_refusal(struct gw_loop *loop, const struct guard_refusal *r,
    struct evbuffer *out)
{
	const char *code = "bad_request", *msg = "malformed request framing";
	const char *hname = NULL, *hvalue = NULL;

	switch (r->status) {
	case 411:
		code = "length_required";
		msg = "send the body with a Content-Length (no chunked "
		    "transfer encoding)";
		break;
	case 405:
		/* TRACE, CONNECT (guard_head.c): refused whole. */
		code = "method_not_allowed";
		msg = "TRACE and CONNECT are not served";
		hname = "Allow";
		hvalue = "GET, HEAD, POST";
		break;
	case 413:
		code = "payload_too_large";
		msg = r->metrics_port ? "the metrics port takes no body over "
		    STRINGIFY(GUARD_METRICS_MAX_BODY) " bytes" :
		    "the body is larger than this route takes "
		    "(limits.max_body_bytes; limits.max_document_body_bytes "
		    "for documents)";
		break;
	case 417:
		code = "expectation_failed";
		msg = "the only expectation served is Expect: 100-continue";
		break;
	case 431:
		code = "headers_too_large";
		msg = "too many or too large request headers";
		break;
	case 503:
		if (r->busy) {
			/* As request.c's own busy answer. */
			code = "busy";
			msg = "the gateway holds limits.max_buffered_bytes of "
			    "bodies; retry shortly";
			hname = "Retry-After";
			hvalue = "1";
		} else if (r->metrics_port) {
			code = "too_many_connections";
			msg = "the metrics port holds its connections (at most "
			    STRINGIFY(GUARD_METRICS_MAX_CONNS) " per loop)";
		} else {
			code = "too_many_connections";
			msg = "the gateway holds limits.max_connections "
			    "connections";
		}
		break;
	}
	if (!r->metrics_port)
		metrics_request(loop->metrics, NULL, NULL, r->status, 0, 0, 0,
		    -1);
	return reply_error_raw(out, r->status, r->head, code, msg, hname,
	    hvalue);
}

/* /healthz, and /metrics when with_metrics: GET or HEAD only.  Returns
 * 1 when path was one of them (answered), else 0. */
static int
serve_status_page(struct gw_loop *loop, struct evhttp_request *ev,
    const char *method, const char *path, bool with_metrics)
{
	int healthz = strcmp(path, "/healthz") == 0;
	char rid[ID_BUF];

	if (!healthz && !(with_metrics && strcmp(path, "/metrics") == 0))
		return 0;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		request_id(rid);
		reply_error(ev, 405, "method_not_allowed", "use GET",
		    NULL, rid, "Allow", "GET");
		return 1;
	}
	if (healthz)
		handle_healthz(loop, ev);
	else
		handle_metrics(loop, ev);
	return 1;
}

/*
 * Answer ev, or hand it to request_start() with the held bytes of its
 * body (true); false when it was answered here, and held is still the
 * caller's.
 */
static bool
route_request(struct gw_loop *loop, struct evhttp_request *ev, size_t held)
{
	const char *uri = evhttp_request_get_uri(ev);
	const char *method = method_name(evhttp_request_get_command(ev));
	struct route_match m;
	struct verrors perrs = { 0 };
	char path[ROUTE_PATH_MAX], rid[ID_BUF], allow[64];
	bool has_query;
	size_t n;

	/* The path as sent, without the query string: /healthz and
	 * /metrics ignore one, the routes refuse it (request.c). */
	n = strcspn(uri, "?#");
	has_query = uri[n] != '\0';
	if (n >= sizeof(path))
		n = sizeof(path) - 1;	/* longer than any route: 404 */
	memcpy(path, uri, n);
	path[n] = '\0';

	/* With a metrics.listen port, /metrics is off the callers' one. */
	if (serve_status_page(loop, ev, method, path, loop->mhttp == NULL))
		return false;
	switch (routes_match(method, path, &m, allow, sizeof(allow), &perrs)) {
	case ROUTE_NOT_FOUND:
		request_id(rid);
		reply_error(ev, 404, "not_found", "no such route", NULL,
		    rid, NULL, NULL);
		metrics_request(loop->metrics, NULL, NULL, 404, 0, 0, 0, -1);
		return false;
	case ROUTE_BAD_METHOD:
		request_id(rid);
		reply_error(ev, 405, "method_not_allowed",
		    "method not allowed on this route", NULL, rid, "Allow",
		    allow);
		metrics_request(loop->metrics, NULL, NULL, 405, 0, 0, 0, -1);
		return false;
	case ROUTE_OK:
	case ROUTE_BAD_PARAM:
		break;
	}
	if (loop->draining) {
		verrors_free(&perrs);
		request_id(rid);
		reply_error(ev, 503, "shutting_down",
		    "the gateway is shutting down", NULL, rid,
		    "Connection", "close");
		metrics_request(loop->metrics, m.route, NULL, 503, 0, 0, 0, -1);
		return false;
	}
	request_start(loop, ev, &m, perrs.n > 0 ? &perrs : NULL, has_query,
	    held);
	verrors_free(&perrs);
	return true;
}

static void
on_request(struct evhttp_request *ev, void *arg)
{
	struct gw_loop *loop = arg;
	size_t held;

	guard_track(ev);
	/* The place its body took under limits.max_buffered_bytes from its
	 * head on (guard.c): the request's own from here, or given back
	 * once it is answered without one. */
	held = guard_claim(ev, REQUEST_BODY_HOLD(evbuffer_get_length(
	    evhttp_request_get_input_buffer(ev))));
	if (!route_request(loop, ev, held))
		request_buffer_release(held);
}

/* The metrics.listen port: /metrics and /healthz, nothing else. */
static void
on_metrics_port(struct evhttp_request *ev, void *arg)
{
	struct gw_loop *loop = arg;
	const char *uri = evhttp_request_get_uri(ev);
	char path[64], rid[ID_BUF];
	size_t n = strcspn(uri, "?#");

	guard_track(ev);
	if (n >= sizeof(path))
		n = sizeof(path) - 1;
	memcpy(path, uri, n);
	path[n] = '\0';
	if (serve_status_page(loop, ev,
	    method_name(evhttp_request_get_command(ev)), path, true))
		return;
	request_id(rid);
	reply_error(ev, 404, "not_found", "this port serves /metrics "
	    "and /healthz", NULL, rid, NULL, NULL);
}

int
server_listen(const char *addr, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	char host[256], *port;
	int fd = -1, one = 1, rc;

	/* "host:port" or "[v6]:port"; resolved once, at startup. */
	if (strlen(addr) >= sizeof(host)) {
		snprintf(err, errlen, "listen: '%s' is too long", addr);
		return -1;
	}
	strcpy(host, addr);
	if ((port = strrchr(host, ':')) == NULL) {
		snprintf(err, errlen, "listen: '%s' is not host:port", addr);
		return -1;
	}
	*port++ = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "listen: %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		snprintf(err, errlen, "listen: socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, 1024) == -1) {
		snprintf(err, errlen, "listen: %s: %s", addr, strerror(errno));
		goto fail;
	}
	freeaddrinfo(ai);
	return fd;
fail:
	if (fd != -1)
		close(fd);
	freeaddrinfo(ai);
	return -1;
}

static void
apply_limits(struct gw_loop *loop, const struct config *c)
{
	struct timeval tv;

	/* libevent has no limits by default: set every one.  The guard
	 * (guard.c) enforces them first, with JSON answers; these are the
	 * backstop. */
	/* The larger cap: the guard holds each route to its own. */
	evhttp_set_max_body_size(loop->http,
	    c->limits.max_document_body_bytes > c->limits.max_body_bytes ?
	    c->limits.max_document_body_bytes : c->limits.max_body_bytes);
	evhttp_set_max_headers_size(loop->http, c->limits.max_header_bytes +
	    1024);
	/* The metrics port's guard reads the same header limits, live:
	 * its evhttp follows them on a reload too. */
	if (loop->mhttp != NULL)
		evhttp_set_max_headers_size(loop->mhttp,
		    c->limits.max_header_bytes + 1024);
	tv.tv_sec = c->limits.idle_timeout_ms / 1000;
	tv.tv_usec = (c->limits.idle_timeout_ms % 1000) * 1000;
	evhttp_set_timeout_tv(loop->http, &tv);
	/* Allow every method so that a wrong one gets our 405, not
	 * libevent's 501. */
	evhttp_set_allowed_methods(loop->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
}

/*
 * metrics.listen: a second evhttp on the loop for /metrics and /healthz
 * only, so the figures can stay off the callers' network.  The guard
 * stands at this door too (guard_metrics_bevcb).
 */
static int
listen_metrics(struct gw_loop *loop, const char *addr, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	struct evhttp_bound_socket *bound;
	int fd;

	if ((fd = server_listen(addr, err, errlen)) == -1)
		return -1;
	if ((loop->mhttp = evhttp_new(loop->base)) == NULL ||
	    (bound = evhttp_accept_socket_with_handle(loop->mhttp,
	    fd)) == NULL) {
		close(fd);
		snprintf(err, errlen, "metrics.listen: cannot accept on %s",
		    addr);
		return -1;
	}
	/* The guard stands at this door too: JSON errors, the limits, a
	 * deadline per request, and a cap of its own on connections. */
	evhttp_set_bevcb(loop->mhttp, guard_metrics_bevcb, loop);
	(void)guard_listen(bound, loop->cfg);
	/* The guard's caps, and slack above them; apply_limits sets the
	 * header cap again on a reload. */
	evhttp_set_max_body_size(loop->mhttp, GUARD_METRICS_MAX_BODY);
	evhttp_set_max_headers_size(loop->mhttp,
	    loop->cfg->limits.max_header_bytes + 1024);
	evhttp_set_timeout(loop->mhttp, 10);
	evhttp_set_allowed_methods(loop->mhttp, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(loop->mhttp, on_metrics_port, loop);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host),
	    port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		log_info("serving /metrics on %s:%s", host, port);
	return 0;
}

static void
log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_pass_flush();
}

/* The loop's gauges for its metrics registry (metrics.h). */
static void
sample_gauges(void *arg, struct metrics_gauges *g)
{
	const struct gw_loop *loop = arg;

	g->conns = loop->conns;
	g->active = loop->active;
	g->inflight = loop->up ? upstream_inflight(loop->up) : 0;
	g->draining = loop->draining ? 1 : 0;
}

int
server_init(struct gw_loop *loop, struct event_base *base,
    struct config *cfg, struct audit *audit, int listen_fd, char *err,
    size_t errlen)
{
	memset(loop, 0, sizeof(*loop));
	TAILQ_INIT(&loop->reqs);
	loop->base = base;
	loop->cfg = conf_ref(cfg);
	loop->audit = audit;
	if ((loop->http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		return -1;
	}
	apply_limits(loop, cfg);
	evhttp_set_gencb(loop->http, on_request, loop);
	evhttp_set_bevcb(loop->http, guard_bevcb, loop);
	if ((loop->up = upstream_new(base, cfg, err, errlen)) == NULL)
		return -1;
	if ((loop->budget = budget_new(base, cfg, err, errlen)) == NULL)
		return -1;
	/* Never added, only activated by reply_access_log(). */
	if ((loop->log_flush = event_new(base, -1, 0, log_flush_cb,
	    NULL)) == NULL || (loop->unauth_note = evtimer_new(base,
	    reply_unauth_tick, loop)) == NULL) {
		snprintf(err, errlen, "event_new failed");
		return -1;
	}
	if ((loop->aport = audit_port_new(audit, base)) == NULL) {
		snprintf(err, errlen, "audit: cannot attach to the loop");
		return -1;
	}
	if ((loop->metrics = metrics_new(base, sample_gauges, loop)) == NULL) {
		snprintf(err, errlen, "metrics: out of memory");
		return -1;
	}
	if (cfg->metrics.listen != NULL &&
	    listen_metrics(loop, cfg->metrics.listen, err, errlen) == -1)
		return -1;
	if (listen_fd < 0 &&
	    (listen_fd = server_listen(cfg->listen, err, errlen)) == -1)
		return -1;
	if ((loop->bound = evhttp_accept_socket_with_handle(loop->http,
	    listen_fd)) == NULL) {
		snprintf(err, errlen, "listen: cannot accept on %s",
		    cfg->listen);
		return -1;
	}
	(void)guard_listen(loop->bound, cfg);
	return 0;
}

int
server_reload(struct gw_loop *loop, struct config *cfg)
{
	if (upstream_set_config(loop->up, cfg) == -1 ||
	    budget_configure(loop->budget, cfg) == -1)
		return -1;
	apply_limits(loop, cfg);
	conf_unref(loop->cfg);
	loop->cfg = conf_ref(cfg);
	return 0;
}

void
server_stop_accepting(struct gw_loop *loop)
{
	loop->draining = true;
	if (loop->bound) {
		evhttp_del_accept_socket(loop->http, loop->bound);
		loop->bound = NULL;
	}
}

void
server_free(struct gw_loop *loop)
{
	/* Exit after shutdown_timeout_ms: what is still in flight goes. */
	request_abort_all(loop);
	log_pass_flush();
	if (loop->log_flush)
		event_free(loop->log_flush);
	if (loop->unauth_note)
		event_free(loop->unauth_note);
	if (loop->http)
		evhttp_free(loop->http);
	if (loop->mhttp)
		evhttp_free(loop->mhttp);
	metrics_free(loop->metrics);
	if (loop->budget)
		budget_free(loop->budget);
	if (loop->up)
		upstream_free(loop->up);
	if (loop->aport)
		audit_port_free(loop->aport);
	idem_port_free(loop->iport);
	offload_port_free(loop->oport);
	conf_unref(loop->cfg);
	memset(loop, 0, sizeof(*loop));
}

int
server_attach(struct gw_loop *loop, struct idem *im, struct offload *o)
{
	loop->idem = im;
	if (o != NULL && (loop->oport = offload_port_new(o, loop->base)) ==
	    NULL)
		return -1;
	if (im == NULL)
		return 0;
	return (loop->iport = idem_port_new(im, loop->base)) == NULL ? -1 : 0;
}
