/*
 * hosts: pg_hosts.conf as PostgreSQL 19 reads it (commit 4f433025f666,
 * "ssl: Serverside SNI support for libpq"), through hba.c's tokenizer, so
 * quoting, comma lists, @file, include and continuation lines behave as in
 * pg_hba.conf.  Columns: HOSTNAME SSL_CERTIFICATE SSL_KEY [SSL_CA
 * [PASSPHRASE_COMMAND [PASSPHRASE_COMMAND_RELOAD]]], then our backend=.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "hosts.h"

struct pctx {
	const struct hba_io	*io;
	struct hosts		*h;
	size_t			 cap;
	size_t			 nnames;	/* over all entries */
};

static int
fail(char *err, size_t errlen, const char *file, int lineno,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));



static int
fail(char *err, size_t errlen, const char *file, int lineno,
    const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (errlen == 0)
		return -1;
	n = snprintf(err, errlen, "%s:%d: ", file, lineno);
	if (n < 0 || (size_t)n >= errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static void
entry_free(struct hosts_entry *e)
{
	for (size_t i = 0; i < e->nnames; i++)
		free(e->names[i]);
	free(e->names);
	free(e->file);
	free(e->cert);
	free(e->key);
	free(e->ca);
	free(e->passphrase_command);
	free(e->backend_host);
}

void
hosts_free(struct hosts *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		entry_free(&h->v[i]);
	free(h->v);
	free(h);
}

/* A path relative to the hosts file's directory, as PostgreSQL's are to
 * the data directory, where pg_hosts.conf lives. */
static char *
resolve(const char *file, const char *path)
{
	const char	*slash = strrchr(file, '/');
	char		*out;
	size_t		 dl;

	if (path[0] == '/' || path[0] == '\0' || slash == NULL)
		return strdup(path);
	dl = (size_t)(slash - file);
	if ((out = malloc(dl + strlen(path) + 2)) == NULL)
		return NULL;
	memcpy(out, file, dl);
	out[dl] = '/';
	strcpy(out + dl + 1, path);
	return out;
}

/* PostgreSQL's parse_bool: a prefix of true/false/yes/no, on, off, 1, 0. */
static int
parse_bool(const char *s, bool *out)
{
	static const struct { const char *w; size_t min; bool v; } words[] = {
		{ "true", 1, true }, { "false", 1, false },
		{ "yes", 1, true }, { "no", 1, false },
		{ "on", 2, true }, { "off", 2, false },
		{ "1", 1, true }, { "0", 1, false },
	};
	size_t	len = strlen(s);

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (len >= words[i].min && len <= strlen(words[i].w) &&
		    strncasecmp(s, words[i].w, len) == 0) {
			*out = words[i].v;
			return 0;
		}
	return -1;
}

/* Letters, digits, '-', '.', '_': what a TLS server name can hold. */
static bool
valid_name(const char *s)
{
	size_t	len = strlen(s);

	if (len == 0 || len > HOSTS_NAME_MAX)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' &&
		    *s != '_')
			return false;
	return true;
}

static const struct hosts_entry *
find_name(const struct hosts *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		for (size_t j = 0; j < h->v[i].nnames; j++)
			if (strcasecmp(h->v[i].names[j], name) == 0)
				return &h->v[i];
	return NULL;
}

static const struct hosts_entry *
find_kind(const struct hosts *h, enum hosts_kind kind)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].kind == kind)
			return &h->v[i];
	return NULL;
}

