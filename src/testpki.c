/*
 * testpki: the test PKI behind --make-test-pki.  Every certificate is made
 * here with OpenSSL's API, so the result does not depend on an openssl
 * command line or its configuration file.  ECDSA P-256 keys: fast to make
 * and accepted by every libpq and PostgreSQL the gate is used with.
 */
#include <sys/stat.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fingerprint.h"
#include "testpki.h"
#include "tls.h"
#include "trust.h"

#define DAY		(24L * 3600)
#define CA_DAYS		3650
#define LEAF_DAYS	825	/* the most some clients accept for a leaf */
#define CRL_DAYS	365
#define MAX_USERS	32
#define MAX_NAMES	32

enum kind {
	KIND_ROOT,
	KIND_INTERMEDIATE,
	KIND_SERVER,
	KIND_CLIENT,
};

/* One certificate with its key; issuer NULL for a self-signed one. */
struct pki_cert {
	X509		*cert;
	EVP_PKEY	*key;
};

static int
fail(char *err, size_t errlen, const char *what)
{
	char	reason[256] = "";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(err, errlen, "could not make the test PKI: %s%s%s", what,
	    reason[0] ? ": " : "", reason);
	return -1;
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;
	int		 rc;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return rc == 1 ? 0 : -1;
}

/* A random positive 63-bit serial number, as CAs are asked to use. */
static int
set_serial(X509 *cert)
{
	BIGNUM	*bn = BN_new();
	int	 rc = -1;

	if (bn != NULL && BN_rand(bn, 63, BN_RAND_TOP_ONE,
	    BN_RAND_BOTTOM_ANY) == 1 &&
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL)
		rc = 0;
	BN_free(bn);
	return rc;
}

/*
 * A certificate for cn, valid from `from` to `until` seconds from now,
 * signed by issuer (itself when issuer is NULL).  san is the
 * subjectAltName of a server certificate.
 */
static int
make_cert(struct pki_cert *out, const char *cn, enum kind kind,
    const struct pki_cert *issuer, long from, long until, const char *san)
{
	static const char *const constraints[] = {
		[KIND_ROOT] = "critical,CA:TRUE",
		[KIND_INTERMEDIATE] = "critical,CA:TRUE,pathlen:0",
		[KIND_SERVER] = "critical,CA:FALSE",
		[KIND_CLIENT] = "critical,CA:FALSE",
	};
	bool		 ca = kind == KIND_ROOT || kind == KIND_INTERMEDIATE;
	X509		*cert, *signer;
	X509_NAME	*name;

	memset(out, 0, sizeof(*out));
	if ((out->key = EVP_EC_gen("P-256")) == NULL ||
	    (out->cert = cert = X509_new()) == NULL)
		return -1;
	name = X509_get_subject_name(cert);
	if (X509_set_version(cert, X509_VERSION_3) != 1 ||
	    set_serial(cert) != 0 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"pgsslgate test PKI", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(cert, issuer != NULL ?
	    X509_get_subject_name(issuer->cert) : name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(cert), from) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert), until) == NULL ||
	    X509_set_pubkey(cert, out->key) != 1)
		return -1;
	signer = issuer != NULL ? issuer->cert : cert;
	if (add_ext(cert, signer, NID_basic_constraints, constraints[kind]) ||
	    add_ext(cert, signer, NID_key_usage, ca ?
	    "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
	    add_ext(cert, signer, NID_subject_key_identifier, "hash") ||
	    add_ext(cert, signer, NID_authority_key_identifier,
	    "keyid:always"))
		return -1;
	if (kind == KIND_SERVER && (add_ext(cert, signer, NID_ext_key_usage,
	    "serverAuth") || add_ext(cert, signer, NID_subject_alt_name, san)))
		return -1;
	if (kind == KIND_CLIENT && add_ext(cert, signer, NID_ext_key_usage,
	    "clientAuth"))
		return -1;
	if (X509_sign(cert, issuer != NULL ? issuer->key : out->key,
	    EVP_sha256()) == 0)
		return -1;
	return 0;
}

static void
free_cert(struct pki_cert *c)
{
	X509_free(c->cert);
	EVP_PKEY_free(c->key);
	c->cert = NULL;
	c->key = NULL;
}

