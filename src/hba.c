/*
 * hba: pg_hba.conf and pg_ident.conf as PostgreSQL reads them, cut down to
 * what a gate can honour, and the first-match decision on a connection.
 * Files arrive through struct hba_io; nothing here touches a socket.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hba.h"

/* PostgreSQL's MAX_TOKEN: a longer name is a mistake, not a name. */
#define HBA_TOKEN_MAX	10240
/* What a regular expression may cost regcomp; see regex_too_costly(). */
#define HBA_REGEX_MAX	256
#define HBA_REGEX_COST	4096

struct fields {
	struct hba_fld	*f;
	size_t		 n;
};

/* KIND_WALK: lines go to ctx.fn (hba_walk()'s caller). */
enum file_kind { KIND_HBA, KIND_IDENT, KIND_WALK };

struct ctx {
	const struct hba_io	*io;
	struct hba_rules	*r;
	char			*err;
	size_t			 errlen;
	size_t			 lcap, icap;	/* of r->lines, r->idents */
	hba_line_fn		 fn;		/* KIND_WALK */
	void			*fnarg;
	unsigned		 nreads;	/* files read so far */
	size_t			 nbytes;	/* and their bytes */
};

/*
 * Two lines that include (or @) their own file nest 10 deep in 2^10
 * ways: what one parse may read is capped, so a loop ends in an error,
 * not a hang.
 */
#define HBA_MAX_READS	1000
#define HBA_MAX_BYTES	(16u << 20)

static char *
ctx_read(struct ctx *x, const char *path, size_t *len, bool *missing)
{
	char	*text;

	if (x->nreads >= HBA_MAX_READS) {
		snprintf(x->err, x->errlen, "%s: more than %d files read "
		    "(include or @ loop?)", path, HBA_MAX_READS);
		return NULL;
	}
	if ((text = x->io->read(x->io->arg, path, len, missing, x->err,
	    x->errlen)) == NULL)
		return NULL;
	x->nreads++;
	if ((x->nbytes += *len) > HBA_MAX_BYTES) {
		free(text);
		snprintf(x->err, x->errlen, "%s: more than %u MB read in all "
		    "(include or @ loop?)", path, HBA_MAX_BYTES >> 20);
		return NULL;
	}
	return text;
}

