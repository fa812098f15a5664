/* SPDX-License-Identifier: MIT */
/*
 * Apple Push Notification service provider (HTTP/2 provider API). Token
 * auth signs an ES256 JWT from the .p8 key (kid = key_id, iss = team_id),
 * reuses it for 40 minutes and regenerates it on 403 ExpiredProviderToken;
 * certificate auth presents a TLS client certificate instead. Calls go as
 * PushKit (voip) pushes when the device gave a VoIP token, everything else
 * as alert or background pushes on the remote-notification token.
 */
#include "push_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "sipwake/log.h"

#define APNS_JWT_REUSE_MS (40u * 60 * 1000) /* Apple: refresh between 20 and 60 min */
#define APNS_DEFAULT_URL "https://api.push.apple.com"
#define APNS_DEFAULT_SANDBOX_URL "https://api.sandbox.push.apple.com"
#define APNS_MAX_TOKEN 200

struct apns {
	struct push *p;
	EVP_PKEY *key; /* token auth */
	char *key_id, *team_id;
	char *cert_file, *cert_key; /* certificate auth */
	char *url, *sandbox_url, *ca_file;
	char *jwt;
	uint64_t jwt_ms;
	int call_timeout, wakeup_ttl;
};

struct apns_req {
	struct push_body b; /* first: the shared helpers use it */
	char *topic;
	const char *push_type;
	int priority;
	long expiration;   /* seconds since the epoch, 0 = deliver now or never */
	char collapse[65]; /* "" = none */
	char apns_id[37];
	char *jwt_used;
};

static char *url_dup(const char *s, const char *def)
{
	char *u = strdup(push_set(s) ? s : def);
	size_t n;

	if (u && (n = strlen(u)) > 0 && u[n - 1] == '/')
		u[n - 1] = '\0';
	return u;
}

static void apns_destroy(void *state)
{
	struct apns *a = state;

	if (!a)
		return;
	EVP_PKEY_free(a->key);
	free(a->key_id);
	free(a->team_id);
	free(a->cert_file);
	free(a->cert_key);
	free(a->url);
	free(a->sandbox_url);
	free(a->ca_file);
	free(a->jwt);
	free(a);
}

