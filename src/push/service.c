/* SPDX-License-Identifier: MIT */
/*
 * An operator's own push service (push.http): apps register with
 * pn-provider=<push.http.provider>; each push is a JSON POST to
 * push.http.url (HTTP/2 or HTTP/1.1, whatever the server speaks), with
 * push.http.auth_header, built from the push.http.body template. The
 * template is JSON: "${name}" placeholders inside its strings are replaced
 * by the push's values, a string that is exactly "${data}" by the whole
 * data object of an FCM message; the values are escaped by jansson, so no
 * value can change the body's structure. Answers like the other providers:
 * 2xx ok, 410 the token is dead, 429/5xx retried (Retry-After honoured),
 * 401/403 a credential problem, anything else (404 too) permanent.
 */
#include "push_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sipwake/log.h"

#define SERVICE_MAX_BODY 16384
#define SERVICE_DEFAULT_BODY \
	"{\"token\": \"${token}\", \"param\": \"${param}\", \"ttl\": \"${ttl}\", \"data\": \"${data}\"}"

/* The placeholders a template may use, in the order of struct values. */
static const char *const names[] = {
	"token", "param", "provider", "type",	 "call_id",	     "from_uri",  "from_name",
	"to_uri", "text",  "reason",   "ttl", "messages_waiting", "voice_new", "voice_old",
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

struct service {
	struct push *p;
	json_t *tmpl;
	char *url, *auth_header, *ca_file, *provider;
	int call_timeout, wakeup_ttl;
};

static int name_index(const char *name, size_t len)
{
	for (size_t i = 0; i < N_NAMES; i++)
		if (strlen(names[i]) == len && !memcmp(names[i], name, len))
			return (int)i;
	return -1;
}

/*
 * Substitute the placeholders of s with vals (NULL: check only). Returns a
 * malloc'd string, or NULL with *bad set to the first unknown or unclosed
 * placeholder.
 */
static char *expand(const char *s, const char *const vals[N_NAMES], const char **bad)
{
	size_t cap = strlen(s) + 1, n = 0;
	char *out = malloc(cap);

	while (out && *s) {
		const char *add = s, *close;
		size_t alen = 1;
		int k;

		if (s[0] == '$' && s[1] == '{') {
			close = strchr(s + 2, '}');
			k = close ? name_index(s + 2, (size_t)(close - s - 2)) : -1;
			if (k < 0) {
				*bad = s;
				free(out);
				return NULL;
			}
			add = vals && vals[k] ? vals[k] : "";
			alen = strlen(add);
			s = close + 1;
		} else {
			s++;
		}
		if (n + alen + 1 > cap) {
			char *grown = realloc(out, (cap = (n + alen + 1) * 2));
			if (!grown) {
				free(out);
				return NULL;
			}
			out = grown;
		}
		memcpy(out + n, add, alen);
		n += alen;
	}
	if (out)
		out[n] = 0;
	return out;
}

/*
 * A copy of the template with every string expanded; "${data}" alone
 * becomes data (a new reference each time). NULL on an unknown
 * placeholder (*bad names it) or ENOMEM.
 */
static json_t *fill(json_t *t, const char *const vals[N_NAMES], json_t *data, const char **bad)
{
	json_t *out = NULL, *v;
	const char *key;
	size_t i;

	if (json_is_string(t)) {
		char *s;
		if (!strcmp(json_string_value(t), "${data}"))
			return data ? json_incref(data) : json_object();
		s = expand(json_string_value(t), vals, bad);
		out = s ? json_string(s) : NULL;
		free(s);
		return out;
	}
	if (json_is_object(t)) {
		out = json_object();
		json_object_foreach(t, key, v) {
			json_t *c = fill(v, vals, data, bad);
			if (!c || json_object_set_new(out, key, c) < 0)
				goto fail;
		}
		return out;
	}
	if (json_is_array(t)) {
		out = json_array();
		json_array_foreach(t, i, v) {
			json_t *c = fill(v, vals, data, bad);
			if (!c || json_array_append_new(out, c) < 0)
				goto fail;
		}
		return out;
	}
	return json_incref(t); /* numbers, true, false, null: as written */
fail:
	json_decref(out);
	return NULL;
}

static void service_destroy(void *state)
{
	struct service *s = state;

	if (!s)
		return;
	json_decref(s->tmpl);
	free(s->url);
	free(s->auth_header);
	free(s->ca_file);
	free(s->provider);
	free(s);
}

static int service_create(void **state, struct push *p, const struct sw_config *cfg)
{
	const char *body = push_set(cfg->push.http.body) ? cfg->push.http.body : SERVICE_DEFAULT_BODY;
	const char *bad = NULL;
	struct service *s;
	json_error_t jerr;
	json_t *check;

	*state = NULL;
	if (!push_set(cfg->push.http.url) || !push_set(cfg->push.http.provider))
		return 1;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->p = p;
	s->call_timeout = cfg->push.call_timeout > 0 ? cfg->push.call_timeout : 30;
	s->wakeup_ttl = cfg->push.wakeup_before_expiry > 0 ? cfg->push.wakeup_before_expiry : 120;
	s->tmpl = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(s->tmpl)) {
		log_error("push: http: push.http.body is not a JSON object: %s", jerr.text);
		goto fail;
	}
	check = fill(s->tmpl, NULL, NULL, &bad);
	json_decref(check);
	if (bad) {
		log_error("push: http: push.http.body: unknown or unclosed placeholder at \"%.40s\"",
			  bad);
		goto fail;
	}
	if (!check)
		goto nomem;
	s->url = strdup(cfg->push.http.url);
	s->provider = strdup(cfg->push.http.provider);
	s->auth_header = push_set(cfg->push.http.auth_header) ? strdup(cfg->push.http.auth_header) : NULL;
	s->ca_file = push_set(cfg->push.http.ca_file) ? strdup(cfg->push.http.ca_file) : NULL;
	if (!s->url || !s->provider || (push_set(cfg->push.http.auth_header) && !s->auth_header) ||
	    (push_set(cfg->push.http.ca_file) && !s->ca_file))
		goto nomem;
	log_info("push: http: pn-provider=%s posts to %s", s->provider, s->url);
	*state = s;
	return 0;
nomem:
	log_error("push: http: out of memory");
fail:
	service_destroy(s);
	return -1;
}

