/*
 * fakebackend: a fake PostgreSQL server for the backend-TLS tests, to play
 * the backends a real PostgreSQL cannot: one that injects bytes after 'S',
 * one whose errors carry no SQLSTATE, one whose TLS handshake fails.
 *
 *   fakebackend [--cert FILE --key FILE] MODE PORT
 *
 * Listens on 127.0.0.1:PORT and serves one connection after another until
 * killed.  Every connection is logged on stdout ("connection N: ..."): the
 * packets it sent and what was done, for the tests to read.  What MODE
 * changes:
 *
 *   s-plus-bytes       SSLRequest: 'S' and an ErrorResponse in one write,
 *                      then wait and log what the peer sends (a ClientHello
 *                      would mean it went on with TLS regardless)
 *   s-then-close       SSLRequest: 'S', then read what the peer sends (its
 *                      ClientHello) and close: a failed TLS handshake
 *   s-then-silence     SSLRequest: 'S', then read what the peer sends and
 *                      never answer, until the peer gives up and closes (or
 *                      a minute passes): a handshake that hangs
 *   error-no-sqlstate  StartupMessage: an ErrorResponse with only S and M
 *                      fields (no SQLSTATE, as very old servers send), then
 *                      close
 *   deaf               StartupMessage: AuthenticationOk and ReadyForQuery,
 *                      then read and drop everything, answer nothing, and
 *                      at the peer's end of stream stay open (for a
 *                      minute): a backend that never finishes
 *   tls                SSLRequest: 'S', then a real TLS handshake with
 *                      --cert and --key, logging the SNI name and ALPN the
 *                      peer offered; then what it sends over TLS
 *
 * In every mode, unless said otherwise above: SSLRequest and GSSENCRequest
 * get 'N'; a StartupMessage gets ErrorResponse 28000 "fakebackend: ..." and
 * the connection is closed; a CancelRequest is logged and the connection
 * closed.
 *
 * Prints "listening on 127.0.0.1:PORT" once ready.  Exits 2 on bad usage,
 * 1 if it cannot listen.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "wire.h"

#define SSL_REQUEST_CODE	80877103u
#define GSSENC_REQUEST_CODE	80877104u
#define CANCEL_REQUEST_CODE	80877102u
#define PACKET_MAX		10000
#define IO_TIMEOUT_S		10

enum mode {
	MODE_S_PLUS_BYTES,
	MODE_S_THEN_CLOSE,
	MODE_S_THEN_SILENCE,
	MODE_ERROR_NO_SQLSTATE,
	MODE_DEAF,
	MODE_TLS,
};

static const struct {
	const char	*name;
	enum mode	 mode;
} modes[] = {
	{ "s-plus-bytes", MODE_S_PLUS_BYTES },
	{ "s-then-close", MODE_S_THEN_CLOSE },
	{ "s-then-silence", MODE_S_THEN_SILENCE },
	{ "error-no-sqlstate", MODE_ERROR_NO_SQLSTATE },
	{ "deaf", MODE_DEAF },
	{ "tls", MODE_TLS },
};

/* One client connection: plaintext until ssl is set. */
struct peer {
	int		 fd;
	SSL		*ssl;
	unsigned	 n;		/* connection number, from 1 */
};

static const char *progname = "fakebackend";
static enum mode mode;
static SSL_CTX *tls_ctx;

static void usage(void)
{
	fprintf(stderr,
	    "usage: %s [--cert FILE --key FILE] MODE PORT\n"
	    "modes: s-plus-bytes s-then-close s-then-silence error-no-sqlstate deaf\n"
	    "       tls\n",
	    progname);
	exit(2);
}

