/*
 * upstream.c: forwarding to CryptoMate with libcurl's multi_socket
 * interface, driven by the gateway's libevent loop (the pattern of
 * curl's hiperfifo example), so hundreds of slow upstream calls wait
 * at once without blocking each other or the callers.
 *
 * This is the only module that sends the API key (conf.c reads it from
 * the environment or its file and holds it in the config).  It lives in a
 * refcounted "profile" together with the URL and TLS settings; each
 * transfer keeps a reference to the profile it started with, so a
 * SIGHUP that swaps the key lets transfers in flight finish with the
 * old one.
 *
 * libcurl rules kept here: never call back into the multi from its own
 * callbacks; socket and timer callbacks return 0 (-1 aborts every
 * transfer); the message from curl_multi_info_read is read before the
 * handle is removed.
 *
 * Per-request work is kept small (docs/benchmarks.md): easy handles are
 * pooled with their options still set for the profile, the fixed
 * headers are one list per profile that each transfer's own headers
 * link into (no copies of the key), the URL is built once per profile,
 * and an upstream connection's socket stays registered with the loop
 * between transfers: it leaves epoll only when curl closes it.
 */
#include "upstream.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>

/* The headers every transfer of a profile sends; each transfer links
 * its own (X-Request-Id) in front of them. */
#define UP_FIXED_HEADERS 4

struct up_profile {
	int		 refs;
	unsigned	 gen;		/* easy handles set up for it carry it */
	char		*base_url;
	char		*key_header;	/* "x-api-key: <key>"; wiped on free */
	size_t		 key_header_len;
	char		*ca_file;
	long		 connect_timeout_ms;
	long		 timeout_ms;
	size_t		 max_response;
	/* The allowlist of headers that reach CryptoMate: nothing of the
	 * caller's is copied, so its Authorization or x-api-key cannot
	 * leak through.  "Expect:" stops curl's 100-continue dance.  The
	 * nodes point at the strings above: no copy of the key is made. */
	struct curl_slist fixed[UP_FIXED_HEADERS];
	/* base_url + path for the last path asked for (one route today). */
	char		*url;
	size_t		 base_len;
};

/* An idle easy handle, still set up for profile generation gen. */
struct up_easy {
	CURL		*easy;
	unsigned	 gen;
};

struct up_xfer {
	struct upstream		*up;
	struct up_profile	*prof;
	CURL			*easy;
	unsigned		 easy_gen;
	/* This transfer's own header, linked in front of prof->fixed.
	 * The caller's Idempotency-Key is not sent: CryptoMate documents
	 * none, and callers' raw keys could collide there (README). */
	struct curl_slist	 own;
	char			 h_request_id[64];
	const char		*body;		/* borrowed from the request */
	size_t			 max_response;	/* this route's cap */
	char			*resp;
	size_t			 resp_len, resp_cap;
	int			 too_large;
	long			 retry_after_s;
	char			 trace_id[65];	/* CryptoMate's X-Trace-Id */
	uint64_t		 started_ns;
	upstream_cb		 cb;
	void			*arg;
	char			 errbuf[CURL_ERROR_SIZE];
};

/*
 * One socket curl asked the loop to watch.  A connection's socket
 * (made through sock_open) is not taken out of epoll when its transfer
 * ends: it is "parked" with EV_READ and stays until curl closes it
 * (sock_close), so the next transfer on the connection costs no
 * epoll_ctl at all.  A parked socket that turns readable (the server
 * closed it) is taken out at once and left for curl to find dead.
 * Other sockets (the resolver's) are removed when curl says so.
 */
struct up_sock {
	struct event	*ev;
	curl_socket_t	 fd;
	short		 kind;		/* EV_READ / EV_WRITE while added */
	unsigned	 conn:1;	/* a connection: kept between transfers */
	unsigned	 added:1;	/* in the loop */
	unsigned	 parked:1;	/* curl is not watching it */
};

struct upstream {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	struct up_profile	*prof;
	unsigned		 gen;		/* of the current profile */
	int			 inflight;
	int			 max_inflight;	/* upstream.max_inflight */
	int			 in_callback;	/* guards re-entry */
	/* Idle easy handles, reused so curl keeps their state warm. */
	struct up_easy		*pool;
	int			 npool, pool_cap;
	/* Watched sockets by descriptor. */
	struct up_sock		**socks;
	int			 nsocks;
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
	free(p->url);
	free(p);
}

