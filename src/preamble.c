/*
 * preamble: the PROXY header stage in front of client.c.  A socket from
 * proxy_protocol_networks must begin with a header; any other socket must
 * not (a client could otherwise name any address it likes).  The header is
 * peeked at, parsed by proxyproto.c, then exactly its length is consumed,
 * so whatever follows (an SSLRequest) stays in the socket for client.c.
 */
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "client.h"
#include "conn.h"
#include "config.h"
#include "gate.h"
#include "log.h"
#include "pgproto.h"
#include "preamble.h"
#include "proxyproto.h"
#include "startcap.h"

struct preamble {
	TAILQ_ENTRY(preamble)	 entry;
	struct worker		*worker;
	struct snapshot		*snap;
	int			 fd;
	struct event		*read;	/* edge-triggered: new bytes only */
	struct event		*timer;	/* authentication_timeout */
	bool			 trusted;	/* in proxy_protocol_networks */
	struct startcap_key	 source;	/* counted under the peer */
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	char			 host[64];	/* the peer, for logs */
	char			 port[8];
	bool			 handing;	/* header read: see hand_over() */
	struct sockaddr_storage	 client;	/* ... whom it names */
	int			 clientlen;
	char			 note[256];	/* ... for the log line, or "" */
};

static void
preamble_free(struct preamble *p, bool close_fd)
{
	if (p == NULL)
		return;
	TAILQ_REMOVE(&p->worker->preambles, p, entry);
	if (p->read != NULL)
		event_free(p->read);
	if (p->timer != NULL)
		event_free(p->timer);
	startcap_leave(&p->source);
	if (close_fd)
		close(p->fd);
	snapshot_unref(p->snap);
	free(p);
}

void
preamble_free_all(struct worker *w)
{
	while (!TAILQ_EMPTY(&w->preambles))
		preamble_free(TAILQ_FIRST(&w->preambles), true);
}

/*
 * An ErrorResponse and close: a client behind a balancer that sends no
 * header learns why from its own driver.  Unread bytes are drained first,
 * or the close would reset the connection and the answer be lost.
 */
