/*
 * main: command line, start-up checks, signals (reload, drain, stop) and
 * the event loop.  All fatal errors happen here, before the first
 * connection is accepted; after that, a failure ends a connection or a
 * reload, never the process.
 */
#include <sys/resource.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/opensslv.h>

#include "check.h"
#include "client.h"
#include "config.h"
#include "gate.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"

static struct gate	 gate;
static int		 saved_argc;
static char		**saved_argv;
static struct event	*drain_timer;

static void
usage(FILE *out)
{
	fprintf(out,
	    "pgsslgate is an SSL gate in front of a PostgreSQL-protocol "
	    "server.\n\n"
	    "Usage:\n"
	    "  pgsslgate [CONFIG_FILE] [-c NAME=VALUE]...\n"
	    "  pgsslgate --check [CONFIG_FILE] [-c NAME=VALUE]...\n\n"
	    "Options:\n"
	    "  -c NAME=VALUE   set a parameter; overrides CONFIG_FILE "
	    "(repeatable)\n"
	    "  --check         check the configuration and every file it "
	    "names,\n"
	    "                  print a report, exit 0 if no problem, else 1\n"
	    "  -d, --debug     also log debugging detail\n"
	    "  -h, --help      show this help, then exit\n"
	    "  -V, --version   show the version, then exit\n\n"
	    "Without CONFIG_FILE, the -c options alone configure it, e.g.\n"
	    "  pgsslgate -c port=6432 -c backend_port=5432 -c require_ssl=on "
	    "\\\n    -c ssl_cert_file=server.crt -c ssl_key_file=server.key\n\n"
	    "Signals: SIGHUP reloads, SIGTERM drains sessions "
	    "(shutdown_timeout), SIGINT stops at once.\n"
	    "See pgsslgate(8) and pgsslgate.conf(5).\n");
}

/*
 * The configuration from the command line: the file first, then every -c
 * wherever it stood, so -c wins.  Used at start and on every SIGHUP.
 */
static struct config *
load_config(int argc, char **argv, char *err, size_t errlen)
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
	config_unref(cfg);
	return NULL;
}

/* Each session holds two descriptors; let max_connections be reachable. */
static void
raise_fd_limit(int max_connections)
{
	struct rlimit	rl;
	rlim_t		want = (rlim_t)max_connections * 2 + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		log_warn("open file limit %llu is below the %llu that "
		    "max_connections = %d needs; raise it (ulimit -n, or "
		    "LimitNOFILE= in the systemd unit)",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)want, max_connections);
}

static void
apply_log_destination(const struct config *cfg)
{
	log_set_target(cfg->log_destination == CONFIG_LOG_SYSLOG ?
	    LOG_TARGET_SYSLOG : LOG_TARGET_STDERR);
}

/*
 * SIGHUP: re-read the file and every certificate, key, CA and CRL, even
 * if no path changed.  New connections get the new snapshot; sessions keep
 * the one they started with.  On any failure the old one stays in force.
 */
static void
reload(void)
{
	const struct config	*old = gate.snap->cfg;
	struct snapshot		*snap;
	struct config		*cfg;
	char			 err[1024];

	log_info("received SIGHUP; reloading the configuration");
	if ((cfg = load_config(saved_argc, saved_argv, err, sizeof(err))) ==
	    NULL || (snap = snapshot_new(cfg, err, sizeof(err))) == NULL) {
		metrics.reloads_failed++;
		log_error("reload failed, still serving with the previous "
		    "configuration and certificates: %s", err);
		return;
	}
	if (strcmp(old->listen_addresses, snap->cfg->listen_addresses) != 0 ||
	    old->port != snap->cfg->port)
		log_warn("listen_addresses and port take effect only at "
		    "start: still listening on \"%s\" port %d; restart to "
		    "apply", old->listen_addresses, old->port);
	if (strcmp(old->metrics_listen, snap->cfg->metrics_listen) != 0)
		log_warn("metrics_listen takes effect only at start: still "
		    "\"%s\"; restart to apply", old->metrics_listen);
	apply_log_destination(snap->cfg);
	if (snap->cfg->require_ssl && !snap->cfg->ssl)
		log_warn("require_ssl = on has no effect while ssl = off");
	raise_fd_limit(snap->cfg->max_connections);
	snapshot_unref(gate.snap);
	gate.snap = snap;
	metrics.reloads_ok++;
	log_info("configuration reloaded: ssl = %s, require_ssl = %s, "
	    "clientcert = %s, backend %s; %u open connection%s keep their "
	    "settings", snap->cfg->ssl ? "on" : "off",
	    snap->cfg->require_ssl ? "on" : "off",
	    config_clientcert_name(snap->cfg->clientcert),
	    snap->backend_name, gate.nconns, gate.nconns == 1 ? "" : "s");
}

