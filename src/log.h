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

#endif
