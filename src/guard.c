/*
 * guard.c: request framing limits under evhttp (see guard.h).
 *
 * The filter sees the raw bytes of a connection.  For each request it
 * waits for the whole head (never passing a partial head on), checks
 * the head against the limits, then passes head and Content-Length
 * body bytes through with zero-copy buffer moves.  A request that
 * breaks a limit is refused: it and everything after it on the
 * connection is read and dropped, never reaching evhttp.  The answer is
 * the front end's (guard_answer_fn), written by the guard to the socket
 * once evhttp has answered every request passed on before it (it counts
 * them: guard_track), so that pipelined answers keep their order; then
 * the guard shuts the socket's write side.  evhttp 2.1.12 cannot answer
 * on a connection where it has not read a request, which is why the
 * answer goes around it.
 *
 * A head that announces a body reserves its place under
 * limits.max_buffered_bytes at once (guard.h: guard_claim), so that
 * bodies nobody has looked at yet (a stranger's, whose 401 waits for
 * the whole request) are counted while they arrive, and one the cap
 * cannot take is refused before it is read: 503 busy.
 *
 * Nothing the guard passes on may be a request evhttp refuses:
 * evhttp's own error answers (413 over its body cap, 417 to an unknown
 * Expect, 400 to a target its URI parser refuses) are HTML pages, and
 * one may stay in the filter's buffer until the idle timeout closes
 * the connection.  So the guard is at least as strict as evhttp on
 * every limit and on the target (target_ok), and answers those
 * refusals itself, in JSON.  Under that rule, under_writecb keeps a
 * page the guard might still miss from bringing libevent 2.1.12's
 * double free (it crashed the process at the next timeout).
 *
 * The head itself is read by guard_head.c, a pure function of its
 * bytes that the fuzzer runs too.  Its framing (how many body bytes
 * follow) is evhttp's: bytes the guard passed as a body that evhttp
 * parsed as the next request would be a request nobody checked.
 */
#include "guard.h"
#include "routes.h"
#include "guard_head.h"
#include "conf.h"
#include "log.h"
#include "request.h"
#include "loop.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>	/* the request's HTTP version */
#include <event2/listener.h>
#include <event2/util.h>

enum gstate { G_HEAD, G_BODY, G_DISCARD };

/*
 * evhttp keeps reading while it writes an answer ("to detect a close"),
 * so a caller that pipelines requests and never reads the answers
 * would have its requests piled up in evhttp's input without end.
 * Past this many bytes waiting there, the guard stops reading the
 * connection until evhttp has taken enough of them.
 */
#define GUARD_IN_MAX	(64 * 1024)

/*
 * After a refusal the connection is read on and its bytes dropped, so
 * that the kernel does not reset it under the answer (a close with
 * unread input sends a reset, and the caller may lose the answer).  A
 * caller that goes on sending (the rest of an upload refused at its
 * head) is cut off past this many bytes: the answer is out by then.
 */
#define GUARD_LINGER_MAX	(64 * 1024)

struct guard {
	struct gw_loop		*loop;
	int			*count;		/* the listener's open conns */
	struct bufferevent	*under;
	struct bufferevent	*bev;		/* the filter evhttp uses */
	struct evbuffer_cb_entry *in_cb;	/* on the filter's input */
	struct event		*writable;	/* the socket took no more */
	struct event		*deadline;
	enum gstate		 state;
	size_t			 body_left;
	int			 refuse_first;	/* the first request's (cap) */
	/* A refusal waits for the answers to the requests before it:
	 * evhttp has been handed `passed` requests and has answered
	 * `answered` of them (guard_track). */
	struct guard_refusal	 refusal;
	bool			 refusal_due;
	unsigned long		 passed;
	unsigned long		 answered;
	struct evbuffer		*refusal_out;	/* what the socket left */
	bool			 refusal_sent;	/* all of it, write side shut */
	size_t			 dropped;	/* since the refusal */
	/* Head scanning resumes where it stopped: a head that arrives a
	 * byte at a time costs linear time, not quadratic. */
	struct ghead_scan	 scan;
	int			 paused;	/* reading stopped (GUARD_IN_MAX) */
	/* limits.max_buffered_bytes: bytes reserved for the bodies of the
	 * requests passed on whose handler has not claimed them yet. */
	bool			 accounts;	/* the callers' port */
	size_t			 reserved;
	evutil_socket_t		 mapped_fd;	/* in guard_by_fd, or -1 */
};

