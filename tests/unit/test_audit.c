/*
 * test_audit.c: the gateway side of the audit log: opening a new log,
 * group commit through a port, restarts, crash recovery (torn tails,
 * abandoned requests), refusal on tampering, fail-closed on write and
 * fdatasync errors (test hook and a real full tmpfs), rotation, seals
 * on the timer and their export, the body member.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit_testlib.h"

#include <sys/mount.h>
#include <sys/wait.h>

#include <json-c/json.h>

static struct ta_env env;

static int
setup(void **state)
{
	ta_env_init(&env);
	return 0;
}

static int
teardown(void **state)
{
	ta_env_free(&env);
	return 0;
}

static struct audit *
open_ok(void)
{
	char err[1024];
	struct audit *a = audit_open(&env.cfg, err, sizeof(err));

	if (a == NULL)
		fail_msg("audit_open: %s", err);
	return a;
}

/* Open, run some traffic, close. */
static void
run(int pairs, int seal_every)
{
	struct audit *a = open_ok();
	struct audit_port *p = audit_port_new(a, env.base);

	assert_non_null(p);
	assert_int_equal(ta_traffic(&env, a, p, pairs, seal_every), 0);
	audit_port_free(p);
	audit_close(a);
}

/*
 * As kill -9 would leave it: a child opens, runs traffic (the last
 * `open_reqs` requests get no outcome), and ends without audit_close.
 */
static void
run_and_crash(int pairs, int open_reqs)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ta_env child = env;
		struct audit *a;
		struct audit_port *p;
		struct ta_wait w;
		char err[1024], f[512], id[33];
		int i;

		child.base = event_base_new();
		if ((a = audit_open(&child.cfg, err, sizeof(err))) == NULL)
			_exit(2);
		p = audit_port_new(a, child.base);
		if (p == NULL || ta_traffic(&child, a, p, pairs, 0) == -1)
			_exit(3);
		memset(&w, 0, sizeof(w));
		for (i = 0; i < open_reqs; i++) {
			random_id(id);
			ta_request_fields(f, sizeof(f), id);
			if (ta_submit(p, &w, "request", f) == -1)
				_exit(4);
		}
		if (ta_wait(&child, &w) == -1 || w.failed)
			_exit(5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Verify the live log alone. */
static void
verify_live(struct ta_result *r)
{
	size_t len;
	char *buf = ta_slurp(env.path, &len);

	assert_non_null(buf);
	ta_verify1(env.k0, buf, len, NULL, r);
	free(buf);
}

static int
count_type(const char *path, const char *type)
{
	size_t len, off = 0;
	char *buf = ta_slurp(path, &len);
	int n = 0;

	assert_non_null(buf);
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t l = nl ? (size_t)(nl - (buf + off)) + 1 : len - off;
		struct afmt_rec r;
		if (afmt_parse(buf + off, l, &r) == 0 &&
		    strcmp(r.type, type) == 0)
			n++;
		off += l;
	}
	free(buf);
	return n;
}

/* The first file in the folder whose name starts with prefix. */
static bool
find_file(const char *prefix, char *out, size_t outlen)
{
	DIR *d = opendir(env.dir);
	struct dirent *de;
	bool found = false;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
			snprintf(out, outlen, "%s/%s", env.dir, de->d_name);
			found = true;
			break;
		}
	closedir(d);
	return found;
}

/* ------------------------------------------------------------------ */

