/* SPDX-License-Identifier: MIT */
/*
 * Stateful forwarding engine (RFC 3261 §16): a proxy_txn pairs the server
 * transaction we received with the client transactions (branches) we sent.
 * It relays provisional and 2xx responses at once, picks the best final
 * response when every branch is over, propagates CANCEL, cancels losing
 * INVITE branches after a 2xx. Once an INVITE's first 2xx is out, its
 * server transaction goes (accepted.c answers what still comes for it) and
 * further 2xxs are relayed statelessly, here or, once the branches are
 * gone too, by the agent. A proxy_txn is freed in exactly one place (txn_free),
 * when the final answer is out, every branch has ended and nothing on the
 * stack still uses it (the hold count).
 */
#include "sipwake/proxy.h"

#include <stdlib.h>
#include <string.h>

#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tagarg.h>

#include "sipwake/log.h"
#include "sipwake/stats.h"

#include "accepted.h"

#define PROXY_MAX_BRANCHES 64 /* every binding of an AOR, and a new branch when one re-registers */

struct branch {
	struct proxy_txn *t;
	int idx; /* its place in t->br */
	nta_outgoing_t *orq;
	int status; /* last status seen, 0 = none yet */
	bool ended; /* final response received (or send failed) */
	bool ignore; /* cancelled by us (stale contact): its final answer does not count */
	bool in_cancel; /* inside nta_outgoing_tcancel() on orq: orq must outlive the call */
};

struct proxy_txn {
	struct proxy_txn *prev, *next; /* all live transactions */
	struct sip_agent *agent;
	nta_incoming_t *irq;
	msg_t *req;
	sip_method_t method;
	const struct proxy_ops *ops;
	void *ctx;
	struct branch *br[PROXY_MAX_BRANCHES]; /* each its own block: most have one or two */
	int n_br;
	msg_t *best; /* best final (non-2xx) response so far */
	int best_status;
	int none_status;
	const char *none_phrase;
	int holds;
	bool sealed;
	bool closed; /* proxy_txn_close() or a 6xx: no more branches */
	bool final_sent;
	bool got_2xx;
	bool cancelled;
	bool irq_gone;
	bool freed;
	/* Accepted (RFC 6026): the first 2xx of an INVITE is out and the
	 * server transaction is gone (accepted.c answers for it). */
	bool accepted;
};

static unsigned live_txns;
static struct proxy_txn *all_txns;

static void txn_maybe_free(struct proxy_txn *t);

static void txn_free(struct proxy_txn *t)
{
	t->freed = true;
	if (t->ops && t->ops->on_done)
		t->ops->on_done(t->ctx, t);
	for (int i = 0; i < t->n_br; i++) {
		if (t->br[i]->orq)
			nta_outgoing_destroy(t->br[i]->orq);
		free(t->br[i]);
	}
	if (t->best)
		msg_destroy(t->best);
	if (t->req)
		msg_destroy(t->req);
	if (t->irq)
		nta_incoming_destroy(t->irq);
	if (t->prev)
		t->prev->next = t->next;
	else
		all_txns = t->next;
	if (t->next)
		t->next->prev = t->prev;
	live_txns--;
	free(t);
}

static bool all_ended(const struct proxy_txn *t)
{
	for (int i = 0; i < t->n_br; i++)
		if (!t->br[i]->ended)
			return false;
	return true;
}

static void txn_maybe_free(struct proxy_txn *t)
{
	if (t->holds == 0 && !t->freed && (t->final_sent || t->irq_gone) && all_ended(t))
		txn_free(t);
}

/* RFC 3261 §16.7: 6xx first, else the lowest class; 503 counts as 500. */
static int rank(int status)
{
	if (status >= 600)
		return 0;
	if (status == 503)
		return 500 + 1;
	if (status == 401 || status == 407)
		return status - 100; /* challenges beat other 4xx */
	return status;
}

/* Keep the better of the final responses so far; msg NULL = nta's own. Takes msg. */
static void note_final(struct proxy_txn *t, int status, msg_t *msg)
{
	if (t->best_status && rank(status) >= rank(t->best_status)) {
		if (msg)
			msg_destroy(msg);
		return;
	}
	if (t->best)
		msg_destroy(t->best);
	t->best = msg;
	t->best_status = status;
}

/* A branch that has its final answer lets go of its client transaction. */
static void branch_drop_orq(struct proxy_txn *t, struct branch *b)
{
	if (b->ended && b->orq && !b->in_cancel) {
		nta_outgoing_destroy(b->orq);
		b->orq = NULL;
	}
}

/*
 * CANCEL one INVITE branch. nta may answer the branch from inside
 * nta_outgoing_tcancel(): when the CANCEL goes over a connection that has
 * just died, the send error is reported to every request pending on that
 * connection, this one included, so branch_response() runs with a 503
 * before tcancel returns, and tcancel goes on using the orq afterwards.
 * The orq is therefore destroyed only once tcancel has returned, and the
 * hold keeps the transaction itself alive meanwhile.
 */
