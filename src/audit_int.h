/*
 * audit_int.h: what the files of the gateway's audit log share; no
 * other file includes it.
 *
 * struct audit is one object seen from several sides, one file each:
 * the writer thread, its batches, the ports and open/close (audit.c);
 * the key state file (audit_keys.c); the seal exporter thread
 * (audit_seal.c); recovery of the tail at open (audit_recover.c); the
 * body member of a request record (audit_body.c).  The struct is here
 * because all of them read it; a function is declared here only when
 * another of these files calls it.  Everything else stays static in its
 * file.
 */
#ifndef CMGATE_AUDIT_INT_H
#define CMGATE_AUDIT_INT_H

#include "audit.h"
#include "audit_format.h"
#include "port.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_EXPORT_QUEUE	64		/* seals waiting for export */

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

/* audit.c: files */
int	audit_write_all(int fd, const char *p, size_t n);
int	audit_fsync_dir(const char *dir);
/* Name of a rotated file: it holds records up to seq last. */
void	audit_rotated_name(const struct audit *, uint64_t last, char *out,
	    size_t outlen);
/* The writer and the exporter take no signals (what: for err). */
int	audit_spawn(pthread_t *, void *(*fn)(void *), void *arg,
	    const char *what, char *err, size_t errlen);

/* audit.c: the batch, built by the writer (or by audit_open before the
 * writer starts) */
int	audit_add(struct audit *, const char *type, const char *fields,
	    size_t flen, unsigned char *head_out, unsigned char *mac_out,
	    char *ts_out);
int	audit_add_start(struct audit *, const char *reason, bool with_open);
int	audit_flush(struct audit *);

/* audit_keys.c: the key state file and K0 */
int	audit_state_save(struct audit *);
int	audit_state_load(struct audit *, char *err, size_t errlen);
int	audit_read_k0(const char *path, unsigned char k0[AFMT_KEY_LEN],
	    char *err, size_t errlen);

/* audit_seal.c: seal export, off the writer */
int	audit_start_exporter(struct audit *, char *err, size_t errlen);
void	audit_export_push(struct audit *, const char *line);
void	audit_stop_exporter(struct audit *);

/* audit_recover.c: open an existing log, after a stop or a crash (the
 * live file), or after a crash inside a rotation (no live file): check
 * and repair the tail, then write the start, recover and abandoned
 * outcome records. */
int	audit_resume(struct audit *, char *err, size_t errlen);
int	audit_resume_rotation(struct audit *, char *err, size_t errlen);

#endif
