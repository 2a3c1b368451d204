/*
 * audit.c: the gateway side of the audit log.
 *
 * One writer thread owns the file, the key and the chain.  Loop
 * threads queue records (audit_submit); the writer takes everything
 * queued, assigns seq, chains and MACs each record into one buffer,
 * writes it with one write(2) and makes it durable with one
 * fdatasync(2) (group commit, no linger timer), then hands each record
 * back to the loop that submitted it (audit_port, over a port.h port:
 * a loop's records go out once per loop pass and come back in one
 * batch per round).  At every epoch end it writes a seal, evolves the
 * key and persists the key state.
 *
 * Fail closed: the first write or fdatasync error poisons the log for
 * good.  fdatasync is never retried on the same file: after a failed
 * flush the kernel may have dropped the dirty pages and a retry can
 * report success for data that is gone (the PostgreSQL lesson).
 *
 * Files: <path> (the live log), <path>.<last seq, 12 digits> (rotated
 * files), <path>.broken-<time> (torn tails cut at start), the state
 * file (default <path>.state, 0600).  See docs/audit.md.
 */
#include "config.h"	/* PACKAGE_VERSION, from configure.ac */
#include "audit.h"
#include "audit_format.h"
#include "audit_flood.h"
#include "conf.h"
#include "log.h"
#include "port.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

extern char **environ;

#define AUDIT_BATCH_CAP		(1024 * 1024)	/* bytes of one write */
#define AUDIT_EXPORT_QUEUE	64		/* seals waiting for export */
#define AUDIT_STATE_CAP		4096

enum audit_body_mode { BODY_DIGEST, BODY_REDACTED, BODY_FULL };

/* A record on its way: loop -> writer (queue) -> loop (port). */
struct audit_item {
	struct port_item	 link;	/* first: the queue links through it */
	audit_cb		 cb;
	void			*arg;
	uint64_t		 seq;
	bool			 ok;
	char			 type[AFMT_MAX_TYPE + 1];
	size_t			 flen;
	char			 fields[];
};

#define AITEM(pi)	((struct audit_item *)(void *)(pi))

struct audit_port {
	struct audit		*a;
	struct port		*port;
};

struct audit {
	/* Configuration, copied at open. */
	char			*path, *state_path, *dir;
	char			*seal_command;
	bool			 seal_syslog;
	uint64_t		 epoch_ns;
	uint64_t		 max_bytes;
	enum audit_body_mode	 body;

	/* Key material.  body_key is fixed for the log's life and only
	 * read after open; key belongs to the writer. */
	char			 log_id[AFMT_LOGID_HEX + 1];
	struct afmt_key		 key;
	unsigned char		 body_key[AFMT_KEY_LEN];

	/* The chain, owned by the writer (by audit_open before it). */
	int			 fd;
	uint64_t		 size;
	uint64_t		 next_seq;
	unsigned char		 head[AFMT_HASH_LEN];
	uint64_t		 epoch_records;	/* in the current epoch */
	uint64_t		 seal_seq;
	unsigned char		 seal_head[AFMT_HASH_LEN];
	bool			 last_is_seal;
	uint64_t		 run_records;
	struct afmt_idset	 open;		/* requests without outcome */

	/* Unauthenticated refusals past their allowance (audit_flood.h):
	 * counted on the loops, summarized by the writer. */
	struct audit_flood	*flood;

	/* The batch being built. */
	char			*buf;
	size_t			 buflen, bufcap;
	struct audit_item	**items;
	struct port_item	**links;	/* the same, for port_post */
	size_t			 itemcap;

	/* The queue, under mu. */
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct audit_item	*qh, *qt;
	bool			 closing, rotate_req, seal_req;
	size_t			 nports;
	pthread_t		 writer;
	bool			 writer_started;
	atomic_bool		 poisoned;

	/* Test hook CMGATE_AUDIT_FAIL_AFTER=N[,fsync]. */
	long long		 fail_after;	/* -1: off */
	bool			 fail_fsync;
	bool			 inject_armed;
	uint64_t		 submitted_done;

	/* Figures, under smu. */
	pthread_mutex_t		 smu;
	struct audit_stats	 st;
	uint64_t		 io_writes, io_fsyncs;

	/* Seal export, off the writer. */
	pthread_t		 exporter;
	bool			 exporter_started;
	pthread_mutex_t		 emu;
	pthread_cond_t		 ecv;
	char			*eq[AUDIT_EXPORT_QUEUE];
	size_t			 eh, en;
	bool			 estop;
};

static const double audit_buckets[12] = {
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, INFINITY,
};

static const char *const audit_reserved_types[] = {
	"start", "seal", "recover", "stop", "carry", "reject_summary", NULL,
};

const double *
audit_stats_buckets(void)
{
	return audit_buckets;
}

/* ------------------------------------------------------------------ */
/* Small file helpers */

static int
audit_fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
audit_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static char *
audit_dirname(const char *path)
{
	const char *s = strrchr(path, '/');

	if (s == NULL)
		return strdup(".");
	if (s == path)
		return strdup("/");
	return strndup(path, (size_t)(s - path));
}

static const char *
audit_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Name of a rotated file: it holds records up to seq last. */
static void
audit_rotated_name(const struct audit *a, uint64_t last, char *out,
    size_t outlen)
{
	snprintf(out, outlen, "%s.%012llu", a->path, (unsigned long long)last);
}

/* ------------------------------------------------------------------ */
/* Statistics */

static void
audit_hist(uint64_t *le, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i;

	for (i = 0; i < 12; i++)
		if (s <= audit_buckets[i])
			le[i]++;
}

void
audit_get_stats(const struct audit *ca, struct audit_stats *out)
{
	struct audit *a = (struct audit *)ca;

	if (out == NULL)
		return;
	if (a == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&a->smu);
	*out = a->st;
	pthread_mutex_unlock(&a->smu);
	out->rejects_summarized = audit_flood_summarized(a->flood);
}

void
audit_io_counts(const struct audit *ca, uint64_t *writes, uint64_t *fsyncs)
{
	struct audit *a = (struct audit *)ca;

	pthread_mutex_lock(&a->smu);
	if (writes)
		*writes = a->io_writes;
	if (fsyncs)
		*fsyncs = a->io_fsyncs;
	pthread_mutex_unlock(&a->smu);
}

/* ------------------------------------------------------------------ */
/* The key state file */

/*
 * Replace the state file atomically: temp file, fdatasync, rename,
 * fsync of the folder.  The state holds the current K_e, so the temp
 * file is 0600 from its creation and the buffer is wiped.
 */
static int
audit_state_save(struct audit *a)
{
	char buf[1024], khex[2 * AFMT_KEY_LEN + 1], bhex[2 * AFMT_KEY_LEN + 1];
	char shex[2 * AFMT_HASH_LEN + 1], *tmp = NULL;
	size_t n, tlen;
	int fd = -1, rc = -1, len;

	hex_encode(a->key.k, AFMT_KEY_LEN, khex);
	hex_encode(a->body_key, AFMT_KEY_LEN, bhex);
	hex_encode(a->seal_head, AFMT_HASH_LEN, shex);
	len = snprintf(buf, sizeof(buf), "{\"v\":1,\"log\":\"%s\",\"epoch\":%llu,"
	    "\"key\":\"%s\",\"body_key\":\"%s\",\"seal_seq\":%llu,"
	    "\"seal_head\":\"%s\"}\n", a->log_id,
	    (unsigned long long)a->key.epoch, khex, bhex,
	    (unsigned long long)a->seal_seq, shex);
	OPENSSL_cleanse(khex, sizeof(khex));
	OPENSSL_cleanse(bhex, sizeof(bhex));
	if (len < 0 || (size_t)len >= sizeof(buf))
		goto fail;
	n = (size_t)len;
	tlen = strlen(a->state_path) + 5;
	if ((tmp = malloc(tlen)) == NULL)
		goto fail;
	snprintf(tmp, tlen, "%s.tmp", a->state_path);
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1)
		goto fail;
	if (fchmod(fd, 0600) == -1 || audit_write_all(fd, buf, n) == -1 ||
	    fdatasync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, a->state_path) == -1)
		goto fail;
	if (audit_fsync_dir(a->dir) == -1)
		goto fail;
	rc = 0;
