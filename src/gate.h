/*
 * gate: the running daemon's shared state.  A snapshot bundles everything a
 * connection needs from the configuration (settings, TLS context, resolved
 * backend) so a connection keeps the one it started with.
 */
#ifndef GATE_H
#define GATE_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "policy.h"
#include "trust.h"

struct config;
struct conn;

#define GATE_MAX_BACKEND_ADDRS	8

struct backend_addr {
	struct sockaddr_storage	ss;
	socklen_t		len;
};

struct snapshot {
	unsigned		 refcount;
	struct config		*cfg;
	SSL_CTX			*tls;		/* NULL when ssl = off */
	SSL_CTX			*backend_tls;	/* NULL: plaintext backend */
	struct policy_settings	 policy;
	struct backend_addr	 backend[GATE_MAX_BACKEND_ADDRS];
	int			 nbackend;
	char			 backend_name[300];	/* "host:port" */
	struct trust_info	 trust;		/* dates, for the metrics */
};

TAILQ_HEAD(conn_list, conn);

struct gate {
	struct event_base	*base;
	struct snapshot		*snap;
	struct conn_list	 conns;
	unsigned		 nconns;
	uint64_t		 next_conn_id;
	bool			 draining;	/* SIGTERM: waiting for sessions */
};

/*
 * TCP_NODELAY, and keepalives as tcp_keepalives_* say (0: the system's).
 * No-op for Unix-domain sockets.
 */
void gate_tune_socket(int fd, int family, const struct config *);

/* Takes over the caller's reference to cfg, even on failure. */
struct snapshot *snapshot_new(struct config *cfg, char *err, size_t errlen);
struct snapshot *snapshot_ref(struct snapshot *);
void snapshot_unref(struct snapshot *);

#endif
