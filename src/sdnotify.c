/*
 * sdnotify: tells systemd when pgsslgate is ready, reloading or stopping,
 * and takes over the listening sockets of socket activation.  The protocol
 * is small enough (one datagram of "KEY=VALUE" lines) that linking
 * libsystemd for it is not worth a dependency.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"

#define SDNOTIFY_MAX	1024	/* one datagram; STATUS= is cut to fit */

static struct sockaddr_un	notify_addr;
static socklen_t		notify_len;	/* 0: not under systemd */
static int			notify_fd = -1;

int
sdnotify_addr(const char *name, struct sockaddr_un *sun, socklen_t *len,
    char *err, size_t errlen)
{
	size_t	n = strlen(name);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (name[0] != '/' && name[0] != '@') {
		snprintf(err, errlen, "NOTIFY_SOCKET must be a path starting "
		    "with '/' or an abstract name starting with '@'");
		return -1;
	}
	if (n < 2 || n > sizeof(sun->sun_path) - (name[0] == '/')) {
		snprintf(err, errlen, "NOTIFY_SOCKET is %zu bytes long, not "
		    "between 2 and %zu", n, sizeof(sun->sun_path) - 1);
		return -1;
	}
	memcpy(sun->sun_path, name, n);
	/* An abstract name is the bytes after a NUL, with no terminator. */
	if (name[0] == '@')
		sun->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (name[0] == '/'));
	return 0;
}

static bool
parse_uint(const char *s, long long max, long long *out)
{
	char		*end;
	long long	 v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

int
sdnotify_parse_listen(const char *listen_pid, const char *listen_fds,
    pid_t self, int max, char *err, size_t errlen)
{
	long long	pid, n;

	if (listen_pid == NULL || listen_fds == NULL)
		return 0;
	if (!parse_uint(listen_pid, INT_MAX, &pid)) {
		snprintf(err, errlen, "LISTEN_PID is not a process id");
		return -1;
	}
	/* Meant for a process that exec'ed us, not for us: not ours to use. */
	if (pid != (long long)self)
		return 0;
	if (!parse_uint(listen_fds, INT_MAX, &n)) {
		snprintf(err, errlen, "LISTEN_FDS is not a number of sockets");
		return -1;
	}
	if (n > max) {
		snprintf(err, errlen, "LISTEN_FDS = %lld: at most %d listening "
		    "sockets are supported", n, max);
		return -1;
	}
	return (int)n;
}

void
sdnotify_init(void)
{
	const char	*name = getenv("NOTIFY_SOCKET");
	char		 err[256];

	notify_len = 0;
	if (name == NULL || *name == '\0')
		return;
	if (sdnotify_addr(name, &notify_addr, &notify_len, err,
	    sizeof(err)) != 0) {
		notify_len = 0;
		log_warn("not telling systemd about start-up and reloads: %s",
		    err);
		return;
	}
	if ((notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
		notify_len = 0;
		log_warn("not telling systemd about start-up and reloads: "
		    "socket: %s", strerror(errno));
	}
}

static void
send_buf(const char *buf, size_t len)
{
	static bool	warned;

	if (notify_len == 0)
		return;
	/* Never block the main loop on a busy systemd. */
	if (sendto(notify_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_addr, notify_len) < 0 && !warned) {
		warned = true;
		log_warn("could not notify systemd (NOTIFY_SOCKET): %s",
		    strerror(errno));
	}
}

/* Append one line; a line that does not fit is cut (STATUS= only). */
static size_t
add_line(char *buf, size_t used, const char *line)
{
	int	n;

	if (used >= SDNOTIFY_MAX - 1)
		return used;
	n = snprintf(buf + used, SDNOTIFY_MAX - used, "%s\n", line);
	if (n < 0)
		return used;
	return (size_t)n >= SDNOTIFY_MAX - used ? SDNOTIFY_MAX - 1 :
	    used + (size_t)n;
}

void
sdnotify_send(const char *line, ...)
{
	char		 buf[SDNOTIFY_MAX];
	size_t		 used = 0;
	va_list		 ap;

	if (notify_len == 0)
		return;
	va_start(ap, line);
	for (; line != NULL; line = va_arg(ap, const char *))
		used = add_line(buf, used, line);
	va_end(ap);
	send_buf(buf, used);
}

void
sdnotify_state(const char *state, const char *fmt, ...)
{
	char	line[SDNOTIFY_MAX];
	va_list	ap;
	int	n;

	if (notify_len == 0)
		return;
	n = snprintf(line, sizeof(line), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One line: a newline in the text would start another assignment. */
	for (char *p = line; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	sdnotify_send(state, line, NULL);
}

void
sdnotify_reloading(const char *status)
{
	struct timespec	ts;
	char		usec[64], st[SDNOTIFY_MAX];

	if (notify_len == 0)
		return;
	/* systemd 253 matches this against its own clock, CLOCK_MONOTONIC. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(usec, sizeof(usec), "MONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
	snprintf(st, sizeof(st), "STATUS=%s", status);
	sdnotify_send("RELOADING=1", usec, st, NULL);
}

int
sdnotify_listen_fds(int max, char *err, size_t errlen)
{
	int	n;

	n = sdnotify_parse_listen(getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
	    getpid(), max, err, errlen);
	/* As sd_listen_fds(unset=1): they are ours, not a child's. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (int i = 0; i < n; i++) {
		int		fd = SDNOTIFY_LISTEN_FDS_START + i, v = 0, fl;
		socklen_t	vlen = sizeof(v);

		errno = 0;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) != 0 ||
		    v == 0) {
			int	e = errno;

			snprintf(err, errlen, "socket activation: descriptor "
			    "%d (of LISTEN_FDS = %d) is not a listening "
			    "socket%s%s", fd, n, e != 0 ? ": " : "",
			    e != 0 ? strerror(e) : "");
			return -1;
		}
		vlen = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen) != 0 ||
		    v != SOCK_STREAM) {
			snprintf(err, errlen, "socket activation: descriptor "
			    "%d is not a stream socket (ListenStream= in the "
			    ".socket unit)", fd);
			return -1;
		}
		if ((fl = fcntl(fd, F_GETFL)) < 0 ||
		    fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
			snprintf(err, errlen, "socket activation: descriptor "
			    "%d: %s", fd, strerror(errno));
			return -1;
		}
	}
	return n;
}
