/* SPDX-License-Identifier: MIT */
/*
 * The SIP layer's own listening sockets (sockets.c), found among the
 * process's descriptors since sofia-sip does not hand them out: their
 * receive buffers sized, UDP input peeked, overload told from the depth
 * of the UDP receive queues. Internal to src/sip/.
 */
#ifndef SIPWAKE_SIP_SOCKETS_H
#define SIPWAKE_SIP_SOCKETS_H

#include <stdbool.h>
#include <stdint.h>

#define SIP_SOCKETS_MAX 16

struct sip_sockets {
	int udp[SIP_SOCKETS_MAX]; /* UDP listeners */
	int n_udp;
	int tcp[SIP_SOCKETS_MAX]; /* TCP and TLS listeners (accepted sockets inherit their buffer) */
	int n_tcp;
	bool overloaded;
};

/* Whether a socket bound to port with this protocol ("udp", "tcp") is one of ours. */
typedef bool sip_sockets_ours_fn(void *ctx, const char *proto, unsigned port);

/*
 * Find our listeners and give UDP ones udp_rcvbuf bytes of receive
 * buffer and TCP ones tcp_rcvbuf (0 = leave the system's default).
 * What the kernel granted is logged when it is less than asked.
 */
void sip_sockets_setup(struct sip_sockets *s, sip_sockets_ours_fn *ours, void *ctx,
		       int udp_rcvbuf, int tcp_rcvbuf);
/* Whether a datagram waits on one of the UDP listeners. */
bool sip_sockets_input_pending(const struct sip_sockets *s);
/*
 * Whether sipwake is behind: a UDP receive queue holds 256 KiB or more
 * (half its buffer if that is less), and until it is back under a quarter
 * of that, so that the excess of a burst is turned away and the rest
 * served while it is still fresh. One getsockopt per UDP listener a call;
 * each change of state is logged, and counted.
 */
bool sip_sockets_overloaded(struct sip_sockets *s);

#endif
