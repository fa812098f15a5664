/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what sipwake makes of a push provider's answer
 * (src/push/apns.c apns_reason() and apns_verdict(), src/push/fcm.c
 * fcm_reason(), fcm_verdict() and fcm_token_answer() for the OAuth2
 * token endpoint), the side-effect-free halves of apns_done(),
 * fcm_done() and token_done(). Input: byte 0 picks the answer (bits 0-1:
 * APNs, FCM, FCM token endpoint; bit 2: a fresh token may be fetched),
 * bytes 1-2 the HTTP status (100 + n % 500), the rest is the body.
 * Invariants: the reason is a terminated string, a token counts as dead
 * only on the provider's explicit word (APNs 410, or 400 BadDeviceToken /
 * DeviceTokenNotForTopic; FCM 400/404 UNREGISTERED), success only on
 * 200, a refresh only on 403 ExpiredProviderToken / 401 when allowed,
 * and an access token only from a 200 with a positive lifetime. A
 * violation aborts. apns.c and fcm.c both have static set(), put_str()
 * and clip(): they are renamed for one of them so that both fit here.
 */
#define set apns_set_
#define put_str apns_put_str_
#define clip apns_clip_
#include "push/apns.c"
#undef set
#undef put_str
#undef clip
#include "push/fcm.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REASON_LEN 96 /* as in apns_done() and fcm_done() */

static void check_reason(const char *reason)
{
	if (!memchr(reason, '\0', REASON_LEN))
		abort();
}

static void apns_answer(long status, const char *body, size_t len, bool can_refresh)
{
	char reason[REASON_LEN];
	bool refresh;
	enum push_result res;

	memset(reason, 'x', sizeof(reason));
	apns_reason(body, len, reason, sizeof(reason));
	check_reason(reason);
	res = apns_verdict(status, reason, can_refresh, &refresh);
	if ((res == PUSH_OK) != (status == 200))
		abort();
	if (res == PUSH_TOKEN_INVALID &&
	    !(status == 410 || (status == 400 && (!strcmp(reason, "BadDeviceToken") ||
						  !strcmp(reason, "DeviceTokenNotForTopic")))))
		abort();
	if (refresh && !(can_refresh && status == 403 && res == PUSH_RETRYABLE))
		abort();
	if (res != PUSH_OK && res != PUSH_TOKEN_INVALID && res != PUSH_RETRYABLE &&
	    res != PUSH_PERMANENT)
		abort();
}

static void fcm_answer(long status, const char *body, size_t len, bool can_refresh)
{
	char reason[REASON_LEN];
	bool refresh;
	enum push_result res;

	memset(reason, 'x', sizeof(reason));
	fcm_reason(body, len, reason, sizeof(reason));
	check_reason(reason);
	res = fcm_verdict(status, reason, can_refresh, &refresh);
	if ((res == PUSH_OK) != (status == 200))
		abort();
	if (res == PUSH_TOKEN_INVALID &&
	    !((status == 400 || status == 404) && !strcmp(reason, "UNREGISTERED")))
		abort(); /* a plain 404 must not wipe the binding */
	if (refresh && !(can_refresh && status == 401 && res == PUSH_RETRYABLE))
		abort();
	if (res != PUSH_OK && res != PUSH_TOKEN_INVALID && res != PUSH_RETRYABLE &&
	    res != PUSH_PERMANENT)
		abort();
}

static void token_answer(long status, const char *body, size_t len)
{
	char reason[REASON_LEN] = "";
	char *access = NULL;
	json_int_t ttl = -1;
	enum push_result res = fcm_token_answer(status, body, len, &access, &ttl, reason,
						sizeof(reason));

	check_reason(reason);
	if (res == PUSH_OK) {
		if (status != 200 || !access || !access[0] || ttl <= 0 || reason[0])
			abort();
	} else {
		if (access || !reason[0])
			abort();
		if (res != PUSH_PERMANENT && res != PUSH_RETRYABLE)
			abort();
	}
	free(access);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body;
	size_t len;
	long status;
	bool can_refresh;

	if (size < 3)
		return 0;
	status = 100 + (long)((data[1] << 8 | data[2]) % 500);
	can_refresh = data[0] & 4;
	body = (const char *)data + 3;
	len = size - 3;
	switch (data[0] & 3) {
	case 0:
		apns_answer(status, body, len, can_refresh);
		break;
	case 1:
		fcm_answer(status, body, len, can_refresh);
		break;
	default:
		token_answer(status, body, len);
		break;
	}
	return 0;
}
