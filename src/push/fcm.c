/* SPDX-License-Identifier: MIT */
/*
 * Firebase Cloud Messaging HTTP v1 provider. The service-account JSON is
 * read at start; an RS256-signed JWT assertion is exchanged for an OAuth2
 * access token in-process (no helper tool), cached until 5 minutes before
 * it expires (renewed in the background while it is still usable) and
 * fetched again once on a 401. Requests that arrive while no usable token
 * exists wait in a queue and leave together when it comes.
 * Messages are data-only, android.priority HIGH, ttl by kind.
 */
#include "push_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sipwake/log.h"

#define FCM_DEFAULT_URL "https://fcm.googleapis.com"
#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
#define FCM_TOKEN_MARGIN_MS (5u * 60 * 1000) /* renew this long before expiry */
#define FCM_TOKEN_LAST_USE_MS (30u * 1000)   /* never send with less validity left */
#define FCM_TOKEN_TIMEOUT_MS 10000
#define FCM_MAX_TOKEN 4096

struct fcm {
	struct push *p;
	EVP_PKEY *key;
	char *client_email, *project_id, *key_id;
	char *aud;       /* assertion audience: the account's token_uri */
	char *token_url; /* where the assertion is posted */
	char *send_url;
	char *ca_file;
	char *access;    /* OAuth2 access token */
	uint64_t access_expiry_ms;
	bool fetched_once;
	struct push_http_xfer *tok_xfer;
	struct push_req *wait_head, **wait_tail;
	int call_timeout, wakeup_ttl;
};

struct fcm_req {
	struct push_body b; /* first: the shared helpers use it */
	char *token_used;
	bool waiting;
};

static void fcm_destroy(void *state)
{
	struct fcm *f = state;

	if (!f)
		return;
	push_http_cancel(f->tok_xfer);
	EVP_PKEY_free(f->key);
	free(f->client_email);
	free(f->project_id);
	free(f->key_id);
	free(f->aud);
	free(f->token_url);
	free(f->send_url);
	free(f->ca_file);
	free(f->access);
	free(f);
}

static const char *sa_field(json_t *sa, const char *name, const char *path, char *err,
			    size_t errlen)
{
	const char *v = json_string_value(json_object_get(sa, name));

	if (!push_set(v)) {
		snprintf(err, errlen, "service account %s: missing field \"%s\"", path, name);
		return NULL;
	}
	return v;
}

