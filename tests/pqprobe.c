/*
 * pqprobe: a libpq client for the integration tests.
 *
 *   pqprobe [options] CONNINFO
 *   pqprobe --free-port
 *
 * Connects once and prints one line:
 *
 *   connected ssl=1 protocol=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384
 *   connected ssl=0
 *   refused: <first line of PQerrorMessage>
 *
 * then checks what the options expect and exits 0 only when all of it held
 * (1 when something did not, with the reason on stderr; 2 on bad usage).
 * Without --expect, "connected" is what is expected.
 *
 * --hold-file PATH keeps the session open between two runs of --query: the
 * query runs, "holding until PATH exists" is printed, and once PATH exists
 * (checked every 50 ms, for up to --timeout seconds) the same query runs
 * again on the same connection; both must succeed.  A test can so hold a
 * session open across something it does to the server, then use it again.
 *
 * --verbose-errors connects with PQERRORS_VERBOSE, so that a refusal the
 * server sent shows its SQLSTATE: "refused: ... FATAL:  53300: sorry, ...".
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define DEFAULT_CONNECT_TIMEOUT	"10"
#define DEFAULT_TIMEOUT_S	10
#define HOLD_POLL_MS		50
#define SQLSTATE_QUERY_CANCELED	"57014"
#define VALUE_PRINT_MAX		60

enum expectation {
	EXPECT_CONNECTED,
	EXPECT_REFUSED,
};

struct options {
	enum expectation expect;
	int		 ssl;			/* -1: not checked */
	const char	*error_contains;	/* NULL: not checked */
	const char	*query;			/* NULL: no query */
	const char	*expect_value;		/* NULL: not checked */
	long		 expect_length;		/* -1: not checked */
	long		 cancel_after_ms;	/* -1: no cancel */
	int		 timeout_s;
	const char	*hold_file;		/* NULL: no second query */
	bool		 verbose_errors;
	const char	*conninfo;
};

static const char *progname = "pqprobe";

static void usage(void)
{
	fprintf(stderr,
	    "usage: %s [--expect connected|refused] [--ssl 0|1]\n"
	    "          [--error-contains TEXT] [--query SQL]\n"
	    "          [--expect-value TEXT] [--expect-length N]\n"
	    "          [--cancel-after MS] [--timeout S]\n"
	    "          [--hold-file PATH] [--verbose-errors] CONNINFO\n"
	    "       %s --free-port\n", progname, progname);
	exit(2);
}

/* Report why an expectation did not hold. */
static void mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mismatch(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: FAIL: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static long parse_number(const char *opt, const char *text, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: %s wants a number from %ld to %ld, not \"%s\"\n",
		    progname, opt, min, max, text);
		exit(2);
	}
	return v;
}

/* Bind 127.0.0.1:0 and print the port the kernel chose. */
static int print_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		perror("bind");
		close(fd);
		return 1;
	}
	printf("%u\n", (unsigned)ntohs(sin.sin_port));
	close(fd);
	return 0;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	int i;

	o->expect = EXPECT_CONNECTED;
	o->ssl = -1;
	o->error_contains = NULL;
	o->query = NULL;
	o->expect_value = NULL;
	o->expect_length = -1;
	o->cancel_after_ms = -1;
	o->timeout_s = DEFAULT_TIMEOUT_S;
	o->hold_file = NULL;
	o->verbose_errors = false;
	o->conninfo = NULL;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--free-port") == 0 && argc == 2)
			exit(print_free_port());
		if (a[0] != '-' || a[1] != '-') {
			if (o->conninfo != NULL)
				usage();
			o->conninfo = a;
			continue;
		}
		if (strcmp(a, "--verbose-errors") == 0) {
			o->verbose_errors = true;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--expect") == 0) {
			if (strcmp(v, "connected") == 0)
				o->expect = EXPECT_CONNECTED;
			else if (strcmp(v, "refused") == 0)
				o->expect = EXPECT_REFUSED;
			else
				usage();
		} else if (strcmp(a, "--ssl") == 0) {
			o->ssl = (int)parse_number(a, v, 0, 1);
		} else if (strcmp(a, "--error-contains") == 0) {
			o->error_contains = v;
		} else if (strcmp(a, "--query") == 0) {
			o->query = v;
		} else if (strcmp(a, "--expect-value") == 0) {
			o->expect_value = v;
		} else if (strcmp(a, "--expect-length") == 0) {
			o->expect_length = parse_number(a, v, 0, 1L << 30);
		} else if (strcmp(a, "--cancel-after") == 0) {
			o->cancel_after_ms = parse_number(a, v, 0, 600000);
		} else if (strcmp(a, "--timeout") == 0) {
			o->timeout_s = (int)parse_number(a, v, 1, 3600);
		} else if (strcmp(a, "--hold-file") == 0) {
			o->hold_file = v;
		} else {
			usage();
		}
	}
	if (o->conninfo == NULL)
		usage();
	if (o->cancel_after_ms >= 0 && o->query == NULL) {
		fprintf(stderr, "%s: --cancel-after needs --query\n", progname);
		exit(2);
	}
	if (o->hold_file != NULL && (o->query == NULL || o->cancel_after_ms >= 0)) {
		fprintf(stderr, "%s: --hold-file needs --query, without "
		    "--cancel-after\n", progname);
		exit(2);
	}
	if ((o->expect_value != NULL || o->expect_length >= 0) && o->query == NULL) {
		fprintf(stderr, "%s: --expect-value/--expect-length need --query\n",
		    progname);
		exit(2);
	}
}