static struct up_profile *
profile_new(const struct config *c)
{
	struct up_profile *p;
	static const char prefix[] = "x-api-key: ";
	int i;

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
	p->fixed[0].data = p->key_header;
	p->fixed[1].data = (char *)"Content-Type: application/json";
	p->fixed[2].data = (char *)"Accept: application/json";
	p->fixed[3].data = (char *)"Expect:";
	for (i = 0; i + 1 < UP_FIXED_HEADERS; i++)
		p->fixed[i].next = &p->fixed[i + 1];
	p->fixed[UP_FIXED_HEADERS - 1].next = NULL;
	return p;
}

/* base_url + path, built once per profile and path. */
static const char *
profile_url(struct up_profile *p, const char *path)
{
	size_t n;

	if (p->url != NULL && strcmp(p->url + p->base_len, path) == 0)
		return p->url;
	free(p->url);
	p->base_len = strlen(p->base_url);
	n = p->base_len + strlen(path) + 1;
	if (n > 2048 || (p->url = malloc(n)) == NULL) {
		p->url = NULL;
		return NULL;
	}
	snprintf(p->url, n, "%s%s", p->base_url, path);
	return p->url;
}

/* ---- libcurl <-> libevent glue ------------------------------------ */

static struct up_sock *
sock_get(struct upstream *up, curl_socket_t fd)
{
	return (fd >= 0 && fd < up->nsocks) ? up->socks[fd] : NULL;
}

/* The entry for fd, made when missing; NULL when out of memory. */
static struct up_sock *
sock_make(struct upstream *up, curl_socket_t fd)
{
	struct up_sock *us;

	if (fd < 0)
		return NULL;
	if (fd >= up->nsocks) {
		int n = up->nsocks ? up->nsocks : 64;
		struct up_sock **t;
		while (n <= fd)
			n *= 2;
		if ((t = realloc(up->socks, (size_t)n * sizeof(*t))) == NULL)
			return NULL;
		memset(t + up->nsocks, 0, (size_t)(n - up->nsocks) *
		    sizeof(*t));
		up->socks = t;
		up->nsocks = n;
	}
	if ((us = up->socks[fd]) == NULL) {
		if ((us = calloc(1, sizeof(*us))) == NULL)
			return NULL;
		us->fd = fd;
		up->socks[fd] = us;
	}
	return us;
}

static void
sock_forget(struct upstream *up, struct up_sock *us)
{
	if (us->ev != NULL)
		event_free(us->ev);
	up->socks[us->fd] = NULL;
	free(us);
}

static void
on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;
	struct up_sock *us = sock_get(up, fd);
	int action = 0, running;

	if (us != NULL && us->parked) {
		/* An idle connection turned readable: the server closed
		 * it.  Stop watching; curl finds it dead before reuse. */
		event_del(us->ev);
		us->added = 0;
		return;
	}
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

/* Watch fd for kind (EV_READ and/or EV_WRITE); a no-op when it already
 * is, so a kept connection costs nothing from one transfer to the
 * next. */
static void
sock_watch(struct upstream *up, struct up_sock *us, short kind)
{
	if (us->ev != NULL && us->kind == kind) {
		if (!us->added && event_add(us->ev, NULL) == 0)
			us->added = 1;
		return;
	}
	if (us->ev != NULL)
		event_free(us->ev);
	us->added = 0;
	us->kind = kind;
	if ((us->ev = event_new(up->base, us->fd, kind | EV_PERSIST,
	    on_socket_event, up)) == NULL || event_add(us->ev, NULL) == -1) {
		log_error("%s: cannot watch an upstream socket", __func__);
		return;
	}
	us->added = 1;
}

static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct upstream *up = arg;
	struct up_sock *us = sock_get(up, s);

	if (what == CURL_POLL_REMOVE) {
		if (us == NULL)
			return 0;
		if (!us->conn) {
			sock_forget(up, us);
			return 0;
		}
		/* A connection going back to curl's cache: park it. */
		us->parked = 1;
		sock_watch(up, us, EV_READ);
		return 0;
	}
	if (us == NULL && (us = sock_make(up, s)) == NULL) {
		log_error("%s: cannot watch an upstream socket (out of "
		    "memory)", __func__);
		return 0;
	}
	us->parked = 0;
	sock_watch(up, us, (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0)));
	return 0;
}

/* Every connection socket is made here, so it can be kept in the loop
 * between transfers (see struct up_sock). */
