/*
 * health: decides whether the gate is alive (every worker's event loop
 * still turns) and ready (it should be sent new clients).  No sockets, no
 * shared state: tests/test_health.c drives it with made-up facts.
 */
#include <stdio.h>
#include <time.h>

#include "health.h"

int
health_stuck_worker(const int64_t *beats, int nbeats, int64_t now_ms,
    int64_t stale_ms, int64_t *age_ms)
{
	for (int i = 0; i < nbeats; i++) {
		if (beats[i] == HEALTH_BEAT_STOPPED)
			continue;
		/* A beat stamped after now_ms was read is no silence. */
		if (now_ms > beats[i] && now_ms - beats[i] > stale_ms) {
			if (age_ms != NULL)
				*age_ms = now_ms - beats[i];
			return i;
		}
	}
	return -1;
}

bool
health_ready(const struct health_ready_facts *f, char *reason,
    size_t reasonlen)
{
	if (f->draining) {
		snprintf(reason, reasonlen, "draining");
		return false;
	}
	if (!f->listening) {
		snprintf(reason, reasonlen, "not listening");
		return false;
	}
	if (f->ssl && !f->cert_loaded) {
		snprintf(reason, reasonlen, "ssl = on but no certificate is "
		    "loaded");
		return false;
	}
	if (f->ssl && f->cert_not_after != 0 && f->cert_not_after <= f->now) {
		snprintf(reason, reasonlen, "the server certificate expired "
		    "%lld s ago", (long long)(f->now - f->cert_not_after));
		return false;
	}
	snprintf(reason, reasonlen, "ready");
	return true;
}

int64_t
health_clock_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* Never HEALTH_BEAT_STOPPED, even right after boot. */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}
