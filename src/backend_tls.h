/*
 * backend_tls: the proxy as a TLS client of the backend, with libpq's
 * sslmode semantics (backend_sslmode, backend_sslrootcert, ...).
 */
#ifndef BACKEND_TLS_H
#define BACKEND_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct config;

/* The client context for backend_sslmode other than disable. */
SSL_CTX *backend_tls_ctx_new(const struct config *, char *err, size_t errlen);

/* A session for one backend connection: SNI and host-name check set. */
SSL *backend_tls_new(SSL_CTX *, const struct config *);

/*
 * Why the handshake failed, in words: the verify result first, then the
 * thread's OpenSSL error queue (drained).
 */
void backend_tls_describe(SSL *, char *buf, size_t len);

#endif
