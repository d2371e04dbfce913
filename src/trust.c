/*
 * trust: client-certificate verification.  PostgreSQL's semantics (CRLs
 * checked for the whole chain), with the diagnostics operators lack: a CRL
 * from a CA that is not trusted, a CA without a CRL, a CRL past its
 * nextUpdate, all reported by name before the first client is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "fingerprint.h"
#include "log.h"
#include "tlsfile.h"
#include "trust.h"

static int	report_index = -1;

void
trust_name(const X509_NAME *name, char *buf, size_t len)
{
	BIO	*bio = BIO_new(BIO_s_mem());
	int	 n;

	buf[0] = '\0';
	if (bio == NULL || name == NULL) {
		BIO_free(bio);
		return;
	}
	X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
	n = BIO_read(bio, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(bio);
}

void
trust_time_text(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO	*bio = BIO_new(BIO_s_mem());
	int	 n;

	snprintf(buf, len, "(none)");
	if (bio == NULL || t == NULL) {
		BIO_free(bio);
		return;
	}
	ASN1_TIME_print(bio, t);
	n = BIO_read(bio, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(bio);
}

time_t
trust_time_t(const ASN1_TIME *t)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

static void
serial_text(const X509 *cert, char *buf, size_t len)
{
	BIGNUM	*bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char	*hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	snprintf(buf, len, "0x%s", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

/*
 * OpenSSL calls this for every certificate of the client's chain.  The
 * verdict stays OpenSSL's; this only writes down, once, what failed and
 * on which certificate, so the log can say more than "verify failed".
 */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL	 *ssl;
	char	**slot, line[1024], subj[256], iss[256], serial[80];
	X509	 *cert = X509_STORE_CTX_get_current_cert(xs);
	X509	 *leaf = X509_STORE_CTX_get0_cert(xs);
	int	  err = X509_STORE_CTX_get_error(xs);
	int	  depth = X509_STORE_CTX_get_error_depth(xs);
	size_t	  n;

	if (ok)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	slot = ssl != NULL && report_index >= 0 ?
	    SSL_get_ex_data(ssl, report_index) : NULL;
	if (slot == NULL || *slot != NULL || cert == NULL)
		return ok;
	if (leaf == NULL)
		leaf = cert;

	/* First the certificate the client presented ... */
	trust_name(X509_get_subject_name(leaf), subj, sizeof(subj));
	trust_name(X509_get_issuer_name(leaf), iss, sizeof(iss));
	serial_text(leaf, serial, sizeof(serial));
	n = (size_t)snprintf(line, sizeof(line), "client certificate \"%s\" "
	    "(issuer \"%s\", serial %s): %s", subj, iss, serial,
	    X509_verify_cert_error_string(err));
	/* ... then, when it is not the culprit, the one in its chain that is. */
	if (n < sizeof(line) && depth > 0 && cert != leaf) {
		trust_name(X509_get_subject_name(cert), subj, sizeof(subj));
		serial_text(cert, serial, sizeof(serial));
		n += (size_t)snprintf(line + n, sizeof(line) - n, ", on the CA "
		    "certificate \"%s\" (serial %s) at depth %d of its chain",
		    subj, serial, depth);
	}
	trust_name(X509_get_issuer_name(cert), iss, sizeof(iss));
	if (n < sizeof(line) && err == X509_V_ERR_CERT_REVOKED)
		snprintf(line + n, sizeof(line) - n, " (CRL issued by \"%s\")",
		    iss);
	else if (n < sizeof(line) && (err == X509_V_ERR_UNABLE_TO_GET_CRL ||
	    err == X509_V_ERR_CRL_HAS_EXPIRED))
		snprintf(line + n, sizeof(line) - n, " (the CRL of \"%s\": "
		    "check ssl_crl_file / ssl_crl_dir)", iss);
	*slot = strdup(line);
	return ok;
}

