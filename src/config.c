/*
 * config: postgresql.conf-style parsing and validation.  Each key is a row in
 * one table (type, range, default, where it lives in struct config), so the
 * parser, the error messages and the defaults cannot drift apart.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "config.h"

enum config_type {
	T_BOOL, T_INT, T_STRING,
	T_MS,			/* a time, kept in milliseconds */
	T_SEC,			/* a time, kept in seconds */
	T_PATH,			/* a file name, relative to the config file */
	T_OPT_PATH,		/* the same, or '' for none */
	T_TLS_VERSION,
	T_ENUM,			/* one of names[] */
	T_FINGERPRINTS,		/* backend_sslcertfingerprint's list */
	T_NETWORKS,		/* a list of networks, kept as text and parsed */
};

struct config_def {
	const char		*name;
	enum config_type	 type;
	size_t			 offset;
	const char		*dflt;
	long			 min, max;	/* T_INT, T_MS, T_SEC, stored unit */
	const char		*allowed;	/* for messages */
	const char *const	*names;		/* T_ENUM, NULL-terminated */
};

static const char *const clientcert_names[] = {
	[CONFIG_CLIENTCERT_OFF] = "off",
	[CONFIG_CLIENTCERT_VERIFY_CA] = "verify-ca",
	[CONFIG_CLIENTCERT_VERIFY_FULL] = "verify-full",
	NULL
};

static const char *const sslmode_names[] = {
	[CONFIG_SSLMODE_DISABLE] = "disable",
	[CONFIG_SSLMODE_ALLOW] = "allow",
	[CONFIG_SSLMODE_PREFER] = "prefer",
	[CONFIG_SSLMODE_REQUIRE] = "require",
	[CONFIG_SSLMODE_VERIFY_CA] = "verify-ca",
	[CONFIG_SSLMODE_VERIFY_FULL] = "verify-full",
	NULL
};

static const char *const log_destination_names[] = {
	[CONFIG_LOG_STDERR] = "stderr",
	[CONFIG_LOG_SYSLOG] = "syslog",
	NULL
};

#define OFF(f)	offsetof(struct config, f)

