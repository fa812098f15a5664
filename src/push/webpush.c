/* SPDX-License-Identifier: MIT */
/*
 * Web Push provider (RFC 8030): one POST to the subscription's endpoint,
 * signed with the operator's VAPID key (RFC 8292). A subscription that gave
 * its p256dh and auth keys gets the payload (the same fields as an FCM
 * message) encrypted with aes128gcm (RFC 8291); one without them gets a
 * push without content, which still wakes the app. TTL by kind, Urgency
 * high but for wake-ups, and a Topic so that a call's cancel replaces the
 * call's push still waiting at the push service. The VAPID header of each
 * push service origin is signed once and kept for hours.
 */
#include "webpush.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "sipwake/log.h"
#include "sipwake/strmap.h"

#define WP_VAPID_LIFETIME (12 * 3600) /* exp of a VAPID JWT: RFC 8292 caps it at 24 h */
#define WP_VAPID_RENEW (6 * 3600)     /* sign again when less than this is left */
#define WP_VAPID_CACHE_MAX 4096       /* origins remembered; forgotten all at once beyond */
#define WP_TOPIC_LEN 32               /* RFC 8030 §5.4: at most 32 base64url characters */

struct vapid_entry {
	char *header; /* "vapid t=..., k=..." */
	int64_t exp;
};

struct webpush {
	struct push *p;
	EVP_PKEY *key;
	char *subject, *ca_file, *public_b64;
	struct strmap *vapid; /* origin -> struct vapid_entry */
	char **allowed;       /* push.webpush.allowed_hosts (NULL-terminated), NULL = any */
	int call_timeout, wakeup_ttl;
};

struct wp_req {
	struct push_body b; /* first; b.body: the aes128gcm record, NULL without content */
	char ttl[32];
	const char *urgency;
	char topic[WP_TOPIC_LEN + 1]; /* "" = none */
	char origin[512];
};

static void vapid_free_each(void *ctx, const char *key, void *value)
{
	struct vapid_entry *e = value;

	(void)ctx;
	(void)key;
	free(e->header);
	free(e);
}

static void vapid_clear(struct webpush *w)
{
	strmap_each(w->vapid, vapid_free_each, NULL);
	strmap_free(w->vapid);
	w->vapid = strmap_new();
}

static void wp_destroy(void *state)
{
	struct webpush *w = state;

	if (!w)
		return;
	if (w->vapid)
		strmap_each(w->vapid, vapid_free_each, NULL);
	strmap_free(w->vapid);
	EVP_PKEY_free(w->key);
	for (char **a = w->allowed; a && *a; a++)
		free(*a);
	free(w->allowed);
	free(w->subject);
	free(w->ca_file);
	free(w->public_b64);
	free(w);
}

static int wp_create(void **state, struct push *p, const struct sw_config *cfg)
{
	const char *path = cfg->push.webpush.vapid_key;
	unsigned char pub[WEBPUSH_KEY_LEN];
	struct webpush *w;
	char err[512] = "";

	*state = NULL;
	if (!push_set(path))
		return 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		goto fail;
	w->p = p;
	w->call_timeout = cfg->push.call_timeout > 0 ? cfg->push.call_timeout : 30;
	w->wakeup_ttl = cfg->push.wakeup_before_expiry > 0 ? cfg->push.wakeup_before_expiry : 120;
	w->key = push_key_load(path, err, sizeof(err));
	if (!w->key)
		goto fail;
	if (!EVP_PKEY_is_a(w->key, "EC") || webpush_public_key(w->key, pub) < 0) {
		snprintf(err, sizeof(err), "%s is not a P-256 (prime256v1) EC key", path);
		goto fail;
	}
	if (!push_set(cfg->push.webpush.subject)) {
		snprintf(err, sizeof(err), "push.webpush.subject is not set");
		goto fail;
	}
	w->subject = strdup(cfg->push.webpush.subject);
	w->ca_file = push_set(cfg->push.webpush.ca_file) ? strdup(cfg->push.webpush.ca_file) : NULL;
	w->public_b64 = push_b64url(pub, sizeof(pub));
	w->vapid = strmap_new();
	if (!w->subject || !w->public_b64 || !w->vapid)
		goto fail;
	if (cfg->push.webpush.allowed_hosts && cfg->push.webpush.allowed_hosts[0]) {
		size_t n = 0;

		while (cfg->push.webpush.allowed_hosts[n])
			n++;
		if (!(w->allowed = calloc(n + 1, sizeof(*w->allowed))))
			goto fail;
		for (size_t i = 0; i < n; i++)
			if (!(w->allowed[i] = strdup(cfg->push.webpush.allowed_hosts[i])))
				goto fail;
	}
	log_info("push: webpush: VAPID key %s, subject %s", w->public_b64, w->subject);
	*state = w;
	return 0;
fail:
	log_error("push: webpush: %s", err[0] ? err : "out of memory");
	wp_destroy(w);
	return -1;
}

const char *webpush_public_b64(void *state)
{
	return state ? ((struct webpush *)state)->public_b64 : NULL;
}