void
trust_set_verify_report(SSL *ssl, char **slot)
{
	if (report_index >= 0)
		SSL_set_ex_data(ssl, report_index, slot);
}

void
trust_peer_subject(SSL *ssl, char *buf, size_t len)
{
	X509	*peer = SSL_get0_peer_certificate(ssl);

	buf[0] = '\0';
	if (peer != NULL)
		trust_name(X509_get_subject_name(peer), buf, len);
}

int
trust_peer_common_name(SSL *ssl, char *buf, size_t len)
{
	X509		*peer = SSL_get0_peer_certificate(ssl);
	X509_NAME	*name;
	ASN1_STRING	*data;
	unsigned char	*utf8 = NULL;
	int		 i, n;

	if (peer == NULL)
		return -1;
	name = X509_get_subject_name(peer);
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return -1;
	data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	if ((n = ASN1_STRING_to_UTF8(&utf8, data)) < 0)
		return -1;
	/* "alice\0.example" must not pass as "alice". */
	if ((size_t)n >= len || memchr(utf8, '\0', (size_t)n) != NULL) {
		OPENSSL_free(utf8);
		return -1;
	}
	memcpy(buf, utf8, (size_t)n);
	buf[n] = '\0';
	OPENSSL_free(utf8);
	return 0;
}

