/*
 * filewatch: looks at the files a load read, every file_check_interval, and
 * reloads when their content changed.  Content, not mtime: a Kubernetes
 * secret volume swaps a ..data symlink and keeps the files' mtimes.  stat(2)
 * of the resolved target (device, inode, size, mtime, ctime) is the cheap
 * first look; the content is hashed only when that changed, or on every
 * FILEWATCH_REHASH_EVERY-th check (an in-place write within one timestamp
 * tick, or a file system with coarse times).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "config.h"
#include "filediff.h"
#include "filewatch.h"
#include "hosts.h"
#include "log.h"

#define FILEWATCH_MAX_DIR_ENTRIES	4096	/* of a CRL directory */
#define FILEWATCH_LOG_FILES		8	/* named in one log line */

struct filewatch_set {
	struct filediff_entry	*e;		/* paths are ours */
	unsigned char		(*statkey)[FILEDIFF_HASH_LEN];
	bool			*dir;		/* a CRL directory */
	size_t			 n, cap;
	bool			 has_config;	/* e[0] is the configuration file */
	bool			 incomplete;	/* out of memory on the way */
};

static struct event		*fw_timer;
static int			 fw_interval;
static unsigned			 fw_checks;
static void			(*fw_reload)(void);
static struct filewatch_set	*fw_applied;	/* the snapshot's files */
static struct filewatch_set	*fw_tried;	/* what the failed reload read */
static struct filewatch_set	*fw_last;	/* the latest look */
static struct filewatch_set	*fw_pending;	/* the look reloading now */

/* What stat says of a file; zeroed first, so padding hashes the same. */
struct fw_stat_tuple {
	int		err;
	dev_t		dev;
	ino_t		ino;
	mode_t		mode;
	off_t		size;
	struct timespec	mtime, ctime;
};

static void
stat_tuple(const char *path, struct fw_stat_tuple *t)
{
	struct stat	sb;

	memset(t, 0, sizeof(*t));
	if (stat(path, &sb) != 0) {
		t->err = errno;
		return;
	}
	t->dev = sb.st_dev;
	t->ino = sb.st_ino;
	t->mode = sb.st_mode;
	t->size = sb.st_size;
	t->mtime = sb.st_mtim;
	t->ctime = sb.st_ctim;
}

/*
 * Hash a regular file's content into md (or print->err says why not), and
 * its owner and mode: a key's load depends on them, so a chmod that fixes
 * the key a reload refused is a change worth another try.  O_NONBLOCK: a
 * file that turned into a FIFO must not stall the main loop.
 */
static void
hash_file(const char *path, EVP_MD_CTX *md, struct filediff_print *print)
{
	struct {
		uid_t	uid;
		gid_t	gid;
		mode_t	mode;
	}		owner;
	unsigned char	buf[16384];
	struct stat	sb;
	ssize_t		n;
	int		fd;

	print->err = 0;
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0) {
		print->err = errno;
		return;
	}
	if (fstat(fd, &sb) != 0)
		print->err = errno;
	else if (!S_ISREG(sb.st_mode))
		print->err = FILEDIFF_NOT_REGULAR;
	while (print->err == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno != EINTR)
			print->err = errno;
		else if (n > 0 && EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			print->err = ENOMEM;
	}
	close(fd);
	if (print->err != 0)
		return;
	memset(&owner, 0, sizeof(owner));
	owner.uid = sb.st_uid;
	owner.gid = sb.st_gid;
	owner.mode = sb.st_mode;
	if (EVP_DigestUpdate(md, &owner, sizeof(owner)) != 1)
		print->err = ENOMEM;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A CRL directory's entries, sorted (readdir's order is arbitrary), each by
 * name and stat into key, and by name and content into content when that is
 * not NULL.  Returns 0, or an errno value.
 */
