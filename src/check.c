/*
 * check: the parts of --check that start-up does not do.  Start-up builds
 * the snapshot (every file, chain, key and CRL is checked there); this adds
 * a test connection to the backend.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "gate.h"
#include "log.h"

static int
try_connect(const struct backend_addr *a, int timeout_ms)
{
	struct pollfd	pfd;
	socklen_t	len = sizeof(int);
	int		fd, err = 0;

	if ((fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		return errno;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
		err = errno;
		if (err == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) != 1)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) != 0)
				err = errno;
		}
	}
	close(fd);
	return err;
}

void
check_backend(const struct snapshot *snap)
{
	int	err = 0;

	for (int i = 0; i < snap->nbackend; i++)
		if ((err = try_connect(&snap->backend[i],
		    snap->cfg->backend_connect_timeout)) == 0)
			break;
	if (err == 0)
		log_info("backend %s accepts connections", snap->backend_name);
	else
		log_warn("backend %s: could not connect: %s (sessions will be "
		    "refused with 08006 until it is up)", snap->backend_name,
		    strerror(err));
}
