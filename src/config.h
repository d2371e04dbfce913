/*
 * config: the settings, parsed from a postgresql.conf-style file and -c
 * overrides into an immutable, reference-counted snapshot.  Pure apart from
 * config_load_file(), which only reads the file into memory.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "fingerprint.h"
struct sockaddr;

/* ssl_{min,max}_protocol_version; 0 means "no limit" for the maximum. */
enum config_tls_version {
	CONFIG_TLS_ANY = 0,
	CONFIG_TLS_1_2 = 12,
	CONFIG_TLS_1_3 = 13,
};

/* clientcert, with pg_hba.conf's names. */
enum config_clientcert {
	CONFIG_CLIENTCERT_OFF,
	CONFIG_CLIENTCERT_VERIFY_CA,
	CONFIG_CLIENTCERT_VERIFY_FULL,
};

/* backend_sslmode, with libpq's names and order. */
enum config_sslmode {
	CONFIG_SSLMODE_DISABLE,
	CONFIG_SSLMODE_ALLOW,
	CONFIG_SSLMODE_PREFER,
	CONFIG_SSLMODE_REQUIRE,
	CONFIG_SSLMODE_VERIFY_CA,
	CONFIG_SSLMODE_VERIFY_FULL,
};

enum config_log_destination {
	CONFIG_LOG_STDERR,
	CONFIG_LOG_SYSLOG,
};

/* Networks proxy_protocol_networks may list. */
#define CONFIG_MAX_NETWORKS	64

/* An address block: family AF_INET or AF_INET6, prefix length bits. */
struct config_network {
	int		family;
	unsigned char	addr[16];	/* IPv4 in the first 4 */
	int		bits;
};

enum config_key {
	CONFIG_LISTEN_ADDRESSES,
	CONFIG_PORT,
	CONFIG_BACKEND_HOST,
	CONFIG_BACKEND_PORT,
	CONFIG_BACKEND_SSLMODE,
	CONFIG_BACKEND_SSLROOTCERT,
	CONFIG_BACKEND_SSLCERT,
	CONFIG_BACKEND_SSLKEY,
	CONFIG_BACKEND_SSLCRL,
	CONFIG_BACKEND_SSLCRLDIR,
	CONFIG_BACKEND_SSLSNI,
	CONFIG_BACKEND_SSL_MIN_PROTOCOL_VERSION,
	CONFIG_BACKEND_SSLPASSWORD,
	CONFIG_BACKEND_SSLCERTFINGERPRINT,
	CONFIG_SSL,
	CONFIG_REQUIRE_SSL,
	CONFIG_SSL_CERT_FILE,
	CONFIG_SSL_KEY_FILE,
	CONFIG_SSL_PASSPHRASE_COMMAND,
	CONFIG_SSL_PASSPHRASE_COMMAND_SUPPORTS_RELOAD,
	CONFIG_SSL_MIN_PROTOCOL_VERSION,
	CONFIG_SSL_MAX_PROTOCOL_VERSION,
	CONFIG_SSL_CIPHERS,
	CONFIG_SSL_ECDH_CURVE,
	CONFIG_SSL_CA_FILE,
	CONFIG_SSL_CRL_FILE,
	CONFIG_SSL_CRL_DIR,
	CONFIG_CLIENTCERT,
	CONFIG_HBA_FILE,
	CONFIG_IDENT_FILE,
	CONFIG_SSL_SNI,
	CONFIG_HOSTS_FILE,
	CONFIG_SSL_CERT_EXPIRY_WARNING,
	CONFIG_SSL_DIRECT,
	CONFIG_SSL_SESSION_TICKETS,
	CONFIG_AUTHENTICATION_TIMEOUT,
	CONFIG_MAX_CONNECTIONS,
	CONFIG_WORKERS,
	CONFIG_LOG_CONNECTIONS,
	CONFIG_LOG_DESTINATION,
	CONFIG_SHUTDOWN_TIMEOUT,
	CONFIG_BACKEND_CONNECT_TIMEOUT,
	CONFIG_TCP_KEEPALIVES_IDLE,
	CONFIG_TCP_KEEPALIVES_INTERVAL,
	CONFIG_TCP_KEEPALIVES_COUNT,
	CONFIG_METRICS_LISTEN,
	CONFIG_HALF_CLOSE_TIMEOUT,
	CONFIG_MAX_STARTUP_CONNECTIONS,
	CONFIG_MAX_STARTUP_CONNECTIONS_PER_HOST,
	CONFIG_FILE_CHECK_INTERVAL,
	CONFIG_SHUTDOWN_DELAY,
	CONFIG_PROXY_PROTOCOL,
	CONFIG_PROXY_PROTOCOL_NETWORKS,
	CONFIG_NKEYS
};

struct config {
	unsigned	refcount;
	char		*config_file;		/* NULL when started with -c only */

