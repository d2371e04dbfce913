/*
 * check: `pgsslgate --check`, everything start-up verifies plus what only a
 * careful operator would try by hand, as a report, without listening.
 */
#ifndef CHECK_H
#define CHECK_H

struct snapshot;

/* Try to reach the backend the way a session would; logs the outcome. */
void check_backend(const struct snapshot *);

#endif