static void
test_new_log(void **state)
{
	struct ta_result r;
	struct stat st;
	size_t len;
	char *s;

	run(20, 0);
	assert_int_equal(stat(env.state, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* the state never holds K0 */
	s = ta_slurp(env.state, &len);
	assert_non_null(s);
	assert_null(strstr(s, ta_k0_hex));
	free(s);
	verify_live(&r);
	assert_int_equal(r.failures, 0);
	assert_int_equal(r.sum.records, 2 + 40 + 2);
	assert_int_equal(r.sum.unsealed, 0);
	assert_int_equal(count_type(env.path, "start"), 1);
	assert_int_equal(count_type(env.path, "stop"), 1);
	assert_int_equal(r.count[AFMT_OPEN], 0);
}

static void
test_restart_continues_chain(void **state)
{
	struct ta_result r;
	int i;

	for (i = 0; i < 3; i++)
		run(5, 2);
	/* K0 is not needed after the first start */
	assert_int_equal(unlink(env.key), 0);
	run(5, 0);
	verify_live(&r);
	assert_int_equal(r.failures, 0);
	assert_int_equal(count_type(env.path, "start"), 4);
	assert_int_equal(count_type(env.path, "stop"), 4);
	assert_true(r.sum.chain_from_start);
}

static void
test_submit_seq_and_stats(void **state)
{
	struct audit *a = open_ok();
	struct audit_port *p = audit_port_new(a, env.base);
	struct audit_stats st;
	struct ta_wait w;
	char f[512], id[33];
	int i;

	memset(&w, 0, sizeof(w));
	for (i = 0; i < 50; i++) {
		random_id(id);
		ta_request_fields(f, sizeof(f), id);
		assert_int_equal(ta_submit(p, &w, "request", f), 0);
	}
	assert_int_equal(ta_wait(&env, &w), 0);
	assert_int_equal(w.ok, 50);
	/* seqs are consecutive in submission order */
	for (i = 1; i < w.nseqs; i++)
		assert_int_equal(w.seqs[i], w.seqs[i - 1] + 1);
	audit_get_stats(a, &st);
	assert_int_equal(st.records, 50);
	assert_true(st.batches >= 1 && st.batches <= 50);
	assert_int_equal(st.fsync_le[11], st.batches);
	assert_true(audit_stats_buckets()[10] > 0);

	/* refused whole: reserved type, newline, too large */
	assert_int_equal(audit_submit(p, "seal", "\"x\":1", ta_cb, &w), -1);
	assert_int_equal(audit_submit(p, "Bad", "\"x\":1", ta_cb, &w), -1);
	assert_int_equal(audit_submit(p, "request", "\"x\":\"a\nb\"", ta_cb,
	    &w), -1);
	{
		char *big = malloc(70000);
		memset(big, 'a', 69999);
		big[69999] = '\0';
		memcpy(big, "\"x\":\"", 5);
		big[69998] = '"';
		assert_int_equal(audit_submit(p, "request", big, ta_cb, &w), -1);
		free(big);
	}
	assert_true(audit_healthy(a));
	audit_port_free(p);
	audit_close(a);
}

/* A port freed with records in flight: they are dropped, not
 * delivered to a port that is gone. */
static void
test_port_free_in_flight(void **state)
{
	struct audit *a = open_ok();
	struct audit_port *p = audit_port_new(a, env.base);
	struct ta_wait w;
	char f[512], id[33];
	int i;

	memset(&w, 0, sizeof(w));
	for (i = 0; i < 40; i++) {
		random_id(id);
		ta_request_fields(f, sizeof(f), id);
		assert_int_equal(ta_submit(p, &w, "request", f), 0);
	}
	audit_port_free(p);
	audit_close(a);
	event_base_loop(env.base, EVLOOP_NONBLOCK);
	assert_int_equal(w.ok + w.failed, 0);
}

static void
test_bad_key_file_refused(void **state)
{
	char err[1024];

	chmod(env.key, 0644);
	assert_null(audit_open(&env.cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "too open"));
	unlink(env.key);
	assert_null(audit_open(&env.cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "initial key"));
	ta_write_file(env.key, "abc\n", 4, 0600);
	assert_null(audit_open(&env.cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "64 hex"));
}

static void
test_missing_state_refused(void **state)
{
	char err[1024];

	run(3, 0);
	unlink(env.state);
	assert_null(audit_open(&env.cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "missing"));
}

/* A log cut before the seal the state knows of is refused. */
static void
test_truncated_before_seal_refused(void **state)
{
	char err[1024];
	size_t len, off[4096], n;
	char *buf;

	run(5, 0);
	buf = ta_slurp(env.path, &len);
	n = ta_lines(buf, len, off, 4095);
	assert_int_equal(truncate(env.path, (off_t)off[n - 2]), 0);
	free(buf);
	assert_null(audit_open(&env.cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "truncated or replaced"));
}

/* Torn tails of three kinds are cut, kept aside, and recorded. */
static void
torn_case(int kind)
{
	char junk[4096], broken[600], *saved;
	size_t jl = 0, sl;
	struct ta_result r;
	struct audit *a;
	size_t i;

	run_and_crash(10, 0);
	if (kind == 0) {		/* a partial record */
		const char *part = "{\"v\":1,\"log\":\"0123\",\"seq\":99,\"ep";
		jl = strlen(part);
		memcpy(junk, part, jl);
	} else if (kind == 1) {		/* zeros, as after a lost block */
		jl = 4096;
		memset(junk, 0, jl);
	} else {			/* garbage with line breaks */
		jl = 3000;
		for (i = 0; i < jl; i++)
			junk[i] = (char)((i * 131 + 7) % 251);
	}
	assert_int_equal(ta_append(env.path, junk, jl), 0);
	a = open_ok();
	audit_close(a);
	assert_true(find_file("audit.log.broken-", broken, sizeof(broken)));
	saved = ta_slurp(broken, &sl);
	assert_non_null(saved);
	assert_int_equal(sl, jl);
	assert_memory_equal(saved, junk, jl);
	free(saved);
	verify_live(&r);
	assert_int_equal(r.failures, 0);
	assert_int_equal(r.count[AFMT_RECOVER], 1);
	assert_int_equal(count_type(env.path, "recover"), 1);
}

static void
test_torn_partial(void **state)
{
	torn_case(0);
}

static void
test_torn_zeros(void **state)
{
	torn_case(1);
}

static void
test_torn_garbage(void **state)
{
	torn_case(2);
}

/* A bad record with valid ones after it is tampering: refused. */
static void
test_tampered_tail_refused(void **state)
{
	size_t len, off[4096], n;
	char err[1024], *buf;

	run_and_crash(10, 0);
	buf = ta_slurp(env.path, &len);
	n = ta_lines(buf, len, off, 4095);
	buf[off[n - 5] + 40] ^= 1;
	ta_write_file(env.path, buf, len, 0640);
	assert_null(audit_open(&env.cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "tampering"));
	/* put it back, then delete a line instead */
	buf[off[n - 5] + 40] ^= 1;
	memmove(buf + off[n - 5], buf + off[n - 4], len - off[n - 4]);
	ta_write_file(env.path, buf, len - (off[n - 4] - off[n - 5]), 0640);
	assert_null(audit_open(&env.cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "MISSING"));
	free(buf);
}

/* Requests the crash cut off get an outcome of class "abandoned". */
static void
test_abandoned_outcomes(void **state)
{
	struct ta_result r;
	struct audit *a;
	size_t len;
	char *buf;

	run_and_crash(6, 3);
	verify_live(&r);
	assert_int_equal(r.count[AFMT_OPEN], 3);	/* information */
	assert_int_equal(r.failures, 0);
	a = open_ok();
	audit_close(a);
	verify_live(&r);
	assert_int_equal(r.failures, 0);
	assert_int_equal(r.count[AFMT_OPEN], 0);
	buf = ta_slurp(env.path, &len);
	{
		int n = 0;
		const char *p = buf;
		while ((p = strstr(p, "\"error_class\":\"abandoned\"")) != NULL) {
			n++;
			p++;
		}
		assert_int_equal(n, 3);
	}
	free(buf);
	/* and a second restart adds none */
	a = open_ok();
	audit_close(a);
	buf = ta_slurp(env.path, &len);
	assert_non_null(strstr(buf, "\"request_seq\":"));
	free(buf);
	verify_live(&r);
	assert_int_equal(r.count[AFMT_OPEN], 0);
}

/* CMGATE_AUDIT_FAIL_AFTER=N: N records succeed, then ENOSPC poisons
 * the log; nothing is retried; a restart repairs the torn batch. */
static void
test_fault_injection_write(void **state)
{
	struct audit *a;
	struct audit_port *p;
	struct ta_wait w;
	struct ta_result r;
	uint64_t wr0, fs0, wr1, fs1;
	char f[512], id[33];
	int i;

	setenv("CMGATE_AUDIT_FAIL_AFTER", "5", 1);
	a = open_ok();
	unsetenv("CMGATE_AUDIT_FAIL_AFTER");
	p = audit_port_new(a, env.base);
	memset(&w, 0, sizeof(w));
	for (i = 0; i < 12; i++) {
		random_id(id);
		ta_request_fields(f, sizeof(f), id);
		assert_int_equal(ta_submit(p, &w, "request", f), 0);
	}
	assert_int_equal(ta_wait(&env, &w), 0);
	assert_int_equal(w.ok, 5);
	assert_int_equal(w.failed, 7);
	assert_false(audit_healthy(a));
	assert_int_equal(audit_submit(p, "request", f, ta_cb, &w), -1);
	audit_io_counts(a, &wr0, &fs0);
	audit_request_seal(a);
	audit_request_rotate(a);
	usleep(100000);
	audit_io_counts(a, &wr1, &fs1);
	assert_int_equal(wr1, wr0);
	assert_int_equal(fs1, fs0);
	audit_port_free(p);
	audit_close(a);

	/* The half-written batch is a torn tail for the next start. */
	a = open_ok();
	audit_close(a);
	verify_live(&r);
	assert_int_equal(r.failures, 0);
	assert_int_equal(r.count[AFMT_RECOVER], 1);
}

static void
test_fault_injection_fsync(void **state)
{
	struct audit *a;
	struct audit_port *p;
	struct ta_wait w;
	uint64_t wr0, fs0, wr1, fs1;
	char f[512], id[33];
	int i;

	setenv("CMGATE_AUDIT_FAIL_AFTER", "3,fsync", 1);
	a = open_ok();
	unsetenv("CMGATE_AUDIT_FAIL_AFTER");
	p = audit_port_new(a, env.base);
	memset(&w, 0, sizeof(w));
	for (i = 0; i < 6; i++) {
		random_id(id);
		ta_request_fields(f, sizeof(f), id);
		assert_int_equal(ta_submit(p, &w, "request", f), 0);
	}
	assert_int_equal(ta_wait(&env, &w), 0);
	assert_int_equal(w.ok, 3);
	assert_int_equal(w.failed, 3);
	assert_false(audit_healthy(a));
	/* the failed fdatasync is the last one ever made */
	audit_io_counts(a, &wr0, &fs0);
	usleep(50000);
	audit_request_seal(a);
	usleep(50000);
	audit_io_counts(a, &wr1, &fs1);
	assert_int_equal(fs1, fs0);
	assert_int_equal(wr1, wr0);
	audit_port_free(p);
	audit_close(a);
	a = open_ok();
	audit_close(a);
}

/* A real full disk: a small tmpfs (needs root; skipped otherwise). */
static void
test_full_tmpfs(void **state)
{
	struct ta_env t;
	struct audit *a;
	struct audit_port *p;
	struct ta_wait w;
	char mnt[300], path[400], f[1024], id[33], err[1024];
	int i, rounds = 0;

	snprintf(mnt, sizeof(mnt), "%s/mnt", env.dir);
	mkdir(mnt, 0700);
	if (geteuid() != 0 || mount("cmgate-test", mnt, "tmpfs", 0,
	    "size=64k") == -1) {
		rmdir(mnt);
		skip();
	}
	snprintf(path, sizeof(path), "%s/audit.log", mnt);
	t = env;
	t.cfg.audit.path = path;
	if ((a = audit_open(&t.cfg, err, sizeof(err))) == NULL) {
		umount(mnt);
		rmdir(mnt);
		fail_msg("audit_open on tmpfs: %s", err);
	}
	p = audit_port_new(a, env.base);
	memset(&w, 0, sizeof(w));
	while (audit_healthy(a) && rounds++ < 1000) {
		for (i = 0; i < 8; i++) {
			random_id(id);
			snprintf(f, sizeof(f), "\"request_id\":\"%s\","
			    "\"caller\":\"onboarding\",\"pad\":\"%0400d\"", id, 0);
			if (ta_submit(p, &w, "request", f) == -1)
				break;
		}
		assert_int_equal(ta_wait(&env, &w), 0);
	}
	assert_false(audit_healthy(a));
	assert_true(w.ok > 0);
	assert_true(w.failed > 0);
	assert_int_equal(audit_submit(p, "request", f, ta_cb, &w), -1);
	audit_port_free(p);
	audit_close(a);
	umount(mnt);
	rmdir(mnt);
}

/* A seal durable on disk, the state not yet moved on (crash between
 * the two): the next start finishes the step. */
static void
test_seal_without_state(void **state)
{
	struct audit *a;
	struct audit_port *p;
	struct ta_result r;
	char *st, backup[400];
	size_t len;

	a = open_ok();
	p = audit_port_new(a, env.base);
	assert_int_equal(ta_traffic(&env, a, p, 4, 0), 0);
	st = ta_slurp(env.state, &len);
	assert_non_null(st);
	audit_port_free(p);
	audit_close(a);		/* stop + seal, state moves on */
	snprintf(backup, sizeof(backup), "%s", env.state);
	assert_int_equal(ta_write_file(backup, st, len, 0600), 0);
	free(st);
	run(3, 0);
	verify_live(&r);
	assert_int_equal(r.failures, 0);
}

/* Crash after the live file was renamed away in a rotation. */
static void
test_interrupted_rotation(void **state)
{
	struct ta_result r;
	char rotated[400];
	const char *bufs[2];
	size_t lens[2];
	char *b0, *b1;

	run(4, 0);
	verify_live(&r);
	snprintf(rotated, sizeof(rotated), "%s.%012llu", env.path,
	    (unsigned long long)r.sum.last_seq);
	assert_int_equal(rename(env.path, rotated), 0);
	run(2, 0);
	b0 = ta_slurp(rotated, &lens[0]);
	b1 = ta_slurp(env.path, &lens[1]);
	bufs[0] = b0;
	bufs[1] = b1;
	ta_verify(env.k0, bufs, lens, 2, NULL, &r);
	assert_int_equal(r.failures, 0);
	assert_true(r.sum.chain_from_start);
	free(b0);
	free(b1);
}

static int
count_rotated(void)
{
	DIR *d = opendir(env.dir);
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "audit.log.0", 11) == 0)
			n++;
	closedir(d);
	return n;
}

