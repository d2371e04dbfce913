/*
 * tls: the server-side OpenSSL context.  Everything is checked once, at
 * start-up, so that a connection never finds out about a bad file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "fingerprint.h"
#include "log.h"
#include "metrics.h"
#include "pgproto.h"
#include "tls.h"
#include "tlsfile.h"
#include "trust.h"

/* One OpenSSL error, appended to buf as "; reason". */
static void
append_error(unsigned long e, char *buf, size_t len)
{
	char	reason[256];
	size_t	n = strlen(buf);

	ERR_error_string_n(e, reason, sizeof(reason));
	if (n + 3 < len)
		snprintf(buf + n, len - n, "%s%s", n ? "; " : "", reason);
}

void
tls_error_list(char *buf, size_t len)
{
	unsigned long	e;

	while ((e = ERR_get_error()) != 0)
		append_error(e, buf, len);
}

static int
fail_ssl(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format a message, then append every queued OpenSSL error to it. */
static int
fail_ssl(char *err, size_t errlen, const char *fmt, ...)
{
	char	 detail[512] = "";
	va_list	 ap;

	tls_error_list(detail, sizeof(detail));
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (detail[0] != '\0') {
		size_t	n = strlen(err);

		snprintf(err + n, errlen - n, ": %s", detail);
	}
	return -1;
}

/* The names a verify-full client can use: SANs, or the CN without any. */
static void
host_names(X509 *cert, char *buf, size_t len)
{
	GENERAL_NAMES	*sans = X509_get_ext_d2i(cert, NID_subject_alt_name,
			    NULL, NULL);
	size_t		 n = 0;

	buf[0] = '\0';
	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME	*gn = sk_GENERAL_NAME_value(sans, i);
		char			 ip[64] = "";
		const unsigned char	*d;

		if (n >= len)
			break;
		if (gn->type == GEN_DNS) {
			n += (size_t)snprintf(buf + n, len - n, "%sDNS:%.*s",
			    n ? ", " : "", ASN1_STRING_length(gn->d.dNSName),
			    (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
		} else if (gn->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(gn->d.iPAddress);
			if (ASN1_STRING_length(gn->d.iPAddress) == 4)
				inet_ntop(AF_INET, d, ip, sizeof(ip));
			else if (ASN1_STRING_length(gn->d.iPAddress) == 16)
				inet_ntop(AF_INET6, d, ip, sizeof(ip));
			else
				snprintf(ip, sizeof(ip), "(malformed)");
			n += (size_t)snprintf(buf + n, len - n, "%sIP:%s",
			    n ? ", " : "", ip);
		}
	}
	GENERAL_NAMES_free(sans);
	if (n == 0) {
		X509_NAME	*name = X509_get_subject_name(cert);
		int		 i = X509_NAME_get_index_by_NID(name,
				    NID_commonName, -1);
		ASN1_STRING	*cn = i >= 0 ? X509_NAME_ENTRY_get_data(
				    X509_NAME_get_entry(name, i)) : NULL;

		if (cn != NULL)
			snprintf(buf, len, "CN:%.*s (no subjectAltName)",
			    ASN1_STRING_length(cn),
			    (const char *)ASN1_STRING_get0_data(cn));
		else
			snprintf(buf, len, "none");
	}
}

/*
 * ssl_cert_file must hold the leaf first, then each issuer in turn, each
 * signed by the next.  A client that trusts only the root needs every
 * intermediate, in order; a wrong order is the most common chain mistake,
 * so say so at start-up, along with the dates and host names.
 */
static void
check_chain(SSL_CTX *ctx, const struct config *cfg, struct trust_info *info)
{
	const char	*path = cfg->ssl_cert_file;
	X509		*leaf = SSL_CTX_get0_certificate(ctx);
	STACK_OF(X509)	*chain = NULL;
	X509		*prev = leaf;
	char		 subj[256], issuer[256], notafter[64], names[512];
	char		 fp[FINGERPRINT_TEXT_LEN];
	time_t		 expires, now = time(NULL);
	int		 n, misordered = 0;

	if (leaf == NULL)
		return;
	SSL_CTX_get0_chain_certs(ctx, &chain);
	n = chain != NULL ? sk_X509_num(chain) : 0;
	for (int i = 0; i < n; i++) {
		X509	*next = sk_X509_value(chain, i);

		trust_name(X509_get_subject_name(prev), subj, sizeof(subj));
		trust_name(X509_get_subject_name(next), issuer, sizeof(issuer));
		if (X509_check_issued(next, prev) != X509_V_OK &&
		    ++misordered)
			log_warn("ssl_cert_file \"%s\": certificate %d (\"%s\") "
			    "is not the issuer of certificate %d (\"%s\"); "
			    "order the file leaf first, then each issuer",
			    path, i + 2, issuer, i + 1, subj);
		else if (X509_verify(prev, X509_get0_pubkey(next)) != 1 &&
		    ++misordered)
			log_warn("ssl_cert_file \"%s\": certificate %d "
			    "(\"%s\") has the name of the issuer of certificate "
			    "%d (\"%s\") but did not sign it; is an old "
			    "intermediate left in the file?", path, i + 2,
			    issuer, i + 1, subj);
		ERR_clear_error();
		if (X509_cmp_current_time(X509_get0_notAfter(next)) < 0)
			log_warn("ssl_cert_file \"%s\": intermediate "
			    "certificate \"%s\" has expired", path, issuer);
		prev = next;
	}
	if (n > 0 && misordered == 0)
		log_info("ssl_cert_file \"%s\": %d certificates in order, leaf "
		    "first, each signed by the next", path, n + 1);
	if (n == 0 && X509_check_issued(leaf, leaf) != X509_V_OK)
		log_info("ssl_cert_file \"%s\" holds no intermediate "
		    "certificates; clients must have the issuer of the leaf "
		    "in their sslrootcert", path);

	trust_name(X509_get_subject_name(leaf), subj, sizeof(subj));
	trust_name(X509_get_issuer_name(leaf), issuer, sizeof(issuer));
	trust_time_text(X509_get0_notAfter(leaf), notafter, sizeof(notafter));
	host_names(leaf, names, sizeof(names));
	log_info("serving certificate \"%s\" issued by \"%s\", valid until "
	    "%s, for %s, with %d intermediate certificate%s", subj, issuer,
	    notafter, names, n, n == 1 ? "" : "s");
	trust_fingerprint(leaf, fp, sizeof(fp));
	log_info("ssl_cert_file \"%s\": leaf certificate \"%s\" SHA256 "
	    "Fingerprint=%s", path, subj, fp);
	expires = trust_time_t(X509_get0_notAfter(leaf));
	info->cert_not_after = expires;
	if (expires <= now)
		log_warn("ssl_cert_file \"%s\": the certificate expired on %s; "
		    "clients that verify it will refuse to connect", path,
		    notafter);
	else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
		log_warn("ssl_cert_file \"%s\": the certificate is not valid "
		    "yet (check the clock)", path);
	else if (cfg->ssl_cert_expiry_warning > 0 &&
	    expires - now < cfg->ssl_cert_expiry_warning)
		log_warn("ssl_cert_file \"%s\": the certificate expires in %lld "
		    "days, on %s (ssl_cert_expiry_warning = %d days)", path,
		    (long long)((expires - now) / 86400), notafter,
		    cfg->ssl_cert_expiry_warning / 86400);
}

void
tls_key_clear(struct tls_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	key->pkey = NULL;
}

/* PostgreSQL's prompt, which %p stands for in ssl_passphrase_command. */
#define TLS_PASSPHRASE_PROMPT	"Enter PEM pass phrase:"

/* One key load's passphrase: what OpenSSL asked and the command did. */
struct passphrase {
	const struct config	*cfg;
	bool			 may_run;	/* not on a plain reload */
	bool			 asked;		/* the key is encrypted */
	bool			 ran;		/* and the command printed one */
	int			 status;	/* its wait status */
	size_t			 len;
	char			 pass[1024];	/* OpenSSL's PEM_BUFSIZE */
	char			 failure[512];	/* why there is none */
};

/* A wait status in words: "exit status 3", "terminated by signal 9". */
static void
status_text(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "terminated by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "wait status %d", status);
}

/* %p becomes the prompt and %% a percent sign, as in PostgreSQL. */
static int
expand_command(const char *cmd, char *out, size_t len)
{
	size_t	n = 0;

	for (const char *p = cmd; *p != '\0'; p++) {
		const char	*add = p;
		size_t		 alen = 1;

		if (p[0] == '%' && p[1] == 'p') {
			add = TLS_PASSPHRASE_PROMPT;
			alen = sizeof(TLS_PASSPHRASE_PROMPT) - 1;
			p++;
		} else if (p[0] == '%' && p[1] == '%')
			p++;
		if (n + alen >= len)
			return -1;
		memcpy(out + n, add, alen);
		n += alen;
	}
	out[n] = '\0';
	return 0;
}

/* Run ssl_passphrase_command: the first line of its output, its status. */
static void
run_passphrase_command(struct passphrase *pp)
{
	const char	*cmd = pp->cfg->ssl_passphrase_command;
	char		 line[4096], how[64];
	FILE		*f;
	int		 c;

	if (expand_command(cmd, line, sizeof(line)) != 0) {
		snprintf(pp->failure, sizeof(pp->failure), "the command is "
		    "too long");
		return;
	}
	fflush(NULL);
	if ((f = popen(line, "r")) == NULL) {
		snprintf(pp->failure, sizeof(pp->failure), "could not run it: "
		    "%s", strerror(errno));
		return;
	}
	pp->len = 0;
	while ((c = fgetc(f)) != EOF && c != '\n')
		if (pp->len < sizeof(pp->pass))
			pp->pass[pp->len++] = (char)c;
	/* Read it all, so that the command never blocks on a full pipe. */
	while (c != EOF)
		c = fgetc(f);
	pp->status = pclose(f);
	if (pp->status != 0) {
		OPENSSL_cleanse(pp->pass, sizeof(pp->pass));
		pp->len = 0;
		if (pp->status == -1)
			snprintf(how, sizeof(how), "%s", strerror(errno));
		else
			status_text(pp->status, how, sizeof(how));
		snprintf(pp->failure, sizeof(pp->failure), "the command "
		    "failed (%s)", how);
		return;
	}
	if (pp->len > 0 && pp->pass[pp->len - 1] == '\r')
		pp->len--;
	pp->ran = true;
}

/*
 * OpenSSL's pem_password_cb.  A command runs at most once per load: the
 * decoders may ask again for each key type they try.
 */
static int
passphrase_cb(char *buf, int size, int rwflag, void *arg)
{
	struct passphrase	*pp = arg;

	(void)rwflag;
	if (pp == NULL || size <= 0)
		return -1;
	if (!pp->asked) {
		pp->asked = true;
		if (!pp->may_run)
			return -1;
		if (*pp->cfg->ssl_passphrase_command == '\0') {
			snprintf(pp->failure, sizeof(pp->failure),
			    "ssl_passphrase_command is not set");
			return -1;
		}
		run_passphrase_command(pp);
	}
	if (!pp->ran)
		return -1;
	if (pp->len > (size_t)size)
		return -1;
	memcpy(buf, pp->pass, pp->len);
	return (int)pp->len;
}

static bool
same_file(const struct tls_key *a, const struct tls_key *b)
{
	return strcmp(a->path, b->path) == 0 && a->dev == b->dev &&
	    a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The key belongs to another certificate: say which one it was tried on. */
static void
key_mismatch(const char *subj, const struct config *cfg, char *err,
    size_t errlen)
{
	ERR_clear_error();
	snprintf(err, errlen, "private key file \"%s\" does not match "
	    "certificate file \"%s\", whose first certificate is \"%s\": "
	    "the file must start with the server's own certificate, then its "
	    "intermediates, and the key must be that certificate's",
	    cfg->ssl_key_file, cfg->ssl_cert_file, subj);
}

/*
 * A reload without ssl_passphrase_command_supports_reload: the encrypted
 * key loaded before serves on if its file is the same one, untouched.
 */
static int
keep_key(SSL_CTX *ctx, const struct config *cfg, const struct tls_key *prev,
    struct tls_key *key, const char *leaf_name, char *err, size_t errlen)
{
	ERR_clear_error();
	if (prev == NULL || prev->pkey == NULL || !same_file(prev, key)) {
		snprintf(err, errlen, "private key file \"%s\" needs a "
		    "passphrase and has changed since it was loaded; with "
		    "ssl_passphrase_command_supports_reload = off the "
		    "passphrase command is not run on a reload: restart "
		    "pgsslgate to load it, or set "
		    "ssl_passphrase_command_supports_reload = on",
		    cfg->ssl_key_file);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey(ctx, prev->pkey) != 1) {
		key_mismatch(leaf_name, cfg, err, errlen);
		return -1;
	}
	EVP_PKEY_up_ref(prev->pkey);
	key->pkey = prev->pkey;
	log_info("private key file \"%s\" is unchanged: keeping the key "
	    "decrypted before (ssl_passphrase_command_supports_reload = off)",
	    cfg->ssl_key_file);
	return 0;
}

/*
 * ssl_key_file, decrypted by ssl_passphrase_command when it is encrypted:
 * always at start, on a reload only with ..._supports_reload, as
 * PostgreSQL does; without it keep_key() decides.
 */
static int
load_key(SSL_CTX *ctx, const struct config *cfg, const struct tls_key *prev,
    struct tls_key *key, const char *leaf_name, char *err, size_t errlen)
{
	const char		*path = cfg->ssl_key_file;
	const char		*cmd = cfg->ssl_passphrase_command;
	struct passphrase	 pp;
	struct stat		 st;
	char			 how[64];
	int			 rc;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "could not access private key file "
		    "\"%s\": %s", path, strerror(errno));
		return -1;
	}
	snprintf(key->path, sizeof(key->path), "%s", path);
	key->dev = st.st_dev;
	key->ino = st.st_ino;
	key->size = st.st_size;
	key->mtime = st.st_mtim;

	memset(&pp, 0, sizeof(pp));
	pp.cfg = cfg;
	pp.may_run = prev == NULL || cfg->ssl_passphrase_command_supports_reload;
	SSL_CTX_set_default_passwd_cb(ctx, passphrase_cb);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, &pp);
	rc = SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	OPENSSL_cleanse(pp.pass, sizeof(pp.pass));
	if (rc == 1) {
		if (pp.asked) {
			key->pkey = SSL_CTX_get0_privatekey(ctx);
			EVP_PKEY_up_ref(key->pkey);
			log_info("private key file \"%s\": decrypted with the "
			    "passphrase from ssl_passphrase_command", path);
		}
		return 0;
	}
	if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
		key_mismatch(leaf_name, cfg, err, errlen);
		return -1;
	}
	if (!pp.asked)
		return fail_ssl(err, errlen, "could not load private key file "
		    "\"%s\" (%s; it must be a PEM key)", path,
		    config_origin(cfg, CONFIG_SSL_KEY_FILE));
	if (!pp.may_run)
		return keep_key(ctx, cfg, prev, key, leaf_name, err, errlen);
	if (*cmd == '\0') {
		ERR_clear_error();
		snprintf(err, errlen, "private key file \"%s\" is encrypted and "
		    "ssl_passphrase_command is not set: set it to a command "
		    "that prints the passphrase", path);
		return -1;
	}
	if (!pp.ran) {
		ERR_clear_error();
		snprintf(err, errlen, "ssl_passphrase_command \"%s\" (%s) gave "
		    "no passphrase for private key file \"%s\": %s", cmd,
		    config_origin(cfg, CONFIG_SSL_PASSPHRASE_COMMAND), path,
		    pp.failure);
		return -1;
	}
	status_text(pp.status, how, sizeof(how));
	return fail_ssl(err, errlen, "private key file \"%s\" could not be "
	    "decrypted with the passphrase from ssl_passphrase_command \"%s\" "
	    "(%s): wrong passphrase?", path, cmd, how);
}

