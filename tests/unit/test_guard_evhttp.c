/*
 * test_guard_evhttp.c: the guard (src/guard.c) under a real evhttp, on
 * real sockets, when evhttp answers requests itself.
 *
 * In the gateway evhttp never has to: the guard refuses first whatever
 * evhttp would refuse.  Should a request the guard misjudged ever get
 * evhttp's own error page, the page must not bring libevent 2.1.12's
 * double free (guard.c: under_writecb): before the wrapper, the page
 * completed inside the socket's write callback, evhttp freed the
 * connection there, and the process died of a SEGV at the filter's
 * next timeout.  Here evhttp's body cap is set below the guard's, so
 * that evhttp answers 413 itself to every request; twenty connections
 * send one at once, and the loop runs on past evhttp's 1 s timeout.
 * The test passes when the process is still alive and every
 * connection has ended with evhttp's 413 or nothing (a page that never
 * left the filter's buffer is closed with the connection at the
 * timeout); under ASan and valgrind, with no report.
 *
 * guard.c is compiled in whole; request.c's body accounting, which the
 * gateway links with it, is stubbed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/guard.c"

#include <netinet/in.h>
#include <sys/time.h>

bool
request_buffer_reserve(long long cap, size_t n)
{
	(void)cap;
	(void)n;
	return true;
}

void
request_buffer_release(size_t n)
{
	(void)n;
}

#define NCONN	20

struct client {
	int		port;
	int		answered;	/* connections answered 413 */
	int		silent;		/* closed with no answer */
	int		other;		/* anything else, or no end */
	int		done;		/* atomic */
};

static void *
client_run(void *arg)
{
	static const char req[] = "POST / HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 100\r\n\r\n";
	struct client *c = arg;
	struct sockaddr_in sin;
	struct timeval tv = { 5, 0 };
	int fds[NCONN], i;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)c->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < NCONN; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] == -1 || connect(fds[i], (struct sockaddr *)&sin,
		    sizeof(sin)) == -1) {
			c->other++;
			continue;
		}
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)write(fds[i], req, sizeof(req) - 1);
	}
	for (i = 0; i < NCONN; i++) {
		char buf[4096];
		size_t got = 0;
		ssize_t n;

		if (fds[i] == -1)
			continue;
		while (got < sizeof(buf) - 1 &&
		    (n = read(fds[i], buf + got, sizeof(buf) - 1 - got)) > 0)
			got += (size_t)n;
		buf[got] = '\0';
		if (n == -1 && got < sizeof(buf) - 1)
			c->other++;		/* no end within 5 s */
		else if (got == 0)
			c->silent++;
		else if (strncmp(buf, "HTTP/1.1 413 ", 13) == 0)
			c->answered++;
		else
			c->other++;
		close(fds[i]);
	}
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
on_request(struct evhttp_request *ev, void *arg)
{
	(void)arg;
	guard_track(ev);
	evhttp_send_reply(ev, 200, "OK", NULL);
}

struct watch {
	struct event_base	*base;
	struct client		*c;
	struct event		*ev;
	int			 after;	/* ticks since the client ended */
};

/* Every 100 ms: once the client is done, run 2.5 s more (past
 * evhttp's 1 s timeout, when the freed filter's timer fired). */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	struct timeval tv = { 0, 100 * 1000 };

	(void)fd;
	(void)what;
	if (__atomic_load_n(&w->c->done, __ATOMIC_ACQUIRE) &&
	    ++w->after >= 25) {
		event_base_loopbreak(w->base);
		return;
	}
	evtimer_add(w->ev, &tv);
}

static void
test_evhttp_own_answers(void **state)
{
	struct config cfg;
	struct gw_loop loop;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	struct client c;
	struct watch w;
	struct timeval tv = { 0, 100 * 1000 };
	pthread_t t;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.limits.max_header_bytes = 16384;
	cfg.limits.max_headers = 64;
	cfg.limits.max_body_bytes = 1000;
	cfg.limits.max_document_body_bytes = 1000;
	cfg.limits.max_buffered_bytes = 1 << 20;
	cfg.limits.max_connections = 100;
	cfg.limits.request_timeout_ms = 10000;
	cfg.limits.idle_timeout_ms = 1000;
	memset(&loop, 0, sizeof(loop));
	loop.cfg = &cfg;
	assert_non_null(loop.base = event_base_new());
	assert_non_null(http = evhttp_new(loop.base));
	evhttp_set_bevcb(http, guard_bevcb, &loop);
	evhttp_set_max_body_size(http, 16);	/* below the guard's 1000 */
	evhttp_set_timeout(http, 1);
	evhttp_set_gencb(http, on_request, NULL);
	assert_non_null(bound = evhttp_bind_socket_with_handle(http,
	    "127.0.0.1", 0));
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&sin, &slen), 0);

	memset(&c, 0, sizeof(c));
	c.port = ntohs(sin.sin_port);
	memset(&w, 0, sizeof(w));
	w.base = loop.base;
	w.c = &c;
	assert_non_null(w.ev = evtimer_new(loop.base, on_tick, &w));
	evtimer_add(w.ev, &tv);
	assert_int_equal(pthread_create(&t, NULL, client_run, &c), 0);
	event_base_dispatch(loop.base);
	pthread_join(t, NULL);

	print_message("evhttp's 413: %d answered, %d closed silent, "
	    "%d other\n", c.answered, c.silent, c.other);
	assert_int_equal(c.other, 0);
	assert_int_equal(c.answered + c.silent, NCONN);
	assert_int_equal(loop.conns, 0);	/* every guard freed */

	event_free(w.ev);
	evhttp_free(http);
	event_base_free(loop.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_evhttp_own_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
