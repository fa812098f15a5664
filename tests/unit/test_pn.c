/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/pn.c: the three wire forms of push
 * parameters (RFC 8599, Linphone two-token, legacy pn-type), every way a
 * client can get them wrong, the identity key and stripping.
 * A failing check prints file:line and the test exits non-zero.
 */
#include "sipwake/pn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"


/* 64 hex digits, like a real APNs device token. */
#define TOK_A "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define TOK_B "FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100"
#define FCM_TOK "dGVzdA:APA91bH-abc_DEF.123"

/* Parse and expect a status; on failure also check the error text's prefix. */
static enum pn_parse_status parse_expect(const char *params, enum pn_parse_status want,
					 const char *err_prefix, struct pn_identity *id,
					 const char *file, int line)
{
	char err[256];
	enum pn_parse_status st = pn_parse(params, id, err, sizeof(err));

	if (st != want) {
		fprintf(stderr, "%s:%d: pn_parse(\"%.80s\") = %d (%s), expected %d\n", file, line,
			params ? params : "(null)", st, err, want);
		failures++;
	}
	if (err_prefix && strncmp(err, err_prefix, strlen(err_prefix)) != 0) {
		fprintf(stderr, "%s:%d: error \"%s\" does not start with \"%s\"\n", file, line,
			err, err_prefix);
		failures++;
	}
	if (st != PN_PARSE_OK && (id->token || id->prid || id->provider != PN_NONE)) {
		fprintf(stderr, "%s:%d: identity not left empty on failure\n", file, line);
		failures++;
	}
	return st;
}

#define EXPECT(params, want, prefix, id) parse_expect(params, want, prefix, id, __FILE__, __LINE__)
#define EXPECT_BAD(params, prefix)                                                     \
	do {                                                                           \
		struct pn_identity bad_;                                               \
		parse_expect(params, PN_PARSE_BAD, prefix, &bad_, __FILE__, __LINE__); \
		pn_identity_cleanup(&bad_);                                            \
	} while (0)

static void test_none(void)
{
	struct pn_identity id;

	EXPECT("transport=tcp;lr", PN_PARSE_NONE, NULL, &id);
	EXPECT("", PN_PARSE_NONE, NULL, &id);
	EXPECT(NULL, PN_PARSE_NONE, NULL, &id);
	EXPECT("transport=tcp;pn-silent;app-id=com.x", PN_PARSE_NONE, NULL, &id);
	CHECK(id.timeout == -1);
	pn_identity_cleanup(&id);
}

