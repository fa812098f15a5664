/* SPDX-License-Identifier: MIT */
/*
 * The REGISTER protocol (SPEC §4.2). Every Contact is parsed and checked
 * first (push parameters, expiry); a bad one refuses the whole request and
 * stores nothing. Standalone mode then applies the bindings and answers;
 * gateway mode forwards the REGISTER upstream with Path and with each
 * Contact's push parameters replaced by the binding id, and applies the
 * bindings only when upstream answers 2xx (with the expiry it granted),
 * restoring the client's own Contacts in the relayed answer.
 */
#include "registrar_int.h"

#include <stdio.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/url.h>

#include "sipwake/log.h"
#include "sipwake/utf8.h"
#include "sipwake/proxy.h"
#include "sipwake/stats.h"

#define DEFAULT_EXPIRES 3600

struct reg_contact {
	char *uri;      /* as the client sent it */
	char *instance; /* +sip.instance value, or NULL */
	struct pn_identity pn;
	char *pn_key;
	char ckey[320];
	int expires; /* after policy */
	int q;
	char id[BINDING_ID_LEN + 1];
	char *old_uri; /* the matched binding's Contact when the device moved */
};

struct reg_req {
	struct registrar *r;
	struct proxy_txn *t;
	bool retried; /* already re-sent without Path (masquerading) */
	char aor[256];
	char received[160];
	tport_t *tp;
	char *call_id;
	uint32_t cseq;
	char *user_agent;
	bool wildcard;
	bool passthrough; /* a downstream push server handles it: forward unchanged */
	int n;
	int cap; /* room in c[]: the Contacts the request has, at most REGISTRAR_MAX_CONTACTS */
	struct reg_contact c[];
};

/* A request's state, with room for the Contacts it carries (not 32 of 470 bytes each). */
static struct reg_req *reg_req_new(struct registrar *r, const sip_t *sip)
{
	int cap = 0;
	struct reg_req *q;

	for (const sip_contact_t *m = sip->sip_contact; m && cap < REGISTRAR_MAX_CONTACTS;
	     m = m->m_next)
		cap++;
	q = calloc(1, sizeof(*q) + (size_t)(cap ? cap : 1) * sizeof(q->c[0]));
	if (q) {
		q->r = r;
		q->cap = cap;
	}
	return q;
}

static void reg_req_free(struct reg_req *q)
{
	if (!q)
		return;
	for (int i = 0; i < q->n; i++) {
		free(q->c[i].uri);
		free(q->c[i].instance);
		free(q->c[i].pn_key);
		free(q->c[i].old_uri);
		pn_identity_cleanup(&q->c[i].pn);
	}
	if (q->tp)
		tport_unref(q->tp);
	free(q->call_id);
	free(q->user_agent);
	free(q);
}

/* A delta-seconds value (RFC 3261 25.1: any digits); beyond INT_MAX means "as long as allowed". */
static int expires_value(const char *s)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || v > INT_MAX)
		return INT_MAX;
	return (int)v;
}

/* The expiry a contact asks for, -1 when it is not a number. */
static int requested_expires(const sip_t *sip, const sip_contact_t *m)
{
	if (m->m_expires)
		return expires_value(m->m_expires);
	if (sip->sip_expires)
		return sip->sip_expires->ex_delta > INT_MAX ? INT_MAX : (int)sip->sip_expires->ex_delta;
	return DEFAULT_EXPIRES;
}

/*
 * A q-value (RFC 3261 25.1: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]) in
 * thousandths, -1 if it is none (1e999, nan, 2, -0.5); digits past the
 * third are ignored.
 */
static int q_value(const char *s)
{
	int q = 0, scale = 100;

	if (s[0] != '0' && s[0] != '1')
		return -1;
	q = (s[0] - '0') * 1000;
	s++;
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, scale /= 10)
			q += (*s - '0') * scale; /* digits past the third add 0 */
	}
	if (*s || q > 1000)
		return -1;
	return q;
}

static bool provider_configured(struct registrar *r, const struct pn_identity *pn)
{
	if ((unsigned)pn->provider >= PN_PROVIDER_COUNT || !r->pns[pn->provider])
		return false;
	/* An operator's service answers to its own pn-provider name only. */
	return pn->provider != PN_HTTP || (pn->service && !strcasecmp(pn->service, r->service));
}

