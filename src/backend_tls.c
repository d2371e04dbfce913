/*
 * backend_tls: TLS towards the backend.  The checks follow libpq: require
 * verifies nothing unless a root certificate is given (then it acts as
 * verify-ca), verify-ca checks the chain, verify-full also the host name;
 * SNI is sent for host names unless backend_sslsni is off.
 */
#include <arpa/inet.h>

#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "backend_tls.h"
#include "config.h"
#include "tls.h"
#include "tlsfile.h"
#include "trust.h"

/* "" is "not set"; anything else must be a file we can open. */
static int
readable(const char *path, const char *what, const char *origin, char *err,
    size_t errlen)
{
	return *path == '\0' ? 0 :
	    tlsfile_check_readable(what, path, origin, err, errlen);
}

static void
prefix_origin(const struct config *cfg, enum config_key key, char *err,
    size_t errlen)
{
	char	msg[1024];

	snprintf(msg, sizeof(msg), "%s", err);
	snprintf(err, errlen, "%s: %s", config_origin(cfg, key), msg);
}

SSL_CTX *
backend_tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	bool	 verify;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "could not create the backend TLS "
		    "context: out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx,
	    cfg->backend_ssl_min_protocol_version == CONFIG_TLS_1_3 ?
	    TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	/*
	 * libpq verifies the chain whenever a root file is given, whatever
	 * the mode (that is how require becomes verify-ca); prefer then falls
	 * back to plaintext on failure, as libpq's does.
	 */
	verify = cfg->backend_sslmode >= CONFIG_SSLMODE_VERIFY_CA ||
	    *cfg->backend_sslrootcert != '\0';
	if (readable(cfg->backend_sslrootcert, "root certificate file",
	    config_origin(cfg, CONFIG_BACKEND_SSLROOTCERT), err, errlen) != 0 ||
	    readable(cfg->backend_sslcert, "certificate file",
	    config_origin(cfg, CONFIG_BACKEND_SSLCERT), err, errlen) != 0 ||
	    readable(cfg->backend_sslkey, "private key file",
	    config_origin(cfg, CONFIG_BACKEND_SSLKEY), err, errlen) != 0)
		goto fail;
	if (*cfg->backend_sslrootcert != '\0' &&
	    SSL_CTX_load_verify_locations(ctx, cfg->backend_sslrootcert,
	    NULL) != 1) {
		tlsfile_fail_load(err, errlen, "root certificate file",
		    cfg->backend_sslrootcert,
		    config_origin(cfg, CONFIG_BACKEND_SSLROOTCERT));
		goto fail;
	}
	if (trust_load_crls(SSL_CTX_get_cert_store(ctx), cfg->backend_sslcrl,
	    config_origin(cfg, CONFIG_BACKEND_SSLCRL), cfg->backend_sslcrldir,
	    config_origin(cfg, CONFIG_BACKEND_SSLCRLDIR), err, errlen) != 0)
		goto fail;
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
	    NULL);

	if (*cfg->backend_sslcert != '\0') {
		if (tlsfile_check_key_permissions(cfg->backend_sslkey, err,
		    errlen) != 0) {
			prefix_origin(cfg, CONFIG_BACKEND_SSLKEY, err, errlen);
			goto fail;
		}
		if (SSL_CTX_use_certificate_chain_file(ctx,
		    cfg->backend_sslcert) != 1) {
			tlsfile_fail_load(err, errlen, "certificate file",
			    cfg->backend_sslcert,
			    config_origin(cfg, CONFIG_BACKEND_SSLCERT));
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, cfg->backend_sslkey,
		    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) !=
		    1) {
			ERR_clear_error();
			snprintf(err, errlen, "%s: private key file \"%s\" is "
			    "not an unencrypted PEM key matching certificate "
			    "file \"%s\"", config_origin(cfg,
			    CONFIG_BACKEND_SSLKEY), cfg->backend_sslkey,
			    cfg->backend_sslcert);
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *
backend_tls_new(SSL_CTX *ctx, const struct config *cfg)
{
	const char	*host = cfg->backend_host;
	unsigned char	 addr[sizeof(struct in6_addr)];
	bool		 is_ip;
	SSL		*ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	is_ip = inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1;
	/* libpq sends SNI for host names only, never for addresses. */
	if (cfg->backend_sslsni && !is_ip)
		SSL_set_tlsext_host_name(ssl, host);
	if (cfg->backend_sslmode == CONFIG_SSLMODE_VERIFY_FULL) {
		X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

		if (is_ip)
			X509_VERIFY_PARAM_set1_ip_asc(param, host);
		else
			SSL_set1_host(ssl, host);
	}
	return ssl;
}

void
backend_tls_describe(SSL *ssl, char *buf, size_t len)
{
	long	vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

	buf[0] = '\0';
	if (vr != X509_V_OK)
		snprintf(buf, len, "server certificate verification failed: "
		    "%s", X509_verify_cert_error_string(vr));
	tls_error_list(buf, len);
	if (buf[0] == '\0')
		snprintf(buf, len, "the backend closed the connection during "
		    "the TLS handshake");
}
