/*
 * upstream.c: forwarding to CryptoMate with libcurl's multi_socket
 * interface, driven by the gateway's libevent loop (the pattern of
 * curl's hiperfifo example), so hundreds of slow upstream calls wait
 * at once without blocking each other or the callers.
 *
 * This is the only room that holds the API key.  It lives in a
 * refcounted "profile" together with the URL and TLS settings; each
 * transfer keeps a reference to the profile it started with, so a
 * SIGHUP that swaps the key lets transfers in flight finish with the
 * old one.
 *
 * libcurl rules kept here: never call back into the multi from its own
 * callbacks; socket and timer callbacks return 0 (-1 aborts every
 * transfer); the message from curl_multi_info_read is read before the
 * handle is removed.
 */
#include "upstream.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>

struct up_profile {
	int		 refs;
	char		*base_url;
	char		*key_header;	/* "x-api-key: <key>"; wiped on free */
	size_t		 key_header_len;
	char		*ca_file;
	long		 connect_timeout_ms;
	long		 timeout_ms;
	size_t		 max_response;
};

struct up_xfer {
	struct upstream		*up;
	struct up_profile	*prof;
	CURL			*easy;
	struct curl_slist	*headers;
	char			*body;
	char			*resp;
	size_t			 resp_len, resp_cap;
	int			 too_large;
	long			 retry_after_s;
	uint64_t		 started_ns;
	upstream_cb		 cb;
	void			*arg;
	char			 errbuf[CURL_ERROR_SIZE];
};

struct up_sock {
	struct event	*ev;
	curl_socket_t	 fd;
	int		 what;
};

struct upstream {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	struct up_profile	*prof;
	int			 inflight;
	int			 in_callback;	/* guards re-entry */
	/* Idle easy handles, reused so curl keeps their state warm. */
	CURL			**pool;
	int			 npool, pool_cap;
};

static void check_multi_info(struct upstream *);

static void
profile_unref(struct up_profile *p)
{
	if (p == NULL || --p->refs > 0)
		return;
	free(p->base_url);
	if (p->key_header)
		secret_free(p->key_header, p->key_header_len);
	free(p->ca_file);
	free(p);
}

static struct up_profile *
profile_new(const struct config *c)
{
	struct up_profile *p;
	static const char prefix[] = "x-api-key: ";

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->refs = 1;
	p->key_header_len = sizeof(prefix) + c->api_key_len;
	p->base_url = strdup(c->upstream.base_url);
	p->key_header = malloc(p->key_header_len);
	if (c->upstream.ca_file)
		p->ca_file = strdup(c->upstream.ca_file);
	if (p->base_url == NULL || p->key_header == NULL ||
	    (c->upstream.ca_file && p->ca_file == NULL)) {
		profile_unref(p);
		return NULL;
	}
	memcpy(p->key_header, prefix, sizeof(prefix) - 1);
	memcpy(p->key_header + sizeof(prefix) - 1, c->api_key, c->api_key_len);
	p->key_header[p->key_header_len - 1] = '\0';
	p->connect_timeout_ms = c->upstream.connect_timeout_ms;
	p->timeout_ms = c->upstream.timeout_ms;
	p->max_response = (size_t)c->upstream.max_response_bytes;
	return p;
}

/* ---- libcurl <-> libevent glue ------------------------------------ */