/*
 * True when a proxy between the client and us already handles the push
 * (RFC 8599 9): the REGISTER carries Feature-Caps with +sip.pns.
 */
static bool downstream_pns(const sip_t *sip)
{
	for (const sip_unknown_t *u = sip->sip_unknown; u; u = u->un_next)
		if (u->un_name && !strcasecmp(u->un_name, "Feature-Caps") && u->un_value &&
		    strcasestr(u->un_value, "+sip.pns"))
			return true;
	return false;
}

/*
 * Parse and check the REGISTER. On error returns a status and fills
 * phrase/warning; 0 when q is ready.
 */
static int parse_register(struct registrar *r, const sip_t *sip, struct reg_req *q,
			  char *phrase, size_t plen, int *min_expires)
{
	const struct sw_config *cfg = r->cfg;

	if (!sip->sip_to || sip_aor_of(sip->sip_to->a_url, q->aor, sizeof(q->aor)) < 0) {
		snprintf(phrase, plen, "Bad To header");
		return 400;
	}
	if (sip->sip_to->a_url->url_type != url_sip && sip->sip_to->a_url->url_type != url_sips) {
		snprintf(phrase, plen, "Unsupported URI Scheme");
		return 416;
	}
	if (!sip_agent_serves_domain(r->sa, sip->sip_to->a_url->url_host)) {
		snprintf(phrase, plen, "Domain not served here");
		return 403;
	}
	if (!utf8_valid(q->aor) || (sip->sip_call_id && !utf8_valid(sip->sip_call_id->i_id))) {
		/* what is stored must be text (a cluster keeps it as JSON) */
		snprintf(phrase, plen, "To or Call-ID is not UTF-8");
		return 400;
	}
	q->call_id = sip->sip_call_id ? strdup(sip->sip_call_id->i_id) : NULL;
	q->cseq = sip->sip_cseq ? sip->sip_cseq->cs_seq : 0;
	if (sip->sip_user_agent && sip->sip_user_agent->g_string)
		q->user_agent = utf8_clip(sip->sip_user_agent->g_string, 200, NULL);

	for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
		struct reg_contact *c;
		const char *params = m->m_url->url_params;
		const char *inst;
		char err[200];
		int st;

		if (m->m_url->url_type == url_any) {
			if (sip->sip_contact->m_next || !sip->sip_expires ||
			    sip->sip_expires->ex_delta != 0) {
				snprintf(phrase, plen, "Wildcard Contact needs Expires: 0 alone");
				return 400;
			}
			q->wildcard = true;
			return 0;
		}
		if (q->n >= q->cap || q->n >= cfg->registrar.max_contacts_per_aor) {
			snprintf(phrase, plen, "Too many contacts");
			return 403;
		}
		if (m->m_url->url_type != url_sip && m->m_url->url_type != url_sips) {
			snprintf(phrase, plen, "Unsupported URI Scheme in Contact");
			return 416;
		}
		c = &q->c[q->n++];
		c->uri = url_as_string(NULL, m->m_url);
		if (!c->uri) {
			snprintf(phrase, plen, "Out of memory");
			return 500;
		}
		/* url_as_string allocates from the NULL home = malloc */
		if (strlen(c->uri) > REGISTRAR_MAX_CONTACT_LEN) {
			snprintf(phrase, plen, "Contact too long");
			return 400;
		}
		if (registrar_contact_key(m->m_url, c->ckey, sizeof(c->ckey)) < 0) {
			snprintf(phrase, plen, "Bad Contact");
			return 400;
		}
		inst = msg_params_find(m->m_params, "+sip.instance=");
		if (inst)
			c->instance = strndup(inst, 300);
		if (!utf8_valid(c->uri) || (c->instance && !utf8_valid(c->instance))) {
			snprintf(phrase, plen, "Contact is not UTF-8");
			return 400;
		}
		c->q = m->m_q ? q_value(m->m_q) : 1000;
		if (c->q < 0) {
			snprintf(phrase, plen, "Bad q-value in Contact");
			return 400;
		}

		st = params ? (int)pn_parse(params, &c->pn, err, sizeof(err)) : PN_PARSE_NONE;
		if (st == PN_PARSE_BAD) {
			snprintf(phrase, plen, "Bad push parameter: %s", err);
			return 400;
		}
		if (st == PN_PARSE_UNSUPPORTED ||
		    (st == PN_PARSE_OK && !provider_configured(r, &c->pn))) {
			if (!config_standalone(cfg) && downstream_pns(sip)) {
				/* Not ours to push (RFC 8599 9): upstream gets it as it is. */
				q->passthrough = true;
				return 0;
			}
			snprintf(phrase, plen, "Push Notification Service Not Supported");
			return 555;
		}
		if (st == PN_PARSE_OK && c->pn.provider == PN_WEBPUSH &&
		    !pn_endpoint_host_allowed(c->pn.token, cfg->push.webpush.allowed_hosts)) {
			/* sipwake would POST to whatever the client names: the operator says where */
			snprintf(phrase, plen, "Push Service Not Allowed (pn-prid: the endpoint's host is "
					       "not in push.webpush.allowed_hosts)");
			return 403;
		}
		if (st == PN_PARSE_OK)
			c->pn_key = pn_identity_key(&c->pn);

		c->expires = requested_expires(sip, m);
		if (c->expires < 0) {
			snprintf(phrase, plen, "Bad expires parameter in Contact");
			return 400;
		}
		if (c->expires > 0 && c->expires < cfg->registrar.min_expires) {
			*min_expires = cfg->registrar.min_expires;
			snprintf(phrase, plen, "Interval Too Brief");
			return 423;
		}
		if (st == PN_PARSE_OK) {
			if (c->expires > cfg->registrar.push_max_expires)
				c->expires = cfg->registrar.push_max_expires;
		} else if (c->expires > cfg->registrar.max_expires) {
			c->expires = cfg->registrar.max_expires;
		}
	}
	return 0;
}

