/* SPDX-License-Identifier: MIT */
/*
 * Where the admin layer meets the push dispatcher and the router:
 *   - "push test AOR --type T" sends one real push to every push binding of
 *     the AOR and answers, asynchronously, with each provider's verdict;
 *   - a statistics collector mirrors the dispatcher's own per-provider
 *     counters and latency histogram into the registry before each scrape;
 *   - a gauge reads how many requests the router holds for waking devices.
 * Tests still waiting for a provider when the admin goes away are detached
 * from the dispatcher and freed, so nothing outlives its owner.
 */
#include "admin_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipwake/log.h"
#include "sipwake/push.h"
#include "sipwake/router.h"
#include "sipwake/stats.h"

#define PTEST_MAX_DEV 16

struct ptest;

struct ptest_dev {
	struct ptest *t;
	struct push_req *req;
	char binding[32];
	char provider[16];
	char token[LOG_TOKEN_BUFSZ];
	bool done;
	enum push_result res;
	int http_status;
	char reason[64];
	double latency_ms;
};

struct ptest {
	struct ptest *next;
	struct admin *a;
	uint64_t req;
	char aor[256];
	char type[16];
	int n, left;
	struct ptest_dev dev[PTEST_MAX_DEV];
};

static json_t *ptest_json(const struct ptest *t)
{
	json_t *arr = json_array();
	int ok = 0;
	char msg[400];

	for (int i = 0; i < t->n; i++) {
		const struct ptest_dev *d = &t->dev[i];
		if (d->res == PUSH_OK)
			ok++;
		json_array_append_new(
			arr, json_pack("{s:s,s:s,s:s,s:s,s:i,s:o,s:f}", "binding", d->binding,
				       "provider", d->provider, "token", d->token, "result",
				       push_result_name(d->res), "http_status", d->http_status,
				       "reason", d->reason[0] ? admin_text(d->reason) : json_null(),
				       "latency_ms", d->latency_ms));
	}
	snprintf(msg, sizeof(msg), "%d of %d %s push(es) to %s accepted by the provider", ok, t->n,
		 t->type, t->aor);
	return json_pack("{s:o,s:s,s:i,s:i,s:o,s:o}", "aor", admin_text(t->aor), "type", t->type,
			 "sent", t->n, "accepted", ok, "message", admin_text(msg), "pushes", arr);
}

