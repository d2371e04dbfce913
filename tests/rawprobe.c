/*
 * rawprobe: protocol abuse over a socket (TLS by OpenSSL where a mode says
 * so), no libpq.
 *
 *   rawprobe [--timeout S] MODE HOST PORT
 *
 * MODE is one of:
 *   inject            SSLRequest and a StartupMessage in one send(), to an
 *                     ssl=on server: pass iff the reply is 'S' followed only
 *                     by ErrorResponse(s) with SQLSTATE 08P01, then EOF
 *   badlen            a length word of 3, then (new connection) of 20000:
 *                     pass iff each gets ErrorResponse 08P01 and/or EOF
 *   truncated         half a StartupMessage, then shutdown(SHUT_WR):
 *                     pass iff the server closes (an ErrorResponse first is
 *                     allowed)
 *   garbage           64 random bytes: pass iff ErrorResponse(s) and/or EOF
 *   double-ssl        to an ssl=off server: SSLRequest, expect 'N', a second
 *                     SSLRequest: pass iff ErrorResponse(s) and/or EOF
 *   gss-then-startup  to an ssl=off server with a trusting backend:
 *                     GSSENCRequest, expect 'N', then a plaintext
 *                     StartupMessage: pass iff an 'R' comes back
 *   silent            connect and send nothing: pass iff the server closes
 *                     the connection (an ErrorResponse first is allowed)
 *   half              send the 4-byte length word of a StartupMessage and
 *                     nothing more: pass as for silent
 *
 * silent and half print "closed after S.SSS s" (from the last byte sent, or
 * the connection when none was), for the caller to judge the timing.
 *
 * Hardening modes (tests/faults.sh), where the verdict on the server is the
 * caller's (its file descriptors, its memory, whether it still answers):
 *   tls-reset         SSLRequest, expect 'S', send the first half of a real
 *                     ClientHello, then reset the connection (SO_LINGER 0):
 *                     pass iff 'S' came and the bytes went out
 *   tls-half          SSLRequest, a whole TLS handshake, then the 4-byte
 *                     length word of a StartupMessage over TLS and nothing
 *                     more: pass iff the server closes in time; prints
 *                     "closed after S.SSS s" as silent and half do
 *   noread            log in in plaintext (user RAWPROBE_USER or postgres,
 *                     database postgres, trust), send one simple Query, then never read again
 *                     for the timeout, with a small receive buffer; then
 *                     close: pass iff the login worked and the query went
 *                     out.  Prints "query sent; not reading" when it does.
 *   tls-noread        the same over TLS (SSLRequest, no certificate check)
 *   push              log in in plaintext, send SELECT pg_sleep(timeout + 1),
 *                     then the start of a 256 MB Query message, and keep
 *                     writing it as fast as the connection takes it for the
 *                     timeout, while the backend (asleep) reads nothing;
 *                     then close: pass iff the login worked.  Prints
 *                     "pushing" when it starts and how much went out.
 *   tls-push          the same over TLS
 *   tls-burst         log in over TLS, then send BURST_QUERIES simple
 *                     Queries of BURST_QUERY_BYTES each, one TLS record
 *                     per Query, all in a single send() (the gate's
 *                     OpenSSL then reads dozens of records at a time, and
 *                     the burst holds more than the relay takes in one
 *                     wake-up).  Pass iff every Query gets its
 *                     ReadyForQuery, none an ErrorResponse, within the
 *                     timeout
 *   tls-keyupdate     log in over TLS (1.3), then three times: send a
 *                     KeyUpdate that asks for the gate's in return, then a
 *                     Query.  Pass iff every Query is answered
 *   tls-keyupdate-full  log in over TLS with a small receive buffer, ask
 *                     for a 20 MB COPY and do not read; after a second,
 *                     send a KeyUpdate asking for the gate's (which it
 *                     cannot send yet: the way to the client is full) and
 *                     a Query; after another, read everything.  Pass iff
 *                     all 20,020,000 bytes of the COPY and the Query's
 *                     row come, with two ReadyForQuery
 *   flood             open RAWPROBE_COUNT (1000) connections as fast as it
 *                     can, hold them all (for RAWPROBE_HOLD_MS, 0 unless
 *                     set), then close them without a word, every other
 *                     one with a reset: pass iff all connected
 *   tls-hello         SSLRequest, expect 'S', then a ClientHello built by
 *                     hand (no TLS library: it can offer what OpenSSL no
 *                     longer can) with legacy version RAWPROBE_TLS_VERSION
 *                     (0x0303 unless set; 0x0300 is SSLv3) and the cipher
 *                     suites RAWPROBE_SUITES (hex, comma-separated); prints
 *                     "accepted: ServerHello version 0x.... cipher 0x...."
 *                     or "refused: ..." (an alert, or the connection
 *                     closed).  Passes iff that is RAWPROBE_EXPECT: refused
 *                     (the default) or accepted.
 *
 * The query of noread and tls-noread is RAWPROBE_QUERY, by default a COPY
 * of 200 MB: COPY (SELECT repeat('x', 1000) FROM generate_series(1,
 * 200000)) TO STDOUT.  RAWPROBE_COUNT repeats tls-reset as well.
 *
 *   halfclose-wait    log in in plaintext, send RAWPROBE_QUERY (SELECT
 *                     pg_sleep(13), 42 unless set), then shutdown(SHUT_WR),
 *                     and read to the end, at RAWPROBE_READ_KBPS KiB a
 *                     second if set (with a small receive buffer): pass iff
 *                     the whole answer (its ReadyForQuery) comes, as from
 *                     PostgreSQL itself; RAWPROBE_STALL_MS, when set, stops
 *                     reading that long once the first COPY bytes came
 *   tls-halfclose-wait  the same over TLS, ending with close_notify
 *   busy              SSLRequest, then read to the end: pass iff only
 *                     ErrorResponse(s) with SQLSTATE 53300 come, then the
 *                     close (a server out of room, as PostgreSQL answers
 *                     when it cannot fork)
 *
 * RAWPROBE_SOURCE, when set, is the IPv4 address every mode connects from
 * (127.0.0.2 is another source on the loopback).
 *
 *   scram-offer       log in in plaintext as RAWPROBE_USER (postgres unless
 *                     set) and read the AuthenticationSASL message: pass
 *                     iff it is well formed (its length word covers the
 *                     mechanism list and its terminator exactly) and
 *                     offers SCRAM-SHA-256 but not SCRAM-SHA-256-PLUS
 *   tls-scram-plus    over TLS, log in as RAWPROBE_USER, read the
 *                     AuthenticationSASL message (it must offer
 *                     SCRAM-SHA-256-PLUS), then send a SASLInitialResponse
 *                     naming SCRAM-SHA-256-PLUS one byte per TLS record,
 *                     20 ms apart: pass iff the answer is an ErrorResponse
 *                     with SQLSTATE 08P01 and then the close
 *
 * One mode is a server, not a client:
 *   listen-full       listen on HOST:PORT with a full accept queue, so that
 *                     a TCP connect to it gets no answer (Linux drops the
 *                     SYN); prints "listening with a full queue", then
 *                     stays so for the timeout and exits 0: a backend that
 *                     never answers, for backend_connect_timeout
 *
 * Prints what it sent and saw; exits 0 on pass, 1 on fail, 2 on bad usage.
 * Not answering within the timeout (10 s unless told) is a failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "wire.h"

#define SSL_REQUEST_CODE	80877103u
#define GSSENC_REQUEST_CODE	80877104u
#define PROTOCOL_3_0		0x00030000u
#define SQLSTATE_PROTOCOL_VIOLATION "08P01"

#define INBUF_MAX		65536
#define PACKET_MAX		1024
#define GARBAGE_LEN		64
#define DEFAULT_TIMEOUT_S	10

struct inbuf {
	unsigned char	data[INBUF_MAX];
	size_t		len;
	bool		eof;		/* orderly close */
	bool		reset;		/* closed with a reset */
	bool		timed_out;
};

struct target {
	const char	*host;
	const char	*port;
	int		 timeout_s;
};

/* What a run of backend messages held. */
struct msgsummary {
	unsigned	errors;
	unsigned	others;		/* anything but ErrorResponse */
	unsigned	wrong_state;	/* errors without the wanted SQLSTATE */
	bool		auth;		/* an 'R' was among them */
	bool		incomplete;	/* trailing bytes that are no message */
};

static const char *progname = "rawprobe";