/*
 * connect_timeout=10 unless CONNINFO sets it: with expand_dbname, the
 * connection string given as dbname overrides the keywords before it.
 */
static PGconn *connect_db(const char *conninfo)
{
	const char *const keywords[] = { "connect_timeout", "dbname", NULL };
	const char *const values[] = { DEFAULT_CONNECT_TIMEOUT, conninfo, NULL };

	return PQconnectdbParams(keywords, values, 1);
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static double now_s(void);

/*
 * The same connection, made step by step so that the error verbosity can be
 * set before the server says anything.  connect_timeout is libpq's to apply
 * only in PQconnectdb, so --timeout bounds the whole attempt here.
 */
static PGconn *connect_db_verbose(const char *conninfo, int timeout_s)
{
	const char *const keywords[] = { "connect_timeout", "dbname", NULL };
	const char *const values[] = { DEFAULT_CONNECT_TIMEOUT, conninfo, NULL };
	double deadline = now_s() + timeout_s;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *conn;

	conn = PQconnectStartParams(keywords, values, 1);
	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
		return conn;
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd;
		double left = deadline - now_s();
		int rc;

		if (left <= 0) {
			printf("refused: no connection within %d s\n", timeout_s);
			mismatch("the connection did not complete within %d s",
			    timeout_s);
			PQfinish(conn);
			exit(1);
		}
		/* The socket may change between attempts: ask every time. */
		pfd.fd = PQsocket(conn);
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1);
		if (rc < 0 && errno != EINTR) {
			perror("poll");
			break;
		}
		if (rc > 0)
			st = PQconnectPoll(conn);
	}
	return conn;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The first line of a libpq message, without its newline. */
static void print_first_line(const char *prefix, const char *msg)
{
	size_t n = strcspn(msg, "\n");

	printf("%s%.*s\n", prefix, (int)n, msg);
}

static void print_connected(PGconn *conn)
{
	const char *protocol, *cipher;

	if (!PQsslInUse(conn)) {
		printf("connected ssl=0\n");
		return;
	}
	protocol = PQsslAttribute(conn, "protocol");
	cipher = PQsslAttribute(conn, "cipher");
	printf("connected ssl=1 protocol=%s cipher=%s\n",
	    protocol != NULL ? protocol : "?", cipher != NULL ? cipher : "?");
}

/* Check what --expect, --ssl and --error-contains say about the connection. */
static bool check_connection(PGconn *conn, const struct options *o)
{
	bool connected = PQstatus(conn) == CONNECTION_OK;
	const char *err = PQerrorMessage(conn);
	bool good = true;

	if (connected)
		print_connected(conn);
	else
		print_first_line("refused: ", err);

	if (o->expect == EXPECT_CONNECTED && !connected) {
		mismatch("expected to connect, but the connection failed: %s", err);
		return false;
	}
	if (o->expect == EXPECT_REFUSED && connected) {
		mismatch("expected the connection to be refused, but it succeeded "
		    "(ssl=%d)", PQsslInUse(conn));
		return false;
	}
	if (connected && o->ssl >= 0 && PQsslInUse(conn) != o->ssl) {
		mismatch("expected ssl=%d, got ssl=%d", o->ssl, PQsslInUse(conn));
		good = false;
	}
	if (o->error_contains != NULL && strstr(err, o->error_contains) == NULL) {
		mismatch("expected the error to contain \"%s\", got: %s",
		    o->error_contains, connected ? "(no error)" : err);
		good = false;
	}
	return good;
}

static bool check_value(const PGresult *res, const struct options *o)
{
	const char *value;
	int len;

	if (PQntuples(res) < 1 || PQnfields(res) < 1) {
		printf("query ok: no rows\n");
		if (o->expect_value != NULL || o->expect_length >= 0) {
			mismatch("expected a value, the query returned no rows");
			return false;
		}
		return true;
	}
	value = PQgetisnull(res, 0, 0) ? "(null)" : PQgetvalue(res, 0, 0);
	len = PQgetlength(res, 0, 0);
	if (len > VALUE_PRINT_MAX)
		printf("query ok: %.*s... (%d bytes)\n", VALUE_PRINT_MAX, value, len);
	else
		printf("query ok: %s\n", value);

	if (o->expect_value != NULL && strcmp(value, o->expect_value) != 0) {
		mismatch("expected the value \"%s\", got \"%s\"", o->expect_value,
		    value);
		return false;
	}
	if (o->expect_length >= 0 && len != o->expect_length) {
		mismatch("expected a value of %ld bytes, got %d", o->expect_length,
		    len);
		return false;
	}
	return true;
}