static void ptest_free(struct ptest *t)
{
	struct admin *a = t->a;

	for (struct ptest **pp = &a->ptests; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	for (int i = 0; i < t->n; i++)
		push_req_detach(t->dev[i].req);
	free(t);
}

static void ptest_done(void *ctx, enum push_result res, int http_status, const char *reason,
		       double latency_ms)
{
	struct ptest_dev *d = ctx;
	struct ptest *t = d->t;

	d->done = true;
	d->res = res;
	d->http_status = http_status;
	d->latency_ms = latency_ms;
	snprintf(d->reason, sizeof(d->reason), "%s", reason ? reason : "");
	push_req_detach(d->req);
	d->req = NULL;
	log_notice("push test %s to %s (%s %s): %s%s%s", t->type, t->aor, d->provider, d->token,
		   push_result_name(res), reason ? " " : "", reason ? reason : "");
	if (--t->left == 0) {
		admin_push_test_done(t->a, t->req, ptest_json(t), NULL);
		ptest_free(t);
	}
}

static int push_test(void *ctx, const char *aor, const char *type, uint64_t req, json_t **result,
		     char *err, size_t errlen)
{
	struct admin *a = ctx;
	struct binding *list[PTEST_MAX_DEV];
	size_t n = registrar_lookup(a->reg, aor, list, PTEST_MAX_DEV);
	enum push_kind kind = !strcmp(type, "voip")	  ? PUSH_CALL
			      : !strcmp(type, "background") ? PUSH_WAKEUP
							    : PUSH_MESSAGE;
	char call_id[64];
	struct push_payload pl = {
		.call_id = call_id,
		.from_uri = "sip:push-test@sipwake.invalid",
		.from_name = "sipwake push test",
		.text = "Test notification from sipwake",
		.to_uri = aor,
	};
	struct ptest *t = calloc(1, sizeof(*t));

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(call_id, sizeof(call_id), "sipwake-push-test-%llu", (unsigned long long)req);
	t->a = a;
	t->req = req;
	snprintf(t->aor, sizeof(t->aor), "%s", aor);
	snprintf(t->type, sizeof(t->type), "%s", type);
	t->next = a->ptests;
	a->ptests = t;
	for (size_t i = 0; i < n; i++) {
		const struct pn_identity *pn = binding_pn(list[i]);
		struct ptest_dev *d = &t->dev[t->n];
		int rc;

		if (!pn)
			continue;
		d->t = t;
		snprintf(d->binding, sizeof(d->binding), "%s", binding_id(list[i]));
		snprintf(d->provider, sizeof(d->provider), "%s", pn_provider_name(pn));
		log_token(kind == PUSH_CALL && pn->voip_token ? pn->voip_token : pn->token, d->token);
		t->n++;
		t->left++;
		rc = push_send(a->push, pn, kind, &pl, 0, ptest_done, d, &d->req);
		if (rc < 0) {
			d->done = true;
			d->res = (enum push_result)-rc;
			d->req = NULL;
			t->left--;
		}
	}
	if (t->n == 0) {
		ptest_free(t);
		snprintf(err, errlen, "%s has no binding with push parameters", aor);
		return -1;
	}
	if (t->left > 0)
		return 1; /* ptest_done() answers */
	*result = ptest_json(t);
	ptest_free(t);
	return 0;
}

/* ---- metrics -------------------------------------------------------------- */

static void on_push_counter(void *ctx, const char *provider, const char *kind, const char *result,
			    uint64_t value)
{
	stats_counter_set(stats_counter("sipwake_pushes_total", "provider", provider, "kind", kind,
					"result", result, NULL),
			  value);
}

static void collect_push(void *ctx)
{
	struct admin *a = ctx;
	double bounds[PUSH_LATENCY_BUCKETS - 1];

	for (int i = 0; i < PUSH_LATENCY_BUCKETS - 1; i++)
		bounds[i] = push_latency_bounds[i] / 1000.0;
	push_counters_foreach(a->push, on_push_counter, NULL);
	for (int prov = PN_APNS; prov < PN_PROVIDER_COUNT; prov++) {
		const struct push_provider_stats *st = push_stats(a->push, prov);
		const char *name = push_provider_name(prov);

		if (!st || (!push_provider_enabled(a->push, prov) && !st->attempts))
			continue;
		stats_counter_set(stats_counter("sipwake_push_attempts_total", "provider", name, NULL),
				  st->attempts);
		stats_counter_set(stats_counter("sipwake_push_retries_total", "provider", name, NULL),
				  st->retries);
		stats_counter_set(stats_counter("sipwake_push_tokens_removed_total", "provider", name,
						NULL),
				  st->tokens_removed);
		stats_counter_set(stats_counter("sipwake_push_queue_overflow_total", "provider", name,
						NULL),
				  st->queue_overflow);
		stats_counter_set(stats_counter("sipwake_push_auth_refresh_total", "provider", name,
						NULL),
				  st->auth_refresh);
		stats_counter_set(stats_counter("sipwake_push_auth_failures_total", "provider", name,
						NULL),
				  st->auth_failures);
		stats_histogram_load(stats_histogram("sipwake_push_latency_seconds", bounds,
						     PUSH_LATENCY_BUCKETS - 1, "provider", name, NULL),
				     st->latency_hist, PUSH_LATENCY_BUCKETS - 1, st->latency_count,
				     st->latency_sum_ms / 1000.0);
	}
}

static double gauge_pending(void *ctx)
{
	return push_pending(((struct admin *)ctx)->push);
}

static double gauge_held(void *ctx)
{
	return router_held_count(((struct admin *)ctx)->router);
}

int admin_attach_push(struct admin *a, struct push *p)
{
	a->push = p;
	admin_set_push_test(a, push_test, a);
	stats_family("sipwake_pushes_total", STATS_COUNTER,
		     "pushes completed or refused, by provider, kind (call, message, wakeup, "
		     "cancel) and result");
	stats_family("sipwake_push_attempts_total", STATS_COUNTER,
		     "HTTP requests sent to the provider, retries included");
	stats_family("sipwake_push_retries_total", STATS_COUNTER,
		     "HTTP requests that were retries (429, 5xx, network errors)");
	stats_family("sipwake_push_tokens_removed_total", STATS_COUNTER,
		     "bindings removed because the provider declared the token dead");
	stats_family("sipwake_push_queue_overflow_total", STATS_COUNTER,
		     "pushes refused because too many were queued");
	stats_family("sipwake_push_auth_refresh_total", STATS_COUNTER,
		     "provider credentials regenerated (APNs JWT, FCM OAuth2 token)");
	stats_family("sipwake_push_auth_failures_total", STATS_COUNTER,
		     "credential problems reported by the provider");
	stats_family("sipwake_push_latency_seconds", STATS_HISTOGRAM,
		     "time from sending a push to the provider's answer");
	stats_family("sipwake_pushes_pending", STATS_GAUGE,
		     "pushes in flight or waiting for a retry");
	if (stats_collector_add(collect_push, a) < 0 ||
	    stats_gauge_hook("sipwake_pushes_pending", gauge_pending, a, NULL) < 0)
		return -1;
	return 0;
}

void admin_attach_router(struct admin *a, struct router *rt)
{
	a->router = rt;
	stats_family("sipwake_held_requests", STATS_GAUGE,
		     "INVITE and MESSAGE requests held while pushed devices wake up");
	stats_gauge_hook("sipwake_held_requests", gauge_held, a, NULL);
}

void admin_detach_push(struct admin *a)
{
	while (a->ptests)
		ptest_free(a->ptests);
	stats_collector_remove(a);
	a->push = NULL;
	a->push_test = NULL;
}
