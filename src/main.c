/*
 * main: command line, start-up checks, signals (reload, drain, stop) and
 * the event loop.  All fatal errors happen here, before the first
 * connection is accepted; after that, a failure ends a connection or a
 * reload, never the process.
 */
#include <sys/resource.h>

#include <unistd.h>

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/opensslv.h>

#include "check.h"
#include "config.h"
#include "filewatch.h"
#include "gate.h"
#include "httpd.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "testpki.h"
#include "sdnotify.h"
#include "worker.h"

static int		 saved_argc;
static char		**saved_argv;
static struct event	*drain_timer;
static int		 workers_done;
static struct config	*started_cfg;	/* what the sockets were opened with */
static bool		 socket_activated;	/* sockets from systemd */

static void
usage(FILE *out)
{
	fprintf(out,
	    "pgsslgate is an SSL gate in front of a PostgreSQL-protocol "
	    "server.\n\n"
	    "Usage:\n"
	    "  pgsslgate [CONFIG_FILE] [-c NAME=VALUE]...\n"
	    "  pgsslgate --check [CONFIG_FILE] [-c NAME=VALUE]...\n"
	    "  pgsslgate --make-test-pki DIR [NAME]... [--user USER]...\n\n"
	    "Options:\n"
	    "  -c NAME=VALUE   set a parameter; overrides CONFIG_FILE "
	    "(repeatable)\n"
	    "  --check         check the configuration and every file it "
	    "names,\n"
	    "                  print a report, exit 0 if no problem, else 1\n"
	    "  --make-test-pki write a throwaway CA, server chain and client "
	    "certificates\n"
	    "                  (for USERs, default postgres) into DIR, then "
	    "say how to\n"
	    "                  use them; the server's also for each NAME\n"
	    "  -d, --debug     also log debugging detail\n"
	    "  -h, --help      show this help, then exit\n"
	    "  -V, --version   show the version, then exit\n\n"
	    "Without CONFIG_FILE, the -c options alone configure it, e.g.\n"
	    "  pgsslgate -c port=6432 -c backend_port=5432 -c require_ssl=on "
	    "\\\n    -c ssl_cert_file=server.crt -c ssl_key_file=server.key\n\n"
	    "Signals: SIGHUP reloads (as changed files do, "
	    "file_check_interval),\nSIGTERM drains sessions at their idle "
	    "points (shutdown_delay, shutdown_timeout),\na second SIGTERM, "
	    "SIGQUIT or SIGINT stop at once.\n"
	    "See pgsslgate(8) and pgsslgate.conf(5).\n");
}

/*
 * The configuration from the command line: the file first, then every -c
 * wherever it stood, so -c wins.  Used at start and on every reload; with
 * fsp, *fsp gets the file watcher's capture, begun before the file is read.
 */
static struct config *
load_config(int argc, char **argv, char *err, size_t errlen,
    struct filewatch_set **fsp)
{
	struct config	*cfg;
	const char	*file = NULL;

	if ((cfg = config_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			if (++i >= argc) {
				snprintf(err, errlen, "-c needs NAME=VALUE");
				goto fail;
			}
		} else if (strncmp(argv[i], "-c", 2) == 0 ||
		    strcmp(argv[i], "-d") == 0 ||
		    strcmp(argv[i], "--debug") == 0 ||
		    strcmp(argv[i], "--check") == 0) {
			continue;
		} else if (argv[i][0] == '-') {
			snprintf(err, errlen, "unknown option \"%s\" (try "
			    "\"pgsslgate --help\")", argv[i]);
			goto fail;
		} else if (file != NULL) {
			snprintf(err, errlen, "more than one configuration "
			    "file (\"%s\", \"%s\")", file, argv[i]);
			goto fail;
		} else
			file = argv[i];
	}
	if (fsp != NULL)
		*fsp = filewatch_capture_begin(file);
	if (file != NULL && config_load_file(cfg, file, err, errlen) != 0)
		goto fail;
	for (int i = 1; i < argc; i++) {
		const char *arg = NULL;

		if (strcmp(argv[i], "-c") == 0)
			arg = argv[++i];
		else if (strncmp(argv[i], "-c", 2) == 0)
			arg = argv[i] + 2;
		if (arg != NULL && config_set_option(cfg, arg, err, errlen) != 0)
			goto fail;
	}
	return cfg;
fail:
	if (fsp != NULL) {
		filewatch_set_free(*fsp);
		*fsp = NULL;
	}
	config_unref(cfg);
	return NULL;
}

