/* SPDX-License-Identifier: MIT */
/*
 * Held requests (SPEC 4.3, 4.4): an INVITE or MESSAGE for devices that may
 * be asleep. Each device (binding) of the target gets a direct branch when
 * its flow is live and a push when it has push parameters; the request is
 * held until a pushed device registers again, and the registrar's
 * notification forks it to the device's new contact in the same loop turn
 * (cancelling a branch still pending on the stale one). The held request
 * ends on the first 2xx, on the caller's CANCEL, when call_timeout passes,
 * or when every device has failed; pushed devices then get a follow-up push
 * (missed call / answered elsewhere). A MESSAGE nobody accepts within a few
 * seconds is stored and answered 202 (deliver.c sends it later).
 *
 * Lifecycle: a held request is RINGING (devices tried: branches, pushes,
 * waits), then STORED (a MESSAGE kept and answered 202; a late 2xx from a
 * live device removes the copy) or DONE. held_finish() is the only way to
 * DONE and, but for the 202 of that STORED transition, the only place that
 * gives the caller a final answer: it stops pushes and
 * timers, sends the follow-up pushes the ending calls for and closes the
 * proxy transaction (no more forks; the best response goes out once the
 * branches have ended, or the answer goes now). A struct held is the
 * context of its proxy_txn and is freed only in the proxy's on_done; pushes
 * in flight hold a push_req reference that is detached there, so a late
 * provider answer never touches freed memory.
 */
#include "router_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>

#include "sipwake/log.h"
#include "sipwake/stats.h"

#define HELD_MAX_DEV MAX_FORK
#define MESSAGE_WAIT_MS 3000    /* how long live devices get before a MESSAGE is stored */
#define FOLLOWUP_DEADLINE_MS 10000
#define MESSAGE_PUSH_DEADLINE_MS 30000
#define STORE_DOWN_RETRY_AFTER "10" /* s, as the registrar's 503 while Redis is away */

struct held;

enum held_state { HELD_RINGING, HELD_STORING, HELD_STORED, HELD_DONE };
static const char *const state_name[] = {"RINGING", "STORING", "STORED", "DONE"};

/* Why a held request finished: what the caller is told, which follow-up pushes go. */
enum held_end {
	END_ANSWERED,    /* a device answered 2xx (relayed by the proxy) */
	END_DECLINED,    /* a device answered 6xx: nobody else is tried */
	END_CANCELLED,   /* the caller's CANCEL: 487, missed-call pushes */
	END_ELSEWHERE,   /* the caller's CANCEL with Reason cause=200: answered elsewhere */
	END_TIMEOUT,     /* push.call_timeout: 480, ringing branches cancelled */
	END_UNAVAILABLE, /* every device failed: 480 (or the best response) */
	END_MAILBOX,     /* MESSAGE not stored: max_per_aor reached (480) */
	END_STORE_FULL,  /* MESSAGE not stored: messages.max_total reached (503) */
	END_STORE_ERROR, /* MESSAGE not stored: the store failed (500) */
	END_STORE_DOWN,  /* MESSAGE not stored: the cluster's Redis is unreachable (503) */
};
static const char *const end_name[] = {"answered",  "declined",     "cancelled",
				       "answered elsewhere", "timeout", "unavailable",
				       "mailbox full", "store full", "store error", "store unavailable"};

struct held_dev {
	struct held *h;
	char id[32];                 /* binding id */
	struct push_req *push;       /* push in flight (our reference) */
	su_timer_t *push_delay;      /* pn-timeout before pushing a live device */
	int branch;                  /* current branch, -1 = none */
	char received[160];          /* where the current branch went */
	const void *tport;           /* and over which connection */
	bool has_push;               /* the binding has push parameters */
	bool pushed;                 /* a push was dispatched */
	bool waiting;                /* pushed, not re-registered since */
	bool reached;                /* a branch was sent to it */
	bool answered;               /* its branch answered 2xx */
	bool gone;                   /* out of this request */
};

