/* SPDX-License-Identifier: MIT */
/*
 * Keeping sleeping devices registered upstream (SPEC 4.6).
 *
 * A PBX caps registrations (often at an hour or less) while a sleeping app
 * may not run for days. With upstream.keepalive, a push device is granted
 * the expiry it asked for, and sipwake refreshes its upstream registration
 * itself: a REGISTER with the same Contact (swb=) and Path upstream knows,
 * under a Call-ID of sipwake's own (the device keeps its own Call-ID and
 * CSeq, and upstream accepts both: RFC 3261 10.3 compares CSeq only within
 * one Call-ID), before each upstream expiry, until the device's binding
 * ends. Upstream's challenges are answered from the AOR's account (HA1
 * only), reusing a nonce with the next nonce count while upstream allows.
 *
 * A refresh that fails is retried with backoff for as long as the device's
 * binding lasts, logged once per change of reason, counted, and, before
 * the upstream registration would lapse, the device gets the wake-up push
 * (REGISTRAR_EXPIRING) where its token allows one. When the binding goes
 * for any reason but the device's own unregister (its expiry, a dead
 * token, sipwakectl unregister), the upstream registration is removed
 * (Expires: 0). The leg (Call-ID, CSeq, upstream expiry, state) is stored
 * with the binding, so refreshes resume after a restart, overdue ones
 * spread over a few seconds.
 */
#include "registrar_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>

#include "sipwake/log.h"
#include "sipwake/stats.h"

#define KA_MARGIN_MIN 5    /* s: a refresh goes at least this long before upstream's expiry */
#define KA_BACKOFF_MIN 5   /* s: first retry after a failure, doubling ... */
#define KA_BACKOFF_MAX 60  /* ... up to this */
#define KA_SPREAD 5        /* s over which overdue refreshes are spread after a restart */
#define KA_CSEQ_SKIP 16    /* CSeqs skipped after a restart (sent, maybe not committed) */
#define KA_MAX_ROUNDS 4    /* requests of one exchange (challenge, 423, 420) */
#define KA_QUEUE_MAX 65536 /* due refreshes waiting to be sent */
#define KA_SLICE_MS 50     /* the pacer sends a twentieth of a second's refreshes each time */

/* Due refreshes by binding id (a binding may go while queued), sent spread out. */
struct ka_pacer {
	char (*ids)[BINDING_ID_LEN + 1];
	size_t head, len;
	size_t per_slice;
	su_timer_t *timer;
	bool armed;
	char (*dirty)[BINDING_ID_LEN + 1]; /* legs to write with the next tick */
	size_t n_dirty, cap_dirty;
};

/* One REGISTER exchange with upstream: a refresh of a binding, or a final unregister. */
struct upreq {
	struct upreq *next, **prevp; /* in registrar->upreqs */
	struct registrar *r;
	nta_outgoing_t *orq;
	char id[BINDING_ID_LEN + 1]; /* the binding (its Contact upstream carries swb=id) */
	bool refresh;                /* a refresh of it, else the final unregister */
	bool orphan;                 /* the binding went while this refresh was out */
	char *aor, *ruri, *contact;  /* contact: as the device registered it */
	char *call_id;
	uint32_t cseq;
	int expires;
	int rounds;
	bool fresh_creds;            /* the last request answered a challenge just taken */
	bool sending;                /* inside nta_outgoing_mcreate */
	int sync_status;             /* a final status nta gave from inside it */
	struct auth_cache cache;     /* an unregister's own copy of the leg's cache */
};

static void rand_hex(char *out, size_t bytes)
{
	unsigned char b[16];

	if (bytes > sizeof(b))
		bytes = sizeof(b);
	if (RAND_bytes(b, (int)bytes) != 1)
		memset(b, 0, sizeof(b));
	auth_hex(b, bytes, out);
}

static int64_t jitter(int64_t max)
{
	unsigned char b[4];

	if (max <= 0 || RAND_bytes(b, sizeof(b)) != 1)
		return 0;
	return (int64_t)(((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]) %
			 (uint64_t)(max + 1));
}