static int fcm_create(void **state, struct push *p, const struct sw_config *cfg)
{
	const char *path = cfg->push.fcm.service_account;
	const char *project, *email, *pem, *token_uri;
	struct fcm *f = NULL;
	json_t *sa = NULL;
	json_error_t jerr;
	char err[512] = "";
	size_t n;
	int rc = -1;

	*state = NULL;
	if (!push_set(path))
		return 1;
	f = calloc(1, sizeof(*f));
	if (!f)
		goto out;
	f->p = p;
	f->wait_tail = &f->wait_head;
	f->call_timeout = cfg->push.call_timeout > 0 ? cfg->push.call_timeout : 30;
	f->wakeup_ttl = cfg->push.wakeup_before_expiry > 0 ? cfg->push.wakeup_before_expiry : 120;
	if (push_key_file_check(path, err, sizeof(err)) < 0)
		goto out;
	sa = json_load_file(path, 0, &jerr);
	if (!sa) {
		snprintf(err, sizeof(err), "service account %s:%d: %s", path, jerr.line, jerr.text);
		goto out;
	}
	if (!(project = sa_field(sa, "project_id", path, err, sizeof(err))) ||
	    !(email = sa_field(sa, "client_email", path, err, sizeof(err))) ||
	    !(pem = sa_field(sa, "private_key", path, err, sizeof(err))))
		goto out;
	token_uri = json_string_value(json_object_get(sa, "token_uri"));
	if (!push_set(token_uri) && !push_set(cfg->push.fcm.token_url)) {
		sa_field(sa, "token_uri", path, err, sizeof(err));
		goto out;
	}
	f->key = push_key_from_pem(pem, err, sizeof(err));
	if (!f->key)
		goto out;
	if (!EVP_PKEY_is_a(f->key, "RSA")) {
		snprintf(err, sizeof(err), "service account %s: private_key is not an RSA key", path);
		goto out;
	}
	f->project_id = strdup(project);
	f->client_email = strdup(email);
	if (push_set(json_string_value(json_object_get(sa, "private_key_id"))))
		f->key_id = strdup(json_string_value(json_object_get(sa, "private_key_id")));
	f->aud = strdup(push_set(token_uri) ? token_uri : cfg->push.fcm.token_url);
	f->token_url = strdup(push_set(cfg->push.fcm.token_url) ? cfg->push.fcm.token_url : token_uri);
	f->ca_file = push_set(cfg->push.fcm.ca_file) ? strdup(cfg->push.fcm.ca_file) : NULL;
	if (!f->project_id || !f->client_email || !f->aud || !f->token_url)
		goto out;
	if (asprintf(&f->send_url, "%s", push_set(cfg->push.fcm.url) ? cfg->push.fcm.url : FCM_DEFAULT_URL) < 0) {
		f->send_url = NULL;
		goto out;
	}
	n = strlen(f->send_url);
	if (n && f->send_url[n - 1] == '/')
		f->send_url[n - 1] = '\0';
	{
		char *u = NULL;
		if (asprintf(&u, "%s/v1/projects/%s/messages:send", f->send_url, f->project_id) < 0)
			goto out;
		free(f->send_url);
		f->send_url = u;
	}
	log_info("push: fcm: project %s as %s, token from %s", f->project_id, f->client_email,
		 f->token_url);
	rc = 0;
out:
	json_decref(sa);
	if (rc < 0) {
		log_error("push: fcm: %s", err[0] ? err : "out of memory");
		fcm_destroy(f);
		f = NULL;
	}
	*state = f;
	return rc;
}

/* ---- payload --------------------------------------------------------- */

struct fcm_build {
	struct push_fields f;
	const char *token;
	char ttl[24];
};

static json_t *fcm_build_message(void *arg, const char *text)
{
	const struct fcm_build *b = arg;
	json_t *data = json_object();

	if (!data)
		return NULL;
	push_fields_put(&b->f, data, text);
	return json_pack("{s:{s:s, s:o, s:{s:s, s:s}}}", "message", "token", b->token, "data", data,
			 "android", "priority", "HIGH", "ttl", b->ttl);
}

static int fcm_prepare(void *state, struct push_req *r)
{
	struct fcm *f = state;
	struct fcm_build b = {0};
	struct fcm_req *q = NULL;
	int rc = -(int)PUSH_PERMANENT;

	r->voip = false;
	r->token = push_set(r->id.token) ? r->id.token : r->id.voip_token;
	if (!push_set(r->token) || strlen(r->token) > FCM_MAX_TOKEN) {
		snprintf(r->reason, sizeof(r->reason), "no usable registration token");
		return rc;
	}
	b.token = r->token;
	snprintf(b.ttl, sizeof(b.ttl), "%ds", push_kind_ttl(r->kind, f->call_timeout, f->wakeup_ttl));
	push_fields_init(&b.f, r, PUSH_FCM_MAX_PAYLOAD);
	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
		rc = -(int)PUSH_RETRYABLE;
		goto out;
	}
	q->b.body = push_fit_payload(fcm_build_message, &b, b.f.text, PUSH_FCM_MAX_PAYLOAD,
				   &q->b.body_len);
	if (!q->b.body) {
		snprintf(r->reason, sizeof(r->reason), "payload does not fit");
		goto out;
	}
	r->pdata = q;
	q = NULL;
	rc = 0;
out:
	free(q);
	push_fields_cleanup(&b.f);
	return rc;
}

