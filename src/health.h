/*
 * health: the liveness and readiness verdicts behind GET /healthz and
 * GET /readyz.  Pure: the caller gathers the facts (heartbeats, flags,
 * dates) and the clock; this module only decides.
 */
#ifndef HEALTH_H
#define HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Each worker's loop stamps its heartbeat this often. */
#define HEALTH_BEAT_MS		1000
/*
 * A loop whose last beat is older than this is stuck.  Several beats'
 * worth, so that a loaded machine (or a sanitizer build) is not called
 * dead for one late timer.
 */
#define HEALTH_STALE_MS		5000
/* A heartbeat of 0: the worker's loop has ended on purpose (drained). */
#define HEALTH_BEAT_STOPPED	0

/*
 * The first worker whose heartbeat (in beats[], monotonic milliseconds)
 * is more than stale_ms behind now_ms, or -1 when every worker that is
 * still running beats.  *age_ms gets that worker's silence.
 */
int health_stuck_worker(const int64_t *beats, int nbeats, int64_t now_ms,
    int64_t stale_ms, int64_t *age_ms);

/* What readiness depends on. */
struct health_ready_facts {
	bool	listening;	/* the client sockets are open and served */
	bool	draining;	/* SIGTERM: waiting for sessions to end */
	bool	ssl;		/* ssl = on */
	bool	cert_loaded;	/* a serving certificate is in force */
	time_t	cert_not_after;	/* its end date; 0 when unknown */
	time_t	now;
};

/*
 * true when the gate should get new clients; otherwise false, with a
 * one-line reason ("draining", "certificate expired ...") in reason.
 */
bool health_ready(const struct health_ready_facts *, char *reason,
    size_t reasonlen);

/* The monotonic clock in milliseconds, for heartbeats. */
int64_t health_clock_ms(void);

#endif