/* When to refresh a registration upstream granted for `granted` s from now. */
static int64_t refresh_at(int64_t now, int64_t granted)
{
	int64_t margin = granted / 4;

	if (margin < KA_MARGIN_MIN)
		margin = KA_MARGIN_MIN;
	if (margin > granted / 2)
		margin = granted / 2;
	return now + granted - margin - jitter(granted / 10);
}

bool keepalive_wanted(struct registrar *r, bool push)
{
	return push && r->cfg->upstream.keepalive && !config_standalone(r->cfg);
}

void keepalive_free_leg(struct upleg *up)
{
	if (!up)
		return;
	if (up->inflight)
		up->inflight->orphan = true; /* its answer is ignored */
	auth_cache_clear(&up->cache);
	free(up->call_id);
	free(up);
}

static struct ka_pacer *pacer(struct registrar *r);

/*
 * A leg changed by a refresh's end is written with the next tick, all of
 * them in one transaction: a refresh answer costs no commit of its own.
 * What kill -9 can take is at most a second of them: a restart then
 * refreshes a little early and skips KA_CSEQ_SKIP CSeqs.
 */
static void save(struct registrar *r, struct binding *b)
{
	struct ka_pacer *p = pacer(r);
	char (*ids)[BINDING_ID_LEN + 1];

	if (b->up->dirty)
		return;
	if (p && p->n_dirty == p->cap_dirty) {
		size_t cap = p->cap_dirty ? 2 * p->cap_dirty : 1024;
		ids = realloc(p->dirty, cap * sizeof(*ids));
		if (ids) {
			p->dirty = ids;
			p->cap_dirty = cap;
		}
	}
	if (!p || p->n_dirty == p->cap_dirty) {
		if (binding_save(r, b) < 0) /* no memory to defer it: write it now */
			log_error("upstream leg of binding %s of %s not persisted", b->id, b->aor);
		return;
	}
	snprintf(p->dirty[p->n_dirty++], BINDING_ID_LEN + 1, "%s", b->id);
	b->up->dirty = true;
}

void keepalive_flush(struct registrar *r)
{
	struct ka_pacer *p = r->pacer;

	for (size_t i = 0; p && i < p->n_dirty; i++) {
		struct binding *b = registrar_find_id(r, p->dirty[i]);
		if (!b || !b->up || !b->up->dirty)
			continue;
		b->up->dirty = false;
		if (binding_save(r, b) < 0)
			log_error("upstream leg of binding %s of %s not persisted", b->id, b->aor);
	}
	if (p)
		p->n_dirty = 0;
}

void keepalive_bound(struct registrar *r, struct binding *b, int up_granted, int64_t now)
{
	struct upleg *up = b->up;

	if (up_granted <= 0) {
		keepalive_free_leg(b->up);
		b->up = NULL;
		return;
	}
	if (!up) {
		char cid[64];

		up = b->up = calloc(1, sizeof(*up));
		if (up) {
			rand_hex(cid, 12);
			snprintf(cid + 24, sizeof(cid) - 24, "@sipwake-keepalive");
			up->call_id = strdup(cid);
		}
		if (!up || !up->call_id) {
			keepalive_free_leg(up);
			b->up = NULL;
			log_error("binding %s of %s: no memory for its upstream leg", b->id, b->aor);
			return;
		}
	}
	if (up->failing)
		log_notice("binding %s of %s is registered upstream again (the device registered)",
			   b->id, b->aor);
	up->expires = now + up_granted;
	up->next_try = refresh_at(now, up_granted);
	up->failures = 0;
	up->failing = up->wakeup_asked = up->lapsed = false;
	snprintf(up->state, sizeof(up->state), "ok");
	registrar_schedule(r, b);
}