static void branch_cancel(struct proxy_txn *t, struct branch *b, const char *reason)
{
	t->holds++;
	b->in_cancel = true;
	if (reason)
		nta_outgoing_tcancel(b->orq, NULL, NULL, SIPTAG_REASON_STR(reason), TAG_END());
	else
		nta_outgoing_tcancel(b->orq, NULL, NULL, TAG_END());
	b->in_cancel = false;
	branch_drop_orq(t, b);
	t->holds--;
}

static void cancel_pending(struct proxy_txn *t, const char *reason)
{
	if (t->method != sip_method_invite)
		return;
	for (int i = 0; i < t->n_br; i++) {
		struct branch *b = t->br[i];
		if (b->ended || !b->orq)
			continue;
		branch_cancel(t, b, reason);
	}
}

static bool is_2xx(const sip_t *sip)
{
	return sip->sip_status && sip->sip_status->st_status >= 200 &&
	       sip->sip_status->st_status < 300;
}

/*
 * The first 2xx of an INVITE went out on t->irq: nta forgets the server
 * transaction now (see accepted.c), and later 2xxs go statelessly.
 */
static void txn_accept(struct proxy_txn *t, msg_t *ok)
{
	accepted_add(sip_object(t->req), ok);
	t->accepted = true;
	nta_incoming_destroy(t->irq);
	t->irq = NULL;
	t->irq_gone = true;
}

/*
 * A retransmitted 2xx, or the 2xx of another fork, once the first is out:
 * along the Via path, as a stateless proxy would (nta_msg_tsend takes our
 * Via off). A copy goes: the branch's transaction keeps what it received.
 */
static void relay_stateless(struct proxy_txn *t, msg_t *msg)
{
	int status = sip_object(msg)->sip_status->st_status;
	msg_t *copy = msg_dup(msg);

	msg_destroy(msg);
	if (!copy || nta_msg_tsend(sip_agent_nta(t->agent), copy, NULL, TAG_END()) < 0)
		log_debug("could not relay an extra 2xx");
	else
		stats_sip_response(status);
}

static int relay(struct proxy_txn *t, msg_t *msg)
{
	sip_t *sip = sip_object(msg);

	if (t->accepted && is_2xx(sip)) {
		relay_stateless(t, msg);
		return -1;
	}
	sip_via_remove(msg, sip);
	if (!t->irq || t->irq_gone) {
		msg_destroy(msg);
		return -1;
	}
	if (sip->sip_status)
		stats_sip_response(sip->sip_status->st_status);
	if (nta_incoming_mreply(t->irq, msg) < 0) {
		log_debug("a response could not be relayed");
		return -1;
	}
	return 0;
}

static void send_final(struct proxy_txn *t)
{
	if (t->final_sent)
		return;
	t->final_sent = true;
	if (t->irq_gone)
		return;
	if (t->best) {
		msg_t *m = t->best;
		t->best = NULL;
		relay(t, m);
	} else if (t->best_status) {
		nta_incoming_treply(t->irq, t->best_status, sip_status_phrase(t->best_status),
				    TAG_END());
	} else {
		nta_incoming_treply(t->irq, t->none_status ? t->none_status : 408,
				    t->none_phrase, TAG_END());
		stats_sip_response(t->none_status ? t->none_status : 408);
	}
}

static void check_complete(struct proxy_txn *t)
{
	if (t->sealed && !t->final_sent && all_ended(t))
		send_final(t);
}