/*
 * ALPN: "postgresql" when the client offers it.  A client that offers only
 * other protocols is not speaking to a PostgreSQL server on purpose, and is
 * refused as PostgreSQL 17 does.  No ALPN at all is fine here; client.c
 * refuses it only for direct SSL.
 */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const size_t	want = sizeof(PGPROTO_ALPN) - 1;

	(void)ssl;
	(void)arg;
	for (unsigned int i = 0; i < inlen; i += 1u + in[i]) {
		if (i + 1u + in[i] > inlen)
			break;
		if (in[i] == want && memcmp(in + i + 1, PGPROTO_ALPN, want) ==
		    0) {
			*out = in + i + 1;
			*outlen = in[i];
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int
proto_version(int v)
{
	switch (v) {
	case CONFIG_TLS_1_2:	return TLS1_2_VERSION;
	case CONFIG_TLS_1_3:	return TLS1_3_VERSION;
	default:		return 0;
	}
}

/*
 * The decryption side of every ticket a client offers while client
 * certificates are checked: never resume.  OpenSSL would otherwise take a
 * ticket it can decrypt without verifying anything, so a certificate that
 * has expired or been revoked since, or whose CN is not the user, would
 * get in.
 */
static SSL_TICKET_RETURN
refuse_ticket(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
    size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	(void)ssl;
	(void)sess;
	(void)keyname;
	(void)keyname_len;
	(void)status;
	(void)arg;
	return SSL_TICKET_RETURN_IGNORE;
}

/*
 * libpq never resumes a session, so by default no ticket is issued: a TLS
 * 1.3 server otherwise sends two NewSessionTicket messages after every
 * handshake (SSL_OP_NO_TICKET alone only makes them stateful ones, which
 * without a session cache no client can use), at a cost in CPU and bytes.
 * ssl_session_tickets = on issues one stateless ticket in TLS 1.3 and
 * RFC 5077 tickets in TLS 1.2, under keys of this context's own: a reload
 * makes new keys, and older tickets then fall back to a full handshake.
 *
 * Not while client certificates are checked (ssl_ca_file set, whatever
 * clientcert says): a resumed session skips verification, so the expiry,
 * the CRLs and clientcert = verify-full's CN would be checked only once,
 * at the full handshake.  Then nothing is issued and nothing resumed.
 */
static void
set_tickets(SSL_CTX *ctx, const struct config *cfg)
{
	static const unsigned char	sid_ctx[] = "pgsslgate";
	bool				certs = *cfg->ssl_ca_file != '\0';

	/* Resuming where client certificates are checked needs one. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (!cfg->ssl_session_tickets || certs) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_session_ticket_cb(ctx, NULL, refuse_ticket, NULL);
		if (cfg->ssl_session_tickets)
			log_info("ssl_session_tickets = on (%s) is not in effect: "
			    "client certificates are checked (ssl_ca_file is "
			    "set), and a resumed session would skip their "
			    "verification; every connection makes a full "
			    "handshake", config_origin(cfg,
			    CONFIG_SSL_SESSION_TICKETS));
		return;
	}
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 1);
}

SSL_CTX *
tls_server_ctx_new(const struct config *cfg, const struct tls_key *prev,
    struct tls_key *key_out, struct trust_info *info, char *err,
    size_t errlen)
{
	const char	*cert = cfg->ssl_cert_file, *key = cfg->ssl_key_file;
	char		 leaf_name[256];
	SSL_CTX		*ctx;

	ERR_clear_error();
	if (tlsfile_check_readable("certificate file", cert,
	    config_origin(cfg, CONFIG_SSL_CERT_FILE), err, errlen) != 0 ||
	    tlsfile_check_readable("private key file", key,
	    config_origin(cfg, CONFIG_SSL_KEY_FILE), err, errlen) != 0)
		return NULL;
	if (tlsfile_check_key_permissions(key, err, errlen) != 0)
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		fail_ssl(err, errlen, "could not create TLS context");
		return NULL;
	}

	SSL_CTX_set_min_proto_version(ctx,
	    proto_version(cfg->ssl_min_protocol_version));
	SSL_CTX_set_max_proto_version(ctx,
	    proto_version(cfg->ssl_max_protocol_version));
	/*
	 * Renegotiation and compression are attack surface with no use here.
	 * There is never a session cache; see set_tickets() for tickets.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	set_tickets(ctx, cfg);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);

	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		fail_ssl(err, errlen, "could not load server certificate file "
		    "\"%s\" (%s)", cert, config_origin(cfg,
		    CONFIG_SSL_CERT_FILE));
		goto fail;
	}
	/*
	 * Its name now: a key of another type (EC for an RSA certificate)
	 * loads into another slot, and then the context's "current"
	 * certificate is no longer this one.
	 */
	trust_name(X509_get_subject_name(SSL_CTX_get0_certificate(ctx)),
	    leaf_name, sizeof(leaf_name));
	if (load_key(ctx, cfg, prev, key_out, leaf_name, err, errlen) != 0)
		goto fail;
	if (SSL_CTX_check_private_key(ctx) != 1) {
		key_mismatch(leaf_name, cfg, err, errlen);
		goto fail;
	}
	log_info("private key file \"%s\": permissions accepted, matches the "
	    "certificate", key);
	if (SSL_CTX_set_cipher_list(ctx, cfg->ssl_ciphers) != 1) {
		fail_ssl(err, errlen, "ssl_ciphers \"%s\" (%s) selects no "
		    "usable cipher", cfg->ssl_ciphers,
		    config_origin(cfg, CONFIG_SSL_CIPHERS));
		goto fail;
	}
	if (SSL_CTX_set1_groups_list(ctx, cfg->ssl_ecdh_curve) != 1) {
		fail_ssl(err, errlen, "ssl_ecdh_curve \"%s\" (%s) is not a "
		    "known curve or group list", cfg->ssl_ecdh_curve,
		    config_origin(cfg, CONFIG_SSL_ECDH_CURVE));
		goto fail;
	}
	if (trust_configure(ctx, cfg, info, err, errlen) != 0)
		goto fail;
	check_chain(ctx, cfg, info);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * Common failures, by OpenSSL's reason code (never by its wording, which
 * changes between releases), with the words an operator needs.  The first
 * entry any queued error matches wins.
 */
static const struct {
	int			 reason;	/* in ERR_LIB_SSL */
	enum metrics_handshake	 kind;
	const char		*hint;
} tls_hints[] = {
	{ SSL_R_CERTIFICATE_VERIFY_FAILED, METRICS_HS_CLIENT_CERT, NULL },
	{ SSL_R_WRONG_VERSION_NUMBER, METRICS_HS_NOT_TLS, "the client did not "
	    "start a TLS handshake after its SSLRequest" },
	{ SSL_R_HTTP_REQUEST, METRICS_HS_NOT_TLS, "the client sent HTTP, not "
	    "the PostgreSQL protocol" },
	{ SSL_R_UNSUPPORTED_PROTOCOL, METRICS_HS_VERSION, "the client's TLS "
	    "versions are outside ssl_min_protocol_version.."
	    "ssl_max_protocol_version" },
	{ SSL_R_NO_SHARED_CIPHER, METRICS_HS_CIPHER, "the client offers no "
	    "cipher allowed by ssl_ciphers" },
	{ SSL_R_NO_SUITABLE_KEY_SHARE, METRICS_HS_CIPHER, "the client offers no "
	    "group allowed by ssl_ecdh_curve" },
	{ SSL_R_TLSV1_ALERT_UNKNOWN_CA, METRICS_HS_SERVER_CERT, "the client "
	    "does not trust the certificate's issuer: check the client's "
	    "sslrootcert, and that ssl_cert_file holds the leaf followed by "
	    "every intermediate" },
	{ SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN, METRICS_HS_SERVER_CERT,
	    "the client rejected the server certificate (its sslrootcert does "
	    "not lead to it, or the name does not match)" },
	{ SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, METRICS_HS_SERVER_CERT, "the "
	    "client rejected the server certificate" },
	{ SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, METRICS_HS_SERVER_CERT, "the "
	    "client says the server certificate has expired" },
	{ SSL_R_NO_APPLICATION_PROTOCOL, METRICS_HS_OTHER, "the client offered "
	    "ALPN protocols, none of them \"postgresql\"" },
	{ SSL_R_UNEXPECTED_EOF_WHILE_READING, METRICS_HS_EOF, "the client "
	    "closed the connection during the handshake" },
};

#define TLS_MAX_ERRORS	16

enum metrics_handshake
tls_describe_errors(char *buf, size_t len)
{
	unsigned long		 errs[TLS_MAX_ERRORS], e;
	size_t			 nerrs = 0, n;
	const char		*hint = NULL;
	enum metrics_handshake	 kind = METRICS_HS_OTHER;
	bool			 found = false;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		if (nerrs < TLS_MAX_ERRORS)
			errs[nerrs++] = e;
		append_error(e, buf, len);
	}
	for (size_t i = 0; !found &&
	    i < sizeof(tls_hints) / sizeof(tls_hints[0]); i++) {
		for (size_t j = 0; !found && j < nerrs; j++) {
			found = ERR_GET_LIB(errs[j]) == ERR_LIB_SSL &&
			    ERR_GET_REASON(errs[j]) == tls_hints[i].reason;
			if (found) {
				hint = tls_hints[i].hint;
				kind = tls_hints[i].kind;
			}
		}
	}
	n = strlen(buf);
	if (n == 0) {
		snprintf(buf, len, "the client closed the connection during "
		    "the handshake (a client that rejects the server "
		    "certificate does this too)");
		kind = METRICS_HS_EOF;
	} else if (hint != NULL)
		snprintf(buf + n, len - n, " (%s)", hint);
	return kind;
}

bool
tls_same_cert(X509 *a, X509 *b)
{
	unsigned char	*da = NULL, *db = NULL;
	int		 na, nb;
	bool		 same;

	if (a == NULL || b == NULL)
		return false;
	na = i2d_X509(a, &da);
	nb = i2d_X509(b, &db);
	same = na > 0 && na == nb && memcmp(da, db, (size_t)na) == 0;
	OPENSSL_free(da);
	OPENSSL_free(db);
	return same;
}

void
tls_cert_fingerprint(X509 *cert, char *buf, size_t len)
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	n = 0;
	size_t		off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &n) != 1) {
		snprintf(buf, len, "(none)");
		return;
	}
	for (unsigned int i = 0; i < n && off + 3 < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%02X",
		    i > 0 ? ":" : "", md[i]);
}