	char		*listen_addresses;	/* comma-separated; "*" = all */
	int		 port;
	char		*backend_host;
	int		 backend_port;
	int		 backend_sslmode;	/* enum config_sslmode */
	char		*backend_sslrootcert;	/* "" when unset */
	char		*backend_sslcert;
	char		*backend_sslkey;
	char		*backend_sslcrl;
	char		*backend_sslcrldir;
	bool		 backend_sslsni;
	int		 backend_ssl_min_protocol_version;
	char		*backend_sslpassword;	/* for an encrypted sslkey */
	char		*backend_sslcertfingerprint;	/* as written */
	/* The same, parsed: the backend's leaf must be one of these. */
	unsigned char	 backend_pins[FINGERPRINT_MAX][FINGERPRINT_LEN];
	size_t		 backend_npins;

	bool		 ssl;
	bool		 require_ssl;
	char		*ssl_cert_file;
	char		*ssl_key_file;
	char		*ssl_passphrase_command;	/* "" = none */
	bool		 ssl_passphrase_command_supports_reload;
	int		 ssl_min_protocol_version;	/* enum config_tls_version */
	int		 ssl_max_protocol_version;
	char		*ssl_ciphers;
	char		*ssl_ecdh_curve;
	char		*ssl_ca_file;		/* "" when unset */
	char		*ssl_crl_file;
	char		*ssl_crl_dir;
	int		 clientcert;		/* enum config_clientcert */
	char		*hba_file;		/* "": no rules file */
	char		*ident_file;		/* "": no maps */
	bool		 ssl_sni;		/* hosts_file picks the certificate */
	char		*hosts_file;		/* pg_hosts.conf format */
	int		 ssl_cert_expiry_warning;	/* seconds; 0 = never */
	bool		 ssl_direct;	/* accept PostgreSQL 17's direct TLS */
	bool		 ssl_session_tickets;	/* let clients resume */

	int		 authentication_timeout;	/* milliseconds */
	int		 max_connections;
	int		 workers;		/* 0: one per CPU */
	bool		 log_connections;
	int		 log_destination;	/* enum config_log_destination */
	int		 shutdown_timeout;	/* seconds */
	int		 backend_connect_timeout;	/* milliseconds */
	int		 tcp_keepalives_idle;	/* seconds; 0 = system default */
	int		 tcp_keepalives_interval;
	int		 tcp_keepalives_count;
	char		*metrics_listen;	/* "" or "host:port" */
	int		 half_close_timeout;	/* milliseconds; 0 = none */
	int		 max_startup_connections;	/* 0: max_connections */
	int		 max_startup_connections_per_host;	/* 0: half that */
	int		 file_check_interval;	/* seconds; 0 = no watching */
	int		 shutdown_delay;	/* seconds accepting after SIGTERM */
	bool		 proxy_protocol;	/* PROXY headers from balancers */
	char		*proxy_protocol_networks;	/* as written */
	struct config_network proxy_networks[CONFIG_MAX_NETWORKS];
	int		 nproxy_networks;	/* parsed from the above */

	/* Where each key was last set ("file:line", "-c"); NULL = default. */
	char		*origin[CONFIG_NKEYS];
};

/* A fresh snapshot holding every default, refcount 1.  NULL on ENOMEM. */
struct config *config_new(void);
struct config *config_ref(struct config *);
void config_unref(struct config *);

/*
 * Set one key from its text form.  origin says where the text came from
 * ("pgsslgate.conf:12", "-c"); relative paths are resolved against basedir
 * (NULL: leave them relative to the working directory).  On failure, err
 * gets one line naming origin, key and what is allowed; returns -1.
 */
int config_set(struct config *, const char *name, const char *value,
    const char *origin, const char *basedir, char *err, size_t errlen);

/* Apply "name=value" as given to -c. */
int config_set_option(struct config *, const char *arg, char *err,
    size_t errlen);

/* Parse a whole file's text; filename is used in messages and for paths. */
int config_parse_text(struct config *, const char *text, size_t len,
    const char *filename, char *err, size_t errlen);

/* Read and parse a file. */
int config_load_file(struct config *, const char *path, char *err,
    size_t errlen);

/* Cross-key checks once everything is set (e.g. max >= min version). */
int config_validate(const struct config *, char *err, size_t errlen);

/*
 * The startup-phase caps in force: max_startup_connections and
 * max_startup_connections_per_host with 0 ("derived") worked out.
 */
int config_startup_cap(const struct config *);
int config_startup_cap_per_host(const struct config *);

/*
 * Parse a list of networks ("10.0.0.0/8, 2001:db8::/32, 192.0.2.7"; an
 * address alone is a /32 or /128), separated by commas and/or blanks, into
 * at most max entries.  Returns how many, or -1 with why set.
 */
int config_parse_networks(const char *, struct config_network *, int max,
    char *why, size_t whylen);

/*
 * Whether addr (struct sockaddr_in or _in6; IPv4-mapped IPv6 counts as
 * IPv4) is in one of the n networks.
 */
bool config_network_match(const struct config_network *, int n,
    const struct sockaddr *addr);

/* Split "host:port" or "[v6]:port"; -1 when malformed. */
int config_split_hostport(const char *, char *host, size_t hostlen, int *port);

/* "set at FILE:LINE" / "set by -c" / "default", for messages. */
const char *config_origin(const struct config *, enum config_key);
const char *config_key_name(enum config_key);
const char *config_tls_version_name(int);
const char *config_clientcert_name(int);
const char *config_sslmode_name(int);

#endif
