/*
 * directssl: a TLS client for the integration tests, with the direct SSL
 * negotiation of PostgreSQL 17 (sslnegotiation=direct), which the libpq 15
 * that pqprobe uses does not have.
 *
 *   directssl [options] HOST PORT USER
 *
 * Connects, starts the TLS handshake at once (no SSLRequest first, unless
 * --sslrequest), then sends a StartupMessage (protocol 3.0, USER, database
 * postgres) over TLS and reads the server's messages until ReadyForQuery.
 *
 *   --alpn LIST        offer these ALPN protocols, comma-separated
 *                      (default: postgresql, as PostgreSQL 17's libpq does)
 *   --no-alpn          offer no ALPN extension at all
 *   --sslrequest       send an SSLRequest first and start TLS after 'S'
 *                      (what libpq does with sslnegotiation=postgres)
 *   --then-sslrequest  once TLS is up, send an SSLRequest over TLS instead
 *                      of the StartupMessage and expect the server to close
 *   --then-gssencrequest  the same with a GSSENCRequest
 *   --cafile FILE      verify the server's certificate against FILE, and its
 *                      host name against the SNI name (default: no checks)
 *   --servername NAME  the SNI name (default: localhost; '' sends none)
 *   --timeout S        give up after S seconds (default 10)
 *
 * Prints what it sent and saw, then exits with:
 *
 *   0  ReadyForQuery ('Z') came (--then-*: the server closed, as it should)
 *   1  an ErrorResponse came: its fields and "sqlstate=XXXXX" are printed,
 *      with "(in plaintext)" when it came before any TLS, then how the
 *      server closed the connection (which it must do within the timeout)
 *      (--then-*: the server answered instead of closing)
 *   2  no TLS session: the handshake failed (the OpenSSL errors are
 *      printed), or the SSLRequest was declined
 *   3  the server closed the connection before ReadyForQuery
 *   4  bad usage, or a local error (connect, out of memory)
 *   5  nothing decisive within the timeout
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "wire.h"

#define SSL_REQUEST_CODE	80877103u
#define GSSENC_REQUEST_CODE	80877104u
#define PROTOCOL_3_0		0x00030000u
#define DEFAULT_TIMEOUT_S	10
#define PACKET_MAX		1024
#define INBUF_MAX		65536
#define ALPN_MAX		256

enum exit_code {
	EXIT_READY = 0,
	EXIT_ERROR_RESPONSE = 1,
	EXIT_NO_TLS = 2,
	EXIT_CLOSED = 3,
	EXIT_LOCAL = 4,
	EXIT_TIMEOUT = 5,
};

enum then_what {
	THEN_STARTUP,
	THEN_SSLREQUEST,
	THEN_GSSENCREQUEST,
};

struct options {
	const char	*host;
	const char	*port;
	const char	*user;
	const char	*alpn;		/* NULL: no ALPN extension */
	const char	*cafile;	/* NULL: no verification */
	const char	*servername;	/* "": no SNI */
	bool		 sslrequest;
	enum then_what	 then;
	int		 timeout_s;
};

/* Bytes received and not yet parsed into messages. */
struct inbuf {
	unsigned char	data[INBUF_MAX];
	size_t		len;
};

static const char *progname = "directssl";
static double deadline;

static void usage(void)
{
	fprintf(stderr,
	    "usage: %s [--alpn LIST | --no-alpn] [--sslrequest]\n"
	    "          [--then-sslrequest | --then-gssencrequest]\n"
	    "          [--cafile FILE] [--servername NAME] [--timeout S]\n"
	    "          HOST PORT USER\n", progname);
	exit(EXIT_LOCAL);
}

static void parse_args(int argc, char **argv, struct options *o)
{
	int i, npos = 0;

	memset(o, 0, sizeof(*o));
	o->alpn = "postgresql";
	o->servername = "localhost";
	o->then = THEN_STARTUP;
	o->timeout_s = DEFAULT_TIMEOUT_S;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-alpn") == 0) {
			o->alpn = NULL;
		} else if (strcmp(a, "--sslrequest") == 0) {
			o->sslrequest = true;
		} else if (strcmp(a, "--then-sslrequest") == 0) {
			o->then = THEN_SSLREQUEST;
		} else if (strcmp(a, "--then-gssencrequest") == 0) {
			o->then = THEN_GSSENCREQUEST;
		} else if (strcmp(a, "--alpn") == 0 && v != NULL) {
			o->alpn = v;
			i++;
		} else if (strcmp(a, "--cafile") == 0 && v != NULL) {
			o->cafile = v;
			i++;
		} else if (strcmp(a, "--servername") == 0 && v != NULL) {
			o->servername = v;
			i++;
		} else if (strcmp(a, "--timeout") == 0 && v != NULL) {
			char *end;
			long t = strtol(v, &end, 10);

			if (*v == '\0' || *end != '\0' || t < 1 || t > 3600)
				usage();
			o->timeout_s = (int)t;
			i++;
		} else if (a[0] == '-' && a[1] == '-') {
			usage();
		} else {
			switch (npos++) {
			case 0: o->host = a; break;
			case 1: o->port = a; break;
			case 2: o->user = a; break;
			default: usage();
			}
		}
	}
	if (npos != 3)
		usage();
}