fail:
	if (rc == -1)
		log_error("audit: cannot persist the key state %s: %s",
		    a->state_path, strerror(errno));
	if (fd != -1) {
		close(fd);
		(void)unlink(tmp);
	}
	free(tmp);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int
audit_hexmember(struct json_object *o, const char *name, unsigned char *out,
    size_t n)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    hex_decode(json_object_get_string(v), out, n) == -1)
		return -1;
	return 0;
}

static int
audit_u64member(struct json_object *o, const char *name, uint64_t *out)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (x = json_object_get_int64(v)) < 0 || x == INT64_MAX)
		return -1;
	*out = (uint64_t)x;
	return 0;
}

static int
audit_state_load(struct audit *a, char *err, size_t errlen)
{
	struct json_object *o = NULL, *v;
	unsigned char k[AFMT_KEY_LEN];
	char *buf = NULL, e2[256];
	size_t len = 0;
	uint64_t epoch = 0;
	const char *id;
	int rc = -1;

	if (read_secret_file_ex(a->state_path, AUDIT_STATE_CAP, RF_NOFOLLOW,
	    &buf, &len, e2, sizeof(e2)) == -1) {
		snprintf(err, errlen, "key state: %s", e2);
		return -1;
	}
	if ((o = json_tokener_parse(buf)) == NULL ||
	    !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "v", &v) ||
	    json_object_get_int(v) != 1 ||
	    !json_object_object_get_ex(o, "log", &v) ||
	    (id = json_object_get_string(v)) == NULL ||
	    strlen(id) != AFMT_LOGID_HEX ||
	    audit_u64member(o, "epoch", &epoch) == -1 ||
	    audit_hexmember(o, "key", k, sizeof(k)) == -1 ||
	    audit_hexmember(o, "body_key", a->body_key, AFMT_KEY_LEN) == -1 ||
	    audit_u64member(o, "seal_seq", &a->seal_seq) == -1 ||
	    audit_hexmember(o, "seal_head", a->seal_head, AFMT_HASH_LEN) == -1) {
		snprintf(err, errlen, "key state %s: not a valid state file",
		    a->state_path);
		goto fail;
	}
	memcpy(a->log_id, id, AFMT_LOGID_HEX + 1);
	if (afmt_key_set(&a->key, k, epoch) == -1) {
		snprintf(err, errlen, "key state: OpenSSL HMAC unavailable");
		goto fail;
	}
	rc = 0;
fail:
	OPENSSL_cleanse(k, sizeof(k));
	json_object_put(o);
	secret_free(buf, len + 1);
	return rc;
}

