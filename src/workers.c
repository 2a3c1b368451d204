/*
 * workers.c: the worker loops (see workers.h).
 *
 * Each worker is a thread that owns one event_base and one struct
 * gw_loop set up by server_init(), exactly as loop 0 in main.c.  Only
 * three things cross from the main thread to a worker, each through
 * the worker's command word (an atomic bit set) and an eventfd that
 * wakes its loop: "reload" (the new config waits in a slot under a
 * mutex), "drain" and "exit".  What a worker publishes back is one
 * atomic: while it drains, how many requests it still has in flight
 * (-1 once its loop has ended).  Everything else a loop touches is its own, or is
 * already shared safely: the audit writer and the idempotency store
 * take submissions from any loop through per-loop ports, the metrics
 * are atomics, the config is refcounted with atomics.
 */
#include "workers.h"
#include "conf.h"
#include "log.h"
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

enum {
	WCMD_RELOAD	= 1 << 0,
	WCMD_DRAIN	= 1 << 1,
	WCMD_EXIT	= 1 << 2,
};

struct worker {
	struct workers		*ws;
	int			 id;		/* 1..n (loop 0 is main's) */
	struct event_base	*base;
	struct gw_loop		 loop;
	bool			 loop_ready;	/* server_init succeeded */
	int			 efd;		/* eventfd: commands wait */
	struct event		*cmd_ev;
	struct event		*drain_ev;
	atomic_uint		 cmds;
	atomic_int		 active;	/* published; -1: loop ended */
	pthread_mutex_t		 mu;		/* guards next_cfg */
	struct config		*next_cfg;	/* for WCMD_RELOAD */
	pthread_t		 thread;
	bool			 started;
};

struct workers {
	struct worker		*w;
	int			 n;
};

struct event_base *
workers_base_new(void)
{
	struct event_config *ec;
	struct event_base *base;

	if ((ec = event_config_new()) == NULL)
		return NULL;
	/*
	 * Batch epoll_ctl changes per loop pass: a connection's interest
	 * toggled off and on again in one pass costs no system call.
	 * libevent warns this is unsafe with dup()ed descriptors; cmgate
	 * and the libraries it drives on the loop (evhttp, libcurl) never
	 * register one, and a descriptor closed and reused within a pass
	 * is handled (an EPOLL_CTL_MOD that fails with ENOENT is retried
	 * as an ADD).  Each base is used by one thread only: no locks.
	 */
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

int
workers_check(const struct config *c, int loops, char *err, size_t errlen)
{
	if (loops > 1 && c->upstream.rate_limit_per_sec > 0) {
		snprintf(err, errlen, "%s: workers: %d loops need the upstream "
		    "budget off (upstream.rate_limit_per_sec 0): the budget "
		    "is kept per loop, so %d loops would send %d times the "
		    "rate", c->path ? c->path : "config", loops, loops, loops);
		return -1;
	}
	return 0;
}

/* ---- on the worker's thread --------------------------------------- */

static void
worker_publish(struct worker *w)
{
	atomic_store_explicit(&w->active, w->loop.active,
	    memory_order_relaxed);
}

static void
on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	worker_publish(w);
	if (w->loop.active == 0)
		event_base_loopexit(w->base, NULL);
}

static void
worker_start_drain(struct worker *w)
{
	struct timeval tv = { 0, 20000 };

	if (w->loop.draining)
		return;
	server_stop_accepting(&w->loop);
	w->drain_ev = event_new(w->base, -1, EV_PERSIST, on_drain_tick, w);
	if (w->drain_ev == NULL || event_add(w->drain_ev, &tv) == -1)
		event_base_loopexit(w->base, NULL);
	worker_publish(w);
}

static void
worker_reload(struct worker *w)
{
	struct config *c;

	pthread_mutex_lock(&w->mu);
	c = w->next_cfg;
	w->next_cfg = NULL;
	pthread_mutex_unlock(&w->mu);
	if (c == NULL)
		return;
	if (server_reload(&w->loop, c) == -1)
		log_error("reload: worker loop %d kept its old config", w->id);
	conf_unref(c);
}

static void
on_command(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t n;
	unsigned c;

	if (read(fd, &n, sizeof(n)) == -1) {
		/* EAGAIN: a spurious wakeup */
	}
	c = atomic_exchange(&w->cmds, 0);
	if (c & WCMD_EXIT) {
		event_base_loopbreak(w->base);
		return;
	}
	if (c & WCMD_RELOAD)
		worker_reload(w);
	if (c & WCMD_DRAIN)
		worker_start_drain(w);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "cmgate-w%d", w->id);
	pthread_setname_np(pthread_self(), name);
	event_base_dispatch(w->base);
	/* A loop broken off mid-pass leaves that pass's access-log lines
	 * in this thread's buffer; the main thread cannot reach them. */
	log_pass_flush();
	atomic_store(&w->active, -1);
	return NULL;
}

/* ---- on the main thread ------------------------------------------- */

static void
worker_send(struct worker *w, unsigned cmd)
{
	uint64_t one = 1;

	atomic_fetch_or(&w->cmds, cmd);
	if (write(w->efd, &one, sizeof(one)) == -1) {
		/* EAGAIN: the counter is already non-zero */
	}
}

/* "host:port" of the socket loop 0 listens on, so a worker binds the
 * very port (listen "host:0" picks one at startup). */
static int
bound_address(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%d", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%d", host, ntohs(a->sin6_port));
	} else
		return -1;
	return 0;
}

/* Set up worker w (its base, loop and command channel), not yet
 * running. */