/*
 * The guard of each connection, by its socket, so that guard_track()
 * and guard_claim() find it from the evhttp request (a filter's
 * context cannot be read back from its bufferevent).  Loops share it:
 * a slot is set and cleared by its connection's loop, under the lock,
 * and a claim trusts a slot only when it holds the very bufferevent
 * asked about (a closed socket's number can be a new connection's
 * before the old guard is freed).
 */
static void	arm_deadline(struct guard *);
static void	on_writable(evutil_socket_t, short, void *);
static void	refusal_deliver(struct guard *);

static pthread_mutex_t	 guard_map_mu = PTHREAD_MUTEX_INITIALIZER;
static struct guard	**guard_by_fd;
static size_t		 guard_by_fd_len;

static int
guard_map(struct guard *g)
{
	evutil_socket_t fd;
	struct guard **v;
	size_t n;

	if (g->mapped_fd >= 0)
		return 0;
	if ((fd = bufferevent_getfd(g->under)) < 0)
		return -1;
	pthread_mutex_lock(&guard_map_mu);
	if ((size_t)fd >= guard_by_fd_len) {
		n = guard_by_fd_len ? guard_by_fd_len : 1024;
		while (n <= (size_t)fd)
			n *= 2;
		if ((v = realloc(guard_by_fd, n * sizeof(*v))) == NULL) {
			pthread_mutex_unlock(&guard_map_mu);
			return -1;
		}
		memset(v + guard_by_fd_len, 0,
		    (n - guard_by_fd_len) * sizeof(*v));
		guard_by_fd = v;
		guard_by_fd_len = n;
	}
	guard_by_fd[fd] = g;
	pthread_mutex_unlock(&guard_map_mu);
	g->mapped_fd = fd;
	return 0;
}

static void
guard_unmap(struct guard *g)
{
	if (g->mapped_fd < 0)
		return;
	pthread_mutex_lock(&guard_map_mu);
	if ((size_t)g->mapped_fd < guard_by_fd_len &&
	    guard_by_fd[g->mapped_fd] == g)
		guard_by_fd[g->mapped_fd] = NULL;
	pthread_mutex_unlock(&guard_map_mu);
	g->mapped_fd = -1;
}

/*
 * The guard of ev's connection, or NULL.  The slot is trusted only when
 * it holds ev's very bufferevent; the guard itself is touched by its
 * connection's loop alone, which is the caller's.
 */
static struct guard *
guard_find(struct evhttp_request *ev)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct bufferevent *bev, *under;
	struct guard *g = NULL;
	evutil_socket_t fd;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    (under = bufferevent_get_underlying(bev)) == NULL ||
	    (fd = bufferevent_getfd(under)) < 0)
		return NULL;
	pthread_mutex_lock(&guard_map_mu);
	if ((size_t)fd < guard_by_fd_len && guard_by_fd[fd] != NULL &&
	    guard_by_fd[fd]->bev == bev)
		g = guard_by_fd[fd];
	pthread_mutex_unlock(&guard_map_mu);
	return g;
}

size_t
guard_claim(struct evhttp_request *ev, size_t n)
{
	struct guard *g = guard_find(ev);
	size_t got;

	if (g == NULL)
		return 0;
	/* Requests are handed on in the order their heads came, each body
	 * exactly as long as its head said: the first n bytes of the pool
	 * are this request's. */
	got = n < g->reserved ? n : g->reserved;
	g->reserved -= got;
	return got;
}

/* evhttp's reading of one side's headers (http.c,
 * evhttp_is_connection_close): a proxy request (an absolute-form
 * target for a host evhttp does not serve) closes unless
 * "Proxy-Connection: keep-alive", which the answer never carries (the
 * front end sets none, evhttp removes it): every proxy request closes.
 * Any other closes on "Connection: close". */
static bool
side_closes(const struct evhttp_request *ev, struct evkeyvalq *h)
{
	const char *v;

	if (ev->flags & EVHTTP_PROXY_REQUEST) {
		v = evhttp_find_header(h, "Proxy-Connection");
		return v == NULL || strcasecmp(v, "keep-alive") != 0;
	}
	v = evhttp_find_header(h, "Connection");
	return v != NULL && strcasecmp(v, "close") == 0;
}