static void
on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;
	int action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(up->multi, fd, action, &running);
	check_multi_info(up);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;
	int running;

	curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(up);
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct upstream *up = arg;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(up->timer);
		return 0;
	}
	/* Even a 0 timeout goes through the loop: calling
	 * curl_multi_socket_action from here would re-enter libcurl. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(up->timer, &tv);
	return 0;
}

static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct upstream *up = arg;
	struct up_sock *us = sockp;
	short kind;

	if (what == CURL_POLL_REMOVE) {
		if (us) {
			event_free(us->ev);
			free(us);
			curl_multi_assign(up->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (us == NULL) {
		if ((us = calloc(1, sizeof(*us))) == NULL)
			return 0;
		us->fd = s;
		curl_multi_assign(up->multi, s, us);
	} else if (us->what == what)
		return 0;
	else {
		event_free(us->ev);
		us->ev = NULL;
	}
	us->what = what;
	us->ev = event_new(up->base, s, kind, on_socket_event, up);
	if (us->ev == NULL || event_add(us->ev, NULL) == -1)
		log_error("%s: cannot watch an upstream socket", __func__);
	return 0;
}

/* ---- per-transfer callbacks -------------------------------------- */

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct up_xfer *x = arg;
	size_t n = size * nmemb;

	if (x->resp_len + n > x->prof->max_response) {
		x->too_large = 1;
		return 0;	/* a short count makes curl fail the transfer */
	}
	if (x->resp_len + n + 1 > x->resp_cap) {
		size_t cap = x->resp_cap ? x->resp_cap : 1024;
		char *p;
		while (cap < x->resp_len + n + 1)
			cap *= 2;
		if (cap > x->prof->max_response + 1)
			cap = x->prof->max_response + 1;
		if ((p = realloc(x->resp, cap)) == NULL)
			return 0;
		x->resp = p;
		x->resp_cap = cap;
	}
	memcpy(x->resp + x->resp_len, data, n);
	x->resp_len += n;
	x->resp[x->resp_len] = '\0';
	return n;
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct up_xfer *x = arg;
	size_t n = size * nmemb;

	if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
		char tmp[32];
		size_t len = n - 12 < sizeof(tmp) - 1 ? n - 12 : sizeof(tmp) - 1;
		char *end;
		long v;

		memcpy(tmp, data + 12, len);
		tmp[len] = '\0';
		v = strtol(tmp, &end, 10);
		/* Only the delta-seconds form; an HTTP date is rare here
		 * and is treated as "1 second". */
		x->retry_after_s = (end != tmp && v >= 0) ? v : 1;
	}
	return n;
}

static void
xfer_free(struct up_xfer *x)
{
	struct upstream *up = x->up;

	if (x->easy) {
		curl_easy_reset(x->easy);
		if (up->npool < up->pool_cap)
			up->pool[up->npool++] = x->easy;
		else
			curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	profile_unref(x->prof);
	free(x->body);
	free(x->resp);
	free(x);
}

static enum up_error
classify(struct up_xfer *x, CURLcode rc)
{
	curl_off_t sent = 0;
	long reqsize = 0;

	if (rc == CURLE_OK)
		return UP_OK;
	if (x->too_large)
		return UP_TOO_LARGE;
	curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &reqsize);
	curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &sent);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return UP_NOT_SENT;
	case CURLE_OPERATION_TIMEDOUT:
		/* Nothing written yet (connect phase): it never left. */
		return (reqsize == 0 && sent == 0) ? UP_NOT_SENT : UP_TIMEOUT;
	default:
		return (reqsize == 0 && sent == 0) ? UP_NOT_SENT : UP_FAILED;
	}
}

static void
check_multi_info(struct upstream *up)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(up->multi, &left)) != NULL) {
		struct up_xfer *x = NULL;
		struct up_result r;
		CURLcode rc;
		char *ct = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &x);
		memset(&r, 0, sizeof(r));
		r.error = classify(x, rc);
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
		curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
		r.content_type = ct;
		r.body = x->resp ? x->resp : "";
		r.body_len = x->resp_len;
		r.retry_after_s = x->retry_after_s;
		r.latency_ms = (double)(now_mono_ns() - x->started_ns) / 1e6;
		r.error_text = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
		curl_multi_remove_handle(up->multi, x->easy);
		up->inflight--;
		x->cb(&r, x->arg);
		xfer_free(x);
	}
}

/* ---- public ------------------------------------------------------ */

