/*
 * log: timestamps in UTC with milliseconds, the pid, and a PostgreSQL-style
 * severity.  Each stderr line is written with a single write(2) so lines
 * from concurrent processes never interleave, and every message is escaped
 * here, once, so that no text a client or backend chose can start a line.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Set by the main thread, read by every worker. */
static atomic_int	log_debug_on;
static atomic_int	log_target = LOG_TARGET_STDERR;
static atomic_uint	log_problems;

void
log_set_debug(int on)
{
	log_debug_on = on;
}

void
log_set_target(enum log_target target)
{
	if ((int)target == atomic_load(&log_target))
		return;
	if (target == LOG_TARGET_SYSLOG)
		openlog("pgsslgate", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	/* Workers may be logging: switch first, close the old one after. */
	if (atomic_exchange(&log_target, (int)target) == LOG_TARGET_SYSLOG)
		closelog();
}

unsigned
log_problem_count(void)
{
	return atomic_load(&log_problems);
}

size_t
log_escape(const char *in, size_t inlen, char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 o = 0;

	if (outlen == 0)
		return 0;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char	 ch = (unsigned char)in[i];
		char		 esc[4];
		size_t		 k = 0;

		/*
		 * PostgreSQL's own rule for a newline inside a message: a tab
		 * after it, so the continuation cannot pass for a line of its
		 * own.  A tab is harmless; other control bytes (CR, ESC and
		 * the rest, DEL) could rewrite what a terminal shows, so they
		 * are spelled out.
		 */
		if (ch == '\n') {
			esc[k++] = '\n';
			esc[k++] = '\t';
		} else if (ch == '\r') {
			esc[k++] = '\\';
			esc[k++] = 'r';
		} else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			esc[k++] = '\\';
			esc[k++] = 'x';
			esc[k++] = hex[ch >> 4];
			esc[k++] = hex[ch & 0xf];
		} else
			esc[k++] = (char)ch;
		/* Truncate before an escape rather than cut one in half. */
		if (o + k >= outlen)
			break;
		memcpy(out + o, esc, k);
		o += k;
	}
	out[o] = '\0';
	return o;
}

static const char *
level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG:	return "DEBUG";
	case LOG_LEVEL_LOG:	return "LOG";
	case LOG_LEVEL_WARNING:	return "WARNING";
	case LOG_LEVEL_ERROR:	return "ERROR";
	case LOG_LEVEL_FATAL:	return "FATAL";
	}
	return "LOG";
}

static int
syslog_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG:	return LOG_DEBUG;
	case LOG_LEVEL_LOG:	return LOG_INFO;
	case LOG_LEVEL_WARNING:	return LOG_WARNING;
	case LOG_LEVEL_ERROR:	return LOG_ERR;
	case LOG_LEVEL_FATAL:	return LOG_CRIT;
	}
	return LOG_INFO;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char		 line[4096], msg[2048];
	struct timeval	 tv;
	struct tm	 tm;
	va_list		 ap;
	size_t		 n = 0;
	int		 r;

	enum log_target	 target = (enum log_target)atomic_load_explicit(
			    &log_target, memory_order_relaxed);

	if (level == LOG_LEVEL_DEBUG &&
	    !atomic_load_explicit(&log_debug_on, memory_order_relaxed))
		return;
	if (level >= LOG_LEVEL_WARNING)
		atomic_fetch_add_explicit(&log_problems, 1,
		    memory_order_relaxed);
	if (target == LOG_TARGET_STDERR) {
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03d UTC [%d] ",
		    (int)(tv.tv_usec / 1000), (int)getpid());
		if (r > 0)
			n += (size_t)r;
	}
	if (target != LOG_TARGET_REPORT || level != LOG_LEVEL_LOG) {
		r = snprintf(line + n, sizeof(line) - n, "%s:  ",
		    level_name(level));
		if (r > 0)
			n += (size_t)r;
	}
	va_start(ap, fmt);
	r = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One place for every caller: room is kept for the final newline. */
	if (r > 0)
		n += log_escape(msg, (size_t)r < sizeof(msg) ? (size_t)r :
		    sizeof(msg) - 1, line + n, sizeof(line) - n - 1);
	if (target == LOG_TARGET_SYSLOG) {
		line[n] = '\0';
		syslog(syslog_priority(level), "%s", line);
		return;
	}
	line[n++] = '\n';
	(void)!write(target == LOG_TARGET_REPORT ? STDOUT_FILENO :
	    STDERR_FILENO, line, n);
}

bool
log_once_a_second(_Atomic long *last)
{
	long	now = (long)time(NULL);

	return atomic_exchange_explicit(last, now, memory_order_relaxed) != now;
}