/* The Authorization header for one origin: cached, signed again when due or when forced. */
static const char *vapid_header(struct webpush *w, const char *origin, const char *endpoint,
				bool force)
{
	struct vapid_entry *e;
	int64_t now = (int64_t)time(NULL);
	char *h;

	if (!w->vapid && !(w->vapid = strmap_new())) /* emptied when full, and no memory then */
		return NULL;
	e = strmap_get(w->vapid, origin);
	if (e && !force && e->exp - now > WP_VAPID_RENEW)
		return e->header;
	h = webpush_vapid(w->key, endpoint, w->subject, now, WP_VAPID_LIFETIME);
	if (!h) {
		log_error("push: webpush: cannot sign a VAPID token for %s", origin);
		return NULL;
	}
	if (e) {
		push_stats_mut(w->p, PN_WEBPUSH)->auth_refresh++;
		free(e->header);
	} else {
		if (strmap_count(w->vapid) >= WP_VAPID_CACHE_MAX)
			vapid_clear(w);
		e = calloc(1, sizeof(*e));
		if (!w->vapid || !e || strmap_put(w->vapid, origin, e) < 0) {
			free(e);
			free(h);
			return NULL;
		}
	}
	e->header = h;
	e->exp = now + WP_VAPID_LIFETIME;
	return e->header;
}

/* ---- payload --------------------------------------------------------- */

static json_t *wp_build(void *arg, const char *text)
{
	const struct push_fields *f = arg;
	json_t *o = json_object();

	if (o)
		push_fields_put(f, o, text);
	return o;
}

/* Encrypt r's payload for the subscription's keys into q->b.body. 0 or -(enum push_result). */
static int wp_encrypt(struct push_req *r, struct wp_req *q)
{
	struct push_fields f;
	unsigned char *ua = NULL, *auth = NULL, *rec = NULL;
	size_t ua_len = 0, auth_len = 0, len = 0;
	char *json;
	int rc = -(int)PUSH_PERMANENT;

	push_fields_init(&f, r, WEBPUSH_MAX_PLAIN);
	json = push_fit_payload(wp_build, &f, f.text, WEBPUSH_MAX_PLAIN, &len);
	ua = push_b64url_decode(r->id.wp_p256dh, &ua_len);
	auth = push_b64url_decode(r->id.wp_auth, &auth_len);
	if (!json)
		snprintf(r->reason, sizeof(r->reason), "payload does not fit");
	else if (!ua || ua_len != WEBPUSH_KEY_LEN || !auth || auth_len != WEBPUSH_AUTH_LEN)
		snprintf(r->reason, sizeof(r->reason), "unusable subscription keys");
	else if (webpush_encrypt(ua, auth, auth_len, json, len, NULL, NULL, &rec, &q->b.body_len) <
		 0)
		snprintf(r->reason, sizeof(r->reason), "cannot encrypt for this subscription");
	else
		rc = 0;
	q->b.body = (char *)rec;
	push_fields_cleanup(&f);
	free(json);
	free(ua);
	free(auth);
	return rc;
}

/* A call's Topic: the Call-ID's digest, so that its cancel replaces it at the push service. */
static void call_topic(const char *call_id, char out[WP_TOPIC_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *b;

	SHA256((const unsigned char *)call_id, strlen(call_id), md);
	b = push_b64url(md, sizeof(md));
	snprintf(out, WP_TOPIC_LEN + 1, "%s", b ? b : "");
	free(b);
}

static int wp_prepare(void *state, struct push_req *r)
{
	struct webpush *w = state;
	struct wp_req *q;
	int rc;

	r->voip = false;
	r->token = r->id.token;
	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
		return -(int)PUSH_RETRYABLE;
	}
	r->pdata = q;
	if (!push_set(r->token) || webpush_origin(r->token, q->origin, sizeof(q->origin)) < 0) {
		snprintf(r->reason, sizeof(r->reason), "no usable push endpoint");
		return -(int)PUSH_PERMANENT;
	}
	if (!pn_endpoint_host_allowed(r->token, w->allowed)) {
		/* registered before push.webpush.allowed_hosts said otherwise */
		snprintf(r->reason, sizeof(r->reason), "endpoint host not in allowed_hosts");
		return -(int)PUSH_PERMANENT;
	}
	if (r->kind == PUSH_VOICEMAIL && !(r->id.wp_p256dh && r->id.wp_auth)) {
		/* a push without content would carry no count: nothing would be kept */
		snprintf(r->reason, sizeof(r->reason), "voicemail counts need the subscription's keys");
		return -(int)PUSH_PERMANENT;
	}
	if (r->id.wp_p256dh && r->id.wp_auth && (rc = wp_encrypt(r, q)) < 0)
		return rc;
	snprintf(q->ttl, sizeof(q->ttl), "ttl: %d",
		 push_kind_ttl(r->kind, w->call_timeout, w->wakeup_ttl));
	q->urgency = r->kind == PUSH_WAKEUP ? "urgency: normal" : "urgency: high";
	if (r->kind == PUSH_WAKEUP)
		snprintf(q->topic, sizeof(q->topic), "sipwake-wakeup");
	else if (r->kind == PUSH_VOICEMAIL) /* a newer count replaces an older one */
		snprintf(q->topic, sizeof(q->topic), "sipwake-voicemail");
	else if ((r->kind == PUSH_CALL || r->kind == PUSH_CANCEL) && push_set(r->pl.call_id))
		call_topic(r->pl.call_id, q->topic);
	return 0;
}

