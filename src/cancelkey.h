/*
 * cancelkey: which backend owns a session's cancel key.  A CancelRequest
 * carries only the (pid, secret key) the backend sent in BackendKeyData,
 * and from libpq before 17 arrives in plaintext without a TLS server name,
 * so with several backends (hosts_file's backend=) the gate remembers each
 * relayed session's key and sends the cancel where the session is.
 */
#ifndef CANCELKEY_H
#define CANCELKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgproto.h"

/* Backend message types looked at before the session is ready. */
#define CANCELKEY_MSG_KEYDATA	'K'	/* BackendKeyData */
#define CANCELKEY_MSG_READY	'Z'	/* ReadyForQuery */
#define CANCELKEY_MSG_ERROR	'E'

/* Sessions remembered at once; past that, a cancel goes to the default. */
#define CANCELKEY_MAX		4096

struct cancelkey {
	uint32_t	pid;
	uint8_t		key[PGPROTO_CANCEL_MAX_KEY];
	size_t		keylen;		/* 4 before protocol 3.2 */
};

/*
 * The scanner over what a backend sends in the startup phase.  Message
 * boundaries may fall anywhere; it stops at ReadyForQuery or an
 * ErrorResponse, or at a message header it cannot trust.
 */
struct cancelkey_scan {
	uint8_t		hdr[5];		/* type and length being read */
	size_t		nhdr;
	uint32_t	left;		/* body bytes of the current message */
	bool		in_key;		/* the current message is 'K' */
	uint8_t		body[4 + PGPROTO_CANCEL_MAX_KEY];
	size_t		nbody;
	bool		found;
	bool		done;
	struct cancelkey key;
};

enum cancelkey_result {
	CANCELKEY_MORE,		/* feed what comes next */
	CANCELKEY_FOUND,	/* scan->key holds the key; stop feeding */
	CANCELKEY_NONE,		/* no key will come; stop feeding */
};

void cancelkey_scan_init(struct cancelkey_scan *);
enum cancelkey_result cancelkey_feed(struct cancelkey_scan *,
    const uint8_t *p, size_t n);

/*
 * A CancelRequest packet (length word included) into key; -1 when it is
 * not one.
 */
int cancelkey_from_request(const uint8_t *pkt, size_t len,
    struct cancelkey *key);

/*
 * The shared table: key -> an opaque value (the caller's route, copied in
 * and out, at most CANCELKEY_VALUE_MAX bytes).  Any thread.  add returns a
 * slot to remove later, or -1 when the table is full or the key is there.
 */
#define CANCELKEY_VALUE_MAX	2048
int cancelkey_add(const struct cancelkey *, const void *value, size_t len);
void cancelkey_remove(int slot);
/* Copy the value of key out; false when unknown. */
bool cancelkey_lookup(const struct cancelkey *, void *value, size_t len);

#endif