/* Indexed by enum config_key. */
static const struct config_def config_defs[CONFIG_NKEYS] = {
	[CONFIG_LISTEN_ADDRESSES] = { "listen_addresses", T_STRING,
	    OFF(listen_addresses), "localhost", 0, 0,
	    "a comma-separated list of host names or addresses, or *" },
	[CONFIG_PORT] = { "port", T_INT, OFF(port), "6432", 1, 65535,
	    "an integer from 1 to 65535" },
	[CONFIG_BACKEND_HOST] = { "backend_host", T_STRING, OFF(backend_host),
	    "localhost", 0, 0, "a host name or address, or the directory of "
	    "the backend's Unix-domain socket (starting with /)" },
	[CONFIG_BACKEND_PORT] = { "backend_port", T_INT, OFF(backend_port),
	    "5432", 1, 65535, "an integer from 1 to 65535" },
	[CONFIG_BACKEND_SSLMODE] = { "backend_sslmode", T_ENUM,
	    OFF(backend_sslmode), "disable", 0, 0,
	    "disable, allow, prefer, require, verify-ca, verify-full",
	    sslmode_names },
	[CONFIG_BACKEND_SSLROOTCERT] = { "backend_sslrootcert", T_OPT_PATH,
	    OFF(backend_sslrootcert), "", 0, 0, "a file name, or '' for none" },
	[CONFIG_BACKEND_SSLCERT] = { "backend_sslcert", T_OPT_PATH,
	    OFF(backend_sslcert), "", 0, 0, "a file name, or '' for none" },
	[CONFIG_BACKEND_SSLKEY] = { "backend_sslkey", T_OPT_PATH,
	    OFF(backend_sslkey), "", 0, 0, "a file name, or '' for none" },
	[CONFIG_BACKEND_SSLCRL] = { "backend_sslcrl", T_OPT_PATH,
	    OFF(backend_sslcrl), "", 0, 0, "a file name, or '' for none" },
	[CONFIG_BACKEND_SSLCRLDIR] = { "backend_sslcrldir", T_OPT_PATH,
	    OFF(backend_sslcrldir), "", 0, 0,
	    "a directory name, or '' for none" },
	[CONFIG_BACKEND_SSLSNI] = { "backend_sslsni", T_BOOL,
	    OFF(backend_sslsni), "on", 0, 0, NULL },
	[CONFIG_BACKEND_SSL_MIN_PROTOCOL_VERSION] = {
	    "backend_ssl_min_protocol_version", T_TLS_VERSION,
	    OFF(backend_ssl_min_protocol_version), "TLSv1.2", 0, 0,
	    "TLSv1.2, TLSv1.3" },
	[CONFIG_BACKEND_SSLPASSWORD] = { "backend_sslpassword", T_STRING,
	    OFF(backend_sslpassword), "", 0, 0,
	    "the passphrase of backend_sslkey, or '' for none" },
	[CONFIG_BACKEND_SSLCERTFINGERPRINT] = { "backend_sslcertfingerprint",
	    T_FINGERPRINTS, OFF(backend_sslcertfingerprint), "", 0, 0,
	    "'' (none) or a comma-separated list of SHA-256 fingerprints, "
	    "AB:CD:... or plain hex" },
	[CONFIG_SSL] = { "ssl", T_BOOL, OFF(ssl), "on", 0, 0, NULL },
	[CONFIG_REQUIRE_SSL] = { "require_ssl", T_BOOL, OFF(require_ssl),
	    "off", 0, 0, NULL },
	[CONFIG_SSL_CERT_FILE] = { "ssl_cert_file", T_PATH, OFF(ssl_cert_file),
	    "server.crt", 0, 0, "a file name" },
	[CONFIG_SSL_KEY_FILE] = { "ssl_key_file", T_PATH, OFF(ssl_key_file),
	    "server.key", 0, 0, "a file name" },
	[CONFIG_SSL_PASSPHRASE_COMMAND] = { "ssl_passphrase_command", T_STRING,
	    OFF(ssl_passphrase_command), "", 0, 0,
	    "a shell command printing the passphrase (%p: the prompt), or ''" },
	[CONFIG_SSL_PASSPHRASE_COMMAND_SUPPORTS_RELOAD] = {
	    "ssl_passphrase_command_supports_reload", T_BOOL,
	    OFF(ssl_passphrase_command_supports_reload), "off", 0, 0, NULL },
	[CONFIG_SSL_MIN_PROTOCOL_VERSION] = { "ssl_min_protocol_version",
	    T_TLS_VERSION, OFF(ssl_min_protocol_version), "TLSv1.2", 0, 0,
	    "TLSv1.2, TLSv1.3" },
	[CONFIG_SSL_MAX_PROTOCOL_VERSION] = { "ssl_max_protocol_version",
	    T_TLS_VERSION, OFF(ssl_max_protocol_version), "", 0, 0,
	    "'' (no limit), TLSv1.2, TLSv1.3" },
	[CONFIG_SSL_CIPHERS] = { "ssl_ciphers", T_STRING, OFF(ssl_ciphers),
	    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20", 0, 0,
	    "an OpenSSL cipher list" },
	[CONFIG_SSL_ECDH_CURVE] = { "ssl_ecdh_curve", T_STRING,
	    OFF(ssl_ecdh_curve), "X25519:prime256v1", 0, 0,
	    "an OpenSSL group list such as prime256v1 or X25519:prime256v1" },
	[CONFIG_SSL_CA_FILE] = { "ssl_ca_file", T_OPT_PATH, OFF(ssl_ca_file),
	    "", 0, 0, "a file name, or '' for none" },
	[CONFIG_SSL_CRL_FILE] = { "ssl_crl_file", T_OPT_PATH,
	    OFF(ssl_crl_file), "", 0, 0, "a file name, or '' for none" },
	[CONFIG_SSL_CRL_DIR] = { "ssl_crl_dir", T_OPT_PATH, OFF(ssl_crl_dir),
	    "", 0, 0, "a directory name, or '' for none" },
	[CONFIG_CLIENTCERT] = { "clientcert", T_ENUM, OFF(clientcert),
	    "off", 0, 0, "off, verify-ca, verify-full", clientcert_names },
	[CONFIG_HBA_FILE] = { "hba_file", T_OPT_PATH, OFF(hba_file), "", 0, 0,
	    "a file in pg_hba.conf format, or '' for none" },
	[CONFIG_IDENT_FILE] = { "ident_file", T_OPT_PATH, OFF(ident_file), "",
	    0, 0, "a file in pg_ident.conf format, or '' for none" },
	[CONFIG_SSL_SNI] = { "ssl_sni", T_BOOL, OFF(ssl_sni), "off", 0, 0,
	    NULL },
	[CONFIG_HOSTS_FILE] = { "hosts_file", T_OPT_PATH, OFF(hosts_file),
	    "", 0, 0, "a file in pg_hosts.conf format" },
	[CONFIG_SSL_DIRECT] = { "ssl_direct", T_BOOL, OFF(ssl_direct), "on",
	    0, 0, NULL },
	[CONFIG_SSL_SESSION_TICKETS] = { "ssl_session_tickets", T_BOOL,
	    OFF(ssl_session_tickets), "off", 0, 0, NULL },
	[CONFIG_SSL_CERT_EXPIRY_WARNING] = { "ssl_cert_expiry_warning", T_SEC,
	    OFF(ssl_cert_expiry_warning), "30d", 0, 3650L * 86400,
	    "a time from 0 (never warn) to 3650d (units s, min, h, d)" },
	[CONFIG_AUTHENTICATION_TIMEOUT] = { "authentication_timeout", T_MS,
	    OFF(authentication_timeout), "60s", 1000, 600000,
	    "a time from 1s to 600s (units ms, s, min, h, d; default s)" },
	[CONFIG_MAX_CONNECTIONS] = { "max_connections", T_INT,
	    OFF(max_connections), "1000", 1, 1000000,
	    "an integer from 1 to 1000000" },
	[CONFIG_WORKERS] = { "workers", T_INT, OFF(workers), "0", 0, 256,
	    "0 (one per CPU) or an integer up to 256" },
	[CONFIG_LOG_CONNECTIONS] = { "log_connections", T_BOOL,
	    OFF(log_connections), "off", 0, 0, NULL },
	[CONFIG_LOG_DESTINATION] = { "log_destination", T_ENUM,
	    OFF(log_destination), "stderr", 0, 0, "stderr, syslog",
	    log_destination_names },
	[CONFIG_SHUTDOWN_TIMEOUT] = { "shutdown_timeout", T_SEC,
	    OFF(shutdown_timeout), "30s", 0, 86400,
	    "a time from 0 to 1d (units s, min, h, d; default s)" },
	[CONFIG_BACKEND_CONNECT_TIMEOUT] = { "backend_connect_timeout", T_MS,
	    OFF(backend_connect_timeout), "10s", 100, 600000,
	    "a time from 100ms to 600s (units ms, s, min, h, d; default s)" },
	[CONFIG_TCP_KEEPALIVES_IDLE] = { "tcp_keepalives_idle", T_SEC,
	    OFF(tcp_keepalives_idle), "0", 0, 32767,
	    "0 (the system default) or a time up to 32767s" },
	[CONFIG_TCP_KEEPALIVES_INTERVAL] = { "tcp_keepalives_interval", T_SEC,
	    OFF(tcp_keepalives_interval), "0", 0, 32767,
	    "0 (the system default) or a time up to 32767s" },
	[CONFIG_TCP_KEEPALIVES_COUNT] = { "tcp_keepalives_count", T_INT,
	    OFF(tcp_keepalives_count), "0", 0, 127,
	    "0 (the system default) or an integer up to 127" },
	[CONFIG_METRICS_LISTEN] = { "metrics_listen", T_STRING,
	    OFF(metrics_listen), "", 0, 0,
	    "'' (off) or host:port, e.g. 127.0.0.1:9187" },
	[CONFIG_HALF_CLOSE_TIMEOUT] = { "half_close_timeout", T_MS,
	    OFF(half_close_timeout), "10min", 0, 86400000,
	    "0 (no limit) or a time up to 1d (units ms, s, min, h, d; "
	    "default s)" },
	[CONFIG_MAX_STARTUP_CONNECTIONS] = { "max_startup_connections", T_INT,
	    OFF(max_startup_connections), "0", 0, 1000000,
	    "0 (max_connections) or an integer up to 1000000" },
	[CONFIG_MAX_STARTUP_CONNECTIONS_PER_HOST] = {
	    "max_startup_connections_per_host", T_INT,
	    OFF(max_startup_connections_per_host), "0", 0, 1000000,
	    "0 (half of max_startup_connections) or an integer up to 1000000" },
	[CONFIG_FILE_CHECK_INTERVAL] = { "file_check_interval", T_SEC,
	    OFF(file_check_interval), "5s", 0, 3600,
	    "0 (no checks) or a time up to 1h (units s, min, h, d; default s)" },
	[CONFIG_SHUTDOWN_DELAY] = { "shutdown_delay", T_SEC,
	    OFF(shutdown_delay), "0", 0, 3600,
	    "a time from 0 to 1h (units s, min, h, d; default s)" },
	[CONFIG_PROXY_PROTOCOL] = { "proxy_protocol", T_BOOL,
	    OFF(proxy_protocol), "off", 0, 0, NULL },
	[CONFIG_PROXY_PROTOCOL_NETWORKS] = { "proxy_protocol_networks",
	    T_NETWORKS, OFF(proxy_protocol_networks), "", 0, 0,
	    "a comma-separated list of networks such as 10.0.0.0/8 or "
	    "2001:db8::/32, or addresses" },
};

