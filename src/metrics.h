/*
 * metrics: the counters of what the proxy did, one set per worker, and the
 * reasons they count by.  Declarations only, below every module that
 * counts; exposition.c renders them for httpd.c.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Scrapers served at once by the metrics endpoint. */
#ifndef METRICS_MAX_CLIENTS
#define METRICS_MAX_CLIENTS	8
#endif

/* Why a client was refused with an ErrorResponse or closed. */
enum metrics_refusal {
	METRICS_REFUSED_NO_SSL,		/* plaintext under require_ssl */
	METRICS_REFUSED_CERT_USER,	/* verify-full: CN is not the user */
	METRICS_REFUSED_NO_CLIENT_CERT,	/* clientcert wants one; none sent */
	METRICS_REFUSED_TOO_MANY,	/* max_connections */
	METRICS_REFUSED_PROTOCOL,	/* malformed or repeated packets */
	METRICS_REFUSED_INJECTION,	/* bytes after SSLRequest */
	METRICS_REFUSED_BACKEND,	/* backend unreachable */
	METRICS_REFUSED_TIMEOUT,	/* authentication_timeout */
	METRICS_REFUSED_NO_FDS,		/* accept() ran out of descriptors */
	METRICS_REFUSED_STARTUP,	/* max_startup_connections */
	METRICS_REFUSED_STARTUP_HOST,	/* max_startup_connections_per_host */
	METRICS_REFUSED_CHANNEL_BINDING,	/* SCRAM-SHA-256-PLUS through
						   differing certificates */
	METRICS_REFUSED_HBA,		/* hba_file: no line, reject, cert */
	METRICS_REFUSED_PROXY_HEADER,	/* PROXY header missing or invalid */
	METRICS_REFUSED_PROXY_UNTRUSTED,	/* PROXY header, unlisted peer */
	METRICS_REFUSED_NREASONS
};

/* Why a TLS handshake failed. */
enum metrics_handshake {
	METRICS_HS_CLIENT_CERT,		/* client certificate did not verify */
	METRICS_HS_SERVER_CERT,		/* client rejected ours */
	METRICS_HS_VERSION,		/* no common protocol version */
	METRICS_HS_CIPHER,		/* no common cipher or group */
	METRICS_HS_NOT_TLS,		/* not a TLS ClientHello */
	METRICS_HS_EOF,			/* client went away */
	METRICS_HS_UNRECOGNIZED_NAME,	/* ssl_sni: no hosts_file entry */
	METRICS_HS_OTHER,
	METRICS_HS_NREASONS
};

/*
 * One set per worker, written only by that worker's thread; the metrics
 * endpoint sums them.  Relaxed atomics make the cross-thread reads
 * well-defined without a locked instruction on the hot path.
 */
struct metrics {
	_Atomic uint64_t	accepted;
	_Atomic uint64_t	sessions_tls;
	_Atomic uint64_t	sessions_plain;
	_Atomic uint64_t	cancels;
	_Atomic uint64_t	sessions_drained;	/* 57P01 on SIGTERM */
	_Atomic uint64_t	refused[METRICS_REFUSED_NREASONS];
	_Atomic uint64_t	handshake_failures[METRICS_HS_NREASONS];
	_Atomic uint64_t	bytes_client_to_backend;
	_Atomic uint64_t	bytes_backend_to_client;
};

/* Add n to worker w's counter f (only from w's own thread). */
#define METRICS_ADD(w, f, n)						\
	atomic_store_explicit(&(w)->metrics.f,				\
	    atomic_load_explicit(&(w)->metrics.f, memory_order_relaxed) +	\
	    (uint64_t)(n), memory_order_relaxed)
#define METRICS_INC(w, f)	METRICS_ADD(w, f, 1)

/*
 * A session set up under ssl_sni, by the label the connection got (a name
 * from hosts_file, "*", "none").  The label set is bounded: after
 * METRICS_SNI_MAX distinct labels (reloads may bring new ones) the rest
 * count as "other".  Any thread.
 */
#define METRICS_SNI_MAX		300
void metrics_sni_session(const char *label);	/* in exposition.c */

#endif