/*
 * Does evhttp close the connection after this answer?  Its own test
 * (http.c, evhttp_send_done): HTTP/1.0 without "Connection:
 * keep-alive", or either side asking to close.
 */
static bool
answer_closes(struct evhttp_request *ev)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
	const char *conn = evhttp_find_header(in, "Connection");

	if ((ev->major < 1 || (ev->major == 1 && ev->minor < 1)) &&
	    (conn == NULL || strncasecmp(conn, "keep-alive", 10) != 0))
		return true;
	return side_closes(ev, in) ||
	    side_closes(ev, evhttp_request_get_output_headers(ev));
}

/* evhttp has written the answer to a request the guard passed on. */
static void
guard_answered(struct evhttp_request *ev, void *arg)
{
	struct guard *g = arg;

	g->answered++;
	if (!g->refusal_due || g->answered != g->passed)
		return;
	/* The connection ends with this answer: nothing may follow it,
	 * the refused request goes unanswered, as any request pipelined
	 * behind a "Connection: close". */
	if (answer_closes(ev))
		g->refusal_due = false;
	else
		refusal_deliver(g);
}

void
guard_track(struct evhttp_request *ev)
{
	struct guard *g = guard_find(ev);

	/* The guard lives as long as the connection, and evhttp calls
	 * this back only while the connection does. */
	if (g != NULL)
		evhttp_request_set_on_complete_cb(ev, guard_answered, g);
}

/*
 * Reserve the place of a body of len bytes (announced by the head just
 * read) under limits.max_buffered_bytes; false when the cap cannot take
 * it now.
 */
static bool
guard_reserve(struct guard *g, size_t len)
{
	size_t n = REQUEST_BODY_HOLD(len);

	if (!g->accounts || len == 0)
		return true;
	if (!request_buffer_reserve(g->loop->cfg->limits.max_buffered_bytes,
	    n))
		return false;
	g->reserved += n;
	return true;
}

/*
 * The route table says which requests take limits.max_document_body_bytes
 * (products.documentation); the guard asks it on the target as sent,
 * without its query string, before any byte of the body is read.
 */
static int
guard_large_body(enum ghead_method m, const char *target, size_t len)
{
	char path[ROUTE_PATH_MAX];
	size_t n;

	if (m != GH_POST)
		return 0;
	/* target is not NUL-terminated: it sits in the head's bytes. */
	for (n = 0; n < len && target[n] != '?' && target[n] != '#'; n++)
		;
	if (n >= sizeof(path))
		return 0;
	memcpy(path, target, n);
	path[n] = '\0';
	return routes_body_cap("POST", path) == RC_DOCUMENT;
}

static guard_answer_fn	*guard_answer;

/* Have evhttp free the connection now, as if the caller had closed it
 * (deferred: this may run inside the filter's callbacks). */
