/* SPDX-License-Identifier: MIT */
/*
 * The provider-neutral push dispatcher: takes push_send() from the router,
 * applies the per-device rate limit and the queue bound, hands the request
 * to a provider (apns.c, fcm.c through struct push_provider), retries
 * retryable failures with exponential backoff inside the caller's deadline,
 * fires the token-invalid and completion callbacks, and keeps the counters.
 * Requests are reference-counted: the dispatcher holds one while the push
 * is live, the requester may hold another and let go at any time.
 */
#include "push_int.h"
#include "webpush.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipwake/log.h"

#define PUSH_DEFAULT_DEADLINE_MS 10000
#define PUSH_MAX_PENDING 20000      /* live requests, all providers */
#define PUSH_BACKOFF_FIRST_MS 100
#define PUSH_BACKOFF_MAX_MS 5000
#define RATE_BUCKETS 4096

const double push_latency_bounds[PUSH_LATENCY_BUCKETS - 1] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
};

/* Last push time per (provider, token, kind), for push.min_interval. */
struct rate_entry {
	struct rate_entry *next;
	uint64_t hash;
	uint64_t last_ms;
	char key[];
};

struct push {
	su_root_t *root;
	struct push_http *http;
	struct push_inst *inst[PUSH_PROVIDER_SLOTS];
	struct push_inst *retired;
	push_token_invalid_fn *tok_cb;
	void *tok_ctx;
	struct push_provider_stats stats[PUSH_PROVIDER_SLOTS];
	struct push_req *live;
	unsigned pending, max_pending;
	uint64_t min_interval_ms;
	struct rate_entry *rate[RATE_BUCKETS];
	unsigned rate_count, rate_sweep_at;
};

static const struct push_provider *const providers[] = {
	&push_apns_provider,
	&push_fcm_provider,
	&push_webpush_provider,
	&push_service_provider,
};

static int curl_users;

/* push.http2: which HTTP/2 client carries https pushes. */
static bool push_use_nghttp2(const struct sw_config *cfg)
{
	return cfg->push.http2 && strcmp(cfg->push.http2, "nghttp2") == 0;
}

const char *push_kind_name(enum push_kind kind)
{
	static const char *const names[] = {"call", "message", "wakeup", "cancel", "voicemail"};
	return (unsigned)kind < PUSH_KIND_COUNT ? names[kind] : "?";
}

const char *push_result_name(enum push_result res)
{
	static const char *const names[] = {"ok",        "token_invalid", "retryable",
					    "permanent", "rate_limited",  "not_configured"};
	return (unsigned)res < PUSH_RESULT_COUNT ? names[res] : "?";
}

const char *push_provider_name(enum pn_provider prov)
{
	static const char *const names[PN_PROVIDER_COUNT] = {"none", "apns", "fcm", "webpush",
								     "http"};

	return (unsigned)prov < PN_PROVIDER_COUNT ? names[prov] : "none";
}

struct push_http *push_get_http(struct push *p)
{
	return p->http;
}

su_root_t *push_get_root(struct push *p)
{
	return p->root;
}

struct push_provider_stats *push_stats_mut(struct push *p, enum pn_provider prov)
{
	return &p->stats[(unsigned)prov < PUSH_PROVIDER_SLOTS ? prov : 0];
}

const struct push_provider_stats *push_stats(struct push *p, enum pn_provider prov)
{
	return push_stats_mut(p, prov);
}

unsigned push_pending(struct push *p)
{
	return p->pending;
}

void push_set_queue_limit(struct push *p, unsigned max)
{
	p->max_pending = max ? max : PUSH_MAX_PENDING;
}

uint64_t push_req_remaining(const struct push_req *r)
{
	uint64_t now = clock_now_ms();
	return r->deadline_ms > now ? r->deadline_ms - now : 0;
}

bool push_provider_enabled(struct push *p, enum pn_provider prov)
{
	return (unsigned)prov < PUSH_PROVIDER_SLOTS && p->inst[prov] != NULL;
}

const char *push_service_name(struct push *p)
{
	return p->inst[PN_HTTP] ? push_service_name_of(p->inst[PN_HTTP]->state) : NULL;
}

const char *push_vapid_public_key(struct push *p)
{
	return p->inst[PN_WEBPUSH] ? webpush_public_b64(p->inst[PN_WEBPUSH]->state) : NULL;
}

void push_set_token_invalid_cb(struct push *p, push_token_invalid_fn *fn, void *ctx)
{
	p->tok_cb = fn;
	p->tok_ctx = ctx;
}

