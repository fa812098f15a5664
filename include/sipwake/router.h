/* SPDX-License-Identifier: MIT */
/*
 * Router: decides where every request other than REGISTER goes. Requests
 * from clients go upstream (gateway mode) or to the callee's bindings
 * (standalone); requests from upstream reach the client's binding over its
 * flow; in-dialog requests follow the Route set we Record-Routed; anything
 * else for a domain we do not serve is refused (no open relay).
 */
#ifndef SIPWAKE_ROUTER_H
#define SIPWAKE_ROUTER_H

#include "sipwake/push.h"
#include "sipwake/registrar.h"
#include "sipwake/store.h"
#include "sipwake/sip.h"

struct router;

/* push and st may be NULL (no wake-up, no message store). */
int router_new(struct router **out, struct sip_agent *sa, struct registrar *reg, struct push *push,
	       struct store *st);
void router_free(struct router *rt);
/* The agent's request handler (a sip_request_fn): REGISTER goes to the registrar. */
int router_handle(void *ctx, nta_incoming_t *irq, msg_t *msg, sip_t *sip);
/* Requests (INVITE, MESSAGE) held while pushed devices wake up, for stats. */
unsigned router_held_count(const struct router *rt);

#endif