/* ---- packets ---------------------------------------------------------- */

static size_t build_request(unsigned char *p, uint32_t code)
{
	put_u32(p, 8);
	put_u32(p + 4, code);
	return 8;
}

static size_t build_startup(unsigned char *p, const char *user)
{
	size_t n = 8;

	if (strlen(user) > 200) {
		fprintf(stderr, "%s: user name too long\n", progname);
		exit(EXIT_LOCAL);
	}
	n += put_cstring(p + n, "user");
	n += put_cstring(p + n, user);
	n += put_cstring(p + n, "database");
	n += put_cstring(p + n, "postgres");
	n += put_cstring(p + n, "application_name");
	n += put_cstring(p + n, "directssl");
	p[n++] = '\0';
	put_u32(p, (uint32_t)n);
	put_u32(p + 4, PROTOCOL_3_0);
	return n;
}

/* "a,b" -> the ALPN wire format: length-prefixed names. */
static unsigned int build_alpn(unsigned char *out, const char *list)
{
	unsigned int n = 0;
	const char *p = list;

	while (*p != '\0') {
		size_t len = strcspn(p, ",");

		if (len == 0 || len > 255 || n + 1 + len > ALPN_MAX) {
			fprintf(stderr, "%s: bad ALPN list \"%s\"\n", progname,
			    list);
			exit(EXIT_LOCAL);
		}
		out[n++] = (unsigned char)len;
		memcpy(out + n, p, len);
		n += (unsigned int)len;
		p += len;
		if (*p == ',')
			p++;
	}
	return n;
}

/* ---- messages ----------------------------------------------------------- */

/* Print an ErrorResponse's fields; its SQLSTATE goes to state. */
static void print_fields(const unsigned char *p, size_t len, char *state,
    size_t statelen)
{
	size_t i = 0;

	snprintf(state, statelen, "none");
	while (i < len && p[i] != '\0') {
		char type = (char)p[i++];
		const char *v = (const char *)p + i;
		size_t n = strnlen(v, len - i);

		if (i + n >= len) {
			printf(" [unterminated field %c]", type);
			return;
		}
		printf(" %c=%s", type, v);
		if (type == 'C')
			snprintf(state, statelen, "%s", v);
		i += n + 1;
	}
}

/*
 * Parse the whole messages at the start of in (and drop them).  Returns an
 * exit code when one is decisive ('Z', 'E'), -1 to read on.
 */
static int parse_messages(struct inbuf *in, const char *where)
{
	size_t off = 0;
	int rc = -1;

	while (rc < 0 && in->len - off >= 5) {
		const unsigned char *m = in->data + off;
		char type = (char)m[0];
		uint32_t mlen = get_u32(m + 1);
		char state[16];

		if (mlen < 4 || mlen > INBUF_MAX - 1) {
			printf("message '%c' claims %u bytes: not the protocol\n",
			    type, mlen);
			return EXIT_CLOSED;
		}
		if (in->len - off - 1 < mlen)
			break;		/* not all here yet */
		switch (type) {
		case 'E':
			printf("ErrorResponse%s:", where);
			print_fields(m + 5, mlen - 4, state, sizeof(state));
			printf("\nsqlstate=%s\n", state);
			rc = EXIT_ERROR_RESPONSE;
			break;
		case 'N':
			printf("NoticeResponse%s:", where);
			print_fields(m + 5, mlen - 4, state, sizeof(state));
			printf("\n");
			break;
		case 'R':
			printf("Authentication 'R' code %u%s\n",
			    mlen >= 8 ? get_u32(m + 5) : 0, where);
			if (mlen >= 8 && get_u32(m + 5) != 0) {
				printf("the server wants a password; this client "
				    "has none\n");
				rc = EXIT_LOCAL;
			}
			break;
		case 'S':
		case 'K':
			break;		/* ParameterStatus, BackendKeyData */
		case 'Z':
			printf("ReadyForQuery%s\n", where);
			rc = EXIT_READY;
			break;
		default:
			printf("message '%c' (%u bytes)%s\n", type, mlen, where);
			break;
		}
		off += 1 + mlen;
	}
	memmove(in->data, in->data + off, in->len - off);
	in->len -= off;
	return rc;
}