/* The root's CRL, revoking one certificate. */
static X509_CRL *
make_crl(const struct pki_cert *root, const X509 *revoked)
{
	X509_CRL	*crl = X509_CRL_new();
	X509_REVOKED	*r = NULL;
	ASN1_TIME	*now = X509_gmtime_adj(NULL, -3600);
	ASN1_TIME	*next = X509_gmtime_adj(NULL, CRL_DAYS * DAY);
	ASN1_INTEGER	*number = ASN1_INTEGER_new();
	bool		 ok = false;

	if (crl == NULL || now == NULL || next == NULL || number == NULL ||
	    ASN1_INTEGER_set(number, 1) != 1 ||
	    X509_CRL_set_version(crl, 1) != 1 ||	/* v2 */
	    X509_CRL_set_issuer_name(crl,
	    X509_get_subject_name(root->cert)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, now) != 1 ||
	    X509_CRL_set1_nextUpdate(crl, next) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1 ||
	    (r = X509_REVOKED_new()) == NULL ||
	    X509_REVOKED_set_serialNumber(r,
	    (ASN1_INTEGER *)X509_get0_serialNumber(revoked)) != 1 ||
	    X509_REVOKED_set_revocationDate(r, now) != 1 ||
	    X509_CRL_add0_revoked(crl, r) != 1)
		goto out;
	r = NULL;
	if (X509_CRL_sort(crl) != 1 ||
	    X509_CRL_sign(crl, root->key, EVP_sha256()) == 0)
		goto out;
	ok = true;
out:
	X509_REVOKED_free(r);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(number);
	if (!ok) {
		X509_CRL_free(crl);
		return NULL;
	}
	return crl;
}

/* What is written, in order; the file names are fixed but the users'. */
struct pki_file {
	char		 name[NAME_MAX + 1];
	const char	*what;
	mode_t		 mode;
	X509		*certs[2];	/* PEM certificates, in this order */
	EVP_PKEY	*key;
	X509_CRL	*crl;
};

static int
write_file(const char *dir, const struct pki_file *f, char *err,
    size_t errlen)
{
	char	 path[PATH_MAX];
	FILE	*fp;
	int	 fd, ok = 1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, f->name) >=
	    sizeof(path)) {
		snprintf(err, errlen, "directory name too long");
		return -1;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, f->mode)) < 0 ||
	    fchmod(fd, f->mode) != 0 || (fp = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "could not create \"%s\": %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (int i = 0; i < 2 && f->certs[i] != NULL; i++)
		ok &= PEM_write_X509(fp, f->certs[i]);
	if (f->key != NULL)
		ok &= PEM_write_PrivateKey(fp, f->key, NULL, NULL, 0, NULL,
		    NULL);
	if (f->crl != NULL)
		ok &= PEM_write_X509_CRL(fp, f->crl);
	if (fclose(fp) != 0 || !ok) {
		ERR_clear_error();
		snprintf(err, errlen, "could not write \"%s\"", path);
		return -1;
	}
	return 0;
}

/* User names become file names and CNs: keep them plain. */
static bool
plain_word(const char *s, const char *extra)
{
	if (*s == '\0' || strlen(s) > 64 || *s == '.' || *s == '-')
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return false;
	return true;
}

/* "DNS:localhost,IP:127.0.0.1,IP:::1" plus each extra name. */
static int
build_san(char *const *names, size_t nnames, char *san, size_t len,
    char *err, size_t errlen)
{
	unsigned char	addr[16];
	size_t		n;

	n = (size_t)snprintf(san, len, "DNS:localhost,IP:127.0.0.1,IP:::1");
	for (size_t i = 0; i < nnames; i++) {
		bool	ip = inet_pton(AF_INET, names[i], addr) == 1 ||
			    inet_pton(AF_INET6, names[i], addr) == 1;

		if (!ip && !plain_word(names[i], ".-*_")) {
			snprintf(err, errlen, "\"%s\" is not a host name or "
			    "address", names[i]);
			return -1;
		}
		n += (size_t)snprintf(san + n, len - n, ",%s:%s",
		    ip ? "IP" : "DNS", names[i]);
		if (n >= len) {
			snprintf(err, errlen, "too many names");
			return -1;
		}
	}
	return 0;
}

