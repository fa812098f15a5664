/* SPDX-License-Identifier: MIT */
/*
 * Per-source request limit (SPEC 8): a token bucket per source address,
 * sip.max_requests_per_source tokens a second, bursts of twice that. The
 * upstream server is exempt (it carries every call of the PBX). A bucket
 * left alone for IDLE_MS has refilled to its burst, the state of a source
 * never seen: every such bucket is dropped every 10 s, so the table holds
 * only the sources of the last few seconds, and never more than
 * MAX_SOURCES (beyond that a new source is let through untracked, counted,
 * and logged once a minute).
 */
#include "router_int.h"

#include <stdlib.h>
#include <string.h>

#include <sofia-sip/msg_addr.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"
#include "sipwake/stats.h"

#define IDLE_MS 2000 /* a full refill: twice the rate, at the rate */
#define SWEEP_MS 10000
#define WARN_MS 60000
#define MAX_SOURCES 100000

struct bucket {
	double tokens;
	int64_t last_ms;
	int64_t warned_ms;
};

/* A bucket idle for IDLE_MS is full again: forget it (ctx: now). */
static bool idle(void *ctx, const char *key, void *value)
{
	const struct bucket *b = value;

	if (*(const int64_t *)ctx - b->last_ms <= IDLE_MS)
		return false;
	free(value);
	return true;
}

static void sweep(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct router *rt = (struct router *)arg;
	int64_t now = (int64_t)clock_now_ms();
	size_t n = strmap_remove_if(rt->buckets, idle, &now);

	rt->n_buckets -= n < rt->n_buckets ? n : rt->n_buckets;
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
	if (!b && rt->n_buckets >= MAX_SOURCES) {
		stats_count("sipwake_ratelimit_untracked_total", NULL);
		if (now - rt->full_warned_ms > WARN_MS) {
			rt->full_warned_ms = now;
			log_warn("rate limit: %d sources tracked already; new ones pass untracked",
				 MAX_SOURCES);
		}
		return true;
	}
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b || strmap_put(rt->buckets, ip, b) < 0) {
			free(b);
			return true;
		}
		rt->n_buckets++;
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
	if (now - b->warned_ms > WARN_MS) {
		b->warned_ms = now;
		log_warn("source %s exceeds %d requests/s: answering 503", ip, rate);
	}
	return false;
}