static void fcm_req_cleanup(struct push_req *r)
{
	struct fcm_req *q = r->pdata;

	if (!q)
		return;
	push_body_release(&q->b);
	free(q->token_used);
	free(q);
	r->pdata = NULL;
}

/* ---- OAuth2 access token ---------------------------------------------- */

static int fcm_send(struct fcm *f, struct push_req *r);
static int fcm_start(void *state, struct push_req *r);

static void waitq_remove(struct fcm *f, struct push_req *r)
{
	struct push_req **pp = &f->wait_head;

	while (*pp && *pp != r)
		pp = &(*pp)->wait_next;
	if (*pp) {
		*pp = r->wait_next;
		if (f->wait_tail == &r->wait_next)
			f->wait_tail = pp;
	}
	r->wait_next = NULL;
	((struct fcm_req *)r->pdata)->waiting = false;
}

/*
 * What the OAuth2 token endpoint answered, with no side effect (the fuzz
 * target drives it). PUSH_OK with *access (malloc'd) and *ttl (seconds,
 * 3600 when absent or not positive); otherwise *access is NULL, reason
 * says why and the result is PUSH_PERMANENT for a refusal of the
 * credentials (4xx but 429), PUSH_RETRYABLE else. A lifetime beyond a
 * day is taken as a day (Google's are an hour; the expiry time must not
 * wrap).
 */
static enum push_result fcm_token_answer(long status, const char *body, size_t len,
					 char **access, json_int_t *ttl, char *reason, size_t rlen)
{
	enum push_result res = PUSH_RETRYABLE;
	json_t *j = json_loadb(body, len, 0, NULL);

	*access = NULL;
	*ttl = 0;
	if (status == 200) {
		const char *tok = json_string_value(json_object_get(j, "access_token"));
		json_int_t t = json_integer_value(json_object_get(j, "expires_in"));

		if (push_set(tok) && (*access = strdup(tok))) {
			*ttl = t > 0 ? (t < 86400 ? t : 86400) : 3600;
			res = PUSH_OK;
		} else {
			snprintf(reason, rlen, "oauth: answer without access_token");
		}
	} else {
		const char *e = json_string_value(json_object_get(j, "error"));

		snprintf(reason, rlen, "oauth: HTTP %ld %s", status, e ? e : "");
		if (status >= 400 && status < 500 && status != 429)
			res = PUSH_PERMANENT;
	}
	json_decref(j);
	return res;
}

/* The error code of an FCM error body (details' errorCode over status), "" if none. */
static void fcm_reason(const char *body, size_t len, char *reason, size_t rlen)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	json_t *err = json_object_get(j, "error"), *d;
	const char *code = json_string_value(json_object_get(err, "status"));
	size_t i;

	json_array_foreach(json_object_get(err, "details"), i, d) {
		const char *ec = json_string_value(json_object_get(d, "errorCode"));
		if (ec)
			code = ec;
	}
	snprintf(reason, rlen, "%s", code ? code : "");
	json_decref(j);
}

/*
 * What an FCM answer says, with no side effect: the result of the status
 * and error code; *refresh when a 401 asks for a new access token and one
 * may be fetched (can_refresh: not retried yet). Only an explicit
 * UNREGISTERED removes a binding: a plain 404 can also mean a wrong
 * project, which must not wipe every device.
 */
static enum push_result fcm_verdict(long status, const char *reason, bool can_refresh,
				    bool *refresh)
{
	*refresh = false;
	switch (status) {
	case 200:
		return PUSH_OK;
	case 400:
	case 404:
		return strcmp(reason, "UNREGISTERED") == 0 ? PUSH_TOKEN_INVALID : PUSH_PERMANENT;
	case 401:
		if (can_refresh) {
			*refresh = true;
			return PUSH_RETRYABLE;
		}
		return PUSH_PERMANENT;
	case 403:
		return PUSH_PERMANENT;
	default:
		return status == 429 || status >= 500 ? PUSH_RETRYABLE : PUSH_PERMANENT;
	}
}