void keepalive_load(struct registrar *r, struct binding *b, const struct store_binding *sb,
		    int64_t now)
{
	struct upleg *up;
	int64_t left = sb->up_expires - now;

	if (!sb->up_call_id || !keepalive_wanted(r, binding_is_push(b)))
		return;
	up = calloc(1, sizeof(*up));
	if (!up || !(up->call_id = strdup(sb->up_call_id))) {
		keepalive_free_leg(up);
		return;
	}
	up->cseq = sb->up_cseq + KA_CSEQ_SKIP;
	up->expires = sb->up_expires;
	snprintf(up->state, sizeof(up->state), "%s", sb->up_state ? sb->up_state : "ok");
	up->failing = strcmp(up->state, "ok") != 0;
	/* Overdue (or close to it): at once, spread over a few seconds; else on schedule. */
	if (left > 2 * KA_MARGIN_MIN)
		up->next_try = refresh_at(now, left);
	else /* spread, but within what is left of it where possible */
		up->next_try = now + jitter(left - 2 < KA_SPREAD ? (left > 2 ? left - 2 : 0) : KA_SPREAD);
	b->up = up;
	registrar_schedule(r, b);
}

bool keepalive_busy(const struct binding *b)
{
	return b->up && (b->up->inflight || b->up->queued);
}

bool keepalive_due(const struct binding *b, int64_t now)
{
	return b->up && !keepalive_busy(b) && b->up->next_try && b->up->next_try <= now &&
	       b->expires > now;
}

static void keepalive_refresh(struct registrar *r, struct binding *b);

/* The pacer, made on first use; NULL without memory. */
static struct ka_pacer *pacer(struct registrar *r)
{
	struct ka_pacer *p = r->pacer;

	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (p && (p->ids = calloc(KA_QUEUE_MAX, sizeof(*p->ids))) &&
	    (p->timer = su_timer_create(su_root_task(sip_agent_root(r->sa)), KA_SLICE_MS)))
		return r->pacer = p;
	if (p)
		free(p->ids);
	free(p);
	return NULL;
}

void keepalive_queue(struct registrar *r, struct binding *b)
{
	struct ka_pacer *p = pacer(r);

	if (!p) {
		keepalive_refresh(r, b); /* no pacing possible: send now rather than not at all */
		return;
	}
	if (p->len == KA_QUEUE_MAX)
		return; /* the next tick finds it due again */
	snprintf(p->ids[(p->head + p->len) % KA_QUEUE_MAX], BINDING_ID_LEN + 1, "%s", b->id);
	p->len++;
	b->up->queued = true;
	registrar_schedule(r, b);
}

static void pace_slice(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct registrar *r = (struct registrar *)arg;
	struct ka_pacer *p = r->pacer;
	int64_t now = time(NULL);

	p->armed = false;
	for (size_t n = p->per_slice; n > 0 && p->len > 0; n--) {
		struct binding *b = registrar_find_id(r, p->ids[p->head]);

		p->head = (p->head + 1) % KA_QUEUE_MAX;
		p->len--;
		if (!b || !b->up || !b->up->queued)
			continue; /* gone meanwhile */
		b->up->queued = false;
		if (keepalive_due(b, now))
			keepalive_refresh(r, b);
		else
			registrar_schedule(r, b);
	}
	if (p->len > 0 && su_timer_set(p->timer, pace_slice, (su_timer_arg_t *)r) == 0)
		p->armed = true;
}

void keepalive_pace(struct registrar *r)
{
	struct ka_pacer *p = r->pacer;

	if (!p || !p->len)
		return;
	/* what is queued now goes out over the next second */
	p->per_slice = (p->len + 1000 / KA_SLICE_MS - 1) / (1000 / KA_SLICE_MS);
	if (!p->armed && su_timer_set(p->timer, pace_slice, (su_timer_arg_t *)r) == 0)
		p->armed = true;
}

static struct binding *refreshed(struct upreq *q);

