/*
 * log.c: the gateway's own log lines.
 *
 * Every line is one JSON object on stderr (or a syslog message), so a
 * log shipper never has to guess where a line ends.  Lines are written
 * with one write(2) each, which keeps lines from several threads whole.
 * Access-log lines may instead be gathered per loop pass (log_pass_*):
 * one write(2) for all the answers a pass sent, still whole lines.
 */
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static enum log_level	log_min = LOG_LVL_INFO;
static int		log_to_syslog;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int
log_level_parse(const char *name, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

int
log_setup(const char *target, const char *level)
{
	enum log_level l;

	if (level && log_level_parse(level, &l) == -1)
		return -1;
	if (level)
		log_min = l;
	if (target && strcmp(target, "syslog") == 0) {
		if (!log_to_syslog)
			openlog("cmgate", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_to_syslog = 1;
	} else if (target && strcmp(target, "stderr") != 0)
		return -1;
	else
		log_to_syslog = 0;
	return 0;
}

static void
write_line(const char *line, size_t len, int prio)
{
	if (log_to_syslog) {
		syslog(prio, "%.*s", (int)len, line);
		return;
	}
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, line, len);
		if (w <= 0)
			return;
		line += w;
		len -= (size_t)w;
	}
}

static void
log_msg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
	char msg[1024], quoted[2200], ts[32], line[2400];
	int n;

	if (lvl < log_min)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (json_quote(msg, quoted, sizeof(quoted)) == -1)
		strcpy(quoted, "\"(message too long)\"");
	now_iso8601(ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\","
	    "\"msg\":%s}\n", ts, level_names[lvl], quoted);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	write_line(line, (size_t)n, prio[lvl]);
}

#define LOG_FN(name, lvl) \
void name(const char *fmt, ...) \
{ \
	va_list ap; \
	va_start(ap, fmt); \
	log_msg(lvl, fmt, ap); \
	va_end(ap); \
}
LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_error, LOG_LVL_ERROR)

/* A loop thread's access-log lines of the current pass. */
#define LOG_PASS_CAP	32768
static __thread char	log_pass_buf[LOG_PASS_CAP];
static __thread size_t	log_pass_len;

void
log_pass_flush(void)
{
	if (log_pass_len > 0)
		write_line(log_pass_buf, log_pass_len, LOG_INFO);
	log_pass_len = 0;
}

int
log_pass_json(const char *json_line)
{
	size_t n = strlen(json_line);
	int was_empty;

	if (log_min > LOG_LVL_INFO)
		return 0;
	if (log_to_syslog || n + 1 > LOG_PASS_CAP) {
		log_json(json_line);
		return 0;
	}
	if (log_pass_len + n + 1 > LOG_PASS_CAP)
		log_pass_flush();
	was_empty = log_pass_len == 0;
	memcpy(log_pass_buf + log_pass_len, json_line, n);
	log_pass_buf[log_pass_len + n] = '\n';
	log_pass_len += n + 1;
	return was_empty;
}

void
log_json(const char *json_line)
{
	size_t n = strlen(json_line);
	char buf[4096];

	if (log_min > LOG_LVL_INFO)
		return;
	if (n + 1 < sizeof(buf)) {
		memcpy(buf, json_line, n);
		buf[n] = '\n';
		write_line(buf, n + 1, LOG_INFO);
	} else
		write_line(json_line, n, LOG_INFO);
}
