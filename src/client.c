/*
 * client: the per-connection state machine of the startup phase.  Packets
 * are parsed by pgproto, answered as policy decides, and the connection is
 * handed to backend.c (connect, forward) and relay.c (bytes both ways).
 */
#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "backend.h"
#include "cancelkey.h"
#include "client.h"
#include "config.h"
#include "hba.h"
#include "log.h"
#include "relay.h"
#include "sni.h"
#include "startup.h"
#include "tls.h"
#include "trust.h"

/* A finished connection has this long to flush its last bytes. */
#define CONN_FLUSH_TIMEOUT_SEC	10

static void client_startup_read(struct bufferevent *, void *);
static void client_startup_event(struct bufferevent *, short, void *);
static void client_first_byte(evutil_socket_t, short, void *);
static void start_tls(struct conn *);

static const char *
state_name(enum conn_state state)
{
	switch (state) {
	case CONN_WAIT_STARTUP:		return "waiting for the startup packet";
	case CONN_TLS_HANDSHAKE:	return "in the TLS handshake";
	case CONN_WAIT_BACKEND:		return "connecting to the backend";
	case CONN_BACKEND_SSL:		return "negotiating SSL with the backend";
	case CONN_BACKEND_TLS:		return "in the TLS handshake with the "
					    "backend";
	case CONN_BACKEND_PROBE:	return "waiting for the backend's answer";
	case CONN_CANCEL:		return "forwarding a cancel request";
	case CONN_RELAY:		return "in session";
	case CONN_CLOSING:		return "closing";
	}
	return "unknown";
}

static void
conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	char		 msg[400];

	(void)fd;
	(void)what;
	if (c->state >= CONN_WAIT_BACKEND && c->state <= CONN_BACKEND_PROBE &&
	    !c->cancel) {
		snprintf(msg, sizeof(msg), "could not connect to backend %s: "
		    "timed out after authentication_timeout",
		    c->route->backend_name);
		conn_refuse(c, METRICS_REFUSED_BACKEND, "08006", msg, NULL);
		return;
	}
	METRICS_INC(c->worker, refused[METRICS_REFUSED_TIMEOUT]);
	log_info("closing connection from host=%s port=%s: "
	    "authentication_timeout (%d ms) expired while %s", c->host,
	    c->port, c->snap->cfg->authentication_timeout,
	    state_name(c->state));
	conn_free(c);
}