static int
perr(struct ctx *x, const char *file, int lineno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
perr(struct ctx *x, const char *file, int lineno, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (x->errlen == 0)
		return -1;
	if (lineno > 0)
		n = snprintf(x->err, x->errlen, "%s:%d: ", file, lineno);
	else
		n = snprintf(x->err, x->errlen, "%s: ", file);
	if (n < 0 || (size_t)n >= x->errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static void *
grow(void *p, size_t *cap, size_t n, size_t size)
{
	void	*q;
	size_t	 ncap;

	if (n < *cap)
		return p;
	ncap = *cap ? *cap * 2 : 8;
	if ((q = realloc(p, ncap * size)) == NULL)
		return NULL;
	*cap = ncap;
	return q;
}

static void
fields_free(struct fields *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		for (size_t j = 0; j < fs->f[i].n; j++)
			free(fs->f[i].t[j].s);
		free(fs->f[i].t);
	}
	free(fs->f);
	fs->f = NULL;
	fs->n = 0;
}

/*
 * Split one logical line into fields, a field into comma-separated
 * tokens.  As in PostgreSQL: '#' starts a comment outside quotes, double
 * quotes keep blanks, commas and '#' and make a keyword a plain name, and
 * "" inside quotes is one quote.
 */
static int
tokenize(struct ctx *x, const char *file, int lineno, const char *s,
    struct fields *fs)
{
	size_t	fcap = 0;

	memset(fs, 0, sizeof(*fs));
	for (;;) {
		struct hba_fld	*f;
		size_t		 tcap = 0;

		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\f' ||
		    *s == '\v')
			s++;
		if (*s == '\0' || *s == '#')
			return 0;
		if ((fs->f = grow(fs->f, &fcap, fs->n, sizeof(*fs->f))) == NULL)
			goto nomem;
		f = &fs->f[fs->n++];
		memset(f, 0, sizeof(*f));
		for (;;) {
			char	*buf;
			size_t	 len = 0;
			bool	 inq = false, quoted = false;

			while (*s == ' ' || *s == '\t' || *s == '\r')
				s++;
			if ((buf = malloc(HBA_TOKEN_MAX + 1)) == NULL)
				goto nomem;
			for (; *s != '\0'; s++) {
				if (*s == '"') {
					quoted = true;
					if (inq && s[1] == '"')
						s++;
					else {
						inq = !inq;
						continue;
					}
				} else if (!inq && (*s == ' ' || *s == '\t' ||
				    *s == '\r' || *s == '\f' || *s == '\v' ||
				    *s == ',' || *s == '#'))
					break;
				if (len == HBA_TOKEN_MAX) {
					free(buf);
					return perr(x, file, lineno, "a name "
					    "longer than %d characters",
					    HBA_TOKEN_MAX);
				}
				buf[len++] = *s;
			}
			buf[len] = '\0';
			/* A long list must not keep HBA_TOKEN_MAX per name. */
			{
				char	*t = realloc(buf, len + 1);

				if (t != NULL)
					buf = t;
			}
			if (inq) {
				free(buf);
				return perr(x, file, lineno, "unterminated "
				    "quoted string");
			}
			if (len == 0 && !quoted) {
				free(buf);
				return perr(x, file, lineno, "empty entry in "
				    "a comma-separated list");
			}
			if ((f->t = grow(f->t, &tcap, f->n,
			    sizeof(*f->t))) == NULL) {
				free(buf);
				goto nomem;
			}
			f->t[f->n].s = buf;
			f->t[f->n++].quoted = quoted;
			if (*s != ',')
				break;
			s++;
		}
	}
nomem:
	return perr(x, file, lineno, "out of memory");
}

static bool
is_kw(const struct hba_tok *t, const char *kw)
{
	return !t->quoted && strcmp(t->s, kw) == 0;
}

/* path relative to the directory of the file that names it. */
static char *
relative_to(const char *file, const char *path)
{
	const char	*slash = strrchr(file, '/');
	char		*out;
	size_t		 dl;

	if (path[0] == '/' || slash == NULL)
		return strdup(path);
	dl = (size_t)(slash - file);
	if ((out = malloc(dl + strlen(path) + 2)) == NULL)
		return NULL;
	memcpy(out, file, dl);
	out[dl] = '/';
	strcpy(out + dl + 1, path);
	return out;
}

static void
name_free(struct hba_name *n)
{
	if (n->kind == HBA_NAME_REGEX)
		regfree(&n->re);
	free(n->text);
}

struct names {
	struct hba_name	*v;
	size_t		 n, cap;
};

static int add_names(struct ctx *, const char *file, int lineno,
    const struct hba_fld *, bool db, int depth, struct names *);

/*
 * The file an @name names, relative to the file that names it (PostgreSQL
 * 16), read whole into *text (NUL-terminated) with its path in *path; both
 * the caller's to free.  Returns -1 with the error set.
 */
static int
open_at_file(struct ctx *x, const char *file, int lineno, const char *name,
    int depth, char **path, char **text)
{
	size_t	 len;
	bool	 missing = false;

	if (depth >= HBA_MAX_DEPTH)
		return perr(x, file, lineno, "@%s: nested more than %d deep",
		    name, HBA_MAX_DEPTH);
	if ((*path = relative_to(file, name)) == NULL)
		return perr(x, file, lineno, "out of memory");
	if ((*text = ctx_read(x, *path, &len, &missing)) == NULL) {
		char	why[400];

		snprintf(why, sizeof(why), "%s", x->err);
		free(*path);
		return perr(x, file, lineno, "@%s: %s", name, why);
	}
	if (memchr(*text, '\0', len) != NULL) {
		perr(x, *path, 0, "contains a NUL byte (not a text file)");
		free(*text);
		free(*path);
		return -1;
	}
	return 0;
}

/*
 * @file: a list of names, blanks or commas between them, '#' comments,
 * nested @ allowed; relative to the file that names it (PostgreSQL 16).
 */
static int
add_at_file(struct ctx *x, const char *file, int lineno, const char *name,
    bool db, int depth, struct names *out)
{
	char		*path, *text, *p, *nl;
	int		 rc = 0;

	if (open_at_file(x, file, lineno, name, depth, &path, &text) != 0)
		return -1;
	for (p = text; rc == 0 && p != NULL && *p != '\0'; p = nl) {
		struct fields	fs;

		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		if (tokenize(x, path, 0, p, &fs) != 0) {
			fields_free(&fs);
			rc = -1;
			break;
		}
		for (size_t i = 0; rc == 0 && i < fs.n; i++)
			rc = add_names(x, path, 0, &fs.f[i], db, depth + 1,
			    out);
		fields_free(&fs);
	}
	free(text);
	free(path);
	return rc;
}

/*
 * glibc's regcomp copies the pattern once per repetition it expands ('+'
 * twice, {m,n} n + 1 times), so nested or stacked repetitions grow it
 * exponentially: a line of a+++... would take gigabytes.  The product of
 * those factors is capped; ordinary patterns stay far below it.
 */
static bool
regex_too_costly(const char *s)
{
	unsigned long	cost = 1;
	bool		after_quant = false;

	if (strlen(s) > HBA_REGEX_MAX)
		return true;
	for (; *s != '\0'; s++) {
		unsigned long	f = 0;

		if (*s == '\\' && s[1] != '\0') {
			s++;
			after_quant = false;
			continue;
		}
		if (*s == '[') {
			/* A bracket expression: ']' first is a member. */
			s += s[1] == '^' ? 2 : 1;
			if (*s == ']')
				s++;
			while (*s != '\0' && *s != ']')
				s++;
			if (*s == '\0')
				return false;	/* regcomp says what is wrong */
			after_quant = false;
			continue;
		}
		if (*s == '*' || *s == '?')
			f = 1;
		else if (*s == '+')
			f = 2;
		else if (*s == '{') {
			unsigned long	n = 0, most = 0;

			/* {m}, {m,}, {m,n}: the larger bound counts. */
			for (s++; *s != '\0' && *s != '}'; s++) {
				if (isdigit((unsigned char)*s))
					n = n * 10 + (unsigned long)(*s - '0');
				else
					n = 0;
				if (n > HBA_REGEX_COST)
					return true;
				if (n > most)
					most = n;
			}
			if (*s == '\0')
				return false;
			f = most + 1;
		}
		if (f == 0) {
			after_quant = false;
			continue;
		}
		/* PostgreSQL refuses a quantifier on a quantifier too. */
		if (after_quant || (cost *= f) > HBA_REGEX_COST)
			return true;
		after_quant = true;
	}
	return false;
}

static int
compile_re(struct ctx *x, const char *file, int lineno, regex_t *re,
    const char *src, int flags)
{
	char	msg[200];
	int	rc;

	if (regex_too_costly(src))
		return perr(x, file, lineno, "regular expression \"/%.40s%s\" "
		    "is too costly: at most %d characters, no quantifier right "
		    "after another, and its repetitions multiplying to at "
		    "most %d", src, strlen(src) > 40 ? "..." : "",
		    HBA_REGEX_MAX, HBA_REGEX_COST);
	if ((rc = regcomp(re, src, REG_EXTENDED | flags)) == 0)
		return 0;
	regerror(rc, re, msg, sizeof(msg));
	regfree(re);
	return perr(x, file, lineno, "invalid regular expression \"/%s\": %s "
	    "(POSIX extended syntax)", src, msg);
}

/* The names of one DATABASE or USER field, @files expanded. */
static int
add_names(struct ctx *x, const char *file, int lineno, const struct hba_fld *f,
    bool db, int depth, struct names *out)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct hba_tok	*t = &f->t[i];
		struct hba_name		*n;

		if (!t->quoted && t->s[0] == '@' && t->s[1] != '\0') {
			if (add_at_file(x, file, lineno, t->s + 1, db, depth,
			    out) != 0)
				return -1;
			continue;
		}
		if (db && (is_kw(t, "samerole") || is_kw(t, "samegroup")))
			return perr(x, file, lineno, "database \"%s\": role "
			    "membership is known only to the backend; "
			    "allowed: all, sameuser, names, /regex, @file",
			    t->s);
		if (db && is_kw(t, "replication"))
			return perr(x, file, lineno, "database \"replication\": "
			    "the gate does not tell replication connections "
			    "apart (\"all\" covers them); allowed: all, "
			    "sameuser, names, /regex, @file");
		if (!db && !t->quoted && t->s[0] == '+')
			return perr(x, file, lineno, "user \"%s\": role "
			    "membership (+group) is known only to the "
			    "backend; allowed: all, names, /regex, @file",
			    t->s);
		if ((out->v = grow(out->v, &out->cap, out->n,
		    sizeof(*out->v))) == NULL)
			return perr(x, file, lineno, "out of memory");
		n = &out->v[out->n];
		memset(n, 0, sizeof(*n));
		if ((n->text = strdup(t->s)) == NULL)
			return perr(x, file, lineno, "out of memory");
		if (is_kw(t, "all"))
			n->kind = HBA_NAME_ALL;
		else if (db && is_kw(t, "sameuser"))
			n->kind = HBA_NAME_SAMEUSER;
		else if (t->s[0] == '/') {
			/* Quoted too, as in PostgreSQL 16: a regex with a
			 * comma has to be quoted. */
			if (compile_re(x, file, lineno, &n->re, t->s + 1,
			    REG_NOSUB) != 0) {
				free(n->text);
				return -1;
			}
			n->kind = HBA_NAME_REGEX;
		} else
			n->kind = HBA_NAME_LITERAL;
		out->n++;
	}
	return 0;
}