static void
drain_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_info("shutdown_timeout expired; closing %u connection%s",
	    gate.nconns, gate.nconns == 1 ? "" : "s");
	event_base_loopbreak(gate.base);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct timeval	tv;

	(void)what;
	(void)arg;
	if (sig == SIGHUP) {
		reload();
		return;
	}
	listener_close_all();
	if (sig == SIGINT || gate.nconns == 0 ||
	    gate.snap->cfg->shutdown_timeout == 0) {
		log_info("received %s; closing %u connection%s now",
		    sig == SIGINT ? "SIGINT" : "SIGTERM", gate.nconns,
		    gate.nconns == 1 ? "" : "s");
		event_base_loopbreak(gate.base);
		return;
	}
	if (gate.draining)
		return;
	/* SIGTERM: no new connections; sessions get shutdown_timeout. */
	gate.draining = true;
	log_info("received SIGTERM; no longer accepting connections, waiting "
	    "up to %d s for %u connection%s to finish",
	    gate.snap->cfg->shutdown_timeout, gate.nconns,
	    gate.nconns == 1 ? "" : "s");
	tv.tv_sec = gate.snap->cfg->shutdown_timeout;
	tv.tv_usec = 0;
	if ((drain_timer = evtimer_new(gate.base, drain_expired, NULL)) ==
	    NULL || evtimer_add(drain_timer, &tv) != 0)
		event_base_loopbreak(gate.base);
}

/* --check: the whole start-up, as a report on stdout, then exit. */
static int
run_check(void)
{
	struct config	*cfg;
	char		 err[1024];

	log_set_target(LOG_TARGET_REPORT);
	if ((cfg = load_config(saved_argc, saved_argv, err, sizeof(err))) ==
	    NULL) {
		log_error("%s", err);
		goto verdict;
	}
	log_info("configuration: %s", cfg->config_file != NULL ?
	    cfg->config_file : "(command line only)");
	if ((gate.snap = snapshot_new(cfg, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		goto verdict;
	}
	if (gate.snap->cfg->require_ssl && !gate.snap->cfg->ssl)
		log_warn("require_ssl = on has no effect while ssl = off");
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
	struct event	*signals[4] = { NULL, NULL, NULL, NULL };
	static const int signums[4] = { SIGHUP, SIGTERM, SIGINT, 0 };
	struct config	*cfg;
	char		 err[1024];
	bool		 check = false;
	int		 rc = 1;

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
		if (strcmp(argv[i], "-c") == 0)
			i++;
	}
	saved_argc = argc;
	saved_argv = argv;
	signal(SIGPIPE, SIG_IGN);
	if (check)
		return run_check();

	if ((cfg = load_config(argc, argv, err, sizeof(err))) == NULL) {
		fprintf(stderr, "pgsslgate: %s\n", err);
		return 1;
	}
	TAILQ_INIT(&gate.conns);
	if ((gate.snap = snapshot_new(cfg, err, sizeof(err))) == NULL) {
		log_fatal("%s", err);
		return 1;
	}
	cfg = gate.snap->cfg;
	if (cfg->require_ssl && !cfg->ssl)
		log_warn("require_ssl = on has no effect while ssl = off: "
		    "every client is served in plaintext");
	raise_fd_limit(cfg->max_connections);

	if ((gate.base = event_base_new()) == NULL) {
		log_fatal("could not create the event loop");
		goto out;
	}
	if (listener_open(&gate, cfg, err, sizeof(err)) != 0 ||
	    (*cfg->metrics_listen != '\0' &&
	    metrics_listen(&gate, cfg->metrics_listen, err, sizeof(err)) != 0)) {
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
	log_info("pgsslgate %s ready to accept connections: ssl = %s, "
	    "require_ssl = %s, clientcert = %s, backend %s", PACKAGE_VERSION,
	    cfg->ssl ? "on" : "off", cfg->require_ssl ? "on" : "off",
	    config_clientcert_name(cfg->clientcert), gate.snap->backend_name);
	/* From here on, logs go where log_destination says. */
	apply_log_destination(cfg);

	if (event_base_dispatch(gate.base) != -1)
		rc = 0;
out:
	listener_close_all();
	metrics_close();
	conn_free_all(&gate);
	for (int i = 0; signals[i] != NULL; i++)
		event_free(signals[i]);
	if (drain_timer != NULL)
		event_free(drain_timer);
	if (gate.base != NULL)
		event_base_free(gate.base);
	snapshot_unref(gate.snap);
	libevent_global_shutdown();
	if (rc == 0)
		log_info("pgsslgate stopped");
	log_set_target(LOG_TARGET_STDERR);
	return rc;
}