void
conn_turn_away(int fd, const char *message)
{
	uint8_t	buf[PGPROTO_ERROR_MAX], drain[512];
	size_t	n;
	int	i = 0;

	n = pgproto_build_error(buf, sizeof(buf), "53300", message, NULL);
	if (n <= sizeof(buf))
		(void)!send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	/*
	 * A close with unread bytes (the SSLRequest, usually there by now)
	 * would reset the connection, and a reset may overtake the answer.
	 */
	while (i++ < 4 && recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
		;
	close(fd);
}

/* Once a second at most over all workers, for refusals a flood repeats. */
static bool
log_this_second(void)
{
	static _Atomic long	last;
	long			now = (long)time(NULL);

	return atomic_exchange_explicit(&last, now, memory_order_relaxed) !=
	    now;
}

/*
 * max_startup_connections(_per_host): a connection that has not finished
 * its startup phase costs a TLS handshake and its state (about 47 KB) for
 * up to authentication_timeout; past a cap, it is answered at once.
 * Returns false when fd was turned away.
 */
static bool
startup_admit(struct worker *w, const struct config *cfg, int fd,
    const struct sockaddr *sa, int salen, struct startcap_key *key)
{
	char	host[64] = "?", port[8] = "?", src[64], msg[256];
	unsigned cap = (unsigned)config_startup_cap(cfg),
		 per_host = (unsigned)config_startup_cap_per_host(cfg);
	enum startcap_verdict v;

	startcap_key_of(key, sa);
	if ((v = startcap_enter(key, cap, per_host)) == STARTCAP_OK)
		return true;
	startcap_key_name(key, src, sizeof(src));
	if (v == STARTCAP_HOST_FULL)
		snprintf(msg, sizeof(msg), "sorry, too many connections from "
		    "%s in the startup phase (max_startup_connections_per_host "
		    "= %u)", src, per_host);
	else
		snprintf(msg, sizeof(msg), "sorry, too many connections in the "
		    "startup phase (max_startup_connections = %u)", cap);
	METRICS_INC(w, refused[v == STARTCAP_HOST_FULL ?
	    METRICS_REFUSED_STARTUP_HOST : METRICS_REFUSED_STARTUP]);
	if (log_this_second()) {
		if (sa->sa_family != AF_UNIX)
			getnameinfo(sa, (socklen_t)salen, host, sizeof(host),
			    port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
		log_info("refused connection from host=%s port=%s: %s (further "
		    "such refusals this second are not logged)", host, port,
		    msg);
	}
	conn_turn_away(fd, msg);
	return false;
}

void
conn_startup_done(struct conn *c)
{
	if (!c->in_startup)
		return;
	startcap_leave(&c->source);
	c->in_startup = false;
}

void
conn_accept(struct worker *w, int fd, const struct conn_peer *peer)
{
	const struct sockaddr	*sa = peer->sa;
	int			 salen = peer->salen;
	struct snapshot		*snap;
	struct conn		*c;
	struct timeval		 tv;
	struct startcap_key	 key;
	unsigned		 open, max;

	/*
	 * Past max_connections a client still gets its SSL answer and then
	 * a proper "too many connections" error; far past it, resources come
	 * first and the socket is closed at once.  The count is over all
	 * workers.
	 */
	snap = gate_snapshot();
	max = (unsigned)snap->cfg->max_connections;
	open = atomic_fetch_add_explicit(&gate.nconns, 1, memory_order_relaxed);
	if (open >= 2u * max) {
		atomic_fetch_sub_explicit(&gate.nconns, 1, memory_order_relaxed);
		/* A flood must not become a log flood: once a second. */
		if (time(NULL) != w->last_overload_log) {
			w->last_overload_log = time(NULL);
			log_warn("closing new connections at once: %u open, "
			    "max_connections = %u", open, max);
		}
		METRICS_INC(w, refused[METRICS_REFUSED_TOO_MANY]);
		snapshot_unref(snap);
		close(fd);
		return;
	}
	if (!startup_admit(w, snap->cfg, fd, sa, salen, &key)) {
		atomic_fetch_sub_explicit(&gate.nconns, 1, memory_order_relaxed);
		snapshot_unref(snap);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		atomic_fetch_sub_explicit(&gate.nconns, 1, memory_order_relaxed);
		startcap_leave(&key);
		log_error("out of memory accepting a connection");
		snapshot_unref(snap);
		close(fd);
		return;
	}
	c->worker = w;
	c->snap = snap;
	c->route = &snap->route;
	c->sni = "none";
	c->cancel_slot = -1;
	c->fd = fd;
	c->source = key;
	c->in_startup = true;
	c->state = CONN_WAIT_STARTUP;
	c->over_limit = open >= max;
	METRICS_INC(w, accepted);
	gettimeofday(&c->started, NULL);
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	atomic_store_explicit(&w->nconns, atomic_load_explicit(&w->nconns,
	    memory_order_relaxed) + 1, memory_order_relaxed);

	gate_tune_socket(fd, sa->sa_family, snap->cfg);
	if (salen > 0 && (size_t)salen <= sizeof(c->peer))
		memcpy(&c->peer, sa, (size_t)salen);
	if (sa->sa_family == AF_UNIX)
		snprintf(c->host, sizeof(c->host), "[local]");
	else {
		if (getnameinfo(sa, (socklen_t)salen, c->host, sizeof(c->host),
		    c->port, sizeof(c->port), NI_NUMERICHOST | NI_NUMERICSERV))
			snprintf(c->host, sizeof(c->host), "?");
	}
	if (snap->cfg->log_connections)
		log_info("connection received: host=%s port=%s%s%s", c->host,
		    c->port, peer->note != NULL ? " " : "",
		    peer->note != NULL ? peer->note : "");

	c->client = bufferevent_socket_new(w->base, fd, 0);
	c->timer = evtimer_new(w->base, conn_timeout, c);
	c->startup = evbuffer_new();
	if (c->client == NULL || c->timer == NULL || c->startup == NULL) {
		log_error("out of memory setting up connection from host=%s",
		    c->host);
		conn_free(c);
		return;
	}
	tv.tv_sec = snap->cfg->authentication_timeout / 1000;
	tv.tv_usec = (snap->cfg->authentication_timeout % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	bufferevent_setcb(c->client, client_startup_read, NULL,
	    client_startup_event, c);
	if (snap->cfg->ssl && snap->cfg->ssl_direct) {
		/* Peek at the first byte before anything reads it. */
		c->first_byte = event_new(w->base, fd, EV_READ,
		    client_first_byte, c);
		if (c->first_byte == NULL || event_add(c->first_byte,
		    NULL) != 0) {
			log_error("out of memory setting up connection from "
			    "host=%s", c->host);
			conn_free(c);
		}
		return;
	}
	bufferevent_enable(c->client, EV_READ);
}

/*
 * 'S' and 'N' go straight to the socket: they are the first bytes sent on
 * a fresh connection, and the TLS handshake must follow 'S' with nothing in
 * between, which a buffered write could not promise.
 */
static int
send_byte(struct conn *c, char byte)
{
	if (send(c->fd, &byte, 1, MSG_NOSIGNAL) == 1)
		return 0;
	log_info("could not answer host=%s port=%s: %s", c->host, c->port,
	    strerror(errno));
	return -1;
}

static void
start_tls(struct conn *c)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = SSL_new(c->snap->tls)) == NULL) {
		log_error("could not create a TLS session for host=%s: out of "
		    "memory", c->host);
		conn_free(c);
		return;
	}
	bufferevent_disable(c->client, EV_READ | EV_WRITE);
	bufferevent_free(c->client);
	c->client = NULL;
	bev = bufferevent_openssl_socket_new(c->worker->base, c->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		log_error("could not start TLS for host=%s: out of memory",
		    c->host);
		conn_free(c);
		return;
	}
	c->fd = -1;			/* the bufferevent owns it now */
	c->ssl = ssl;
	trust_set_verify_report(ssl, &c->verify_report);
	c->client = bev;
	c->state = CONN_TLS_HANDSHAKE;
	/* libpq may close without close_notify; that is an end, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, client_startup_read, NULL, client_startup_event,
	    c);
	bufferevent_enable(bev, EV_READ);
}

/*
 * ssl_direct: PostgreSQL 17 clients with sslnegotiation=direct start the
 * TLS handshake at once.  The first byte tells: a ClientHello record
 * (0x16) goes straight to TLS; anything else is the plaintext protocol.
 * MSG_PEEK leaves the bytes for whichever reads them.
 */
static void
client_first_byte(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	uint8_t		 byte;
	ssize_t		 n;

	(void)what;
	n = recv(fd, &byte, 1, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		event_add(c->first_byte, NULL);
		return;
	}
	event_free(c->first_byte);
	c->first_byte = NULL;
	if (n == 1 && byte == PGPROTO_TLS_HANDSHAKE_BYTE) {
		c->direct_tls = true;
		c->policy.ssl_requested = true;
		c->policy.tls_active = true;
		start_tls(c);
		return;
	}
	if (n <= 0) {
		if (c->snap->cfg->log_connections)
			log_info("connection from host=%s port=%s closed before "
			    "a startup packet", c->host, c->port);
		conn_free(c);
		return;
	}
	bufferevent_enable(c->client, EV_READ);
}

static void
refuse_no_ssl(struct conn *c)
{
	const struct config	*cfg = c->snap->cfg;
	char			 why[64], msg[400];

	if (cfg->require_ssl)
		snprintf(why, sizeof(why), "require_ssl = on");
	else
		snprintf(why, sizeof(why), "clientcert = %s",
		    config_clientcert_name(cfg->clientcert));
	snprintf(msg, sizeof(msg), "this server requires SSL (%s): rejected "
	    "host \"%s\", user \"%s\", database \"%s\", no encryption", why,
	    c->host, c->user, c->database);
	/* With clientcert, SSL alone would be refused again. */
	conn_refuse(c, METRICS_REFUSED_NO_SSL, "28000", msg,
	    cfg->clientcert != CONFIG_CLIENTCERT_OFF ?
	    "Connect over SSL with a client certificate (sslcert, sslkey)." :
	    "Connect with sslmode=require, verify-ca or verify-full.");
}

/*
 * clientcert = verify-ca or verify-full: the handshake let a client without
 * a certificate through (trust.c says why); its StartupMessage is refused
 * with PostgreSQL's FATAL.  verify-full: the certificate's CN must be the
 * user name of the StartupMessage, as in PostgreSQL's pg_hba.conf.
 * Returns false after refusing the connection.
 */
static bool
check_client_cert(struct conn *c)
{
	enum config_clientcert	mode = c->snap->cfg->clientcert;
	char			cn[PGPROTO_NAME_MAX * 4], msg[256], detail[512];

	if (mode == CONFIG_CLIENTCERT_OFF || c->ssl == NULL)
		return true;
	if (SSL_get0_peer_certificate(c->ssl) == NULL) {
		snprintf(detail, sizeof(detail), "The client did not send a "
		    "certificate, and clientcert = %s requires one (libpq: "
		    "sslcert and sslkey).", config_clientcert_name(mode));
		conn_refuse(c, METRICS_REFUSED_NO_CLIENT_CERT, "28000",
		    "connection requires a valid client certificate", detail);
		return false;
	}
	if (mode != CONFIG_CLIENTCERT_VERIFY_FULL)
		return true;
	if (trust_peer_common_name(c->ssl, cn, sizeof(cn)) == 0 &&
	    strcmp(cn, c->user) == 0)
		return true;
	snprintf(msg, sizeof(msg), "certificate authentication failed for "
	    "user \"%s\"", c->user);
	if (trust_peer_common_name(c->ssl, cn, sizeof(cn)) == 0)
		snprintf(detail, sizeof(detail), "The client certificate's "
		    "common name \"%s\" is not the user name \"%s\" "
		    "(clientcert = verify-full).", cn, c->user);
	else
		snprintf(detail, sizeof(detail), "The client certificate "
		    "has no single, well-formed common name "
		    "(clientcert = verify-full).");
	conn_refuse(c, METRICS_REFUSED_CERT_USER, "28000", msg, detail);
	return false;
}

/*
 * ssl_sni with several backends: a CancelRequest goes to the backend of
 * the session whose key it carries (libpq before 17 sends it in plaintext,
 * without a server name).  An unknown key goes where it would without the
 * table (the server name's backend, or the default one): a backend ignores
 * a key it did not issue.
 */
static void
cancel_route(struct conn *c)
{
	const uint8_t		*pkt = evbuffer_pullup(c->startup, -1);
	struct cancelkey	 key;

	if (pkt == NULL || cancelkey_from_request(pkt,
	    evbuffer_get_length(c->startup), &key) != 0)
		return;
	if ((c->cancel_route = malloc(sizeof(*c->cancel_route))) == NULL)
		return;
	if (!cancelkey_lookup(&key, c->cancel_route,
	    sizeof(*c->cancel_route))) {
		log_info("cancel request from host=%s port=%s: no session "
		    "of this gate has its key; sending it to backend %s",
		    c->host, c->port, c->route->backend_name);
		free(c->cancel_route);
		c->cancel_route = NULL;
		return;
	}
	c->route = c->cancel_route;
}

/*
 * hba_file: the first line that matches decides, as in PostgreSQL.  Every
 * refusal is an ErrorResponse, so libpq in sslmode=allow retries over TLS
 * after a plaintext attempt is refused.  Returns false after refusing.
 */
static bool
check_hba(struct conn *c)
{
	char			cn[PGPROTO_NAME_MAX * 4], dn[1024];
	struct hba_request	req = {
		.addr = (const struct sockaddr *)&c->peer,
		.ssl = c->ssl != NULL, .user = c->user, .database = c->database,
	};
	struct hba_decision	d;

	if (c->snap->hba == NULL)
		return true;
	/* A certificate that is there passed verification in the handshake. */
	if (c->ssl != NULL && SSL_get0_peer_certificate(c->ssl) != NULL) {
		req.cert = true;
		req.cn = trust_peer_common_name(c->ssl, cn, sizeof(cn)) == 0 ?
		    cn : NULL;
		req.dn = trust_peer_dn(c->ssl, dn, sizeof(dn)) == 0 ? dn : NULL;
	}
	hba_decide(c->snap->hba, &req, &d);
	if (d.verdict == HBA_ALLOW) {
		log_debug("host=%s port=%s user=%s database=%s: %s", c->host,
		    c->port, c->user, c->database, d.log);
		return true;
	}
	log_info("hba_file: host=%s port=%s user=%s database=%s: %s", c->host,
	    c->port, c->user, c->database, d.log);
	conn_refuse(c, METRICS_REFUSED_HBA, "28000", d.message,
	    d.detail[0] != '\0' ? d.detail : NULL);
	return false;
}

/*
 * Carry out one startup verdict.  Returns true when the caller should go
 * on with what is buffered, false when the connection moved on or ended.
 */
static bool
carry_out(struct conn *c, const struct startup_step *s, struct evbuffer *in)
{
	const struct pgproto_packet	*pkt = &s->pkt;

	log_debug("host=%s port=%s: packet code %u, %u bytes: verdict %d",
	    c->host, c->port, pkt->code, pkt->length, (int)s->verdict);
	switch (s->verdict) {
	case STARTUP_MORE:
		return false;
	case STARTUP_REPLY:
		evbuffer_drain(in, s->length);
		if (send_byte(c, s->reply) != 0) {
			conn_free(c);
			return false;
		}
		return true;
	case STARTUP_REFUSE:
		/* An SSLRequest is answered before any refusal. */
		if (s->reply == PGPROTO_SSL_ACCEPT &&
		    send_byte(c, s->reply) != 0) {
			conn_free(c);
			return false;
		}
		conn_refuse(c, s->reason, s->sqlstate, s->message, s->detail);
		return false;
	case STARTUP_TLS:
		evbuffer_drain(in, s->length);
		if (send_byte(c, s->reply) != 0) {
			conn_free(c);
			return false;
		}
		start_tls(c);
		return false;
	case STARTUP_CLOSE:
		log_info("closing connection from host=%s port=%s: %s after %s "
		    "(protocol violation)", c->host, c->port,
		    pkt->kind == PGPROTO_SSL_REQUEST ? "SSLRequest" :
		    "GSSENCRequest", c->policy.tls_active ?
		    "the TLS handshake" : "one was already answered");
		METRICS_INC(c->worker, refused[s->reason]);
		conn_free(c);
		return false;
	case STARTUP_REFUSE_NO_SSL:
		memcpy(c->user, pkt->user, sizeof(c->user));
		memcpy(c->database, pkt->database, sizeof(c->database));
		refuse_no_ssl(c);
		return false;
	case STARTUP_CANCEL:
	case STARTUP_FORWARD:
		memcpy(c->user, pkt->user, sizeof(c->user));
		memcpy(c->database, pkt->database, sizeof(c->database));
		/* A cancel needs no certificate: its key is its credential. */
		if (s->verdict == STARTUP_FORWARD && (!check_hba(c) ||
		    !check_client_cert(c)))
			return false;
		if (s->verdict == STARTUP_FORWARD && c->over_limit) {
			conn_refuse(c, METRICS_REFUSED_TOO_MANY, "53300",
			    "sorry, too many clients already", NULL);
			return false;
		}
		if (evbuffer_remove_buffer(in, c->startup, s->length) !=
		    (int)s->length) {
			conn_free(c);
			return false;
		}
		bufferevent_disable(c->client, EV_READ);
		c->state = CONN_WAIT_BACKEND;
		if (s->verdict == STARTUP_CANCEL && c->snap->hosts != NULL)
			cancel_route(c);
		backend_connect(c, s->verdict == STARTUP_CANCEL);
		return false;
	}
	return false;
}

/*
 * Act on every whole packet that is buffered.  A loop, not recursion: a
 * client cannot make the proxy nest (CVE-2026-6479), and policy allows one
 * SSLRequest and one GSSENCRequest at most.
 */
static void
client_startup_read(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct startup_step	 step;

	if (c->state == CONN_TLS_HANDSHAKE)
		return;		/* the event callback takes over first */
	for (;;) {
		size_t		 avail = evbuffer_get_length(in);
		/* One byte past the largest packet shows what follows it. */
		size_t		 want = avail < PGPROTO_MAX_PACKET + 1 ? avail :
				    PGPROTO_MAX_PACKET + 1;
		const uint8_t	*buf;

		if (avail == 0)
			return;
		if ((buf = evbuffer_pullup(in, (ssize_t)want)) == NULL) {
			conn_free(c);
			return;
		}
		startup_next(&c->snap->policy, &c->policy, buf, want, &step);
		if (!carry_out(c, &step, in))
			return;
	}
}

static bool
alpn_postgresql(SSL *ssl)
{
	const unsigned char	*proto;
	unsigned int		 len;

	SSL_get0_alpn_selected(ssl, &proto, &len);
	return len == sizeof(PGPROTO_ALPN) - 1 &&
	    memcmp(proto, PGPROTO_ALPN, len) == 0;
}

static void
client_startup_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	unsigned long	 errs[8];
	size_t		 nerrs = 0;
	char		 why[1024];

	if (what & BEV_EVENT_CONNECTED) {
		/* TLS is up; the StartupMessage may already be buffered. */
		log_debug("TLS handshake with host=%s port=%s done: %s %s",
		    c->host, c->port, SSL_get_version(c->ssl),
		    SSL_get_cipher_name(c->ssl));
		c->state = CONN_WAIT_STARTUP;
		if (c->snap->hosts != NULL) {
			int	h = sni_host_of(c->snap, c->ssl);

			c->route = sni_route(c->snap, h);
			c->sni = sni_label(c->snap, h, c->ssl);
		}
		if (c->direct_tls && !alpn_postgresql(c->ssl)) {
			/* PostgreSQL 17: direct SSL only with ALPN. */
			conn_refuse(c, METRICS_REFUSED_PROTOCOL, "08P01",
			    "received direct SSL connection request without "
			    "ALPN protocol negotiation extension", NULL);
			return;
		}
		client_startup_read(bev, c);
		return;
	}
	if (c->state == CONN_TLS_HANDSHAKE) {
		unsigned long e;

		while ((e = bufferevent_get_openssl_error(bev)) != 0)
			if (nerrs < sizeof(errs) / sizeof(errs[0]))
				errs[nerrs++] = e;
		if (sni_refusal(c->snap, c->ssl, why, sizeof(why)))
			METRICS_INC(c->worker, handshake_failures[
			    METRICS_HS_UNRECOGNIZED_NAME]);
		else
			METRICS_INC(c->worker, handshake_failures[
			    tls_describe_errors(errs, nerrs, why,
			    sizeof(why))]);
		log_info("TLS handshake with host=%s port=%s failed: %s%s%s",
		    c->host, c->port, c->verify_report != NULL ?
		    c->verify_report : "", c->verify_report != NULL ? "; " : "",
		    why);
	} else if (c->policy.tls_active) {
		log_info("connection from host=%s port=%s closed after the TLS "
		    "handshake without a startup packet (libpq does this when "
		    "it rejects the server certificate, e.g. a host name "
		    "mismatch in sslmode=verify-full)", c->host, c->port);
	} else if (evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		log_info("incomplete startup packet from host=%s port=%s",
		    c->host, c->port);
	} else if (what & BEV_EVENT_ERROR) {
		log_info("connection from host=%s port=%s failed during "
		    "startup: %s", c->host, c->port, strerror(errno));
	} else if (c->snap->cfg->log_connections) {
		log_info("connection from host=%s port=%s closed before a "
		    "startup packet", c->host, c->port);
	}
	ERR_clear_error();
	conn_free(c);
}

