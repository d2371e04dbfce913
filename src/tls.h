/*
 * tls: building the server SSL_CTX from the configuration, with the checks
 * an operator needs (key permissions, key/certificate match, chain order),
 * and turning OpenSSL's error queue into words a person can act on.
 */
#ifndef TLS_H
#define TLS_H

#include <sys/types.h>

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "metrics.h"

struct config;
struct trust_info;

/*
 * The server key as loaded, so that a reload can keep an encrypted one whose
 * file has not changed without running ssl_passphrase_command again.
 */
struct tls_key {
	char		 path[PATH_MAX];
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	EVP_PKEY	*pkey;		/* a reference, when it took a passphrase */
};

/*
 * The server context, or NULL with err set.  Warnings are logged; info
 * gets the certificate's and CRLs' dates, key what the key was loaded from.
 * prev is the key in force (NULL at start): on a reload an encrypted key is
 * decrypted again only when ssl_passphrase_command_supports_reload is on.
 */
SSL_CTX *tls_server_ctx_new(const struct config *, const struct tls_key *prev,
    struct tls_key *key, struct trust_info *info, char *err, size_t errlen);

/* Drop key's reference; tolerates an empty one. */
void tls_key_clear(struct tls_key *key);


/* The thread's OpenSSL error queue, drained, appended to buf as "a; b". */
void tls_error_list(char *buf, size_t len);

/*
 * Describe a failed client handshake from the thread's OpenSSL error queue
 * (drained), with a hint for the common causes; the kind of failure comes
 * from OpenSSL's reason codes.
 */
enum metrics_handshake tls_describe_errors(char *buf, size_t len);

/*
 * The same certificate, byte for byte (DER): what SCRAM channel binding
 * (tls-server-end-point, RFC 5929) needs of the gate's and the backend's.
 */
bool tls_same_cert(X509 *, X509 *);

/* SHA-256 of the DER, as colon hex ("(none)" without a certificate). */
#define TLS_FINGERPRINT_LEN	(32 * 3)
void tls_cert_fingerprint(X509 *, char *buf, size_t len);

#endif
