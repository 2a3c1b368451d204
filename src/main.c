/*
 * main.c: startup, signals, the event loop, and wiring the rooms
 * together.  Nothing here knows about a request's details.
 */
#include "config.h"	/* PACKAGE_VERSION, from configure.ac */
#include "audit.h"
#include "conf.h"
#include "guard.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "owners.h"
#include "routes.h"
#include "server.h"
#include "upstream.h"
#include "util.h"
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>

struct gateway {
	struct event_base	*base;
	struct config		*cfg;
	struct audit		*audit;
	struct idem		*idem;		/* NULL: idempotency off */
	struct gw_loop		 loop;
	struct offload		*offload;
	struct workers		*workers;	/* loops 1.., or NULL */
	struct event		*ev_term, *ev_int, *ev_hup, *ev_usr1;
	struct event		*drain_timer;
	uint64_t		 drain_deadline_ms;
	const char		*conf_path;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: cmgate [-t] -c FILE\n"
	    "       cmgate --version | --help\n"
	    "\n"
	    "  -c, --config FILE  the JSON config (see cmgate.json(5))\n"
	    "  -t, --test         check the config and the key files, "
	    "then exit\n"
	    "  -V, --version      print the version\n"
	    "  -h, --help         this text, and the config keys\n"
	    "\n"
	    "Signals: SIGHUP reloads the config and keys, SIGTERM/SIGINT "
	    "drain and exit,\nSIGUSR1 rotates the audit log.\n"
	    "\nConfig keys (key, type, default, meaning):\n");
	if (f == stdout)
		conf_print_keys();
}

/* The API key lives in this process: keep it out of core dumps. */
/*
 * Make every open descriptor above stderr close-on-exec: at start, the
 * ones inherited from whoever started the gateway (a shell, a make
 * jobserver); once the loops run, the ones libraries opened without
 * O_CLOEXEC (libcurl's wakeup socketpair; LMDB's data file is done
 * where it is opened).  The gateway's own opens all use O_CLOEXEC.  The
 * seal command is spawned with everything above 2 closed besides.
 * close_range(2) does it in one call on Linux 5.11 and later; older
 * kernels take the loop.
 */