void push_counters_foreach(struct push *p, push_counter_fn *fn, void *ctx)
{
	for (int prov = PN_APNS; prov < PN_PROVIDER_COUNT; prov++)
		for (int k = 0; k < PUSH_KIND_COUNT; k++)
			for (int r = 0; r < PUSH_RESULT_COUNT; r++)
				if (p->stats[prov].results[k][r])
					fn(ctx, push_provider_name(prov), push_kind_name(k),
					   push_result_name(r), p->stats[prov].results[k][r]);
}

/* ---- provider instances -------------------------------------------- */

static void inst_destroy(struct push_inst *in)
{
	in->ops->destroy(in->state);
	free(in);
}

/* Free retired instances nobody uses any more. */
static void inst_reap(struct push *p)
{
	struct push_inst **pp = &p->retired;

	while (*pp) {
		struct push_inst *in = *pp;
		if (in->inflight == 0) {
			*pp = in->next;
			inst_destroy(in);
		} else {
			pp = &in->next;
		}
	}
}

static void inst_retire(struct push *p, struct push_inst *in)
{
	if (!in)
		return;
	in->retired = true;
	in->next = p->retired;
	p->retired = in;
}

/* Load every provider from cfg into fresh instances. -1 on a bad credential. */
static int load_providers(struct push *p, const struct sw_config *cfg,
			  struct push_inst *fresh[PUSH_PROVIDER_SLOTS])
{
	int rc = 0;

	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
		const struct push_provider *ops = providers[i];
		struct push_inst *in;
		void *state = NULL;
		int r = ops->create(&state, p, cfg);

		fresh[ops->id] = NULL;
		if (r < 0) {
			rc = -1;
			continue;
		}
		if (r > 0)
			continue;
		in = calloc(1, sizeof(*in));
		if (!in) {
			ops->destroy(state);
			rc = -1;
			continue;
		}
		in->ops = ops;
		in->state = state;
		in->p = p;
		fresh[ops->id] = in;
	}
	if (rc < 0) {
		for (int i = 0; i < PUSH_PROVIDER_SLOTS; i++) {
			if (fresh[i])
				inst_destroy(fresh[i]);
			fresh[i] = NULL;
		}
	}
	return rc;
}

int push_new(struct push **out, su_root_t *root, const struct sw_config *cfg)
{
	struct push *p = calloc(1, sizeof(*p));
	struct push_inst *fresh[PUSH_PROVIDER_SLOTS] = {0};
	int rc = -1;

	*out = NULL;
	if (!p)
		goto out;
	if (curl_users++ == 0)
		curl_global_init(CURL_GLOBAL_DEFAULT);
	p->root = root;
	p->min_interval_ms = cfg->push.min_interval > 0 ? (uint64_t)cfg->push.min_interval * 1000 : 0;
	p->rate_sweep_at = 1024;
	p->max_pending = PUSH_MAX_PENDING;
	if (push_http_new(&p->http, root) < 0)
		goto out;
	push_http_set_transport(p->http, push_use_nghttp2(cfg));
	if (load_providers(p, cfg, fresh) < 0)
		goto out;
	memcpy(p->inst, fresh, sizeof(fresh));
	for (int i = PN_APNS; i < PN_PROVIDER_COUNT; i++)
		log_info("push: %s %s", push_provider_name(i),
			 p->inst[i] ? "enabled" : "not configured");
	rc = 0;
out:
	if (rc < 0) {
		push_free(p);
		p = NULL;
	}
	*out = p;
	return rc;
}

int push_reload(struct push *p, const struct sw_config *cfg)
{
	struct push_inst *fresh[PUSH_PROVIDER_SLOTS] = {0};

	if (load_providers(p, cfg, fresh) < 0) {
		log_error("push: reload failed, keeping the previous credentials");
		return -1;
	}
	for (int i = 0; i < PUSH_PROVIDER_SLOTS; i++) {
		inst_retire(p, p->inst[i]);
		p->inst[i] = fresh[i];
	}
	p->min_interval_ms = cfg->push.min_interval > 0 ? (uint64_t)cfg->push.min_interval * 1000 : 0;
	push_http_set_transport(p->http, push_use_nghttp2(cfg));
	inst_reap(p);
	{
		char list[128];
		size_t n = 0;

		list[0] = 0;
		for (int i = PN_APNS; i < PN_PROVIDER_COUNT && n < sizeof(list); i++)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s %s", n ? ", " : "",
					      push_provider_name(i), p->inst[i] ? "enabled" : "off");
		log_notice("push: credentials reloaded (%s)", list);
	}
	return 0;
}