static void
guard_close(struct guard *g)
{
	bufferevent_trigger_event(g->bev, BEV_EVENT_EOF | BEV_EVENT_READING,
	    BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * Drop what a refused connection still sends, up to GUARD_LINGER_MAX;
 * past it the connection closes once the answer is out, and is not
 * read meanwhile.
 */
static void
refusal_drop(struct guard *g, struct evbuffer *src)
{
	size_t n = evbuffer_get_length(src);

	evbuffer_drain(src, n);
	if (g->refusal.status == 0 ||
	    (g->dropped += n) <= GUARD_LINGER_MAX)
		return;
	if (g->refusal_sent)
		guard_close(g);
	else
		bufferevent_disable(g->under, EV_READ);
}

void
guard_init(guard_answer_fn *fn)
{
	guard_answer = fn;
}

/* Everything is out: shut the write side.  The caller reads the answer
 * and closes; evhttp sees the end of the stream and frees the
 * connection, or the request deadline shuts the rest. */
static void
refusal_sent(struct guard *g)
{
	evutil_socket_t fd = bufferevent_getfd(g->under);

	g->refusal_sent = true;
	if (fd >= 0)
		shutdown(fd, SHUT_WR);
	if (g->dropped > GUARD_LINGER_MAX)
		guard_close(g);
}

/*
 * Write what is left of the refusal straight to the socket, as
 * guard_out does with evhttp's answers; a write event carries on with
 * what the socket does not take at once.
 */
static void
refusal_write(struct guard *g)
{
	evutil_socket_t fd = bufferevent_getfd(g->under);

	while (evbuffer_get_length(g->refusal_out) > 0 &&
	    evbuffer_write(g->refusal_out, fd) > 0)
		;
	if (evbuffer_get_length(g->refusal_out) == 0) {
		refusal_sent(g);
		return;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		shutdown(fd, SHUT_RDWR);	/* the caller is gone */
		return;
	}
	if ((g->writable == NULL && (g->writable = event_new(
	    bufferevent_get_base(g->under), fd, EV_WRITE, on_writable,
	    g)) == NULL) || event_add(g->writable, NULL) == -1)
		shutdown(fd, SHUT_RDWR);
}

/*
 * Every request before the refused one is answered: the front end's
 * answer goes to the socket, behind evhttp's (its answers are on the
 * socket or in the socket bufferevent's buffer, guard_out), and the
 * request deadline is the connection's last.
 */
static void
refusal_deliver(struct guard *g)
{
	struct evbuffer *under_out = bufferevent_get_output(g->under);
	evutil_socket_t fd = bufferevent_getfd(g->under);

	g->refusal_due = false;
	arm_deadline(g);
	if (fd < 0 || guard_answer == NULL ||
	    (g->refusal_out = evbuffer_new()) == NULL ||
	    guard_answer(g->loop, &g->refusal, g->refusal_out) == -1) {
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
		return;
	}
	if (evbuffer_get_length(under_out) > 0) {
		/* evhttp's last bytes wait there (guard_out's error
		 * path): the answer goes after them, and the deadline
		 * closes the connection. */
		evbuffer_add_buffer(under_out, g->refusal_out);
		return;
	}
	refusal_write(g);
}

/*
 * Refuse the request at the head of src: it and everything after it on
 * the connection is dropped, and its answer goes out once evhttp has
 * answered the requests passed on before it.  Reading on (rather than
 * closing at once) keeps the kernel from resetting the connection under
 * the answer.
 */
static void
refuse(struct guard *g, struct evbuffer *src, int status, bool busy,
    enum ghead_method method)
{
	g->refusal.status = status;
	g->refusal.busy = busy;
	g->refusal.head = method == GH_HEAD;
	g->refusal.metrics_port = !g->accounts;
	g->refusal_due = true;
	g->state = G_DISCARD;
	refusal_drop(g, src);
	/* The requests before it may take their time upstream; the
	 * deadline starts again when the answer goes out. */
	event_del(g->deadline);
	if (g->answered == g->passed)
		refusal_deliver(g);
}

/*
 * Find the end of the head in the first lim bytes of src: the offset
 * just past the empty line ("\r\n\r\n" or "\n\n", as evhttp accepts
 * both), or 0 when it is not there yet.  Each byte is looked at once,
 * however the head is split into reads.  -1 on an evbuffer error.
 */
static ssize_t
head_end(struct guard *g, struct evbuffer *src, size_t lim)
{
	size_t avail = evbuffer_get_length(src), n = avail < lim ? avail : lim;
	struct evbuffer_ptr p;
	char buf[1024];		/* one copy-out; the head can be larger */

	while (g->scan.scanned < n) {
		size_t end, k = n - g->scan.scanned < sizeof(buf) ?
		    n - g->scan.scanned : sizeof(buf);

		if (evbuffer_ptr_set(src, &p, g->scan.scanned,
		    EVBUFFER_PTR_SET) == -1 ||
		    evbuffer_copyout_from(src, &p, buf, k) != (ev_ssize_t)k)
			return -1;
		if ((end = ghead_scan(&g->scan, buf, k)) != 0)
			return (ssize_t)end;
	}
	return 0;
}

/*
 * The method of the request starting src, for a refusal made before
 * its head was read whole (a HEAD is answered without a body).  -1
 * while the method token is not all there: a HEAD sent as "HE", "AD"
 * must not get a body.
 */
static int
peek_method(struct evbuffer *src, enum ghead_method *m)
{
	char buf[16];		/* "OPTIONS " and more fit */
	ev_ssize_t n = evbuffer_copyout(src, buf, sizeof(buf));

	if (n <= 0 || ((size_t)n < sizeof(buf) &&
	    memchr(buf, ' ', (size_t)n) == NULL))
		return -1;
	*m = ghead_method_of(buf, (size_t)n);
	return 0;
}

/* Blank lines before a request are tolerated (RFC 9112 2.2): drop
 * them.  -1 on an evbuffer error. */
static int
skip_blank_lines(struct evbuffer *src)
{
	char first;

	while (evbuffer_get_length(src) > 0) {
		if (evbuffer_copyout(src, &first, 1) != 1)
			return -1;
		if (first != '\r' && first != '\n')
			break;
		evbuffer_drain(src, 1);
	}
	return 0;
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct guard *g = arg;
	evutil_socket_t s = bufferevent_getfd(g->under);

	/* The request took too long to arrive: a slow client.  Shut the
	 * socket; evhttp sees the end of the stream and frees the
	 * connection. */
	log_debug("guard: request deadline passed, closing fd %d", (int)s);
	g->state = G_DISCARD;
	if (s >= 0)
		shutdown(s, SHUT_RDWR);
}

static void
arm_deadline(struct guard *g)
{
	const struct config *c = g->loop->cfg;
	struct timeval tv;

	if (g->deadline == NULL || evtimer_pending(g->deadline, NULL))
		return;
	tv.tv_sec = c->limits.request_timeout_ms / 1000;
	tv.tv_usec = (c->limits.request_timeout_ms % 1000) * 1000;
	evtimer_add(g->deadline, &tv);
}

/*
 * The request target of a head ghead_check() let through, as evhttp
 * will read it: a target evhttp's URI parser refuses has evhttp answer
 * itself (see the top of this file).  An absolute-form target
 * ("http://host/...") or one starting "//" (a host part to the
 * parser: "//a:99999/" fails) is parsed as evhttp will; any other
 * origin-form target ("/x") parses whatever follows, under
 * EVHTTP_URI_NONCONFORMANT.
 */
static bool
target_ok(const char *t, size_t len)
{
	struct evhttp_uri *u;
	char *s;

	if (len > 0 && t[0] == '/' && (len == 1 || t[1] != '/'))
		return true;
	/* The head is not NUL-terminated: copy the target out. */
	if ((s = malloc(len + 1)) == NULL)
		return false;
	memcpy(s, t, len);
	s[len] = '\0';
	u = evhttp_uri_parse_with_flags(s, EVHTTP_URI_NONCONFORMANT);
	free(s);
	if (u == NULL)
		return false;
	evhttp_uri_free(u);
	return true;
}

/*
 * A whole head of hlen bytes is at the start of src: check it, and pass
 * it on to evhttp (dst) with its body to follow, or put a refusal in
 * its place.  -1 when src cannot be read.
 */
static int
take_head(struct guard *g, struct evbuffer *src, struct evbuffer *dst,
    size_t hlen)
{
	const struct config *c = g->loop->cfg;
	struct ghead_limits gl;
	struct ghead v;
	const char *p;

	if ((p = (const char *)evbuffer_pullup(src, (ev_ssize_t)hlen)) == NULL)
		return -1;
	gl.max_header_bytes = (size_t)c->limits.max_header_bytes;
	gl.max_headers = (size_t)c->limits.max_headers;
	if (g->accounts) {
		gl.max_body_bytes = (size_t)c->limits.max_body_bytes;
		gl.large_body = guard_large_body;
		gl.max_large_body_bytes =
		    (size_t)c->limits.max_document_body_bytes;
	} else {
		gl.max_body_bytes = GUARD_METRICS_MAX_BODY;
		gl.large_body = NULL;
		gl.max_large_body_bytes = 0;
	}
	ghead_check(p, hlen, &gl, &v);
	if (v.status == 0 && !target_ok(p + v.target_off, v.target_len))
		v.status = 400;
	if (v.status != 0) {
		refuse(g, src, v.status, false, v.method);
		return 0;
	}
	/* Over limits.max_buffered_bytes: refused before a byte of the
	 * body is held.  A guard that guard_track() could not find would
	 * never know its requests answered: refused the same way. */
	if (guard_map(g) == -1 || !guard_reserve(g, v.body_len)) {
		refuse(g, src, 503, true, v.method);
		return 0;
	}
	evbuffer_remove_buffer(src, dst, hlen);
	g->passed++;
	g->body_left = v.body_len;
	if (v.body_len > 0)
		g->state = G_BODY;
	else
		event_del(g->deadline);
	return 0;
}

static enum bufferevent_filter_result
guard_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct guard *g = arg;
	const struct config *c = g->loop->cfg;
	int moved = 0;

	for (;;) {
		size_t avail = evbuffer_get_length(src), want, hmax;
		ssize_t end;

		if (g->state == G_DISCARD) {
			refusal_drop(g, src);
			return moved ? BEV_OK : BEV_NEED_MORE;
		}
		if (g->refuse_first) {
			int st = g->refuse_first;
			enum ghead_method m;

			/* Refused whatever it asks, once its method is
			 * known; one that never comes meets the deadline. */
			if (skip_blank_lines(src) == -1)
				return BEV_ERROR;
			if (peek_method(src, &m) == -1)
				return BEV_NEED_MORE;
			g->refuse_first = 0;
			refuse(g, src, st, false, m);
			return BEV_NEED_MORE;
		}
		if (avail == 0)
			break;
		if (g->state == G_BODY) {
			want = avail < g->body_left ? avail : g->body_left;
			evbuffer_remove_buffer(src, dst, want);
			g->body_left -= want;
			moved = 1;
			if (g->body_left > 0)
				break;
			g->state = G_HEAD;
			event_del(g->deadline);
			continue;
		}
		/* G_HEAD: a request has begun, unless evhttp has not yet
		 * taken the ones before (see GUARD_IN_MAX). */
		if (evbuffer_get_length(dst) > GUARD_IN_MAX) {
			g->paused = 1;
			bufferevent_disable(g->under, EV_READ);
			break;
		}
		arm_deadline(g);
		if (g->scan.scanned == 0) {
			if (skip_blank_lines(src) == -1)
				return BEV_ERROR;
			if ((avail = evbuffer_get_length(src)) == 0)
				break;
		}
		/* The whole head, its final empty line included. */
		hmax = (size_t)c->limits.max_header_bytes;
		if ((end = head_end(g, src, hmax)) == -1)
			return BEV_ERROR;
		if (end == 0) {
			if (avail >= hmax) {
				enum ghead_method m = GH_UNKNOWN;

				/* hmax (at least 256) bytes are there: the
				 * method token is whole, or was never one. */
				(void)peek_method(src, &m);
				ghead_scan_reset(&g->scan);
				refuse(g, src, 431, false, m);
				return moved ? BEV_OK : BEV_NEED_MORE;
			}
			break;		/* wait for the rest of the head */
		}
		ghead_scan_reset(&g->scan);
		if (take_head(g, src, dst, (size_t)end) == -1)
			return BEV_ERROR;
		moved = 1;
	}
	return moved ? BEV_OK : BEV_NEED_MORE;
}

/*
 * libevent 2.1.12's filter runs its output from the socket
 * bufferevent's write callback (be_filter_writecb) without holding a
 * reference on itself, unlike its other paths (be_filter_flush, the
 * output buffer's callback).  An answer that completes there lets
 * evhttp free the connection inside that callback, and the filter is
 * then used and finalized after it is gone: a crash at its next
 * timeout.  evhttp's own error pages take that path (the front end's
 * answers are flushed by reply_send, under a reference), so this
 * wrapper holds one around libevent's callback: the guard refuses
 * whatever evhttp would answer itself, and should it ever miss one,
 * the page goes out and the connection closes cleanly.
 */
static bufferevent_data_cb	filter_writecb;	/* libevent's; set once */

static void
under_writecb(struct bufferevent *under, void *arg)
{
	struct bufferevent *filter = arg;	/* the filter's own */

	bufferevent_incref(filter);
	__atomic_load_n(&filter_writecb, __ATOMIC_RELAXED)(under, arg);
	bufferevent_decref(filter);
}

/* Put under_writecb in front of the filter's write callback. */
static void
wrap_writecb(struct bufferevent *under)
{
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;
	void *arg;

	bufferevent_getcb(under, &rcb, &wcb, &ecb, &arg);
	if (wcb == NULL || wcb == under_writecb)
		return;
	/* The same function for every filter: a plain store would do,
	 * but loops run on several threads. */
	__atomic_store_n(&filter_writecb, wcb, __ATOMIC_RELAXED);
	bufferevent_setcb(under, rcb, under_writecb, ecb, arg);
}

static void
guard_free(void *arg)
{
	struct guard *g = arg;

	(*g->count)--;
	/* Whatever the connection reserved and no request took over (a
	 * body cut short, a request evhttp never handed on). */
	guard_unmap(g);
	request_buffer_release(g->reserved);
	g->reserved = 0;
	if (g->in_cb)
		evbuffer_remove_cb_entry(bufferevent_get_input(g->bev),
		    g->in_cb);
	if (g->deadline)
		event_free(g->deadline);
	if (g->writable)
		event_free(g->writable);
	if (g->refusal_out)
		evbuffer_free(g->refusal_out);
	free(g);
}

/*
 * evhttp has taken pipelined requests from its input: resume reading a
 * connection paused at GUARD_IN_MAX.  Bytes already read wait in the
 * socket's input buffer, where no socket event would find them: a
 * deferred read trigger hands them to the filter.
 */
static void
input_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct guard *g = arg;

	if (info->n_deleted == 0 || !g->paused ||
	    evbuffer_get_length(buf) > GUARD_IN_MAX / 2)
		return;
	g->paused = 0;
	bufferevent_enable(g->under, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(g->under)) > 0)
		bufferevent_trigger(g->under, EV_READ,
		    BEV_TRIG_DEFER_CALLBACKS);
}

