/*
 * policy: the server side of the ssl / require_ssl matrix.  A libpq client's
 * sslmode never reaches the server; what the server sees is whether the
 * client sends an SSLRequest first.  Answering each packet right is enough to
 * give every sslmode its outcome in the matrix.
 */
#include "policy.h"

enum policy_action
policy_decide(const struct policy_settings *set, const struct policy_state *st,
    enum pgproto_kind kind)
{
	switch (kind) {
	case PGPROTO_SSL_REQUEST:
		/* One per connection, and never once TLS is up (CVE-2026-6479). */
		if (st->ssl_requested || st->tls_active)
			return POLICY_REFUSE_REPEAT;
		return set->ssl ? POLICY_TLS_ACCEPT : POLICY_DECLINE;
	case PGPROTO_GSSENC_REQUEST:
		/* GSSAPI encryption is never offered; libpq then tries SSL. */
		if (st->gssenc_requested || st->tls_active)
			return POLICY_REFUSE_REPEAT;
		return POLICY_DECLINE;
	case PGPROTO_CANCEL_REQUEST:
		/*
		 * Cancels are not authenticated sessions: libpq before 17 sends
		 * them in plaintext even on a TLS session, and PostgreSQL's
		 * hostssl rules do not apply to them either.
		 */
		return POLICY_CANCEL;
	case PGPROTO_STARTUP:
		/*
		 * Refuse with an ErrorResponse, not a bare close: libpq in
		 * sslmode=allow retries over TLS only after one.  A client
		 * certificate can only arrive over TLS, so clientcert implies
		 * require_ssl.
		 */
		if (!st->tls_active && set->ssl &&
		    (set->require_ssl || set->clientcert))
			return POLICY_REFUSE_NO_SSL;
		return POLICY_FORWARD;
	}
	return POLICY_REFUSE_REPEAT;
}

void
policy_advance(struct policy_state *st, enum pgproto_kind kind,
    enum policy_action action)
{
	if (kind == PGPROTO_SSL_REQUEST)
		st->ssl_requested = true;
	else if (kind == PGPROTO_GSSENC_REQUEST)
		st->gssenc_requested = true;
	if (action == POLICY_TLS_ACCEPT)
		st->tls_active = true;
}

const char *
policy_action_name(enum policy_action a)
{
	switch (a) {
	case POLICY_TLS_ACCEPT:		return "tls-accept";
	case POLICY_DECLINE:		return "decline";
	case POLICY_FORWARD:		return "forward";
	case POLICY_CANCEL:		return "cancel";
	case POLICY_REFUSE_NO_SSL:	return "refuse-no-ssl";
	case POLICY_REFUSE_REPEAT:	return "refuse-repeat";
	}
	return "unknown";
}
