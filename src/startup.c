/*
 * startup: parse one packet (pgproto), decide on it (policy), and turn
 * the decision into one verdict, including the checks that depend on what
 * else is buffered.
 */
#include <stdio.h>
#include <string.h>

#include "startup.h"

static void
refuse(struct startup_step *s, enum metrics_refusal reason,
    const char *sqlstate, const char *message, const char *detail)
{
	s->verdict = STARTUP_REFUSE;
	s->reason = reason;
	s->sqlstate = sqlstate;
	s->message = message;
	s->detail = detail;
}

/*
 * A StartupMessage the policy lets through may still be refused for who
 * sent it.  hba_file: the first line that matches decides, as in
 * PostgreSQL; every refusal is an ErrorResponse, so libpq in sslmode=allow
 * retries over TLS after a plaintext attempt is refused.  clientcert: the handshake lets a client without a certificate
 * through so that it gets PostgreSQL's FATAL here, which drivers show (a
 * handshake alert they turn into "broken pipe").  clientcert =
 * verify-full also wants the certificate's CN to be the user, as
 * pg_hba.conf's does.  And a connection accepted past max_connections
 * gets its answer only now.  A CancelRequest needs none of it: its key is
 * its credential.
 */
static void
check_forward(const struct startup_peer *peer, bool tls,
    struct startup_step *s)
{
	struct hba_request	req = {
		.addr = peer->addr, .ssl = tls, .user = s->pkt.user,
		.database = s->pkt.database,
	};

	if (peer->hba != NULL) {
		/* A certificate that is there passed verification. */
		req.cert = peer->has_cert;
		req.cn = peer->has_cert && peer->cn_ok ? peer->cn : NULL;
		req.dn = peer->has_cert && peer->dn_ok ? peer->dn : NULL;
		hba_decide(peer->hba, &req, &s->hba);
		s->hba_used = true;
		if (s->hba.verdict != HBA_ALLOW) {
			refuse(s, METRICS_REFUSED_HBA, "28000", s->hba.message,
			    s->hba.detail[0] != '\0' ? s->hba.detail : NULL);
			return;
		}
	}
	if (peer->cert_required && !peer->has_cert) {
		snprintf(s->text_detail, sizeof(s->text_detail), "The client "
		    "did not send a certificate, and clientcert = %s requires "
		    "one (libpq: sslcert and sslkey).", peer->clientcert !=
		    NULL ? peer->clientcert : "verify-ca");
		refuse(s, METRICS_REFUSED_NO_CLIENT_CERT, "28000",
		    "connection requires a valid client certificate",
		    s->text_detail);
		return;
	}
	if (peer->cn_required && (!peer->cn_ok ||
	    strcmp(peer->cn, s->pkt.user) != 0)) {
		snprintf(s->text, sizeof(s->text), "certificate "
		    "authentication failed for user \"%s\"", s->pkt.user);
		if (peer->cn_ok)
			snprintf(s->text_detail, sizeof(s->text_detail),
			    "The client certificate's common name \"%s\" is "
			    "not the user name \"%s\" (clientcert = "
			    "verify-full).", peer->cn, s->pkt.user);
		else
			snprintf(s->text_detail, sizeof(s->text_detail),
			    "The client certificate has no single, "
			    "well-formed common name (clientcert = "
			    "verify-full).");
		refuse(s, METRICS_REFUSED_CERT_USER, "28000", s->text,
		    s->text_detail);
		return;
	}
	if (peer->over_limit)
		refuse(s, METRICS_REFUSED_TOO_MANY, "53300",
		    "sorry, too many clients already", NULL);
}

void
startup_next(const struct policy_settings *set, struct policy_state *st,
    const struct startup_peer *peer, const uint8_t *buf, size_t len,
    struct startup_step *s)
{
	enum pgproto_status	status;
	enum policy_action	action;

	memset(s, 0, sizeof(*s));
	status = pgproto_parse_startup(buf, len, &s->pkt);
	if (status == PGPROTO_INCOMPLETE) {
		s->verdict = STARTUP_MORE;
		return;
	}
	if (status != PGPROTO_OK) {
		refuse(s, METRICS_REFUSED_PROTOCOL,
		    pgproto_status_sqlstate(status),
		    pgproto_status_message(status), NULL);
		return;
	}
	s->length = s->pkt.length;
	action = policy_decide(set, st, s->pkt.kind);
	policy_advance(st, s->pkt.kind, action);

	switch (action) {
	case POLICY_DECLINE:
		s->verdict = STARTUP_REPLY;
		s->reply = PGPROTO_SSL_DECLINE;
		return;
	case POLICY_TLS_ACCEPT:
		s->reply = PGPROTO_SSL_ACCEPT;
		/*
		 * Bytes already here arrived before the handshake, so they
		 * were not encrypted and may be injected (CVE-2021-23214).
		 * PostgreSQL still sends 'S' first: an SSLRequest is never
		 * answered with an error (CVE-2024-10977).
		 */
		if (len > s->length) {
			refuse(s, METRICS_REFUSED_INJECTION, "08P01",
			    "received unencrypted data after SSL request",
			    "This could be either a client-software bug or "
			    "evidence of an attempted man-in-the-middle "
			    "attack.");
			return;
		}
		s->verdict = STARTUP_TLS;
		return;
	case POLICY_REFUSE_REPEAT:
		s->verdict = STARTUP_CLOSE;
		s->reason = METRICS_REFUSED_PROTOCOL;
		return;
	case POLICY_REFUSE_NO_SSL:
		s->verdict = STARTUP_REFUSE_NO_SSL;
		s->reason = METRICS_REFUSED_NO_SSL;
		return;
	case POLICY_CANCEL:
		s->verdict = STARTUP_CANCEL;
		return;
	case POLICY_FORWARD:
		s->verdict = STARTUP_FORWARD;
		check_forward(peer, st->tls_active, s);
		return;
	}
	s->verdict = STARTUP_CLOSE;
	s->reason = METRICS_REFUSED_PROTOCOL;
}

enum startup_admit
startup_admit(unsigned open, unsigned max)
{
	if (open >= 2u * max)
		return STARTUP_ADMIT_DROP;
	return open >= max ? STARTUP_ADMIT_REFUSE : STARTUP_ADMIT_OK;
}

enum startup_first
startup_first_byte(struct policy_state *st, bool have, uint8_t byte)
{
	if (!have)
		return STARTUP_FIRST_GONE;
	if (byte != PGPROTO_TLS_HANDSHAKE_BYTE)
		return STARTUP_FIRST_PROTOCOL;
	/* As if an SSLRequest had been accepted. */
	st->ssl_requested = true;
	st->tls_active = true;
	return STARTUP_FIRST_TLS;
}

bool
startup_alpn_ok(bool direct, const unsigned char *proto, unsigned len)
{
	if (!direct)
		return true;	/* no ALPN at all is fine after SSLRequest */
	return len == sizeof(PGPROTO_ALPN) - 1 &&
	    memcmp(proto, PGPROTO_ALPN, len) == 0;
}