static void
print_usage(FILE *out, const char *dir, const struct pki_file *files,
    size_t nfiles, const char *user, const struct pki_cert *root,
    const struct pki_cert *server)
{
	char	fp[FINGERPRINT_TEXT_LEN];

	fprintf(out, "Test PKI written to %s (not for production: the CA keys "
	    "are beside the certificates):\n\n", dir);
	for (size_t i = 0; i < nfiles; i++)
		fprintf(out, "  %-28s %s\n", files[i].name, files[i].what);
	trust_fingerprint(root->cert, fp, sizeof(fp));
	fprintf(out, "\nroot.crt     SHA256 Fingerprint=%s\n", fp);
	trust_fingerprint(server->cert, fp, sizeof(fp));
	fprintf(out, "server leaf  SHA256 Fingerprint=%s\n", fp);
	fprintf(out, "\nThe gate, with client certificates checked against the "
	    "root and its CRL:\n\n"
	    "  pgsslgate -c ssl_cert_file=%s/server.crt "
	    "-c ssl_key_file=%s/server.key \\\n"
	    "      -c ssl_ca_file=%s/root.crt -c ssl_crl_file=%s/root.crl "
	    "-c clientcert=verify-full \\\n"
	    "      -c backend_host=127.0.0.1 -c backend_port=5432\n\n",
	    dir, dir, dir, dir);
	fprintf(out, "A libpq client (psql) checking the gate's certificate and "
	    "presenting its own:\n\n"
	    "  psql \"host=localhost port=6432 user=%s sslmode=verify-full "
	    "sslrootcert=%s/root.crt sslcert=%s/client-%s.crt "
	    "sslkey=%s/client-%s.key\"\n\n", user, dir, dir, user, dir, user);
	fprintf(out, "client-revoked, client-expired and client-rogue in place "
	    "of client-%s are refused.\n", user);
}

int
testpki_make(const char *dir_arg, char *const *names, size_t nnames,
    char *const *users, size_t nusers, FILE *out, char *err, size_t errlen)
{
	static char *const	 default_user[] = { "postgres" };
	struct pki_cert		 root = { 0 }, inter = { 0 }, server = { 0 };
	struct pki_cert		 clients[MAX_USERS], revoked = { 0 };
	struct pki_cert		 expired = { 0 }, rogue = { 0 };
	struct pki_cert		 rogue_client = { 0 };
	struct pki_file		 files[2 * MAX_USERS + 16];
	X509_CRL		*crl = NULL;
	char			 dir[PATH_MAX], san[4096], cn[128];
	size_t			 nfiles = 0;
	struct stat		 st;
	int			 rc = -1;

	memset(clients, 0, sizeof(clients));
	memset(files, 0, sizeof(files));
	if (nusers == 0) {
		users = default_user;
		nusers = 1;
	}
	if (nusers > MAX_USERS || nnames > MAX_NAMES) {
		snprintf(err, errlen, "at most %d users and %d names", MAX_USERS,
		    MAX_NAMES);
		return -1;
	}
	for (size_t i = 0; i < nusers; i++)
		if (!plain_word(users[i], "._-")) {
			snprintf(err, errlen, "user name \"%s\" must be letters, "
			    "digits, '.', '_' or '-' (it names files)",
			    users[i]);
			return -1;
		}
	if (build_san(names, nnames, san, sizeof(san), err, errlen) != 0)
		return -1;
	if (mkdir(dir_arg, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "could not create directory \"%s\": %s",
		    dir_arg, strerror(errno));
		return -1;
	}
	if (realpath(dir_arg, dir) == NULL) {
		snprintf(err, errlen, "directory \"%s\": %s", dir_arg,
		    strerror(errno));
		return -1;
	}

#define ADD(n, w, m) do {						\
		snprintf(files[nfiles].name, sizeof(files[0].name), "%s", n); \
		files[nfiles].what = (w);				\
		files[nfiles].mode = (m);				\
		nfiles++;						\
	} while (0)
	ADD("root.crt", "root CA: clients' sslrootcert, the gate's "
	    "ssl_ca_file", 0644);
	ADD("root.key", "root CA's key", 0600);
	ADD("intermediate.crt", "intermediate CA, signed by the root; it "
	    "signed the server certificate", 0644);
	ADD("intermediate.key", "intermediate CA's key", 0600);
	ADD("server.crt", "ssl_cert_file: the server leaf (localhost, "
	    "127.0.0.1, ::1 and the names given), then the intermediate", 0644);
	ADD("server.key", "ssl_key_file: the server leaf's key", 0600);
	for (size_t i = 0; i < nusers; i++) {
		snprintf(cn, sizeof(cn), "client-%s.crt", users[i]);
		ADD(cn, "client certificate, CN = the user name, signed by the "
		    "root", 0644);
		snprintf(cn, sizeof(cn), "client-%s.key", users[i]);
		ADD(cn, "its key", 0600);
	}
	ADD("client-revoked.crt", "client certificate revoked by root.crl",
	    0644);
	ADD("client-revoked.key", "its key", 0600);
	ADD("root.crl", "ssl_crl_file: the root's CRL, revoking "
	    "client-revoked.crt", 0644);
	ADD("client-expired.crt", "client certificate that expired "
	    "yesterday", 0644);
	ADD("client-expired.key", "its key", 0600);
	ADD("rogue-ca.crt", "a CA nothing trusts", 0644);
	ADD("client-rogue.crt", "client certificate signed by the rogue CA",
	    0644);
	ADD("client-rogue.key", "its key", 0600);
