/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the APNs request builder (src/push/apns.c): token and topic
 * choice per kind (Linphone two-token bindings), headers, payload shape and
 * size limits, refusal of unusable identities.
 */
#include "push/apns.c"

#include "check.h"

#define VOIP "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define REMOTE "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct apns state = {.call_timeout = 30, .wakeup_ttl = 120};

static int prepare(struct push_req *r, enum push_kind kind, const char *token, const char *voip,
		   const char *text)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->id.provider = PN_APNS;
	r->id.token = (char *)token;
	r->id.voip_token = (char *)voip;
	r->id.topic = (char *)"org.example.app";
	r->pl.call_id = "abc@host";
	r->pl.from_uri = "sip:alice@example.com";
	r->pl.from_name = "Alice \"A\" Smith";
	r->pl.text = text;
	r->pl.reason = "missed";
	return apns_prepare(&state, r);
}

static json_t *body(struct push_req *r)
{
	struct apns_req *q = r->pdata;
	return json_loadb(q->b.body, q->b.body_len, 0, NULL);
}

int main(void)
{
	struct push_req r;
	struct apns_req *q;
	json_t *b;
	char big[12000];

	CHECK(prepare(&r, PUSH_CALL, REMOTE, VOIP, NULL) == 0);
	q = r.pdata;
	CHECK(r.voip && strcmp(r.token, VOIP) == 0);
	CHECK_STR(q->topic, "org.example.app.voip");
	CHECK_STR(q->push_type, "voip");
	CHECK(q->priority == 10 && q->expiration == 0);
	CHECK_STR(q->collapse, "abc@host");
	b = body(&r);
	CHECK_STR(json_string_value(json_object_get(b, "from-name")), "Alice \"A\" Smith");
	CHECK_STR(json_string_value(json_object_get(b, "call-id")), "abc@host");
	CHECK(json_object_size(json_object_get(b, "aps")) == 0);
	json_decref(b);
	apns_req_cleanup(&r);

	CHECK(prepare(&r, PUSH_CALL, REMOTE, NULL, NULL) == 0);
	q = r.pdata;
	CHECK(!r.voip && strcmp(r.token, REMOTE) == 0);
	CHECK_STR(q->topic, "org.example.app");
	CHECK_STR(q->push_type, "alert");
	apns_req_cleanup(&r);

	CHECK(prepare(&r, PUSH_WAKEUP, REMOTE, VOIP, NULL) == 0);
	q = r.pdata;
	CHECK(strcmp(r.token, REMOTE) == 0 && q->priority == 5);
	CHECK_STR(q->push_type, "background");
	b = body(&r);
	CHECK(json_integer_value(json_object_get(json_object_get(b, "aps"), "content-available")) == 1);
	json_decref(b);
	apns_req_cleanup(&r);

	/* A message never goes through PushKit, even with a VoIP token. */
	CHECK(prepare(&r, PUSH_MESSAGE, NULL, VOIP, "hi") == -(int)PUSH_PERMANENT);
	CHECK(r.pdata == NULL && strstr(r.reason, "no remote-notification token"));

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(prepare(&r, PUSH_MESSAGE, REMOTE, NULL, big) == 0);
	q = r.pdata;
	CHECK(q->b.body_len <= PUSH_APNS_MAX_PAYLOAD && q->b.body_len > PUSH_APNS_MAX_PAYLOAD - 16);
	apns_req_cleanup(&r);

	/* A call's follow-up: an alert where there is a remote token; for a
	 * VoIP-only app a PushKit push saying the call ended (CallKit). */
	CHECK(prepare(&r, PUSH_CANCEL, REMOTE, VOIP, NULL) == 0);
	q = r.pdata;
	CHECK(!r.voip && strcmp(r.token, REMOTE) == 0);
	CHECK_STR(q->push_type, "alert");
	apns_req_cleanup(&r);
	CHECK(prepare(&r, PUSH_CANCEL, NULL, VOIP, NULL) == 0);
	q = r.pdata;
	CHECK(r.voip && strcmp(r.token, VOIP) == 0);
	CHECK_STR(q->push_type, "voip");
	CHECK_STR(q->topic, "org.example.app.voip");
	b = body(&r);
	CHECK_STR(json_string_value(json_object_get(b, "type")), "cancel");
	CHECK_STR(json_string_value(json_object_get(b, "reason")), "missed");
	CHECK_STR(json_string_value(json_object_get(b, "call-id")), "abc@host");
	CHECK(json_object_get(json_object_get(b, "aps"), "alert") == NULL);
	json_decref(b);
	apns_req_cleanup(&r);

	/* A Call-ID that is no header value becomes a digest in apns-collapse-id. */
	CHECK(prepare(&r, PUSH_CANCEL, REMOTE, NULL, NULL) == 0);
	CHECK_STR(((struct apns_req *)r.pdata)->collapse, "abc@host");
	apns_req_cleanup(&r);
	memset(&r, 0, sizeof(r));
	r.kind = PUSH_CALL;
	r.id.token = (char *)REMOTE;
	r.id.topic = (char *)"org.example.app";
	r.pl.call_id = "a b\r\nx";
	CHECK(apns_prepare(&state, &r) == 0);
	CHECK(strlen(((struct apns_req *)r.pdata)->collapse) == 64);
	apns_req_cleanup(&r);

	CHECK(prepare(&r, PUSH_CALL, "zz", NULL, NULL) == -(int)PUSH_PERMANENT);
	CHECK(prepare(&r, PUSH_CALL, REMOTE "\r\nx: y", NULL, NULL) == -(int)PUSH_PERMANENT);
	r.id.topic = NULL;
	CHECK(apns_prepare(&state, &r) == -(int)PUSH_PERMANENT);
	return CHECK_RESULT();
}
