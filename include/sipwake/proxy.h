/* SPDX-License-Identifier: MIT */
/*
 * Stateful forwarding: one server transaction (the request we received)
 * relayed to one or more client transactions (branches). Provisional and
 * 2xx responses are relayed as they come (every 2xx of a forked INVITE),
 * the best final response otherwise once every branch is over; the
 * caller's CANCEL cancels every branch; a 2xx cancels the other INVITE
 * branches with Reason cause=200. An INVITE's server transaction goes at
 * its first 2xx; what still comes for it is answered or relayed without it
 * (proxy_absorb, proxy_relay_stray).
 */
#ifndef SIPWAKE_PROXY_H
#define SIPWAKE_PROXY_H

#include <stdbool.h>

#include "sipwake/sip.h"

struct proxy_txn;

#define PROXY_DEFER 2 /* on_response kept the response for a later relay */

struct proxy_ops {
	/*
	 * A response arrived on a branch. The hook may modify msg/sip (e.g.
	 * rewrite Contacts). Return 0 to continue normally, 1 to drop the
	 * response (the hook has taken another course, e.g. forked a retry
	 * branch from inside the hook), or PROXY_DEFER to keep msg: the hook
	 * then owns it and relays it later with proxy_txn_relay_deferred().
	 */
	int (*on_response)(void *ctx, struct proxy_txn *t, int branch, msg_t *msg, sip_t *sip);
	/* After a response was processed (relayed or kept as the best one). */
	void (*after_response)(void *ctx, struct proxy_txn *t, int branch, int status);
	/*
	 * The caller cancelled (before the final answer). reason: the CANCEL's
	 * Reason header as text (e.g. "SIP;cause=200;text=..." when an upstream
	 * fork was answered elsewhere), or NULL.
	 */
	void (*on_cancel)(void *ctx, struct proxy_txn *t, const char *reason);
	/* The transaction is over and about to be freed: release ctx. */
	void (*on_done)(void *ctx, struct proxy_txn *t);
};

/*
 * Take over irq (the server transaction of msg/sip, as handed to a
 * sip_request_fn). For INVITE, 100 Trying is sent at once. ops may be NULL.
 */
struct proxy_txn *proxy_txn_new(struct sip_agent *a, nta_incoming_t *irq, const struct proxy_ops *ops,
				void *ctx);

/* Replace the hooks and their context (a layer above takes the transaction over). */
void proxy_txn_set_ops(struct proxy_txn *t, const struct proxy_ops *ops, void *ctx);

/* The received request (owned by t). */
msg_t *proxy_txn_request(struct proxy_txn *t);
sip_method_t proxy_txn_method(struct proxy_txn *t);

/*
 * A private, modifiable copy of the received request for a new branch,
 * with Max-Forwards decremented and our own Routes removed. NULL when
 * Max-Forwards was 0 (caller answers 483) or on ENOMEM.
 */
msg_t *proxy_txn_copy_request(struct proxy_txn *t);

/*
 * Send msg as a new branch, to route (a URI string, NULL = by the request
 * URI / top Route) and over tp when not NULL. Takes msg. Returns the
 * branch index, or -1 when it could not be sent or may not be (answered,
 * closed, or a 6xx came); msg is freed.
 */
int proxy_txn_fork(struct proxy_txn *t, msg_t *msg, const char *route, tport_t *tp);

/*
 * Answer the caller ourselves (status >= 200 ends the transaction; the
 * branches still pending are cancelled). Extra headers as sofia tags.
 */
int proxy_txn_reply(struct proxy_txn *t, int status, const char *phrase, tag_type_t tag,
		    tag_value_t value, ...);

/*
 * No more branches will be added: when every branch has ended, the best
 * response is relayed (or status/phrase when there was no branch at all).
 */
void proxy_txn_seal(struct proxy_txn *t, int status_if_none, const char *phrase_if_none);

/*
 * Like proxy_txn_seal, and the owner is done with the transaction: no
 * branch will ever be added again (proxy_txn_fork refuses). A 6xx from any
 * branch closes forking the same way (RFC 3261 16.7).
 */
void proxy_txn_close(struct proxy_txn *t, int status_if_none, const char *phrase_if_none);

/*
 * Relay a response an on_response hook deferred (PROXY_DEFER). Takes msg.
 * Until this is called the transaction counts the response as sent (no
 * other final answer goes out) and stays alive.
 */
void proxy_txn_relay_deferred(struct proxy_txn *t, msg_t *msg);
/*
 * A request for an INVITE whose 2xx is already out (RFC 6026 Accepted): a
 * retransmitted INVITE gets that 2xx again, a CANCEL 481. Returns true when
 * irq was answered and destroyed here; false: not ours, route it.
 */
bool proxy_absorb(nta_incoming_t *irq, const sip_t *sip);
/*
 * A response nta matched to no transaction: a 2xx of such an INVITE (the
 * UAS retransmitting it, another fork) is sent on statelessly and true
 * returned (msg taken). Only for a transaction we relayed a 2xx of, with
 * the caller's Via as we left it: never a relay for responses we did not
 * cause. false: msg untouched.
 */
bool proxy_relay_stray(nta_agent_t *nta, msg_t *msg, sip_t *sip);

/*
 * Answer status instead of the response an on_response hook deferred (the
 * hook dropped it), with Retry-After when retry_after is not NULL.
 */
void proxy_txn_answer_deferred(struct proxy_txn *t, int status, const char *phrase,
			       const char *retry_after);

/*
 * Cancel one pending INVITE branch (e.g. to a device's stale contact). The
 * branch may get its final answer (a 503 when the connection it used has
 * died) before this returns.
 */
void proxy_txn_cancel_branch(struct proxy_txn *t, int branch, const char *reason);

/* True while the branch waits for its final response. */
bool proxy_txn_branch_active(struct proxy_txn *t, int branch);

/* Number of branches still waiting for a final response. */
int proxy_txn_active_branches(struct proxy_txn *t);

/* True once a final response went to the caller. */
bool proxy_txn_answered(struct proxy_txn *t);

/* The user context given to proxy_txn_new(). */
void *proxy_txn_ctx(struct proxy_txn *t);

/* Number of transactions alive (for stats and leak checks). */
unsigned proxy_txn_count(void);

/*
 * Daemon stop: answer every unanswered transaction with 503 and free all of
 * them (before the nta agent is destroyed).
 */
void proxy_shutdown(void);

#endif
