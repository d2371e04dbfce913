/*
 * sni: ssl_sni, a server context per hosts_file entry, chosen in OpenSSL's
 * servername callback from the name the client sent; and which entry (so
 * which backend) a finished handshake got.
 */
#ifndef SNI_H
#define SNI_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct snapshot;
struct gate_route;

/*
 * Read hosts_file and build every entry's context with tls_server_ctx_new()
 * (so each gets the checks ssl_cert_file gets), and each backend=.  An
 * empty file leaves snap->hosts NULL: ssl_cert_file serves, as PostgreSQL
 * does.  prev: the snapshot a reload replaces, for encrypted keys.
 */
int sni_build(struct snapshot *, const struct snapshot *prev, char *err,
    size_t errlen);
void sni_free(struct snapshot *);

/* After the handshake: the entry chosen, -1 without ssl_sni. */
int sni_host_of(const struct snapshot *, SSL *);
/* That entry's backend (the snapshot's without backend=). */
const struct gate_route *sni_route(const struct snapshot *, int host);
/* Its label for logs and metrics: a name from hosts_file, "*", "none". */
const char *sni_label(const struct snapshot *, int host, SSL *);

/* A handshake that failed for want of an entry: why, into buf. */
bool sni_refusal(const struct snapshot *, SSL *, char *buf, size_t len);

#endif
