/* SPDX-License-Identifier: MIT */
/*
 * Unit test of src/router/ratelimit.c: the per-source bucket (burst of
 * twice the rate, then refusals), upstream exempt, and the table's bounds:
 * at most MAX_SOURCES sources tracked (new ones pass untracked), and every
 * bucket that has refilled is forgotten by the sweep.
 */
#include "router/ratelimit.c"

#include <arpa/inet.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su.h>
#include <unistd.h>

#include "check.h"

static msg_t *from(uint32_t ip)
{
	msg_t *msg = msg_create(sip_default_mclass(), 0);
	su_sockaddr_t su;

	memset(&su, 0, sizeof(su));
	su.su_family = AF_INET;
	su.su_sin.sin_addr.s_addr = htonl(ip);
	su.su_sin.sin_port = htons(5060);
	msg_set_address(msg, &su, sizeof(su.su_sin));
	return msg;
}

static bool allow(struct router *rt, uint32_t ip, bool up)
{
	msg_t *m = from(ip);
	bool ok = ratelimit_allow(rt, m, up);

	msg_destroy(m);
	return ok;
}

int main(void)
{
	struct sw_config cfg;
	struct router rt;
	int passed = 0;

	log_set_level(SW_LOG_ERROR);
	config_defaults(&cfg);
	cfg.sip.max_requests_per_source = 5;
	memset(&rt, 0, sizeof(rt));
	rt.cfg = &cfg;
	rt.buckets = strmap_new();
	if (!rt.buckets)
		return 1;

	/* One source: a burst of 10 (twice the rate), then 503s; upstream is never limited. */
	for (int i = 0; i < 20; i++)
		passed += allow(&rt, 0x0a000001, false);
	CHECK_MSG(passed == 10, "burst of twice the rate, got %d", passed);
	CHECK(!allow(&rt, 0x0a000001, false));
	CHECK(allow(&rt, 0x0a000001, true));

	/* The table never holds more than MAX_SOURCES; beyond, sources pass untracked. */
	for (uint32_t i = 0; i < MAX_SOURCES + 50; i++)
		allow(&rt, 0x0b000000 + i, false);
	CHECK_MSG(rt.n_buckets == MAX_SOURCES, "%zu buckets", rt.n_buckets);
	CHECK(allow(&rt, 0x0c000001, false));
	CHECK(rt.n_buckets == MAX_SOURCES);

	/* A bucket left alone until it has refilled is the same as none: swept. */
	usleep((IDLE_MS + 200) * 1000);
	sweep(NULL, NULL, (su_timer_arg_t *)&rt);
	CHECK_MSG(rt.n_buckets == 0, "%zu buckets left after the sweep", rt.n_buckets);
	allow(&rt, 0x0a000002, false); /* fresh: stays */
	sweep(NULL, NULL, (su_timer_arg_t *)&rt);
	CHECK_MSG(rt.n_buckets == 1, "%zu buckets left after a second sweep", rt.n_buckets);
	/* and a forgotten source starts with a full burst again */
	passed = 0;
	for (int i = 0; i < 20; i++)
		passed += allow(&rt, 0x0a000001, false);
	CHECK_MSG(passed == 10, "burst again after being forgotten, got %d", passed);

	rt.sweep = NULL;
	ratelimit_cleanup(&rt);
	config_cleanup(&cfg);
	return CHECK_RESULT();
}
