/* SPDX-License-Identifier: MIT */
/*
 * Our listening sockets (see sockets.h).
 *
 * Receive buffers: a burst of datagrams (every phone re-registering after
 * a network blip or a restart) waits in the UDP buffer while sipwake works
 * through it; what does not fit is dropped by the kernel and comes back as
 * retransmissions, which is how a proxy collapses under load. TCP the
 * other way round: sofia reads everything a socket has at once into one
 * message buffer, and refuses that connection with 413 when it is more
 * than the message size limit. A TCP buffer kept under that limit lets
 * TCP's own flow control slow a sender down instead.
 *
 * Overload: a UDP queue of more than 1 MiB (or half its buffer) means
 * requests start to wait for a sizeable part of a client's first
 * retransmission timer. New work is then answered
 * 503 at once and statelessly (agent.c, before a server transaction
 * exists), which costs a parse and a send instead of a relay, a database
 * write and a transaction held for 32 s, and stops that client's
 * retransmissions.
 */
#include "sockets.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "sipwake/log.h"
#include "sipwake/stats.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55 /* Linux 4.6 */
#endif

static unsigned port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

/* Give fd a receive buffer of bytes; log when the kernel grants less. */
static void size_buffer(int fd, const char *proto, unsigned port, int bytes)
{
	int got = 0;
	socklen_t len = sizeof(got);

	if (bytes <= 0)
		return;
	/* beyond net.core.rmem_max only with CAP_NET_ADMIN; else capped there */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) < 0)
		return;
	/* Linux reports twice what it was given (its own bookkeeping) */
	if (got / 2 < bytes)
		log_warn("%s port %u: receive buffer %d bytes, not the %d asked for "
			 "(raise sysctl net.core.rmem_max)",
			 proto, port, got / 2, bytes);
	else
		log_debug("%s port %u: receive buffer %d bytes", proto, port, bytes);
}

void sip_sockets_setup(struct sip_sockets *s, sip_sockets_ours_fn *ours, void *ctx,
		       int udp_rcvbuf, int tcp_rcvbuf)
{
	memset(s, 0, sizeof(*s));
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int type = 0, listening = 0;
		socklen_t tlen = sizeof(type), llen = sizeof(listening);
		unsigned port;

		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
		    getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || !(port = port_of(&ss)))
			continue;
		if (type == SOCK_DGRAM && s->n_udp < SIP_SOCKETS_MAX && ours(ctx, "udp", port)) {
			s->udp[s->n_udp++] = fd;
			size_buffer(fd, "UDP", port, udp_rcvbuf);
		} else if (type == SOCK_STREAM && s->n_tcp < SIP_SOCKETS_MAX &&
			   getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) == 0 &&
			   listening && (ours(ctx, "tcp", port) || ours(ctx, "tls", port))) {
			s->tcp[s->n_tcp++] = fd;
			size_buffer(fd, "TCP", port, tcp_rcvbuf);
		}
	}
	stats_set(stats_gauge("sipwake_overloaded", NULL), 0);
}

bool sip_sockets_input_pending(const struct sip_sockets *s)
{
	for (int i = 0; i < s->n_udp; i++) {
		int n = 0;
		if (ioctl(s->udp[i], FIONREAD, &n) == 0 && n > 0)
			return true;
	}
	return false;
}

/*
 * Overload starts when a UDP queue holds this much (or half its buffer,
 * if that is less) and ends when it is back under a quarter of that. By
 * bytes queued, not by how full the buffer is. The kernel counts each
 * datagram's whole buffer (1,280 bytes for a 600-byte REGISTER on
 * loopback), so 1 MiB is some 500-800 requests: 100-250 ms of work, under
 * a client's first retransmission (T1 = 500 ms). A queue allowed to fill a
 * large buffer first was seconds long: everything served was already
 * retransmitted (bench/register, 2x capacity: 625 REGISTERs/s served of
 * 3,500). With 256 KiB, ~200 requests, an ordinary long loop turn (an
 * index doubling, a WAL commit) tipped a 3,000/s run under capacity into
 * 503 bursts: 1,500-3,400 of 120,000 turned away; with 1 MiB none, and
 * 5,344/s served of 6,000 instead of 4,885 (the 2 MiB tried served 4,704,
 * more of it retransmitted). The rest of the buffer holds what arrives
 * while the excess is turned away.
 */
#define OVERLOAD_QUEUE_BYTES (1u << 20)

/* The fullest UDP queue in bytes, and (out) its high-water mark. */
static uint32_t fullest_queue(const struct sip_sockets *s, uint32_t *high)
{
	uint32_t most = 0;

	*high = OVERLOAD_QUEUE_BYTES;
	for (int i = 0; i < s->n_udp; i++) {
		uint32_t mi[SK_MEMINFO_VARS] = {0};
		socklen_t len = sizeof(mi);

		if (getsockopt(s->udp[i], SOL_SOCKET, SO_MEMINFO, mi, &len) < 0)
			continue;
		if (mi[SK_MEMINFO_RCVBUF] / 2 < *high)
			*high = mi[SK_MEMINFO_RCVBUF] / 2;
		if (mi[SK_MEMINFO_RMEM_ALLOC] > most)
			most = mi[SK_MEMINFO_RMEM_ALLOC];
	}
	return most;
}

bool sip_sockets_overloaded(struct sip_sockets *s)
{
	uint32_t high, queued = fullest_queue(s, &high);

	if (!s->overloaded && high && queued >= high) {
		s->overloaded = true;
		log_warn("overloaded: %u KiB wait in a UDP receive queue; new requests get 503 "
			 "until it drains",
			 queued >> 10);
		stats_count("sipwake_overload_total", NULL);
	} else if (s->overloaded && queued < high / 4) {
		s->overloaded = false;
		log_notice("no longer overloaded");
	} else {
		return s->overloaded;
	}
	stats_set(stats_gauge("sipwake_overloaded", NULL), s->overloaded);
	return s->overloaded;
}