/*
 * The descriptors of what the gate accepts, not only of its sessions:
 * client.c takes up to 2 x max_connections connections (past the limit, to
 * answer 53300 or to forward a cancel request), and each may hold a socket
 * to the backend too; each worker has its event loop, command pipe,
 * listening sockets and one reserve descriptor (listener.c); the metrics
 * endpoint its socket and clients; 64 for the rest (stdio, the main loop,
 * syslog, files read at a reload).
 */
static rlim_t
main_fd_budget(int max_connections, int workers)
{
	return (rlim_t)max_connections * 4 +
	    (rlim_t)workers * (4 + WORKER_MAX_LISTENERS) +
	    1 + METRICS_MAX_CLIENTS + 64;
}

static void
raise_fd_limit(int max_connections, int workers)
{
	struct rlimit	rl;
	rlim_t		want = main_fd_budget(max_connections, workers);

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		log_warn("open file limit %llu is below the %llu that "
		    "max_connections = %d needs; raise it (ulimit -n, or "
		    "LimitNOFILE= in the systemd unit); until then, a client "
		    "that finds no descriptor free gets 53300",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)want, max_connections);
}

static int worker_count(const struct config *);

static void
apply_log_destination(const struct config *cfg)
{
	log_set_target(cfg->log_destination == CONFIG_LOG_SYSLOG ?
	    LOG_TARGET_SYSLOG : LOG_TARGET_STDERR);
}

/*
 * SIGHUP, or new file contents (filewatch.c): re-read the file and every
 * certificate, key, CA and CRL, even if no path changed.  New connections
 * get the new snapshot; sessions keep the one they started with.  On any
 * failure the old one stays in force.
 */
static void
reload(enum gate_reload_trigger trigger)
{
	const struct config	*old = started_cfg;
	struct filewatch_set	*fs = NULL;
	struct snapshot		*snap = NULL;
	struct config		*cfg;
	char			 err[1024];
	unsigned		 open;

	if (trigger == GATE_RELOAD_SIGNAL) {
		log_info("received SIGHUP; reloading the configuration");
		sdnotify_reloading("reloading the configuration");
	} else
		sdnotify_reloading("files changed: reloading the configuration");
	if ((cfg = load_config(saved_argc, saved_argv, err, sizeof(err),
	    &fs)) != NULL) {
		filewatch_capture_add(fs, cfg);
		snap = snapshot_new(cfg, gate.snap, err, sizeof(err));
	}
	if (snap == NULL) {
		gate.reloads_failed[trigger]++;
		filewatch_set_free(fs);
		filewatch_failed();
		log_error("reload failed, still serving with the previous "
		    "configuration and certificates: %s", err);
		/* systemd leaves "reloading" only on READY=1, failed or not. */
		sdnotify_state("READY=1", "reload failed, serving the "
		    "previous configuration: %s", err);
		return;
	}
	if (!socket_activated && (strcmp(old->listen_addresses,
	    snap->cfg->listen_addresses) != 0 || old->port != snap->cfg->port))
		log_warn("listen_addresses and port take effect only at "
		    "start: still listening on \"%s\" port %d; restart to "
		    "apply", old->listen_addresses, old->port);
	if (strcmp(old->metrics_listen, snap->cfg->metrics_listen) != 0)
		log_warn("metrics_listen takes effect only at start: still "
		    "\"%s\"; restart to apply", old->metrics_listen);
	if (worker_count(snap->cfg) != gate.nworkers)
		log_warn("workers takes effect only at start: still %d; "
		    "restart to apply", gate.nworkers);
	apply_log_destination(snap->cfg);
	if (snap->cfg->require_ssl && !snap->cfg->ssl)
		log_warn("require_ssl = on has no effect while ssl = off");
	raise_fd_limit(snap->cfg->max_connections, gate.nworkers);
	gate_set_snapshot(snap);
	gate.reloads_ok[trigger]++;
	gate.last_reload_ok = time(NULL);
	filewatch_loaded(gate.base, fs, snap->cfg->file_check_interval);
	open = atomic_load(&gate.nconns);
	log_info("configuration reloaded: ssl = %s, require_ssl = %s, "
	    "clientcert = %s, backend %s; %u open connection%s keep their "
	    "settings", snap->cfg->ssl ? "on" : "off",
	    snap->cfg->require_ssl ? "on" : "off",
	    config_clientcert_name(snap->cfg->clientcert),
	    snap->route.backend_name, open, open == 1 ? "" : "s");
	if (snap->hba != NULL)
		log_info("hba_file %s: %zu rule%s for new connections",
		    snap->hba->hba_file, snap->hba->nlines,
		    snap->hba->nlines == 1 ? "" : "s");
	sdnotify_state("READY=1", "configuration reloaded: ssl = %s, "
	    "require_ssl = %s, backend %s", snap->cfg->ssl ? "on" : "off",
	    snap->cfg->require_ssl ? "on" : "off", snap->route.backend_name);
}