/*
 * Apply one contact with the granted expiry; returns the binding or NULL.
 * up_granted > 0: upstream granted that much less, and sipwake keeps the
 * upstream registration alive (keepalive.c).
 */
static struct binding *apply_contact(struct registrar *r, struct reg_req *q, struct reg_contact *c,
				     int granted, int up_granted, int64_t now)
{
	struct binding *old = registrar_find_id(r, c->id);
	struct binding *b;
	struct binding_data d = {
		.id = c->id,
		.aor = q->aor,
		.contact = c->uri,
		.instance = c->instance,
		.pn = c->pn_key ? &c->pn : NULL,
		.received = q->received,
		.call_id = q->call_id,
		.cseq = q->cseq,
		.user_agent = q->user_agent,
		.q = c->q,
		.expires = now + granted,
		.updated = now,
		.tp = q->tp,
		.set_flow = true,
	};

	if (!old)
		old = registrar_match(r, q->aor, c->instance, c->pn_key ? &c->pn : NULL, c->ckey);
	if (granted <= 0) {
		if (old) {
			keepalive_device_gone(old); /* the device's own REGISTER said so */
			registrar_remove(r, old, "unregistered");
		}
		return NULL;
	}
	if (old)
		d.id = old->id;
	b = registrar_upsert(r, old, &d);
	if (!b) {
		log_error("cannot store binding for %s", q->aor);
		return NULL;
	}
	keepalive_bound(r, b, up_granted, now);
	if (binding_save(r, b) < 0)
		log_error("binding %s of %s not persisted", b->id, b->aor);
	registrar_enforce_limit(r, q->aor, b);
	if (log_enabled(SW_LOG_INFO)) {
		char tok[LOG_TOKEN_BUFSZ];
		char up[48] = "";
		if (up_granted > 0)
			snprintf(up, sizeof(up), " (upstream %ds, kept alive)", up_granted);
		log_info("%s %s of %s for %ds%s via %s%s%s %s", old ? "refreshed" : "bound", b->id,
			 q->aor, granted, up, q->received, c->pn_key ? ", push " : "",
			 c->pn_key ? pn_provider_name(&c->pn) : "",
			 c->pn_key ? log_token(c->pn.token ? c->pn.token : c->pn.voip_token, tok)
				   : "");
	}
	registrar_notify(r, b, REGISTRAR_BOUND);
	return b;
}

/*
 * "Feature-Caps: *;+sip.pns="apns";+sip.pnsreg="120"" for the idx-th
 * provider that can send; Web Push adds the key its pushes are signed with
 * (+sip.vapid of RFC 8599). -1 past the last one.
 */