static int
add_name(struct pctx *x, struct hosts_entry *e, const char *name,
    char *err, size_t errlen)
{
	const struct hosts_entry	*other;
	char				**v, *s;

	if (!valid_name(name))
		return fail(err, errlen, e->file, e->lineno, "host name "
		    "\"%.300s\" is not a DNS name (allowed: letters, digits, "
		    "'-', '.', '_', at most %d characters; or * alone, or "
		    "/no_sni/ alone)", name, HOSTS_NAME_MAX);
	for (size_t i = 0; i < e->nnames; i++)
		if (strcasecmp(e->names[i], name) == 0)
			return fail(err, errlen, e->file, e->lineno, "host "
			    "name \"%s\" is listed twice", name);
	if ((other = find_name(x->h, name)) != NULL)
		return fail(err, errlen, e->file, e->lineno, "host name \"%s\" "
		    "is already served by %s:%d", name, other->file,
		    other->lineno);
	if (++x->nnames > HOSTS_MAX_NAMES)
		return fail(err, errlen, e->file, e->lineno, "more than %d "
		    "host names in all", HOSTS_MAX_NAMES);
	if ((v = realloc(e->names, (e->nnames + 1) * sizeof(*v))) == NULL)
		return fail(err, errlen, e->file, e->lineno, "out of memory");
	e->names = v;
	if ((s = strdup(name)) == NULL)
		return fail(err, errlen, e->file, e->lineno, "out of memory");
	for (char *p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	e->names[e->nnames++] = s;
	return 0;
}

static int
parse_names(struct pctx *x, struct hosts_entry *e, const struct hba_fld *f,
    char *err, size_t errlen)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct hba_tok	*t = &f->t[i];
		bool			 dflt, nosni;

		dflt = !t->quoted && strcmp(t->s, HOSTS_DEFAULT_NAME) == 0;
		nosni = !t->quoted && strcmp(t->s, HOSTS_NO_SNI_NAME) == 0;
		if (dflt || nosni) {
			enum hosts_kind			 k = dflt ?
			    HOSTS_DEFAULT : HOSTS_NO_SNI;
			const struct hosts_entry	*other;

			if (f->n > 1)
				return fail(err, errlen, e->file, e->lineno,
				    "%s cannot be in a list with other host "
				    "names (PostgreSQL: default and non-SNI "
				    "entries cannot be mixed with other "
				    "entries)", t->s);
			if ((other = find_kind(x->h, k)) != NULL)
				return fail(err, errlen, e->file, e->lineno,
				    "a second %s entry (the first is at "
				    "%s:%d)", t->s, other->file,
				    other->lineno);
			e->kind = k;
			return 0;
		}
		if (!t->quoted && t->s[0] == '@' && t->s[1] != '\0') {
			char	**names;
			size_t	  n;
			int	  rc = 0;

			if (hba_at_names(e->file, e->lineno, t->s + 1, x->io,
			    &names, &n, err, errlen) != 0)
				return -1;
			for (size_t j = 0; j < n; j++) {
				if (rc == 0)
					rc = add_name(x, e, names[j], err,
					    errlen);
				free(names[j]);
			}
			free(names);
			if (rc != 0)
				return -1;
			if (n == 0)
				return fail(err, errlen, e->file, e->lineno,
				    "%s names no host", t->s);
			continue;
		}
		if (add_name(x, e, t->s, err, errlen) != 0)
			return -1;
	}
	e->kind = HOSTS_NAMED;
	return 0;
}

/*
 * Our options come after PostgreSQL's columns: an unquoted NAME=VALUE whose
 * NAME is a word.  A CA file or command with '=' in it is quoted.
 */
static bool
is_option(const struct hba_tok *t)
{
	const char	*eq;

	if (t->quoted || (eq = strchr(t->s, '=')) == NULL || eq == t->s)
		return false;
	for (const char *p = t->s; p < eq; p++)
		if (!islower((unsigned char)*p) && *p != '_')
			return false;
	return true;
}

static int
parse_option(struct hosts_entry *e, const struct hba_fld *f, char *err,
    size_t errlen)
{
	const char	*s = f->t[0].s, *v = strchr(s, '=') + 1;
	char		 host[256];

	if (f->n > 1)
		return fail(err, errlen, e->file, e->lineno, "option \"%.100s\""
		    ": one value, no comma list", s);
	if (strncmp(s, "backend=", 8) != 0)
		return fail(err, errlen, e->file, e->lineno, "unknown option "
		    "\"%.*s\" (allowed: backend=HOST:PORT)",
		    (int)(v - s - 1), s);
	if (e->backend_host != NULL)
		return fail(err, errlen, e->file, e->lineno, "backend= given "
		    "twice");
	if (config_split_hostport(v, host, sizeof(host), &e->backend_port) !=
	    0 || host[0] == '\0')
		return fail(err, errlen, e->file, e->lineno, "backend=\"%.300s\""
		    ": not HOST:PORT (allowed: name:5432, 192.0.2.1:5432, "
		    "[2001:db8::1]:5432, /socket/dir:5432)", v);
	if ((e->backend_host = strdup(host)) == NULL)
		return fail(err, errlen, e->file, e->lineno, "out of memory");
	return 0;
}

static const char *const column[] = {
	"HOSTNAME", "SSL_CERTIFICATE", "SSL_KEY", "SSL_CA",
	"PASSPHRASE_COMMAND", "PASSPHRASE_COMMAND_RELOAD",
};

