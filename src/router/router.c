/* SPDX-License-Identifier: MIT */
/*
 * Request routing for everything but REGISTER (SPEC §4.3, §4.5). A target
 * is chosen on a private copy of the request: the next Route when the
 * request was loose-routed through us to another hop, the binding named by
 * the id parameter upstream got in the Contact (via Path), the binding
 * whose Contact matches the request URI (in-dialog requests to a client),
 * the AOR's bindings for our own domains in standalone mode, upstream for
 * a client's requests in gateway mode. Requests to a client go over the
 * flow it registered on. Anything else is refused with 403: no open relay.
 */
#include "router_int.h"

#include <netdb.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/url.h>

#include "sipwake/auth.h"
#include "sipwake/log.h"
#include "sipwake/stats.h"

/* Resolve upstream's host once at start, to recognise requests it sends. */
static void resolve_upstream(struct router *rt)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	url_t *u;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
	struct addrinfo *res = NULL;

	if (config_standalone(rt->cfg))
		return;
	u = url_make(home, rt->cfg->upstream.uri);
	if (u && u->url_host) {
		char host[256];
		snprintf(host, sizeof(host), "%s", u->url_host);
		if (host[0] == '[') {
			memmove(host, host + 1, strlen(host));
			host[strcspn(host, "]")] = 0;
		}
		if (getaddrinfo(host, NULL, &hints, &res) == 0) {
			for (struct addrinfo *ai = res; ai && rt->n_up < MAX_UPSTREAM_ADDRS;
			     ai = ai->ai_next)
				memcpy(&rt->up[rt->n_up++], ai->ai_addr, ai->ai_addrlen);
			freeaddrinfo(res);
		} else {
			log_warn("cannot resolve upstream host %s now; requests from it are "
				 "recognised by Route only",
				 host);
		}
	}
	rt->up_proto = sip_uri_proto(rt->cfg->upstream.uri);
	su_home_deinit(home);
}

static void on_binding(void *ctx, const struct binding *b, enum registrar_event ev)
{
	struct router *rt = ctx;

	held_on_binding(rt, b, ev);
	deliver_on_binding(rt, b, ev);
	if (ev == REGISTRAR_EXPIRING)
		router_send_wakeup(rt, b);
}

int router_new(struct router **out, struct sip_agent *sa, struct registrar *reg, struct push *push,
	       struct store *st)
{
	struct router *rt = calloc(1, sizeof(*rt));

	*out = NULL;
	if (!rt)
		return -1;
	rt->sa = sa;
	rt->reg = reg;
	rt->push = push;
	rt->st = st;
	rt->cfg = sip_agent_config(sa);
	rt->up_proto = "udp";
	rt->held_by_aor = strmap_new();
	rt->deliveries = strmap_new();
	if (!rt->held_by_aor || !rt->deliveries || ratelimit_init(rt) < 0) {
		router_free(rt);
		return -1;
	}
	if (!st || store_secret(st, "dialog", rt->secret, sizeof(rt->secret)) < 0) {
		/* Dialogs then do not survive a restart; nothing else depends on it. */
		if (getrandom(rt->secret, sizeof(rt->secret), 0) != (ssize_t)sizeof(rt->secret)) {
			router_free(rt);
			return -1;
		}
		log_warn("dialog tokens keyed by a per-process secret (store unavailable)");
	}
	if (config_auth_accounts(rt->cfg)) {
		if (!st || auth_new(&rt->auth, rt->cfg, st) < 0) {
			router_free(rt);
			return -1;
		}
	} else if (config_standalone(rt->cfg)) {
		log_warn("auth.mode = \"none\": anyone who reaches sipwake may register as any "
			 "user and send as them; use it on trusted networks only");
	}
	resolve_upstream(rt);
	registrar_subscribe(reg, on_binding, rt);
	*out = rt;
	return 0;
}

void router_free(struct router *rt)
{
	if (!rt)
		return;
	deliver_free_all(rt);
	ratelimit_cleanup(rt);
	auth_free(rt->auth);
	strmap_free(rt->held_by_aor);
	strmap_free(rt->deliveries);
	free(rt);
}