static void token_done(void *arg, const struct push_http_result *res)
{
	struct fcm *f = arg;
	struct push_req *list = f->wait_head, *r;
	enum push_result fail = PUSH_RETRYABLE;
	char reason[96] = "";

	f->tok_xfer = NULL;
	f->wait_head = NULL;
	f->wait_tail = &f->wait_head;
	if (res->code != CURLE_OK) {
		snprintf(reason, sizeof(reason), "oauth: %s",
			 res->code == CURLE_OPERATION_TIMEDOUT ? "timeout" : res->error);
	} else {
		char *tok = NULL;
		json_int_t ttl = 0;

		fail = fcm_token_answer(res->status, res->body, res->body_len, &tok, &ttl, reason,
					sizeof(reason));
		if (tok) {
			free(f->access);
			f->access = tok;
			f->access_expiry_ms = clock_now_ms() + (uint64_t)ttl * 1000;
			if (f->fetched_once)
				push_stats_mut(f->p, PN_FCM)->auth_refresh++;
			f->fetched_once = true;
			log_info("push: fcm: access token obtained, valid %llds", (long long)ttl);
		} else if (fail == PUSH_PERMANENT) {
			push_stats_mut(f->p, PN_FCM)->auth_failures++;
			log_error("push: fcm: CREDENTIAL PROBLEM: the token endpoint refuses the "
				  "service account %s: %s", f->client_email, reason);
		}
	}
	/* Callbacks may queue new requests: work on the detached list. */
	while ((r = list)) {
		list = r->wait_next;
		r->wait_next = NULL;
		((struct fcm_req *)r->pdata)->waiting = false;
		if (reason[0])
			push_attempt_done(r, fail, (int)res->status, reason);
		else if (fcm_send(f, r) < 0)
			push_attempt_done(r, PUSH_RETRYABLE, 0, "cannot start request");
	}
}

static int token_fetch(struct fcm *f)
{
	static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
				    "&assertion=";
	struct push_http_request rq = {0};
	json_t *hdr = NULL, *claims = NULL;
	char *jwt = NULL, *body = NULL;
	time_t now = time(NULL);
	int rc = -1;

	hdr = f->key_id ? json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "kid", f->key_id)
			: json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", f->client_email, "scope", FCM_SCOPE,
			   "aud", f->aud, "iat", (json_int_t)now, "exp", (json_int_t)now + 3600);
	if (!hdr || !claims)
		goto out;
	jwt = push_jwt_sign(f->key, "RS256", hdr, claims);
	if (!jwt || asprintf(&body, "%s%s", grant, jwt) < 0) {
		body = NULL;
		goto out;
	}
	rq.url = f->token_url;
	rq.headers = curl_slist_append(NULL, "content-type: application/x-www-form-urlencoded");
	if (!rq.headers)
		goto out;
	rq.body = body;
	rq.body_len = strlen(body);
	rq.timeout_ms = FCM_TOKEN_TIMEOUT_MS;
	rq.ca_file = f->ca_file;
	rc = push_http_start(push_get_http(f->p), &rq, token_done, f, &f->tok_xfer);
out:
	if (rc < 0)
		log_error("push: fcm: cannot request an access token");
	json_decref(hdr);
	json_decref(claims);
	free(jwt);
	free(body);
	return rc;
}

/* ---- one attempt ----------------------------------------------------- */