static void test_rfc8599_apns(void)
{
	struct pn_identity id;

	if (EXPECT("transport=tcp;pn-provider=apns;pn-prid=" TOK_A
		   ";pn-param=ABCDE12345.com.example.app;+sip.instance=\"<urn:uuid:1;x>\"",
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK(id.provider == PN_APNS);
		CHECK(!id.sandbox);
		CHECK_STR(id.token, TOK_A);
		CHECK_STR(id.voip_token, NULL);
		CHECK_STR(id.team_id, "ABCDE12345");
		CHECK_STR(id.topic, "com.example.app");
		CHECK_STR(id.prid, TOK_A);
		CHECK_STR(id.param, "ABCDE12345.com.example.app");
		CHECK(id.timeout == -1);
		CHECK_STR(pn_provider_name(&id), "apns");
	}
	pn_identity_cleanup(&id);

	/* Sandbox, VoIP topic, upper-case names and hex, pn-timeout. */
	if (EXPECT("PN-Provider=apns.dev;PN-PRID=" TOK_B
		   ";pn-param=TEAM123456.com.example.app.voip;pn-timeout=0",
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK(id.provider == PN_APNS);
		CHECK(id.sandbox);
		CHECK_STR(id.token, NULL);
		CHECK_STR(id.voip_token, TOK_B);
		CHECK_STR(id.team_id, "TEAM123456");
		CHECK_STR(id.topic, "com.example.app");
		CHECK_STR(id.param, "TEAM123456.com.example.app.voip");
		CHECK(id.timeout == 0);
		CHECK_STR(pn_provider_name(&id), "apns.dev");
	}
	pn_identity_cleanup(&id);

	/* %-escaped values are decoded; the raw prid keeps the decoded form. */
	if (EXPECT("pn-provider=apns;pn-prid=" TOK_A ";pn-param=T1.com%2Eexample;pn-timeout=3600",
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK_STR(id.topic, "com.example");
		CHECK_STR(id.param, "T1.com.example");
		CHECK(id.timeout == 3600);
	}
	pn_identity_cleanup(&id);
}

static void test_rfc8599_fcm(void)
{
	struct pn_identity id;

	if (EXPECT("pn-provider=fcm;pn-prid=" FCM_TOK ";pn-param=my-project-123", PN_PARSE_OK,
		   NULL, &id) == PN_PARSE_OK) {
		CHECK(id.provider == PN_FCM);
		CHECK(!id.sandbox);
		CHECK_STR(id.token, FCM_TOK);
		CHECK_STR(id.voip_token, NULL);
		CHECK_STR(id.team_id, NULL);
		CHECK_STR(id.topic, "my-project-123");
		CHECK_STR(pn_provider_name(&id), "fcm");
	}
	pn_identity_cleanup(&id);

	/* pn-param is optional for FCM. */
	if (EXPECT("pn-provider=fcm;pn-prid=abc", PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK_STR(id.topic, NULL);
		CHECK_STR(id.param, NULL);
	}
	pn_identity_cleanup(&id);

	EXPECT_BAD("pn-provider=fcm;pn-prid=abc def", "pn-prid: FCM token");
	EXPECT_BAD("pn-provider=fcm;pn-prid=abc%0Adef", "pn-prid: FCM token");
	EXPECT_BAD("pn-provider=fcm;pn-prid=abc;pn-param=a/b", "pn-param:");
}

/* RFC 8291 Appendix A's subscription keys. */
#define WP_P256DH "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
#define WP_AUTH "BTBZMqHH6r4Tts7J_aSIgg"
#define WP_URL "https%3A%2F%2Fpush.example.net%2Fwpush%2Fv2%2FgAAAAB-x_y"

static void test_rfc8599_webpush(void)
{
	struct pn_identity id, copy;
	char *key, *stripped;

	if (EXPECT("transport=tcp;pn-provider=webpush;pn-prid=" WP_URL ";pn-p256dh=" WP_P256DH
		   ";pn-auth=" WP_AUTH,
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK(id.provider == PN_WEBPUSH);
		CHECK_STR(id.token, "https://push.example.net/wpush/v2/gAAAAB-x_y");
		CHECK_STR(id.wp_p256dh, WP_P256DH);
		CHECK_STR(id.wp_auth, WP_AUTH);
		CHECK_STR(pn_provider_name(&id), "webpush");
		key = pn_identity_key(&id);
		CHECK(key && !strncmp(key, "webpush\x1fhttps://push.example.net/",
				      strlen("webpush\x1fhttps://push.example.net/")));
		free(key);
		CHECK(pn_identity_copy(&copy, &id) == 0);
		CHECK_STR(copy.wp_p256dh, WP_P256DH);
		CHECK_STR(copy.wp_auth, WP_AUTH);
		pn_identity_cleanup(&copy);
	}
	pn_identity_cleanup(&id);
	/* Without keys: content-free pushes only (RFC 8030 5), still a push identity. */
	if (EXPECT("pn-provider=webpush;pn-prid=" WP_URL, PN_PARSE_OK, NULL, &id) == PN_PARSE_OK)
		CHECK(id.wp_p256dh == NULL && id.wp_auth == NULL);
	pn_identity_cleanup(&id);
	/* The keys never go upstream with the rest of the push parameters. */
	stripped = pn_strip_params("transport=tcp;pn-provider=webpush;pn-prid=" WP_URL
				   ";pn-p256dh=" WP_P256DH ";pn-auth=" WP_AUTH ";ob");
	CHECK_STR(stripped, "transport=tcp;ob");
	free(stripped);

	EXPECT_BAD("pn-provider=webpush;pn-prid=http%3A%2F%2Fpush.example.net%2Fx",
		   "pn-prid: a Web Push endpoint must be an https URL");
	EXPECT_BAD("pn-provider=webpush;pn-prid=push.example.net", "pn-prid: a Web Push endpoint");
	EXPECT_BAD("pn-provider=webpush;pn-prid=https%3A%2F%2F%2Fx", "pn-prid: not a valid https");
	EXPECT_BAD("pn-provider=webpush;pn-prid=https%3A%2F%2Fme%40push.example.net%2Fx",
		   "pn-prid: not a valid https");
	EXPECT_BAD("pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example.net%2Fa%20b",
		   "pn-prid: not a valid https");
	EXPECT_BAD("pn-provider=webpush;pn-prid=" WP_URL ";pn-p256dh=" WP_P256DH,
		   "pn-auth: missing (pn-p256dh given)");
	EXPECT_BAD("pn-provider=webpush;pn-prid=" WP_URL ";pn-param=a%1Fb", "pn-param:");
	EXPECT_BAD("pn-provider=webpush;pn-prid=" WP_URL ";pn-auth=" WP_AUTH,
		   "pn-p256dh: missing (pn-auth given)");
	EXPECT_BAD("pn-provider=webpush;pn-prid=" WP_URL ";pn-p256dh=" WP_AUTH ";pn-auth=" WP_AUTH,
		   "pn-p256dh: not a base64url");
	EXPECT_BAD("pn-provider=webpush;pn-prid=" WP_URL
		   ";pn-p256dh=ACVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
		   ";pn-auth=" WP_AUTH,
		   "pn-p256dh: not a base64url"); /* 0x00 first: not an uncompressed point */
	EXPECT_BAD("pn-provider=webpush;pn-prid=" WP_URL ";pn-p256dh=" WP_P256DH
		   ";pn-auth=BTBZMqHH6r4Tts7J_aSIg+",
		   "pn-auth: not a base64url");
}

static void test_linphone(void)
{
	struct pn_identity id;

	if (EXPECT("pn-provider=apns;pn-prid=" TOK_A ":remote&" TOK_B
		   ":voip;pn-param=ABCDE12345.org.linphone.phone.remote&voip",
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK_STR(id.token, TOK_A);
		CHECK_STR(id.voip_token, TOK_B);
		CHECK_STR(id.team_id, "ABCDE12345");
		CHECK_STR(id.topic, "org.linphone.phone");
		CHECK_STR(id.prid, TOK_A ":remote&" TOK_B ":voip");
	}
	pn_identity_cleanup(&id);

	/* Order reversed on both sides. */
	if (EXPECT("pn-provider=apns.dev;pn-prid=" TOK_B ":voip&" TOK_A
		   ":remote;pn-param=ABCDE12345.org.linphone.phone.voip&remote",
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK(id.sandbox);
		CHECK_STR(id.token, TOK_A);
		CHECK_STR(id.voip_token, TOK_B);
		CHECK_STR(id.topic, "org.linphone.phone");
	}
	pn_identity_cleanup(&id);

	/* Only the VoIP part. */
	if (EXPECT("pn-provider=apns;pn-prid=" TOK_B
		   ":voip;pn-param=ABCDE12345.org.linphone.phone.remote&voip",
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK_STR(id.token, NULL);
		CHECK_STR(id.voip_token, TOK_B);
	}
	pn_identity_cleanup(&id);

	/* Only the remote part, with a ".remote" param. */
	if (EXPECT("pn-provider=apns;pn-prid=" TOK_A
		   ":remote;pn-param=ABCDE12345.org.linphone.phone.remote",
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK_STR(id.token, TOK_A);
		CHECK_STR(id.voip_token, NULL);
		CHECK_STR(id.topic, "org.linphone.phone");
	}
	pn_identity_cleanup(&id);

	/* Untagged token with a ".remote" param is the remote token. */
	if (EXPECT("pn-provider=apns;pn-prid=" TOK_A ";pn-param=T.org.linphone.phone.remote",
		   PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
		CHECK_STR(id.token, TOK_A);
		CHECK_STR(id.topic, "org.linphone.phone");
	}
	pn_identity_cleanup(&id);

	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ":remote&zz:voip;pn-param=T.a.b.remote&voip",
		   "pn-prid: APNs token is not hex");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ":remote&" TOK_B
		   ":remote;pn-param=T.a.remote&voip",
		   "pn-prid: two tokens");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ":push;pn-param=T.a.remote&voip",
		   "pn-prid: expected");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ":remote&;pn-param=T.a.remote&voip",
		   "pn-prid: expected");
	EXPECT_BAD("pn-provider=apns;pn-prid=:remote;pn-param=T.a.remote", "pn-prid: expected");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ";pn-param=T.a.remote&voip",
		   "pn-prid: one untagged");
}

static void test_legacy(void)
{
	struct pn_identity id;

	if (EXPECT("pn-type=apple;pn-tok=" TOK_A ";app-id=com.example.app.prod", PN_PARSE_OK,
		   NULL, &id) == PN_PARSE_OK) {
		CHECK(id.provider == PN_APNS);
		CHECK(!id.sandbox);
		CHECK_STR(id.token, TOK_A);
		CHECK_STR(id.voip_token, NULL);
		CHECK_STR(id.team_id, NULL);
		CHECK_STR(id.topic, "com.example.app");
		CHECK_STR(id.prid, TOK_A);
		CHECK_STR(id.param, "com.example.app.prod");
	}
	pn_identity_cleanup(&id);

	if (EXPECT("pn-type=apple;pn-tok=" TOK_B ";app-id=com.example.app.voip.dev", PN_PARSE_OK,
		   NULL, &id) == PN_PARSE_OK) {
		CHECK(id.sandbox);
		CHECK_STR(id.token, NULL);
		CHECK_STR(id.voip_token, TOK_B);
		CHECK_STR(id.topic, "com.example.app");
	}
	pn_identity_cleanup(&id);

	if (EXPECT("pn-type=apple;pn-tok=" TOK_B ";app-id=com.example.app.dev.voip", PN_PARSE_OK,
		   NULL, &id) == PN_PARSE_OK) {
		CHECK(id.sandbox);
		CHECK_STR(id.voip_token, TOK_B);
		CHECK_STR(id.topic, "com.example.app");
	}
	pn_identity_cleanup(&id);

	if (EXPECT("pn-type=apple;pn-tok=" TOK_A ";app-id=com.example.app", PN_PARSE_OK, NULL,
		   &id) == PN_PARSE_OK) {
		CHECK(!id.sandbox);
		CHECK_STR(id.token, TOK_A);
		CHECK_STR(id.topic, "com.example.app");
	}
	pn_identity_cleanup(&id);

	static const char *const android[] = {"firebase", "google", "android", "Firebase"};
	for (size_t i = 0; i < sizeof(android) / sizeof(android[0]); i++) {
		char buf[200];
		snprintf(buf, sizeof(buf), "pn-type=%s;pn-tok=" FCM_TOK ";app-id=com.example",
			 android[i]);
		if (EXPECT(buf, PN_PARSE_OK, NULL, &id) == PN_PARSE_OK) {
			CHECK(id.provider == PN_FCM);
			CHECK_STR(id.token, FCM_TOK);
			CHECK_STR(id.topic, "com.example");
			CHECK_STR(pn_provider_name(&id), "fcm");
		}
		pn_identity_cleanup(&id);
	}

	/* pn-provider wins when both forms are present. */
	if (EXPECT("pn-type=apple;pn-tok=" TOK_B ";pn-provider=fcm;pn-prid=xyz", PN_PARSE_OK, NULL,
		   &id) == PN_PARSE_OK) {
		CHECK(id.provider == PN_FCM);
		CHECK_STR(id.token, "xyz");
	}
	pn_identity_cleanup(&id);

	EXPECT_BAD("pn-type=apple;pn-tok=" TOK_A, "app-id: missing");
	EXPECT_BAD("pn-type=apple;pn-tok=xyz;app-id=com.x", "pn-tok: APNs token is not hex");
	EXPECT_BAD("pn-type=apple;app-id=com.x", "pn-tok: missing");
	EXPECT_BAD("pn-tok=" TOK_A ";app-id=com.x", "pn-type: missing");
}

static void test_malformed(void)
{
	struct pn_identity id;
	char *big;
	size_t n;

	/* Non-hex, odd length, too short for APNs. */
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A "zz;pn-param=T.a",
		   "pn-prid: APNs token is not hex");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A "a;pn-param=T.a",
		   "pn-prid: APNs token is not hex (odd length");
	EXPECT_BAD("pn-provider=apns;pn-prid=abcd;pn-param=T.a", "pn-prid: APNs token is not hex");

	/* 4097-byte token: too long, reported with its size. */
	big = malloc(4200);
	CHECK(big != NULL);
	if (big) {
		n = (size_t)sprintf(big, "pn-provider=fcm;pn-prid=");
		memset(big + n, 'a', 4097);
		big[n + 4097] = '\0';
		EXPECT_BAD(big, "pn-prid: too long (4097 bytes)");
		/* Exactly 4096 is accepted (FCM allows it). */
		big[n + 4096] = '\0';
		EXPECT(big, PN_PARSE_OK, NULL, &id);
		pn_identity_cleanup(&id);
		free(big);
	}
	/* A 20,000-byte escaped value is refused before decoding. */
	big = malloc(20100);
	CHECK(big != NULL);
	if (big) {
		n = (size_t)sprintf(big, "pn-provider=fcm;pn-prid=");
		for (int i = 0; i < 6000; i++)
			memcpy(big + n + 3 * (size_t)i, "%41", 3);
		big[n + 18000] = '\0';
		EXPECT_BAD(big, "pn-prid: too long");
		free(big);
	}

	/* Empty values and a value-less push parameter. */
	EXPECT_BAD("pn-provider=apns;pn-prid=;pn-param=T.a", "pn-prid: empty value");
	EXPECT_BAD("pn-provider=apns;pn-prid;pn-param=T.a", "pn-prid: empty value");
	EXPECT_BAD("pn-provider=;pn-prid=" TOK_A, "pn-provider: empty value");

	/* Missing parameters. */
	EXPECT_BAD("pn-provider=apns;pn-param=T.a", "pn-prid: missing");
	EXPECT_BAD("pn-provider=fcm", "pn-prid: missing");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A, "pn-param: missing");
	EXPECT_BAD("pn-prid=" TOK_A ";pn-param=T.a", "pn-provider: missing");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ";pn-param=TEAMONLY", "pn-param: expected");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ";pn-param=.com.x", "pn-param: expected");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ";pn-param=T.", "pn-param: expected");
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ";pn-param=T.com.x%0D%0AX:y", "pn-param:");

	/*
	 * Another provider token names an operator's own service (the registrar
	 * decides whether this server has it); a name that is no token is
	 * unsupported, not malformed, and shown safely.
	 */
	EXPECT("pn-provider=HMS;pn-prid=abc%2B/x=;pn-param=app-1", PN_PARSE_OK, NULL, &id);
	CHECK(id.provider == PN_HTTP && id.service && !strcmp(id.service, "hms") &&
	      !strcmp(id.token, "abc+/x=") && !strcmp(pn_provider_name(&id), "hms") &&
	      !strcmp(id.param, "app-1"));
	pn_identity_cleanup(&id);
	EXPECT("pn-provider=hms;pn-prid=a%22b", PN_PARSE_UNSUPPORTED, "pn-prid: characters outside",
	       &id);
	pn_identity_cleanup(&id);
	EXPECT("pn-provider=hms", PN_PARSE_UNSUPPORTED, "pn-prid: missing", &id);
	pn_identity_cleanup(&id);
	EXPECT("pn-provider=a-name-longer-than-thirty-two-chars;pn-prid=abc", PN_PARSE_UNSUPPORTED,
	       "pn-provider: unsupported provider", &id);
	pn_identity_cleanup(&id);
	EXPECT("pn-provider=x%0Ay;pn-prid=abc", PN_PARSE_UNSUPPORTED,
	       "pn-provider: unsupported provider 'x?y'", &id);
	pn_identity_cleanup(&id);
	EXPECT("pn-type=windows;pn-tok=abc", PN_PARSE_UNSUPPORTED, "pn-type: unsupported", &id);
	pn_identity_cleanup(&id);

	/* Bad %-escapes: truncated, non-hex, NUL. */
	EXPECT_BAD("pn-provider=apns;pn-prid=abc%4;pn-param=T.a", "pn-prid: bad %-escape");
	EXPECT_BAD("pn-provider=apns;pn-prid=abc%;pn-param=T.a", "pn-prid: bad %-escape");
	EXPECT_BAD("pn-provider=apns;pn-prid=abc%zz;pn-param=T.a", "pn-prid: bad %-escape");
	EXPECT_BAD("pn-provider=fcm;pn-prid=abc%00def", "pn-prid: bad %-escape");

	/* Duplicates, also with different case. */
	EXPECT_BAD("pn-provider=apns;pn-prid=" TOK_A ";pn-param=T.a;pn-prid=" TOK_B,
		   "pn-prid: duplicate");
	EXPECT_BAD("pn-provider=apns;PN-PROVIDER=fcm;pn-prid=" TOK_A ";pn-param=T.a",
		   "pn-provider: duplicate");
	EXPECT_BAD("pn-provider=fcm;pn-prid=a;pn%2Dprid=b", "pn-prid: duplicate");
	EXPECT_BAD("pn-type=apple;pn-tok=" TOK_A ";app-id=a.b;app-id=a.c", "app-id: duplicate");

	/* pn-timeout. */
	EXPECT_BAD("pn-provider=fcm;pn-prid=a;pn-timeout=3601", "pn-timeout:");
	EXPECT_BAD("pn-provider=fcm;pn-prid=a;pn-timeout=-1", "pn-timeout:");
	EXPECT_BAD("pn-provider=fcm;pn-prid=a;pn-timeout=5s", "pn-timeout:");
	EXPECT_BAD("pn-provider=fcm;pn-prid=a;pn-timeout=99999999999999999999", "pn-timeout:");
	EXPECT_BAD("pn-provider=fcm;pn-prid=a;pn-timeout=", "pn-timeout: empty");
	if (EXPECT("pn-provider=fcm;pn-prid=a;pn-timeout=30", PN_PARSE_OK, NULL, &id) ==
	    PN_PARSE_OK)
		CHECK(id.timeout == 30);
	pn_identity_cleanup(&id);

	/* A tiny error buffer and no buffer at all are fine. */
	{
		char small[4];
		CHECK(pn_parse("pn-provider=apns;pn-prid=zz;pn-param=T.a", &id, small,
			       sizeof(small)) == PN_PARSE_BAD);
		CHECK(strlen(small) == 3);
		CHECK(pn_parse("pn-provider=apns;pn-prid=zz;pn-param=T.a", &id, NULL, 0) ==
		      PN_PARSE_BAD);
	}
}

