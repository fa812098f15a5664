/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the FCM message builder (src/push/fcm.c): data-only
 * message, android priority and ttl per kind, text cut to the 4 KiB limit.
 */
#include "push/fcm.c"

#include "check.h"

static struct fcm state = {.call_timeout = 45, .wakeup_ttl = 120};

static json_t *prepare(enum push_kind kind, const char *text)
{
	struct push_req r = {0};
	struct fcm_req *q;
	json_t *b = NULL;

	r.kind = kind;
	r.id.provider = PN_FCM;
	r.id.token = (char *)"fcm-token:APA91b";
	r.pl.call_id = "c1";
	r.pl.from_uri = "sip:alice@example.com";
	r.pl.text = text;
	if (fcm_prepare(&state, &r) == 0) {
		q = r.pdata;
		CHECK(q->b.body_len <= PUSH_FCM_MAX_PAYLOAD);
		b = json_loadb(q->b.body, q->b.body_len, 0, NULL);
	}
	fcm_req_cleanup(&r);
	return b;
}

static const char *get(json_t *b, const char *path1, const char *path2)
{
	json_t *m = json_object_get(json_object_get(b, "message"), path1);
	return json_string_value(path2 ? json_object_get(m, path2) : m);
}

int main(void)
{
	json_t *b = prepare(PUSH_CALL, NULL);
	char big[9000];

	CHECK_STR(get(b, "token", NULL), "fcm-token:APA91b");
	CHECK_STR(get(b, "android", "priority"), "HIGH");
	CHECK_STR(get(b, "android", "ttl"), "45s");
	CHECK_STR(get(b, "data", "type"), "call");
	CHECK_STR(get(b, "data", "call-id"), "c1");
	CHECK(json_object_get(json_object_get(b, "message"), "notification") == NULL);
	CHECK(json_object_get(json_object_get(json_object_get(b, "message"), "data"), "from-name") == NULL);
	json_decref(b);

	b = prepare(PUSH_WAKEUP, NULL);
	CHECK_STR(get(b, "android", "ttl"), "120s");
	json_decref(b);
	b = prepare(PUSH_CANCEL, NULL);
	CHECK_STR(get(b, "data", "reason"), "missed");
	json_decref(b);

	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	b = prepare(PUSH_MESSAGE, big);
	CHECK(b && strlen(get(b, "data", "text")) > 3500);
	json_decref(b);
	return CHECK_RESULT();
}