/* The socket takes bytes again: the filter carries on with the answer,
 * or the guard with its refusal. */
static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct guard *g = arg;

	if (g->refusal_out != NULL)
		refusal_write(g);
	else
		bufferevent_flush(g->bev, EV_WRITE, BEV_NORMAL);
}

/*
 * The output side: answers go straight to the socket.  evhttp believes
 * an answer is sent once it has passed the filter, and for a
 * "Connection: close" answer it shuts the socket right then; whatever
 * still waited in the socket's output buffer would be lost (a large
 * answer to a slow reader, cut short).  So an answer passes the filter
 * only as fast as the kernel takes it: what the socket refuses stays
 * in the filter's buffer, evhttp waits, and a write event resumes when
 * the socket is writable.  evhttp's timeouts (limits.idle_timeout_ms,
 * read and write) would cut a long answer short however steadily the
 * caller reads it; progress restarts them, so only a caller that
 * stops reading is cut off.
 */
static enum bufferevent_filter_result
guard_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct guard *g = arg;
	evutil_socket_t fd = bufferevent_getfd(g->under);
	size_t before = evbuffer_get_length(src);
	int n = 0;

	if (before == 0)
		return BEV_NEED_MORE;
	/* Bytes the socket bufferevent holds go first (error paths). */
	if (fd < 0 || evbuffer_get_length(dst) > 0) {
		evbuffer_add_buffer(dst, src);
		return BEV_OK;
	}
	while (evbuffer_get_length(src) > 0 &&
	    (n = evbuffer_write(src, fd)) > 0)
		;
	if (evbuffer_get_length(src) == 0)
		return BEV_OK;
	if (evbuffer_get_length(src) < before) {
		long ms = g->loop->cfg->limits.idle_timeout_ms;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		bufferevent_set_timeouts(g->bev, &tv, &tv);
	}
	if ((n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR) || (g->writable == NULL && (g->writable =
	    event_new(bufferevent_get_base(g->under), fd, EV_WRITE,
	    on_writable, g)) == NULL) || event_add(g->writable, NULL) == -1) {
		/* A broken connection (or no event): the socket
		 * bufferevent takes the rest, and meets the error too. */
		evbuffer_add_buffer(dst, src);
		return BEV_OK;
	}
	return evbuffer_get_length(src) < before ? BEV_OK : BEV_NEED_MORE;
}

