/* SPDX-License-Identifier: MIT */
/*
 * Voicemail notifications (issue 10): an unsolicited NOTIFY with Event:
 * message-summary (RFC 3842) for devices of a user. A device with a live
 * flow gets the NOTIFY; a device that registered for push gets a voicemail
 * push with the counts (an alert on the remote token, never PushKit) when
 * it has no live connection, when it is on UDP (where nothing says it is
 * awake: the same rule as for calls) or when its branch fails. The NOTIFY
 * is answered 200 as soon as a device took it or a provider accepted a
 * push for one (a device that never answers does not hold it up), and with
 * the best failure (480 without any) when neither happened: a 2xx always
 * means the news reached a device or its push service.
 */
#include "router_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sip_status.h>

#include "sipwake/log.h"

#define MWI_PUSH_DEADLINE_MS 15000

struct mwi_dev {
	struct mwi *m;
	char id[32];
	int branch;           /* -1 = none */
	bool pushable, pushed;
	struct push_req *push; /* in flight */
};

struct mwi {
	struct router *rt;
	struct proxy_txn *t;
	struct push_payload pl;
	char from[256], to[256], call_id[256];
	unsigned pushes_ok, pushes_pending;
	bool starting; /* mwi_start still adding devices: nothing is answered yet */
	bool closing;
	int n;
	struct mwi_dev dev[MAX_FORK];
	int branch_status[MAX_FORK]; /* final status by branch index, 0 = none yet */
};

/* A count of at most 6 digits at *s, and what follows; -1 if none. */
static int count_at(const char **s)
{
	int n = 0, digits = 0;

	*s += strspn(*s, " \t");
	while (**s >= '0' && **s <= '9' && digits < 6) {
		n = n * 10 + (**s - '0');
		(*s)++;
		digits++;
	}
	return digits && !(**s >= '0' && **s <= '9') ? n : -1;
}

/* The yes/no of a Messages-Waiting value (RFC 3842): 1, 0, or -1 for anything else. */
static int yes_no(const char *v)
{
	size_t n;

	v += strspn(v, " \t");
	n = strcspn(v, " \t");
	if (v[n + strspn(v + n, " \t")])
		return -1; /* more than one word */
	if (n == 3 && !strncasecmp(v, "yes", 3))
		return 1;
	if (n == 2 && !strncasecmp(v, "no", 2))
		return 0;
	return -1;
}

/* Messages-Waiting (required) and Voice-Message "new/old" of a message-summary body. */
static bool parse_summary(const char *body, size_t len, struct push_payload *pl)
{
	const char *p = body, *end = body + len;
	bool have_waiting = false;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((eol ? eol : end) - p);
		char line[256];

		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, p, n);
		line[n] = 0;
		line[strcspn(line, "\r")] = 0;
		if (!strncasecmp(line, "Messages-Waiting:", 17)) {
			int yn = yes_no(line + 17);
			if (yn >= 0) {
				pl->vm_waiting = yn == 1;
				have_waiting = true;
			}
		} else if (!strncasecmp(line, "Voice-Message:", 14)) {
			const char *s = line + 14;
			int nw = count_at(&s), old = -1;

			if (nw >= 0 && *s == '/') {
				s++;
				old = count_at(&s);
			}
			if (old >= 0) {
				pl->vm_new = nw;
				pl->vm_old = old;
			}
		}
		p = eol ? eol + 1 : end;
	}
	return have_waiting;
}

bool mwi_wanted(const struct router *rt, const sip_t *sip)
{
	const sip_event_t *ev = sip->sip_event;

	return rt->push && rt->cfg->push.voicemail_push &&
	       sip->sip_request->rq_method == sip_method_notify &&
	       !(sip->sip_to && sip->sip_to->a_tag) && ev && ev->o_type &&
	       !strcasecmp(ev->o_type, "message-summary") && sip->sip_payload;
}

/* Answer once a push was accepted, or once nothing is left to wait for. */
static void mwi_finish(struct mwi *m)
{
	if (m->starting || m->closing || proxy_txn_answered(m->t))
		return;
	if (m->pushes_ok) {
		m->closing = true;
		proxy_txn_reply(m->t, SIP_200_OK, TAG_END());
		return;
	}
	if (m->pushes_pending || proxy_txn_active_branches(m->t) > 0)
		return;
	m->closing = true;
	proxy_txn_close(m->t, SIP_480_TEMPORARILY_UNAVAILABLE); /* the best failure, or 480 */
}