static int branch_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
	struct branch *b = (struct branch *)magic;
	struct proxy_txn *t = b->t;
	int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
	msg_t *msg = nta_outgoing_getresponse(orq);
	sip_t *rsip = msg ? sip_object(msg) : NULL;
	char why[64];
	int hook;

	if (msg && sip_msg_unsendable(msg, why, sizeof(why))) {
		/* sofia could not send it on: a final one counts as 502 from this branch. */
		log_info("a %d response was dropped: %s", status, why);
		msg_destroy(msg);
		msg = NULL;
		rsip = NULL;
		if (status < 200)
			return 0;
		status = 502;
	}
	t->holds++;
	b->status = status;
	if (status >= 200)
		b->ended = true;
	hook = msg && rsip && rsip->sip_status && t->ops && t->ops->on_response
		       ? t->ops->on_response(t->ctx, t, b->idx, msg, rsip)
		       : 0;
	if (hook == 1) {
		msg_destroy(msg);
	} else if (hook == PROXY_DEFER) {
		/* The hook relays it later: nobody else answers meanwhile. */
		if (status >= 200)
			t->final_sent = true;
		if (status >= 200 && status < 300)
			t->got_2xx = true;
		t->holds++; /* released by proxy_txn_relay_deferred() */
	} else if (b->ignore && status >= 300) {
		if (msg)
			msg_destroy(msg);
	} else if (!msg || !rsip || !rsip->sip_via || !rsip->sip_via->v_next) {
		/* Generated by nta itself (timeout, transport error): nothing to relay. */
		if (msg)
			msg_destroy(msg);
		if (status >= 300)
			note_final(t, status, NULL);
	} else if (status < 200) {
		if (status > 100 && !t->final_sent)
			relay(t, msg);
		else
			msg_destroy(msg);
	} else if (status < 300) {
		bool first = !t->got_2xx;
		t->got_2xx = true;
		if (t->final_sent && !first && t->method != sip_method_invite) {
			msg_destroy(msg);
		} else {
			/* the first 2xx of an INVITE, kept for a retransmitted INVITE */
			msg_t *ok = first && t->method == sip_method_invite && !t->accepted
					    ? msg_ref_create(msg)
					    : NULL;
			t->final_sent = true;
			if (relay(t, msg) == 0 && ok)
				txn_accept(t, ok);
			else if (ok)
				msg_destroy(ok);
		}
		if (t->method == sip_method_invite && first)
			cancel_pending(t, "SIP;cause=200;text=\"Call completed elsewhere\"");
	} else {
		note_final(t, status, msg);
		if (status >= 600) {
			t->closed = true;
			cancel_pending(t, NULL);
		}
	}

	branch_drop_orq(t, b);
	if (t->ops && t->ops->after_response && !b->ignore)
		t->ops->after_response(t->ctx, t, b->idx, status);
	check_complete(t);
	t->holds--;
	txn_maybe_free(t);
	return 0;
}

static int server_event(nta_incoming_magic_t *magic, nta_incoming_t *irq, sip_t const *sip)
{
	struct proxy_txn *t = (struct proxy_txn *)magic;

	t->holds++;
	if (!sip) {
		/* nta is done with the server transaction. */
		t->irq_gone = true;
		t->final_sent = true;
		cancel_pending(t, NULL);
	} else if (sip->sip_request && sip->sip_request->rq_method == sip_method_cancel &&
		   !t->final_sent) {
		bool any_provisional = false;
		char *reason = NULL; /* the caller's Reason, whole, passed on to the branches */

		t->cancelled = true;
		if (sip->sip_reason)
			reason = sip_header_as_string(NULL, (sip_header_t *)sip->sip_reason);
		if (t->ops && t->ops->on_cancel)
			t->ops->on_cancel(t->ctx, t, reason);
		for (int i = 0; i < t->n_br; i++)
			if (!t->br[i]->ended && t->br[i]->status >= 100)
				any_provisional = true;
		cancel_pending(t, reason);
		if (!any_provisional && !t->final_sent) {
			/* Nothing answered yet: the caller gets its 487 now. */
			t->final_sent = true;
			nta_incoming_treply(t->irq, SIP_487_REQUEST_TERMINATED, TAG_END());
			stats_sip_response(487);
		}
		su_free(NULL, reason);
	}
	t->holds--;
	txn_maybe_free(t);
	return 0;
}

struct proxy_txn *proxy_txn_new(struct sip_agent *a, nta_incoming_t *irq, const struct proxy_ops *ops,
				void *ctx)
{
	struct proxy_txn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->agent = a;
	t->irq = irq;
	t->req = nta_incoming_getrequest(irq);
	t->method = nta_incoming_method(irq);
	t->ops = ops;
	t->ctx = ctx;
	live_txns++;
	t->next = all_txns;
	if (all_txns)
		all_txns->prev = t;
	all_txns = t;
	nta_incoming_bind(irq, server_event, (nta_incoming_magic_t *)t);
	if (t->method == sip_method_invite) {
		nta_incoming_treply(irq, SIP_100_TRYING, TAG_END());
		stats_sip_response(100);
	}
	return t;
}

void proxy_txn_set_ops(struct proxy_txn *t, const struct proxy_ops *ops, void *ctx)
{
	t->ops = ops;
	t->ctx = ctx;
}

msg_t *proxy_txn_request(struct proxy_txn *t)
{
	return t->req;
}

sip_method_t proxy_txn_method(struct proxy_txn *t)
{
	return t->method;
}

void *proxy_txn_ctx(struct proxy_txn *t)
{
	return t->ctx;
}

void proxy_txn_relay_deferred(struct proxy_txn *t, msg_t *msg)
{
	relay(t, msg);
	t->holds--;
	txn_maybe_free(t);
}

void proxy_txn_answer_deferred(struct proxy_txn *t, int status, const char *phrase,
			       const char *retry_after)
{
	if (!t->irq_gone) {
		nta_incoming_treply(t->irq, status, phrase,
				    TAG_IF(retry_after, SIPTAG_RETRY_AFTER_STR(retry_after)), TAG_END());
		stats_sip_response(status);
	}
	t->holds--;
	txn_maybe_free(t);
}

