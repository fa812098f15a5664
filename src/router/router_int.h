/* SPDX-License-Identifier: MIT */
/*
 * Internals of the router layer, shared by router.c (target selection),
 * held.c (calls and messages waiting for a woken device) and deliver.c
 * (stored MESSAGEs delivered on registration). Not an interface.
 */
#ifndef SIPWAKE_ROUTER_INT_H
#define SIPWAKE_ROUTER_INT_H

#include "sipwake/proxy.h"
#include "sipwake/push.h"
#include "sipwake/router.h"
#include "sipwake/store.h"
#include "sipwake/strmap.h"

#define MAX_UPSTREAM_ADDRS 8
#define MAX_FORK REGISTRAR_MAX_CONTACTS /* every binding of an AOR */
#define DIALOG_PARAM "swd"  /* dialog token in our Record-Route towards a client */
#define DIALOG_MAC_HEX 16   /* hex digits of its MAC */
#define DIALOG_SECRET_LEN 32

/* Where a request comes from (SPEC 8), decided once per request. */
enum source { SRC_UPSTREAM, SRC_CLIENT, SRC_STRANGER, SRC_PEER, SRC_COUNT };

struct held;

struct router {
	struct sip_agent *sa;
	struct registrar *reg;
	struct push *push;
	struct store *st;
	const struct sw_config *cfg;
	su_sockaddr_t up[MAX_UPSTREAM_ADDRS];
	int n_up;
	const char *up_proto;
	struct strmap *held_by_aor; /* AOR -> first struct held waiting on it */
	struct strmap *deliveries;  /* AOR -> struct delivery in progress */
	unsigned n_held;
	unsigned char secret[DIALOG_SECRET_LEN]; /* keys the dialog tokens (store: "dialog") */
	struct strmap *buckets; /* source address -> rate-limit bucket */
	size_t n_buckets;
	int64_t full_warned_ms;
	su_timer_t *sweep;
	struct auth *auth; /* standalone with auth.mode = "accounts", else NULL */
};

/*
 * Send a branch of t to binding b (request URI set to its Contact when
 * restore_uri), over the flow it registered on; a dialog-creating request
 * gets our Record-Route with the dialog token for b. Takes msg. Returns
 * the branch index or -1 (b unreachable or send failed; msg freed).
 */
int router_fork_binding(struct router *rt, struct proxy_txn *t, msg_t *msg, struct binding *b,
			bool restore_uri, const char *in_proto);

/*
 * The node-to-node hop (hop.c). router_can_reach: a branch to b can go
 * now (its flow here, a UDP contact, or its owner node alive to hop to).
 * router_hop_of: the owner's hop URI, NULL when b is ours or the owner is
 * not alive. router_hop_mark: put the hop header for b in msg (0 or -1).
 * router_hop_check: a request's hop header, taken out of msg: 1 valid
 * (id = the binding, the request is a peer's), 0 none, -1 forged or stale.
 */
bool router_can_reach(struct router *rt, const struct binding *b);
const char *router_hop_of(struct router *rt, const struct binding *b);
int router_hop_mark(struct router *rt, msg_t *msg, sip_t *sip, const struct binding *b);
int router_hop_check(struct router *rt, msg_t *msg, sip_t *sip, char *id, size_t len);

/*
 * Take over an INVITE or MESSAGE for the given bindings (an AOR lookup, or
 * the one binding upstream chose): direct branches where a flow is live,
 * pushes where the binding has push parameters, hold until the device
 * registers again. t is owned by the held request from here on.
 */
void held_start(struct router *rt, struct proxy_txn *t, const sip_t *sip, struct binding **list,
		size_t n, const char *aor, bool single, const char *in_proto);

/* Registrar events for held requests (release on re-registration). */
void held_on_binding(struct router *rt, const struct binding *b, enum registrar_event ev);

/* True for an INVITE or MESSAGE that is held for sleeping devices. */
bool held_wants_hold(const sip_t *sip);
/* True when such a request may also wake a device with a push (SPEC 4.3 rules). */
bool held_wants_push(const sip_t *sip);

/*
 * Voicemail (mwi.c): true for an unsolicited message-summary NOTIFY that
 * push.voicemail_push takes over; then mwi_start owns t and forks to the
 * bindings that are live, pushes those that sleep, and answers.
 */
bool mwi_wanted(const struct router *rt, const sip_t *sip);
void mwi_start(struct router *rt, struct proxy_txn *t, const sip_t *sip, struct binding **list,
	       size_t n, bool restore_uri, const char *in_proto);

/* Stored-message delivery when a binding of the AOR is reachable again. */
void deliver_on_binding(struct router *rt, const struct binding *b, enum registrar_event ev);
void deliver_free_all(struct router *rt);

/* The wake-up push before a push binding expires (RFC 8599 5.5). */
void router_send_wakeup(struct router *rt, const struct binding *b);

/* Per-source request limit: init/cleanup with the router; allow = within the limit. */
int ratelimit_init(struct router *rt);
void ratelimit_cleanup(struct router *rt);
bool ratelimit_allow(struct router *rt, msg_t *msg, bool from_upstream);

#endif
