/*
 * startup: parse one packet (pgproto), decide on it (policy), and turn
 * the decision into one verdict, including the checks that depend on what
 * else is buffered.
 */
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

void
startup_next(const struct policy_settings *set, struct policy_state *st,
    const uint8_t *buf, size_t len, struct startup_step *s)
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
		return;
	}
	s->verdict = STARTUP_CLOSE;
	s->reason = METRICS_REFUSED_PROTOCOL;
}