static struct bufferevent *
guard_new(struct event_base *base, struct gw_loop *loop, int *count,
    int max_conns, bool accounts)
{
	struct bufferevent *under, *bev;
	struct guard *g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->loop = loop;
	g->count = count;
	g->accounts = accounts;
	g->mapped_fd = -1;
	under = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (under == NULL) {
		free(g);
		return NULL;
	}
	g->under = under;
	if ((g->deadline = evtimer_new(base, on_deadline, g)) == NULL) {
		free(g);
		bufferevent_free(under);
		return NULL;
	}
	bev = bufferevent_filter_new(under, guard_in, guard_out,
	    BEV_OPT_CLOSE_ON_FREE, guard_free, g);
	if (bev == NULL) {
		event_free(g->deadline);
		free(g);
		bufferevent_free(under);
		return NULL;
	}
	g->bev = bev;
	wrap_writecb(under);
	g->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), input_drained,
	    g);
	/* Over the connection cap: answer 503 to the first request, and
	 * give the connection no longer than a request may take to
	 * arrive, so that idle surplus connections do not linger. */
	if (++*count > max_conns) {
		g->refuse_first = 503;
		arm_deadline(g);
	}
	return bev;
}

struct bufferevent *
guard_bevcb(struct event_base *base, void *arg)
{
	struct gw_loop *loop = arg;

	return guard_new(base, loop, &loop->conns,
	    loop->cfg->limits.max_connections, true);
}