/* ---- one attempt ----------------------------------------------------- */

/*
 * What a push service's answer means (RFC 8030 §5, §6.2, §8.3): 201 (any
 * 2xx) accepted; 404 / 410 the subscription is gone; 429 and 5xx later;
 * 401 / 403 the VAPID signature is refused (*resign: sign again once);
 * anything else (400, 413) cannot succeed as sent.
 */
static enum push_result wp_verdict(long status, bool can_resign, bool *resign)
{
	*resign = false;
	if (status >= 200 && status < 300)
		return PUSH_OK;
	if (status == 404 || status == 410)
		return PUSH_TOKEN_INVALID;
	if (status == 429 || status >= 500)
		return PUSH_RETRYABLE;
	if ((status == 401 || status == 403) && can_resign) {
		*resign = true;
		return PUSH_RETRYABLE;
	}
	return PUSH_PERMANENT;
}

static int wp_send(struct webpush *w, struct push_req *r, bool fresh_vapid);

static void wp_done(void *arg, const struct push_http_result *res)
{
	struct push_req *r = arg;
	struct wp_req *q = r->pdata;
	struct webpush *w = r->inst->state;
	enum push_result result;
	char reason[96] = "";
	bool resign;

	q->b.xfer = NULL;
	if (res->code != CURLE_OK) {
		push_attempt_failed(r, res);
		return;
	}
	result = wp_verdict(res->status, !r->auth_retried, &resign);
	if (resign) {
		r->auth_retried = true;
		if (wp_send(w, r, true) == 0)
			return;
	} else if (res->status == 401 || res->status == 403) {
		push_stats_mut(w->p, PN_WEBPUSH)->auth_failures++;
		log_warn("push: webpush: %s answers %ld to a fresh VAPID signature: the "
			    "subscription was made for another key than %s, or the subject is "
			    "refused", q->origin, res->status, w->public_b64);
	} else if (res->status == 413) {
		snprintf(reason, sizeof(reason), "HTTP 413 payload too large");
	}
	if (!reason[0] && res->status / 100 != 2)
		snprintf(reason, sizeof(reason), "HTTP %ld", res->status);
	r->retry_after_ms = (uint64_t)res->retry_after_s * 1000;
	push_attempt_done(r, result, (int)res->status, reason[0] ? reason : NULL);
}

static int wp_send(struct webpush *w, struct push_req *r, bool fresh_vapid)
{
	struct wp_req *q = r->pdata;
	struct push_http_request rq = {0};
	const char *vapid = vapid_header(w, q->origin, r->token, fresh_vapid);
	const char *hdrs[6];
	struct curl_slist *h = NULL, *n;
	char *auth = NULL, *topic = NULL;
	size_t nh = 0;
	int rc = -1;

	rq.timeout_ms = (long)push_req_remaining(r);
	if (rq.timeout_ms <= 0 || !vapid || asprintf(&auth, "authorization: %s", vapid) < 0) {
		auth = NULL;
		goto out;
	}
	if (q->topic[0] && asprintf(&topic, "topic: %s", q->topic) < 0) {
		topic = NULL;
		goto out;
	}
	hdrs[nh++] = auth;
	hdrs[nh++] = q->ttl;
	hdrs[nh++] = q->urgency;
	if (topic)
		hdrs[nh++] = topic;
	if (q->b.body) {
		hdrs[nh++] = "content-encoding: aes128gcm";
		hdrs[nh++] = "content-type: application/octet-stream";
	} else {
		hdrs[nh++] = "content-type:"; /* no body: not curl's form type either */
	}
	for (size_t i = 0; i < nh; i++) {
		if (!(n = curl_slist_append(h, hdrs[i])))
			goto out;
		h = n;
	}
	rq.url = r->token;
	rq.headers = h;
	h = NULL;
	rq.body = q->b.body ? q->b.body : "";
	rq.body_len = q->b.body ? q->b.body_len : 0;
	rq.ca_file = w->ca_file;
	rc = push_http_start(push_get_http(w->p), &rq, wp_done, r, &q->b.xfer);
out:
	curl_slist_free_all(h);
	free(auth);
	free(topic);
	return rc;
}

static int wp_start(void *state, struct push_req *r)
{
	return wp_send(state, r, false);
}

const struct push_provider push_webpush_provider = {
	.name = "webpush",
	.id = PN_WEBPUSH,
	.create = wp_create,
	.destroy = wp_destroy,
	.prepare = wp_prepare,
	.start = wp_start,
	.abort = push_body_abort,
	.req_cleanup = push_body_cleanup,
};