/* K0 (afmt_read_k0), for a new log or cmgate -t. */
static int
audit_read_k0(const char *path, unsigned char k0[AFMT_KEY_LEN], char *err,
    size_t errlen)
{
	char e2[256];

	if (path == NULL) {
		snprintf(err, errlen, "audit.key_file is not set");
		return -1;
	}
	if (afmt_read_k0(path, k0, e2, sizeof(e2)) == -1) {
		snprintf(err, errlen, "initial key: %s", e2);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Building and flushing a batch (writer thread, or audit_open) */

static int
audit_reserve(struct audit *a, size_t more)
{
	char *n;
	size_t cap;

	if (a->buflen + more <= a->bufcap)
		return 0;
	cap = a->bufcap ? a->bufcap : 64 * 1024;
	while (cap < a->buflen + more)
		cap *= 2;
	if ((n = realloc(a->buf, cap)) == NULL)
		return -1;
	a->buf = n;
	a->bufcap = cap;
	return 0;
}

size_t
audit_record_line(char *out, size_t cap, const char *log_id, uint64_t seq,
    struct afmt_key *key, const unsigned char *prev, const char *type,
    const char *fields, size_t flen, unsigned char *head, unsigned char *mac,
    char *ts)
{
	struct afmt_head h;
	char now[32];

	now_iso8601(now, sizeof(now));
	h.log_id = log_id;
	h.seq = seq;
	h.epoch = key->epoch;
	h.ts = now;
	h.type = type;
	if (ts != NULL)
		memcpy(ts, now, sizeof(now));
	return afmt_build(out, cap, &h, fields, flen, prev, key, head, mac);
}

/*
 * Append one record to the batch: it takes the next seq and chains
 * to the previous record.  head/mac/ts (may be NULL) describe it.
 */
static int
audit_add(struct audit *a, const char *type, const char *fields, size_t flen,
    unsigned char *head_out, unsigned char *mac_out, char *ts_out)
{
	unsigned char head[AFMT_HASH_LEN];
	char ts[32];
	size_t n;

	if (audit_reserve(a, AFMT_OVERHEAD + 64 + flen) == -1)
		return -1;
	n = audit_record_line(a->buf + a->buflen, a->bufcap - a->buflen,
	    a->log_id, a->next_seq, &a->key, a->head, type, fields, flen, head,
	    mac_out, ts);
	if (n == 0)
		return -1;
	a->buflen += n;
	memcpy(a->head, head, AFMT_HASH_LEN);
	if (head_out)
		memcpy(head_out, head, AFMT_HASH_LEN);
	if (ts_out)
		memcpy(ts_out, ts, sizeof(ts));
	a->next_seq++;
	a->epoch_records++;
	a->run_records++;
	a->last_is_seal = false;
	return 0;
}

static void
audit_poison(struct audit *a, const char *what, int err)
{
	if (!atomic_exchange(&a->poisoned, true))
		log_error("audit: %s %s: %s; the audit log is poisoned: "
		    "nothing more is recorded or forwarded until a restart",
		    what, a->path, strerror(err));
}

/* Write the batch and make it durable; poison on any failure. */
static int
audit_flush(struct audit *a)
{
	uint64_t t0, t1, t2;
	ssize_t w;
	size_t want = a->buflen, done = 0;
	bool inject = false;
	int err = 0;

	if (want == 0)
		return 0;
	if (atomic_load(&a->poisoned))
		return -1;
	if (a->inject_armed && a->fail_after >= 0 &&
	    a->submitted_done >= (uint64_t)a->fail_after)
		inject = true;

	t0 = now_mono_ns();
	if (inject && !a->fail_fsync) {
		/* As a full disk does: part of the batch lands, then
		 * ENOSPC.  The torn tail is for recovery to find. */
		want = a->buflen / 2;
	}
	while (done < want) {
		w = write(a->fd, a->buf + done, want - done);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w == 0 ? EIO : errno;
			break;
		}
		done += (size_t)w;
	}
	if (inject && !a->fail_fsync && err == 0)
		err = ENOSPC;
	t1 = now_mono_ns();
	pthread_mutex_lock(&a->smu);
	a->io_writes++;
	pthread_mutex_unlock(&a->smu);
	if (err != 0) {
		a->buflen = 0;
		audit_poison(a, "write to", err);
		return -1;
	}
	/* A short write that "succeeded" piecewise is still all here. */
	if (inject && a->fail_fsync)
		err = EIO;
	else if (fdatasync(a->fd) == -1)
		err = errno;
	t2 = now_mono_ns();
	pthread_mutex_lock(&a->smu);
	a->io_fsyncs++;
	if (err == 0) {
		a->st.batches++;
		a->st.bytes += a->buflen;
		a->st.write_ns_sum += t1 - t0;
		a->st.fsync_ns_sum += t2 - t1;
		audit_hist(a->st.write_le, t1 - t0);
		audit_hist(a->st.fsync_le, t2 - t1);
	}
	pthread_mutex_unlock(&a->smu);
	if (err != 0) {
		a->buflen = 0;
		audit_poison(a, "fdatasync of", err);
		return -1;
	}
	a->size += a->buflen;
	a->buflen = 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Seal export: syslog and/or a command, on a thread of its own so a
 * slow command never holds the writer. */

static void
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

/* ------------------------------------------------------------------ */
/* Seals, stop, rotation (writer thread) */

static int
audit_add_seal(struct audit *a, char *export_line, size_t exlen)
{
	char fields[64], ts[32], hh[2 * AFMT_HASH_LEN + 1];
	char mh[2 * AFMT_HASH_LEN + 1];
	unsigned char head[AFMT_HASH_LEN], mac[AFMT_HASH_LEN];
	uint64_t seq = a->next_seq, epoch = a->key.epoch;
	int n;

	n = snprintf(fields, sizeof(fields), "\"records\":%llu",
	    (unsigned long long)(a->epoch_records + 1));
	if (audit_add(a, "seal", fields, (size_t)n, head, mac, ts) == -1)
		return -1;
	hex_encode(head, AFMT_HASH_LEN, hh);
	hex_encode(mac, AFMT_HASH_LEN, mh);
	snprintf(export_line, exlen, "{\"log\":\"%s\",\"seq\":%llu,"
	    "\"epoch\":%llu,\"ts\":\"%s\",\"head\":\"%s\",\"mac\":\"%s\"}",
	    a->log_id, (unsigned long long)seq, (unsigned long long)epoch, ts,
	    hh, mh);
	a->last_is_seal = true;
	return 0;
}

/*
 * After a seal is durable: evolve the key (wiping the old one) and
 * persist the new state.  A state that cannot be persisted poisons the
 * log: a restart would otherwise come back with a key the log has
 * already moved past.
 */
static int
audit_after_seal(struct audit *a, const char *export_line)
{
	a->seal_seq = a->next_seq - 1;
	memcpy(a->seal_head, a->head, AFMT_HASH_LEN);
	a->epoch_records = 0;
	if (afmt_key_evolve(&a->key, a->log_id) == -1) {
		audit_poison(a, "key evolution for", EIO);
		return -1;
	}
	if (audit_state_save(a) == -1) {
		audit_poison(a, "persisting the key state of", errno ? errno : EIO);
		return -1;
	}
	audit_export_push(a, export_line);
	return 0;
}

/* Seal the current epoch now, in a batch of its own. */
static int
audit_seal_now(struct audit *a)
{
	char ex[512];

	if (audit_add_seal(a, ex, sizeof(ex)) == -1 || audit_flush(a) == -1)
		return -1;
	return audit_after_seal(a, ex);
}

/*
 * Up to AUDIT_OPEN_CHUNK entries of the open requests from *idx on, as
 * the member ,"open":[{"request_id":..,"caller":..,"seq":N},...].
 * Each entry takes at most 190 bytes, so a chunk stays well inside a
 * record.
 */
#define AUDIT_OPEN_CHUNK	256

static char *
audit_open_chunk(const struct afmt_idset *set, size_t *idx, size_t *lenp,
    bool *more)
{
	const struct afmt_open *o = NULL;
	size_t cap = 64 + AUDIT_OPEN_CHUNK * 200, n = 0;
	char *s, *p;

	if ((s = malloc(cap)) == NULL)
		return NULL;
	p = s;
	p += sprintf(p, ",\"open\":[");
	while (n < AUDIT_OPEN_CHUNK && (o = afmt_idset_next(set, idx)) != NULL) {
		p += sprintf(p, "%s{\"request_id\":\"%s\",\"caller\":%s,"
		    "\"seq\":%llu}", n ? "," : "", o->id, o->caller,
		    (unsigned long long)o->seq);
		n++;
	}
	p += sprintf(p, "]");
	*lenp = (size_t)(p - s);
	/* Look ahead without consuming: is anything left? */
	{
		size_t peek = *idx;
		*more = n == AUDIT_OPEN_CHUNK && afmt_idset_next(set, &peek) !=
		    NULL;
	}
	return s;
}

/*
 * A start record.  A rotation lists the requests in flight (so each
 * file tells on its own which requests have no outcome); more than one
 * chunk of them follow in "carry" records.
 */
static int
audit_add_start(struct audit *a, const char *reason, bool with_open)
{
	char head_hex[2 * AFMT_HASH_LEN + 1], *fields, *list = NULL;
	const char *body = a->body == BODY_DIGEST ? "digest" :
	    a->body == BODY_REDACTED ? "redacted" : "full";
	size_t listlen = 0, cap, idx = 0;
	bool more = false;
	int n, rc;

	hex_encode(a->head, AFMT_HASH_LEN, head_hex);
	if (with_open && (list = audit_open_chunk(&a->open, &idx, &listlen,
	    &more)) == NULL)
		return -1;
	cap = 512 + listlen;
	if ((fields = malloc(cap)) == NULL) {
		free(list);
		return -1;
	}
	n = snprintf(fields, cap, "\"reason\":\"%s\",\"last_seq\":%llu,"
	    "\"last_head\":\"%s\",\"epoch_s\":%llu,\"body\":\"%s\","
	    "\"pid\":%ld,\"gateway\":\"%s\"%s", reason,
	    (unsigned long long)(a->next_seq - 1), head_hex,
	    (unsigned long long)(a->epoch_ns / 1000000000ull), body,
	    (long)getpid(), "cmgate/" PACKAGE_VERSION, list ? list : "");
	rc = n > 0 && (size_t)n < cap ?
	    audit_add(a, "start", fields, (size_t)n, NULL, NULL, NULL) : -1;
	free(fields);
	free(list);
	while (rc == 0 && more) {
		if ((list = audit_open_chunk(&a->open, &idx, &listlen,
		    &more)) == NULL)
			return -1;
		/* skip the leading comma of the member */
		rc = audit_add(a, "carry", list + 1, listlen - 1, NULL, NULL,
		    NULL);
		free(list);
	}
	return rc;
}

/*
 * Rotate: seal, rename the live file to <path>.<last seq>, create a new
 * one whose start record chains to the last record of the old one and
 * carries the requests still in flight.  Any failure poisons the log.
 */
static int
audit_rotate(struct audit *a)
{
	char name[PATH_MAX];
	int fd;

	if (!a->last_is_seal && audit_seal_now(a) == -1)
		return -1;
	audit_rotated_name(a, a->next_seq - 1, name, sizeof(name));
	if (renameat2(AT_FDCWD, a->path, AT_FDCWD, name,
	    RENAME_NOREPLACE) == -1) {
		if (errno != EINVAL || access(name, F_OK) == 0 ||
		    rename(a->path, name) == -1) {
			audit_poison(a, "rotation of", errno);
			return -1;
		}
	}
	if ((fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0640)) == -1) {
		audit_poison(a, "creating", errno);
		return -1;
	}
	close(a->fd);
	a->fd = fd;
	a->size = 0;
	if (audit_fsync_dir(a->dir) == -1) {
		audit_poison(a, "fsync of the folder of", errno);
		return -1;
	}
	if (audit_add_start(a, "rotate", true) == -1 || audit_flush(a) == -1) {
		if (!atomic_load(&a->poisoned))
			audit_poison(a, "start record of", EIO);
		return -1;
	}
	log_info("audit: rotated to %s at seq %llu", name,
	    (unsigned long long)a->seal_seq);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The writer thread */

/* Hand finished items back to their loops (a port that is gone drops
 * them). */
static void
audit_complete(struct audit *a, struct audit_item **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		a->links[i] = &items[i]->link;
	port_post(a->links, n);
}

static void
audit_fail_items(struct audit *a, struct audit_item **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		items[i]->ok = false;
		items[i]->seq = 0;
	}
	audit_complete(a, items, n);
}

static void
audit_writer_round(struct audit *a, struct audit_item **items, size_t n,
    bool stop, bool seal)
{
	char ex[512], stopf[96], sumf[AUDIT_FLOOD_FIELDS_MAX];
	size_t i, good = 0, slen, nsum = 0;
	int len;

	if (atomic_load(&a->poisoned)) {
		audit_fail_items(a, items, n);
		return;
	}
	a->buflen = 0;
	for (i = 0; i < n; i++) {
		struct audit_item *it = items[i];
		it->seq = a->next_seq;
		it->ok = audit_add(a, it->type, it->fields, it->flen, NULL,
		    NULL, NULL) == 0;
		if (!it->ok) {
			log_error("audit: a %s record could not be built; "
			    "refused", it->type);
			it->seq = 0;
			continue;
		}
		good++;
		afmt_idset_track(&a->open, it->type, it->fields, it->flen,
		    it->seq);
	}
	/* Refusals counted since the last summary: due after a second,
	 * and always before a seal or the stop record, so that they are
	 * in the epoch they happened in. */
	if ((slen = audit_flood_take(a->flood, stop || seal, now_mono_ns(),
	    sumf, sizeof(sumf))) > 0) {
		if (audit_add(a, "reject_summary", sumf, slen, NULL, NULL,
		    NULL) == 0) {
			nsum = 1;
		} else
			log_error("audit: a reject_summary record could not "
			    "be built");
	}
	if (stop) {
		len = snprintf(stopf, sizeof(stopf), "\"reason\":\"shutdown\","
		    "\"records\":%llu", (unsigned long long)(a->run_records + 1));
		(void)audit_add(a, "stop", stopf, (size_t)len, NULL, NULL, NULL);
	}
	if (seal && audit_add_seal(a, ex, sizeof(ex)) == -1)
		seal = false;
	if (audit_flush(a) == -1) {
		audit_fail_items(a, items, n);
		return;
	}
	pthread_mutex_lock(&a->smu);
	a->st.records += good;
	a->st.reject_summaries += nsum;
	pthread_mutex_unlock(&a->smu);
	a->submitted_done += good;
	audit_complete(a, items, n);
	if (seal)
		(void)audit_after_seal(a, ex);
}

static void
audit_deadline(struct timespec *ts, uint64_t mono_ns)
{
	ts->tv_sec = (time_t)(mono_ns / 1000000000ull);
	ts->tv_nsec = (long)(mono_ns % 1000000000ull);
}

static int
audit_grow_items(struct audit *a)
{
	size_t nc = a->itemcap ? a->itemcap * 2 : 256;
	struct audit_item **ni;
	struct port_item **nl;

	if ((ni = realloc(a->items, nc * sizeof(*ni))) == NULL)
		return -1;
	a->items = ni;
	if ((nl = realloc(a->links, nc * sizeof(*nl))) == NULL)
		return -1;
	a->links = nl;
	a->itemcap = nc;
	return 0;
}

static void *
audit_writer_main(void *arg)
{
	struct audit *a = arg;
	uint64_t deadline = now_mono_ns() + a->epoch_ns;
	struct timespec dl;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		size_t n = 0, bytes = 0;
		bool stop, seal, rotate, summary;
		long long room = -1;
		uint64_t wake;

		/* Wake for the seal, or for a pending reject summary
		 * (audit_reject_admit signals when one opens). */
		for (;;) {
			wake = audit_flood_due(a->flood);
			if (wake == 0 || wake > deadline)
				wake = deadline;
			if (a->qh != NULL || a->closing || a->rotate_req ||
			    a->seal_req || now_mono_ns() >= wake)
				break;
			audit_deadline(&dl, wake);
			pthread_cond_timedwait(&a->cv, &a->mu, &dl);
		}
		summary = wake < deadline && now_mono_ns() >= wake;

		/* With the fault armed, end a batch exactly where the
		 * failure is due, so N records succeed. */
		if (a->fail_after >= 0 && !atomic_load(&a->poisoned) &&
		    a->submitted_done < (uint64_t)a->fail_after)
			room = a->fail_after - (long long)a->submitted_done;
		while (a->qh != NULL) {
			struct audit_item *it = a->qh;
			if (n > 0 && (bytes + it->flen + AFMT_OVERHEAD >
			    AUDIT_BATCH_CAP || (room >= 0 &&
			    (long long)n >= room)))
				break;
			if (n == a->itemcap && audit_grow_items(a) == -1)
				break;
			a->qh = AITEM(it->link.next);
			if (a->qh == NULL)
				a->qt = NULL;
			a->items[n++] = it;
			bytes += it->flen + AFMT_OVERHEAD;
		}
		stop = a->closing && a->qh == NULL;
		seal = stop || a->seal_req || now_mono_ns() >= deadline;
		rotate = a->rotate_req;
		a->seal_req = false;
		a->rotate_req = false;
		pthread_mutex_unlock(&a->mu);

		if (n > 0 || seal || stop || summary)
			audit_writer_round(a, a->items, n,
			    stop && !atomic_load(&a->poisoned), seal);
		if (seal)
			deadline = now_mono_ns() + a->epoch_ns;
		if (!atomic_load(&a->poisoned) && !stop &&
		    (rotate || a->size >= a->max_bytes))
			(void)audit_rotate(a);
		pthread_mutex_lock(&a->mu);
		if (stop)
			break;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Opening: recovery of the tail */

struct audit_scan {
	const char	*first_fail;
	char		 msg[400];
};

static void
audit_scan_finding(const struct afmt_finding *f, void *arg)
{
	struct audit_scan *s = arg;

	if (!afmt_kind_is_failure(f->kind) || s->first_fail)
		return;
	s->first_fail = afmt_kind_name(f->kind);
	snprintf(s->msg, sizeof(s->msg), "%s seq=%llu line %llu (offset %llu): "
	    "%s", afmt_kind_name(f->kind), (unsigned long long)f->seq,
	    (unsigned long long)f->line, (unsigned long long)f->offset,
	    f->detail);
}

/* Track open requests over lines [0, end) of a file (parse only: the
 * part before the last seal was verified when it was written). */
static void
audit_scan_open(struct afmt_idset *set, const char *map, size_t end)
{
	struct afmt_lines it;
	struct afmt_rec r;
	const char *line;
	size_t n, off;

	afmt_lines_init(&it, map, end);
	while (afmt_lines_next(&it, &line, &n, &off))
		if (afmt_parse(line, n, &r) == 0)
			afmt_idset_track(set, r.type, r.fields, r.flen, r.seq);
}

/* Copy the torn bytes aside before cutting them. */
static int
audit_save_broken(struct audit *a, const char *bytes, size_t n, char *name,
    size_t namelen)
{
	char ts[32];
	struct tm tm;
	time_t now = time(NULL);
	int fd = -1, i;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	for (i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(name, namelen, "%s.broken-%s", a->path, ts);
		else
			snprintf(name, namelen, "%s.broken-%s-%d", a->path, ts,
			    i);
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1)
		return -1;
	if (audit_write_all(fd, bytes, n) == -1 || fsync(fd) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return audit_fsync_dir(a->dir);
}

struct audit_recovery {
	bool		 torn;
	uint64_t	 cut_offset, cut_bytes, torn_seq;
	unsigned char	 cut_sha[AFMT_HASH_LEN];
	char		 broken[PATH_MAX];
};

/*
 * Where the records after the state's last seal begin: after that seal
 * in this file, or at 0 when the seal closes the previous file (a
 * rotation) and this file's first record chains to it.  -1 when the
 * file holds neither: truncated or replaced.
 */
static int
audit_find_tail(struct audit *a, const char *map, size_t size, size_t *tail,
    char *err, size_t errlen)
{
	struct afmt_lines it;
	struct afmt_rec r;
	unsigned char h[AFMT_HASH_LEN];
	const char *line;
	size_t n, off;

	afmt_lines_init(&it, map, size);
	while (afmt_lines_next(&it, &line, &n, &off))
		if (afmt_parse(line, n, &r) == 0 && r.seq == a->seal_seq &&
		    strcmp(r.type, "seal") == 0 &&
		    afmt_sha256(line, n, h) == 0 &&
		    memcmp(h, a->seal_head, AFMT_HASH_LEN) == 0) {
			*tail = off + n;
			return 0;
		}
	afmt_lines_init(&it, map, size);
	if (!afmt_lines_next(&it, &line, &n, &off) ||
	    afmt_parse(line, n, &r) == -1 || r.seq != a->seal_seq + 1 ||
	    memcmp(r.prev, a->seal_head, AFMT_HASH_LEN) != 0) {
		snprintf(err, errlen, "%s does not hold the last sealed "
		    "record (seq %llu) named by the key state %s: the "
		    "log was truncated or replaced; refusing to start "
		    "(check it with cmgate-audit verify)", a->path,
		    (unsigned long long)a->seal_seq, a->state_path);
		return -1;
	}
	*tail = 0;
	return 0;
}

/*
 * Verify the records from offset tail on with the live key, through
 * the verifier the audit tool uses, in repair mode: a bad run at the
 * very end is left in sum (torn) for the caller to judge; any other
 * finding refuses.
 */
static int
audit_verify_tail(struct audit *a, const char *map, size_t size, size_t tail,
    struct afmt_summary *sum, char *err, size_t errlen)
{
	struct audit_scan scan = { 0 };
	struct afmt_vfy *v;
	struct afmt_lines it;
	const char *line;
	size_t n, off;

	if ((v = afmt_vfy_new(a->key.k, a->key.epoch, audit_scan_finding,
	    &scan)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	afmt_vfy_repair_mode(v, true);
	afmt_vfy_file(v, a->path);
	afmt_vfy_expect(v, a->seal_seq + 1, a->seal_head, a->key.epoch,
	    a->log_id);
	afmt_lines_init(&it, map, size);
	it.off = tail;
	while (afmt_lines_next(&it, &line, &n, &off))
		afmt_vfy_line(v, line, n, off);
	afmt_vfy_finish(v);
	afmt_vfy_summary(v, sum);
	afmt_vfy_free(v);
	if (scan.first_fail) {
		snprintf(err, errlen, "%s: the records after the last seal "
		    "(seq %llu) do not verify: %s.  A bad record followed by "
		    "valid ones is tampering or corruption, not a torn write: "
		    "refusing to start (inspect with cmgate-audit verify)",
		    a->path, (unsigned long long)a->seal_seq, scan.msg);
		return -1;
	}
	return 0;
}

/*
 * A torn tail from offset end: judge it and save a copy aside (rec).
 * A crash tears at most the last batch; more than one whole record
 * that parses but fails its MAC is not a crash (or the state holds the
 * wrong key).
 */
static int
audit_keep_torn(struct audit *a, const char *map, size_t size, size_t end,
    const struct afmt_summary *sum, struct audit_recovery *rec, char *err,
    size_t errlen)
{
	struct afmt_lines it;
	struct afmt_rec r;
	const char *line;
	size_t n, off, complete = 0;

	afmt_lines_init(&it, map, size);
	it.off = end;
	while (afmt_lines_next(&it, &line, &n, &off))
		if (afmt_parse(line, n, &r) == 0)
			complete++;
	if (complete > 1) {
		snprintf(err, errlen, "%s: %zu complete records from "
		    "offset %zu fail verification: this is not a torn "
		    "write (tampering, or a key state that does not "
		    "belong to this log); refusing to start",
		    a->path, complete, end);
		return -1;
	}
	rec->torn = true;
	rec->cut_offset = end;
	rec->cut_bytes = size - end;
	rec->torn_seq = sum->torn_seq;
	if (afmt_sha256(map + end, size - end, rec->cut_sha) == -1 ||
	    audit_save_broken(a, map + end, size - end, rec->broken,
	    sizeof(rec->broken)) == -1) {
		snprintf(err, errlen, "%s: cannot save the torn tail "
		    "aside: %s", a->path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Take the chain state (next_seq, head, epoch) from what verified. */
static int
audit_adopt_chain(struct audit *a, const struct afmt_summary *sum, char *err,
    size_t errlen)
{
	a->next_seq = sum->last_seq + 1;
	memcpy(a->head, sum->head, AFMT_HASH_LEN);
	a->epoch_records = sum->epoch_records;
	/* With no record after it, the last record is the state's seal. */
	a->last_is_seal = sum->records == 0 || sum->last_is_seal;
	if (sum->epoch <= a->key.epoch)
		return 0;
	/* A seal made it to disk but the state did not follow: finish
	 * that step now. */
	if (!sum->last_is_seal) {
		snprintf(err, errlen, "%s: records follow a seal the "
		    "key state does not know of; refusing to start",
		    a->path);
		return -1;
	}
	if (afmt_key_seek(&a->key, a->log_id, sum->epoch,
	    sum->epoch - a->key.epoch) == -1) {
		snprintf(err, errlen, "key evolution failed");
		return -1;
	}
	a->seal_seq = sum->last_seq;
	memcpy(a->seal_head, sum->head, AFMT_HASH_LEN);
	if (audit_state_save(a) == -1) {
		snprintf(err, errlen, "cannot persist the key state %s: "
		    "%s", a->state_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Cut the torn tail rec describes (saved aside already). */
static int
audit_cut_tail(struct audit *a, const struct audit_recovery *rec, char *err,
    size_t errlen)
{
	if (ftruncate(a->fd, (off_t)rec->cut_offset) == -1 ||
	    fdatasync(a->fd) == -1) {
		snprintf(err, errlen, "%s: cannot cut the torn tail: %s",
		    a->path, strerror(errno));
		return -1;
	}
	log_warn("audit: %s: cut a torn tail of %llu bytes at offset "
	    "%llu (seq %llu on); saved as %s", a->path,
	    (unsigned long long)rec->cut_bytes,
	    (unsigned long long)rec->cut_offset,
	    (unsigned long long)rec->torn_seq, rec->broken);
	return 0;
}

/*
 * Check the live file from the last seal the state knows, repair a
 * torn tail, and set the chain state (next_seq, head, epoch) from what
 * verifies.  Refuses when the tail shows anything but a torn end.
 */
static int
audit_recover(struct audit *a, struct audit_recovery *rec, char *err,
    size_t errlen)
{
	struct afmt_summary sum;
	struct stat st;
	char *map = NULL;
	size_t size, tail = 0, end;
	int rc = -1;

	if (fstat(a->fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
		return -1;
	}
	size = (size_t)st.st_size;
	if (size > 0 && (map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, a->fd,
	    0)) == MAP_FAILED) {
		map = NULL;
		snprintf(err, errlen, "%s: mmap: %s", a->path, strerror(errno));
		return -1;
	}
	if (audit_find_tail(a, map, size, &tail, err, errlen) == 0 &&
	    audit_verify_tail(a, map, size, tail, &sum, err, errlen) == 0) {
		end = sum.torn ? (size_t)sum.torn_offset : size;
		if (!sum.torn || audit_keep_torn(a, map, size, end, &sum, rec,
		    err, errlen) == 0) {
			audit_scan_open(&a->open, map, end);
			rc = audit_adopt_chain(a, &sum, err, errlen);
		}
	}
	if (map)
		munmap(map, size);
	if (rc == 0 && rec->torn)
		rc = audit_cut_tail(a, rec, err, errlen);
	if (rc == 0)
		a->size = rec->torn ? rec->cut_offset : size;
	return rc;
}

/* A crash between renaming the live file away and writing the new
 * one's start record: the rotated file must end with the state's
 * seal, and its open requests carry over. */
static int
audit_recover_rotation(struct audit *a, char *err, size_t errlen)
{
	char name[PATH_MAX];
	struct afmt_rec r;
	unsigned char h[AFMT_HASH_LEN];
	struct afmt_lines it;
	struct stat st;
	const char *line;
	char *map = NULL;
	size_t size = 0, n, off, lastoff = 0, lastlen = 0;
	int fd, rc = -1;

	audit_rotated_name(a, a->seal_seq, name, sizeof(name));
	if ((fd = open(name, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s is missing or empty, but the key state "
		    "%s says seq %llu was sealed and %s does not exist: "
		    "restore the log, or move the state away to begin a new "
		    "log", a->path, a->state_path,
		    (unsigned long long)a->seal_seq, name);
		return -1;
	}
	if (fstat(fd, &st) == -1 || st.st_size == 0 ||
	    (map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
	    0)) == MAP_FAILED) {
		map = NULL;
		snprintf(err, errlen, "%s: cannot read", name);
		goto fail;
	}
	size = (size_t)st.st_size;
	afmt_lines_init(&it, map, size);
	while (afmt_lines_next(&it, &line, &n, &off)) {
		lastoff = off;
		lastlen = n;
	}
	if (afmt_parse(map + lastoff, lastlen, &r) == -1 ||
	    r.seq != a->seal_seq || afmt_sha256(map + lastoff, lastlen, h) == -1 ||
	    memcmp(h, a->seal_head, AFMT_HASH_LEN) != 0) {
		snprintf(err, errlen, "%s does not end with the seal (seq %llu) "
		    "the key state names; refusing to start", name,
		    (unsigned long long)a->seal_seq);
		goto fail;
	}
	audit_scan_open(&a->open, map, size);
	a->next_seq = a->seal_seq + 1;
	memcpy(a->head, a->seal_head, AFMT_HASH_LEN);
	a->epoch_records = 0;
	a->last_is_seal = true;
	a->size = 0;
	log_warn("audit: finishing an interrupted rotation after %s", name);
	rc = 0;
fail:
	if (map)
		munmap(map, size);
	close(fd);
	return rc;
}

/* Outcome records of class "abandoned" for requests a crash cut off. */
static int
audit_add_abandoned(struct audit *a)
{
	const struct afmt_open *o;
	size_t idx = 0, count = 0;
	char fields[512];
	int n;

	while ((o = afmt_idset_next(&a->open, &idx)) != NULL) {
		n = snprintf(fields, sizeof(fields), "\"request_id\":\"%s\","
		    "\"caller\":%s,\"upstream_status\":null,\"latency_ms\":null,"
		    "\"error_class\":\"abandoned\",\"response_digest\":null,"
		    "\"client_status\":null,\"request_seq\":%llu", o->id,
		    o->caller, (unsigned long long)o->seq);
		if (n < 0 || (size_t)n >= sizeof(fields) ||
		    audit_add(a, "outcome", fields, (size_t)n, NULL, NULL,
		    NULL) == -1)
			return -1;
		count++;
	}
	if (count)
		log_warn("audit: %zu request(s) had no outcome after the last "
		    "run; recorded as abandoned", count);
	afmt_idset_free(&a->open);
	return 0;
}

static int
audit_add_recover(struct audit *a, const struct audit_recovery *rec)
{
	char fields[PATH_MAX + 300], sha[2 * AFMT_HASH_LEN + 1];
	int n;

	hex_encode(rec->cut_sha, AFMT_HASH_LEN, sha);
	n = snprintf(fields, sizeof(fields), "\"reason\":\"torn_tail\","
	    "\"offset\":%llu,\"bytes\":%llu,\"sha256\":\"%s\",\"torn_seq\":%llu,"
	    "\"broken_file\":", (unsigned long long)rec->cut_offset,
	    (unsigned long long)rec->cut_bytes, sha,
	    (unsigned long long)rec->torn_seq);
	if (n < 0 || json_quote(audit_basename(rec->broken), fields + n,
	    sizeof(fields) - (size_t)n) == -1)
		return -1;
	return audit_add(a, "recover", fields, strlen(fields), NULL, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Open and close */

static void
audit_free(struct audit *a)
{
	struct audit_item *it;

	if (a == NULL)
		return;
	if (a->fd != -1)
		close(a->fd);
	afmt_key_wipe(&a->key);
	OPENSSL_cleanse(a->body_key, sizeof(a->body_key));
	afmt_idset_free(&a->open);
	audit_flood_free(a->flood);
	while ((it = a->qh) != NULL) {
		a->qh = AITEM(it->link.next);
		free(it);
	}
	while (a->en > 0) {
		free(a->eq[a->eh]);
		a->eh = (a->eh + 1) % AUDIT_EXPORT_QUEUE;
		a->en--;
	}
	free(a->buf);
	free(a->items);
	free(a->links);
	free(a->path);
	free(a->state_path);
	free(a->dir);
	free(a->seal_command);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->smu);
	pthread_mutex_destroy(&a->emu);
	pthread_cond_destroy(&a->ecv);
	free(a);
}

/* The writer and the exporter take no signals: they belong to the
 * main thread's event loop. */
static int
audit_spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}

/* Before the first seal, which it exports too. */
static int
audit_start_exporter(struct audit *a, char *err, size_t errlen)
{
	int e;

	if (a->seal_command == NULL && !a->seal_syslog)
		return 0;
	if ((e = audit_spawn(&a->exporter, audit_exporter_main, a)) != 0) {
		snprintf(err, errlen, "cannot start the seal exporter: %s",
		    strerror(e));
		return -1;
	}
	a->exporter_started = true;
	return 0;
}

static int
audit_start_threads(struct audit *a, char *err, size_t errlen)
{
	int e;

	e = audit_spawn(&a->writer, audit_writer_main, a);
	if (e != 0) {
		snprintf(err, errlen, "cannot start the audit writer: %s",
		    strerror(e));
		return -1;
	}
	a->writer_started = true;
	return 0;
}

static void
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

static void
audit_fault_hook(struct audit *a)
{
	const char *s = getenv("CMGATE_AUDIT_FAIL_AFTER");
	char *end;
	long long n;

	a->fail_after = -1;
	if (s == NULL || *s == '\0')
		return;
	n = strtoll(s, &end, 10);
	if (end == s || n < 0 || (*end != '\0' && strcmp(end, ",fsync") != 0)) {
		log_warn("audit: ignoring CMGATE_AUDIT_FAIL_AFTER=%s", s);
		return;
	}
	a->fail_after = n;
	a->fail_fsync = *end != '\0';
	log_warn("audit: test hook: the %s after %lld records will fail",
	    a->fail_fsync ? "fdatasync" : "write", n);
}

/* The log or the state file at path: 1 there (a regular file; *size
 * set), 0 absent, -1 anything else (a symbolic link is refused: the
 * gateway would write its log or keys wherever it points). */
static int
audit_check_file(const char *what, const char *path, off_t *size,
    char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "%s %s is a symbolic link; refusing to "
		    "follow it (give the real path)", what, path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s is not a regular file", what,
		    path);
		return -1;
	}
	*size = st.st_size;
	return 1;
}

/*
 * What audit_open checks before it writes anything: the body mode; the
 * log and the state file are regular files, not symbolic links; the
 * log's folder can be written; and the keys it would read (the state
 * when there is one, else K0 with no log yet) read and parse.  cmgate
 * -t runs it, and audit_open runs it first, so -t fails on whatever
 * would make the start fail here.
 */
int
audit_check(const struct config *cfg, char *err, size_t errlen)
{
	const char *body = cfg->audit.body ? cfg->audit.body : "digest";
	const char *state = cfg->audit.state_file;
	struct audit *a;
	unsigned char k0[AFMT_KEY_LEN];
	off_t lsize = 0, ssize = 0;
	char *dir, defstate[PATH_MAX];
	int have_log, have_state, rc;

	if (cfg->audit.path == NULL) {
		snprintf(err, errlen, "audit.path is not set");
		return -1;
	}
	if (state == NULL) {
		/* As audit_open: <path>.state */
		snprintf(defstate, sizeof(defstate), "%s.state",
		    cfg->audit.path);
		state = defstate;
	}
	if (strcmp(body, "digest") != 0 && strcmp(body, "redacted") != 0 &&
	    strcmp(body, "full") != 0) {
		snprintf(err, errlen, "audit.body: must be digest, redacted or "
		    "full");
		return -1;
	}
	if ((have_log = audit_check_file("the audit log", cfg->audit.path,
	    &lsize, err, errlen)) == -1 ||
	    (have_state = audit_check_file("the key state", state, &ssize,
	    err, errlen)) == -1)
		return -1;
	if ((dir = audit_dirname(cfg->audit.path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = access(dir, W_OK | X_OK);
	if (rc == -1)
		snprintf(err, errlen, "the audit log's folder %s: %s", dir,
		    strerror(errno));
	free(dir);
	if (rc == -1)
		return -1;
	if (!have_state) {
		if (have_log && lsize > 0) {
			snprintf(err, errlen, "the key state %s is missing but "
			    "the log %s exists: restore the state file, or move "
			    "the log away to begin a new one", state,
			    cfg->audit.path);
			return -1;
		}
		rc = audit_read_k0(cfg->audit.key_file, k0, err, errlen);
		OPENSSL_cleanse(k0, sizeof(k0));
		return rc;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->state_path = (char *)state;
	rc = audit_state_load(a, err, errlen);
	afmt_key_wipe(&a->key);
	OPENSSL_cleanse(a->body_key, sizeof(a->body_key));
	free(a);
	return rc;
}

struct audit *
audit_open(const struct config *cfg, char *err, size_t errlen)
{
	struct audit_recovery rec;
	struct audit *a = NULL;
	struct stat st;
	unsigned char k0[AFMT_KEY_LEN];
	bool have_state, have_log, fresh = false, rotation = false;
	const char *body = cfg->audit.body ? cfg->audit.body : "digest";
	size_t n;

	memset(&rec, 0, sizeof(rec));
	if (afmt_init() == -1) {
		snprintf(err, errlen, "OpenSSL HMAC-SHA256 is not available");
		return NULL;
	}
	if (cfg->audit.path == NULL) {
		snprintf(err, errlen, "audit.path is not set");
		return NULL;
	}
	if (audit_check(cfg, err, errlen) == -1)
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	if ((a->flood = audit_flood_new()) == NULL) {
		pthread_mutex_destroy(&a->mu);
		free(a);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&a->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_init(&a->smu, NULL);
	pthread_mutex_init(&a->emu, NULL);
	pthread_cond_init(&a->ecv, NULL);
	atomic_init(&a->poisoned, false);

	a->path = strdup(cfg->audit.path);
	if (cfg->audit.state_file)
		a->state_path = strdup(cfg->audit.state_file);
	else if ((a->state_path = malloc((n = strlen(a->path) + 7))) != NULL)
		snprintf(a->state_path, n, "%s.state", a->path);
	a->dir = a->path ? audit_dirname(a->path) : NULL;
	if (cfg->audit.seal_command && *cfg->audit.seal_command)
		a->seal_command = strdup(cfg->audit.seal_command);
	if (a->path == NULL || a->state_path == NULL || a->dir == NULL ||
	    (cfg->audit.seal_command && *cfg->audit.seal_command &&
	    a->seal_command == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	a->seal_syslog = cfg->audit.seal_syslog;
	a->epoch_ns = (uint64_t)(cfg->audit.epoch_s > 0 ? cfg->audit.epoch_s :
	    60) * 1000000000ull;
	a->max_bytes = cfg->audit.max_bytes > 0 ? (uint64_t)cfg->audit.max_bytes :
	    256ull * 1024 * 1024;
	if (strcmp(body, "digest") == 0)
		a->body = BODY_DIGEST;
	else if (strcmp(body, "redacted") == 0)
		a->body = BODY_REDACTED;
	else if (strcmp(body, "full") == 0)
		a->body = BODY_FULL;
	else {
		snprintf(err, errlen, "audit.body: must be digest, redacted or "
		    "full");
		goto fail;
	}
	audit_fault_hook(a);
	if (audit_start_exporter(a, err, errlen) == -1)
		goto fail;

	have_state = stat(a->state_path, &st) == 0;
	have_log = stat(a->path, &st) == 0 && st.st_size > 0;
	if (have_state) {
		if (audit_state_load(a, err, errlen) == -1)
			goto fail;
	} else {
		if (have_log) {
			snprintf(err, errlen, "the key state %s is missing but "
			    "the log %s exists: restore the state file, or move "
			    "the log away to begin a new one", a->state_path,
			    a->path);
			goto fail;
		}
		/* A new log: K0 from the auditors' key file. */
		if (audit_read_k0(cfg->audit.key_file, k0, err, errlen) == -1)
			goto fail;
		if (random_id(a->log_id) == -1 ||
		    afmt_body_key(k0, a->log_id, a->body_key) == -1 ||
		    afmt_key_set(&a->key, k0, 0) == -1) {
			OPENSSL_cleanse(k0, sizeof(k0));
			snprintf(err, errlen, "cannot derive the log keys");
			goto fail;
		}
		OPENSSL_cleanse(k0, sizeof(k0));
		fresh = true;
		a->next_seq = 1;
	}
	if (!fresh && !have_log)
		rotation = true;	/* or refused below */

	if ((a->fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0640)) == -1) {
		snprintf(err, errlen, "%s: %s", a->path, errno == ELOOP ?
		    "a symbolic link; refusing to follow it" : strerror(errno));
		goto fail;
	}
	if (fresh || rotation) {
		if (audit_fsync_dir(a->dir) == -1) {
			snprintf(err, errlen, "%s: fsync: %s", a->dir,
			    strerror(errno));
			goto fail;
		}
	}
	a->buflen = 0;
	if (fresh) {
		/* Epoch 0 holds only the start record and its seal, so the
		 * state file never holds K0. */
		char ex[512];
		if (audit_add_start(a, "new", false) == -1 ||
		    audit_add_seal(a, ex, sizeof(ex)) == -1 ||
		    audit_flush(a) == -1 || audit_after_seal(a, ex) == -1) {
			snprintf(err, errlen, "%s: cannot write the first "
			    "records: %s", a->path, strerror(errno));
			goto fail;
		}
		log_info("audit: began log %s in %s; K0 (%s) is no longer "
		    "needed on this host", a->log_id, a->path,
		    cfg->audit.key_file);
	} else if (rotation) {
		if (audit_recover_rotation(a, err, errlen) == -1)
			goto fail;
		if (audit_add_start(a, "rotate", true) == -1 ||
		    audit_add_abandoned(a) == -1 || audit_flush(a) == -1) {
			snprintf(err, errlen, "%s: cannot write: %s", a->path,
			    strerror(errno));
			goto fail;
		}
	} else {
		if (audit_recover(a, &rec, err, errlen) == -1)
			goto fail;
		if (audit_add_start(a, "restart", false) == -1 ||
		    (rec.torn && audit_add_recover(a, &rec) == -1) ||
		    audit_add_abandoned(a) == -1 || audit_flush(a) == -1) {
			snprintf(err, errlen, "%s: cannot write: %s", a->path,
			    strerror(errno));
			goto fail;
		}
	}
	a->run_records = 0;
	a->inject_armed = true;
	if (audit_start_threads(a, err, errlen) == -1)
		goto fail;
	return a;
fail:
	audit_stop_exporter(a);
	audit_free(a);
	return NULL;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->writer_started) {
		pthread_mutex_lock(&a->mu);
		a->closing = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->writer, NULL);
	}
	audit_stop_exporter(a);
	if (a->nports > 0)
		log_warn("audit: closed with %zu port(s) still attached",
		    a->nports);
	audit_free(a);
}

bool
audit_healthy(const struct audit *a)
{
	return a != NULL && !atomic_load(&((struct audit *)a)->poisoned);
}

void
audit_request_rotate(struct audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->rotate_req = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

void
audit_request_seal(struct audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->seal_req = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

const char *
audit_log_id(const struct audit *a)
{
	return a->log_id;
}

/* ------------------------------------------------------------------ */
/* Ports and submission (loop threads) */

static void
audit_port_deliver(void *ctx, struct port_item *pi)
{
	struct audit_item *it = AITEM(pi);

	(void)ctx;
	if (it->cb)
		it->cb(it->ok, it->seq, it->arg);
	free(it);
}

static void
audit_port_drop(void *ctx, struct port_item *pi)
{
	(void)ctx;
	free(AITEM(pi));
}

/* The loop, once per pass: everything it submitted goes to the writer
 * under one lock, and the writer is signalled after the unlock, so it
 * does not wake only to wait for the mutex. */
static void
audit_port_flush(void *ctx, struct port_item *head, struct port_item *tail,
    size_t n)
{
	struct audit *a = ctx;
	struct port_item *pi;

	pthread_mutex_lock(&a->mu);
	if (a->closing || atomic_load(&a->poisoned)) {
		pthread_mutex_unlock(&a->mu);
		for (pi = head; pi != NULL; pi = pi->next) {
			AITEM(pi)->ok = false;
			AITEM(pi)->seq = 0;
		}
		/* port_post relinks each item; walk a copy of the list. */
		while (head != NULL) {
			pi = head;
			head = head->next;
			port_post(&pi, 1);
		}
		return;
	}
	if (a->qt)
		a->qt->link.next = head;
	else
		a->qh = AITEM(head);
	a->qt = AITEM(tail);
	pthread_mutex_unlock(&a->mu);
	pthread_cond_signal(&a->cv);
	(void)n;
}

static const struct port_ops audit_port_ops = {
	.flush = audit_port_flush,
	.deliver = audit_port_deliver,
	.drop = audit_port_drop,
};

struct audit_port *
audit_port_new(struct audit *a, struct event_base *base)
{
	struct audit_port *p;

	if (a == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->a = a;
	if ((p->port = port_new(base, &audit_port_ops, a)) == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_lock(&a->mu);
	a->nports++;
	pthread_mutex_unlock(&a->mu);
	return p;
}

/*
 * Detach a port.  Records it has queued are still written; records in
 * the writer's hands are dropped when they finish (their callbacks are
 * not called).
 */
void
audit_port_free(struct audit_port *p)
{
	struct audit *a;

	if (p == NULL)
		return;
	a = p->a;
	port_free(p->port);
	pthread_mutex_lock(&a->mu);
	a->nports--;
	pthread_mutex_unlock(&a->mu);
	free(p);
}

bool
audit_reject_admit(struct audit *a, const char *addr, const char *reason)
{
	bool opened = false, own;

	if (a == NULL)
		return true;
	own = audit_flood_admit(a->flood, addr, reason, now_mono_ns(),
	    &opened);
	if (opened) {
		/* The writer learns the summary's deadline. */
		pthread_mutex_lock(&a->mu);
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
	}
	return own;
}

static bool
audit_type_ok(const char *type)
{
	size_t i, n = strlen(type);

	if (n == 0 || n > AFMT_MAX_TYPE)
		return false;
	for (i = 0; i < n; i++)
		if (!((type[i] >= 'a' && type[i] <= 'z') || type[i] == '_'))
			return false;
	for (i = 0; audit_reserved_types[i]; i++)
		if (strcmp(type, audit_reserved_types[i]) == 0)
			return false;
	return true;
}

int
audit_submit(struct audit_port *p, const char *type, const char *fields,
    audit_cb cb, void *arg)
{
	struct audit *a;
	struct audit_item *it;
	size_t flen;

	if (p == NULL || (a = p->a) == NULL || atomic_load(&a->poisoned))
		return -1;
	if (fields == NULL)
		fields = "";
	flen = strlen(fields);
	/* A record that does not fit is refused whole, never cut: a
	 * truncated record would claim something it does not say. */
	if (!audit_type_ok(type) || flen + AFMT_OVERHEAD > AFMT_MAX_RECORD ||
	    memchr(fields, '\n', flen) != NULL ||
	    (flen > 0 && (fields[0] == ',' || fields[flen - 1] == ','))) {
		log_error("audit: refusing a malformed or oversized %s record "
		    "(%zu bytes)", type, flen);
		return -1;
	}
	if ((it = malloc(sizeof(*it) + flen + 1)) == NULL)
		return -1;
	it->cb = cb;
	it->arg = arg;
	it->seq = 0;
	it->ok = false;
	snprintf(it->type, sizeof(it->type), "%s", type);
	it->flen = flen;
	memcpy(it->fields, fields, flen + 1);
	/* Sent with the rest of this loop pass's records. */
	port_send(p->port, &it->link);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The body member of a request record */

static bool
audit_secret_key(const char *k)
{
	static const char *const words[] = { "token", "secret", "password",
	    "api_key", "apikey", "authorization", NULL };
	size_t i;

	for (i = 0; words[i]; i++)
		if (strcasestr(k, words[i]) != NULL)
			return true;
	return false;
}

/* A copy with every value masked but the country, or (full) with only
 * secret-looking members masked. */
static struct json_object *
audit_mask(struct json_object *o, bool full, int depth)
{
	struct json_object *n;
	size_t i, len;

	if (depth > 64)
		return json_object_new_string("***");
	switch (json_object_get_type(o)) {
	case json_type_null:
		return NULL;
	case json_type_object:
		if ((n = json_object_new_object()) == NULL)
			return NULL;
		json_object_object_foreach(o, k, v) {
			struct json_object *c;
			if (audit_secret_key(k))
				c = json_object_new_string("***");
			else if (strcasecmp(k, "country") == 0 &&
			    json_object_is_type(v, json_type_string))
				c = json_object_get(v);
			else
				c = audit_mask(v, full, depth + 1);
			json_object_object_add(n, k, c);
		}
		return n;
	case json_type_array:
		if ((n = json_object_new_array()) == NULL)
			return NULL;
		len = json_object_array_length(o);
		for (i = 0; i < len; i++)
			json_object_array_add(n, audit_mask(
			    json_object_array_get_idx(o, i), full, depth + 1));
		return n;
	default:
		return full ? json_object_get(o) : json_object_new_string("***");
	}
}

char *
audit_body_member(const struct audit *a, struct json_object *normalized)
{
	return audit_body_member_str(a, normalized, NULL, 0);
}

char *
audit_body_member_str(const struct audit *a, struct json_object *normalized,
    const char *s, size_t len)
{
	const int flags = JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE;
	unsigned char mac[AFMT_HASH_LEN];
	char hex[2 * AFMT_HASH_LEN + 1], *out = NULL;
	struct json_object *m;

	if (a == NULL)
		return NULL;
	if (a->body == BODY_DIGEST) {
		if (normalized == NULL)
			return strdup("\"body_digest\":null");
		if (s == NULL)
			s = json_object_to_json_string_length(normalized,
			    flags, &len);
		if (s == NULL || afmt_hmac(a->body_key, AFMT_KEY_LEN, s, len,
		    NULL, 0, mac) == -1)
			return NULL;
		hex_encode(mac, sizeof(mac), hex);
		if ((out = malloc(16 + sizeof(hex))) != NULL)
			snprintf(out, 16 + sizeof(hex), "\"body_digest\":\"%s\"",
			    hex);
		return out;
	}
	m = audit_mask(normalized, a->body == BODY_FULL, 0);
	s = m ? json_object_to_json_string_length(m, flags, &len) : "null";
	if (s != NULL && (out = malloc(len + 16)) != NULL)
		snprintf(out, len + 16, "\"body\":%s", m ? s : "null");
	json_object_put(m);
	return out;
}