static void upreq_free(struct upreq *q)
{
	struct binding *b;

	if (!q)
		return;
	if ((b = refreshed(q))) {
		b->up->inflight = NULL;
		registrar_schedule(q->r, b);
	}
	if (q->prevp) {
		*q->prevp = q->next;
		if (q->next)
			q->next->prevp = q->prevp;
	}
	if (q->orq)
		nta_outgoing_destroy(q->orq);
	free(q->aor);
	free(q->ruri);
	free(q->contact);
	free(q->call_id);
	auth_cache_clear(&q->cache);
	free(q);
}

/* A REGISTER's request URI: the domain of the AOR (RFC 3261 10.2). */
static char *register_uri(const char *aor)
{
	const char *at = strchr(aor, '@');
	char *u = NULL;

	if (asprintf(&u, "sip:%s", at ? at + 1 : aor + 4) < 0)
		return NULL;
	return u;
}

static struct upreq *upreq_new(struct registrar *r, const struct binding *b, bool refresh)
{
	struct upreq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->r = r;
	q->refresh = refresh;
	snprintf(q->id, sizeof(q->id), "%s", b->id);
	q->aor = strdup(b->aor);
	q->ruri = register_uri(b->aor);
	q->contact = strdup(b->contact);
	q->call_id = strdup(b->up->call_id);
	if (!q->aor || !q->ruri || !q->contact || !q->call_id) {
		upreq_free(q);
		return NULL;
	}
	q->next = r->upreqs;
	if (q->next)
		q->next->prevp = &q->next;
	q->prevp = &r->upreqs;
	r->upreqs = q;
	return q;
}

/* The binding a refresh is for, or NULL (gone, replaced, or an unregister). */
static struct binding *refreshed(struct upreq *q)
{
	struct binding *b = q->refresh && !q->orphan ? registrar_find_id(q->r, q->id) : NULL;

	return b && b->up && b->up->inflight == q ? b : NULL;
}

static struct auth_cache *cache_of(struct upreq *q)
{
	struct binding *b = refreshed(q);

	return b ? &b->up->cache : &q->cache;
}

static int upreq_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, const sip_t *sip);

static msg_t *build_register(struct upreq *q)
{
	struct registrar *r = q->r;
	msg_t *msg = nta_msg_create(sip_agent_nta(r->sa), 0);
	sip_t *sip = msg ? sip_object(msg) : NULL;
	su_home_t *home = msg ? msg_home(msg) : NULL;
	struct auth_cache *cache = cache_of(q);
	char from[600], to[560], cseq[32], exp[16], path[200], tag[17], creds[1200] = "";
	char *contact;
	sip_contact_t *m;
	sip_request_t *rq;

	if (!sip)
		goto fail;
	rand_hex(tag, 8);
	snprintf(from, sizeof(from), "<%s>;tag=%s", q->aor, tag);
	snprintf(to, sizeof(to), "<%s>", q->aor);
	snprintf(cseq, sizeof(cseq), "%u REGISTER", q->cseq);
	snprintf(exp, sizeof(exp), "%d", q->expires);
	registrar_path(r, path, sizeof(path));
	/* <...>: the URI's own parameters (transport, ...) stay in the URI. */
	contact = su_sprintf(home, "<%s>", q->contact);
	m = contact ? sip_contact_make(home, contact) : NULL;
	rq = sip_request_create(home, SIP_METHOD_REGISTER, URL_STRING_MAKE(q->ruri), NULL);
	if (!m || !rq ||
	    registrar_upstream_contact(r, home, m, q->id, r->masquerade,
				       sip_uri_proto(r->cfg->upstream.uri)) < 0)
		goto fail;
	if (cache->valid && auth_client_credentials(r->st, q->aor, cache, "REGISTER", q->ruri, creds,
						    sizeof(creds)) != AUTH_CLIENT_OK)
		creds[0] = 0;
	if (sip_add_tl(msg, sip, SIPTAG_REQUEST(rq), SIPTAG_FROM_STR(from), SIPTAG_TO_STR(to),
		       SIPTAG_CALL_ID_STR(q->call_id), SIPTAG_CSEQ_STR(cseq),
		       SIPTAG_MAX_FORWARDS_STR("70"), SIPTAG_CONTACT(m), SIPTAG_EXPIRES_STR(exp),
		       TAG_IF(!r->masquerade, SIPTAG_PATH_STR(path)),
		       TAG_IF(!r->masquerade, SIPTAG_SUPPORTED_STR("path")),
		       TAG_IF(creds[0] && !cache->proxy, SIPTAG_AUTHORIZATION_STR(creds)),
		       TAG_IF(creds[0] && cache->proxy, SIPTAG_PROXY_AUTHORIZATION_STR(creds)),
		       SIPTAG_USER_AGENT_STR("sipwake/" SIPWAKE_VERSION " (keep-alive)"),
		       TAG_END()) < 0 ||
	    sip_complete_message(msg) < 0)
		goto fail;
	return msg;
fail:
	if (msg)
		msg_destroy(msg);
	return NULL;
}