#undef ADD

	/* All or nothing: look before writing anything. */
	for (size_t i = 0; i < nfiles; i++) {
		char	path[PATH_MAX];

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    files[i].name) >= sizeof(path)) {
			snprintf(err, errlen, "directory name too long");
			return -1;
		}
		if (lstat(path, &st) == 0) {
			snprintf(err, errlen, "\"%s\" exists; refusing to "
			    "overwrite it (use an empty or new directory)",
			    path);
			return -1;
		}
	}

	ERR_clear_error();
	if (make_cert(&root, "pgsslgate test root CA", KIND_ROOT, NULL, -3600,
	    CA_DAYS * DAY, NULL) != 0 ||
	    make_cert(&inter, "pgsslgate test intermediate CA",
	    KIND_INTERMEDIATE, &root, -3600, CA_DAYS * DAY, NULL) != 0 ||
	    make_cert(&server, "localhost", KIND_SERVER, &inter, -3600,
	    LEAF_DAYS * DAY, san) != 0) {
		rc = fail(err, errlen, "the CA and server certificates");
		goto out;
	}
	for (size_t i = 0; i < nusers; i++)
		if (make_cert(&clients[i], users[i], KIND_CLIENT, &root, -3600,
		    LEAF_DAYS * DAY, NULL) != 0) {
			rc = fail(err, errlen, "a client certificate");
			goto out;
		}
	if (make_cert(&revoked, users[0], KIND_CLIENT, &root, -3600,
	    LEAF_DAYS * DAY, NULL) != 0 ||
	    make_cert(&expired, users[0], KIND_CLIENT, &root, -30 * DAY, -DAY,
	    NULL) != 0 ||
	    make_cert(&rogue, "rogue CA", KIND_ROOT, NULL, -3600,
	    CA_DAYS * DAY, NULL) != 0 ||
	    make_cert(&rogue_client, users[0], KIND_CLIENT, &rogue, -3600,
	    LEAF_DAYS * DAY, NULL) != 0 ||
	    (crl = make_crl(&root, revoked.cert)) == NULL) {
		rc = fail(err, errlen, "the test client certificates");
		goto out;
	}

	{
		size_t	k = 0;

		files[k++].certs[0] = root.cert;
		files[k++].key = root.key;
		files[k++].certs[0] = inter.cert;
		files[k++].key = inter.key;
		files[k].certs[0] = server.cert;
		files[k++].certs[1] = inter.cert;
		files[k++].key = server.key;
		for (size_t i = 0; i < nusers; i++) {
			files[k++].certs[0] = clients[i].cert;
			files[k++].key = clients[i].key;
		}
		files[k++].certs[0] = revoked.cert;
		files[k++].key = revoked.key;
		files[k++].crl = crl;
		files[k++].certs[0] = expired.cert;
		files[k++].key = expired.key;
		files[k++].certs[0] = rogue.cert;
		files[k++].certs[0] = rogue_client.cert;
		files[k++].key = rogue_client.key;
	}
	for (size_t i = 0; i < nfiles; i++)
		if (write_file(dir, &files[i], err, errlen) != 0)
			goto out;
	print_usage(out, dir, files, nfiles, users[0], &root, &server);
	rc = 0;
out:
	free_cert(&root);
	free_cert(&inter);
	free_cert(&server);
	for (size_t i = 0; i < MAX_USERS; i++)
		free_cert(&clients[i]);
	free_cert(&revoked);
	free_cert(&expired);
	free_cert(&rogue);
	free_cert(&rogue_client);
	X509_CRL_free(crl);
	return rc;
}