static void
reload_on_file_change(void)
{
	reload(GATE_RELOAD_FILE);
}

static void
tell_workers(char cmd)
{
	/* Either command closes the workers' listening sockets. */
	atomic_store(&gate.listening, false);
	for (int i = 0; i < gate.nworkers; i++)
		worker_send(&gate.workers[i], cmd);
}

/*
 * A SIGTERM drain, in stages on one timer: shutdown_delay (still
 * accepting; /readyz already says draining, so load balancers move away),
 * then shutdown_timeout (listeners closed; sessions end at their idle
 * points), then DRAIN_GRACE_SEC (sessions end between messages; one in the
 * middle of a long message gets this long to reach its end), then all
 * close.
 */
enum drain_stage {
	DRAIN_NONE,
	DRAIN_DELAY,
	DRAIN_WAIT,
	DRAIN_FORCED,
};

#define DRAIN_GRACE_SEC	3

static enum drain_stage	drain_stage;
static int		drain_timeout;	/* shutdown_timeout at the SIGTERM */

static void
quit_now(const char *why)
{
	unsigned	open = atomic_load(&gate.nconns);

	log_info("%s; closing %u connection%s now", why, open,
	    open == 1 ? "" : "s");
	sdnotify_state("STOPPING=1", "stopping: closing %u connection%s",
	    open, open == 1 ? "" : "s");
	tell_workers(WORKER_CMD_QUIT);
}

static void	drain_expired(evutil_socket_t, short, void *);

static void
drain_arm(int sec)
{
	struct timeval	tv = { sec, 0 };

	if ((drain_timer == NULL && (drain_timer = evtimer_new(gate.base,
	    drain_expired, NULL)) == NULL) || evtimer_add(drain_timer, &tv) !=
	    0)
		quit_now("could not set the drain's timer");
}

static void
drain_start(const char *why)
{
	unsigned	open = atomic_load(&gate.nconns);

	drain_stage = DRAIN_WAIT;
	sdnotify_state("STOPPING=1", "draining: waiting up to %d s for %u "
	    "connection%s", drain_timeout, open, open == 1 ? "" : "s");
	log_info("%s; no longer accepting connections, waiting up to %d s "
	    "(shutdown_timeout) for %u connection%s: each ends at its next "
	    "idle point", why, drain_timeout, open, open == 1 ? "" : "s");
	tell_workers(WORKER_CMD_DRAIN);
	drain_arm(drain_timeout);
}

static void
drain_expired(evutil_socket_t fd, short what, void *arg)
{
	unsigned	open = atomic_load(&gate.nconns);

	(void)fd;
	(void)what;
	(void)arg;
	switch (drain_stage) {
	case DRAIN_NONE:
		break;
	case DRAIN_DELAY:
		drain_start("shutdown_delay is over");
		break;
	case DRAIN_WAIT:
		drain_stage = DRAIN_FORCED;
		log_info("shutdown_timeout expired; ending %u connection%s "
		    "between messages", open, open == 1 ? "" : "s");
		tell_workers(WORKER_CMD_FORCE);
		drain_arm(DRAIN_GRACE_SEC);
		break;
	case DRAIN_FORCED:
		quit_now("drain grace period over");
		break;
	}
}