static char *key_of(const char *params)
{
	struct pn_identity id;
	char err[128];
	char *key = NULL;

	if (pn_parse(params, &id, err, sizeof(err)) == PN_PARSE_OK)
		key = pn_identity_key(&id);
	pn_identity_cleanup(&id);
	return key;
}

static void test_key(void)
{
	char *a = key_of("transport=udp;pn-provider=apns;pn-prid=" TOK_A ";pn-param=T.com.x");
	char *b = key_of("transport=tcp;pn-param=T.com.x;PN-PROVIDER=apns;pn-prid=" TOK_A
			 ";+sip.instance=\"<urn:uuid:2>\"");
	char *c = key_of("pn-provider=apns.dev;pn-prid=" TOK_A ";pn-param=T.com.x");
	char *d = key_of("pn-provider=apns;pn-prid=" TOK_B ";pn-param=T.com.x");
	char *e = key_of("pn-provider=apns;pn-prid=" TOK_A ";pn-param=T.com.x.voip");
	char *f = key_of("pn-provider=fcm;pn-prid=abc");
	char *g = key_of("pn-provider=fcm;pn-prid=abc;pn-param=p");
	char *h = key_of("pn-provider=fcm;pn-prid=abc%3A1");
	char *i = key_of("pn-provider=fcm;pn-prid=abc:1");

	CHECK(a && b && c && d && e && f && g && h && i);
	if (a && b && c && d && e && f && g && h && i) {
		CHECK(strcmp(a, b) == 0);
		CHECK(strcmp(a, c) != 0);
		CHECK(strcmp(a, d) != 0);
		CHECK(strcmp(a, e) != 0);
		CHECK(strcmp(f, g) != 0);
		CHECK(strcmp(h, i) == 0);
		CHECK_STR(a, "apns\x1f" TOK_A "\x1fT.com.x");
		CHECK_STR(f, "fcm\x1f" "abc\x1f");
	}
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
	free(f);
	free(g);
	free(h);
	free(i);

	/* No key for an empty identity or one with the separator inside. */
	struct pn_identity z = {0};
	CHECK(pn_identity_key(&z) == NULL);
	CHECK(pn_identity_key(NULL) == NULL);
	z.provider = PN_FCM;
	z.prid = (char *)"a\x1f" "b";
	CHECK(pn_identity_key(&z) == NULL);
}