static void finished(struct upreq *q, int status, const sip_t *sip);

/* Send (again) with the current CSeq; a failure to send ends the exchange as 503. */
static void upreq_send(struct upreq *q)
{
	msg_t *msg = build_register(q);

	q->rounds++;
	if (!msg) {
		finished(q, 500, NULL);
		return;
	}
	q->sending = true;
	q->sync_status = 0;
	q->orq = nta_outgoing_mcreate(sip_agent_nta(q->r->sa), upreq_response,
				      (nta_outgoing_magic_t *)q,
				      URL_STRING_MAKE(q->r->cfg->upstream.uri), msg, TAG_END());
	q->sending = false;
	if (!q->orq)
		finished(q, 503, NULL);
	else if (q->sync_status)
		finished(q, q->sync_status, NULL);
}

/*
 * The next CSeq of the exchange's Call-ID. A refresh's is stored with the
 * binding when the exchange ends (at most KA_MAX_ROUNDS later): a restart
 * skips KA_CSEQ_SKIP, more than an exchange can use unstored.
 */
static void next_cseq(struct upreq *q)
{
	struct binding *b = refreshed(q);

	if (b)
		q->cseq = ++b->up->cseq;
	else
		q->cseq++;
}

/* What upstream granted our Contact (swb=id) in a 2xx, or -1 when it is not there. */
static int granted_in(struct upreq *q, const sip_t *sip)
{
	char id[BINDING_ID_LEN + 1];

	for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
		if (!m->m_url->url_params ||
		    url_param(m->m_url->url_params, REGISTRAR_ID_PARAM, id, sizeof(id)) == 0 ||
		    strcmp(id, q->id) != 0)
			continue;
		if (m->m_expires)
			return atoi(m->m_expires);
		return sip->sip_expires ? (int)sip->sip_expires->ex_delta : q->expires;
	}
	return -1;
}

static void refresh_ok(struct registrar *r, struct binding *b, int granted, int64_t now)
{
	struct upleg *up = b->up;

	stats_count("sipwake_upstream_refresh_total", "result", "ok", NULL);
	if (up->failing)
		log_notice("upstream refresh of binding %s of %s works again", b->id, b->aor);
	up->expires = now + granted;
	up->next_try = refresh_at(now, granted);
	up->failures = 0;
	up->failing = up->wakeup_asked = up->lapsed = false;
	snprintf(up->state, sizeof(up->state), "ok");
	log_debug("binding %s of %s refreshed upstream for %ds", b->id, b->aor, granted);
	save(r, b);
	registrar_schedule(r, b);
}

