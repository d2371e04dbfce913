/*
 * relay: bytes both ways between client and backend once the session is
 * set up, with backpressure so a slow side bounds the proxy's memory.
 */
#ifndef RELAY_H
#define RELAY_H

/*
 * Stop reading one side while the other's unsent output is at least this
 * much; resume when it falls to half.
 */
#define RELAY_HIGH_WATER	(64 * 1024)

struct conn;

/* The backend is connected and has the StartupMessage queued. */
void relay_start(struct conn *);

/* Stop reading either side (the session is ending); idempotent. */
void relay_stop(struct conn *);

#endif
