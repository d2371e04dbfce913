/*
 * sni: one SSL_CTX per hosts_file entry.  Every SSL starts on host[0]'s
 * context; the servername callback moves it to the entry the name selects
 * before the certificate is chosen, or ends the handshake with alert
 * unrecognized_name as PostgreSQL 19 does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "config.h"
#include "gate.h"
#include "hosts.h"
#include "log.h"
#include "sni.h"
#include "tls.h"

/*
 * SSL_set_SSL_CTX() takes the new context's certificate, key, session id
 * context and (read through ssl->ctx) its verify store and client CA
 * list, but not its verify mode, callback or depth: those were copied
 * into the SSL by SSL_new() from host[0]'s context.  An entry whose SSL_CA
 * differs (with it, or without it, client certificates are asked for or
 * not) must have its own, so they are set on the SSL here.
 */
static int
servername_cb(SSL *ssl, int *alert, void *arg)
{
	const struct snapshot	*snap = arg;
	const char		*name;
	SSL_CTX			*ctx;
	int			 h;

	name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if ((h = hosts_lookup(snap->hosts, name)) < 0) {
		/* The handshake's failure line says why: sni_refusal(). */
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	ctx = snap->host[h].tls;
	if (SSL_get_SSL_CTX(ssl) != ctx && SSL_set_SSL_CTX(ssl, ctx) != ctx) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx),
	    SSL_CTX_get_verify_callback(ctx));
	SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
	return SSL_TLSEXT_ERR_OK;
}

/* The key the entry had in prev (same file), to keep an encrypted one. */
static const struct tls_key *
prev_key(const struct snapshot *prev, const char *path)
{
	if (prev == NULL)
		return NULL;
	if (prev->hosts == NULL)
		return strcmp(prev->key.path, path) == 0 ? &prev->key : NULL;
	for (size_t i = 0; i < prev->hosts->n; i++)
		if (strcmp(prev->host[i].key.path, path) == 0)
			return &prev->host[i].key;
	return NULL;
}

