/*
 * gate: snapshots of the configuration as the connections use it.  Building
 * one does every check that can fail (TLS files, backend address), so a
 * snapshot that exists is one that works.
 */
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "gate.h"
#include "backend_tls.h"
#include "sni.h"
#include "tls.h"

/*
 * backend_host names a TCP host, or, when it starts with '/', the directory
 * of the backend's Unix-domain socket, as libpq's host does.
 */
int
gate_resolve(const char *host, int port, const char *origin,
    struct gate_route *r, char *err, size_t errlen)
{
	struct addrinfo		 hints, *res, *ai;
	char			 portbuf[16];
	int			 rc;

	snprintf(r->backend_name, sizeof(r->backend_name), "%s:%d", host,
	    port);
	if (host[0] == '/') {
		struct sockaddr_un	*sun = (struct sockaddr_un *)
		    &r->backend[0].ss;

		sun->sun_family = AF_UNIX;
		if ((size_t)snprintf(sun->sun_path, sizeof(sun->sun_path),
		    "%s/.s.PGSQL.%d", host, port) >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "%s: backend_host \"%s\": socket "
			    "path too long", origin, host);
			return -1;
		}
		r->backend[0].len = sizeof(*sun);
		r->nbackend = 1;
		snprintf(r->backend_name, sizeof(r->backend_name), "%s",
		    sun->sun_path);
		return 0;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	if ((rc = getaddrinfo(host, portbuf, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: could not resolve backend_host "
		    "\"%s\": %s", origin, host, gai_strerror(rc));
		return -1;
	}
	r->nbackend = 0;
	for (ai = res; ai != NULL && r->nbackend < GATE_MAX_BACKEND_ADDRS;
	    ai = ai->ai_next) {
		struct backend_addr *b = &r->backend[r->nbackend++];

		memcpy(&b->ss, ai->ai_addr, ai->ai_addrlen);
		b->len = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	return 0;
}

static int
resolve_backend(struct snapshot *snap, char *err, size_t errlen)
{
	const struct config	*cfg = snap->cfg;

	return gate_resolve(cfg->backend_host, cfg->backend_port,
	    config_origin(cfg, CONFIG_BACKEND_HOST), &snap->route, err,
	    errlen);
}

/*
 * hba_file and ident_file are part of the snapshot: a reload that cannot
 * read them keeps the old rules with the old everything else.
 */
static int
load_hba(struct snapshot *snap, char *err, size_t errlen)
{
	const struct config	*cfg = snap->cfg;
	const struct hba_line	*l;
	char			 why[1024];

	if (*cfg->hba_file == '\0')
		return 0;
	if ((snap->hba = hba_parse(cfg->hba_file, cfg->ident_file,
	    &hba_file_io, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "hba_file (%s): %s",
		    config_origin(cfg, CONFIG_HBA_FILE), why);
		return -1;
	}
	/* A certificate arrives only over TLS and only with a CA to check. */
	if ((l = hba_wants_cert(snap->hba)) != NULL &&
	    (!cfg->ssl || (*cfg->ssl_ca_file == '\0' && !cfg->ssl_sni))) {
		snprintf(err, errlen, "%s:%d: a line that requires a client "
		    "certificate needs ssl = on and ssl_ca_file, the CA "
		    "certificates that client certificates must chain to",
		    l->file, l->lineno);
		return -1;
	}
	return 0;
}

struct gate	gate = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct snapshot *
gate_snapshot(void)
{
	struct snapshot	*snap;

	pthread_mutex_lock(&gate.lock);
	snap = snapshot_ref(gate.snap);
	pthread_mutex_unlock(&gate.lock);
	return snap;
}

void
gate_set_snapshot(struct snapshot *snap)
{
	struct snapshot	*old;

	pthread_mutex_lock(&gate.lock);
	old = gate.snap;
	gate.snap = snap;
	pthread_mutex_unlock(&gate.lock);
	/* Connections that still use it keep it alive. */
	snapshot_unref(old);
}

void
gate_tune_socket(int fd, int family, const struct config *cfg)
{
	int	one = 1;

	if (family == AF_UNIX)
		return;
	/* Small protocol messages must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* As PostgreSQL: keepalives on, timings from tcp_keepalives_*. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (cfg->tcp_keepalives_idle > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE,
		    &cfg->tcp_keepalives_idle, sizeof(int));
	if (cfg->tcp_keepalives_interval > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL,
		    &cfg->tcp_keepalives_interval, sizeof(int));
	if (cfg->tcp_keepalives_count > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT,
		    &cfg->tcp_keepalives_count, sizeof(int));
}

struct snapshot *
snapshot_new(struct config *cfg, const struct snapshot *prev, char *err,
    size_t errlen)
{
	struct snapshot	*snap;

	if ((snap = calloc(1, sizeof(*snap))) == NULL) {
		snprintf(err, errlen, "out of memory");
		config_unref(cfg);
		return NULL;
	}
	atomic_init(&snap->refcount, 1);
	snap->cfg = cfg;
	snap->policy.ssl = cfg->ssl;
	snap->policy.require_ssl = cfg->require_ssl;
	snap->policy.clientcert = cfg->clientcert != CONFIG_CLIENTCERT_OFF;
	if (config_validate(cfg, err, errlen) != 0 ||
	    resolve_backend(snap, err, errlen) != 0 ||
	    load_hba(snap, err, errlen) != 0 ||
	    (cfg->ssl && cfg->ssl_sni && sni_build(snap, prev, err,
	    errlen) != 0) ||
	    (cfg->ssl && snap->tls == NULL &&
	    (snap->tls = tls_server_ctx_new(cfg,
	    prev != NULL ? &prev->key : NULL, &snap->key,
	    &snap->trust, err, errlen)) == NULL) ||
	    (cfg->backend_sslmode != CONFIG_SSLMODE_DISABLE &&
	    cfg->backend_host[0] != '/' &&
	    (snap->backend_tls = backend_tls_ctx_new(cfg, err, errlen)) ==
	    NULL)) {
		snapshot_unref(snap);
		return NULL;
	}
	return snap;
}

struct snapshot *
snapshot_ref(struct snapshot *snap)
{
	atomic_fetch_add_explicit(&snap->refcount, 1, memory_order_relaxed);
	return snap;
}

void
snapshot_unref(struct snapshot *snap)
{
	if (snap == NULL || atomic_fetch_sub_explicit(&snap->refcount, 1,
	    memory_order_acq_rel) > 1)
		return;
	if (snap->hosts == NULL)
		SSL_CTX_free(snap->tls);	/* else it is host[0]'s */
	sni_free(snap);
	SSL_CTX_free(snap->backend_tls);
	tls_key_clear(&snap->key);
	hba_free(snap->hba);
	config_unref(snap->cfg);
	free(snap);
}