/* ---- requests -------------------------------------------------------- */

static void req_unref(struct push_req *r)
{
	if (!r || --r->refs > 0)
		return;
	if (r->retry_timer)
		su_timer_destroy(r->retry_timer);
	if (r->pdata)
		r->ops->req_cleanup(r);
	pn_identity_cleanup(&r->id);
	free((char *)r->pl.call_id);
	free((char *)r->pl.from_uri);
	free((char *)r->pl.from_name);
	free((char *)r->pl.text);
	free((char *)r->pl.reason);
	free((char *)r->pl.to_uri);
	free(r);
}

void push_req_detach(struct push_req *r)
{
	if (!r)
		return;
	r->detached = true;
	r->cb = NULL;
	req_unref(r);
}

static void live_unlink(struct push *p, struct push_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (p->live == r)
		p->live = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	p->pending--;
}

static void count_result(struct push *p, enum pn_provider prov, enum push_kind kind,
			 enum push_result res)
{
	p->stats[prov].results[kind][res]++;
}

static void count_latency(struct push_provider_stats *st, double ms)
{
	int b = 0;

	while (b < PUSH_LATENCY_BUCKETS - 1 && ms > push_latency_bounds[b])
		b++;
	st->latency_hist[b]++;
	st->latency_count++;
	st->latency_sum_ms += ms;
}

static void req_finish(struct push_req *r, enum push_result res)
{
	struct push *p = r->p;
	enum pn_provider prov = r->id.provider;
	double latency = clock_now_msf() - r->start_msf;
	char tb[LOG_TOKEN_BUFSZ];
	const char *reason = r->reason[0] ? r->reason : NULL;

	live_unlink(p, r);
	count_result(p, prov, r->kind, res);
	if (r->last_status > 0)
		count_latency(&p->stats[prov], latency);
	log_msg(res == PUSH_OK ? SW_LOG_INFO : SW_LOG_NOTICE,
		"push %s %s%s token=%s status=%d result=%s reason=%s latency=%.1fms attempts=%u",
		push_provider_name(prov), push_kind_name(r->kind), r->voip ? "/voip" : "",
		log_token(r->token, tb), r->last_status, push_result_name(res),
		reason ? reason : "-", latency, r->attempts);
	if (res == PUSH_TOKEN_INVALID) {
		p->stats[prov].tokens_removed++;
		if (p->tok_cb)
			p->tok_cb(p->tok_ctx, &r->id, r->token);
	}
	if (r->cb && !r->detached) {
		push_done_fn *cb = r->cb;
		r->cb = NULL;
		cb(r->ctx, res, r->last_status, reason, latency);
	}
	req_unref(r); /* the dispatcher's reference */
}

static void req_attempt(struct push_req *r);

static void retry_fired(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
	struct push_req *r = arg;

	req_attempt(r);
}

/* Wait and try again, or give up when the deadline would pass. */
static void req_retry_later(struct push_req *r)
{
	uint64_t backoff = PUSH_BACKOFF_FIRST_MS;
	uint64_t remaining = push_req_remaining(r);

	for (unsigned i = 1; i < r->attempts && backoff < PUSH_BACKOFF_MAX_MS; i++)
		backoff *= 2;
	if (backoff > PUSH_BACKOFF_MAX_MS)
		backoff = PUSH_BACKOFF_MAX_MS;
	backoff += (uint64_t)(random() % (long)(backoff / 4 + 1)); /* spread a burst */
	if (r->retry_after_ms > backoff) /* the provider asked for a longer pause */
		backoff = r->retry_after_ms;
	r->retry_after_ms = 0;
	/* A retry needs some time of its own to be worth it. */
	if (backoff + 50 >= remaining) {
		req_finish(r, PUSH_RETRYABLE);
		return;
	}
	if (!r->retry_timer)
		r->retry_timer = su_timer_create(su_root_task(r->p->root), 0);
	if (!r->retry_timer ||
	    su_timer_set_interval(r->retry_timer, retry_fired, r, (su_duration_t)backoff) < 0) {
		req_finish(r, PUSH_RETRYABLE);
		return;
	}
}

