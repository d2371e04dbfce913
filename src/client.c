/*
 * client: the startup phase on the client's side.  Packets are parsed and
 * decided on by startup.c; this file carries the verdicts out (answers,
 * the TLS handshake, refusals) and hands the packet to backend.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "backend.h"
#include "cancelkey.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "sni.h"
#include "startup.h"
#include "tls.h"
#include "trust.h"

static void	client_ready(struct side *);
static void	client_failed(struct side *);
static void	client_timeout(struct conn *, enum conn_timer);

static const struct conn_phase client_phase = {
	client_ready, client_failed, client_timeout,
};

static void	startup_read(struct conn *);

void
client_accept(struct worker *w, int fd, const struct conn_peer *peer)
{
	struct conn	*c;

	if ((c = conn_new(w, fd, peer)) == NULL)
		return;
	/* ssl_direct: the first byte decides, before anything reads it. */
	conn_set_state(c, c->snap->cfg->ssl && c->snap->cfg->ssl_direct ?
	    CONN_FIRST_BYTE : CONN_WAIT_STARTUP, &client_phase);
}

/*
 * 'S' and 'N' are the first bytes sent on a fresh connection, so the
 * socket takes them at once; the TLS handshake must follow 'S' with
 * nothing in between, so one that would be queued is a failure.
 */
static int
send_byte(struct conn *c, char byte)
{
	side_write(&c->client, &byte, 1);
	if (!c->client.broken && side_queued(&c->client) == 0)
		return 0;
	log_info("could not answer host=%s port=%s: %s", c->host, c->port,
	    c->client.broken ? c->client.error : "socket full");
	return -1;
}

static void
start_tls(struct conn *c)
{
	SSL	*ssl;

	if ((ssl = SSL_new(c->snap->tls)) == NULL) {
		log_error("could not create a TLS session for host=%s: out of "
		    "memory", c->host);
		conn_close(c);
		return;
	}
	trust_set_verify_report(ssl, &c->verify_report);
	side_start_tls(&c->client, ssl, true);
	/* The client speaks first: its ClientHello wakes the handshake. */
	conn_set_state(c, CONN_TLS_HANDSHAKE, &client_phase);
}

/*
 * ssl_direct: PostgreSQL 17 clients with sslnegotiation=direct start the
 * TLS handshake at once; startup.c tells from the first byte.  Peeking
 * leaves it for whichever reads it.
 */