static void refresh_failed(struct registrar *r, struct binding *b, const char *result,
			   const char *why, int64_t now)
{
	struct upleg *up = b->up;
	int64_t wait = KA_BACKOFF_MIN;

	for (int i = 0; i < up->failures && wait < KA_BACKOFF_MAX; i++)
		wait *= 2;
	if (wait > KA_BACKOFF_MAX)
		wait = KA_BACKOFF_MAX;
	up->failures++;
	up->next_try = now + wait;
	stats_count("sipwake_upstream_refresh_total", "result", result, NULL);
	if (!up->failing || strcmp(up->state, why) != 0)
		log_warn("upstream refresh of binding %s of %s failed: %s (retrying every %d s at "
			 "most; upstream registration %s)",
			 b->id, b->aor, why, KA_BACKOFF_MAX,
			 up->expires > now ? "still valid" : "lapsed");
	up->failing = true;
	snprintf(up->state, sizeof(up->state), "%s", why);
	save(r, b);
	registrar_schedule(r, b);
	/* Before upstream forgets the device, ask the app to register itself. */
	if (!up->wakeup_asked && up->expires - now <= wait + KA_MARGIN_MIN) {
		up->wakeup_asked = true;
		registrar_notify(r, b, REGISTRAR_EXPIRING);
	}
}

/* An exchange ended with status (sip: upstream's answer, or NULL for a local failure). */
static void finished(struct upreq *q, int status, const sip_t *sip)
{
	struct registrar *r = q->r;
	struct binding *b = refreshed(q);
	int64_t now = time(NULL);
	char why[96];

	if (b) {
		int granted = status < 300 && sip ? granted_in(q, sip) : -1;
		b->up->inflight = NULL;
		if (status >= 200 && status < 300 && granted > 0) {
			refresh_ok(r, b, granted, now);
		} else {
			const char *result = status == 408 ? "timeout"
					     : status == 401 || status == 407 || status == 403 ? "rejected"
					     : "failed";
			if (status >= 200 && status < 300)
				snprintf(why, sizeof(why), "upstream's %d does not list the Contact",
					 status);
			else
				snprintf(why, sizeof(why), "%d %s", status,
					 sip && sip->sip_status ? sip->sip_status->st_phrase
								: "(no answer)");
			refresh_failed(r, b, result, why, now);
		}
	} else if (!q->refresh) {
		if (status >= 300)
			log_warn("removing the upstream registration of %s (%s) failed: %d", q->aor,
				 q->contact, status);
		else
			log_info("upstream registration of %s (%s) removed", q->aor, q->contact);
	}
	upreq_free(q);
}

/*
 * Upstream challenged: 1 = send again with credentials for the challenge
 * just taken, 0 = give up (the credentials of a fresh challenge were
 * refused: finished() reports it), -1 = the exchange ended here.
 */
static int answer_challenge(struct upreq *q, const sip_t *sip, int status)
{
	struct auth_cache *cache = cache_of(q);
	const msg_auth_t *chs = status == 401 ? sip->sip_www_authenticate
					       : sip->sip_proxy_authenticate;
	struct binding *b = refreshed(q);
	char why[160];
	enum auth_client rc;

	if (q->fresh_creds)
		return 0;
	rc = auth_client_take(q->r->st, q->aor, chs, status == 407, cache, why, sizeof(why));
	if (rc != AUTH_CLIENT_OK) {
		if (b) {
			nta_outgoing_destroy(q->orq);
			q->orq = NULL;
			b->up->inflight = NULL;
			refresh_failed(q->r, b, rc == AUTH_CLIENT_NO_ACCOUNT ? "no_account" : "rejected",
				       why, time(NULL));
			upreq_free(q);
		} else {
			log_warn("removing the upstream registration of %s: %s", q->aor, why);
			upreq_free(q);
		}
		return -1;
	}
	stats_count("sipwake_upstream_refresh_total", "result", "challenged", NULL);
	q->fresh_creds = true;
	return 1;
}

