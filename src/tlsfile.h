/*
 * tlsfile: checks on the files TLS is configured with, and the one
 * "could not load" message, shared by every TLS context.
 */
#ifndef TLSFILE_H
#define TLSFILE_H

#include <stddef.h>

/*
 * "ORIGIN: could not load WHAT "PATH": <last OpenSSL error>" into err;
 * clears the queue, returns -1.
 */
int tlsfile_fail_load(char *err, size_t errlen, const char *what,
    const char *path, const char *origin);

/*
 * Open PATH for reading without waiting on a FIFO: the descriptor, -1 with
 * errno set when it cannot be opened, TLSFILE_NOT_REGULAR when it is not a
 * regular file (a FIFO, a device, a directory).
 */
#define TLSFILE_NOT_REGULAR	(-2)
int tlsfile_open_regular(const char *path);

/*
 * A file that cannot be opened, by name, origin and OS error, or that is
 * not a regular file ("ORIGIN: WHAT "PATH" is not a regular file").
 */
int tlsfile_check_readable(const char *what, const char *path,
    const char *origin, char *err, size_t errlen);

/* Refuse key files others can read, as PostgreSQL does. */
int tlsfile_check_key_permissions(const char *path, char *err, size_t errlen);

#endif