#define BOOL_ALLOWED	"on, off, true, false, yes, no, 1, 0"

static int
fail(char *err, size_t errlen, const char *origin, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, const char *origin, const char *fmt, ...)
{
	va_list	ap;
	int	n = 0;

	if (errlen == 0)
		return -1;
	if (origin != NULL)
		n = snprintf(err, errlen, "%s: ", origin);
	if (n < 0 || (size_t)n >= errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static const struct config_def *
find_def(const char *name, enum config_key *key)
{
	for (int i = 0; i < CONFIG_NKEYS; i++) {
		/* Names are case-insensitive, as in postgresql.conf. */
		if (strcasecmp(config_defs[i].name, name) == 0) {
			*key = (enum config_key)i;
			return &config_defs[i];
		}
	}
	return NULL;
}

/* Edit distance, for "did you mean" on unknown keys. */
static size_t
distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b);
	size_t	row[64];

	if (la >= 63 || lb >= 63)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t	diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t	up = row[j];
			size_t	best = diag + (a[i - 1] != b[j - 1]);

			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const char *
closest_key(const char *name)
{
	const char	*best = NULL;
	size_t		 bestd = 3;	/* suggest only near misses */

	for (int i = 0; i < CONFIG_NKEYS; i++) {
		size_t	d = distance(name, config_defs[i].name);

		if (d < bestd) {
			bestd = d;
			best = config_defs[i].name;
		}
	}
	return best;
}

static int
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "on", "true", "yes", "1" };
	static const char *const no[] = { "off", "false", "no", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/*
 * An integer, for times optionally followed by a unit, as postgresql.conf
 * writes them ("500ms", "30s", "1min", "2h", "30d"; default s).  The result
 * is in the field's own unit: milliseconds (T_MS) or seconds (T_SEC).
 */
static int
parse_number(const char *v, enum config_type type, long *out)
{
	static const struct { const char *unit; long long ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "min", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	char		*end;
	long long	 n, ms = 1000;
	bool		 found = false;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (end == v || errno == ERANGE || n < 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (type == T_INT) {
		if (*end != '\0' || n > LONG_MAX)
			return -1;
		*out = (long)n;
		return 0;
	}
	for (size_t i = 0; *end != '\0' && i < sizeof(units) / sizeof(units[0]);
	    i++)
		if (strcmp(end, units[i].unit) == 0) {
			ms = units[i].ms;
			found = true;
		}
	if (*end != '\0' && !found)
		return -1;
	if (n > LLONG_MAX / ms)
		return -1;
	n *= ms;
	if (type == T_SEC) {
		if (n % 1000 != 0)
			return -1;	/* "1500ms" for a setting in seconds */
		n /= 1000;
	}
	if (n > LONG_MAX)
		return -1;
	*out = (long)n;
	return 0;
}

static int
parse_enum(const char *v, const char *const *names, int *out)
{
	for (int i = 0; names[i] != NULL; i++) {
		if (strcasecmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

static int
parse_tls_version(const char *v, int *out)
{
	if (*v == '\0')
		*out = CONFIG_TLS_ANY;
	else if (strcasecmp(v, "TLSv1.2") == 0)
		*out = CONFIG_TLS_1_2;
	else if (strcasecmp(v, "TLSv1.3") == 0)
		*out = CONFIG_TLS_1_3;
	else
		return -1;
	return 0;
}

const char *
config_sslmode_name(int v)
{
	if (v < 0 || v > CONFIG_SSLMODE_VERIFY_FULL)
		return "?";
	return sslmode_names[v];
}

const char *
config_clientcert_name(int v)
{
	if (v < 0 || v > CONFIG_CLIENTCERT_VERIFY_FULL)
		return "?";
	return clientcert_names[v];
}

const char *
config_tls_version_name(int v)
{
	switch (v) {
	case CONFIG_TLS_1_2:	return "TLSv1.2";
	case CONFIG_TLS_1_3:	return "TLSv1.3";
	default:		return "";
	}
}

static char *
join_path(const char *dir, const char *file)
{
	size_t	 n;
	char	*p;

	if (dir == NULL || *dir == '\0' || file[0] == '/')
		return strdup(file);
	n = strlen(dir) + 1 + strlen(file) + 1;
	if ((p = malloc(n)) != NULL)
		snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ?
		    "" : "/", file);
	return p;
}

static int
set_value(struct config *cfg, const struct config_def *def, const char *value,
    const char *origin, const char *basedir, char *err, size_t errlen)
{
	void	*field = (char *)cfg + def->offset;
	long	 n;
	int	 version;
	char	*s, why[160];
	size_t	 npins;
	unsigned char pins[FINGERPRINT_MAX][FINGERPRINT_LEN];

	switch (def->type) {
	case T_BOOL:
		if (parse_bool(value, field) == 0)
			return 0;
		return fail(err, errlen, origin,
		    "invalid value for parameter \"%s\": \"%s\" (allowed: %s)",
		    def->name, value, BOOL_ALLOWED);
	case T_INT:
	case T_MS:
	case T_SEC:
		if (parse_number(value, def->type, &n) == 0 &&
		    n >= def->min && n <= def->max) {
			*(int *)field = (int)n;
			return 0;
		}
		return fail(err, errlen, origin,
		    "invalid value for parameter \"%s\": \"%s\" (allowed: %s)",
		    def->name, value, def->allowed);
	case T_TLS_VERSION:
		if (parse_tls_version(value, &version) == 0 &&
		    !(def->offset != OFF(ssl_max_protocol_version) &&
		    version == CONFIG_TLS_ANY)) {
			*(int *)field = version;
			return 0;
		}
		return fail(err, errlen, origin,
		    "invalid value for parameter \"%s\": \"%s\" (allowed: %s)",
		    def->name, value, def->offset != OFF(ssl_max_protocol_version) ?
		    "TLSv1.2, TLSv1.3; older versions are not supported" :
		    def->allowed);
	case T_ENUM:
		if (parse_enum(value, def->names, field) == 0)
			return 0;
		return fail(err, errlen, origin,
		    "invalid value for parameter \"%s\": \"%s\" (allowed: %s)",
		    def->name, value, def->allowed);
	case T_FINGERPRINTS:
		if (fingerprint_parse_list(value, pins, FINGERPRINT_MAX, &npins,
		    why, sizeof(why)) != 0)
			return fail(err, errlen, origin,
			    "invalid value for parameter \"%s\": %s (allowed: %s)",
			    def->name, why, def->allowed);
		if ((s = strdup(value)) == NULL)
			return fail(err, errlen, origin, "out of memory");
		free(*(char **)field);
		*(char **)field = s;
		memcpy(cfg->backend_pins, pins, sizeof(pins));
		cfg->backend_npins = npins;
		return 0;
	case T_NETWORKS: {
		int	count;

		/* The one T_NETWORKS key: its parsed form has its own fields. */
		count = config_parse_networks(value, cfg->proxy_networks,
		    CONFIG_MAX_NETWORKS, why, sizeof(why));
		if (count < 0)
			return fail(err, errlen, origin, "invalid value for "
			    "parameter \"%s\": %s (allowed: %s)",
			    def->name, why, def->allowed);
		if ((s = strdup(value)) == NULL)
			return fail(err, errlen, origin, "out of memory");
		cfg->nproxy_networks = count;
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	}
	case T_STRING:
	case T_PATH:
	case T_OPT_PATH:
		if (def->type == T_PATH && *value == '\0')
			return fail(err, errlen, origin,
			    "invalid value for parameter \"%s\": empty (allowed: %s)",
			    def->name, def->allowed);
		s = def->type != T_STRING && *value != '\0' ?
		    join_path(basedir, value) : strdup(value);
		if (s == NULL)
			return fail(err, errlen, origin, "out of memory");
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	}
	return -1;
}

int
config_set(struct config *cfg, const char *name, const char *value,
    const char *origin, const char *basedir, char *err, size_t errlen)
{
	const struct config_def	*def;
	const char		*hint;
	enum config_key		 key;
	char			*o;

	if ((def = find_def(name, &key)) == NULL) {
		hint = closest_key(name);
		if (hint != NULL)
			return fail(err, errlen, origin,
			    "unrecognized configuration parameter \"%s\" "
			    "(did you mean \"%s\"?)", name, hint);
		return fail(err, errlen, origin,
		    "unrecognized configuration parameter \"%s\" "
		    "(see pgsslgate.conf(5) for the list)", name);
	}
	if (set_value(cfg, def, value, origin, basedir, err, errlen) != 0)
		return -1;
	if (origin != NULL) {
		if ((o = strdup(origin)) == NULL)
			return fail(err, errlen, origin, "out of memory");
		free(cfg->origin[key]);
		cfg->origin[key] = o;
	}
	return 0;
}

struct config *
config_new(void)
{
	struct config	*cfg;
	char		 err[256];

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return NULL;
	cfg->refcount = 1;
	for (int i = 0; i < CONFIG_NKEYS; i++) {
		if (set_value(cfg, &config_defs[i], config_defs[i].dflt, NULL,
		    NULL, err, sizeof(err)) != 0) {
			config_unref(cfg);
			return NULL;
		}
	}
	return cfg;
}

struct config *
config_ref(struct config *cfg)
{
	cfg->refcount++;
	return cfg;
}

void
config_unref(struct config *cfg)
{
	if (cfg == NULL || --cfg->refcount > 0)
		return;
	for (int i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_def *def = &config_defs[i];

		if (def->type == T_STRING || def->type == T_PATH ||
		    def->type == T_OPT_PATH || def->type == T_FINGERPRINTS ||
		    def->type == T_NETWORKS)
			free(*(char **)((char *)cfg + def->offset));
		free(cfg->origin[i]);
	}
	free(cfg->config_file);
	free(cfg);
}

int
config_set_option(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	const char	*eq = strchr(arg, '=');
	char		 name[64], origin[128];
	size_t		 nlen;

	snprintf(origin, sizeof(origin), "-c %.100s", arg);
	if (eq == NULL)
		return fail(err, errlen, origin,
		    "expected -c name=value");
	nlen = (size_t)(eq - arg);
	while (nlen > 0 && isspace((unsigned char)arg[nlen - 1]))
		nlen--;
	if (nlen == 0 || nlen >= sizeof(name))
		return fail(err, errlen, origin, "expected -c name=value");
	memcpy(name, arg, nlen);
	name[nlen] = '\0';
	eq++;
	while (isspace((unsigned char)*eq))
		eq++;
	return config_set(cfg, name, eq, origin, NULL, err, errlen);
}

/*
 * One line of a postgresql.conf-style file: blank, a comment, or
 * name [=] value [# comment], where value is a bare word or a single-quoted
 * string ('' and \' stand for a quote).
 */
static int
parse_line(struct config *cfg, const char *line, const char *origin,
    const char *basedir, char *err, size_t errlen)
{
	const char	*p = line, *start;
	char		 name[64], value[4096];
	size_t		 n = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	start = p;
	if (!isalpha((unsigned char)*p) && *p != '_')
		return fail(err, errlen, origin,
		    "syntax error: expected a parameter name, found \"%.20s\"",
		    p);
	while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
		p++;
	if ((size_t)(p - start) >= sizeof(name))
		return fail(err, errlen, origin, "parameter name too long");
	memcpy(name, start, (size_t)(p - start));
	name[p - start] = '\0';
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '=')
		p++;
	while (isspace((unsigned char)*p))
		p++;

	if (*p == '\'') {
		for (p++;; p++) {
			if (*p == '\0')
				return fail(err, errlen, origin,
				    "unterminated quoted string for parameter \"%s\"",
				    name);
			if (*p == '\'' && p[1] == '\'')
				p++;
			else if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '\'')
				break;
			if (n + 1 >= sizeof(value))
				return fail(err, errlen, origin,
				    "value for parameter \"%s\" too long", name);
			value[n++] = *p;
		}
		p++;
	} else {
		while (*p != '\0' && *p != '#' && !isspace((unsigned char)*p)) {
			if (n + 1 >= sizeof(value))
				return fail(err, errlen, origin,
				    "value for parameter \"%s\" too long", name);
			value[n++] = *p++;
		}
		if (n == 0)
			return fail(err, errlen, origin,
			    "missing value for parameter \"%s\" (write %s = value)",
			    name, name);
	}
	value[n] = '\0';
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\0' && *p != '#')
		return fail(err, errlen, origin,
		    "syntax error after the value of \"%s\": \"%.20s\" "
		    "(quote values that contain spaces)", name, p);
	return config_set(cfg, name, value, origin, basedir, err, errlen);
}

int
config_parse_text(struct config *cfg, const char *text, size_t len,
    const char *filename, char *err, size_t errlen)
{
	char		*basedir, *slash;
	const char	*p = text, *end = text + len;
	int		 lineno = 0, rc = 0;

	if ((basedir = strdup(filename)) == NULL)
		return fail(err, errlen, filename, "out of memory");
	if ((slash = strrchr(basedir, '/')) == basedir)
		basedir[1] = '\0';		/* a file in "/" */
	else if (slash != NULL)
		*slash = '\0';
	else
		basedir[0] = '\0';

	while (p < end && rc == 0) {
		const char	*nl = memchr(p, '\n', (size_t)(end - p));
		const char	*next = nl != NULL ? nl + 1 : end;
		size_t		 llen = (size_t)((nl != NULL ? nl : end) - p);
		char		 line[4096], origin[PATH_MAX + 16];

		lineno++;
		snprintf(origin, sizeof(origin), "%s:%d", filename, lineno);
		if (llen >= sizeof(line))
			rc = fail(err, errlen, origin, "line too long");
		else if (memchr(p, '\0', llen) != NULL)
			rc = fail(err, errlen, origin, "NUL byte in line");
		else {
			memcpy(line, p, llen);
			if (llen > 0 && line[llen - 1] == '\r')
				llen--;
			line[llen] = '\0';
			rc = parse_line(cfg, line, origin, basedir, err, errlen);
		}
		p = next;
	}
	/* Default file names are relative to the configuration file. */
	for (int i = 0; rc == 0 && i < CONFIG_NKEYS; i++) {
		const struct config_def *def = &config_defs[i];

		if (def->type == T_PATH && cfg->origin[i] == NULL)
			rc = set_value(cfg, def, def->dflt, filename, basedir,
			    err, errlen);
	}
	free(basedir);
	return rc;
}

int
config_load_file(struct config *cfg, const char *path, char *err,
    size_t errlen)
{
	struct stat	 st;
	FILE		*f;
	char		*text = NULL;
	size_t		 len = 0, cap = 0, n;
	int		 rc, fd;

	/*
	 * O_NONBLOCK: a FIFO in place of the file must not stop the main
	 * loop (metrics, signals) at a reload; it opens at once and is then
	 * refused, as is anything else but a regular file.
	 */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return fail(err, errlen, path,
		    "could not open configuration file: %s", strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, path, "could not read configuration "
		    "file: not a regular file");
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return fail(err, errlen, path, "out of memory");
	}
	for (;;) {
		if (len == cap) {
			char *t;

			/* Full at the limit: fine only if the file ends here. */
			if (cap >= (1u << 20) && fgetc(f) == EOF)
				break;
			if (cap >= (1u << 20)) {
				free(text);
				fclose(f);
				return fail(err, errlen, path,
				    "configuration file larger than 1 MB");
			}
			cap = cap ? cap * 2 : 8192;
			if ((t = realloc(text, cap)) == NULL) {
				free(text);
				fclose(f);
				return fail(err, errlen, path, "out of memory");
			}
			text = t;
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(text);
		fclose(f);
		return fail(err, errlen, path, "could not read: %s",
		    strerror(errno));
	}
	fclose(f);
	rc = config_parse_text(cfg, text, len, path, err, errlen);
	free(text);
	if (rc == 0) {
		free(cfg->config_file);
		if ((cfg->config_file = strdup(path)) == NULL)
			return fail(err, errlen, path, "out of memory");
	}
	return rc;
}

/*
 * 0 means "derived": as many connections in the startup phase as there may
 * be sessions, and half of that from any one address, so that one source
 * cannot take every slot that is being set up.
 */
int
config_startup_cap(const struct config *cfg)
{
	return cfg->max_startup_connections > 0 ?
	    cfg->max_startup_connections : cfg->max_connections;
}

int
config_startup_cap_per_host(const struct config *cfg)
{
	int	half = config_startup_cap(cfg) / 2;

	if (cfg->max_startup_connections_per_host > 0)
		return cfg->max_startup_connections_per_host;
	return half > 0 ? half : 1;
}

int
config_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char	*colon = strrchr(s, ':');
	const char	*h = s;
	size_t		 hlen;
	long		 p;
	char		*end;

	if (colon == NULL || colon == s)
		return -1;
	hlen = (size_t)(colon - s);
	if (s[0] == '[') {		/* [::1]:9187 */
		if (colon[-1] != ']' || hlen < 3)
			return -1;
		h = s + 1;
		hlen -= 2;
	}
	if (hlen >= hostlen)
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 1 ||
	    p > 65535)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}

/* One "addr" or "addr/bits" of config_parse_networks(). */
static int
parse_network(const char *text, struct config_network *net, char *why,
    size_t whylen)
{
	char		 addr[INET6_ADDRSTRLEN + 8], *slash, *end;
	long		 bits;
	int		 max;

	if (strlen(text) >= sizeof(addr)) {
		snprintf(why, whylen, "\"%.60s...\" is too long", text);
		return -1;
	}
	snprintf(addr, sizeof(addr), "%s", text);
	if ((slash = strchr(addr, '/')) != NULL)
		*slash++ = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, addr, net->addr) == 1)
		net->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, net->addr) == 1)
		net->family = AF_INET6;
	else {
		snprintf(why, whylen, "\"%s\" is not an IPv4 or IPv6 address "
		    "(host names are not allowed)", addr);
		return -1;
	}
	max = net->family == AF_INET ? 32 : 128;
	bits = max;
	if (slash != NULL) {
		bits = strtol(slash, &end, 10);
		if (*slash < '0' || *slash > '9' || *end != '\0' ||
		    bits > max) {
			snprintf(why, whylen, "\"%s\" has an invalid prefix "
			    "length (0 to %d)", text, max);
			return -1;
		}
	}
	net->bits = (int)bits;
	/* Host bits set: most likely a typo for another network. */
	for (int i = 0; i < max / 8; i++) {
		int	keep = net->bits - i * 8;
		unsigned char mask = keep >= 8 ? 0xff : keep <= 0 ? 0 :
		    (unsigned char)(0xff << (8 - keep));

		if (net->addr[i] & ~mask) {
			snprintf(why, whylen, "\"%s\" has bits set beyond "
			    "its /%d prefix", text, net->bits);
			return -1;
		}
	}
	return 0;
}

