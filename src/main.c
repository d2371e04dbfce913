/*
 * main: command line, start-up checks, signals, and the event loop.  All
 * fatal errors happen here, before the first connection is accepted.
 */
#include <sys/resource.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/opensslv.h>

#include "client.h"
#include "config.h"
#include "gate.h"
#include "listener.h"
#include "log.h"


static void
usage(FILE *out)
{
	fprintf(out,
	    "pgsslgate is an SSL gate in front of a PostgreSQL-protocol "
	    "server.\n\n"
	    "Usage:\n"
	    "  pgsslgate [CONFIG_FILE] [-c NAME=VALUE]...\n\n"
	    "Options:\n"
	    "  -c NAME=VALUE   set a parameter; overrides CONFIG_FILE "
	    "(repeatable)\n"
	    "  -d, --debug     also log debugging detail\n"
	    "  -h, --help      show this help, then exit\n"
	    "  -V, --version   show the version, then exit\n\n"
	    "Without CONFIG_FILE, the -c options alone configure it, e.g.\n"
	    "  pgsslgate -c port=6432 -c backend_port=5432 -c require_ssl=on "
	    "\\\n    -c ssl_cert_file=server.crt -c ssl_key_file=server.key\n\n"
	    "See pgsslgate(8) and pgsslgate.conf(5).\n");
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct gate	*gate = arg;

	(void)what;
	log_info("received %s; shutting down with %u connection%s open",
	    sig == SIGTERM ? "SIGTERM" : "SIGINT", gate->nconns,
	    gate->nconns == 1 ? "" : "s");
	event_base_loopbreak(gate->base);
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
		    "max_connections = %d needs; raise it (ulimit -n)",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)want, max_connections);
}

static struct config *
load_config(int argc, char **argv)
{
	struct config	*cfg;
	const char	*file = NULL;
	char		 err[1024];

	if ((cfg = config_new()) == NULL) {
		fprintf(stderr, "pgsslgate: out of memory\n");
		return NULL;
	}
	/* The file first, then every -c, wherever it stood: -c wins. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			i++;
		} else if (strncmp(argv[i], "-c", 2) == 0 ||
		    strcmp(argv[i], "-d") == 0 ||
		    strcmp(argv[i], "--debug") == 0) {
			continue;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "pgsslgate: unknown option \"%s\"\n"
			    "Try \"pgsslgate --help\".\n", argv[i]);
			goto fail;
		} else if (file != NULL) {
			fprintf(stderr, "pgsslgate: more than one "
			    "configuration file (\"%s\", \"%s\")\n", file,
			    argv[i]);
			goto fail;
		} else
			file = argv[i];
	}
	if (file != NULL && config_load_file(cfg, file, err, sizeof(err)) != 0)
		goto fail_err;
	for (int i = 1; i < argc; i++) {
		const char *arg = NULL;

		if (strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "pgsslgate: -c needs "
				    "NAME=VALUE\n");
				goto fail;
			}
			arg = argv[++i];
		} else if (strncmp(argv[i], "-c", 2) == 0)
			arg = argv[i] + 2;
		if (arg != NULL &&
		    config_set_option(cfg, arg, err, sizeof(err)) != 0)
			goto fail_err;
	}
	return cfg;
fail_err:
	fprintf(stderr, "pgsslgate: %s\n", err);
fail:
	config_unref(cfg);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct gate	 gate;
	struct config	*cfg;
	struct event	*sigterm = NULL, *sigint = NULL;
	char		 err[1024];
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
		if (strcmp(argv[i], "-c") == 0)
			i++;
	}
	if ((cfg = load_config(argc, argv)) == NULL)
		return 1;

	memset(&gate, 0, sizeof(gate));
	TAILQ_INIT(&gate.conns);
	signal(SIGPIPE, SIG_IGN);
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
	if (listener_open(&gate, cfg, err, sizeof(err)) != 0) {
		log_fatal("%s", err);
		goto out;
	}
	sigterm = evsignal_new(gate.base, SIGTERM, on_stop_signal, &gate);
	sigint = evsignal_new(gate.base, SIGINT, on_stop_signal, &gate);
	if (sigterm == NULL || sigint == NULL ||
	    evsignal_add(sigterm, NULL) != 0 || evsignal_add(sigint, NULL) != 0) {
		log_fatal("could not install signal handlers");
		goto out_signals;
	}
	log_info("pgsslgate %s ready to accept connections: ssl = %s, "
	    "require_ssl = %s, backend %s", PACKAGE_VERSION,
	    cfg->ssl ? "on" : "off", cfg->require_ssl ? "on" : "off",
	    gate.snap->backend_name);

	if (event_base_dispatch(gate.base) == 0 ||
	    event_base_got_break(gate.base))
		rc = 0;

out_signals:
	listener_close_all();
	conn_free_all(&gate);
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
out:
	listener_close_all();
	if (gate.base != NULL)
		event_base_free(gate.base);
	snapshot_unref(gate.snap);
	libevent_global_shutdown();
	if (rc == 0)
		log_info("pgsslgate stopped");
	return rc;
}
