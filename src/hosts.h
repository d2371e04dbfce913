/*
 * hosts: hosts_file, PostgreSQL 19's pg_hosts.conf (server-side SNI): which
 * certificate, key and CA serve which TLS server name, plus our backend=
 * option.  Pure: files arrive through struct hba_io, as for hba_file.
 */
#ifndef HOSTS_H
#define HOSTS_H

#include <stdbool.h>
#include <stddef.h>

#include "hba.h"

/* Bounds: each entry is an SSL_CTX, each name a metrics label. */
#define HOSTS_MAX_ENTRIES	64
#define HOSTS_MAX_NAMES		256
#define HOSTS_NAME_MAX		253	/* a DNS name, RFC 1035 */

/* PostgreSQL's two special host names. */
#define HOSTS_DEFAULT_NAME	"*"
#define HOSTS_NO_SNI_NAME	"/no_sni/"

enum hosts_kind {
	HOSTS_NAMED,		/* one or more literal server names */
	HOSTS_DEFAULT,		/* "*": any name (and no name, failing
				   a /no_sni/ entry) */
	HOSTS_NO_SNI,		/* "/no_sni/": the client sent no name */
};

struct hosts_entry {
	char		*file;		/* where it is written */
	int		 lineno;
	enum hosts_kind	 kind;
	char		**names;	/* HOSTS_NAMED: lower case */
	size_t		 nnames;
	char		*cert;		/* paths, relative ones resolved */
	char		*key;
	char		*ca;		/* "" when none */
	char		*passphrase_command;	/* NULL: column absent */
	bool		 passphrase_reload;	/* only with the command */
	/* Our extension; backend_host NULL: backend_host/backend_port. */
	char		*backend_host;
	int		 backend_port;
};

struct hosts {
	struct hosts_entry	*v;
	size_t			 n;
};

/*
 * Parse path.  An empty file gives n == 0 (PostgreSQL then uses the
 * ordinary ssl_* settings).  On failure err has one line, "FILE:LINE: what
 * was read; what is allowed", and NULL is returned.
 */
struct hosts *hosts_parse(const char *path, const struct hba_io *,
    char *err, size_t errlen);
void hosts_free(struct hosts *);

/*
 * The entry that serves a TLS server name (NULL: the client sent none), or
 * -1: refuse the handshake with alert unrecognized_name.  A name finds its
 * entry, else "*"; no name finds "/no_sni/", else "*".
 */
int hosts_lookup(const struct hosts *, const char *servername);

/* The label for an entry in logs and metrics: the name matched. */
const char *hosts_label(const struct hosts *, int entry,
    const char *servername);

#endif