int
config_parse_networks(const char *text, struct config_network *out, int max,
    char *why, size_t whylen)
{
	const char	*p = text;
	char		 item[80];
	int		 n = 0;

	for (;;) {
		size_t	len;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return n;
		len = strcspn(p, ", \t");
		if (n == max) {
			snprintf(why, whylen, "more than %d networks", max);
			return -1;
		}
		if (len >= sizeof(item)) {
			snprintf(why, whylen, "\"%.60s...\" is too long", p);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (parse_network(item, &out[n], why, whylen) != 0)
			return -1;
		n++;
		p += len;
	}
}

bool
config_network_match(const struct config_network *nets, int n,
    const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	const unsigned char	*a;
	int			 family = sa->sa_family;

	if (family == AF_INET)
		a = (const unsigned char *)
		    &((const struct sockaddr_in *)sa)->sin_addr;
	else if (family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			family = AF_INET;
			a += 12;
		}
	} else
		return false;
	for (int i = 0; i < n; i++) {
		int	full = nets[i].bits / 8, rest = nets[i].bits % 8;

		if (nets[i].family != family ||
		    memcmp(nets[i].addr, a, (size_t)full) != 0)
			continue;
		if (rest == 0 || ((nets[i].addr[full] ^ a[full]) &
		    (unsigned char)(0xff << (8 - rest))) == 0)
			return true;
	}
	return false;
}

