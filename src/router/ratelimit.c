/* SPDX-License-Identifier: MIT */
/*
 * Per-source request limit (SPEC 8): a token bucket per source address,
 * sip.max_requests_per_source tokens a second, bursts of twice that. The
 * upstream server is exempt (it carries every call of the PBX). Buckets
 * idle for a minute are dropped every 10 s so the table stays small.
 */
#include "router_int.h"

#include <stdlib.h>
#include <string.h>

#include <sofia-sip/msg_addr.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"

#define IDLE_MS 60000
#define SWEEP_MS 10000

struct bucket {
	double tokens;
	int64_t last_ms;
	int64_t warned_ms;
};

struct sweep {
	int64_t now;
	char *idle[256];
	int n;
};

static void find_idle(void *ctx, const char *key, void *value)
{
	struct sweep *s = ctx;
	struct bucket *b = value;

	if (s->now - b->last_ms > IDLE_MS && s->n < 256)
		s->idle[s->n++] = strdup(key);
}

static void sweep(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct router *rt = (struct router *)arg;
	struct sweep s = {.now = (int64_t)clock_now_ms()};

	strmap_each(rt->buckets, find_idle, &s);
	for (int i = 0; i < s.n; i++) {
		free(strmap_del(rt->buckets, s.idle[i]));
		free(s.idle[i]);
	}
}

int ratelimit_init(struct router *rt)
{
	rt->buckets = strmap_new();
	if (!rt->buckets)
		return -1;
	rt->sweep = su_timer_create(su_root_task(sip_agent_root(rt->sa)), SWEEP_MS);
	/* Periodic: in sofia 1.12.11 su_timer_set_interval() fires only once. */
	if (rt->sweep)
		su_timer_set_for_ever(rt->sweep, sweep, (su_timer_arg_t *)rt);
	return 0;
}

static void free_bucket(void *ctx, const char *key, void *value)
{
	free(value);
}

void ratelimit_cleanup(struct router *rt)
{
	if (rt->sweep)
		su_timer_destroy(rt->sweep);
	if (rt->buckets)
		strmap_each(rt->buckets, free_bucket, NULL);
	strmap_free(rt->buckets);
}

bool ratelimit_allow(struct router *rt, msg_t *msg, bool from_upstream)
{
	int rate = rt->cfg->sip.max_requests_per_source;
	su_sockaddr_t su;
	socklen_t len = sizeof(su);
	char ip[64];
	struct bucket *b;
	int64_t now;

	if (rate <= 0 || from_upstream || msg_get_address(msg, &su, &len) < 0 ||
	    !su_inet_ntop(su.su_family, SU_ADDR(&su), ip, sizeof(ip)))
		return true;
	now = (int64_t)clock_now_ms();
	b = strmap_get(rt->buckets, ip);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b || strmap_put(rt->buckets, ip, b) < 0) {
			free(b);
			return true;
		}
		b->tokens = 2.0 * rate;
		b->last_ms = now;
	}
	b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
	if (b->tokens > 2.0 * rate)
		b->tokens = 2.0 * rate;
	b->last_ms = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return true;
	}
	if (now - b->warned_ms > IDLE_MS) {
		b->warned_ms = now;
		log_warn("source %s exceeds %d requests/s: answering 503", ip, rate);
	}
	return false;
}
