/*
 * policy: what the proxy answers at each step of the startup phase, given the
 * server-side settings ssl and require_ssl.  This is the whole ssl x
 * require_ssl x sslmode matrix as code; it never touches a socket.
 */
#ifndef POLICY_H
#define POLICY_H

#include <stdbool.h>

#include "pgproto.h"

struct policy_settings {
	bool	ssl;		/* TLS offered at all */
	bool	require_ssl;	/* plaintext sessions refused (needs ssl) */
	bool	clientcert;	/* a client certificate is required, so
				   plaintext sessions are refused too */
};

/* What has happened on this connection so far. */
struct policy_state {
	bool	tls_active;
	bool	ssl_requested;
	bool	gssenc_requested;
};

enum policy_action {
	POLICY_TLS_ACCEPT,	/* reply 'S', then the TLS handshake */
	POLICY_DECLINE,		/* reply 'N', keep reading in plaintext */
	POLICY_FORWARD,		/* send the StartupMessage to the backend */
	POLICY_CANCEL,		/* forward the CancelRequest, then close */
	POLICY_REFUSE_NO_SSL,	/* FATAL 28000: require_ssl or clientcert
				   forbids plaintext */
	POLICY_REFUSE_REPEAT,	/* second SSLRequest/GSSENCRequest, or one after TLS: close */
};

enum policy_action policy_decide(const struct policy_settings *,
    const struct policy_state *, enum pgproto_kind);

/* Record the effect of an action so the next decision sees it. */
void policy_advance(struct policy_state *, enum pgproto_kind, enum policy_action);

const char *policy_action_name(enum policy_action);

#endif