/* Certificate auth: the pair must load and match, the key must be private to us. */
static int check_cert_pair(const char *cert, const char *key, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	FILE *fp = NULL;
	int rc = -1;

	pk = push_key_load(key, err, errlen);
	if (!pk)
		goto out;
	fp = fopen(cert, "r");
	if (!fp) {
		snprintf(err, errlen, "%s: cannot open", cert);
		goto out;
	}
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	if (!x) {
		snprintf(err, errlen, "%s: not a PEM certificate", cert);
		goto out;
	}
	if (X509_check_private_key(x, pk) != 1) {
		snprintf(err, errlen, "%s does not match the key %s", cert, key);
		goto out;
	}
	rc = 0;
out:
	if (fp)
		fclose(fp);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

static int apns_create(void **state, struct push *p, const struct sw_config *cfg)
{
	struct apns *a = NULL;
	char err[512] = "";
	int rc = -1;

	*state = NULL;
	if (!push_set(cfg->push.apns.key_file) && !push_set(cfg->push.apns.certificate))
		return 1;
	a = calloc(1, sizeof(*a));
	if (!a)
		goto out;
	a->p = p;
	a->call_timeout = cfg->push.call_timeout > 0 ? cfg->push.call_timeout : 30;
	a->wakeup_ttl = cfg->push.wakeup_before_expiry > 0 ? cfg->push.wakeup_before_expiry : 120;
	a->url = url_dup(cfg->push.apns.url, APNS_DEFAULT_URL);
	a->sandbox_url = url_dup(cfg->push.apns.sandbox_url, APNS_DEFAULT_SANDBOX_URL);
	a->ca_file = push_set(cfg->push.apns.ca_file) ? strdup(cfg->push.apns.ca_file) : NULL;
	if (!a->url || !a->sandbox_url)
		goto out;
	if (push_set(cfg->push.apns.key_file)) {
		if (!push_set(cfg->push.apns.key_id) || !push_set(cfg->push.apns.team_id)) {
			snprintf(err, sizeof(err), "push.apns.%s is required with key_file",
				 push_set(cfg->push.apns.key_id) ? "team_id" : "key_id");
			goto out;
		}
		a->key = push_key_load(cfg->push.apns.key_file, err, sizeof(err));
		if (!a->key)
			goto out;
		if (!EVP_PKEY_is_a(a->key, "EC") || EVP_PKEY_get_bits(a->key) != 256) {
			snprintf(err, sizeof(err), "%s: not a P-256 (ES256) key",
				 cfg->push.apns.key_file);
			goto out;
		}
		a->key_id = strdup(cfg->push.apns.key_id);
		a->team_id = strdup(cfg->push.apns.team_id);
		if (!a->key_id || !a->team_id)
			goto out;
		if (push_set(cfg->push.apns.certificate))
			log_notice("push: apns: key_file and certificate both set, using token auth");
	} else {
		const char *key = push_set(cfg->push.apns.private_key) ? cfg->push.apns.private_key
								  : cfg->push.apns.certificate;
		if (check_cert_pair(cfg->push.apns.certificate, key, err, sizeof(err)) < 0)
			goto out;
		a->cert_file = strdup(cfg->push.apns.certificate);
		a->cert_key = strdup(key);
		if (!a->cert_file || !a->cert_key)
			goto out;
	}
	log_info("push: apns: %s, %s / %s", a->key ? "token auth (ES256 JWT)" : "certificate auth",
		 a->url, a->sandbox_url);
	rc = 0;
out:
	if (rc < 0) {
		log_error("push: apns: %s", err[0] ? err : "out of memory");
		apns_destroy(a);
		a = NULL;
	}
	*state = a;
	return rc;
}

/* The provider token, made again when older than APNS_JWT_REUSE_MS or when forced. */
static const char *apns_jwt(struct apns *a, bool force)
{
	uint64_t now = clock_now_ms();
	json_t *hdr, *claims;
	char *jwt;

	if (a->jwt && !force && now - a->jwt_ms < APNS_JWT_REUSE_MS)
		return a->jwt;
	hdr = json_pack("{s:s, s:s}", "alg", "ES256", "kid", a->key_id);
	claims = json_pack("{s:s, s:I}", "iss", a->team_id, "iat", (json_int_t)time(NULL));
	jwt = hdr && claims ? push_jwt_sign(a->key, "ES256", hdr, claims) : NULL;
	json_decref(hdr);
	json_decref(claims);
	if (!jwt) {
		log_error("push: apns: cannot sign the provider token");
		return a->jwt; /* keep the old one if any */
	}
	if (a->jwt)
		push_stats_mut(a->p, PN_APNS)->auth_refresh++;
	free(a->jwt);
	a->jwt = jwt;
	a->jwt_ms = now;
	return a->jwt;
}

/* ---- payload --------------------------------------------------------- */

struct apns_build {
	struct push_fields f;
	bool voip;
};

static const char *caller_label(const struct apns_build *b)
{
	if (b->f.from_name && b->f.from_name[0])
		return b->f.from_name;
	if (b->f.from_uri && b->f.from_uri[0])
		return b->f.from_uri;
	return "Unknown caller";
}

static json_t *apns_build_payload(void *arg, const char *text)
{
	const struct apns_build *b = arg;
	json_t *root = json_object(), *aps = json_object(), *alert = NULL;

	if (!root || !aps) {
		json_decref(root);
		json_decref(aps);
		return NULL;
	}
	switch (b->f.kind) {
	case PUSH_CALL:
		if (!b->voip) {
			alert = json_pack("{s:s, s:s}", "title", caller_label(b), "body",
					  "Incoming call");
			json_object_set_new(aps, "sound", json_string("default"));
		}
		break;
	case PUSH_MESSAGE:
		alert = json_pack("{s:s, s:s}", "title", caller_label(b), "body",
				  text ? text : "New message");
		json_object_set_new(aps, "sound", json_string("default"));
		json_object_set_new(aps, "mutable-content", json_integer(1));
		break;
	case PUSH_WAKEUP:
		json_object_set_new(aps, "content-available", json_integer(1));
		break;
	case PUSH_CANCEL:
		if (!b->voip)
			alert = json_pack("{s:s, s:s}", "title", caller_label(b), "body",
					  b->f.reason && strcmp(b->f.reason, "answered_elsewhere") == 0
						  ? "Call answered elsewhere"
						  : "Missed call");
		break;
	case PUSH_VOICEMAIL:
		/* The badge follows the mailbox; an alert only while messages wait. */
		json_object_set_new(aps, "badge", json_integer(b->f.vm_waiting ? b->f.vm_new : 0));
		if (b->f.vm_waiting && b->f.vm_new > 0) {
			char body[64];

			snprintf(body, sizeof(body), "%d new voice message%s", b->f.vm_new,
				 b->f.vm_new == 1 ? "" : "s");
			alert = json_pack("{s:s, s:s}", "title", "Voicemail", "body", body);
			json_object_set_new(aps, "sound", json_string("default"));
		}
		break;
	}
	if (alert)
		json_object_set_new(aps, "alert", alert);
	json_object_set_new(root, "aps", aps);
	push_fields_put(&b->f, root, NULL); /* the text is the alert's body */
	return root;
}

/* Build the JSON payload of r; the text of a message is cut to fit the limit. */
static char *apns_payload(const struct push_req *r, bool voip, size_t *len)
{
	struct apns_build b = {.voip = voip};
	char *json;

	push_fields_init(&b.f, r, PUSH_APNS_MAX_VOIP_PAYLOAD);
	json = push_fit_payload(apns_build_payload, &b, b.f.text,
				voip ? PUSH_APNS_MAX_VOIP_PAYLOAD : PUSH_APNS_MAX_PAYLOAD, len);
	push_fields_cleanup(&b.f);
	return json;
}

static bool is_hex_token(const char *t)
{
	size_t n = 0;

	for (; t[n]; n++)
		if (!((t[n] >= '0' && t[n] <= '9') || (t[n] >= 'a' && t[n] <= 'f') ||
		      (t[n] >= 'A' && t[n] <= 'F')))
			return false;
	return n > 0 && n <= APNS_MAX_TOKEN;
}

/* A header value we are willing to send: printable ASCII, no spaces. */
static bool is_topic(const char *t)
{
	size_t n = 0;

	for (; t[n]; n++)
		if (t[n] <= ' ' || t[n] > '~')
			return false;
	return n > 0 && n < 256;
}

static void collapse_id(const char *call_id, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	if (strlen(call_id) <= 64 && is_topic(call_id)) {
		snprintf(out, 65, "%s", call_id);
		return;
	}
	/*
	 * Apple caps apns-collapse-id at 64 bytes, and a header value must stay
	 * printable: use a digest of long or unusual Call-IDs.
	 */
	SHA256((const unsigned char *)call_id, strlen(call_id), md);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int apns_prepare(void *state, struct push_req *r)
{
	struct apns *a = state;
	struct apns_req *q = NULL;
	const char *topic = r->id.topic;
	int rc = -(int)PUSH_PERMANENT;

	/*
	 * PushKit for calls; and for a call's follow-up when the device has no
	 * remote-notification token: a VoIP-only app must hear that the call
	 * ended to dismiss CallKit (the payload says type "cancel").
	 */
	r->voip = push_set(r->id.voip_token) &&
		  (r->kind == PUSH_CALL || (r->kind == PUSH_CANCEL && !push_set(r->id.token)));
	r->token = r->voip ? r->id.voip_token : r->id.token;
	if (!push_set(r->token)) {
		snprintf(r->reason, sizeof(r->reason), "no remote-notification token for a %s push",
			 push_kind_name(r->kind));
		goto out;
	}
	if (!is_hex_token(r->token)) {
		snprintf(r->reason, sizeof(r->reason), "token is not hex");
		goto out;
	}
	if (!push_set(topic) || !is_topic(topic)) {
		snprintf(r->reason, sizeof(r->reason), "no usable topic (bundle id)");
		goto out;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		goto nomem;
	if (asprintf(&q->topic, "%s%s", topic, r->voip ? ".voip" : "") < 0) {
		q->topic = NULL;
		goto nomem;
	}
	q->b.body = apns_payload(r, r->voip, &q->b.body_len);
	if (!q->b.body) {
		snprintf(r->reason, sizeof(r->reason), "payload does not fit");
		goto out;
	}
	switch (r->kind) {
	case PUSH_CALL:
		q->push_type = r->voip ? "voip" : "alert";
		q->priority = 10;
		q->expiration = 0;
		break;
	case PUSH_MESSAGE:
		q->push_type = "alert";
		q->priority = 10;
		q->expiration = (long)time(NULL) + PUSH_MESSAGE_TTL;
		break;
	case PUSH_WAKEUP:
		q->push_type = "background";
		q->priority = 5;
		q->expiration = (long)time(NULL) + a->wakeup_ttl;
		break;
	case PUSH_CANCEL:
		q->push_type = r->voip ? "voip" : "alert";
		q->priority = 10;
		q->expiration = (long)time(NULL) + PUSH_CANCEL_TTL;
		break;
	case PUSH_VOICEMAIL: /* a badge-only update goes at low priority */
		q->push_type = "alert";
		q->priority = r->pl.vm_waiting && r->pl.vm_new > 0 ? 10 : 5;
		q->expiration = (long)time(NULL) + PUSH_MESSAGE_TTL;
		break;
	}
	if (r->kind == PUSH_WAKEUP)
		snprintf(q->collapse, sizeof(q->collapse), "sipwake-wakeup");
	else if (r->kind == PUSH_VOICEMAIL) /* only the latest count matters */
		snprintf(q->collapse, sizeof(q->collapse), "sipwake-voicemail");
	else if (push_set(r->pl.call_id))
		collapse_id(r->pl.call_id, q->collapse);
	push_uuid4(q->apns_id);
	r->pdata = q;
	q = NULL;
	rc = 0;
	goto out;
nomem:
	snprintf(r->reason, sizeof(r->reason), "out of memory");
	rc = -(int)PUSH_RETRYABLE;
out:
	if (q) {
		free(q->topic);
		free(q->b.body);
		free(q);
	}
	return rc;
}

static void apns_req_cleanup(struct push_req *r)
{
	struct apns_req *q = r->pdata;

	if (!q)
		return;
	push_body_release(&q->b);
	free(q->topic);
	free(q->jwt_used);
	free(q);
	r->pdata = NULL;
}

/* ---- one attempt ----------------------------------------------------- */

static int apns_start(void *state, struct push_req *r);

/*
 * What an APNs answer says, with no side effect (the fuzz target drives
 * it): the result of the HTTP status and the reason APNs gave; *refresh
 * when a 403 ExpiredProviderToken asks for a fresh provider token and one
 * may be made (can_refresh: token auth, not retried yet).
 */
static enum push_result apns_verdict(long status, const char *reason, bool can_refresh,
				     bool *refresh)
{
	*refresh = false;
	switch (status) {
	case 200:
		return PUSH_OK;
	case 410:
		return PUSH_TOKEN_INVALID;
	case 400:
		if (strcmp(reason, "BadDeviceToken") == 0 ||
		    strcmp(reason, "DeviceTokenNotForTopic") == 0)
			return PUSH_TOKEN_INVALID;
		return PUSH_PERMANENT;
	case 403:
		if (strcmp(reason, "ExpiredProviderToken") == 0 && can_refresh) {
			*refresh = true;
			return PUSH_RETRYABLE;
		}
		return PUSH_PERMANENT;
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return PUSH_RETRYABLE;
	default:
		return status >= 500 ? PUSH_RETRYABLE : PUSH_PERMANENT;
	}
}

/* The "reason" of an APNs error body into reason ("" when there is none). */
static void apns_reason(const char *body, size_t len, char *reason, size_t rlen)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *s = json_string_value(json_object_get(j, "reason"));

	snprintf(reason, rlen, "%s", s ? s : "");
	json_decref(j);
}

static enum push_result apns_classify(struct apns *a, struct push_req *r, long status,
				      const char *reason, bool *resend)
{
	struct apns_req *q = r->pdata;
	enum push_result res = apns_verdict(status, reason, a->key && !r->auth_retried, resend);

	if (*resend) {
		r->auth_retried = true;
		/* Only the first stream to hear it makes a new token. */
		if (q->jwt_used && a->jwt && strcmp(q->jwt_used, a->jwt) == 0)
			apns_jwt(a, true);
	} else if (status == 403) {
		push_stats_mut(a->p, PN_APNS)->auth_failures++;
		log_error("push: apns: CREDENTIAL PROBLEM: APNs answered 403 %s; check key_id, "
			  "team_id, the key or the certificate", reason[0] ? reason : "");
	}
	return res;
}

static void apns_done(void *arg, const struct push_http_result *res)
{
	struct push_req *r = arg;
	struct apns_req *q = r->pdata;
	struct apns *a = r->inst->state;
	enum push_result result;
	char reason[96] = "";
	bool resend = false;

	q->b.xfer = NULL;
	if (res->code != CURLE_OK) {
		push_attempt_failed(r, res);
		return;
	}
	if (res->status != 200 && res->body_len)
		apns_reason(res->body, res->body_len, reason, sizeof(reason));
	result = apns_classify(a, r, res->status, reason, &resend);
	if (resend) {
		/* Same attempt, fresh provider token: not a retry with backoff. */
		if (apns_start(a, r) == 0)
			return;
	}
	if (!reason[0] && res->status != 200)
		snprintf(reason, sizeof(reason), "HTTP %ld", res->status);
	r->retry_after_ms = (uint64_t)res->retry_after_s * 1000;
	push_attempt_done(r, result, (int)res->status, reason[0] ? reason : NULL);
}

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *fmt, ...)
{
	struct curl_slist *n;
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = curl_slist_append(l, buf);
	if (!n) {
		*ok = false;
		return l;
	}
	return n;
}

static int apns_start(void *state, struct push_req *r)
{
	struct apns *a = state;
	struct apns_req *q = r->pdata;
	struct push_http_request rq = {0};
	struct curl_slist *h = NULL;
	char *url = NULL;
	bool ok = true;
	int rc = -1;

	rq.timeout_ms = (long)push_req_remaining(r);
	if (rq.timeout_ms <= 0)
		goto out;
	if (a->key) {
		const char *jwt = apns_jwt(a, false);
		if (!jwt)
			goto out;
		free(q->jwt_used);
		q->jwt_used = strdup(jwt);
		if (!q->jwt_used)
			goto out;
		h = add_header(h, &ok, "authorization: bearer %s", jwt);
	}
	h = add_header(h, &ok, "apns-push-type: %s", q->push_type);
	h = add_header(h, &ok, "apns-topic: %s", q->topic);
	h = add_header(h, &ok, "apns-priority: %d", q->priority);
	h = add_header(h, &ok, "apns-expiration: %ld", q->expiration);
	if (q->collapse[0])
		h = add_header(h, &ok, "apns-collapse-id: %s", q->collapse);
	h = add_header(h, &ok, "apns-id: %s", q->apns_id);
	h = add_header(h, &ok, "content-type: application/json");
	h = add_header(h, &ok, "accept:");
	if (!ok)
		goto out;
	if (asprintf(&url, "%s/3/device/%s", r->id.sandbox ? a->sandbox_url : a->url, r->token) < 0) {
		url = NULL;
		goto out;
	}
	rq.url = url;
	rq.headers = h;
	h = NULL; /* owned by the transfer from here on */
	rq.body = q->b.body;
	rq.body_len = q->b.body_len;
	rq.ca_file = a->ca_file;
	rq.cert_file = a->cert_file;
	rq.key_file = a->cert_key;
	rc = push_http_start(push_get_http(a->p), &rq, apns_done, r, &q->b.xfer);
out:
	curl_slist_free_all(h);
	free(url);
	return rc;
}

const struct push_provider push_apns_provider = {
	.name = "apns",
	.id = PN_APNS,
	.create = apns_create,
	.destroy = apns_destroy,
	.prepare = apns_prepare,
	.start = apns_start,
	.abort = push_body_abort,
	.req_cleanup = apns_req_cleanup,
};
