/*
 * trust: client certificates.  Loads ssl_ca_file and the revocation lists,
 * checks them against each other at start-up, explains every refused
 * certificate, and tells who the verified peer is.
 */
#ifndef TRUST_H
#define TRUST_H

#include <stddef.h>

#include <openssl/ssl.h>

struct config;

/* Request and verify client certificates on ctx as cfg says. */
int trust_configure(SSL_CTX *, const struct config *, char *err,
    size_t errlen);

/*
 * Where the verify callback writes why a client certificate was refused:
 * one malloc'd line the owner frees.  Call on every new SSL.
 */
void trust_set_verify_report(SSL *, char **slot);

/* The client certificate's subject, or "" when none was presented. */
void trust_peer_subject(SSL *, char *buf, size_t len);

/*
 * The client certificate's single common name.  Returns -1 when there is
 * no certificate, no CN, more than one, or one with an embedded NUL.
 */
int trust_peer_common_name(SSL *, char *buf, size_t len);

/* An X509_NAME in RFC 2253 form ("CN=alice,O=Example"). */
void trust_name(const X509_NAME *, char *buf, size_t len);

/* An ASN1_TIME as "Nov 23 16:59:58 2027 GMT". */
void trust_time_text(const ASN1_TIME *, char *buf, size_t len);

#endif