static void req_attempt(struct push_req *r)
{
	struct push *p = r->p;
	struct push_inst *in = p->inst[r->id.provider];

	if (!in) { /* credentials removed by a reload */
		snprintf(r->reason, sizeof(r->reason), "provider not configured");
		req_finish(r, PUSH_NOT_CONFIGURED);
		return;
	}
	if (push_req_remaining(r) == 0) {
		if (!r->reason[0])
			snprintf(r->reason, sizeof(r->reason), "deadline");
		req_finish(r, PUSH_RETRYABLE);
		return;
	}
	/* pdata (payload, topic) does not depend on credentials: kept across reloads. */
	r->inst = in;
	r->attempts++;
	p->stats[r->id.provider].attempts++;
	if (r->attempts > 1)
		p->stats[r->id.provider].retries++;
	in->inflight++;
	r->in_attempt = true;
	if (in->ops->start(in->state, r) < 0) {
		in->inflight--;
		r->in_attempt = false;
		snprintf(r->reason, sizeof(r->reason), "cannot start request");
		req_retry_later(r);
	}
}

void push_attempt_done(struct push_req *r, enum push_result res, int http_status,
		       const char *reason)
{
	struct push_inst *in = r->inst;
	struct push *p = r->p;

	r->in_attempt = false;
	in->inflight--;
	r->last_status = http_status;
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
	if (in->retired && in->inflight == 0)
		inst_reap(p);
	if (res == PUSH_RETRYABLE)
		req_retry_later(r);
	else
		req_finish(r, res);
}

void push_attempt_failed(struct push_req *r, const struct push_http_result *res)
{
	enum push_result result = PUSH_RETRYABLE;

	if (res->code == CURLE_PEER_FAILED_VERIFICATION || res->code == CURLE_SSL_CACERT_BADFILE ||
	    res->code == CURLE_SSL_CERTPROBLEM) {
		log_error("push: %s: TLS problem: %s", r->ops->name, res->error);
		result = PUSH_PERMANENT;
	}
	push_attempt_done(r, result, 0,
			  res->code == CURLE_OPERATION_TIMEDOUT ? "timeout" : res->error);
}

/* ---- rate limit ------------------------------------------------------ */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static void rate_sweep(struct push *p, uint64_t now)
{
	for (int b = 0; b < RATE_BUCKETS; b++) {
		struct rate_entry **pp = &p->rate[b];
		while (*pp) {
			struct rate_entry *e = *pp;
			if (now - e->last_ms >= p->min_interval_ms) {
				*pp = e->next;
				free(e);
				p->rate_count--;
			} else {
				pp = &e->next;
			}
		}
	}
	p->rate_sweep_at = p->rate_count * 2 > 1024 ? p->rate_count * 2 : 1024;
}

/* True when a push of this key was sent less than min_interval ago; else records it. */
static bool rate_limited(struct push *p, const char *key)
{
	uint64_t now = clock_now_ms(), h = fnv1a(key);
	struct rate_entry *e, **head = &p->rate[h % RATE_BUCKETS];
	size_t klen = strlen(key);

	if (p->min_interval_ms == 0)
		return false;
	for (e = *head; e; e = e->next) {
		if (e->hash == h && strcmp(e->key, key) == 0) {
			if (now - e->last_ms < p->min_interval_ms)
				return true;
			e->last_ms = now;
			return false;
		}
	}
	if (p->rate_count >= p->rate_sweep_at)
		rate_sweep(p, now);
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return false; /* fail open: a push matters more than the limit */
	e->hash = h;
	e->last_ms = now;
	memcpy(e->key, key, klen + 1);
	e->next = *head;
	*head = e;
	p->rate_count++;
	return false;
}

static void rate_free(struct push *p)
{
	for (int b = 0; b < RATE_BUCKETS; b++) {
		while (p->rate[b]) {
			struct rate_entry *e = p->rate[b];
			p->rate[b] = e->next;
			free(e);
		}
	}
	p->rate_count = 0;
}

/* ---- send ------------------------------------------------------------ */