static int
worker_init(struct worker *w, struct config *cfg, struct audit *audit,
    struct idem *idem, struct offload *offload, const char *addr, char *err,
    size_t errlen)
{
	int fd;

	atomic_init(&w->cmds, 0);
	atomic_init(&w->active, 0);
	pthread_mutex_init(&w->mu, NULL);
	w->efd = -1;
	if ((w->base = workers_base_new()) == NULL) {
		snprintf(err, errlen, "worker %d: cannot make an event base",
		    w->id);
		return -1;
	}
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (w->cmd_ev = event_new(w->base, w->efd, EV_READ | EV_PERSIST,
	    on_command, w)) == NULL || event_add(w->cmd_ev, NULL) == -1) {
		snprintf(err, errlen, "worker %d: cannot make its command "
		    "channel: %s", w->id, strerror(errno));
		return -1;
	}
	if ((fd = server_listen(addr, err, errlen)) == -1)
		return -1;
	if (server_init(&w->loop, w->base, cfg, audit, fd, err, errlen) ==
	    -1) {
		/* server_init owns fd only once it accepts on it. */
		if (w->loop.bound == NULL)
			close(fd);
		w->loop_ready = true;	/* partly made: server_free it */
		return -1;
	}
	w->loop_ready = true;
	if (server_attach(&w->loop, idem, offload) == -1) {
		snprintf(err, errlen, "worker %d: cannot attach the store or "
		    "the offload pool to the loop", w->id);
		return -1;
	}
	return 0;
}

int
workers_start(struct workers **out, struct config *cfg, struct audit *audit,
    struct idem *idem, struct offload *offload, int listen_fd, char *err,
    size_t errlen)
{
	struct workers *ws;
	sigset_t all, old;
	char addr[INET6_ADDRSTRLEN + 16];
	int i, e;

	*out = NULL;
	if (cfg->workers <= 1)
		return 0;
	if (bound_address(listen_fd, addr, sizeof(addr)) == -1) {
		snprintf(err, errlen, "workers: cannot read the listening "
		    "address: %s", strerror(errno));
		return -1;
	}
	if ((ws = calloc(1, sizeof(*ws))) == NULL ||
	    (ws->w = calloc((size_t)cfg->workers - 1, sizeof(*ws->w))) ==
	    NULL) {
		free(ws);
		snprintf(err, errlen, "workers: out of memory");
		return -1;
	}
	ws->n = cfg->workers - 1;
	for (i = 0; i < ws->n; i++) {
		ws->w[i].ws = ws;
		ws->w[i].id = i + 1;
		if (worker_init(&ws->w[i], cfg, audit, idem, offload, addr,
		    err, errlen) == -1) {
			ws->n = i + 1;
			workers_free(ws);
			return -1;
		}
	}
	/* Signals belong to the main thread's loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < ws->n; i++) {
		if ((e = pthread_create(&ws->w[i].thread, NULL, worker_main,
		    &ws->w[i])) != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			snprintf(err, errlen, "workers: cannot start a thread: "
			    "%s", strerror(e));
			workers_free(ws);
			return -1;
		}
		ws->w[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	log_info("serving from %d event loops (%d worker threads) on %s",
	    ws->n + 1, ws->n, addr);
	*out = ws;
	return 0;
}

int
workers_loops(const struct workers *ws)
{
	return ws == NULL ? 1 : ws->n + 1;
}

void
workers_reload(struct workers *ws, struct config *cfg)
{
	int i;

	if (cfg->workers != workers_loops(ws))
		log_warn("reload: workers changes need a restart; still %d "
		    "event loop(s)", workers_loops(ws));
	if (ws == NULL)
		return;
	for (i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		struct config *old;

		pthread_mutex_lock(&w->mu);
		old = w->next_cfg;
		w->next_cfg = conf_ref(cfg);
		pthread_mutex_unlock(&w->mu);
		conf_unref(old);	/* a reload the worker never took */
		worker_send(w, WCMD_RELOAD);
	}
}

void
workers_drain(struct workers *ws)
{
	int i, zero;

	if (ws == NULL)
		return;
	for (i = 0; i < ws->n; i++) {
		/* Busy until the worker publishes its own count (a loop
		 * that has ended keeps its -1). */
		zero = 0;
		atomic_compare_exchange_strong(&ws->w[i].active, &zero, 1);
		worker_send(&ws->w[i], WCMD_DRAIN);
	}
}

int
workers_active(const struct workers *ws)
{
	int i, n = 0, a;

	if (ws == NULL)
		return 0;
	for (i = 0; i < ws->n; i++) {
		a = atomic_load_explicit(&ws->w[i].active,
		    memory_order_relaxed);
		if (a > 0)
			n += a;
	}
	return n;
}

void
workers_free(struct workers *ws)
{
	int i;

	if (ws == NULL)
		return;
	for (i = 0; i < ws->n; i++)
		if (ws->w[i].started)
			worker_send(&ws->w[i], WCMD_EXIT);
	for (i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		if (w->started)
			pthread_join(w->thread, NULL);
		/* The thread has ended: its loop is ours to free. */
		if (w->loop_ready)
			server_free(&w->loop);
		if (w->drain_ev)
			event_free(w->drain_ev);
		if (w->cmd_ev)
			event_free(w->cmd_ev);
		if (w->efd != -1)
			close(w->efd);
		if (w->base)
			event_base_free(w->base);
		conf_unref(w->next_cfg);
		pthread_mutex_destroy(&w->mu);
	}
	free(ws->w);
	free(ws);
}
