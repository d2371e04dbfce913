/*
 * log: timestamps in UTC with milliseconds, the pid, and a PostgreSQL-style
 * severity.  Each line is written with a single write(2) so lines from
 * concurrent processes (tests run several) never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_debug_on;

void
log_set_debug(int on)
{
	log_debug_on = on;
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

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char		 line[2048];
	struct timeval	 tv;
	struct tm	 tm;
	va_list		 ap;
	size_t		 n;
	int		 r;

	if (level == LOG_LEVEL_DEBUG && !log_debug_on)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03d UTC [%d] %s:  ",
	    (int)(tv.tv_usec / 1000), (int)getpid(), level_name(level));
	if (r > 0)
		n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}
