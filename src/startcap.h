/*
 * startcap: how many connections are in the startup phase (accepted, not
 * yet relaying or refused), in all and per source address, shared by the
 * workers; and the caps max_startup_connections(_per_host) on those counts.
 */
#ifndef STARTCAP_H
#define STARTCAP_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Distinct sources counted at once; a new one beyond is refused. */
#define STARTCAP_SOURCES	16384
/* Sources the metrics show: those holding the most connections. */
#define STARTCAP_TOP		5

/* A source: an IPv4 address, an IPv6 /64, or "local" (Unix socket). */
struct startcap_key {
	uint8_t		family;		/* AF_INET, AF_INET6, AF_UNIX */
	uint8_t		addr[16];	/* IPv4 in the first 4; /64 in 8 */
};

enum startcap_verdict {
	STARTCAP_OK,		/* counted; startcap_leave() when done */
	STARTCAP_FULL,		/* max_startup_connections reached */
	STARTCAP_HOST_FULL,	/* max_startup_connections_per_host reached */
};

struct startcap_source {
	struct startcap_key	key;
	unsigned		count;
};

void startcap_key_of(struct startcap_key *, const struct sockaddr *);

/* The source as text: "192.0.2.1", "2001:db8::/64", "[local]". */
void startcap_key_name(const struct startcap_key *, char *, size_t);

/* Count one more connection from key unless that would pass a cap. */
enum startcap_verdict startcap_enter(const struct startcap_key *,
    unsigned cap, unsigned cap_per_host);
void startcap_leave(const struct startcap_key *);

/* All connections in the startup phase now. */
unsigned startcap_total(void);

/*
 * Up to n sources holding the most startup-phase connections, most first;
 * returns how many were filled in.
 */
int startcap_top(struct startcap_source *, int n);

#endif