static void fcm_done(void *arg, const struct push_http_result *res)
{
	struct push_req *r = arg;
	struct fcm_req *q = r->pdata;
	struct fcm *f = r->inst->state;
	enum push_result result;
	char reason[96] = "";
	bool refresh = false;

	q->b.xfer = NULL;
	if (res->code != CURLE_OK) {
		push_attempt_failed(r, res);
		return;
	}
	if (res->status != 200)
		fcm_reason(res->body, res->body_len, reason, sizeof(reason));
	result = fcm_verdict(res->status, reason, !r->auth_retried, &refresh);
	if (refresh) {
		r->auth_retried = true;
		/* The first stream to hear it drops the token; the others just wait. */
		if (f->access && q->token_used && strcmp(f->access, q->token_used) == 0) {
			free(f->access);
			f->access = NULL;
			f->access_expiry_ms = 0;
		}
		if (fcm_start(f, r) == 0)
			return;
	} else if (res->status == 401) {
		push_stats_mut(f->p, PN_FCM)->auth_failures++;
		log_error("push: fcm: CREDENTIAL PROBLEM: FCM answers 401 to a fresh access token "
			  "of %s; check the service account's permissions", f->client_email);
	} else if (res->status == 404 && result == PUSH_PERMANENT) {
		log_error("push: fcm: 404 %s for project %s: check the service account", reason,
			  f->project_id);
	} else if (res->status == 403) {
		log_error("push: fcm: 403 %s for project %s", reason, f->project_id);
	}
	if (!reason[0] && res->status != 200)
		snprintf(reason, sizeof(reason), "HTTP %ld", res->status);
	r->retry_after_ms = (uint64_t)res->retry_after_s * 1000; /* Google asks to honour it */
	push_attempt_done(r, result, (int)res->status, reason[0] ? reason : NULL);
}

static int fcm_send(struct fcm *f, struct push_req *r)
{
	struct fcm_req *q = r->pdata;
	struct push_http_request rq = {0};
	struct curl_slist *h = NULL, *n;
	char *auth = NULL;
	int rc = -1;

	rq.timeout_ms = (long)push_req_remaining(r);
	if (rq.timeout_ms <= 0 || !f->access)
		goto out;
	free(q->token_used);
	q->token_used = strdup(f->access);
	if (!q->token_used || asprintf(&auth, "authorization: Bearer %s", f->access) < 0) {
		auth = NULL;
		goto out;
	}
	if (!(n = curl_slist_append(h, auth)))
		goto out;
	h = n;
	if (!(n = curl_slist_append(h, "content-type: application/json; charset=UTF-8")))
		goto out;
	h = n;
	rq.url = f->send_url;
	rq.headers = h;
	h = NULL;
	rq.body = q->b.body;
	rq.body_len = q->b.body_len;
	rq.ca_file = f->ca_file;
	rc = push_http_start(push_get_http(f->p), &rq, fcm_done, r, &q->b.xfer);
out:
	curl_slist_free_all(h);
	free(auth);
	return rc;
}

static int fcm_start(void *state, struct push_req *r)
{
	struct fcm *f = state;
	struct fcm_req *q = r->pdata;

	uint64_t now = clock_now_ms();

	if (f->access && now + FCM_TOKEN_MARGIN_MS < f->access_expiry_ms)
		return fcm_send(f, r);
	if (f->access && now + FCM_TOKEN_LAST_USE_MS < f->access_expiry_ms) {
		/* Due for renewal but still good: use it, renew in the background. */
		if (!f->tok_xfer)
			token_fetch(f);
		return fcm_send(f, r);
	}
	q->waiting = true;
	r->wait_next = NULL;
	*f->wait_tail = r;
	f->wait_tail = &r->wait_next;
	if (!f->tok_xfer && token_fetch(f) < 0) {
		waitq_remove(f, r);
		return -1;
	}
	return 0;
}

static void fcm_abort(void *state, struct push_req *r)
{
	struct fcm *f = state;
	struct fcm_req *q = r->pdata;

	if (!q)
		return;
	if (q->waiting)
		waitq_remove(f, r);
	push_body_abort(state, r);
}

const struct push_provider push_fcm_provider = {
	.name = "fcm",
	.id = PN_FCM,
	.create = fcm_create,
	.destroy = fcm_destroy,
	.prepare = fcm_prepare,
	.start = fcm_start,
	.abort = fcm_abort,
	.req_cleanup = fcm_req_cleanup,
};