static int service_prepare(void *state, struct push_req *r)
{
	struct service *s = state;
	struct push_fields f;
	struct push_body *q;
	json_t *data = json_object(), *body = NULL;
	char ttl[16], vnew[16], vold[16];
	const char *bad = NULL;
	int rc = -(int)PUSH_PERMANENT;

	r->voip = false;
	r->token = r->id.token;
	if (!r->id.service || strcasecmp(r->id.service, s->provider) != 0) {
		/* registered for a service of another name (push.http.provider changed) */
		snprintf(r->reason, sizeof(r->reason), "binding is for pn-provider %s, not %s",
			 r->id.service ? r->id.service : "?", s->provider);
		return rc;
	}
	push_fields_init(&f, r, PUSH_FCM_MAX_PAYLOAD);
	snprintf(ttl, sizeof(ttl), "%d", push_kind_ttl(r->kind, s->call_timeout, s->wakeup_ttl));
	snprintf(vnew, sizeof(vnew), "%d", f.vm_new);
	snprintf(vold, sizeof(vold), "%d", f.vm_old);
	{
		const char *const vals[N_NAMES] = {
			r->id.token, r->id.param, s->provider, push_kind_name(r->kind), f.call_id,
			f.from_uri, f.from_name, f.to_uri, f.text,
			f.kind == PUSH_CANCEL ? (f.reason ? f.reason : "missed") : NULL, ttl,
			f.kind == PUSH_VOICEMAIL ? (f.vm_waiting ? "yes" : "no") : NULL,
			f.kind == PUSH_VOICEMAIL ? vnew : NULL, f.kind == PUSH_VOICEMAIL ? vold : NULL,
		};

		if (data)
			push_fields_put(&f, data, f.text);
		body = data ? fill(s->tmpl, vals, data, &bad) : NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!push_set(r->token)) {
		snprintf(r->reason, sizeof(r->reason), "no token");
	} else if (!body || !q || !(q->body = json_dumps(body, JSON_COMPACT))) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
		rc = -(int)PUSH_RETRYABLE;
	} else if ((q->body_len = strlen(q->body)) > SERVICE_MAX_BODY) {
		snprintf(r->reason, sizeof(r->reason), "body larger than %d bytes", SERVICE_MAX_BODY);
	} else {
		r->pdata = q;
		q = NULL;
		rc = 0;
	}
	if (q)
		free(q->body);
	free(q);
	json_decref(body);
	json_decref(data);
	push_fields_cleanup(&f);
	return rc;
}