struct upstream *
upstream_new(struct event_base *base, const struct config *c, char *err,
    size_t errlen)
{
	struct upstream *up;

	if ((up = calloc(1, sizeof(*up))) == NULL)
		goto oom;
	up->base = base;
	up->pool_cap = 1024;
	if ((up->pool = calloc((size_t)up->pool_cap, sizeof(CURL *))) == NULL)
		goto oom;
	if ((up->prof = profile_new(c)) == NULL)
		goto oom;
	if ((up->multi = curl_multi_init()) == NULL ||
	    (up->timer = evtimer_new(base, on_timer, up)) == NULL)
		goto oom;
	curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
	curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
	/* A connection cache sized to the concurrency: curl's default
	 * (4x the transfers in flight) closes idle connections when load
	 * changes, and each reconnect is a full TLS handshake. */
	curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS,
	    (long)c->upstream.max_connections);
	return up;
oom:
	snprintf(err, errlen, "upstream: cannot initialise (out of memory)");
	upstream_free(up);
	return NULL;
}

void
upstream_free(struct upstream *up)
{
	int i;

	if (up == NULL)
		return;
	if (up->multi)
		curl_multi_cleanup(up->multi);	/* may call socket_cb */
	if (up->timer)
		event_free(up->timer);
	for (i = 0; i < up->npool; i++)
		curl_easy_cleanup(up->pool[i]);
	free(up->pool);
	profile_unref(up->prof);
	free(up);
}

int
upstream_set_config(struct upstream *up, const struct config *c)
{
	struct up_profile *p;

	if ((p = profile_new(c)) == NULL)
		return -1;
	profile_unref(up->prof);
	up->prof = p;
	return 0;
}

int
upstream_inflight(const struct upstream *up)
{
	return up->inflight;
}

static int
add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *n = curl_slist_append(*list, h);

	if (n == NULL)
		return -1;
	*list = n;
	return 0;
}

struct up_xfer *
upstream_post(struct upstream *up, const char *path, const char *body,
    size_t len, const char *request_id, const char *idem_key,
    upstream_cb cb, void *arg)
{
	struct up_xfer *x;
	char url[2048], hdr[400];
	CURL *e;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->up = up;
	x->prof = up->prof;
	x->prof->refs++;
	x->cb = cb;
	x->arg = arg;
	x->retry_after_s = -1;
	if ((x->body = malloc(len + 1)) == NULL)
		goto fail;
	memcpy(x->body, body, len);
	x->body[len] = '\0';
	if (up->npool > 0)
		x->easy = up->pool[--up->npool];
	else if ((x->easy = curl_easy_init()) == NULL)
		goto fail;
	e = x->easy;

	/* The allowlist of headers that reach CryptoMate: nothing of the
	 * caller's is copied, so its Authorization or x-api-key cannot
	 * leak through.  "Expect:" stops curl's 100-continue dance. */
	snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", request_id);
	if (add_header(&x->headers, x->prof->key_header) == -1 ||
	    add_header(&x->headers, "Content-Type: application/json") == -1 ||
	    add_header(&x->headers, "Accept: application/json") == -1 ||
	    add_header(&x->headers, hdr) == -1 ||
	    add_header(&x->headers, "Expect:") == -1)
		goto fail;
	if (idem_key) {
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", idem_key);
		if (add_header(&x->headers, hdr) == -1)
			goto fail;
	}
	snprintf(url, sizeof(url), "%s%s", x->prof->base_url, path);

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->prof->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    x->prof->connect_timeout_ms);
	/* Never follow a redirect: the key would go to another host. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (x->prof->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, x->prof->ca_file);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	x->started_ns = now_mono_ns();
	if (curl_multi_add_handle(up->multi, e) != CURLM_OK)
		goto fail;
	up->inflight++;
	return x;
fail:
	xfer_free(x);
	return NULL;
}

void
upstream_cancel(struct up_xfer *x)
{
	if (x == NULL)
		return;
	curl_multi_remove_handle(x->up->multi, x->easy);
	x->up->inflight--;
	xfer_free(x);
}
