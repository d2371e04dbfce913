/*
 * rawprobe: protocol abuse over a plain socket, no libpq.
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
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
	    "       silent half listen-full\n",
	    progname);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* ---- packets ---------------------------------------------------------- */

/* SSLRequest, GSSENCRequest: length 8 and a request code. */
static size_t build_request(unsigned char *p, uint32_t code)
{
	put_u32(p, 8);
	put_u32(p + 4, code);
	return 8;
}

static size_t put_cstring(unsigned char *p, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(p, s, n);
	return n;
}

/* StartupMessage, protocol 3.0, user=postgres database=postgres. */
static size_t build_startup(unsigned char *p)
{
	size_t n = 8;

	n += put_cstring(p + n, "user");
	n += put_cstring(p + n, "postgres");
	n += put_cstring(p + n, "database");
	n += put_cstring(p + n, "postgres");
	n += put_cstring(p + n, "application_name");
	n += put_cstring(p + n, "rawprobe");
	p[n++] = '\0';
	put_u32(p, (uint32_t)n);
	put_u32(p + 4, PROTOCOL_3_0);
	return n;
}

/* ---- socket I/O --------------------------------------------------------- */

static int connect_tcp(const struct target *t)
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

struct mode {
	const char	*name;
	bool		(*run)(const struct target *);
};

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
