/*
 * backend_tls: TLS towards the backend.  The checks follow libpq: require
 * verifies nothing unless a root certificate is given (then it acts as
 * verify-ca), verify-ca checks the chain, verify-full also the host name;
 * SNI is sent for host names unless backend_sslsni is off.  On top of
 * libpq: backend_sslcertfingerprint pins the backend's certificate.
 */
#include <arpa/inet.h>

#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "backend_tls.h"
#include "config.h"
#include "fingerprint.h"
#include "log.h"
#include "tls.h"
#include "tlsfile.h"
#include "trust.h"

/* Where verify_backend() leaves why a pinned certificate was refused. */
static int	pin_report_index = -1;

/* backend_sslpassword for OpenSSL, noting whether the key asked for it. */
struct key_password {
	const char	*password;
	bool		 asked;
};

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

static int
password_cb(char *buf, int size, int rwflag, void *arg)
{
	struct key_password	*kp = arg;
	size_t			 len;

	(void)rwflag;
	if (kp == NULL || size <= 0)
		return -1;
	kp->asked = true;
	len = strlen(kp->password);
	/* libpq's rule: an empty sslpassword is no password at all. */
	if (len == 0 || len > (size_t)size)
		return -1;
	memcpy(buf, kp->password, len);
	return (int)len;
}

static void
free_report(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/*
 * The backend's certificate, checked in place of OpenSSL's verification:
 * the chain (and host name) as libpq would when a root is given, then, in
 * any case, the leaf's SHA-256 against backend_sslcertfingerprint.  With
 * sslmode = require and no root the pin is the whole verification, which
 * is what a legacy server's self-signed certificate needs.
 */
static int
verify_backend(X509_STORE_CTX *xs, void *arg)
{
	const struct config	*cfg = arg;
	SSL			*ssl = X509_STORE_CTX_get_ex_data(xs,
				    SSL_get_ex_data_X509_STORE_CTX_idx());
	X509			*leaf = X509_STORE_CTX_get0_cert(xs);
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0;
	char			 got[FINGERPRINT_TEXT_LEN];
	char			 want[2][FINGERPRINT_TEXT_LEN], *report;
	size_t			 rlen = 512 + 2 * FINGERPRINT_TEXT_LEN;

	if ((cfg->backend_sslmode >= CONFIG_SSLMODE_VERIFY_CA ||
	    *cfg->backend_sslrootcert != '\0') && X509_verify_cert(xs) <= 0)
		return 0;
	if (leaf == NULL || X509_digest(leaf, EVP_sha256(), md, &mdlen) != 1 ||
	    mdlen != FINGERPRINT_LEN) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	for (size_t i = 0; i < cfg->backend_npins; i++)
		if (memcmp(md, cfg->backend_pins[i], FINGERPRINT_LEN) == 0)
			return 1;
	X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
	fingerprint_format(md, got, sizeof(got));
	for (size_t i = 0; i < 2 && i < cfg->backend_npins; i++)
		fingerprint_format(cfg->backend_pins[i], want[i],
		    sizeof(want[i]));
	if (ssl != NULL && pin_report_index >= 0 &&
	    (report = malloc(rlen)) != NULL) {
		snprintf(report, rlen, "the backend's certificate does not "
		    "match backend_sslcertfingerprint: it presented SHA256 "
		    "Fingerprint=%s, expected %s%s%s%s", got, want[0],
		    cfg->backend_npins > 1 ? " or " : "",
		    cfg->backend_npins > 1 ? want[1] : "",
		    cfg->backend_npins > 2 ? " (or another of the list)" : "");
		free(SSL_get_ex_data(ssl, pin_report_index));
		if (SSL_set_ex_data(ssl, pin_report_index, report) != 1)
			free(report);
	}
	return 0;
}

SSL_CTX *
backend_tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	struct key_password	 kp = { cfg->backend_sslpassword, false };
	SSL_CTX			*ctx;
	bool			 verify;
	char			 fp[FINGERPRINT_TEXT_LEN], subj[256];
	int			 rc;

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
	if (cfg->backend_npins > 0) {
		if (pin_report_index < 0 && (pin_report_index =
		    SSL_get_ex_new_index(0, "pgsslgate pin report", NULL, NULL,
		    free_report)) < 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		verify = true;
		SSL_CTX_set_cert_verify_callback(ctx, verify_backend,
		    (void *)cfg);
		log_info("backend_sslcertfingerprint: the backend's certificate "
		    "must have one of %zu SHA-256 fingerprint%s%s", cfg->backend_npins,
		    cfg->backend_npins == 1 ? "" : "s", *cfg->backend_sslrootcert ?
		    ", and chain to backend_sslrootcert" : " (no root: the pin is "
		    "the verification)");
	}
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
		SSL_CTX_set_default_passwd_cb(ctx, password_cb);
		SSL_CTX_set_default_passwd_cb_userdata(ctx, &kp);
		rc = SSL_CTX_use_PrivateKey_file(ctx, cfg->backend_sslkey,
		    SSL_FILETYPE_PEM);
		SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
		if (rc != 1 && kp.asked) {
			ERR_clear_error();
			snprintf(err, errlen, "%s: private key file \"%s\" is "
			    "encrypted and %s", config_origin(cfg,
			    CONFIG_BACKEND_SSLKEY), cfg->backend_sslkey,
			    *cfg->backend_sslpassword == '\0' ?
			    "backend_sslpassword is not set" :
			    "backend_sslpassword does not decrypt it (wrong "
			    "password?)");
			goto fail;
		}
		if (rc != 1 || SSL_CTX_check_private_key(ctx) != 1) {
			ERR_clear_error();
			snprintf(err, errlen, "%s: private key file \"%s\" is "
			    "not a PEM key matching certificate file \"%s\"",
			    config_origin(cfg, CONFIG_BACKEND_SSLKEY),
			    cfg->backend_sslkey, cfg->backend_sslcert);
			goto fail;
		}
		trust_fingerprint(SSL_CTX_get0_certificate(ctx), fp, sizeof(fp));
		trust_name(X509_get_subject_name(SSL_CTX_get0_certificate(ctx)),
		    subj, sizeof(subj));
		log_info("backend_sslcert \"%s\": client certificate \"%s\" "
		    "SHA256 Fingerprint=%s%s", cfg->backend_sslcert, subj, fp,
		    kp.asked ? " (key decrypted with backend_sslpassword)" : "");
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

	const char	*pin = ssl != NULL && pin_report_index >= 0 ?
			    SSL_get_ex_data(ssl, pin_report_index) : NULL;

	buf[0] = '\0';
	if (vr == X509_V_ERR_APPLICATION_VERIFICATION && pin != NULL)
		snprintf(buf, len, "%s", pin);
	else if (vr != X509_V_OK)
		snprintf(buf, len, "server certificate verification failed: "
		    "%s", X509_verify_cert_error_string(vr));
	tls_error_list(buf, len);
	if (buf[0] == '\0')
		snprintf(buf, len, "the backend closed the connection during "
		    "the TLS handshake");
}