static curl_socket_t
sock_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct upstream *up = arg;
	struct up_sock *us;
	curl_socket_t fd;

	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == CURL_SOCKET_BAD)
		return fd;
	/* An entry left for this descriptor belonged to a socket closed
	 * behind our back: it is stale. */
	if ((us = sock_get(up, fd)) != NULL)
		sock_forget(up, us);
	if ((us = sock_make(up, fd)) == NULL) {
		close(fd);
		return CURL_SOCKET_BAD;
	}
	us->conn = 1;
	return fd;
}

/* curl closes a socket: out of the loop first, so the descriptor can
 * be reused at once. */
static int
sock_close(void *arg, curl_socket_t fd)
{
	struct upstream *up = arg;
	struct up_sock *us = sock_get(up, fd);

	if (us != NULL)
		sock_forget(up, us);
	return close(fd);
}

/* ---- per-transfer callbacks -------------------------------------- */

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct up_xfer *x = arg;
	size_t n = size * nmemb;

	if (x->resp_len + n > x->max_response) {
		x->too_large = 1;
		return 0;	/* a short count makes curl fail the transfer */
	}
	if (x->resp_len + n + 1 > x->resp_cap) {
		size_t cap = x->resp_cap ? x->resp_cap : 1024;
		char *p;
		while (cap < x->resp_len + n + 1)
			cap *= 2;
		if (cap > x->max_response + 1)
			cap = x->max_response + 1;
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

/*
 * CryptoMate's Retry-After, clamped: delta-seconds above
 * UP_RETRY_AFTER_MAX_S (however many digits) are that maximum, and
 * anything that is not delta-seconds (an HTTP date, a sign, garbage,
 * nothing) is 1 second.  Digits are summed with a cap instead of
 * strtol, so no value overflows; the clamped value is both what
 * pauses the budget and what the caller is told.
 */
static long
retry_after_parse(const char *v, size_t len)
{
	const char *e = v + len;
	long s = 0;
	int digits = 0;

	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' ||
	    e[-1] == '\t'))
		e--;
	for (; v < e && *v >= '0' && *v <= '9'; v++, digits++)
		if (s <= UP_RETRY_AFTER_MAX_S)
			s = s * 10 + (*v - '0');
	if (digits == 0 || v != e)
		return 1;
	return s > UP_RETRY_AFTER_MAX_S ? UP_RETRY_AFTER_MAX_S : s;
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct up_xfer *x = arg;
	size_t n = size * nmemb;

	/* A new status line (after a 1xx): forget the previous headers. */
	if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
		x->retry_after_s = -1;
		x->trace_id[0] = '\0';
		return n;
	}
	if (n > 11 && strncasecmp(data, "X-Trace-Id:", 11) == 0) {
		const char *v = data + 11, *e = data + n;
		size_t len;

		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == '\r' || e[-1] == '\n' ||
		    e[-1] == ' ' || e[-1] == '\t'))
			e--;
		len = (size_t)(e - v);
		/* Relayed to the caller, so only a plain token is kept. */
		if (len == 0 || len >= sizeof(x->trace_id) ||
		    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_.") < len)
			return n;
		memcpy(x->trace_id, v, len);
		x->trace_id[len] = '\0';
		return n;
	}
	if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0)
		x->retry_after_s = retry_after_parse(data + 12, n - 12);
	return n;
}

static void
xfer_free(struct up_xfer *x)
{
	struct upstream *up = x->up;

	if (x->easy) {
		/* Back to the pool with its options still set; pointers
		 * into this transfer are cleared. */
		curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
		curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, NULL);
		curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, NULL);
		curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, NULL);
		if (up->npool < up->pool_cap) {
			up->pool[up->npool].easy = x->easy;
			up->pool[up->npool].gen = x->easy_gen;
			up->npool++;
		} else
			curl_easy_cleanup(x->easy);
	}
	profile_unref(x->prof);
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
		/* Only a final status is an answer: a 1xx the exchange ended
		 * on, or a code outside HTTP's range, is never relayed. */
		if (r.error == UP_OK && (r.status < 200 || r.status > 599)) {
			r.error = UP_BAD_STATUS;
			snprintf(x->errbuf, sizeof(x->errbuf), "CryptoMate "
			    "answered with status %ld, not a final status",
			    r.status);
		}
		curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
		r.content_type = ct;
		r.body = x->resp ? x->resp : "";
		r.body_len = x->resp_len;
		r.retry_after_s = x->retry_after_s;
		r.trace_id = x->trace_id[0] ? x->trace_id : NULL;
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
	if ((up->pool = calloc((size_t)up->pool_cap, sizeof(*up->pool))) ==
	    NULL)
		goto oom;
	if ((up->prof = profile_new(c)) == NULL)
		goto oom;
	up->prof->gen = ++up->gen;
	up->max_inflight = c->upstream.max_inflight;
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
	for (i = 0; i < up->npool; i++)
		curl_easy_cleanup(up->pool[i].easy);
	/* Sockets still listed were closed by curl's cleanup. */
	for (i = 0; i < up->nsocks; i++)
		if (up->socks[i] != NULL)
			sock_forget(up, up->socks[i]);
	free(up->socks);
	if (up->timer)
		event_free(up->timer);
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
	p->gen = ++up->gen;
	profile_unref(up->prof);
	up->prof = p;
	up->max_inflight = c->upstream.max_inflight;
	return 0;
}