static bool run_query(PGconn *conn, const struct options *o)
{
	PGresult *res = PQexec(conn, o->query);
	ExecStatusType st = PQresultStatus(res);
	bool good;

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		printf("query failed: sqlstate=%s\n", state != NULL ? state : "none");
		mismatch("query \"%s\" failed: %s", o->query, PQerrorMessage(conn));
		PQclear(res);
		return false;
	}
	good = check_value(res, o);
	PQclear(res);
	return good;
}

/*
 * Wait until a result is ready without blocking past the deadline.  Polls in
 * short slices so data that TLS already buffered is not waited on forever.
 */
static bool wait_for_result(PGconn *conn, double deadline)
{
	struct pollfd pfd;

	while (PQisBusy(conn)) {
		double left = deadline - now_s();

		if (left <= 0)
			return false;
		pfd.fd = PQsocket(conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1) < 0 &&
		    errno != EINTR) {
			perror("poll");
			return false;
		}
		if (!PQconsumeInput(conn))
			return true;	/* the error is what PQgetResult reports */
	}
	return true;
}

static bool send_cancel(PGconn *conn)
{
	char errbuf[256];
	PGcancel *cancel = PQgetCancel(conn);
	int sent;

	if (cancel == NULL) {
		mismatch("PQgetCancel returned nothing");
		return false;
	}
	sent = PQcancel(cancel, errbuf, sizeof(errbuf));
	PQfreeCancel(cancel);
	if (!sent) {
		mismatch("PQcancel failed: %s", errbuf);
		return false;
	}
	return true;
}

/* --hold-file: wait for the file, then the same query again. */
static bool hold_then_query_again(PGconn *conn, const struct options *o)
{
	double deadline = now_s() + o->timeout_s;

	printf("holding until %s exists\n", o->hold_file);
	while (!file_exists(o->hold_file)) {
		if (now_s() >= deadline) {
			mismatch("%s did not appear within %d s", o->hold_file,
			    o->timeout_s);
			return false;
		}
		sleep_ms(HOLD_POLL_MS);
	}
	printf("released; the same query again on the same connection\n");
	return run_query(conn, o);
}

/* Query asynchronously, cancel it, and demand SQLSTATE 57014 in time. */
static bool run_cancelled_query(PGconn *conn, const struct options *o)
{
	double started, cancelled, deadline;
	PGresult *res;
	const char *state;
	bool good;

	started = now_s();
	if (!PQsendQuery(conn, o->query)) {
		mismatch("PQsendQuery failed: %s", PQerrorMessage(conn));
		return false;
	}
	sleep_ms(o->cancel_after_ms);
	cancelled = now_s();
	if (!send_cancel(conn))
		return false;

	deadline = cancelled + o->timeout_s;
	if (!wait_for_result(conn, deadline)) {
		mismatch("no result within %d s of the cancel request", o->timeout_s);
		return false;
	}
	res = PQgetResult(conn);
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	printf("cancel: sqlstate=%s after %.3f s (%.3f s after the cancel request)\n",
	    state != NULL ? state : "none", now_s() - started, now_s() - cancelled);

	good = PQresultStatus(res) == PGRES_FATAL_ERROR && state != NULL &&
	    strcmp(state, SQLSTATE_QUERY_CANCELED) == 0;
	if (!good)
		mismatch("expected the query to fail with SQLSTATE %s, got %s "
		    "(status %s)", SQLSTATE_QUERY_CANCELED,
		    state != NULL ? state : "none",
		    PQresStatus(PQresultStatus(res)));
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	return good;
}

int main(int argc, char **argv)
{
	struct options o;
	PGconn *conn;
	bool good;

	if (argc > 0 && argv[0] != NULL) {
		const char *slash = strrchr(argv[0], '/');
		progname = slash != NULL ? slash + 1 : argv[0];
	}
	/* Keep the result line ahead of any complaint on stderr. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv, &o);

	if (o.verbose_errors)
		conn = connect_db_verbose(o.conninfo, o.timeout_s);
	else
		conn = connect_db(o.conninfo);
	if (conn == NULL) {
		mismatch("out of memory");
		return 1;
	}
	good = check_connection(conn, &o);
	if (good && PQstatus(conn) == CONNECTION_OK && o.query != NULL) {
		if (o.cancel_after_ms >= 0)
			good = run_cancelled_query(conn, &o);
		else
			good = run_query(conn, &o);
		if (good && o.hold_file != NULL)
			good = hold_then_query_again(conn, &o);
	}
	fflush(stdout);
	PQfinish(conn);
	return good ? 0 : 1;
}
