/*
 * reply.c: the way out of the gateway, shared by the front end
 * (server.c: /healthz, 404, the guard's refusals) and the request
 * lifecycle (request.c): send an answer, send the gateway's own JSON
 * error, write an access-log line with the loop pass's others, and read
 * a header that must be there once.  It depends on the loop's data
 * (loop.h) and on nothing above it, so that request.c never needs
 * server.c.
 */
#include "reply.h"
#include "log.h"
#include "loop.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

/* Reason phrases libevent 2.1 lacks or words vaguely ("Client Error"). */
static const char *
reason_phrase(int status)
{
	switch (status) {
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return NULL;	/* libevent's own */
}

/*
 * The one call that sends a reply.  Under the guard's filter, output
 * written while the connection's write side is disabled waits for the
 * next read event; a reply made later (after the audit record or the
 * upstream answer) would sit there.  Flushing the filter after
 * evhttp_send_reply pushes it out at once.  The connection (when still
 * alive) outlives evhttp_send_reply, which only schedules the write.
 *
 * Every answer carries an X-Request-Id (a new one when the path that
 * answers has none of its own, as /healthz and /metrics).  The answer
 * to a HEAD is the head alone (RFC 9110 9.3.2): evhttp 2.1.12 would
 * write the body after it anyway, with no Content-Length, and a
 * client reads that body as the start of the next answer on the
 * connection.  Its Content-Length is the one a GET would get.  body
 * stays the caller's to free, whatever happens to it here.
 */
void
reply_send(struct evhttp_request *ev, int status, struct evbuffer *body)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct bufferevent *bev = evcon ?
	    evhttp_connection_get_bufferevent(evcon) : NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(ev);
	char rid[ID_BUF], len[24];	/* a request id; a size_t in decimal */

	if (evhttp_find_header(h, "X-Request-Id") == NULL &&
	    request_id(rid) == 0)
		evhttp_add_header(h, "X-Request-Id", rid);
	if (evhttp_request_get_command(ev) == EVHTTP_REQ_HEAD) {
		if (evhttp_find_header(h, "Content-Length") == NULL) {
			snprintf(len, sizeof(len), "%zu", body != NULL ?
			    evbuffer_get_length(body) : (size_t)0);
			evhttp_add_header(h, "Content-Length", len);
		}
		body = NULL;
	}
	evhttp_send_reply(ev, status, reason_phrase(status), body);
	if (bev != NULL)
		bufferevent_flush(bev, EV_WRITE, BEV_NORMAL);
}

/*
 * The gateway's JSON error body, in a json-c object the caller puts;
 * reqid is filled with a new id when empty (rid holds it).
 */
static struct json_object *
error_body(const char *code, const char *message,
    struct json_object *details, const char **reqid, char rid[ID_BUF])
{
	struct json_object *o = json_object_new_object();

	/* An answer made before its request had an id gets one here, the
	 * same in the body and the header. */
	if ((*reqid)[0] == '\0' && request_id(rid) == 0)
		*reqid = rid;
	json_object_object_add(o, "code", json_object_new_string(code));
	json_object_object_add(o, "message", json_object_new_string(message));
	if (details != NULL)
		json_object_object_add(o, "details", details);
	json_object_object_add(o, "request_id",
	    json_object_new_string(*reqid));
	return o;
}

size_t
reply_error(struct evhttp_request *ev, int status, const char *code,
    const char *message, struct json_object *details,
    const char *reqid, const char *hname, const char *hvalue)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(ev);
	struct json_object *o;
	struct evbuffer *b = evbuffer_new();
	const char *s;
	size_t len, sent = 0;
	char rid[ID_BUF];

	o = error_body(code, message, details, &reqid, rid);
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (reqid[0])
		evhttp_add_header(h, "X-Request-Id", reqid);
	if (hname)
		evhttp_add_header(h, hname, hvalue);
	if (b != NULL && evbuffer_add(b, s, len) == 0)
		sent = len;
	reply_send(ev, status, b);
	if (b != NULL)
		evbuffer_free(b);
	json_object_put(o);
	return sent;
}