static int
name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Rotation by size and on request: the files verify as one chain, a
 * missing one is found, and in-flight requests carry over. */
static void
test_rotation(void **state)
{
	struct audit *a;
	struct audit_port *p;
	struct ta_wait w;
	struct ta_result r;
	char *names[64], *bufs[65], f[512], id[33];
	size_t lens[65];
	int n = 0, i;
	DIR *d;
	struct dirent *de;

	env.cfg.audit.max_bytes = 4096;
	a = open_ok();
	p = audit_port_new(a, env.base);
	assert_int_equal(ta_traffic(&env, a, p, 30, 0), 0);

	/* a request in flight across a rotation on request */
	memset(&w, 0, sizeof(w));
	random_id(id);
	ta_request_fields(f, sizeof(f), id);
	assert_int_equal(ta_submit(p, &w, "request", f), 0);
	assert_int_equal(ta_wait(&env, &w), 0);
	{
		int before = count_rotated();
		audit_request_rotate(a);
		for (i = 0; i < 5000 && count_rotated() == before; i++)
			usleep(2000);
		assert_true(count_rotated() > before);
	}
	ta_outcome_fields(f, sizeof(f), id);
	assert_int_equal(ta_submit(p, &w, "outcome", f), 0);
	assert_int_equal(ta_wait(&env, &w), 0);
	audit_port_free(p);
	audit_close(a);

	d = opendir(env.dir);
	while ((de = readdir(d)) != NULL && n < 64)
		if (strncmp(de->d_name, "audit.log.0", 11) == 0)
			names[n++] = strdup(de->d_name);
	closedir(d);
	assert_true(n >= 3);
	qsort(names, (size_t)n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", env.dir, names[i]);
		bufs[i] = ta_slurp(path, &lens[i]);
		assert_non_null(bufs[i]);
	}
	bufs[n] = ta_slurp(env.path, &lens[n]);

	/* all files: one chain */
	ta_verify(env.k0, (const char *const *)bufs, lens, n + 1, NULL, &r);
	assert_int_equal(r.failures, 0);
	assert_true(r.sum.chain_from_start);
	assert_int_equal(r.count[AFMT_OPEN], 0);
	/* every rotated file ends with a seal */
	for (i = 0; i < n; i++) {
		struct ta_result r1;
		ta_verify1(env.k0, bufs[i], lens[i], NULL, &r1);
		assert_int_equal(r1.failures, 0);
		assert_int_equal(r1.sum.unsealed, 0);
	}
	/* the live file alone: the in-flight request carried over */
	ta_verify1(env.k0, bufs[n], lens[n], NULL, &r);
	assert_int_equal(r.failures, 0);
	assert_false(r.sum.chain_from_start);
	assert_int_equal(r.count[AFMT_OPEN], 0);
	/* the file before it alone shows that request open */
	ta_verify1(env.k0, bufs[n - 1], lens[n - 1], NULL, &r);
	assert_int_equal(r.count[AFMT_OPEN], 1);
	/* a file left out */
	{
		const char *sub[64];
		size_t sl[64];
		int k = 0;
		for (i = 0; i <= n; i++)
			if (i != 1) {
				sub[k] = bufs[i];
				sl[k++] = lens[i];
			}
		ta_verify(env.k0, sub, sl, k, NULL, &r);
		assert_int_equal(r.failures, 1);
		assert_int_equal(r.count[AFMT_MISSING], 1);
	}
	for (i = 0; i <= n; i++)
		free(bufs[i]);
	for (i = 0; i < n; i++)
		free(names[i]);
}