static void usage(void)
{
	fprintf(stderr,
	    "usage: %s [--timeout S] MODE HOST PORT\n"
	    "modes: inject badlen truncated garbage double-ssl gss-then-startup\n"
	    "       silent half listen-full\n"
	    "       tls-reset tls-half noread tls-noread push tls-push tls-burst\n"
	    "       tls-keyupdate tls-keyupdate-full flood\n"
	    "       tls-hello halfclose halfclose-wait tls-halfclose-wait busy\n"
	    "       scram-offer tls-scram-plus\n",
	    progname);
	exit(2);
}

/* ---- packets ---------------------------------------------------------- */

/* SSLRequest, GSSENCRequest: length 8 and a request code. */
static size_t build_request(unsigned char *p, uint32_t code)
{
	put_u32(p, 8);
	put_u32(p + 4, code);
	return 8;
}

/* The role rawprobe logs in as: RAWPROBE_USER, or postgres.  It cannot
 * answer a password request, so the test cluster trusts that role (lib.sh);
 * at most 63 bytes, PostgreSQL's NAMEDATALEN - 1, so that the packet fits. */
static const char *startup_user(void)
{
	const char *u = getenv("RAWPROBE_USER");

	if (u == NULL || *u == '\0')
		return "postgres";
	if (strlen(u) > 63) {
		fprintf(stderr, "%s: RAWPROBE_USER is longer than 63 bytes\n",
		    progname);
		exit(2);
	}
	return u;
}

/* StartupMessage, protocol 3.0, user=USER database=postgres. */
static size_t build_startup_user(unsigned char *p, const char *user)
{
	size_t n = 8;

	n += put_cstring(p + n, "user");
	n += put_cstring(p + n, user);
	n += put_cstring(p + n, "database");
	n += put_cstring(p + n, "postgres");
	n += put_cstring(p + n, "application_name");
	n += put_cstring(p + n, "rawprobe");
	p[n++] = '\0';
	put_u32(p, (uint32_t)n);
	put_u32(p + 4, PROTOCOL_3_0);
	return n;
}

/* StartupMessage, protocol 3.0, user=startup_user() database=postgres. */
static size_t build_startup(unsigned char *p)
{
	return build_startup_user(p, startup_user());
}

/* A simple Query for sql into p (room for cap bytes): its length, 0 if it
 * does not fit. */
static size_t build_query(unsigned char *p, size_t cap, const char *sql)
{
	size_t n = 5 + strlen(sql) + 1;

	if (n > cap)
		return 0;
	p[0] = 'Q';
	put_u32(p + 1, (uint32_t)(n - 1));
	memcpy(p + 5, sql, n - 5);
	return n;
}

/* ---- socket I/O --------------------------------------------------------- */

/* A TCP connection to t; with rcvbuf > 0, SO_RCVBUF is set first so the
 * receive window stays small. */
/*
 * RAWPROBE_SOURCE: the IPv4 address to connect from (any 127/8 address is
 * this host's loopback), to be another source than 127.0.0.1.
 */
static bool bind_source(int fd, int family)
{
	const char *src = getenv("RAWPROBE_SOURCE");
	struct sockaddr_in sin;

	if (src == NULL || *src == '\0')
		return true;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (family != AF_INET || inet_pton(AF_INET, src, &sin.sin_addr) != 1) {
		fprintf(stderr, "%s: RAWPROBE_SOURCE %s: not an IPv4 address "
		    "for this target\n", progname, src);
		return false;
	}
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		fprintf(stderr, "%s: bind to %s: %s\n", progname, src,
		    strerror(errno));
		return false;
	}
	return true;
}

static int connect_rcvbuf(const struct target *t, int rcvbuf)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(t->host, t->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: %s:%s: %s\n", progname, t->host, t->port,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (rcvbuf > 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			    sizeof(rcvbuf));
		if (!bind_source(fd, ai->ai_family)) {
			close(fd);
			fd = -1;
			break;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, "%s: cannot connect to %s:%s: %s\n", progname,
		    t->host, t->port, strerror(errno));
	return fd;
}

static int connect_tcp(const struct target *t)
{
	return connect_rcvbuf(t, 0);
}

/* Send everything; false (with the reason printed) if the peer went away. */
static bool send_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("send failed: %s\n", strerror(errno));
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void print_hex(const char *what, const unsigned char *p, size_t len)
{
	size_t i;

	printf("%s (%zu bytes):", what, len);
	for (i = 0; i < len && i < 32; i++)
		printf(" %02x", p[i]);
	printf("%s\n", len > 32 ? " ..." : "");
}

/*
 * Read into in until it holds want bytes (0: until EOF), the peer closes,
 * or the deadline passes.
 */
static void read_into(int fd, struct inbuf *in, size_t want, double deadline)
{
	while (!in->eof && !in->reset && (want == 0 || in->len < want)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0 };
		double left = deadline - now_s();
		ssize_t n;
		int rc;

		if (left <= 0) {
			in->timed_out = true;
			return;
		}
		rc = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;	/* the deadline check ends it */
		if (in->len == sizeof(in->data)) {
			printf("more than %d bytes received; giving up\n", INBUF_MAX);
			in->timed_out = true;
			return;
		}
		n = recv(fd, in->data + in->len, sizeof(in->data) - in->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			in->reset = true;
		else if (n < 0) {
			printf("recv failed: %s\n", strerror(errno));
			in->reset = true;
		} else if (n == 0)
			in->eof = true;
		else
			in->len += (size_t)n;
	}
}

static double deadline_of(const struct target *t)
{
	return now_s() + t->timeout_s;
}

static void print_ending(const struct inbuf *in, const struct target *t)
{
	if (in->eof)
		printf("then EOF\n");
	else if (in->reset)
		printf("then the connection was reset\n");
	else if (in->timed_out)
		printf("then nothing more for %d s (no EOF)\n", t->timeout_s);
}

/* ---- backend messages ------------------------------------------------- */

/* Print an ErrorResponse/NoticeResponse body: fields of type + cstring. */
static void print_fields(const unsigned char *p, size_t len, char *state,
    size_t statelen)
{
	size_t i = 0;

	state[0] = '\0';
	while (i < len && p[i] != '\0') {
		char type = (char)p[i++];
		const unsigned char *v = p + i;
		size_t n = strnlen((const char *)v, len - i);

		if (i + n >= len) {
			printf(" [unterminated field %c]", type);
			return;
		}
		printf(" %c=%s", type, (const char *)v);
		if (type == 'C')
			snprintf(state, statelen, "%s", (const char *)v);
		i += n + 1;
	}
	if (i >= len)
		printf(" [no terminating zero]");
	else if (i + 1 != len)
		printf(" [%zu trailing bytes]", len - i - 1);
}

/*
 * Walk the messages in p, printing each, and count them in sum.  An error
 * whose SQLSTATE is not want_state (when given) counts as wrong_state.
 */
static void parse_messages(const unsigned char *p, size_t len,
    const char *want_state, struct msgsummary *sum)
{
	size_t off = 0;

	memset(sum, 0, sizeof(*sum));
	while (off < len) {
		char type = (char)p[off];
		uint32_t mlen;
		char state[16];

		if (len - off < 5) {
			print_hex("incomplete message header", p + off, len - off);
			sum->incomplete = true;
			return;
		}
		mlen = get_u32(p + off + 1);
		if (mlen < 4 || mlen > len - off - 1) {
			printf("message '%c' claims %u bytes, %zu are there\n",
			    type, mlen, len - off - 1);
			print_hex("unparsed bytes", p + off, len - off);
			sum->incomplete = true;
			return;
		}
		if (type == 'E' || type == 'N') {
			printf("%s:", type == 'E' ? "ErrorResponse" : "NoticeResponse");
			print_fields(p + off + 5, mlen - 4, state, sizeof(state));
			printf("\n");
		} else if (type == 'R' && mlen >= 8) {
			printf("Authentication message 'R', code %u\n",
			    get_u32(p + off + 5));
		} else {
			printf("message '%c' (%u bytes)\n", type, mlen);
		}
		if (type == 'E') {
			sum->errors++;
			if (want_state != NULL && strcmp(state, want_state) != 0)
				sum->wrong_state++;
		} else {
			sum->others++;
		}
		if (type == 'R')
			sum->auth = true;
		off += 1 + mlen;
	}
}

/*
 * The usual verdict on a rejected connection: from offset on, nothing but
 * ErrorResponses (with want_state, if given; at least one if need_error),
 * then the connection closed within the timeout.
 */