static void push_done(void *ctx, enum push_result res, int http_status, const char *reason,
		      double latency_ms)
{
	struct mwi_dev *d = ctx;
	struct mwi *m = d->m;

	push_req_detach(d->push);
	d->push = NULL;
	m->pushes_pending--;
	if (res == PUSH_OK)
		m->pushes_ok++;
	else
		log_info("voicemail push for %s (binding %s) failed: %s%s%s", m->to, d->id,
			 push_result_name(res), reason ? " " : "", reason ? reason : "");
	mwi_finish(m);
}

static void push_dev(struct mwi *m, struct mwi_dev *d)
{
	struct binding *b = registrar_find_id(m->rt->reg, d->id);
	const struct pn_identity *pn = b ? binding_pn(b) : NULL;

	if (!pn || d->pushed)
		return;
	d->pushed = true;
	if (push_send(m->rt->push, pn, PUSH_VOICEMAIL, &m->pl, MWI_PUSH_DEADLINE_MS, push_done, d,
		      &d->push) == 0) {
		m->pushes_pending++;
		log_info("voicemail for %s: %s waiting, %d new: pushed binding %s", m->to,
			 m->pl.vm_waiting ? "messages" : "none", m->pl.vm_new, d->id);
	} else {
		d->push = NULL;
	}
}

static struct mwi_dev *dev_of_branch(struct mwi *m, int branch)
{
	for (int i = 0; i < m->n; i++)
		if (m->dev[i].branch == branch)
			return &m->dev[i];
	return NULL;
}

/* A failed branch to a device with push parameters becomes a push (its answer stays the fallback). */
static void after_response(void *ctx, struct proxy_txn *t, int branch, int status)
{
	struct mwi *m = ctx;
	struct mwi_dev *d = dev_of_branch(m, branch);

	if (branch >= 0 && branch < MAX_FORK && status >= 200)
		m->branch_status[branch] = status;
	if (status >= 300 && d && d->pushable)
		push_dev(m, d);
	mwi_finish(m);
}

static void on_done(void *ctx, struct proxy_txn *t)
{
	struct mwi *m = ctx;

	for (int i = 0; i < m->n; i++)
		push_req_detach(m->dev[i].push);
	free(m);
}

static const struct proxy_ops mwi_ops = {
	.after_response = after_response,
	.on_done = on_done,
};

void mwi_start(struct router *rt, struct proxy_txn *t, const sip_t *sip, struct binding **list,
	       size_t n, bool restore_uri, const char *in_proto)
{
	struct mwi *m = calloc(1, sizeof(*m));

	if (!m) {
		proxy_txn_reply(t, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
		return;
	}
	if (!parse_summary(sip->sip_payload->pl_data, sip->sip_payload->pl_len, &m->pl)) {
		free(m);
		proxy_txn_reply(t, 400, "Bad message-summary (no Messages-Waiting)", TAG_END());
		return;
	}
	m->rt = rt;
	m->t = t;
	if (sip->sip_from)
		url_e(m->from, sizeof(m->from), sip->sip_from->a_url);
	snprintf(m->to, sizeof(m->to), "%s", n ? binding_aor(list[0]) : "?");
	m->pl.from_uri = m->from;
	m->pl.to_uri = m->to;
	if (sip->sip_call_id)
		snprintf(m->call_id, sizeof(m->call_id), "%s", sip->sip_call_id->i_id);
	m->pl.call_id = m->call_id;
	proxy_txn_set_ops(t, &mwi_ops, m);
	m->starting = true;
	for (size_t i = 0; i < n && m->n < MAX_FORK; i++) {
		struct mwi_dev *d = &m->dev[m->n++];
		msg_t *copy;

		d->m = m;
		d->branch = -1;
		snprintf(d->id, sizeof(d->id), "%s", binding_id(list[i]));
		d->pushable = binding_pn(list[i]) != NULL;
		if (router_can_reach(rt, list[i]) && (copy = proxy_txn_copy_request(t)))
			d->branch = router_fork_binding(rt, t, copy, list[i], restore_uri, in_proto);
		/* no flow, UDP (nothing says it is awake), or a branch that already
		 * failed while it was being sent (after_response came first) */
		if (d->pushable &&
		    (d->branch < 0 || !strcmp(sip_uri_proto(binding_received(list[i])), "udp") ||
		     (d->branch < MAX_FORK && m->branch_status[d->branch] >= 300)))
			push_dev(m, d);
	}
	m->starting = false;
	mwi_finish(m);
}