/*
 * The same error as a whole HTTP/1.1 answer in out, for a connection
 * evhttp has no request on (the guard's refusals, guard.h).  The head
 * carries what evhttp would write (Date, Content-Length) and
 * Connection: close; a HEAD's answer is the head alone.
 */
int
reply_error_raw(struct evbuffer *out, int status, bool head,
    const char *code, const char *message, const char *hname,
    const char *hvalue)
{
	struct json_object *o;
	const char *s, *reason = reason_phrase(status), *reqid = "";
	char rid[ID_BUF], date[40];
	struct tm tm;
	time_t now = time(NULL);
	size_t len;
	int rc = 0;

	if (reason == NULL)
		reason = status == 405 ? "Method Not Allowed" : "Bad Request";
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT",
	    &tm) == 0)
		date[0] = '\0';
	o = error_body(code, message, NULL, &reqid, rid);
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\nX-Request-Id: %s\r\n",
	    status, reason, reqid) == -1 ||
	    (hname != NULL && evbuffer_add_printf(out, "%s: %s\r\n", hname,
	    hvalue) == -1) ||
	    (date[0] != '\0' && evbuffer_add_printf(out, "Date: %s\r\n",
	    date) == -1) ||
	    evbuffer_add_printf(out, "Content-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", len) == -1 ||
	    (!head && evbuffer_add(out, s, len) == -1))
		rc = -1;
	json_object_put(o);
	return rc;
}

const char *
reply_sole_header(const struct evkeyvalq *in, const char *name)
{
	const struct evkeyval *kv;
	const char *v = NULL;

	TAILQ_FOREACH(kv, in, next)
		if (strcasecmp(kv->key, name) == 0) {
			if (v != NULL)
				return NULL;
			v = kv->value;
		}
	return v;
}

/*
 * A request that names no known caller (a 401, a 404 before the token
 * was read) writes its line only while this loop has written fewer than
 * REPLY_UNAUTH_LINES_PER_S such lines this second; a stranger's flood
 * would otherwise fill the log's disk at the speed of the network.  The
 * lines left out are counted in one line, written with the first line
 * of a later second or, failing one, by a timer a second after the first
 * line left out; /metrics counts every request whatever the log.
 */
static void
unauth_note(struct gw_loop *loop)
{
	char note[160], ts[32];

	if (loop->unauth_dropped == 0)
		return;
	now_iso8601(ts, sizeof(ts));
	snprintf(note, sizeof(note), "{\"time\":\"%s\",\"level\":\"warn\","
	    "\"msg\":\"access log: %lu lines of unauthenticated requests "
	    "left out\"}", ts, loop->unauth_dropped);
	reply_access_log(loop, note);
	loop->unauth_dropped = 0;
}

void
reply_unauth_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	unauth_note(arg);
}

void
reply_access_log_unauth(struct gw_loop *loop, const char *line)
{
	uint64_t sec = now_mono_ms() / 1000;
	struct timeval one = { 1, 0 };

	if (sec != loop->unauth_sec) {
		unauth_note(loop);
		loop->unauth_sec = sec;
		loop->unauth_lines = 0;
	}
	if (loop->unauth_lines >= REPLY_UNAUTH_LINES_PER_S) {
		/* The first line left out arms the timer that writes the
		 * count, should no later request come to write it. */
		if (loop->unauth_dropped++ == 0 && loop->unauth_note != NULL)
			evtimer_add(loop->unauth_note, &one);
		return;
	}
	loop->unauth_lines++;
	reply_access_log(loop, line);
}

void
reply_access_log(struct gw_loop *loop, const char *line)
{
	if (log_pass_json(line) == 1) {
		if (loop->log_flush)
			event_active(loop->log_flush, EV_TIMEOUT, 1);
		else
			log_pass_flush();
	}
}