/* ---- I/O ----------------------------------------------------------------- */

static int connect_tcp(const struct options *o)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: %s:%s: %s\n", progname, o->host, o->port,
		    gai_strerror(rc));
		exit(EXIT_LOCAL);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot connect to %s:%s: %s\n", progname,
		    o->host, o->port, strerror(errno));
		exit(EXIT_LOCAL);
	}
	printf("connected to %s:%s\n", o->host, o->port);
	return fd;
}

/* Wait until fd is readable (or writable); exits when the deadline passes. */
static void wait_fd(int fd, bool for_write)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .revents = 0,
		    .events = for_write ? POLLOUT : POLLIN };
		double left = deadline - now_s();
		int rc;

		if (left <= 0) {
			printf("TIMEOUT: nothing decisive within the time "
			    "allowed\n");
			exit(EXIT_TIMEOUT);
		}
		rc = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (rc > 0)
			return;
		if (rc < 0 && errno != EINTR) {
			perror("poll");
			exit(EXIT_LOCAL);
		}
	}
}

static void send_plain(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			wait_fd(fd, true);
			continue;
		}
		if (n < 0) {
			printf("send failed: %s\n", strerror(errno));
			exit(EXIT_CLOSED);
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Print and clear OpenSSL's error queue on one line. */
static void print_ssl_errors(const char *what)
{
	unsigned long e;
	char buf[256];
	bool any = false;

	printf("%s:", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		printf(" %s;", buf);
		any = true;
	}
	printf("%s\n", any ? "" : " (no OpenSSL error; the peer closed)");
}

/* After a plaintext ErrorResponse: read on until the server closes. */
static void wait_plain_close(int fd)
{
	unsigned char buf[4096];
	size_t extra = 0;

	for (;;) {
		ssize_t n;

		wait_fd(fd, false);
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n > 0) {
			extra += (size_t)n;
			continue;
		}
		if (extra > 0)
			printf("%zu more bytes after the error\n", extra);
		printf("then the server closed the connection (%s)\n",
		    n == 0 ? "EOF" : strerror(errno));
		return;
	}
}

/*
 * The server answered a ClientHello with bytes that are not a TLS record:
 * read the rest as the plaintext protocol.
 */
static void read_plaintext_answer(int fd, struct inbuf *in)
{
	int rc;

	for (;;) {
		ssize_t n;

		if ((rc = parse_messages(in, " (in plaintext)")) >= 0) {
			if (rc == EXIT_ERROR_RESPONSE)
				wait_plain_close(fd);
			exit(rc);
		}
		if (in->len == sizeof(in->data)) {
			printf("too much plaintext\n");
			exit(EXIT_CLOSED);
		}
		wait_fd(fd, false);
		n = recv(fd, in->data + in->len, sizeof(in->data) - in->len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			printf("then the connection closed (%s)\n",
			    n == 0 ? "EOF" : strerror(errno));
			exit(EXIT_CLOSED);
		}
		in->len += (size_t)n;
	}
}

/*
 * The server's bytes reach OpenSSL through a memory BIO that this program
 * fills, so that the first of them can be looked at before OpenSSL does: a
 * TLS record starts with 0x14-0x17; anything else (an 'E') is the plaintext
 * protocol, e.g. a server that took the ClientHello for a startup packet.
 */
static BIO *rbio;
static bool seen_first_byte;
static const char *closed_how;	/* set once the socket said EOF */

/* Wait for the socket and move what it has into rbio. */
static void feed(int fd)
{
	unsigned char buf[16384];
	ssize_t n;

	if (closed_how != NULL)
		return;		/* rbio already reports EOF */
	for (;;) {
		wait_fd(fd, false);
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		break;
	}
	if (n <= 0) {
		closed_how = n == 0 ? "EOF" : strerror(errno);
		BIO_set_mem_eof_return(rbio, 0);
		return;
	}
	if (!seen_first_byte) {
		seen_first_byte = true;
		if (buf[0] < 0x14 || buf[0] > 0x17) {
			static struct inbuf in;

			printf("the answer to the ClientHello is not TLS (first "
			    "byte 0x%02x)\n", buf[0]);
			memcpy(in.data, buf, (size_t)n);
			in.len = (size_t)n;
			read_plaintext_answer(fd, &in);
		}
	}
	if (BIO_write(rbio, buf, (int)n) != (int)n) {
		print_ssl_errors("BIO_write");
		exit(EXIT_LOCAL);
	}
}