/* More requests in flight than one record can list: the rotation's
 * start record is followed by carry records. */
static void
test_rotation_many_in_flight(void **state)
{
	static char ids[600][33];
	struct audit *a = open_ok();
	struct audit_port *p = audit_port_new(a, env.base);
	struct ta_wait w;
	struct ta_result r;
	char f[512];
	int i, before;

	memset(&w, 0, sizeof(w));
	for (i = 0; i < 600; i++) {
		random_id(ids[i]);
		ta_request_fields(f, sizeof(f), ids[i]);
		assert_int_equal(ta_submit(p, &w, "request", f), 0);
	}
	assert_int_equal(ta_wait(&env, &w), 0);
	before = count_rotated();
	audit_request_rotate(a);
	for (i = 0; i < 5000 && count_rotated() == before; i++)
		usleep(2000);
	assert_true(count_rotated() > before);
	for (i = 0; i < 400; i++) {
		ta_outcome_fields(f, sizeof(f), ids[i]);
		assert_int_equal(ta_submit(p, &w, "outcome", f), 0);
	}
	assert_int_equal(ta_wait(&env, &w), 0);
	assert_int_equal(w.failed, 0);
	audit_port_free(p);
	audit_close(a);
	assert_int_equal(count_type(env.path, "carry"), 2);
	verify_live(&r);
	assert_int_equal(r.failures, 0);
	assert_int_equal(r.count[AFMT_OPEN], 200);
}

