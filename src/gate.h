/*
 * gate: the running daemon's shared state.  A snapshot bundles everything a
 * connection needs from the configuration (settings, TLS context, resolved
 * backend) so a connection keeps the one it started with.  Workers are the
 * event loops, one thread each; the gate is what they share.
 */
#ifndef GATE_H
#define GATE_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "hba.h"
#include "hosts.h"
#include "metrics.h"
#include "policy.h"
#include "tls.h"
#include "trust.h"

struct config;
struct conn;
struct evconnlistener;

#define GATE_MAX_BACKEND_ADDRS	8

struct backend_addr {
	struct sockaddr_storage	ss;
	socklen_t		len;
};

/* Where a session's backend connection goes. */
struct gate_route {
	struct backend_addr	 backend[GATE_MAX_BACKEND_ADDRS];
	int			 nbackend;
	char			 backend_name[300];	/* "host:port" */
};

/* One hosts_file entry as served: its context and, with backend=, its
 * own backend. */
struct snapshot_host {
	SSL_CTX			*tls;
	struct tls_key		 key;
	struct trust_info	 trust;
	struct gate_route	 route;		/* backend= or the snapshot's */
};

struct snapshot {
	atomic_uint		 refcount;	/* released by any worker */
	struct config		*cfg;
	SSL_CTX			*tls;		/* NULL when ssl = off */
	SSL_CTX			*backend_tls;	/* NULL: plaintext backend */
	struct policy_settings	 policy;
	struct gate_route	 route;		/* backend_host, backend_port */
	struct trust_info	 trust;		/* dates, for the metrics */
	struct tls_key		 key;		/* what ssl_key_file gave */
	struct hba_rules	*hba;		/* hba_file; NULL when unset */
	/* ssl_sni: hosts_file's entries; tls is then host[0].tls. */
	struct hosts		*hosts;		/* NULL: ssl_sni off or no entry */
	struct snapshot_host	*host;		/* hosts->n of them */
};

TAILQ_HEAD(conn_list, conn);
TAILQ_HEAD(preamble_list, preamble);

#define WORKER_MAX_LISTENERS	32

/* One event loop and the connections it owns; nothing here is shared. */
struct worker {
	int			 id;
	pthread_t		 thread;
	bool			 started;	/* thread created */
	struct event_base	*base;
	struct conn_list	 conns;
	struct conn_list	 dead;		/* closed, to be freed */
	struct event		*reap;		/* frees them after the callback */
	struct preamble_list	 preambles;	/* reading PROXY headers */
	atomic_uint		 nconns;	/* read by the metrics */
	bool			 draining;	/* SIGTERM: sessions end when idle */
	bool			 drain_force;	/* shutdown_timeout over: end now */
	struct evconnlistener	*listeners[WORKER_MAX_LISTENERS];
	int			 nlisteners;
	struct event		*accept_pause;	/* after EMFILE: wait a moment */
	int			 reserve_fd;	/* given up to answer at EMFILE */
	time_t			 last_overload_log;	/* rate limit */
	int			 ctl[2];	/* main -> worker commands */
	struct event		*ctl_event;
	struct metrics		 metrics;
	unsigned char		*scratch;	/* relay.c's reads: RELAY_READ */
	struct event		*beat;		/* HEALTH_BEAT_MS timer */
	_Atomic int64_t		 last_beat;	/* health_clock_ms(), for /healthz */
};

/* What made a reload happen, for the metrics. */
enum gate_reload_trigger {
	GATE_RELOAD_SIGNAL,		/* SIGHUP */
	GATE_RELOAD_FILE,		/* filewatch.c saw new file contents */
	GATE_RELOAD_NTRIGGERS
};

struct gate {
	struct event_base	*base;		/* main thread: signals, metrics */
	pthread_mutex_t		 lock;		/* guards snap */
	struct snapshot		*snap;		/* for new connections */
	atomic_uint		 nconns;	/* all workers: max_connections */
	struct worker		*workers;
	int			 nworkers;
	/* Main thread only: by enum gate_reload_trigger. */
	uint64_t		 reloads_ok[GATE_RELOAD_NTRIGGERS];
	uint64_t		 reloads_failed[GATE_RELOAD_NTRIGGERS];
	time_t			 last_reload_ok;	/* or the start */
	atomic_bool		 listening;	/* workers accept: /readyz */
	atomic_bool		 draining;	/* SIGTERM came: /readyz says so */
};

extern struct gate gate;

/* The snapshot for a new connection: a reference the caller releases. */
struct snapshot *gate_snapshot(void);

/* Install a new snapshot for new connections; drops the old reference. */
void gate_set_snapshot(struct snapshot *);

/*
 * TCP_NODELAY, and keepalives as tcp_keepalives_* say (0: the system's).
 * No-op for Unix-domain sockets.
 */
void gate_tune_socket(int fd, int family, const struct config *);

/*
 * Takes over the caller's reference to cfg, even on failure.  prev is the
 * snapshot being replaced on a reload (NULL at start): see tls_key.
 */
struct snapshot *snapshot_new(struct config *cfg, const struct snapshot *prev,
    char *err, size_t errlen);
struct snapshot *snapshot_ref(struct snapshot *);

/* Resolve host:port (host "/dir": a Unix socket) into r; origin for err. */
int gate_resolve(const char *host, int port, const char *origin,
    struct gate_route *r, char *err, size_t errlen);
void snapshot_unref(struct snapshot *);

#endif
