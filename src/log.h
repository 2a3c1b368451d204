/*
 * log.h: the gateway's own log lines (JSON lines on stderr, or syslog).
 * Never pass a secret or a request body to these.
 */
#ifndef CMGATE_LOG_H
#define CMGATE_LOG_H

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* target: "stderr" or "syslog"; level by name.  -1 on a bad name. */
int	log_setup(const char *target, const char *level);
int	log_level_parse(const char *name, enum log_level *);

void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A pre-built JSON object line (the per-request access log). */
void	log_json(const char *json_line);

/*
 * The same, gathered in a per-thread buffer until log_pass_flush(),
 * which the loop calls at the end of the pass (one write(2) for the
 * pass's answers).  Returns 1 when the buffer was empty, so the caller
 * knows to arrange that flush; 0 when the line was written at once
 * (syslog, a line too long to gather) or joined others.
 */
int	log_pass_json(const char *json_line);
void	log_pass_flush(void);

#endif
