/* SPDX-License-Identifier: MIT */
/*
 * Stored MESSAGE delivery (SPEC 4.4). When a binding of an AOR registers
 * and can be reached, the AOR's stored messages are sent to it one at a
 * time, oldest first; each is removed from the store on a 2xx. A failure
 * stops the round (the attempt is counted) and the next registration tries
 * again, until the message's max_age purges it. One delivery per AOR runs
 * at a time on a node. In a cluster only the node that holds the device's
 * flow delivers, the messages are taken from Redis (the answer comes
 * later), and the AOR's lease there keeps two nodes whose devices of one
 * AOR register at once from sending the same message: the node that does
 * not get the lease delivers nothing this time.
 */
#include "router_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_time.h>

#include "sipwake/log.h"

struct delivery {
	struct router *rt;
	char aor[256];
	char binding[32];
	bool sending;    /* inside nta_outgoing_mcreate: its callback must not finish us */
	int bad;         /* messages that could not be rebuilt this round */
	bool announced;  /* the round's first message was logged */
	int sync_status; /* a final status nta gave from inside mcreate */
	int64_t msg_id;
	nta_outgoing_t *orq;
	uint32_t cseq;
	unsigned delivered;
};

static void delivery_finish(struct delivery *d)
{
	store_message_forget(d->rt->st, d);
	store_message_release(d->rt->st, d->aor);
	if (d->orq)
		nta_outgoing_destroy(d->orq);
	if (strmap_get(d->rt->deliveries, d->aor) == d)
		strmap_del(d->rt->deliveries, d->aor);
	if (d->delivered)
		log_info("%u stored message(s) delivered to %s", d->delivered, d->aor);
	free(d);
}

static void send_next(struct delivery *d);

/* One delivery attempt ended with status: next message, or the round ends. */
static void attempt_done(struct delivery *d, int status)
{
	nta_outgoing_destroy(d->orq);
	d->orq = NULL;
	if (status < 300) {
		store_message_del(d->rt->st, d->msg_id);
		d->delivered++;
		send_next(d);
		return;
	}
	log_info("stored message %lld for %s not taken (%d); kept for the next registration",
		 (long long)d->msg_id, d->aor, status);
	delivery_finish(d);
}

static int delivered(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
	struct delivery *d = (struct delivery *)magic;
	int status = nta_outgoing_status(orq);

	if (status < 200)
		return 0;
	if (d->sending) {
		/* nta answered from inside nta_outgoing_mcreate (a send error):
		 * send_next() finishes the attempt once mcreate has returned. */
		d->sync_status = status;
		return 0;
	}
	attempt_done(d, status);
	return 0;
}

static msg_t *build_message(struct delivery *d, struct binding *b, const struct store_message *o)
{
	nta_agent_t *nta = sip_agent_nta(d->rt->sa);
	msg_t *msg = nta_msg_create(nta, 0);
	sip_t *sip = msg ? sip_object(msg) : NULL;
	su_home_t *home;
	sip_request_t *rq;
	url_t *target;
	char cseq[32];

	if (!sip)
		goto fail;
	home = msg_home(msg);
	/* The Contact may be long (push parameters): no fixed-size buffer here. */
	target = url_make(home, binding_contact(b));
	if (target)
		target->url_headers = NULL; /* URI headers of a Contact are not obeyed */
	rq = target ? sip_request_create(home, SIP_METHOD_MESSAGE, (url_string_t const *)target,
					 NULL)
		    : NULL;
	snprintf(cseq, sizeof(cseq), "%u MESSAGE", ++d->cseq);
	if (!rq)
		goto fail;
	if (sip_add_tl(msg, sip, SIPTAG_REQUEST(rq), SIPTAG_FROM_STR(o->from),
		       SIPTAG_TO_STR(o->to), SIPTAG_CALL_ID_STR(o->call_id), SIPTAG_CSEQ_STR(cseq),
		       SIPTAG_MAX_FORWARDS_STR("70"),
		       SIPTAG_DATE(sip_date_create(home, (sip_time_t)(o->received + SU_TIME_EPOCH))),
		       TAG_IF(o->content_type, SIPTAG_CONTENT_TYPE_STR(o->content_type)),
		       TAG_IF(o->body_len, SIPTAG_PAYLOAD(sip_payload_create(home, o->body,
									    (isize_t)o->body_len))),
		       TAG_END()) < 0)
		goto fail;
	if (!sip->sip_request || !sip->sip_from || !sip->sip_to || !sip->sip_call_id)
		goto fail;
	if (sip_complete_message(msg) < 0)
		goto fail;
	return msg;
fail:
	log_warn("stored message %lld for %s cannot be rebuilt; dropped", (long long)o->id, d->aor);
	if (msg)
		msg_destroy(msg);
	store_message_del(d->rt->st, o->id);
	return NULL;
}

