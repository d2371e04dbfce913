/*
 * idle_hold: open N PostgreSQL sessions with libpq, check each one, then
 * keep them open and idle until told to stop.  Used by bench/run.sh to
 * measure how much memory a proxy spends per idle TLS session.
 *
 *   idle_hold CONNINFO N [WINDOW]
 *
 * Sessions are opened without blocking, at most WINDOW (default 32) at a
 * time.  Each one that connects runs "SELECT 1" once, so that the whole path
 * (client, proxy, server) is known to work.  When every attempt has finished
 * it prints one line on stdout:
 *
 *   ready held=H failed=F ssl=S first_error=...
 *
 * where S counts the held sessions that use TLS (PQsslInUse), then waits.
 * SIGTERM, SIGINT or SIGUSR1 make it close every session and exit 0; so
 * does end of file on stdin when stdin is not a terminal.  It exits 1 if no
 * session could be held, 2 on a usage error.
 *
 * Build: cc -O2 -o idle_hold idle_hold.c $(pkg-config --cflags --libs libpq)
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct attempt {
	PGconn	*conn;
	int	 want_write;	/* PGRES_POLLING_WRITING last time */
};

static char first_error[512];

static void
note_error(PGconn *conn, const char *what)
{
	const char *msg;
	size_t n;

	if (first_error[0] != '\0')
		return;
	msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
	snprintf(first_error, sizeof(first_error), "%s: %s", what, msg);
	/* one line: turn newlines into spaces, drop the trailing one */
	for (n = 0; first_error[n] != '\0'; n++)
		if (first_error[n] == '\n' || first_error[n] == '\t')
			first_error[n] = ' ';
	while (n > 0 && first_error[n - 1] == ' ')
		first_error[--n] = '\0';
}

/* Run SELECT 1 on a fresh session; 0 if it answered as expected. */
static int
check_session(PGconn *conn)
{
	PGresult *res = PQexec(conn, "SELECT 1");
	int ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "1") == 0;

	if (!ok)
		note_error(conn, "SELECT 1");
	PQclear(res);
	return ok ? 0 : -1;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	const char *conninfo;
	long n, window = 32, started = 0, held = 0, failed = 0, ssl = 0;
	long active = 0, i;
	PGconn **sessions;
	struct attempt *slots;
	struct pollfd *pfds;
	struct sigaction sa;
	double t0;
	char *end;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s CONNINFO N [WINDOW]\n", argv[0]);
		return 2;
	}
	conninfo = argv[1];
	n = strtol(argv[2], &end, 10);
	if (*end != '\0' || n < 1 || n > 1000000) {
		fprintf(stderr, "idle_hold: bad N: %s\n", argv[2]);
		return 2;
	}
	if (argc == 4) {
		window = strtol(argv[3], &end, 10);
		if (*end != '\0' || window < 1 || window > 10000) {
			fprintf(stderr, "idle_hold: bad WINDOW: %s\n", argv[3]);
			return 2;
		}
	}
	if (window > n)
		window = n;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	sessions = calloc((size_t)n, sizeof(*sessions));
	slots = calloc((size_t)window, sizeof(*slots));
	pfds = calloc((size_t)window, sizeof(*pfds));
	if (sessions == NULL || slots == NULL || pfds == NULL) {
		fprintf(stderr, "idle_hold: out of memory\n");
		return 1;
	}

	t0 = now_seconds();
	for (;;) {
		/* Fill the window with new attempts. */
		for (i = 0; i < window && started < n; i++) {
			PGconn *c;

			if (slots[i].conn != NULL)
				continue;
			c = PQconnectStart(conninfo);
			started++;
			if (c == NULL || PQstatus(c) == CONNECTION_BAD) {
				note_error(c, "connect");
				PQfinish(c);
				failed++;
				continue;
			}
			slots[i].conn = c;
			slots[i].want_write = 1;
			active++;
		}
		if (active == 0 || stop_requested)
			break;

		for (i = 0; i < window; i++) {
			pfds[i].fd = -1;
			pfds[i].events = 0;
			pfds[i].revents = 0;
			if (slots[i].conn == NULL)
				continue;
			pfds[i].fd = PQsocket(slots[i].conn);
			pfds[i].events = slots[i].want_write ? POLLOUT : POLLIN;
		}
		if (poll(pfds, (nfds_t)window, 1000) < 0 && errno != EINTR) {
			perror("idle_hold: poll");
			return 1;
		}

		for (i = 0; i < window; i++) {
			PGconn *c = slots[i].conn;

			if (c == NULL || pfds[i].revents == 0)
				continue;
			switch (PQconnectPoll(c)) {
			case PGRES_POLLING_READING:
				slots[i].want_write = 0;
				continue;
			case PGRES_POLLING_WRITING:
				slots[i].want_write = 1;
				continue;
			case PGRES_POLLING_OK:
				if (check_session(c) == 0) {
					sessions[held++] = c;
					if (PQsslInUse(c))
						ssl++;
				} else {
					PQfinish(c);
					failed++;
				}
				break;
			default:
				note_error(c, "connect");
				PQfinish(c);
				failed++;
				break;
			}
			slots[i].conn = NULL;
			active--;
		}
	}

	printf("ready held=%ld failed=%ld ssl=%ld seconds=%.2f first_error=%s\n",
	    held, failed, ssl, now_seconds() - t0,
	    first_error[0] != '\0' ? first_error : "none");
	fflush(stdout);

	/* Hold until a signal, or end of file on a non-terminal stdin. */
	while (!stop_requested) {
		struct pollfd in = { .fd = 0, .events = POLLIN };

		if (isatty(0)) {
			pause();
			continue;
		}
		if (poll(&in, 1, -1) > 0) {
			char buf[256];

			if (read(0, buf, sizeof(buf)) <= 0)
				break;
		}
	}

	for (i = 0; i < window; i++)
		PQfinish(slots[i].conn);
	for (i = 0; i < held; i++)
		PQfinish(sessions[i]);
	free(sessions);
	free(slots);
	free(pfds);
	return held > 0 ? 0 : 1;
}