int
trust_peer_dn(SSL *ssl, char *buf, size_t len)
{
	X509	*peer = SSL_get0_peer_certificate(ssl);
	BIO	*bio;
	int	 n;

	if (peer == NULL || len < 2 || (bio = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	/* The flags PostgreSQL's be-secure-openssl.c uses for the DN. */
	X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0,
	    (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) |
	    ASN1_STRFLGS_UTF8_CONVERT);
	n = BIO_read(bio, buf, (int)len);
	BIO_free(bio);
	if (n <= 0 || (size_t)n >= len || memchr(buf, '\0', (size_t)n) != NULL)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* A CRL's name in a hashed directory: 8 hex digits, ".r", a number. */
static bool
crl_name(const char *name)
{
	const char	*dot = strchr(name, '.');

	return dot != NULL && dot - name == 8 && dot[1] == 'r';
}

/*
 * OpenSSL opens the entries of a hashed directory when a certificate
 * needs them, in the middle of a handshake: every entry it could open must
 * be a regular file (or a link to one), or a FIFO there would stop a
 * worker.  Other names OpenSSL never looks at.
 */
static int
check_crl_dir(const char *dir, const char *origin, char *err, size_t errlen)
{
	struct stat	 st;
	struct dirent	*de;
	DIR		*d;
	int		 rc = 0;

	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: CRL directory \"%s\" is not a "
		    "directory", origin, dir);
		return -1;
	}
	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "%s: could not open CRL directory "
		    "\"%s\": %s", origin, dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char	path[4096];

		if (!crl_name(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "%s: CRL directory \"%s\": "
			    "\"%s\" is not a regular file", origin, dir,
			    de->d_name);
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

/* Every CRL in a hashed directory, as `openssl rehash` names them. */
static void
load_dir_crls(const char *dir, STACK_OF(X509_CRL) *crls)
{
	DIR		*d = opendir(dir);
	struct dirent	*de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char		 path[4096];
		FILE		*f;
		X509_CRL	*crl;
		int		 fd;

		if (!crl_name(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* trust_load_crls() refused such entries; one may be new. */
		if ((fd = tlsfile_open_regular(path)) < 0)
			continue;
		if ((f = fdopen(fd, "r")) == NULL) {
			close(fd);
			continue;
		}
		while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL)
			if (!sk_X509_CRL_push(crls, crl))
				X509_CRL_free(crl);
		fclose(f);
	}
	ERR_clear_error();
	closedir(d);
}

/*
 * Say once, at start-up, what a client certificate is checked against,
 * and everything in it that will refuse clients for a reason other than
 * their own certificate.
 */
static void
log_trust(X509_STORE *store, const struct config *cfg, struct trust_info *info)
{
	STACK_OF(X509_OBJECT)	*objs = X509_STORE_get0_objects(store);
	STACK_OF(X509_CRL)	*crls = sk_X509_CRL_new_null();
	STACK_OF(X509)		*cas = sk_X509_new_null();
	bool			 checking = *cfg->ssl_crl_file != '\0' ||
				    *cfg->ssl_crl_dir != '\0';
	char			 name[256], when[64];
	char			 fp[FINGERPRINT_TEXT_LEN];

	if (crls == NULL || cas == NULL)
		goto out;
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_OBJECT	*o = sk_X509_OBJECT_value(objs, i);
		X509		*x = X509_OBJECT_get0_X509(o);
		X509_CRL	*c = X509_OBJECT_get0_X509_CRL(o);

		if (x != NULL && X509_up_ref(x) && !sk_X509_push(cas, x))
			X509_free(x);
		if (c != NULL && X509_CRL_up_ref(c) && !sk_X509_CRL_push(crls, c))
			X509_CRL_free(c);
	}
	if (*cfg->ssl_crl_dir != '\0')
		load_dir_crls(cfg->ssl_crl_dir, crls);

	for (int i = 0; i < sk_X509_num(cas); i++) {
		X509	*ca = sk_X509_value(cas, i);
		bool	 has_crl = false;

		trust_name(X509_get_subject_name(ca), name, sizeof(name));
		trust_time_text(X509_get0_notAfter(ca), when, sizeof(when));
		trust_fingerprint(ca, fp, sizeof(fp));
		log_info("client certificates: trusted CA \"%s\", valid until "
		    "%s, SHA256 Fingerprint=%s", name, when, fp);
		for (int j = 0; j < sk_X509_CRL_num(crls); j++)
			if (X509_NAME_cmp(X509_CRL_get_issuer(
			    sk_X509_CRL_value(crls, j)),
			    X509_get_subject_name(ca)) == 0)
				has_crl = true;
		if (checking && !has_crl)
			log_warn("client certificates: no CRL from trusted CA "
			    "\"%s\" in ssl_crl_file or ssl_crl_dir; revocation "
			    "is checked for the whole chain, so every client "
			    "certificate chain through this CA will be refused "
			    "(\"unable to get certificate CRL\")", name);
	}
	for (int j = 0; j < sk_X509_CRL_num(crls); j++) {
		X509_CRL	*crl = sk_X509_CRL_value(crls, j);
		const ASN1_TIME	*next = X509_CRL_get0_nextUpdate(crl);
		X509		*issuer = NULL;
		STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);

		trust_name(X509_CRL_get_issuer(crl), name, sizeof(name));
		trust_time_text(next, when, sizeof(when));
		if (info->ncrls < TRUST_MAX_CRLS) {
			snprintf(info->crls[info->ncrls].issuer,
			    sizeof(info->crls[0].issuer), "%s", name);
			info->crls[info->ncrls++].next_update =
			    trust_time_t(next);
		}
		for (int i = 0; i < sk_X509_num(cas); i++)
			if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
			    X509_get_subject_name(sk_X509_value(cas, i))) == 0)
				issuer = sk_X509_value(cas, i);
		if (issuer == NULL) {
			log_warn("client certificates: a CRL issued by \"%s\" "
			    "matches no certificate in ssl_ca_file \"%s\"; it "
			    "revokes nothing here (a CRL left over from a "
			    "previous CA?)", name, cfg->ssl_ca_file);
			continue;
		}
		if (X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1) {
			ERR_clear_error();
			log_warn("client certificates: the CRL issued by \"%s\" "
			    "is not signed by the CA of that name in "
			    "ssl_ca_file; certificates from it will be "
			    "refused", name);
		}
		if (next != NULL && X509_cmp_current_time(next) < 0)
			log_warn("client certificates: the CRL issued by \"%s\" "
			    "expired at %s (its next update); every client "
			    "certificate from that CA will be refused until a "
			    "fresh CRL is installed", name, when);
		log_info("client certificates: CRL from \"%s\", %d revoked, "
		    "next update %s", name, rev != NULL ?
		    sk_X509_REVOKED_num(rev) : 0, when);
	}