static void test_copy(void)
{
	struct pn_identity id, cp;

	if (EXPECT("pn-provider=apns.dev;pn-prid=" TOK_A ":remote&" TOK_B
		   ":voip;pn-param=T.a.b.remote&voip;pn-timeout=7",
		   PN_PARSE_OK, NULL, &id) != PN_PARSE_OK)
		return;
	CHECK(pn_identity_copy(&cp, &id) == 0);
	CHECK(cp.provider == PN_APNS && cp.sandbox && cp.timeout == 7);
	CHECK_STR(cp.token, id.token);
	CHECK(cp.token != id.token);
	CHECK_STR(cp.voip_token, id.voip_token);
	CHECK_STR(cp.team_id, "T");
	CHECK_STR(cp.topic, "a.b");
	CHECK_STR(cp.prid, id.prid);
	CHECK_STR(cp.param, id.param);
	pn_identity_cleanup(&id);
	pn_identity_cleanup(&cp);
	CHECK(cp.token == NULL && cp.provider == PN_NONE);
	pn_identity_cleanup(&cp); /* twice is fine */
	pn_identity_cleanup(NULL);
}

static void check_strip(const char *in, const char *want, const char *file, int line)
{
	char *got = pn_strip_params(in);

	if (!got || strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: pn_strip_params(\"%s\") = \"%s\", expected \"%s\"\n", file,
			line, in ? in : "(null)", got ? got : "(null)", want);
		failures++;
	}
	free(got);
}