/* A worker's loop ended; when all have, so does the main loop. */
static void
on_worker_done(evutil_socket_t fd, short what, void *arg)
{
	char	byte;

	(void)what;
	(void)arg;
	while (read(fd, &byte, 1) == 1)
		if (++workers_done == gate.nworkers)
			event_base_loopbreak(gate.base);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	const struct config	*cfg = gate.snap->cfg;

	(void)what;
	(void)arg;
	switch (sig) {
	case SIGHUP:
		reload(GATE_RELOAD_SIGNAL);
		return;
	case SIGINT:
		quit_now("received SIGINT");
		return;
	case SIGQUIT:
		quit_now("received SIGQUIT");
		return;
	}
	/* PgBouncer's convention: a second SIGTERM means now. */
	if (drain_stage != DRAIN_NONE) {
		quit_now(drain_stage == DRAIN_DELAY ? "received SIGTERM again "
		    "during shutdown_delay" : "received SIGTERM again");
		return;
	}
	/* /readyz says "draining" from now until the last session ends. */
	atomic_store(&gate.draining, true);
	drain_timeout = cfg->shutdown_timeout;
	/*
	 * shutdown_delay: go on accepting while /readyz says draining, so a
	 * load balancer (Kubernetes' endpoints) stops sending clients here
	 * before the listeners close.
	 */
	if (cfg->shutdown_delay > 0) {
		drain_stage = DRAIN_DELAY;
		sdnotify_state("STOPPING=1", "stopping: still accepting for "
		    "shutdown_delay = %d s", cfg->shutdown_delay);
		log_info("received SIGTERM; still accepting connections for "
		    "shutdown_delay = %d s, then closing the listeners",
		    cfg->shutdown_delay);
		drain_arm(cfg->shutdown_delay);
		return;
	}
	drain_start("received SIGTERM");
}

/* workers = 0: one per CPU this process may run on (its affinity mask). */
static int
worker_count(const struct config *cfg)
{
	cpu_set_t	set;
	long		n;

	if (cfg->workers > 0)
		return cfg->workers;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* --make-test-pki DIR [NAME]... [--user USER]...: write it, then exit. */
static int
run_make_test_pki(int argc, char **argv)
{
	char		**names, **users, *dir = NULL, err[1024];
	size_t		  nnames = 0, nusers = 0;
	int		  rc = 1;

	names = calloc((size_t)argc, sizeof(*names));
	users = calloc((size_t)argc, sizeof(*users));
	if (names == NULL || users == NULL) {
		fprintf(stderr, "pgsslgate: out of memory\n");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--make-test-pki") == 0) {
			if (++i >= argc || dir != NULL) {
				fprintf(stderr, "pgsslgate: --make-test-pki "
				    "needs one DIR\n");
				goto out;
			}
			dir = argv[i];
		} else if (strcmp(argv[i], "--user") == 0) {
			if (++i >= argc) {
				fprintf(stderr, "pgsslgate: --user needs a "
				    "user name\n");
				goto out;
			}
			users[nusers++] = argv[i];
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "pgsslgate: \"%s\" does not go with "
			    "--make-test-pki (try \"pgsslgate --help\")\n",
			    argv[i]);
			goto out;
		} else
			names[nnames++] = argv[i];
	}
	if (testpki_make(dir, names, nnames, users, nusers, stdout, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "pgsslgate: %s\n", err);
		goto out;
	}
	rc = 0;
out:
	free(names);
	free(users);
	return rc;
}

/* --check: the whole start-up, as a report on stdout, then exit. */
static void
print_rule(void *arg, const char *text)
{
	(void)arg;
	log_info("  %s", text);
}

