/*
 * exposition: the counters of every worker, summed and rendered as
 * Prometheus text for httpd.c's GET /metrics.  Counting is a plain
 * increment on the hot path (metrics.h); rendering happens only when
 * scraped.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "config.h"
#include "exposition.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "startcap.h"

static const char *const refusal_names[METRICS_REFUSED_NREASONS] = {
	[METRICS_REFUSED_NO_SSL] = "ssl_required",
	[METRICS_REFUSED_CERT_USER] = "certificate_user_mismatch",
	[METRICS_REFUSED_NO_CLIENT_CERT] = "client_certificate_missing",
	[METRICS_REFUSED_TOO_MANY] = "too_many_connections",
	[METRICS_REFUSED_PROTOCOL] = "protocol_violation",
	[METRICS_REFUSED_INJECTION] = "unencrypted_data_after_ssl_request",
	[METRICS_REFUSED_BACKEND] = "backend_unreachable",
	[METRICS_REFUSED_TIMEOUT] = "authentication_timeout",
	[METRICS_REFUSED_NO_FDS] = "out_of_file_descriptors",
	[METRICS_REFUSED_STARTUP] = "max_startup_connections",
	[METRICS_REFUSED_STARTUP_HOST] = "max_startup_connections_per_host",
	[METRICS_REFUSED_CHANNEL_BINDING] = "channel_binding",
	[METRICS_REFUSED_HBA] = "hba_file",
	[METRICS_REFUSED_PROXY_HEADER] = "proxy_header_invalid",
	[METRICS_REFUSED_PROXY_UNTRUSTED] = "proxy_header_untrusted",
};

static const char *const handshake_names[METRICS_HS_NREASONS] = {
	[METRICS_HS_CLIENT_CERT] = "client_certificate_rejected",
	[METRICS_HS_SERVER_CERT] = "server_certificate_rejected",
	[METRICS_HS_VERSION] = "protocol_version",
	[METRICS_HS_CIPHER] = "no_shared_cipher",
	[METRICS_HS_NOT_TLS] = "not_tls",
	[METRICS_HS_EOF] = "client_closed",
	[METRICS_HS_UNRECOGNIZED_NAME] = "unrecognized_name",
	[METRICS_HS_OTHER] = "other",
};

static const char *const trigger_names[GATE_RELOAD_NTRIGGERS] = {
	[GATE_RELOAD_SIGNAL] = "signal",
	[GATE_RELOAD_FILE] = "file",
};

static void
family(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP pgsslgate_%s %s\n# TYPE pgsslgate_%s "
	    "%s\n", name, help, name, type);
}

/* Label values are certificate names: escape what the format requires. */
static void
label_value(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, s, 1);
	}
}

/* Sessions by SNI label: few sessions a second, so one lock will do. */
static pthread_mutex_t	 sni_lock = PTHREAD_MUTEX_INITIALIZER;
static char		 sni_label[METRICS_SNI_MAX][HOSTS_NAME_MAX + 1];
static unsigned long long sni_count[METRICS_SNI_MAX + 1];	/* + other */
static int		 sni_n;

void
metrics_sni_session(const char *label)
{
	int	i;

	pthread_mutex_lock(&sni_lock);
	for (i = 0; i < sni_n; i++)
		if (strcmp(sni_label[i], label) == 0)
			break;
	if (i == sni_n && sni_n < METRICS_SNI_MAX) {
		snprintf(sni_label[i], sizeof(sni_label[i]), "%s", label);
		sni_n++;
	}
	sni_count[i]++;
	pthread_mutex_unlock(&sni_lock);
}

static void
sni_render(struct evbuffer *out)
{
	pthread_mutex_lock(&sni_lock);
	if (sni_n > 0)
		family(out, "sni_sessions_total", "counter",
		    "Sessions under ssl_sni, by the TLS server name's "
		    "hosts_file entry (\"none\": no name sent, \"*\": the "
		    "default entry).");
	for (int i = 0; i < sni_n; i++) {
		evbuffer_add_printf(out, "pgsslgate_sni_sessions_total{sni=\"");
		label_value(out, sni_label[i]);
		evbuffer_add_printf(out, "\"} %llu\n", sni_count[i]);
	}
	if (sni_count[METRICS_SNI_MAX] > 0)
		evbuffer_add_printf(out, "pgsslgate_sni_sessions_total{sni="
		    "\"other\"} %llu\n", sni_count[METRICS_SNI_MAX]);
	pthread_mutex_unlock(&sni_lock);
}

/* A counter summed over the workers. */
#define SUM(f)	sum_workers(offsetof(struct metrics, f))

static unsigned long long
sum_workers(size_t offset)
{
	unsigned long long	total = 0;

	for (int i = 0; i < gate.nworkers; i++)
		total += atomic_load_explicit((_Atomic uint64_t *)
		    ((char *)&gate.workers[i].metrics + offset),
		    memory_order_relaxed);
	return total;
}