static int
parse_line(void *arg, const char *file, int lineno, const struct hba_fld *f,
    size_t nf, char *err, size_t errlen)
{
	struct pctx		*x = arg;
	struct hosts_entry	*e;
	size_t			 pos = 0;	/* PostgreSQL columns seen */
	char			**slot[] = { NULL, NULL, NULL, NULL, NULL };

	if (x->h->n >= HOSTS_MAX_ENTRIES)
		return fail(err, errlen, file, lineno, "more than %d entries",
		    HOSTS_MAX_ENTRIES);
	if (x->h->n == x->cap) {
		size_t	ncap = x->cap ? x->cap * 2 : 8;
		void	*p = realloc(x->h->v, ncap * sizeof(*x->h->v));

		if (p == NULL)
			return fail(err, errlen, file, lineno, "out of memory");
		x->h->v = p;
		x->cap = ncap;
	}
	e = &x->h->v[x->h->n++];
	memset(e, 0, sizeof(*e));
	if ((e->file = strdup(file)) == NULL)
		return fail(err, errlen, file, lineno, "out of memory");
	e->lineno = lineno;
	slot[1] = &e->cert;
	slot[2] = &e->key;
	slot[3] = &e->ca;
	slot[4] = &e->passphrase_command;

	for (size_t i = 0; i < nf; i++) {
		if (pos >= 3 && f[i].n >= 1 && is_option(&f[i].t[0])) {
			if (parse_option(e, &f[i], err, errlen) != 0)
				return -1;
			continue;
		}
		if (e->backend_host != NULL)
			return fail(err, errlen, file, lineno, "\"%.100s\" "
			    "after backend=: options come after every "
			    "PostgreSQL column", f[i].t[0].s);
		if (pos >= 6)
			return fail(err, errlen, file, lineno, "extra field "
			    "\"%.100s\" at end of line (allowed: HOSTNAME "
			    "SSL_CERTIFICATE SSL_KEY [SSL_CA [PASSPHRASE_COMMAND "
			    "[PASSPHRASE_COMMAND_RELOAD]]] [backend=HOST:PORT])",
			    f[i].t[0].s);
		if (pos == 0) {
			if (parse_names(x, e, &f[i], err, errlen) != 0)
				return -1;
		} else if (f[i].n > 1) {
			return fail(err, errlen, file, lineno, "multiple values "
			    "for %s (\"%.100s,...\"; it takes one)",
			    column[pos], f[i].t[0].s);
		} else if (pos == 5) {
			if (parse_bool(f[i].t[0].s, &e->passphrase_reload) !=
			    0)
				return fail(err, errlen, file, lineno, "%s "
				    "\"%.100s\" is not a boolean (allowed: on, "
				    "off, true, false, yes, no, 1, 0)",
				    column[pos], f[i].t[0].s);
		} else {
			*slot[pos] = pos == 4 ? strdup(f[i].t[0].s) :
			    resolve(file, f[i].t[0].s);
			if (*slot[pos] == NULL)
				return fail(err, errlen, file, lineno,
				    "out of memory");
			if (pos < 3 && **slot[pos] == '\0')
				return fail(err, errlen, file, lineno, "%s is "
				    "empty (it names a file)", column[pos]);
		}
		pos++;
	}
	if (pos < 3)
		return fail(err, errlen, file, lineno, "missing %s at end of "
		    "line (allowed: HOSTNAME SSL_CERTIFICATE SSL_KEY [SSL_CA "
		    "[PASSPHRASE_COMMAND [PASSPHRASE_COMMAND_RELOAD]]] "
		    "[backend=HOST:PORT])", column[pos]);
	if (e->ca == NULL && (e->ca = strdup("")) == NULL)
		return fail(err, errlen, file, lineno, "out of memory");
	return 0;
}

struct hosts *
hosts_parse(const char *path, const struct hba_io *io, char *err,
    size_t errlen)
{
	struct pctx	x = { .io = io };

	if ((x.h = calloc(1, sizeof(*x.h))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (hba_walk(path, io, parse_line, &x, err, errlen) != 0) {
		hosts_free(x.h);
		return NULL;
	}
	return x.h;
}

int
hosts_lookup(const struct hosts *h, const char *servername)
{
	const struct hosts_entry	*e = NULL;

	if (servername != NULL && *servername != '\0')
		e = find_name(h, servername);
	else
		e = find_kind(h, HOSTS_NO_SNI);
	if (e == NULL)
		e = find_kind(h, HOSTS_DEFAULT);
	return e != NULL ? (int)(e - h->v) : -1;
}

const char *
hosts_label(const struct hosts *h, int entry, const char *servername)
{
	const struct hosts_entry	*e;

	if (h == NULL || entry < 0 || (size_t)entry >= h->n)
		return "none";
	e = &h->v[entry];
	if (servername == NULL || *servername == '\0')
		return "none";
	for (size_t i = 0; i < e->nnames; i++)
		if (strcasecmp(e->names[i], servername) == 0)
			return e->names[i];
	return HOSTS_DEFAULT_NAME;
}
