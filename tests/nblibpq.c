/*
 * nblibpq: the driver contract's client for libpq in non-blocking mode, as
 * psycopg 3's async connections, node's pg-native and ruby-pg use it:
 * PQconnectStartParams/PQconnectPoll, PQsetnonblocking, poll() on PQsocket,
 * PQsendQuery/PQconsumeInput/PQisBusy/PQgetResult; never a blocking call
 * except PQcancel, which is the cancel the driver contract asks for.
 *
 *   nblibpq connect|big|cancel|stall key=value ...
 *
 * Keys go to libpq as conninfo keywords, except rows=N (big) and
 * timeout=S (stall: the bound on its ten queries, 20 s by default).
 *
 * stall runs SELECT repeat('x', 7000) FROM generate_series(1, 300) ten
 * times.  Such a client waits in poll() whenever libpq stopped reading in
 * the middle of a TLS record: the rest of the record sits in OpenSSL, the
 * socket is empty and nothing more comes.  libpq reads into the free part
 * of its 16 KiB input buffer, so records of 8 KiB (PostgreSQL's own) fit
 * and 16 KiB ones can be cut.  On a stall it says where it waited and how
 * many bytes OpenSSL held at that point; when all arrive, the size of the
 * largest TLS record received (its header's length: the data, plus the
 * content type and tag in TLS 1.3).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define NB_CONNECT_TIMEOUT_S	10
#define NB_OVERALL_TIMEOUT_S	60
#define NB_CANCEL_AFTER_MS	1000
#define NB_CANCEL_WAIT_S	10
#define NB_STALL_TIMEOUT_S	20
#define NB_STALL_QUERIES	10
#define NB_STALL_ROWS		300
#define NB_STALL_WIDTH		7000
#define NB_MAX_KEYS		32
#define SQLSTATE_QUERY_CANCELED	"57014"

enum nb_wait {
	NB_WAIT_OK,
	NB_WAIT_TIMEOUT,
	NB_WAIT_ERROR
};

static const char	*keys[NB_MAX_KEYS + 2];
static const char	*vals[NB_MAX_KEYS + 2];
static int		 nkeys;
static long		 rows = 1000;
static int		 stall_timeout = NB_STALL_TIMEOUT_S;
static size_t		 record_max;	/* largest TLS record received */

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One line, no newlines inside, as the contract wants. */
static void
print_oneline(const char *prefix, const char *text)
{
	fputs(prefix, stdout);
	for (const char *p = text; *p != '\0'; p++)
		putchar(*p == '\n' || *p == '\r' ? ' ' : *p);
	putchar('\n');
	fflush(stdout);
}

static int
fail(const char *sqlstate, const char *message)
{
	char	prefix[64];

	snprintf(prefix, sizeof(prefix), "ERROR sqlstate=%s ",
	    sqlstate != NULL && *sqlstate != '\0' ? sqlstate : "none");
	print_oneline(prefix, message);
	return 1;
}

static int
fail_conn(PGconn *conn, const char *what)
{
	char	msg[1024];

	snprintf(msg, sizeof(msg), "%s: %s", what, PQerrorMessage(conn));
	PQfinish(conn);
	return fail(NULL, msg);
}

