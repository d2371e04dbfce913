/*
 * sdnotify: systemd's side of the service protocol without libsystemd:
 * state changes sent to $NOTIFY_SOCKET (sd_notify(3)), and the listening
 * sockets systemd passes in (LISTEN_PID, LISTEN_FDS; sd_listen_fds(3)).
 */
#ifndef SDNOTIFY_H
#define SDNOTIFY_H

#include <sys/types.h>
#include <sys/un.h>

#include <stddef.h>

/* systemd passes its sockets from this descriptor on (SD_LISTEN_FDS_START). */
#define SDNOTIFY_LISTEN_FDS_START	3

/*
 * The address a NOTIFY_SOCKET value names: a path starting with '/', or
 * '@' for a name in the abstract namespace.  Pure; 0, or -1 and err.
 */
int sdnotify_addr(const char *name, struct sockaddr_un *, socklen_t *,
    char *err, size_t errlen);

/*
 * How many sockets LISTEN_PID and LISTEN_FDS pass to process self: 0 when
 * they are unset or meant for another process, -1 and err when malformed.
 * Pure.
 */
int sdnotify_parse_listen(const char *listen_pid, const char *listen_fds,
    pid_t self, int max, char *err, size_t errlen);

/*
 * Read NOTIFY_SOCKET.  Without it every sdnotify_send() is a no-op; a bad
 * value is warned about once and then ignored, as libsystemd does.
 */
void sdnotify_init(void);

/* Send "READY=1", "STOPPING=1", ... as one datagram; NULL-terminated. */
void sdnotify_send(const char *line, ...);

/* One datagram: state ("READY=1", "STOPPING=1") and STATUS=, formatted. */
void sdnotify_state(const char *state, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* RELOADING=1 with MONOTONIC_USEC=, which systemd 253 requires. */
void sdnotify_reloading(const char *status);

/*
 * The sockets systemd passed (fd 3 on), made non-blocking and close-on-exec,
 * with LISTEN_* removed from the environment; 0 if none, -1 and err if
 * the variables are malformed or a descriptor is not a listening stream
 * socket.  Call once, before any thread starts.
 */
int sdnotify_listen_fds(int max, char *err, size_t errlen);

#endif
