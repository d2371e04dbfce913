/*
 * check: the parts of --check that start-up does not do.  Start-up builds
 * the snapshot (every file, chain, key and CRL is checked there); this adds
 * a test connection to the backend, over TLS when backend_sslmode asks,
 * and compares the certificate it presents with the gate's own.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "backend_tls.h"
#include "check.h"
#include "config.h"
#include "gate.h"
#include "log.h"
#include "pgproto.h"
#include "tls.h"

/* Connect to a; 0 and the socket in *fdp (when not NULL), or an errno. */
static int
try_connect(const struct backend_addr *a, int timeout_ms, int *fdp)
{
	struct pollfd	pfd;
	socklen_t	len = sizeof(int);
	int		fd, err = 0;

	if ((fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		return errno;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
		err = errno;
		if (err == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) != 1)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) != 0)
				err = errno;
		}
	}
	if (err == 0 && fdp != NULL) {
		*fdp = fd;
		return 0;
	}
	close(fd);
	return err;
}

/*
 * SCRAM channel binding (tls-server-end-point) covers the certificate the
 * client sees, which through the gate is the gate's; PostgreSQL checks it
 * against its own.  Unless the two are the same, every TLS client that
 * binds (libpq's default channel_binding=prefer) would be refused.
 */
static void
compare_certs(const struct snapshot *snap, SSL *ssl)
{
	X509	*mine = SSL_CTX_get0_certificate(snap->tls);
	X509	*theirs = SSL_get0_peer_certificate(ssl);
	char	 fp_mine[TLS_FINGERPRINT_LEN], fp_theirs[TLS_FINGERPRINT_LEN];

	tls_cert_fingerprint(mine, fp_mine, sizeof(fp_mine));
	tls_cert_fingerprint(theirs, fp_theirs, sizeof(fp_theirs));
	if (tls_same_cert(mine, theirs))
		log_info("backend %s presents the gate's own certificate "
		    "(SHA-256 %s): SCRAM channel binding holds end to end",
		    snap->route.backend_name, fp_mine);
	else
		log_warn("backend %s presents a certificate (SHA-256 %s) other "
		    "than the gate's ssl_cert_file (SHA-256 %s): TLS clients "
		    "that use SCRAM channel binding (libpq's channel_binding = "
		    "prefer, the default, or require) will be refused; they "
		    "must connect with channel_binding=disable, or the gate "
		    "must serve the backend's certificate and key",
		    snap->route.backend_name, fp_theirs, fp_mine);
}

/* SSLRequest and a TLS handshake on a connected socket, as a session would. */
static void
check_tls(const struct snapshot *snap, int fd)
{
	const struct config	*cfg = snap->cfg;
	struct timeval		 tv;
	uint8_t			 req[8], answer = 0;
	char			 why[512];
	bool			 must = cfg->backend_sslmode >=
				    CONFIG_SSLMODE_REQUIRE;
	SSL			*ssl;

	tv.tv_sec = cfg->backend_connect_timeout / 1000;
	tv.tv_usec = (cfg->backend_connect_timeout % 1000) * 1000;
	if (fcntl(fd, F_SETFL, 0) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		log_warn("backend %s: %s", snap->route.backend_name, strerror(errno));
		return;
	}
	pgproto_put32(req, sizeof(req));
	pgproto_put32(req + 4, PGPROTO_SSL_REQUEST_CODE);
	if (send(fd, req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req) ||
	    recv(fd, &answer, 1, 0) != 1 || answer != PGPROTO_SSL_ACCEPT) {
		if (must)
			log_warn("backend %s: no TLS (answer to the SSL request: "
			    "%s), but backend_sslmode = %s requires it",
			    snap->route.backend_name, answer == PGPROTO_SSL_DECLINE ?
			    "N" : "none", config_sslmode_name(cfg->backend_sslmode));
		else
			log_info("backend %s does not offer TLS; sessions go "
			    "to it in plaintext", snap->route.backend_name);
		return;
	}
	if ((ssl = backend_tls_new(snap->backend_tls, cfg)) == NULL ||
	    SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
		backend_tls_describe(ssl, why, sizeof(why));
		if (must)
			log_warn("backend %s: TLS handshake failed: %s",
			    snap->route.backend_name, why);
		else
			log_info("backend %s: TLS handshake failed (sessions "
			    "go on in plaintext): %s", snap->route.backend_name, why);
		SSL_free(ssl);
		ERR_clear_error();
		return;
	}
	log_info("backend %s: %s %s", snap->route.backend_name, SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
	if (snap->tls != NULL)
		compare_certs(snap, ssl);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	ERR_clear_error();
}

void
check_backend(const struct snapshot *snap)
{
	int	err = 0, fd = -1;

	for (int i = 0; i < snap->route.nbackend; i++)
		if ((err = try_connect(&snap->route.backend[i],
		    snap->cfg->backend_connect_timeout, &fd)) == 0)
			break;
	if (err == 0) {
		log_info("backend %s accepts connections", snap->route.backend_name);
		if (snap->backend_tls != NULL)
			check_tls(snap, fd);
		close(fd);
	} else
		log_warn("backend %s: could not connect: %s (sessions will be "
		    "refused with 08006 until it is up)", snap->route.backend_name,
		    strerror(err));
}
