/* SPDX-License-Identifier: MIT */
/*
 * SIP agent: the nta agent with its UDP/TCP/TLS transports, our own
 * addresses (for Via, Record-Route and Path), the list of served domains,
 * and small helpers on messages that every forwarding path needs. Incoming
 * requests that match no transaction go to one handler set at wiring time.
 */
#ifndef SIPWAKE_SIP_H
#define SIPWAKE_SIP_H

#include <stdbool.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport.h>

#include "sipwake/config.h"

struct sip_agent;

/*
 * Handler for a request outside any transaction. Return 0 when the handler
 * took irq (it answers and destroys it later), or a SIP status code that the
 * agent answers with (irq is then destroyed by nta). irq may be NULL for an
 * ACK delivered statelessly.
 */
typedef int sip_request_fn(void *ctx, nta_incoming_t *irq, msg_t *msg, sip_t *sip);

/*
 * NULL when sofia can serialize msg (and copies of it) again; otherwise a
 * reason phrase naming the problem, written to why: a single-instance
 * header repeated (sofia 1.12.11 aborts when it sends such a message) or a
 * message sofia marked as malformed. Every request is checked before the
 * handler sees it and every response before the proxy relays it.
 */
const char *sip_msg_unsendable(msg_t *msg, char *why, size_t len);

/* Create the nta agent and bind every sip.listen transport. -1 + logged reason. */
int sip_agent_new(struct sip_agent **out, su_root_t *root, const struct sw_config *cfg);
/*
 * The same in two steps, for a daemon that has work to do before it can
 * serve (loading a million bindings): sip_agent_create makes the agent
 * with no transport, sip_agent_listen binds sip.listen once it can answer,
 * so nothing waits unanswered in a socket meanwhile. -1 + logged reason.
 */
int sip_agent_create(struct sip_agent **out, su_root_t *root, const struct sw_config *cfg);
int sip_agent_listen(struct sip_agent *a);
/* Destroy the agent (all transactions and connections go with it). */
void sip_agent_free(struct sip_agent *a);
void sip_agent_set_handler(struct sip_agent *a, sip_request_fn *fn, void *ctx);
nta_agent_t *sip_agent_nta(struct sip_agent *a);
su_root_t *sip_agent_root(struct sip_agent *a);
/* Server and client transactions alive (answered ones kept for retransmissions too). */
size_t sip_agent_transactions(struct sip_agent *a);
const struct sw_config *sip_agent_config(struct sip_agent *a);

/*
 * True when a datagram is already waiting on one of our UDP listeners
 * (more work is queued: a good moment to keep batching, not to commit).
 */
bool sip_agent_input_pending(struct sip_agent *a);

/* Turn the SIP message trace (log.sip_trace) on or off. */
void sip_agent_set_trace(struct sip_agent *a, bool on);

/* True when the URI names one of our transports (host and port). */
bool sip_agent_is_own_uri(struct sip_agent *a, const url_t *u);
/* True when the host is one of sip.domains (or one of our own addresses). */
bool sip_agent_serves_domain(struct sip_agent *a, const char *host);

/*
 * Our URI for a transport ("udp", "tcp", "tls"; NULL = first listener) as
 * used in Record-Route and Path: "sip:HOST:PORT;transport=X". Falls back to
 * the first listener when no listener has that transport. Agent-owned.
 */
const char *sip_agent_uri(struct sip_agent *a, const char *proto);

/* Transport a URI string names: "tls" for sips: or transport=tls, "tcp", else "udp". */
const char *sip_uri_proto(const char *uri);

/* Transport protocol name ("udp", "tcp", "tls") of a tport, "udp" if NULL. */
const char *sip_tport_proto(const tport_t *tp);

/* Remove every top Route that names us. Returns how many were removed. */
int sip_pop_own_routes(struct sip_agent *a, msg_t *msg, sip_t *sip);

/*
 * Decrement Max-Forwards (adding "Max-Forwards: 70" when absent).
 * Returns -1 when it was already 0 (answer 483).
 */
int sip_decrement_max_forwards(msg_t *msg, sip_t *sip);

/*
 * Insert Record-Route for a request crossing from transport in_proto to
 * out_proto: one entry when they are the same, two (RFC 5658 style) when
 * they differ, so that each side routes back over its own transport.
 * param (may be NULL) is added to each entry, e.g. a flow token
 * "swb=<binding id>" that brings in-dialog requests back to that flow.
 */
int sip_add_record_route(struct sip_agent *a, msg_t *msg, sip_t *sip, const char *in_proto,
			 const char *out_proto, const char *param);

/* "sip:IP:PORT;transport=X" of where a message came from (rport/received). */
int sip_source_uri(msg_t *msg, tport_t *tp, char *buf, size_t len);

/* The AOR "sip:user@host" of a URL, lower-cased host; written to buf. */
int sip_aor_of(const url_t *u, char *buf, size_t len);

/*
 * Send a request statelessly (ACK to 2xx): to the next hop route (may be
 * NULL = request URI), over tp when not NULL. Takes msg. 0 or -1.
 */
int sip_send_stateless(struct sip_agent *a, msg_t *msg, const char *route, tport_t *tp);

#endif