static bool from_upstream(struct router *rt, msg_t *msg)
{
	su_sockaddr_t su;
	socklen_t len = sizeof(su);

	if (rt->n_up == 0 || msg_get_address(msg, &su, &len) < 0)
		return false;
	for (int i = 0; i < rt->n_up; i++) {
		if (su.su_family != rt->up[i].su_family)
			continue;
		if (su.su_family == AF_INET &&
		    su.su_sin.sin_addr.s_addr == rt->up[i].su_sin.sin_addr.s_addr)
			return true;
		if (su.su_family == AF_INET6 &&
		    !memcmp(&su.su_sin6.sin6_addr, &rt->up[i].su_sin6.sin6_addr, 16))
			return true;
	}
	return false;
}

/* True when msg came from the address binding b registered from. */
static bool from_binding(msg_t *msg, const struct binding *b)
{
	char src[160];
	const char *rcv = binding_received(b);
	size_t len;

	if (!rcv || sip_source_uri(msg, NULL, src, sizeof(src)) < 0)
		return false;
	len = strcspn(src, ";");
	return strncmp(rcv, src, len) == 0 && (rcv[len] == ';' || !rcv[len]);
}

/*
 * The dialog token sipwake puts in its Record-Route towards a client:
 * "<binding id>.<mac>", the MAC an HMAC-SHA256 (installation secret) of the
 * binding id and the dialog's Call-ID, cut to DIALOG_MAC_HEX hex digits. It
 * lets the dialog's peer reach the client over its flow, whatever the
 * client's dialog Contact says, and nobody else: a binding id seen in a
 * Record-Route is worth nothing for another Call-ID.
 */