static void handshake(SSL *ssl, int fd)
{
	for (;;) {
		int r = SSL_connect(ssl);

		if (r == 1)
			return;
		switch (SSL_get_error(ssl, r)) {
		case SSL_ERROR_WANT_READ:
			if (closed_how == NULL) {
				feed(fd);
				break;
			}
			/* FALLTHROUGH */
		default:
			print_ssl_errors("TLS handshake failed");
			if (closed_how != NULL)
				printf("the server closed the connection during "
				    "the handshake (%s)\n", closed_how);
			if (SSL_get_verify_result(ssl) != X509_V_OK)
				printf("certificate verification: %s\n",
				    X509_verify_cert_error_string(
				    SSL_get_verify_result(ssl)));
			exit(EXIT_NO_TLS);
		case SSL_ERROR_WANT_WRITE:
			wait_fd(fd, true);
			break;
		}
	}
}

/* Returns false if the server had already gone (the reading tells why). */
static bool send_tls(SSL *ssl, int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		int r = SSL_write(ssl, p, (int)len);

		if (r > 0) {
			p += r;
			len -= (size_t)r;
			continue;
		}
		switch (SSL_get_error(ssl, r)) {
		case SSL_ERROR_WANT_READ:
			if (closed_how != NULL)
				return false;
			feed(fd);
			break;
		case SSL_ERROR_WANT_WRITE:
			wait_fd(fd, true);
			break;
		default:
			print_ssl_errors("sending over TLS failed");
			return false;
		}
	}
	return true;
}

/*
 * Read over TLS into in.  Returns the bytes read, 0 when the server closed
 * (how is printed).
 */
static size_t recv_tls(SSL *ssl, int fd, struct inbuf *in)
{
	for (;;) {
		int r;

		if (in->len == sizeof(in->data)) {
			printf("more than %d bytes unparsed; giving up\n",
			    INBUF_MAX);
			exit(EXIT_CLOSED);
		}
		r = SSL_read(ssl, in->data + in->len,
		    (int)(sizeof(in->data) - in->len));
		if (r > 0) {
			in->len += (size_t)r;
			return (size_t)r;
		}
		switch (SSL_get_error(ssl, r)) {
		case SSL_ERROR_WANT_READ:
			if (closed_how == NULL) {
				feed(fd);
				break;
			}
			printf("the server closed the connection (%s)\n",
			    closed_how);
			return 0;
		case SSL_ERROR_WANT_WRITE:
			wait_fd(fd, true);
			break;
		case SSL_ERROR_ZERO_RETURN:
			printf("the server closed the TLS session (%s)\n",
			    closed_how != NULL ? closed_how : "close_notify");
			return 0;
		case SSL_ERROR_SYSCALL:
			printf("the server closed the connection (%s)\n",
			    closed_how != NULL ? closed_how : "EOF");
			ERR_clear_error();
			return 0;
		default:
			print_ssl_errors("the TLS session ended with an error");
			return 0;
		}
	}
}

/* ---- the runs ------------------------------------------------------------- */

