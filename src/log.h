/*
 * log: one line per event, stamped like PostgreSQL's log lines so that
 * operators can read both with the same tools; to stderr or syslog.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_LOG, LOG_LEVEL_WARNING,
    LOG_LEVEL_ERROR, LOG_LEVEL_FATAL };

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
	LOG_TARGET_REPORT,	/* --check: plain lines on stdout, counted */
};

void log_set_debug(int);
void log_set_target(enum log_target);

/* Warnings and errors logged since start (for --check's verdict). */
unsigned log_problem_count(void);

/*
 * Copy in (inlen bytes) to out as a log line may hold it: a newline gets a
 * tab after it, as PostgreSQL writes it, CR is written \r and every other
 * control byte but tab (DEL too) \xNN.  out is NUL-terminated, truncated
 * between escapes; returns its length.  Pure: for the unit tests.
 */
size_t log_escape(const char *in, size_t inlen, char *out, size_t outlen);

void log_msg(enum log_level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_LOG, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_fatal(...)	log_msg(LOG_LEVEL_FATAL, __VA_ARGS__)

/*
 * True at most once a second for each *last, over all threads: for the
 * lines a flood of refusals would repeat.
 */
bool log_once_a_second(_Atomic long *last);

#endif
