/*
 * loop.h: one event loop's front-end state, as plain data.  main.c and
 * workers.c own one per loop; server.c fills it (server_init) and the
 * layers below it read it: the request lifecycle (its config, ports and
 * list of requests), the guard (connection counts) and metrics (its
 * base and store).  Nothing here calls anything: the header is only the
 * struct, so every layer can see the loop without seeing the layer
 * above it.
 */
#ifndef CMGATE_LOOP_H
#define CMGATE_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

struct audit;
struct audit_port;
struct budget;
struct config;
struct event;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct gw_req;
struct idem;
struct idem_port;
struct metrics;
struct offload_port;
struct upstream;

struct gw_loop {
	struct event_base	*base;
	struct evhttp		*http;
	struct config		*cfg;		/* current config (a reference) */
	struct upstream		*up;
	struct audit		*audit;		/* shared by all loops */
	struct audit_port	*aport;
	struct idem		*idem;		/* or NULL */
	struct idem_port	*iport;
	struct offload_port	*oport;		/* large bodies (offload.h) */
	struct budget		*budget;	/* upstream budget (budget.c) */
	struct evhttp_bound_socket *bound;
	struct metrics		*metrics;	/* this loop's registry */
	struct evhttp		*mhttp;		/* metrics.listen, or NULL */
	struct event		*log_flush;	/* end of pass: access log */
	struct event		*unauth_note;	/* the count of lines left out */
	TAILQ_HEAD(gw_req_list, gw_req) reqs;	/* requests not yet answered */
	int			 active;	/* requests not yet answered */
	int			 conns;		/* open caller connections */
	int			 mconns;	/* open metrics.listen ones */
	bool			 draining;	/* SIGTERM: refuse new requests */
	/* Access-log lines of requests with no caller, this second
	 * (reply.c: REPLY_UNAUTH_LINES_PER_S), and those left out. */
	uint64_t		 unauth_sec;
	unsigned		 unauth_lines;
	unsigned long		 unauth_dropped;
};

#endif