#define CHECK_STRIP(in, want) check_strip(in, want, __FILE__, __LINE__)

static void test_strip(void)
{
	CHECK_STRIP("transport=tcp;pn-provider=apns;pn-prid=ABC;pn-param=T.a;ob",
		    "transport=tcp;ob");
	CHECK_STRIP("pn-provider=apns;pn-prid=ABC;pn-param=T.a", "");
	CHECK_STRIP("", "");
	CHECK_STRIP(NULL, "");
	CHECK_STRIP("lr;transport=tls", "lr;transport=tls");
	CHECK_STRIP("pn-timeout=0;pn-silent=1;pn-msg-str=m;pn-call-str=c;pn-call-snd=s;"
		    "pn-msg-snd=s;pn-groupchat-str=g;pn-future-thing;x=1",
		    "x=1");
	CHECK_STRIP("a=1;pn-type=apple;pn-tok=T;app-id=com.x;b=2", "a=1;b=2");
	CHECK_STRIP("A=1;PN-PRID=x;App-Id=y;B", "A=1;B");
	CHECK_STRIP("x=1;;pn-prid=a;;y=2", "x=1;y=2");
	/* Kept parameters are copied byte for byte, escapes and all. */
	CHECK_STRIP("x=%41%zz;pn-prid=a;Y=\"q\"", "x=%41%zz;Y=\"q\"");
	/* Escaped names are stripped too; a quoted ';' does not split. */
	CHECK_STRIP("pn%2Dprid=abc;pn-%70aram=x;keep=1", "keep=1");
	CHECK_STRIP("+sip.instance=\"<urn:uuid:1;pn-prid=x>\";pn-prid=y",
		    "+sip.instance=\"<urn:uuid:1;pn-prid=x>\"");
	/* Not push parameters. */
	CHECK_STRIP("pnprid=1;app-idx=2;xpn-prid=3;pn=4", "pnprid=1;app-idx=2;xpn-prid=3;pn=4");
	/* A long pn- name is stripped however long it is. */
	{
		char buf[400];
		memset(buf, 'z', sizeof(buf));
		memcpy(buf, "pn-", 3);
		memcpy(buf + 300, "=1;k=v", 7);
		CHECK_STRIP(buf, "k=v");
	}

	CHECK(pn_is_push_param("pn-prid", 7));
	CHECK(pn_is_push_param("PN-X", 4));
	CHECK(pn_is_push_param("app-id", 6));
	CHECK(pn_is_push_param("APP-ID", 6));
	CHECK(!pn_is_push_param("app-idx", 7));
	CHECK(!pn_is_push_param("pn", 2));
	CHECK(!pn_is_push_param("transport", 9));
	CHECK(!pn_is_push_param(NULL, 0));
	/* Only the first len bytes count. */
	CHECK(pn_is_push_param("app-id-not", 6));
}