static int feature_caps(struct registrar *r, char *buf, size_t len, int idx)
{
	const char *const names[PN_PROVIDER_COUNT] = {NULL, "apns", "fcm", "webpush", r->service};
	int prov, k = 0;

	for (prov = PN_APNS; prov < PN_PROVIDER_COUNT; prov++)
		if (r->pns[prov] && k++ == idx)
			break;
	if (prov == PN_PROVIDER_COUNT)
		return -1;
	if (prov == PN_WEBPUSH && r->vapid_public)
		snprintf(buf, len, "Feature-Caps: *;+sip.pns=\"webpush\";+sip.vapid=\"%s\";"
			 "+sip.pnsreg=\"%d\"", r->vapid_public, r->cfg->push.wakeup_before_expiry);
	else
		snprintf(buf, len, "Feature-Caps: *;+sip.pns=\"%s\";+sip.pnsreg=\"%d\"", names[prov],
			 r->cfg->push.wakeup_before_expiry);
	return 0;
}

/*
 * Add the Feature-Caps headers. msg_header_insert keeps them in front of
 * the body separator even in a response that was parsed off the wire (an
 * appended header would land after the body and corrupt a TCP stream).
 */
static void add_feature_caps(struct registrar *r, msg_t *msg, sip_t *sip)
{
	char fc[256];

	for (int i = 0; feature_caps(r, fc, sizeof(fc), i) == 0; i++) {
		msg_header_t *h = msg_header_make(msg_home(msg), sip_unknown_class, fc);
		if (h)
			msg_header_insert(msg, (msg_pub_t *)sip, h);
	}
}