static int dup_field(const char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

static int refuse(struct push *p, const struct pn_identity *id, enum push_kind kind,
		  enum push_result res, const char *why)
{
	char tb[LOG_TOKEN_BUFSZ];
	const char *tok = kind == PUSH_CALL && id->voip_token ? id->voip_token : id->token;

	count_result(p, id->provider, kind, res);
	log_notice("push %s %s token=%s refused: %s (%s)", push_provider_name(id->provider),
		   push_kind_name(kind), log_token(tok, tb), push_result_name(res), why);
	return -(int)res;
}

int push_send(struct push *p, const struct pn_identity *id, enum push_kind kind,
	      const struct push_payload *pl, unsigned deadline_ms, push_done_fn *cb, void *ctx,
	      struct push_req **out)
{
	struct push_req *r = NULL;
	struct push_inst *in;
	char *rkey = NULL;
	int rc;

	static const struct push_payload no_payload;

	if (out)
		*out = NULL;
	if (!pl)
		pl = &no_payload;
	if (!id || (unsigned)kind >= PUSH_KIND_COUNT ||
	    id->provider == PN_NONE || (unsigned)id->provider >= PN_PROVIDER_COUNT)
		return -(int)PUSH_PERMANENT;
	in = p->inst[id->provider];
	if (!in)
		return refuse(p, id, kind, PUSH_NOT_CONFIGURED, "no credentials");
	if (p->pending >= p->max_pending) {
		p->stats[id->provider].queue_overflow++;
		return refuse(p, id, kind, PUSH_RETRYABLE, "queue full");
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -(int)PUSH_RETRYABLE;
	r->refs = 1;
	r->p = p;
	r->kind = kind;
	r->cb = cb;
	r->ctx = ctx;
	if (pn_identity_copy(&r->id, id) < 0 || dup_field(&r->pl.call_id, pl->call_id) < 0 ||
	    dup_field(&r->pl.from_uri, pl->from_uri) < 0 ||
	    dup_field(&r->pl.from_name, pl->from_name) < 0 ||
	    dup_field(&r->pl.text, pl->text) < 0 || dup_field(&r->pl.reason, pl->reason) < 0 ||
	    dup_field(&r->pl.to_uri, pl->to_uri) < 0) {
		rc = -(int)PUSH_RETRYABLE;
		goto out;
	}
	r->pl.vm_waiting = pl->vm_waiting;
	r->pl.vm_new = pl->vm_new;
	r->pl.vm_old = pl->vm_old;
	r->ops = in->ops;
	rc = in->ops->prepare(in->state, r);
	if (rc < 0) {
		rc = refuse(p, id, kind, (enum push_result)-rc, r->reason[0] ? r->reason : "unusable");
		goto out;
	}
	if (asprintf(&rkey, "%d:%d:%s", id->provider, kind, r->token) < 0) {
		rkey = NULL;
		rc = -(int)PUSH_RETRYABLE;
		goto out;
	}
	if (rate_limited(p, rkey)) {
		rc = refuse(p, id, kind, PUSH_RATE_LIMITED, "min_interval");
		goto out;
	}
	r->start_ms = clock_now_ms();
	r->start_msf = clock_now_msf();
	r->deadline_ms = r->start_ms + (deadline_ms ? deadline_ms : PUSH_DEFAULT_DEADLINE_MS);
	r->next = p->live;
	if (p->live)
		p->live->prev = r;
	p->live = r;
	p->pending++;
	/* The first attempt starts from the loop, so cb never runs inside push_send(). */
	r->retry_timer = su_timer_create(su_root_task(p->root), 0);
	if (!r->retry_timer || su_timer_set_interval(r->retry_timer, retry_fired, r, 0) < 0) {
		live_unlink(p, r);
		rc = -(int)PUSH_RETRYABLE;
		goto out;
	}
	if (out) {
		r->refs++;
		*out = r;
	}
	r = NULL;
	rc = 0;
out:
	free(rkey);
	if (r)
		req_unref(r);
	return rc;
}

void push_free(struct push *p)
{
	if (!p)
		return;
	/* Abort what is live; requesters keep their references. */
	while (p->live) {
		struct push_req *r = p->live;

		if (r->in_attempt) {
			r->inst->ops->abort(r->inst->state, r);
			r->inst->inflight--;
			r->in_attempt = false;
		}
		if (r->retry_timer) {
			su_timer_destroy(r->retry_timer);
			r->retry_timer = NULL;
		}
		live_unlink(p, r);
		r->inst = NULL;
		r->p = NULL;
		r->cb = NULL;
		req_unref(r);
	}
	for (int i = 0; i < PUSH_PROVIDER_SLOTS; i++) {
		if (p->inst[i])
			inst_destroy(p->inst[i]);
		p->inst[i] = NULL;
	}
	while (p->retired) {
		struct push_inst *in = p->retired;
		p->retired = in->next;
		inst_destroy(in);
	}
	push_http_free(p->http);
	rate_free(p);
	free(p);
	if (--curl_users == 0)
		curl_global_cleanup();
}