static bool
single(const struct hba_fld *f)
{
	return f->n == 1;
}

static int
parse_prefix(const char *s, int max)
{
	int	v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s) || (v = v * 10 + (*s - '0')) >
		    max)
			return -1;
	}
	return v;
}

static int
to_addr(const char *s, int *family, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

#define ADDR_ALLOWED	"all, an address with a CIDR mask length " \
			"(10.0.0.0/8, ::1/128), or an address and a mask in " \
			"the next column"

/* ADDRESS [MASK]; *used is how many fields it took. */
static int
parse_address(struct ctx *x, const char *file, int lineno,
    const struct fields *fs, size_t i, struct hba_line *l, size_t *used)
{
	const struct hba_tok	*t;
	char			 buf[64];
	const char		*slash;
	int			 bits, maskfam, width;

	if (!single(&fs->f[i]))
		return perr(x, file, lineno, "multiple values in ip address "
		    "field; allowed: " ADDR_ALLOWED);
	t = &fs->f[i].t[0];
	*used = 1;
	if (is_kw(t, "all")) {
		l->addr_all = true;
		return 0;
	}
	if (is_kw(t, "samehost") || is_kw(t, "samenet"))
		return perr(x, file, lineno, "address \"%s\" is not supported "
		    "by pgsslgate (the gate's interfaces are not the "
		    "server's); allowed: " ADDR_ALLOWED, t->s);
	if ((slash = strchr(t->s, '/')) != NULL) {
		if ((size_t)(slash - t->s) >= sizeof(buf))
			goto bad;
		memcpy(buf, t->s, (size_t)(slash - t->s));
		buf[slash - t->s] = '\0';
		if (to_addr(buf, &l->family, l->addr) != 0)
			goto bad;
		width = l->family == AF_INET ? 32 : 128;
		if ((bits = parse_prefix(slash + 1, width)) < 0)
			return perr(x, file, lineno, "invalid CIDR mask in "
			    "address \"%s\": the length must be 0 to %d",
			    t->s, width);
		for (int b = 0; b < bits; b++)
			l->mask[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		return 0;
	}
	if (t->quoted || to_addr(t->s, &l->family, l->addr) != 0)
		goto bad;
	if (i + 1 >= fs->n)
		return perr(x, file, lineno, "end-of-line before netmask "
		    "specification (after address \"%s\")", t->s);
	if (!single(&fs->f[i + 1]) ||
	    to_addr(fs->f[i + 1].t[0].s, &maskfam, l->mask) != 0 ||
	    maskfam != l->family)
		return perr(x, file, lineno, "invalid IP mask \"%s\" after "
		    "address \"%s\"; allowed: a mask of the same family "
		    "(255.255.255.0, ffff:ffff::)", fs->f[i + 1].t[0].s, t->s);
	*used = 2;
	return 0;
bad:
	return perr(x, file, lineno, "invalid address \"%s\" (host names are "
	    "not supported: the gate matches addresses); allowed: "
	    ADDR_ALLOWED, t->s);
}

static int
parse_option(struct ctx *x, const char *file, int lineno, struct hba_line *l,
    const char *opt)
{
	const char	*eq = strchr(opt, '=');
	size_t		 nl;

	if (eq == NULL)
		return perr(x, file, lineno, "authentication option \"%s\" is "
		    "not in name=value format; allowed: clientcert=verify-ca, "
		    "clientcert=verify-full, map=NAME, clientname=CN|DN", opt);
	nl = (size_t)(eq - opt);
	eq++;
	if (nl == 10 && strncmp(opt, "clientcert", nl) == 0) {
		if (strcmp(eq, "verify-ca") == 0)
			l->clientcert = HBA_CLIENTCERT_VERIFY_CA;
		else if (strcmp(eq, "verify-full") == 0)
			l->clientcert = HBA_CLIENTCERT_VERIFY_FULL;
		else
			return perr(x, file, lineno, "invalid value for "
			    "clientcert: \"%s\"; allowed: verify-ca, "
			    "verify-full", eq);
		return 0;
	}
	if (nl == 10 && strncmp(opt, "clientname", nl) == 0) {
		if (strcmp(eq, "CN") == 0)
			l->clientname = HBA_CLIENTNAME_CN;
		else if (strcmp(eq, "DN") == 0)
			l->clientname = HBA_CLIENTNAME_DN;
		else
			return perr(x, file, lineno, "invalid value for "
			    "clientname: \"%s\"; allowed: CN, DN", eq);
		return 0;
	}
	if (nl == 3 && strncmp(opt, "map", nl) == 0) {
		if (*eq == '\0')
			return perr(x, file, lineno, "map= needs a map name "
			    "from ident_file");
		free(l->map);
		if ((l->map = strdup(eq)) == NULL)
			return perr(x, file, lineno, "out of memory");
		return 0;
	}
	return perr(x, file, lineno, "authentication option \"%.*s\" is not "
	    "supported by pgsslgate; allowed: clientcert, map, clientname",
	    (int)nl, opt);
}

static void
line_free(struct hba_line *l)
{
	for (size_t i = 0; i < l->ndb; i++)
		name_free(&l->db[i]);
	for (size_t i = 0; i < l->nuser; i++)
		name_free(&l->user[i]);
	free(l->db);
	free(l->user);
	free(l->map);
	free(l->type_name);
	free(l->file);
}

static int
parse_hba_line(struct ctx *x, const char *file, int lineno,
    const struct fields *fs, struct hba_line *l)
{
	struct names	 names;
	const char	*ty, *m;
	size_t		 i, used;

	if (!single(&fs->f[0]))
		return perr(x, file, lineno, "multiple values in connection "
		    "type field; allowed: host, hostssl, hostnossl");
	ty = fs->f[0].t[0].s;
	if ((l->type_name = strdup(ty)) == NULL ||
	    (l->file = strdup(file)) == NULL)
		return perr(x, file, lineno, "out of memory");
	l->lineno = lineno;
	if (strcmp(ty, "host") == 0 || strcmp(ty, "hostnogssenc") == 0)
		l->type = HBA_HOST;	/* the gate never offers GSSAPI */
	else if (strcmp(ty, "hostssl") == 0)
		l->type = HBA_HOSTSSL;
	else if (strcmp(ty, "hostnossl") == 0)
		l->type = HBA_HOSTNOSSL;
	else if (strcmp(ty, "local") == 0)
		return perr(x, file, lineno, "connection type \"local\" is "
		    "for Unix-domain sockets; the gate takes TCP: allowed: "
		    "host, hostssl, hostnossl, hostnogssenc");
	else if (strcmp(ty, "hostgssenc") == 0)
		return perr(x, file, lineno, "connection type \"hostgssenc\" "
		    "would never match: the gate never offers GSSAPI "
		    "encryption; allowed: host, hostssl, hostnossl, "
		    "hostnogssenc");
	else
		return perr(x, file, lineno, "invalid connection type \"%s\"; "
		    "allowed: host, hostssl, hostnossl, hostnogssenc", ty);
	if (fs->n < 2)
		return perr(x, file, lineno, "end-of-line before database "
		    "specification");
	if (fs->n < 3)
		return perr(x, file, lineno, "end-of-line before role "
		    "specification");
	if (fs->n < 4)
		return perr(x, file, lineno, "end-of-line before IP address "
		    "specification");
	memset(&names, 0, sizeof(names));
	if (add_names(x, file, lineno, &fs->f[1], true, 0, &names) != 0) {
		l->db = names.v;
		l->ndb = names.n;
		return -1;
	}
	l->db = names.v;
	l->ndb = names.n;
	memset(&names, 0, sizeof(names));
	if (add_names(x, file, lineno, &fs->f[2], false, 0, &names) != 0) {
		l->user = names.v;
		l->nuser = names.n;
		return -1;
	}
	l->user = names.v;
	l->nuser = names.n;
	if (parse_address(x, file, lineno, fs, 3, l, &used) != 0)
		return -1;
	i = 3 + used;
	if (i >= fs->n)
		return perr(x, file, lineno, "end-of-line before "
		    "authentication method");
	if (!single(&fs->f[i]))
		return perr(x, file, lineno, "multiple values in "
		    "authentication method field; allowed: pass, reject, cert");
	m = fs->f[i].t[0].s;
	if (strcmp(m, "pass") == 0)
		l->method = HBA_PASS;
	else if (strcmp(m, "reject") == 0)
		l->method = HBA_REJECT;
	else if (strcmp(m, "cert") == 0)
		l->method = HBA_CERT;
	else
		return perr(x, file, lineno, "authentication method \"%s\" is "
		    "the backend's to carry out, not the gate's; allowed: "
		    "pass (the backend authenticates), reject, cert", m);
	for (i++; i < fs->n; i++)
		for (size_t j = 0; j < fs->f[i].n; j++)
			if (parse_option(x, file, lineno, l,
			    fs->f[i].t[j].s) != 0)
				return -1;
	/* PostgreSQL's own consistency rules. */
	if (l->method == HBA_CERT && l->type != HBA_HOSTSSL)
		return perr(x, file, lineno, "cert authentication is only "
		    "supported on hostssl connections");
	if (l->clientcert != HBA_CLIENTCERT_NONE && l->type != HBA_HOSTSSL)
		return perr(x, file, lineno, "clientcert can only be "
		    "configured for \"hostssl\" rows");
	if (l->method == HBA_CERT && l->clientcert == HBA_CLIENTCERT_VERIFY_CA)
		return perr(x, file, lineno, "clientcert only accepts "
		    "\"verify-full\" when using \"cert\" authentication");
	if (l->method == HBA_CERT)
		l->clientcert = HBA_CLIENTCERT_VERIFY_FULL;
	if ((l->map != NULL || l->clientname != HBA_CLIENTNAME_CN) &&
	    l->clientcert != HBA_CLIENTCERT_VERIFY_FULL)
		return perr(x, file, lineno, "map and clientname apply only "
		    "to cert lines and to clientcert=verify-full");
	return 0;
}

static int
parse_ident_line(struct ctx *x, const char *file, int lineno,
    const struct fields *fs, struct hba_ident *id)
{
	const struct hba_tok	*u;

	if (fs->n != 3 || !single(&fs->f[0]) || !single(&fs->f[1]) ||
	    !single(&fs->f[2]))
		return perr(x, file, lineno, "an ident line is MAPNAME "
		    "CERTIFICATE-NAME USER, one value each (%zu field%s "
		    "read)", fs->n, fs->n == 1 ? "" : "s");
	if ((id->file = strdup(file)) == NULL ||
	    (id->map = strdup(fs->f[0].t[0].s)) == NULL ||
	    (id->system = strdup(fs->f[1].t[0].s)) == NULL)
		return perr(x, file, lineno, "out of memory");
	id->lineno = lineno;
	if (id->system[0] == '/') {
		if (compile_re(x, file, lineno, &id->re, id->system + 1, 0) !=
		    0)
			return -1;
		id->regex = true;
	}
	u = &fs->f[2].t[0];
	if (!u->quoted && u->s[0] == '+')
		return perr(x, file, lineno, "user \"%s\": role membership "
		    "(+group) is known only to the backend; allowed: a name, "
		    "\\1, all, /regex", u->s);
	if ((id->user.text = strdup(u->s)) == NULL)
		return perr(x, file, lineno, "out of memory");
	if (is_kw(u, "all"))
		id->user.kind = HBA_NAME_ALL;
	else if (u->s[0] == '/') {
		if (compile_re(x, file, lineno, &id->user.re, u->s + 1,
		    REG_NOSUB) != 0) {
			id->user.kind = HBA_NAME_LITERAL;
			return -1;
		}
		id->user.kind = HBA_NAME_REGEX;
	} else
		id->user.kind = HBA_NAME_LITERAL;
	return 0;
}

static void
ident_free(struct hba_ident *id)
{
	if (id->regex)
		regfree(&id->re);
	name_free(&id->user);
	free(id->file);
	free(id->map);
	free(id->system);
}

static int parse_file(struct ctx *, const char *path, enum file_kind,
    int depth, bool missing_ok, const char *from, int fromline);

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* include_dir: the files ending in .conf, in C-locale order. */
static int
include_dir(struct ctx *x, const char *dir, enum file_kind kind, int depth,
    const char *from, int fromline)
{
	char	**names = NULL, why[400];
	size_t	  n = 0;
	int	  rc = 0;

	if (x->io->list(x->io->arg, dir, &names, &n, x->err, x->errlen) != 0) {
		snprintf(why, sizeof(why), "%s", x->err);
		return perr(x, from, fromline, "include_dir \"%s\": %s", dir,
		    why);
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		size_t	 l = strlen(names[i]);
		char	*path;

		if (rc != 0 || names[i][0] == '.' || l < 6 ||
		    strcmp(names[i] + l - 5, ".conf") != 0)
			continue;
		if ((path = malloc(strlen(dir) + l + 2)) == NULL) {
			rc = perr(x, from, fromline, "out of memory");
			continue;
		}
		sprintf(path, "%s/%s", dir, names[i]);
		rc = parse_file(x, path, kind, depth + 1, false, from,
		    fromline);
		free(path);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int
directive(struct ctx *x, const char *file, int lineno,
    const struct fields *fs, enum file_kind kind, int depth)
{
	const struct hba_tok	*d = &fs->f[0].t[0];
	char			*path;
	int			 rc;

	if (fs->n != 2 || !single(&fs->f[1]))
		return perr(x, file, lineno, "%s needs one file name", d->s);
	if (depth + 1 >= HBA_MAX_DEPTH)
		return perr(x, file, lineno, "%s \"%s\": nested more than %d "
		    "deep", d->s, fs->f[1].t[0].s, HBA_MAX_DEPTH);
	if ((path = relative_to(file, fs->f[1].t[0].s)) == NULL)
		return perr(x, file, lineno, "out of memory");
	if (strcmp(d->s, "include_dir") == 0)
		rc = include_dir(x, path, kind, depth, file, lineno);
	else
		rc = parse_file(x, path, kind, depth + 1,
		    strcmp(d->s, "include_if_exists") == 0, file, lineno);
	free(path);
	return rc;
}

static int
parse_one(struct ctx *x, const char *file, int lineno, const char *text,
    enum file_kind kind, int depth)
{
	struct fields	 fs;
	struct hba_rules *r = x->r;
	int		 rc = 0;

	if (tokenize(x, file, lineno, text, &fs) != 0) {
		fields_free(&fs);
		return -1;
	}
	if (fs.n == 0)
		return 0;
	if (single(&fs.f[0]) && (is_kw(&fs.f[0].t[0], "include") ||
	    is_kw(&fs.f[0].t[0], "include_if_exists") ||
	    is_kw(&fs.f[0].t[0], "include_dir")))
		rc = directive(x, file, lineno, &fs, kind, depth);
	else if (kind == KIND_WALK)
		rc = x->fn(x->fnarg, file, lineno, fs.f, fs.n, x->err,
		    x->errlen);
	else if (kind == KIND_HBA) {
		struct hba_line	*l;

		void	*p = grow(r->lines, &x->lcap, r->nlines,
		    sizeof(*r->lines));

		if (p == NULL) {
			fields_free(&fs);
			return perr(x, file, lineno, "out of memory");
		}
		r->lines = p;
		l = &r->lines[r->nlines++];
		memset(l, 0, sizeof(*l));
		rc = parse_hba_line(x, file, lineno, &fs, l);
	} else {
		struct hba_ident	*id;

		void	*p = grow(r->idents, &x->icap, r->nidents,
		    sizeof(*r->idents));

		if (p == NULL) {
			fields_free(&fs);
			return perr(x, file, lineno, "out of memory");
		}
		r->idents = p;
		id = &r->idents[r->nidents++];
		memset(id, 0, sizeof(*id));
		rc = parse_ident_line(x, file, lineno, &fs, id);
	}
	fields_free(&fs);
	return rc;
}

/*
 * One file: lines ending in a backslash go on on the next line (the
 * backslash and the newline dropped), as in PostgreSQL.
 */
static int
parse_file(struct ctx *x, const char *path, enum file_kind kind, int depth,
    bool missing_ok, const char *from, int fromline)
{
	char	*text, *p, *logical = NULL;
	size_t	 len;
	bool	 missing = false;
	int	 lineno = 0, rc = 0;

	if ((text = ctx_read(x, path, &len, &missing)) == NULL) {
		char	why[400];

		if (missing && missing_ok)
			return 0;
		if (from == NULL)
			return -1;	/* err names path already */
		snprintf(why, sizeof(why), "%s", x->err);
		return perr(x, from, fromline, "included file: %s", why);
	}
	if (memchr(text, '\0', len) != NULL) {
		free(text);
		return perr(x, path, 0, "contains a NUL byte (not a text "
		    "file)");
	}
	if ((logical = malloc(len + 1)) == NULL) {
		free(text);
		return perr(x, path, 0, "out of memory");
	}
	p = text;
	while (rc == 0 && *p != '\0') {
		size_t	ll = 0;
		int	first = lineno + 1;

		for (;;) {
			char	*nl = strchr(p, '\n');
			size_t	 n = nl != NULL ? (size_t)(nl - p) : strlen(p);
			bool	 more;

			lineno++;
			if (n > 0 && p[n - 1] == '\r')
				n--;
			more = n > 0 && p[n - 1] == '\\';
			if (more)
				n--;
			memcpy(logical + ll, p, n);
			ll += n;
			p = nl != NULL ? nl + 1 : p + strlen(p);
			if (!more || *p == '\0')
				break;
		}
		logical[ll] = '\0';
		rc = parse_one(x, path, first, logical, kind, depth);
	}
	free(logical);
	free(text);
	return rc;
}

void
hba_free(struct hba_rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nlines; i++)
		line_free(&r->lines[i]);
	for (size_t i = 0; i < r->nidents; i++)
		ident_free(&r->idents[i]);
	free(r->lines);
	free(r->idents);
	free(r->hba_file);
	free(r->ident_file);
	free(r);
}

struct hba_rules *
hba_parse(const char *hba_path, const char *ident_path,
    const struct hba_io *io, char *err, size_t errlen)
{
	struct ctx	 x = { .io = io, .err = err, .errlen = errlen };

	if ((x.r = calloc(1, sizeof(*x.r))) == NULL ||
	    (x.r->hba_file = strdup(hba_path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", hba_path);
		hba_free(x.r);
		return NULL;
	}
	if (ident_path != NULL && *ident_path != '\0') {
		if ((x.r->ident_file = strdup(ident_path)) == NULL) {
			snprintf(err, errlen, "%s: out of memory", ident_path);
			hba_free(x.r);
			return NULL;
		}
		if (parse_file(&x, ident_path, KIND_IDENT, 0, false, NULL,
		    0) != 0) {
			hba_free(x.r);
			return NULL;
		}
	}
	if (parse_file(&x, hba_path, KIND_HBA, 0, false, NULL, 0) != 0) {
		hba_free(x.r);
		return NULL;
	}
	if (x.r->nlines == 0) {
		/* As PostgreSQL: an empty file would refuse everyone. */
		perr(&x, hba_path, 0, "contains no entries");
		hba_free(x.r);
		return NULL;
	}
	/* A map that is nowhere would refuse every connection it covers. */
	for (size_t i = 0; i < x.r->nlines; i++) {
		const struct hba_line	*l = &x.r->lines[i];
		bool			 found = false;

		if (l->map == NULL)
			continue;
		for (size_t j = 0; j < x.r->nidents && !found; j++)
			found = strcmp(x.r->idents[j].map, l->map) == 0;
		if (!found) {
			perr(&x, l->file, l->lineno, "map \"%s\" is not in "
			    "ident_file (%s)", l->map, x.r->ident_file != NULL ?
			    x.r->ident_file : "ident_file is not set");
			hba_free(x.r);
			return NULL;
		}
	}
	return x.r;
}

int
hba_walk(const char *path, const struct hba_io *io, hba_line_fn fn,
    void *arg, char *err, size_t errlen)
{
	struct ctx	x = { .io = io, .err = err, .errlen = errlen, .fn = fn,
			    .fnarg = arg };

	return parse_file(&x, path, KIND_WALK, 0, false, NULL, 0);
}

/* @name's names, nested @ followed, into out (see hba_at_names()). */
static int
at_names(struct ctx *x, const char *file, int lineno, const char *name,
    int depth, char ***out, size_t *n, size_t *cap)
{
	char	*path, *text, *p, *nl;
	int	 rc = 0;

	if (open_at_file(x, file, lineno, name, depth, &path, &text) != 0)
		return -1;
	for (p = text; rc == 0 && p != NULL && *p != '\0'; p = nl) {
		struct fields	fs;

		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		if (tokenize(x, path, 0, p, &fs) != 0) {
			fields_free(&fs);
			rc = -1;
			break;
		}
		for (size_t i = 0; rc == 0 && i < fs.n; i++)
			for (size_t j = 0; rc == 0 && j < fs.f[i].n; j++) {
				const struct hba_tok	*t = &fs.f[i].t[j];

				if (!t->quoted && t->s[0] == '@' &&
				    t->s[1] != '\0') {
					rc = at_names(x, path, 0, t->s + 1,
					    depth + 1, out, n, cap);
					continue;
				}
				if ((*out = grow(*out, cap, *n,
				    sizeof(**out))) == NULL ||
				    ((*out)[*n] = strdup(t->s)) == NULL) {
					rc = perr(x, path, 0, "out of memory");
					break;
				}
				(*n)++;
			}
		fields_free(&fs);
	}
	free(text);
	free(path);
	return rc;
}

int
hba_at_names(const char *file, int lineno, const char *name,
    const struct hba_io *io, char ***names, size_t *n, char *err,
    size_t errlen)
{
	struct ctx	x = { .io = io, .err = err, .errlen = errlen };
	size_t		cap = 0;

	*names = NULL;
	*n = 0;
	if (at_names(&x, file, lineno, name, 0, names, n, &cap) != 0) {
		for (size_t i = 0; i < *n; i++)
			free((*names)[i]);
		free(*names);
		*names = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

const struct hba_line *
hba_wants_cert(const struct hba_rules *r)
{
	for (size_t i = 0; r != NULL && i < r->nlines; i++)
		if (r->lines[i].clientcert != HBA_CLIENTCERT_NONE)
			return &r->lines[i];
	return NULL;
}

/* The real file system. */
static char *
fs_read(void *arg, const char *path, size_t *lenp, bool *missing, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		*text;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	(void)arg;
	/* O_NONBLOCK: a FIFO in its place must not stop a reload. */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		*missing = errno == ENOENT;
		snprintf(err, errlen, "%s: could not open: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return NULL;
	}
	if (st.st_size > (off_t)HBA_FILE_MAX) {
		close(fd);
		snprintf(err, errlen, "%s: larger than 1 MB", path);
		return NULL;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	while (len < (size_t)st.st_size &&
	    (n = read(fd, text + len, (size_t)st.st_size - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: could not read: %s", path,
			    strerror(errno));
			close(fd);
			free(text);
			return NULL;
		}
		len += (size_t)n;
	}
	close(fd);
	text[len] = '\0';
	*lenp = len;
	return text;
}

static int
fs_list(void *arg, const char *dir, char ***names, size_t *np, char *err,
    size_t errlen)
{
	DIR		*d;
	struct dirent	*e;
	char		**v = NULL;
	size_t		  n = 0, cap = 0;

	(void)arg;
	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "could not open directory: %s",
		    strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char	**nv;

		if ((nv = grow(v, &cap, n, sizeof(*v))) == NULL ||
		    (nv[n] = strdup(e->d_name)) == NULL) {
			if (nv != NULL)
				v = nv;
			for (size_t i = 0; i < n; i++)
				free(v[i]);
			free(v);
			closedir(d);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		v = nv;
		n++;
	}
	closedir(d);
	*names = v;
	*np = n;
	return 0;
}

const struct hba_io hba_file_io = { fs_read, fs_list, NULL };

/* Matching. */

static bool
name_matches(const struct hba_name *n, const char *s, const char *user)
{
	switch (n->kind) {
	case HBA_NAME_ALL:
		return true;
	case HBA_NAME_SAMEUSER:
		return strcmp(s, user) == 0;
	case HBA_NAME_REGEX:
		return regexec(&n->re, s, 0, NULL, 0) == 0;
	case HBA_NAME_LITERAL:
		return strcmp(s, n->text) == 0;
	}
	return false;
}

static bool
list_matches(const struct hba_name *v, size_t n, const char *s,
    const char *user)
{
	for (size_t i = 0; i < n; i++)
		if (name_matches(&v[i], s, user))
			return true;
	return false;
}

static bool
addr_matches(const struct hba_line *l, const struct sockaddr *sa)
{
	const uint8_t	*a;
	size_t		 w;

	if (l->addr_all)
		return true;
	if (sa == NULL || sa->sa_family != l->family)
		return false;
	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr;
		w = 4;
	} else {
		a = (const uint8_t *)&((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr;
		w = 16;
	}
	for (size_t i = 0; i < w; i++)
		if ((a[i] & l->mask[i]) != (l->addr[i] & l->mask[i]))
			return false;
	return true;
}

static bool
type_matches(const struct hba_line *l, bool ssl)
{
	return l->type == HBA_HOST || (l->type == HBA_HOSTSSL) == ssl;
}

/* pg_ident.conf: does certificate name `name` map to `user`? */
static bool
ident_matches(const struct hba_ident *id, const char *name, const char *user)
{
	regmatch_t	 m[2];
	const char	*ref;
	char		*want;
	size_t		 pl, cl;
	bool		 ok;

	if (!id->regex)
		return strcmp(id->system, name) == 0 &&
		    name_matches(&id->user, user, user);
	if (regexec(&id->re, name, 2, m, 0) != 0)
		return false;
	if (id->user.kind != HBA_NAME_LITERAL ||
	    (ref = strstr(id->user.text, "\\1")) == NULL)
		return name_matches(&id->user, user, user);
	/* \1 stands for the first parenthesized part, as in PostgreSQL. */
	if (m[1].rm_so < 0)
		return false;
	pl = (size_t)(ref - id->user.text);
	cl = (size_t)(m[1].rm_eo - m[1].rm_so);
	if ((want = malloc(strlen(id->user.text) + cl + 1)) == NULL)
		return false;
	memcpy(want, id->user.text, pl);
	memcpy(want + pl, name + m[1].rm_so, cl);
	strcpy(want + pl + cl, ref + 2);
	ok = strcmp(want, user) == 0;
	free(want);
	return ok;
}

static bool
usermap_ok(const struct hba_rules *r, const char *map, const char *name,
    const char *user)
{
	for (size_t i = 0; i < r->nidents; i++)
		if (strcmp(r->idents[i].map, map) == 0 &&
		    ident_matches(&r->idents[i], name, user))
			return true;
	return false;
}

static void
host_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void	*a;

	if (sa == NULL || (sa->sa_family != AF_INET &&
	    sa->sa_family != AF_INET6)) {
		snprintf(buf, len, "[local]");
		return;
	}
	a = sa->sa_family == AF_INET ?
	    (const void *)&((const struct sockaddr_in *)(const void *)sa)->
	    sin_addr : (const void *)&((const struct sockaddr_in6 *)
	    (const void *)sa)->sin6_addr;
	if (inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

void
hba_decide(const struct hba_rules *r, const struct hba_request *q,
    struct hba_decision *d)
{
	const char	*enc = q->ssl ? "SSL encryption" : "no encryption";
	const char	*name;
	char		 host[64];
	size_t		 i;

	memset(d, 0, sizeof(*d));
	host_text(q->addr, host, sizeof(host));
	for (i = 0; i < r->nlines; i++) {
		const struct hba_line *l = &r->lines[i];

		if (type_matches(l, q->ssl) && addr_matches(l, q->addr) &&
		    list_matches(l->db, l->ndb, q->database, q->user) &&
		    list_matches(l->user, l->nuser, q->user, q->user))
			break;
	}
	if (i == r->nlines) {
		d->verdict = HBA_NO_ENTRY;
		snprintf(d->message, sizeof(d->message), "no pg_hba.conf entry "
		    "for host \"%s\", user \"%s\", database \"%s\", %s", host,
		    q->user, q->database, enc);
		snprintf(d->log, sizeof(d->log), "no line of hba_file %s "
		    "matches", r->hba_file);
		return;
	}
	d->line = &r->lines[i];
	if (d->line->method == HBA_REJECT) {
		d->verdict = HBA_REJECTED;
		snprintf(d->message, sizeof(d->message), "pg_hba.conf rejects "
		    "connection for host \"%s\", user \"%s\", database \"%s\", "
		    "%s", host, q->user, q->database, enc);
		snprintf(d->log, sizeof(d->log), "rejected by %s:%d",
		    d->line->file, d->line->lineno);
		return;
	}
	if (d->line->clientcert == HBA_CLIENTCERT_NONE) {
		d->verdict = HBA_ALLOW;
		snprintf(d->log, sizeof(d->log), "allowed by %s:%d",
		    d->line->file, d->line->lineno);
		return;
	}
	if (!q->cert) {
		d->verdict = HBA_NO_CERT;
		snprintf(d->message, sizeof(d->message), "connection requires "
		    "a valid client certificate");
		snprintf(d->detail, sizeof(d->detail), "The client did not "
		    "send a certificate (libpq: sslcert and sslkey).");
		snprintf(d->log, sizeof(d->log), "no client certificate, which "
		    "%s:%d requires", d->line->file, d->line->lineno);
		return;
	}
	if (d->line->clientcert == HBA_CLIENTCERT_VERIFY_CA) {
		d->verdict = HBA_ALLOW;
		snprintf(d->log, sizeof(d->log), "allowed by %s:%d",
		    d->line->file, d->line->lineno);
		return;
	}
	name = d->line->clientname == HBA_CLIENTNAME_DN ? q->dn : q->cn;
	if (name != NULL && (d->line->map != NULL ?
	    usermap_ok(r, d->line->map, name, q->user) :
	    strcmp(name, q->user) == 0)) {
		d->verdict = HBA_ALLOW;
		snprintf(d->log, sizeof(d->log), "allowed by %s:%d",
		    d->line->file, d->line->lineno);
		return;
	}
	d->verdict = HBA_CERT_FAILED;
	if (d->line->method == HBA_CERT)
		snprintf(d->message, sizeof(d->message), "certificate "
		    "authentication failed for user \"%s\"", q->user);
	else
		snprintf(d->message, sizeof(d->message), "certificate "
		    "validation (clientcert=verify-full) failed for user "
		    "\"%s\": %s mismatch", q->user,
		    d->line->clientname == HBA_CLIENTNAME_DN ? "DN" : "CN");
	if (name == NULL)
		snprintf(d->log, sizeof(d->log), "the client certificate has "
		    "no single, well-formed %s (%s:%d)",
		    d->line->clientname == HBA_CLIENTNAME_DN ? "subject" :
		    "common name", d->line->file, d->line->lineno);
	else if (d->line->map != NULL)
		snprintf(d->log, sizeof(d->log), "no match in usermap \"%s\" "
		    "for user \"%s\" authenticated as \"%s\" (%s:%d)",
		    d->line->map, q->user, name, d->line->file,
		    d->line->lineno);
	else
		snprintf(d->log, sizeof(d->log), "the certificate's %s \"%s\" "
		    "is not the user name (%s:%d)",
		    d->line->clientname == HBA_CLIENTNAME_DN ? "DN" : "CN",
		    name, d->line->file, d->line->lineno);
}

/* --check: the rules as understood. */

static void
put(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
put(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (*at >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *at, len - *at, fmt, ap);
	va_end(ap);
	if (n > 0)
		*at += (size_t)n;
}

static void
put_names(char *buf, size_t len, size_t *at, const struct hba_name *v,
    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *sep = i ? "," : "";

		if (v[i].kind == HBA_NAME_LITERAL)
			put(buf, len, at, "%s\"%s\"", sep, v[i].text);
		else
			put(buf, len, at, "%s%s", sep, v[i].text);
	}
}

static int
prefix_len(const uint8_t *m, size_t w)
{
	int	bits = 0;

	for (size_t i = 0; i < w * 8; i++) {
		bool on = m[i / 8] & (0x80 >> (i % 8));

		if (on && bits != (int)i)
			return -1;
		if (on)
			bits++;
	}
	return bits;
}

void
hba_describe(const struct hba_rules *r,
    void (*emit)(void *arg, const char *text), void *arg)
{
	static const char *const methods[] = { "pass", "reject", "cert" };
	static const char *const types[] = { "host", "hostssl", "hostnossl" };
	char	buf[2048], a[INET6_ADDRSTRLEN], m[INET6_ADDRSTRLEN];
	size_t	at;

	for (size_t i = 0; i < r->nlines; i++) {
		const struct hba_line *l = &r->lines[i];

		at = 0;
		put(buf, sizeof(buf), &at, "%s:%d: %s database ", l->file,
		    l->lineno, types[l->type]);
		put_names(buf, sizeof(buf), &at, l->db, l->ndb);
		put(buf, sizeof(buf), &at, " user ");
		put_names(buf, sizeof(buf), &at, l->user, l->nuser);
		if (l->addr_all)
			put(buf, sizeof(buf), &at, " address all");
		else {
			size_t	w = l->family == AF_INET ? 4 : 16;
			int	p = prefix_len(l->mask, w);

			inet_ntop(l->family, l->addr, a, sizeof(a));
			inet_ntop(l->family, l->mask, m, sizeof(m));
			if (p >= 0)
				put(buf, sizeof(buf), &at, " address %s/%d",
				    a, p);
			else
				put(buf, sizeof(buf), &at, " address %s mask "
				    "%s", a, m);
		}
		put(buf, sizeof(buf), &at, ": %s", methods[l->method]);
		if (l->clientcert == HBA_CLIENTCERT_VERIFY_CA)
			put(buf, sizeof(buf), &at, " clientcert=verify-ca");
		else if (l->clientcert == HBA_CLIENTCERT_VERIFY_FULL &&
		    l->method != HBA_CERT)
			put(buf, sizeof(buf), &at, " clientcert=verify-full");
		if (l->clientcert == HBA_CLIENTCERT_VERIFY_FULL && l->map)
			put(buf, sizeof(buf), &at, " (certificate %s must map "
			    "to the user through map \"%s\")",
			    l->clientname == HBA_CLIENTNAME_DN ? "DN" : "CN",
			    l->map);
		else if (l->clientcert == HBA_CLIENTCERT_VERIFY_FULL)
			put(buf, sizeof(buf), &at, " (certificate %s must be "
			    "the user name)", l->clientname ==
			    HBA_CLIENTNAME_DN ? "DN" : "CN");
		emit(arg, buf);
	}
	for (size_t i = 0; i < r->nidents; i++) {
		const struct hba_ident *id = &r->idents[i];

		at = 0;
		put(buf, sizeof(buf), &at, "%s:%d: map \"%s\": certificate "
		    "name %s%s%s -> user %s%s%s", id->file, id->lineno,
		    id->map, id->regex ? "" : "\"", id->system,
		    id->regex ? "" : "\"",
		    id->user.kind == HBA_NAME_LITERAL ? "\"" : "",
		    id->user.text,
		    id->user.kind == HBA_NAME_LITERAL ? "\"" : "");
		emit(arg, buf);
	}
}