/* Seals come on the timer even when idle, and are exported. */
static void
test_epoch_timer_and_export(void **state)
{
	struct audit *a;
	struct ta_result r;
	struct ta_anchor an;
	char cmd[600], seals[400], *buf, *line;
	struct json_object *o, *v;
	size_t len;
	int i;

	snprintf(seals, sizeof(seals), "%s/seals.txt", env.dir);
	snprintf(cmd, sizeof(cmd), "cat >> '%s'", seals);
	env.cfg.audit.seal_command = cmd;
	env.cfg.audit.epoch_s = 1;
	a = open_ok();
	/* one idle epoch ends on the timer (allow for a loaded machine) */
	for (i = 0; i < 100 && count_type(env.path, "seal") < 2; i++)
		usleep(100000);
	audit_close(a);
	env.cfg.audit.seal_command = NULL;
	env.cfg.audit.epoch_s = 3600;
	/* new (1) + idle timer (>= 1) + close (1) */
	assert_true(count_type(env.path, "seal") >= 3);
	buf = ta_slurp(seals, &len);
	assert_non_null(buf);
	assert_true(len > 0);
	/* the last exported seal is an anchor the log agrees with */
	buf[len - 1] = '\0';
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "seq", &v));
	an.seq = (uint64_t)json_object_get_int64(v);
	assert_true(json_object_object_get_ex(o, "head", &v));
	assert_int_equal(hex_decode(json_object_get_string(v), an.head,
	    AFMT_HASH_LEN), 0);
	json_object_put(o);
	free(buf);
	{
		char *lb = ta_slurp(env.path, &len);
		ta_verify1(env.k0, lb, len, &an, &r);
		assert_int_equal(r.failures, 0);
		assert_int_equal(r.sum.last_seq, an.seq);
		free(lb);
	}
}

