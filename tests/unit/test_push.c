/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the dispatcher (src/push/push.c) without a network: an
 * unconfigured provider, refusals and their counters, the rate-limit
 * table, names, and a clean start/stop on an su_root.
 */
#include "push/push.c"

#include <sofia-sip/su.h>
#include <unistd.h>

#include "check.h"

static void count(void *ctx, const char *prov, const char *kind, const char *res, uint64_t v)
{
	char *buf = ctx;
	size_t n = strlen(buf);
	snprintf(buf + n, 256 - n, "%s/%s/%s=%llu;", prov, kind, res, (unsigned long long)v);
}

int main(void)
{
	struct sw_config cfg = {0};
	struct pn_identity id = {.provider = PN_APNS, .token = (char *)"abcd", .topic = (char *)"x"};
	struct push_payload pl = {.call_id = "c"};
	struct push_req *req = (struct push_req *)1;
	struct push *p = NULL;
	char buf[256] = "";
	su_root_t *root;

	su_init();
	root = su_root_create(NULL);
	CHECK(push_new(&p, root, &cfg) == 0 && p != NULL);
	CHECK(!push_provider_enabled(p, PN_APNS) && !push_provider_enabled(p, PN_FCM));
	CHECK(push_send(p, &id, PUSH_CALL, &pl, 1000, NULL, NULL, &req) == -(int)PUSH_NOT_CONFIGURED);
	CHECK(req == NULL);
	id.provider = PN_FCM;
	CHECK(push_send(p, &id, PUSH_MESSAGE, &pl, 1000, NULL, NULL, NULL) == -(int)PUSH_NOT_CONFIGURED);
	id.provider = PN_NONE;
	CHECK(push_send(p, &id, PUSH_MESSAGE, &pl, 1000, NULL, NULL, NULL) == -(int)PUSH_PERMANENT);
	CHECK(push_send(p, NULL, PUSH_MESSAGE, NULL, 1000, NULL, NULL, NULL) == -(int)PUSH_PERMANENT);
	CHECK(push_stats(p, PN_APNS)->results[PUSH_CALL][PUSH_NOT_CONFIGURED] == 1);
	push_counters_foreach(p, count, buf);
	CHECK_STR(buf, "apns/call/not_configured=1;fcm/message/not_configured=1;");
	CHECK(push_pending(p) == 0);

	/* Rate limit: same key refused within the interval, others not. */
	p->min_interval_ms = 60000;
	CHECK(!rate_limited(p, "1:0:tok"));
	CHECK(rate_limited(p, "1:0:tok"));
	CHECK(!rate_limited(p, "1:1:tok"));
	p->min_interval_ms = 0;
	CHECK(!rate_limited(p, "1:0:tok"));
	p->min_interval_ms = 1;
	for (int i = 0; i < 3000; i++) { /* the table sweeps itself */
		char k[32];
		snprintf(k, sizeof(k), "k%d", i);
		rate_limited(p, k);
		if (i == 1500)
			usleep(5000); /* what came before is now stale */
	}
	CHECK(p->rate_count < 3000);

	CHECK_STR(push_kind_name(PUSH_WAKEUP), "wakeup");
	CHECK_STR(push_result_name(PUSH_RATE_LIMITED), "rate_limited");
	CHECK_STR(push_provider_name(PN_FCM), "fcm");
	push_free(p);
	push_free(NULL);
	push_req_detach(NULL);

	/* A bad credential fails push_new with nothing left behind. */
	cfg.push.apns.key_file = (char *)"/nonexistent/AuthKey.p8";
	cfg.push.apns.key_id = (char *)"K";
	cfg.push.apns.team_id = (char *)"T";
	CHECK(push_new(&p, root, &cfg) == -1 && p == NULL);
	cfg.push.apns.key_file = (char *)"";
	cfg.push.fcm.service_account = (char *)"/nonexistent/sa.json";
	CHECK(push_new(&p, root, &cfg) == -1 && p == NULL);

	su_root_destroy(root);
	su_deinit();
	return CHECK_RESULT();
}