static void
cloexec_all(void)
{
	struct rlimit rl;
	int fd, fl, max = 1024;

	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
	for (fd = 3; fd < max; fd++)
		if ((fl = fcntl(fd, F_GETFD)) != -1 && !(fl & FD_CLOEXEC))
			(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

static void
protect_memory(const struct config *c)
{
	struct rlimit rl = { 0, 0 };

	if (c->core_dumps)
		return;
	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static void
on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct gateway *gw = arg;
	int active = gw->loop.active + workers_active(gw->workers);

	if (active == 0 || now_mono_ms() >= gw->drain_deadline_ms) {
		if (active > 0)
			log_warn("shutdown: %d requests still in flight after "
			    "%ld ms; exiting", active,
			    gw->cfg->shutdown_timeout_ms);
		event_base_loopexit(gw->base, NULL);
	}
}

static void
on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct gateway *gw = arg;
	struct timeval tv = { 0, 20000 };

	if (gw->loop.draining)
		return;
	log_info("shutdown: signal %d, draining %d requests in flight",
	    (int)sig, gw->loop.active);
	server_stop_accepting(&gw->loop);
	workers_drain(gw->workers);
	gw->drain_deadline_ms = now_mono_ms() +
	    (uint64_t)gw->cfg->shutdown_timeout_ms;
	gw->drain_timer = event_new(gw->base, -1, EV_PERSIST, on_drain_tick,
	    gw);
	if (gw->drain_timer == NULL || event_add(gw->drain_timer, &tv) == -1)
		event_base_loopexit(gw->base, NULL);
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* An operator's owner change, as an "admin" record (no callback: the
 * record is written ahead of every request of the loop's first pass). */
static int
admin_to_audit(const char *members, void *arg)
{
	return audit_submit(arg, "admin", members, NULL, NULL);
}

/*
 * SIGHUP: re-read the config and its key files.  New requests use the
 * new config; requests in flight keep a reference to the old one.  On
 * any error the old config stays.  libevent runs this on the loop, not
 * in signal context.
 */
static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct gateway *gw = arg;
	struct config *nc;
	char err[1024];

	if ((nc = conf_load(gw->conf_path, err, sizeof(err))) == NULL ||
	    routes_bind_callers(nc, err, sizeof(err)) == -1) {
		log_error("reload failed, keeping the running config: %s",
		    err);
		conf_unref(nc);
		metrics_reload_result(false);
		return;
	}
	if (strcmp(nc->listen, gw->cfg->listen) != 0 ||
	    strcmp(nc->audit.path, gw->cfg->audit.path) != 0 ||
	    !same_str(nc->metrics.listen, gw->cfg->metrics.listen))
		log_warn("reload: listen, metrics.listen and audit.path "
		    "changes need a restart; kept the old ones");
	if (workers_check(nc, workers_loops(gw->workers), err,
	    sizeof(err)) == -1) {
		log_error("reload failed, keeping the running config: %s",
		    err);
		metrics_reload_result(false);
		conf_unref(nc);
		return;
	}
	if (server_reload(&gw->loop, nc) == -1) {
		log_error("reload failed, keeping the running config");
		metrics_reload_result(false);
		conf_unref(nc);
		return;
	}
	workers_reload(gw->workers, nc);
	log_setup(nc->log.target, nc->log.level);
	/* The listen address and audit path stay those in use. */
	conf_unref(gw->cfg);
	gw->cfg = nc;
	metrics_reload_result(true);
	log_info("reload: config %s loaded (%zu callers)", gw->conf_path,
	    nc->ncallers);
}

static void
on_rotate(evutil_socket_t sig, short what, void *arg)
{
	struct gateway *gw = arg;

	log_info("audit: rotation requested");
	audit_request_rotate(gw->audit);
}

static int
add_signal(struct gateway *gw, struct event **ev, int sig,
    event_callback_fn fn)
{
	*ev = evsignal_new(gw->base, sig, fn, gw);
	return (*ev == NULL || event_add(*ev, NULL) == -1) ? -1 : 0;
}

static void
log_listening(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		}
	}
	log_info("listening on %s:%d", host, port);
}