static void
test_body_member(void **state)
{
	struct json_object *body = json_tokener_parse(
	    "{\"first_name\":\"Ada\",\"address\":{\"country\":\"GBR\","
	    "\"city\":\"London\"},\"age\":36,\"tags\":[\"a\",\"b\"],"
	    "\"api_token\":\"s3cret\"}");
	unsigned char bk[AFMT_KEY_LEN], mac[AFMT_HASH_LEN];
	char hex[65], expect[100], *m;
	const char *s;
	size_t len;
	struct audit *a;

	a = open_ok();
	m = audit_body_member(a, body);
	s = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	afmt_body_key(env.k0, audit_log_id(a), bk);
	afmt_hmac(bk, sizeof(bk), s, len, NULL, 0, mac);
	hex_encode(mac, sizeof(mac), hex);
	snprintf(expect, sizeof(expect), "\"body_digest\":\"%s\"", hex);
	assert_string_equal(m, expect);
	free(m);
	audit_close(a);

	env.cfg.audit.body = (char *)"redacted";
	a = open_ok();
	m = audit_body_member(a, body);
	assert_string_equal(m, "\"body\":{\"first_name\":\"***\",\"address\":"
	    "{\"country\":\"GBR\",\"city\":\"***\"},\"age\":\"***\","
	    "\"tags\":[\"***\",\"***\"],\"api_token\":\"***\"}");
	free(m);
	audit_close(a);

	env.cfg.audit.body = (char *)"full";
	a = open_ok();
	m = audit_body_member(a, body);
	assert_non_null(strstr(m, "\"first_name\":\"Ada\""));
	assert_non_null(strstr(m, "\"api_token\":\"***\""));
	assert_null(strstr(m, "s3cret"));
	free(m);
	audit_close(a);
	env.cfg.audit.body = (char *)"digest";
	json_object_put(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_continues_chain,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_seq_and_stats,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_free_in_flight,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_key_file_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_state_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_truncated_before_seal_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_partial, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_zeros, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_garbage, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tampered_tail_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandoned_outcomes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fault_injection_write,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_injection_fsync,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_tmpfs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_seal_without_state, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_interrupted_rotation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_many_in_flight,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoch_timer_and_export,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_member, setup,
		    teardown),
	};

	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