void
conn_refuse(struct conn *c, enum metrics_refusal reason, const char *sqlstate,
    const char *message, const char *detail)
{
	uint8_t	buf[PGPROTO_ERROR_MAX];
	size_t	n;

	if (c->user[0] != '\0')
		log_info("refused connection from host=%s port=%s user=%s "
		    "database=%s: %s%s%s", c->host, c->port, c->user,
		    c->database, message, detail != NULL ? " DETAIL: " : "",
		    detail != NULL ? detail : "");
	else
		log_info("refused connection from host=%s port=%s: %s%s%s",
		    c->host, c->port, message, detail != NULL ? " DETAIL: " : "",
		    detail != NULL ? detail : "");
	n = pgproto_build_error(buf, sizeof(buf), sqlstate, message, detail);
	if (c->client != NULL && n <= sizeof(buf))
		bufferevent_write(c->client, buf, n);
	METRICS_INC(c->worker, refused[reason]);
	c->end_reason = "refused";
	conn_startup_done(c);
	conn_close_after_flush(c, c->client);
}

static void
closing_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_free(arg);
}

static void
closing_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

static void
free_client_side(struct conn *c)
{
	if (c->client == NULL)
		return;
	/* Best effort close_notify; the socket is non-blocking. */
	if (c->ssl != NULL && SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	bufferevent_free(c->client);
	c->client = NULL;
	c->ssl = NULL;
}

void
conn_close_after_flush(struct conn *c, struct bufferevent *survivor)
{
	struct timeval	tv = { CONN_FLUSH_TIMEOUT_SEC, 0 };

	relay_stop(c);
	if (c->backend != NULL && c->backend != survivor) {
		bufferevent_free(c->backend);
		c->backend = NULL;
		c->backend_ssl = NULL;
	}
	if (c->client != NULL && c->client != survivor)
		free_client_side(c);
	if (survivor == NULL ||
	    evbuffer_get_length(bufferevent_get_output(survivor)) == 0) {
		conn_free(c);
		return;
	}
	c->state = CONN_CLOSING;
	if (c->timer != NULL)
		evtimer_del(c->timer);
	bufferevent_disable(survivor, EV_READ);
	bufferevent_setwatermark(survivor, EV_WRITE, 0, 0);
	bufferevent_setcb(survivor, NULL, closing_write, closing_event, c);
	bufferevent_set_timeouts(survivor, NULL, &tv);
	bufferevent_enable(survivor, EV_WRITE);
}

static void
log_session_end(const struct conn *c)
{
	struct timeval	now, d;

	gettimeofday(&now, NULL);
	timersub(&now, &c->started, &d);
	log_info("disconnection: session time: %ld.%03ld s host=%s port=%s "
	    "user=%s database=%s%s%s bytes_from_client=%llu "
	    "bytes_from_backend=%llu (%s)", (long)d.tv_sec,
	    (long)(d.tv_usec / 1000), c->host, c->port, c->user, c->database,
	    c->snap->hosts != NULL ? " sni=" : "",
	    c->snap->hosts != NULL ? c->sni : "",
	    (unsigned long long)c->bytes_up,
	    (unsigned long long)c->bytes_down,
	    c->end_reason != NULL ? c->end_reason : "closed");
}

void
conn_free(struct conn *c)
{
	struct worker	*w;
	unsigned	 left;

	if (c == NULL)
		return;
	w = c->worker;
	if (c->established && c->snap->cfg->log_connections)
		log_session_end(c);
	TAILQ_REMOVE(&w->conns, c, entry);
	left = atomic_load_explicit(&w->nconns, memory_order_relaxed) - 1;
	atomic_store_explicit(&w->nconns, left, memory_order_relaxed);
	atomic_fetch_sub_explicit(&gate.nconns, 1, memory_order_relaxed);
	/* The last session of a SIGTERM drain ends the worker's loop. */
	if (w->draining && left == 0)
		event_base_loopbreak(w->base);
	conn_startup_done(c);
	/* Events on a socket go before the socket does. */
	relay_stop(c);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->backend != NULL)
		bufferevent_free(c->backend);
	if (c->first_byte != NULL)
		event_free(c->first_byte);
	free_client_side(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->startup != NULL)
		evbuffer_free(c->startup);
	free(c->verify_report);
	free(c->allow_refusal);
	cancelkey_remove(c->cancel_slot);
	free(c->keyscan);
	free(c->cancel_route);
	snapshot_unref(c->snap);
	free(c);
}

void
conn_free_all(struct worker *w)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&w->conns)) != NULL) {
		c->end_reason = "server shutting down";
		conn_free(c);
	}
}