static void
overall_timeout(int sig)
{
	static const char	msg[] = "ERROR sqlstate=none no end within "
				    "the overall timeout\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Bytes of whole or partial TLS records OpenSSL holds, unread by libpq. */
static int
tls_pending(PGconn *conn)
{
	SSL	*ssl = PQsslInUse(conn) ? PQsslStruct(conn, "OpenSSL") : NULL;

	return ssl != NULL ? SSL_pending(ssl) : 0;
}

/* OpenSSL shows every record header it reads: note the largest. */
static void
record_seen(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
	const unsigned char	*h = buf;
	size_t			 n;

	(void)version;
	(void)ssl;
	(void)arg;
	if (write_p || content_type != SSL3_RT_HEADER || len < 5)
		return;
	n = (size_t)h[3] << 8 | h[4];
	if (n > record_max)
		record_max = n;
}

/*
 * Wait until the socket is ready for events or deadline passes; what a
 * non-blocking libpq client does between two calls into libpq.
 */
static enum nb_wait
wait_socket(PGconn *conn, short events, double deadline)
{
	struct pollfd	pfd;
	double		left;
	int		n;

	pfd.fd = PQsocket(conn);
	pfd.events = events;
	if (pfd.fd < 0)
		return NB_WAIT_ERROR;
	for (;;) {
		if ((left = deadline - now()) <= 0)
			return NB_WAIT_TIMEOUT;
		n = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (n > 0)
			return NB_WAIT_OK;
		if (n == 0)
			continue;	/* the deadline check decides */
		if (errno != EINTR)
			return NB_WAIT_ERROR;
	}
}

static PGconn *
nb_connect(int *rc)
{
	PGconn			*conn;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double			 deadline = now() + NB_CONNECT_TIMEOUT_S;
	enum nb_wait		 w;

	conn = PQconnectStartParams(keys, vals, 0);
	if (conn == NULL) {
		*rc = fail(NULL, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD) {
		*rc = fail_conn(conn, "connection failed");
		return NULL;
	}
	for (;;) {
		if (st == PGRES_POLLING_OK)
			break;
		if (st == PGRES_POLLING_FAILED) {
			*rc = fail_conn(conn, "connection failed");
			return NULL;
		}
		/* sslmode=allow or prefer may retry on a new socket. */
		w = wait_socket(conn, st == PGRES_POLLING_READING ? POLLIN :
		    POLLOUT, deadline);
		if (w == NB_WAIT_TIMEOUT) {
			*rc = fail_conn(conn, "connection timed out after 10 s");
			return NULL;
		}
		if (w == NB_WAIT_ERROR) {
			*rc = fail_conn(conn, "poll() on the socket failed");
			return NULL;
		}
		st = PQconnectPoll(conn);
	}
	if (PQsetnonblocking(conn, 1) != 0) {
		*rc = fail_conn(conn, "PQsetnonblocking");
		return NULL;
	}
	return conn;
}

/*
 * Send a query and flush it without blocking: a full socket buffer is
 * waited out with poll(), reading what the server sends meanwhile.
 */
static int
nb_send(PGconn *conn, const char *sql, double deadline)
{
	int	f;

	if (!PQsendQuery(conn, sql))
		return -1;
	while ((f = PQflush(conn)) == 1) {
		if (wait_socket(conn, POLLIN | POLLOUT, deadline) != NB_WAIT_OK)
			return -1;
		if (!PQconsumeInput(conn))
			return -1;
	}
	return f;
}

/*
 * Read until a whole result is there.  Returns NB_WAIT_OK with *res set
 * (NULL at the end of the query's results), or how the wait ended.
 */
static enum nb_wait
nb_result(PGconn *conn, double deadline, PGresult **res)
{
	enum nb_wait	w;

	*res = NULL;
	while (PQisBusy(conn)) {
		if ((w = wait_socket(conn, POLLIN, deadline)) != NB_WAIT_OK)
			return w;
		if (!PQconsumeInput(conn))
			return NB_WAIT_ERROR;
	}
	*res = PQgetResult(conn);
	return NB_WAIT_OK;
}

static const char *
ssl_word(PGconn *conn)
{
	return PQsslInUse(conn) ? "on" : "off";
}

static int
fail_result(PGconn *conn, PGresult *res)
{
	char	sqlstate[8], msg[1024];

	snprintf(sqlstate, sizeof(sqlstate), "%s",
	    res != NULL && PQresultErrorField(res, PG_DIAG_SQLSTATE) != NULL ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : "none");
	snprintf(msg, sizeof(msg), "%s", res != NULL ?
	    PQresultErrorMessage(res) : PQerrorMessage(conn));
	PQclear(res);
	PQfinish(conn);
	return fail(sqlstate, msg);
}

/*
 * Run one query to its end; the last result that was not an error is kept
 * in *last (NULL if none).  Returns 0, or an exit status after printing.
 */
static int
nb_query(PGconn *conn, const char *sql, double deadline, PGresult **last,
    const char *what)
{
	PGresult	*res;
	enum nb_wait	 w;
	char		 msg[512];

	*last = NULL;
	if (nb_send(conn, sql, deadline) != 0)
		return fail_result(conn, NULL);
	for (;;) {
		if ((w = nb_result(conn, deadline, &res)) == NB_WAIT_TIMEOUT) {
			snprintf(msg, sizeof(msg), "%s: poll() on the socket "
			    "waited until the timeout for the rest of the "
			    "result, with %d bytes held by OpenSSL", what,
			    tls_pending(conn));
			PQclear(*last);
			PQfinish(conn);
			return fail(NULL, msg);
		}
		if (w == NB_WAIT_ERROR)
			return fail_result(conn, NULL);
		if (res == NULL)
			return 0;
		if (PQresultStatus(res) != PGRES_TUPLES_OK &&
		    PQresultStatus(res) != PGRES_COMMAND_OK) {
			PQclear(*last);
			return fail_result(conn, res);
		}
		PQclear(*last);
		*last = res;
	}
}

static int
act_connect(PGconn *conn)
{
	PGresult	*res;
	int		 rc;

	if ((rc = nb_query(conn, "SELECT 1", now() + NB_OVERALL_TIMEOUT_S,
	    &res, "SELECT 1")) != 0)
		return rc;
	if (res == NULL || PQntuples(res) != 1 ||
	    strcmp(PQgetvalue(res, 0, 0), "1") != 0) {
		PQclear(res);
		PQfinish(conn);
		return fail(NULL, "SELECT 1 did not return 1");
	}
	printf("OK ssl=%s\n", ssl_word(conn));
	PQclear(res);
	PQfinish(conn);
	return 0;
}

static int
act_big(PGconn *conn)
{
	PGresult	*res;
	EVP_MD_CTX	*md;
	unsigned char	 digest[EVP_MAX_MD_SIZE];
	unsigned int	 dlen;
	unsigned long long bytes = 0;
	char		 sql[128], hex[2 * EVP_MAX_MD_SIZE + 1];
	int		 rc, n;

	snprintf(sql, sizeof(sql), "SELECT i, md5(i::text) FROM "
	    "generate_series(1, %ld) i", rows);
	if ((rc = nb_query(conn, sql, now() + NB_OVERALL_TIMEOUT_S, &res,
	    "big")) != 0)
		return rc;
	if (res == NULL || (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1) {
		PQclear(res);
		PQfinish(conn);
		return fail(NULL, "no result, or no MD5 in OpenSSL");
	}
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		const char	*a = PQgetvalue(res, i, 0);
		const char	*b = PQgetvalue(res, i, 1);

		EVP_DigestUpdate(md, a, strlen(a));
		EVP_DigestUpdate(md, ",", 1);
		EVP_DigestUpdate(md, b, strlen(b));
		EVP_DigestUpdate(md, "\n", 1);
		bytes += strlen(a) + strlen(b) + 2;
	}
	EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	for (unsigned int i = 0; i < dlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	printf("OK ssl=%s rows=%d bytes=%llu md5=%s\n", ssl_word(conn), n,
	    bytes, hex);
	PQclear(res);
	PQfinish(conn);
	return 0;
}

static int
act_cancel(PGconn *conn)
{
	PGresult	*res, *err = NULL;
	PGcancel	*cancel;
	double		 start = now();
	enum nb_wait	 w;
	char		 errbuf[256];

	if (nb_send(conn, "SELECT pg_sleep(30)", start + 10) != 0)
		return fail_result(conn, NULL);
	/* Keep reading for a second: the query must be running. */
	w = nb_result(conn, start + NB_CANCEL_AFTER_MS / 1000.0, &res);
	if (w == NB_WAIT_ERROR)
		return fail_result(conn, NULL);
	if (w == NB_WAIT_OK) {
		PQclear(res);
		PQfinish(conn);
		return fail(NULL, "pg_sleep(30) ended before the cancel");
	}
	if ((cancel = PQgetCancel(conn)) == NULL)
		return fail_conn(conn, "PQgetCancel");
	if (!PQcancel(cancel, errbuf, sizeof(errbuf))) {
		PQfreeCancel(cancel);
		PQfinish(conn);
		return fail(NULL, errbuf);
	}
	PQfreeCancel(cancel);
	for (;;) {
		w = nb_result(conn, now() + NB_CANCEL_WAIT_S, &res);
		if (w == NB_WAIT_TIMEOUT) {
			PQclear(err);
			PQfinish(conn);
			return fail(NULL, "the cancelled query did not end "
			    "within 10 s");
		}
		if (w == NB_WAIT_ERROR)
			return fail_result(conn, NULL);
		if (res == NULL)
			break;
		if (err == NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
			err = res;
		else
			PQclear(res);
	}
	if (err == NULL) {
		PQfinish(conn);
		return fail(NULL, "pg_sleep(30) was not cancelled");
	}
	if (strcmp(PQresultErrorField(err, PG_DIAG_SQLSTATE) != NULL ?
	    PQresultErrorField(err, PG_DIAG_SQLSTATE) : "",
	    SQLSTATE_QUERY_CANCELED) != 0)
		return fail_result(conn, err);
	printf("OK cancelled sqlstate=%s\n", SQLSTATE_QUERY_CANCELED);
	PQclear(err);
	PQfinish(conn);
	return 0;
}

static int
act_stall(PGconn *conn)
{
	PGresult	*res;
	double		 start = now(), deadline = start + stall_timeout;
	char		 sql[128], what[128];
	int		 rc;

	snprintf(sql, sizeof(sql), "SELECT repeat('x', %d) FROM "
	    "generate_series(1, %d)", NB_STALL_WIDTH, NB_STALL_ROWS);
	if (PQsslInUse(conn))
		SSL_set_msg_callback(PQsslStruct(conn, "OpenSSL"), record_seen);
	for (int q = 1; q <= NB_STALL_QUERIES; q++) {
		snprintf(what, sizeof(what), "stalled in query %d of %d "
		    "(started %.1f s into the run, timeout %d s)", q,
		    NB_STALL_QUERIES, now() - start, stall_timeout);
		if ((rc = nb_query(conn, sql, deadline, &res, what)) != 0)
			return rc;
		if (res == NULL || PQntuples(res) != NB_STALL_ROWS ||
		    PQgetlength(res, NB_STALL_ROWS - 1, 0) != NB_STALL_WIDTH) {
			PQclear(res);
			PQfinish(conn);
			return fail(NULL, "a query returned the wrong rows");
		}
		PQclear(res);
	}
	printf("OK ssl=%s queries=%d rows=%d seconds=%.2f record_max=%zu\n",
	    ssl_word(conn), NB_STALL_QUERIES, NB_STALL_QUERIES * NB_STALL_ROWS,
	    now() - start, record_max);
	PQfinish(conn);
	return 0;
}

static long
number(const char *key, const char *text, long max)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < 1 || v > max) {
		printf("ERROR sqlstate=none %s wants a number from 1 to %ld\n",
		    key, max);
		exit(1);
	}
	return v;
}

int
main(int argc, char **argv)
{
	const char	*action;
	PGconn		*conn;
	bool		 have_timeout = false;
	int		 rc = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: nblibpq connect|big|cancel|stall "
		    "key=value ...\n");
		return 2;
	}
	action = argv[1];
	for (int i = 2; i < argc; i++) {
		char	*eq = strchr(argv[i], '=');

		if (eq == NULL || eq == argv[i]) {
			printf("ERROR sqlstate=none not key=value: %s\n",
			    argv[i]);
			return 1;
		}
		*eq = '\0';
		if (strcmp(argv[i], "rows") == 0)
			rows = number("rows", eq + 1, 100000000);
		else if (strcmp(argv[i], "timeout") == 0)
			stall_timeout = (int)number("timeout", eq + 1, 3600);
		else if (nkeys < NB_MAX_KEYS) {
			if (strcmp(argv[i], "connect_timeout") == 0)
				have_timeout = true;
			keys[nkeys] = argv[i];
			vals[nkeys++] = eq + 1;
		}
	}
	if (!have_timeout) {
		keys[nkeys] = "connect_timeout";
		vals[nkeys++] = "10";
	}
	keys[nkeys] = vals[nkeys] = NULL;
	if (strcmp(action, "connect") != 0 && strcmp(action, "big") != 0 &&
	    strcmp(action, "cancel") != 0 && strcmp(action, "stall") != 0) {
		printf("UNSUPPORTED no action \"%s\"\n", action);
		return 3;
	}
	signal(SIGALRM, overall_timeout);
	/* stall's own bound may be longer than the contract's 60 s. */
	alarm(strcmp(action, "stall") == 0 ? (unsigned)(stall_timeout +
	    NB_CONNECT_TIMEOUT_S + 5) : NB_OVERALL_TIMEOUT_S);
	if ((conn = nb_connect(&rc)) == NULL)
		return rc;
	if (strcmp(action, "connect") == 0)
		return act_connect(conn);
	if (strcmp(action, "big") == 0)
		return act_big(conn);
	if (strcmp(action, "cancel") == 0)
		return act_cancel(conn);
	return act_stall(conn);
}