struct held {
	struct held *next; /* in rt->held_by_aor */
	struct router *rt;
	struct proxy_txn *t;
	bool is_message;
	bool no_push; /* may be held/stored, but must not wake anybody (SPEC 4.3) */
	bool single; /* upstream chose one binding: do not add other devices */
	bool linked;
	enum held_state state;
	bool provisional_sent;
	int64_t stored_id; /* HELD_STORED: the copy in the store (0 once removed) */
	bool storing;      /* the store has not yet answered the add */
	char bound_id[32]; /* a binding of the AOR registered meanwhile ("" none) */
	char aor[256];
	char in_proto[8];
	char *call_id, *from_uri, *from_name, *to_uri, *text;
	char *content_type;
	void *body;
	size_t body_len;
	char *from_hdr, *to_hdr;
	su_timer_t *timer; /* call_timeout, or the MESSAGE wait */
	su_timer_t *defer; /* end checks run on the next loop turn */
	struct held_dev *dev[HELD_MAX_DEV]; /* each its own block: most calls have one or two */
	int n_dev;
	/* Lower q-value groups, tried in turn when the current group fails
	 * (allocated when there is one: most AORs have a single q). */
	struct held_later {
		char id[32];
		int q;
	} *later;
	int n_later;
};

static void held_check_later(struct held *h);

static bool is_composing(const sip_t *sip)
{
	const char *ct = sip->sip_content_type ? sip->sip_content_type->c_type : NULL;
	return ct && !strncasecmp(ct, "application/im-iscomposing+xml", 30);
}

static bool is_imdn(const sip_t *sip)
{
	const char *ct = sip->sip_content_type ? sip->sip_content_type->c_type : NULL;
	return ct && !strncasecmp(ct, "message/imdn+xml", 16);
}

bool held_wants_hold(const sip_t *sip)
{
	sip_method_t m = sip->sip_request->rq_method;

	if (m != sip_method_invite && m != sip_method_message)
		return false;
	if (sip->sip_to && sip->sip_to->a_tag)
		return false; /* in-dialog */
	/* "typing..." is worth nothing later: never held, stored or pushed. */
	return !(m == sip_method_message && is_composing(sip));
}

bool held_wants_push(const sip_t *sip)
{
	sip_method_t m = sip->sip_request->rq_method;

	if (!held_wants_hold(sip))
		return false;
	if (sip->sip_priority && sip->sip_priority->g_string &&
	    !strcasecmp(sip->sip_priority->g_string, "non-urgent"))
		return false;
	if (m == sip_method_invite && sip->sip_replaces)
		return false;
	/* A delivery/read receipt is stored and delivered, but wakes nobody. */
	return !(m == sip_method_message && is_imdn(sip));
}