/* The command line into gw; -1 to go on, or the exit code. */
static int
parse_args(struct gateway *gw, int argc, char **argv, int *test_only)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			gw->conf_path = optarg;
			break;
		case 't':
			*test_only = 1;
			break;
		case 'V':
			printf("cmgate %s (%s, libevent %s, json-c %s)\n",
			    PACKAGE_VERSION, curl_version(),
			    event_get_version(), json_c_version());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (gw->conf_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

/*
 * -t: fail on whatever the start checks before it writes (audit_open
 * and idem_open run the same checks first): the audit keys and files,
 * the idempotency store's files and their contents (a damaged store
 * fails -t as it fails the start).  The exit code.
 */
static int
test_config(const struct gateway *gw)
{
	char err[1024];

	if (audit_check(gw->cfg, err, sizeof(err)) == -1 ||
	    (gw->cfg->idempotency.enabled &&
	    (idem_check(gw->cfg, err, sizeof(err)) == -1 ||
	    idem_check_store(gw->cfg->idempotency.path, err,
	    sizeof(err)) == -1))) {
		fprintf(stderr, "cmgate: %s\n", err);
		return 1;
	}
	printf("cmgate: the configuration file %s syntax is ok\n"
	    "cmgate: configuration file %s test is successful\n",
	    gw->conf_path, gw->conf_path);
	return 0;
}

/*
 * Everything the running gateway needs, in the order each needs the
 * one before: logs, libcurl, the audit log, the store, the offload
 * pool, loop 0 and its listener, the operators' queued owner changes,
 * the other loops, the signals.  *fd is the listening socket.  -1 (and
 * a log line) on the first failure; gw_stop frees what was made.
 */
static int
gw_start(struct gateway *gw, int *fd)
{
	char err[1024];
	int n;

	protect_memory(gw->cfg);
	if (log_setup(gw->cfg->log.target, gw->cfg->log.level) == -1) {
		fprintf(stderr, "cmgate: bad log settings\n");
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		return -1;
	}
	if ((gw->audit = audit_open(gw->cfg, err, sizeof(err))) == NULL) {
		log_error("audit: %s", err);
		return -1;
	}
	/* One store per process, shared by the loops; idempotency.path
	 * needs a restart to change. */
	if (gw->cfg->idempotency.enabled &&
	    (gw->idem = idem_open(gw->cfg, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		return -1;
	}
	/* Two threads for work too long for a loop pass (large uploads). */
	if ((gw->offload = offload_new(2, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		return -1;
	}
	guard_init(server_answer_refusal);
	if ((gw->base = workers_base_new()) == NULL) {
		log_error("event_base_new failed");
		return -1;
	}
	if ((*fd = server_listen(gw->cfg->listen, err, sizeof(err))) == -1 ||
	    server_init(&gw->loop, gw->base, gw->cfg, gw->audit, *fd, err,
	    sizeof(err)) == -1) {
		log_error("%s", err);
		return -1;
	}
	if (server_attach(&gw->loop, gw->idem, gw->offload) == -1) {
		log_error("cannot attach the store or the offload pool to the "
		    "loop");
		return -1;
	}
	/* Owner changes an operator made (cmgate-idem owners) become
	 * "admin" records, queued ahead of any request's. */
	if (gw->idem != NULL && (n = owners_admin_drain(gw->idem,
	    admin_to_audit, gw->loop.aport)) > 0)
		log_info("audit: %d owner change(s) by operators recorded", n);
	if (workers_start(&gw->workers, gw->cfg, gw->audit, gw->idem,
	    gw->offload, *fd, err, sizeof(err)) == -1) {
		log_error("%s", err);
		return -1;
	}
	if (add_signal(gw, &gw->ev_term, SIGTERM, on_terminate) == -1 ||
	    add_signal(gw, &gw->ev_int, SIGINT, on_terminate) == -1 ||
	    add_signal(gw, &gw->ev_hup, SIGHUP, on_reload) == -1 ||
	    add_signal(gw, &gw->ev_usr1, SIGUSR1, on_rotate) == -1) {
		log_error("cannot install signal handlers");
		return -1;
	}
	return 0;
}

/* Free what gw_start made, in the reverse order; any part may be
 * missing. */
static void
gw_stop(struct gateway *gw)
{
	if (gw->ev_term) event_free(gw->ev_term);
	if (gw->ev_int) event_free(gw->ev_int);
	if (gw->ev_hup) event_free(gw->ev_hup);
	if (gw->ev_usr1) event_free(gw->ev_usr1);
	if (gw->drain_timer) event_free(gw->drain_timer);
	workers_free(gw->workers);
	server_free(&gw->loop);
	/* After the loops: jobs still out come back dropped. */
	offload_free(gw->offload);
	idem_close(gw->idem);
	if (gw->audit)
		audit_close(gw->audit);
	if (gw->base)
		event_base_free(gw->base);
	conf_unref(gw->cfg);
	curl_global_cleanup();
}

int
main(int argc, char **argv)
{
	struct gateway gw;
	char err[1024];
	int test_only = 0, fd = -1, rc;

	memset(&gw, 0, sizeof(gw));
	if ((rc = parse_args(&gw, argc, argv, &test_only)) != -1)
		return rc;
	cloexec_all();
	if ((gw.cfg = conf_load(gw.conf_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cmgate: %s\n", err);
		return 1;
	}
	if (routes_bind_callers(gw.cfg, err, sizeof(err)) == -1 ||
	    workers_check(gw.cfg, gw.cfg->workers, err, sizeof(err)) == -1) {
		fprintf(stderr, "cmgate: %s\n", err);
		conf_unref(gw.cfg);
		return 1;
	}
	if (test_only) {
		rc = test_config(&gw);
		conf_unref(gw.cfg);
		return rc;
	}
	rc = 1;
	if (gw_start(&gw, &fd) == 0) {
		cloexec_all();
		log_info("cmgate %s starting: upstream %s, %zu callers, "
		    "audit %s", PACKAGE_VERSION, gw.cfg->upstream.base_url,
		    gw.cfg->ncallers, gw.cfg->audit.path);
		log_listening(fd);
		event_base_dispatch(gw.base);
		log_info("shutdown: event loop stopped");
		rc = 0;
	}
	gw_stop(&gw);
	if (rc == 0)
		log_info("shutdown: complete");
	return rc;
}