static bool errors_then_close(const struct inbuf *in, size_t offset,
    const char *want_state, bool need_error, const struct target *t)
{
	struct msgsummary sum;
	bool good = true;

	if (in->len > offset)
		parse_messages(in->data + offset, in->len - offset, want_state, &sum);
	else
		memset(&sum, 0, sizeof(sum));
	print_ending(in, t);

	if (in->timed_out) {
		printf("FAIL: the server did not close the connection within %d s\n",
		    t->timeout_s);
		good = false;
	}
	if (sum.auth) {
		printf("FAIL: the server sent an authentication request\n");
		good = false;
	}
	if (sum.others > 0 || sum.incomplete) {
		printf("FAIL: expected only ErrorResponse messages\n");
		good = false;
	}
	if (sum.wrong_state > 0) {
		printf("FAIL: expected SQLSTATE %s in every ErrorResponse\n",
		    want_state);
		good = false;
	}
	if (need_error && sum.errors == 0) {
		printf("FAIL: expected an ErrorResponse%s%s\n",
		    want_state != NULL ? " with SQLSTATE " : "",
		    want_state != NULL ? want_state : "");
		good = false;
	}
	return good;
}

/* Read the one-byte answer to SSLRequest/GSSENCRequest. */
static int read_answer_byte(int fd, const struct target *t, const char *what)
{
	static struct inbuf in;

	memset(&in, 0, sizeof(in));
	read_into(fd, &in, 1, deadline_of(t));
	if (in.len == 0) {
		printf("no answer to %s\n", what);
		print_ending(&in, t);
		return -1;
	}
	printf("answer to %s: '%c'\n", what, in.data[0]);
	if (in.len > 1)
		print_hex("and more bytes right after it", in.data + 1, in.len - 1);
	return in.data[0];
}

/* ---- modes -------------------------------------------------------------- */

static bool mode_inject(const struct target *t)
{
	static struct inbuf in;
	unsigned char pkt[PACKET_MAX];
	size_t n;
	int fd = connect_tcp(t);

	if (fd < 0)
		return false;
	n = build_request(pkt, SSL_REQUEST_CODE);
	n += build_startup(pkt + n);
	print_hex("sent SSLRequest + StartupMessage in one write", pkt, n);
	send_all(fd, pkt, n);
	read_into(fd, &in, 0, deadline_of(t));
	close(fd);

	if (in.len == 0) {
		print_ending(&in, t);
		printf("FAIL: expected 'S' and an ErrorResponse, got nothing\n");
		return false;
	}
	printf("first byte: '%c'\n", in.data[0]);
	if (in.data[0] != 'S') {
		printf("FAIL: expected 'S' (this mode wants an ssl=on server)\n");
		return false;
	}
	return errors_then_close(&in, 1, SQLSTATE_PROTOCOL_VIOLATION, true, t);
}

/* Send a bad length word (and a little more); expect 08P01 and/or EOF. */
static bool send_bad_length(const struct target *t, uint32_t length)
{
	static struct inbuf in;
	unsigned char pkt[PACKET_MAX];
	size_t n;
	int fd = connect_tcp(t);

	if (fd < 0)
		return false;
	memset(&in, 0, sizeof(in));
	n = build_startup(pkt);
	put_u32(pkt, length);
	printf("-- length word %u\n", length);
	print_hex("sent", pkt, n);
	send_all(fd, pkt, n);
	read_into(fd, &in, 0, deadline_of(t));
	close(fd);
	return errors_then_close(&in, 0, SQLSTATE_PROTOCOL_VIOLATION, false, t);
}

static bool mode_badlen(const struct target *t)
{
	bool short_ok = send_bad_length(t, 3);
	bool long_ok = send_bad_length(t, 20000);

	return short_ok && long_ok;
}

static bool mode_truncated(const struct target *t)
{
	static struct inbuf in;
	unsigned char pkt[PACKET_MAX];
	size_t n;
	int fd = connect_tcp(t);

	if (fd < 0)
		return false;
	n = build_startup(pkt) / 2;
	print_hex("sent half a StartupMessage, then shut down writing", pkt, n);
	send_all(fd, pkt, n);
	shutdown(fd, SHUT_WR);
	read_into(fd, &in, 0, deadline_of(t));
	close(fd);
	return errors_then_close(&in, 0, NULL, false, t);
}

static bool random_bytes(unsigned char *p, size_t len)
{
	FILE *f = fopen("/dev/urandom", "rb");
	bool good = f != NULL && fread(p, 1, len, f) == len;

	if (f != NULL)
		fclose(f);
	if (!good)
		fprintf(stderr, "%s: cannot read /dev/urandom\n", progname);
	return good;
}

static bool mode_garbage(const struct target *t)
{
	static struct inbuf in;
	unsigned char pkt[GARBAGE_LEN];
	int fd;

	if (!random_bytes(pkt, sizeof(pkt)))
		return false;
	fd = connect_tcp(t);
	if (fd < 0)
		return false;
	print_hex("sent random bytes", pkt, sizeof(pkt));
	send_all(fd, pkt, sizeof(pkt));
	read_into(fd, &in, 0, deadline_of(t));
	close(fd);
	return errors_then_close(&in, 0, NULL, false, t);
}

static bool mode_double_ssl(const struct target *t)
{
	static struct inbuf in;
	unsigned char pkt[8];
	int fd = connect_tcp(t), answer;

	if (fd < 0)
		return false;
	build_request(pkt, SSL_REQUEST_CODE);
	printf("sent SSLRequest\n");
	send_all(fd, pkt, sizeof(pkt));
	answer = read_answer_byte(fd, t, "the first SSLRequest");
	if (answer != 'N') {
		printf("FAIL: expected 'N' (this mode wants an ssl=off server)\n");
		close(fd);
		return false;
	}
	printf("sent a second SSLRequest\n");
	send_all(fd, pkt, sizeof(pkt));
	read_into(fd, &in, 0, deadline_of(t));
	close(fd);
	if (in.len > 0 && in.data[0] == 'N') {
		printf("FAIL: the second SSLRequest was answered 'N' as well\n");
		return false;
	}
	return errors_then_close(&in, 0, NULL, false, t);
}

static bool mode_gss_then_startup(const struct target *t)
{
	static struct inbuf in;
	unsigned char pkt[PACKET_MAX];
	size_t n, first;
	int fd = connect_tcp(t), answer;
	struct msgsummary sum;

	if (fd < 0)
		return false;
	build_request(pkt, GSSENC_REQUEST_CODE);
	printf("sent GSSENCRequest\n");
	send_all(fd, pkt, 8);
	answer = read_answer_byte(fd, t, "GSSENCRequest");
	if (answer != 'N') {
		printf("FAIL: expected 'N'\n");
		close(fd);
		return false;
	}
	n = build_startup(pkt);
	print_hex("sent a plaintext StartupMessage", pkt, n);
	send_all(fd, pkt, n);

	/* The first message: its header, then its whole body. */
	read_into(fd, &in, 5, deadline_of(t));
	if (in.len >= 5)
		read_into(fd, &in, 1 + (size_t)get_u32(in.data + 1), deadline_of(t));
	if (in.len < 5) {
		print_ending(&in, t);
		printf("FAIL: no reply to the StartupMessage\n");
		close(fd);
		return false;
	}
	first = 1 + (size_t)get_u32(in.data + 1);
	parse_messages(in.data, first < in.len ? first : in.len, NULL, &sum);

	/* Say goodbye properly: Terminate. */
	pkt[0] = 'X';
	put_u32(pkt + 1, 4);
	send_all(fd, pkt, 5);
	close(fd);

	if (in.data[0] != 'R') {
		printf("FAIL: expected an authentication message 'R'\n");
		return false;
	}
	return true;
}

/*
 * Send the first len bytes of pkt (none when len is 0), then wait for the
 * server to close without sending anything but ErrorResponses.
 */
static bool send_then_wait_close(const struct target *t,
    const unsigned char *pkt, size_t len)
{
	static struct inbuf in;
	double started;
	int fd = connect_tcp(t);

	if (fd < 0)
		return false;
	memset(&in, 0, sizeof(in));
	if (len > 0) {
		print_hex("sent", pkt, len);
		if (!send_all(fd, pkt, len)) {
			close(fd);
			return false;
		}
	} else {
		printf("connected; sending nothing\n");
	}
	started = now_s();
	read_into(fd, &in, 0, deadline_of(t));
	close(fd);
	if (!in.timed_out)
		printf("closed after %.3f s\n", now_s() - started);
	return errors_then_close(&in, 0, NULL, false, t);
}

static bool mode_silent(const struct target *t)
{
	return send_then_wait_close(t, NULL, 0);
}

static bool mode_half(const struct target *t)
{
	unsigned char pkt[PACKET_MAX];

	build_startup(pkt);
	return send_then_wait_close(t, pkt, 4);
}