static void test_host_allowed(void)
{
	char *pats[] = {"push.example.net", "*.googleapis.com", "[2001:db8::1]", NULL};
	char *none[] = {NULL};

	CHECK(pn_endpoint_host_allowed("https://push.example.net/w/1", pats));
	CHECK(pn_endpoint_host_allowed("https://PUSH.example.NET:8443/w/1", pats));
	CHECK(pn_endpoint_host_allowed("https://fcm.googleapis.com/fcm/send/x", pats));
	CHECK(pn_endpoint_host_allowed("https://[2001:db8::1]:443/x", pats));
	CHECK(!pn_endpoint_host_allowed("https://googleapis.com/x", pats)); /* below it only */
	CHECK(!pn_endpoint_host_allowed("https://evilgoogleapis.com/x", pats));
	CHECK(!pn_endpoint_host_allowed("https://push.example.net.evil.org/x", pats));
	CHECK(!pn_endpoint_host_allowed("https://10.0.0.5/x", pats));
	CHECK(!pn_endpoint_host_allowed("http://push.example.net/x", pats));
	CHECK(pn_endpoint_host_allowed("https://10.0.0.5/x", none));
	CHECK(pn_endpoint_host_allowed("https://10.0.0.5/x", NULL));
}

int main(void)
{
	test_none();
	test_rfc8599_apns();
	test_rfc8599_fcm();
	test_rfc8599_webpush();
	test_linphone();
	test_legacy();
	test_malformed();
	test_key();
	test_copy();
	test_strip();
	test_host_allowed();
	if (failures) {
		fprintf(stderr, "test_pn: %d check(s) failed\n", failures);
		return 1;
	}
	printf("test_pn: all checks passed\n");
	return 0;
}