static int
look_dir(const char *dir, EVP_MD_CTX *key, EVP_MD_CTX *content)
{
	char		**names = NULL, path[4096];
	size_t		  n = 0;
	struct dirent	 *de;
	DIR		 *d;
	int		  err = 0;

	if ((d = opendir(dir)) == NULL)
		return errno;
	if ((names = calloc(FILEWATCH_MAX_DIR_ENTRIES, sizeof(*names))) == NULL)
		err = ENOMEM;
	while (err == 0 && n < FILEWATCH_MAX_DIR_ENTRIES &&
	    (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((names[n++] = strdup(de->d_name)) == NULL)
			err = ENOMEM;
	}
	closedir(d);
	if (err == 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; err == 0 && i < n; i++) {
		struct fw_stat_tuple	t;
		struct filediff_print	p;
		EVP_MD_CTX		*one;
		unsigned		len;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		stat_tuple(path, &t);
		EVP_DigestUpdate(key, names[i], strlen(names[i]) + 1);
		EVP_DigestUpdate(key, &t, sizeof(t));
		if (content == NULL)
			continue;
		memset(&p, 0, sizeof(p));
		if ((one = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestInit_ex(one, EVP_sha256(), NULL) != 1)
			err = ENOMEM;
		else {
			hash_file(path, one, &p);
			if (p.err == 0 && EVP_DigestFinal_ex(one, p.hash, &len) != 1)
				p.err = ENOMEM;
			if (p.err != 0)
				memset(p.hash, 0, sizeof(p.hash));
		}
		EVP_MD_CTX_free(one);
		EVP_DigestUpdate(content, names[i], strlen(names[i]) + 1);
		EVP_DigestUpdate(content, &p, sizeof(p));
	}
	for (size_t i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	return err;
}

/*
 * Fingerprint entry i of set.  prev (may be NULL) is the same path's last
 * look: when its stat key is unchanged and force is off, its print stands.
 */
static void
look(struct filewatch_set *set, size_t i, const struct filewatch_set *prev,
    size_t pi, bool force)
{
	struct filediff_print	*print = &set->e[i].print;
	const char		*path = set->e[i].path;
	struct fw_stat_tuple	 t;
	EVP_MD_CTX		*key = EVP_MD_CTX_new(), *content = NULL;
	unsigned		 len;

	memset(print, 0, sizeof(*print));
	if (key == NULL || EVP_DigestInit_ex(key, EVP_sha256(), NULL) != 1)
		goto oom;
	stat_tuple(path, &t);
	EVP_DigestUpdate(key, &t, sizeof(t));
	if (set->dir[i] && t.err == 0 && S_ISDIR(t.mode) &&
	    (t.err = look_dir(path, key, NULL)) != 0)
		EVP_DigestUpdate(key, &t.err, sizeof(t.err));
	if (EVP_DigestFinal_ex(key, set->statkey[i], &len) != 1)
		goto oom;
	if (!force && prev != NULL &&
	    memcmp(prev->statkey[pi], set->statkey[i], FILEDIFF_HASH_LEN) == 0) {
		*print = prev->e[pi].print;
		EVP_MD_CTX_free(key);
		return;
	}
	if (t.err != 0) {
		print->err = t.err;
		EVP_MD_CTX_free(key);
		return;
	}
	if ((content = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(content, EVP_sha256(), NULL) != 1)
		goto oom;
	if (set->dir[i] && S_ISDIR(t.mode)) {
		/* The directory's own stat key is of no use here: discarded. */
		if (EVP_DigestInit_ex(key, EVP_sha256(), NULL) != 1)
			goto oom;
		print->err = look_dir(path, key, content);
	} else if (!S_ISREG(t.mode))
		print->err = FILEDIFF_NOT_REGULAR;
	else
		hash_file(path, content, print);
	if (print->err == 0 && EVP_DigestFinal_ex(content, print->hash, &len) != 1)
		print->err = ENOMEM;
	if (print->err != 0)
		memset(print->hash, 0, sizeof(print->hash));
	EVP_MD_CTX_free(key);
	EVP_MD_CTX_free(content);
	return;
oom:
	/* Unknown: the whole look is dropped (no reload on a guess). */
	print->err = ENOMEM;
	memset(set->statkey[i], 0xff, FILEDIFF_HASH_LEN);
	set->incomplete = true;
	EVP_MD_CTX_free(key);
	EVP_MD_CTX_free(content);
}

static bool
grow(struct filewatch_set *set)
{
	size_t	cap = set->cap == 0 ? 8 : set->cap * 2;
	void	*e, *k, *d;

	if (set->n < set->cap)
		return true;
	e = realloc(set->e, cap * sizeof(*set->e));
	if (e != NULL)
		set->e = e;
	k = realloc(set->statkey, cap * sizeof(*set->statkey));
	if (k != NULL)
		set->statkey = k;
	d = realloc(set->dir, cap * sizeof(*set->dir));
	if (d != NULL)
		set->dir = d;
	if (e == NULL || k == NULL || d == NULL)
		return false;
	set->cap = cap;
	return true;
}

/* Append path (once; '' is no file); its print from prev when stat agrees. */
static void
add(struct filewatch_set *set, const char *path, bool dir,
    const struct filewatch_set *prev, size_t pi, bool force)
{
	char	*copy;

	if (path == NULL || *path == '\0')
		return;
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->e[i].path, path) == 0)
			return;
	if (!grow(set) || (copy = strdup(path)) == NULL) {
		set->incomplete = true;
		return;
	}
	set->e[set->n].path = copy;
	set->dir[set->n] = dir;
	look(set, set->n++, prev, pi, force);
}

void
filewatch_set_free(struct filewatch_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		free((char *)set->e[i].path);
	free(set->e);
	free(set->statkey);
	free(set->dir);
	free(set);
}

struct filewatch_set *
filewatch_capture_begin(const char *config_file)
{
	struct filewatch_set	*set = calloc(1, sizeof(*set));

	if (set != NULL && config_file != NULL) {
		add(set, config_file, false, NULL, 0, true);
		set->has_config = set->n == 1;
	}
	return set;
}

void
filewatch_capture_add(struct filewatch_set *set, const struct config *cfg)
{
	if (set == NULL)
		return;
	if (cfg->ssl) {
		add(set, cfg->ssl_cert_file, false, NULL, 0, true);
		add(set, cfg->ssl_key_file, false, NULL, 0, true);
		add(set, cfg->ssl_ca_file, false, NULL, 0, true);
		add(set, cfg->ssl_crl_file, false, NULL, 0, true);
		add(set, cfg->ssl_crl_dir, true, NULL, 0, true);
	}
	/*
	 * ssl_sni: hosts_file and each entry's files (read here as sni.c
	 * will read them; files it includes or names with @ are not watched).
	 */
	if (cfg->ssl && cfg->ssl_sni && *cfg->hosts_file != '\0') {
		struct hosts	*h;
		char		 err[512];

		add(set, cfg->hosts_file, false, NULL, 0, true);
		if ((h = hosts_parse(cfg->hosts_file, &hba_file_io, err,
		    sizeof(err))) != NULL) {
			for (size_t i = 0; i < h->n; i++) {
				add(set, h->v[i].cert, false, NULL, 0, true);
				add(set, h->v[i].key, false, NULL, 0, true);
				add(set, h->v[i].ca, false, NULL, 0, true);
			}
			hosts_free(h);
		}
	}
	/* As snapshot_new(): no backend TLS over a Unix-domain socket. */
	if (cfg->backend_sslmode != CONFIG_SSLMODE_DISABLE &&
	    cfg->backend_host[0] != '/') {
		add(set, cfg->backend_sslrootcert, false, NULL, 0, true);
		add(set, cfg->backend_sslcert, false, NULL, 0, true);
		add(set, cfg->backend_sslkey, false, NULL, 0, true);
		add(set, cfg->backend_sslcrl, false, NULL, 0, true);
		add(set, cfg->backend_sslcrldir, true, NULL, 0, true);
	}
}

/* The paths of prev, looked at again. */
static struct filewatch_set *
look_again(const struct filewatch_set *prev, bool force)
{
	struct filewatch_set	*set = calloc(1, sizeof(*set));

	if (set != NULL)
		set->has_config = prev->has_config;
	for (size_t i = 0; set != NULL && i < prev->n; i++)
		add(set, prev->e[i].path, prev->dir[i], prev, i, force);
	if (set != NULL && set->incomplete) {
		filewatch_set_free(set);
		return NULL;
	}
	return set;
}

/* The watcher's own look, as it was: what a failed reload read. */
static struct filewatch_set *
copy_set(const struct filewatch_set *from)
{
	struct filewatch_set	*set = calloc(1, sizeof(*set));

	if (set == NULL)
		return NULL;
	set->has_config = from->has_config;
	for (size_t i = 0; i < from->n; i++) {
		if (!grow(set) ||
		    (set->e[i].path = strdup(from->e[i].path)) == NULL) {
			filewatch_set_free(set);
			return NULL;
		}
		set->e[i].print = from->e[i].print;
		memcpy(set->statkey[i], from->statkey[i], FILEDIFF_HASH_LEN);
		set->dir[i] = from->dir[i];
		set->n++;
	}
	return set;
}

static struct filediff_set
view(const struct filewatch_set *set)
{
	struct filediff_set	v = { set->e, set->n };

	return v;
}

/* "a, b and c" of the changed files, for the log line. */
static void
name_files(const struct filewatch_set *set, const size_t *idx, size_t n,
    size_t total, char *out, size_t outlen)
{
	size_t	len = 0;

	*out = '\0';
	for (size_t i = 0; i < n && len < outlen; i++) {
		int w = snprintf(out + len, outlen - len, "%s%s",
		    i == 0 ? "" : i + 1 == n && total == n ? " and " : ", ",
		    set->e[idx[i]].path);

		if (w < 0)
			break;
		len += (size_t)w;
	}
	if (total > n && len < outlen)
		snprintf(out + len, outlen - len, " and %zu more", total - n);
}

static void
check(evutil_socket_t fd, short what, void *arg)
{
	struct filediff_set	 a, t, v;
	struct filewatch_set	*now;
	size_t			 changed[FILEWATCH_LOG_FILES], nchanged;
	char			 names[2048];
	bool			 force, cfg_changed;

	(void)fd;
	(void)what;
	(void)arg;
	if (fw_applied == NULL || fw_reload == NULL)
		return;
	force = ++fw_checks % FILEWATCH_REHASH_EVERY == 0;
	if ((now = look_again(fw_last != NULL ? fw_last : fw_applied,
	    force)) == NULL)
		return;		/* out of memory: try again next time */
	filewatch_set_free(fw_last);
	fw_last = now;
	a = view(fw_applied);
	v = view(now);
	if (fw_tried != NULL)
		t = view(fw_tried);
	switch (filediff_decide(&a, fw_tried != NULL ? &t : NULL, &v, changed,
	    FILEWATCH_LOG_FILES, &nchanged)) {
	case FILEDIFF_NONE:
		/* Back to what serves (or never left): nothing to retry. */
		filewatch_set_free(fw_tried);
		fw_tried = NULL;
		return;
	case FILEDIFF_WAIT:
		return;
	case FILEDIFF_RELOAD:
		break;
	}
	name_files(now, changed, nchanged < FILEWATCH_LOG_FILES ? nchanged :
	    FILEWATCH_LOG_FILES, nchanged, names, sizeof(names));
	cfg_changed = fw_applied->has_config && nchanged > 0 && changed[0] == 0;
	log_info("%s changed: %s; reloading", !cfg_changed ?
	    "certificate files" : nchanged == 1 ? "configuration file" :
	    "configuration and certificate files", names);
	fw_pending = now;
	fw_reload();
	fw_pending = NULL;
}

static void
arm(struct event_base *base, int interval)
{
	struct timeval	tv = { interval, 0 };

	if (fw_timer == NULL && interval > 0 &&
	    (fw_timer = event_new(base, -1, EV_PERSIST, check, NULL)) == NULL) {
		log_error("could not start checking files for changes: out of "
		    "memory");
		return;
	}
	if (fw_timer == NULL || interval == fw_interval)
		return;
	fw_interval = interval;
	if (interval == 0)
		event_del(fw_timer);
	else if (event_add(fw_timer, &tv) != 0)
		log_error("could not start checking files for changes");
}

void
filewatch_loaded(struct event_base *base, struct filewatch_set *set,
    int interval)
{
	if (set != NULL && !set->incomplete) {
		filewatch_set_free(fw_applied);
		fw_applied = set;
	} else
		filewatch_set_free(set);	/* keep the old: out of memory */
	filewatch_set_free(fw_tried);
	filewatch_set_free(fw_last);
	fw_tried = fw_last = fw_pending = NULL;
	arm(base, interval);
}

void
filewatch_failed(void)
{
	filewatch_set_free(fw_tried);
	fw_tried = NULL;
	if (fw_applied == NULL)
		return;
	/* A SIGHUP's failure: what it read is what is there now. */
	fw_tried = fw_pending != NULL ? copy_set(fw_pending) :
	    look_again(fw_last != NULL ? fw_last : fw_applied, true);
}

void
filewatch_set_reload(void (*reload)(void))
{
	fw_reload = reload;
}

void
filewatch_stop(void)
{
	if (fw_timer != NULL)
		event_free(fw_timer);
	fw_timer = NULL;
	fw_interval = 0;
	filewatch_set_free(fw_applied);
	filewatch_set_free(fw_tried);
	filewatch_set_free(fw_last);
	fw_applied = fw_tried = fw_last = fw_pending = NULL;
}
