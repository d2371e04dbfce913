/*
 * startup: the startup phase as one pure function.  In: the settings, what
 * happened so far, and the bytes the client has sent.  Out: the next thing
 * to do.  client.c carries it out on a socket; the fuzzer and the unit
 * tests call it the same way, without one.
 */
#ifndef STARTUP_H
#define STARTUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hba.h"
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
	char			 text[256];	/* message, when not static */
	char			 text_detail[512];
	bool			 hba_used;	/* hba_file decided: hba */
	struct hba_decision	 hba;		/* its log line is the caller's */
};

/*
 * What the I/O side knows about the connection that decides on a
 * StartupMessage.  It reads the client certificate's common name;
 * startup.c judges it.
 */
struct startup_peer {
	const struct hba_rules *hba;	/* hba_file's, or NULL */
	const struct sockaddr *addr;	/* the client's, for hba_file */
	bool	 over_limit;		/* accepted past max_connections */
	bool	 cert_required;		/* clientcert is not off, over TLS */
	bool	 has_cert;		/* the client sent one (it verified) */
	const char *clientcert;		/* "verify-ca", ...: for the detail */
	bool	 cn_required;		/* clientcert = verify-full over TLS */
	bool	 cn_ok;			/* one well-formed CN, in cn */
	char	 cn[PGPROTO_NAME_MAX * 4];
	bool	 dn_ok;			/* the subject, RFC 2253, in dn */
	char	 dn[1024];
};

/*
 * Decide on the first packet of buf[0..len), which holds every byte
 * received and not yet consumed.  Updates st as the decision takes effect.
 */
void startup_next(const struct policy_settings *, struct policy_state *st,
    const struct startup_peer *, const uint8_t *buf, size_t len,
    struct startup_step *);

/*
 * ssl_direct: the first byte a client sends (have: whether one came, or
 * the connection ended).  A TLS handshake record starts direct SSL; no
 * StartupMessage can start with it, its length would exceed the limit.
 */
enum startup_first {
	STARTUP_FIRST_TLS,
	STARTUP_FIRST_PROTOCOL,
	STARTUP_FIRST_GONE,
};
enum startup_first startup_first_byte(struct policy_state *, bool have,
    uint8_t byte);

/*
 * After the TLS handshake: PostgreSQL 17 takes direct SSL only with the
 * ALPN protocol "postgresql" selected (proto: what was, len 0 for none).
 */
bool startup_alpn_ok(bool direct, const unsigned char *proto, unsigned len);

/*
 * A new connection, with open connections already counted over all
 * workers.  Past max_connections a client still gets its SSL answer and
 * then a proper "too many connections" error; far past it, resources come
 * first and the socket is closed at once.
 */
enum startup_admit {
	STARTUP_ADMIT_OK,
	STARTUP_ADMIT_REFUSE,	/* FATAL 53300 once the StartupMessage is in */
	STARTUP_ADMIT_DROP,	/* close without a word */
};
enum startup_admit startup_admit(unsigned open, unsigned max_connections);

#endif