void proxy_txn_cancel_branch(struct proxy_txn *t, int branch, const char *reason)
{
	struct branch *b;

	if (branch < 0 || branch >= t->n_br)
		return;
	b = t->br[branch];
	if (b->ended || !b->orq)
		return;
	b->ignore = true;
	if (t->method != sip_method_invite) {
		/* A non-INVITE cannot be cancelled: forget it, its answer is ignored. */
		nta_outgoing_destroy(b->orq);
		b->orq = NULL;
		b->ended = true;
		return;
	}
	branch_cancel(t, b, reason);
	txn_maybe_free(t);
}

bool proxy_txn_branch_active(struct proxy_txn *t, int branch)
{
	return branch >= 0 && branch < t->n_br && !t->br[branch]->ended;
}

int proxy_txn_active_branches(struct proxy_txn *t)
{
	int n = 0;

	for (int i = 0; i < t->n_br; i++)
		if (!t->br[i]->ended)
			n++;
	return n;
}

bool proxy_txn_answered(struct proxy_txn *t)
{
	return t->final_sent;
}

unsigned proxy_txn_count(void)
{
	return live_txns;
}

msg_t *proxy_txn_copy_request(struct proxy_txn *t)
{
	msg_t *msg = msg_copy(t->req);
	sip_t *sip;

	if (!msg)
		return NULL;
	sip = sip_object(msg);
	if (sip_decrement_max_forwards(msg, sip) < 0) {
		msg_destroy(msg);
		return NULL;
	}
	sip_pop_own_routes(t->agent, msg, sip);
	return msg;
}

int proxy_txn_fork(struct proxy_txn *t, msg_t *msg, const char *route, tport_t *tp)
{
	struct branch *b;
	nta_outgoing_t *orq;
	url_string_t const *u = route ? URL_STRING_MAKE(route) : NULL;
	int idx;

	if (t->n_br >= PROXY_MAX_BRANCHES || t->final_sent || t->closed ||
	    !(b = calloc(1, sizeof(*b)))) {
		msg_destroy(msg);
		return -1;
	}
	idx = t->n_br++;
	t->br[idx] = b;
	b->idx = idx;
	b->t = t;
	t->holds++;
	if (tp)
		orq = nta_outgoing_mcreate(sip_agent_nta(t->agent), branch_response,
					   (nta_outgoing_magic_t *)b, u, msg, NTATAG_TPORT(tp),
					   TAG_END());
	else
		orq = nta_outgoing_mcreate(sip_agent_nta(t->agent), branch_response,
					   (nta_outgoing_magic_t *)b, u, msg, TAG_END());
	if (!orq) {
		msg_destroy(msg);
		b->ended = true;
		b->status = 503;
		note_final(t, 503, NULL);
		idx = -1;
	} else if (b->ended) {
		/* Answered synchronously (send error): already accounted for. */
		nta_outgoing_destroy(orq);
		b->orq = NULL;
	} else {
		b->orq = orq;
	}
	t->holds--;
	check_complete(t);
	return idx;
}

int proxy_txn_reply(struct proxy_txn *t, int status, const char *phrase, tag_type_t tag,
		    tag_value_t value, ...)
{
	ta_list ta;
	int rc = 0;

	if (t->final_sent && status >= 200)
		return -1;
	if (status >= 200) {
		t->final_sent = true;
		cancel_pending(t, NULL);
	}
	ta_start(ta, tag, value);
	if (!t->irq_gone)
		rc = nta_incoming_treply(t->irq, status, phrase, ta_tags(ta));
	if (!t->irq_gone && rc == 0)
		stats_sip_response(status);
	ta_end(ta);
	txn_maybe_free(t);
	return rc;
}

void proxy_txn_seal(struct proxy_txn *t, int status_if_none, const char *phrase_if_none)
{
	t->sealed = true;
	t->none_status = status_if_none;
	t->none_phrase = phrase_if_none;
	check_complete(t);
	txn_maybe_free(t);
}

void proxy_txn_close(struct proxy_txn *t, int status_if_none, const char *phrase_if_none)
{
	t->closed = true;
	proxy_txn_seal(t, status_if_none, phrase_if_none);
}

void proxy_shutdown(void)
{
	while (all_txns) {
		struct proxy_txn *t = all_txns;
		if (!t->final_sent && !t->irq_gone) {
			t->final_sent = true;
			cancel_pending(t, NULL);
			nta_incoming_treply(t->irq, SIP_503_SERVICE_UNAVAILABLE, TAG_END());
			stats_sip_response(503);
		}
		t->holds = 0;
		txn_free(t);
	}
	accepted_clear();
}
