/* SPDX-License-Identifier: MIT */
/*
 * INVITEs whose first 2xx is out (RFC 6026's Accepted state), remembered
 * for 64*T1 by their transaction key, with that 2xx.
 *
 * nta keeps a server transaction that sent a 2xx on a list it walks at
 * every turn of its timer, until the application destroys it; kept for
 * 32 s, at 100 calls/s that walk over some 3,000 transactions was a third
 * of sipwaked's CPU (bench/calls). So the proxy destroys the server
 * transaction as soon as the 2xx is out (nta still answers for it during
 * its own Timer I, T4), and from then on what may still come for it is
 * answered here, as nta did: the INVITE retransmitted (its sender heard
 * neither our 100 nor the 2xx) gets the 2xx again, a CANCEL gets 481.
 * The UAS's own 2xx retransmissions and the 2xx of other forks are relayed
 * statelessly: by the proxy while the branch lives, and here once it is
 * gone, only for a remembered transaction and only to the caller's Via as
 * we left it, so that a forged response cannot use sipwake as a relay.
 *
 * Every entry lives equally long, so the entries form a queue in order of
 * expiry: the expired ones go from its head whenever one is added, and a
 * lookup ignores an entry past its time. No timer, no scan.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tagarg.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"
#include "sipwake/proxy.h"
#include "sipwake/sip.h"
#include "sipwake/stats.h"
#include "sipwake/strmap.h"

#include "accepted.h"

#define ACCEPTED_MS (64 * 500) /* Timer L: 64*T1 */
#define KEY_MAX 512

struct entry {
	struct entry *next; /* the next to expire */
	uint64_t until_ms;
	msg_t *ok;
	char *dest; /* in key's block: the caller's received and rport, as we set them */
	char key[];
};

static struct strmap *by_key; /* key -> entry, keyed by the entry's own key */
static struct entry *head, *tail;

static const char *key_of(const void *e)
{
	return ((const struct entry *)e)->key;
}

/*
 * RFC 3261 17.2.3: a transaction is the magic branch and sent-by of the
 * caller's Via (v: the request's top one, a response's second), with the
 * Call-ID, CSeq number and From tag to be stricter.
 */
static bool txn_key(const sip_via_t *v, const sip_t *sip, char *buf, size_t size)
{
	size_t fold;
	int n;

	if (!v || !v->v_branch || strncasecmp(v->v_branch, "z9hG4bK", 7) || !v->v_host ||
	    !sip->sip_call_id || !sip->sip_cseq || !sip->sip_from)
		return false;
	n = snprintf(buf, size, "%s\x1f%s\x1f%s\x1f%u\x1f%s\x1f%s", v->v_branch + 7, v->v_host,
		     v->v_port ? v->v_port : "", sip->sip_cseq->cs_seq, sip->sip_call_id->i_id,
		     sip->sip_from->a_tag ? sip->sip_from->a_tag : "");
	if (n < 0 || (size_t)n >= size) {
		log_debug("a transaction key of %d bytes is not remembered", n);
		return false;
	}
	/* the branch and the host compare without case, the rest as it is */
	fold = strlen(v->v_branch + 7) + 1 + strlen(v->v_host);
	for (size_t i = 0; i < fold; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	return true;
}

/* Where nta sends a response for v: its received and rport, as one string. */
static bool dest_of(const sip_via_t *v, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s\x1f%s", v->v_received ? v->v_received : "",
			 v->v_rport ? v->v_rport : "");

	return n >= 0 && (size_t)n < size;
}

/* The live entry of a transaction key, or NULL. */
static struct entry *find(const char *key)
{
	struct entry *e = by_key ? strmap_get(by_key, key) : NULL;

	return e && e->until_ms > clock_now_ms() ? e : NULL;
}

static void entry_free(struct entry *e)
{
	msg_destroy(e->ok);
	free(e);
}

static void expire(uint64_t now)
{
	while (head && head->until_ms <= now) {
		struct entry *e = head;

		head = e->next;
		if (!head)
			tail = NULL;
		if (strmap_get(by_key, e->key) == e)
			strmap_del(by_key, e->key);
		entry_free(e);
	}
}

void accepted_add(const sip_t *req, msg_t *ok)
{
	char key[KEY_MAX], dest[KEY_MAX];
	uint64_t now = clock_now_ms();
	struct entry *e;
	size_t klen, dlen;

	expire(now);
	if (!by_key)
		by_key = strmap_new_keyed(key_of, 0);
	if (!by_key || !txn_key(req->sip_via, req, key, sizeof(key)) ||
	    !dest_of(req->sip_via, dest, sizeof(dest)) || strmap_get(by_key, key) ||
	    !(e = malloc(sizeof(*e) + (klen = strlen(key)) + 1 + (dlen = strlen(dest)) + 1))) {
		/* not remembered: a retransmission would be taken for a new INVITE */
		msg_destroy(ok);
		return;
	}
	memcpy(e->key, key, klen + 1);
	e->dest = e->key + klen + 1;
	memcpy(e->dest, dest, dlen + 1);
	e->next = NULL;
	e->until_ms = now + ACCEPTED_MS;
	e->ok = ok;
	if (strmap_put(by_key, e->key, e) < 0) {
		entry_free(e);
		return;
	}
	if (tail)
		tail->next = e;
	else
		head = e;
	tail = e;
}

bool proxy_absorb(nta_incoming_t *irq, const sip_t *sip)
{
	sip_method_t m = sip->sip_request ? sip->sip_request->rq_method : sip_method_unknown;
	char key[KEY_MAX];
	struct entry *e;
	msg_t *ok;

	if (!head || (m != sip_method_invite && m != sip_method_cancel) ||
	    !txn_key(sip->sip_via, sip, key, sizeof(key)) || !(e = find(key)))
		return false;
	if (m == sip_method_cancel) {
		/* RFC 3261 9.2: nothing left to cancel */
		nta_incoming_treply(irq, SIP_481_NO_TRANSACTION, TAG_END());
		stats_sip_response(481);
	} else if ((ok = msg_dup(e->ok)) && nta_incoming_mreply(irq, ok) == 0) {
		stats_sip_response(sip_object(e->ok)->sip_status->st_status);
		log_debug("a retransmitted INVITE got its 2xx again");
	}
	nta_incoming_destroy(irq); /* answered: freed at once (500 if the copy failed) */
	return true;
}

bool proxy_relay_stray(nta_agent_t *nta, msg_t *msg, sip_t *sip)
{
	const sip_via_t *caller = sip->sip_via ? sip->sip_via->v_next : NULL;
	char key[KEY_MAX], dest[KEY_MAX], why[64];
	struct entry *e;
	int status = sip->sip_status ? sip->sip_status->st_status : 0;

	if (!head || status < 200 || status >= 300 || !sip->sip_cseq ||
	    sip->sip_cseq->cs_method != sip_method_invite || !caller ||
	    !txn_key(caller, sip, key, sizeof(key)) || !(e = find(key)) ||
	    !dest_of(caller, dest, sizeof(dest)) || strcmp(dest, e->dest))
		return false;
	if (sip_msg_unsendable(msg, why, sizeof(why))) {
		log_debug("a stray %d dropped: %s", status, why);
		msg_destroy(msg);
		return true;
	}
	if (nta_msg_tsend(nta, msg, NULL, TAG_END()) < 0)
		log_debug("a stray %d could not be relayed", status);
	else
		stats_sip_response(status);
	return true;
}

void accepted_clear(void)
{
	while (head) {
		struct entry *e = head;

		head = e->next;
		entry_free(e);
	}
	tail = NULL;
	strmap_free(by_key);
	by_key = NULL;
}
