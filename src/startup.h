/*
 * startup: the startup phase as one pure function.  In: the settings, what
 * happened so far, and the bytes the client has sent.  Out: the next thing
 * to do.  client.c carries it out on a socket; the fuzzer and the unit
 * tests call it the same way, without one.
 */
#ifndef STARTUP_H
#define STARTUP_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "pgproto.h"
#include "policy.h"

enum startup_verdict {
	STARTUP_MORE,		/* wait for more bytes */
	STARTUP_REPLY,		/* send reply, drop the packet, go on */
	STARTUP_TLS,		/* send 'S', drop the packet, TLS handshake */
	STARTUP_FORWARD,	/* a session: the packet goes to the backend */
	STARTUP_CANCEL,		/* the CancelRequest goes to the backend */
	STARTUP_REFUSE_NO_SSL,	/* FATAL 28000: plaintext not allowed */
	STARTUP_REFUSE,		/* FATAL sqlstate/message/detail, then close */
	STARTUP_CLOSE,		/* close without a word */
};

struct startup_step {
	enum startup_verdict	 verdict;
	size_t			 length;	/* bytes of the packet handled */
	char			 reply;		/* STARTUP_REPLY, STARTUP_TLS */
	enum metrics_refusal	 reason;	/* REFUSE*, CLOSE */
	const char		*sqlstate;	/* STARTUP_REFUSE; static text */
	const char		*message;
	const char		*detail;	/* may be NULL */
	struct pgproto_packet	 pkt;		/* when a packet was parsed */
};

/*
 * Decide on the first packet of buf[0..len), which holds every byte
 * received and not yet consumed.  Updates st as the decision takes effect.
 */
void startup_next(const struct policy_settings *, struct policy_state *st,
    const uint8_t *buf, size_t len, struct startup_step *);

#endif