struct bufferevent *
guard_metrics_bevcb(struct event_base *base, void *arg)
{
	struct gw_loop *loop = arg;

	/* No reservations: it takes no body over GUARD_METRICS_MAX_BODY,
	 * and its handler (server.c) serves no route. */
	return guard_new(base, loop, &loop->mconns, GUARD_METRICS_MAX_CONNS,
	    false);
}

/* ---- the listening socket ------------------------------------------ */

/*
 * Out of file descriptors, accept() fails while the listening socket
 * stays readable: libevent would retry at once, forever, spinning the
 * loop and logging every failure.  One descriptor is kept in reserve
 * (libuv's trick): on EMFILE it is freed, the waiting connections are
 * accepted and closed one by one, and it is taken back.  The callers
 * see their connection closed, the loop goes on serving the others.
 */
static pthread_mutex_t	guard_spare_mu = PTHREAD_MUTEX_INITIALIZER;
static int		guard_spare_fd = -1;
static uint64_t		guard_accept_log_ms;	/* last warning (atomic) */

static void
accept_error(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR(), shed = 0, fd;
	evutil_socket_t lfd = evconnlistener_get_fd(lev);
	uint64_t now = now_mono_ms(), last;

	if (err == EMFILE || err == ENFILE) {
		pthread_mutex_lock(&guard_spare_mu);
		if (guard_spare_fd != -1) {
			close(guard_spare_fd);
			guard_spare_fd = -1;
		}
		while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) != -1) {
			close(fd);
			shed++;
		}
		guard_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		pthread_mutex_unlock(&guard_spare_mu);
	}
	/* One warning a second at most: this is what an attack looks
	 * like, and the log must not become its amplifier. */
	last = __atomic_load_n(&guard_accept_log_ms, __ATOMIC_RELAXED);
	if (now - last >= 1000 && __atomic_compare_exchange_n(
	    &guard_accept_log_ms, &last, now, 0, __ATOMIC_RELAXED,
	    __ATOMIC_RELAXED))
		log_warn("accept: %s; closed %d new connections (raise the "
		    "open files limit, or lower limits.max_connections)",
		    strerror(err), shed);
}

int
guard_listen(struct evhttp_bound_socket *bound, const struct config *c)
{
	struct rlimit rl;
	rlim_t need;

	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound),
	    accept_error);
	pthread_mutex_lock(&guard_spare_mu);
	if (guard_spare_fd == -1)
		guard_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pthread_mutex_unlock(&guard_spare_mu);

	/* Each caller connection is a descriptor, and so is each upstream
	 * one; the rest (listeners, audit, store, curl's resolver) fits
	 * in 64.  Raise the soft limit as far as the hard one allows. */
	need = (rlim_t)c->limits.max_connections * (rlim_t)c->workers +
	    (rlim_t)c->upstream.max_connections + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > need ? need : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < need)
			log_warn("open files limit %llu is below the %llu that "
			    "limits.max_connections needs: past it, new "
			    "connections are closed unanswered",
			    (unsigned long long)rl.rlim_cur,
			    (unsigned long long)need);
	}
	return 0;
}