/* Standalone: apply now and answer with the AOR's current contacts. */
static int register_local(struct registrar *r, nta_incoming_t *irq, struct reg_req *q)
{
	int64_t now = time(NULL);
	su_home_t home[1] = {SU_HOME_INIT(home)};
	struct binding *list[REGISTRAR_MAX_CONTACTS];
	size_t n;
	char *contacts = NULL;
	msg_t *resp;
	sip_t *rsip;

	/* RFC 3261 10.3 step 7: a binding from this Call-ID changes only with a higher CSeq. */
	for (int i = 0; !q->wildcard && i < q->n; i++) {
		struct reg_contact *c = &q->c[i];
		struct binding *old = registrar_match(r, q->aor, c->instance, c->pn_key ? &c->pn : NULL, c->ckey);
		if (old && old->call_id && q->call_id && !strcmp(old->call_id, q->call_id) &&
		    q->cseq <= old->cseq) {
			log_info("REGISTER for %s refused: CSeq %u not above the binding's %u", q->aor,
				 q->cseq, old->cseq);
			nta_incoming_treply(irq, 400, "CSeq Out of Order", TAG_END());
			stats_sip_response(400);
			nta_incoming_destroy(irq);
			return 0;
		}
	}
	if (q->wildcard) {
		registrar_remove_aor(r, q->aor, "unregistered (*)");
	} else {
		for (int i = 0; i < q->n; i++)
			apply_contact(r, q, &q->c[i], q->c[i].expires, 0, now);
	}

	n = registrar_lookup(r, q->aor, list, REGISTRAR_MAX_CONTACTS);
	for (size_t i = 0; i < n; i++) {
		const struct binding *b = list[i];
		contacts = su_sprintf(home, "%s%s<%s>;expires=%lld%s%s", contacts ? contacts : "",
				      contacts ? ", " : "", b->contact,
				      (long long)(b->expires > now ? b->expires - now : 0),
				      b->instance ? ";+sip.instance=" : "",
				      b->instance ? b->instance : "");
	}
	resp = nta_incoming_create_response(irq, SIP_200_OK);
	rsip = resp ? sip_object(resp) : NULL;
	if (!rsip) {
		su_home_deinit(home);
		nta_incoming_treply(irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
		nta_incoming_destroy(irq);
		return 0;
	}
	if (contacts)
		sip_add_tl(resp, rsip, SIPTAG_CONTACT_STR(contacts), TAG_END());
	add_feature_caps(r, resp, rsip);
	nta_incoming_complete_response(irq, resp, SIP_200_OK, TAG_END());
	/* Acknowledged (and counted) only once the bindings are in the store (SPEC 6). */
	registrar_reply_after_commit(r, NULL, irq, resp);
	su_home_deinit(home);
	return 0;
}

static struct reg_contact *find_pending(struct reg_req *q, const char *id)
{
	for (int i = 0; i < q->n; i++)
		if (!strcmp(q->c[i].id, id))
			return &q->c[i];
	return NULL;
}

static int send_upstream(struct reg_req *q, bool masquerade);

static bool path_rejected(const sip_t *sip)
{
	return sip->sip_status->st_status == 420 && sip->sip_unsupported &&
	       sip_has_feature(sip->sip_unsupported, "path");
}

/* Gateway: upstream answered. On 2xx, bind what it granted and restore Contacts. */
static int upstream_response(void *ctx, struct proxy_txn *t, int branch, msg_t *msg, sip_t *sip)
{
	struct reg_req *q = ctx;
	struct registrar *r = q->r;
	int status = sip->sip_status->st_status;
	int64_t now = time(NULL);
	char seen[REGISTRAR_MAX_CONTACTS] = {0};

	if (path_rejected(sip) && !q->retried) {
		if (!r->masquerade)
			log_warn("upstream %s rejects Path (420): Contacts are now rewritten to "
				 "sipwake's own address (masquerading)",
				 r->cfg->upstream.uri);
		r->masquerade = true;
		q->retried = true;
		if (send_upstream(q, true) >= 0)
			return 1; /* the retry answers the client */
		return 0;
	}
	if (status >= 200)
		stats_count("sipwake_register_total", "result", status < 300 ? "ok"
				: (status == 401 || status == 407) ? "challenged" : "failed", NULL);
	if (status < 200 || status >= 300)
		return 0;
	if (q->wildcard) {
		struct binding *list[REGISTRAR_MAX_CONTACTS];
		size_t n = registrar_lookup(r, q->aor, list, REGISTRAR_MAX_CONTACTS);

		for (size_t i = 0; i < n; i++)
			keepalive_device_gone(list[i]);
		registrar_remove_aor(r, q->aor, "unregistered (*)");
	} else {
		for (sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
			char id[BINDING_ID_LEN + 1];
			struct reg_contact *c;
			isize_t l;
			int granted, up_granted = 0;
			url_t *orig;

			if (!m->m_url->url_params ||
			    (l = url_param(m->m_url->url_params, REGISTRAR_ID_PARAM, id, sizeof(id))) == 0)
				continue;
			c = find_pending(q, id);
			if (!c)
				continue;
			seen[c - q->c] = 1;
			granted = requested_expires(sip, m);
			if (granted < 0 || (!m->m_expires && !sip->sip_expires))
				granted = c->expires;
			if (granted > 0 && c->expires > granted && keepalive_wanted(r, c->pn_key)) {
				/* The device keeps what it asked for; sipwake refreshes upstream. */
				up_granted = granted;
				granted = c->expires;
			}
			apply_contact(r, q, c, granted, up_granted, now);
			/* The client must see its own Contact again. */
			orig = url_make(msg_home(msg), c->uri);
			if (orig) {
				*m->m_url = *orig;
				msg_fragment_clear(m->m_common);
			}
			if (up_granted) {
				char e[32];
				snprintf(e, sizeof(e), "expires=%d", granted);
				msg_header_remove_param(m->m_common, "expires");
				/* the header keeps the pointer: the string must live in the message */
				msg_header_add_param(msg_home(msg), m->m_common,
						     su_strdup(msg_home(msg), e));
				msg_fragment_clear(m->m_common);
			}
		}
		for (int i = 0; i < q->n; i++)
			if (!seen[i] && q->c[i].expires == 0)
				apply_contact(r, q, &q->c[i], 0, 0, now);
	}
	add_feature_caps(r, msg, sip);
	/* Relayed only once the bindings are in the store (SPEC 6). */
	registrar_reply_after_commit(r, t, NULL, msg);
	return PROXY_DEFER;
}

static void upstream_done(void *ctx, struct proxy_txn *t)
{
	reg_req_free(ctx);
}

static const struct proxy_ops register_ops = {
	.on_response = upstream_response,
	.on_done = upstream_done,
};

void registrar_path(struct registrar *r, char *buf, size_t len)
{
	snprintf(buf, len, "<%s;lr>", sip_agent_uri(r->sa, sip_uri_proto(r->cfg->upstream.uri)));
}

int registrar_upstream_contact(struct registrar *r, su_home_t *home, sip_contact_t *m,
			       const char *id, bool masquerade, const char *proto)
{
	const char *orig = m->m_url->url_params;
	char *kept = NULL;
	char *params;
	url_t *u;

	if (masquerade)
		orig = NULL; /* the client's transport etc. do not apply to our address */
	else if (r->cfg->upstream.hide_push_params && orig)
		orig = kept = pn_strip_params(orig);
	params = su_sprintf(home, "%s%s%s=%s", orig && orig[0] ? orig : "",
			    orig && orig[0] ? ";" : "", REGISTRAR_ID_PARAM, id);
	free(kept);
	if (masquerade) {
		u = url_make(home, sip_agent_uri(r->sa, proto));
		if (u) {
			u->url_user = m->m_url->url_user ? su_strdup(home, m->m_url->url_user)
							: "sipwake";
			params = su_sprintf(home, "%s;%s", u->url_params ? u->url_params : "", params);
		}
	} else {
		u = url_hdup(home, m->m_url);
	}
	if (!u || !params)
		return -1;
	u->url_params = params[0] == ';' ? params + 1 : params;
	*m->m_url = *u;
	msg_fragment_clear(m->m_common);
	return 0;
}

/*
 * A device that comes back from another address (or with another instance
 * id) keeps its binding, but upstream knew it under its old Contact: send
 * that one too, with expires=0, so that upstream never keeps a duplicate.
 */
static int retire_moved_contacts(struct registrar *r, struct reg_req *q, msg_t *fwd, sip_t *sip,
				 bool masquerade, const char *proto)
{
	su_home_t *home = msg_home(fwd);

	for (int i = 0; i < q->n; i++) {
		struct reg_contact *c = &q->c[i];
		sip_contact_t *old;
		char *olds, *news;
		bool same = true;

		if (!c->old_uri)
			continue;
		old = sip_contact_make(home, su_sprintf(home, "<%s>;expires=0", c->old_uri));
		if (!old || registrar_upstream_contact(r, home, old, c->id, masquerade, proto) < 0)
			return -1;
		/* Same upstream Contact after rewriting (e.g. masquerading): nothing to retire. */
		olds = url_as_string(home, old->m_url);
		for (sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
			news = url_as_string(home, m->m_url);
			if (olds && news && !strcmp(olds, news))
				break;
			if (!m->m_next)
				same = false;
		}
		if (!same)
			msg_header_insert(fwd, (msg_pub_t *)sip, (msg_header_t *)old);
	}
	return 0;
}

/* Send the REGISTER upstream (again, when masquerading after a 420). */
static int send_upstream(struct reg_req *q, bool masquerade)
{
	struct registrar *r = q->r;
	struct proxy_txn *t = q->t;
	const char *upstream = r->cfg->upstream.uri;
	const char *proto = sip_uri_proto(upstream);
	msg_t *fwd = proxy_txn_copy_request(t);
	sip_t *sip;

	if (!fwd)
		return -1;
	sip = sip_object(fwd);
	if (!q->wildcard) {
		int i = 0;
		for (sip_contact_t *m = sip->sip_contact; m && i < q->n; m = m->m_next, i++)
			if (registrar_upstream_contact(r, msg_home(fwd), m, q->c[i].id, masquerade,
						       proto) < 0) {
				msg_destroy(fwd);
				return -1;
			}
	}
	if (!q->wildcard && retire_moved_contacts(r, q, fwd, sip, masquerade, proto) < 0) {
		msg_destroy(fwd);
		return -1;
	}
	if (!masquerade) {
		char path[200];
		sip_path_t *p;

		registrar_path(r, path, sizeof(path));
		p = sip_path_make(msg_home(fwd), path);
		if (p)
			msg_header_insert(fwd, (msg_pub_t *)sip, (msg_header_t *)p);
		if (!sip_has_feature(sip->sip_supported, "path"))
			sip_add_tl(fwd, sip, SIPTAG_SUPPORTED_STR("path"), TAG_END());
	}
	return proxy_txn_fork(t, fwd, upstream, NULL);
}

static int register_upstream(struct registrar *r, nta_incoming_t *irq, struct reg_req *q)
{
	q->t = proxy_txn_new(r->sa, irq, &register_ops, q);
	if (!q->t) {
		reg_req_free(q);
		return 500;
	}
	q->retried = r->masquerade;
	if (send_upstream(q, r->masquerade) < 0) {
		proxy_txn_reply(q->t, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
		return 0;
	}
	proxy_txn_seal(q->t, SIP_503_SERVICE_UNAVAILABLE);
	return 0;
}

#define STORE_DOWN_RETRY_AFTER "10" /* s a phone waits while the cluster's Redis is away */

int registrar_handle(struct registrar *r, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
	struct reg_req *q = reg_req_new(r, sip);
	char phrase[256] = "";
	int min_expires = 0, added = 0;
	int status;

	if (!q)
		return 500;
	status = parse_register(r, sip, q, phrase, sizeof(phrase), &min_expires);
	if (status) {
		char warn[320];
		log_info("REGISTER for %s refused: %d %s", q->aor[0] ? q->aor : "?", status, phrase);
		snprintf(warn, sizeof(warn), "399 sipwake \"%s\"", phrase);
		stats_sip_response(status);
		stats_count("sipwake_register_total", "result", "refused", NULL);
		if (status == 423) {
			char me[32];
			snprintf(me, sizeof(me), "%d", min_expires);
			nta_incoming_treply(irq, status, phrase, SIPTAG_MIN_EXPIRES_STR(me), TAG_END());
		} else if (status == 400 || status == 555 || status == 403) {
			nta_incoming_treply(irq, status, phrase, SIPTAG_WARNING_STR(warn), TAG_END());
		} else {
			nta_incoming_treply(irq, status, phrase, TAG_END());
		}
		nta_incoming_destroy(irq);
		reg_req_free(q);
		return 0;
	}
	if (q->passthrough) {
		/* Plain proxying: no binding, no Path, Contacts untouched. */
		struct proxy_txn *t = proxy_txn_new(r->sa, irq, NULL, NULL);
		msg_t *fwd = t ? proxy_txn_copy_request(t) : NULL;

		reg_req_free(q);
		if (!t)
			return 500;
		if (!fwd) {
			proxy_txn_reply(t, SIP_483_TOO_MANY_HOPS, TAG_END());
			return 0;
		}
		log_info("REGISTER for %s passed upstream unchanged: a downstream push server "
			 "handles its push",
			 sip->sip_to->a_url->url_user ? sip->sip_to->a_url->url_user : "?");
		proxy_txn_fork(t, fwd, r->cfg->upstream.uri, NULL);
		proxy_txn_seal(t, SIP_503_SERVICE_UNAVAILABLE);
		return 0;
	}
	if (r->st && !store_writable(r->st)) {
		/* a cluster's Redis is unreachable: nothing could be kept */
		stats_count("sipwake_register_total", "result", "store_unavailable", NULL);
		nta_incoming_treply(irq, 503, "Store Unavailable",
				    SIPTAG_RETRY_AFTER_STR(STORE_DOWN_RETRY_AFTER), TAG_END());
		stats_sip_response(503);
		nta_incoming_destroy(irq);
		reg_req_free(q);
		return 0;
	}
	q->tp = nta_incoming_transport(sip_agent_nta(r->sa), irq, NULL);
	if (sip_source_uri(msg, q->tp, q->received, sizeof(q->received)) < 0)
		snprintf(q->received, sizeof(q->received), "sip:0.0.0.0");
	/* Each contact keeps its binding's id, or gets a new one. */
	for (int i = 0; i < q->n; i++) {
		struct reg_contact *c = &q->c[i];
		struct binding *old = registrar_match(r, q->aor, c->instance, c->pn_key ? &c->pn : NULL, c->ckey);
		if (old) {
			snprintf(c->id, sizeof(c->id), "%s", binding_id(old));
			if (strcmp(binding_contact(old), c->uri) != 0)
				c->old_uri = strdup(binding_contact(old));
		} else {
			registrar_new_id(c->id);
			if (c->expires > 0)
				added++;
		}
	}
	if (added && r->count + (size_t)added > (size_t)r->cfg->registrar.max_bindings) {
		if (time(NULL) - r->full_warned >= 60) {
			r->full_warned = time(NULL);
			log_warn("registrar.max_bindings (%d) reached: new registrations get 503",
				 r->cfg->registrar.max_bindings);
		}
		stats_count("sipwake_register_total", "result", "full", NULL);
		nta_incoming_treply(irq, 503, "Registrar Full", SIPTAG_RETRY_AFTER_STR("60"), TAG_END());
		stats_sip_response(503);
		nta_incoming_destroy(irq);
		reg_req_free(q);
		return 0;
	}
	if (config_standalone(r->cfg)) {
		register_local(r, irq, q);
		reg_req_free(q);
		return 0;
	}
	return register_upstream(r, irq, q);
}