/* --check: the access rules in force, as the gate understood them. */
static void
check_rules(const struct snapshot *snap)
{
	const struct config	*cfg = snap->cfg;

	if (snap->hba != NULL) {
		log_info("hba_file %s: %zu rule%s, first match wins%s%s",
		    snap->hba->hba_file, snap->hba->nlines,
		    snap->hba->nlines == 1 ? "" : "s",
		    snap->hba->ident_file != NULL ? "; ident_file " : "",
		    snap->hba->ident_file != NULL ? snap->hba->ident_file : "");
		hba_describe(snap->hba, print_rule, NULL);
		return;
	}
	/* The two lines require_ssl and clientcert stand for. */
	log_info("no hba_file; require_ssl and clientcert amount to:");
	log_info("  hostnossl database all user all address all: %s",
	    cfg->ssl && (cfg->require_ssl ||
	    cfg->clientcert != CONFIG_CLIENTCERT_OFF) ? "reject" : "pass");
	log_info("  hostssl database all user all address all: pass%s",
	    cfg->clientcert == CONFIG_CLIENTCERT_VERIFY_CA ?
	    " clientcert=verify-ca" :
	    cfg->clientcert == CONFIG_CLIENTCERT_VERIFY_FULL ?
	    " clientcert=verify-full (certificate CN must be the user name)" :
	    "");
}