int
config_validate(const struct config *cfg, char *err, size_t errlen)
{
	char	host[256];
	int	port;

	if (cfg->ssl_sni && (!cfg->ssl || *cfg->hosts_file == '\0'))
		return fail(err, errlen, config_origin(cfg, CONFIG_SSL_SNI),
		    "ssl_sni = on needs ssl = on and hosts_file, the "
		    "pg_hosts.conf-format file of certificates per host name");
	if (cfg->ssl_max_protocol_version != CONFIG_TLS_ANY &&
	    cfg->ssl_max_protocol_version < cfg->ssl_min_protocol_version)
		return fail(err, errlen,
		    config_origin(cfg, CONFIG_SSL_MAX_PROTOCOL_VERSION),
		    "ssl_max_protocol_version (%s) is below "
		    "ssl_min_protocol_version (%s)",
		    config_tls_version_name(cfg->ssl_max_protocol_version),
		    config_tls_version_name(cfg->ssl_min_protocol_version));
	if (cfg->clientcert != CONFIG_CLIENTCERT_OFF && !cfg->ssl)
		return fail(err, errlen, config_origin(cfg, CONFIG_CLIENTCERT),
		    "clientcert = %s needs ssl = on (client certificates "
		    "travel in the TLS handshake)",
		    config_clientcert_name(cfg->clientcert));
	if (cfg->clientcert != CONFIG_CLIENTCERT_OFF &&
	    *cfg->ssl_ca_file == '\0')
		return fail(err, errlen, config_origin(cfg, CONFIG_CLIENTCERT),
		    "clientcert = %s needs ssl_ca_file, the CA certificates "
		    "that client certificates must chain to",
		    config_clientcert_name(cfg->clientcert));
	if ((*cfg->ssl_crl_file != '\0' || *cfg->ssl_crl_dir != '\0') &&
	    *cfg->ssl_ca_file == '\0')
		return fail(err, errlen, config_origin(cfg,
		    *cfg->ssl_crl_file != '\0' ? CONFIG_SSL_CRL_FILE :
		    CONFIG_SSL_CRL_DIR), "%s is set but ssl_ca_file is not: "
		    "revocation lists apply to client certificates, which "
		    "need ssl_ca_file", *cfg->ssl_crl_file != '\0' ?
		    "ssl_crl_file" : "ssl_crl_dir");
	if (cfg->backend_sslmode >= CONFIG_SSLMODE_VERIFY_CA &&
	    *cfg->backend_sslrootcert == '\0')
		return fail(err, errlen, config_origin(cfg,
		    CONFIG_BACKEND_SSLMODE), "backend_sslmode = %s needs "
		    "backend_sslrootcert, the CA certificates the backend's "
		    "certificate must chain to",
		    config_sslmode_name(cfg->backend_sslmode));
	if ((*cfg->backend_sslcert == '\0') != (*cfg->backend_sslkey == '\0'))
		return fail(err, errlen, config_origin(cfg,
		    *cfg->backend_sslcert == '\0' ? CONFIG_BACKEND_SSLKEY :
		    CONFIG_BACKEND_SSLCERT), "backend_sslcert and backend_sslkey "
		    "go together: set both or neither");
	if (cfg->backend_sslmode >= CONFIG_SSLMODE_REQUIRE &&
	    cfg->backend_host[0] == '/')
		return fail(err, errlen, config_origin(cfg,
		    CONFIG_BACKEND_SSLMODE), "backend_sslmode = %s cannot be "
		    "met over the Unix-domain socket \"%s\": PostgreSQL has no "
		    "SSL there; use disable or prefer, or a TCP backend_host",
		    config_sslmode_name(cfg->backend_sslmode), cfg->backend_host);
	/*
	 * A pin that prefer or allow could answer with plaintext pins
	 * nothing: it needs TLS to be required.
	 */
	if (cfg->backend_npins > 0 &&
	    cfg->backend_sslmode < CONFIG_SSLMODE_REQUIRE)
		return fail(err, errlen, config_origin(cfg,
		    CONFIG_BACKEND_SSLCERTFINGERPRINT), "backend_sslcertfingerprint "
		    "needs backend_sslmode = require, verify-ca or verify-full "
		    "(with %s a backend without TLS would be used unpinned)",
		    config_sslmode_name(cfg->backend_sslmode));
	if (*cfg->metrics_listen != '\0' &&
	    config_split_hostport(cfg->metrics_listen, host, sizeof(host),
	    &port) != 0)
		return fail(err, errlen, config_origin(cfg,
		    CONFIG_METRICS_LISTEN), "invalid value for parameter "
		    "\"metrics_listen\": \"%s\" (allowed: %s)",
		    cfg->metrics_listen,
		    config_defs[CONFIG_METRICS_LISTEN].allowed);
	if (cfg->proxy_protocol && cfg->nproxy_networks == 0)
		return fail(err, errlen, config_origin(cfg,
		    CONFIG_PROXY_PROTOCOL), "proxy_protocol = on needs "
		    "proxy_protocol_networks, the addresses of the load "
		    "balancers whose PROXY headers are believed");
	if (*cfg->listen_addresses == '\0')
		return fail(err, errlen,
		    config_origin(cfg, CONFIG_LISTEN_ADDRESSES),
		    "listen_addresses is empty; nothing to listen on");
	if (*cfg->backend_host == '\0')
		return fail(err, errlen, config_origin(cfg, CONFIG_BACKEND_HOST),
		    "backend_host is empty (allowed: %s)",
		    config_defs[CONFIG_BACKEND_HOST].allowed);
	return 0;
}

const char *
config_origin(const struct config *cfg, enum config_key key)
{
	return cfg->origin[key] != NULL ? cfg->origin[key] : "default";
}

const char *
config_key_name(enum config_key key)
{
	return config_defs[key].name;
}
