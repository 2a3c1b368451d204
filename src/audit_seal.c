/*
 * audit_seal.c: seal export, on a thread of its own.
 *
 * Each seal the writer makes is also sent off the host, so that an
 * attacker who truncates or rewrites the log cannot take the seals
 * back: to syslog, and/or on the stdin of audit.seal_command.  A slow
 * or stuck command must never hold the writer (every request waits on
 * it), so the writer only queues the seal line (a bounded queue that
 * drops the oldest: the seal stays in the log) and this thread runs the
 * command.  The command gets nothing of the gateway's (environment,
 * descriptors, signal mask).
 */
#include "audit_int.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

void
audit_export_push(struct audit *a, const char *line)
{
	char *dup;

	if (!a->exporter_started || (dup = strdup(line)) == NULL)
		return;
	pthread_mutex_lock(&a->emu);
	if (a->en == AUDIT_EXPORT_QUEUE) {
		log_warn("audit: seal export is behind; dropping the oldest "
		    "queued seal (it stays in the log)");
		free(a->eq[a->eh]);
		a->eh = (a->eh + 1) % AUDIT_EXPORT_QUEUE;
		a->en--;
	}
	a->eq[(a->eh + a->en) % AUDIT_EXPORT_QUEUE] = dup;
	a->en++;
	pthread_cond_signal(&a->ecv);
	pthread_mutex_unlock(&a->emu);
}

/*
 * Run the seal command with the seal line on its stdin.  The child gets
 * nothing of the gateway's but its stdout and stderr: a clean
 * environment (a minimal PATH; never CRYPTOMATE_API_KEY or anything
 * else the gateway was started with) and no descriptor above 2 (the
 * audit log, the idempotency store, sockets, libevent's signal pair are
 * closed in the child whether or not they are close-on-exec).
 */
static void
audit_export_command(struct audit *a, const char *line)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", a->seal_command,
	    NULL };
	char *envp[] = { (char *)"PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	int p[2], status = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("audit: seal command: pipe: %s", strerror(errno));
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[0], 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	/* Everything above stderr, the pipe's ends included (without
	 * it, close-on-exec on every descriptor the gateway opens). */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	posix_spawnattr_init(&attr);
	/* The thread blocks every signal; the command must not inherit
	 * that mask. */
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	if (posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp) != 0) {
		log_warn("audit: seal command: cannot start /bin/sh");
		close(p[0]);
		close(p[1]);
		goto out;
	}
	close(p[0]);
	/* SIGPIPE is blocked here: a command that does not read gives
	 * EPIPE, and the pending signal is taken below. */
	if (audit_write_all(p[1], line, strlen(line)) == -1 ||
	    audit_write_all(p[1], "\n", 1) == -1)
		log_warn("audit: seal command did not read the seal: %s",
		    strerror(errno));
	close(p[1]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warn("audit: seal command failed (status %d)", status);
out:
	{
		sigset_t pipe_set;
		struct timespec zero = { 0, 0 };
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
	}
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
}

static void *
audit_exporter_main(void *arg)
{
	struct audit *a = arg;
	char *line;

	for (;;) {
		pthread_mutex_lock(&a->emu);
		while (a->en == 0 && !a->estop)
			pthread_cond_wait(&a->ecv, &a->emu);
		if (a->en == 0) {
			pthread_mutex_unlock(&a->emu);
			break;
		}
		line = a->eq[a->eh];
		a->eh = (a->eh + 1) % AUDIT_EXPORT_QUEUE;
		a->en--;
		pthread_mutex_unlock(&a->emu);
		if (a->seal_syslog)
			syslog(LOG_NOTICE, "cmgate-audit-seal %s", line);
		if (a->seal_command)
			audit_export_command(a, line);
		free(line);
	}
	return NULL;
}

/* Before the first seal, which it exports too. */
int
audit_start_exporter(struct audit *a, char *err, size_t errlen)
{
	if (a->seal_command == NULL && !a->seal_syslog)
		return 0;
	if (audit_spawn(&a->exporter, audit_exporter_main, a,
	    "the seal exporter", err, errlen) == -1)
		return -1;
	a->exporter_started = true;
	return 0;
}

/* Join the exporter.  It leaves the queue empty: it exits only once
 * every queued seal is exported. */
void
audit_stop_exporter(struct audit *a)
{
	if (!a->exporter_started)
		return;
	pthread_mutex_lock(&a->emu);
	a->estop = true;
	pthread_cond_signal(&a->ecv);
	pthread_mutex_unlock(&a->emu);
	pthread_join(a->exporter, NULL);
	a->exporter_started = false;
}