/*
 * The service's answer: 2xx ok, 410 dead token, 429/5xx later, else
 * permanent. Only 410 removes a binding: a wrong push.http.url answers 404
 * to every push, and must not wipe every device of the service.
 */
static enum push_result service_verdict(long status)
{
	if (status >= 200 && status < 300)
		return PUSH_OK;
	if (status == 410)
		return PUSH_TOKEN_INVALID;
	if (status == 429 || status >= 500)
		return PUSH_RETRYABLE;
	return PUSH_PERMANENT;
}

static void service_done(void *arg, const struct push_http_result *res)
{
	struct push_req *r = arg;
	struct push_body *q = r->pdata;
	struct service *s = r->inst->state;
	char reason[96] = "";

	q->xfer = NULL;
	if (res->code != CURLE_OK) {
		push_attempt_failed(r, res);
		return;
	}
	if (res->status == 401 || res->status == 403) {
		push_stats_mut(s->p, PN_HTTP)->auth_failures++;
		log_error("push: http: CREDENTIAL PROBLEM: %s answers %ld; check push.http.auth_header",
			  s->url, res->status);
	} else if (res->status == 404) {
		log_error("push: http: %s answers 404: check push.http.url (a dead token is 410)",
			  s->url);
	}
	if (res->status / 100 != 2)
		snprintf(reason, sizeof(reason), "HTTP %ld", res->status);
	r->retry_after_ms = (uint64_t)res->retry_after_s * 1000;
	push_attempt_done(r, service_verdict(res->status), (int)res->status,
			  reason[0] ? reason : NULL);
}

static int service_start(void *state, struct push_req *r)
{
	struct service *s = state;
	struct push_body *q = r->pdata;
	struct push_http_request rq = {0};
	struct curl_slist *h = NULL, *n;

	rq.timeout_ms = (long)push_req_remaining(r);
	if (rq.timeout_ms <= 0 || !(h = curl_slist_append(NULL, "content-type: application/json")))
		return -1;
	if (s->auth_header) {
		if (!(n = curl_slist_append(h, s->auth_header))) {
			curl_slist_free_all(h);
			return -1;
		}
		h = n;
	}
	rq.url = s->url;
	rq.headers = h;
	rq.body = q->body;
	rq.body_len = q->body_len;
	rq.ca_file = s->ca_file;
	return push_http_start(push_get_http(s->p), &rq, service_done, r, &q->xfer);
}

const char *push_service_name_of(void *state)
{
	return state ? ((struct service *)state)->provider : NULL;
}

const struct push_provider push_service_provider = {
	.name = "http",
	.id = PN_HTTP,
	.create = service_create,
	.destroy = service_destroy,
	.prepare = service_prepare,
	.start = service_start,
	.abort = push_body_abort,
	.req_cleanup = push_body_cleanup,
};