out:
	sk_X509_pop_free(cas, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
}

int
trust_load_crls(X509_STORE *store, const char *file, const char *file_origin,
    const char *dir, const char *dir_origin, char *err, size_t errlen)
{
	X509_LOOKUP	*lu;

	if (*file != '\0') {
		if (tlsfile_check_readable("CRL file", file, file_origin, err,
		    errlen) != 0)
			return -1;
		lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());
		if (lu == NULL || X509_load_crl_file(lu, file,
		    X509_FILETYPE_PEM) <= 0)
			return tlsfile_fail_load(err, errlen, "CRL file", file,
			    file_origin);
	}
	if (*dir != '\0') {
		if (check_crl_dir(dir, dir_origin, err, errlen) != 0)
			return -1;
		lu = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir());
		if (lu == NULL || X509_LOOKUP_add_dir(lu, dir,
		    X509_FILETYPE_PEM) != 1)
			return tlsfile_fail_load(err, errlen, "CRL directory", dir,
			    dir_origin);
	}
	/* As PostgreSQL: the leaf and every intermediate are checked. */
	if (*file != '\0' || *dir != '\0')
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
		    X509_V_FLAG_CRL_CHECK_ALL);
	return 0;
}

int
trust_configure(SSL_CTX *ctx, const struct config *cfg,
    struct trust_info *info, char *err, size_t errlen)
{
	X509_STORE		*store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_NAME)	*names;
	int			 mode;

	if (*cfg->ssl_ca_file == '\0')
		return 0;		/* no client certificates asked for */
	if (report_index < 0 && (report_index = SSL_get_ex_new_index(0,
	    "pgsslgate verify report", NULL, NULL, NULL)) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (tlsfile_check_readable("root certificate file", cfg->ssl_ca_file,
	    config_origin(cfg, CONFIG_SSL_CA_FILE), err, errlen) != 0)
		return -1;
	if (SSL_CTX_load_verify_locations(ctx, cfg->ssl_ca_file, NULL) != 1)
		return tlsfile_fail_load(err, errlen, "root certificate file",
		    cfg->ssl_ca_file, config_origin(cfg, CONFIG_SSL_CA_FILE));
	/* The CA names sent in CertificateRequest help clients choose. */
	if ((names = SSL_load_client_CA_file(cfg->ssl_ca_file)) == NULL)
		return tlsfile_fail_load(err, errlen, "root certificate file",
		    cfg->ssl_ca_file, config_origin(cfg, CONFIG_SSL_CA_FILE));
	SSL_CTX_set_client_CA_list(ctx, names);

	if (trust_load_crls(store, cfg->ssl_crl_file,
	    config_origin(cfg, CONFIG_SSL_CRL_FILE), cfg->ssl_crl_dir,
	    config_origin(cfg, CONFIG_SSL_CRL_DIR), err, errlen) != 0)
		return -1;

	/*
	 * A certificate is asked for, and a bad one refused in the handshake,
	 * whatever clientcert says, as PostgreSQL does once ssl_ca_file is
	 * set.  Its absence is not fatal here even when clientcert requires
	 * one: client.c refuses the StartupMessage then, with the FATAL that
	 * PostgreSQL sends, which drivers show; a handshake alert they turn
	 * into "broken pipe" or "connection closed".
	 */
	mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
	SSL_CTX_set_verify(ctx, mode, verify_cb);
	log_trust(store, cfg, info);
	return 0;
}

void
trust_fingerprint(X509 *cert, char *buf, size_t len)
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	n = 0;

	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &n) != 1 ||
	    n != FINGERPRINT_LEN) {
		ERR_clear_error();
		snprintf(buf, len, "?");
		return;
	}
	fingerprint_format(md, buf, len);
}