static void
first_byte(struct conn *c)
{
	uint8_t	byte = 0;
	ssize_t	n;

	if ((n = side_peek(&c->client, &byte)) == SIDE_AGAIN)
		return;
	switch (startup_first_byte(&c->policy, n == 1, byte)) {
	case STARTUP_FIRST_TLS:
		c->direct_tls = true;
		start_tls(c);
		return;
	case STARTUP_FIRST_PROTOCOL:
		conn_set_state(c, CONN_WAIT_STARTUP, &client_phase);
		return;
	case STARTUP_FIRST_GONE:
		if (c->snap->cfg->log_connections)
			log_info("connection from host=%s port=%s closed before "
			    "a startup packet", c->host, c->port);
		conn_close(c);
		return;
	}
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
 * What startup.c needs to know about the connection to decide on a
 * StartupMessage: the client certificate and its CN (the I/O side reads
 * them, startup.c judges them) and whether max_connections was reached.
 */
static void
peer_facts(struct conn *c, struct startup_peer *p)
{
	enum config_clientcert	mode = c->snap->cfg->clientcert;

	memset(p, 0, sizeof(*p));
	p->hba = c->snap->hba;
	p->addr = (const struct sockaddr *)&c->peer;
	p->over_limit = c->over_limit;
	p->cert_required = mode != CONFIG_CLIENTCERT_OFF &&
	    c->client.ssl != NULL;
	p->has_cert = c->client.ssl != NULL &&
	    SSL_get0_peer_certificate(c->client.ssl) != NULL;
	p->clientcert = config_clientcert_name(mode);
	p->cn_required = mode == CONFIG_CLIENTCERT_VERIFY_FULL &&
	    c->client.ssl != NULL;
	if (p->has_cert) {
		p->cn_ok = trust_peer_common_name(c->client.ssl, p->cn,
		    sizeof(p->cn)) == 0;
		p->dn_ok = p->hba != NULL && trust_peer_dn(c->client.ssl,
		    p->dn, sizeof(p->dn)) == 0;
	}
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
	struct cancelkey	key;

	if (cancelkey_from_request(c->startup, c->startup_len, &key) != 0 ||
	    (c->cancel_route = malloc(sizeof(*c->cancel_route))) == NULL)
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
 * Carry out one startup verdict.  Returns true when the caller should go
 * on with what is buffered, false when the connection moved on or ended.
 */
static bool
carry_out(struct conn *c, const struct startup_step *s)
{
	const struct pgproto_packet	*pkt = &s->pkt;
	struct side			*cl = &c->client;

	log_debug("host=%s port=%s: packet code %u, %u bytes: verdict %d",
	    c->host, c->port, pkt->code, pkt->length, (int)s->verdict);
	if (s->hba_used) {
		if (s->hba.verdict == HBA_ALLOW)
			log_debug("host=%s port=%s user=%s database=%s: %s",
			    c->host, c->port, pkt->user, pkt->database,
			    s->hba.log);
		else
			log_info("hba_file: host=%s port=%s user=%s "
			    "database=%s: %s", c->host, c->port, pkt->user,
			    pkt->database, s->hba.log);
	}
	switch (s->verdict) {
	case STARTUP_MORE:
		return false;
	case STARTUP_REPLY:
		side_consume_in(cl, s->length);
		if (send_byte(c, s->reply) != 0) {
			conn_close(c);
			return false;
		}
		return true;
	case STARTUP_REFUSE:
		if (pkt->user[0] != '\0') {
			memcpy(c->user, pkt->user, sizeof(c->user));
			memcpy(c->database, pkt->database,
			    sizeof(c->database));
		}
		/* An SSLRequest is answered before any refusal. */
		if (s->reply == PGPROTO_SSL_ACCEPT &&
		    send_byte(c, s->reply) != 0) {
			conn_close(c);
			return false;
		}
		conn_refuse(c, s->reason, s->sqlstate, s->message, s->detail);
		return false;
	case STARTUP_TLS:
		side_consume_in(cl, s->length);
		if (send_byte(c, s->reply) != 0) {
			conn_close(c);
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
		conn_close(c);
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
		if ((c->startup = malloc(s->length)) == NULL) {
			conn_refuse(c, METRICS_REFUSED_BACKEND, "53200",
			    "out of memory", NULL);
			return false;
		}
		/* A copy: allow may need the packet again for its TLS retry. */
		memcpy(c->startup, cl->in.data + cl->in.off, s->length);
		c->startup_len = s->length;
		side_consume_in(cl, s->length);
		if (s->verdict == STARTUP_CANCEL && c->snap->hosts != NULL)
			cancel_route(c);
		backend_connect(c, s->verdict == STARTUP_CANCEL);
		return false;
	}
	return false;
}

/* The client went away, or failed, during the startup phase. */
static void
startup_ended(struct conn *c, bool error)
{
	if (c->policy.tls_active) {
		log_info("connection from host=%s port=%s closed after the TLS "
		    "handshake without a startup packet (libpq does this when "
		    "it rejects the server certificate, e.g. a host name "
		    "mismatch in sslmode=verify-full)", c->host, c->port);
	} else if (c->client.in.len > 0) {
		log_info("incomplete startup packet from host=%s port=%s",
		    c->host, c->port);
	} else if (error) {
		log_info("connection from host=%s port=%s failed during "
		    "startup: %s", c->host, c->port, c->client.error);
	} else if (c->snap->cfg->log_connections) {
		log_info("connection from host=%s port=%s closed before a "
		    "startup packet", c->host, c->port);
	}
	ERR_clear_error();
	conn_close(c);
}

/*
 * Act on every whole packet that is buffered.  A loop, not recursion: a
 * client cannot make the proxy nest (CVE-2026-6479), and policy allows one
 * SSLRequest and one GSSENCRequest at most.  One byte past the largest
 * packet shows what follows it.
 */
static void
startup_read(struct conn *c)
{
	struct side		*cl = &c->client;
	struct startup_step	 step;
	struct startup_peer	 peer;
	ssize_t			 n;

	n = side_read_in(cl, PGPROTO_MAX_PACKET + 1);
	if (n == SIDE_AGAIN)
		return;
	if (n == 0 || n == SIDE_ERROR) {
		startup_ended(c, n == SIDE_ERROR);
		return;
	}
	peer_facts(c, &peer);
	while (cl->in.len > 0) {
		startup_next(&c->snap->policy, &c->policy, &peer,
		    cl->in.data + cl->in.off, cl->in.len, &step);
		if (!carry_out(c, &step))
			return;
	}
}

static void
handshake(struct conn *c)
{
	const unsigned char	*proto;
	unsigned int		 len;
	enum metrics_handshake	 kind;
	char			 why[1024];

	switch (side_handshake(&c->client)) {
	case SIDE_HS_AGAIN:
		return;
	case SIDE_HS_FAILED:
		/* Once: describing drains OpenSSL's queue. */
		if (sni_refusal(c->snap, c->client.ssl, why, sizeof(why))) {
			ERR_clear_error();
			kind = METRICS_HS_UNRECOGNIZED_NAME;
		} else
			kind = tls_describe_errors(why, sizeof(why));
		METRICS_INC(c->worker, handshake_failures[kind]);
		log_info("TLS handshake with host=%s port=%s failed: %s%s%s",
		    c->host, c->port, c->verify_report != NULL ?
		    c->verify_report : "", c->verify_report != NULL ? "; " : "",
		    why);
		ERR_clear_error();
		conn_close(c);
		return;
	case SIDE_HS_DONE:
		break;
	}
	log_debug("TLS handshake with host=%s port=%s done: %s %s", c->host,
	    c->port, SSL_get_version(c->client.ssl),
	    SSL_get_cipher_name(c->client.ssl));
	conn_set_state(c, CONN_WAIT_STARTUP, &client_phase);
	if (c->snap->hosts != NULL) {
		int	h = sni_host_of(c->snap, c->client.ssl);

		c->route = sni_route(c->snap, h);
		c->sni = sni_label(c->snap, h, c->client.ssl);
	}
	SSL_get0_alpn_selected(c->client.ssl, &proto, &len);
	if (!startup_alpn_ok(c->direct_tls, proto, len)) {
		/* PostgreSQL 17: direct SSL only with ALPN. */
		conn_refuse(c, METRICS_REFUSED_PROTOCOL, "08P01",
		    "received direct SSL connection request without ALPN "
		    "protocol negotiation extension", NULL);
		return;
	}
	/* The StartupMessage may already be in OpenSSL's hands. */
	startup_read(c);
}

static void
client_ready(struct side *s)
{
	struct conn	*c = s->conn;

	switch (c->state) {
	case CONN_FIRST_BYTE:
		first_byte(c);
		return;
	case CONN_WAIT_STARTUP:
		startup_read(c);
		return;
	case CONN_TLS_HANDSHAKE:
		handshake(c);
		return;
	default:
		return;
	}
}

static void
client_failed(struct side *s)
{
	startup_ended(s->conn, true);
}

static void
client_timeout(struct conn *c, enum conn_timer t)
{
	(void)t;
	conn_auth_expired(c);
}