static int
build_entry(struct snapshot *snap, const struct snapshot *prev, size_t i,
    char *err, size_t errlen)
{
	const struct hosts_entry	*e = &snap->hosts->v[i];
	struct snapshot_host		*sh = &snap->host[i];
	struct config			 c = *snap->cfg;
	char				 where[PATH_MAX + 16], why[1536];

	/*
	 * A borrowed copy: tls_server_ctx_new() reads the settings, and
	 * this entry's files and origin replace ssl_cert_file's.
	 */
	snprintf(where, sizeof(where), "%s:%d", e->file, e->lineno);
	c.ssl_cert_file = e->cert;
	c.ssl_key_file = e->key;
	c.ssl_ca_file = e->ca;
	if (e->passphrase_command != NULL) {
		c.ssl_passphrase_command = e->passphrase_command;
		c.ssl_passphrase_command_supports_reload =
		    e->passphrase_reload;
		c.origin[CONFIG_SSL_PASSPHRASE_COMMAND] = where;
	}
	/* A resumed session would skip the servername callback's choice. */
	c.ssl_session_tickets = false;
	c.origin[CONFIG_SSL_CERT_FILE] = where;
	c.origin[CONFIG_SSL_KEY_FILE] = where;
	c.origin[CONFIG_SSL_CA_FILE] = where;
	if ((sh->tls = tls_server_ctx_new(&c, prev_key(prev, e->key),
	    &sh->key, &sh->trust, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "hosts_file %s: %s", where, why);
		return -1;
	}
	SSL_CTX_set_tlsext_servername_callback(sh->tls, servername_cb);
	SSL_CTX_set_tlsext_servername_arg(sh->tls, snap);
	if (e->backend_host == NULL)
		sh->route = snap->route;
	else if (gate_resolve(e->backend_host, e->backend_port, where,
	    &sh->route, err, errlen) != 0)
		return -1;
	return 0;
}

int
sni_build(struct snapshot *snap, const struct snapshot *prev, char *err,
    size_t errlen)
{
	const struct config	*cfg = snap->cfg;
	struct hosts		*h;
	char			 why[1024];

	if ((h = hosts_parse(cfg->hosts_file, &hba_file_io, why,
	    sizeof(why))) == NULL) {
		snprintf(err, errlen, "hosts_file (%s): %s",
		    config_origin(cfg, CONFIG_HOSTS_FILE), why);
		return -1;
	}
	if (h->n == 0) {
		log_warn("hosts_file %s has no entries: ssl_cert_file serves "
		    "every connection, as in PostgreSQL", cfg->hosts_file);
		hosts_free(h);
		return 0;
	}
	if (cfg->ssl_session_tickets)
		log_info("ssl_session_tickets = on (%s) is not in effect with "
		    "ssl_sni: a resumed session would keep the certificate "
		    "of another name", config_origin(cfg,
		    CONFIG_SSL_SESSION_TICKETS));
	snap->hosts = h;
	if ((snap->host = calloc(h->n, sizeof(*snap->host))) == NULL) {
		snprintf(err, errlen, "hosts_file: out of memory");
		return -1;
	}
	for (size_t i = 0; i < h->n; i++)
		if (build_entry(snap, prev, i, err, errlen) != 0)
			return -1;
	snap->tls = snap->host[0].tls;
	/* The metrics show the certificate that expires first. */
	snap->trust = snap->host[0].trust;
	for (size_t i = 1; i < h->n; i++)
		if (snap->host[i].trust.cert_not_after != 0 &&
		    snap->host[i].trust.cert_not_after <
		    snap->trust.cert_not_after)
			snap->trust = snap->host[i].trust;
	for (size_t i = 0; i < h->n; i++) {
		const struct hosts_entry	*e = &h->v[i];

		log_info("hosts_file %s:%d: %s%s%s, backend %s", e->file,
		    e->lineno, e->kind == HOSTS_DEFAULT ? "* (any other name)" :
		    e->kind == HOSTS_NO_SNI ? "/no_sni/ (clients sending no "
		    "name)" : e->names[0], e->nnames > 1 ? " and more names" :
		    "", *e->ca != '\0' ? ", client certificates asked for" : "",
		    snap->host[i].route.backend_name);
	}
	return 0;
}

void
sni_free(struct snapshot *snap)
{
	if (snap->host != NULL)
		for (size_t i = 0; i < snap->hosts->n; i++) {
			SSL_CTX_free(snap->host[i].tls);
			tls_key_clear(&snap->host[i].key);
		}
	free(snap->host);
	hosts_free(snap->hosts);
}

int
sni_host_of(const struct snapshot *snap, SSL *ssl)
{
	SSL_CTX	*ctx;

	if (snap->hosts == NULL || ssl == NULL)
		return -1;
	ctx = SSL_get_SSL_CTX(ssl);
	for (size_t i = 0; i < snap->hosts->n; i++)
		if (snap->host[i].tls == ctx)
			return (int)i;
	return -1;
}

const struct gate_route *
sni_route(const struct snapshot *snap, int host)
{
	if (host < 0 || snap->hosts == NULL || (size_t)host >= snap->hosts->n)
		return &snap->route;
	return &snap->host[host].route;
}

const char *
sni_label(const struct snapshot *snap, int host, SSL *ssl)
{
	return hosts_label(snap->hosts, host, ssl != NULL ?
	    SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL);
}

bool
sni_refusal(const struct snapshot *snap, SSL *ssl, char *buf, size_t len)
{
	const char	*name;

	if (snap->hosts == NULL || ssl == NULL)
		return false;
	name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (hosts_lookup(snap->hosts, name) >= 0)
		return false;
	if (name != NULL)
		snprintf(buf, len, "TLS server name \"%.253s\" is in no "
		    "hosts_file entry and there is no * entry; alert "
		    "unrecognized_name sent", name);
	else
		snprintf(buf, len, "the client sent no TLS server name and "
		    "hosts_file has no /no_sni/ or * entry; alert "
		    "unrecognized_name sent");
	return true;
}