static int upreq_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, const sip_t *sip)
{
	struct upreq *q = (struct upreq *)magic;
	int status = nta_outgoing_status(orq);
	bool retry = false;

	if (status < 200)
		return 0;
	if (q->sending) {
		q->sync_status = status;
		return 0;
	}
	if (q->refresh && !refreshed(q)) {
		upreq_free(q); /* the binding went meanwhile */
		return 0;
	}
	if (sip && q->rounds < KA_MAX_ROUNDS) {
		if (status == 401 || status == 407) {
			int a = answer_challenge(q, sip, status);
			if (a < 0)
				return 0; /* ended (and freed) there */
			retry = a > 0;
		} else if (status == 423 && sip->sip_min_expires &&
			   sip->sip_min_expires->me_delta > (unsigned long)q->expires) {
			q->expires = (int)sip->sip_min_expires->me_delta;
			retry = true;
		} else if (status == 420 && sip->sip_unsupported &&
			   sip_has_feature(sip->sip_unsupported, "path") && !q->r->masquerade) {
			log_warn("upstream %s rejects Path (420): Contacts are now rewritten to "
				 "sipwake's own address (masquerading)",
				 q->r->cfg->upstream.uri);
			q->r->masquerade = true;
			retry = true;
		}
	}
	if (retry) {
		nta_outgoing_destroy(q->orq);
		q->orq = NULL;
		next_cseq(q);
		upreq_send(q);
		return 0;
	}
	finished(q, status, sip);
	return 0;
}

static void keepalive_refresh(struct registrar *r, struct binding *b)
{
	int64_t now = time(NULL);
	struct upreq *q;

	if (b->up->expires >= b->expires) {
		b->up->next_try = 0; /* upstream keeps it as long as the device's binding lasts */
		registrar_schedule(r, b);
		return;
	}
	q = upreq_new(r, b, true);
	if (!q) {
		refresh_failed(r, b, "failed", "out of memory", now);
		return;
	}
	static const double late_bounds[] = {0.5, 1, 2, 5, 10, 30, 60, 300};

	stats_observe(stats_histogram("sipwake_upstream_refresh_lateness_seconds", late_bounds,
				      (int)(sizeof(late_bounds) / sizeof(late_bounds[0])), NULL),
		      (double)(now - b->up->next_try));
	if (now >= b->up->expires && !b->up->lapsed) {
		b->up->lapsed = true;
		stats_count("sipwake_upstream_lapsed_total", NULL);
	}
	b->up->inflight = q;
	registrar_schedule(r, b);
	q->expires = (int)(b->expires - now);
	next_cseq(q);
	/* A cached challenge is answered with its next nonce count: no round trip. */
	q->fresh_creds = false;
	upreq_send(q);
}

void keepalive_device_gone(struct binding *b)
{
	if (b->up)
		b->up->device_gone = true;
}

void keepalive_release(struct registrar *r, struct binding *b)
{
	struct upleg *up = b->up;
	struct upreq *q;

	if (!up)
		return;
	if (!up->device_gone && !config_standalone(r->cfg) && (q = upreq_new(r, b, false))) {
		q->cseq = up->cseq + 1;
		q->expires = 0;
		auth_cache_copy(&q->cache, &up->cache);
		log_info("binding %s of %s goes: removing its upstream registration", b->id, b->aor);
		upreq_send(q);
	}
	b->up = NULL;
	keepalive_free_leg(up);
}

void keepalive_adopted(struct registrar *r, struct binding *b, int64_t now)
{
	if (!b->up)
		return;
	/* upstream routes to the dead node's Path until we register ours */
	b->up->next_try = now + jitter(KA_SPREAD);
	registrar_schedule(r, b);
}

void keepalive_forget(struct registrar *r, struct binding *b)
{
	if (!b->up)
		return;
	b->up->device_gone = true; /* the upstream registration is not ours to remove */
	keepalive_release(r, b);
}

int64_t binding_upstream_expires(const struct binding *b)
{
	return b->up ? b->up->expires : 0;
}

const char *binding_upstream_state(const struct binding *b)
{
	return b->up ? b->up->state : NULL;
}

void keepalive_shutdown(struct registrar *r)
{
	while (r->upreqs)
		upreq_free(r->upreqs);
	if (r->pacer) {
		if (r->pacer->timer)
			su_timer_destroy(r->pacer->timer);
		free(r->pacer->ids);
		free(r->pacer->dirty);
		free(r->pacer);
		r->pacer = NULL;
	}
}