int
upstream_inflight(const struct upstream *up)
{
	return up->inflight;
}

/* The options that stay the same for every transfer of a profile,
 * set once per pooled handle and profile. */
static void
easy_setup(CURL *e, struct upstream *up, const struct up_profile *p)
{
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout_ms);
	/* Never follow a redirect: the key would go to another host. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* Never through a proxy: libcurl would otherwise take one from
	 * http_proxy, HTTPS_PROXY, ALL_PROXY (and skip it by NO_PROXY), and
	 * the key and the personal data would go where base_url does not
	 * say.  An empty PROXY turns the environment off; NOPROXY "*"
	 * says the same again for every host. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (p->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, sock_open);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, up);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, sock_close);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, up);
}

/*
 * The method of one transfer on a pooled handle, which may have carried
 * another method before: every option a method sets is set each time.
 * GET and DELETE send no body; POST and PUT send the borrowed one.
 */
static void
easy_method(CURL *e, const struct up_call *c)
{
	if (strcmp(c->method, "GET") == 0 || strcmp(c->method, "DELETE") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
		    c->method[0] == 'D' ? "DELETE" : NULL);
		return;
	}
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
	    c->method[0] == 'P' && c->method[1] == 'U' ? "PUT" : NULL);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body ? c->body : "");
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
}

struct up_xfer *
upstream_send(struct upstream *up, const struct up_call *c, upstream_cb cb,
    void *arg)
{
	const char *request_id = c->request_id;
	struct up_xfer *x;
	struct up_profile *p = up->prof;
	const char *url;
	CURL *e;
	int n;

	/* upstream.max_inflight: refused, not queued; the caller answers
	 * 503 upstream_busy (see upstream.h). */
	if (up->inflight >= up->max_inflight) {
		errno = EBUSY;
		return NULL;
	}
	if ((url = profile_url(p, c->path)) == NULL)
		return NULL;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->up = up;
	x->prof = p;
	p->refs++;
	x->cb = cb;
	x->arg = arg;
	x->retry_after_s = -1;
	x->body = c->body;
	x->max_response = c->max_response > 0 ? c->max_response :
	    p->max_response;

	/* This transfer's own header, in front of the profile's fixed
	 * ones (the allowlist: see struct up_profile).  A value that does
	 * not fit is refused, never cut. */
	n = snprintf(x->h_request_id, sizeof(x->h_request_id),
	    "X-Request-Id: %s", request_id);
	if (n < 0 || (size_t)n >= sizeof(x->h_request_id))
		goto fail;
	x->own.data = x->h_request_id;
	x->own.next = p->fixed;

	/* A pooled handle keeps the options of the profile it was set up
	 * for; one from an older profile (before a reload) starts over. */
	if (up->npool > 0) {
		up->npool--;
		x->easy = up->pool[up->npool].easy;
		x->easy_gen = up->pool[up->npool].gen;
	} else if ((x->easy = curl_easy_init()) == NULL)
		goto fail;
	e = x->easy;
	if (x->easy_gen != p->gen) {
		if (x->easy_gen != 0)
			curl_easy_reset(e);
		easy_setup(e, up, p);
		x->easy_gen = p->gen;
	}
	/* curl copies the URL; the string itself is built once. */
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, &x->own);
	easy_method(e, c);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	x->started_ns = now_mono_ns();
	if (curl_multi_add_handle(up->multi, e) != CURLM_OK)
		goto fail;
	up->inflight++;
	return x;
fail:
	xfer_free(x);
	errno = ENOMEM;
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