static void took(void *ctx, const struct store_message *m);

/* Take the AOR's oldest message from the store (took() goes on). */
static void send_next(struct delivery *d)
{
	struct binding *b = registrar_find_id(d->rt->reg, d->binding);

	if (!b || !binding_reachable(b)) {
		delivery_finish(d);
		return;
	}
	store_message_take_then(d->rt->st, d->aor, time(NULL), took, d); /* may free d */
}

static void took(void *ctx, const struct store_message *m)
{
	struct delivery *d = ctx;
	struct router *rt = d->rt;
	struct binding *b = registrar_find_id(rt->reg, d->binding);
	msg_t *msg;
	tport_t *tp;

	if (!m || !b || !binding_reachable(b)) {
		delivery_finish(d); /* none left, another node delivers, or the device went */
		return;
	}
	if (!d->announced) {
		d->announced = true;
		log_info("delivering stored messages of %s to binding %s", d->aor, d->binding);
	}
	msg = build_message(d, b, m);
	d->msg_id = m->id;
	if (!msg) {
		if (++d->bad < 3)
			send_next(d);
		else
			delivery_finish(d);
		return;
	}
	tp = binding_tport(b);
	d->sending = true;
	d->sync_status = 0;
	d->orq = nta_outgoing_mcreate(sip_agent_nta(rt->sa), delivered, (nta_outgoing_magic_t *)d,
				      URL_STRING_MAKE(binding_received(b)), msg,
				      TAG_IF(tp, NTATAG_TPORT(tp)), TAG_END());
	d->sending = false;
	if (!d->orq) {
		log_warn("stored message %lld for %s could not be sent", (long long)d->msg_id, d->aor);
		delivery_finish(d);
	} else if (d->sync_status) {
		attempt_done(d, d->sync_status);
	}
}

void deliver_on_binding(struct router *rt, const struct binding *cb, enum registrar_event ev)
{
	struct binding *b;
	struct delivery *d;

	if (ev != REGISTRAR_BOUND || !rt->st || !rt->cfg->messages.store)
		return;
	b = registrar_find_id(rt->reg, binding_id(cb));
	/* the node that holds the device's flow delivers; one round per AOR */
	if (!b || !binding_local(b) || !binding_reachable(b) ||
	    strmap_get(rt->deliveries, binding_aor(b)))
		return;
	/* Outside a cluster, nothing is begun for an AOR without messages; in
	 * one, asking Redis is the way to know. */
	if (!store_clustered(rt->st) && store_message_count(rt->st, binding_aor(b)) <= 0)
		return;
	d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->rt = rt;
	snprintf(d->aor, sizeof(d->aor), "%s", binding_aor(b));
	snprintf(d->binding, sizeof(d->binding), "%s", binding_id(b));
	if (strmap_put(rt->deliveries, d->aor, d) < 0) {
		free(d);
		return;
	}
	send_next(d);
}

static void free_one(void *ctx, const char *key, void *value)
{
	struct delivery *d = value;

	store_message_forget(d->rt->st, d);
	store_message_release(d->rt->st, d->aor);
	if (d->orq)
		nta_outgoing_destroy(d->orq);
	free(d);
}

void deliver_free_all(struct router *rt)
{
	if (rt->deliveries)
		strmap_each(rt->deliveries, free_one, NULL);
}