static void unlink_held(struct held *h)
{
	struct held *first, **pp;

	if (!h->linked)
		return;
	first = strmap_get(h->rt->held_by_aor, h->aor);
	for (pp = &first; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	if (first)
		strmap_put(h->rt->held_by_aor, h->aor, first);
	else
		strmap_del(h->rt->held_by_aor, h->aor);
	h->next = NULL;
	h->linked = false;
	h->rt->n_held--;
}

static void link_held(struct held *h)
{
	h->next = strmap_get(h->rt->held_by_aor, h->aor);
	if (strmap_put(h->rt->held_by_aor, h->aor, h) < 0) {
		h->next = NULL;
		return;
	}
	h->linked = true;
	h->rt->n_held++;
}

static void stop_pushes(struct held *h)
{
	for (int i = 0; i < h->n_dev; i++) {
		struct held_dev *d = h->dev[i];
		if (d->push) {
			push_req_detach(d->push);
			d->push = NULL;
		}
		if (d->push_delay) {
			su_timer_destroy(d->push_delay);
			d->push_delay = NULL;
		}
		d->waiting = false;
	}
}

/* Stop what runs for devices: pushes, their delays, the request's timer, the AOR list. */
static void held_stop(struct held *h)
{
	stop_pushes(h);
	if (h->timer) {
		su_timer_destroy(h->timer);
		h->timer = NULL;
	}
	unlink_held(h);
}

static void set_state(struct held *h, enum held_state to, const char *why)
{
	log_debug("held %s %s for %s: %s => %s (%s)", h->is_message ? "MESSAGE" : "call",
		  h->call_id, h->aor, state_name[h->state], state_name[to], why);
	h->state = to;
}

static void followup_done(void *ctx, enum push_result res, int http_status, const char *reason,
			  double latency_ms)
{
}

static void payload_of(const struct held *h, struct push_payload *pl, const char *reason)
{
	memset(pl, 0, sizeof(*pl));
	pl->call_id = h->call_id;
	pl->from_uri = h->from_uri;
	pl->from_name = h->from_name;
	pl->to_uri = h->to_uri;
	pl->text = h->text;
	pl->reason = reason;
}

/* A missed-call or answered-elsewhere push (fire and forget). */
static void send_followup(struct held *h, struct held_dev *d, const char *reason)
{
	struct binding *b = registrar_find_id(h->rt->reg, d->id);
	const struct pn_identity *pn = b ? binding_pn(b) : NULL;
	struct push_payload pl;

	if (!pn || !h->rt->push)
		return;
	payload_of(h, &pl, reason);
	push_send(h->rt->push, pn, PUSH_CANCEL, &pl, FOLLOWUP_DEADLINE_MS, followup_done, NULL, NULL);
}

/* The follow-up pushes an ending calls for (calls only). */
static void followups(struct held *h, enum held_end why, const struct held_dev *winner)
{
	for (int i = 0; i < h->n_dev && !h->is_message; i++) {
		struct held_dev *d = h->dev[i];
		if (!d->pushed || d == winner)
			continue;
		switch (why) {
		case END_ANSWERED:
		case END_DECLINED:
		case END_ELSEWHERE:
			/* Reached devices got SIP's CANCEL; the others only the push. */
			if (!d->reached)
				send_followup(h, d, "answered_elsewhere");
			break;
		case END_CANCELLED:
		case END_TIMEOUT:
			if (h->rt->cfg->push.missed_call_push)
				send_followup(h, d, "missed");
			break;
		default:
			break;
		}
	}
}

/*
 * The one way to DONE, and the one place that settles the caller's final
 * answer (but for a stored MESSAGE's 202). winner:
 * the device whose answer ended it (no follow-up for it), or NULL. The
 * proxy transaction is closed last: it may free h (from a timer), so the
 * caller must not touch h afterwards.
 */
static void held_finish(struct held *h, enum held_end why, const struct held_dev *winner)
{
	struct proxy_txn *t = h->t;
	enum held_state was = h->state;

	if (was == HELD_DONE)
		return;
	set_state(h, HELD_DONE, end_name[why]);
	held_stop(h);
	if (was == HELD_RINGING)
		followups(h, why, winner);
	switch (why) {
	case END_ANSWERED: /* the proxy relayed the 2xx and cancels the other branches */
	case END_DECLINED: /* the 6xx goes once the other branches are cancelled */
		proxy_txn_close(t, SIP_480_TEMPORARILY_UNAVAILABLE);
		break;
	case END_CANCELLED:
	case END_ELSEWHERE:
		proxy_txn_close(t, SIP_487_REQUEST_TERMINATED);
		break;
	case END_UNAVAILABLE:
		proxy_txn_close(t, SIP_480_TEMPORARILY_UNAVAILABLE);
		break;
	/* Answered now (a final answer also ends forking); ringing branches are cancelled. */
	case END_TIMEOUT:
		proxy_txn_reply(t, SIP_480_TEMPORARILY_UNAVAILABLE, TAG_END());
		break;
	case END_MAILBOX:
		proxy_txn_reply(t, 480, "Mailbox Full", TAG_END());
		break;
	case END_STORE_FULL:
		proxy_txn_reply(t, 503, "Message Store Full", SIPTAG_RETRY_AFTER_STR("60"), TAG_END());
		break;
	case END_STORE_ERROR:
		proxy_txn_reply(t, SIP_500_INTERNAL_SERVER_ERROR, SIPTAG_RETRY_AFTER_STR("10"),
				TAG_END());
		break;
	case END_STORE_DOWN:
		proxy_txn_reply(t, 503, "Store Unavailable",
				SIPTAG_RETRY_AFTER_STR(STORE_DOWN_RETRY_AFTER), TAG_END());
		break;
	}
}

static struct held_dev *dev_by_id(struct held *h, const char *id)
{
	for (int i = 0; i < h->n_dev; i++)
		if (!strcmp(h->dev[i]->id, id))
			return h->dev[i];
	return NULL;
}

static struct held_dev *dev_by_branch(struct held *h, int branch)
{
	for (int i = 0; i < h->n_dev; i++)
		if (h->dev[i]->branch == branch)
			return h->dev[i];
	return NULL;
}

/* Fork to the device's current contact; cancels a branch to its old one. */
static void branch_to(struct held *h, struct held_dev *d, struct binding *b)
{
	msg_t *copy;
	int idx;

	if (h->state != HELD_RINGING || proxy_txn_answered(h->t) || !router_can_reach(h->rt, b))
		return;
	if (d->branch >= 0 && proxy_txn_branch_active(h->t, d->branch)) {
		if (!strcmp(d->received, binding_received(b)) && d->tport == binding_tport(b))
			return; /* already ringing there */
		proxy_txn_cancel_branch(h->t, d->branch, NULL);
		d->branch = -1;
	}
	copy = proxy_txn_copy_request(h->t);
	if (!copy)
		return;
	idx = router_fork_binding(h->rt, h->t, copy, b, true, h->in_proto);
	if (idx < 0)
		return;
	d->branch = idx;
	d->reached = true;
	snprintf(d->received, sizeof(d->received), "%s", binding_received(b));
	d->tport = binding_tport(b);
}

static void send_provisional(struct held *h)
{
	const char *p = h->rt->cfg->push.provisional;

	if (h->provisional_sent || h->is_message || proxy_txn_answered(h->t))
		return;
	h->provisional_sent = true;
	if (!p || !strcmp(p, "none"))
		return;
	if (!strcmp(p, "180"))
		proxy_txn_reply(h->t, SIP_180_RINGING, TAG_END());
	else
		proxy_txn_reply(h->t, 110, "Push sent", TAG_END());
}

static void push_done(void *ctx, enum push_result res, int http_status, const char *reason,
		      double latency_ms)
{
	struct held_dev *d = ctx;
	struct held *h = d->h;

	if (d->push) {
		push_req_detach(d->push);
		d->push = NULL;
	}
	if (res == PUSH_OK)
		return; /* now we wait for the re-registration */
	log_info("push for %s (binding %s) failed: %s%s%s", h->aor, d->id, push_result_name(res),
		 reason ? " " : "", reason ? reason : "");
	d->waiting = false;
	if (d->branch < 0 || !proxy_txn_branch_active(h->t, d->branch))
		d->gone = true;
	held_check_later(h);
}

static void push_device(struct held *h, struct held_dev *d)
{
	struct binding *b = registrar_find_id(h->rt->reg, d->id);
	const struct pn_identity *pn = b ? binding_pn(b) : NULL;
	struct push_payload pl;
	unsigned deadline;
	int rc;

	if (!pn || !h->rt->push || h->state == HELD_DONE || d->pushed)
		return;
	payload_of(h, &pl, NULL);
	deadline = h->is_message ? MESSAGE_PUSH_DEADLINE_MS
				 : (unsigned)h->rt->cfg->push.call_timeout * 1000u;
	rc = push_send(h->rt->push, pn, h->is_message ? PUSH_MESSAGE : PUSH_CALL, &pl, deadline,
		       push_done, d, &d->push);
	d->pushed = true;
	if (rc == -(int)PUSH_RATE_LIMITED) {
		/* Pushed for something else less than push.min_interval ago: it is
		 * waking already, and its registration releases this one too. */
		log_info("no new push for %s (binding %s): pushed moments ago; waiting for it", h->aor,
			 d->id);
		d->waiting = true;
		return;
	}
	if (rc < 0) {
		log_info("no push for %s (binding %s): %s", h->aor, d->id,
			 push_result_name((enum push_result)-rc));
		d->push = NULL;
		if (d->branch < 0)
			d->gone = true;
		held_check_later(h);
		return;
	}
	d->waiting = true;
	send_provisional(h);
}

static void push_delay_fired(su_root_magic_t *m, su_timer_t *timer, su_timer_arg_t *arg)
{
	struct held_dev *d = (struct held_dev *)arg;

	su_timer_destroy(d->push_delay);
	d->push_delay = NULL;
	if (!d->answered)
		push_device(d->h, d);
}

/* Add a device (binding) to the request: branch where live, push where possible. */
static void add_device(struct held *h, struct binding *b)
{
	const struct pn_identity *pn = binding_pn(b);
	struct held_dev *d;

	if (h->n_dev >= HELD_MAX_DEV || dev_by_id(h, binding_id(b)))
		return;
	d = calloc(1, sizeof(*d));
	if (!d)
		return; /* not tried: the others still are */
	h->dev[h->n_dev++] = d;
	d->h = h;
	d->branch = -1;
	snprintf(d->id, sizeof(d->id), "%s", binding_id(b));
	d->has_push = pn != NULL && h->rt->push != NULL && !h->no_push;

	if (router_can_reach(h->rt, b))
		branch_to(h, d, b);
	if (d->has_push && !(h->is_message && d->reached)) {
		/* A live device gets pn-timeout seconds to answer before we push. */
		if (d->reached && pn->timeout > 0) {
			d->push_delay =
				su_timer_create(su_root_task(sip_agent_root(h->rt->sa)), pn->timeout * 1000);
			if (d->push_delay)
				su_timer_set(d->push_delay, push_delay_fired, (su_timer_arg_t *)d);
		} else {
			push_device(h, d);
		}
	}
	if (!d->reached && !d->has_push)
		d->gone = true; /* asleep and no way to wake it */
}

static bool any_hope(struct held *h)
{
	for (int i = 0; i < h->n_dev; i++) {
		struct held_dev *d = h->dev[i];
		if (d->gone)
			continue;
		if (d->waiting || d->push || d->push_delay)
			return true;
		if (d->branch >= 0 && proxy_txn_branch_active(h->t, d->branch))
			return true;
	}
	return false;
}

/* The store's answer to store_message()'s add: 202, or the reason it is not kept. */
static void message_stored(void *ctx, enum store_add_result res, int64_t id)
{
	struct held *h = ctx;

	h->storing = false;
	if (h->state != HELD_STORING) {
		/* a live device took it while the store was writing it */
		if (res == STORE_ADDED)
			store_message_del(h->rt->st, id);
		return;
	}
	if (res == STORE_AOR_FULL || res == STORE_FULL) {
		bool aor_full = res == STORE_AOR_FULL;

		log_warn("MESSAGE for %s not stored: %s reached", h->aor,
			 aor_full ? "messages.max_per_aor" : "messages.max_total");
		stats_count("sipwake_messages_refused_total", "reason",
			    aor_full ? "max_per_aor" : "max_total", NULL);
		held_finish(h, aor_full ? END_MAILBOX : END_STORE_FULL, NULL);
		return;
	}
	if (res != STORE_ADDED) {
		held_finish(h, END_STORE_ERROR, NULL);
		return;
	}
	struct router *rt = h->rt;
	char bound[sizeof(h->bound_id)];
	struct binding *b;

	h->stored_id = id;
	snprintf(bound, sizeof(bound), "%s", h->bound_id);
	log_info("MESSAGE %s for %s stored (id %lld) until a device registers", h->call_id, h->aor,
		 (long long)h->stored_id);
	for (int i = 0; i < h->n_dev; i++)
		if (!h->dev[i]->pushed && h->dev[i]->has_push)
			push_device(h, h->dev[i]);
	/* Delivery happens from the store when a device registers (deliver.c). */
	set_state(h, HELD_STORED, "stored");
	held_stop(h); /* the alert pushes just sent go on without us */
	proxy_txn_reply(h->t, SIP_202_ACCEPTED, TAG_END()); /* may free h */
	/* a device that registered while the store wrote it looked for stored
	 * messages too early: it is offered this one now */
	if (bound[0] && (b = registrar_find_id(rt->reg, bound)))
		deliver_on_binding(rt, b, REGISTRAR_BOUND);
}

/*
 * Store a MESSAGE nobody took; once the store confirmed it (at once on
 * SQLite, when Redis answered in a cluster), answer 202 and push the
 * devices that sleep. Nothing is answered 2xx that is not kept.
 */
static void store_message(struct held *h)
{
	const struct sw_config *cfg = h->rt->cfg;
	int64_t now = time(NULL);
	struct store_message m = {
		.aor = h->aor,
		.from = h->from_hdr,
		.to = h->to_hdr,
		.call_id = h->call_id,
		.content_type = h->content_type,
		.body = h->body,
		.body_len = h->body_len,
		.received = now,
		.expires = now + cfg->messages.max_age,
	};

	if (h->state != HELD_RINGING || proxy_txn_answered(h->t))
		return;
	if (!store_writable(h->rt->st)) {
		log_warn("MESSAGE for %s not stored: the cluster's Redis is unreachable", h->aor);
		stats_count("sipwake_messages_refused_total", "reason", "store_unavailable", NULL);
		held_finish(h, END_STORE_DOWN, NULL);
		return;
	}
	/* The 202 promises durability: no binding batch may hold this write. */
	registrar_flush(h->rt->reg);
	set_state(h, HELD_STORING, "storing");
	if (h->timer) {
		su_timer_destroy(h->timer);
		h->timer = NULL;
	}
	h->storing = true;
	store_message_add_then(h->rt->st, &m, cfg->messages.max_per_aor, cfg->messages.max_total,
			       message_stored, h); /* may free h */
}

/*
 * Start the next q-value group (RFC 3261 16.6: higher q first, equal q in
 * parallel). Returns how many devices were added.
 */
static int start_next_group(struct held *h)
{
	int best = -1, added = 0, kept = 0;

	for (int i = 0; i < h->n_later; i++)
		if (h->later[i].q > best)
			best = h->later[i].q;
	for (int i = 0; i < h->n_later; i++) {
		struct binding *b;
		if (h->later[i].q != best) {
			h->later[kept++] = h->later[i];
			continue;
		}
		b = registrar_find_id(h->rt->reg, h->later[i].id);
		if (b) {
			add_device(h, b);
			added++;
		}
	}
	h->n_later = kept;
	return added;
}

static void held_check(struct held *h)
{
	if (h->state != HELD_RINGING || proxy_txn_answered(h->t))
		return;
	if (h->is_message && h->rt->st && h->rt->cfg->messages.store) {
		/* Every live device failed before the wait was over: store now. */
		if (proxy_txn_active_branches(h->t) == 0)
			store_message(h);
		return;
	}
	if (any_hope(h))
		return;
	if (start_next_group(h) > 0 && any_hope(h))
		return;
	held_finish(h, END_UNAVAILABLE, NULL);
}

static void defer_fired(su_root_magic_t *m, su_timer_t *timer, su_timer_arg_t *arg)
{
	held_check((struct held *)arg);
}

static void held_check_later(struct held *h)
{
	if (h->defer)
		su_timer_set(h->defer, defer_fired, (su_timer_arg_t *)h);
	else
		held_check(h);
}

static void timer_fired(su_root_magic_t *m, su_timer_t *timer, su_timer_arg_t *arg)
{
	struct held *h = (struct held *)arg;

	su_timer_destroy(h->timer);
	h->timer = NULL;
	if (h->is_message && h->rt->st && h->rt->cfg->messages.store) {
		store_message(h);
		return;
	}
	log_info("%s for %s: no device answered within %d s", h->is_message ? "MESSAGE" : "call",
		 h->aor, h->rt->cfg->push.call_timeout);
	held_finish(h, END_TIMEOUT, NULL);
}

static int held_response(void *ctx, struct proxy_txn *t, int branch, msg_t *msg, sip_t *sip)
{
	struct held *h = ctx;
	int status = sip->sip_status->st_status;
	struct held_dev *d = dev_by_branch(h, branch);

	if (status >= 200 && status < 300) {
		if (d)
			d->answered = true;
		if (h->state == HELD_STORED && h->stored_id) {
			/* A device took the MESSAGE after all: do not deliver it twice. */
			store_message_del(h->rt->st, h->stored_id);
			h->stored_id = 0;
		}
	}
	if (status >= 180 && d && d->push_delay) {
		/* The device is awake and answering: no push needed. */
		su_timer_destroy(d->push_delay);
		d->push_delay = NULL;
	}
	return 0;
}

static void held_after_response(void *ctx, struct proxy_txn *t, int branch, int status)
{
	struct held *h = ctx;
	struct held_dev *d = dev_by_branch(h, branch);

	if (status < 200)
		return;
	if (status < 300) {
		held_finish(h, END_ANSWERED, d);
		return;
	}
	if (status >= 600) {
		/* RFC 3261 16.7: a device declined for everybody; nobody is rung again. */
		held_finish(h, END_DECLINED, d);
		return;
	}
	if (d) {
		d->branch = -1;
		if (!d->waiting && !d->push && !d->push_delay)
			d->gone = true;
	}
	held_check_later(h);
}

static void held_cancel(void *ctx, struct proxy_txn *t, const char *reason)
{
	struct held *h = ctx;
	/* Upstream forked the call and another of its branches answered
	 * (RFC 3326 Reason cause=200): not a missed call for our devices. */
	bool elsewhere = reason && strstr(reason, "cause=200");

	if (h->state != HELD_RINGING)
		return;
	log_info("call %s for %s cancelled %s", h->call_id, h->aor,
		 elsewhere ? "(answered elsewhere)" : "by the caller");
	held_finish(h, elsewhere ? END_ELSEWHERE : END_CANCELLED, NULL);
}

static void held_done(void *ctx, struct proxy_txn *t)
{
	struct held *h = ctx;

	held_stop(h); /* the transaction is going away (answered, or shutdown) */
	if (h->storing) /* and what the store says of the add then removes it */
		store_message_forget(h->rt->st, h);
	if (h->defer)
		su_timer_destroy(h->defer);
	free(h->call_id);
	free(h->from_uri);
	free(h->from_name);
	free(h->to_uri);
	free(h->text);
	free(h->content_type);
	free(h->body);
	free(h->from_hdr);
	free(h->to_hdr);
	for (int i = 0; i < h->n_dev; i++)
		free(h->dev[i]);
	free(h->later);
	free(h);
}

static const struct proxy_ops held_ops = {
	.on_response = held_response,
	.after_response = held_after_response,
	.on_cancel = held_cancel,
	.on_done = held_done,
};

static char *header_string(const sip_header_t *hdr)
{
	char *s, *copy;

	if (!hdr)
		return NULL;
	s = sip_header_as_string(NULL, hdr);
	copy = s ? strdup(s) : NULL;
	su_free(NULL, s);
	return copy;
}

static void fill_payload(struct held *h, const sip_t *sip)
{
	h->call_id = sip->sip_call_id ? strdup(sip->sip_call_id->i_id) : strdup("");
	if (sip->sip_from) {
		h->from_uri = url_as_string(NULL, sip->sip_from->a_url);
		if (sip->sip_from->a_display && sip->sip_from->a_display[0]) {
			const char *dn = sip->sip_from->a_display;
			size_t len = strlen(dn);
			if (len >= 2 && dn[0] == '"' && dn[len - 1] == '"')
				h->from_name = strndup(dn + 1, len - 2);
			else
				h->from_name = strdup(dn);
		}
	}
	h->to_uri = strdup(h->aor);
	h->from_hdr = header_string((const sip_header_t *)sip->sip_from);
	h->to_hdr = header_string((const sip_header_t *)sip->sip_to);
	if (sip->sip_content_type && sip->sip_content_type->c_type)
		h->content_type = strdup(sip->sip_content_type->c_type);
	if (sip->sip_payload && sip->sip_payload->pl_len) {
		h->body_len = sip->sip_payload->pl_len;
		h->body = malloc(h->body_len);
		if (h->body)
			memcpy(h->body, sip->sip_payload->pl_data, h->body_len);
		else
			h->body_len = 0;
		if (h->body && h->is_message &&
		    (!h->content_type || !strncasecmp(h->content_type, "text/", 5)))
			h->text = strndup(sip->sip_payload->pl_data, h->body_len);
	}
}

void held_start(struct router *rt, struct proxy_txn *t, const sip_t *sip, struct binding **list,
		size_t n, const char *aor, bool single, const char *in_proto)
{
	struct held *h;
	su_root_t *root = sip_agent_root(rt->sa);
	const struct sw_config *cfg = rt->cfg;
	bool is_message = sip->sip_request->rq_method == sip_method_message;

	if (is_message && sip->sip_payload && (int)sip->sip_payload->pl_len > cfg->messages.max_body) {
		proxy_txn_reply(t, SIP_413_REQUEST_TOO_LARGE, TAG_END());
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		proxy_txn_reply(t, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
		return;
	}
	h->rt = rt;
	h->t = t;
	h->is_message = is_message;
	h->no_push = !held_wants_push(sip);
	h->single = single;
	snprintf(h->aor, sizeof(h->aor), "%s", aor);
	snprintf(h->in_proto, sizeof(h->in_proto), "%s", in_proto);
	fill_payload(h, sip);
	proxy_txn_set_ops(t, &held_ops, h);
	h->defer = su_timer_create(su_root_task(root), 1); /* sofia refuses 0 */
	link_held(h);

	/* list is sorted by q, highest first: that group now, the others later. */
	for (size_t i = 0; i < n; i++) {
		if (binding_q(list[i]) == binding_q(list[0])) {
			add_device(h, list[i]);
		} else if (h->n_later < HELD_MAX_DEV &&
			   (h->later || (h->later = calloc(HELD_MAX_DEV, sizeof(*h->later))))) {
			snprintf(h->later[h->n_later].id, sizeof(h->later[0].id), "%s",
				 binding_id(list[i]));
			h->later[h->n_later].q = binding_q(list[i]);
			h->n_later++;
		}
	}

	if (h->state != HELD_RINGING || proxy_txn_answered(t))
		return;
	if (is_message && rt->st && cfg->messages.store) {
		if (proxy_txn_active_branches(t) == 0) {
			store_message(h);
			return;
		}
		h->timer = su_timer_create(su_root_task(root), MESSAGE_WAIT_MS);
	} else {
		h->timer = su_timer_create(su_root_task(root), (su_duration_t)cfg->push.call_timeout * 1000);
	}
	if (h->timer)
		su_timer_set(h->timer, timer_fired, (su_timer_arg_t *)h);
	held_check_later(h);
}

void held_on_binding(struct router *rt, const struct binding *cb, enum registrar_event ev)
{
	struct binding *b = registrar_find_id(rt->reg, binding_id(cb));
	struct held *h, *next;

	if (ev == REGISTRAR_EXPIRING)
		return;
	for (h = strmap_get(rt->held_by_aor, binding_aor(cb)); h; h = next) {
		struct held_dev *d = dev_by_id(h, binding_id(cb));

		next = h->next;
		if (h->state == HELD_STORING && ev != REGISTRAR_REMOVED && b)
			snprintf(h->bound_id, sizeof(h->bound_id), "%s", binding_id(b));
		if (h->state != HELD_RINGING)
			continue;
		if (ev == REGISTRAR_REMOVED) {
			if (d && (d->branch < 0 || !proxy_txn_branch_active(h->t, d->branch))) {
				d->gone = true;
				d->waiting = false;
				held_check_later(h);
			}
			continue;
		}
		if (!b || !router_can_reach(rt, b))
			continue;
		if (!d) {
			if (h->single)
				continue;
			add_device(h, b); /* a device that registered while the call waits */
			continue;
		}
		/* The woken device is back: the call goes to its new contact now. */
		d->waiting = false;
		if (d->push_delay) {
			su_timer_destroy(d->push_delay);
			d->push_delay = NULL;
		}
		log_info("binding %s of %s registered again: releasing %s %s", d->id, h->aor,
			 h->is_message ? "MESSAGE" : "call", h->call_id);
		branch_to(h, d, b);
	}
}

void router_send_wakeup(struct router *rt, const struct binding *b)
{
	const struct pn_identity *pn = binding_pn(b);
	struct push_payload pl = {.to_uri = binding_aor(b)};

	if (!pn || !rt->push)
		return;
	const char *up = binding_upstream_state(b);

	if (up && strcmp(up, "ok") != 0)
		log_info("binding %s of %s: upstream refresh failing (%s): wake-up push", binding_id(b),
			 binding_aor(b), up);
	else
		log_info("binding %s of %s expires in %lld s: wake-up push", binding_id(b),
			 binding_aor(b), (long long)(binding_expires(b) - time(NULL)));
	push_send(rt->push, pn, PUSH_WAKEUP, &pl, MESSAGE_PUSH_DEADLINE_MS, followup_done, NULL, NULL);
}