/* max_startup_connections(_per_host): the counts and the busiest sources. */
static void
startup_phase(struct evbuffer *out, const struct config *cfg)
{
	struct startcap_source	top[STARTCAP_TOP];
	char			name[64];
	int			n = startcap_top(top, STARTCAP_TOP);

	family(out, "startup_connections", "gauge",
	    "Client connections in the startup phase (not yet in session "
	    "or refused).");
	evbuffer_add_printf(out, "pgsslgate_startup_connections %u\n",
	    startcap_total());
	family(out, "startup_connections_limit", "gauge",
	    "max_startup_connections and max_startup_connections_per_host "
	    "in force.");
	evbuffer_add_printf(out, "pgsslgate_startup_connections_limit{scope="
	    "\"total\"} %d\npgsslgate_startup_connections_limit{scope="
	    "\"per_host\"} %d\n", config_startup_cap(cfg),
	    config_startup_cap_per_host(cfg));
	family(out, "startup_connections_by_source", "gauge",
	    "Startup-phase connections of the sources holding the most "
	    "(at most 5 sources).");
	for (int i = 0; i < n; i++) {
		startcap_key_name(&top[i].key, name, sizeof(name));
		evbuffer_add_printf(out, "pgsslgate_startup_connections_by_source"
		    "{source=\"%s\"} %u\n", name, top[i].count);
	}
}

void
exposition_render(struct evbuffer *out)
{
	struct snapshot	*snap = gate_snapshot();
	time_t		 now = time(NULL);

	family(out, "connections_accepted_total", "counter",
	    "Client connections accepted.");
	evbuffer_add_printf(out, "pgsslgate_connections_accepted_total %llu\n",
	    SUM(accepted));
	family(out, "connections_active", "gauge",
	    "Client connections open now, in any state.");
	evbuffer_add_printf(out, "pgsslgate_connections_active %u\n",
	    atomic_load_explicit(&gate.nconns, memory_order_relaxed));
	startup_phase(out, snap->cfg);
	family(out, "sessions_total", "counter",
	    "Sessions set up with the backend, by transport.");
	evbuffer_add_printf(out, "pgsslgate_sessions_total{transport=\"tls\"} "
	    "%llu\npgsslgate_sessions_total{transport=\"plain\"} %llu\n",
	    SUM(sessions_tls), SUM(sessions_plain));
	sni_render(out);
	family(out, "sessions_drained_total", "counter",
	    "Sessions ended with 57P01 by a SIGTERM drain.");
	evbuffer_add_printf(out, "pgsslgate_sessions_drained_total %llu\n",
	    SUM(sessions_drained));
	family(out, "cancel_requests_total", "counter",
	    "Cancel requests forwarded to the backend.");
	evbuffer_add_printf(out, "pgsslgate_cancel_requests_total %llu\n",
	    SUM(cancels));
	family(out, "refused_total", "counter",
	    "Clients refused, by reason.");
	for (int i = 0; i < METRICS_REFUSED_NREASONS; i++)
		evbuffer_add_printf(out, "pgsslgate_refused_total{reason=\"%s\"} "
		    "%llu\n", refusal_names[i], SUM(refused[i]));
	family(out, "tls_handshake_failures_total", "counter",
	    "Failed TLS handshakes with clients, by reason.");
	for (int i = 0; i < METRICS_HS_NREASONS; i++)
		evbuffer_add_printf(out, "pgsslgate_tls_handshake_failures_total"
		    "{reason=\"%s\"} %llu\n", handshake_names[i],
		    SUM(handshake_failures[i]));
	family(out, "bytes_relayed_total", "counter",
	    "Bytes relayed after the startup phase, by direction.");
	evbuffer_add_printf(out, "pgsslgate_bytes_relayed_total{direction="
	    "\"client_to_backend\"} %llu\npgsslgate_bytes_relayed_total{"
	    "direction=\"backend_to_client\"} %llu\n",
	    SUM(bytes_client_to_backend), SUM(bytes_backend_to_client));
	family(out, "reloads_total", "counter",
	    "Configuration reloads, by trigger (SIGHUP, or changed files) "
	    "and result.");
	for (int i = 0; i < GATE_RELOAD_NTRIGGERS; i++)
		evbuffer_add_printf(out, "pgsslgate_reloads_total{trigger=\"%s\","
		    "result=\"ok\"} %llu\npgsslgate_reloads_total{trigger="
		    "\"%s\",result=\"failed\"} %llu\n", trigger_names[i],
		    (unsigned long long)gate.reloads_ok[i], trigger_names[i],
		    (unsigned long long)gate.reloads_failed[i]);
	family(out, "last_reload_success_timestamp_seconds", "gauge",
	    "When the configuration and certificates in force were loaded "
	    "(Unix time).");
	evbuffer_add_printf(out, "pgsslgate_last_reload_success_timestamp_"
	    "seconds %lld\n", (long long)gate.last_reload_ok);
	if (snap->tls != NULL && snap->trust.cert_not_after != 0) {
		family(out, "certificate_expiry_seconds", "gauge",
		    "Seconds until the serving certificate expires.");
		evbuffer_add_printf(out, "pgsslgate_certificate_expiry_seconds "
		    "%lld\n", (long long)(snap->trust.cert_not_after - now));
	}
	if (snap->trust.ncrls > 0)
		family(out, "crl_next_update_seconds", "gauge",
		    "Seconds until each CRL's nextUpdate (negative: stale).");
	for (int i = 0; i < snap->trust.ncrls; i++) {
		if (snap->trust.crls[i].next_update == 0)
			continue;
		evbuffer_add_printf(out,
		    "pgsslgate_crl_next_update_seconds{issuer=\"");
		label_value(out, snap->trust.crls[i].issuer);
		evbuffer_add_printf(out, "\"} %lld\n",
		    (long long)(snap->trust.crls[i].next_update - now));
	}
	family(out, "workers", "gauge", "Event-loop threads.");
	evbuffer_add_printf(out, "pgsslgate_workers %d\n", gate.nworkers);
	snapshot_unref(snap);
}
