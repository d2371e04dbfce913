/*
 * log: one line per event on stderr, stamped like PostgreSQL's log lines so
 * that operators can read both with the same tools.
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_LOG, LOG_LEVEL_WARNING,
    LOG_LEVEL_ERROR, LOG_LEVEL_FATAL };

void log_set_debug(int);
void log_msg(enum log_level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_LOG, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_fatal(...)	log_msg(LOG_LEVEL_FATAL, __VA_ARGS__)

#endif