static void
refuse(struct preamble *p, enum metrics_refusal why, const char *message)
{
	uint8_t	buf[PGPROTO_ERROR_MAX], drain[512];
	size_t	n;
	int	i = 0;

	METRICS_INC(p->worker, refused[why]);
	n = pgproto_build_error(buf, sizeof(buf), "08P01", message, NULL);
	if (n <= sizeof(buf))
		(void)!send(p->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(p->fd, SHUT_WR);
	while (i++ < 4 && recv(p->fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
		;
	preamble_free(p, true);
}

/*
 * The header is in: on to the startup phase as the client it names, one
 * loop turn later.  The socket was watched edge-triggered here; with the
 * epoll changelist, deleting that event and adding conn.c's
 * level-triggered one in the same turn would cancel out and leave the
 * edge-triggered registration in place, and bytes already there (an
 * SSLRequest in the header's packet) would never be announced.  The
 * delete goes to the kernel first; the timer, at zero, brings the
 * connection back after it.
 */
static void
hand_over(struct preamble *p, const struct proxyproto_header *h)
{
	struct timeval	now = { 0, 0 };
	char		tlv[PROXYPROTO_NOTE_MAX];

	if (h == NULL || h->local) {
		memcpy(&p->client, &p->peer, sizeof(p->client));
		p->clientlen = (int)p->peerlen;
	} else {
		memcpy(&p->client, &h->src, sizeof(p->client));
		p->clientlen = (int)h->srclen;
	}
	p->note[0] = '\0';
	if (h != NULL) {
		proxyproto_note(h, tlv, sizeof(tlv));
		snprintf(p->note, sizeof(p->note), "proxy=%s%s%s%s", p->host,
		    h->local ? " proxy_local" : "", *tlv != '\0' ? " " : "",
		    tlv);
	}
	event_free(p->read);
	p->read = NULL;
	p->handing = true;
	evtimer_add(p->timer, &now);
}

static void
handed_over(struct preamble *p)
{
	struct worker		*w = p->worker;
	struct sockaddr_storage	 ss;
	struct conn_peer	 peer;
	char			 note[sizeof(p->note)];
	int			 fd = p->fd;

	memcpy(&ss, &p->client, sizeof(ss));
	memcpy(note, p->note, sizeof(note));
	peer.sa = (const struct sockaddr *)&ss;
	peer.salen = p->clientlen;
	peer.note = note[0] != '\0' ? note : NULL;
	/*
	 * client_accept() counts the connection again, under the client's
	 * own address: that is the source max_startup_connections_per_host
	 * is about, not the balancer all clients share.
	 */
	preamble_free(p, false);
	client_accept(w, fd, &peer);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct preamble	*p = arg;

	(void)fd;
	(void)what;
	if (p->handing) {
		handed_over(p);
		return;
	}
	METRICS_INC(p->worker, refused[METRICS_REFUSED_TIMEOUT]);
	log_info("closing connection from host=%s port=%s: "
	    "authentication_timeout (%d ms) expired while waiting for %s",
	    p->host, p->port, p->snap->cfg->authentication_timeout,
	    p->trusted ? "the PROXY header" : "the first bytes");
	preamble_free(p, true);
}

/*
 * The peer's FIN came behind part of a header: peeking never reaches the
 * end of the stream while those bytes sit unread, so EV_CLOSED says it.
 */
static void
closed_midway(struct preamble *p)
{
	log_info("connection from host=%s port=%s closed in the middle of %s",
	    p->host, p->port, p->trusted ? "its PROXY header" :
	    "what began like a PROXY header");
	preamble_free(p, true);
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct preamble		*p = arg;
	struct proxyproto_header h;
	enum proxyproto_status	 st;
	uint8_t			 buf[PROXYPROTO_MAX];
	char			 msg[200];
	ssize_t			 n;

	n = recv(fd, buf, sizeof(buf), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;			/* the event stays armed */
	if (n <= 0) {
		/*
		 * As client.c does: a bare close (a TCP health check) is
		 * news only under log_connections, an error always.
		 */
		if (n < 0 || p->snap->cfg->log_connections)
			log_info("connection from host=%s port=%s closed "
			    "before %s%s%s", p->host, p->port, p->trusted ?
			    "its PROXY header" : "its first bytes",
			    n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
		preamble_free(p, true);
		return;
	}
	if (!p->trusted) {
		st = proxyproto_detect(buf, (size_t)n);
		if (st == PROXYPROTO_NEED_MORE && (what & EV_CLOSED)) {
			closed_midway(p);
			return;
		}
		if (st == PROXYPROTO_NOT_PROXY) {
			hand_over(p, NULL);
		} else if (st == PROXYPROTO_OK) {
			log_warn("refused connection from host=%s port=%s: it "
			    "sent a PROXY protocol header but is not in "
			    "proxy_protocol_networks (a spoofed client "
			    "address?)", p->host, p->port);
			refuse(p, METRICS_REFUSED_PROXY_UNTRUSTED, "PROXY "
			    "protocol header from an address not in "
			    "proxy_protocol_networks");
		}
		return;			/* NEED_MORE: the event stays armed */
	}
	st = proxyproto_parse(buf, (size_t)n, &h);
	switch (st) {
	case PROXYPROTO_NEED_MORE:
		if (what & EV_CLOSED)
			closed_midway(p);
		return;
	case PROXYPROTO_NOT_PROXY:
		log_info("refused connection from host=%s port=%s: no PROXY "
		    "protocol header, and the address is in "
		    "proxy_protocol_networks", p->host, p->port);
		refuse(p, METRICS_REFUSED_PROXY_HEADER, "expected a PROXY "
		    "protocol header from this address "
		    "(proxy_protocol_networks)");
		return;
	case PROXYPROTO_BAD:
		log_info("refused connection from host=%s port=%s: invalid "
		    "PROXY protocol header: %s", p->host, p->port, h.error);
		snprintf(msg, sizeof(msg), "invalid PROXY protocol header: %s",
		    h.error);
		refuse(p, METRICS_REFUSED_PROXY_HEADER, msg);
		return;
	case PROXYPROTO_OK:
		break;
	}
	/* The peeked bytes are there: this takes exactly the header. */
	n = recv(fd, buf, h.length, 0);
	if (n != (ssize_t)h.length) {
		log_info("closing connection from host=%s port=%s: could not "
		    "read its PROXY header: %s", p->host, p->port,
		    n < 0 ? strerror(errno) : "short read");
		preamble_free(p, true);
		return;
	}
	hand_over(p, &h);
}

/* Its refusals' log lines: once a second at most over all workers. */
static _Atomic long	refusal_logged;

/*
 * A socket waiting for its header is in the startup phase as far as
 * max_startup_connections goes, counted under its peer.  A balancer is one
 * peer for all its clients, so the per-host cap is not applied to it here;
 * client_accept() applies it to the client's own address.
 */
static bool
admit(struct worker *w, const struct config *cfg, int fd,
    struct preamble *p)
{
	unsigned		cap = (unsigned)config_startup_cap(cfg);
	unsigned		per_host = (unsigned)
				    config_startup_cap_per_host(cfg);
	enum startcap_verdict	v;
	char			src[64], msg[256];

	startcap_key_of(&p->source, (const struct sockaddr *)&p->peer);
	v = startcap_enter(&p->source, cap, p->trusted ? UINT_MAX : per_host);
	if (v == STARTCAP_OK)
		return true;
	startcap_key_name(&p->source, src, sizeof(src));
	if (v == STARTCAP_HOST_FULL)
		snprintf(msg, sizeof(msg), "sorry, too many connections from "
		    "%s in the startup phase (max_startup_connections_per_host "
		    "= %u)", src, per_host);
	else
		snprintf(msg, sizeof(msg), "sorry, too many connections in the "
		    "startup phase (max_startup_connections = %u)", cap);
	METRICS_INC(w, refused[v == STARTCAP_HOST_FULL ?
	    METRICS_REFUSED_STARTUP_HOST : METRICS_REFUSED_STARTUP]);
	if (log_once_a_second(&refusal_logged))
		log_info("refused connection from host=%s port=%s: %s (further "
		    "such refusals this second are not logged)", p->host,
		    p->port, msg);
	conn_turn_away(fd, msg);
	return false;
}

void
preamble_accept(struct worker *w, int fd, const struct sockaddr *sa,
    int salen)
{
	struct snapshot	*snap = gate_snapshot();
	struct preamble	*p;
	struct timeval	 tv;
	struct conn_peer peer = { sa, salen, NULL };

	if (!snap->cfg->proxy_protocol || (sa->sa_family != AF_INET &&
	    sa->sa_family != AF_INET6) || salen <= 0 ||
	    (size_t)salen > sizeof(p->peer)) {
		snapshot_unref(snap);
		client_accept(w, fd, &peer);
		return;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_error("out of memory accepting a connection");
		snapshot_unref(snap);
		close(fd);
		return;
	}
	p->worker = w;
	p->snap = snap;
	p->fd = fd;
	memcpy(&p->peer, sa, (size_t)salen);
	p->peerlen = (socklen_t)salen;
	p->trusted = config_network_match(snap->cfg->proxy_networks,
	    snap->cfg->nproxy_networks, sa);
	if (getnameinfo(sa, (socklen_t)salen, p->host, sizeof(p->host),
	    p->port, sizeof(p->port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(p->host, sizeof(p->host), "?");
	if (!admit(w, snap->cfg, fd, p)) {
		snapshot_unref(snap);
		free(p);
		return;
	}
	TAILQ_INSERT_TAIL(&w->preambles, p, entry);
	/*
	 * Edge-triggered: the bytes peeked at stay in the socket, so a
	 * level-triggered event would fire again at once while a header is
	 * incomplete.  Each new segment wakes it once, and so does the
	 * peer's FIN (EV_CLOSED).
	 */
	p->read = event_new(w->base, fd, EV_READ | EV_CLOSED | EV_PERSIST |
	    EV_ET, on_read, p);
	p->timer = evtimer_new(w->base, on_timeout, p);
	tv.tv_sec = snap->cfg->authentication_timeout / 1000;
	tv.tv_usec = (snap->cfg->authentication_timeout % 1000) * 1000;
	if (p->read == NULL || p->timer == NULL ||
	    event_add(p->read, NULL) != 0 || evtimer_add(p->timer, &tv) != 0) {
		log_error("out of memory setting up connection from host=%s",
		    p->host);
		preamble_free(p, true);
	}
}