static void dialog_mac(const struct router *rt, const char *id, const char *call_id,
		       char out[DIALOG_MAC_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char data[512];
	int n = snprintf(data, sizeof(data), "%s|%s", id, call_id ? call_id : "");

	if (n < 0 || (size_t)n >= sizeof(data) ||
	    !HMAC(EVP_sha256(), rt->secret, sizeof(rt->secret), (const unsigned char *)data,
		  (size_t)n, mac, &len) ||
	    len * 2 < DIALOG_MAC_HEX) {
		memset(out, 'x', DIALOG_MAC_HEX); /* never matches a hex MAC */
		out[DIALOG_MAC_HEX] = 0;
		return;
	}
	for (int i = 0; i < DIALOG_MAC_HEX / 2; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[DIALOG_MAC_HEX] = 0;
}

/* The client a valid dialog token in the Routes that name us points to, or NULL. */
static struct binding *dialog_flow(struct router *rt, const sip_t *sip)
{
	char tok[64], want[DIALOG_MAC_HEX + 1];
	char *dot;

	for (const sip_route_t *r = sip->sip_route; r && sip_agent_is_own_uri(rt->sa, r->r_url);
	     r = r->r_next) {
		if (!r->r_url->url_params ||
		    url_param(r->r_url->url_params, DIALOG_PARAM, tok, sizeof(tok)) == 0)
			continue;
		dot = strchr(tok, '.');
		if (!dot || strlen(dot + 1) != DIALOG_MAC_HEX)
			return NULL;
		*dot = 0;
		dialog_mac(rt, tok, sip->sip_call_id ? sip->sip_call_id->i_id : NULL, want);
		if (CRYPTO_memcmp(want, dot + 1, DIALOG_MAC_HEX) != 0)
			return NULL;
		return registrar_find_id(rt->reg, tok);
	}
	return NULL;
}

/*
 * Where a request comes from (SPEC 8), decided once per routed request:
 * upstream's address (up, found by the caller for the rate limit), the
 * address (and port) a binding registered from, or anywhere else.
 */
static enum source classify(struct router *rt, msg_t *msg, bool up)
{
	char src[160];

	if (up)
		return SRC_UPSTREAM;
	if (sip_source_uri(msg, NULL, src, sizeof(src)) == 0 && registrar_find_source(rt->reg, src))
		return SRC_CLIENT;
	return SRC_STRANGER;
}

static int set_request_uri(msg_t *msg, sip_t *sip, const char *uri)
{
	url_t *u = url_make(msg_home(msg), uri);

	if (!u)
		return -1;
	u->url_headers = NULL; /* "?Route=..." in a registered Contact is not ours to obey */
	*sip->sip_request->rq_url = *u;
	msg_fragment_clear(sip->sip_request->rq_common);
	return 0;
}

static bool creates_dialog(const sip_t *sip)
{
	sip_method_t m = sip->sip_request->rq_method;

	if (sip->sip_to && sip->sip_to->a_tag)
		return false;
	return m == sip_method_invite || m == sip_method_subscribe || m == sip_method_refer ||
	       m == sip_method_notify;
}

/*
 * What a target reaches, for the trust policy (SPEC 8). Every routing
 * branch below names one of these; may_reach[] is the only place that says
 * who may have it.
 */
enum reach {
	REACH_NONE,     /* nothing: refused whoever asks */
	REACH_USER,     /* a user of a served domain (its bindings, or upstream for it) */
	REACH_DIALOG,   /* a client over its flow, by a valid dialog token of ours */
	REACH_BINDING,  /* a binding by its address: swb= in the request URI, or its Contact */
	REACH_HOP,      /* another host: a Route left after ours, an in-dialog request URI */
	REACH_OUTBOUND, /* a request outside our domains, sent to upstream (gateway) */
	REACH_COUNT
};

static const bool may_reach[SRC_COUNT][REACH_COUNT] = {
	/*                 NONE   USER  DIALOG BINDING HOP    OUTBOUND */
	[SRC_UPSTREAM] = {false, true, true,  true,   true,  false},
	[SRC_CLIENT] = {false, true, true, true, true, true},
	[SRC_STRANGER] = {false, true, true, false, false, false},
	/* another node of the cluster: the one binding of ours its hop names */
	[SRC_PEER] = {false, false, false, true, false, false},
};

static const char *const source_name[SRC_COUNT] = {"upstream", "client", "stranger", "peer"};

/* Where a request should go, decided on its forwarded copy. */
struct target {
	enum { T_NONE, T_ROUTE, T_UPSTREAM, T_BINDING, T_AOR } kind;
	enum reach reach;
	struct binding *b;
	char aor[256];
	int status; /* for T_NONE */
	const char *phrase;
};

static void refuse(struct target *tg, int status, const char *phrase)
{
	tg->kind = T_NONE;
	tg->status = status;
	tg->phrase = phrase;
}

static void aim(struct target *tg, int kind, enum reach reach, struct binding *b)
{
	tg->kind = kind;
	tg->reach = reach;
	tg->b = b;
}

/* The target a request names, before any trust is applied. */
static void find_target(struct router *rt, msg_t *in, const sip_t *isip, sip_t *fsip,
			struct target *tg, enum source src, const char *hop_id)
{
	const url_t *ruri = fsip->sip_request->rq_url;
	bool had_own_route = isip->sip_route && sip_agent_is_own_uri(rt->sa, isip->sip_route->r_url);
	bool in_dialog = isip->sip_to && isip->sip_to->a_tag;
	char id[32];

	memset(tg, 0, sizeof(*tg));
	if (src == SRC_PEER) {
		/* the binding the hop names, if it is ours: the sender pushes otherwise */
		aim(tg, T_BINDING, REACH_BINDING, registrar_find_id(rt->reg, hop_id));
		if (!tg->b || !binding_local(tg->b) || !binding_reachable(tg->b))
			refuse(tg, 480, "Temporarily Unavailable");
		return;
	}
	if (had_own_route && in_dialog && !fsip->sip_route) {
		struct binding *fb = dialog_flow(rt, isip);
		if (fb && !from_binding(in, fb)) {
			/* Towards the client of this dialog: over its flow, whatever its Contact says. */
			aim(tg, T_BINDING, REACH_DIALOG, fb);
			return;
		}
	}
	if (fsip->sip_route) {
		aim(tg, T_ROUTE, REACH_HOP, NULL);
		return;
	}
	if (ruri->url_params &&
	    url_param(ruri->url_params, REGISTRAR_ID_PARAM, id, sizeof(id)) > 0) {
		aim(tg, T_BINDING, REACH_BINDING, registrar_find_id(rt->reg, id));
		if (!tg->b)
			refuse(tg, 480, "Temporarily Unavailable");
		return;
	}
	if ((tg->b = registrar_find_contact(rt->reg, ruri)) &&
	    (had_own_route || src == SRC_UPSTREAM || sip_agent_is_own_uri(rt->sa, ruri))) {
		aim(tg, T_BINDING, REACH_BINDING, tg->b);
		return;
	}
	tg->b = NULL;
	if (sip_agent_serves_domain(rt->sa, ruri->url_host)) {
		tg->reach = REACH_USER;
		if (!config_standalone(rt->cfg) && src != SRC_UPSTREAM) {
			tg->kind = T_UPSTREAM;
			return;
		}
		if (sip_aor_of(ruri, tg->aor, sizeof(tg->aor)) == 0)
			tg->kind = T_AOR;
		else
			refuse(tg, 404, "Not Found");
		return;
	}
	if (had_own_route && in_dialog) {
		aim(tg, T_ROUTE, REACH_HOP, NULL);
		return;
	}
	if (!config_standalone(rt->cfg)) {
		aim(tg, T_UPSTREAM, REACH_OUTBOUND, NULL); /* upstream decides */
		return;
	}
	refuse(tg, 403, "Relaying denied");
}

/* find_target, then the one trust decision: may this source reach that? */
static void pick_target(struct router *rt, msg_t *in, const sip_t *isip, sip_t *fsip,
			struct target *tg, enum source src, const char *hop_id)
{
	find_target(rt, in, isip, fsip, tg, src, hop_id);
	if (!may_reach[src][tg->reach]) {
		log_debug("%s from a %s refused: it may not reach that target",
			  isip->sip_request->rq_method_name, source_name[src]);
		refuse(tg, 403, "Relaying denied");
	}
}

int router_fork_binding(struct router *rt, struct proxy_txn *t, msg_t *fwd, struct binding *b,
			bool restore_uri, const char *in_proto)
{
	sip_t *fsip = sip_object(fwd);
	const char *hop = router_hop_of(rt, b);
	const char *out_proto = hop ? sip_uri_proto(hop) : sip_uri_proto(binding_received(b));

	if (!hop && !binding_reachable(b)) {
		msg_destroy(fwd);
		return -1;
	}
	if (restore_uri && set_request_uri(fwd, fsip, binding_contact(b)) < 0) {
		msg_destroy(fwd);
		return -1;
	}
	if (creates_dialog(fsip)) {
		char mac[DIALOG_MAC_HEX + 1], token[64];
		dialog_mac(rt, binding_id(b), fsip->sip_call_id ? fsip->sip_call_id->i_id : NULL, mac);
		snprintf(token, sizeof(token), "%s=%s.%s", DIALOG_PARAM, binding_id(b), mac);
		sip_add_record_route(rt->sa, fwd, fsip, in_proto, out_proto, token);
	}
	if (hop) {
		/* another node owns it: that node sends it on the phone's flow */
		if (router_hop_mark(rt, fwd, fsip, b) < 0) {
			msg_destroy(fwd);
			return -1;
		}
		return proxy_txn_fork(t, fwd, hop, NULL);
	}
	return proxy_txn_fork(t, fwd, binding_received(b), binding_tport(b));
}

static int route_request(struct router *rt, nta_incoming_t *irq, msg_t *msg, sip_t *sip,
			 enum source src, const char *hop_id)
{
	struct proxy_txn *t = proxy_txn_new(rt->sa, irq, NULL, NULL);
	tport_t *tp = nta_incoming_transport(sip_agent_nta(rt->sa), irq, NULL);
	const char *in_proto = sip_tport_proto(tp);
	struct target tg;
	msg_t *fwd;
	sip_t *fsip;

	if (tp)
		tport_unref(tp);
	if (!t)
		return 500;
	fwd = proxy_txn_copy_request(t);
	if (!fwd) {
		proxy_txn_reply(t, SIP_483_TOO_MANY_HOPS, TAG_END());
		return 0;
	}
	fsip = sip_object(fwd);
	pick_target(rt, msg, sip, fsip, &tg, src, hop_id);
	if (src == SRC_PEER && tg.kind == T_BINDING) {
		/* a peer's hop: on to the phone's flow as it is (the peer holds,
		 * pushes and record-routes) */
		proxy_txn_fork(t, fwd, binding_received(tg.b), binding_tport(tg.b));
		proxy_txn_seal(t, SIP_408_REQUEST_TIMEOUT);
		return 0;
	}
	switch (tg.kind) {
	case T_NONE:
		msg_destroy(fwd);
		proxy_txn_reply(t, tg.status, tg.phrase, TAG_END());
		return 0;
	case T_ROUTE:
		proxy_txn_fork(t, fwd, NULL, NULL);
		break;
	case T_UPSTREAM:
		if (creates_dialog(fsip))
			sip_add_record_route(rt->sa, fwd, fsip, in_proto, rt->up_proto, NULL);
		proxy_txn_fork(t, fwd, rt->cfg->upstream.uri, NULL);
		break;
	case T_BINDING: {
		const url_t *ruri = fsip->sip_request->rq_url;
		bool via_id = ruri->url_params && url_has_param(ruri, REGISTRAR_ID_PARAM);

		if (via_id && held_wants_hold(sip)) {
			/* Upstream chose this device (through the Path we gave it). */
			msg_destroy(fwd);
			held_start(rt, t, sip, &tg.b, 1, binding_aor(tg.b), true, in_proto);
			return 0;
		}
		if (mwi_wanted(rt, sip)) {
			msg_destroy(fwd);
			mwi_start(rt, t, sip, &tg.b, 1, via_id, in_proto);
			return 0;
		}
		if (router_fork_binding(rt, t, fwd, tg.b, via_id, in_proto) < 0) {
			proxy_txn_reply(t, SIP_480_TEMPORARILY_UNAVAILABLE, TAG_END());
			return 0;
		}
		break;
	}
	case T_AOR: {
		struct binding *list[MAX_FORK];
		size_t n = registrar_lookup(rt->reg, tg.aor, list, MAX_FORK);
		int sent = 0;

		msg_destroy(fwd);
		if (n == 0) {
			proxy_txn_reply(t, SIP_404_NOT_FOUND, TAG_END());
			return 0;
		}
		if (held_wants_hold(sip)) {
			held_start(rt, t, sip, list, n, tg.aor, false, in_proto);
			return 0;
		}
		if (mwi_wanted(rt, sip)) {
			mwi_start(rt, t, sip, list, n, true, in_proto);
			return 0;
		}
		for (size_t i = 0; i < n; i++) {
			msg_t *copy = router_can_reach(rt, list[i]) ? proxy_txn_copy_request(t) : NULL;
			if (copy && router_fork_binding(rt, t, copy, list[i], true, in_proto) >= 0)
				sent++;
		}
		if (!sent) {
			/* Registered, but no live flow: the push wake-up belongs here. */
			proxy_txn_reply(t, SIP_480_TEMPORARILY_UNAVAILABLE, TAG_END());
			return 0;
		}
		break;
	}
	}
	proxy_txn_seal(t, SIP_408_REQUEST_TIMEOUT);
	return 0;
}

/* ACK to a 2xx: no transaction, forwarded statelessly along the same rules. */
static void route_ack(struct router *rt, msg_t *msg, sip_t *sip, enum source src,
		      const char *hop_id)
{
	msg_t *fwd = msg_copy(msg);
	sip_t *fsip;
	struct target tg;

	if (!fwd)
		return;
	fsip = sip_object(fwd);
	if (sip_decrement_max_forwards(fwd, fsip) < 0) {
		msg_destroy(fwd);
		return;
	}
	sip_pop_own_routes(rt->sa, fwd, fsip);
	pick_target(rt, msg, sip, fsip, &tg, src, hop_id);
	switch (tg.kind) {
	case T_ROUTE:
		sip_send_stateless(rt->sa, fwd, NULL, NULL);
		return;
	case T_UPSTREAM:
		sip_send_stateless(rt->sa, fwd, rt->cfg->upstream.uri, NULL);
		return;
	case T_BINDING: {
		const char *hop = src == SRC_PEER ? NULL : router_hop_of(rt, tg.b);

		if (!hop && !binding_reachable(tg.b))
			break;
		if (url_has_param(fsip->sip_request->rq_url, REGISTRAR_ID_PARAM))
			set_request_uri(fwd, fsip, binding_contact(tg.b));
		if (hop && router_hop_mark(rt, fwd, fsip, tg.b) == 0)
			sip_send_stateless(rt->sa, fwd, hop, NULL);
		else if (!hop)
			sip_send_stateless(rt->sa, fwd, binding_received(tg.b), binding_tport(tg.b));
		else
			msg_destroy(fwd);
		return;
	}
	default:
		break;
	}
	log_debug("ACK for %s dropped: no route", sip->sip_call_id ? sip->sip_call_id->i_id : "?");
	msg_destroy(fwd);
}

/*
 * Who must prove an identity (SPEC 4.7), decided once for every request
 * with auth.mode = "accounts": a REGISTER for a user of ours proves its
 * AOR (401), a new request that claims to come from a user of ours proves
 * that user (407). In-dialog requests, CANCEL and ACK cannot be
 * challenged (RFC 3261 22.1) and go on; so do requests from other
 * domains, to our users or not (the policy table decides where they may
 * go). The credentials checked are taken out of the request, so they are
 * never forwarded (a callee could attack the password offline). False
 * when irq was answered.
 */
static bool authenticated(struct router *rt, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
	sip_method_t m = sip->sip_request->rq_method;
	const url_t *who;
	char aor[256];

	if (!rt->auth || m == sip_method_cancel || m == sip_method_ack)
		return true;
	if (m == sip_method_register)
		who = sip->sip_to ? sip->sip_to->a_url : NULL;
	else if (!sip->sip_to || !sip->sip_to->a_tag)
		who = sip->sip_from ? sip->sip_from->a_url : NULL;
	else
		return true;
	if (!who || !who->url_host || !sip_agent_serves_domain(rt->sa, who->url_host) ||
	    sip_aor_of(who, aor, sizeof(aor)) < 0)
		return true;
	return auth_request(rt->auth, irq, msg, sip, aor, m != sip_method_register);
}

unsigned router_held_count(const struct router *rt)
{
	return rt ? rt->n_held : 0;
}

int router_handle(void *ctx, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
	struct router *rt = ctx;
	sip_method_t m = sip->sip_request ? sip->sip_request->rq_method : sip_method_unknown;
	bool up;

	char hop_id[64] = "";
	int peer;

	if (!sip->sip_request)
		return 0;
	up = from_upstream(rt, msg);
	stats_sip_request(sip->sip_request->rq_method_name);
	peer = router_hop_check(rt, msg, sip, hop_id, sizeof(hop_id));
	if (peer < 0) {
		if (irq && m != sip_method_ack) {
			nta_incoming_treply(irq, SIP_403_FORBIDDEN, TAG_END());
			stats_sip_response(403);
		}
		if (irq)
			nta_incoming_destroy(irq);
		return 0;
	}
	if (peer > 0) {
		/* another node's hop: no rate limit, no challenge, one binding */
		if (m == sip_method_ack) {
			route_ack(rt, msg, sip, SRC_PEER, hop_id);
			if (irq)
				nta_incoming_destroy(irq);
			return 0;
		}
		if (!irq)
			return 0;
		if (m == sip_method_register)
			return 403;
		return route_request(rt, irq, msg, sip, SRC_PEER, hop_id);
	}
	if (!ratelimit_allow(rt, msg, up)) {
		if (irq && m != sip_method_ack) {
			nta_incoming_treply(irq, SIP_503_SERVICE_UNAVAILABLE,
					    SIPTAG_RETRY_AFTER_STR("1"), TAG_END());
			stats_sip_response(503);
		}
		if (irq)
			nta_incoming_destroy(irq);
		return 0;
	}
	if (irq && m != sip_method_ack && m != sip_method_cancel && sip->sip_proxy_require &&
	    !(m == sip_method_register && config_standalone(rt->cfg))) {
		/* RFC 3261 16.3 step 5: we support no proxy extension (as registrar we ignore it). */
		char *opts = sip_header_as_string(NULL, (sip_header_t *)sip->sip_proxy_require);
		nta_incoming_treply(irq, SIP_420_BAD_EXTENSION,
				    TAG_IF(opts, SIPTAG_UNSUPPORTED_STR(opts)), TAG_END());
		stats_sip_response(420);
		su_free(NULL, opts);
		nta_incoming_destroy(irq);
		return 0;
	}
	if (m == sip_method_ack) {
		route_ack(rt, msg, sip, classify(rt, msg, up), NULL);
		if (irq)
			nta_incoming_destroy(irq);
		return 0;
	}
	if (!irq)
		return 0;
	/* OPTIONS to sipwake itself (a keep-alive or a monitoring probe). */
	if (m == sip_method_options && !sip->sip_request->rq_url->url_user &&
	    sip_agent_is_own_uri(rt->sa, sip->sip_request->rq_url) &&
	    (!sip->sip_route || (sip_agent_is_own_uri(rt->sa, sip->sip_route->r_url) &&
				 !sip->sip_route->r_next)))
		return 200;
	if (!up && !authenticated(rt, irq, msg, sip))
		return 0; /* challenged or refused, irq answered */
	if (m == sip_method_register)
		return registrar_handle(rt->reg, irq, msg, sip);
	return route_request(rt, irq, msg, sip, classify(rt, msg, up), NULL);
}
