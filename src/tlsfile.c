/*
 * tlsfile: the files TLS contexts are built from, before OpenSSL reads
 * them (can they be opened, is a key private) and when it could not.  The
 * server context, the backend's and the client-certificate trust use it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tlsfile.h"

int
tlsfile_fail_load(char *err, size_t errlen, const char *what, const char *path,
    const char *origin)
{
	char		reason[256] = "";
	unsigned long	e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(err, errlen, "%s: could not load %s \"%s\"%s%s", origin,
	    what, path, reason[0] ? ": " : "", reason);
	return -1;
}

int
tlsfile_open_regular(const char *path)
{
	struct stat	st;
	int		fd;

	/*
	 * O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	 * writer, with the main loop (signals, metrics) stuck behind it.
	 */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return TLSFILE_NOT_REGULAR;
	}
	return fd;
}

/*
 * Every file OpenSSL will read is checked here first, so that OpenSSL's
 * own fopen() only ever meets a regular file.
 */
int
tlsfile_check_readable(const char *what, const char *path,
    const char *origin, char *err, size_t errlen)
{
	int	fd = tlsfile_open_regular(path);

	if (fd == TLSFILE_NOT_REGULAR) {
		snprintf(err, errlen, "%s: %s \"%s\" is not a regular file",
		    origin, what, path);
		return -1;
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s: could not open %s \"%s\": %s",
		    origin, what, path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

int
tlsfile_check_key_permissions(const char *path, char *err, size_t errlen)
{
	struct stat	st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "could not access private key file "
		    "\"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "private key file \"%s\" is not a "
		    "regular file", path);
		return -1;
	}
	/*
	 * PostgreSQL's rule: u=rw (0600) or less when owned by the user
	 * running the server; u=rw,g=r (0640) or less when owned by root, so
	 * that a root-owned key can be shared through a group like ssl-cert.
	 */
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errlen, "private key file \"%s\" must be owned "
		    "by the user running pgsslgate or by root", path);
		return -1;
	}
	if (st.st_uid == 0 ? (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) :
	    (st.st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(err, errlen, "private key file \"%s\" has group or "
		    "world access (mode %04o); fix with: chmod 0600 \"%s\" "
		    "(0640 is allowed when root owns it)", path,
		    (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}