static bool mode_listen_full(const struct target *t)
{
	struct addrinfo hints, *res;
	int lfd, filler, one = 1, rc;
	double deadline;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(t->host, t->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: %s:%s: %s\n", progname, t->host, t->port,
		    gai_strerror(rc));
		return false;
	}
	lfd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || bind(lfd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(lfd, 0) != 0) {
		fprintf(stderr, "%s: cannot listen on %s:%s: %s\n", progname,
		    t->host, t->port, strerror(errno));
		freeaddrinfo(res);
		return false;
	}
	freeaddrinfo(res);
	/* A backlog of 0 holds one connection: this one, never accepted. */
	filler = connect_tcp(t);
	if (filler < 0)
		return false;
	printf("listening with a full queue on %s:%s\n", t->host, t->port);
	deadline = deadline_of(t);
	while (now_s() < deadline) {
		struct timespec ts = { 0, 100000000L };

		nanosleep(&ts, NULL);
	}
	close(filler);
	close(lfd);
	return true;
}

/* ---- hardening modes ---------------------------------------------------- */

#define DEFAULT_NOREAD_QUERY \
	"COPY (SELECT repeat('x', 1000) FROM generate_series(1, 200000)) " \
	"TO STDOUT"
#define NOREAD_RCVBUF		4096
#define DEFAULT_FLOOD_COUNT	1000
#define MAX_COUNT		100000