static void say(const struct peer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(const struct peer *p, const char *fmt, ...)
{
	va_list ap;

	printf("connection %u: ", p->n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void ssl_errors(char *buf, size_t len)
{
	unsigned long e;
	size_t n;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		n = strlen(buf);
		if (n > 0 && n + 2 < len) {
			strcpy(buf + n, "; ");
			n += 2;
		}
		ERR_error_string_n(e, buf + n, len - n);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "%s", errno != 0 ? strerror(errno) : "EOF");
}

/* ---- I/O: the socket, or TLS over it -------------------------------------- */

/* Read up to len bytes: >0 bytes, 0 on EOF, -1 on error or timeout. */
static ssize_t peer_read(struct peer *p, unsigned char *buf, size_t len)
{
	ssize_t n;

	if (p->ssl != NULL) {
		int r = SSL_read(p->ssl, buf, (int)len);

		if (r > 0)
			return r;
		return SSL_get_error(p->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	}
	do
		n = recv(p->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

static bool peer_write(struct peer *p, const unsigned char *buf, size_t len)
{
	if (p->ssl != NULL)
		return SSL_write(p->ssl, buf, (int)len) == (int)len;
	while (len > 0) {
		ssize_t n = send(p->fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Exactly len bytes; false on EOF, error or timeout (logged). */
static bool read_full(struct peer *p, unsigned char *buf, size_t len,
    const char *what)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = peer_read(p, buf + got, len - got);

		if (n <= 0) {
			if (n == 0 && got == 0)
				say(p, "closed by the peer%s%s",
				    p->ssl != NULL ? " (over TLS)" : "",
				    what[0] != '\0' ? what : "");
			else
				say(p, "%s after %zu of %zu bytes%s%s",
				    n == 0 ? "EOF" : (errno == EAGAIN ||
				    errno == EWOULDBLOCK) ? "timed out" :
				    "read error", got, len,
				    p->ssl != NULL ? " (over TLS)" : "", what);
			return false;
		}
		got += (size_t)n;
	}
	return true;
}

/* ---- messages --------------------------------------------------------------- */

static size_t put_field(unsigned char *p, char type, const char *s)
{
	size_t n = strlen(s) + 1;

	p[0] = (unsigned char)type;
	memcpy(p + 1, s, n);
	return n + 1;
}

/* ErrorResponse: S=FATAL, C=sqlstate (none if NULL), M=msg. */
static size_t build_error(unsigned char *p, const char *sqlstate,
    const char *msg)
{
	size_t n = 5;

	p[0] = 'E';
	n += put_field(p + n, 'S', "FATAL");
	if (sqlstate != NULL)
		n += put_field(p + n, 'C', sqlstate);
	n += put_field(p + n, 'M', msg);
	p[n++] = '\0';
	put_u32(p + 1, (uint32_t)(n - 1));
	return n;
}

/* The key=value pairs of a StartupMessage body, for the log. */
static void describe_startup(const unsigned char *body, size_t len, char *out,
    size_t outlen)
{
	size_t i = 0, o = 0;

	out[0] = '\0';
	while (i < len && body[i] != '\0' && o + 1 < outlen) {
		const char *k = (const char *)body + i;
		size_t kl = strnlen(k, len - i);
		const char *v;
		int w;

		if (i + kl + 1 >= len)
			break;
		v = k + kl + 1;
		if (i + kl + 1 + strnlen(v, len - i - kl - 1) >= len)
			break;
		w = snprintf(out + o, outlen - o, " %s=%s", k, v);
		if (w < 0 || (size_t)w >= outlen - o)
			break;
		o += (size_t)w;
		i += kl + 1 + strlen(v) + 1;
	}
}

/* After 'S': what does the peer send, if anything, within a while? */
static void log_what_follows(struct peer *p)
{
	unsigned char buf[4096];
	ssize_t n = peer_read(p, buf, sizeof(buf));

	if (n > 0)
		say(p, "then the peer sent %zd bytes, first byte 0x%02x%s", n,
		    buf[0], buf[0] == 0x16 ? " (a TLS handshake record)" : "");
	else if (n == 0)
		say(p, "then the peer closed the connection without sending "
		    "anything");
	else
		say(p, "then nothing from the peer (%s)", strerror(errno));
}

/* Read and drop everything until the peer closes; log how long it took. */
static void wait_for_close(struct peer *p)
{
	unsigned char buf[4096];
	struct timespec t0, t1;
	int tries = 6;		/* IO_TIMEOUT_S each */
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((n = peer_read(p, buf, sizeof(buf))) != 0 && tries > 0)
		if (n < 0 && errno != EINTR)
			tries--;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	say(p, "%s after %.1f s of silence", n == 0 ? "the peer closed" :
	    "gave up waiting for the peer to close",
	    (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void tls_accept(struct peer *p)
{
	const unsigned char *alpn;
	unsigned int alpnlen;
	const char *sni;
	char err[512];

	if ((p->ssl = SSL_new(tls_ctx)) == NULL || SSL_set_fd(p->ssl, p->fd) != 1) {
		ssl_errors(err, sizeof(err));
		say(p, "SSL_new failed: %s", err);
		return;
	}
	if (SSL_accept(p->ssl) != 1) {
		ssl_errors(err, sizeof(err));
		say(p, "TLS handshake failed: %s", err);
		SSL_free(p->ssl);
		p->ssl = NULL;
		return;
	}
	sni = SSL_get_servername(p->ssl, TLSEXT_NAMETYPE_host_name);
	SSL_get0_alpn_selected(p->ssl, &alpn, &alpnlen);
	say(p, "TLS handshake done: %s, SNI %s, ALPN %.*s",
	    SSL_get_version(p->ssl), sni != NULL ? sni : "none",
	    alpnlen > 0 ? (int)alpnlen : 4,
	    alpnlen > 0 ? (const char *)alpn : "none");
}

/* Answer an SSLRequest.  Returns false when the connection is done. */
static bool answer_sslrequest(struct peer *p)
{
	unsigned char buf[512];
	size_t n;

	switch (mode) {
	case MODE_S_PLUS_BYTES:
		buf[0] = 'S';
		n = 1 + build_error(buf + 1, "XX000", "fakebackend: plaintext "
		    "bytes injected right after 'S'");
		if (!peer_write(p, buf, n)) {
			say(p, "could not send 'S' and the ErrorResponse");
			return false;
		}
		say(p, "answered 'S' and a %zu-byte ErrorResponse in one write",
		    n - 1);
		log_what_follows(p);
		return false;
	case MODE_S_THEN_CLOSE:
		if (!peer_write(p, (const unsigned char *)"S", 1))
			return false;
		say(p, "answered 'S'");
		log_what_follows(p);
		say(p, "closing: no TLS handshake here");
		return false;
	case MODE_S_THEN_SILENCE:
		if (!peer_write(p, (const unsigned char *)"S", 1))
			return false;
		say(p, "answered 'S'");
		log_what_follows(p);
		wait_for_close(p);
		return false;
	case MODE_TLS:
		if (!peer_write(p, (const unsigned char *)"S", 1))
			return false;
		say(p, "answered 'S'");
		tls_accept(p);
		return p->ssl != NULL;
	default:
		if (!peer_write(p, (const unsigned char *)"N", 1))
			return false;
		say(p, "answered 'N'");
		return true;
	}
}

/* deaf: a session, then nothing, and no close at the peer's end. */
static void play_deaf(struct peer *p)
{
	static const unsigned char hello[] = {
		'R', 0, 0, 0, 8, 0, 0, 0, 0,	/* AuthenticationOk */
		'Z', 0, 0, 0, 5, 'I',		/* ReadyForQuery, idle */
	};
	unsigned char buf[4096];
	size_t total = 0;
	ssize_t n;
	int tries = 6;		/* IO_TIMEOUT_S each */

	if (!peer_write(p, hello, sizeof(hello)))
		return;
	say(p, "answered AuthenticationOk and ReadyForQuery; deaf from now on");
	while ((n = peer_read(p, buf, sizeof(buf))) != 0 && tries > 0) {
		if (n > 0)
			total += (size_t)n;
		else if (errno != EINTR)
			tries--;
	}
	say(p, "%s after %zu bytes; not closing", n == 0 ?
	    "end of stream from the peer" : "no end from the peer", total);
	sleep(60);
}

static void answer_startup(struct peer *p, const char *desc)
{
	unsigned char buf[512];
	char msg[300];
	size_t n;

	if (mode == MODE_DEAF) {
		play_deaf(p);
		return;
	}
	if (mode == MODE_ERROR_NO_SQLSTATE) {
		n = build_error(buf, NULL, "fakebackend: refused, and no "
		    "SQLSTATE to say why");
		say(p, "answered an ErrorResponse without SQLSTATE (S and M "
		    "only) and closed");
	} else {
		snprintf(msg, sizeof(msg), "fakebackend: StartupMessage%s "
		    "received %s", desc, p->ssl != NULL ? "over TLS" :
		    "in plaintext");
		n = build_error(buf, "28000", msg);
		say(p, "answered ErrorResponse 28000 and closed");
	}
	(void)peer_write(p, buf, n);
}

/* Serve one connection: packet after packet until it is over. */
static void serve(struct peer *p)
{
	static unsigned char pkt[PACKET_MAX];
	char desc[600];

	for (;;) {
		uint32_t len, code;
		const char *where = p->ssl != NULL ? " over TLS" : "";

		if (!read_full(p, pkt, 4, ""))
			return;
		len = get_u32(pkt);
		if (len < 8 || len > PACKET_MAX) {
			say(p, "a packet length of %u%s: not a startup packet",
			    len, where);
			return;
		}
		if (!read_full(p, pkt + 4, len - 4, " in a startup packet"))
			return;
		code = get_u32(pkt + 4);
		switch (code) {
		case SSL_REQUEST_CODE:
			say(p, "SSLRequest%s", where);
			if (p->ssl != NULL || !answer_sslrequest(p))
				return;
			break;
		case GSSENC_REQUEST_CODE:
			say(p, "GSSENCRequest%s", where);
			if (p->ssl != NULL || !peer_write(p,
			    (const unsigned char *)"N", 1))
				return;
			say(p, "answered 'N'");
			break;
		case CANCEL_REQUEST_CODE:
			say(p, "CancelRequest%s", where);
			return;
		default:
			describe_startup(pkt + 8, len - 8, desc, sizeof(desc));
			say(p, "StartupMessage%s protocol %u.%u%s", where,
			    code >> 16, code & 0xffff, desc);
			answer_startup(p, desc);
			return;
		}
	}
}

static int listen_on(const char *portstr)
{
	struct sockaddr_in sin;
	char *end;
	long port = strtol(portstr, &end, 10);
	int fd, one = 1;

	if (*portstr == '\0' || *end != '\0' || port < 1 || port > 65535)
		usage();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(fd, 16) != 0) {
		fprintf(stderr, "%s: cannot listen on 127.0.0.1:%ld: %s\n",
		    progname, port, strerror(errno));
		exit(1);
	}
	printf("listening on 127.0.0.1:%ld\n", port);
	fflush(stdout);
	return fd;
}

/* The tls mode's server context: any ALPN is taken, so that it shows. */
static int alpn_any(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (inlen < 1 || in[0] + 1u > inlen)
		return SSL_TLSEXT_ERR_NOACK;
	*out = in + 1;
	*outlen = in[0];
	return SSL_TLSEXT_ERR_OK;
}

static void make_tls_ctx(const char *cert, const char *key)
{
	char err[512];

	if (cert == NULL || key == NULL) {
		fprintf(stderr, "%s: mode tls needs --cert and --key\n",
		    progname);
		exit(2);
	}
	if ((tls_ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_errors(err, sizeof(err));
		fprintf(stderr, "%s: cannot load %s, %s: %s\n", progname, cert,
		    key, err);
		exit(1);
	}
	SSL_CTX_set_alpn_select_cb(tls_ctx, alpn_any, NULL);
}

int main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL, *modename = NULL, *port = NULL;
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	unsigned n = 0;
	size_t i;
	int lfd;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--cert") == 0 && a + 1 < argc)
			cert = argv[++a];
		else if (strcmp(argv[a], "--key") == 0 && a + 1 < argc)
			key = argv[++a];
		else if (argv[a][0] == '-')
			usage();
		else if (modename == NULL)
			modename = argv[a];
		else if (port == NULL)
			port = argv[a];
		else
			usage();
	}
	if (port == NULL)
		usage();
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(modename, modes[i].name) == 0)
			break;
	if (i == sizeof(modes) / sizeof(modes[0]))
		usage();
	mode = modes[i].mode;
	if (mode == MODE_TLS)
		make_tls_ctx(cert, key);
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(port);

	for (;;) {
		struct peer p = { .fd = -1, .ssl = NULL, .n = ++n };

		do
			p.fd = accept(lfd, NULL, NULL);
		while (p.fd < 0 && errno == EINTR);
		if (p.fd < 0) {
			fprintf(stderr, "%s: accept: %s\n", progname,
			    strerror(errno));
			return 1;
		}
		setsockopt(p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(p.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		say(&p, "accepted");
		serve(&p);
		if (p.ssl != NULL) {
			(void)SSL_shutdown(p.ssl);
			SSL_free(p.ssl);
		}
		ERR_clear_error();
		close(p.fd);
		say(&p, "closed");
	}
}