static int
run_check(void)
{
	struct config	*cfg;
	char		 err[1024];

	log_set_target(LOG_TARGET_REPORT);
	if ((cfg = load_config(saved_argc, saved_argv, err, sizeof(err),
	    NULL)) == NULL) {
		log_error("%s", err);
		goto verdict;
	}
	log_info("configuration: %s", cfg->config_file != NULL ?
	    cfg->config_file : "(command line only)");
	if ((gate.snap = snapshot_new(cfg, NULL, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		goto verdict;
	}
	if (gate.snap->cfg->require_ssl && !gate.snap->cfg->ssl)
		log_warn("require_ssl = on has no effect while ssl = off");
	check_rules(gate.snap);
	check_backend(gate.snap);
	snapshot_unref(gate.snap);
verdict:
	if (log_problem_count() == 0) {
		printf("pgsslgate --check: no problems found\n");
		return 0;
	}
	printf("pgsslgate --check: %u problem%s found\n", log_problem_count(),
	    log_problem_count() == 1 ? "" : "s");
	return 1;
}

int
main(int argc, char **argv)
{
	struct event	*signals[5] = { NULL, NULL, NULL, NULL, NULL };
	static const int signums[5] = { SIGHUP, SIGTERM, SIGINT, SIGQUIT, 0 };
	struct event	*done_event = NULL;
	struct filewatch_set *fs = NULL;
	struct config	*cfg;
	char		 err[1024];
	bool		 check = false;
	int		 rc = 1, started = 0, ninherited;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "-V") == 0 ||
		    strcmp(argv[i], "--version") == 0) {
			printf("pgsslgate %s (%s, libevent %s)\n",
			    PACKAGE_VERSION, OPENSSL_VERSION_TEXT,
			    event_get_version());
			return 0;
		}
		if (strcmp(argv[i], "-d") == 0 ||
		    strcmp(argv[i], "--debug") == 0)
			log_set_debug(1);
		if (strcmp(argv[i], "--check") == 0)
			check = true;
		if (strcmp(argv[i], "--make-test-pki") == 0)
			return run_make_test_pki(argc, argv);
		if (strcmp(argv[i], "-c") == 0)
			i++;
	}
	saved_argc = argc;
	saved_argv = argv;
	signal(SIGPIPE, SIG_IGN);
	if (check)
		return run_check();

	if ((cfg = load_config(argc, argv, err, sizeof(err), &fs)) == NULL) {
		fprintf(stderr, "pgsslgate: %s\n", err);
		return 1;
	}
	filewatch_capture_add(fs, cfg);
	if ((gate.snap = snapshot_new(cfg, NULL, err, sizeof(err))) == NULL) {
		filewatch_set_free(fs);
		log_fatal("%s", err);
		return 1;
	}
	gate.last_reload_ok = time(NULL);
	cfg = gate.snap->cfg;
	started_cfg = config_ref(cfg);
	if (cfg->require_ssl && !cfg->ssl)
		log_warn("require_ssl = on has no effect while ssl = off: "
		    "every client is served in plaintext");
	gate.nworkers = worker_count(cfg);
	raise_fd_limit(cfg->max_connections, gate.nworkers);
	sdnotify_init();
	if ((ninherited = sdnotify_listen_fds(WORKER_MAX_LISTENERS, err,
	    sizeof(err))) < 0) {
		log_fatal("%s", err);
		goto out;
	}
	if ((socket_activated = ninherited > 0)) {
		listener_use_inherited(SDNOTIFY_LISTEN_FDS_START, ninherited);
		log_info("socket activation: accepting on the %d socket%s "
		    "systemd passed; listen_addresses and port are not used",
		    ninherited, ninherited == 1 ? "" : "s");
	}
	if ((gate.base = event_base_new()) == NULL ||
	    (gate.workers = calloc((size_t)gate.nworkers,
	    sizeof(*gate.workers))) == NULL) {
		log_fatal("could not create the event loop: out of memory");
		goto out;
	}
	for (int i = 0; i < gate.nworkers; i++) {
		if (worker_init(&gate.workers[i], i, cfg, err,
		    sizeof(err)) != 0) {
			log_fatal("%s", err);
			goto out;
		}
	}
	/* Every worker holds its own copies of systemd's sockets now. */
	listener_close_inherited();
	if (*cfg->metrics_listen != '\0' &&
	    httpd_listen(gate.base, cfg->metrics_listen, err,
	    sizeof(err)) != 0) {
		log_fatal("%s", err);
		goto out;
	}
	for (int i = 0; signums[i] != 0; i++) {
		signals[i] = evsignal_new(gate.base, signums[i], on_signal, NULL);
		if (signals[i] == NULL || evsignal_add(signals[i], NULL) != 0) {
			log_fatal("could not install signal handlers");
			goto out;
		}
	}
	done_event = event_new(gate.base, worker_done_fd(),
	    EV_READ | EV_PERSIST, on_worker_done, NULL);
	if (done_event == NULL || event_add(done_event, NULL) != 0) {
		log_fatal("could not set up the event loop");
		goto out;
	}
	filewatch_set_reload(reload_on_file_change);
	filewatch_loaded(gate.base, fs, cfg->file_check_interval);
	fs = NULL;
	for (; started < gate.nworkers; started++) {
		if (worker_start(&gate.workers[started]) != 0) {
			log_fatal("could not start worker thread %d", started);
			tell_workers(WORKER_CMD_QUIT);
			goto out;
		}
	}
	atomic_store(&gate.listening, true);
	log_info("pgsslgate %s ready to accept connections: ssl = %s, "
	    "require_ssl = %s, clientcert = %s, backend %s, %d worker%s",
	    PACKAGE_VERSION, cfg->ssl ? "on" : "off",
	    cfg->require_ssl ? "on" : "off",
	    config_clientcert_name(cfg->clientcert), gate.snap->route.backend_name,
	    gate.nworkers, gate.nworkers == 1 ? "" : "s");
	sdnotify_state("READY=1", "ready: ssl = %s, require_ssl = %s, "
	    "backend %s, %d worker%s", cfg->ssl ? "on" : "off",
	    cfg->require_ssl ? "on" : "off", gate.snap->route.backend_name,
	    gate.nworkers, gate.nworkers == 1 ? "" : "s");
	/* From here on, logs go where log_destination says. */
	apply_log_destination(cfg);

	if (event_base_dispatch(gate.base) != -1)
		rc = 0;
out:
	/* Threads that were started are told to end, then joined. */
	if (started > 0 && workers_done < gate.nworkers)
		tell_workers(WORKER_CMD_QUIT);
	for (int i = 0; gate.workers != NULL && i < gate.nworkers; i++)
		worker_finish(&gate.workers[i]);
	free(gate.workers);
	httpd_close();
	for (int i = 0; signals[i] != NULL; i++)
		event_free(signals[i]);
	if (done_event != NULL)
		event_free(done_event);
	if (drain_timer != NULL)
		event_free(drain_timer);
	filewatch_stop();
	filewatch_set_free(fs);
	if (gate.base != NULL)
		event_base_free(gate.base);
	snapshot_unref(gate.snap);
	config_unref(started_cfg);
	libevent_global_shutdown();
	if (rc == 0)
		log_info("pgsslgate stopped");
	log_set_target(LOG_TARGET_STDERR);
	return rc;
}
