/*
 * hba: the gate's pg_hba.conf (hba_file) and pg_ident.conf (ident_file).
 * Parsing turns the files into an immutable rule list; hba_decide() is the
 * first-match walk PostgreSQL does, on what the gate knows of a connection.
 */
#ifndef HBA_H
#define HBA_H

#include <sys/socket.h>

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* include, include_if_exists, include_dir and @file nest this deep. */
#define HBA_MAX_DEPTH		10
#define HBA_FILE_MAX		(1u << 20)	/* bytes per file read */
#define HBA_MSG_MAX		600

enum hba_conntype {
	HBA_HOST,		/* host, hostnogssenc: TLS or not */
	HBA_HOSTSSL,
	HBA_HOSTNOSSL,
};

enum hba_method {
	HBA_PASS,		/* forward; the backend authenticates */
	HBA_REJECT,
	HBA_CERT,		/* a certificate whose name maps to the user */
};

enum hba_clientcert {
	HBA_CLIENTCERT_NONE,
	HBA_CLIENTCERT_VERIFY_CA,
	HBA_CLIENTCERT_VERIFY_FULL,
};

enum hba_clientname {
	HBA_CLIENTNAME_CN,
	HBA_CLIENTNAME_DN,
};

enum hba_name_kind {
	HBA_NAME_LITERAL,
	HBA_NAME_ALL,
	HBA_NAME_SAMEUSER,	/* DATABASE only: the database is the user */
	HBA_NAME_REGEX,		/* "/re": POSIX extended, unanchored */
};

/* One name of a DATABASE or USER list, or an ident map's user. */
struct hba_name {
	enum hba_name_kind	 kind;
	char			*text;	/* as written, without quotes */
	regex_t			 re;	/* HBA_NAME_REGEX */
};

struct hba_line {
	char			*file;	/* the file it is in, and where */
	int			 lineno;
	enum hba_conntype	 type;
	char			*type_name;	/* as written */
	struct hba_name		*db;
	size_t			 ndb;
	struct hba_name		*user;
	size_t			 nuser;
	bool			 addr_all;
	int			 family;	/* AF_INET, AF_INET6 */
	uint8_t			 addr[16];	/* network byte order */
	uint8_t			 mask[16];
	enum hba_method		 method;
	enum hba_clientcert	 clientcert;
	enum hba_clientname	 clientname;
	char			*map;		/* NULL: the name is the user */
};

struct hba_ident {
	char			*file;
	int			 lineno;
	char			*map;
	char			*system;	/* a name or "/re" as written */
	bool			 regex;
	regex_t			 re;
	struct hba_name		 user;		/* may hold \1 */
};

struct hba_rules {
	char			*hba_file;
	char			*ident_file;	/* NULL: none */
	struct hba_line		*lines;
	size_t			 nlines;
	struct hba_ident	*idents;
	size_t			 nidents;
};

/*
 * Files come through these, so the parser stays testable and fuzzable.
 * read: the whole file (malloc'd, NUL-terminated) or NULL with err set and
 * *missing true when it does not exist.  list: the entries of a directory
 * (malloc'd array of malloc'd names) or -1 with err set.
 */
struct hba_io {
	char	*(*read)(void *arg, const char *path, size_t *len,
		    bool *missing, char *err, size_t errlen);
	int	 (*list)(void *arg, const char *dir, char ***names,
		    size_t *n, char *err, size_t errlen);
	void	*arg;
};

/*
 * One line of a pg_hba.conf-format file, tokenized as PostgreSQL does:
 * fields split by blanks, a field's tokens by commas; quoted is true when
 * any part of a token was in double quotes (so it is no keyword).
 */
struct hba_tok {
	char	*s;
	bool	 quoted;
};

struct hba_fld {
	struct hba_tok	*t;
	size_t		 n;
};

/* Returns 0 to go on, -1 with err set ("FILE:LINE: ...") to stop. */
typedef int (*hba_line_fn)(void *arg, const char *file, int lineno,
    const struct hba_fld *fields, size_t nfields, char *err, size_t errlen);

/*
 * The same reader for other files in this format (pg_hosts.conf): comments,
 * quotes, continuation lines, include, include_if_exists and include_dir
 * followed; every other non-empty line goes to fn.  @name tokens are left
 * to fn (see hba_at_names()).
 */
struct hba_io;
int hba_walk(const char *path, const struct hba_io *, hba_line_fn fn,
    void *arg, char *err, size_t errlen);

/*
 * The names in @name's file (relative to file, nested @ followed), as a
 * malloc'd array of malloc'd strings; -1 with err set.
 */
int hba_at_names(const char *file, int lineno, const char *name,
    const struct hba_io *, char ***names, size_t *n, char *err,
    size_t errlen);

/* The real file system: regular files only, at most HBA_FILE_MAX. */
extern const struct hba_io hba_file_io;

/*
 * Parse hba_path and (if not NULL or "") ident_path.  On failure, err has
 * one line: FILE:LINE, what was read and what is allowed; returns NULL.
 */
struct hba_rules *hba_parse(const char *hba_path, const char *ident_path,
    const struct hba_io *, char *err, size_t errlen);
void hba_free(struct hba_rules *);

/* True when some line needs a client certificate (cert, clientcert=). */
const struct hba_line *hba_wants_cert(const struct hba_rules *);

/* What the gate knows of a connection when its StartupMessage is read. */
struct hba_request {
	const struct sockaddr	*addr;	/* AF_INET or AF_INET6; else only
					   "all" addresses match */
	bool			 ssl;
	bool			 cert;	/* a verified client certificate */
	const char		*cn;	/* its one CN, or NULL */
	const char		*dn;	/* its subject, RFC 2253, or NULL */
	const char		*user;
	const char		*database;
};

enum hba_verdict {
	HBA_ALLOW,
	HBA_NO_ENTRY,		/* no line matched */
	HBA_REJECTED,		/* a reject line matched */
	HBA_NO_CERT,		/* the line needs a certificate; none came */
	HBA_CERT_FAILED,	/* the certificate's name is not the user */
};

struct hba_decision {
	enum hba_verdict	 verdict;
	const struct hba_line	*line;	/* the line that matched, or NULL */
	char			 message[HBA_MSG_MAX];	/* FATAL 28000 text */
	char			 detail[HBA_MSG_MAX];	/* "" for none */
	char			 log[HBA_MSG_MAX];	/* names file:line */
};

/*
 * The first line that matches decides.  Workers call it at once on the
 * same rules: it only reads them, and regexec(3) is thread-safe.
 */
void hba_decide(const struct hba_rules *, const struct hba_request *,
    struct hba_decision *);

/* One line of text per rule and ident entry, as understood. */
void hba_describe(const struct hba_rules *,
    void (*emit)(void *arg, const char *text), void *arg);

#endif