/* A positive number from the environment, or def. */
static long env_count(const char *name, long def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > MAX_COUNT) {
		fprintf(stderr, "%s: %s wants a number from 1 to %d, not \"%s\"\n",
		    progname, name, MAX_COUNT, v);
		exit(2);
	}
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Close with a reset (RST) instead of an orderly FIN. */
static void close_with_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Blocking reads and writes give up after the timeout. */
static void set_io_timeout(int fd, const struct target *t)
{
	struct timeval tv = { t->timeout_s, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void print_ssl_errors(const char *what)
{
	unsigned long e;
	char buf[256];

	printf("%s failed", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		printf(": %s", buf);
	}
	printf("\n");
}

/* A client context that checks no certificate: the gate's is not the point. */
static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		print_ssl_errors("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* SSLRequest on fd; true iff the answer is 'S'. */
static bool ssl_request(int fd, const struct target *t)
{
	unsigned char pkt[8];

	build_request(pkt, SSL_REQUEST_CODE);
	printf("sent SSLRequest\n");
	if (!send_all(fd, pkt, sizeof(pkt)))
		return false;
	if (read_answer_byte(fd, t, "SSLRequest") != 'S') {
		printf("FAIL: expected 'S' (this mode wants an ssl=on server)\n");
		return false;
	}
	return true;
}

/* A connection in plaintext (ssl NULL) or TLS. */
struct session {
	int	 fd;
	SSL	*ssl;
	SSL_CTX	*ctx;
};

static void session_close(struct session *s, bool reset)
{
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	if (s->ctx != NULL)
		SSL_CTX_free(s->ctx);
	if (s->fd >= 0) {
		if (reset)
			close_with_reset(s->fd);
		else
			close(s->fd);
	}
	s->fd = -1;
	s->ssl = NULL;
	s->ctx = NULL;
}

/* Connect, and with tls, SSLRequest and a blocking handshake. */
static bool session_open(struct session *s, const struct target *t, bool tls,
    int rcvbuf)
{
	s->fd = -1;
	s->ssl = NULL;
	s->ctx = NULL;
	if ((s->fd = connect_rcvbuf(t, rcvbuf)) < 0)
		return false;
	set_io_timeout(s->fd, t);
	if (!tls)
		return true;
	if (!ssl_request(s->fd, t) || (s->ctx = client_ctx()) == NULL ||
	    (s->ssl = SSL_new(s->ctx)) == NULL ||
	    SSL_set_fd(s->ssl, s->fd) != 1) {
		session_close(s, false);
		return false;
	}
	if (SSL_connect(s->ssl) != 1) {
		print_ssl_errors("the TLS handshake");
		session_close(s, false);
		return false;
	}
	printf("TLS handshake done: %s %s\n", SSL_get_version(s->ssl),
	    SSL_get_cipher_name(s->ssl));
	return true;
}

static bool session_write(struct session *s, const unsigned char *p,
    size_t len)
{
	if (s->ssl == NULL)
		return send_all(s->fd, p, len);
	while (len > 0) {
		int n = SSL_write(s->ssl, p, (int)len);

		if (n <= 0) {
			print_ssl_errors("SSL_write");
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Up to len bytes: > 0 read, 0 the peer closed, -1 error or timeout. */
static long session_read(struct session *s, unsigned char *p, size_t len)
{
	long n;

	if (s->ssl == NULL) {
		do
			n = recv(s->fd, p, len, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			printf("recv: %s\n", strerror(errno));
		return n;
	}
	n = SSL_read(s->ssl, p, (int)len);
	if (n > 0)
		return n;
	switch (SSL_get_error(s->ssl, (int)n)) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			return 0;	/* EOF without close_notify */
		printf("SSL_read: %s\n", strerror(errno));
		return -1;
	default:
		print_ssl_errors("SSL_read");
		return -1;
	}
}

/*
 * StartupMessage, then messages until ReadyForQuery: true iff it came
 * without an ErrorResponse (the backend must trust the user).
 */
static bool session_login(struct session *s)
{
	static struct inbuf in;
	unsigned char pkt[PACKET_MAX];
	size_t n = build_startup(pkt), off = 0;

	memset(&in, 0, sizeof(in));
	if (!session_write(s, pkt, n))
		return false;
	printf("sent a StartupMessage\n");
	for (;;) {
		long got;

		while (in.len - off >= 5) {
			char type = (char)in.data[off];
			uint32_t mlen = get_u32(in.data + off + 1);

			if (mlen < 4 || mlen > INBUF_MAX / 2) {
				printf("FAIL: message '%c' claims %u bytes\n",
				    type, mlen);
				return false;
			}
			if (in.len - off < 1 + (size_t)mlen)
				break;
			if (type == 'E') {
				struct msgsummary sum;

				parse_messages(in.data + off, 1 + mlen, NULL,
				    &sum);
				printf("FAIL: an ErrorResponse instead of a "
				    "session\n");
				return false;
			}
			off += 1 + mlen;
			if (type == 'Z') {
				printf("logged in: ReadyForQuery\n");
				return true;
			}
		}
		if (off > 0) {
			memmove(in.data, in.data + off, in.len - off);
			in.len -= off;
			off = 0;
		}
		if (in.len == sizeof(in.data)) {
			printf("FAIL: more than %d bytes without ReadyForQuery\n",
			    INBUF_MAX);
			return false;
		}
		got = session_read(s, in.data + in.len, sizeof(in.data) - in.len);
		if (got <= 0) {
			printf("FAIL: the connection ended before ReadyForQuery\n");
			return false;
		}
		in.len += (size_t)got;
	}
}

static bool run_noread(const struct target *t, bool tls)
{
	const char *sql = getenv("RAWPROBE_QUERY");
	unsigned char *pkt;
	struct session s;
	size_t len;
	bool good;

	if (sql == NULL || *sql == '\0')
		sql = DEFAULT_NOREAD_QUERY;
	if (!session_open(&s, t, tls, NOREAD_RCVBUF))
		return false;
	if (!session_login(&s)) {
		session_close(&s, false);
		return false;
	}
	len = 1 + 4 + strlen(sql) + 1;
	if ((pkt = malloc(len)) == NULL) {
		session_close(&s, false);
		return false;
	}
	good = session_write(&s, pkt, build_query(pkt, len, sql));
	free(pkt);
	if (good) {
		printf("query sent; not reading for %d s: %s\n", t->timeout_s,
		    sql);
		sleep_ms(t->timeout_s * 1000L);
		printf("closing without having read the result\n");
	}
	session_close(&s, false);
	return good;
}

static bool mode_noread(const struct target *t)
{
	return run_noread(t, false);
}

static bool mode_tls_noread(const struct target *t)
{
	return run_noread(t, true);
}

#define PUSH_CHUNK		16384
#define PUSH_CLAIMED_LENGTH	(256u << 20)

/*
 * Write as much of p as the connection takes before the deadline, without
 * blocking past it; OpenSSL wants a retry with the same buffer.
 */
static bool session_push(struct session *s, const unsigned char *p,
    size_t len, double deadline, unsigned long long *total)
{
	while (now_s() < deadline) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
		long n;
		int wait_ms = (int)((deadline - now_s()) * 1000) + 1;

		if (s->ssl != NULL) {
			n = SSL_write(s->ssl, p, (int)len);
			if (n <= 0) {
				int e = SSL_get_error(s->ssl, (int)n);

				if (e == SSL_ERROR_WANT_READ)
					pfd.events = POLLIN;
				else if (e != SSL_ERROR_WANT_WRITE) {
					print_ssl_errors("SSL_write");
					return false;
				}
			}
		} else {
			n = send(s->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				printf("send: %s\n", strerror(errno));
				return false;
			}
		}
		if (n > 0) {
			*total += (unsigned long long)n;
			if (s->ssl != NULL || (size_t)n == len)
				return true;
			p += n;
			len -= (size_t)n;
			continue;
		}
		(void)poll(&pfd, 1, wait_ms);
	}
	return true;
}

static bool run_push(const struct target *t, bool tls)
{
	static unsigned char chunk[PUSH_CHUNK];
	unsigned char pkt[PACKET_MAX];
	char sql[64];
	unsigned long long total = 0;
	struct session s;
	double started, deadline;
	int flags;

	if (!session_open(&s, t, tls, 0))
		return false;
	if (!session_login(&s)) {
		session_close(&s, false);
		return false;
	}
	/* The backend sleeps: it reads nothing for the whole push. */
	snprintf(sql, sizeof(sql), "SELECT pg_sleep(%d)", t->timeout_s + 1);
	if (!session_write(&s, pkt, build_query(pkt, sizeof(pkt), sql))) {
		session_close(&s, false);
		return false;
	}
	printf("sent %s\n", sql);
	/* The start of a Query that never ends in time. */
	memset(chunk, 'x', sizeof(chunk));
	chunk[0] = 'Q';
	put_u32(chunk + 1, PUSH_CLAIMED_LENGTH);
	memcpy(chunk + 5, "SELECT '", 8);
	flags = fcntl(s.fd, F_GETFL);
	fcntl(s.fd, F_SETFL, flags | O_NONBLOCK);
	started = now_s();
	deadline = started + t->timeout_s;
	printf("pushing a Query of %u bytes for %d s\n", PUSH_CLAIMED_LENGTH,
	    t->timeout_s);
	while (now_s() < deadline && total < PUSH_CLAIMED_LENGTH - PUSH_CHUNK) {
		if (!session_push(&s, chunk, sizeof(chunk), deadline, &total))
			break;
		chunk[0] = 'x';		/* the rest is the string */
		memset(chunk + 1, 'x', 12);
	}
	printf("pushed %llu bytes in %.3f s; closing\n", total,
	    now_s() - started);
	session_close(&s, false);
	return true;
}

static bool mode_push(const struct target *t)
{
	return run_push(t, false);
}

static bool mode_tls_push(const struct target *t)
{
	return run_push(t, true);
}

/* The first flight of a real TLS client, from memory BIOs. */
static long client_hello(SSL_CTX *ctx, unsigned char *p, size_t len)
{
	SSL *ssl = SSL_new(ctx);
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	long n = -1;

	if (ssl == NULL || rbio == NULL || wbio == NULL) {
		BIO_free(rbio);
		BIO_free(wbio);
		SSL_free(ssl);
		return -1;
	}
	SSL_set_bio(ssl, rbio, wbio);
	SSL_set_connect_state(ssl);
	(void)SSL_do_handshake(ssl);	/* wants to read: the hello is out */
	n = BIO_read(wbio, p, (int)len);
	SSL_free(ssl);
	ERR_clear_error();
	return n;
}

static bool mode_tls_reset(const struct target *t)
{
	long count = env_count("RAWPROBE_COUNT", 1), i, hello_len;
	unsigned char hello[PACKET_MAX * 4];
	SSL_CTX *ctx = client_ctx();
	bool good = true;

	if (ctx == NULL)
		return false;
	hello_len = client_hello(ctx, hello, sizeof(hello));
	SSL_CTX_free(ctx);
	if (hello_len < 10) {
		printf("FAIL: could not make a ClientHello\n");
		return false;
	}
	print_hex("a ClientHello", hello, (size_t)hello_len);
	for (i = 0; i < count && good; i++) {
		int fd = connect_tcp(t);

		if (fd < 0)
			return false;
		good = ssl_request(fd, t) &&
		    send_all(fd, hello, (size_t)hello_len / 2);
		/* Let the server start on the half it got, then reset. */
		sleep_ms(20);
		close_with_reset(fd);
	}
	printf("%ld connection%s: SSLRequest, 'S', %ld of %ld bytes of the "
	    "ClientHello, then a reset\n", i, i == 1 ? "" : "s",
	    hello_len / 2, hello_len);
	return good;
}

static bool mode_tls_half(const struct target *t)
{
	unsigned char pkt[PACKET_MAX], buf[4096];
	struct session s;
	double started;
	long n, total = 0;

	if (!session_open(&s, t, true, 0))
		return false;
	build_startup(pkt);
	print_hex("sent over TLS", pkt, 4);
	if (!session_write(&s, pkt, 4)) {
		session_close(&s, false);
		return false;
	}
	started = now_s();
	while ((n = session_read(&s, buf, sizeof(buf))) > 0)
		total += n;
	session_close(&s, false);
	if (n < 0 && now_s() - started >= t->timeout_s - 0.5) {
		printf("FAIL: the server did not close the connection within "
		    "%d s\n", t->timeout_s);
		return false;
	}
	printf("%ld bytes received over TLS\n", total);
	printf("closed after %.3f s\n", now_s() - started);
	return true;
}

static bool mode_flood(const struct target *t)
{
	long count = env_count("RAWPROBE_COUNT", DEFAULT_FLOOD_COUNT), i;
	long hold_ms = getenv("RAWPROBE_HOLD_MS") != NULL ?
	    env_count("RAWPROBE_HOLD_MS", 0) : 0;
	long opened = 0, resets = 0;
	struct rlimit rl;
	double started = now_s();
	int *fds;

	/* Room for every socket at once. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)count + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)count + 64 ? rl.rlim_max :
		    (rlim_t)count + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((fds = calloc((size_t)count, sizeof(*fds))) == NULL)
		return false;
	for (i = 0; i < count; i++) {
		fds[i] = connect_tcp(t);
		if (fds[i] < 0)
			break;
		opened++;
	}
	printf("opened %ld of %ld connections in %.3f s\n", opened, count,
	    now_s() - started);
	if (hold_ms > 0) {
		printf("holding them for %ld ms\n", hold_ms);
		sleep_ms(hold_ms);
	}
	for (i = 0; i < opened; i++) {
		if (i % 2 == 1) {
			close_with_reset(fds[i]);
			resets++;
		} else {
			close(fds[i]);
		}
	}
	printf("closed them without a word: %ld with a reset, %ld with FIN\n",
	    resets, opened - resets);
	free(fds);
	if (opened < count)
		printf("FAIL: only %ld of %ld connections were made\n", opened,
		    count);
	return opened == count;
}

#define TLS_MAX_SUITES		128

/* A hex number from the environment (0x prefix optional), or def. */
static long env_hex(const char *name, const char *text, long def, long max)
{
	char *end;
	long n;

	if (text == NULL || *text == '\0')
		return def;
	errno = 0;
	n = strtol(text, &end, 16);
	if (errno != 0 || end == text || *end != '\0' || n < 0 || n > max) {
		fprintf(stderr, "%s: %s: \"%s\" is not a hex number up to 0x%lx\n",
		    progname, name, text, max);
		exit(2);
	}
	return n;
}

static void put_u16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_u24(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 16);
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)v;
}

/*
 * A TLS 1.2-style ClientHello record (no supported_versions, so a TLS 1.3
 * server treats version as the highest the client speaks), with the
 * extensions an ECDHE or DHE suite needs.
 */
static size_t build_client_hello(unsigned char *p, unsigned version,
    const unsigned *suites, size_t nsuites)
{
	static const unsigned groups[] = { 0x001d, 0x0017, 0x0018, 0x0019,
	    0x0100, 0x0101 };
	static const unsigned sigalgs[] = { 0x0804, 0x0805, 0x0806, 0x0401,
	    0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0201, 0x0203, 0x0202 };
	size_t n = 0, hs, ext, i;

	p[n++] = 0x16;				/* handshake record */
	put_u16(p + n, version < 0x0301 ? version : 0x0301);
	n += 2 + 2;				/* record length: below */
	hs = n;
	p[n++] = 0x01;				/* ClientHello */
	n += 3;					/* its length: below */
	put_u16(p + n, version);
	n += 2;
	if (!random_bytes(p + n, 32))
		memset(p + n, 0x5a, 32);
	n += 32;
	p[n++] = 0;				/* no session id */
	put_u16(p + n, (unsigned)(2 * nsuites));
	n += 2;
	for (i = 0; i < nsuites; i++, n += 2)
		put_u16(p + n, suites[i]);
	p[n++] = 1;				/* compression: null only */
	p[n++] = 0;
	ext = n;
	n += 2;
	put_u16(p + n, 0x000a);			/* supported_groups */
	put_u16(p + n + 2, (unsigned)(2 + 2 * (sizeof(groups) / sizeof(groups[0]))));
	put_u16(p + n + 4, (unsigned)(2 * (sizeof(groups) / sizeof(groups[0]))));
	n += 6;
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++, n += 2)
		put_u16(p + n, groups[i]);
	put_u16(p + n, 0x000b);			/* ec_point_formats */
	put_u16(p + n + 2, 2);
	p[n + 4] = 1;
	p[n + 5] = 0;				/* uncompressed */
	n += 6;
	put_u16(p + n, 0x000d);			/* signature_algorithms */
	put_u16(p + n + 2, (unsigned)(2 + 2 * (sizeof(sigalgs) / sizeof(sigalgs[0]))));
	put_u16(p + n + 4, (unsigned)(2 * (sizeof(sigalgs) / sizeof(sigalgs[0]))));
	n += 6;
	for (i = 0; i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++, n += 2)
		put_u16(p + n, sigalgs[i]);
	put_u16(p + n, 0xff01);			/* renegotiation_info, empty */
	put_u16(p + n + 2, 1);
	p[n + 4] = 0;
	n += 5;
	put_u16(p + ext, (unsigned)(n - ext - 2));
	put_u24(p + hs + 1, n - hs - 4);
	put_u16(p + 3, (unsigned)(n - 5));
	return n;
}

static const char *alert_name(unsigned desc)
{
	switch (desc) {
	case 10:	return "unexpected_message";
	case 20:	return "bad_record_mac";
	case 40:	return "handshake_failure";
	case 47:	return "illegal_parameter";
	case 50:	return "decode_error";
	case 70:	return "protocol_version";
	case 71:	return "insufficient_security";
	case 80:	return "internal_error";
	case 86:	return "inappropriate_fallback";
	case 109:	return "missing_extension";
	case 120:	return "no_application_protocol";
	}
	return "?";
}

static bool mode_tls_hello(const struct target *t)
{
	static struct inbuf in;
	unsigned suites[TLS_MAX_SUITES];
	unsigned char hello[PACKET_MAX];
	const char *want = getenv("RAWPROBE_EXPECT");
	const char *list = getenv("RAWPROBE_SUITES");
	char *copy, *tok, *save = NULL;
	unsigned version;
	size_t nsuites = 0, n;
	bool accepted, expect_accept;
	int fd;

	version = (unsigned)env_hex("RAWPROBE_TLS_VERSION",
	    getenv("RAWPROBE_TLS_VERSION"), 0x0303, 0xffff);
	if (want == NULL || *want == '\0' || strcmp(want, "refused") == 0)
		expect_accept = false;
	else if (strcmp(want, "accepted") == 0)
		expect_accept = true;
	else {
		fprintf(stderr, "%s: RAWPROBE_EXPECT is accepted or refused\n",
		    progname);
		exit(2);
	}
	if (list == NULL || *list == '\0') {
		fprintf(stderr, "%s: tls-hello needs RAWPROBE_SUITES\n",
		    progname);
		exit(2);
	}
	if ((copy = strdup(list)) == NULL)
		return false;
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if (nsuites == TLS_MAX_SUITES) {
			fprintf(stderr, "%s: more than %d suites\n", progname,
			    TLS_MAX_SUITES);
			exit(2);
		}
		suites[nsuites++] = (unsigned)env_hex("RAWPROBE_SUITES", tok, 0,
		    0xffff);
	}
	free(copy);
	if (nsuites == 0) {
		fprintf(stderr, "%s: RAWPROBE_SUITES names no suite\n", progname);
		exit(2);
	}

	if ((fd = connect_tcp(t)) < 0)
		return false;
	if (!ssl_request(fd, t)) {
		close(fd);
		return false;
	}
	n = build_client_hello(hello, version, suites, nsuites);
	printf("sent a ClientHello: version 0x%04x, %zu cipher suites:", version,
	    nsuites);
	for (size_t i = 0; i < nsuites; i++)
		printf(" 0x%04x", suites[i]);
	printf("\n");
	if (!send_all(fd, hello, n)) {
		close(fd);
		return false;
	}
	memset(&in, 0, sizeof(in));
	read_into(fd, &in, 5, deadline_of(t));
	if (in.len >= 5)
		read_into(fd, &in, 5 + (size_t)(in.data[3] << 8 | in.data[4]),
		    deadline_of(t));
	close(fd);

	if (in.timed_out && in.len < 5) {
		printf("FAIL: no answer to the ClientHello within %d s\n",
		    t->timeout_s);
		return false;
	}
	accepted = false;
	if (in.len >= 5 + 4 + 2 + 32 + 1 && in.data[0] == 0x16 &&
	    in.data[5] == 0x02) {
		size_t sid = in.data[5 + 4 + 2 + 32];
		size_t at = 5 + 4 + 2 + 32 + 1 + sid;
		unsigned v = (unsigned)(in.data[9] << 8 | in.data[10]);

		accepted = true;
		if (in.len >= at + 2)
			printf("accepted: ServerHello version 0x%04x cipher "
			    "0x%04x\n", v, (unsigned)(in.data[at] << 8 |
			    in.data[at + 1]));
		else
			printf("accepted: ServerHello version 0x%04x (cipher "
			    "not read)\n", v);
	} else if (in.len >= 7 && in.data[0] == 0x15) {
		printf("refused: alert level %u, %u (%s)\n", in.data[5],
		    in.data[6], alert_name(in.data[6]));
	} else if (in.len == 0) {
		printf("refused: the connection was %s without a word\n",
		    in.reset ? "reset" : "closed");
	} else {
		print_hex("FAIL: neither a ServerHello nor an alert", in.data,
		    in.len);
		return false;
	}
	if (accepted != expect_accept)
		printf("FAIL: expected it to be %s\n", expect_accept ?
		    "accepted" : "refused");
	return accepted == expect_accept;
}

struct mode {
	const char	*name;
	bool		(*run)(const struct target *);
};

/*
 * halfclose: log in (plaintext, trust), send "SELECT 42" and at once
 * shutdown(SHUT_WR), as a client that has nothing more to say does; then
 * read to EOF.  Pass if the result still arrives, as it does from
 * PostgreSQL itself.
 */
#define BURST_QUERIES		340
#define BURST_QUERY_BYTES	200

/* Counts ReadyForQuery and ErrorResponse messages in a stream. */
struct msgcount {
	unsigned char	head[5];	/* a message header split by reads */
	size_t		have;		/* bytes of head held */
	size_t		skip;		/* body bytes still to pass over */
	unsigned	ready, errors, rows;	/* 'Z', 'E', 'D' */
	unsigned long long copied;	/* CopyData payload bytes */
};

static void count_messages(struct msgcount *m, const unsigned char *p,
    size_t len)
{
	while (len > 0) {
		size_t take;

		if (m->skip > 0) {
			take = len < m->skip ? len : m->skip;
			m->skip -= take;
		} else {
			take = 5 - m->have < len ? 5 - m->have : len;
			memcpy(m->head + m->have, p, take);
			if ((m->have += take) == 5) {
				m->ready += m->head[0] == 'Z';
				m->errors += m->head[0] == 'E';
				m->rows += m->head[0] == 'D';
				m->skip = get_u32(m->head + 1) - 4;
				if (m->head[0] == 'd')
					m->copied += m->skip;
				m->have = 0;
			}
		}
		p += take;
		len -= take;
	}
}

static bool mode_tls_burst(const struct target *t)
{
	static unsigned char pkt[BURST_QUERY_BYTES + 64];
	char sql[BURST_QUERY_BYTES];
	unsigned char buf[16384];
	struct msgcount m = { .ready = 0 };
	struct session s;
	BIO *mem, *sock;
	char *records;
	long nrec, got;
	bool good = false;

	if (!session_open(&s, t, true, 0))
		return false;
	if (!session_login(&s))
		goto out;
	/* Every record into memory first, so that they leave in one send(). */
	if ((mem = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if ((sock = BIO_new_socket(s.fd, BIO_NOCLOSE)) == NULL) {
		BIO_free(mem);
		goto out;
	}
	SSL_set0_wbio(s.ssl, mem);
	for (int i = 0; i < BURST_QUERIES; i++) {
		int n;

		snprintf(sql, sizeof(sql), "SELECT %d, '%0*d'", i,
		    BURST_QUERY_BYTES - 32, i);
		n = (int)build_query(pkt, sizeof(pkt), sql);
		if (SSL_write(s.ssl, pkt, n) != n) {
			print_ssl_errors("SSL_write to memory");
			BIO_free(sock);
			goto out;
		}
	}
	nrec = BIO_get_mem_data(mem, &records);
	if (!send_all(s.fd, (unsigned char *)records, (size_t)nrec)) {
		BIO_free(sock);
		goto out;
	}
	SSL_set0_wbio(s.ssl, sock);	/* frees mem */
	printf("sent %d Queries in %ld bytes of TLS records, one send()\n",
	    BURST_QUERIES, nrec);
	while (m.ready < BURST_QUERIES &&
	    (got = session_read(&s, buf, sizeof(buf))) > 0)
		count_messages(&m, buf, (size_t)got);
	printf("%s: %u of %d ReadyForQuery, %u ErrorResponse\n",
	    m.ready == BURST_QUERIES && m.errors == 0 ? "PASS" : "FAIL",
	    m.ready, BURST_QUERIES, m.errors);
	good = m.ready == BURST_QUERIES && m.errors == 0;
out:
	session_close(&s, false);
	return good;
}

static bool mode_tls_keyupdate(const struct target *t)
{
	static const char sql[] = "SELECT 1";
	unsigned char pkt[PACKET_MAX], buf[4096];
	struct msgcount m = { .ready = 0 };
	struct session s;
	unsigned rounds = 3;
	size_t n;
	long got;
	bool good = false;

	if (!session_open(&s, t, true, 0))
		return false;
	if (!session_login(&s))
		goto out;
	if (SSL_version(s.ssl) != TLS1_3_VERSION) {
		printf("FAIL: %s, not TLSv1.3: no KeyUpdate\n",
		    SSL_get_version(s.ssl));
		goto out;
	}
	n = build_query(pkt, sizeof(pkt), sql);
	for (unsigned i = 0; i < rounds; i++) {
		/* Sent with the next write, before the Query's record. */
		if (SSL_key_update(s.ssl, SSL_KEY_UPDATE_REQUESTED) != 1 ||
		    !session_write(&s, pkt, n)) {
			print_ssl_errors("KeyUpdate");
			goto out;
		}
		while (m.ready < i + 1 &&
		    (got = session_read(&s, buf, sizeof(buf))) > 0)
			count_messages(&m, buf, (size_t)got);
	}
	good = m.ready == rounds && m.errors == 0;
	printf("%s: %u of %u Queries answered after a KeyUpdate each, "
	    "%u ErrorResponse\n", good ? "PASS" : "FAIL", m.ready, rounds,
	    m.errors);
out:
	session_close(&s, false);
	return good;
}

#define KEYUPDATE_FULL_ROWS	20000

static bool mode_tls_keyupdate_full(const struct target *t)
{
	static const char copy[] = "COPY (SELECT repeat('x', 1000) FROM "
	    "generate_series(1, 20000)) TO STDOUT";
	static const char sql[] = "SELECT 42";
	const unsigned long long want = KEYUPDATE_FULL_ROWS * 1001ULL;
	unsigned char pkt[PACKET_MAX], buf[16384];
	struct msgcount m = { .ready = 0 };
	struct session s;
	long got;
	bool good = false;

	if (!session_open(&s, t, true, NOREAD_RCVBUF))
		return false;
	if (!session_login(&s))
		goto out;
	if (!session_write(&s, pkt, build_query(pkt, sizeof(pkt), copy)))
		goto out;
	printf("COPY sent; not reading\n");
	sleep_ms(1000);
	if (SSL_key_update(s.ssl, SSL_KEY_UPDATE_REQUESTED) != 1 ||
	    !session_write(&s, pkt, build_query(pkt, sizeof(pkt), sql))) {
		print_ssl_errors("KeyUpdate");
		goto out;
	}
	printf("KeyUpdate and Query sent while the gate cannot write\n");
	sleep_ms(1000);
	while (m.ready < 2 && (got = session_read(&s, buf, sizeof(buf))) > 0)
		count_messages(&m, buf, (size_t)got);
	good = m.ready == 2 && m.errors == 0 && m.copied == want &&
	    m.rows == 1;
	printf("%s: %llu of %llu COPY bytes, %u row, %u ReadyForQuery, "
	    "%u ErrorResponse\n", good ? "PASS" : "FAIL", m.copied, want,
	    m.rows, m.ready, m.errors);
out:
	session_close(&s, false);
	return good;
}

static bool mode_halfclose(const struct target *t)
{
	static struct inbuf in;
	static const char sql[] = "SELECT 42";
	unsigned char pkt[PACKET_MAX];
	size_t n, off = 0;
	int fd = connect_tcp(t);
	bool ready = false, answered = false;

	if (fd < 0)
		return false;
	n = build_startup(pkt);
	send_all(fd, pkt, n);
	/* Up to ReadyForQuery. */
	while (!ready) {
		size_t len;

		read_into(fd, &in, off + 5, deadline_of(t));
		if (in.len < off + 5)
			break;
		len = 1 + (size_t)get_u32(in.data + off + 1);
		read_into(fd, &in, off + len, deadline_of(t));
		if (in.len < off + len)
			break;
		ready = in.data[off] == 'Z';
		off += len;
	}
	if (!ready) {
		print_ending(&in, t);
		printf("FAIL: no ReadyForQuery after the StartupMessage\n");
		close(fd);
		return false;
	}
	send_all(fd, pkt, build_query(pkt, sizeof(pkt), sql));
	shutdown(fd, SHUT_WR);
	printf("sent Query \"%s\", then shutdown(SHUT_WR)\n", sql);
	read_into(fd, &in, 0, deadline_of(t));
	close(fd);
	for (size_t i = off; i + 5 <= in.len;) {
		size_t len = 1 + (size_t)get_u32(in.data + i + 1);

		if (in.data[i] == 'D' && i + len <= in.len && len >= 13 &&
		    memcmp(in.data + i + len - 2, "42", 2) == 0)
			answered = true;
		if (len < 5)
			break;
		i += len;
	}
	print_ending(&in, t);
	printf("%s: %zu bytes after the query%s\n", answered ? "PASS" : "FAIL",
	    in.len - off, answered ? ", the DataRow with 42 among them" :
	    ", no DataRow with 42");
	return answered;
}

/*
 * busy: connect, send an SSLRequest and read to the end: pass iff the
 * answer is only ErrorResponse(s) with SQLSTATE 53300, then the close.
 */
static bool mode_busy(const struct target *t)
{
	static struct inbuf in;
	struct msgsummary sum;
	unsigned char pkt[8];
	int fd = connect_tcp(t);

	if (fd < 0)
		return false;
	send_all(fd, pkt, build_request(pkt, SSL_REQUEST_CODE));
	read_into(fd, &in, 0, deadline_of(t));
	close(fd);
	parse_messages(in.data, in.len, "53300", &sum);
	print_ending(&in, t);
	if (sum.errors == 0 || sum.wrong_state > 0 || sum.others > 0 ||
	    sum.incomplete || in.timed_out) {
		printf("FAIL: not just a 53300 ErrorResponse and the close\n");
		return false;
	}
	return true;
}

/*
 * halfclose-wait, tls-halfclose-wait: log in, send RAWPROBE_QUERY (by
 * default SELECT pg_sleep(13), 42), then end the sending side
 * (shutdown(SHUT_WR), or TLS close_notify) and read to the end, at most
 * RAWPROBE_READ_KBPS KiB a second when set, with a small receive buffer so
 * that a slow read holds the gate back (and not at all for
 * RAWPROBE_STALL_MS once COPY data came).  Pass iff the answer came whole:
 * a ReadyForQuery, no ErrorResponse.  Prints the rows and COPY bytes.
 */
#define HALFCLOSE_RCVBUF	16384

static bool halfclose_wait(const struct target *t, bool tls)
{
	const char *sql = getenv("RAWPROBE_QUERY") != NULL ?
	    getenv("RAWPROBE_QUERY") : "SELECT pg_sleep(13), 42";
	long kbps = getenv("RAWPROBE_READ_KBPS") != NULL ?
	    env_count("RAWPROBE_READ_KBPS", 0) : 0;
	long stall_ms = getenv("RAWPROBE_STALL_MS") != NULL ?
	    env_count("RAWPROBE_STALL_MS", 0) : 0;
	static unsigned char pkt[PACKET_MAX * 4];
	unsigned char buf[16384];
	struct msgcount m = { .ready = 0 };
	struct session s;
	double started;
	long got;
	bool good;

	if (!session_open(&s, t, tls, kbps > 0 || stall_ms > 0 ?
	    HALFCLOSE_RCVBUF : 0))
		return false;
	if (!session_login(&s) ||
	    !session_write(&s, pkt, build_query(pkt, sizeof(pkt), sql))) {
		session_close(&s, false);
		return false;
	}
	if (tls) {
		SSL_shutdown(s.ssl);	/* close_notify; reading goes on */
		printf("sent Query \"%s\", then close_notify\n", sql);
	} else {
		shutdown(s.fd, SHUT_WR);
		printf("sent Query \"%s\", then shutdown(SHUT_WR)\n", sql);
	}
	started = now_s();
	while ((got = session_read(&s, buf, kbps > 0 ? 4096 : sizeof(buf))) >
	    0) {
		count_messages(&m, buf, (size_t)got);
		if (stall_ms > 0 && m.copied > 0) {
			printf("not reading for %ld ms\n", stall_ms);
			sleep_ms(stall_ms);
			stall_ms = 0;
		}
		if (kbps > 0)	/* 4 KiB at kbps KiB/s */
			sleep_ms(4000 / kbps > 0 ? 4000 / kbps : 1);
	}
	good = m.ready == 1 && m.errors == 0;
	printf("%s: after %.1f s: %u row(s), %llu COPY bytes, %u ReadyForQuery, "
	    "%u ErrorResponse, then the end\n", good ? "PASS" : "FAIL",
	    now_s() - started, m.rows, m.copied, m.ready, m.errors);
	session_close(&s, false);
	return good;
}

static bool mode_halfclose_wait(const struct target *t)
{
	return halfclose_wait(t, false);
}

static bool mode_tls_halfclose_wait(const struct target *t)
{
	return halfclose_wait(t, true);
}

#define SCRAM_PLUS	"SCRAM-SHA-256-PLUS"
#define SCRAM_PLAIN	"SCRAM-SHA-256"
#define AUTH_SASL	10u

/*
 * Send a StartupMessage for RAWPROBE_USER and read the first message, which
 * must be AuthenticationSASL.  Prints the mechanisms; *plus and *plain say
 * which were offered.  False when it is not that message or malformed.
 */
static bool read_sasl_offer(struct session *s, bool *plus, bool *plain)
{
	static unsigned char msg[PACKET_MAX];
	unsigned char pkt[PACKET_MAX];
	size_t have = 0, total = 5, off;
	uint32_t mlen;

	*plus = *plain = false;
	if (!session_write(s, pkt, build_startup(pkt)))
		return false;
	while (have < total) {
		long got = session_read(s, msg + have, total - have);

		if (got <= 0) {
			printf("FAIL: the connection ended before "
			    "AuthenticationSASL\n");
			return false;
		}
		have += (size_t)got;
		if (have == 5 && total == 5) {
			mlen = get_u32(msg + 1);
			if (msg[0] != 'R' || mlen < 8 || mlen >= PACKET_MAX) {
				print_hex("FAIL: not an AuthenticationSASL "
				    "header", msg, 5);
				return false;
			}
			total = 1 + (size_t)mlen;
		}
	}
	if (get_u32(msg + 5) != AUTH_SASL) {
		printf("FAIL: authentication code %u, not %u (SASL)\n",
		    get_u32(msg + 5), AUTH_SASL);
		return false;
	}
	/* Names, each with its NUL, then an empty one ending the message. */
	printf("AuthenticationSASL (%zu bytes):", total);
	for (off = 9; off < total && msg[off] != '\0';) {
		size_t n = strnlen((const char *)msg + off, total - off);

		if (off + n >= total) {
			printf(" [unterminated name]\n");
			return false;
		}
		printf(" %s", (const char *)msg + off);
		*plus |= strcmp((const char *)msg + off, SCRAM_PLUS) == 0;
		*plain |= strcmp((const char *)msg + off, SCRAM_PLAIN) == 0;
		off += n + 1;
	}
	printf("\n");
	if (off + 1 != total) {
		printf("FAIL: the list does not end exactly at the length "
		    "word's end (offset %zu of %zu)\n", off, total);
		return false;
	}
	return true;
}

static bool mode_scram_offer(const struct target *t)
{
	struct session s;
	bool plus, plain, good;

	if (!session_open(&s, t, false, 0))
		return false;
	good = read_sasl_offer(&s, &plus, &plain) && plain && !plus;
	session_close(&s, false);
	if (!good)
		printf("FAIL: expected SCRAM-SHA-256 and no SCRAM-SHA-256-PLUS\n");
	return good;
}

static bool mode_tls_scram_plus(const struct target *t)
{
	static struct inbuf in;
	const char data[] = "p=tls-server-end-point,,n=,r=rawprobenonce";
	unsigned char pkt[PACKET_MAX];
	struct session s;
	size_t n = 5;
	bool plus, plain, good;

	if (!session_open(&s, t, true, 0))
		return false;
	if (!read_sasl_offer(&s, &plus, &plain) || !plus) {
		printf("FAIL: no SCRAM-SHA-256-PLUS offered\n");
		session_close(&s, false);
		return false;
	}
	pkt[0] = 'p';
	n += put_cstring(pkt + n, SCRAM_PLUS);
	put_u32(pkt + n, (uint32_t)(sizeof(data) - 1));
	n += 4;
	memcpy(pkt + n, data, sizeof(data) - 1);
	n += sizeof(data) - 1;
	put_u32(pkt + 1, (uint32_t)(n - 1));
	for (size_t i = 0; i < n; i++) {
		if (!session_write(&s, pkt + i, 1)) {
			session_close(&s, false);
			return false;
		}
		sleep_ms(20);
	}
	printf("sent a SASLInitialResponse for %s in %zu TLS records\n",
	    SCRAM_PLUS, n);
	memset(&in, 0, sizeof(in));
	for (;;) {
		long got = session_read(&s, in.data + in.len,
		    sizeof(in.data) - in.len);

		if (got <= 0) {
			in.eof = got == 0;
			in.timed_out = got < 0;
			break;
		}
		in.len += (size_t)got;
	}
	session_close(&s, false);
	good = errors_then_close(&in, 0, SQLSTATE_PROTOCOL_VIOLATION, true, t);
	return good;
}

static const struct mode modes[] = {
	{ "inject", mode_inject },
	{ "badlen", mode_badlen },
	{ "truncated", mode_truncated },
	{ "garbage", mode_garbage },
	{ "double-ssl", mode_double_ssl },
	{ "gss-then-startup", mode_gss_then_startup },
	{ "silent", mode_silent },
	{ "half", mode_half },
	{ "listen-full", mode_listen_full },
	{ "tls-reset", mode_tls_reset },
	{ "tls-half", mode_tls_half },
	{ "noread", mode_noread },
	{ "tls-noread", mode_tls_noread },
	{ "push", mode_push },
	{ "tls-push", mode_tls_push },
	{ "tls-burst", mode_tls_burst },
	{ "tls-keyupdate", mode_tls_keyupdate },
	{ "tls-keyupdate-full", mode_tls_keyupdate_full },
	{ "flood", mode_flood },
	{ "tls-hello", mode_tls_hello },
	{ "halfclose", mode_halfclose },
	{ "halfclose-wait", mode_halfclose_wait },
	{ "tls-halfclose-wait", mode_tls_halfclose_wait },
	{ "busy", mode_busy },
	{ "scram-offer", mode_scram_offer },
	{ "tls-scram-plus", mode_tls_scram_plus },
};

int main(int argc, char **argv)
{
	struct target t = { .timeout_s = DEFAULT_TIMEOUT_S };
	int i = 1;
	size_t m;

	if (argc > 0 && argv[0] != NULL) {
		const char *slash = strrchr(argv[0], '/');
		progname = slash != NULL ? slash + 1 : argv[0];
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && strcmp(argv[1], "--timeout") == 0) {
		char *end;
		long v = strtol(argv[2], &end, 10);

		if (*argv[2] == '\0' || *end != '\0' || v < 1 || v > 3600)
			usage();
		t.timeout_s = (int)v;
		i = 3;
	}
	if (argc - i != 3)
		usage();
	t.host = argv[i + 1];
	t.port = argv[i + 2];

	for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		if (strcmp(argv[i], modes[m].name) == 0) {
			bool good = modes[m].run(&t);

			printf("%s: %s\n", modes[m].name, good ? "PASS" : "FAIL");
			return good ? 0 : 1;
		}
	}
	usage();
	return 2;
}