static SSL_CTX *make_ctx(const struct options *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		print_ssl_errors("SSL_CTX_new");
		exit(EXIT_LOCAL);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (o->cafile != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
			print_ssl_errors(o->cafile);
			exit(EXIT_LOCAL);
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (o->alpn != NULL) {
		unsigned char wire[ALPN_MAX];
		unsigned int n = build_alpn(wire, o->alpn);

		/* Note: 0 is success for this one. */
		if (SSL_CTX_set_alpn_protos(ctx, wire, n) != 0) {
			print_ssl_errors("SSL_CTX_set_alpn_protos");
			exit(EXIT_LOCAL);
		}
	}
	return ctx;
}

static SSL *make_ssl(SSL_CTX *ctx, const struct options *o, int fd)
{
	SSL *ssl = SSL_new(ctx);
	BIO *wbio = BIO_new_socket(fd, BIO_NOCLOSE);

	rbio = BIO_new(BIO_s_mem());
	if (ssl == NULL || wbio == NULL || rbio == NULL) {
		print_ssl_errors("SSL_new");
		exit(EXIT_LOCAL);
	}
	/* Empty is "try again" until feed() saw the socket's EOF. */
	BIO_set_mem_eof_return(rbio, -1);
	SSL_set_bio(ssl, rbio, wbio);
	if (o->servername[0] != '\0') {
		SSL_set_tlsext_host_name(ssl, o->servername);
		if (o->cafile != NULL)
			SSL_set1_host(ssl, o->servername);
	}
	return ssl;
}

/* SSLRequest in plaintext; true after 'S'. */
static bool negotiate_sslrequest(int fd)
{
	unsigned char pkt[8], answer;
	ssize_t n;

	send_plain(fd, pkt, build_request(pkt, SSL_REQUEST_CODE));
	printf("sent SSLRequest\n");
	for (;;) {
		wait_fd(fd, false);
		n = recv(fd, &answer, 1, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		break;
	}
	if (n <= 0) {
		printf("no answer to SSLRequest: %s\n",
		    n == 0 ? "EOF" : strerror(errno));
		exit(EXIT_CLOSED);
	}
	printf("answer to SSLRequest: '%c'\n", answer);
	return answer == 'S';
}

static void print_session(SSL *ssl)
{
	const unsigned char *proto;
	unsigned int len;

	SSL_get0_alpn_selected(ssl, &proto, &len);
	printf("TLS handshake done: %s %s, ALPN %.*s\n", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl), len > 0 ? (int)len : 4,
	    len > 0 ? (const char *)proto : "none");
}

/* After SSLRequest/GSSENCRequest over TLS the server must just close. */
static int expect_close(SSL *ssl, int fd)
{
	static struct inbuf in;

	if (recv_tls(ssl, fd, &in) == 0) {
		printf("closed, as it should be\n");
		return EXIT_READY;
	}
	printf("the server answered (%zu bytes, first byte 0x%02x '%c')\n",
	    in.len, in.data[0], in.data[0] >= 0x20 && in.data[0] < 0x7f ?
	    in.data[0] : '?');
	(void)parse_messages(&in, " (over TLS)");
	return EXIT_ERROR_RESPONSE;
}

/*
 * After an ErrorResponse the server should close: read on until it does
 * (printing how), or until the deadline (exit 5).
 */
static void wait_close_after_error(SSL *ssl, int fd, struct inbuf *in)
{
	while (recv_tls(ssl, fd, in) > 0)
		(void)parse_messages(in, " (over TLS, after the error)");
}

static int read_until_ready(SSL *ssl, int fd)
{
	static struct inbuf in;
	int rc;

	for (;;) {
		if (recv_tls(ssl, fd, &in) == 0) {
			rc = parse_messages(&in, " (over TLS)");
			if (rc >= 0)
				return rc;
			printf("EOF before ReadyForQuery\n");
			return EXIT_CLOSED;
		}
		if ((rc = parse_messages(&in, " (over TLS)")) >= 0) {
			if (rc == EXIT_ERROR_RESPONSE)
				wait_close_after_error(ssl, fd, &in);
			return rc;
		}
	}
}

int main(int argc, char **argv)
{
	struct options o;
	unsigned char pkt[PACKET_MAX];
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, rc;

	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	deadline = now_s() + o.timeout_s;
	ctx = make_ctx(&o);
	fd = connect_tcp(&o);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		perror("fcntl");
		return EXIT_LOCAL;
	}
	if (o.sslrequest && !negotiate_sslrequest(fd)) {
		printf("no TLS: the SSLRequest was declined\n");
		return EXIT_NO_TLS;
	}
	ssl = make_ssl(ctx, &o, fd);
	printf("starting the TLS handshake (%s, ALPN %s, SNI %s)\n",
	    o.sslrequest ? "after SSLRequest" : "direct",
	    o.alpn != NULL ? o.alpn : "none",
	    o.servername[0] != '\0' ? o.servername : "none");
	handshake(ssl, fd);
	print_session(ssl);

	switch (o.then) {
	case THEN_SSLREQUEST:
	case THEN_GSSENCREQUEST:
		build_request(pkt, o.then == THEN_SSLREQUEST ?
		    SSL_REQUEST_CODE : GSSENC_REQUEST_CODE);
		printf("sending %s over TLS\n", o.then == THEN_SSLREQUEST ?
		    "SSLRequest" : "GSSENCRequest");
		(void)send_tls(ssl, fd, pkt, 8);
		rc = expect_close(ssl, fd);
		break;
	default:
		printf("sending StartupMessage over TLS (user %s)\n", o.user);
		/* If the server has already gone, its last words still count. */
		(void)send_tls(ssl, fd, pkt, build_startup(pkt, o.user));
		rc = read_until_ready(ssl, fd);
		if (rc == EXIT_READY) {
			static const unsigned char terminate[5] = { 'X', 0, 0, 0, 4 };

			(void)send_tls(ssl, fd, terminate, sizeof(terminate));
		}
		break;
	}
	(void)SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}
