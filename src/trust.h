/*
 * trust: client certificates.  Loads ssl_ca_file and the revocation lists,
 * checks them against each other at start-up, explains every refused
 * certificate, and tells who the verified peer is.
 */
#ifndef TRUST_H
#define TRUST_H

#include <stddef.h>

#include <openssl/ssl.h>

#include <time.h>

struct config;

/* What the metrics report about the trust in force: CRL freshness. */
#define TRUST_MAX_CRLS	16

struct trust_info {
	time_t	cert_not_after;		/* the serving certificate's */
	int	ncrls;
	struct {
		char	issuer[256];
		time_t	next_update;	/* 0 when the CRL has none */
	} crls[TRUST_MAX_CRLS];
};

/* Request and verify client certificates on ctx as cfg says. */
int trust_configure(SSL_CTX *, const struct config *, struct trust_info *,
    char *err, size_t errlen);

/*
 * Load a CRL file and/or a hashed CRL directory ("" for none) into store
 * and turn on checking for the whole chain, as PostgreSQL does.
 */
int trust_load_crls(X509_STORE *, const char *file, const char *file_origin,
    const char *dir, const char *dir_origin, char *err, size_t errlen);

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

/*
 * The client certificate's subject as PostgreSQL prints it for
 * clientname=DN: RFC 2253, UTF-8 kept as UTF-8.  -1 when there is no
 * certificate or the name does not fit.
 */
int trust_peer_dn(SSL *, char *buf, size_t len);

/* The certificate's SHA-256 fingerprint, "AB:CD:...", or "?" on error. */
void trust_fingerprint(X509 *, char *buf, size_t len);

/* An X509_NAME in RFC 2253 form ("CN=alice,O=Example"). */
void trust_name(const X509_NAME *, char *buf, size_t len);

/* An ASN1_TIME as "Nov 23 16:59:58 2027 GMT", or as a time_t (0: none). */
void trust_time_text(const ASN1_TIME *, char *buf, size_t len);
time_t trust_time_t(const ASN1_TIME *);

#endif
